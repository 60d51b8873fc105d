"""The analyzer: color naming, gravity fits, camera motion, flicker and loop seams on constructed inputs, and its
agreement with the world's scene scripts on rendered clips (the bars of DESIGN.md §4)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from kinetoscope.evaluate import analyze, dominant_colors, name_color
from kinetoscope.evaluate.agreement import measure_agreement, score_clip
from kinetoscope.evaluate.analyzer import loop_seam
from kinetoscope.evaluate.motion import bounces_and_gravity
from kinetoscope.world import ClipSpec, render
from kinetoscope.world.vocab import COLORS


def shade(rgb: tuple[int, int, int], k: float) -> tuple[int, ...]:
    """The world's way of darkening (k < 1) or lightening (k > 1) a paint color."""
    return tuple(int(c * k) for c in rgb) if k <= 1 else tuple(int(c + (255 - c) * (k - 1)) for c in rgb)


# ---------------------------------------------------------------------------------------------------------------
# Colors


@pytest.mark.parametrize("name", sorted(COLORS))
def test_name_color_names_the_vocabulary(name):
    assert name_color(COLORS[name]) == name


@pytest.mark.parametrize("name", sorted(set(COLORS) - {"white", "black"}))
@pytest.mark.parametrize("k", [0.7, 0.85, 1.15, 1.3])
def test_name_color_keeps_the_name_under_shading(name, k):
    assert name_color(shade(COLORS[name], k)) == name


def test_name_color_neutrals_and_muted_backgrounds():
    assert [name_color((v, v, v)) for v in (8, 30, 235, 252)] == ["black", "black", "white", "white"]
    muted = [(128, 128, 128), (120, 165, 215), (80, 115, 60), (215, 200, 165), (210, 190, 160), (215, 218, 218),
             (45, 40, 38), (25, 28, 50), (70, 120, 150), (241, 200, 170), (110, 95, 120)]
    assert [name_color(c) for c in muted] == ["gray"] * len(muted)  # gray, sky, grass, sand, walls, night, skin


def test_dominant_colors_rank_the_masked_pixels():
    img = np.full((1, 20, 20, 3), 128, np.uint8)
    img[0, 5:15, 5:15] = COLORS["red"]
    img[0, 5:15, 5:8] = shade(COLORS["blue"], 0.85)
    mask = np.zeros((1, 20, 20), bool)
    mask[0, 4:16, 4:16] = True  # includes a gray rim, which is not counted
    ranked = dominant_colors(img, mask)
    assert [n for n, _ in ranked] == ["red", "blue"]
    assert ranked[0][1] == pytest.approx(0.7)


def test_every_emoji_wears_its_vocabulary_color():
    """The world's emoji artwork, read by the analyzer's namer: its dominant named color is the one the world
    gives it (what the world's EMOJI table promises)."""
    from PIL import Image

    from kinetoscope.world.canvas import EMOJI, emoji_image

    for name, (_, color) in EMOJI.items():
        art = np.asarray(emoji_image(name).resize((32, 32), Image.LANCZOS))
        ranked = dominant_colors(art[..., :3], art[..., 3] > 230)
        assert ranked and ranked[0][0] == color, (name, ranked[:3])


# ---------------------------------------------------------------------------------------------------------------
# Motion


def bouncing(g: float, y0: float, floor: float, e: float, frames: int) -> tuple[np.ndarray, list[int]]:
    """Exact drop-and-bounce positions at integer frames, and the frame right after each contact."""
    ys, bounces, t_now, y, v = [], [], 0.0, y0, 0.0
    for k in range(frames):
        while t_now < k:
            dt = k - t_now
            tau = (-v + np.sqrt(v * v + 2 * g * (floor - y))) / g
            if tau > dt:
                y, v, t_now = y + v * dt + 0.5 * g * dt * dt, v + g * dt, float(k)
            else:
                y, v, t_now = floor, -e * (v + g * tau), t_now + tau
                bounces.append(k)
        ys.append(y)
    return np.array(ys), bounces


@pytest.mark.parametrize("g", [0.2, 0.9, 2.4])
def test_gravity_fit_on_a_bouncing_parabola(g):
    y, truth = bouncing(g, 5.0, 60.0, 0.7, 33)
    noisy = y + np.random.default_rng(0).normal(0, 0.1, y.size)
    found, gravity = bounces_and_gravity(np.arange(y.size), noisy)
    assert gravity == pytest.approx(g, rel=0.05)
    big = [b for b in truth if np.ptp(y[b : b + 3]) >= 1.5]  # contacts with a visible hop
    assert all(any(abs(b - f) <= 1 for f in found) for b in big)


def test_no_gravity_for_a_straight_slide():
    _, gravity = bounces_and_gravity(np.arange(17), 10 + 1.5 * np.arange(17.0))
    assert gravity == pytest.approx(0.0, abs=0.01)
    assert bounces_and_gravity(np.arange(17), np.full(17, 20.0)) == ([], None)


# ---------------------------------------------------------------------------------------------------------------
# Camera, flicker, loop seam


def texture(h: int, w: int) -> np.ndarray:
    """A muted photographic texture (scikit-image's camera man), as float gray 60..180."""
    from skimage import data

    img = data.camera().astype(np.float64)[::3, ::3]
    return 60 + 120 * img[:h, :w] / 255.0


def as_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(np.clip(np.rint(gray), 0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def test_camera_pan_is_detected_and_measured():
    base = texture(160, 170)
    step = 1.5  # the view moves right 1.5 px per frame: content moves left, the camera pans right
    frames = np.stack([as_rgb(ndi.shift(base, (0, -step * t), order=3)[20:84, 10:122]) for t in range(13)])
    an = analyze(frames, 12)
    assert an.camera.motion == "pans right"
    shifts = np.array([s[0] for s in an.camera.shift])
    assert np.abs(shifts - (-step * np.arange(13))).max() < 0.3
    assert an.objects == () and an.flicker < 0.05


def test_camera_zoom_is_detected():
    base = texture(160, 170)
    h, w = 64, 112
    cy, cx = 80.0, 85.0
    frames = []
    for t in range(13):
        s = 1.5 ** (t / 12)  # magnify about the center: zooming in
        offset = (cy - (h - 1) / 2 / s, cx - (w - 1) / 2 / s)
        frames.append(as_rgb(ndi.affine_transform(base, (1 / s, 1 / s), offset=offset, output_shape=(h, w), order=3)))
    an = analyze(np.stack(frames), 12)
    assert an.camera.motion == "zooms in"
    assert an.camera.scale[-1] == pytest.approx(1.5, rel=0.03)


def test_static_camera_and_flicker():
    clip = render(ClipSpec("physics", 64, 64, 17, 12, 11))
    clean = analyze(clip.frames, 12)
    assert clean.flicker < 0.02
    gain = 1 + 0.05 * np.where(np.arange(17) % 2, 1.0, -1.0)  # exposure jitter of +-5%
    jittered = np.clip(clip.frames * gain[:, None, None, None], 0, 255).astype(np.uint8)
    assert analyze(jittered, 12).flicker > 1.0
    noise = np.random.default_rng(0).normal(0, 6, clip.frames.shape)  # sensor-like noise, no global change
    noisy = np.clip(clip.frames + noise, 0, 255).astype(np.uint8)
    assert analyze(noisy, 12).flicker > 1.0


def test_loop_seam_tells_a_loop_from_a_cut():
    for seed in range(40):  # the first sprite clip that loops
        clip = render(ClipSpec("sprites", 64, 64, 17, 12, seed))
        period = clip.script["objects"][0].get("loop_period")
        if period and 4 <= period <= 16:
            break
    assert loop_seam(clip.frames[:period]) <= 1.5
    slide = render(ClipSpec("physics", 64, 64, 17, 12, 0))  # a green triangle slides across a gray floor
    assert loop_seam(slide.frames) > 3.0


def test_analysis_of_one_image_is_json():
    clip = render(ClipSpec("physics", 64, 112, 1, 8, 4))
    an = analyze(clip.frames[0], 8)
    d = json.loads(json.dumps(an.to_dict()))
    assert d["frames"] == 1 and d["camera"]["motion"] == "static"
    assert sorted(o["color"] for o in d["objects"]) == sorted(o["color"] for o in clip.script["objects"])
    floats = analyze(clip.frames.astype(np.float32) / 255.0, 8)
    assert floats.colors == an.colors


def test_a_falling_object_is_read_back():
    row = score_clip(ClipSpec("physics", 64, 112, 33, 12, 1093632942))  # a blue star bounces; a frog slides up
    assert row["color"] and all(d["ok"] for d in row["direction"])
    assert row["gravity"] and all(g["ok"] for g in row["gravity"])


# ---------------------------------------------------------------------------------------------------------------
# The bars: agreement with the scene scripts on rendered clips (64x64, 64x112, 112x64; 17 or 33 frames, 8-24 fps)


@pytest.mark.parametrize("family,clips", [("physics", 60), ("drama", 30), ("sprites", 30)])
def test_agreement_bars(family, clips):
    r = measure_agreement(family, clips, workers=2)
    clean = r["clean"]
    # clips whose truth the pixels cannot show (known world defects, listed in the result) stay a small minority
    assert len(r["defects"]) <= 0.1 * clips, r["defects"]
    assert clean["color"] >= 0.98, r
    assert clean["direction"] >= 0.98, r
    if clean["gravity_n"]:
        assert clean["gravity"] >= 0.95, r
    assert clean["flicker_ok"] >= 0.95
    if clean["loop_seam_n"]:
        assert clean["loop_seam"] >= 0.9
