"""The drama family: people who walk, wave, jump, sit down, turn around and meet, in wide, medium and close shots.

A person is drawn from body parts given in body units (soles at y = 0, top of the head at y = 1, y up, x toward the
way they face) and placed in the world by a scale (world units per body unit) and the world point under their feet.
Shot size is framing, one renderer for all three: a wide shot has the whole figure standing on the floor; a medium
shot or close-up puts a larger person nearer the camera (feet below the frame) under a slightly zoomed camera, so the
set stays recognizable behind them. A jump is ballistic (constant gravity); a walker's legs cycle in step with the
ground they cover. The scene script's positions are centroids of the pixels each person drew.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from kinetoscope.world import captions as cap
from kinetoscope.world.canvas import CLASHES, SS, BackgroundCache, Camera, Layer, floor_y, make_camera, shade
from kinetoscope.world.clip import Clip, ClipSpec
from kinetoscope.world.vocab import COLORS, DRAMA_ACTIONS, DRAMA_STILL, SETTINGS, SHOT_SIZES, direction_of, is_held_out

SETTING_WEIGHTS = np.array([1, 1, 1, 1, 1, 1, 3, 3], dtype=float)  # living room and office are natural for drama
ACTION_WEIGHTS = np.array([1, 1, 1, 1, 0.8, 0.8, 1], dtype=float)  # in DRAMA_ACTIONS order
SHOT_WEIGHTS = np.array([0.5, 0.3, 0.2])  # in SHOT_SIZES order
ACTION_SHOTS = {  # jumping or sitting in a tight shot would leave the frame: those stay wide
    "walks left": ("wide shot", "medium shot"),
    "walks right": ("wide shot", "medium shot"),
    "waves": SHOT_SIZES,
    "jumps": ("wide shot",),
    "sits down": ("wide shot",),
    "turns around": SHOT_SIZES,
    "meet": ("wide shot", "medium shot"),
    "stands": SHOT_SIZES,  # a still picture
}
# Room an action needs left and right of the feet, in body units, with its one-sided part (the waving arm, the chair
# behind a sitter) on the +x side; a close-up may cut the shoulders, never the head or a hand.
EXTENT = {"waves": (0.17, 0.4), "sits down": (0.17, 0.4), "walks left": (0.22, 0.22), "walks right": (0.22, 0.22),
          "meet": (0.22, 0.22)}
STATIONARY = ("waves", "jumps", "sits down", "turns around")

SKIN = ((241, 200, 170), (217, 176, 144), (179, 139, 114), (137, 102, 79), (97, 64, 47))
HAIR: dict[str, tuple[int, int, int]] = {  # not vocabulary colors: hair is described, never a color fact
    "black": (50, 44, 42),
    "brown": (103, 70, 45),
    "blonde": (201, 183, 144),
    "auburn": (114, 76, 62),
    "gray": (178, 176, 172),
}
HAIR_WEIGHTS = np.array([0.3, 0.3, 0.2, 0.1, 0.1])
SHOE = (66, 48, 40)
EYE = (55, 45, 42)
# Skin, hair, shoes and wood are muted enough that the analyzer names none of them (not even shaded or +-12 per
# channel): a person's only named colors are their clothes.
WOOD = (122, 88, 61)

# Body units. Standing: soles at 0, ankles, hip joints, shirt hem, shoulders, head center; the head tops out at 1.
ANKLE, HIP, HEM, SHOULDER, HEAD = 0.045, 0.47, 0.4, 0.74, 0.9
THIGH, SHIN, UPPER_ARM, FOREARM = 0.215, 0.215, 0.17, 0.15
LEG_W, ARM_W, HEAD_RX, HEAD_RY = 0.06, 0.066, 0.07, 0.09
STRIDE_CYCLE = 0.8  # body units covered per full leg cycle at the standard swing
SEAT = (-0.2, 0.3)  # seated hip position relative to the feet


@dataclass(frozen=True)
class Look:
    """Who a person is: what the captions describe and the figure shows."""

    gender: str  # "man" or "woman"
    skin: tuple[int, int, int]
    hair: str  # a HAIR name
    long_hair: bool
    shirt: str  # vocabulary colors from here on
    trousers: str
    hat: str | None
    brim: bool  # a cap with a brim, else a beanie


@dataclass
class Person:
    """One person's look, action and per-frame pose, in world units: x, y is the point under the feet."""

    look: Look
    action: str
    scale: float  # world units per body unit
    x: np.ndarray  # (T,)
    y: np.ndarray  # (T,) the soles: the floor, or above it during a hop
    facing: list[str]  # per frame: left / right / front / back
    gait: np.ndarray  # (T,) leg phase, radians
    swing: np.ndarray  # (T,) leg swing amplitude, radians (0 = standing)
    wave: np.ndarray  # (T,) how far the waving arm is raised, 0..1
    wave_angle: np.ndarray  # (T,) the waving forearm's sway, radians
    sit: np.ndarray  # (T,) 0 standing .. 1 seated
    crouch: np.ndarray  # (T,) 0..1 knees bent before and after a hop
    wave_side: float = 1.0  # which arm waves (+1 viewer's right)
    chair: bool = False
    hops: tuple[tuple[int, int], ...] = ()  # (first frame in the air, first frame back down)
    gravity: float | None = None  # world units / s^2, jumps only


# ---------------------------------------------------------------------------------------------------------------
# Casting and blocking: who is in the clip, how the shot frames them, and what they do frame by frame.


def pick_look(rng: np.random.Generator, setting: str, taken: set[str]) -> Look:
    """A person whose clothes contrast with the setting; no two people share a shirt color."""
    colors = [c for c in sorted(COLORS) if c not in CLASHES[setting]]
    shirt = cap.pick(rng, [c for c in colors if c not in taken])
    trousers = cap.pick(rng, [c for c in colors if c != shirt])
    gender = "man" if rng.random() < 0.5 else "woman"
    hair = str(rng.choice(list(HAIR), p=HAIR_WEIGHTS))
    hat = cap.pick(rng, [c for c in colors if c != shirt]) if rng.random() < 0.25 else None
    skin = SKIN[int(rng.integers(len(SKIN)))]
    long_hair = rng.random() < (0.75 if gender == "woman" else 0.12)
    return Look(gender, skin, hair, long_hair, shirt, trousers, hat, brim=rng.random() < 0.6)


@dataclass(frozen=True)
class Framing:
    """A shot size made concrete: camera zoom, person scale (frame px per body unit / zoom) and where feet stand."""

    shot: str
    zoom: float
    unit: float  # frame px per body unit
    feet: float  # frame y of the soles when standing


def frame_shot(shot: str, h: int, w: int, people: int, rng: np.random.Generator) -> Framing:
    """Wide: full body on the floor. Medium: waist up. Close-up: head and shoulders. Width limits the scale (9:16)."""
    if shot == "wide shot":
        unit = min(rng.uniform(0.4, 0.55) * h, (1.4 if people == 1 else 0.8) * w)
        return Framing(shot, 1.0, unit, floor_y(h))
    if shot == "medium shot":
        zoom, top, cut, wide = rng.uniform(1.1, 1.3), rng.uniform(0.06, 0.12), rng.uniform(0.38, 0.46), 2.3
    else:
        zoom, top, cut, wide = rng.uniform(1.25, 1.5), rng.uniform(0.04, 0.08), rng.uniform(0.52, 0.6), 3.2
    unit = min(h / (1 + top - cut), (wide if people == 1 else 0.95) * w)
    slack = h - (1 + top - cut) * unit  # > 0 when the width limited the scale: half headroom, half a lower cut
    return Framing(shot, zoom, unit, top * unit + slack / 2 + unit)


def extent(action: str, shot: str, side: float) -> tuple[float, float]:
    """(left, right) room in body units; side -1 mirrors the one-sided part (arm, chair) to the left."""
    a, b = EXTENT.get(action, (0.1, 0.1) if shot == "close-up" else (0.17, 0.17))
    return (a, b) if side > 0 else (b, a)


def layout(actions: list[str], f: Framing, w: int, rng: np.random.Generator) -> tuple[list[float], list[float]] | None:
    """Where people stand (frame x of the feet) and which side their arm or chair is on, or None if it can't fit.

    One person: anywhere near the middle. Two: the waving arms point inward, chairs stand outward, no overlap."""
    u = f.unit
    if len(actions) == 1:
        side = 1.0 if rng.random() < 0.5 else -1.0
        left, right = extent(actions[0], f.shot, side)
        if (left + right) * u > 1.04 * w:
            return None
        jitter = {"wide shot": 0.12, "medium shot": 0.08, "close-up": 0.04}[f.shot] * w
        x = w / 2 + rng.uniform(-jitter, jitter) + (left - right) * u / 2
        return [float(np.clip(x, left * u, w - right * u))], [side]
    if f.shot == "close-up":
        return None
    sides = [1.0 if actions[0] == "waves" else -1.0, -1.0 if actions[1] == "waves" else 1.0]
    (l0, r0), (l1, r1) = (extent(a_, f.shot, s_) for a_, s_ in zip(actions, sides))
    least = max(r0 + l1, 0.55) * u
    if (l0 + r1) * u + least > w:
        return None
    sep = min(max(rng.uniform(0.4, 0.55) * w, least), w - (l0 + r1) * u)
    center = w / 2 + (l0 - r1) * u / 2
    return [center - sep / 2, center + sep / 2], sides


def fits(actions: list[str], f: Framing, w: int, rng: np.random.Generator) -> bool:
    """Whether everyone's horizontal room is inside the frame at this framing (and a walk has room to go)."""
    left, right = extent(actions[0], f.shot, 1.0)
    if actions[0].startswith("walks") and w - (left + right) * f.unit < 0.3 * w:
        return False
    return actions[0] in ("meet", "walks left", "walks right") or layout(actions, f, w, rng) is not None


def smoothstep(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, 0.0, 1.0)
    return s * s * (3 - 2 * s)


def block(look: Look, action: str, xf: np.ndarray, f: Framing, camera: Camera, ts: np.ndarray, h: int, w: int,
          rng: np.random.Generator, facing: str = "front", side: float = 1.0) -> Person:
    """A person doing the action, given their frame-x track (frame px, per frame) under the camera."""
    n = len(ts)
    duration = max(float(ts[-1]), 1e-6)
    tau = ts / duration
    scale = f.unit / f.zoom
    x = (xf - w / 2) / f.zoom + camera.cx  # frame x -> world x, per frame
    y = np.full(n, (f.feet - h / 2) / f.zoom + camera.cy[0])
    z = np.zeros(n)
    p = Person(look, action, scale, x, y, [facing] * n, z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), z.copy())
    if action in ("walks left", "walks right", "meet"):
        moved = np.abs(np.diff(x, prepend=2 * x[0] - x[1]))  # world units per frame (frame 0 continues frame 1)
        walking = moved > 1e-6
        p.facing = ["right" if xf[-1] > xf[0] else "left"] * n  # a meeting pair keeps facing each other after they stop
        p.gait = 2 * math.pi * np.cumsum(moved) / (STRIDE_CYCLE * scale) + rng.uniform(0, 2 * math.pi)
        p.swing = np.where(walking, 0.45, 0.0)
        if not walking[-1]:  # ease the legs together over the last steps
            stop = int(np.argmin(walking[1:])) + 1 if walking[1:].any() else 0
            k = np.arange(n) - stop
            p.swing = np.where(k >= 0, 0.45 * np.clip(1 - k / 2, 0, 1), p.swing)
    elif action == "waves":
        fps = (n - 1) / duration
        f_hz = min(max(rng.uniform(1.5, 2.5), 1.5 / duration), fps / 3)  # 1.5+ sways, 3+ frames each
        p.wave = smoothstep(tau / 0.2)
        p.wave_angle = 0.5 * np.sin(2 * math.pi * f_hz * ts + rng.uniform(0, 2 * math.pi))
        p.wave_side = side
    elif action == "jumps":
        hop(p, ts, rng)
    elif action == "sits down":
        p.chair = True
        t0 = rng.uniform(0.1, 0.3)
        p.sit = smoothstep((tau - t0) / rng.uniform(0.4, 0.55))
    elif action == "turns around":
        p.facing = turn(n, rng)
    return p


def hop(p: Person, ts: np.ndarray, rng: np.random.Generator) -> None:
    """One to three ballistic hops, y = y0 - (v t - g t^2 / 2) in the air, with a crouch before and after each."""
    duration = float(ts[-1])
    flight = rng.uniform(0.4, 0.6)  # seconds: a real hop; a short clip gets a faster one that still fits
    count = int(np.clip(duration // (flight + 0.3), 1, 3))
    flight = min(flight, 0.6 * duration / count)
    height = rng.uniform(0.15, 0.25) * p.scale
    g = 8 * height / flight**2
    gap = (duration - count * flight) / (count + 1)  # time on the ground before, between and after hops
    lift, crouch, hops = np.zeros(len(ts)), np.zeros(len(ts)), []
    for k in range(count):
        t0 = gap + k * (flight + gap)
        s = ts - t0
        air = (s > 0) & (s < flight)
        lift = np.where(air, g * flight / 2 * s - g * s * s / 2, lift)
        near = np.minimum(np.abs(s), np.abs(s - flight))  # time to takeoff or landing
        crouch = np.maximum(crouch, np.where(air, 0.0, np.clip(1 - near / max(min(0.15, gap / 2), 1e-6), 0, 1)))
        frames = np.nonzero(air)[0]
        if len(frames):
            hops.append((int(frames[0]), int(frames[-1]) + 1))
    p.y = p.y - lift
    p.crouch, p.hops, p.gravity = crouch, tuple(hops), g


def turn(n: int, rng: np.random.Generator) -> list[str]:
    """Facing flips mid-clip, passing through a profile (front <-> back) or the front (left <-> right)."""
    start, end = [("front", "back"), ("back", "front"), ("left", "right"), ("right", "left")][
        int(rng.choice(4, p=[0.35, 0.25, 0.2, 0.2]))
    ]
    between = cap.pick(rng, ("left", "right")) if start in ("front", "back") else "front"
    mid = rng.uniform(0.4, 0.6) * (n - 1)
    half = max(0.5, 0.08 * (n - 1))
    k = np.arange(n)
    return [start if i < mid - half else end if i > mid + half else between for i in k]


# ---------------------------------------------------------------------------------------------------------------
# Drawing. A Pen maps body units to frame pixels for one person at one frame.


@dataclass
class Pen:
    layer: Layer
    fx: float  # frame point under the feet
    fy: float
    unit: float  # frame px per body unit
    mirror: float  # -1 draws the figure facing left

    def pt(self, x: float, y: float) -> tuple[float, float]:
        return self.fx + self.mirror * x * self.unit, self.fy - y * self.unit

    def poly(self, pts: list[tuple[float, float]], rgb: tuple[int, int, int]) -> None:
        self.layer.polygon(np.array([self.pt(x, y) for x, y in pts]), rgb)

    def blob(self, x: float, y: float, rx: float, ry: float, rgb: tuple[int, int, int]) -> None:
        cx, cy = self.pt(x, y)
        self.layer.ellipse(cx, cy, rx * self.unit, ry * self.unit, rgb)

    def limb(self, a: tuple[float, float], b: tuple[float, float], width: float, rgb: tuple[int, int, int]) -> None:
        """A segment with round ends, so joints close up."""
        (x0, y0), (x1, y1) = self.pt(*a), self.pt(*b)
        self.layer.line(x0, y0, x1, y1, rgb, width * self.unit)
        for x, y in ((x0, y0), (x1, y1)):
            self.layer.ellipse(x, y, width * self.unit / 2, width * self.unit / 2, rgb)


def arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 14) -> list[tuple[float, float]]:
    """Points along an ellipse from angle a0 to a1 (degrees, counterclockwise, y up)."""
    a = np.radians(np.linspace(a0, a1, n))
    return list(zip((cx + rx * np.cos(a)).tolist(), (cy + ry * np.sin(a)).tolist()))


def along(p: tuple[float, float], angle: float, length: float) -> tuple[float, float]:
    """The point `length` away from p, at `angle` from straight down (positive toward +x)."""
    return p[0] + length * math.sin(angle), p[1] - length * math.cos(angle)


def knee(hip: tuple[float, float], ankle: tuple[float, float], bend: float) -> tuple[float, float]:
    """Two-bone inverse kinematics: the knee between hip and ankle, bending toward +x (bend=+1) or -x."""
    dx, dy = ankle[0] - hip[0], ankle[1] - hip[1]
    d = min(max(math.hypot(dx, dy), 1e-6), THIGH + SHIN - 1e-6)
    a = (THIGH**2 - SHIN**2 + d * d) / (2 * d)
    k = math.sqrt(max(THIGH**2 - a * a, 0.0))
    ux, uy = dx / d, dy / d
    return hip[0] + a * ux - bend * k * uy, hip[1] + a * uy + bend * k * ux


def draw_chair(pen: Pen) -> None:
    """A wooden chair behind the person (its seat under the seated hip), seen from the side."""
    back, front, seat = -0.36, -0.06, 0.27
    pen.limb((back, 0.01), (back, 0.66), 0.035, WOOD)
    pen.limb((front, 0.01), (front, seat), 0.035, WOOD)
    pen.poly([(back, seat), (front + 0.02, seat), (front + 0.02, seat - 0.035), (back, seat - 0.035)], WOOD)
    pen.poly([(back - 0.015, 0.5), (back + 0.04, 0.5), (back + 0.04, 0.62), (back - 0.015, 0.62)], shade(WOOD, 0.85))


FAR = 0.85  # limbs on the far side are a little darker (still nearest their vocabulary color)


def draw_legs(pen: Pen, p: Person, t: int, side: bool) -> tuple[float, float]:
    """Legs, shoes and hips; returns the hip point. Walking legs swing (the body rides on the longer one);
    crouching and sitting legs solve for the knee with the feet planted."""
    pants = COLORS[p.look.trousers]
    sit, crouch, a = float(p.sit[t]), float(p.crouch[t]), float(p.swing[t])
    if side:
        th = (a * math.sin(p.gait[t]), -a * math.sin(p.gait[t]))  # thigh angles of the near and far leg
        bends = tuple(0.9 * a * max(0.0, math.cos(p.gait[t] + s * math.pi)) for s in (0, 1))
        reach = max(THIGH * math.cos(th[i]) + SHIN * math.cos(th[i] - bends[i]) for i in (0, 1))
        hip = (SEAT[0] * sit, ANKLE + reach - (ANKLE + reach - SEAT[1]) * sit - 0.07 * crouch)
        legs = []
        for i in (1, 0):  # far leg first
            if sit > 0 or crouch > 0:
                ankle = (0.02 * (1 - 2 * i) + 0.04 * sit, ANKLE)
                k = knee(hip, ankle, 1.0)
            else:
                k = along(hip, th[i], THIGH)
                ankle = along(k, th[i] - bends[i], SHIN)
            legs.append((i, k, ankle))
        for i, k, ankle in legs:
            rgb = shade(pants, FAR) if i else pants
            pen.limb(hip, k, LEG_W, rgb)
            pen.limb(k, ankle, LEG_W, rgb)
            pen.blob(ankle[0] + 0.035, ankle[1] - 0.015, 0.05, 0.027, shade(SHOE, FAR) if i else SHOE)
        return hip
    hip = (0.0, HIP - 0.07 * crouch)
    for s in (-1, 1):  # front and back views: knees bend outward
        h_, ankle = (s * 0.055, hip[1]), (s * 0.062, ANKLE)
        k = knee(h_, ankle, s)
        pen.limb(h_, k, LEG_W, pants)
        pen.limb(k, ankle, LEG_W, pants)
        pen.blob(ankle[0], ankle[1] - 0.015, 0.042, 0.027, SHOE)
    pen.poly([(-0.11, hip[1] + 0.04), (0.11, hip[1] + 0.04), (0.1, hip[1] - 0.05), (-0.1, hip[1] - 0.05)], pants)
    return hip


def draw_person(layer: Layer, p: Person, t: int, fx: float, fy: float, unit: float) -> None:
    """The figure at frame t: legs, torso, arms, neck, head, hair, face and hat, back to front."""
    look, facing = p.look, p.facing[t]
    side = facing in ("left", "right")
    pen = Pen(layer, fx, fy, unit, -1.0 if facing == "left" else 1.0)
    shirt, skin, hair = COLORS[look.shirt], look.skin, HAIR[look.hair]
    hip = draw_legs(pen, p, t, side)
    sit, a = float(p.sit[t]), float(p.swing[t])

    # The upper body rides on the hip and leans forward while sitting down (rotation about the hip).
    lean = 0.45 * math.sin(math.pi * sit) + 0.08 * sit if side else 0.0
    cl, sl = math.cos(lean), math.sin(lean)

    def up(x: float, y: float) -> tuple[float, float]:
        dy = y - HIP
        return hip[0] + x * cl + dy * sl, hip[1] - x * sl + dy * cl

    neck = up(0.0, SHOULDER + 0.06)
    head = (neck[0] + (0.008 if side else 0.0), neck[1] + HEAD - SHOULDER - 0.06)
    hx, hy = head
    if look.long_hair and facing != "back":  # hair hanging behind the shoulders
        pts = [(hx - 0.085, hy + 0.02), (hx + 0.085, hy + 0.02), (hx + 0.095, hy - 0.16), (hx - 0.095, hy - 0.16)]
        if side:
            pts = [(hx - 0.075, hy + 0.02), (hx + 0.0, hy + 0.02), (hx - 0.005, hy - 0.16), (hx - 0.09, hy - 0.15)]
        pen.poly(pts, hair)

    # Arms: angles from straight down. Side view: forward/back swing; front and back view: outward.
    if side:
        swing = -0.8 * a * math.sin(p.gait[t])
        arms = [(swing + 0.5 * sit, swing + 0.15 + 1.1 * sit), (-swing + 0.5 * sit, -swing + 0.15 + 1.1 * sit)]
        shoulder = up(0.0, SHOULDER)
        draw_arm(pen, shoulder, arms[1][0], arms[1][1], shade(shirt, FAR), shade(skin, FAR))  # behind the torso
        torso = [(-0.112, HEM), (0.105, HEM), (0.11, 0.72), (0.065, 0.785), (-0.075, 0.785), (-0.115, 0.72)]
        pen.poly([up(x, y) for x, y in torso], shirt)
        pen.limb(up(0, 0.75), neck, 0.065, skin)
        draw_arm(pen, shoulder, arms[0][0], arms[0][1], shade(shirt, 0.9), skin)  # a shade apart from the torso
    else:
        torso = [(-0.115, HEM), (0.115, HEM), (0.128, 0.7), (0.108, 0.765), (0.04, 0.79), (-0.04, 0.79),
                 (-0.108, 0.765), (-0.128, 0.7)]
        pen.poly([up(x, y) for x, y in torso], shirt)
        pen.limb(up(0.0, 0.75), neck, 0.065, skin)
        rest = 0.35 if p.action == "jumps" else 0.1
        for s in (-1.0, 1.0):
            r = float(p.wave[t]) if s == p.wave_side else 0.0
            upper = rest + (2.1 - rest) * r
            fore = rest + (math.pi - 0.15 + float(p.wave_angle[t]) - rest) * r
            draw_arm(pen, up(s * 0.125, SHOULDER), s * upper, s * fore, shirt, skin)

    draw_head(pen, look, facing, hx, hy)


def draw_head(pen: Pen, look: Look, facing: str, hx: float, hy: float) -> None:
    """Head, hair, face and hat; from the back, hair covers the head."""
    skin, hair, side = look.skin, HAIR[look.hair], facing in ("left", "right")
    if facing == "back":
        pen.blob(hx, hy, HEAD_RX, HEAD_RY, skin)
        pen.blob(hx, hy + 0.004, HEAD_RX + 0.008, HEAD_RY + 0.006, hair)
        if look.long_hair:
            pen.poly([(hx - 0.078, hy), (hx + 0.078, hy), (hx + 0.08, hy - 0.13), (hx - 0.08, hy - 0.13)], hair)
    elif side:
        pen.blob(hx, hy, HEAD_RX, HEAD_RY, skin)
        pen.poly([(hx + 0.062, hy - 0.005), (hx + 0.088, hy - 0.03), (hx + 0.06, hy - 0.04)], skin)  # nose
        pen.poly(arc(hx - 0.004, hy + 0.004, HEAD_RX + 0.008, HEAD_RY + 0.006, 30, 240), hair)
        pen.blob(hx + 0.038, hy + 0.002, 0.011, 0.013, EYE)
        pen.limb((hx + 0.042, hy - 0.05), (hx + 0.058, hy - 0.05), 0.008, shade(skin, 0.6))
    else:
        pen.blob(hx, hy, HEAD_RX, HEAD_RY, skin)
        fringe = [(hx + 0.056, hy + 0.005), (hx + 0.03, hy + 0.035), (hx - 0.03, hy + 0.035), (hx - 0.056, hy + 0.005)]
        pen.poly(arc(hx, hy + 0.004, HEAD_RX + 0.008, HEAD_RY + 0.006, -12, 192) + fringe, hair)
        for s in (-1, 1):
            pen.blob(hx + s * 0.027, hy - 0.005, 0.011, 0.013, EYE)
        pen.limb((hx - 0.018, hy - 0.05), (hx + 0.018, hy - 0.05), 0.008, shade(skin, 0.6))
    if look.hat:
        rgb = COLORS[look.hat]
        pen.poly(arc(hx, hy + 0.01, HEAD_RX + 0.012, HEAD_RY + (0.0 if look.brim else 0.012), 15, 165), rgb)
        if look.brim and side:
            pen.limb((hx, hy + 0.035), (hx + 0.11, hy + 0.03), 0.022, shade(rgb, 0.85))
        elif look.brim and facing == "front":
            pen.blob(hx, hy + 0.035, HEAD_RX + 0.02, 0.016, shade(rgb, 0.85))


def draw_arm(pen: Pen, shoulder: tuple[float, float], upper: float, fore: float, sleeve: tuple[int, int, int],
             skin: tuple[int, int, int]) -> None:
    """A long-sleeved arm: upper arm and forearm at angles from straight down, and a hand."""
    elbow = along(shoulder, upper, UPPER_ARM)
    wrist = along(elbow, fore, FOREARM)
    pen.limb(shoulder, elbow, ARM_W, sleeve)
    pen.limb(elbow, wrist, ARM_W * 0.92, sleeve)
    hand = along(wrist, fore, 0.03)
    pen.blob(hand[0], hand[1], 0.034, 0.034, skin)


# ---------------------------------------------------------------------------------------------------------------
# Scene assembly and rendering.


def render_drama(spec: ClipSpec) -> Clip:
    """Render one drama clip with its captions and scene script."""
    rng = np.random.default_rng(spec.seed)
    h, w, n = spec.height, spec.width, spec.frames
    ts = np.arange(n) / spec.fps
    setting = SETTINGS[int(rng.choice(len(SETTINGS), p=SETTING_WEIGHTS / SETTING_WEIGHTS.sum()))]
    action = DRAMA_STILL
    if n > 1:
        action = DRAMA_ACTIONS[int(rng.choice(len(DRAMA_ACTIONS), p=ACTION_WEIGHTS / ACTION_WEIGHTS.sum()))]
    count = 2 if action == "meet" or rng.random() < 0.3 else 1
    actions = [action] * count
    if count == 2 and action in STATIONARY:
        actions[1] = cap.pick(rng, STATIONARY)
    looks: list[Look] = []
    for a_ in actions:
        for _ in range(100):  # training never shows a held-out (shirt color, person, action) combination
            look = pick_look(rng, setting, {lk.shirt for lk in looks})
            if spec.allow_held_out or not is_held_out(look.shirt, "person", a_):
                break
        looks.append(look)
    framing = choose_framing(actions, h, w, rng)
    walking = action in ("walks left", "walks right")
    pan = n > 1 and action != "meet" and (count == 1 or walking) and (framing.shot == "wide shot" or walking)
    motion = "static"
    if pan and rng.random() < 0.3:  # a pan follows walkers
        motion = f"pans {action.split()[1]}" if walking else cap.pick(rng, ("pans left", "pans right"))
    base = make_camera(motion, n, h, w, rng)
    camera = Camera(base.cx, base.cy, base.zoom * framing.zoom, motion)
    people = stage(actions, looks, framing, camera, ts, h, w, rng)
    frames, tracks = draw_frames(spec, setting, camera, people)
    terse, detailed = drama_captions(rng, spec, setting, camera, framing.shot, people, tracks)
    return Clip(frames, spec.fps, terse, detailed, drama_script(spec, setting, camera, framing.shot, people, tracks))


def choose_framing(actions: list[str], h: int, w: int, rng: np.random.Generator) -> Framing:
    """A shot size every action allows and fits in (tight shots keep the head near the top of the frame)."""
    allowed = [s for s in SHOT_SIZES if all(s in ACTION_SHOTS[a_] for a_ in actions)]
    weights = np.array([SHOT_WEIGHTS[SHOT_SIZES.index(s)] for s in allowed])
    for i in rng.choice(len(allowed), len(allowed), replace=False, p=weights / weights.sum()):
        f = frame_shot(allowed[i], h, w, len(actions), rng)
        head_top = f.feet - f.unit
        if fits(actions, f, w, rng) and (f.shot == "wide shot" or head_top < 0.22 * h):
            return f
    f = frame_shot("wide shot", h, w, len(actions), rng)
    while not fits(actions, f, w, rng):  # a narrow frame: people stand further back
        f = replace(f, unit=0.9 * f.unit)
    return f


def stage(actions: list[str], looks: list[Look], f: Framing, camera: Camera, ts: np.ndarray, h: int, w: int,
          rng: np.random.Generator) -> list[Person]:
    """Where each person stands or walks in the frame (frame-x tracks), then their action's timeline."""
    n, u = len(ts), f.unit
    tau = ts / max(float(ts[-1]), 1e-6)
    action = actions[0]
    margin = EXTENT["meet"][0] * u
    max_step = 0.3 * STRIDE_CYCLE * u  # frame px per frame at which legs still cycle readably (0.3 cycle)
    pan = camera.zoom[0] * (camera.cx[-1] - camera.cx[0])  # frame px the camera moves over the clip
    if action == "meet":
        gap = 0.3 * u
        center = w / 2 + rng.uniform(-0.05, 0.05) * w
        stop = rng.uniform(0.6, 0.85)
        tracks = []
        for s in (-1, 1):
            end = center + s * gap / 2
            start = w / 2 + s * (w / 2 - margin - rng.uniform(0, 0.1) * w)
            start = end + s * min(abs(start - end), max_step * stop * (n - 1))
            tracks.append(start + (end - start) * np.clip(tau / stop, 0, 1))
        return [block(lk, action, xf, f, camera, ts, h, w, rng) for lk, xf in zip(looks, tracks)]
    if action in ("walks left", "walks right"):
        s = -1 if action == "walks left" else 1
        sep = rng.uniform(0.45, 0.6) * u if len(actions) == 2 else 0.0
        room = w - 2 * margin - sep
        travel = min(rng.uniform(0.3, 0.5) * w if pan == 0 else rng.uniform(0.12, 0.25) * w, room)
        travel = max(min(travel, max_step * (n - 1) - abs(pan)), 0.08 * w)
        center = w / 2 + s * (travel - rng.uniform(0.8, 1.0) * travel) / 2
        group = center - s * travel / 2 + s * travel * tau  # the group's center, frame px
        return [block(lk, action, group + s * (sep / 2 - i * sep), f, camera, ts, h, w, rng)  # the first one leads
                for i, lk in enumerate(looks)]
    placed = layout(actions, f, w, rng)
    assert placed is not None  # choose_framing only returns framings that fit
    people = []
    for a_, lk, x0, side in zip(actions, looks, *placed):
        world = (x0 - w / 2) / f.zoom + camera.cx[n // 2]
        xf = (world - camera.cx) * camera.zoom + w / 2  # standing still in the world while the camera moves
        facing = "front"
        if a_ == "sits down" or (a_ == "jumps" and rng.random() < 0.3):
            facing = "left" if side > 0 else "right"  # the chair (+x side) stands behind the sitter
        elif a_ == "stands":
            facing = str(rng.choice(["front", "left", "right", "back"], p=[0.6, 0.15, 0.15, 0.1]))
        people.append(block(lk, a_, xf, f, camera, ts, h, w, rng, facing, side))
    return people


@dataclass
class Tracks:
    """What each person's pixels did, per frame: centroid, visible height and visibility (frame px)."""

    x: np.ndarray  # (P, T)
    y: np.ndarray
    size: np.ndarray
    visible: np.ndarray


def layer_alpha(layer: Layer) -> np.ndarray:
    """The layer's coverage at frame size, (H, W) in 0..1 (the box filter Layer.composite applies)."""
    return np.asarray(layer.image.getchannel("A").reduce(SS), np.float32) / 255.0


def draw_frames(spec: ClipSpec, setting: str, camera: Camera, people: list[Person]) -> tuple[np.ndarray, Tracks]:
    """Each frame: setting, chairs, then each person on their own layer, so each one's visible pixels are known."""
    h, w, n = spec.height, spec.width, spec.frames
    frames = np.empty((n, h, w, 3), np.uint8)
    tr = Tracks(*(np.zeros((len(people), n)) for _ in range(4)))
    backgrounds = BackgroundCache(setting, camera, h, w, spec.seed)
    cols, rows = np.arange(w) + 0.5, np.arange(h) + 0.5
    for t in range(n):
        image = backgrounds.at(t)
        z = camera.zoom[t]
        feet = [camera.to_frame(t, p.x[t], p.y[t], h, w) for p in people]
        if any(p.chair for p in people):
            layer = Layer(h, w)
            for p, (fx, _) in zip(people, feet):
                if p.chair:
                    _, fy = camera.to_frame(t, p.x[t], p.y[0], h, w)
                    draw_chair(Pen(layer, float(fx), float(fy), p.scale * z, -1.0 if p.facing[t] == "left" else 1.0))
            image = layer.composite(image)
        alphas = []
        for p, (fx, fy) in zip(people, feet):
            layer = Layer(h, w)
            draw_person(layer, p, t, float(fx), float(fy), p.scale * z)
            alphas.append(layer_alpha(layer))
            image = layer.composite(image)
        frames[t] = image
        for i, (p, (fx, fy)) in enumerate(zip(people, feet)):
            cover = alphas[i] * np.prod([np.ones((h, w)), *(1 - a_ for a_ in alphas[i + 1 :])], axis=0)  # unoccluded
            total = float(cover.sum())
            if total >= 3.0:
                by_row = cover.sum(axis=1)
                filled = np.nonzero(by_row >= 0.5)[0]
                tr.x[i, t], tr.y[i, t] = cover.sum(axis=0) @ cols / total, by_row @ rows / total
                tr.size[i, t], tr.visible[i, t] = (filled[-1] - filled[0] + 1) if len(filled) else 1, 1
            else:  # off screen: where the body's middle would be
                tr.x[i, t], tr.y[i, t], tr.size[i, t] = fx, fy - 0.5 * p.scale * z, p.scale * z
    return frames, tr


# ---------------------------------------------------------------------------------------------------------------
# Captions and script.

ACTION_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    # (one person, two people, -ing form)
    "walks left": (
        ("walks left", "walks to the left", "walks left across the frame"),
        ("walk left", "walk to the left"),
        ("walking left", "walking to the left"),
    ),
    "walks right": (
        ("walks right", "walks to the right", "walks right across the frame"),
        ("walk right", "walk to the right"),
        ("walking right", "walking to the right"),
    ),
    "waves": (("waves", "waves hello", "waves at the camera"), ("wave", "wave hello"), ("waving", "waving hello")),
    "jumps": (("jumps", "jumps up", "jumps in place", "hops"), ("jump", "jump up and down"), ("jumping", "jumping up")),
    "sits down": (
        ("sits down", "sits down on a chair", "takes a seat"),
        ("sit down", "take a seat"),
        ("sitting down", "taking a seat"),
    ),
    "turns around": (("turns around", "turns to face the other way"), ("turn around",), ("turning around",)),
    "meet": (
        (),
        ("meet", "walk toward each other and meet", "walk up to each other"),
        ("meeting", "walking toward each other"),
    ),
    "stands": (("stands", "is standing", "poses"), ("stand", "are standing"), ("standing",)),
}
SHOT_WORDS = {
    "wide shot": ("wide shot", "wide shot", "full shot"),
    "medium shot": ("medium shot", "medium shot", "waist-up shot"),
    "close-up": ("close-up", "close-up", "close-up shot"),
}
SHOT_SENTENCES = {
    "wide shot": (
        "A wide shot {where}, showing the whole figure from head to toe",
        "Wide shot {where}",
        "A full-length wide shot {where}",
    ),
    "medium shot": (
        "A medium shot {where}, framed from the waist up",
        "Medium shot {where}",
        "A waist-up medium shot {where}",
    ),
    "close-up": (
        "A close-up {where} on the head and shoulders",
        "Close-up {where}",
        "A close-up shot {where}, framing the face and shoulders",
    ),
}
PRONOUNS = {  # subject, possessive, object, reflexive
    "man": ("he", "his", "him", "himself"),
    "woman": ("she", "her", "her", "herself"),
    "person": ("the person", "their", "them", "themselves"),
}


def drama_captions(rng: np.random.Generator, spec: ClipSpec, setting: str, camera: Camera, shot: str,
                   people: list[Person], tr: Tracks) -> tuple[str, str]:
    """Terse (what a user types) and detailed (who, where, what, shot, camera); a still has no action words."""
    nouns = [p.look.gender if rng.random() < 0.8 else "person" for p in people]
    subjects = [who(rng, p.look, noun) for p, noun in zip(people, nouns)]
    where = cap.pick(rng, cap.SETTING_PHRASES[setting])
    shot_word = cap.pick(rng, SHOT_WORDS[shot])
    same = len({p.action for p in people}) == 1
    form = rng.random()
    if same and form < 0.25:  # "close-up of a woman in a red shirt waving in an office"
        gerund = cap.pick(rng, ACTION_WORDS[people[0].action][2])
        if people[0].action == "stands" and rng.random() < 0.5:
            gerund = ""  # "close-up of a woman in a red shirt in an office"
        terse = " ".join(w_ for w_ in (f"{shot_word} of {cap.join_and(subjects)}", gerund, where) if w_)
        cam = cap.pick(rng, cap.CAMERA_PHRASES[camera.motion]) if spec.frames > 1 else ""
        terse += f", {cam}" if cam else ""
    else:
        if same:
            verb = cap.pick(rng, ACTION_WORDS[people[0].action][1 if len(people) == 2 else 0])
            body = f"{cap.join_and(subjects)} {verb}"
        else:
            verbs = [cap.pick(rng, ACTION_WORDS[p.action][0]) for p in people]
            body = f"{subjects[0]} {verbs[0]} {cap.pick(rng, ('and', 'while'))} {subjects[1]} {verbs[1]}"
        if spec.frames == 1:  # a picture has no camera to speak of
            terse = f"{where}, {body}" if rng.random() < 0.25 else f"{body} {where}"
        else:
            terse = cap.with_setting_and_camera(rng, body, setting, camera.motion)
        if form < 0.85:
            terse = f"{terse}, {shot_word}"
        elif form < 0.93:
            terse = f"{shot_word}: {terse}"
    intro = cap.sentence(cap.pick(rng, SHOT_SENTENCES[shot]).format(where=where))
    if spec.frames == 1:
        intro = cap.sentence(f"A still picture. {intro}")
    parts = [intro]
    for i, (p, noun) in enumerate(zip(people, nouns)):
        parts.append(describe(rng, p.look, noun, shot))
        ref = PRONOUNS[noun][0] if len(people) == 1 else f"the {noun} in the {p.look.shirt} shirt"
        if p.action != "meet":
            parts.append(cap.sentence(what(rng, p, noun, ref, tr.x[i], spec.width)))
    if people[0].action == "meet":
        parts.append(cap.sentence(cap.pick(rng, (
            "the two walk toward each other from opposite sides of the frame and stop face to face",
            "they approach each other from opposite sides and stop face to face",
        ))))
    if spec.frames > 1:
        follow = camera.motion != "static" and people[0].action.startswith("walks")
        obj = "them" if len(people) == 2 else PRONOUNS[nouns[0]][2]
        parts.append("The camera is static." if camera.motion == "static" else
                     cap.sentence(f"the camera {camera.motion}" + (f", following {obj}" if follow else "")))
    return terse, " ".join(parts)


def who(rng: np.random.Generator, look: Look, noun: str) -> str:
    """'a man in a red shirt', 'a woman wearing a blue shirt and a yellow cap'."""
    clothes = [cap.a(f"{look.shirt} shirt")]
    if look.hat and rng.random() < 0.3:
        clothes.append(cap.a(f"{look.hat} {'cap' if look.brim else 'beanie'}"))
    return f"{cap.a(noun)} {cap.pick(rng, ('in', 'in', 'wearing'))} {cap.join_and(clothes)}"


def describe(rng: np.random.Generator, look: Look, noun: str, shot: str) -> str:
    """Who the person is: hair, shirt, trousers (when the shot shows them), hat."""
    color = {"auburn": ("auburn", "ginger"), "gray": ("gray", "gray")}.get(look.hair, (look.hair,))
    hair = f"{'long' if look.long_hair else 'short'} {cap.pick(rng, color)} hair"
    clothes = [cap.a(f"{look.shirt} shirt")]
    if shot == "wide shot":
        clothes.append(f"{look.trousers} trousers")
    if look.hat:
        clothes.append(cap.a(f"{look.hat} {cap.pick(rng, ('cap', 'hat') if look.brim else ('beanie', 'hat'))}"))
    wearing = cap.join_and(clothes)
    options = [f"{cap.a(noun)} with {hair} wears {wearing}", f"we see {cap.a(noun)} in {wearing}, with {hair}"]
    if noun != "person":
        options.append(f"there is {cap.a(noun)} wearing {wearing}; {PRONOUNS[noun][0]} has {hair}")
    return cap.sentence(cap.pick(rng, options))


def what(rng: np.random.Generator, p: Person, noun: str, ref: str, x: np.ndarray, w: int) -> str:
    """What the person does, in a sentence starting with ref ('he', 'the woman in the red shirt')."""
    _, poss, obj, refl = PRONOUNS[noun]

    def side(v: float) -> str:
        return "left side" if v < w / 3 else "right side" if v > 2 * w / 3 else "middle"

    a_ = p.action
    if a_.startswith("walks"):
        pace = cap.pick(rng, ("steadily ", "at an even pace ", ""))
        return f"{ref} walks {pace}from the {side(x[0])} of the frame toward the {side(x[-1])}"
    if a_ == "waves":
        hand = "left" if p.wave_side > 0 else "right"  # facing the camera, the viewer's right is their left
        return cap.pick(rng, (f"{ref} raises {poss} {hand} hand and waves", f"{ref} lifts a hand and waves"))
    if a_ == "jumps":
        times = {1: "once", 2: "twice"}.get(len(p.hops), f"{len(p.hops)} times")
        return f"{ref} bends {poss} knees and jumps straight up {times}, landing on the same spot"
    if a_ == "sits down":
        return cap.pick(rng, (f"{ref} lowers {refl} onto a wooden chair and sits down",
                              f"{ref} sits down on the chair behind {obj}"))
    start, end = p.facing[0], p.facing[-1]
    if a_ == "turns around":
        if {start, end} == {"front", "back"}:
            return f"{ref} turns around to face {'away from' if end == 'back' else ''} the camera".replace("  ", " ")
        return f"{ref} turns around from facing {start} to facing {end}"
    pose = {"front": "facing the camera", "back": f"with {poss} back to the camera"}.get(start, f"facing {start}")
    where = "in the middle" if side(x[0]) == "middle" else f"on the {side(x[0])}"
    return f"{ref} stands {pose} {where} of the picture"


def drama_script(spec: ClipSpec, setting: str, camera: Camera, shot: str, people: list[Person], tr: Tracks) -> dict:
    """The ground truth: each person's look, action, facing and pixel track (frame px), the camera and the shot."""
    h, w = spec.height, spec.width
    objects = []
    for i, p in enumerate(people):
        wx = (tr.x[i] - w / 2) / camera.zoom + camera.cx  # the centroid in world units
        wy = (tr.y[i] - h / 2) / camera.zoom + camera.cy
        lk = p.look
        objects.append(
            {
                "id": i,
                "kind": "person",
                "color": lk.shirt,
                "shirt": lk.shirt,
                "trousers": lk.trousers,
                "hair": lk.hair,
                "hat": lk.hat,
                "gender": lk.gender,
                "action": p.action,
                "motion": p.action,
                "facing": list(p.facing),
                "direction": direction_of(wx[-1] - wx[0], wy[-1] - wy[0], min(h, w)),
                "x": _r(tr.x[i]),
                "y": _r(tr.y[i]),
                "size": _r(tr.size[i]),
                "visible": tr.visible[i].astype(int).tolist(),
                "shot": shot,
                "chair": p.chair,
                "hops": [list(hp) for hp in p.hops],
                "gravity": None if p.gravity is None else round(p.gravity, 3),  # world units / s^2
            }
        )
    return {
        "family": "drama",
        "height": h,
        "width": w,
        "frames": spec.frames,
        "fps": spec.fps,
        "setting": setting,
        "shot": shot,
        "camera": {"motion": camera.motion, "cx": _r(camera.cx), "cy": _r(camera.cy), "zoom": _r(camera.zoom, 4)},
        "objects": objects,
    }


def _r(a: np.ndarray, nd: int = 2) -> list[float]:
    return [round(float(v), nd) for v in np.asarray(a)]
