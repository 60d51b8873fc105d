"""Suite-wide settings. Under pytest-xdist (`make test` runs two workers on this 2-core machine) each worker, and
every process it starts, gets one math thread: two workers with two threads each, plus their subprocesses,
oversubscribed the cores (a sprite sheet that takes 12 s alone took 113 s in the suite; the whole suite 718 s
against 392 s)."""

from __future__ import annotations

import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
