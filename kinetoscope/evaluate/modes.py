"""The modes' measures (the modes suite; benchmarks/modes.py is its command line): each mode run on adherence cases
and scored by the analyzer against the modes issue's bars. See benchmarks/modes.py for what each case does.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np

from kinetoscope.evaluate.adherence import Case
from kinetoscope.evaluate.analyzer import analyze, loop_seam
from kinetoscope.evaluate.quality import psnr
from kinetoscope.media import frames_to_tensor
from kinetoscope.pipeline import Inputs, Pipeline, Request
from kinetoscope.world.vocab import COLORS


@dataclass(frozen=True)
class How:
    """How every case is sampled."""

    steps: int = 20
    guidance: float = 4.0


MODES = ("image", "extend", "backward", "connect", "loop", "edit", "long")
BARS = {"image_direction": 0.80, "extend": 0.90, "backward": 0.90, "connect": 0.90, "loop": 0.90, "edit": 0.80}
IMAGE_PSNR = 28.0  # dB, frame 0 against the image after the VAE round trip
SEAM_RATIO = 1.5  # a seam's frame difference over the median inside the clip
JUMP_STEPS, JUMP_SHARE = 3.0, 0.05  # a track "jumps" past max(3 median steps, 5% of the short side)
EDIT_TRACK = 0.10  # share of the short side the edited track may drift
WIDTH, HEIGHT, FRAMES, FPS = 64, 112, 33, 16  # every case's size: the bundled model's training size


# ----------------------------------------------------------------------------------------------------------------
# Measures


def seam_ratio(frames: np.ndarray, seam: int) -> float:
    """The mean absolute difference between frames seam - 1 and seam over the median of the other steps."""
    f = frames.astype(np.float32)
    steps = np.abs(np.diff(f, axis=0)).mean(axis=(1, 2, 3))  # steps[i]: frame i -> i + 1
    inside = np.delete(steps, seam - 1)
    eps = 0.05  # as in the analyzer's loop seam: a twentieth of a gray level
    return round((float(steps[seam - 1]) + eps) / (float(np.median(inside)) + eps), 4)


def track_of(frames: np.ndarray, color: str) -> list[tuple[float, float] | None]:
    """Per frame, the center of the analyzer's longest-seen object of this color (None where it is not seen)."""
    objects = [o for o in analyze(frames, FPS).objects if o.color == color]
    if not objects:
        return [None] * len(frames)
    best = max(objects, key=lambda o: sum(p is not None for p in o.track))
    return list(best.track)


def continues(track: list[tuple[float, float] | None], seam: int, short: int) -> bool:
    """True if the track is seen within two frames on each side of the seam and does not jump across it."""
    before = next((t for t in (seam - 1, seam - 2) if t >= 0 and track[t] is not None), None)
    after = next((t for t in (seam, seam + 1) if t < len(track) and track[t] is not None), None)
    if before is None or after is None:
        return False
    seen = [(t, p) for t, p in enumerate(track) if p is not None]
    steps = [np.hypot(b[0] - a[0], b[1] - a[1]) / (tb - ta) for (ta, a), (tb, b) in itertools.pairwise(seen)
             if not ta < seam <= tb]  # fmt: skip
    jump = np.hypot(track[after][0] - track[before][0], track[after][1] - track[before][1]) / (after - before)
    return bool(jump <= max(JUMP_STEPS * float(np.median(steps)) if steps else 0.0, JUMP_SHARE * short))


def seam_verdict(frames: np.ndarray, seams: list[int], color: str) -> dict:
    """Each seam's ratio and continuity, and whether all of them pass."""
    track = track_of(frames, color)
    short = min(frames.shape[1:3])
    rows = [{"seam": s, "ratio": seam_ratio(frames, s), "continues": continues(track, s, short)} for s in seams]
    return {"seams": rows, "pass": all(r["ratio"] <= SEAM_RATIO and r["continues"] for r in rows)}


def other_color(color: str) -> str:
    """A color far from this one in the vocabulary's hue order, for the edit's new prompt."""
    names = [c for c in COLORS if c not in ("white", "black", "gray", "brown")]
    return names[(names.index(color) + len(names) // 2) % len(names)] if color in names else "blue"


# ----------------------------------------------------------------------------------------------------------------
# The modes, one case each


def _req(prompt: str, frames: int, how: How, seed: int) -> Request:
    return Request(prompt, WIDTH, HEIGHT, frames, FPS, seed=seed, steps=how.steps, guidance=how.guidance)


def _run(pipe: Pipeline, req: Request, inputs: Inputs) -> np.ndarray:
    return np.stack(list(pipe.run(req, inputs, progress=False)))  # (T, H, W, 3)


def image_case(pipe: Pipeline, c: Case, how: How) -> dict:
    image = c.clip.frames[0]
    out = _run(pipe, _req(c.prompt, FRAMES, how, c.index), Inputs(image=image))
    roundtrip = pipe.decode(pipe.encode(image[None]))
    db = psnr(frames_to_tensor(out[:1]), frames_to_tensor(roundtrip))
    objects = analyze(out, FPS).objects
    main = max(objects, key=lambda o: sum(p is not None for p in o.track), default=None)
    direction = (main is not None and main.direction == c.truth["direction"]) if c.truth["direction_scored"] else None
    return {"psnr": round(db, 2), "direction": direction, "seen_direction": main and main.direction, "frames": out}


def extend_case(pipe: Pipeline, c: Case, how: How) -> dict:
    clip = c.clip.frames[:17]
    out = _run(pipe, _req(c.prompt, 17, how, c.index), Inputs(extend=clip))
    return {**seam_verdict(out, [17], c.truth["color"]), "frames": out}


def backward_case(pipe: Pipeline, c: Case, how: How) -> dict:
    clip = c.clip.frames[16:]
    out = _run(pipe, _req(c.prompt, 17, how, c.index), Inputs(extend=clip, backward=True))
    return {**seam_verdict(out, [len(out) - len(clip)], c.truth["color"]), "frames": out}


def connect_case(pipe: Pipeline, c: Case, how: How) -> dict:
    a, b = c.clip.frames[:13], c.clip.frames[20:]
    out = _run(pipe, _req(c.prompt, 9, how, c.index), Inputs(connect=(a, b)))
    return {**seam_verdict(out, [len(a), len(out) - len(b)], c.truth["color"]), "frames": out}


def loop_case(pipe: Pipeline, c: Case, how: How) -> dict:
    out = _run(pipe, _req(c.prompt, FRAMES, how, c.index), Inputs(loop=True))
    ratio = loop_seam(out)
    return {"ratio": ratio, "pass": ratio <= SEAM_RATIO, "frames": out}


def edit_case(pipe: Pipeline, c: Case, how: How) -> dict:
    old, new = c.truth["color"], other_color(c.truth["color"])
    prompt = c.prompt.replace(old, new, 1)
    out = _run(pipe, _req(prompt, FRAMES, how, c.index), Inputs(edit=c.clip.frames, source=c.prompt))
    objects = analyze(out, FPS).objects
    main = max(objects, key=lambda o: sum(p is not None for p in o.track), default=None)
    before, after = track_of(c.clip.frames, old), track_of(out, new)
    both = [(p, q) for p, q in zip(before, after, strict=True) if p is not None and q is not None]
    drift = float(np.mean([np.hypot(p[0] - q[0], p[1] - q[1]) for p, q in both])) / min(HEIGHT, WIDTH) if both else None
    color = main is not None and main.color == new
    return {"prompt": prompt, "new_color": new, "seen_color": main and main.color, "color": color,
            "drift": None if drift is None else round(drift, 4),
            "pass": bool(color and drift is not None and drift <= EDIT_TRACK), "frames": out}  # fmt: skip


CASES = {"image": image_case, "extend": extend_case, "backward": backward_case, "connect": connect_case,
         "loop": loop_case, "edit": edit_case}  # fmt: skip


def run_modes(pipe: Pipeline, case: Case, modes: list[str], how: How) -> list[tuple[str, dict, np.ndarray, float]]:
    """Each of `modes` on one case: (mode, its record with the case's index and prompt, its frames, seconds)."""
    out = []
    for mode in modes:
        t0 = time.perf_counter()
        record = CASES[mode](pipe, case, how)
        frames = record.pop("frames")
        out.append((mode, {"index": case.index, "prompt": case.prompt, **record}, frames, time.perf_counter() - t0))
    return out


def summarize(rows: dict[str, list[dict]], long: dict | None) -> dict:
    def rate(xs: list) -> dict:
        xs = [x for x in xs if x is not None]
        return {"k": int(sum(xs)), "n": len(xs), "rate": round(sum(xs) / len(xs), 4) if xs else None}

    out: dict = {}
    if "image" in rows:
        dbs = [r["psnr"] for r in rows["image"]]
        out["image_psnr"] = {"min_db": min(dbs), "mean_db": round(float(np.mean(dbs)), 2),
                             "pass": min(dbs) >= IMAGE_PSNR}  # fmt: skip
        out["image_direction"] = rate([r["direction"] for r in rows["image"]])
        out["image_direction"]["pass"] = (out["image_direction"]["rate"] or 0) >= BARS["image_direction"]
    for mode in ("extend", "backward", "connect", "loop", "edit"):
        if mode in rows:
            out[mode] = rate([r["pass"] for r in rows[mode]])
            out[mode]["pass"] = (out[mode]["rate"] or 0) >= BARS[mode]
    if mode_rows := rows.get("loop"):
        out["loop"]["median_ratio"] = round(float(np.median([r["ratio"] for r in mode_rows])), 3)
    for mode in ("extend", "backward", "connect"):
        if mode in rows:
            seams = [s for r in rows[mode] for s in r["seams"]]
            out[mode]["median_ratio"] = round(float(np.median([s["ratio"] for s in seams])), 3)
            out[mode]["continues"] = round(float(np.mean([s["continues"] for s in seams])), 4)
    if long is not None:
        out["long"] = {"memory_pass": long["memory_pass"], "color_at_end": f"{long['color_at_end']}/{long['n']}",
                       "memory_ratios": [v["memory_ratio"] for v in long["videos"]]}  # fmt: skip
    return out
