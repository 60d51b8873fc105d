"""Pixel art for the sprites family: ASCII templates, a palette-indexed canvas, and poses per action and phase.

Everything here is in sprite pixels (one template cell is one pixel) and palette letters, not RGB: sprites.py picks
the colors per clip and scales the canvas up with nearest-neighbour, so the pixels stay crisp. Characters are drawn
facing right, feet on the ground row GY, centered on column GX; facing left is a mirror of the finished canvas.
A looping pose is a pure function of (phase, period), so frame k and frame k + period are the same pixels.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

# Palette letters; the index of a letter is its value on the canvas, 0 is empty.
#   o outline   B/b/h body, body shade, body highlight   s skin   k dark (eyes)   w white   m/M metal, metal shade
#   n wood   y gold   r red   O orange   p pink   c cyan (magic, screens)   g gray   G smoke   a accent
LETTERS = ".oBbhskwmMnyrOpcgGa"
EMPTY, OUTLINE = 0, 1
L = {ch: i for i, ch in enumerate(LETTERS)}

CANVAS_H, CANVAS_W = 32, 40
GX, GY = 20, 27  # ground-center anchor of characters; effects are centered on (GX, GY - NOMINAL / 2)
NOMINAL = 16  # nominal sprite height in sprite pixels (what the family scales to 40-70% of the frame)


def parse(rows: tuple[str, ...]) -> np.ndarray:
    """An ASCII grid -> (rows, cols) uint8 palette indices; short rows are padded with empty cells."""
    width = max(len(r) for r in rows)
    return np.array([[L[ch] for ch in r.ljust(width, ".")] for r in rows], np.uint8)


# Upper bodies, facing right. Legs, arms, weapons and tails are drawn per pose on top of these.
KNIGHT = parse((
    "....aaa.....",
    "...aBBBB....",
    "..BBhhBBB...",
    "..BhBBBBBB..",
    "..BhBBkkkk..",
    "..BBBBBBBB..",
    "...bbBBBb...",
    "..BBBBBBBB..",
    "..BhhBBBBBb.",
    "..BhBBBBBBb.",
    "..nnnnynnn..",
))
WIZARD = parse((
    "..BB........",
    "...BBB......",
    "....BBB.....",
    "....BhBB....",
    "....BhByB...",
    "...BhBBBBB..",
    ".bbbbbbbbbbb",
    "....ssssks..",
    "....ssssss..",
    "....wwwwwww.",
    "...Bwwwwww..",
    "..BBBwwwwB..",
    "..BhBBwwBB..",
    "..BhBBBBBB..",
    ".BhhBBBBBBB.",
    ".BhBBBBBBBB.",
    ".bbbbbbbbbbb",
))
ROBOT = parse((
    "...BBBBBBBB.",
    "...BhhhhhBB.",
    "...BhBkccck.",
    "...BBBkccck.",
    "...BBBBBBBB.",
    "....bbbbbb..",
    ".....gggg...",
    "..BBBBBBBBB.",
    "..BhhBBBBBb.",
    "..BhBrBy.Bb.",
    "..BhBBBBBBb.",
    "..BBBBBBBBb.",
))
CAT = parse((
    "........B...B.",
    "........BpBpB.",
    ".......BBBBBB.",
    ".......BhBBkBB",
    ".BBBBBBBhBBBpw",
    "BhhhhhBBBBBBB.",
    "BhBBBBBBBBBB..",
    "BBBBBBBBBBBb..",
    ".bbbbbbbbbb...",
))
GEM = parse((
    "..hhhBBBb..",
    ".hhhhBBBbb.",
    "hhhhBBBBbbb",
    "BBBBBBBbbbb",
    ".BBBBBBbbb.",
    "..BBBBbbb..",
    "...BBbbb...",
    "....Bbb....",
    ".....b.....",
))
BAYER4 = np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]]) / 16.0


class Canvas:
    """A palette-indexed drawing surface in sprite pixels, with a second 'glow' layer that gets no outline."""

    def __init__(self) -> None:
        self.px = np.zeros((CANVAS_H, CANVAS_W), np.uint8)
        self.glow = np.zeros((CANVAS_H, CANVAS_W), np.uint8)

    def blit(self, grid: np.ndarray, x: int, y: int) -> None:
        """Copy a template's non-empty cells with its top-left corner at (x, y)."""
        h, w = grid.shape
        region = self.px[y : y + h, x : x + w]
        region[grid > 0] = grid[grid > 0]

    def dot(self, x: float, y: float, ch: str, glow: bool = False, width: int = 1) -> None:
        xi, yi = _round(x), _round(y)
        if 0 <= xi < CANVAS_W and 0 <= yi < CANVAS_H:
            (self.glow if glow else self.px)[yi : yi + width, xi : xi + width] = L[ch]

    def line(self, x0: float, y0: float, x1: float, y1: float, ch: str, width: int = 1, glow: bool = False) -> None:
        """A line of square stamps width x width (top-left at each point)."""
        n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
        for t in np.linspace(0.0, 1.0, n + 1):
            self.dot(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t, ch, glow, width)

    def rect(self, x0: int, y0: int, x1: int, y1: int, ch: str) -> None:
        """Fill the inclusive box [x0, x1] x [y0, y1]."""
        self.px[max(y0, 0) : y1 + 1, max(x0, 0) : x1 + 1] = L[ch]

    def star(self, x: float, y: float, size: int, ch: str = "w") -> None:
        """A four-point sparkle on the glow layer: size 1 is one pixel, size r+1 has arms of r pixels."""
        if size <= 0:
            return
        for d in range(-(size - 1), size):
            self.dot(x + d, y, ch, glow=True)
            self.dot(x, y + d, ch, glow=True)

    def finish(self, outline: bool = True) -> np.ndarray:
        """The finished sprite: a one-pixel outline around the drawing (4-neighbours), then the glow on top."""
        out = self.px.copy()
        if outline:
            filled = out > 0
            near = np.zeros_like(filled)
            near[1:] |= filled[:-1]
            near[:-1] |= filled[1:]
            near[:, 1:] |= filled[:, :-1]
            near[:, :-1] |= filled[:, 1:]
            out[near & ~filled] = OUTLINE
        out[self.glow > 0] = self.glow[self.glow > 0]
        return out


def _round(v: float) -> int:
    return math.floor(v + 0.5)


def _dir(angle: float) -> tuple[float, float]:
    """Unit vector of an angle in degrees measured clockwise from straight up (x right, y down)."""
    a = math.radians(angle)
    return math.sin(a), -math.cos(a)


def tri(phase: float) -> float:
    """A triangle wave with period 1 shaped like sin(2 pi phase): 0 at 0, 1 at 1/4, -1 at 3/4."""
    return 1.0 - 4.0 * abs((phase + 0.25) % 1.0 - 0.5)


def keyframes(phase: float, keys: tuple[tuple[float, ...], ...]) -> tuple[float, ...]:
    """Piecewise-linear values between (phase, v1, v2, ...) keys; the first key must be at 0 and the cycle wraps."""
    phase %= 1.0
    keys = keys + ((1.0,) + keys[0][1:],)
    for (p0, *v0), (p1, *v1) in itertools.pairwise(keys):
        if p0 <= phase < p1:
            k = (phase - p0) / (p1 - p0)
            return tuple(a + (b - a) * k for a, b in zip(v0, v1))
    return tuple(keys[0][1:])


# ---------------------------------------------------------------------------------------------------------------
# Poses: what each action does at a phase of its loop.


@dataclass(frozen=True)
class Pose:
    """Where the parts of a character are at one frame of an action (sprite pixels and degrees)."""

    bob: int = 0  # the upper body sinks (+) or rises (-)
    lean: int = 0  # the upper body leans forward
    front: tuple[int, int] = (0, 0)  # (dx, lift) of the near foot
    back: tuple[int, int] = (0, 0)  # (dx, lift) of the far foot
    arm: float = 160.0  # near arm, degrees clockwise from straight up
    tool: float = 40.0  # weapon / staff / fist angle
    strike: float = 0.0  # 0..1: how far the attack's hit has got (trails, spells, claws); 0 when not hitting
    sweep: tuple[float, float] | None = None  # weapon angles swept during this frame (the swing trail)
    blink: bool = False
    squash: float = 0.0  # slime: + flatter and wider, - taller
    hop: float = 0.0  # 0..1 of the jump height, applied in frame pixels by the family
    light: bool = True  # robot antenna, gem glint


ATTACK_KEYS = ((0.0, 160.0, 40.0), (0.3, 20.0, -70.0), (0.5, 100.0, 130.0), (0.62, 130.0, 160.0))


def jump_frames(period: int) -> int:
    """Frames in the air in a jump loop of `period` frames; the others are a crouch, a landing and standing."""
    return period - (2 if period < 8 else max(3, round(0.3 * period)))


def jump_phase(j: int, period: int) -> tuple[str, float]:
    """What frame j of a jump loop is: ("stand" | "crouch" | "land", 0) or ("air", t) with t in (0, 1) the time
    through the flight. Standing frames sit on both sides of the loop's seam, so the seam is a still step."""
    air = jump_frames(period)
    before = (period - air - 2) // 2  # standing frames before the crouch
    if j < before:
        return "stand", 0.0
    if j == before:
        return "crouch", 0.0
    if j <= before + air:
        return "air", (j - before) / (air + 1)
    return ("land" if j == before + air + 1 else "stand"), 0.0


def pose(action: str, phase: float, period: int) -> Pose:
    """The pose of a character doing `action` at `phase` in [0, 1) of a loop of `period` frames."""
    j = _round(phase * period) % period
    if action == "idle":
        breathe = 0.25 <= phase < 0.75
        wobble = 0.3 * math.cos(2 * math.pi * phase)  # the slime breathes by squashing
        return Pose(bob=int(breathe), blink=period >= 8 and j == period // 2 + 1, light=breathe, squash=wobble)
    if action in ("walk", "run"):
        s = tri(phase)
        rising = (phase + 0.25) % 1.0 < 0.5  # the near foot swings forward while s rises
        amp, lift = (2, 1) if action == "walk" else (3, 2)
        fx = _round(amp * s)
        front_lift = lift if rising and abs(s) < 0.75 else 0
        back_lift = lift if not rising and abs(s) < 0.75 else 0
        arm_swing = 30.0 if action == "walk" else 55.0
        return Pose(
            bob=int(abs(s) > 0.6),
            lean=0 if action == "walk" else 1,
            front=(fx, front_lift),
            back=(-fx, back_lift),
            arm=(160.0 if action == "walk" else 120.0) - arm_swing * s,
            tool=(40.0 if action == "walk" else 70.0) - 0.5 * arm_swing * s,
            squash=0.35 * math.cos(4 * math.pi * phase) * (1.0 if action == "walk" else 1.6),
            light=0.25 <= phase < 0.75,
        )
    if action == "jump":
        stage, t = jump_phase(j, period)
        if stage == "air":
            rising = t < 0.5
            arm, squash = (60.0, -0.5) if rising else (90.0, -0.2)
            return Pose(front=(1, 2), back=(-1, 1), arm=arm, tool=45.0, squash=squash, hop=4 * t * (1 - t))
        if stage == "stand":
            return Pose()
        return Pose(bob=1, front=(1, 0), back=(-1, 0), arm=170.0, squash=0.5)
    if action == "attack":
        arm, tool = keyframes(phase, ATTACK_KEYS)
        prev_tool = keyframes(phase - 1.0 / period, ATTACK_KEYS)[1]
        swinging = tool - prev_tool > 25
        strike = keyframes(phase, ((0.0, 0.0), (0.3, 0.0), (0.5, 1.0), (0.75, 0.0)))[0]
        return Pose(
            bob=int(swinging),
            lean=int(0.35 <= phase < 0.7),
            front=(1, 0) if 0.35 <= phase < 0.7 else (0, 0),
            back=(-1, 0) if 0.35 <= phase < 0.7 else (0, 0),
            arm=arm,
            tool=tool,
            strike=strike,
            sweep=(prev_tool, tool) if swinging else None,
            squash=-0.3 if phase < 0.3 else 0.0,
        )
    raise ValueError(f"unknown sprite action {action!r}")


# ---------------------------------------------------------------------------------------------------------------
# Characters.


def _legs(c: Canvas, p: Pose, hip_y: int, near: str, far: str, boot: str, spread: int = 2) -> None:
    """Two legs from the hip to the ground, far leg first; each foot shifted by (dx, lift)."""
    for (dx, lift), x0, ch in ((p.back, GX - spread, far), (p.front, GX, near)):
        foot_y = GY - lift
        c.line(x0, hip_y, x0 + dx, foot_y - 1, ch, width=2)
        c.rect(x0 + dx, foot_y, x0 + dx + 2, foot_y, boot)


def draw_knight(c: Canvas, p: Pose) -> None:
    """Armor and a plumed great helm in the body color, a sword in the near hand (a trail when it swings)."""
    hip = GY - 4
    _legs(c, p, hip + p.bob, "B", "b", "M")
    top_y = hip - KNIGHT.shape[0] + p.bob
    c.blit(KNIGHT, GX - 6 + p.lean, top_y)
    if p.blink:
        c.rect(GX + p.lean, top_y + 4, GX + 3 + p.lean, top_y + 4, "B")
    sx, sy = GX + 1 + p.lean, top_y + 7
    ux, uy = _dir(p.arm)
    hx, hy = sx + 3 * ux, sy + 3 * uy
    c.line(sx, sy, hx, hy, "b", width=2)
    dx, dy = _dir(p.tool)
    c.line(hx - dy * 1.5 + dx, hy + dx * 1.5 + dy, hx + dy * 1.5 + dx, hy - dx * 1.5 + dy, "y")  # crossguard
    c.line(hx + 2 * dx, hy + 2 * dy, hx + 8 * dx, hy + 8 * dy, "m")  # blade
    c.dot(hx + 9 * dx, hy + 9 * dy, "w")
    c.dot(hx - dx, hy - dy, "n")  # pommel
    if p.sweep:
        _trail(c, hx, hy, 9.5, p.sweep)


def draw_wizard(c: Canvas, p: Pose) -> None:
    """A pointed hat and robe in the body color, a white beard, a staff with a gem that fires a bolt on attack."""
    top_y = GY - WIZARD.shape[0] + p.bob
    for (dx, lift), x0 in ((p.back, GX - 3), (p.front, GX)):
        c.rect(x0 + dx, GY - lift, x0 + dx + 2, GY - lift, "n")
    c.blit(WIZARD, GX - 6 + p.lean, top_y)
    if p.blink:
        c.dot(GX + 2 + p.lean, top_y + 7, "s")
    sx, sy = GX + 2 + p.lean, top_y + 11
    ux, uy = _dir(min(p.arm, 120.0) if p.strike == 0 else 90.0)
    hx, hy = sx + 3 * ux, sy + 3 * uy
    c.line(sx, sy, hx, hy, "b", width=2)
    staff = (p.tool - 40.0) * 0.4 if p.strike == 0 else 25.0 * (1 - abs(p.strike - 0.5))
    dx, dy = _dir(staff)
    foot = min(5.0, (GY - hy) / max(-dy, 0.5))  # the staff's foot stays above the ground
    c.line(hx - foot * dx, hy - foot * dy, hx + 9 * dx, hy + 9 * dy, "n")
    tx, ty = hx + 10 * dx, hy + 10 * dy
    c.rect(_round(tx) - 1, _round(ty) - 1, _round(tx), _round(ty), "c")
    c.dot(tx - 1, ty - 1, "w")
    c.dot(hx + 1, hy, "s")  # the hand on the staff
    if p.strike > 0:  # a magic bolt leaves the staff's gem
        bx = tx + 1 + 2 * p.strike
        c.star(bx, ty, 1 + int(p.strike > 0.4), "c")
        c.dot(bx, ty, "w", glow=True)
        if p.strike > 0.3:
            c.dot(bx - 2, ty + 1, "c", glow=True)


def draw_robot(c: Canvas, p: Pose) -> None:
    """A boxy body in the body color with a visor, chest lights and a blinking antenna; it attacks with a punch."""
    hip = GY - 3
    _legs(c, p, hip + p.bob, "B", "b", "g", spread=3)
    top_y = hip - ROBOT.shape[0] + p.bob
    x0 = GX - 6 + p.lean
    c.line(x0 + 7, top_y - 1, x0 + 7, top_y - 3, "g")  # antenna
    c.dot(x0 + 7, top_y - 4, "r" if p.light else "M")
    c.blit(ROBOT, x0, top_y)
    if p.blink:
        c.rect(x0 + 7, top_y + 2, x0 + 10, top_y + 3, "k")
    sx, sy = x0 + 9, top_y + 8
    if p.strike > 0:  # a punch: the arm shoots forward
        reach = 2 + 5 * min(1.0, p.strike * 1.5)
        c.line(sx, sy, sx + reach, sy, "g", width=2)
        c.rect(_round(sx + reach), sy - 1, _round(sx + reach) + 2, sy + 2, "B")
        if p.strike > 0.6:
            c.star(sx + reach + 2, sy + 0.5, 2, "y")
        return
    ux, uy = _dir(p.arm)
    hx, hy = sx + 3 * ux, sy + 3 * uy
    c.line(sx, sy, hx, hy, "g", width=2)
    c.rect(_round(hx), _round(hy), _round(hx) + 1, _round(hy) + 1, "B")


def draw_cat(c: Canvas, p: Pose) -> None:
    """A cat in side view on four legs, ears up and tail raised; it attacks with a claw swipe."""
    body_y = GY - 2 - CAT.shape[0] + p.bob
    x0 = GX - 8 + p.lean
    # legs: far pair first (shaded), near pair on top; diagonal pairs move together
    legs = ((p.back, x0 + 3, "b"), (p.front, x0 + 11, "b"), (p.front, x0 + 2, "B"), (p.back, x0 + 10, "B"))
    for (dx, lift), lx, ch in legs:
        c.line(lx, body_y + CAT.shape[0] - 1, lx + dx, GY - lift, ch)
    wag = 0 if p.light else 1
    c.line(x0, body_y + 5, x0 - 2, body_y + 3, "B")  # tail
    c.line(x0 - 2, body_y + 3, x0 - 2 - wag, body_y + 0, "B")
    c.dot(x0 - 1 - wag, body_y - 1, "b")
    c.blit(CAT, x0, body_y)
    if p.blink:
        c.dot(x0 + 11, body_y + 3, "B")
    if p.strike > 0:  # a claw swipe: the near paw lifts and three slashes appear in front
        c.line(x0 + 12, body_y + 6, x0 + 15, body_y + 6 - 3 * p.strike, "B")
        if p.strike > 0.5:
            for k in range(3):
                c.line(x0 + 16 + 2 * k, body_y + 6, x0 + 17 + 2 * k, body_y + 2, "w", glow=True)


def draw_slime(c: Canvas, p: Pose) -> None:
    """A jelly dome that squashes and stretches (it has no legs), with a shine and two eyes; it attacks with a lunge."""
    squash = p.squash - (0.25 * p.strike)
    a = 7.0 * (1 + 0.2 * squash) + 1.5 * p.strike
    b = 10.0 * (1 - 0.22 * squash)
    lean = p.lean + 2.5 * p.strike
    ys, xs = np.mgrid[0:CANVAS_H, 0:CANVAS_W]
    v = (GY + 0.5 - (ys + 0.5)) / b  # 0 at the ground, 1 at the top
    shift = lean * v  # lean forward: the top moves more than the base
    u = (xs + 0.5 - GX - shift) / a
    inside = (v >= 0) & (v <= 1) & (np.abs(u) ** 2 + np.abs(v) ** 2.2 <= 1.0)
    inside &= ~((v < 0.12) & (np.abs(u) > 0.9))  # round the bottom corners
    c.px[inside] = L["B"]
    c.px[inside & ((v < 0.18) | (u > 0.55) & (v < 0.5))] = L["b"]
    c.px[inside & (u < -0.35) & (v > 0.55)] = L["h"]
    top = GY - b
    ex = GX + 0.25 * a + 0.6 * lean
    ey = top + 0.45 * b
    c.dot(GX - 0.45 * a + 0.6 * lean, top + 0.25 * b, "w")
    if p.blink:
        c.line(ex - 1, ey + 1, ex, ey + 1, "k")
        c.line(ex + 2, ey + 1, ex + 3, ey + 1, "k")
    else:
        c.line(ex - 0.5, ey, ex - 0.5, ey + 1, "k")
        c.line(ex + 2.5, ey, ex + 2.5, ey + 1, "k")
    if p.strike > 0.2:  # an open mouth on the lunge
        c.rect(_round(ex + 0.5), _round(ey + 3), _round(ex + 2.5), _round(ey + 3) + 1, "k")
        c.dot(ex + 1.5, ey + 4, "r")


def _trail(c: Canvas, x: float, y: float, r: float, sweep: tuple[float, float]) -> None:
    """A swing trail: an arc of glow pixels from the weapon's previous angle to its current one."""
    a0, a1 = sweep
    for a in np.linspace(a0, a1, 16)[:-2]:
        dx, dy = _dir(float(a))
        c.dot(x + r * dx, y + r * dy, "w", glow=True)
        c.dot(x + (r - 1) * dx, y + (r - 1) * dy, "w", glow=True)


CHARACTER_DRAW = {"knight": draw_knight, "wizard": draw_wizard, "robot": draw_robot, "cat": draw_cat}
CHARACTER_DRAW["slime"] = draw_slime


def draw_character(kind: str, action: str, phase: float, period: int) -> tuple[np.ndarray, float]:
    """A character's finished canvas at one phase of its action loop, and the jump height fraction (0 off a jump)."""
    p = pose(action, phase, period)
    c = Canvas()
    CHARACTER_DRAW[kind](c, p)
    return c.finish(), p.hop


# ---------------------------------------------------------------------------------------------------------------
# Effects. Loops take a phase; the explosion takes its progress s in [0, 1] through the one-shot.


def draw_coin(phase: float) -> np.ndarray:
    """A gold coin turning about its vertical axis: its width is |cos| of the turn, its edge shows when thin."""
    c = Canvas()
    cx, cy, r = GX + 0.0, GY - NOMINAL / 2, 6.0
    turn = 2 * math.pi * phase
    a = max(r * abs(math.cos(turn)), 0.6)
    ys, xs = np.mgrid[0:CANVAS_H, 0:CANVAS_W]
    u, v = (xs + 0.5 - cx) / a, (ys + 0.5 - cy) / r
    disc = u**2 + v**2 <= 1.0
    inner = (xs + 0.5 - cx) ** 2 / max(a - 1.2, 0.3) ** 2 + v**2 * (r / (r - 1.2)) ** 2 <= 1.0
    c.px[disc] = L["b"]
    c.px[inner] = L["B"]
    if a >= 3:
        c.px[inner & (np.abs(xs + 0.5 - cx) < 0.6) & (np.abs(v) < 0.45)] = L["b"]  # the stamped bar
        hx = cx - 0.45 * a
        c.px[inner & (np.abs(xs + 0.5 - hx) < 0.8) & (v < -0.1) & (v > -0.7)] = L["h"]
    side = 1 if math.sin(turn) > 0 else -1
    if a < 3:  # the rim's thickness shows on one side when the coin is nearly edge-on
        c.px[disc & (u * side > 0.2)] = L["b"]
    return c.finish()


def draw_gem(phase: float, period: int, sparkles: tuple[tuple[float, float, float], ...]) -> np.ndarray:
    """A faceted gem that bobs and sparkles; each sparkle is (dx, dy, phase offset) around the gem."""
    c = Canvas()
    bob = int(0.25 <= phase < 0.75)
    x0, y0 = GX - GEM.shape[1] // 2, GY - NOMINAL // 2 - GEM.shape[0] // 2 + bob
    c.blit(GEM, x0, y0)
    glint = _round(tri(phase) * 2)  # a glint slides along the crown
    c.dot(x0 + 4 + glint, y0 + 1, "w")
    for dx, dy, offset in sparkles:
        k = (phase + offset) % 1.0
        size = _round(3.0 * max(0.0, 1.0 - abs(k - 0.3) / 0.3))
        c.star(GX + dx, y0 + 4 + dy, size)
    return c.finish()


def draw_fire(phase: float, period: int, sway: tuple[float, float]) -> np.ndarray:
    """A flame whose tongues flicker with whole harmonics of the loop (so it loops), only those under half the
    period (so a short loop does not alias into a stutter): red edge, orange body, yellow heart."""
    c = Canvas()
    t = 2 * math.pi * phase
    amp = [a if k < period / 2 else 0.0 for k, a in ((1, 2.0), (2, 1.4), (3, 0.8))]
    ys, xs = np.mgrid[0:CANVAS_H, 0:CANVAS_W]
    up = GY + 1.0 - (ys + 0.5)  # height above the base
    x = xs + 0.5 - GX - 0.9 * np.sin(t + 0.35 * up + sway[0]) * np.clip(up / 10.0, 0, 1)  # tongues sway as they rise
    prof = np.clip(1.0 - (x / 7.0) ** 2, 0.0, None)
    tongues = amp[0] * np.sin(t + 1.3 * x + sway[1]) + amp[1] * np.sin(2 * t - 0.8 * x)
    tongues = tongues + amp[2] * np.sin(3 * t + 2.1 * x)
    height = 12.5 * prof**0.8 + tongues * prof**0.4
    flame = (prof > 0) & (up > 2.5 * (x / 7.0) ** 6) & (up < height)
    c.px[flame] = L["O"]
    edge = flame & ((up > height - 1.2) | (prof < 0.25))
    c.px[edge] = L["r"]
    heart = flame & (prof > 0.6) & (up < 0.5 * height - 0.5)
    c.px[heart] = L["y"]
    c.px[heart & (prof > 0.9) & (up < 0.22 * height)] = L["w"]
    for k, (dx, speed) in enumerate(((-2.5, 1), (2.0, 1 + (period > 4)), (0.5, 1))):  # embers rise and wrap around
        rise = (phase * speed + k / 3) % 1.0
        c.dot(GX + dx + math.sin(t * speed + k), GY - 11 - 7 * rise, "y" if rise < 0.5 else "O", glow=True)
    return c.finish(outline=False)


def draw_explosion(s: float, lobes: tuple[float, float], sparks: tuple[float, ...]) -> np.ndarray:
    """An explosion at progress s in [0, 1]: a fireball grows fast, cools from white to red, turns to smoke and
    dissolves (ordered dither), while sparks fly out."""
    c = Canvas()
    cx, cy = GX + 0.0, GY - NOMINAL / 2
    ys, xs = np.mgrid[0:CANVAS_H, 0:CANVAS_W]
    dx, dy = xs + 0.5 - cx, ys + 0.5 - cy
    d, theta = np.hypot(dx, dy), np.arctan2(dy, dx)
    bumps = 1 + 0.16 * np.sin(5 * theta + lobes[0]) + 0.09 * np.sin(3 * theta + lobes[1])
    radius = (2.0 + 7.5 * (1 - (1 - s) ** 2.5)) * bumps
    rho = d / radius
    heat = 1.15 * (1 - rho) + 0.55 - 1.1 * s
    ball = rho <= 1.0
    hollow = rho < 1.6 * (s - 0.55)
    fade = np.clip((s - 0.55) / 0.45, 0.0, 0.85)
    keep = ball & ~hollow & (BAYER4[ys % 4, xs % 4] >= fade)
    for floor, ch in ((-np.inf, "G"), (0.08, "r"), (0.3, "O"), (0.72, "y"), (0.95, "w")):  # hotter paints over
        c.px[keep & (heat > floor)] = L[ch]
    if 0.05 < s < 0.85:
        for a in sparks:
            rr = 4 + 13 * s
            c.dot(cx + rr * math.cos(a), cy + rr * math.sin(a), "y" if s < 0.45 else "O", glow=True)
    return c.finish(outline=False)
