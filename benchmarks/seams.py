"""Where latent frames meet: how a VAE's round trip moves between frames, and the ceiling it sets on the modes' joins.

    python benchmarks/seams.py [--vae DIR] [--cases 50] [-o benchmarks/results/seams.json]
    python benchmarks/seams.py --vae DIR --calibrate 30      # measure DIR's timing, write it into DIR/config.json

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
- retimed: the round trip through `vae_stream.even_steps`, as the pipeline decodes, when the VAE's timing has been
  measured: ``--calibrate N`` takes the round trip's mean step by phase over N cases drawn with seed 1 (not the
  measured ones, seed 0) and writes it into the VAE folder's config.json as ``phase_steps``.
- order: whether the latents hold the timing inside a latent frame. Each latent frame's 4 frames are reversed
  (frame 0 stays); the share of that change that survives the round trip (mean |round trip of reversed - round trip|
  over mean |reversed - input|: 1 if the order is kept), and the share of clips whose reversed round trip is closer
  to the reversed input than to the original. Clips that barely move (mean change under 0.3 gray levels) are skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from common import machine, write_result

from kinetoscope.evaluate.adherence import draw_cases
from kinetoscope.evaluate.modes import FPS, FRAMES, HEIGHT, SEAM_RATIO, WIDTH, seam_ratio
from kinetoscope.evaluate.quality import psnr as video_psnr
from kinetoscope.evaluate.reconstruction import steps_by_phase
from kinetoscope.media import frames_to_tensor, tensor_to_frames
from kinetoscope.models.vae_stream import even_steps, retime_weights
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
    versions = ("input", "roundtrip", "retimed") if vae.cfg.phase_steps else ("input", "roundtrip")
    phase = {k: [] for k in (*versions, "error")}
    seams = {name: {BOUNDARY: [], INSIDE: []} for name in versions}
    order, psnr = [], {name: [] for name in versions[1:]}
    for case in draw_cases(cases, 0, HEIGHT, WIDTH, FRAMES, FPS, "terse"):
        x = case.clip.frames  # (T, H, W, 3) uint8
        y = roundtrip(vae, x)
        clips = {"input": x, "roundtrip": y}
        if vae.cfg.phase_steps:
            clips["retimed"] = np.stack(list(even_steps(y, retime_weights(vae.cfg.phase_steps))))
        order.append(order_kept(vae, x, y))
        steps = {name: np.diff(clip.astype(np.float32), axis=0) for name, clip in clips.items()}  # (T - 1, H, W, 3)
        phase["error"].append(by_phase(steps["roundtrip"] - steps["input"], time))
        for name, clip in clips.items():
            phase[name].append(by_phase(steps[name], time))
            for at in (BOUNDARY, INSIDE):
                seams[name][at].append(seam_ratio(clip, at))
            if name != "input":
                psnr[name].append(video_psnr(frames_to_tensor(clip)[None], frames_to_tensor(x)[None]))
    return {
        "vae": vae_dir,
        "cases": cases,
        "phase_steps_config": list(vae.cfg.phase_steps),
        "psnr": {k: round(float(np.mean(v)), 2) for k, v in psnr.items()},
        "steps_by_phase": {k: np.mean(v, axis=0).round(3).tolist() for k, v in phase.items()},
        "seams": {name: {str(at): seam_summary(r) for at, r in by.items()} for name, by in seams.items()},
        "order": order_summary([o for o in order if o is not None]),
    }


@torch.no_grad()
def calibrate(vae_dir: str, cases: int) -> list[float]:
    """The round trip's mean frame step by phase over `cases` cases drawn with seed 1, written into the VAE folder's
    config.json as model.phase_steps (what decode_stream retimes with)."""
    vae = load_vae(vae_dir).eval()
    drawn = draw_cases(cases, 1, HEIGHT, WIDTH, FRAMES, FPS, "terse")  # seed 1: not the measured cases (seed 0)
    time = vae.cfg.time_factor
    steps = [by_phase(np.diff(roundtrip(vae, c.clip.frames).astype(np.float32), axis=0), time) for c in drawn]
    phase = [round(float(v), 4) for v in np.mean(steps, axis=0)]
    path = Path(vae_dir) / "config.json"
    config = json.loads(path.read_text())
    config["model"]["phase_steps"] = phase
    path.write_text(json.dumps(config, indent=2) + "\n")
    return phase


def by_phase(steps: np.ndarray, time: int) -> np.ndarray:
    """Frame steps (T - 1, H, W, 3) as mean absolute gray levels by phase in a latent frame, (time,)."""
    return steps_by_phase(np.abs(steps).mean(axis=(1, 2, 3)), time)


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
           *(f"{k:<12} " + "  ".join(f"{v:6.2f}" for v in s[k]) for k in s), "",
           f"seam ratio <= {SEAM_RATIO} (pass rate, median ratio)   at {BOUNDARY} (boundary)   at {INSIDE} (inside)"]  # fmt: skip
    for name, by in res["seams"].items():
        b, i = by[str(BOUNDARY)], by[str(INSIDE)]
        out.append(
            f"{name:<40} {b['pass']:6.0%} ({b['median_ratio']:.2f})   {i['pass']:6.0%} ({i['median_ratio']:.2f})"
        )
    out += ["", "PSNR against the input (dB): " + ", ".join(f"{k} {v:.2f}" for k, v in res["psnr"].items())]
    o = res["order"]
    out += ["", f"order inside a latent frame ({o['clips']} moving clips, each latent frame's frames reversed): the round "
            f"trip keeps {o['change_kept']:.0%} of the change; closer to the reversed input than to the original in "
            f"{o['closer_to_reversed']:.0%} of clips"]  # fmt: skip
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vae", help="a VAE run or bundle folder (default: the bundled VAE)")
    ap.add_argument("--cases", type=int, default=50)
    ap.add_argument("--calibrate", type=int, metavar="N", help="measure the VAE's timing on N cases and write it "
                    "into its config.json (then exit)")  # fmt: skip
    ap.add_argument("-o", "--output", default="benchmarks/results/seams.json")
    a = ap.parse_args(argv)
    vae_dir = a.vae or str(model_folders(None)[1])
    if a.calibrate:
        print(f"{vae_dir}: phase_steps {calibrate(vae_dir, a.calibrate)} written into its config.json")
        return 0
    res = {"machine": machine(), **measure(vae_dir, a.cases)}
    return write_result(res, a.output, table(res))


if __name__ == "__main__":
    sys.exit(main())
