"""Scores for a curated clip, the filters built on them, and near-duplicate detection across clips.

Every score is computed on small gray thumbnails of the normalized clip (THUMB_SHORT pixels on the short side), so
it costs little next to decoding and means the same at every bucket size:

- ``brightness``: mean luma, 0..1; ``dark``: share of pixels under luma 16; ``blown``: share over 240.
- ``motion``: how far the moving part of the picture travels, in short sides per second: the 95th percentile of the
  Farneback optical-flow magnitude per frame pair, averaged. Zero for a still shot; a walker across a street scene
  is ~0.05-0.2; a fast pan ~1.
- ``flicker``: frame-to-frame brightness jumps that motion does not explain: the mean absolute second difference of
  the per-frame mean luma, in luma levels (0..255).
A clip's ``signature`` (SIG_FRAMES thumbnails of SIG_SIDE^2 pixels, evenly spread in time) finds near-duplicates: two
clips are copies when the aligned thumbnails differ by at most DUP_LEVELS at their 99th-percentile pixel, so
re-encodes and rescales of one shot match while two moments of one static-camera scene (people elsewhere) do not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise

import cv2
import numpy as np

THUMB_SHORT = 64
SIG_FRAMES, SIG_SIDE = 8, 16
DUP_LEVELS = 10.0


@dataclass(frozen=True)
class Thresholds:
    """Where a clip is rejected; each limit matches a score of the same name (see the module docstring)."""

    max_dark: float = 0.9  # too dark: more than this share of pixels under luma 16
    max_blown: float = 0.8  # blown out: more than this share over luma 240
    min_motion: float = 0.02  # static: the moving part travels under 2% of the short side per second
    max_flicker: float = 8.0  # flicker: mean brightness jumps of more than 8 luma levels a frame
    dup_levels: float = DUP_LEVELS  # near-duplicate: thumbnails within this many levels (99th percentile)


@dataclass(frozen=True)
class Scores:
    brightness: float
    dark: float
    blown: float
    motion: float
    flicker: float

    def to_json(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in asdict(self).items()}


def thumbnails(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB -> (T, h, w) uint8 luma with short side THUMB_SHORT (never upscaled)."""
    h, w = frames.shape[1:3]
    k = min(1.0, THUMB_SHORT / min(h, w))
    size = (max(8, round(w * k)), max(8, round(h * k)))
    return np.stack([cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA)
                     for f in frames])  # fmt: skip


def score(thumbs: np.ndarray, fps: float) -> Scores:
    """Scores of a clip from its (T, h, w) luma thumbnails shown at ``fps``."""
    x = thumbs.astype(np.float32)
    luma = x.reshape(len(x), -1).mean(1)  # (T,)
    flicker = float(np.abs(luma[1:-1] - (luma[:-2] + luma[2:]) / 2).mean()) if len(luma) > 2 else 0.0
    return Scores(
        brightness=float(luma.mean() / 255),
        dark=float((thumbs < 16).mean()),
        blown=float((thumbs > 240).mean()),
        motion=_motion(thumbs, fps),
        flicker=flicker,
    )


def _motion(thumbs: np.ndarray, fps: float) -> float:
    if len(thumbs) < 2:
        return 0.0
    short = min(thumbs.shape[1:])
    speeds = []
    for a, b in pairwise(thumbs):
        flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 9, 3, 5, 1.1, 0)  # (h, w, 2) pixels
        speeds.append(np.percentile(np.hypot(flow[..., 0], flow[..., 1]), 95))
    return float(np.mean(speeds) * fps / short)


def verdict(s: Scores, limits: Thresholds) -> str | None:
    """The reason a clip is rejected ("dark", "blown out", "static", "flicker"), or None to keep it."""
    if s.dark > limits.max_dark:
        return "dark"
    if s.blown > limits.max_blown:
        return "blown out"
    if s.flicker > limits.max_flicker:
        return "flicker"
    if s.motion < limits.min_motion:
        return "static"
    return None


def signature(thumbs: np.ndarray) -> np.ndarray:
    """(SIG_FRAMES, SIG_SIDE, SIG_SIDE) uint8: SIG_FRAMES thumbnails evenly spread over the clip."""
    idx = np.linspace(0, len(thumbs) - 1, SIG_FRAMES).round().astype(int)
    return np.stack([cv2.resize(thumbs[i], (SIG_SIDE, SIG_SIDE), interpolation=cv2.INTER_AREA) for i in idx])


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Near-duplicate distance of two signatures: the 99th percentile of the absolute pixel difference, in levels."""
    return float(np.percentile(np.abs(a.astype(np.int16) - b.astype(np.int16)), 99))


def near_duplicates(signatures: Sequence[np.ndarray], levels: float = DUP_LEVELS) -> tuple[list[int | None], list[float]]:
    """For clips in priority order: the index of the earlier kept clip each one copies (None if it is kept), and each
    clip's distance to its nearest other clip, capped at 4 x ``levels`` (a score users can filter on later).

    Pairs whose mean frames already differ by more than ``levels`` at their 90th-percentile pixel are not compared in
    full; they count as the cap.
    """
    cap = 4 * levels
    n = len(signatures)
    sig = np.stack(signatures).astype(np.int16) if n else np.zeros((0, SIG_FRAMES, SIG_SIDE, SIG_SIDE), np.int16)
    means = sig.mean(1).reshape(n, -1)  # (N, S*S)
    nearest = np.full(n, cap)
    copy_of: list[int | None] = [None] * n
    for i in range(1, n):
        close = np.percentile(np.abs(means[:i] - means[i]), 90, axis=1) <= levels  # (i,)
        for j in np.flatnonzero(close):
            d = distance(sig[i], sig[j])
            nearest[i], nearest[j] = min(nearest[i], d), min(nearest[j], d)
            if d <= levels and copy_of[i] is None and copy_of[j] is None:
                copy_of[i] = int(j)
    return copy_of, nearest.tolist()
