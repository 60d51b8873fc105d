"""The VAE benchmark runs end to end (quick grid, tiny preset, a fresh subprocess per configuration) and writes
the JSON the report is built from."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytest.importorskip("diffusers")


@pytest.mark.slow
def test_quick_benchmark_writes_json(tmp_path):
    out = tmp_path / "vae.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "vae.py"), "--quick", "--preset", "tiny", "-o", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "| size |" in result.stdout
    res = json.loads(out.read_text())
    assert {"machine", "params", "wan_config", "speed", "ours_vs_wan", "stream"} <= res.keys()
    assert {"cpu", "threads", "torch", "date"} <= res["machine"].keys()
    assert res["params"]["ours"] > 0 and res["params"]["wan"] > 0
    measured = [r for r in res["speed"]["oneshot"] if "encode_fps" in r]
    assert {(r["size"], r["dtype"]) for r in measured} == {(64, "fp32"), (64, "bf16"), (128, "fp32"), (128, "bf16")}
    assert all(r["peak_rss_mb"] > 0 and r["encdec_fps"] > 0 for r in measured)
    assert res["ours_vs_wan"] and {"speed_ratio", "peak_ratio"} <= res["ours_vs_wan"][0].keys()
    assert res["stream"]["peak_ratio"] > 0
