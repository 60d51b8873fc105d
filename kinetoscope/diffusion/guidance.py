"""Classifier-free guidance as a wrapper around the velocity: the model and the samplers never branch on it."""

from __future__ import annotations

import torch

from kinetoscope.diffusion.samplers import Velocity


def classifier_free(batched: Velocity, scale: float) -> Velocity:
    """Guide with v_u + scale (v_c - v_u). `batched` takes the doubled batch cat([x, x]) and returns the conditional
    velocities in its first half, the unconditional in its second, in one forward; scale 1 still runs both halves."""

    def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        v_c, v_u = batched(torch.cat([x, x]), t).chunk(2)  # (B, C, T, H, W) each
        return v_u + scale * (v_c - v_u)

    return guided
