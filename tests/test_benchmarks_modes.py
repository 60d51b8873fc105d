"""The modes benchmark: its seam and continuity measures pass a world clip and fail a spliced one, and a quick run
writes its JSON and table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kinetoscope.evaluate import modes
from kinetoscope.evaluate.sheet import GAP, LABEL_HEIGHT, contact_sheet
from kinetoscope.world import ClipSpec, render

REPO = Path(__file__).resolve().parents[1]
SCRIPT = [sys.executable, str(REPO / "benchmarks" / "modes.py")]
W, H = 64, 112
QUICK_CASES = 2  # benchmarks/modes.py --quick


@pytest.fixture(scope="module")
def rolling():
    """A world clip whose single object moves steadily: a ball rolling right."""
    for seed in range(200):
        clip = render(ClipSpec("physics", 112, 64, 33, 16, seed))
        objects = clip.script["objects"]
        if len(objects) == 1 and objects[0]["motion"] in ("rolls right", "slides right") and clip.script["camera"][
                "motion"] == "static":  # fmt: skip
            return clip
    pytest.skip("no single rolling object in the first 200 world clips")


def test_a_world_clip_has_no_seam_and_its_track_continues(rolling):
    color = rolling.script["objects"][0]["color"]
    verdict = modes.seam_verdict(rolling.frames, [17], color)
    assert verdict["pass"], verdict


def test_a_spliced_clip_fails_both_measures(rolling):
    color = rolling.script["objects"][0]["color"]
    spliced = rolling.frames.copy()
    spliced[17:] = np.roll(spliced[17:], 24, axis=1)  # the second half jumps 24 px down
    verdict = modes.seam_verdict(spliced, [17], color)
    assert not verdict["seams"][0]["continues"], verdict
    assert verdict["seams"][0]["ratio"] > modes.SEAM_RATIO
    assert not verdict["pass"]


def test_contact_sheet_has_a_row_per_clip_and_refuses_nothing_to_show():
    rows = [("a", np.zeros((9, H, W, 3), np.uint8)), ("b", np.full((1, 64, 64, 3), 255, np.uint8))]
    sheet = contact_sheet(rows, columns=4, scale=2)
    assert sheet.width == 4 * (2 * W + GAP)
    assert sheet.height == 2 * LABEL_HEIGHT + 2 * H + 2 * 64 + 2 * GAP
    assert np.asarray(sheet)[-2 - 64, 64].tolist() == [255, 255, 255]
    with pytest.raises(ValueError):
        contact_sheet([])


def test_other_color_changes_the_color():
    for color in ("red", "blue", "green", "pink", "white"):
        assert modes.other_color(color) != color


def test_quick_run_writes_json_and_table(tmp_path):
    out = tmp_path / "modes.json"
    r = subprocess.run([*SCRIPT, "--quick", "--steps", "1", "--modes", "image,extend,connect,loop,edit", "-o", str(out)],
                       capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    s = res["summary"]
    assert s["image_psnr"]["min_db"] > 28  # frame 0 is the given latent frame: the image after the VAE, exactly
    for mode in ("extend", "connect", "loop", "edit"):
        assert s[mode]["n"] == QUICK_CASES and "| " + mode + " |" in r.stdout
    assert all(len(row["seams"]) == 2 for row in res["cases"]["connect"])
    sheet = Image.open(out.with_suffix(".png"))
    assert sheet.height > 2 * QUICK_CASES * 5 * H  # a row per case and mode, frames magnified 2x


def test_unknown_mode_is_one_line(tmp_path):
    r = subprocess.run([*SCRIPT, "--modes", "warp", "-o", str(tmp_path / "x.json")], capture_output=True, text=True,
                       timeout=120, check=False)  # fmt: skip
    assert r.returncode == 2 and "unknown ['warp']" in r.stderr and "Traceback" not in r.stderr


def test_seams_benchmark_reads_the_input_as_even_and_writes_its_json(tmp_path):
    """benchmarks/seams.py on 3 cases with the bundled VAE: the world's own clips pass the seam measure at a
    latent-frame boundary and inside one; the JSON holds the four phases, both seams for input and round trip, and
    the order probe (each latent frame's frames reversed: a share of the change kept, and of clips)."""
    out = tmp_path / "seams.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "seams.py"), "--cases", "3", "-o", str(out)]
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=180, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "at 17 (boundary)" in result.stdout
    res = json.loads(out.read_text())
    assert len(res["steps_by_phase"]["roundtrip"]) == 4
    assert res["seams"]["input"]["17"]["pass"] == 1.0 and res["seams"]["input"]["19"]["pass"] == 1.0
    assert set(res["seams"]["roundtrip"]) == {"17", "19"}
    order = res["order"]
    assert order["clips"] >= 1 and 0 < order["change_kept"] < 1.5 and 0 <= order["closer_to_reversed"] <= 1
