"""The world's renderer: settings evaluated in world coordinates, a true camera, antialiased shapes and emoji.

World units are frame pixels at zoom 1. A camera with center ``(cx, cy)`` and zoom ``z`` maps a world point ``p``
to the frame pixel ``(p - c) * z + (W/2, H/2)``; backgrounds and objects both go through it, so a pan moves the
whole scene and a zoom scales it about the frame center. Backgrounds are kept muted and objects saturated, so a
vocabulary color on an object stands out (DESIGN.md §4: the analyzer reads pixels only).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from kinetoscope.world.vocab import COLORS

SS = 4  # supersampling factor for shapes (antialiasing)
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJI_SIZE = 109  # the only size the Noto Color Emoji bitmap font renders at

# Object colors that would vanish into a setting; the world never paints them there.
CLASHES: dict[str, frozenset[str]] = {
    "gray floor": frozenset(),
    "blue sky": frozenset({"blue", "cyan", "white"}),
    "green grass": frozenset({"green"}),
    "dark room": frozenset({"black"}),
    "sandy beach": frozenset({"yellow", "orange"}),
    "city street at night": frozenset({"black"}),
    "living room": frozenset({"orange"}),
    "office": frozenset({"white"}),
}


@dataclass(frozen=True)
class Camera:
    """Per-frame camera centers and zooms, in world units."""

    cx: np.ndarray  # (T,)
    cy: np.ndarray  # (T,)
    zoom: np.ndarray  # (T,)
    motion: str  # vocabulary camera motion

    def to_frame(self, t: int, x: np.ndarray, y: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """World coordinates -> frame pixel coordinates at frame t."""
        z = self.zoom[t]
        return (x - self.cx[t]) * z + width / 2, (y - self.cy[t]) * z + height / 2


def make_camera(motion: str, frames: int, height: int, width: int, rng: np.random.Generator) -> Camera:
    """A camera that is static, pans at a constant speed, or zooms at a constant rate about the frame center."""
    s = np.linspace(0.0, 1.0, frames) if frames > 1 else np.zeros(1)
    cx = np.full(frames, width / 2)
    cy = np.full(frames, height / 2)
    zoom = np.ones(frames)
    if motion in ("pans left", "pans right"):
        span = rng.uniform(0.25, 0.45) * width
        direction = -1.0 if motion == "pans left" else 1.0
        cx = width / 2 + direction * (s - 0.5) * span
    elif motion in ("zooms in", "zooms out"):
        end = rng.uniform(1.3, 1.6)
        zoom = np.exp(s * math.log(end)) if motion == "zooms in" else np.exp((1 - s) * math.log(end))
    return Camera(cx, cy, zoom, motion)


# ---------------------------------------------------------------------------------------------------------------
# Settings: each a function of world coordinates, so any camera (pan, zoom) samples them consistently.


@functools.lru_cache(maxsize=None)
def _texture(name: str) -> np.ndarray:
    """A real photographic texture from scikit-image's bundled samples, as zero-mean luminance in about [-1, 1]."""
    from skimage import data

    img = getattr(data, name)().astype(np.float32)
    if img.ndim == 3:
        img = img.mean(axis=2)
    img = (img - img.mean()) / (img.std() + 1e-6)
    return np.clip(img / 2.5, -1, 1)


def _sample(tex: np.ndarray, x: np.ndarray, y: np.ndarray, scale: float) -> np.ndarray:
    """Tile a texture over the world plane (nearest sample; the 2x2 supersampling smooths it)."""
    h, w = tex.shape
    return tex[(y * scale).astype(np.int64) % h, (x * scale).astype(np.int64) % w]


def _mix(a: tuple[float, ...], b: tuple[float, ...], k: np.ndarray) -> np.ndarray:
    a_, b_ = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return a_ + (b_ - a_) * k[..., None]


def _noise(x: np.ndarray, y: np.ndarray, seed: int, cell: float) -> np.ndarray:
    """Smooth value noise in [0, 1] on a grid of the given cell size (world units)."""
    g = np.random.default_rng(seed).random((64, 64)).astype(np.float32)
    u, v = x / cell, y / cell
    i, j = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    fu, fv = u - i, v - j
    fu, fv = fu * fu * (3 - 2 * fu), fv * fv * (3 - 2 * fv)
    a, b = g[j % 64, i % 64], g[j % 64, (i + 1) % 64]
    c, d = g[(j + 1) % 64, i % 64], g[(j + 1) % 64, (i + 1) % 64]
    return (a * (1 - fu) + b * fu) * (1 - fv) + (c * (1 - fu) + d * fu) * fv


def setting_rgb(setting: str, x: np.ndarray, y: np.ndarray, height: int, width: int, seed: int) -> np.ndarray:
    """Color (float RGB 0..255) of a setting at world points (x, y), for a frame of the given size."""
    v = y / height  # 0 at the top of the zoom-1 frame, 1 at the bottom
    horizon = 0.62
    below = (v > horizon).astype(np.float32)
    n = _noise(x, y, seed, cell=max(height, width) / 6)
    if setting == "gray floor":
        wall = _mix((150, 150, 155), (170, 170, 175), n)
        floor = _mix((110, 110, 112), (125, 125, 128), n) * (1 + 0.06 * _sample(_texture("gravel"), x, y, 2.0))[..., None]
        out = wall * (1 - below[..., None]) + floor * below[..., None]
    elif setting == "blue sky":
        out = _mix((120, 165, 215), (175, 205, 235), np.clip(v, 0, 1))
        cloud = np.clip((_noise(x, y, seed + 1, cell=width / 3) - 0.62) * 5, 0, 1) * (v < 0.7)
        out = out + (np.array([235, 240, 245], np.float32) - out) * (0.7 * cloud)[..., None]
    elif setting == "green grass":
        sky = _mix((150, 185, 215), (185, 205, 225), np.clip(v / horizon, 0, 1))
        grass = _mix((80, 115, 60), (100, 135, 70), n) * (1 + 0.18 * _sample(_texture("grass"), x, y, 1.5))[..., None]
        out = sky * (1 - below[..., None]) + grass * below[..., None]
    elif setting == "dark room":
        lamp = np.exp(-(((x / width - 0.3) ** 2) + ((v - 0.25) ** 2)) * 8)
        out = _mix((45, 40, 38), (80, 72, 60), lamp) + (8 * n)[..., None]
    elif setting == "sandy beach":
        sea = (v > 0.45) & (v <= horizon)
        sky = _mix((150, 190, 220), (185, 210, 230), np.clip(v / 0.45, 0, 1))
        water = _mix((70, 120, 150), (90, 140, 165), n)
        sand = _mix((200, 185, 150), (215, 200, 165), n) * (1 + 0.08 * _sample(_texture("gravel"), x, y, 3.0))[..., None]
        out = np.where(below[..., None] > 0, sand, np.where(sea[..., None], water, sky))
    elif setting == "city street at night":
        sky = _mix((25, 28, 50), (40, 42, 70), np.clip(v, 0, 1))
        bh = 0.25 + 0.3 * _noise(x, np.zeros_like(x), seed + 2, cell=width / 5)  # building heights
        building = (v > 1 - bh - 0.2) & (v <= horizon + 0.1)
        brick = (1 + 0.15 * _sample(_texture("brick"), x, y, 1.0))[..., None]
        wall = np.full(x.shape + (3,), (55, 50, 58), np.float32) * brick
        win = ((np.floor(x / 5) % 2 == 0) & (np.floor(y / 6) % 2 == 0) & (_noise(x, y, seed + 3, 6.0) > 0.55))
        wall = np.where(win[..., None], np.array([120, 110, 80], np.float32), wall)
        road = _mix((50, 50, 55), (60, 60, 64), n)
        out = np.where((v > horizon + 0.1)[..., None], road, np.where(building[..., None], wall, sky))
    elif setting == "living room":
        wall = _mix((200, 180, 150), (210, 190, 160), n)
        floor = _mix((120, 85, 60), (135, 95, 65), _noise(x * 4, y, seed + 4, cell=width / 4))
        sofa = (np.abs(x / width - 0.7) < 0.22) & (v > 0.42) & (v <= horizon)
        out = np.where(below[..., None] > 0, floor, np.where(sofa[..., None], np.array([110, 95, 120], np.float32), wall))
    elif setting == "office":
        wall = _mix((205, 210, 210), (215, 218, 218), n)
        carpet = _mix((105, 110, 120), (115, 120, 128), n) * (1 + 0.05 * _sample(_texture("gravel"), x, y, 3.0))[..., None]
        desk = (np.abs(x / width - 0.25) < 0.18) & (v > 0.5) & (v <= horizon + 0.05)
        out = np.where(below[..., None] > 0, carpet, np.where(desk[..., None], np.array([140, 120, 95], np.float32), wall))
    else:
        raise ValueError(f"unknown setting {setting!r}")
    return np.clip(out, 0, 255)


def floor_y(height: int) -> float:
    """World y of the floor line objects rest and bounce on (a little below the horizon)."""
    return 0.85 * height


def render_background(setting: str, camera: Camera, t: int, height: int, width: int, seed: int) -> np.ndarray:
    """The setting seen through the camera at frame t, float RGB (H, W, 3), 2x2 supersampled."""
    o = (np.arange(2) + 0.5) / 2
    py = (np.arange(height)[:, None] + o[None, :]).reshape(-1)  # (2H,)
    px = (np.arange(width)[:, None] + o[None, :]).reshape(-1)  # (2W,)
    z = camera.zoom[t]
    wx = (px - width / 2) / z + camera.cx[t]
    wy = (py - height / 2) / z + camera.cy[t]
    gx, gy = np.meshgrid(wx, wy)  # (2H, 2W)
    rgb = setting_rgb(setting, gx, gy, height, width, seed)  # (2H, 2W, 3)
    return rgb.reshape(height, 2, width, 2, 3).mean(axis=(1, 3))


class BackgroundCache:
    """Renders the setting per frame, reusing the last one while the camera has not moved (a static camera
    renders its background once)."""

    def __init__(self, setting: str, camera: Camera, height: int, width: int, seed: int):
        self.setting, self.camera, self.height, self.width, self.seed = setting, camera, height, width, seed
        self.key: tuple[float, float, float] | None = None
        self.image: np.ndarray | None = None

    def at(self, t: int) -> np.ndarray:
        c = self.camera
        key = (float(c.cx[t]), float(c.cy[t]), float(c.zoom[t]))
        if key != self.key:
            self.key, self.image = key, render_background(self.setting, c, t, self.height, self.width, self.seed)
        return self.image


# ---------------------------------------------------------------------------------------------------------------
# Objects: drawn at SS x resolution on a transparent layer, then reduced and composited.


class Layer:
    """An RGBA drawing layer at SS x the frame size; frame-pixel coordinates in, antialiased pixels out."""

    def __init__(self, height: int, width: int):
        self.height, self.width = height, width
        self.image = Image.new("RGBA", (width * SS, height * SS), (0, 0, 0, 0))
        self.draw = ImageDraw.Draw(self.image)

    def polygon(self, points: np.ndarray, rgb: tuple[int, int, int]) -> None:
        self.draw.polygon([(float(px) * SS, float(py) * SS) for px, py in points], fill=rgb + (255,))

    def ellipse(self, x: float, y: float, rx: float, ry: float, rgb: tuple[int, int, int]) -> None:
        self.draw.ellipse([(x - rx) * SS, (y - ry) * SS, (x + rx) * SS, (y + ry) * SS], fill=rgb + (255,))

    def line(self, x0: float, y0: float, x1: float, y1: float, rgb: tuple[int, int, int], width: float) -> None:
        self.draw.line([(x0 * SS, y0 * SS), (x1 * SS, y1 * SS)], fill=rgb + (255,), width=max(1, round(width * SS)))

    def paste(self, sprite: Image.Image, x: float, y: float) -> None:
        """Paste an RGBA sprite (already at SS scale) centered at frame point (x, y)."""
        self.image.alpha_composite(sprite, (round(x * SS - sprite.width / 2), round(y * SS - sprite.height / 2)))

    def composite(self, background: np.ndarray) -> np.ndarray:
        """Box-filter to frame size (premultiplied, so edges do not darken) over a float RGB background; uint8 out."""
        small = np.asarray(self.image.convert("RGBa").reduce(SS), np.float32) / 255.0  # (H, W, 4) premultiplied
        out = background * (1 - small[..., 3:4]) + small[..., :3] * 255.0
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def shade(rgb: tuple[int, int, int], k: float) -> tuple[int, int, int]:
    """The same hue, darker (k < 1) or lighter (k > 1)."""
    if k <= 1:
        return tuple(int(c * k) for c in rgb)  # type: ignore[return-value]
    return tuple(int(c + (255 - c) * (k - 1)) for c in rgb)  # type: ignore[return-value]


def shape_points(shape: str, x: float, y: float, r: float, angle: float) -> np.ndarray:
    """Polygon vertices (N, 2) of a cube (square), triangle or star of 'radius' r, rotated by angle (radians)."""
    if shape == "cube":
        a = np.array([0.25, 0.75, 1.25, 1.75]) * math.pi
        rad = np.full(4, r * math.sqrt(2))
    elif shape == "triangle":
        a = np.array([-0.5, 1 / 6, 5 / 6]) * math.pi
        rad = np.full(3, r * 1.25)
    elif shape == "star":
        a = -0.5 * math.pi + np.arange(10) * math.pi / 5
        rad = np.where(np.arange(10) % 2 == 0, r * 1.3, r * 0.55)
    else:
        raise ValueError(f"not a polygon shape: {shape!r}")
    a = a + angle
    return np.stack([x + rad * np.cos(a), y + rad * np.sin(a)], axis=1)


def draw_shape(layer: Layer, shape: str, color: str, x: float, y: float, r: float, angle: float) -> None:
    """Draw a vocabulary shape of a vocabulary color; a ball carries a same-hue stripe so rolling and spin show."""
    rgb = COLORS[color]
    if shape == "ball":
        layer.ellipse(x, y, r, r, rgb)
        dx, dy = math.cos(angle) * r * 0.75, math.sin(angle) * r * 0.75
        layer.line(x - dx, y - dy, x + dx, y + dy, shade(rgb, 0.7 if color != "black" else 1.6), r * 0.25)
        layer.ellipse(x - r * 0.35, y - r * 0.35, r * 0.22, r * 0.22, shade(rgb, 1.25))
    else:
        layer.polygon(shape_points(shape, x, y, r, angle), rgb)


# ---------------------------------------------------------------------------------------------------------------
# Emoji: real, colorful artwork from the Noto Color Emoji font (Apache-2.0), each with its dominant color name.

EMOJI: dict[str, tuple[str, str]] = {
    # name: (character, dominant vocabulary color) -- checked against the analyzer's color naming of the artwork
    # (tests/test_analyzer.py); Noto has no emoji that is mostly true black, so none stands for black
    "apple": ("\U0001F34E", "red"),
    "strawberry": ("\U0001F353", "red"),
    "tomato": ("\U0001F345", "red"),
    "orange": ("\U0001F34A", "orange"),
    "basketball": ("\U0001F3C0", "orange"),
    "lemon": ("\U0001F34B", "yellow"),
    "chick": ("\U0001F425", "yellow"),
    "green apple": ("\U0001F34F", "green"),
    "frog": ("\U0001F438", "green"),
    "grapes": ("\U0001F347", "purple"),
    "eggplant": ("\U0001F346", "purple"),
    "flamingo": ("\U0001F9A9", "pink"),
    "blue book": ("\U0001F4D8", "blue"),
    "snowman": ("\u26C4", "white"),
}


@functools.lru_cache(maxsize=None)
def emoji_image(name: str) -> Image.Image:
    """The emoji rendered once at the font's native size, cropped to its visible pixels (RGBA)."""
    char = EMOJI[name][0]
    font = ImageFont.truetype(str(EMOJI_FONT), EMOJI_SIZE)
    img = Image.new("RGBA", (EMOJI_SIZE + 40, EMOJI_SIZE + 40), (0, 0, 0, 0))
    ImageDraw.Draw(img).text((0, 0), char, font=font, embedded_color=True)
    return img.crop(img.getbbox())


def draw_emoji(layer: Layer, name: str, x: float, y: float, r: float, angle: float) -> None:
    """Draw an emoji scaled so its longer side is 2r, rotated by angle (radians), centered at (x, y)."""
    img = emoji_image(name)
    scale = 2 * r * SS / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    sprite = img.resize(size, Image.LANCZOS)
    if angle:
        sprite = sprite.rotate(-math.degrees(angle), resample=Image.BICUBIC, expand=True)
    layer.paste(sprite, x, y)
