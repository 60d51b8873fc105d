"""Every mode measured against the issue's bars: image-to-video, extend (forward and backward), connect, loop, edit and
a minute-long video, scored by the analyzer on world clips the model never trained on.

    python benchmarks/modes.py [--model DIR] [--cases 50] [--modes image,extend,backward,connect,loop,edit,long]
                               [--steps 20] [--guidance 4] [--frames 33] [--quick]
                               [-o benchmarks/results/modes.json]

The cases are adherence.py's (one moving object, a held-out (color, shape, motion) triple, in view throughout;
every third one falls), at 64x112, 33 frames, 16 fps; the prompt is the clip's terse caption.

- image: the clip's frame 0 is the image. Frame 0 of the output against the image after the VAE round trip (PSNR,
  bar >= 28 dB), and the direction of motion the analyzer reads (bar: correct in >= 80% of the moving cases).
- extend: the clip's first 17 frames, extended by 16; backward: its last 17, extended backward by 16; connect: its
  first 13 frames and last 13, joined by a 7-frame transition. A seam passes when (a) the frame difference across it
  is <= 1.5x the median difference inside the output, and (b) the prompted object continues: the analyzer's track of
  the prompted color is seen on both sides of the seam and does not jump (the step across the seam is at most
  max(3x its median step, 5% of the short side)). Bar: both in >= 90% of the cases; connect needs both its seams.
- loop: a loop from the prompt; the analyzer's loop seam (last -> first difference over the median step) <= 1.5.
  Bar: >= 90% of the cases.
- edit: the world clip redone with its color word swapped for another, its own caption as the source prompt
  (FlowEdit, masked; `--source-prompt`; `--frames 81` draws clips past one window). Passes when the analyzer reads
  the new color and the object's track stays within 10% of the short side of the original's (mean distance over the
  frames where both are seen). Bar: >= 80%.
- long: 60 s at 8 fps (481 frames) from three prompts; peak memory (max RSS of a fresh process) at 60 s against
  10 s (bar: within 15%), and the prompted color still tracked in the last second.

Beside the JSON, a contact sheet (same name, .png) shows the world's clip and every mode's output for the first
cases, so a person can look at what was scored.
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import machine, write_result

from kinetoscope.cli import _one_line
from kinetoscope.errors import KinetoscopeError
from kinetoscope.evaluate.adherence import draw_cases
from kinetoscope.evaluate.modes import (
    BARS,
    CASES,
    FPS,
    FRAMES,
    HEIGHT,
    IMAGE_PSNR,
    MODES,
    WIDTH,
    How,
    run_modes,
    summarize,
)
from kinetoscope.evaluate.sheet import save_sheet
from kinetoscope.pipeline import Pipeline

MEMORY_RATIO = 1.15  # peak RSS at 60 s over 10 s
LONG_PROMPTS = ("a red ball rolls right on a gray floor", "a blue cube slides left in a park",
                "a yellow star falls and bounces on a wooden floor")  # fmt: skip
QUICK_CASES = 2
SHEET_CASES = 3  # the contact sheet beside the JSON shows every mode's output for the first cases




# ----------------------------------------------------------------------------------------------------------------
# The long video: a fresh process per duration, so max RSS is that duration's peak


def long_video(args: argparse.Namespace, prompt: str, seconds: float, seed: int) -> dict:
    """Generate `seconds` at 8 fps in a fresh process; its peak RSS, wall time and whether the color holds."""
    code = (
        "import json, resource, sys, time; import numpy as np\n"
        "from kinetoscope.pipeline import Inputs, Pipeline, Request\n"
        "from kinetoscope.evaluate.analyzer import analyze\n"
        "a = json.loads(sys.argv[1]); t0 = time.time(); pipe = Pipeline(a['model'])\n"
        "req = Request(a['prompt'], a['w'], a['h'], a['frames'], 8, seed=a['seed'], steps=a['steps'], "
        "guidance=a['guidance'])\n"
        "n, tail = 0, []\n"
        "for f in pipe.run(req, Inputs(), progress=False):\n"
        "    n += 1; tail = (tail + [f])[-9:]\n"
        "colors = [o.color for o in analyze(np.stack(tail), 8).objects]\n"
        "print(json.dumps({'frames': n, 'wall_s': round(time.time() - t0, 2), 'tail_colors': colors, "
        "'max_rss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))\n"
    )
    spec = {"model": args.model, "prompt": prompt, "w": WIDTH, "h": HEIGHT, "frames": 1 + round(8 * seconds),
            "seed": seed, "steps": args.steps, "guidance": args.guidance}  # fmt: skip
    r = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True, check=False)
    if r.returncode:
        raise KinetoscopeError(f"long video of {seconds} s failed: {r.stderr.strip().splitlines()[-1]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    color = prompt.split()[1]
    return {**out, "color_at_end": color in out["tail_colors"]}


def long_case(args: argparse.Namespace) -> dict:
    rows = []
    for i, prompt in enumerate(LONG_PROMPTS[: 1 if args.quick else None]):
        short, full = long_video(args, prompt, 10, i), long_video(args, prompt, 60, i)
        rows.append({"prompt": prompt, "10s": short, "60s": full,
                     "memory_ratio": round(full["max_rss_mb"] / short["max_rss_mb"], 3)})  # fmt: skip
    return {"videos": rows, "memory_pass": all(r["memory_ratio"] <= MEMORY_RATIO for r in rows),
            "color_at_end": sum(r["60s"]["color_at_end"] for r in rows), "n": len(rows)}  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------
# Report


def report(res: dict) -> str:
    s, cfg = res["summary"], res["settings"]
    rows = ["| mode | measure | result | bar | |", "|---|---|---|---|---|"]
    verdict = lambda ok: "pass" if ok else "FAIL"
    if "image_psnr" in s:
        p = s["image_psnr"]
        rows.append(f"| image | frame 0 vs image after VAE, min / mean | {p['min_db']} / {p['mean_db']} dB | "
                    f">= {IMAGE_PSNR} dB | {verdict(p['pass'])} |")  # fmt: skip
        d = s["image_direction"]
        rows.append(f"| image | direction correct | {d['k']}/{d['n']} | >= 80% | {verdict(d['pass'])} |")
    names = {"extend": "seam <= 1.5x median and track continues", "backward": "seam <= 1.5x median and track continues",
             "connect": "both seams <= 1.5x median and track continues", "loop": "loop seam <= 1.5x median",
             "edit": "new color read, track within 10%"}  # fmt: skip
    for mode, what in names.items():
        if mode in s:
            r = s[mode]
            extra = f" (median ratio {r['median_ratio']})" if "median_ratio" in r else ""
            extra += f", track continues at {r['continues']:.0%} of seams" if "continues" in r else ""
            rows.append(f"| {mode} | {what} | {r['k']}/{r['n']}{extra} | >= {BARS[mode]:.0%} | {verdict(r['pass'])} |")
    if "long" in s:
        lg = s["long"]
        rows.append(f"| long | peak RSS 60 s / 10 s | {', '.join(map(str, lg['memory_ratios']))} | <= 1.15 | "
                    f"{verdict(lg['memory_pass'])} |")  # fmt: skip
        rows.append(f"| long | prompted color tracked in the last second | {lg['color_at_end']} | all | "
                    f"{verdict(lg['color_at_end'].split('/')[0] == lg['color_at_end'].split('/')[1])} |")  # fmt: skip
    head = (f"### Modes: model {cfg['model'] or 'bundled'}, {cfg['cases']} cases at {WIDTH}x{HEIGHT}x"
            f"{cfg.get('frames', FRAMES)}, {cfg['steps']} steps, guidance {cfg['guidance']}")  # fmt: skip
    t = res["timing"]
    timing = f"wall {t['wall_s']:.0f} s; per case and mode: " + ", ".join(f"{k} {v:.2f} s" for k, v in t["per_case_s"].items())
    return "\n".join([head, "", *rows, "", timing])


def run(args: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        raise KinetoscopeError(f"--modes: unknown {sorted(unknown)}; the modes are {', '.join(MODES)}")
    pipe = Pipeline(args.model)
    n = QUICK_CASES if args.quick else args.cases
    if args.frames != FRAMES and set(modes) != {"edit"}:
        raise KinetoscopeError(f"--frames {args.frames}: only the edit takes cases of other than {FRAMES} frames")
    cases = draw_cases(n, args.seed, HEIGHT, WIDTH, args.frames, FPS, "terse") if set(modes) & set(CASES) else []
    rows: dict[str, list[dict]] = {m: [] for m in modes if m in CASES}
    seconds = dict.fromkeys(rows, 0.0)
    sheet: list[tuple[str, np.ndarray]] = []
    for c in cases:
        if c.index < SHEET_CASES:
            sheet.append((f"case {c.index}, the world's clip: {c.prompt}", c.clip.frames))
        for mode, record, frames, sec in run_modes(pipe, c, list(rows), How(args.steps, args.guidance)):
            if c.index < SHEET_CASES:
                sheet.append((f"case {c.index}, {mode}", frames))
            rows[mode].append(record)
            seconds[mode] += sec
        print(f"  {c.index:3d} " + " ".join(f"{m}={'ok' if rows[m][-1].get('pass', rows[m][-1].get('direction')) else 'no'}"
                                             for m in rows) + f"  {c.prompt}", file=sys.stderr, flush=True)  # fmt: skip
    long = None
    if "long" in modes:
        a = time.perf_counter()
        long = long_case(args)
        seconds["long"] = time.perf_counter() - a
    settings = {"model": args.model, "cases": n, "frames": args.frames, "seed": args.seed, "steps": args.steps,
                "guidance": args.guidance, "modes": modes}  # fmt: skip
    timing = {"wall_s": round(time.perf_counter() - t0, 1),
              "per_case_s": {m: round(s / max(1, n if m != "long" else 1), 2) for m, s in seconds.items()}}  # fmt: skip
    if sheet:
        save_sheet(sheet, Path(args.output).with_suffix(".png"), columns=12)
    return {"settings": settings, "summary": summarize(rows, long), "timing": timing, "cases": rows, "long": long,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="a bundle folder (dit/ + vae/) or a DiT run; default: the bundled weights")
    ap.add_argument("--cases", type=int, default=50)
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_CASES} cases and one long video (for tests)")
    ap.add_argument("--modes", default=",".join(MODES), help="which modes, comma-separated (default: all)")
    ap.add_argument("--seed", type=int, default=0, help="which world clips become the cases")
    ap.add_argument("--frames", type=int, default=FRAMES,
                    help=f"the cases' length (default {FRAMES}); longer clips test the windowed edit (--modes edit)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=4.0)
    ap.add_argument("-o", "--output", default="benchmarks/results/modes.json")
    args = ap.parse_args(argv)
    if args.cases < 1:
        ap.error(f"--cases {args.cases} must be at least 1")
    started = machine()
    try:
        res = run(args)
    except (KinetoscopeError, ValueError) as e:
        print(f"modes: error: {_one_line(e)}", file=sys.stderr)
        return 2
    res = {"command": shlex.join(["python", sys.argv[0], *argv]), **started, **res}
    return write_result(res, args.output, report(res))


if __name__ == "__main__":
    sys.exit(main())
