"""Does the DiT read the words of a prompt? The flow loss on a clip with its own caption against the same caption
with one word swapped (left <-> right, up <-> down, or the color for another), at fixed noise levels.

    python benchmarks/words.py [--model DIR] [--cases 60] [-o benchmarks/results/words.json]

A model that uses a word denoises its clip better with the true word than with the swapped one: the relative loss
gap (loss swapped - loss true) / loss true is positive, and the true caption wins in most cases. A gap of ~0 with
wins at ~50% means the word does nothing. The cases are adherence.py's (held-out color, shape and motion triples);
"direction" takes the moving cases whose caption names left/right/up/down, "color" every case, with the color
swapped as the modes' edit does (evaluate/modes.other_color). This is the check that found the bundled v2 DiT deaf
to direction words (gaps under 0.1%) while it reads colors (+6% at t = 0.5): benchmarks/results/words.json. A v2
fine-tune that also read MiniLM's embedding-layer tokens, where "left" and "right" differ 2.3x more than in its last
layer, read colors more and direction still not at all (words_lexical.json; commit f789818, reverted).
"""

from __future__ import annotations

import argparse
import shlex
import sys

import numpy as np
import torch
from common import machine, write_result

from kinetoscope.diffusion.flow import interpolate, velocity_target
from kinetoscope.evaluate.adherence import draw_cases
from kinetoscope.evaluate.modes import FPS, FRAMES, HEIGHT, WIDTH, other_color
from kinetoscope.pipeline import Pipeline
from kinetoscope.world.captions import OPPOSITE

LEVELS = (0.3, 0.5, 0.7, 0.9)  # noise levels t the loss is read at


def swapped(prompt: str, kind: str, color: str) -> str | None:
    """The prompt with its direction words or its color swapped; None when there is nothing to swap."""
    words = prompt.split(" ")
    if kind == "color":
        return prompt.replace(color, other_color(color), 1) if color in words else None
    if not any(w.strip(",") in OPPOSITE for w in words):
        return None
    return " ".join(OPPOSITE.get(w.strip(","), w.strip(",")) + ("," if w.endswith(",") else "") for w in words)


@torch.no_grad()
def gaps(pipe: Pipeline, cases: list, latents: list[torch.Tensor], kind: str) -> dict:
    """Per noise level: the mean relative loss gap and the share of cases the true caption wins; `latents` are the
    cases' clips encoded, (1, C, T', h, w) each."""
    rows = {t: [] for t in LEVELS}
    for n, (c, z) in enumerate(zip(cases, latents, strict=True)):
        if kind == "direction" and c.truth["direction"] not in OPPOSITE:
            continue
        other = swapped(c.prompt, kind, c.truth["color"])
        if other is None:
            continue
        txt = pipe.text([c.prompt, other])
        noise = torch.randn(z.shape, generator=torch.Generator().manual_seed(n))
        for t in LEVELS:
            tt = torch.full((2, z.shape[2]), t)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                v = pipe.dit(interpolate(z, noise, tt[:1]).repeat(2, 1, 1, 1, 1), tt, txt).float()
            loss = (v - velocity_target(z, noise)).square().mean(dim=(1, 2, 3, 4))  # (2,) true, swapped
            rows[t].append(float((loss[1] - loss[0]) / loss[0]))
    levels = {str(t): {"gap": round(float(np.mean(r)), 5), "true_wins": round(float(np.mean(np.array(r) > 0)), 3)}
              for t, r in rows.items()}  # fmt: skip
    return {"cases": len(rows[LEVELS[0]]), "levels": levels}


def table(res: dict) -> str:
    head = "word swapped | cases | " + " | ".join(f"t={t}: gap, true wins" for t in LEVELS)
    lines = [head, "---|---|" + "---|" * len(LEVELS)]
    for kind in ("direction", "color"):
        r = res[kind]
        cells = [f"{r['levels'][str(t)]['gap']:+.2%}, {r['levels'][str(t)]['true_wins']:.0%}" for t in LEVELS]
        lines.append(f"{kind} | {r['cases']} | " + " | ".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="a bundle folder (dit/ + vae/) or a DiT run; default: bundled")
    ap.add_argument("--cases", type=int, default=60)
    ap.add_argument("-o", "--out", default="benchmarks/results/words.json")
    a = ap.parse_args(argv)
    pipe = Pipeline(a.model)
    cases = draw_cases(a.cases, 0, HEIGHT, WIDTH, FRAMES, FPS, "terse")
    latents = [pipe.encode(c.clip.frames) for c in cases]  # each clip encoded once, for both swaps
    argv = sys.argv[1:] if argv is None else argv
    res = {"command": shlex.join(["python", "benchmarks/words.py", *argv]), "machine": machine(),
           "model": a.model or "bundled", "direction": gaps(pipe, cases, latents, "direction"),
           "color": gaps(pipe, cases, latents, "color")}  # fmt: skip
    return write_result(res, a.out, table(res))


if __name__ == "__main__":
    sys.exit(main())
