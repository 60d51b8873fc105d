"""Subtitles three ways: burned into the frames (a font that covers Chinese), an ``.srt`` sidecar, and a soft
``mov_text`` track in the MP4 (studio/mux.py)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from kinetoscope.errors import KinetoscopeError

FONTS = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc")


@dataclass(frozen=True)
class Cue:
    """One subtitle: on screen from ``start`` to ``end`` seconds (exactly when its line is spoken)."""

    start: float
    end: float
    text: str
    who: str = ""


def srt(cues: list[Cue]) -> str:
    """SubRip text: numbered cues with HH:MM:SS,mmm timings."""

    def stamp(t: float) -> str:
        ms = round(t * 1000)
        return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    return "".join(f"{i}\n{stamp(c.start)} --> {stamp(c.end)}\n{c.text}\n\n" for i, c in enumerate(cues, 1))


def parse_srt(text: str) -> list[Cue]:
    """Cues back from SubRip text (for tests and for editing round trips)."""

    def seconds(stamp: str) -> float:
        h, m, rest = stamp.strip().split(":")
        s, ms = rest.split(",")
        return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000

    cues = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        if len(lines) >= 3:
            a, b = lines[1].split("-->")
            cues.append(Cue(seconds(a), seconds(b), "\n".join(lines[2:])))
    return cues


@cache
def font(size: int) -> ImageFont.FreeTypeFont:
    path = next((p for p in FONTS if Path(p).exists()), None)
    if path is None:
        raise KinetoscopeError("the Noto CJK font is missing: `apt-get install fonts-noto-cjk` "
                               "(scripts/install-system-deps.sh)")  # fmt: skip
    return ImageFont.truetype(path, size)


def _wrap(text: str, f: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Greedy wrap by width; text without spaces (Chinese) wraps between characters."""
    units = text.split(" ") if " " in text else list(text)
    glue = " " if " " in text else ""
    lines, line = [], ""
    for u in units:
        trial = f"{line}{glue}{u}" if line else u
        if f.getlength(trial) <= width or not line:
            line = trial
        else:
            lines.append(line)
            line = u
    return [*lines, line] if line else lines


def burn(frame: np.ndarray, text: str) -> np.ndarray:
    """The frame with ``text`` drawn near the bottom: white with a dark outline, wrapped to 90% of the width."""
    h, w = frame.shape[:2]
    f = font(max(10, round(min(w, h) * 0.075)))
    im = Image.fromarray(frame)
    draw = ImageDraw.Draw(im)
    lines = _wrap(text, f, int(w * 0.9))
    step = round(f.size * 1.25)
    y = h - round(h * 0.08) - step * len(lines)
    for line in lines:
        draw.text((w / 2, y), line, font=f, fill=(255, 255, 255), anchor="ma", stroke_width=max(1, f.size // 12),
                  stroke_fill=(0, 0, 0))  # fmt: skip
        y += step
    return np.asarray(im)
