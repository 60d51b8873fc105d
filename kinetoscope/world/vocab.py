"""The world's vocabulary: the contract between the world, the analyzer and every prompt suite (DESIGN.md §4).

Extend it, don't rename it. Colors carry the RGB the renderer paints with; the analyzer names colors by the
nearest of these (in its own color space), never by asking the renderer.
"""

from __future__ import annotations

import zlib

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (245, 130, 20),
    "yellow": (245, 220, 30),
    "green": (30, 170, 50),
    "cyan": (30, 210, 220),
    "blue": (30, 60, 220),
    "purple": (140, 50, 200),
    "pink": (245, 120, 190),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}

SHAPES = ("ball", "cube", "triangle", "star")  # a cube is drawn as a square

PHYSICS_MOTIONS = (
    "falls and bounces",
    "rolls left",
    "rolls right",
    "slides left",
    "slides right",
    "slides up",
    "slides down",
    "is thrown in an arc",
    "spins",
    "grows",
    "shrinks",
    "stays still",
    "collide",  # two objects collide
    "swings",  # a pendulum swings
)

CAMERA_MOTIONS = ("static", "pans left", "pans right", "zooms in", "zooms out")

SETTINGS = (
    "gray floor",
    "blue sky",
    "green grass",
    "dark room",
    "sandy beach",
    "city street at night",
    "living room",
    "office",
)

DRAMA_ACTIONS = ("walks left", "walks right", "waves", "jumps", "sits down", "turns around", "meet")
DRAMA_STILL = "stands"  # what a person does in a still image (a 1-frame clip)
SHOT_SIZES = ("wide shot", "medium shot", "close-up")

SPRITE_CHARACTERS = ("knight", "slime", "robot", "wizard", "cat")
SPRITE_EFFECTS = ("coin", "gem", "fire", "explosion")
SPRITE_ACTIONS = ("idle", "walk", "run", "jump", "attack")
EFFECT_ACTIONS = {"coin": "spin", "gem": "sparkle", "fire": "burn", "explosion": "explode"}  # each effect's motion
FACINGS = ("left", "right")
SPRITE_BACKGROUNDS = ("plain", "transparent")  # "transparent" is rendered on a flat key color for matting

DIRECTIONS = ("left", "right", "up", "down", "none")
MOVE_THRESHOLD = 0.12  # a net displacement under this fraction of the frame's short side is "none"


def direction_of(dx: float, dy: float, short_side: int) -> str:
    """The direction of a net displacement (y down): the dominant axis, or "none" if it is under MOVE_THRESHOLD of
    the short side. The one rule shared by the world's scripts and the analyzer's verdicts."""
    if max(abs(dx), abs(dy)) < MOVE_THRESHOLD * short_side:
        return "none"
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def is_held_out(color: str, shape: str, motion: str) -> bool:
    """True for the (color, shape, motion) combinations the training world never shows together.

    The rule (documented in README, used by evaluation suites): a stable hash of the triple puts about one
    combination in eight into the held-out set, so every color, shape and motion is still seen in training,
    only some combinations of them are not.
    """
    return zlib.crc32(f"{color}|{shape}|{motion}".encode()) % 8 == 0
