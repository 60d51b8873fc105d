"""What the benchmark scripts share: the machine's description, best-of timing, and writing a result."""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch


def machine() -> dict:
    """When and where a benchmark ran: date, CPU, threads, torch, and the load when it started."""
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_avg_at_start": os.getloadavg(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of `repeats` timed calls (seconds), after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def write_result(res: dict, output: str | Path, table: str) -> int:
    """Write the result JSON (folders created), print its table, name the file on stderr; exit code 0."""
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(table)
    print(f"\nwrote {out}", file=sys.stderr)
    return 0
