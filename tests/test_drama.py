"""The drama studio: broken storyboards refused with file:line, an episode rendered end to end (streams, subtitle
timing against the speech, the OTIO timeline read back, shots reused after a kill), and the interactive export
played in chromium."""

from __future__ import annotations

import functools
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import opentimelineio as otio
import pytest

from kinetoscope.cli import main
from kinetoscope.studio.mux import read_audio, read_subtitles
from kinetoscope.studio.storyboard import StoryboardError, load_storyboard
from kinetoscope.studio.subtitles import parse_srt
from kinetoscope.studio.voice import RATE, spoken_spans

KINETOSCOPE = [sys.executable, "-m", "kinetoscope"]
REPO = Path(__file__).resolve().parents[1]

GOOD = """\
title: Test
seed: 1
cast:
  Mei: {look: a woman in a red shirt with long black hair, voice: {lang: cmn, variant: f2}}
  Jack: {look: a man in a yellow shirt with short brown hair, voice: en-us+m3}
shots:
  - id: a
    setting: office
    size: medium
    cast: [Jack]
    action: waves
    lines: ["Jack: Hello there."]
    duration: 1
  - id: b
    setting: office
    size: wide
    cast: [Mei, Jack]
    action: meet
    lines: ["Mei: 你好。"]
    duration: 1
    transition: crossfade
    choices:
      - {text: Stay, goto: c}
      - {text: Leave, goto: d}
  - id: c
    setting: living room
    size: close-up
    cast: [Mei]
    lines: ["Mei: 好的。"]
    duration: 1
    transition: connect
    end: true
  - id: d
    setting: city street at night
    size: wide
    cast: [Jack]
    action: walks left
    duration: 1
    end: true
"""


def _write(tmp_path: Path, text: str, name: str = "story.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


BROKEN = [  # (what, replace this, with this, the field and line the error must name)
    ("YAML syntax", "  - id: a\n", "  - id: [a\n", "story.yaml:8: not valid YAML"),
    ("unknown character", "cast: [Jack]\n    action: waves", "cast: [Bob]\n    action: waves",
     "story.yaml:10: shots[0].cast: unknown character 'Bob'"),
    ("missing setting", "    setting: office\n    size: medium\n", "    size: medium\n", "story.yaml:7: shots[0].setting"),
    ("branch to a missing shot", "goto: d}", "goto: z}", "story.yaml:24: shots[1].choices.goto: no shot 'z'"),
    ("duration past the limits", "    duration: 1\n    transition", "    duration: 999\n    transition",
     "story.yaml:20: shots[1].duration"),
    ("unknown shot size", "size: close-up", "size: extreme", "story.yaml:27: shots[2].size"),
    ("unknown speaker", '["Jack: Hello there."]', '["Ann: Hi."]', "story.yaml:12: shots[0].lines: unknown speaker"),
    ("malformed line", '["Jack: Hello there."]', '["just words"]', "story.yaml:12: shots[0].lines"),
    ("duplicate shot id", "  - id: c\n", "  - id: a\n", "story.yaml:25: shots[2].id: 'a' is used by more"),
    ("unknown transition", "transition: crossfade", "transition: wipe", "story.yaml:21: shots[1].transition"),
    ("character without a look", "  Mei: {look: a woman in a red shirt with long black hair, voice: {lang: cmn, "
     "variant: f2}}", "  Mei: {voice: cmn}", "story.yaml:4: cast.Mei: needs a look"),
    ("unknown voice language", "voice: en-us+m3", "voice: klingon", "story.yaml:5: cast.Jack.voice"),
    ("bad aspect", "title: Test\n", "title: Test\naspect: wide\n", "story.yaml:2: aspect"),
]  # fmt: skip


@pytest.mark.parametrize("what, old, new, expected", BROKEN, ids=[b[0] for b in BROKEN])
def test_each_broken_storyboard_names_file_line_and_field(tmp_path, capsys, what, old, new, expected):
    assert old in GOOD, what
    path = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(StoryboardError) as e:
        load_storyboard(path)
    assert expected in str(e.value).replace(str(tmp_path) + "/", ""), str(e.value)
    assert main(["drama", str(path), "--check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err.replace(str(tmp_path) + "/", "")


def test_a_cycle_with_no_exit_is_refused(tmp_path):
    text = GOOD.replace("    choices:\n      - {text: Stay, goto: c}\n      - {text: Leave, goto: d}\n",
                        "    next: a\n")  # a -> b -> a forever  # fmt: skip
    with pytest.raises(StoryboardError, match=r"story\.yaml:\d+: shots\[0\]: shot 'a' is in a cycle with no exit"):
        load_storyboard(_write(tmp_path, text))


def test_a_series_file_holds_the_cast(tmp_path):
    _write(tmp_path, "cast:\n  Mei: {look: a woman in a red shirt}\n  Jack: {look: a man in a yellow shirt}\n",
           "series.yaml")  # fmt: skip
    text = GOOD[: GOOD.index("cast:")] + "series: series.yaml\n" + GOOD[GOOD.index("shots:") :]
    board = load_storyboard(_write(tmp_path, text))
    assert board.cast["Mei"].look == "a woman in a red shirt" and [s.id for s in board.main_line()] == ["a", "b", "c"]
    _write(tmp_path, "cast:\n  Mei: {voice: cmn}\n", "series.yaml")
    with pytest.raises(StoryboardError, match=r"series\.yaml:2: cast\.Mei: needs a look"):
        load_storyboard(tmp_path / "story.yaml")


def test_the_example_storyboard_meets_the_shape_the_issue_asks(tmp_path):
    board = load_storyboard(REPO / "examples" / "drama" / "rain_check.yaml")
    assert len(board.main_line()) >= 8 and len(board.cast) == 2 and any(s.choices for s in board.shots)
    langs = {board.cast[line.who].voice.lang for s in board.shots for line in s.lines}
    assert {"cmn", "en-us"} <= langs


def _drama(story: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(KINETOSCOPE + ["drama", str(story), "-o", str(out), "--steps", "2", "--upscale", "2", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


@pytest.fixture(scope="module")
def episode(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("drama")
    story = _write(tmp, GOOD)
    out = tmp / "ep.mp4"
    p = _drama(story, out)
    deadline = time.time() + 300
    while time.time() < deadline and len(list((tmp / "ep.drama" / "shots").glob("*.mp4"))) < 2:
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)  # killed mid-run, after two shots
    p.wait()
    done = {f.name for f in (tmp / "ep.drama" / "shots").glob("*.mp4")}
    p = _drama(story, out)
    stdout, stderr = p.communicate(timeout=300)
    assert p.returncode == 0, stderr
    assert f"({len(done)} reused)" in stdout and done <= {f.name for f in (tmp / "ep.drama" / "shots").glob("*.mp4")}
    return out


def test_the_episode_has_video_audio_and_subtitles(episode):
    with av.open(str(episode)) as c:
        kinds = [s.type for s in c.streams]
        v = c.streams.video[0]
        assert kinds == ["video", "audio", "subtitle"] and (v.width, v.height) == (128, 224)  # 9:16, upscale 2
    soft = read_subtitles(episode)
    side = parse_srt(episode.with_suffix(".srt").read_text(encoding="utf-8"))
    assert [c.text for c in soft] == [c.text for c in side] == ["Hello there.", "你好。", "好的。"]
    assert all(abs(a.start - b.start) < 0.01 and abs(a.end - b.end) < 0.01 for a, b in zip(soft, side))
    assert episode.with_suffix(".jpg").stat().st_size > 1000


def test_subtitles_match_the_speech_within_100_ms(episode):
    audio, rate = read_audio(episode)
    assert rate == RATE
    cues = parse_srt(episode.with_suffix(".srt").read_text(encoding="utf-8"))
    for cue, span in zip(cues, spoken_spans(audio, [(c.start, c.end) for c in cues])):
        assert span and abs(span[0] - cue.start) <= 0.1 and abs(span[1] - cue.end) <= 0.1, (cue, span)


def test_the_otio_timeline_reads_back_with_every_range(episode):
    timeline = otio.adapters.read_from_file(str(episode.with_suffix(".otio")))
    video, audio = timeline.tracks
    clips = [c for c in video if isinstance(c, otio.schema.Clip)]
    assert [c.name for c in clips] == ["a", "b", "c"]
    report = json.loads((episode.with_suffix(".drama") / "report.json").read_text())
    for c in clips:
        start = c.metadata["kinetoscope"]["start_frame"]
        r = c.range_in_parent()
        assert r.start_time.value + r.duration.value == start + c.media_reference.available_range.duration.value
        assert Path(c.media_reference.target_url.removeprefix("file://")).exists()
    assert video.duration().value == report["frames"]
    cues = parse_srt(episode.with_suffix(".srt").read_text(encoding="utf-8"))
    lines = [c for c in audio if isinstance(c, otio.schema.Clip)]
    assert [round(c.range_in_parent().start_time.value / 1000, 2) for c in lines] == [round(c.start, 2) for c in cues]
    assert [m.name for m in video.markers] == [c.text for c in cues]


def test_the_report_measures_character_consistency(episode):
    report = json.loads((episode.with_suffix(".drama") / "report.json").read_text())
    c = report["consistency"]
    assert set(c) == {"Mei", "Jack"} and c["Mei"]["shots"] == 2 and c["Jack"]["shots"] == 3
    assert all(0 <= v["matching"] <= v["shots"] for v in c.values())


def test_the_interactive_episode_plays_the_chosen_branch(episode):
    from playwright.sync_api import sync_playwright

    folder = episode.with_name("ep_interactive")
    story = json.loads((folder / "story.json").read_text(encoding="utf-8"))
    assert story["start"] == "a" and [c["goto"] for c in story["shots"]["b"]["choices"]] == ["c", "d"]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                        args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])  # fmt: skip
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.server_port}/index.html")
            page.wait_for_function("document.getElementById('video').dataset.shot === 'b'", timeout=30_000)
            page.wait_for_selector("#choices button[data-goto='d']", timeout=30_000)  # b ended: its choices
            page.click("#choices button[data-goto='d']")
            page.wait_for_function("(() => { const v = document.getElementById('video');"
                                   " return v.dataset.shot === 'd' && v.currentTime > 0; })()", timeout=30_000)
            assert page.evaluate("document.getElementById('video').src").endswith("clips/d.mp4")
            browser.close()
    finally:
        server.shutdown()
