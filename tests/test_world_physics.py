"""The physics family: determinism, true physics against closed forms, the camera, captions, held-out combos."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinetoscope.errors import SizeError
from kinetoscope.world import ClipSpec, render
from kinetoscope.world.physics import DIRECTED_MOTIONS, ballistic, elastic_1d, pendulum
from kinetoscope.world.canvas import BackgroundCache, make_camera
from kinetoscope.world.captions import OPPOSITE, swap_directions
from kinetoscope.world.vocab import COLORS, is_held_out


def clips(n: int, h: int = 64, w: int = 64, frames: int = 17, fps: int = 12, start: int = 0):
    for seed in range(start, start + n):
        yield render(ClipSpec("physics", h, w, frames, fps, seed))


def test_same_spec_same_clip():
    a = render(ClipSpec("physics", 64, 112, 17, 12, 7))
    b = render(ClipSpec("physics", 64, 112, 17, 12, 7))
    assert np.array_equal(a.frames, b.frames)
    assert (a.terse, a.detailed, a.script) == (b.terse, b.detailed, b.script)


@pytest.mark.parametrize("h,w,frames", [(64, 64, 1), (64, 112, 9), (112, 64, 17), (128, 128, 33)])
def test_sizes_and_durations(h, w, frames):
    c = render(ClipSpec("physics", h, w, frames, 8, 3))
    assert c.frames.shape == (frames, h, w, 3) and c.frames.dtype == np.uint8
    assert c.script["frames"] == frames and all(len(o["x"]) == frames for o in c.script["objects"])


@pytest.mark.parametrize("h,w,frames", [(65, 64, 9), (64, 64, 10), (64, 64, 0), (0, 64, 1), (64, 4096, 9)])
def test_impossible_sizes_are_refused(h, w, frames):
    with pytest.raises(SizeError):
        ClipSpec("physics", h, w, frames, 8, 0)


def test_free_fall_is_constant_acceleration():
    ts = np.arange(40) / 30
    g = 200.0
    _, y, bounces = ballistic(10, 5, 0, 0, g, floor=1e9, e=0.7, ts=ts)
    assert bounces == []
    np.testing.assert_allclose(y, 5 + 0.5 * g * ts**2, rtol=1e-9)


def test_bounce_keeps_restitution():
    # dropped from rest at height H above the floor: each apex is e^2 of the previous one
    g, e, floor = 100.0, 0.7, 100.0
    ts = np.linspace(0, 6, 60001)
    _, y, bounces = ballistic(0, 0, 0, 0, g, floor, e, ts)
    assert len(bounces) >= 3
    apexes = [floor - y[a:b].min() for a, b in zip(bounces[:-1], bounces[1:])]
    assert apexes[0] == pytest.approx(floor * e**2, rel=1e-3)
    assert apexes[1] / apexes[0] == pytest.approx(e**2, rel=1e-3)


@settings(max_examples=200, deadline=None)
@given(
    st.floats(0.1, 10), st.floats(-5, 5), st.floats(0.1, 10), st.floats(-5, 5),
)
def test_elastic_collision_conserves_momentum_and_energy(m1, v1, m2, v2):
    u1, u2 = elastic_1d(m1, v1, m2, v2)
    assert m1 * u1 + m2 * u2 == pytest.approx(m1 * v1 + m2 * v2, abs=1e-9)
    assert m1 * u1**2 + m2 * u2**2 == pytest.approx(m1 * v1**2 + m2 * v2**2, rel=1e-9, abs=1e-9)


def test_pendulum_period():
    g, length = 9.81, 1.0
    t0 = 2 * math.pi * math.sqrt(length / g)
    ts = np.linspace(0, 3 * t0, 3001)
    for theta0, expected in ((0.05, t0), (0.8, t0 * (1 + 0.8**2 / 16 + 11 * 0.8**4 / 3072))):
        theta = pendulum(theta0, length, g, ts)
        crossings = ts[1:][(np.sign(theta[1:]) != np.sign(theta[:-1]))]
        period = 2 * np.mean(np.diff(crossings))
        assert period == pytest.approx(expected, rel=2e-3)


def test_scripted_falls_follow_the_clip_gravity():
    checked = 0
    for c in clips(80, frames=33, fps=24):
        s = c.script
        if s["camera"]["motion"] != "static":
            continue
        for o in s["objects"]:
            if o["motion"] != "falls and bounces" or not o["bounces"] or o["bounces"][0] < 6:
                continue
            y = np.array(o["y"][: o["bounces"][0]])
            a = np.polyfit(np.arange(len(y)), y, 2)[0] * 2  # px / frame^2
            assert a == pytest.approx(s["gravity"] / s["fps"] ** 2, rel=5e-3)  # positions are stored to 0.01 px
            checked += 1
    assert checked >= 3


def test_script_positions_match_the_pixels():
    """Where the script says an object is, its pixels are: the centroid of what differs from the background."""
    checked = 0
    for seed in range(40):
        spec = ClipSpec("physics", 64, 64, 9, 8, seed)
        c = render(spec)
        s = c.script
        if len(s["objects"]) != 1 or s["camera"]["motion"] != "static" or s["objects"][0]["kind"] not in ("ball", "cube"):
            continue
        o = s["objects"][0]
        camera = make_camera("static", 9, 64, 64, np.random.default_rng(0))
        bg = BackgroundCache(s["setting"], camera, 64, 64, seed).at(0)
        for t in range(9):
            mask = np.abs(c.frames[t].astype(float) - bg).sum(-1) > 40
            x0, y0, r = o["x"][t], o["y"][t], o["size"][t] / 2
            if not (r < x0 < 64 - r and r < y0 < 64 - r):
                continue
            if o.get("pivot"):
                continue
            ys, xs = np.nonzero(mask)
            assert abs(xs.mean() + 0.5 - x0) < 1.0 and abs(ys.mean() + 0.5 - y0) < 1.0
            checked += 1
    assert checked >= 20


def test_camera_pan_moves_the_whole_scene():
    """A pan is a camera transform: the background shifts by the camera's motion, measured on the pixels."""
    from kinetoscope.world.canvas import render_background

    cam = make_camera("pans right", 9, 64, 64, np.random.default_rng(1))
    a = render_background("city street at night", cam, 0, 64, 64, 5)
    b = render_background("city street at night", cam, 8, 64, 64, 5)
    shift = cam.cx[8] - cam.cx[0]  # world units == frame px at zoom 1
    best = min(range(0, 40), key=lambda s: np.abs(a[:, s:] - b[:, : 64 - s]).mean() if s else np.abs(a - b).mean())
    assert abs(best - shift) <= 1.0


def test_zoom_scales_about_the_center():
    cam = make_camera("zooms in", 9, 64, 64, np.random.default_rng(2))
    assert cam.zoom[0] == pytest.approx(1.0) and cam.zoom[-1] > 1.25
    x, y = cam.to_frame(8, np.array([32.0, 42.0]), np.array([32.0, 32.0]), 64, 64)
    assert x[0] == pytest.approx(32.0) and x[1] - 32 == pytest.approx(10 * cam.zoom[8])


def test_training_world_never_shows_held_out_combinations():
    seen = 0
    for c in clips(100, frames=5):
        for o in c.script["objects"]:
            seen += 1
            assert not is_held_out(o["color"], o["kind"], o["motion"]), o
    assert seen > 150
    heldout = [
        render(ClipSpec("physics", 64, 64, 9, 8, s, allow_held_out=True)).script["objects"] for s in range(100)
    ]
    assert any(is_held_out(o["color"], o["kind"], o["motion"]) for objs in heldout for o in objs)


def test_captions_name_colors_and_vary():
    tereses = set()
    for c in clips(60, frames=9):
        tereses.add(c.terse.split(" ")[0] + " " + c.terse.split(" ")[-1])
        for o in c.script["objects"]:
            name = o["kind"] if o["emoji"] else o["color"]
            assert name in c.terse and name in c.detailed
        assert c.detailed.endswith(".") and len(c.detailed) > len(c.terse)
    assert len(tereses) > 15  # wording and order vary


def test_swapped_directions_reverse_every_move_and_nothing_else():
    assert swap_directions("a red ball moves up on grass, the camera pans left") == (
        "a red ball moves down on grass, the camera pans right")
    assert swap_directions("A cube slides down and rolls to the right.") == "A cube slides up and rolls to the left."
    assert swap_directions("a cube rises, then a star sinks") == "a cube sinks, then a star rises"
    for still in ("a man sits down", "she jumps up", "a ball shrinks down", "rightly so", ""):
        assert swap_directions(still) == still
    for c in clips(40, frames=9):  # the clip's own direction words are the ones that swap; twice is the caption
        for text in (c.terse, c.detailed):
            assert swap_directions(swap_directions(text)) == text
            moves = [o["direction"] for o in c.script["objects"] if o["direction"] in ("left", "right")]
            if moves and f"rolls {moves[0]}" in text:
                assert f"rolls {OPPOSITE[moves[0]]}" in swap_directions(text)


def test_the_directions_drill_is_one_object_going_one_way_under_a_still_camera():
    directions = set()
    for seed in range(30):
        c = render(ClipSpec("directions", 112, 64, 17, 16, seed))
        (o,) = c.script["objects"]
        assert c.script["camera"]["motion"] == "static" and o["motion"] in DIRECTED_MOTIONS
        assert swap_directions(c.terse) != c.terse  # the caption names the way it goes, so the contrast can use it
        assert not is_held_out(o["color"], o["kind"], o["motion"])
        track = np.array(o["x" if o["direction"] in ("left", "right") else "y"])
        assert np.sign(track[-1] - track[0]) == (1 if o["direction"] in ("right", "down") else -1)
        directions.add(o["direction"])
    assert directions == {"left", "right", "up", "down"}


def test_objects_use_vocabulary_colors():
    for c in clips(30, frames=1):
        for o in c.script["objects"]:
            assert o["color"] in COLORS
