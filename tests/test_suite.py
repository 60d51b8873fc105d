"""The suite's own safety net: under `make test`'s settings (pyproject's pytest-timeout options, two xdist workers,
whole files per worker) a hung test fails with its stack and the rest of the suite still runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[1]

HUNG = '''import time


def test_hangs():
    time.sleep(120)


def test_after_it():
    pass
'''


def test_a_hung_test_fails_with_its_stack_and_the_rest_still_run(tmp_path):
    (tmp_path / "test_hung.py").write_text(HUNG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}  # not this run's xdist worker
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadfile", "-p", "no:cacheprovider",
                        "-c", str(REPO / "pyproject.toml"), "--rootdir", str(tmp_path), "-o", "timeout=3",
                        str(tmp_path)], capture_output=True, text=True, env=env, timeout=100)  # fmt: skip
    assert "1 failed, 1 passed" in r.stdout, r.stdout[-3000:]
    assert "Timeout (>3.0s) from pytest-timeout" in r.stdout and "time.sleep(120)" in r.stdout, r.stdout[-3000:]
