"""The physics family: shapes and emoji that fall, bounce, roll, slide, fly in arcs, spin, grow, collide and swing.

Physics is physics: gravity is a constant acceleration, bounces lose speed by a coefficient of restitution, two
objects collide elastically (momentum and energy kept, mass by area), a pendulum obeys theta'' = -(g/L) sin theta.
Trajectories are computed in world units (frame pixels at zoom 1) and seconds, then seen through the camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from kinetoscope.world import captions as cap
from kinetoscope.world.clip import Clip, ClipSpec
from kinetoscope.world.canvas import (
    CLASHES,
    EMOJI,
    Camera,
    Layer,
    draw_emoji,
    draw_shape,
    floor_y,
    make_camera,
    BackgroundCache,
)
from kinetoscope.world.vocab import COLORS, PHYSICS_MOTIONS, SETTINGS, SHAPES, direction_of, is_held_out

SINGLE_MOTIONS = tuple(m for m in PHYSICS_MOTIONS if m not in ("collide", "swings"))  # one object alone
MOTION_WEIGHTS = np.array([3, 1.2, 1.2, 1, 1, 1, 1, 2, 1, 0.8, 0.8, 1], dtype=float)
SCENE_KINDS = ("single", "collide", "swings")
DIRECTED_MOTIONS = tuple(m for m in SINGLE_MOTIONS if m.startswith(("rolls", "slides")))  # the `directions` drill
ROLLERS = ("ball", "basketball", "orange", "apple", "tomato")  # what can roll
SCENE_WEIGHTS = np.array([0.82, 0.1, 0.08])


@dataclass
class Body:
    """One object's identity and its world-space trajectory, one entry per frame."""

    kind: str  # a vocabulary shape or an emoji name
    color: str
    motion: str
    x: np.ndarray
    y: np.ndarray
    r: np.ndarray
    angle: np.ndarray
    bounces: list[int] = field(default_factory=list)  # frames right after each floor contact
    pivot: tuple[float, float] | None = None  # pendulum only

    @property
    def is_emoji(self) -> bool:
        return self.kind in EMOJI


# ---------------------------------------------------------------------------------------------------------------
# Trajectories. Each takes the frame times ts (seconds) and returns world-space arrays.


def ballistic(
    x0: float, y0: float, vx: float, vy: float, g: float, floor: float, e: float, ts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Exact projectile motion with bounces on a floor (restitution e), sampled at times ts.

    Between contacts y(t) = y + vy t + g t^2 / 2; at a contact vy -> -e vy. Returns x, y and bounce frame indices.
    """
    xs, ys, bounces = np.empty(len(ts)), np.empty(len(ts)), []
    t_now, x, y, at_rest = 0.0, x0, y0, False
    for k, t_target in enumerate(ts):
        while t_now < t_target and not at_rest:
            dt = t_target - t_now
            # time to reach the floor: y + vy tau + g tau^2 / 2 = floor
            disc = vy * vy + 2 * g * (floor - y)
            tau = (-vy + math.sqrt(max(disc, 0.0))) / g if g > 0 else math.inf
            if tau > dt:
                x, y, vy, t_now = x + vx * dt, y + vy * dt + 0.5 * g * dt * dt, vy + g * dt, t_target
            else:
                x, y, vy, t_now = x + vx * tau, floor, -e * (vy + g * tau), t_now + tau
                bounces.append(k)
                if vy * vy / (2 * g) < 0.25:  # the next hop would rise under a quarter pixel: at rest
                    at_rest, vy = True, 0.0
        if at_rest and t_now < t_target:
            x, t_now = x + vx * (t_target - t_now), t_target
        xs[k], ys[k] = x, y
    return xs, ys, sorted(set(bounces))


def pendulum(theta0: float, length: float, g: float, ts: np.ndarray) -> np.ndarray:
    """Angle of a pendulum released at rest from theta0, integrated with RK4 (the full sin theta, not small-angle)."""
    out, theta, omega, t = np.empty(len(ts)), theta0, 0.0, 0.0
    h_max = 1.0 / 600

    def f(th: float, om: float) -> tuple[float, float]:
        return om, -(g / length) * math.sin(th)

    for k, t_target in enumerate(ts):
        while t < t_target - 1e-12:
            h = min(h_max, t_target - t)
            k1 = f(theta, omega)
            k2 = f(theta + h / 2 * k1[0], omega + h / 2 * k1[1])
            k3 = f(theta + h / 2 * k2[0], omega + h / 2 * k2[1])
            k4 = f(theta + h * k3[0], omega + h * k3[1])
            theta += h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
            omega += h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
            t += h
        out[k] = theta
    return out


def elastic_1d(m1: float, v1: float, m2: float, v2: float) -> tuple[float, float]:
    """Velocities after a 1-D elastic collision (momentum and kinetic energy conserved)."""
    return ((m1 - m2) * v1 + 2 * m2 * v2) / (m1 + m2), ((m2 - m1) * v2 + 2 * m1 * v1) / (m1 + m2)


def single_body(
    motion: str, kind: str, color: str, spec: ClipSpec, ts: np.ndarray, g: float, rng: np.random.Generator
) -> Body:
    """An object doing one vocabulary motion, placed so that the motion stays mostly in view."""
    h, w = spec.height, spec.width
    short = min(h, w)
    r0 = rng.uniform(0.07, 0.13) * short
    duration = max(ts[-1], 1e-6)
    floor = floor_y(h)
    n = len(ts)
    x = np.full(n, rng.uniform(0.25, 0.75) * w)
    y = np.full(n, rng.uniform(0.25, 0.7) * h)
    r = np.full(n, r0)
    angle = np.full(n, rng.uniform(0, 2 * math.pi))
    bounces: list[int] = []
    travel = lambda side: rng.uniform(0.3, 0.55) * side / duration  # noqa: E731 - speed that crosses part of the frame
    if motion == "falls and bounces":
        x0, y0 = rng.uniform(0.2, 0.8) * w, rng.uniform(0.08, 0.3) * h + r0
        x, y, bounces = ballistic(x0, y0, 0.0, 0.0, g, floor - r0, rng.uniform(0.55, 0.8), ts)
    elif motion == "is thrown in an arc":
        sign = 1 if rng.random() < 0.5 else -1
        apex = rng.uniform(0.3, 0.5) * h
        vy = -math.sqrt(2 * g * apex)
        flight = 2 * -vy / g
        vx = sign * rng.uniform(0.45, 0.7) * w / max(flight, 0.5 * duration)
        x0 = w / 2 - sign * rng.uniform(0.25, 0.35) * w
        x, y, bounces = ballistic(x0, floor - r0, vx, vy, g, floor - r0, rng.uniform(0.4, 0.6), ts)
    elif motion in ("rolls left", "rolls right", "slides left", "slides right"):
        sign = -1 if motion.endswith("left") else 1
        v = sign * travel(w)
        x = w / 2 - sign * rng.uniform(0.15, 0.3) * w + v * ts
        if motion.startswith("rolls"):
            y = np.full(n, floor - r0)
            angle = angle + (x - x[0]) / r0  # rolling without slipping
    elif motion in ("slides up", "slides down"):
        sign = -1 if motion.endswith("up") else 1
        v = sign * travel(h)
        y = h / 2 - sign * rng.uniform(0.15, 0.25) * h + v * ts
    elif motion == "spins":
        angle = angle + (1 if rng.random() < 0.5 else -1) * rng.uniform(2.0, 5.0) * ts
    elif motion in ("grows", "shrinks"):
        ratio = rng.uniform(1.6, 2.2)
        s = ts / duration
        r = r0 * np.exp(np.log(ratio) * (s if motion == "grows" else 1 - s)) / (math.sqrt(ratio) if motion == "grows" else 1)
    return Body(kind, color, motion, np.asarray(x, float), np.asarray(y, float), r, angle, bounces)


def collide_bodies(kinds: list[str], colors: list[str], spec: ClipSpec, ts: np.ndarray, rng: np.random.Generator) -> list[Body]:
    """Two objects slide toward each other along the floor and collide elastically (mass by area)."""
    h, w = spec.height, spec.width
    short = min(h, w)
    r1, r2 = rng.uniform(0.07, 0.12, size=2) * short
    m1, m2 = r1**2, r2**2
    duration = max(ts[-1], 1e-6)
    floor = floor_y(h)
    x1, x2 = rng.uniform(0.08, 0.2) * w + r1, w - rng.uniform(0.08, 0.2) * w - r2
    t_hit = rng.uniform(0.35, 0.6) * duration  # contact happens inside the clip
    closing = (x2 - x1 - r1 - r2) / t_hit
    share = rng.uniform(0.35, 0.65)
    v1, v2 = closing * share, -closing * (1 - share)
    u1, u2 = elastic_1d(m1, v1, m2, v2)
    before = ts <= t_hit
    xa = np.where(before, x1 + v1 * ts, x1 + v1 * t_hit + u1 * (ts - t_hit))
    xb = np.where(before, x2 + v2 * ts, x2 + v2 * t_hit + u2 * (ts - t_hit))
    bodies = []
    for kind, color, xs, r in ((kinds[0], colors[0], xa, r1), (kinds[1], colors[1], xb, r2)):
        ang = (xs - xs[0]) / r if kind == "ball" else np.zeros_like(xs)
        bodies.append(Body(kind, color, "collide", xs, np.full(len(ts), floor - r), np.full(len(ts), r), ang))
    return bodies


def pendulum_body(kind: str, color: str, spec: ClipSpec, ts: np.ndarray, g: float, rng: np.random.Generator) -> Body:
    """A bob on a string from a pivot near the top of the frame."""
    h, w = spec.height, spec.width
    r0 = rng.uniform(0.07, 0.1) * min(h, w)
    length = rng.uniform(0.45, 0.6) * h
    px, py = w / 2 + rng.uniform(-0.1, 0.1) * w, 0.08 * h
    theta = pendulum(rng.choice([-1, 1]) * rng.uniform(0.4, 0.8), length, g, ts)
    x, y = px + length * np.sin(theta), py + length * np.cos(theta)
    return Body(kind, color, "swings", x, y, np.full(len(ts), r0), theta, pivot=(px, py))


# ---------------------------------------------------------------------------------------------------------------
# Scene assembly, rendering, captions and script.


def pick_identity(
    rng: np.random.Generator, setting: str, motion: str, taken: set[str], allow_held_out: bool, shapes: tuple[str, ...] = SHAPES
) -> tuple[str, str]:
    """A (kind, color) that contrasts with the setting, differs in color from the others, and (for training)
    is not a held-out combination."""
    emoji = sorted(EMOJI) if shapes == SHAPES else sorted(set(shapes) & set(EMOJI))
    shapes = tuple(s for s in shapes if s in SHAPES)
    for _ in range(200):
        if emoji and rng.random() < 0.25:
            kind = cap.pick(rng, emoji)
            color = EMOJI[kind][1]
        else:
            kind = cap.pick(rng, list(shapes))
            color = cap.pick(rng, sorted(COLORS))
        if color in CLASHES[setting] or color in taken:
            continue
        if not allow_held_out and is_held_out(color, kind, motion):
            continue
        return kind, color
    raise RuntimeError("no object identity fits; vocabulary too constrained")  # internal invariant


def render_physics(spec: ClipSpec) -> Clip:
    """Render one physics clip with its captions and scene script."""
    rng = np.random.default_rng(spec.seed)
    h, w, n = spec.height, spec.width, spec.frames
    ts = np.arange(n) / spec.fps
    setting = cap.pick(rng, SETTINGS)
    g = rng.uniform(1.5, 3.0) * h  # world px / s^2: scaled to the frame, so a fall looks alike at any size
    still = n == 1
    drill = spec.family == "directions"  # one object, a static camera, a directed motion; draws skipped, not changed
    moving = ("pans left", "pans right", "zooms in", "zooms out")
    camera_motion = "static" if still or drill or rng.random() < 0.7 else cap.pick(rng, moving)
    camera = make_camera(camera_motion, n, h, w, rng)
    scene = "single" if still or drill else str(rng.choice(SCENE_KINDS, p=SCENE_WEIGHTS))
    bodies: list[Body] = []
    taken: set[str] = set()
    if scene == "collide":
        ids = []
        for _ in range(2):
            kind, color = pick_identity(rng, setting, "collide", taken, spec.allow_held_out, ("ball", "cube"))
            taken.add(color)
            ids.append((kind, color))
        bodies = collide_bodies([k for k, _ in ids], [c for _, c in ids], spec, ts, rng)
    elif scene == "swings":
        kind, color = pick_identity(rng, setting, "swings", taken, spec.allow_held_out, ("ball",))
        bodies = [pendulum_body(kind if kind == "ball" else "ball", color, spec, ts, g, rng)]
    else:
        count = 1 if drill or rng.random() < 0.6 else 2 if rng.random() < 0.75 else 3
        for _ in range(count * 20):  # objects never overlap: a candidate that would touch another is redrawn
            if len(bodies) == count:
                break
            if still:
                motion = "stays still"
            elif drill:
                motion = str(rng.choice(DIRECTED_MOTIONS))
            else:
                motion = str(rng.choice(SINGLE_MOTIONS, p=MOTION_WEIGHTS / MOTION_WEIGHTS.sum()))
            kind, color = pick_identity(rng, setting, motion, taken, spec.allow_held_out, ROLLERS if motion.startswith("rolls") else SHAPES)
            body = single_body(motion, kind, color, spec, ts, g, rng)
            if all(separated(body, other) for other in bodies):
                taken.add(color)
                bodies.append(body)
    frames = np.empty((n, h, w, 3), np.uint8)
    backgrounds = BackgroundCache(setting, camera, h, w, spec.seed)
    for t in range(n):
        frames[t] = draw_frame(spec, setting, camera, bodies, t, backgrounds)
    terse, detailed = physics_captions(rng, spec, setting, camera_motion, bodies, still)
    return Clip(frames, spec.fps, terse, detailed, physics_script(spec, setting, camera, bodies, g))


def draw_frame(spec: ClipSpec, setting: str, camera: Camera, bodies: list[Body], t: int, backgrounds: BackgroundCache) -> np.ndarray:
    """One frame: the setting through the camera, then each object (pendulum string first) on top."""
    h, w = spec.height, spec.width
    layer = Layer(h, w)
    z = camera.zoom[t]
    for b in bodies:
        x, y = camera.to_frame(t, b.x[t], b.y[t], h, w)
        r = b.r[t] * z
        if b.pivot is not None:
            px, py = camera.to_frame(t, np.float64(b.pivot[0]), np.float64(b.pivot[1]), h, w)
            layer.line(float(px), float(py), float(x), float(y), (200, 200, 200) if setting in ("dark room", "city street at night") else (60, 60, 60), max(0.6, 0.02 * min(h, w) * z))
        if b.is_emoji:
            draw_emoji(layer, b.kind, float(x), float(y), float(r), float(b.angle[t]) if b.motion in ("spins", "rolls left", "rolls right", "collide") else 0.0)
        else:
            draw_shape(layer, b.kind, b.color, float(x), float(y), float(r), float(b.angle[t]))
    return layer.composite(backgrounds.at(t))


def separated(a: Body, b: Body) -> bool:
    """True if the two objects keep a gap between them in every frame."""
    gap = np.hypot(a.x - b.x, a.y - b.y) - 1.4 * (a.r + b.r)  # 1.4: polygons and emoji reach past r
    return bool(np.all(gap > 0))


MOTION_WORDS: dict[str, tuple[str, ...]] = {
    "falls and bounces": ("falls and bounces", "drops and bounces", "bounces", "falls and bounces"),
    "rolls left": ("rolls left", "rolls to the left", "rolls left"),
    "rolls right": ("rolls right", "rolls to the right", "rolls right"),
    "slides left": ("slides left", "moves left", "slides to the left"),
    "slides right": ("slides right", "moves right", "slides to the right"),
    "slides up": ("slides up", "moves up", "rises"),
    "slides down": ("slides down", "moves down", "sinks"),
    "is thrown in an arc": ("is thrown in an arc", "flies in an arc", "is tossed in an arc"),
    "spins": ("spins", "spins in place", "rotates"),
    "grows": ("grows", "grows bigger", "gets bigger"),
    "shrinks": ("shrinks", "gets smaller", "shrinks down"),
    "stays still": ("stays still", "sits still", "does not move"),
    "swings": ("swings on a string", "swings like a pendulum", "swings"),
}


def noun(b: Body) -> str:
    return b.kind if b.is_emoji else f"{b.color} {b.kind}"


def physics_captions(
    rng: np.random.Generator, spec: ClipSpec, setting: str, camera: str, bodies: list[Body], still: bool
) -> tuple[str, str]:
    """Terse and detailed captions; an image (one frame) is captioned as a still scene."""
    short = min(spec.height, spec.width)
    if still:
        body = cap.join_and([cap.a(noun(b)) for b in bodies])
        terse = cap.with_setting_and_camera(rng, body, setting, "static")
        details = [
            f"{cap.a(cap.size_word(b.r[0], short) + ' ' + noun(b))} in the {cap.position_words(b.x[0], b.y[0], spec.height, spec.width)} of the picture"
            for b in bodies
        ]
        detailed = cap.sentence(f"A still picture {cap.pick(rng, cap.SETTING_PHRASES[setting])}: " + cap.join_and(details))
        return terse, detailed
    if bodies[0].motion == "collide":
        a_, b_ = bodies
        body = cap.pick(rng, (f"{cap.a(noun(a_))} and {cap.a(noun(b_))} collide", f"{cap.a(noun(a_))} collides with {cap.a(noun(b_))}"))
        terse = cap.with_setting_and_camera(rng, body, setting, camera)
        detailed = cap.sentence(
            f"{cap.a(noun(a_))} slides in from the left and {cap.a(noun(b_))} from the right "
            f"{cap.pick(rng, cap.SETTING_PHRASES[setting])}; they meet and bounce off each other"
        ) + _camera_sentence(camera)
        return terse, detailed
    clauses = [f"{cap.a(noun(b))} {cap.pick(rng, MOTION_WORDS[b.motion])}" for b in bodies]
    terse = cap.with_setting_and_camera(rng, cap.join_and(clauses), setting, camera)
    sentences = []
    for b in bodies:
        where = cap.position_words(b.x[0], b.y[0], spec.height, spec.width)
        what = f"{cap.a(cap.size_word(b.r[0], short) + ' ' + noun(b))}"
        if b.motion == "falls and bounces":
            k = len(b.bounces)
            more = {0: "falls toward the floor", 1: "drops to the floor and bounces once"}.get(k, f"drops to the floor and bounces {k} times, each bounce lower than the last")
            sentences.append(f"{what} starts in the {where} and {more}")
        elif b.motion == "swings":
            sentences.append(f"{what} hangs on a string and swings back and forth like a pendulum")
        else:
            speed = cap.pick(rng, ("steadily ", "smoothly ", "")) if b.motion.startswith(("slides", "rolls")) else ""
            sentences.append(f"{what} in the {where} {speed}{MOTION_WORDS[b.motion][0]}")
    first = cap.sentence(f"{cap.pick(rng, cap.SETTING_PHRASES[setting])}, {sentences[0]}")
    rest = " ".join(cap.sentence(s) for s in sentences[1:])
    detailed = " ".join(p for p in (first, rest) if p) + _camera_sentence(camera)
    return terse, detailed


def _camera_sentence(camera: str) -> str:
    return " The camera is static." if camera == "static" else f" The camera {camera.split()[0]} {camera.split()[1]}."


def physics_script(spec: ClipSpec, setting: str, camera: Camera, bodies: list[Body], g: float) -> dict:
    """The ground truth: objects with per-frame frame-pixel positions and sizes, the camera, the physics."""
    h, w = spec.height, spec.width
    objects = []
    for i, b in enumerate(bodies):
        fx, fy = _frame_track(camera, b, h, w)
        size = 2 * b.r * camera.zoom
        visible = (fx + size / 2 > 0) & (fx - size / 2 < w) & (fy + size / 2 > 0) & (fy - size / 2 < h)
        objects.append(
            {
                "id": i,
                "kind": b.kind,
                "emoji": b.is_emoji,
                "color": b.color,
                "motion": b.motion,
                "direction": direction_of(b.x[-1] - b.x[0], b.y[-1] - b.y[0], min(h, w)),
                "x": _r(fx),
                "y": _r(fy),
                "size": _r(size),
                "angle": _r(b.angle),
                "visible": visible.astype(int).tolist(),
                "bounces": b.bounces,
                "pivot": list(b.pivot) if b.pivot else None,
            }
        )
    return {
        "family": "physics",
        "height": h,
        "width": w,
        "frames": spec.frames,
        "fps": spec.fps,
        "setting": setting,
        "camera": {"motion": camera.motion, "cx": _r(camera.cx), "cy": _r(camera.cy), "zoom": _r(camera.zoom, 4)},
        "gravity": round(g, 3),  # world px / s^2; in frame px per frame^2 it is gravity * zoom / fps^2
        "objects": objects,
    }


def _frame_track(camera: Camera, b: Body, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return (b.x - camera.cx) * camera.zoom + w / 2, (b.y - camera.cy) * camera.zoom + h / 2


def _r(a: np.ndarray, nd: int = 2) -> list[float]:
    return [round(float(v), nd) for v in np.asarray(a)]
