"""The game-sprite family: pixel-art characters and effects as looping animations, the way game developers use them.

A character (knight, slime, robot, wizard, cat) in a body color of the vocabulary idles, walks, runs, jumps or
attacks in place, facing left or right; an effect is a spinning coin, a sparkling gem, a flickering fire or a
one-shot explosion. Sprites are drawn in pixelart.py in sprite pixels and scaled up by an integer with
nearest-neighbour, so pixels stay crisp. Loops are exact by construction: the pose is a function of
k mod period, so frame k + period is frame k, bit for bit, and the step from the last frame of a loop back to the
first is an ordinary step. A "transparent" background is a flat key color for matting, whichever of green,
magenta or blue is farthest from the sprite's colors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from kinetoscope.world import captions as cap
from kinetoscope.world import pixelart as px
from kinetoscope.world.clip import Clip, ClipSpec
from kinetoscope.world.canvas import CLASHES, Camera, render_background
from kinetoscope.world.vocab import (
    COLORS,
    EFFECT_ACTIONS,
    FACINGS,
    SETTINGS,
    SPRITE_ACTIONS,
    SPRITE_BACKGROUNDS,
    SPRITE_CHARACTERS,
    SPRITE_EFFECTS,
    direction_of,
    is_held_out,
)

KINDS = SPRITE_CHARACTERS + SPRITE_EFFECTS
KIND_CDF = np.cumsum([0.14] * len(SPRITE_CHARACTERS) + [0.075] * len(SPRITE_EFFECTS))  # characters 70%
EFFECT_COLORS = {"coin": "yellow", "fire": "orange", "explosion": "orange"}  # fixed; a gem takes any color
PERIODS = (4, 6, 8, 12, 16)
PREFERRED_PERIODS = {
    "idle": (8, 12, 16), "walk": (8, 12, 16), "run": (4, 6, 8), "jump": (8, 12, 16), "attack": (6, 8, 12),
    "spin": (6, 8, 12, 16), "sparkle": (8, 12, 16), "burn": (4, 6, 8),
}
NOMINAL = {"coin": 12, "gem": 11, "fire": 14, "explosion": 20}  # sprite pixels scaled to 40-70% of the short side
JUMP_HEIGHT = 5  # sprite pixels
KEYS = {"green": (0, 255, 0), "magenta": (255, 0, 255), "blue": (0, 0, 255)}
TRANSPARENT_SHARE = 0.45

# The fixed colors of the palette letters (pixelart.LETTERS); body, outline and accent are set per clip.
FIXED_RGB = {
    "s": (240, 190, 150), "k": (25, 20, 30), "w": (250, 250, 250), "m": (200, 205, 215), "M": (130, 135, 150),
    "n": (135, 85, 45), "y": COLORS["yellow"], "r": COLORS["red"], "O": COLORS["orange"],
    "p": (245, 140, 170), "c": COLORS["cyan"], "g": (115, 120, 130), "G": (80, 80, 88),
}


@dataclass(frozen=True)
class SpriteScene:
    """Every choice that decides a sprite clip; render_sprites draws it, and tests or suites may override parts."""

    kind: str
    color: str
    action: str
    facing: str  # "left" / "right"; "none" for effects
    background: str  # "plain" or "transparent"
    setting: str  # a world setting, "plain" (a muted flat or graded color) or "transparent"
    period: int | None  # frames per loop; None for a single image or a one-shot
    pixel: int  # frame pixels per sprite pixel
    dx: int  # offset of the sprite's center from the frame center, frame pixels
    dy: int
    backdrop: tuple[float, float, float, float]  # plain backdrop: hue, saturation, value, vertical gradient
    shape: tuple[float, ...]  # effect shape: fire sway, explosion lobes and spark angles (radians)

    @property
    def is_effect(self) -> bool:
        return self.kind in SPRITE_EFFECTS


def render_sprites(spec: ClipSpec, **overrides: str) -> Clip:
    """Render one sprite clip with its captions and scene script. Keyword overrides (kind, color, action, facing,
    background) pin a choice without changing any other: the same seed gives the same clip otherwise."""
    rng = np.random.default_rng(spec.seed)
    scene = choose_scene(spec, rng, **overrides)
    sheet = pose_sheet(scene, spec.frames)
    scene = fit_in_frame(spec, scene, sheet)
    frames, tracks = draw_clip(spec, scene, sheet)
    terse, detailed = sprite_captions(rng, spec, scene, tracks["key"])
    return Clip(frames, spec.fps, terse, detailed, sprite_script(spec, scene, tracks))


def choose_scene(spec: ClipSpec, rng: np.random.Generator, **overrides: str) -> SpriteScene:
    """Draw a scene from a fixed number of random numbers, so an override changes nothing but itself."""
    u = rng.random(26)
    kind = overrides.get("kind") or KINDS[min(int(np.searchsorted(KIND_CDF, u[0], side="right")), len(KINDS) - 1)]
    _check(kind, KINDS, "kind")
    effect = kind in SPRITE_EFFECTS
    action = overrides.get("action") or SPRITE_ACTIONS[int(u[1] * len(SPRITE_ACTIONS))]
    action = EFFECT_ACTIONS[kind] if effect else action
    _check(action, (EFFECT_ACTIONS[kind],) if effect else SPRITE_ACTIONS, "action")
    colors = sorted(COLORS)
    color = overrides.get("color") or EFFECT_COLORS.get(kind) or colors[int(u[2] * len(colors))]
    _check(color, (EFFECT_COLORS[kind],) if kind in EFFECT_COLORS else tuple(colors), "color")
    if "color" not in overrides and kind not in EFFECT_COLORS and not spec.allow_held_out:
        start = colors.index(color)  # training never shows a held-out (color, kind, action)
        ring = colors[start:] + colors[:start]
        color = next((c for c in ring if not is_held_out(c, kind, action)), color)
    facing = "none" if effect else overrides.get("facing") or FACINGS[int(u[3] * 2)]
    _check(facing, FACINGS + ("none",), "facing")
    background = overrides.get("background") or ("transparent" if u[4] < TRANSPARENT_SHARE else "plain")
    _check(background, SPRITE_BACKGROUNDS, "background")
    settings = [s for s in SETTINGS if color not in CLASHES[s]]
    if background == "transparent":
        setting = "transparent"
    else:
        setting = "plain" if u[5] < 0.5 else settings[int(u[6] * len(settings))]
    short = min(spec.height, spec.width)
    size = NOMINAL.get(kind, px.NOMINAL)
    fits = [p for p in range(1, 64) if 0.4 * short <= size * p <= 0.7 * short] or [max(1, int(0.7 * short / size))]
    pixel = fits[int(u[7] * len(fits))]
    period = None
    if spec.frames > 1 and kind != "explosion":
        allowed = [p for p in PERIODS if p <= spec.frames - 1]
        options = [p for p in PREFERRED_PERIODS[action] if p in allowed] or allowed[:1]
        period = options[int(u[8] * len(options))]
    wiggle = 0.05 * short
    dx, dy = round((u[9] - 0.5) * 2 * wiggle), round((u[10] - 0.5) * 2 * wiggle * (action != "jump"))
    grade = (float(u[15]) - 0.5) * 0.3 if u[14] < 0.6 else 0.0
    backdrop = (float(u[11]), 0.08 + 0.17 * float(u[12]), float(u[13]), grade)
    shape = tuple(float(v) * 2 * math.pi for v in u[16:26])
    return SpriteScene(kind, color, action, facing, background, setting, period, pixel, dx, dy, backdrop, shape)


def _check(value: str, known: tuple[str, ...], what: str) -> None:
    if value not in known:
        raise ValueError(f"unknown sprite {what} {value!r}; known: {', '.join(known)}")


# ---------------------------------------------------------------------------------------------------------------
# Colors.


def nearest_color(rgb: np.ndarray) -> np.ndarray:
    """Index into sorted(COLORS) of the nearest vocabulary color (RGB distance) of each (..., 3) pixel."""
    table = np.array([COLORS[c] for c in sorted(COLORS)], np.float32)
    d = ((np.asarray(rgb, np.float32)[..., None, :] - table) ** 2).sum(-1)
    return d.argmin(-1)


def body_shades(color: str) -> tuple[tuple[int, int, int], ...]:
    """(body, shade, highlight): as dark and as light as the color can go while it still reads as itself."""
    base = {"black": (45, 45, 52)}.get(color, COLORS[color])
    want = sorted(COLORS).index(color)
    out = [base]
    for ks in ((0.6, 0.7, 0.8, 0.9), (1.45, 1.35, 1.25, 1.15)):
        for k in ks:
            lit = [c * k if k < 1 else c + (255 - c) * (k - 1) + 10 * (color == "black") for c in base]
            rgb = tuple(int(np.clip(c, 0, 255)) for c in lit)
            if nearest_color(np.array(rgb)) == want:
                out.append(rgb)
                break
        else:
            out.append(base)
    return tuple(out)  # type: ignore[return-value]


def palette(scene: SpriteScene) -> np.ndarray:
    """The clip's palette: RGB per pixelart letter, (len(LETTERS), 3) uint8."""
    body, dark, light = body_shades(scene.color)
    rgb = dict(FIXED_RGB)
    rgb.update(B=body, b=dark, h=light, o=tuple(int(0.22 * c) + 6 for c in body))
    rgb["a"] = COLORS["white"] if scene.color in ("red", "pink", "orange") else COLORS["red"]
    if scene.color == "cyan":
        rgb["c"] = COLORS["yellow"]
    if scene.color == "black":  # dark eyes would vanish into a black body
        rgb["k"] = (230, 230, 240)
    rgb["."] = (0, 0, 0)
    return np.array([rgb[ch] for ch in px.LETTERS], np.uint8)


def pick_key(colors: np.ndarray) -> str:
    """The key color farthest (minimum RGB distance) from every color the sprite uses."""
    c = colors.astype(np.float32)
    return max(KEYS, key=lambda k: float(np.sqrt(((c - np.array(KEYS[k], np.float32)) ** 2).sum(-1)).min()))


def backdrop_rgb(scene: SpriteScene, height: int, width: int) -> np.ndarray:
    """A plain muted backdrop, dark behind a light sprite and light behind a dark one, flat or gently graded."""
    hue, sat, val, grade = scene.backdrop
    body = np.array((245, 150, 40) if scene.kind in ("fire", "explosion") else body_shades(scene.color)[0], np.float32)
    light_sprite = body @ np.array([0.299, 0.587, 0.114]) > 110
    v = (0.2 + 0.15 * val) if light_sprite else (0.68 + 0.17 * val)
    i, f = int(hue * 6) % 6, hue * 6 % 1.0
    p_, q_, t_ = 1 - sat, 1 - sat * f, 1 - sat * (1 - f)
    hsv = [(1, t_, p_), (q_, 1, p_), (p_, 1, t_), (p_, q_, 1), (t_, p_, 1), (1, p_, q_)]
    rgb = np.array(hsv[i], np.float32) * v * 255
    ramp = 1 + grade * (np.linspace(-1, 1, height, dtype=np.float32)[:, None, None])  # (H, 1, 1)
    return np.broadcast_to(np.clip(rgb * ramp, 0, 255), (height, width, 3))


# ---------------------------------------------------------------------------------------------------------------
# Drawing: each distinct pose is drawn once and reused for every frame that repeats it.

Sheet = dict[int, tuple[np.ndarray, float]]  # pose key -> (finished canvas, jump height fraction)


def pose_canvas(scene: SpriteScene, key: int, frames: int) -> tuple[np.ndarray, float]:
    """The finished canvas (palette indices) for pose `key` (the frame index mod the period, or the frame index of a
    one-shot), and the jump height fraction."""
    if scene.period is None and scene.kind != "explosion":
        phase = {"walk": 0.25, "run": 0.25, "attack": 0.5, "spin": 0.0625, "sparkle": 0.2}.get(scene.action, 0.0)
        period = 16
        if scene.action == "jump":
            phase = next(j for j in range(16) if px.jump_phase(j, 16)[1] >= 0.5) / 16  # the top of the hop
    else:
        phase, period = (key / scene.period, scene.period) if scene.period else (0.0, 1)
    if scene.kind == "coin":
        return px.draw_coin(phase), 0.0
    if scene.kind == "gem":
        spots = ((5.0, -5.0, 0.0), (-6.0, 2.0, 0.45), (3.5, 4.0, 0.7))
        return px.draw_gem(phase, period, spots), 0.0
    if scene.kind == "fire":
        return px.draw_fire(phase, period, scene.shape[:2]), 0.0
    if scene.kind == "explosion":
        s = key / (frames - 1) if frames > 1 else 0.35
        return px.draw_explosion(s, scene.shape[:2], scene.shape[2:9]), 0.0
    return px.draw_character(scene.kind, scene.action, phase, period)


def pose_sheet(scene: SpriteScene, frames: int) -> Sheet:
    """Every distinct pose of the clip, like a sprite sheet: pose key -> (canvas, jump height fraction)."""
    sheet = {k: pose_canvas(scene, k, frames) for k in dict.fromkeys(pose_keys(scene, frames))}
    if scene.kind == "fire" and scene.period:
        sheet = calm_seam(sheet, scene.period)
    return sheet


def pose_keys(scene: SpriteScene, frames: int) -> list[int]:
    """The pose shown at each frame: the frame index mod the period for a loop, the frame index for a one-shot."""
    return [t % scene.period if scene.period else t if scene.kind == "explosion" else 0 for t in range(frames)]


def placement(spec: ClipSpec, scene: SpriteScene) -> tuple[int, int, int]:
    """Frame position (left, top) of the canvas's top-left corner when on the ground, and the hop height in frame
    px. The sprite's middle sits at the frame center plus the scene's offset (a jump's arc is centered)."""
    p = scene.pixel
    size = NOMINAL.get(scene.kind, px.NOMINAL)
    if scene.is_effect:
        center = (px.GX, px.GY - px.NOMINAL / 2)  # where pixelart centers effects
    else:
        center = (px.GX + 0.5, px.GY + 1 - size / 2)  # the middle of a standing character
    x0 = spec.width // 2 + scene.dx
    ox = round(x0 - center[0] * p)
    lift = JUMP_HEIGHT * p
    oy = round(spec.height / 2 + scene.dy - center[1] * p + (lift / 2 if scene.action == "jump" else 0))
    if scene.facing == "left":  # mirror about the same vertical line through x0
        ox = 2 * x0 - ox - px.CANVAS_W * p
    return ox, oy, lift


def fit_in_frame(spec: ClipSpec, scene: SpriteScene, sheet: Sheet) -> SpriteScene:
    """The scene at the largest pixel size, up to the chosen one and not under 40% of the short side, at which every
    pose (swords, spells and hops included) stays inside the frame, with its offset or else centered."""
    boxes = []
    for canvas, hop in sheet.values():
        rows, cols = np.nonzero(canvas)
        if rows.size:
            c0, c1 = cols.min(), cols.max() + 1
            if scene.facing == "left":
                c0, c1 = px.CANVAS_W - c1, px.CANVAS_W - c0
            boxes.append((rows.min(), rows.max() + 1, c0, c1, hop))
    smallest = math.ceil(0.4 * min(spec.height, spec.width) / NOMINAL.get(scene.kind, px.NOMINAL))
    sizes = range(scene.pixel, min(smallest, scene.pixel) - 1, -1)
    for trial in [replace(scene, pixel=p, dx=dx, dy=dy) for dx, dy in ((scene.dx, scene.dy), (0, 0)) for p in sizes]:
        ox, oy, lift = placement(spec, trial)
        p = trial.pixel
        if all(
            ox + c0 * p >= 0 and ox + c1 * p <= spec.width and oy - round(hop * lift) + r0 * p >= 0
            and oy + r1 * p <= spec.height
            for r0, r1, c0, c1, hop in boxes
        ):
            return trial
    return scene


def draw_clip(spec: ClipSpec, scene: SpriteScene, sheet: Sheet) -> tuple[np.ndarray, dict]:
    """All frames (T, H, W, 3) uint8, and the per-frame tracks of the sprite's drawn pixels."""
    h, w, n = spec.height, spec.width, spec.frames
    keys = pose_keys(scene, n)
    lut = palette(scene)
    used = np.unique(np.concatenate([c.ravel() for c, _ in sheet.values()]))
    key_name = pick_key(lut[used[used > 0]]) if scene.background == "transparent" else None
    if key_name:
        background = np.broadcast_to(np.array(KEYS[key_name], np.float32), (h, w, 3))
    elif scene.setting == "plain":
        background = backdrop_rgb(scene, h, w)
    else:
        camera = Camera(np.full(1, w / 2), np.full(1, h / 2), np.ones(1), "static")
        background = render_background(scene.setting, camera, 0, h, w, spec.seed)
    background = np.clip(np.asarray(background) + 0.5, 0, 255).astype(np.uint8)
    ox, oy, lift = placement(spec, scene)
    poses: dict[int, tuple[np.ndarray, tuple[float, float, float, int]]] = {}
    for k, (canvas, hop) in sheet.items():
        if scene.facing == "left":
            canvas = canvas[:, ::-1]
        poses[k] = composite(background, canvas, lut, scene.pixel, ox, oy - round(hop * lift))
    frames = np.stack([poses[k][0] for k in keys])
    tracks: dict = {name: [poses[k][1][i] for k in keys] for i, name in enumerate(("x", "y", "size", "visible"))}
    tracks["key"] = key_name
    tracks["lift"] = lift
    return frames, tracks


def calm_seam(canvases: Sheet, period: int) -> Sheet:
    """Start a flickering loop right after its calmest step, so the seam is never its biggest change."""
    steps = [np.count_nonzero(canvases[k][0] != canvases[(k + 1) % period][0]) for k in range(period)]
    start = int(np.argmin(steps)) + 1
    return {k: canvases[(k + start) % period] for k in range(period)}


def composite(
    background: np.ndarray, canvas: np.ndarray, lut: np.ndarray, p: int, ox: int, oy: int
) -> tuple[np.ndarray, tuple[float, float, float, int]]:
    """Scale a canvas by p (nearest) with its top-left at frame (ox, oy), over the background; clipped at the edges.
    Returns the frame and (centroid x, centroid y, height, visible) of the drawn pixels in frame coordinates."""
    h, w = background.shape[:2]
    rows, cols = np.nonzero(canvas)
    frame = background.copy()
    if rows.size == 0:
        return frame, (w / 2, h / 2, 0.0, 0)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    crop = canvas[r0:r1, c0:c1]
    big = np.repeat(np.repeat(crop, p, axis=0), p, axis=1)  # (rows * p, cols * p) palette indices
    top, left = oy + r0 * p, ox + c0 * p
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + big.shape[0], h), min(left + big.shape[1], w)
    if y1 <= y0 or x1 <= x0:
        return frame, (w / 2, h / 2, 0.0, 0)
    part = big[y0 - top : y1 - top, x0 - left : x1 - left]
    mask = part > 0
    frame[y0:y1, x0:x1][mask] = lut[part[mask]]
    yy, xx = np.nonzero(mask)
    if yy.size == 0:
        return frame, (w / 2, h / 2, 0.0, 0)
    return frame, (float(xx.mean() + x0 + 0.5), float(yy.mean() + y0 + 0.5), float(yy.max() - yy.min() + 1), 1)


# ---------------------------------------------------------------------------------------------------------------
# Captions and scene script.

STYLES = ("a pixel-art {}", "an 8-bit {}", "{a} game sprite", "a pixel-art {} sprite", "a retro 8-bit {} sprite")
VERBS: dict[str, tuple[tuple[str, str], ...]] = {  # (finite verb, participle)
    "idle": (("idles", "idling"), ("stands idle", "standing idle"), ("idles in place", "idling in place")),
    "walk": (("walks", "walking"), ("walks in place", "walking in place"), ("strolls in place", "strolling in place")),
    "run": (("runs", "running"), ("runs in place", "running in place"), ("sprints in place", "sprinting in place")),
    "jump": (("jumps", "jumping"), ("hops", "hopping"), ("jumps up and lands", "jumping up and landing")),
    "knight": (("swings its sword", "swinging its sword"), ("slashes with a sword", "slashing with a sword")),
    "wizard": (("casts a spell", "casting a spell"), ("casts a magic bolt", "casting a magic bolt")),
    "robot": (("punches", "punching"), ("throws a punch", "throwing a punch")),
    "cat": (("swipes its claws", "swiping its claws"), ("scratches", "scratching")),
    "slime": (("lunges", "lunging"), ("attacks", "attacking"), ("lunges forward", "lunging forward")),
}
CYCLES = {"idle": "idle animation", "walk": "walk cycle", "run": "run cycle", "jump": "jump", "attack": "attack"}
# Per action: one text for every character, or a dict by kind ("*" for the others); a slime has no legs.
STILL_POSES = {
    "idle": ("", "standing"),
    "walk": {"*": ("walking", "mid-stride"), "slime": ("wobbling",)},
    "run": {"*": ("running", "mid-run"), "slime": ("bouncing",)},
    "jump": ("jumping", "mid-jump"),
    "attack": ("attacking",),
}
ACTION_SENTENCES = {
    "idle": "It stands in place and breathes, bobbing gently",
    "walk": {
        "*": "It walks in place, legs swinging, like a row of a sprite sheet",
        "slime": "It wobbles in place, squashing and stretching as if creeping along",
    },
    "run": {
        "*": "It runs in place, leaning forward with long, fast strides",
        "slime": "It bounces in place quickly, squashing hard and leaning forward",
    },
    "jump": {
        "*": "It crouches, hops straight up, and falls back to the ground",
        "slime": "It squashes down, springs up stretched tall, and lands back on the ground",
    },
    "attack": {
        "knight": "It raises its sword and swings it down in a fast arc",
        "wizard": "It points its staff and fires a sparkling magic bolt",
        "robot": "It pulls back and throws a straight punch",
        "cat": "It lifts a paw and swipes, leaving claw marks in the air",
        "slime": "It lunges forward with its mouth open",
    },
}
DESCRIPTIONS = {
    "knight": " in {c} armor, with a plumed helmet and a sword",
    "wizard": " in {ac} robe and a pointed {c} hat, with a white beard and a staff",
    "robot": " with a boxy {c} body, an antenna and a glowing visor",
    "cat": " with {c} fur, pointed ears and a long tail",
    "slime": ": a round, jelly-like {c} blob with two little eyes",
}
EFFECT_TERSE = {
    "coin": ("a spinning {g} coin", "a pixel-art {g} coin spins", "an 8-bit spinning {g} coin", "a {g} coin sprite"),
    "gem": ("a {c} gem sparkles", "a sparkling {c} gem", "a pixel-art {c} gem glints", "an 8-bit {c} jewel sparkles"),
    "fire": ("a pixel-art fire", "a flickering flame", "a burning fire sprite", "an 8-bit fire flickers"),
    "explosion": ("a pixel-art explosion", "an 8-bit explosion bursts and fades", "an explosion effect", "a blast"),
}
EFFECT_STILL = {
    "coin": ("a pixel-art {g} coin", "an 8-bit {g} coin"),
    "gem": ("a pixel-art {c} gem", "an 8-bit {c} jewel"),
    "fire": ("a pixel-art fire", "a pixel-art flame sprite"),
    "explosion": ("a pixel-art explosion", "an 8-bit explosion"),
}
EFFECT_SENTENCES = {
    "coin": "A {g} coin turns about its vertical axis: it narrows to its edge and widens again",
    "gem": "A faceted {c} gem bobs gently while small white sparkles flash around it",
    "fire": "A flame flickers, its tongues swaying, red at the edge, orange in the body and yellow at the heart",
    "explosion": "A fireball bursts from a point, grows fast, cools from white and yellow to orange and red, fades",
}


def _by_kind(entry: object, kind: str):
    return entry.get(kind, entry.get("*")) if isinstance(entry, dict) else entry


def sprite_captions(rng: np.random.Generator, spec: ClipSpec, scene: SpriteScene, key: str | None) -> tuple[str, str]:
    """Terse and detailed captions; a single frame is captioned as a sprite image."""
    still, where = spec.frames == 1, _where(rng, scene)
    c, g = scene.color, cap.pick(rng, ("gold", "golden", "yellow"))
    if scene.is_effect:
        terse = cap.pick(rng, (EFFECT_STILL if still else EFFECT_TERSE)[scene.kind]).format(c=c, g=g)
        if scene.period and rng.random() < 0.25:
            terse += cap.pick(rng, (", looping,", ", seamless loop,", ", animation loop,"))
        terse = f"{terse} {where}"
        thing = {"gem": f"{c} gem", "coin": f"{g} coin"}.get(scene.kind, scene.kind)
        parts = [f"A pixel-art sprite of {cap.a(thing)}" if still else EFFECT_SENTENCES[scene.kind].format(c=c, g=g)]
    else:
        noun = f"{c} {scene.kind}"
        f = scene.facing
        facing = cap.pick(rng, (f"facing {f}", f"facing {f}", f"facing to the {f}", f"looking {f}"))
        forms = VERBS[scene.kind if scene.action == "attack" else scene.action]
        finite, participle = forms[int(rng.integers(len(forms)))]
        form = rng.random()
        if still:
            pose = cap.pick(rng, _by_kind(STILL_POSES[scene.action], scene.kind))
            pose = participle if pose == "attacking" and rng.random() < 0.5 else pose
            terse = f"{_subject(rng, noun)} {pose + ', ' if pose else ''}{facing}, {where}"
        elif form < 0.2:
            terse = f"{_subject(rng, noun + ' ' + CYCLES[scene.action], cycle=True)}, {facing}, {where}"
        elif form < 0.4:
            terse = f"a sprite of {cap.a(noun)} {participle}, {facing}, {where}"
        else:
            terse = f"{_subject(rng, noun)} {finite}, {facing}, {where}"
        first = cap.pick(rng, (f"A pixel-art sprite of {cap.a(noun)}", f"An 8-bit game sprite of {cap.a(noun)}"))
        doing = f"It is shown {pose or 'standing'}" if still else _by_kind(ACTION_SENTENCES[scene.action], scene.kind)
        parts = [first + DESCRIPTIONS[scene.kind].format(c=c, ac=cap.a(c)), f"It faces {scene.facing}", doing]
    if still:
        parts.append("A single frame, as in one cell of a sprite sheet")
    elif scene.period:
        n = scene.period
        loops = (f"The animation is a seamless {n}-frame loop", f"It loops every {n} frames without a seam")
        parts.append(cap.pick(rng, loops + (f"The {n} frames loop seamlessly, ready for a game",)))
    else:
        parts.append("It plays once and does not loop")
    parts.append(_background_sentence(rng, scene, key))
    outline = "Chunky pixels with a dark outline" if scene.kind not in ("fire", "explosion") else "Chunky, crisp pixels"
    parts.append(cap.pick(rng, ("The pixels are crisp and blocky", "Crisp, blocky pixels, not smoothed", outline)))
    return " ".join(terse.split()), " ".join(cap.sentence(s) for s in parts)


def _subject(rng: np.random.Generator, noun: str, cycle: bool = False) -> str:
    """The noun with a pixel-art style word: 'a pixel-art blue knight', 'a blue knight game sprite', ..."""
    style = cap.pick(rng, STYLES[:2] if cycle else STYLES)
    return style.format(noun, a=cap.a(noun))


def _where(rng: np.random.Generator, scene: SpriteScene) -> str:
    if scene.setting == "transparent":
        return "on a transparent background"
    if scene.setting == "plain":
        return cap.pick(rng, ("on a plain background", "on a plain backdrop", "on a solid-color background"))
    return cap.pick(rng, cap.SETTING_PHRASES[scene.setting])


def _background_sentence(rng: np.random.Generator, scene: SpriteScene, key: str | None) -> str:
    if key:
        return cap.pick(
            rng,
            (
                f"The background is transparent, filled with a flat {key} key color for matting",
                f"It sits on a transparent background (a flat {key} key color)",
            ),
        )
    if scene.setting == "plain":
        graded = "with a soft vertical gradient" if scene.backdrop[3] else "in one flat color"
        return f"The background is plain and muted, {graded}"
    return f"The sprite is shown {cap.pick(rng, cap.SETTING_PHRASES[scene.setting])}"


def sprite_script(spec: ClipSpec, scene: SpriteScene, tracks: dict) -> dict:
    """The ground truth: the sprite's identity, action, loop and per-frame frame-pixel centroid and height."""
    h, w, n = spec.height, spec.width, spec.frames
    gravity = None
    if scene.action == "jump" and scene.period:
        air = px.jump_frames(scene.period)  # the flight spans air + 1 frame intervals
        gravity = round(8 * tracks["lift"] / (air + 1) ** 2 * spec.fps**2, 3)  # frame px / s^2 of the hop's parabola
    obj = {
        "id": 0,
        "kind": scene.kind,
        "color": scene.color,
        "action": scene.action,
        "motion": scene.action,
        "facing": scene.facing,
        "direction": direction_of(tracks["x"][-1] - tracks["x"][0], tracks["y"][-1] - tracks["y"][0], min(spec.height, spec.width)),
        "x": [round(v, 2) for v in tracks["x"]],
        "y": [round(v, 2) for v in tracks["y"]],
        "size": [round(v, 2) for v in tracks["size"]],
        "visible": tracks["visible"],
        "loop_period": scene.period,
        "background": scene.background,
        "key_color": list(KEYS[tracks["key"]]) if tracks["key"] else None,
        "pixel_size": scene.pixel,
    }
    return {
        "family": "sprites",
        "height": h,
        "width": w,
        "frames": n,
        "fps": spec.fps,
        "setting": scene.setting,
        "camera": {"motion": "static", "cx": [w / 2] * n, "cy": [h / 2] * n, "zoom": [1.0] * n},
        "gravity": gravity,
        "objects": [obj],
    }

