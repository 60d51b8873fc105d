"""Cut a sprite out of its flat key background: alpha from the distance to the key color, then despill.

Sprites are generated "on a transparent background", which the model (like the world it learned from) draws as a
flat key color: green, magenta or blue, whichever is farthest from the sprite's colors. The key is read from a ring
just inside the frame's border. A pixel more than CUT Lab units from the key is sprite (hard alpha, as pixel art
wants; ``soft=True`` ramps from NEAR to FAR instead), and the key's share is taken back out of every edge pixel by
its soft coverage (unmixing), so edges do not glow green. Islands of a few pixels (a decoder's stray corner pixel) are
dropped. Measured against world sprites whose true mask is known
(benchmarks/sprites.py): CUT was chosen there, on clips through the VAE.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from kinetoscope.evaluate.colors import rgb_to_lab

CUT = 32.0  # Lab distance from the key past which a pixel is sprite (hard alpha: pixel art has no soft edges)
NEAR, FAR = 18.0, 45.0  # soft alpha: below NEAR fully transparent, above FAR fully opaque
SPECK = 3  # kept islands of at most this many pixels are decoder noise (often a frame's corner pixel), not sprite


def key_color(frames: np.ndarray, inset: int = 2, ring: int = 4) -> np.ndarray:
    """The background key: the median color of a ring ``ring`` pixels wide, ``inset`` pixels in from the frames'
    edges (a decoder's outermost pixels are the least faithful), (3,) uint8."""
    h, w = frames.shape[1:3]
    a, b = min(inset, h // 4), min(inset + ring, h // 3)
    c, d = min(inset, w // 4), min(inset + ring, w // 3)
    parts = [frames[:, a:b, c : w - c], frames[:, h - b : h - a, c : w - c], frames[:, b : h - b, c:d],
             frames[:, b : h - b, w - d : w - c]]  # fmt: skip
    return np.median(np.concatenate([p.reshape(-1, 3) for p in parts]), axis=0).round().astype(np.uint8)


def key_distance(frames: np.ndarray, key: np.ndarray) -> np.ndarray:
    """(T, H, W) Lab distance of every pixel from the key color."""
    key_lab = rgb_to_lab(key[None, None, None].astype(np.uint8))[0, 0, 0]
    return np.linalg.norm(rgb_to_lab(frames) - key_lab, axis=-1)


def matte(frames: np.ndarray, key: np.ndarray | None = None, soft: bool = False) -> np.ndarray:
    """(T, H, W, 3) uint8 on a key color -> (T, H, W, 4) uint8 RGBA with the key cut out and despilled.

    Alpha is hard (0 or 255 at CUT) unless ``soft``; either way each kept pixel's color is unmixed from the key by
    its soft coverage, so an edge pixel that was half key color does not stay greenish."""
    key = key_color(frames) if key is None else key
    d = key_distance(frames, key)  # (T, H, W)
    alpha = _coverage(d) if soft else (d > CUT).astype(np.float32)
    alpha = np.where(despeckle(alpha > 0), alpha, 0)
    rgb = np.where(alpha[..., None] > 0, unmix(frames, key, d), 0)
    return np.concatenate([rgb, alpha[..., None] * 255], axis=-1).round().astype(np.uint8)


def unmix(frames: np.ndarray, key: np.ndarray, d: np.ndarray | None = None) -> np.ndarray:
    """(T, H, W, 3) float colors of every pixel with the key's share taken out by its soft coverage, then despilled:
    what `matte` keeps, for pixels it would cut too (a recolored sprite inside an older alpha). `d`: key_distance."""
    coverage = _coverage(key_distance(frames, key) if d is None else d)[..., None]
    unmixed = (frames.astype(np.float32) - (1 - coverage) * key.astype(np.float32)) / np.maximum(coverage, 0.25)
    return despill(np.clip(unmixed, 0, 255), key)


def _coverage(d: np.ndarray) -> np.ndarray:
    """How much of each pixel is sprite, 0..1, from its Lab distance to the key (NEAR to FAR)."""
    return np.clip((d - NEAR) / (FAR - NEAR), 0, 1)


def despeckle(kept: np.ndarray) -> np.ndarray:
    """(T, H, W) bool with every 8-connected island of at most SPECK pixels cleared, frame by frame."""
    out = kept.copy()
    for frame in out:
        labels, n = ndi.label(frame, structure=np.ones((3, 3), bool))
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        frame[(sizes <= SPECK)[labels] & frame] = False
    return out


def despill(rgb: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Classic despill: the key's own channels may not rise above the others (green key: g <= max(r, b); magenta:
    min(r, b) <= g; blue: b <= max(r, g)), which removes the key's glow from edges without touching other hues."""
    hot = key.astype(int) > 127  # the key's channels
    if hot.all() or not hot.any():
        return rgb
    cold = rgb[..., ~hot].max(axis=-1, keepdims=True)  # the brightest channel the key does not light
    excess = np.clip(rgb[..., hot].min(axis=-1, keepdims=True) - cold, 0, None)
    out = rgb.copy()
    out[..., hot] -= excess
    return out
