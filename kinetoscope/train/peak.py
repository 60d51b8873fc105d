"""The machine's measured bf16 matmul peak: the denominator of the MFU the training loops print."""

from __future__ import annotations

import time

import torch

_PEAK: dict[str, float] = {}


def matmul_peak(n: int = 1024, repeats: int = 8) -> float:
    """FLOP/s of a square bf16 matmul on this machine (best of `repeats`), measured once per process."""
    if "bf16" not in _PEAK:
        a, b = torch.randn(n, n, dtype=torch.bfloat16), torch.randn(n, n, dtype=torch.bfloat16)
        a @ b  # warm up
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t0)
        _PEAK["bf16"] = 2 * n**3 / best
    return _PEAK["bf16"]
