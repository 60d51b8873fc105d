"""`kinetoscope eval`: the quick suite end to end on the bundled model (JSON, Markdown, contact sheet), its rates'
intervals, and a bad suite name refused before any model loads."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from kinetoscope.evaluate.suites import SUITES, wilson

KINETOSCOPE = [sys.executable, "-m", "kinetoscope"]


def test_wilson_interval_brackets_the_rate():
    lo, hi = wilson(49, 100)
    assert lo < 0.49 < hi and hi - lo == pytest.approx(0.19, abs=0.01)
    assert wilson(0, 5)[0] == 0 and wilson(5, 5)[1] == pytest.approx(1.0)
    assert wilson(0, 0) is None


def test_quick_suite_writes_report_table_and_sheet(tmp_path):
    out = tmp_path / "report.json"
    r = subprocess.run([*KINETOSCOPE, "eval", "--suite", "quick", "-o", str(out), "-q"], capture_output=True,
                       text=True, timeout=600, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    quick = SUITES["quick"]
    assert report["adherence"]["summary"]["color"]["n"] == quick.adherence
    assert len(report["consistency"]["clips"]) == quick.adherence
    assert all(len(rows) == quick.modes for rows in report["modes"]["cases"].values())
    assert {r["source"] for r in report["reconstruction"]} == {"world", "real", "photo"}
    assert report["modes"]["summary"]["image_psnr"]["min_db"] > 28
    md = out.with_suffix(".md").read_text()
    assert "| color |" in md and "| reconstruction (held-out) |" in md and md == r.stdout
    sheet = Image.open(out.with_suffix(".png"))
    assert sheet.width > 12 * 64 and sheet.height > 6 * 112


def test_unknown_suite_is_one_line(tmp_path):
    r = subprocess.run([*KINETOSCOPE, "eval", "--suite", "huge", "-o", str(tmp_path / "r.json")], capture_output=True,
                       text=True, timeout=60, check=False)  # fmt: skip
    assert r.returncode == 2 and "the suites are quick, full" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "r.json").exists()
