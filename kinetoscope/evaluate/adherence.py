"""Prompt adherence cases and their scores (the adherence suite; benchmarks/adherence.py is its command line).

A case is a physics clip of the world with one moving object, a vocabulary shape (so the prompt names its color),
whose (color, shape, motion) triple is held out of training (``vocab.is_held_out``) and which stays at least half in
view in every frame (so every frame should show exactly one object). Every third case is a falling object ("falls
and bounces" or "is thrown in an arc"); the others are any other single-object motion but "stays still" and the
pendulum's "swings" (see LEFT_OUT). Cases are the first clips of ``sample_spec(k, seed)`` that fit, so they are a
pure function of the seed, the size, the frame count and the rate. ``score`` turns what the analyzer saw in a clip
into verdicts against the case's truth; ``summarize`` turns verdicts into rates and bars.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from kinetoscope.errors import KinetoscopeError
from kinetoscope.evaluate.agreement import BAND, _visible_share, _world_displacement
from kinetoscope.evaluate.analyzer import Analysis
from kinetoscope.world import Clip, ClipSpec, render, sample_spec
from kinetoscope.world.vocab import MOVE_THRESHOLD, SHAPES, is_held_out

FALLING = ("falls and bounces", "is thrown in an arc")  # the motions in free flight under the script's gravity
# Not cases: a still object, and the pendulum, whose only held-out triple is a pink ball that swings out of a
# 64 px wide frame (without this rule it made 22 of 100 cases, most of them leaving the view).
LEFT_OUT = ("stays still", "swings")
FALL_EVERY = 3  # cases 0, 3, 6, ... are falling objects
SCREEN_FRAMES = 5  # frames of the cheap render that screens a candidate (see draw_cases)
ONE_OBJECT_CASE = 0.90  # a case passes "one object" when it holds in this share of its frames
BARS = {"color": 0.85, "direction": 0.80, "gravity": 0.80, "one_object_frames": 0.90}  # issue 4


@dataclass
class Case:
    """One evaluation case: the world clip behind it (spec, frames, script) and the prompt taken from its caption."""

    index: int
    spec: ClipSpec
    clip: Clip
    prompt: str
    truth: dict


# ----------------------------------------------------------------------------------------------------------------
# The cases


def _held_out(o: dict) -> bool:
    """True for a script object that can be a case: a moving vocabulary shape in a held-out combination."""
    return o["kind"] in SHAPES and o["motion"] not in LEFT_OUT and is_held_out(o["color"], o["kind"], o["motion"])


def _in_view(script: dict, o: dict) -> bool:
    """True if the object is at least half inside the frame in every frame."""
    return all(_visible_share(o, script["height"], script["width"], t) >= 0.5 for t in range(script["frames"]))


def truth_of(script: dict) -> dict:
    """What the prompt asks for, from the script: identity, motion, direction and which facts are scored."""
    o = script["objects"][0]
    dx, dy = _world_displacement(script, o)
    threshold = MOVE_THRESHOLD * min(script["height"], script["width"])
    return {
        "color": o["color"],
        "kind": o["kind"],
        "motion": o["motion"],
        "direction": o["direction"],
        "displacement": [round(dx, 2), round(dy, 2)],  # world px, first to last frame
        "direction_scored": max(abs(dx), abs(dy)) > (1 + BAND) * threshold,
        "falling": o["motion"] in FALLING,
        "gravity": round(script["gravity"] / script["fps"] ** 2, 4),  # world px / frame^2
        "setting": script["setting"],
        "camera": script["camera"]["motion"],
    }


def draw_cases(n: int, seed: int, height: int, width: int, frames: int, fps: int, caption: str) -> list[Case]:
    """The first n physics clips of sample_spec(k, seed) that fit (see the module docstring), falls every third."""
    want = {True: len(range(0, n, FALL_EVERY)), False: n - len(range(0, n, FALL_EVERY))}
    found: dict[bool, list[tuple[ClipSpec, Clip]]] = {True: [], False: []}
    k = 0
    while len(found[True]) < want[True] or len(found[False]) < want[False]:
        if k > 1000 + 500 * n:  # about 1 world clip in 30 becomes a case (seed 0, 64x112x33); this is far past that
            raise KinetoscopeError(f"only {sum(map(len, found.values()))} of {n} held-out cases in {k} world clips "
                                   f"at {width}x{height}x{frames}")  # fmt: skip
        spec = replace(sample_spec(k, seed, ("physics",), ((height, width),), (frames,), (fps,)), allow_held_out=True)
        k += 1
        # The world draws the first object's identity and motion before anything that depends on the clip's length
        # (later objects may differ: they are placed against the first one's path), so a short render tells whether
        # the first object can be a case at a third of the cost.
        if frames > SCREEN_FRAMES and not _held_out(render(replace(spec, frames=SCREEN_FRAMES)).script["objects"][0]):
            continue
        clip = render(spec)
        objects = clip.script["objects"]
        if len(objects) != 1 or not _held_out(objects[0]) or not _in_view(clip.script, objects[0]):
            continue
        falling = objects[0]["motion"] in FALLING
        if len(found[falling]) < want[falling]:
            found[falling].append((spec, clip))
    falls, others = iter(found[True]), iter(found[False])
    cases = []
    for i in range(n):
        spec, clip = next(falls if i % FALL_EVERY == 0 else others)
        prompt = clip.terse if caption == "terse" else clip.detailed
        cases.append(Case(i, spec, clip, prompt, truth_of(clip.script)))
    return cases


# ----------------------------------------------------------------------------------------------------------------
# Scoring


def score(truth: dict, an: Analysis) -> dict:
    """What the analyzer saw in one clip and the verdicts on it (None where a fact is not scored for this case)."""
    seen = [{"color": o.color, "frames": sum(p is not None for p in o.track), "direction": o.direction,
             "gravity": o.gravity, "bounces": list(o.bounces)} for o in an.objects]  # fmt: skip
    dominant = max(range(len(seen)), key=lambda i: seen[i]["frames"], default=None)  # first of equals: the largest
    main = seen[dominant] if dominant is not None else {"color": None, "direction": None, "gravity": None}
    color = truth["color"]
    per_frame = [sum(o.track[t] is not None and o.color == color for o in an.objects) for t in range(an.frames)]
    share = float(np.mean([c == 1 for c in per_frame]))
    found = {"objects": seen, "dominant": dominant, "prompted_color_per_frame": per_frame, "camera": an.camera.motion}
    return {
        "seen": found,
        "color": main["color"] == color,
        "direction": main["direction"] == truth["direction"] if truth["direction_scored"] else None,
        "gravity": (main["gravity"] or 0) > 0 if truth["falling"] else None,
        "one_object_share": round(share, 4),
        "one_object": share >= ONE_OBJECT_CASE,
    }


def summarize(rows: list[dict]) -> dict:
    """Rates with their counts, the mean one-object frame share, and each bar's verdict."""

    def count(key: str) -> dict:
        xs = [r[key] for r in rows if r[key] is not None]
        return {"k": sum(xs), "n": len(xs), "rate": round(sum(xs) / len(xs), 4) if xs else None}

    out = {key: count(key) for key in ("color", "direction", "gravity", "one_object")}
    out["one_object_frames"] = {"n": len(rows), "rate": round(float(np.mean([r["one_object_share"] for r in rows])), 4)}
    out["direction_misses"] = direction_misses(rows)
    out["bars"] = {}
    for key, bar in BARS.items():
        rate = out[key]["rate"]
        out["bars"][key] = {"bar": bar, "rate": rate, "pass": rate is not None and rate >= bar}
    return out


def direction_misses(rows: list[dict]) -> dict:
    """Why the missed direction cases missed: the main object stayed put ("still"), moved another way, or no
    object was found (v4's 78 misses: 44 still, 29 another way, 5 none): stillness and wrong turns need different
    fixes."""
    out = {"still": 0, "other way": 0, "no object": 0}
    for r in rows:
        if r["direction"] is False:
            dom = r["seen"]["dominant"]
            way = None if dom is None else r["seen"]["objects"][dom]["direction"]
            out["no object" if way is None else "still" if way == "none" else "other way"] += 1
    return out


def misses_line(summary: dict) -> str:
    """The direction misses as one line of a report ("direction misses: still 31, other way 36, no object 0")."""
    return "direction misses: " + ", ".join(f"{k} {v}" for k, v in summary["direction_misses"].items())


def mix(cases: list[Case]) -> dict:
    """How many cases of each motion, how many fall, and how many distinct held-out triples they cover."""
    motions = Counter(c.truth["motion"] for c in cases)
    triples = {(c.truth["color"], c.truth["kind"], c.truth["motion"]) for c in cases}
    return {"falling": sum(c.truth["falling"] for c in cases), "triples": len(triples),
            "motions": dict(sorted(motions.items()))}  # fmt: skip
