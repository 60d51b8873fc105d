"""Curation of real footage: cuts at the right frames, broken files skipped and reported, kill -9 and resume, filters,
near-duplicates, captions, safe paths, buckets, and training on the shards it writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from kinetoscope.data.captions import CaptionBook
from kinetoscope.data.curate import REPORT, CurateOptions, curate
from kinetoscope.data.footage import gather_footage
from kinetoscope.data.quality import Thresholds, distance, score, signature, thumbnails, verdict
from kinetoscope.data.scenes import nearest_bucket, plan_clips, scan
from kinetoscope.data.shards import read_manifest
from kinetoscope.errors import DataError
from kinetoscope.media import iter_frames, probe, read_video, write_video
from kinetoscope.sizes import is_valid_frames

KINETOSCOPE = [sys.executable, "-m", "kinetoscope"]
SMALL = CurateOptions(sizes=((64, 112), (112, 64), (64, 80), (80, 64), (64, 64)), frames=(9, 17))
SMALL_FLAGS = ["--sizes", "64x112,112x64,64x80,80x64,64x64", "--frames", "9,17"]


def _resized(path: Path, start: int, stop: int, size=(320, 176)) -> list[np.ndarray]:
    return [np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR)) for f in iter_frames(path, start=start, stop=stop)]


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> Path:
    return gather_footage(tmp_path_factory.mktemp("footage"), ("bigbuckbunny.mp4", "bikes.mp4", "vtest.avi",
                                                               "carphone_pristine.mp4", "Megamind.avi"))[0].parent


@pytest.fixture(scope="module")
def concat(footage, tmp_path_factory) -> Path:
    """Three different real videos back to back: bbb 0-49, one shot of bikes (its frames 30-75), vtest 0-49."""
    frames = (_resized(footage / "bigbuckbunny.mp4", 0, 50) + _resized(footage / "bikes.mp4", 30, 76)
              + _resized(footage / "vtest.avi", 0, 50))  # fmt: skip
    return write_video(tmp_path_factory.mktemp("concat") / "three.mp4", np.stack(frames), 25)


def test_cuts_are_found_at_the_right_frames(concat, tmp_path):
    cuts = scan(concat).cuts
    assert len(cuts) == 2 and abs(cuts[0] - 50) <= 2 and abs(cuts[1] - 96) <= 2, cuts
    s = curate(concat.parent, tmp_path / "ds", SMALL, workers=1, progress=False)
    report = json.loads((tmp_path / "ds" / REPORT).read_text())
    assert report["files_detail"][0]["cuts"] == list(cuts)
    for rec in read_manifest(tmp_path / "ds"):  # no clip straddles a cut
        start, end = rec.extra["origin"]["start_s"] * 25, rec.extra["origin"]["end_s"] * 25
        assert all(not (start < c < end - 1) for c in cuts), (rec.extra["origin"], cuts)
    assert s.clips == len(read_manifest(tmp_path / "ds")) >= 3


def _broken(folder: Path, footage: Path) -> dict[str, str]:
    """Broken variants of real files; name -> a word the skip reason must contain."""
    data = (footage / "bigbuckbunny.mp4").read_bytes()
    (folder / "zero.mp4").write_bytes(b"")
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    mid = len(flipped) // 2
    flipped[mid : mid + 16384] = bytes(b ^ 0xFF for b in flipped[mid : mid + 16384])
    (folder / "flipped.mp4").write_bytes(bytes(flipped))
    with av.open(str(footage / "bigbuckbunny.mp4")) as src, av.open(str(folder / "audio_only.mp4"), "w") as dst:
        audio = dst.add_stream_from_template(src.streams.audio[0])
        for packet in src.demux(src.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = audio
                dst.mux(packet)
    (folder / "notes.mp4").write_text("not a video at all\n")
    vt = (footage / "vtest.avi").read_bytes()
    (folder / "truncated.avi").write_bytes(vt[: len(vt) // 2])
    return {"zero.mp4": "empty", "truncated.mp4": "truncated", "flipped.mp4": "corrupt",
            "audio_only.mp4": "audio only", "notes.mp4": "not a video", "truncated.avi": "corrupt"}  # fmt: skip


def test_every_broken_file_is_reported_and_skipped(footage, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "good.mp4").symlink_to(footage / "carphone_pristine.mp4")
    expected = _broken(src, footage)
    r = subprocess.run(KINETOSCOPE + ["curate", str(src), "-o", str(tmp_path / "ds"), "-q", *SMALL_FLAGS],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert f"skipped {len(expected)} files" in r.stdout
    report = json.loads((tmp_path / "ds" / REPORT).read_text())
    reasons = {s["file"]: s["reason"] for s in report["skipped"]}
    assert set(reasons) == set(expected)
    for name, word in expected.items():
        assert word in reasons[name], (name, reasons[name])
    records = read_manifest(tmp_path / "ds")
    assert records and {r.extra["origin"]["file"] for r in records} == {"good.mp4"}


def _cli_curate(src: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(KINETOSCOPE + ["curate", str(src), "-o", str(out), "-q", "--workers", "2", *SMALL_FLAGS],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def test_kill_9_then_rerun_gives_each_clip_once(footage, tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert _cli_curate(footage, full).wait(timeout=300) == 0
    p = _cli_curate(footage, killed)
    deadline = time.time() + 300
    while time.time() < deadline and not list((killed / "clips").glob("*.json")):
        time.sleep(0.02)  # kill as soon as the first file is done: the other worker is mid-file
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert not (killed / "manifest.jsonl").exists()
    r = _cli_curate(footage, killed)
    _, err = r.communicate(timeout=300)
    assert r.returncode == 0, err
    records = read_manifest(killed)
    paths = [rec.path for rec in records]
    assert len(paths) == len(set(paths)) and paths == [rec.path for rec in read_manifest(full)]
    on_disk = sorted(p.relative_to(killed).as_posix() for p in (killed / "clips").rglob("*.mp4"))
    assert on_disk == sorted(paths)  # nothing half-written or orphaned is left beside the manifest
    for rec in records:
        assert read_video(killed / rec.path).shape[:3] == rec.bucket


def test_a_finished_run_resumes_to_a_no_op(footage, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.mp4").symlink_to(footage / "carphone_pristine.mp4")
    first = curate(src, tmp_path / "ds", SMALL, workers=1, progress=False)
    again = curate(src, tmp_path / "ds", SMALL, workers=1, progress=False)
    assert first.clips == again.clips and again.curated_now == 0 and first.curated_now == 1
    with pytest.raises(DataError, match="other arguments"):
        curate(src, tmp_path / "ds", CurateOptions(fps=12, sizes=SMALL.sizes, frames=SMALL.frames), progress=False)


@settings(max_examples=60, deadline=None)
@given(st.integers(16, 4000), st.integers(16, 4000))
def test_the_bucket_keeps_the_orientation(w, h):
    bh, bw = nearest_bucket(w, h, CurateOptions().sizes)
    if w >= 1.2 * h:
        assert bw > bh
    elif h >= 1.2 * w:
        assert bh > bw


@settings(max_examples=80, deadline=None)
@given(src_fps=st.sampled_from([10.0, 23.976, 25.0, 30.0, 60.0]), fps=st.sampled_from([8.0, 12.0, 24.0]),
       n=st.integers(1, 400), cuts=st.lists(st.integers(1, 399), max_size=5))  # fmt: skip
def test_plans_stay_in_one_shot_and_on_the_grid(src_fps, fps, n, cuts):
    times = np.arange(n) / src_fps
    cuts = sorted({c for c in cuts if c < n})
    plans = plan_clips(times, cuts, fps, (9, 17, 33), 1.0, src_fps)
    edges = [0, *cuts, n]
    for p in plans:
        a, b = edges[p.shot], edges[p.shot + 1]
        assert is_valid_frames(len(p.frames)) and len(p.frames) in (9, 17, 33)
        assert all(a <= i < b for i in p.frames) and list(p.frames) == sorted(p.frames)
        for k, i in enumerate(p.frames):  # the nearest source frame to each output time
            assert abs(times[i] - (p.start_s + k / fps)) <= 0.5 / src_fps + 1e-9
    assert all(q.start_s >= p.end_s - 1e-9 for p, q in zip(plans, plans[1:]))


def test_filters_reject_dark_blown_static_and_flicker(footage):
    real = read_video(footage / "bikes.mp4", start=0, stop=17)[:, :, :256]
    fine = verdict(score(thumbnails(real), 8), Thresholds())
    assert fine is None
    t = len(real)
    cases = {
        "dark": np.full_like(real, 5),
        "blown out": np.full_like(real, 250),
        "static": np.repeat(real[:1], t, axis=0),
        "flicker": np.clip(real.astype(int) + np.where(np.arange(t) % 2, 40, -40)[:, None, None, None], 0,
                           255).astype(np.uint8),  # fmt: skip
    }
    for reason, clip in cases.items():
        assert verdict(score(thumbnails(clip), 8), Thresholds()) == reason


def test_near_duplicates_match_a_reencode_not_another_moment(footage, tmp_path):
    clip = read_video(footage / "vtest.avi", start=0, stop=33)
    later = read_video(footage / "vtest.avi", start=200, stop=233)
    small = np.stack([np.asarray(Image.fromarray(f).resize((384, 288), Image.BILINEAR)) for f in clip])
    copy = read_video(write_video(tmp_path / "copy.mp4", small, 10, crf=32))
    back = np.stack([np.asarray(Image.fromarray(f).resize((768, 576), Image.BILINEAR)) for f in copy])
    sig = signature(thumbnails(clip))
    assert distance(sig, signature(thumbnails(back))) <= Thresholds().dup_levels
    assert distance(sig, signature(thumbnails(later))) > Thresholds().dup_levels


def test_a_copied_file_is_dropped_as_a_duplicate(footage, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.mp4").symlink_to(footage / "carphone_pristine.mp4")
    frames = read_video(footage / "carphone_pristine.mp4")
    write_video(src / "b_reencoded.mp4", frames, probe(footage / "carphone_pristine.mp4").fps, crf=30)
    s = curate(src, tmp_path / "ds", SMALL, workers=1, progress=False)
    records = read_manifest(tmp_path / "ds")
    assert {r.extra["origin"]["file"] for r in records} == {"a.mp4"}
    assert s.rejected["near-duplicate"] >= 1
    report = json.loads((tmp_path / "ds" / REPORT).read_text())
    assert all(d["file"] == "b_reencoded.mp4" and not (tmp_path / "ds" / d["path"]).exists()
               for d in report["duplicates"])  # fmt: skip


def test_captions_come_from_sidecars(footage, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for name in ("t.mp4", "j.mp4", "sub/l.mp4", "none.mp4", "bad.mp4"):
        (src / name).symlink_to(footage / "carphone_pristine.mp4")
    (src / "t.txt").write_text("  a man talks on a phone\nin a car  ")
    (src / "j.json").write_text(json.dumps({"caption": "a phone call"}))
    (src / "bad.json").write_text("{not json")
    (src / "captions.jsonl").write_text(json.dumps({"file": "sub/l.mp4", "caption": "from the list"}) + "\n{oops\n")
    book = CaptionBook.load(src)
    got = {n: book.caption(src / n)[0] for n in ("t.mp4", "j.mp4", "sub/l.mp4", "none.mp4", "bad.mp4")}
    assert got == {"t.mp4": "a man talks on a phone in a car", "j.mp4": "a phone call", "sub/l.mp4": "from the list",
                   "none.mp4": "", "bad.mp4": ""}  # fmt: skip
    assert any("bad.json" in p for p in book.problems) and any("captions.jsonl:2" in p for p in book.problems)


def test_output_paths_stay_inside_whatever_the_names(footage, tmp_path):
    src = tmp_path / "in"
    for d in (src / ".hidden" / "x", src / "sp ace" / "ünï cødé"):
        d.mkdir(parents=True)
    names = {src / "sp ace" / "ünï cødé" / "a\nb.mp4": "carphone_pristine.mp4", src / "-rf ; $(rm).mp4": "bikes.mp4",
             src / ("x" * 200 + ".mp4"): "bigbuckbunny.mp4", src / ".hidden" / "x" / "skipped.mp4": "vtest.avi"}
    for link, target in names.items():
        link.symlink_to(footage / target)
    out = src / "dataset"  # the output folder inside the input folder is not curated again
    curate(src, out, SMALL, workers=1, progress=False)
    records = read_manifest(out)
    files = {r.extra["origin"]["file"] for r in records}
    assert len(files) == 3 and not any(".hidden" in f for f in files)
    for r in records:
        assert (out / r.path).resolve().is_relative_to(out.resolve()) and "\n" not in r.path
    assert {r.extra["origin"]["file"] for r in read_manifest(out)} == files


def test_vertical_footage_stays_vertical(footage, tmp_path):
    src = tmp_path / "in"
    frames = read_video(footage / "bigbuckbunny.mp4", stop=40)[:, :, 440:840]  # 400x720: 9:16-ish
    write_video(src / "tall.mp4", frames, 25)
    curate(src, tmp_path / "ds", CurateOptions(), workers=1, progress=False)
    assert {(r.height, r.width) for r in read_manifest(tmp_path / "ds")} == {(256, 144)}


def test_curated_shards_train_the_vae_and_the_dit(footage, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "carphone.mp4").symlink_to(footage / "carphone_pristine.mp4")
    (src / "carphone.txt").write_text("a man talks on a phone in a car")
    (src / "bunny.mp4").symlink_to(footage / "bigbuckbunny.mp4")
    data = tmp_path / "ds"
    curate(src, data, SMALL, workers=1, progress=False)
    for what, extra in (("vae", []), ("dit", [])):
        r = subprocess.run(KINETOSCOPE + ["train", what, "--config", "tiny", "--data", str(data), "-o",
                                          str(tmp_path / what), "--steps", "2", "-q", *extra],
                           capture_output=True, text=True, timeout=300)  # fmt: skip
        assert r.returncode == 0, r.stderr
        losses = [json.loads(ln)["loss"] for ln in (tmp_path / what / "metrics.jsonl").read_text().splitlines()]
        assert len(losses) == 2 and all(np.isfinite(losses))
