"""Where latent frames meet: how a VAE's round trip moves between frames, and the ceiling it sets on the modes' joins.

    python benchmarks/seams.py [--vae DIR] [--cases 50] [-o benchmarks/results/seams.json]

The clips are the modes' cases (benchmarks/modes.py: held-out world clips, 64x112, 33 frames, 16 fps), encoded and
decoded by the VAE alone, no DiT. Two tables:

- the mean frame step |frame t+1 - frame t| (gray levels) by its place in a latent frame: phase 0 is the step into
  a new latent frame (frames 4k -> 4k+1), phases 1-3 the steps inside one; for the input, the round trip, and the
  round trip's error on the step. A decoder that eases motion out inside a latent frame and catches up at the next
  one flickers every 4 frames, even where the input moves evenly.
- the modes' seam measure (`seam_ratio`: a step over the median step, pass <= 1.5) at frame 17, where the extend
  mode's new frames start (a latent-frame boundary), and at frame 19 (inside a latent frame), on the input and on
  the round trip. Every extend, connect and loop join the pipeline makes sits on such a boundary, so the round
  trip's pass rate there bounds what any DiT can score on those bars with this VAE.
- order: whether the latents hold the timing inside a latent frame. Each latent frame's 4 frames are reversed
  (frame 0 stays); the share of that change that survives the round trip (mean |round trip of reversed - round trip|
  over mean |reversed - input|: 1 if the order is kept), and the share of clips whose reversed round trip is closer
  to the reversed input than to the original. Clips that barely move (mean change under 0.3 gray levels) are skipped.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from common import machine, write_result

from kinetoscope.evaluate.adherence import draw_cases
from kinetoscope.evaluate.modes import FPS, FRAMES, HEIGHT, SEAM_RATIO, WIDTH, seam_ratio
from kinetoscope.evaluate.reconstruction import steps_by_phase
from kinetoscope.media import frames_to_tensor, tensor_to_frames
from kinetoscope.pipeline import model_folders
from kinetoscope.train.vae import load_vae

BOUNDARY, INSIDE = 17, 19  # output frames where a seam is measured: the first of a latent frame, and one inside it


def seam_summary(ratios: list[float]) -> dict:
    """Pass rate (ratio <= SEAM_RATIO) and median ratio of one seam over the clips."""
    return {
        "pass": round(float(np.mean(np.array(ratios) <= SEAM_RATIO)), 4),
        "median_ratio": round(float(np.median(ratios)), 3),
    }


@torch.no_grad()
def measure(vae_dir: str, cases: int) -> dict:
    """The VAE's round trip of the modes' first `cases` cases: steps by phase and the two seams, input beside it."""
    vae = load_vae(vae_dir).eval()
    time = vae.cfg.time_factor
    phase = {"input": [], "roundtrip": [], "error": []}
    seams = {"input": {BOUNDARY: [], INSIDE: []}, "roundtrip": {BOUNDARY: [], INSIDE: []}}
    order = []
    for case in draw_cases(cases, 0, HEIGHT, WIDTH, FRAMES, FPS, "terse"):
        x = case.clip.frames  # (T, H, W, 3) uint8
        y = roundtrip(vae, x)
        order.append(order_kept(vae, x, y))
        dx, dy = (np.diff(v.astype(np.float32), axis=0) for v in (x, y))  # (T - 1, H, W, 3) frame steps
        for key, steps in (("input", np.abs(dx)), ("roundtrip", np.abs(dy)), ("error", np.abs(dy - dx))):
            phase[key].append(steps_by_phase(steps.mean(axis=(1, 2, 3)), time))
        for name, clip in (("input", x), ("roundtrip", y)):
            for at in (BOUNDARY, INSIDE):
                seams[name][at].append(seam_ratio(clip, at))
    return {
        "vae": vae_dir,
        "cases": cases,
        "steps_by_phase": {k: np.mean(v, axis=0).round(3).tolist() for k, v in phase.items()},
        "seams": {name: {str(at): seam_summary(r) for at, r in by.items()} for name, by in seams.items()},
        "order": order_summary([o for o in order if o is not None]),
    }


def roundtrip(vae, x: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 through the VAE's encoder and decoder."""
    return tensor_to_frames(vae.decode(vae.encode(frames_to_tensor(x)[None]))[0])


def order_kept(vae, x: np.ndarray, y: np.ndarray) -> tuple[float, bool] | None:
    """For one clip with each latent frame's frames reversed: (share of the change the round trip keeps, whether the
    reversed round trip is closer to the reversed input than to the original); None when the clip barely moves."""
    time = vae.cfg.time_factor
    xr = x.copy()
    for k in range(1, (len(x) - 1) // time + 1):
        xr[time * (k - 1) + 1 : time * k + 1] = x[time * (k - 1) + 1 : time * k + 1][::-1]
    change = np.abs(xr.astype(np.float32) - x).mean()
    if change < 0.3:
        return None
    yr = roundtrip(vae, xr).astype(np.float32)
    kept = float(np.abs(yr - y).mean() / change)
    return kept, bool(np.abs(yr - xr).mean() < np.abs(yr - x).mean())


def order_summary(rows: list[tuple[float, bool]]) -> dict:
    return {"clips": len(rows), "change_kept": round(float(np.mean([r[0] for r in rows])), 3),
            "closer_to_reversed": round(float(np.mean([r[1] for r in rows])), 3)}  # fmt: skip


def table(res: dict) -> str:
    s = res["steps_by_phase"]
    out = [f"VAE {res['vae']}, {res['cases']} clips (64x112, 33 frames): mean frame step by phase in a latent frame",
           "phase        " + "  ".join(f"{p:>6}" for p in range(len(s["input"]))),
           *(f"{k:<12} " + "  ".join(f"{v:6.2f}" for v in s[k]) for k in ("input", "roundtrip", "error")), "",
           f"seam ratio <= {SEAM_RATIO} (pass rate, median ratio)   at {BOUNDARY} (boundary)   at {INSIDE} (inside)"]  # fmt: skip
    for name, by in res["seams"].items():
        b, i = by[str(BOUNDARY)], by[str(INSIDE)]
        out.append(
            f"{name:<40} {b['pass']:6.0%} ({b['median_ratio']:.2f})   {i['pass']:6.0%} ({i['median_ratio']:.2f})"
        )
    o = res["order"]
    out += ["", f"order inside a latent frame ({o['clips']} moving clips, each latent frame's frames reversed): the round "
            f"trip keeps {o['change_kept']:.0%} of the change; closer to the reversed input than to the original in "
            f"{o['closer_to_reversed']:.0%} of clips"]  # fmt: skip
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vae", help="a VAE run or bundle folder (default: the bundled VAE)")
    ap.add_argument("--cases", type=int, default=50)
    ap.add_argument("-o", "--output", default="benchmarks/results/seams.json")
    a = ap.parse_args(argv)
    res = {"machine": machine(), **measure(a.vae or str(model_folders(None)[1]), a.cases)}
    return write_result(res, a.output, table(res))


if __name__ == "__main__":
    sys.exit(main())
