"""Caption grammar shared by the world's families: varied wording over the fixed vocabulary.

Each clip gets a terse caption (what a user types) and a detailed one (what a re-captioner would write). Wording
varies — synonyms, word order, articles — so the model learns the words, not one sentence template.
"""

from __future__ import annotations

import re

import numpy as np

SETTING_PHRASES: dict[str, tuple[str, ...]] = {
    "gray floor": ("on a gray floor", "on the gray floor", "over a gray floor"),
    "blue sky": ("against a blue sky", "in front of a blue sky", "under a blue sky"),
    "green grass": ("on green grass", "on the green grass", "over green grass"),
    "dark room": ("in a dark room", "in the dark room", "inside a dark room"),
    "sandy beach": ("on a sandy beach", "on the sandy beach", "at a sandy beach"),
    "city street at night": ("on a city street at night", "in a city street at night", "on a night city street"),
    "living room": ("in a living room", "in the living room", "inside a living room"),
    "office": ("in an office", "in the office", "inside an office"),
}

CAMERA_PHRASES: dict[str, tuple[str, ...]] = {
    "static": ("", "", "the camera is still"),
    "pans left": ("the camera pans left", "as the camera pans left", "camera panning left"),
    "pans right": ("the camera pans right", "as the camera pans right", "camera panning right"),
    "zooms in": ("the camera zooms in", "as the camera zooms in", "camera zooming in"),
    "zooms out": ("the camera zooms out", "as the camera zooms out", "camera zooming out"),
}


def pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    """One of the options, uniformly."""
    return options[int(rng.integers(len(options)))]


def article(noun_phrase: str) -> str:
    """'a' or 'an' for a noun phrase."""
    return "an" if noun_phrase[:1].lower() in "aeiou" else "a"


def a(noun_phrase: str) -> str:
    """The noun phrase with its indefinite article."""
    return f"{article(noun_phrase)} {noun_phrase}"


def join_and(parts: list[str]) -> str:
    """'x', 'x and y', 'x, y and z'."""
    parts = [p for p in parts if p]
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def size_word(radius: float, short_side: int) -> str:
    """small / medium-sized / large by the object's radius relative to the frame's short side."""
    k = radius / short_side
    return "small" if k < 0.085 else "large" if k > 0.115 else "medium-sized"


def position_words(x: float, y: float, height: int, width: int) -> str:
    """Where a frame point sits, in words: 'upper left', 'center', 'lower right', ..."""
    col = "left" if x < width / 3 else "right" if x > 2 * width / 3 else ""
    row = "upper" if y < height / 3 else "lower" if y > 2 * height / 3 else ""
    if not col and not row:
        return "center"
    if not row:
        return f"{col} side"
    return f"{row} {col}".strip() if col else f"{row} middle"


def sentence(text: str) -> str:
    """Capitalize and end with a period."""
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def with_setting_and_camera(rng: np.random.Generator, body: str, setting: str, camera: str) -> str:
    """A terse caption: the body with the setting before or after it, and the camera if it moves."""
    where = pick(rng, SETTING_PHRASES[setting])
    text = f"{where}, {body}" if rng.random() < 0.25 else f"{body} {where}"
    cam = pick(rng, CAMERA_PHRASES[camera])
    if cam:
        text = f"{text}, {cam}" if not cam.startswith("as ") else f"{text} {cam}"
    return text


OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}
_OPPOSITE_VERB = {"rises": "sinks", "sinks": "rises"}  # the physics captions' words for sliding up and down
_DIRECTED = re.compile(r"\b(left|right)\b|\b((?:moves|slides) )(up|down)\b|\b(rises|sinks)\b")


def swap_directions(caption: str) -> str:
    """The caption with every direction it names reversed: left <-> right wherever they stand, up <-> down where
    something moves or slides (not "sits down" or "jumps up"), rises <-> sinks; unchanged if it names none. The wrong
    caption that training contrasts a clip's own with (`flow.contrast_loss`)."""

    def flip(m: re.Match) -> str:
        if m.group(1):
            return OPPOSITE[m.group(1)]
        return m.group(2) + OPPOSITE[m.group(3)] if m.group(2) else _OPPOSITE_VERB[m.group(4)]

    return _DIRECTED.sub(flip, caption)
