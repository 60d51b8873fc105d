"""Editing a clip by what two prompts differ in: FlowEdit's path, kept to the latent pixels where the prompts disagree.

FlowEdit (Kulikov et al. 2024, "Inversion-Free Text-Based Editing Using Pre-Trained Flow Models") walks from the source
latent straight toward the target without inverting it: at each time t it noises the source with fresh noise, shifts
the edited latent by the same noise, and moves by the difference of the two velocities, target prompt minus source
prompt. Where the prompts agree that difference is ~0, so the clip stays as it was; no sampler starts from noise.
DiffEdit (Couairon et al. 2022) supplies the mask: the latent pixels where the two prompts' predictions differ most.
Both take velocities as the samplers do, `velocity(x, t)`, with guidance already wrapped around them.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import torch
from einops import reduce
from torch import Tensor

from kinetoscope.diffusion.samplers import Callback, Velocity

Noise = Callable[[], Tensor]  # a fresh standard-normal draw with the latent's shape, from a seeded generator


@torch.no_grad()
def edit_mask(source: Velocity, target: Velocity, x: Tensor, noise: Noise, t: float = 0.5, draws: int = 4,
              threshold: float = 0.5) -> Tensor:
    """Where the edit may change the latent x (B, C, T, H, W): the pixels whose velocity difference (target minus
    source prompt, averaged over channels and `draws` noisings of x at t) is at least `threshold` of the frame's
    largest. Returns a float mask (B, 1, T, H, W) of 0 and 1, so every frame keeps its changing part."""
    at = torch.tensor(t)
    diff = torch.zeros_like(x[:, :1])
    for _ in range(draws):
        x_t = (1 - t) * x + t * noise()
        diff += reduce((target(x_t, at) - source(x_t, at)).abs(), "b c t h w -> b 1 t h w", "mean")
    peak = reduce(diff, "b 1 t h w -> b 1 t 1 1", "max").clamp_min(1e-12)
    return (diff >= threshold * peak).float()


@torch.no_grad()
def flow_edit(source: Velocity, target: Velocity, x: Tensor, ts: Tensor, noise: Noise, mask: Tensor | float = 1.0,
              callback: Callback | None = None) -> Tensor:
    """FlowEdit from the source latent x (B, C, T, H, W) along the schedule `ts` (t_max down to 0), each step moved
    only inside `mask`. At t_max = 1 the whole path is walked; smaller t_max keeps more of the source's layout."""
    z = x.clone()
    for i, (t, t_next) in enumerate(pairwise(ts)):
        x_t = (1 - t) * x + t * noise()  # the source, noised afresh each step
        z_t = x_t + (z - x)  # the edit, carried by the same noise (exactly x_t while nothing has changed)
        z = z + (t_next - t) * mask * (target(z_t, t) - source(x_t, t))
        if callback:
            callback(i, z)
    return z
