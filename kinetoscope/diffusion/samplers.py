"""Samplers: plain functions that integrate dx/dt = v(x, t) along a schedule `ts` from t = 1 (noise) to t = 0 (data).

They share one signature, `(velocity, x, ts, callback=None) -> x`, keep no state between calls, and never see text,
masks or models: guidance and given frames are wrappers around the velocity (`given_frames`, guidance.py).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import torch
from einops import rearrange
from torch import Tensor

from kinetoscope.diffusion.flow import frame_t

# velocity(x, t): x (B, C, T, H, W) and t a 0-d float tensor, the ODE's current time -> v with x's shape
Velocity = Callable[[Tensor, Tensor], Tensor]
Callback = Callable[[int, Tensor], None]  # callback(i, x) after step i
Sampler = Callable[[Velocity, Tensor, Tensor, Callback | None], Tensor]


@torch.no_grad()
def euler(velocity: Velocity, x: Tensor, ts: Tensor, callback: Callback | None = None) -> Tensor:
    """Explicit Euler (first order, one evaluation per step): flux's sampler, exact on a straight path."""
    for i, (t, t_next) in enumerate(pairwise(ts)):
        x = x + (t_next - t) * velocity(x, t)
        if callback:
            callback(i, x)
    return x


@torch.no_grad()
def heun(velocity: Velocity, x: Tensor, ts: Tensor, callback: Callback | None = None) -> Tensor:
    """Heun's method (Karras et al. 2022, Alg. 1): an Euler predictor, then the trapezoid rule with the velocity at
    its end. Second order, two evaluations per step; the velocity is defined at t = 0, so every step is corrected."""
    for i, (t, t_next) in enumerate(pairwise(ts)):
        v = velocity(x, t)
        x_pred = x + (t_next - t) * v
        x = x + (t_next - t) * (v + velocity(x_pred, t_next)) / 2
        if callback:
            callback(i, x)
    return x


@torch.no_grad()
def ab2(velocity: Velocity, x: Tensor, ts: Tensor, callback: Callback | None = None) -> Tensor:
    """Two-step Adams-Bashforth with variable step sizes (Hairer, Norsett & Wanner, Solving ODEs I, §III.5): second
    order for one evaluation per step, extrapolating from this step's and the last step's velocity; the first step is
    Euler."""
    v_prev, h_prev = None, None
    for i, (t, t_next) in enumerate(pairwise(ts)):
        h = t_next - t
        v = velocity(x, t)
        if v_prev is None:
            x = x + h * v
        else:
            r = h / (2 * h_prev)
            x = x + h * ((1 + r) * v - r * v_prev)
        v_prev, h_prev = v, h
        if callback:
            callback(i, x)
    return x


SAMPLERS: dict[str, Sampler] = {"euler": euler, "heun": heun, "ab2": ab2}


def given_frames(velocity: Velocity, given: Tensor) -> Velocity:
    """Wrap `velocity` so the frames marked given (B, T) get v = 0: started clean, they stay bit-identical through any
    sampler. The wrapped velocity must still tell the network those frames sit at t = 0 (see `per_frame_t`)."""
    keep = rearrange(~given, "b t -> b 1 t 1 1")  # (B, 1, T, 1, 1)

    def masked(x: Tensor, t: Tensor) -> Tensor:
        return torch.where(keep, velocity(x, t), 0.0)

    return masked


def per_frame_t(t: Tensor, given: Tensor) -> Tensor:
    """The ODE's current time (0-d) -> the network's per-frame t (B, T), with given frames at 0."""
    return frame_t(t.to(given.device).expand(given.shape[0]), given)
