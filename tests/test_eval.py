"""`kinetoscope eval`: the quick suite end to end on the bundled model (JSON, Markdown, contact sheet), its rates'
intervals, and a bad suite name refused before any model loads."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from kinetoscope.evaluate.physics import GIVEN, _errors, _score, draw_physics_cases, scenario_of
from kinetoscope.evaluate.suites import SUITES, wilson

KINETOSCOPE = [sys.executable, "-m", "kinetoscope"]


def test_wilson_interval_brackets_the_rate():
    lo, hi = wilson(49, 100)
    assert lo < 0.49 < hi and hi - lo == pytest.approx(0.19, abs=0.01)
    assert wilson(0, 5)[0] == 0 and wilson(5, 5)[1] == pytest.approx(1.0)
    assert wilson(0, 0) is None


@pytest.fixture(scope="module")
def bounce():
    return next(c for c in draw_physics_cases(1, ("in",)) if c.scenario == "bounce")


def test_physics_scores_the_world_at_100_and_a_frozen_clip_near_0(bounce):
    clip = bounce.clip
    floor = _errors(clip.frames, clip.script, clip.fps)
    assert floor["velocity"] < 0.1 and floor["acceleration"] < 0.15
    assert _score(floor["velocity"], floor["velocity"]) == 1.0
    frozen = clip.frames.copy()
    frozen[GIVEN:] = frozen[GIVEN - 1]  # the object stops dead where the given frames end
    stuck = _errors(frozen, clip.script, clip.fps)
    assert _score(floor["velocity"], stuck["velocity"]) < 0.3
    assert _score(floor["acceleration"], stuck["acceleration"]) < 0.3


def test_scenarios_are_recognized(bounce):
    assert scenario_of(bounce.clip.script) == "bounce"
    moving = {**bounce.clip.script, "camera": {**bounce.clip.script["camera"], "motion": "pans left"}}
    assert scenario_of(moving) is None


def test_quick_suite_writes_report_table_and_sheet(tmp_path):
    out = tmp_path / "report.json"
    r = subprocess.run([*KINETOSCOPE, "eval", "--suite", "quick", "--steps", "2", "-o", str(out), "-q"], capture_output=True,
                       text=True, timeout=600, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    quick = SUITES["quick"]
    assert report["settings"]["steps"] == 2
    assert report["adherence"]["summary"]["color"]["n"] == quick.adherence
    assert len(report["consistency"]["clips"]) == quick.adherence
    assert all(len(rows) == quick.modes for rows in report["modes"]["cases"].values())
    assert {r["source"] for r in report["reconstruction"]} == {"world", "real", "photo"}
    physics = report["physics"]["summary"]
    assert set(physics) == {"in/uniform", "in/parabola", "in/bounce", "in/collision"}
    assert all(0 <= r["velocity_score"] <= 1 for r in physics.values())
    assert report["modes"]["summary"]["image_psnr"]["min_db"] > 28
    md = out.with_suffix(".md").read_text()
    assert "| color |" in md and "| reconstruction (held-out) |" in md and "| in/bounce |" in md and md == r.stdout
    sheet = Image.open(out.with_suffix(".png"))
    assert sheet.width > 12 * 64 and sheet.height > 6 * 112


def test_unknown_suite_is_one_line(tmp_path):
    r = subprocess.run([*KINETOSCOPE, "eval", "--suite", "huge", "-o", str(tmp_path / "r.json")], capture_output=True,
                       text=True, timeout=60, check=False)  # fmt: skip
    assert r.returncode == 2 and "the suites are quick, full" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "r.json").exists()
