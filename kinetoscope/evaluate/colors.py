"""Naming colors from pixels: the analyzer's own reference palette over the world's color vocabulary.

Colors are compared in CIE Lab, as lightness L, chroma C and hue angle h. A chromatic vocabulary color is a hue
sector with a chroma floor; white and black are lightness bands with a chroma ceiling. The floors are what keep
muted backgrounds (pale skies, grass, sand, walls, gray floors) unnamed while saturated objects, and their shaded
stripes and highlights, keep their name. Sector edges sit between the hues people give a name to (a lime frog is
green, a vermilion apple is red, a basketball is orange), not halfway between the world's paint colors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kinetoscope.world.vocab import COLORS

UNNAMED = "gray"  # what a muted or neutral tone is called: not a vocabulary color


@dataclass(frozen=True)
class Sector:
    """A chromatic name: Lab hue angles [lo, hi) in degrees (wrapping at 360) and the chroma a pixel needs."""

    name: str
    lo: float
    hi: float
    chroma: float


# Hue sectors (Lab hue, degrees) and chroma floors. Floors are set above the most saturated muted background the
# analyzer should ignore in that hue range (grass reaches C 44 in green, a pale sky C 30 in blue, sea water C 23 in
# cyan, sand and wood C 27 in yellow/orange) and below the world's paint shaded to 0.7 of its brightness.
SECTORS: tuple[Sector, ...] = (
    Sector("red", 10.0, 47.5, 33.0),
    Sector("orange", 47.5, 75.0, 35.0),
    Sector("yellow", 75.0, 104.0, 35.0),
    Sector("green", 104.0, 185.0, 50.0),
    Sector("cyan", 185.0, 255.0, 29.0),
    Sector("blue", 255.0, 308.0, 40.0),
    Sector("purple", 308.0, 335.0, 33.0),
    Sector("pink", 335.0, 10.0, 33.0),
)
WHITE_L, WHITE_C = 88.0, 7.0  # white: at least this light, at most this chroma (clouds are bluish, C ~ 9)
BLACK_L, BLACK_C = 14.0, 8.0  # black: at most this light (dim rooms and night scenes stay above), near neutral

NAMES: tuple[str, ...] = tuple(COLORS)  # index order used by label images
assert set(NAMES) == {s.name for s in SECTORS} | {"white", "black"}, "palette out of step with the vocabulary"
_INDEX = {n: i for i, n in enumerate(NAMES)}


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (..., 3) in 0..255 -> CIE Lab (..., 3) under D65, float32."""
    c = np.asarray(rgb, np.float32) / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array(
        [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]],
        np.float32,
    )
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883], np.float32)
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    lab = np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)
    return lab.astype(np.float32)


def label_pixels(lab: np.ndarray) -> np.ndarray:
    """Per-pixel vocabulary index into NAMES (int8), or -1 where the pixel is muted/neutral (not an object color)."""
    light, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    chroma = np.hypot(a, b)
    hue = np.degrees(np.arctan2(b, a)) % 360.0
    out = np.full(light.shape, -1, np.int8)
    for s in SECTORS:
        inside = (hue >= s.lo) & (hue < s.hi) if s.lo < s.hi else (hue >= s.lo) | (hue < s.hi)
        out[inside & (chroma >= s.chroma)] = _INDEX[s.name]
    out[(light >= WHITE_L) & (chroma <= WHITE_C)] = _INDEX["white"]
    out[(light <= BLACK_L) & (chroma <= BLACK_C)] = _INDEX["black"]
    return out


def name_color(rgb) -> str:
    """The vocabulary name of one sRGB color (0..255), or "gray" for a muted or neutral tone that no object wears."""
    idx = int(label_pixels(rgb_to_lab(np.asarray(rgb, np.float32).reshape(1, 3)))[0])
    return NAMES[idx] if idx >= 0 else UNNAMED


def dominant_colors(frames: np.ndarray, mask: np.ndarray) -> list[tuple[str, float]]:
    """Vocabulary colors of the masked pixels, ranked, with the fraction of the named pixels each one holds.

    frames: uint8 (..., 3); mask: bool of frames.shape[:-1]. Muted pixels (edges blended into the background,
    shading) are left out of the fractions, so a ball with a gray stripe still reads as fully its color.
    """
    labels = label_pixels(rgb_to_lab(np.asarray(frames)[np.asarray(mask, bool)]))
    return rank_labels(labels)


def rank_labels(labels: np.ndarray) -> list[tuple[str, float]]:
    """Ranked (name, fraction) from an array of label indices (-1 ignored)."""
    labels = labels[labels >= 0]
    if labels.size == 0:
        return []
    counts = np.bincount(labels.astype(np.int64), minlength=len(NAMES))
    order = np.argsort(-counts, kind="stable")
    return [(NAMES[i], round(float(counts[i] / labels.size), 4)) for i in order if counts[i] > 0]
