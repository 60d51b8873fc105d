"""The DiT benchmark runs end to end (quick: two buckets, one repeat) and writes its JSON."""

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
