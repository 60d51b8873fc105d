"""Suite-wide settings. Under pytest-xdist (`make test` runs two workers on this 2-core machine) each worker, and
every process it starts, gets one math thread: two workers with two threads each, plus their subprocesses,
oversubscribed the cores (a sprite sheet that takes 12 s alone took 113 s in the suite; the whole suite 718 s
against 392 s). The helpers below start servers and torchrun jobs the same way in every test file."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def free_port() -> int:
    """A TCP port nothing listens on now (the kernel's pick), for a server or torchrun's store."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(procs: int, *args: str) -> list[str]:
    """`torchrun --nproc_per_node PROCS` on a free port (a fixed port can be taken by another test's socket)."""
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(procs),
            "--master_port", str(free_port()), *args]  # fmt: skip


def start(cmd: list[str]) -> subprocess.Popen:
    """CMD in its own session with one math thread per process and faulthandler on, so `finish` can make every
    process in it print its Python stacks."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)  # fmt: skip


def finish(p: subprocess.Popen, timeout: float = 300) -> subprocess.CompletedProcess:
    """Wait for a `start`ed command; past TIMEOUT every process in its session dumps its stacks (SIGABRT) and the
    test fails showing them: a hung collective says where it hung instead of only that it timed out."""
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        tree = kill_tree(p, signal.SIGABRT)
        time.sleep(3)
        kill_tree(p, signal.SIGKILL, tree)
        out, err = p.communicate(timeout=30)  # bounded: a process that escaped the tree may still hold the pipes
        pytest.fail(f"{' '.join(p.args[2:6])} ... still running after {timeout:.0f} s; its stacks:\n{err[-8000:]}")
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def kill_tree(p: subprocess.Popen, sig: int, tree: list[int] | None = None) -> list[int]:
    """Send SIG to a started command and every process below it (or to TREE, found before); returns the pids. A
    process group is not enough: torchrun starts each worker in a session of its own, and killing torchrun alone
    leaves its workers running."""
    tree = tree or [p.pid, *_descendants(p.pid)]
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    return tree


def _descendants(pid: int) -> list[int]:
    """Every live process below PID (from /proc's parent links), children before grandchildren."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        found += frontier
    return found
