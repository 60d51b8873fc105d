"""Generation speed and memory on this machine, and our DiT side by side with diffusers' Wan transformer.

    python benchmarks/generation.py [--quick] [-o benchmarks/results/generation.json]

- sizes: warm wall time of `Pipeline.run` (text-to-video, Euler, 20 steps) at 64, 96 and 128 px short side (9:16),
  17 and 65 frames (65 is two windows), as seconds of video per wall second at 16 fps, with the process's peak RSS;
- samplers: Euler, Heun and AB2 at 10 and 20 steps at the default size (64x112, 33 frames);
- grid: wall seconds of every size x frame count x sampler x step count (one warm run each);
- cold start: a fresh `python -m kinetoscope generate` of the default clip, wall time from spawn to the first frame
  handed to the writer and to exit;
- peer: one DiT forward (the classifier-free pair, batch 2) of ours against `diffusers.WanTransformer3DModel`
  configured to the same width, depth, heads, MLP width, patch, latent channels and text width, random weights, the
  same latent and text, bf16 autocast, the same thread count. The ratio (Wan time / ours) is the figure.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import torch
from common import best_of, machine, write_result

from kinetoscope.models.dit import PRESETS, DiT, count_params
from kinetoscope.models.text import TextEmbedding
from kinetoscope.pipeline import Inputs, Pipeline, Request

SIZES = ((64, 112), (96, 176), (128, 224))  # (width, height), 9:16 on the 16 px grid
FRAMES = (17, 65)
SAMPLERS = ("euler", "heun", "ab2")
STEPS = (10, 20)
FPS = 16
PEER_SHAPES = ((9, 14, 8), (17, 28, 16))  # latent (T', H', W'): 64x112x33 and 128x224x65
TEXT_TOKENS = 16


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_run(pipe: Pipeline, req: Request, repeats: int) -> float:
    """Best wall seconds of `repeats` warm runs (one warm-up first), every frame made."""
    return best_of(lambda: deque(pipe.run(req, Inputs(), progress=False), maxlen=0), repeats)


def size_rows(pipe: Pipeline, sizes, frames, repeats: int) -> list[dict]:
    rows = []
    for w, h in sizes:
        for n in frames:
            sec = timed_run(pipe, Request("a red ball rolls right on a gray floor", w, h, n, FPS), repeats)
            rows.append({"width": w, "height": h, "frames": n, "wall_s": round(sec, 3),
                         "video_s_per_wall_s": round((n / FPS) / sec, 3), "peak_rss_mb": round(rss_mb(), 1)})  # fmt: skip
            print(f"  {w}x{h}x{n}: {sec:.2f} s, {(n / FPS) / sec:.2f} s of video per s", file=sys.stderr)
    return rows


def sampler_rows(pipe: Pipeline, samplers, steps, repeats: int) -> list[dict]:
    rows = []
    for name in samplers:
        for k in steps:
            sec = timed_run(pipe, Request("a red ball rolls right on a gray floor", sampler=name, steps=k), repeats)
            rows.append({"sampler": name, "steps": k, "wall_s": round(sec, 3),
                         "video_s_per_wall_s": round((33 / FPS) / sec, 3)})  # fmt: skip
            print(f"  {name} {k} steps: {sec:.2f} s", file=sys.stderr)
    return rows


def grid_rows(pipe: Pipeline, sizes, frames, samplers, steps) -> list[dict]:
    """Every size x frame count x sampler x step count, one warm run each (the tables above are best of repeats)."""
    rows = []
    for (w, h), n, name, k in itertools.product(sizes, frames, samplers, steps):
        req = Request("a red ball rolls right on a gray floor", w, h, n, FPS, sampler=name, steps=k)
        sec = timed_run(pipe, req, 1)
        rows.append({"width": w, "height": h, "frames": n, "sampler": name, "steps": k, "wall_s": round(sec, 3),
                     "video_s_per_wall_s": round((n / FPS) / sec, 3)})  # fmt: skip
    return rows


def cold_start() -> dict:
    """Spawn `kinetoscope generate` and time the first frame it hands to the writer, and its exit."""
    code = ("import sys, time; t0 = float(sys.argv[1]); from kinetoscope.pipeline import Inputs, Pipeline, Request\n"
            "p = Pipeline(); it = p.run(Request('a red ball bounces on a gray floor'), Inputs(), progress=False)\n"
            "first = next(it); print(f'first {time.time() - t0:.3f}', flush=True)\n"
            "from kinetoscope.media import write_video; import itertools\n"
            "write_video(sys.argv[2], itertools.chain([first], it), 16)\n")  # fmt: skip
    out = Path("/tmp") / f"kinetoscope-cold-{os.getpid()}.mp4"
    t0 = time.time()
    r = subprocess.run([sys.executable, "-c", code, repr(t0), str(out)], capture_output=True, text=True, check=False)
    total = time.time() - t0
    out.unlink(missing_ok=True)
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])
    first = float(next(ln.split()[1] for ln in r.stdout.splitlines() if ln.startswith("first")))
    return {"first_frame_s": round(first, 2), "exit_s": round(total, 2)}


def wan_like(preset: str):
    """diffusers' Wan transformer at our preset's width, depth, heads, MLP width, patch and channels."""
    from diffusers import WanTransformer3DModel

    c = PRESETS[preset]
    return WanTransformer3DModel(patch_size=c.patch, num_attention_heads=c.heads, attention_head_dim=c.head_dim,
                                 in_channels=c.latent, out_channels=c.latent, text_dim=c.text_dim, freq_dim=256,
                                 ffn_dim=int(c.width * c.mlp_ratio), num_layers=c.depth).eval()  # fmt: skip


@torch.no_grad()
def peer_rows(presets, shapes, repeats: int) -> list[dict]:
    rows = []
    for preset in presets:
        torch.manual_seed(0)
        ours, wan = DiT(PRESETS[preset]).eval(), wan_like(preset)
        c = PRESETS[preset]
        for shape in shapes:
            x = torch.randn(2, c.latent, *shape)  # (2, C, T', H', W'): the cond/uncond pair
            txt = TextEmbedding(torch.randn(2, TEXT_TOKENS, c.text_dim), torch.ones(2, TEXT_TOKENS, dtype=torch.bool),
                                torch.randn(2, c.text_dim))  # fmt: skip
            t_frames = torch.full((2, shape[0]), 0.5)

            def run_ours(ours=ours, x=x, t_frames=t_frames, txt=txt):
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    ours(x, t_frames, txt)

            def run_wan(wan=wan, x=x, txt=txt):
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    wan(x, torch.full((2,), 500.0), txt.tokens, return_dict=False)

            a, b = best_of(run_ours, repeats), best_of(run_wan, repeats)
            tokens = shape[0] * shape[1] * shape[2] // 4
            rows.append({"preset": preset, "latent": list(shape), "tokens": tokens, "ours_ms": round(1000 * a, 2),
                         "wan_ms": round(1000 * b, 2), "wan_over_ours": round(b / a, 3),
                         "ours_params": count_params(ours), "wan_params": sum(p.numel() for p in wan.parameters())})  # fmt: skip
            print(f"  peer {preset} {shape}: ours {1000 * a:.1f} ms, Wan {1000 * b:.1f} ms", file=sys.stderr)
    return rows


def report(res: dict) -> str:
    out = ["| size | frames | wall s | s of video / wall s | peak RSS MB |", "|---|---|---|---|---|"]
    out += [f"| {r['width']}x{r['height']} | {r['frames']} | {r['wall_s']:.2f} | {r['video_s_per_wall_s']:.2f} | "
            f"{r['peak_rss_mb']:.0f} |" for r in res["sizes"]]  # fmt: skip
    out += ["", "| sampler | steps | wall s (64x112, 33 frames) | s of video / wall s |", "|---|---|---|---|"]
    out += [f"| {r['sampler']} | {r['steps']} | {r['wall_s']:.2f} | {r['video_s_per_wall_s']:.2f} |"
            for r in res["samplers"]]  # fmt: skip
    out += ["", "| size | frames | " + " | ".join(f"{n} {k}" for n in SAMPLERS for k in STEPS) + " |",
            "|---|---|" + "---|" * (len(SAMPLERS) * len(STEPS))]  # fmt: skip
    cells: dict[tuple, dict] = {}
    for r in res["grid"]:
        cells.setdefault((r["width"], r["height"], r["frames"]), {})[(r["sampler"], r["steps"])] = r["wall_s"]
    for (w, h, n), row in cells.items():
        out.append(f"| {w}x{h} | {n} | " + " | ".join(f"{row[(s, k)]:.2f}" if (s, k) in row else "-"
                                                    for s in SAMPLERS for k in STEPS) + " |")  # fmt: skip
    c = res["cold_start"]
    out += ["", f"cold start (`generate` default clip, fresh process): first frame at {c['first_frame_s']:.1f} s, "
            f"done at {c['exit_s']:.1f} s"]  # fmt: skip
    out += ["", "| DiT forward, batch 2, bf16 | latent | tokens | ours ms | Wan ms | Wan / ours | params ours / Wan |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    out += [f"| {r['preset']} | {tuple(r['latent'])} | {r['tokens']} | {r['ours_ms']:.1f} | {r['wan_ms']:.1f} | "
            f"{r['wan_over_ours']:.2f} | {r['ours_params'] / 1e6:.2f}M / {r['wan_params'] / 1e6:.2f}M |"
            for r in res["peer"]]  # fmt: skip
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one size, one sampler, one repeat (for tests)")
    ap.add_argument("-o", "--output", default="benchmarks/results/generation.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    started = machine()
    repeats = 1 if args.quick else 2
    pipe = Pipeline()
    res = {
        "command": " ".join(["python", sys.argv[0], *argv]),
        **started,
        "sizes": size_rows(pipe, SIZES[:1] if args.quick else SIZES, FRAMES[:1] if args.quick else FRAMES, repeats),
        "samplers": sampler_rows(pipe, SAMPLERS[:1] if args.quick else SAMPLERS, STEPS[:1] if args.quick else STEPS,
                                 repeats),  # fmt: skip
        "grid": grid_rows(pipe, SIZES[:1] if args.quick else SIZES, FRAMES[:1] if args.quick else FRAMES,
                          SAMPLERS[:1] if args.quick else SAMPLERS, STEPS[:1] if args.quick else STEPS),  # fmt: skip
        "cold_start": cold_start(),
        "peer": peer_rows(["small"] if args.quick else ["small", "base"], PEER_SHAPES[:1] if args.quick else PEER_SHAPES,
                          1 if args.quick else 3),  # fmt: skip
    }
    default = [r for r in res["samplers"] if r["sampler"] == "euler"]
    res["realtime_default"] = max(default, key=lambda r: r["steps"])["video_s_per_wall_s"]  # Euler, 20 steps
    return write_result(res, args.output, report(res))


if __name__ == "__main__":
    sys.exit(main())
