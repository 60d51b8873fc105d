"""The studio benchmarks run end to end in their quick forms and write their JSON."""

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


def test_drama_benchmark_quick(tmp_path):
    res = _run("drama.py", "--quick", out=tmp_path / "drama.json")
    assert res["streams"] == ["video", "audio", "subtitle"] and res["size"] == [256, 448]
    assert res["max_sync_error_ms"] <= 100 and res["reused_on_resume"] == res["shots"]
