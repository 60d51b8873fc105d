"""The reconstruction suite: how well a VAE gives back held-out data, per source (world clips, real footage, photos)
and size, as PSNR and SSIM of its one-shot encode + decode."""

from __future__ import annotations

import sys

import numpy as np
import torch

from kinetoscope import world
from kinetoscope.data.crops import HELD_OUT_PHOTOS, REAL_CLIPS, load_photo, load_real_clip
from kinetoscope.evaluate.quality import psnr, ssim
from kinetoscope.media import fit_frames, frames_to_tensor
from kinetoscope.models.vae import VAE

HELD_OUT_SEED = 999_999  # world clips of this seed are in no training set (the bundled data used seeds 1000, 2000)
WORLD_SIZES = ((128, 128), (128, 224), (224, 128))


def heldout_sets(side: int, world_n: int, real_windows: int, frames: int = 17) -> dict[str, np.ndarray]:
    """Held-out uint8 clips per source, each (N, T, side, side, 3): world clips of a seed no training set uses, windows
    of the held-out end of each real clip, and the held-out photos (1 frame)."""
    specs = [world.sample_spec(i, seed=HELD_OUT_SEED, frames=(frames,), sizes=WORLD_SIZES) for i in range(world_n)]
    sets = {"world": np.stack([fit_frames(world.render(sp).frames, side, side)[0] for sp in specs])}
    per_clip = max(1, real_windows // len(REAL_CLIPS))
    real = []
    for name in REAL_CLIPS:
        clip = load_real_clip(name, "heldout")  # (T, H, W, 3)
        starts = np.linspace(0, len(clip) - frames, per_clip).round().astype(int)
        real += [fit_frames(clip[a : a + frames], side, side)[0] for a in starts]
    sets["real"] = np.stack(real)
    sets["photo"] = np.stack([fit_frames(load_photo(n)[None], side, side)[0] for n in HELD_OUT_PHOTOS])
    return sets


@torch.no_grad()
def reconstruction(vae: VAE, sides: list[int], world_n: int, real_windows: int, verbose: bool = True) -> list[dict]:
    """One row per (size, source): clip count, mean PSNR (dB) and SSIM of the VAE's round trip."""
    rows = []
    for side in sides:
        for source, clips in heldout_sets(side, world_n, real_windows).items():
            p = q = 0.0
            for i in range(0, len(clips), 4):
                x = torch.stack([frames_to_tensor(c) for c in clips[i : i + 4]])  # (B, 3, T, side, side)
                y = vae.decode(vae.encode(x))
                p, q = p + psnr(y, x) * len(x), q + ssim(y, x) * len(x)
            n = len(clips)
            rows.append({"source": source, "size": side, "frames": clips.shape[1], "n": n, "psnr": round(p / n, 3),
                         "ssim": round(q / n, 4)})  # fmt: skip
            if verbose:
                print(f"  reconstruction {source} {side}px: psnr {p / n:.2f} ssim {q / n:.4f} (n={n})", file=sys.stderr)
    return rows
