"""How steady in time is what the DiT makes, and at which noise level does it stop being steady? Each case's own
clip is encoded, noised to t0 and denoised again under its caption (SDEdit; t0 = 1 is plain text-to-video from
noise); the result's frame-to-frame change is measured in the latent and, decoded, in pixels, against the clip's own.

    python benchmarks/coherence.py [--model DIR] [--cases 12] [--strengths 0.2,0.4,0.7,1] [--guidance 4]
                                   [-o benchmarks/results/coherence.json]

- latent step: mean |z[f + 1] - z[f]| over latent frames after the first (the first is an image, encoded alone);
- pixel step: the median over frame steps of the mean |frame[f + 1] - frame[f]| in gray levels, as the modes' seam
  ratio measures it: a generated part that changes more than the clip it continues puts a seam where they meet;
- detail: the energy of horizontal neighbor differences over the variance (how much fine, pixel-scale texture).

This is the check that found v5's text-to-video latents changing 3.5x as much per frame as real clips (v4's 1.55x),
the change made at t0 > 0.4 (the low-noise steps keep a clip steady) and larger with guidance: the measure behind
the extend and connect seams, the one-object share and the background flicker (README, "Steady in time").
"""

from __future__ import annotations

import argparse
import shlex
import sys

import numpy as np
import torch
from common import machine, write_result

from kinetoscope.evaluate.adherence import draw_cases
from kinetoscope.evaluate.modes import FPS, FRAMES, HEIGHT, WIDTH
from kinetoscope.pipeline import Pipeline, Request


def latent_step(z: torch.Tensor) -> float:
    """Mean absolute change between consecutive latent frames after the first, of a latent (1, C, T', h, w)."""
    return float((z[0, :, 2:] - z[0, :, 1:-1]).abs().mean())


def pixel_step(frames: np.ndarray) -> float:
    """Median over frame steps of the mean absolute change in gray levels, of frames uint8 (T, H, W, 3)."""
    return float(np.median(np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))))


def detail(z: torch.Tensor) -> float:
    """Horizontal neighbor-difference energy over the variance of a latent: 2 for white noise, lower when smooth."""
    return float((z[..., 1:] - z[..., :-1]).pow(2).mean() / z.var())


def measure(pipe: Pipeline, cases: list, strengths: list[float], guidance: float) -> dict:
    """Each strength's mean measures over the cases, and the clips' own ("real")."""
    rows: dict[str, list[tuple[float, float, float]]] = {"real": []} | {str(s): [] for s in strengths}
    for c in cases:
        z0 = pipe.encode(c.clip.frames)  # (1, C, T', h, w)
        rows["real"].append((latent_step(z0), pixel_step(c.clip.frames), detail(z0)))
        given = torch.zeros(1, z0.shape[2], dtype=torch.bool)
        req = Request(c.prompt, WIDTH, HEIGHT, FRAMES, FPS, seed=c.index, guidance=guidance)
        for s in strengths:
            z = pipe.sample(req, given, z0, progress=False, strength=s)
            rows[str(s)].append((latent_step(z), pixel_step(pipe.decode(z)), detail(z)))
    return {k: dict(zip(("latent_step", "pixel_step", "detail"), np.round(np.mean(v, axis=0), 4).tolist(), strict=True))
            for k, v in rows.items()}  # fmt: skip


def table(res: dict) -> str:
    m = res["measures"]
    real = m["real"]
    lines = [f"### Coherence in time: model {res['model']}, {res['cases']} cases, guidance {res['guidance']}", "",
             "| denoised from t0 | latent step | x real | pixel step | x real | detail |", "|---|---|---|---|---|---|",
             f"| (the clips themselves) | {real['latent_step']:.3f} | 1.00 | {real['pixel_step']:.2f} | 1.00 | "
             f"{real['detail']:.3f} |"]  # fmt: skip
    for k, v in m.items():
        if k != "real":
            lines.append(f"| {k} | {v['latent_step']:.3f} | {v['latent_step'] / real['latent_step']:.2f} | "
                         f"{v['pixel_step']:.2f} | {v['pixel_step'] / real['pixel_step']:.2f} | {v['detail']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="a bundle folder (dit/ + vae/) or a DiT run; default: bundled")
    ap.add_argument("--cases", type=int, default=12)
    ap.add_argument("--strengths", default="0.2,0.4,0.7,1", help="noise levels t0 to denoise from, in (0, 1]")
    ap.add_argument("--guidance", type=float, default=4.0)
    ap.add_argument("-o", "--out", default="benchmarks/results/coherence.json")
    a = ap.parse_args(argv)
    strengths = [float(s) for s in a.strengths.split(",")]
    if not a.cases > 0 or not all(0 < s <= 1 for s in strengths):
        ap.error("--cases must be positive and every strength in (0, 1]")
    pipe = Pipeline(a.model)
    cases = draw_cases(a.cases, 0, HEIGHT, WIDTH, FRAMES, FPS, "terse")
    argv = sys.argv[1:] if argv is None else argv
    res = {"command": shlex.join(["python", "benchmarks/coherence.py", *argv]), "machine": machine(),
           "model": a.model or "bundled", "cases": a.cases, "guidance": a.guidance,
           "measures": measure(pipe, cases, strengths, a.guidance)}  # fmt: skip
    return write_result(res, a.out, table(res))


if __name__ == "__main__":
    sys.exit(main())
