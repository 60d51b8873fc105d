"""The sprites family: determinism, exact loops with ordinary seams, mirrors, key-color backgrounds, dominant colors,
a jump that is a real hop, a one-shot explosion, sizes, captions and speed."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from kinetoscope.world import ClipSpec, pixelart
from kinetoscope.world.sprites import KEYS, KINDS, NOMINAL, nearest_color, render_sprites
from kinetoscope.world.vocab import direction_of
from kinetoscope.world.vocab import COLORS, SPRITE_ACTIONS, SPRITE_CHARACTERS, SPRITE_EFFECTS, is_held_out

NAMES = sorted(COLORS)
LOOPERS = [(k, a) for k in SPRITE_CHARACTERS for a in SPRITE_ACTIONS] + [(k, None) for k in ("coin", "gem", "fire")]


def sprite(h: int = 64, w: int = 64, frames: int = 33, seed: int = 0, **overrides: str):
    return render_sprites(ClipSpec("sprites", h, w, frames, 12, seed), **overrides)


def sprite_mask(clip) -> np.ndarray:
    """(T, H, W) True where the sprite is drawn, for a clip on a transparent (key color) background."""
    key = np.array(clip.script["objects"][0]["key_color"], np.uint8)
    return ~(clip.frames == key).all(-1)


def steps(frames: np.ndarray, period: int) -> np.ndarray:
    """Mean absolute change of each step of one loop: 0 -> 1, ..., period-2 -> period-1, then the seam period-1 -> 0."""
    f = frames[:period].astype(np.int16)
    return np.array([np.abs(f[(k + 1) % period] - f[k]).mean() for k in range(period)])


def test_same_spec_same_clip():
    for seed in range(6):
        a, b = sprite(64, 112, 17, seed), sprite(64, 112, 17, seed)
        assert np.array_equal(a.frames, b.frames)
        assert (a.terse, a.detailed, a.script) == (b.terse, b.detailed, b.script)
    assert not np.array_equal(sprite(seed=1).frames, sprite(seed=2).frames)


@pytest.mark.parametrize("kind,action", LOOPERS)
def test_loops_repeat_exactly_with_an_ordinary_seam(kind, action):
    overrides = {"kind": kind} | ({"action": action} if action else {})
    for frames in (5, 17, 33):
        for seed in range(3):
            clip = sprite(frames=frames, seed=seed, **overrides)
            period = clip.script["objects"][0]["loop_period"]
            assert period in (4, 6, 8, 12, 16) and period <= frames - 1
            for k in range(frames - period):
                assert np.array_equal(clip.frames[k + period], clip.frames[k]), (k, period)
            d = steps(clip.frames, period)
            assert d.max() > 0, "a loop that never changes"
            assert d[-1] <= 1.5 * np.median(d[:-1]) + 1e-9, (period, d.round(2))


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_and_action_renders(kind):
    actions = SPRITE_ACTIONS if kind in SPRITE_CHARACTERS else (None,)
    for action in actions:
        clip = sprite(frames=17, seed=5, kind=kind, background="transparent", **({"action": action} if action else {}))
        obj = clip.script["objects"][0]
        mask = sprite_mask(clip)
        assert clip.frames.shape == (17, 64, 64, 3) and clip.frames.dtype == np.uint8
        assert obj["kind"] == kind and obj["motion"] == obj["action"]
        # sprites animate in place: only a clip that ends mid-jump has a net displacement (upward)
        expected = direction_of(obj["x"][-1] - obj["x"][0], obj["y"][-1] - obj["y"][0], 64)
        assert obj["direction"] == expected and expected in ("none", "up")
        assert all(obj["visible"]) and mask.any(axis=(1, 2)).all()
        size = NOMINAL.get(kind, pixelart.NOMINAL)
        assert 0.4 * 64 <= size * obj["pixel_size"] <= 0.7 * 64
        # crisp: only palette colors, no blends between the sprite and the key
        assert len(np.unique(clip.frames.reshape(-1, 3), axis=0)) <= len(pixelart.LETTERS)


def test_pixels_are_integer_blocks():
    for seed in range(4):
        clip = sprite(128, 128, 9, seed, kind="knight", background="transparent")
        p = clip.script["objects"][0]["pixel_size"]
        mask = sprite_mask(clip)[0]
        cols = np.nonzero(mask)[1]
        # every run of sprite pixels along a row starts on the sprite's p-pixel grid
        grid_x = cols.min() % p
        starts = np.nonzero(mask[:, 1:] & ~mask[:, :-1])[1] + 1
        assert p >= 2 and np.all((starts - grid_x) % p == 0)


@pytest.mark.parametrize("kind", SPRITE_CHARACTERS)
def test_facing_left_is_the_mirror_of_facing_right(kind):
    for action in ("walk", "attack"):
        right = sprite(frames=9, seed=11, kind=kind, action=action, facing="right", background="transparent")
        left = sprite(frames=9, seed=11, kind=kind, action=action, facing="left", background="transparent")
        assert left.script["objects"][0]["facing"] == "left" and "left" in left.terse
        for a, b, ma, mb in zip(right.frames, left.frames, sprite_mask(right), sprite_mask(left)):
            ra, ca = np.nonzero(ma)
            rb, cb = np.nonzero(mb)
            crop_a = a[ra.min() : ra.max() + 1, ca.min() : ca.max() + 1]
            crop_b = b[rb.min() : rb.max() + 1, cb.min() : cb.max() + 1]
            assert np.array_equal(crop_b, crop_a[:, ::-1])


def test_transparent_background_is_a_flat_key_far_from_the_sprite():
    seen = set()
    for seed in range(40):
        clip = sprite(frames=9, seed=seed, background="transparent")
        obj = clip.script["objects"][0]
        key = tuple(obj["key_color"])
        assert key in KEYS.values() and clip.script["setting"] == "transparent"
        assert "on a transparent background" in clip.terse
        mask = sprite_mask(clip)
        assert (1 - mask.mean(axis=(1, 2))).min() >= 0.4
        drawn = clip.frames[mask].astype(np.float32)
        distance = np.sqrt(((drawn - np.array(key, np.float32)) ** 2).sum(-1))
        assert distance.min() > 60, "the sprite must never contain (or nearly contain) its key color"
        # no other key would be farther from the sprite's colors
        for other in KEYS.values():
            assert np.sqrt(((drawn - np.array(other, np.float32)) ** 2).sum(-1)).min() <= distance.min() + 1e-3
        seen.add(key)
    assert len(seen) >= 2


@pytest.mark.parametrize("kind", KINDS)
def test_dominant_color_is_the_scripts_color(kind):
    colors = NAMES if kind in SPRITE_CHARACTERS + ("gem",) else [None]
    for i, color in enumerate(colors):
        clip = sprite(frames=17, seed=i, kind=kind, background="transparent", **({"color": color} if color else {}))
        obj = clip.script["objects"][0]
        counts = np.bincount(nearest_color(clip.frames[sprite_mask(clip)]), minlength=len(NAMES))
        assert NAMES[int(counts.argmax())] == obj["color"], (obj["action"], dict(zip(NAMES, counts)))
    if kind in ("coin", "fire", "explosion"):
        assert obj["color"] == {"coin": "yellow", "fire": "orange", "explosion": "orange"}[kind]


def test_script_tracks_are_the_drawn_pixels():
    for seed in range(8):
        clip = sprite(64, 112, 17, seed, background="transparent")
        obj = clip.script["objects"][0]
        for t, m in enumerate(sprite_mask(clip)):
            rows, cols = np.nonzero(m)
            assert obj["x"][t] == pytest.approx(cols.mean() + 0.5, abs=0.01)
            assert obj["y"][t] == pytest.approx(rows.mean() + 0.5, abs=0.01)
            assert obj["size"][t] == rows.max() - rows.min() + 1


def test_jump_is_a_hop_under_constant_gravity():
    for seed in range(6):
        clip = sprite(64, 64, 33, seed, kind="knight", action="jump", background="transparent")
        period = clip.script["objects"][0]["loop_period"]
        stages = [pixelart.jump_phase(j, period)[0] for j in range(period)]
        air = [j for j, s in enumerate(stages) if s == "air"]
        feet = np.array([np.nonzero(m.any(axis=1))[0].max() for m in sprite_mask(clip)[:period]], float)
        ground = [feet[j] for j, s in enumerate(stages) if s != "air"]
        assert max(ground) - min(ground) == 0, "every ground frame stands on the same line"
        assert feet[air].max() < min(ground), "in the air the feet are off the ground"
        a, b, c = np.polyfit(np.array(air, float), feet[air], 2)
        residual = feet[air] - np.polyval((a, b, c), np.array(air, float))
        assert np.abs(residual).max() <= 1.0
        g_frames = clip.script["gravity"] / clip.fps**2  # frame px per frame^2
        assert 2 * a == pytest.approx(g_frames, rel=0.25)


def test_explosion_is_a_one_shot_that_grows_and_fades():
    clip = sprite(64, 64, 33, 4, kind="explosion", background="transparent")
    obj = clip.script["objects"][0]
    assert obj["loop_period"] is None and obj["action"] == "explode"
    area = sprite_mask(clip).sum(axis=(1, 2))
    peak = int(area.argmax())
    assert 0 < peak < 32 and area[0] < 0.2 * area[peak] and area[-1] < 0.5 * area[peak]
    assert obj["size"][peak] > 2 * obj["size"][0]
    assert not np.array_equal(clip.frames[0], clip.frames[-1])


@pytest.mark.parametrize("h,w", [(64, 64), (64, 112), (112, 64), (128, 128)])
def test_sizes(h, w):
    for seed in range(10):
        for frames in (1, 9, 33):
            clip = sprite(h, w, frames, seed)
            obj = clip.script["objects"][0]
            assert clip.frames.shape == (frames, h, w, 3)
            assert all(len(obj[k]) == frames for k in ("x", "y", "size", "visible"))
            assert all(0 <= x < w for x in obj["x"]) and all(0 <= y < h for y in obj["y"])
            assert clip.script["camera"]["motion"] == "static" and len(clip.script["camera"]["zoom"]) == frames
            if frames == 1:
                assert obj["loop_period"] is None


def test_a_single_frame_is_a_sprite_image():
    clip = sprite(64, 64, 1, 3, kind="knight", color="red", action="idle", facing="right")
    assert "red knight" in clip.terse and "facing right" in clip.terse or "looking right" in clip.terse
    assert clip.script["objects"][0]["loop_period"] is None and "single frame" in clip.detailed.lower()


def test_captions_name_what_is_drawn_and_vary():
    styles, verbs = set(), set()
    for seed in range(60):
        clip = sprite(64, 64, 17, seed)
        obj = clip.script["objects"][0]
        text = clip.terse.lower()
        if obj["kind"] in SPRITE_CHARACTERS:
            assert f"{obj['color']} {obj['kind']}" in text and obj["facing"] in text
            assert f"faces {obj['facing']}" in clip.detailed
        elif obj["kind"] == "gem":
            assert obj["color"] in text
        assert clip.detailed.count(".") >= 4
        if obj["loop_period"]:
            assert f"{obj['loop_period']}" in clip.detailed
        styles |= {s for s in ("pixel-art", "8-bit", "sprite of", "game sprite") if s in text}
        verbs.add(text.split(",")[0].split()[-1])
    assert len(styles) == 4 and len(verbs) >= 8


def test_training_never_shows_held_out_combinations():
    for seed in range(80):
        obj = sprite(64, 64, 9, seed).script["objects"][0]
        assert not is_held_out(obj["color"], obj["kind"], obj["action"])


def test_unknown_override_is_refused():
    with pytest.raises(ValueError, match="dragon"):
        sprite(kind="dragon")
    with pytest.raises(ValueError, match="dance"):
        sprite(kind="cat", action="dance")
    with pytest.raises(ValueError, match="blue"):
        sprite(kind="coin", color="blue")  # a coin is gold


def test_script_is_json_with_the_family_keys():
    clip = sprite(64, 112, 9, 2)
    script = json.loads(json.dumps(clip.script))
    assert set(script) == {"family", "height", "width", "frames", "fps", "setting", "camera", "gravity", "objects"}
    assert set(script["objects"][0]) == {
        "id", "kind", "color", "action", "motion", "facing", "direction", "x", "y", "size", "visible",
        "loop_period", "background", "key_color", "pixel_size",
    }


def test_effects_and_backgrounds_all_appear():
    kinds, settings = set(), set()
    for seed in range(120):
        script = sprite(64, 64, 9, seed).script
        kinds.add(script["objects"][0]["kind"])
        settings.add(script["setting"])
    assert kinds == set(KINDS)
    assert {"plain", "transparent"} <= settings and len(settings) >= 5
    assert set(SPRITE_EFFECTS) <= kinds


def test_fast_enough():
    sprite(seed=0)  # warm caches (background textures)
    best = min(_timed(seed) for seed in range(6))
    worst = max(_timed(seed) for seed in range(6))
    assert best < 0.1 and worst < 0.3


def _timed(seed: int) -> float:
    t0 = time.perf_counter()
    sprite(64, 64, 33, seed)
    return time.perf_counter() - t0
