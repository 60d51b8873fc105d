"""The reconstruction suite: how well a VAE gives back held-out data, per source (world clips, real footage, photos)
and size, as PSNR and SSIM of its one-shot encode + decode, and for clips the flicker where latent frames meet."""

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


def steps_by_phase(steps: np.ndarray, time: int) -> np.ndarray:
    """Per-step values (T - 1,), step t being frame t -> t + 1, averaged by the step's place in a latent frame
    (t mod time; phase 0 is the step into a new latent frame): (time,)."""
    return np.array([steps[p::time].mean() for p in range(time)])


def latent_seam(recon: torch.Tensor, x: torch.Tensor, time: int) -> tuple[float, float]:
    """(reconstruction, input) ratios of the mean frame step |frame t+1 - frame t| into a new latent frame over the
    mean step inside one, for clips (B, 3, T, H, W). Near 1 for evenly moving input (0.91 on the held-out world
    clips; the held-out real footage reads 1.8-1.9 itself, cause not checked); a decoder that eases motion out inside
    a latent frame and catches up at the next flickers every `time` frames, even on a still scene."""

    def ratio(v: torch.Tensor) -> float:
        phase = steps_by_phase(v.float().diff(dim=2).abs().mean(dim=(0, 1, 3, 4)).numpy(), time)  # (time,)
        return float(phase[0] / max(phase[1:].mean(), 1e-6))

    return ratio(recon), ratio(x)


@torch.no_grad()
def reconstruction(vae: VAE, sides: list[int], world_n: int, real_windows: int, verbose: bool = True) -> list[dict]:
    """One row per (size, source): clip count, mean PSNR (dB) and SSIM of the VAE's round trip, and for clips the
    latent-frame seam ratio of the round trip and of the input (`latent_seam`, over all the source's clips)."""
    rows = []
    for side in sides:
        for source, clips in heldout_sets(side, world_n, real_windows).items():
            p = q = 0.0
            ys, xs = [], []
            for i in range(0, len(clips), 4):
                x = torch.stack([frames_to_tensor(c) for c in clips[i : i + 4]])  # (B, 3, T, side, side)
                y = vae.decode(vae.encode(x))
                p, q = p + psnr(y, x) * len(x), q + ssim(y, x) * len(x)
                ys.append(y.clamp(-1, 1))
                xs.append(x)
            n = len(clips)
            row = {"source": source, "size": side, "frames": clips.shape[1], "n": n, "psnr": round(p / n, 3),
                   "ssim": round(q / n, 4), "seam": None, "seam_input": None}  # fmt: skip
            if clips.shape[1] > vae.cfg.time_factor + 1:
                seam, seam_input = latent_seam(torch.cat(ys), torch.cat(xs), vae.cfg.time_factor)
                row.update(seam=round(seam, 3), seam_input=round(seam_input, 3))
            rows.append(row)
            if verbose:
                print(f"  reconstruction {source} {side}px: psnr {p / n:.2f} ssim {q / n:.4f} seam {row['seam']} "
                      f"(input {row['seam_input']}) (n={n})", file=sys.stderr)  # fmt: skip
    return rows
