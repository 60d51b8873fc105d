"""The curation benchmark runs end to end (quick: two short files, one run) and writes its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_curate_benchmark_quick(tmp_path):
    out = tmp_path / "curate.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "curate.py"), "--quick", "--workers", "1", "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert res["throughput"][0]["footage_s_per_s"] > 0 and res["throughput"][0]["clips"] > 0
    assert [c["true_cut"] for c in res["cuts"]] == [50, 96] and all(c["error_frames"] <= 2 for c in res["cuts"])
    assert "footage s / s" in r.stdout
