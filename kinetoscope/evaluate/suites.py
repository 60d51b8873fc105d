"""`kinetoscope eval`: a named suite run against a model, written as JSON, a Markdown table and a contact sheet.

Parts (each a module of this package, shared with the benchmark scripts that report them in more detail):
- adherence (adherence.py): prompts of held-out (color, shape, motion) triples, scored by the analyzer per fact;
- consistency, from the same clips: the object count holds from frame to frame, the prompted color stays one object,
  the background does not flicker;
- physics (physics.py): continuations of uniform motion, parabolas, bounces and collisions against the world's
  physics, in and out of the training distribution, normalized so the renderer's own clips score 100%;
- modes (modes.py): image-to-video, extend, backward, connect, loop and edit, on the same kind of cases;
- reconstruction (reconstruction.py): the model's VAE on held-out world clips, real footage and photos.
`quick` runs in about a minute, for tests and a first look; `full` is what the README quotes. Rates carry 95% Wilson
intervals, so a quick rate can be checked against the full one: they agree when the intervals overlap.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from kinetoscope.errors import KinetoscopeError
from kinetoscope.evaluate import modes as modes_suite
from kinetoscope.evaluate.adherence import draw_cases, misses_line, mix, score, summarize
from kinetoscope.evaluate.analyzer import Analysis, analyze
from kinetoscope.evaluate.physics import KINDS, draw_physics_cases, run_case, summarize_physics
from kinetoscope.evaluate.reconstruction import reconstruction
from kinetoscope.evaluate.sheet import save_sheet
from kinetoscope.pipeline import Pipeline, Request

WIDTH, HEIGHT, FRAMES, FPS = modes_suite.WIDTH, modes_suite.HEIGHT, modes_suite.FRAMES, modes_suite.FPS
SHEET_CLIPS = 6  # adherence clips on the contact sheet (plus each mode's first case)


@dataclass(frozen=True)
class Suite:
    adherence: int  # cases
    modes: int  # cases per mode
    world_clips: int  # reconstruction: held-out world clips per size
    real_windows: int  # reconstruction: held-out windows of real footage per size
    sides: tuple[int, ...]  # reconstruction: short sides
    physics: int  # cases per scenario and split
    physics_splits: tuple[str, ...]  # "in" and / or "out" of the training distribution
    steps: int = 20
    guidance: float = 4.0
    seed: int = 0  # which world clips become the cases


SUITES = {
    "quick": Suite(adherence=6, modes=1, world_clips=4, real_windows=3, sides=(64,), physics=1, physics_splits=("in",)),
    "full": Suite(adherence=100, modes=50, world_clips=16, real_windows=6, sides=(64, 128), physics=8,
                  physics_splits=("in", "out")),
}


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """The 95% Wilson score interval of a rate k / n (None for n = 0)."""
    if n == 0:
        return None
    p = k / n
    mid, half = (p + z * z / (2 * n)), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return round((mid - half) / (1 + z * z / n), 4), round((mid + half) / (1 + z * z / n), 4)


def consistency(an: Analysis, verdict: dict) -> dict:
    """Per clip: the share of frames whose object count is the clip's usual one, the share of frames where the
    prompted color is seen as exactly one object (adherence's own count), and the background flicker (L* units per
    frame step)."""
    usual = Counter(an.count_per_frame).most_common(1)[0][0]
    return {"count_stable": round(float(np.mean([c == usual for c in an.count_per_frame])), 4),
            "color_one_object": verdict["one_object_share"], "flicker": round(float(an.flicker), 3)}  # fmt: skip


def run_suite(name: str, model: str | None = None, progress: bool = True, steps: int | None = None
              ) -> tuple[dict, list[tuple[str, np.ndarray]]]:
    """Run the suite (with `steps` sampling steps instead of the suite's, if given); returns the report
    (JSON-ready) and the contact sheet's rows."""
    if name not in SUITES:
        raise KinetoscopeError(f"--suite {name!r}: the suites are {', '.join(SUITES)}")
    suite = SUITES[name] if steps is None else replace(SUITES[name], steps=steps)
    t0 = time.perf_counter()
    pipe = Pipeline(model)
    seconds: dict[str, float] = {}
    sheet: list[tuple[str, np.ndarray]] = []

    a = time.perf_counter()
    cases = draw_cases(max(suite.adherence, suite.modes), suite.seed, HEIGHT, WIDTH, FRAMES, FPS, "terse")
    rows, steady = [], []
    for c in tqdm(cases[: suite.adherence], desc="adherence", disable=not progress):
        req = Request(c.prompt, WIDTH, HEIGHT, FRAMES, FPS, seed=c.index, steps=suite.steps, guidance=suite.guidance)
        frames = pipe.generate(req, progress=False).frames  # (T, H, W, 3)
        an = analyze(frames, FPS)
        verdict = score(c.truth, an)
        rows.append({"index": c.index, "prompt": c.prompt, "truth": c.truth, **verdict})
        steady.append(consistency(an, verdict))
        if c.index < SHEET_CLIPS:
            sheet.append((f"{c.index}: {c.prompt}", frames))
    adherence = summarize(rows)
    for key in ("color", "direction", "gravity", "one_object"):
        adherence[key]["interval"] = wilson(adherence[key]["k"], adherence[key]["n"])
    seconds["adherence"] = time.perf_counter() - a

    steady_summary = {key: round(float(np.mean([s[key] for s in steady])), 4) for key in steady[0]}

    a = time.perf_counter()
    how = modes_suite.How(suite.steps, suite.guidance)
    mode_rows: dict[str, list[dict]] = {m: [] for m in modes_suite.CASES}
    for c in tqdm(cases[: suite.modes], desc="modes", disable=not progress):
        for mode, record, frames, _ in modes_suite.run_modes(pipe, c, list(mode_rows), how):
            if c.index == 0:
                sheet.append((f"{mode}: {c.prompt}", frames))
            mode_rows[mode].append(record)
    modes = modes_suite.summarize(mode_rows, None)
    for key, r in modes.items():
        if "k" in r:
            r["interval"] = wilson(r["k"], r["n"])
    seconds["modes"] = time.perf_counter() - a

    a = time.perf_counter()
    physics_rows = []
    for i, case in enumerate(tqdm(draw_physics_cases(suite.physics, suite.physics_splits, suite.seed), desc="physics",
                                  disable=not progress)):  # fmt: skip
        record, frames = run_case(pipe, case, suite.steps, suite.guidance, seed=i)
        physics_rows.append(record)
        if i < len(KINDS):
            sheet.append((f"physics {case.scenario} ({case.split}): {record['prompt']}", frames))
    seconds["physics"] = time.perf_counter() - a

    a = time.perf_counter()
    recon = reconstruction(pipe.vae, list(suite.sides), suite.world_clips, suite.real_windows, verbose=False)
    seconds["reconstruction"] = time.perf_counter() - a

    machine = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "cpu_count": os.cpu_count(),
               "threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version()}
    report = {
        "suite": name,
        "settings": asdict(suite),
        "model": model or "bundled",
        "machine": machine,
        "adherence": {"summary": adherence, "mix": mix(cases[: suite.adherence]), "cases": rows},
        "consistency": {"summary": steady_summary, "clips": steady},
        "physics": {"summary": summarize_physics(physics_rows), "cases": physics_rows},
        "modes": {"summary": modes, "cases": mode_rows},
        "reconstruction": recon,
        "seconds": {k: round(v, 1) for k, v in {**seconds, "total": time.perf_counter() - t0}.items()},
    }
    return report, sheet


def _rate(r: dict) -> str:
    if r.get("rate") is None:
        return "-"
    ci = r.get("interval")
    return f"{r['k']}/{r['n']} = {r['rate']:.0%}" + (f" [{ci[0]:.0%}, {ci[1]:.0%}]" if ci else "")


def markdown(report: dict) -> str:
    """The report as Markdown tables: adherence, consistency, modes, reconstruction."""
    s = report["adherence"]["summary"]
    out = [f"## Kinetoscope eval: suite `{report['suite']}`, model `{report['model']}`", "",
           "| adherence (held-out prompts) | result [95% interval] | bar |", "|---|---|---|"]  # fmt: skip
    names = {"color": "color", "direction": "direction (moving cases)", "gravity": "gravity (falling cases)",
             "one_object": "one object in >= 90% of frames"}  # fmt: skip
    for key, label in names.items():
        bar = s["bars"].get(key)
        need = "" if bar is None else f">= {bar['bar']:.0%}"
        out.append(f"| {label} | {_rate(s[key])} | {need} |")
    out.append(f"| one object, mean share of frames | {s['one_object_frames']['rate']:.0%} | >= 90% |")
    if "direction_misses" in s:
        out.append(f"| {misses_line(s)} | | |")
    c = report["consistency"]["summary"]
    out += ["", "| consistency (same clips) | mean |", "|---|---|",
            f"| object count at its usual value | {c['count_stable']:.0%} of frames |",
            f"| prompted color seen as one object | {c['color_one_object']:.0%} of frames |",
            f"| background flicker | {c['flicker']:.2f} L* per frame step |"]  # fmt: skip
    out += ["", "| physics (continuations; 100% = the renderer's own clips) | cases | velocity | acceleration |",
            "|---|---|---|---|"]  # fmt: skip
    for key, r in report["physics"]["summary"].items():
        acc = "-" if r["acceleration_score"] is None else f"{r['acceleration_score']:.0%}"
        out.append(f"| {key} | {r['n']} | {r['velocity_score']:.0%} | {acc} |")
    m = report["modes"]["summary"]
    out += ["", "| modes | result [95% interval] | bar |", "|---|---|---|"]
    if "image_psnr" in m:
        out.append(f"| image: frame 0 vs the image after the VAE (min) | {m['image_psnr']['min_db']:.1f} dB | >= 28 dB |")
    for key, bar in modes_suite.BARS.items():
        if key in m:
            out.append(f"| {key.replace('_', ' ')} | {_rate(m[key])} | >= {bar:.0%} |")
    out += ["", "| reconstruction (held-out) | size | clips | PSNR dB | SSIM | latent-frame seam (input) |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    for r in report["reconstruction"]:
        seam = "-" if r.get("seam") is None else f"{r['seam']:.2f} ({r['seam_input']:.2f})"
        out.append(f"| {r['source']} | {r['size']} | {r['n']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {seam} |")
    t = report["seconds"]
    out += ["", "seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in t.items())]
    return "\n".join(out)


def write_report(report: dict, sheet: list[tuple[str, np.ndarray]], out: str | Path) -> list[Path]:
    """report.json, report.md and report.png (the contact sheet) beside each other; returns the paths."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    md, png = out.with_suffix(".md"), out.with_suffix(".png")
    out.write_text(json.dumps(report, indent=1) + "\n")
    md.write_text(markdown(report) + "\n")
    save_sheet(sheet, png, columns=12)
    return [out, md, png]
