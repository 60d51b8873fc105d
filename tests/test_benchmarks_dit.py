"""The DiT benchmark runs end to end (quick: two buckets, one repeat) and writes its JSON; the loss probe runs and
reads what the bundled DiT reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_dit_benchmark_quick(tmp_path):
    out = tmp_path / "dit.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "dit.py"), "--quick", "--preset", "tiny,tiny", "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert len(res["train_steps"]) == 2 and all(0 < row["mfu"] < 1 for row in res["train_steps"])
    assert all(row["plain_ms"] > 0 and row["sdpa_ms"] > 0 for row in res["attention"])
    assert "MFU" in r.stdout and set(res["presets"]) == {"tiny"}


def test_loss_probe_reads_the_bundled_models_color_words(tmp_path):
    out = tmp_path / "probe.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "loss_probe.py"), "--data", "discs", "--clips", "32",
           "--steps", "0", "--init", "-o", str(out)]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    (row,) = res["curve"]
    assert res["settings"]["probe_clips"] == 4 and len(row["direction"]) == len(row["color"]) == 3
    assert row["color"][0]["plain"] > 1.0  # the bundled DiT reads color words: a wrong color costs loss
    assert "Loss probe" in r.stdout
