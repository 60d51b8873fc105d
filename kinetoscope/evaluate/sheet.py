"""Contact sheets: a grid of frames, one labeled row per clip, so a person can look at what a benchmark scored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

LABEL_HEIGHT = 14  # pixels of caption strip above each row
GAP = 2  # pixels between frames and rows


def contact_sheet(rows: list[tuple[str, np.ndarray]], columns: int = 8, scale: int = 2) -> Image.Image:
    """One row per (label, frames (T, H, W, 3) uint8): `columns` frames evenly spaced from first to last, each
    magnified `scale` times (nearest neighbor, so pixels stay pixels), under the label. Rows may differ in size."""
    if not rows:
        raise ValueError("a contact sheet needs at least one clip")
    cells = []
    for label, frames in rows:
        if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
            raise ValueError(f"{label!r}: frames must be (T, H, W, 3), got {frames.shape}")
        picks = np.unique(np.linspace(0, len(frames) - 1, min(columns, len(frames))).round().astype(int))
        cells.append((label, [np.repeat(np.repeat(frames[i], scale, 0), scale, 1) for i in picks]))
    width = max(sum(c.shape[1] + GAP for c in row) for _, row in cells)
    height = sum(LABEL_HEIGHT + max(c.shape[0] for c in row) + GAP for _, row in cells)
    sheet = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    y = 0
    for label, row in cells:
        draw.text((2, y + 1), label[:width // 6], fill=(230, 230, 230))
        y += LABEL_HEIGHT
        x = 0
        for c in row:
            sheet.paste(Image.fromarray(c), (x, y))
            x += c.shape[1] + GAP
        y += max(c.shape[0] for c in row) + GAP
    return sheet


def save_sheet(rows: list[tuple[str, np.ndarray]], path: str | Path, columns: int = 8, scale: int = 2) -> Path:
    """Write the contact sheet of `rows` as a PNG at `path` (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(rows, columns, scale).save(path)
    return path
