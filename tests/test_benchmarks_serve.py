"""The serving benchmark runs end to end (quick: three short jobs, one worker) and writes its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_serve_benchmark_quick(tmp_path):
    out = tmp_path / "serve.json"
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "serve.py"), "--quick", "-o", str(out)],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    row = json.loads(out.read_text())["rows"][0]
    assert row["jobs"] == 3 and row["jobs_per_min"] > 0 and row["get_p50_ms"] > 0
    assert "jobs/min" in r.stdout
