"""The benchmarks of the apps (curation, serving, the drama and sprite studios) run end to end in their quick
forms and write their JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str, out: Path) -> dict:
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args, "-o", str(out)], cwd=REPO,
                       capture_output=True, text=True, timeout=400)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return json.loads(out.read_text())


def test_sprites_benchmark_quick(tmp_path):
    res = _run("sprites.py", "--quick", out=tmp_path / "sprites.json")
    assert len(res["sheets"]) == 4 and res["loops"] and res["matte"]["raw"]["mean"] == 1.0
    assert {m["animation"] for m in res["motion"]} >= {"idle", "walk", "jump", "attack"}
    assert res["world_motion"]["jump"]["rise"] > 4 * res["world_motion"]["idle"]["rise"]  # the world's jumps do rise


def test_drama_benchmark_quick(tmp_path):
    res = _run("drama.py", "--quick", out=tmp_path / "drama.json")
    assert res["streams"] == ["video", "audio", "subtitle"] and res["size"] == [256, 448]
    assert res["max_sync_error_ms"] <= 100 and res["reused_on_resume"] == res["shots"]


def test_curate_benchmark_quick(tmp_path):
    res = _run("curate.py", "--quick", "--workers", "1", out=tmp_path / "curate.json")
    assert res["throughput"][0]["footage_s_per_s"] > 0 and res["throughput"][0]["clips"] > 0
    assert [c["true_cut"] for c in res["cuts"]] == [50, 96] and all(c["error_frames"] <= 2 for c in res["cuts"])


def test_serve_benchmark_quick(tmp_path):
    row = _run("serve.py", "--quick", out=tmp_path / "serve.json")["rows"][0]
    assert row["jobs"] == 3 and row["jobs_per_min"] > 0 and row["get_p50_ms"] > 0
