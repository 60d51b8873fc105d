"""The physics suite, in the style of PhyWorld and Physics-IQ: does a generated continuation move the way the world's
physics says it must?

A case is a world physics clip under a still camera: one object in uniform motion (slides or rolls left/right), in
a parabola ("is thrown in an arc") or falling and bouncing, or two objects that collide. The model is given the
clip's first 9 frames (`--extend`) and its caption, and generates 24 more; the analyzer tracks the generated frames,
and the tracks are compared with the script's over those 24 frames:

- velocity error: mean |v_generated - v_true| over frame steps, over (mean |v_true| + 1 px/frame), capped at 1;
  an object seen in under half the generated frames scores the cap;
- acceleration error (parabolas and bounces): |a_fitted - a_true| / a_true from the analyzer's gravity fit, capped.

The same measures on the world's own clip (the analyzer tracking the rendered frames) give the floor that
rendering and analysis leave even for perfect physics, and each case's score is (cap - model) / (cap - floor),
clipped to [0, 1]: the renderer's own clip scores 100%, a missing object or an error of 100% or more scores 0. In distribution the clips are 64x112, the training size; out of distribution
128x224, where every object is twice as large and moves (and falls) twice as many pixels per frame as anything the
model trained on. (The world scales speeds to the clip's duration and gravity to the frame, so frame rate and
frame count would not move a clip out of the training range; size does.)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from kinetoscope.errors import KinetoscopeError
from kinetoscope.evaluate.analyzer import analyze
from kinetoscope.pipeline import Inputs, Pipeline, Request
from kinetoscope.world import Clip, render, sample_spec

KINDS = {  # scenario -> the motions that make it
    "uniform": ("slides left", "slides right", "rolls left", "rolls right"),
    "parabola": ("is thrown in an arc",),
    "bounce": ("falls and bounces",),
    "collision": ("collide",),
}
SPLITS = {"in": (64, 112), "out": (128, 224)}  # (width, height): the training size, and twice it
FPS, FRAMES, GIVEN = 16, 33, 9
CAP = 1.0


@dataclass
class PhysicsCase:
    scenario: str
    split: str  # "in" or "out" of distribution
    clip: Clip


def scenario_of(script: dict) -> str | None:
    """Which scenario a script is, or None when it is none of them (or the camera moves)."""
    if script["camera"]["motion"] != "static":
        return None
    motions = [o["motion"] for o in script["objects"]]
    for name, kinds in KINDS.items():
        if name == "collision" and len(motions) == 2 and motions[0] == "collide":
            colors = {o["color"] for o in script["objects"]}
            return name if len(colors) == 2 else None
        if len(motions) == 1 and motions[0] in kinds:
            return name
    return None


def draw_physics_cases(per_scenario: int, splits: tuple[str, ...] = ("in", "out"), seed: int = 0) -> list[PhysicsCase]:
    """The first `per_scenario` clips of each scenario and split among `sample_spec(k, seed)`'s physics clips."""
    cases = []
    for split in splits:
        found: dict[str, list[Clip]] = {name: [] for name in KINDS}
        for k in itertools.count():
            if all(len(v) >= per_scenario for v in found.values()):
                break
            if k > 400 * per_scenario + 400:
                short = {n: len(v) for n, v in found.items() if len(v) < per_scenario}
                raise KinetoscopeError(f"physics cases: too few clips for {short} in {k} world clips")
            width, height = SPLITS[split]
            spec = sample_spec(k, seed, ("physics",), ((height, width),), (FRAMES,), (FPS,))
            clip = render(replace(spec, allow_held_out=True))
            name = scenario_of(clip.script)
            if name is not None and len(found[name]) < per_scenario:
                found[name].append(clip)
        cases += [PhysicsCase(name, split, clip) for name, clips in found.items() for clip in clips]
    return cases


def _errors(frames: np.ndarray, script: dict, fps: float) -> dict:
    """Velocity (and, in flight, acceleration) error of the analyzer's tracks on frames GIVEN.. against the script.
    Only those frames are analyzed, so the given frames' true motion cannot lend the fit anything."""
    an = analyze(frames[GIVEN:], fps)
    velocity, accel = [], []
    for o in script["objects"]:
        mine = [a for a in an.objects if a.color == o["color"]]
        best = max(mine, key=lambda a: sum(p is not None for p in a.track), default=None)
        truth = np.stack([o["x"], o["y"]], axis=1)[GIVEN:]  # (n, 2) frame px
        v_true = np.diff(truth, axis=0)  # (n - 1, 2)
        seen = [] if best is None else [(t, p) for t, p in enumerate(best.track) if p is not None]
        if len(seen) < len(truth) / 2:
            velocity.append(CAP)
            accel.append(CAP)
            continue
        steps = [(ta, np.subtract(b, a) / (tb - ta)) for (ta, a), (tb, b) in itertools.pairwise(seen)]
        err = np.mean([np.linalg.norm(v - v_true[min(t, len(v_true) - 1)]) for t, v in steps])
        velocity.append(min(CAP, float(err / (np.linalg.norm(v_true, axis=1).mean() + 1.0))))
        if o["motion"] in KINDS["parabola"] + KINDS["bounce"]:
            g_true = script["gravity"] * script["camera"]["zoom"][0] / fps**2  # frame px / frame^2
            g = best.gravity
            accel.append(CAP if g is None else min(CAP, abs(g - g_true) / g_true))
    return {"velocity": float(np.mean(velocity)), "acceleration": float(np.mean(accel)) if accel else None}


def _score(floor: float | None, model: float | None) -> float | None:
    """Where the model's error sits between failure (the cap: 0) and the renderer's own floor (1)."""
    if floor is None or model is None:
        return None
    return float(np.clip((CAP - model) / (CAP - floor), 0.0, 1.0))


def run_case(pipe: Pipeline, case: PhysicsCase, steps: int, guidance: float, seed: int) -> tuple[dict, np.ndarray]:
    """Generate the continuation of one case and score it against the floor; returns the record and the frames."""
    clip, fps = case.clip, case.clip.fps
    height, width = clip.frames.shape[1:3]
    req = Request(clip.terse, width, height, FRAMES - GIVEN + 1, fps, seed=seed, steps=steps, guidance=guidance)
    out = np.stack(list(pipe.run(req, Inputs(extend=clip.frames[:GIVEN]), progress=False)))  # (FRAMES, H, W, 3)
    floor, model = _errors(clip.frames, clip.script, fps), _errors(out, clip.script, fps)
    record = {"scenario": case.scenario, "split": case.split, "prompt": clip.terse, "fps": fps, "floor": floor,
              "model": model, "velocity_score": _score(floor["velocity"], model["velocity"]),
              "acceleration_score": _score(floor["acceleration"], model["acceleration"])}  # fmt: skip
    return record, out


def summarize_physics(rows: list[dict]) -> dict:
    """Mean scores (and raw errors) per split and scenario."""
    out: dict = {}
    for split in sorted({r["split"] for r in rows}):
        for name in KINDS:
            mine = [r for r in rows if r["split"] == split and r["scenario"] == name]
            if not mine:
                continue
            acc = [r["acceleration_score"] for r in mine if r["acceleration_score"] is not None]
            out[f"{split}/{name}"] = {
                "n": len(mine),
                "velocity_score": round(float(np.mean([r["velocity_score"] for r in mine])), 4),
                "acceleration_score": round(float(np.mean(acc)), 4) if acc else None,
                "velocity_error": round(float(np.mean([r["model"]["velocity"] for r in mine])), 4),
                "velocity_error_floor": round(float(np.mean([r["floor"]["velocity"] for r in mine])), 4),
            }
    return out
