"""The game-content bars: loop seams, one character across actions, and the matte against known masks.

    python benchmarks/sprites.py [--sheets 10 | --held-out {1,2,3}] [--seed-from 0] [--steps 20] [--stride 1]
                                 [--palettes] [--quick] [-o benchmarks/results/sprites.json]

``--held-out 1``, ``2`` or ``3`` draws other characters (HELD_OUT) instead; set 3 is every color and character of the
world's vocabulary in none of the others (17). ``--seed-from N`` draws sheet k with seed N + k instead of k: a fresh
sample of the same characters. Every set at seed 0 has been seen while choosing the sprite code (README, "Game
content", says which when); a run at a seed never used before is the check on a change.

- Loops: every looping animation of ``--sheets`` character sheets (4 actions each) and of the looping effects,
  cut out and shown over gray as a game would; a loop passes when the analyzer's loop seam (last -> first frame
  difference over the median frame step) is <= 1.5.
- One character: the analyzer reads the largest object of each action (cut out, over gray). Strict: the same top
  color in every action. As the drama studio measures it: one color among the dominant colors (top 2, each at least
  15% of the object's named pixels) of every action.
- Matte: transparent world sprites (true mask known: the renderer's flat key), cut out raw, after H.264 (how
  shards store clips) and after the bundled VAE's round trip (how blurry generated sprites are); the share of pixels
  whose alpha is right (0 on background, 255 on sprite).
- Motion (not a bar; a loop that does not move passes the seam bar trivially): each animation's mean frame step and
  how far the sprite's center rises and falls, beside the same for the world's transparent sprites of that action.
- Adherence (not a bar): the sheets whose every action reads the color the prompt names.
- Palettes (``--palettes``, not a bar): each character sheet also recolored (`kinetoscope sprites --palettes`) to a
  color far from the prompt's (`modes.other_color`); the recolored actions the analyzer reads in the new color, and
  their loop seams. The first sheets are the same with or without it (palettes are made after the sheet).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from common import machine, write_result

from kinetoscope.evaluate.analyzer import analyze, loop_seam
from kinetoscope.evaluate.modes import other_color
from kinetoscope.media import read_video, write_video
from kinetoscope.pipeline import LOOP_SEAM, Pipeline
from kinetoscope.studio.matte import key_color, matte
from kinetoscope.studio.sprites import (
    SpriteOptions,
    colors_of,
    effect_of,
    make_sprites,
    motion,
    over_gray,
    prompt_color,
)
from kinetoscope.world import render, sample_spec

CHARACTERS = ("a red knight", "a blue slime", "a gray robot", "a purple wizard", "an orange cat", "a green knight",
              "a yellow slime", "a white robot", "a pink cat", "a cyan wizard")  # fmt: skip
HELD_OUT = {  # characters never in CHARACTERS, for checking that the bars generalize
    1: ("a black cat", "an orange robot", "a green slime", "a red wizard", "a blue knight", "a white cat",
        "a purple slime", "a yellow robot", "a pink knight", "a cyan slime", "a green robot", "an orange knight"),
    2: ("a blue cat", "a red slime", "a green wizard", "a yellow knight", "a purple robot", "a white slime",
        "a black knight", "an orange slime", "a pink robot", "a cyan knight", "a blue robot", "a purple cat"),
    3: ("a red robot", "a red cat", "an orange wizard", "a yellow wizard", "a yellow cat", "a green cat",
        "a cyan robot", "a cyan cat", "a blue wizard", "a purple knight", "a pink slime", "a pink wizard",
        "a white knight", "a white wizard", "a black slime", "a black robot", "a black wizard"),
}  # fmt: skip
EFFECTS = ("a spinning gold coin", "a blue gem sparkles", "an explosion")


def sheets(pipe: Pipeline, characters: tuple[str, ...], steps: int, folder: Path, stride: int = 1, seed_from: int = 0,
           palettes: bool = False) -> tuple[list[dict], list[dict], list[dict]]:  # fmt: skip
    rows, loops, moves = [], [], []
    for k, prompt in enumerate((*characters, *EFFECTS)):
        t0 = time.perf_counter()
        named = prompt_color(prompt)
        palette = (other_color(named),) if palettes and named and not effect_of(prompt) else ()
        o = SpriteOptions(steps=steps, seed=seed_from + k, stride=stride, palettes=palette)
        s = make_sprites(prompt, folder / f"sheet{k}.png", o, pipe)
        colors, ranked = {}, {}
        for anim in s.animations:
            name, clip = anim.name, over_gray(anim.frames)  # the sprite as a game shows it: the key is gone
            moves.append({"prompt": prompt, "animation": name, **motion(anim.frames)})
            objects = analyze(clip, 12).objects
            colors[name] = objects[0].color if objects else None
            ranked[name] = {c for c, share in objects[0].colors[:2] if share >= 0.15} if objects else set()
            if anim.loop:
                seam = loop_seam(clip)
                loops.append({"prompt": prompt, "animation": name, "seam": round(seam, 3), "ok": seam <= LOOP_SEAM})
        same = len(set(colors.values())) == 1 and None not in colors.values()
        shared = set.intersection(*ranked.values()) if ranked else set()
        wanted = prompt_color(prompt)
        rows.append({"prompt": prompt, "seed": o.seed, "kind": s.kind, "colors": colors, "same_color": same,
                     "shared_dominant": sorted(shared), "prompt_color": wanted,
                     "prompt_color_everywhere": bool(wanted) and set(colors.values()) == {wanted},
                     "wall_s": round(time.perf_counter() - t0, 1)})  # fmt: skip
        for color, p in s.palettes.items():
            rows[-1]["palette"] = {"color": color,
                                   "reads": {a.name: colors_of(a.frames, a.fps)[0] for a in p.animations},
                                   "seams": {a.name: round(loop_seam(over_gray(a.frames)), 3) for a in p.animations}}
    return rows, loops, moves


def world_sprites(n: int, frames: int) -> Iterator:
    """The first ``n`` of the world's sprite clips (64 px, 12 fps) on a transparent background: the true mask is
    known (the renderer's flat key)."""
    i = 0
    while n:
        clip = render(sample_spec(i, 0, ("sprites",), ((64, 64),), (frames,), (12,)))
        i += 1
        if clip.script.get("setting") == "transparent":
            n -= 1
            yield clip


def world_motion(n: int, frames: int) -> dict:
    """`motion` of the world's own transparent sprites by action: what the model was shown."""
    by_action: dict[str, list[dict]] = {}
    for clip in world_sprites(n, frames):
        by_action.setdefault(clip.script["objects"][0]["action"], []).append(motion(matte(clip.frames)))
    return {a: {k: round(float(np.mean([m[k] for m in ms])), 2) for k in ("step", "rise")} | {"clips": len(ms)}
            for a, ms in sorted(by_action.items())}  # fmt: skip


def motion_table(moves: list[dict], world: dict) -> list[str]:
    lines = ["", "animation | generated: mean frame step | sprite rise, px | world: mean frame step | rise, px",
             "---|---|---|---|---"]  # fmt: skip
    for action in sorted({m["animation"] for m in moves}):
        ms = [m for m in moves if m["animation"] == action]
        w = world.get(action, {})
        lines.append(f"{action} ({len(ms)}) | {np.mean([m['step'] for m in ms]):.2f} | "
                     f"{np.mean([m['rise'] for m in ms]):.2f} | {w.get('step', '-')} | {w.get('rise', '-')}")  # fmt: skip
    return lines


def mattes(pipe: Pipeline, n: int, folder: Path) -> dict:
    out = {"raw": [], "h264": [], "vae": []}
    for clip in world_sprites(n, 17):
        frames = clip.frames
        true = np.any(frames != key_color(frames), axis=-1)
        versions = {"raw": frames, "h264": read_video(write_video(folder / "s.mp4", frames, 12, crf=18)),
                    "vae": pipe.decode(pipe.encode(frames))}  # fmt: skip
        for name, f in versions.items():
            alpha = matte(f)[..., 3]
            out[name].append(float(np.where(true, alpha == 255, alpha == 0).mean()))
    return {k: {"mean": round(float(np.mean(v)), 4), "min": round(float(np.min(v)), 4),
                "share_at_least_95": round(float(np.mean(np.array(v) >= 0.95)), 3), "clips": len(v)}
            for k, v in out.items()}  # fmt: skip


def table(res: dict) -> str:
    loops, rows = res["loops"], [r for r in res["sheets"] if r["kind"] == "character"]
    ok = sum(x["ok"] for x in loops)
    same = sum(r["same_color"] for r in rows)
    shared = sum(bool(r["shared_dominant"]) for r in rows)
    named = [r for r in rows if r.get("prompt_color")]
    asked = sum(r["prompt_color_everywhere"] for r in named)
    lines = [f"loops with seam <= {LOOP_SEAM}: {ok}/{len(loops)} ({ok / len(loops):.0%})",
             f"character sheets whose actions have the same top color: {same}/{len(rows)} ({same / len(rows):.0%})",
             (f"character sheets whose actions share a dominant color (top 2, >= 15%): {shared}/{len(rows)} "
              f"({shared / len(rows):.0%})"),
             f"character sheets whose every action reads the prompt's color: {asked}/{len(named)} (not a bar)",
             (f"seconds per character sheet: median {np.median([r['wall_s'] for r in rows]):.1f}, "
              f"max {max(r['wall_s'] for r in rows):.1f}"),
             "", "matte vs true mask | mean pixels right | worst clip | clips >= 95%",
             "---|---|---|---"]  # fmt: skip
    lines += [f"{k} | {v['mean']:.2%} | {v['min']:.2%} | {v['share_at_least_95']:.0%}" for k, v in res["matte"].items()]
    return "\n".join(lines + motion_table(res["motion"], res["world_motion"]) + palette_lines(rows))


def palette_lines(rows: list[dict]) -> list[str]:
    """The palettes' summary: recolored actions read in the new color, whole sheets, loops."""
    recolored = [r["palette"] for r in rows if "palette" in r]
    if not recolored:
        return []
    reads = [c == p["color"] for p in recolored for c in p["reads"].values()]
    whole = sum(set(p["reads"].values()) == {p["color"]} for p in recolored)
    seams = [x <= LOOP_SEAM for p in recolored for x in p["seams"].values()]
    return ["", f"palettes: recolored actions read in the new color {sum(reads)}/{len(reads)}; sheets in it "
                f"throughout {whole}/{len(recolored)}; recolored loops with seam <= {LOOP_SEAM} "
                f"{sum(seams)}/{len(seams)}"]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sheets", type=int, default=10, help=f"character sheets (at most {len(CHARACTERS)})")
    ap.add_argument("--held-out", type=int, choices=sorted(HELD_OUT),
                    help="a set of other characters instead (a check that the bars generalize)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--seed-from", type=int, default=0, help="sheet k is drawn with seed N + k: a fresh sample")
    ap.add_argument("--stride", type=int, default=1, help="kinetoscope sprites --stride: generated frames per frame")
    ap.add_argument("--mattes", type=int, default=50, help="world sprites for the matte measure")
    ap.add_argument("--palettes", action="store_true", help="each character sheet recolored too (not a bar)")
    ap.add_argument("--quick", action="store_true", help="one sheet, two steps, five mattes: checks the script runs")
    ap.add_argument("-o", "--out", default="benchmarks/results/sprites.json")
    a = ap.parse_args(argv)
    if a.quick:
        a.sheets, a.steps, a.mattes = 1, 2, 5
    pipe = Pipeline()
    with tempfile.TemporaryDirectory(prefix="kinetoscope-sprites-") as tmp:
        characters = HELD_OUT[a.held_out] if a.held_out else CHARACTERS[: a.sheets]
        rows, loops, moves = sheets(pipe, characters, a.steps, Path(tmp), a.stride, a.seed_from, a.palettes)
        res = {"machine": machine(), "steps": a.steps, "stride": a.stride, "held_out": a.held_out, "palettes": a.palettes,
               "seed_from": a.seed_from, "sheets": rows, "loops": loops,
               "motion": moves, "world_motion": world_motion(a.mattes * 4, 9),
               "matte": mattes(pipe, a.mattes, Path(tmp))}  # fmt: skip
    return write_result(res, a.out, table(res))


if __name__ == "__main__":
    sys.exit(main())
