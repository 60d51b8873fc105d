"""Rectified flow: the interpolant and its target, timestep sampling, the SD3 shift, and the given-frame masks.

Time convention (stated here once for the whole project): ``x_t = (1 - t) * x_0 + t * noise``, so t = 0 is data and
t = 1 is pure noise. The network predicts the velocity ``v = noise - x_0 = dx_t/dt``; sampling integrates dx/dt = v
from t = 1 down to t = 0. Latents are (B, C, T, H, W) and every latent frame carries its own t, so t is (B, T). A given
frame (an input image, frames of a clip to extend) sits clean at t = 0 and is left out of the loss (DESIGN.md §3).
"""

from __future__ import annotations

import math
from typing import NamedTuple, TypeVar

import torch
from einops import rearrange
from torch import Tensor

MASK_KINDS = ("none", "first", "prefix", "suffix", "first_last")
DEFAULT_MASK_WEIGHTS = {"none": 0.5, "first": 0.2, "prefix": 0.1, "suffix": 0.1, "first_last": 0.1}

TimeLike = TypeVar("TimeLike", float, Tensor)


def _over_frames(t: Tensor) -> Tensor:
    # (B, T) -> (B, 1, T, 1, 1): a per-frame t broadcast over channels and pixels
    return rearrange(t, "b t -> b 1 t 1 1")


def interpolate(x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
    """The point x_t on the straight line from data (t = 0) to noise (t = 1), one t per latent frame (B, T)."""
    t = _over_frames(t)
    return (1 - t) * x0 + t * noise


def velocity_target(x0: Tensor, noise: Tensor) -> Tensor:
    """What the network learns to predict: dx_t/dt, constant along each straight path."""
    return noise - x0


def data_from_velocity(x_t: Tensor, v: Tensor, t: Tensor) -> Tensor:
    """The clean-data estimate x_0 = x_t - t v implied by a velocity at x_t; t is (B, T)."""
    return x_t - _over_frames(t) * v


def noise_from_velocity(x_t: Tensor, v: Tensor, t: Tensor) -> Tensor:
    """The noise estimate x_t + (1 - t) v implied by a velocity at x_t; t is (B, T)."""
    return x_t + (1 - _over_frames(t)) * v


def video_noise(shape: tuple[int, ...], generator: torch.Generator, shared: float = 0.0, device=None, dtype=None
                ) -> Tensor:
    """Unit-variance Gaussian noise (B, C, T, H, W) whose `shared` part of the variance is one draw common to every
    frame (PYoCo's mixed noise prior): frames start alike, so what the model makes of them stays alike in time. At 0
    it is plain i.i.d. noise, drawn exactly as before the option existed."""
    if not 0.0 <= shared < 1.0:
        raise ValueError(f"shared noise {shared} must be in [0, 1)")
    noise = torch.randn(shape, generator=generator, device=device, dtype=dtype)
    if shared > 0:
        common = torch.randn((shape[0], shape[1], 1, *shape[3:]), generator=generator, device=device, dtype=dtype)
        noise = math.sqrt(1 - shared) * noise + math.sqrt(shared) * common  # (B, C, 1, H, W) broadcast over T
    return noise


def sample_t(batch: int, generator: torch.Generator, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """(B,) training timesteps sigmoid(N(mean, std)) (SD3's logit-normal): most draws in the middle, where it is hard."""
    z = torch.randn(batch, generator=generator, device=generator.device)  # (B,)
    return torch.sigmoid(mean + std * z)


def shift_t(t: TimeLike, shift: float) -> TimeLike:
    """SD3's time shift s t / (1 + (s - 1) t): keeps 0 and 1 fixed, and s > 1 spends more of the schedule near noise."""
    return shift * t / (1 + (shift - 1) * t)


def resolution_shift(
    tokens: int, base_tokens: int = 256, base_shift: float = 1.0, max_tokens: int = 4096, max_shift: float = 3.0
) -> float:
    """The shift for `tokens` latent tokens (patches over all frames): more tokens keep more signal at a given t, so
    they need more time at high noise. As in flux, log(shift) is linear in tokens between the two anchors, clamped."""
    tokens = min(max(tokens, base_tokens), max_tokens)
    slope = (math.log(max_shift) - math.log(base_shift)) / (max_tokens - base_tokens)
    return math.exp(math.log(base_shift) + slope * (tokens - base_tokens))


def schedule(steps: int, shift: float = 1.0, start: float = 1.0) -> Tensor:
    """`steps + 1` float32 times from `start` (1 = pure noise; less for SDEdit) to 0 (data): uniform in the unshifted
    time, then shifted by `shift_t`, so a partial schedule is the tail of the full one's curve."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if not 0.0 < start <= 1.0:
        raise ValueError(f"start must be in (0, 1], got {start}")
    u0 = start / (shift - (shift - 1) * start)  # the inverse of shift_t: shift_t(u0, shift) == start
    ts = shift_t(torch.linspace(u0, 0.0, steps + 1, dtype=torch.float32), shift)
    ts[0] = start  # exact, whatever the float rounding of the inverse
    return ts


def sample_given(
    batch: int, frames: int, generator: torch.Generator, weights: dict[str, float] | None = None
) -> Tensor:
    """A (B, T) bool mask of the latent frames given clean, one kind of MASK_KINDS per row drawn with `weights`.

    At least one frame per row is always generated: one frame (an image) is never given, and first_last falls back
    to first below three frames. Prefix and suffix lengths are uniform in [1, T - 1].
    """
    weights = DEFAULT_MASK_WEIGHTS if weights is None else weights
    unknown = set(weights) - set(MASK_KINDS)
    if unknown:
        raise ValueError(f"unknown mask kinds {sorted(unknown)}; the kinds are {MASK_KINDS}")
    device = generator.device
    probs = torch.tensor([float(weights.get(kind, 0.0)) for kind in MASK_KINDS], device=device)  # (K,)
    if (probs < 0).any() or probs.sum() <= 0:
        raise ValueError(f"mask weights must be non-negative with a positive sum, got {weights}")
    if frames == 1:
        return torch.zeros(batch, 1, dtype=torch.bool, device=device)
    kind = torch.multinomial(probs, batch, replacement=True, generator=generator)  # (B,)
    length = torch.randint(1, frames, (batch, 1), generator=generator, device=device)  # (B, 1)
    f = torch.arange(frames, device=device).expand(batch, frames)  # (B, T)
    first = f == 0
    last = f == frames - 1 if frames > 2 else torch.zeros_like(first)
    masks = torch.stack([torch.zeros_like(first), first, f < length, f >= frames - length, first | last])  # (K, B, T)
    return masks[kind, torch.arange(batch, device=device)]  # (B, T)


def frame_t(t: Tensor, given: Tensor) -> Tensor:
    """Per-sample t (B,) -> per-frame t (B, T), with the given frames at 0 (clean)."""
    return torch.where(given, 0.0, rearrange(t, "b -> b 1"))


def sample_losses(v_pred: Tensor, v_target: Tensor, given: Tensor, weights: Tensor | None = None) -> Tensor:
    """(B,) per-sample MSE over the generated frames only, in fp32: each sample's mean over its frames not given.
    `weights` (B, 1, T, H, W), if given, weigh each latent pixel's error (`motion_weights`)."""
    err = (v_pred.float() - v_target.float()).square()  # (B, C, T, H, W)
    if weights is not None:
        err = err * weights
    keep = _over_frames(~given).expand_as(err)  # (B, C, T, H, W)
    total = torch.where(keep, err, 0.0).sum(dim=(1, 2, 3, 4))  # (B,)
    count = keep.sum(dim=(1, 2, 3, 4)).clamp(min=1)  # (B,)
    return total / count


def flow_loss(v_pred: Tensor, v_target: Tensor, given: Tensor, weights: Tensor | None = None) -> Tensor:
    """Scalar MSE over the generated frames only: the batch mean of `sample_losses`, so a sample counts the same
    however many of its frames are given."""
    return sample_losses(v_pred, v_target, given, weights).mean()


def contrast_loss(v_pred: Tensor, v_wrong: Tensor, v_target: Tensor, given: Tensor, weights: Tensor | None = None,
                  scale: float = 0.05) -> Tensor:
    """(B,) two-way diffusion-classifier loss per sample: its caption should explain the clip better than the same
    caption with a word swapped (left for right). With L the caption's loss and L' the wrong one's (`sample_losses`),
    the logit is (L' - L) / (scale L): each sample costs softplus(-logit), log 2 where the word is unread and near 0
    once the swap costs a few `scale`s of L, so the push on L' is bounded. The plain loss reads direction words only
    after thousands of steps (README, "What the loss sees"); this asks for them directly ("Contrasted captions")."""
    loss = sample_losses(v_pred, v_target, given, weights)  # (B,)
    wrong = sample_losses(v_wrong, v_target, given, weights)  # (B,)
    logit = (wrong - loss) / (scale * loss.detach().clamp(min=1e-6))  # (B,)
    return torch.nn.functional.softplus(-logit)


def temporal_loss(v_pred: Tensor, v_target: Tensor, given: Tensor) -> Tensor:
    """Scalar MSE of the error's change from one latent frame to the next, in fp32. An error shared by every frame
    costs nothing here and one that differs frame to frame (a background redrawn each frame: flicker) costs up to
    twice its plain loss. A given frame's error counts as 0, so the frame beside it pays its whole error (the seam).
    Each sample's mean over its frame pairs with a generated frame, then the batch mean; an image adds 0."""
    err = torch.where(_over_frames(given), 0.0, v_pred.float() - v_target.float())  # (B, C, T, H, W)
    step = (err[:, :, 1:] - err[:, :, :-1]).square()  # (B, C, T - 1, H, W)
    keep = _over_frames(~(given[:, 1:] & given[:, :-1])).expand_as(step)  # (B, C, T - 1, H, W)
    total = torch.where(keep, step, 0.0).sum(dim=(1, 2, 3, 4))  # (B,)
    count = keep.sum(dim=(1, 2, 3, 4)).clamp(min=1)  # (B,)
    return (total / count).mean()


MOTION_FLOOR = 0.05  # latent units: a clip whose mean change per step is under this counts as still


def motion_weights(x0: Tensor, strength: float) -> Tensor:
    """Loss weights (B, 1, T, H, W), mean 1 per sample: 1 + strength x how much each latent pixel changes into or
    out of its frame (over the clip's mean change), renormalized. The plain loss spends nearly all its weight on
    backgrounds, while the prompts are about small moving objects (README, "What the loss sees"); this moves it onto
    them. An image or a still clip gets 1 everywhere."""
    if strength == 0 or x0.shape[2] < 2:
        return torch.ones_like(x0[:, :1], dtype=torch.float32)
    step = (x0[:, :, 1:] - x0[:, :, :-1]).float().abs().mean(1, keepdim=True)  # (B, 1, T - 1, H, W)
    pad = torch.zeros_like(step[:, :, :1])
    change = torch.maximum(torch.cat([pad, step], 2), torch.cat([step, pad], 2))  # (B, 1, T, H, W)
    change = change / change.mean(dim=(2, 3, 4), keepdim=True).clamp(min=MOTION_FLOOR)
    w = 1 + strength * change
    return w / w.mean(dim=(2, 3, 4), keepdim=True)


class TrainingExample(NamedTuple):
    x_t: Tensor  # (B, C, T, H, W) the network's input; given frames equal x0 exactly
    t_frames: Tensor  # (B, T) float32 per-frame t; given frames at 0
    target: Tensor  # (B, C, T, H, W) the velocity to predict
    given: Tensor  # (B, T) bool, the frames left out of the loss


def loss_weights(ex: TrainingExample, motion_weight: float) -> Tensor | None:
    """The training loss's per-pixel weights: `motion_weights` of the clean latents (recovered from x_t and the
    target) at `motion_weight`, or None (plain) at 0."""
    if not motion_weight:
        return None
    return motion_weights(data_from_velocity(ex.x_t, ex.target, ex.t_frames), motion_weight)


def training_loss(
    v_pred: Tensor, ex: TrainingExample, motion_weight: float = 0.0, temporal_weight: float = 0.0
) -> Tensor:
    """What the training loops minimize: `flow_loss` under `loss_weights`, plus `temporal_weight` x
    `temporal_loss`; a weight of 0 leaves its term out with no work done."""
    loss = flow_loss(v_pred, ex.target, ex.given, loss_weights(ex, motion_weight))
    return loss + temporal_weight * temporal_loss(v_pred, ex.target, ex.given) if temporal_weight else loss


def training_example(
    x0: Tensor,
    generator: torch.Generator,
    given: Tensor | None = None,
    t: Tensor | None = None,
    mean: float = 0.0,
    std: float = 1.0,
    shift: float = 1.0,
    shared: float = 0.0,
) -> TrainingExample:
    """One noised batch for the training loop: noise (`shared` of it common to all frames, `video_noise`) and t
    (logit-normal, then shifted) drawn from `generator`, which lives on x0's device. `given` defaults to no frame
    given; a passed per-sample `t` (B,) is used as is."""
    b, _, frames, _, _ = x0.shape
    if given is None:
        given = torch.zeros(b, frames, dtype=torch.bool, device=x0.device)
    if t is None:
        t = shift_t(sample_t(b, generator, mean, std), shift)
    noise = video_noise(x0.shape, generator, shared, x0.device, x0.dtype)  # (B, C, T, H, W)
    t_frames = frame_t(t.to(device=x0.device, dtype=torch.float32), given)  # (B, T)
    x_t = interpolate(x0, noise, t_frames).to(x0.dtype)  # t = 0 on given frames leaves them exactly x0
    return TrainingExample(x_t, t_frames, velocity_target(x0, noise), given)
