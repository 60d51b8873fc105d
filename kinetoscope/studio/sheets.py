"""Sprite sheets game engines load: a PNG atlas, JSON in Aseprite's "hash" layout, a Godot ``SpriteFrames``
resource, and animated previews.

The atlas has one row per animation (tag), its frames left to right. The JSON follows Aseprite's export with
``--format json-hash`` and the ``{frame}`` item filename: ``frames`` is an object keyed "0", "1", ... (each with
``frame`` {x, y, w, h}, ``rotated``, ``trimmed``, ``spriteSourceSize``, ``sourceSize`` and ``duration`` in ms), and
``meta`` has ``app``, ``version``, ``image``, ``format``, ``size``, ``scale`` and ``frameTags`` [{name, from, to,
direction}]. Phaser's ``load.aseprite`` + ``anims.createFromAseprite`` read it unchanged (tested in chromium).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from kinetoscope import __version__
from kinetoscope.data.shards import atomic_write_text
from kinetoscope.media import atomic_file


@dataclass(frozen=True)
class Animation:
    name: str
    frames: np.ndarray  # (T, H, W, 4) uint8 RGBA
    fps: float
    loop: bool  # a seamless loop, or a one-shot (an explosion)


def _atomic_image(path: Path, image: Image.Image, **kw) -> None:
    with atomic_file(path) as tmp:
        image.save(tmp, **kw)


def write_sheet(png: Path, animations: list[Animation]) -> dict[str, Path]:
    """Write ``png`` (the atlas), ``.json`` (Aseprite hash), ``.tres`` (Godot SpriteFrames) and per-animation GIF,
    WebP and APNG previews beside it; return their paths by kind."""
    h, w = animations[0].frames.shape[1:3]
    cols = max(len(a.frames) for a in animations)
    atlas = np.zeros((h * len(animations), w * cols, 4), np.uint8)
    frames, tags, index = {}, [], 0
    for row, anim in enumerate(animations):
        start = index
        for k, f in enumerate(anim.frames):
            atlas[row * h : (row + 1) * h, k * w : (k + 1) * w] = f
            frames[str(index)] = {"frame": {"x": k * w, "y": row * h, "w": w, "h": h}, "rotated": False,
                                  "trimmed": False, "spriteSourceSize": {"x": 0, "y": 0, "w": w, "h": h},
                                  "sourceSize": {"w": w, "h": h}, "duration": round(1000 / anim.fps)}  # fmt: skip
            index += 1
        tags.append({"name": anim.name, "from": start, "to": index - 1, "direction": "forward",
                     "color": "#000000ff"})  # fmt: skip
    png.parent.mkdir(parents=True, exist_ok=True)
    _atomic_image(png, Image.fromarray(atlas, "RGBA"), format="PNG")
    meta = {"app": "https://github.com/kinetoscope/kinetoscope", "version": __version__, "image": png.name,
            "format": "RGBA8888", "size": {"w": atlas.shape[1], "h": atlas.shape[0]}, "scale": "1",
            "frameTags": tags, "layers": [{"name": "sprite", "opacity": 255, "blendMode": "normal"}], "slices": []}
    paths = {"png": png, "json": png.with_suffix(".json"), "tres": png.with_suffix(".tres")}
    atomic_write_text(paths["json"], json.dumps({"frames": frames, "meta": meta}, indent=1) + "\n")
    atomic_write_text(paths["tres"], godot_sprite_frames(png.name, animations, w, h))
    for anim in animations:
        for ext in ("gif", "webp", "apng"):
            path = png.with_name(f"{png.stem}_{anim.name}.{ext}")
            write_preview(path, anim)
            paths[f"{anim.name}.{ext}"] = path
    return paths


def godot_sprite_frames(image: str, animations: list[Animation], w: int, h: int) -> str:
    """A Godot 4 ``SpriteFrames`` resource (text .tres) over the atlas: one AtlasTexture region per frame."""
    subs, anims, n = [], [], 0
    for row, anim in enumerate(animations):
        refs = []
        for k in range(len(anim.frames)):
            subs.append(f'[sub_resource type="AtlasTexture" id="frame_{n}"]\natlas = ExtResource("atlas")\n'
                        f"region = Rect2({k * w}, {row * h}, {w}, {h})\n")  # fmt: skip
            refs.append(f'{{"duration": 1.0, "texture": SubResource("frame_{n}")}}')
            n += 1
        anims.append(f'{{"frames": [{", ".join(refs)}], "loop": {str(anim.loop).lower()}, "name": &"{anim.name}", '
                     f'"speed": {anim.fps:g}}}')  # fmt: skip
    head = f'[gd_resource type="SpriteFrames" load_steps={n + 2} format=3]\n\n' \
           f'[ext_resource type="Texture2D" path="res://{image}" id="atlas"]\n\n'  # fmt: skip
    return head + "\n".join(subs) + f"\n[resource]\nanimations = [{', '.join(anims)}]\n"


def write_preview(path: Path, anim: Animation) -> None:
    """An animated preview with transparency: GIF (1-bit alpha), WebP or APNG (full alpha), looping forever."""
    images = [Image.fromarray(f, "RGBA") for f in anim.frames]
    duration = round(1000 / anim.fps)
    ext = path.suffix.lower()
    if ext == ".gif":
        pal = [_gif_frame(f) for f in anim.frames]
        _atomic_image(path, pal[0], format="GIF", save_all=True, append_images=pal[1:], duration=duration,
                      loop=0, disposal=2, transparency=255)  # fmt: skip
    elif ext == ".webp":
        _atomic_image(path, images[0], format="WEBP", save_all=True, append_images=images[1:], duration=duration,
                      loop=0, lossless=True)  # fmt: skip
    else:
        _atomic_image(path, images[0], format="PNG", save_all=True, append_images=images[1:], duration=duration,
                      loop=0, disposal=1)  # fmt: skip


def _gif_frame(rgba: np.ndarray) -> Image.Image:
    """A palette frame whose index 255 is transparent (GIF alpha is on or off)."""
    im = Image.fromarray(rgba[..., :3]).quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    idx = np.asarray(im).copy()
    idx[rgba[..., 3] < 128] = 255
    out = Image.fromarray(idx, "P")
    palette = im.getpalette()[: 255 * 3] + [0, 0, 0]
    out.putpalette(palette)
    return out
