"""The machine's measured bf16 matmul peak: the denominator of the MFU the training loops print."""

from __future__ import annotations

import time

import torch

_PEAK: dict[str, float] = {}


def matmul_peak(n: int = 1024, repeats: int = 8, device: str = "cpu") -> float:
    """FLOP/s of a square bf16 matmul on ``device`` (best of `repeats`), measured once per process and device."""
    if device not in _PEAK:
        a = torch.randn(n, n, dtype=torch.bfloat16, device=device)
        b = torch.randn(n, n, dtype=torch.bfloat16, device=device)
        a @ b  # warm up
        best = float("inf")
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            a @ b
            _sync(device)
            best = min(best, time.perf_counter() - t0)
        _PEAK[device] = 2 * n**3 / best
    return _PEAK[device]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
