"""The generation benchmark runs end to end in its quick form and writes every table's numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_quick_run_measures_sizes_samplers_cold_start_and_the_peer(tmp_path):
    out = tmp_path / "generation.json"
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "generation.py"), "--quick", "-o", str(out)],
                       capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["sizes"][0]["wall_s"] > 0 and res["sizes"][0]["peak_rss_mb"] > 100
    assert res["samplers"][0]["sampler"] == "euler" and res["realtime_default"] > 0
    assert 0 < res["cold_start"]["first_frame_s"] <= res["cold_start"]["exit_s"]
    peer = res["peer"][0]
    assert peer["ours_ms"] > 0 and peer["wan_ms"] > 0 and peer["wan_over_ours"] > 0
    assert abs(peer["ours_params"] - peer["wan_params"]) / peer["ours_params"] < 0.2  # the same size, give or take
    assert "| DiT forward" in r.stdout and res["grid"][0]["wall_s"] > 0
