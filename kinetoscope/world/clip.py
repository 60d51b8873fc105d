"""What the world hands out: a clip spec (what to render) and a rendered clip (frames, captions, scene script)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kinetoscope.sizes import check_size

FAMILIES = ("physics", "drama", "sprites")
# Drills: narrow families a data set can ask for by name, outside the default mix. `directions` is physics reduced to
# what teaches a direction word: one object rolling or sliding left, right, up or down under a static camera.
DRILLS = {"directions": "physics"}  # drill -> the family whose renderer draws it
KNOWN_FAMILIES = FAMILIES + tuple(DRILLS)

# The default mix `kinetoscope world` draws from: (height, width) with 1:1, 16:9 and 9:16 at 64 px short side and
# at 128 px, durations from a single image to 33 frames, and several frame rates.
DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((64, 64), (64, 112), (112, 64), (128, 128), (128, 224), (224, 128))
DEFAULT_SIZE_WEIGHTS: tuple[float, ...] = (0.3, 0.2, 0.2, 0.1, 0.1, 0.1)
DEFAULT_FRAMES: tuple[int, ...] = (1, 9, 17, 33)
DEFAULT_FRAME_WEIGHTS: tuple[float, ...] = (0.15, 0.25, 0.35, 0.25)
DEFAULT_FPS: tuple[int, ...] = (8, 12, 16, 24)


@dataclass(frozen=True)
class ClipSpec:
    """Everything that decides a clip: rendering the same spec twice gives identical frames."""

    family: str
    height: int
    width: int
    frames: int
    fps: int
    seed: int
    allow_held_out: bool = False  # evaluation renders held-out combinations; training data never does

    def __post_init__(self) -> None:
        check_size(self.height, self.width, self.frames)
        if self.family not in KNOWN_FAMILIES:
            raise ValueError(f"unknown family {self.family!r}; known: {', '.join(KNOWN_FAMILIES)}")
        if not 1 <= self.fps <= 120:
            raise ValueError(f"fps {self.fps} outside 1..120")


@dataclass
class Clip:
    """A rendered clip: uint8 frames, two captions, and the scene script that is its ground truth."""

    frames: np.ndarray  # uint8 (T, H, W, 3)
    fps: int
    terse: str
    detailed: str
    script: dict = field(default_factory=dict)  # JSON-serializable; see world/script.py for the schema


def sample_spec(
    index: int,
    seed: int,
    families: tuple[str, ...] = FAMILIES,
    sizes: tuple[tuple[int, int], ...] = DEFAULT_SIZES,
    frames: tuple[int, ...] = DEFAULT_FRAMES,
    fps: tuple[int, ...] = DEFAULT_FPS,
    size_weights: tuple[float, ...] | None = None,
    frame_weights: tuple[float, ...] | None = None,
) -> ClipSpec:
    """The spec of clip number ``index`` of a data set: a pure function of (index, seed), so runs can resume."""
    rng = np.random.default_rng([seed, index])
    if size_weights is None and sizes == DEFAULT_SIZES:
        size_weights = DEFAULT_SIZE_WEIGHTS
    if frame_weights is None and frames == DEFAULT_FRAMES:
        frame_weights = DEFAULT_FRAME_WEIGHTS
    h, w = sizes[rng.choice(len(sizes), p=_normalized(size_weights, len(sizes)))]
    t = frames[rng.choice(len(frames), p=_normalized(frame_weights, len(frames)))]
    return ClipSpec(
        family=families[rng.integers(len(families))],
        height=h,
        width=w,
        frames=t,
        fps=int(fps[rng.integers(len(fps))]),
        seed=int(rng.integers(2**31)),
    )


def _normalized(weights: tuple[float, ...] | None, n: int) -> np.ndarray:
    p = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    return p / p.sum()
