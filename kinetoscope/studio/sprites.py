"""Game content through the Pipeline: looping sprite animations of one character, effects, and design sheets.

A character sheet: one **reference** still ("a sprite of <prompt> standing idle, ... on a transparent background";
the cleanest cut-out of a few seeds, preferring one in the color the prompt names), then each action as a **seamless
loop conditioned on that reference** (the pipeline's loop mode with the reference as frame 0), so the character does
not change between actions. Every frame is cut out of the key background (studio/matte.py) with the key read from the
reference. The action prompts name the character by the reference's color when it is not the one asked for
(`as_seen`). An action whose cut-out loses the sheet's dominant color (the analyzer's reading: the reference's for the
first action, then the first action's) or whose wrap stands out is drawn again, with another seed, then at half the
guidance (`_action`); a sheet whose actions still disagree is drawn again from the next best reference. ``stride``
N generates N times the frames and keeps every Nth: with 4, one frame per latent frame, the steps are even (the VAE
eases motion out inside a latent frame and catches up at the next, benchmarks/seams.py), at the cost of more drift
over the longer clip. The sheet is written for engines
(studio/sheets.py).
An **effect** prompt (a coin, a gem, fire, an explosion) makes one animation: a loop, or a one-shot for things that
happen once (explosions, bursts).
**Palettes** recolor a finished character sheet (`_recolor`): every action's clip edited from its own prompt to the
same prompt in another color (the pipeline's `--source-prompt` edit), and the new colors taken inside the sheet's own
cut-out only, so the silhouette, the poses and the timing are the sheet's, exactly.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from kinetoscope.errors import KinetoscopeError
from kinetoscope.evaluate.analyzer import analyze, loop_seam
from kinetoscope.media import atomic_file
from kinetoscope.pipeline import LOOP_SEAM, Inputs, Pipeline, Request
from kinetoscope.sizes import SPATIAL_MULTIPLE
from kinetoscope.studio.matte import CUT, despill, key_color, key_distance, matte, unmix
from kinetoscope.studio.sheets import Animation, write_sheet
from kinetoscope.world.vocab import COLORS

ACTIONS = {"idle": "idling in place", "walk": "walking in place", "run": "running in place", "jump": "hopping",
           "attack": "attacking"}  # fmt: skip
EFFECTS = {"coin": "spin", "gem": "sparkle", "sparkle": "sparkle", "fire": "burn", "flame": "burn",
           "torch": "burn", "explosion": "explode", "blast": "explode", "burst": "explode"}  # fmt: skip
ONE_SHOT = ("explode",)  # effects that play once
PINGPONG = ("jump",)  # actions that go and come back: image-to-video from the reference, played forward then back
REFERENCE_TRIES = 8  # candidate reference stills (seeds seed, seed + 1000, ...); the cleanest cut-out is kept
SHEET_TRIES = 2  # reference stills a sheet is drawn from in turn until its actions agree on the top color
ACTION_TRIES = 6  # seeds per action until one keeps the sheet's color and loops; the second half at half guidance
STILL_STEP = 1.0  # a mean frame step (gray levels, `motion`) under which an animation barely moves
KEYED_OUT = 40  # gray levels despill may take off a palette's color before it is warned about as keyed out
RECOLOR_TRIES = 3  # edit seeds per action and palette until the cut-out reads the new color and loops; the best kept


@dataclass(frozen=True)
class SpriteOptions:
    size: int = 64
    frames: int = 8  # frames per loop: a multiple of 4, at least 8
    actions: tuple[str, ...] = ("idle", "walk", "jump", "attack")
    fps: float = 12.0
    seed: int = 0
    steps: int = 20
    guidance: float = 4.0
    model: str | None = None
    stride: int = 1  # generated frames per sprite frame: 4 keeps one per latent frame (even steps, more drift)
    progress: bool = False  # a progress bar on stderr: reference stills, then actions
    palettes: tuple[str, ...] = ()  # a character only: the sheet again in each of these colors (`_recolor`)

    def check(self) -> None:
        if self.size % SPATIAL_MULTIPLE or not 16 <= self.size <= 256:
            raise KinetoscopeError(f"--size {self.size} must be a multiple of 16 in 16..256")
        if self.frames % 4 or not 8 <= self.frames <= 64:
            raise KinetoscopeError(f"--frames {self.frames} must be a multiple of 4 in 8..64 (a loop of 4k frames)")
        unknown = [a for a in self.actions if a not in ACTIONS]
        if unknown or not self.actions:
            raise KinetoscopeError(f"unknown action {unknown[0] if unknown else '(none)'!r}; "
                                   f"use some of {', '.join(ACTIONS)}")  # fmt: skip
        if not 1 <= self.stride <= 4 or self.frames * self.stride > 64:
            raise KinetoscopeError(f"--stride {self.stride} must be 1..4 with --frames x --stride at most 64 "
                                   f"(here {self.frames} x {self.stride})")  # fmt: skip
        if not 1 <= self.fps <= 60:
            raise KinetoscopeError(f"--fps {self.fps} is outside 1..60")
        unknown = [c for c in self.palettes if c not in COLORS]
        if unknown:
            raise KinetoscopeError(f"--palettes: {unknown[0]!r} is not a color; use some of {', '.join(COLORS)}")


@dataclass
class SpriteSheet:
    paths: dict[str, Path]
    animations: list[Animation]
    kind: str = "character"
    palettes: dict[str, SpriteSheet] = field(default_factory=dict)  # the same sheet recolored, by color


def effect_of(prompt: str) -> str | None:
    """The effect a prompt asks for ("spin", "sparkle", "burn", "explode"), or None for a character."""
    words = prompt.lower().replace(",", " ").split()
    return next((EFFECTS[w.rstrip("s")] for w in words if w.rstrip("s") in EFFECTS), None)


def make_sprites(prompt: str, out: str | Path, options: SpriteOptions = SpriteOptions(),
                 pipe: Pipeline | None = None) -> SpriteSheet:  # fmt: skip
    """Generate the sheet for ``prompt`` and write it (atlas, JSON, .tres, previews) at ``out``; each palette's
    sheet goes beside it as OUT_<color>.png (and its JSON, .tres and previews)."""
    options.check()
    effect = effect_of(prompt)
    if options.palettes and (effect or not prompt_color(prompt)):
        raise KinetoscopeError("--palettes recolors a character whose prompt names its color (\"a red knight\"); "
                               f"{'an effect' if effect else repr(prompt) + ' names none'}")  # fmt: skip
    pipe = pipe or Pipeline(options.model)
    total = 1 if effect else REFERENCE_TRIES + len(options.actions) * (1 + len(options.palettes))
    out = Path(out)
    with tqdm(total=total, desc="sprites", unit="clip", disable=not options.progress) as bar:
        if effect:
            animations, drawn = _effect(pipe, prompt, effect, options), []
            bar.update(1)
        else:
            animations, drawn = _character(pipe, prompt, options, bar)
        sheet = SpriteSheet(write_sheet(out, animations), animations, "effect" if effect else "character")
        for color in options.palettes:
            _warn_if_keyed_out(color, drawn[0][1])
            recolored = []
            for animation, (req, clip) in zip(animations, drawn, strict=True):
                bar.set_postfix_str(f"{color} {animation.name}")
                recolored.append(replace(animation, frames=_recolor(pipe, req, clip, animation.frames, color)[0]))
                bar.update(1)
            path = out.with_name(f"{out.stem}_{color}{out.suffix}")
            sheet.palettes[color] = SpriteSheet(write_sheet(path, recolored), recolored)
    return sheet


def _effect(pipe: Pipeline, prompt: str, effect: str, o: SpriteOptions) -> list[Animation]:
    """One animation: a loop, or a one-shot for effects that happen once."""
    req = Request(f"a pixel-art {prompt} on a transparent background", o.size, o.size, o.frames * o.stride + 1, o.fps,
                  o.seed, o.steps, o.guidance)  # fmt: skip
    once = effect in ONE_SHOT
    clip = _frames(pipe, req, Inputs(loop=not once))[: o.frames * o.stride : o.stride]
    clip = clip if once else close_loop(clip)
    return [Animation(effect, matte(clip), o.fps, loop=not once)]


def _character(pipe: Pipeline, prompt: str, o: SpriteOptions, bar: tqdm
               ) -> tuple[list[Animation], list[tuple[Request, np.ndarray]]]:  # fmt: skip
    """The sheet from the best reference still; when its actions still disagree on the top color, again from the next
    best, up to SHEET_TRIES references, keeping the sheet whose actions agree most. Returns its animations and each
    one's request and clip before the cut (what a palette edits)."""
    best, best_agree = ([], []), -1
    for n, reference in enumerate(reference_stills(pipe, prompt, o, bar=bar)[:SHEET_TRIES]):
        if n:
            bar.total += len(o.actions)
            bar.refresh()
        animations, colors, drawn = _sheet(pipe, prompt, reference, o, bar)
        agree = max((colors.count(c) for c in colors if c), default=0)
        if agree > best_agree:
            best, best_agree = (animations, drawn), agree
        if agree == len(colors):
            break
    return best


def _sheet(pipe: Pipeline, prompt: str, reference: np.ndarray, o: SpriteOptions, bar: tqdm
           ) -> tuple[list[Animation], list[str | None], list[tuple[Request, np.ndarray]]]:  # fmt: skip
    """Every action as a loop from the reference, cut out with the reference's key, each keeping the color the first
    one reads; the animations, the analyzer's color for each (None: no sprite found), and each one's request and clip
    before the cut."""
    key = key_color(reference[None])
    color, _ = colors_of(matte(reference[None], key), o.fps)
    seen = as_seen(prompt, color)
    animations, colors, drawn = [], [], []
    for action in o.actions:
        bar.set_postfix_str(action)
        req = Request(f"a sprite of {seen} {ACTIONS[action]}, facing right, on a transparent background",
                      o.size, o.size, o.frames * o.stride + 1, o.fps, o.seed, o.steps, o.guidance)  # fmt: skip
        cut, read, clip = _action(pipe, req, reference, key, color, o.stride, action in PINGPONG)
        if not animations:  # its color is the one the others keep: a clip reads unlike its still (a red wizard,
            # seed 3: the still reads red, all 6 idle loops blue; a two-colored character's top color flips)
            color = read or color
        animations.append(Animation(action, cut, o.fps, loop=True))
        colors.append(read)
        drawn.append((req, clip))
        bar.update(1)
    return animations, colors, drawn


def _action(pipe: Pipeline, req: Request, reference: np.ndarray, key: np.ndarray, color: str | None, stride: int,
            pingpong: bool = False) -> tuple[np.ndarray, str | None, np.ndarray]:  # fmt: skip
    """One action's animation from the reference: cut out ((T, H, W, 4) uint8), its color, and its clip before the
    cut ((T, H, W, 3)). The first try whose cut-out keeps the sheet's dominant color (the character must not change
    between actions) and loops seamlessly is kept, else the best (`_best_try`). Tries: ACTION_TRIES seeds, the second
    half at half the guidance (the prompt pulls less, the reference given as frame 0 holds more); a ``pingpong``
    action then falls back on loop mode at half the guidance for ACTION_TRIES // 2 more (`_pingpong`, `_loop`)."""
    half = ACTION_TRIES // 2
    tries = [(1.0, pingpong)] * half + [(0.5, pingpong)] * (ACTION_TRIES - half) + [(0.5, False)] * (half * pingpong)

    def draw(k: int, scale: float, out_and_back: bool) -> tuple[np.ndarray, np.ndarray]:
        seeded = replace(req, seed=req.seed + 7919 * k, guidance=req.guidance * scale)
        clip = (_pingpong if out_and_back else _loop)(pipe, seeded, reference, stride)
        return matte(clip, key), clip

    return _best_try((draw(k, *t) for k, t in enumerate(tries)), color, req.fps)


def _recolor(pipe: Pipeline, req: Request, clip: np.ndarray, cut: np.ndarray, color: str
             ) -> tuple[np.ndarray, str | None]:  # fmt: skip
    """One action of a palette: its clip (T, H, W, 3) edited from its own prompt to the same prompt in `color` (a
    source-prompt edit), the wrap blended again (`close_loop`), and its colors taken inside the action's cut-out `cut`
    (T, H, W, 4) only: the alpha is the sheet's, so nothing moves and no background comes along (left alone, the edit
    sometimes painted a blob of the new color beside a small sprite). RECOLOR_TRIES seeds at most (`_best_try`).
    Returns the recolored cut-out (T, H, W, 4) and the color it reads."""
    target = replace(req, prompt=as_seen(req.prompt, color))  # its frames (1 + 4k) too: the edit keeps the clip's
    alpha, key = cut[..., 3:], key_color(clip)  # (T, H, W, 1); the sheet's background

    def draw(k: int) -> tuple[np.ndarray, np.ndarray]:
        edited = _frames(pipe, replace(target, seed=req.seed + 7919 * k), Inputs(edit=clip, source=req.prompt))
        rgb = unmix(close_loop(edited), key).round().astype(np.uint8)  # the key's green spill off the new edges
        return np.concatenate([np.where(alpha > 0, rgb, cut[..., :3]), alpha], axis=-1), edited

    cut, read, _ = _best_try((draw(k) for k in range(RECOLOR_TRIES)), color, req.fps)
    return cut, read


def _warn_if_keyed_out(color: str, clip: np.ndarray) -> None:
    """Warn when the key (read from the clip's border) would take most of `color` out of a sprite: despill holds the
    key's channels down to the others (a green key turns a green sprite dark), so that palette cannot come out."""
    key, rgb = key_color(clip), np.array(COLORS[color], np.float32)
    if np.abs(despill(rgb[None], key) - rgb).max() > KEYED_OUT:
        warnings.warn(f"--palettes {color}: the sheet's background key is {tuple(int(v) for v in key)}, and cutting it "
                      f"out takes {color} out of the sprite too (it comes out dark); pick a color farther from the key")


def _best_try(tries: Iterable[tuple[np.ndarray, np.ndarray]], color: str | None, fps: float
              ) -> tuple[np.ndarray, str | None, np.ndarray]:  # fmt: skip
    """The first try (cut-out (T, H, W, 4), clip) whose cut-out reads `color` (any color for None) and loops within
    LOOP_SEAM frame steps, else the best by those two and then that color's share: (cut-out, its color, clip). The
    tries are drawn lazily, so a good first one costs one."""
    best, best_rank = None, None
    for cut, clip in tries:
        dominant, shares = colors_of(cut, fps)
        rank = (color is None or dominant == color, loop_seam(over_gray(cut)) <= LOOP_SEAM, shares.get(color, 0.0))
        if rank[:2] == (True, True):
            return cut, dominant, clip
        if best_rank is None or rank > best_rank:
            best, best_rank = (cut, dominant, clip), rank
    return best


def _frames(pipe: Pipeline, req: Request, inputs: Inputs) -> np.ndarray:
    """Every frame of one pipeline run, (T, H, W, 3) uint8. The loop mode's warning about an uneven wrap is not
    passed on: a sprite closes its loop itself (`close_loop`), judges the result and reports its seams."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="--loop:")
        return np.stack(list(pipe.run(req, inputs, progress=False)))


def _loop(pipe: Pipeline, req: Request, reference: np.ndarray, stride: int) -> np.ndarray:
    """The pipeline's loop mode from the reference over `req.frames - 1` frames, every ``stride``-th kept and the wrap
    blended (`close_loop`); (T, H, W, 3) uint8."""
    loop = _frames(pipe, req, Inputs(image=reference, loop=True, tries=1))[::stride]
    return close_loop(loop)


def _pingpong(pipe: Pipeline, req: Request, reference: np.ndarray, stride: int) -> np.ndarray:
    """Image-to-video from the reference over `req.frames`, every second frame kept and played out and back, so its
    wrap is an ordinary step: what goes up comes down (README, "Game content", for what it measures); (T, H, W, 3)
    uint8, as many frames as `_loop` gives."""
    made = _frames(pipe, req, Inputs(image=reference))  # (req.frames, H, W, 3)
    # frame 1 stands in for frame 0, the reference's own decode (coded alone, it looks unlike the stream after it: as
    # the wrap's step it failed the seam bar), then every second frame out and back
    there = np.concatenate([made[1:2], made[2 * stride :: 2 * stride]])
    return np.concatenate([there, there[-2:0:-1]])  # (req.frames - 1) // stride frames


def over_gray(rgba: np.ndarray) -> np.ndarray:
    """RGBA frames composited over mid gray (a color the analyzer never names): the sprite as a game shows it."""
    a = rgba[..., 3:].astype(np.float32) / 255
    return (rgba[..., :3] * a + 128 * (1 - a)).round().astype(np.uint8)


def colors_of(rgba: np.ndarray, fps: float) -> tuple[str | None, dict[str, float]]:
    """The analyzer's dominant color of the largest object in cut-out frames (the color it names the object by) and
    its pixels' shares by color; (None, {}) when it finds no object."""
    objects = analyze(over_gray(rgba), fps).objects
    return (objects[0].color, dict(objects[0].colors)) if objects else (None, {})


def motion(rgba: np.ndarray) -> dict[str, float]:
    """How much a cut-out animation moves: "step", the mean frame step over gray (gray levels; under 1 is nearly
    still), and "rise", how far the sprite's center rises and falls (pixels: max - min of its opaque pixels' mean
    row)."""
    step = np.abs(np.diff(over_gray(rgba).astype(np.float32), axis=0)).mean()
    rows = [np.nonzero(a)[0].mean() for a in rgba[..., 3] > 0 if a.any()]
    return {"step": round(float(step), 2), "rise": round(float(np.ptp(rows)) if rows else 0.0, 2)}


def close_loop(frames: np.ndarray) -> np.ndarray:
    """A circular [1/4, 1/2, 1/4] blend over time: the step from the last frame back to the first becomes an ordinary
    step (the loop is treated as the circle it is), at the cost of a little motion blur; (T, H, W, 3) uint8."""
    x = frames.astype(np.float32)
    return (0.25 * np.roll(x, 1, axis=0) + 0.5 * x + 0.25 * np.roll(x, -1, axis=0)).round().astype(np.uint8)


def cutout_score(image: np.ndarray) -> float:
    """How well a still cuts out: the share of its border ring that is one flat key color, halved when the sprite
    is missing or fills the frame (under 3% or over 60% of the pixels)."""
    key = key_color(image[None])
    d = key_distance(image[None], key)[0]
    ring = np.ones(d.shape, bool)
    ring[4:-4, 4:-4] = False
    flat = float((d[ring] <= CUT).mean())
    sprite = float((d > CUT).mean())
    return flat * (1.0 if 0.03 <= sprite <= 0.6 else 0.5)


def prompt_color(prompt: str) -> str | None:
    """The first vocabulary color the prompt names ("a yellow slime" -> "yellow"), or None."""
    return next((w for w in prompt.lower().replace(",", " ").split() if w in COLORS), None)


def as_seen(prompt: str, color: str | None) -> str:
    """The prompt with the color it names replaced by the reference's (the analyzer's reading): when no candidate
    still came out in the asked color, the actions describe the character they copy, not the one asked for (asked
    "a red wizard", drawn blue, the jump pulled toward red)."""
    wanted = prompt_color(prompt)
    if not (wanted and color) or wanted == color:
        return prompt
    article = "an" if color[0] in "aeiou" else "a"
    return re.sub(rf"\b(?:(an?)\s+)?{wanted}\b", lambda m: f"{article} {color}" if m[1] else color, prompt,
                  count=1, flags=re.IGNORECASE)  # fmt: skip


def reference_stills(pipe: Pipeline, prompt: str, o: SpriteOptions, tries: int = REFERENCE_TRIES,
                     bar: tqdm | None = None) -> list[np.ndarray]:  # fmt: skip
    """Candidate reference stills of ``tries`` seeds, best first by `cutout_score` (the bundled model often mixes two
    key colors, and a sheet is only as clean as the key behind it), halved when the prompt names a color and the
    analyzer names the cut-out another one (the user asked for a yellow slime; every action copies it)."""
    wanted = prompt_color(prompt)
    scored = []
    for k in range(tries):
        still = Request(f"a sprite of {prompt} standing idle, facing right, on a transparent background", o.size,
                        o.size, 1, o.fps, o.seed + 1000 * k, o.steps, o.guidance)  # fmt: skip
        image = pipe.generate(still, progress=False).frames[0]
        if bar is not None:
            bar.update(1)
        score = cutout_score(image)
        if wanted and colors_of(matte(image[None]), o.fps)[0] != wanted:  # matte reads the key itself
            score *= 0.5
        scored.append((score, image))
    return [image for _, image in sorted(scored, key=lambda x: -x[0])]  # stable: the first of equals stays first


def character_sheet(prompt: str, out: str | Path, variants: int = 8, size: int = 64, seed: int = 0,
                    steps: int = 20, model: str | None = None, pipe: Pipeline | None = None,
                    progress: bool = False) -> Path:  # fmt: skip
    """A design sheet: ``variants`` looks of one description (seeds seed .. seed + variants - 1), each labeled with
    its seed so a designer can pick one and pass that seed on; a JSON beside it lists the seeds."""
    from kinetoscope.studio.subtitles import font

    if not 1 <= variants <= 64:
        raise KinetoscopeError(f"--variants {variants} is outside 1..64")
    if size % SPATIAL_MULTIPLE or not 16 <= size <= 256:
        raise KinetoscopeError(f"--size {size} must be a multiple of 16 in 16..256")
    pipe = pipe or Pipeline(model)
    cols = min(4, variants)
    rows = -(-variants // cols)
    scale = max(1, 192 // size)
    cell, label = size * scale, max(14, size * scale // 8)
    sheet = Image.new("RGB", (cols * cell, rows * (cell + label + 6)), (24, 24, 24))
    from PIL import ImageDraw

    draw = ImageDraw.Draw(sheet)
    seeds = [seed + i for i in range(variants)]
    for i, s in enumerate(tqdm(seeds, desc="looks", unit="look", disable=not progress)):
        req = Request(f"a sprite of {prompt} standing idle, facing right, on a plain background", size, size, 1, 12.0,
                      s, steps, 4.0)  # fmt: skip
        image = Image.fromarray(pipe.generate(req, progress=False).frames[0]).resize((cell, cell), Image.NEAREST)
        x, y = (i % cols) * cell, (i // cols) * (cell + label + 6)
        sheet.paste(image, (x, y))
        draw.text((x + cell / 2, y + cell + 2), f"seed {s}", font=font(label), fill=(230, 230, 230), anchor="ma")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out) as tmp:
        sheet.save(tmp, "PNG")
    out.with_suffix(".json").write_text(json.dumps({"prompt": prompt, "size": size, "steps": steps, "variants": [
        {"seed": s, "cell": {"x": (i % cols) * cell, "y": (i // cols) * (cell + label + 6), "w": cell, "h": cell}}
        for i, s in enumerate(seeds)]}, indent=1) + "\n")  # fmt: skip
    return out
