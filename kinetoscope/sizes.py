"""The size grid every clip lives on: height and width multiples of 16, frames ``1 + 4k``.

A request off the grid is rounded to the nearest valid size with a warning; a request past the limits is refused
with a :class:`SizeError` that names the limit (DESIGN.md §6).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from kinetoscope.errors import SizeError

SPATIAL_MULTIPLE = 16  # the VAE's 8x times the DiT's 2x patch
TEMPORAL_MULTIPLE = 4  # the VAE's 4x in time; the first frame is encoded alone, hence 1 + 4k


@dataclass(frozen=True)
class Limits:
    """The largest request accepted; the defaults fit this 2-core, 24 GiB machine."""

    min_side: int = 16
    max_side: int = 2048
    max_frames: int = 1 + 4 * 1024
    max_voxels: int = 1280 * 720 * 257  # height x width x frames


DEFAULT_LIMITS = Limits()


def is_valid_frames(frames: int) -> bool:
    return frames >= 1 and (frames - 1) % TEMPORAL_MULTIPLE == 0


def check_size(height: int, width: int, frames: int, limits: Limits = DEFAULT_LIMITS) -> None:
    """Raise SizeError unless (height, width, frames) is on the grid and inside the limits."""
    for name, side in (("height", height), ("width", width)):
        if side % SPATIAL_MULTIPLE:
            raise SizeError(f"{name} {side} is not a multiple of {SPATIAL_MULTIPLE}")
        if not limits.min_side <= side <= limits.max_side:
            raise SizeError(f"{name} {side} is outside {limits.min_side}..{limits.max_side}")
    if not is_valid_frames(frames):
        raise SizeError(f"frames {frames} is not 1 + {TEMPORAL_MULTIPLE}k (1, 5, 9, 13, 17, ...)")
    if frames > limits.max_frames:
        raise SizeError(f"frames {frames} is past the limit of {limits.max_frames}")
    if height * width * frames > limits.max_voxels:
        raise SizeError(
            f"{width}x{height}x{frames} frames is {height * width * frames:,} voxels, past the limit of "
            f"{limits.max_voxels:,}"
        )


def round_size(height: int, width: int, frames: int, limits: Limits = DEFAULT_LIMITS) -> tuple[int, int, int]:
    """Round a request to the nearest size on the grid (warning when it moved), then check the limits."""
    if height <= 0 or width <= 0 or frames <= 0:
        raise SizeError(f"size {width}x{height}x{frames} frames must be positive")
    h = max(SPATIAL_MULTIPLE, round(height / SPATIAL_MULTIPLE) * SPATIAL_MULTIPLE)
    w = max(SPATIAL_MULTIPLE, round(width / SPATIAL_MULTIPLE) * SPATIAL_MULTIPLE)
    f = 1 + max(0, round((frames - 1) / TEMPORAL_MULTIPLE)) * TEMPORAL_MULTIPLE
    if (h, w, f) != (height, width, frames):
        warnings.warn(f"size {width}x{height}x{frames} rounded to {w}x{h}x{f} (sides multiples of 16, frames 1+4k)")
    check_size(h, w, f, limits)
    return h, w, f


def parse_aspect(aspect: str) -> float:
    """'16:9' -> width / height."""
    try:
        a, b = (float(p) for p in aspect.split(":"))
    except ValueError:
        raise SizeError(f"aspect {aspect!r} is not of the form W:H, e.g. 16:9") from None
    if a <= 0 or b <= 0:
        raise SizeError(f"aspect {aspect!r} must have positive sides")
    return a / b
