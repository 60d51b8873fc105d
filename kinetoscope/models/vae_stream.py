"""Encode and decode clips of any length and size with flat memory: temporal chunks through a causal cache,
overlapping spatial tiles blended with linear ramps; decoded frames retimed to even steps when the VAE's timing
inside a latent frame has been measured (`even_steps`).

Temporal chunking is exact (the VAE is causal and normalizes per voxel); tiling is close to the one-shot result,
not identical, because convolutions near a tile's edge see zero padding instead of the neighbor's pixels. The
overlap hides that: see tests/test_vae.py for the measured tolerance.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from kinetoscope.errors import SizeError
from kinetoscope.media import frames_to_tensor, tensor_to_frames
from kinetoscope.models.vae import VAE, CausalCache


@dataclass(frozen=True)
class StreamConfig:
    chunk: int = 16  # frames per temporal chunk after the first frame (a multiple of the VAE's time factor)
    tile: int = 256  # tile side in pixels (a multiple of the VAE's space factor)
    overlap: int = 64  # pixels shared by neighboring tiles, blended
    bf16: bool = False  # bf16 autocast (about 2x faster on CPUs with AVX-512 bf16)


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles covering [0, size): stride tile - overlap, the last tile flush with the end."""
    if size <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    return starts + [size - tile]


def ramp(size: int, start: int, tile: int, overlap: int) -> np.ndarray:
    """1-D blend weights of one tile: rising over the overlap where a neighbor precedes it, falling where one follows."""
    w = np.ones(tile, np.float32)
    if overlap > 0:
        r = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        if start > 0:
            w[:overlap] = np.minimum(w[:overlap], r)
        if start + tile < size:
            w[-overlap:] = np.minimum(w[-overlap:], r[::-1])
    return w


class TiledPass:
    """Runs a chunk through the VAE tile by tile, each tile with its own causal cache, and blends the tiles."""

    def __init__(self, height: int, width: int, tile: int, overlap: int, scale: float):
        self.height, self.width = height, width
        th, tw = min(tile, height), min(tile, width)
        self.tiles = [
            (y, x, th, tw) for y in tile_starts(height, th, overlap) for x in tile_starts(width, tw, overlap)
        ]
        self.caches = [CausalCache() for _ in self.tiles]
        self.overlap, self.scale = overlap, scale  # scale: output size / input size (1/8 encoding, 8 decoding)

    def run(self, fn, x: Tensor) -> Tensor:
        """fn(x_tile, cache) -> out_tile for every tile of x (B, C, T, H, W); blended output."""
        s = self.scale
        out = weight = None
        for (y, x0, th, tw), cache in zip(self.tiles, self.caches):
            o = fn(x[..., y : y + th, x0 : x0 + tw], cache).float()  # (B, C', T', th*s, tw*s)
            oy, ox, oh, ow, ov = int(y * s), int(x0 * s), o.shape[-2], o.shape[-1], int(self.overlap * s)
            wy = ramp(int(self.height * s), oy, oh, ov)
            wx = ramp(int(self.width * s), ox, ow, ov)
            w = torch.from_numpy(np.outer(wy, wx))  # (oh, ow)
            if out is None:
                out = o.new_zeros(o.shape[:-2] + (int(self.height * s), int(self.width * s)))
                weight = torch.zeros(out.shape[-2:])
            out[..., oy : oy + oh, ox : ox + ow] += o * w
            weight[oy : oy + oh, ox : ox + ow] += w
        return out / weight


def _chunks(frames: Iterable[np.ndarray], chunk: int, group: int) -> Iterator[np.ndarray]:
    """Frame 0 alone, then blocks of `chunk` frames, the last block possibly shorter but whole groups of `group`
    (uint8 (t, H, W, 3))."""
    buf: list[np.ndarray] = []
    first = True
    for f in frames:
        buf.append(f)
        if first or len(buf) == chunk:
            yield np.stack(buf)
            buf, first = [], False
    if len(buf) % group:
        raise SizeError(f"clip has {len(buf) % group} frames past the last full group of {group}: the VAE takes "
                        f"1 + {group}k frames")  # fmt: skip
    if buf:
        yield np.stack(buf)


@torch.no_grad()
def encode_stream(vae: VAE, frames: Iterable[np.ndarray], cfg: StreamConfig = StreamConfig()) -> Tensor:
    """uint8 frames (an array or any iterable, e.g. media.iter_frames) -> normalized latent (1, C, T', H/8, W/8)."""
    f, s = vae.cfg.time_factor, vae.cfg.space_factor
    if cfg.chunk % f or cfg.tile % s or cfg.overlap % s:
        raise SizeError(f"stream chunk must be a multiple of {f}, tile and overlap multiples of {s}")
    parts, tiler = [], None
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if cfg.bf16 else nullcontext()
    for block in _chunks(frames, cfg.chunk, f):
        x = frames_to_tensor(block)[None]  # (1, 3, t, H, W)
        if tiler is None:
            vae.check_input(x)
            tiler = TiledPass(x.shape[-2], x.shape[-1], cfg.tile, cfg.overlap, 1 / s)
        with ctx:
            parts.append(tiler.run(vae.encode, x))
    if tiler is None:
        raise SizeError("clip has 0 frames")
    return torch.cat(parts, dim=2)


@torch.no_grad()
def decode_stream(vae: VAE, z: Tensor, cfg: StreamConfig = StreamConfig()) -> Iterator[np.ndarray]:
    """Normalized latent (1, C, T', h, w) -> uint8 frames (H, W, 3), yielded chunk by chunk (flat memory)."""
    f, s = vae.cfg.time_factor, vae.cfg.space_factor
    tiler = TiledPass(z.shape[-2], z.shape[-1], cfg.tile // s, cfg.overlap // s, s)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if cfg.bf16 else nullcontext()
    step = cfg.chunk // f
    bounds = [(0, 1)] + [(i, min(i + step, z.shape[2])) for i in range(1, z.shape[2], step)]

    def frames() -> Iterator[np.ndarray]:
        for a, b in bounds:
            with ctx:
                x = tiler.run(vae.decode, z[:, :, a:b])  # (1, 3, t, H, W)
            yield from tensor_to_frames(x[0])

    yield from even_steps(frames(), retime_weights(vae.cfg.phase_steps)) if vae.cfg.phase_steps else frames()


def retime_weights(phase_steps: tuple[float, ...]) -> np.ndarray:
    """The blend weight of each phase for `even_steps`, from the decoder's mean frame step by phase.

    Our decoders run ahead early in a latent frame and slow down late (steps 1.20 / 0.91 / 0.76 / 0.53 where the
    input steps evenly): read as time, frame m of a latent frame shows the moment tau_m = the cumulative step share,
    scaled so the latent frame spans its frames. The moment m lies between tau_(m-1) and tau_m, so the frame for it
    is the blend of decoded frames m - 1 and m at (m - tau_(m-1)) / (tau_m - tau_(m-1)), clamped to [0, 1] (a
    decoder that lagged instead would need the next frame: clamped, it is left as decoded); (time_factor,)."""
    steps = np.asarray(phase_steps, np.float64)
    tau = np.concatenate([[0.0], np.cumsum(len(steps) * steps / steps.sum())])  # (time_factor + 1,)
    m = np.arange(1, len(steps) + 1)
    return np.clip((m - tau[:-1]) / (tau[1:] - tau[:-1]), 0.0, 1.0)


def even_steps(frames: Iterable[np.ndarray], weights: np.ndarray) -> Iterator[np.ndarray]:
    """Causal retiming of decoded frames: frame 0 (decoded alone) as it is, then frame i as the blend of decoded
    frames i - 1 and i with the weight of its phase ((i - 1) mod len(weights)); uint8 (H, W, 3) in and out."""
    prev = None
    for i, frame in enumerate(frames):
        cur = frame.astype(np.float32)
        a = 1.0 if prev is None else weights[(i - 1) % len(weights)]
        yield frame if a >= 1 else ((1 - a) * prev + a * cur).round().astype(np.uint8)
        prev = cur
