"""Game content: sprite sheets (atlas, Aseprite JSON against a hand-written fixture, Godot .tres, previews), the
matte against world sprites whose true mask is known, effects, design sheets, cutscenes, and Phaser playing our
sheet in chromium."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kinetoscope.cli import main
from kinetoscope.evaluate.analyzer import analyze
from kinetoscope.media import read_video, write_video
from kinetoscope.studio.matte import despill, key_color, matte
from kinetoscope.studio.sheets import Animation, write_sheet
from kinetoscope.studio.sprites import (
    ACTION_TRIES,
    PINGPONG,
    REFERENCE_TRIES,
    STILL_STEP,
    SpriteOptions,
    _action,
    _pingpong,
    _sheet,
    as_seen,
    colors_of,
    cutout_score,
    effect_of,
    make_sprites,
    motion,
    over_gray,
    prompt_color,
    reference_stills,
)
from kinetoscope.studio.storyboard import load_storyboard
from kinetoscope.world import render, sample_spec

KINETOSCOPE = [sys.executable, "-m", "kinetoscope"]
REPO = Path(__file__).resolve().parents[1]
ENGINE = REPO / "tests" / "engine"


def _world_sprites(n: int) -> list[np.ndarray]:
    clips = []
    for i in range(400):
        c = render(sample_spec(i, 0, ("sprites",), ((64, 64),), (9,), (12,)))
        if c.script.get("setting") == "transparent":
            clips.append(c.frames)
            if len(clips) == n:
                return clips
    raise AssertionError("too few transparent world sprites")


def _schema(x):
    """The shape of a JSON value: keys and value types, recursively (lists by their first item)."""
    if isinstance(x, dict):
        return {k: _schema(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_schema(x[0])] if x else []
    return type(x).__name__


@pytest.fixture(scope="module")
def sheet(tmp_path_factory) -> Path:
    """A real (if small) sheet: at 32 px, 2 steps drew no sprite at all, only stray pixels the matte now drops."""
    out = tmp_path_factory.mktemp("sprites") / "hero.png"
    r = subprocess.run(KINETOSCOPE + ["sprites", "a red knight", "-o", str(out), "--size", "32", "--steps", "6",
                                      "--actions", "idle,walk,attack"],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "loop seam" in r.stdout and "mean frame step" in r.stdout
    assert "--loop:" not in r.stderr  # the sprite closes and judges its loops itself: no loop-mode warning
    return out


def test_the_sheet_is_an_atlas_aseprite_json_godot_tres_and_previews(sheet):
    atlas = Image.open(sheet)
    assert atlas.mode == "RGBA" and atlas.size == (8 * 32, 3 * 32)
    data = json.loads(sheet.with_suffix(".json").read_text())
    fixture = json.loads((REPO / "tests" / "fixtures" / "aseprite_hash.json").read_text())
    assert _schema(data["frames"]["0"]) == _schema(fixture["frames"]["0"])
    assert set(data["meta"]) == set(fixture["meta"]) and _schema(data["meta"]["frameTags"]) == _schema(
        fixture["meta"]["frameTags"])  # fmt: skip
    assert list(data["frames"]) == [str(i) for i in range(24)]
    assert [(t["name"], t["from"], t["to"]) for t in data["meta"]["frameTags"]] == [("idle", 0, 7), ("walk", 8, 15),
                                                                                    ("attack", 16, 23)]  # fmt: skip
    assert data["meta"]["size"] == {"w": 256, "h": 96} and data["meta"]["image"] == "hero.png"
    tres = sheet.with_suffix(".tres").read_text()
    assert tres.startswith('[gd_resource type="SpriteFrames"') and tres.count('type="AtlasTexture"') == 24
    assert '&"walk"' in tres and "Rect2(224, 64, 32, 32)" in tres
    for ext in ("gif", "webp", "apng"):
        with Image.open(sheet.with_name(f"hero_walk.{ext}")) as im:
            assert getattr(im, "n_frames", 1) == 8


def test_the_matte_matches_the_true_mask_of_world_sprites(tmp_path):
    """Raw renders cut out exactly; through H.264 (how shards store them) >= 95% of pixels are right."""
    for frames in _world_sprites(6):
        key = key_color(frames)
        true = np.any(frames != key, axis=-1)
        assert np.array_equal(matte(frames)[..., 3] == 255, true)
        coded = read_video(write_video(tmp_path / "s.mp4", frames, 12, crf=18))
        alpha = matte(coded)[..., 3]
        assert np.where(true, alpha == 255, alpha == 0).mean() >= 0.95


def test_the_matte_drops_stray_specks_and_keeps_the_sprite():
    """A decoder's off-key corner pixel is not sprite; a sprite's own pixels stay, however thin."""
    frames = np.zeros((2, 32, 32, 3), np.uint8)
    frames[...] = (0, 255, 0)
    frames[:, 10:20, 12:14] = (200, 40, 40)  # a thin 2-pixel-wide body
    frames[:, 0, 0] = (90, 90, 90)  # a stray corner pixel
    frames[:, 30, 5:7] = (90, 90, 90)  # a stray pair
    alpha = matte(frames, np.array([0, 255, 0], np.uint8))[..., 3]
    assert (alpha[:, 10:20, 12:14] == 255).all()
    assert alpha[:, 0, 0].max() == 0 and alpha[:, 30].max() == 0


def test_an_actions_color_is_checked_by_the_name_the_analyzer_gives_the_sprite():
    """The same-character check reads the analyzer's dominant color (the name it gives the object, which the sprites
    benchmark reads too) and the pixel shares beside it; no object is (None, {})."""
    rgba = np.zeros((4, 32, 32, 4), np.uint8)
    rgba[:, 8:24, 8:24] = (230, 40, 40, 255)  # a red square on a transparent background
    name, shares = colors_of(rgba, 12)
    assert name == analyze(over_gray(rgba), 12).objects[0].color == "red"
    assert max(shares, key=shares.get) == "red" and abs(sum(shares.values()) - 1) < 1e-3
    assert colors_of(np.zeros_like(rgba), 12) == (None, {})


def test_motion_reads_a_still_sprite_as_still_and_a_hop_as_its_height():
    rgba = np.zeros((9, 32, 32, 4), np.uint8)
    rgba[:, 20:28, 12:20] = (230, 40, 40, 255)  # an 8 px red square, still
    assert motion(rgba) == {"step": 0.0, "rise": 0.0}
    hop = np.zeros_like(rgba)
    for t, dy in enumerate([0, 2, 4, 6, 8, 6, 4, 2, 0]):
        hop[t, 20 - dy : 28 - dy, 12:20] = (230, 40, 40, 255)
    m = motion(hop)
    assert m["rise"] == 8.0 and m["step"] > STILL_STEP


def _keyed_square() -> np.ndarray:
    """A 32 px reference still: a red square on a green key."""
    reference = np.zeros((32, 32, 3), np.uint8)
    reference[...] = (0, 255, 0)
    reference[10:22, 10:22] = (220, 30, 30)
    return reference


def test_a_jump_plays_out_and_back_so_its_wrap_is_an_inner_step():
    """PINGPONG actions are image-to-video from the reference, every second frame out and back: frames k and -k are
    the same frame, so the wrap (last -> first) repeats the step first -> second."""
    from kinetoscope.pipeline import Pipeline, Request

    assert "jump" in PINGPONG
    reference = _keyed_square()
    req = Request("a sprite of a red knight hopping, facing right, on a transparent background", 32, 32, 9, 12,
                  steps=4)  # fmt: skip
    rgb = _pingpong(Pipeline(), req, reference, 1)
    assert rgb.shape == (8, 32, 32, 3)
    assert all(np.array_equal(rgb[k], rgb[-k]) for k in range(1, 4))
    assert not np.array_equal(rgb[0], rgb[1])


def test_an_action_that_never_keeps_the_color_climbs_every_rung_of_tries():
    """An action whose tries all lose the sheet's color is drawn ACTION_TRIES times, the second half at half the
    guidance, and a ping-pong one then ACTION_TRIES // 2 times in loop mode; every try another seed; the best try
    comes back, cut out."""
    from kinetoscope.pipeline import Pipeline, Request

    class Counted(Pipeline):  # the real pipeline, each run's request and inputs noted
        runs: list[tuple[int, float, bool]] = []

        def run(self, req, inputs, **kw):
            self.runs.append((req.seed, req.guidance, inputs.loop))
            return super().run(req, inputs, **kw)

    reference = _keyed_square()
    req = Request("a sprite of a red knight hopping, facing right, on a transparent background", 32, 32, 9, 12,
                  steps=2, guidance=4.0)  # fmt: skip
    pipe, half = Counted(), ACTION_TRIES // 2
    cut, _, clip = _action(pipe, req, reference, key_color(reference[None]), "no such color", 1, pingpong=True)
    assert cut.shape == (8, 32, 32, 4) and clip.shape == (8, 32, 32, 3)
    assert [g for _, g, _ in pipe.runs] == [4.0] * half + [2.0] * (ACTION_TRIES - half + half)
    assert [loop for *_, loop in pipe.runs] == [False] * ACTION_TRIES + [True] * half
    assert len({seed for seed, *_ in pipe.runs}) == len(pipe.runs)


def test_a_sheet_whose_actions_disagree_is_drawn_again_from_the_next_reference(tmp_path, capsys):
    """At 32 px and 2 steps the bundled model often draws a sheet whose actions read different colors. The case: the
    first seed from 6 whose best reference still gives a sheet that disagrees and whose second best gives one that
    agrees; make_sprites writes the second (its actions count on the bar too). The seed is searched, not pinned: which
    seed it is depends on the CPU's bf16 kernels (6 on the Intel Xeon that pinned it, 10 on an AMD EPYC; both first)."""
    from tqdm import tqdm

    from kinetoscope.pipeline import Pipeline

    pipe, quiet = Pipeline(), tqdm(disable=True)
    for seed in (6, 10, 7, 8, 9, *range(11, 26)):
        o = SpriteOptions(size=32, steps=2, seed=seed, actions=("idle", "walk", "jump"), progress=True)
        first, second = reference_stills(pipe, "a blue robot", o)[:2]
        if len(set(_sheet(pipe, "a blue robot", first, o, quiet)[1])) == 1:
            continue
        agreed = _sheet(pipe, "a blue robot", second, o, quiet)[1]
        if len(set(agreed)) == 1 and agreed[0]:
            break
    else:
        pytest.fail("no seed in 6..25 draws a disagreeing sheet and then an agreeing one")
    capsys.readouterr()
    sheet = make_sprites("a blue robot", tmp_path / "robot.png", o, pipe)
    assert [a.name for a in sheet.animations] == ["idle", "walk", "jump"]
    assert [colors_of(a.frames, o.fps)[0] for a in sheet.animations] == agreed
    total = REFERENCE_TRIES + 2 * len(o.actions)  # both sheets' actions were drawn
    assert f"{total}/{total}" in capsys.readouterr().err


def test_the_reference_still_wears_the_color_the_prompt_names():
    """Of the candidate stills, one whose cut-out the analyzer names by the prompt's color wins over a cleaner cut-out
    in another color (seed 1 with bundle v6, 4 candidates: the cleanest of "a blue robot" reads black); no color
    word, no preference."""
    from kinetoscope.pipeline import Pipeline, Request

    assert (prompt_color("a Yellow slime, jumping"), prompt_color("a gray robot")) == ("yellow", None)
    assert as_seen("an orange cat", "red") == "a red cat" and as_seen("a red wizard", "orange") == "an orange wizard"
    assert as_seen("a knight in Red armor", "blue") == "a knight in blue armor"
    assert as_seen("a gray robot", "red") == "a gray robot"  # no color word: nothing to replace
    assert as_seen("a red robot", "red") == as_seen("a red robot", None) == "a red robot"
    pipe, o = Pipeline(), SpriteOptions(seed=1)
    picked = reference_stills(pipe, "a blue robot", o, tries=4)[0]
    assert colors_of(matte(picked[None]), o.fps)[0] == "blue"
    prompt = "a sprite of a blue robot standing idle, facing right, on a transparent background"
    stills = [pipe.generate(Request(prompt, 64, 64, 1, o.fps, o.seed + 1000 * k, o.steps, o.guidance),
                            progress=False).frames[0] for k in range(4)]  # fmt: skip
    cleanest = max(stills, key=cutout_score)
    assert cutout_score(cleanest) > cutout_score(picked) and colors_of(matte(cleanest[None]), o.fps)[0] != "blue"


def test_despill_takes_the_key_glow_off_edges_only():
    rgb = np.array([[[10.0, 200, 20], [200, 50, 210], [120, 100, 90]]])
    assert despill(rgb, np.array([0, 255, 0]))[0, 0].tolist() == [10, 20, 20]  # green glow gone
    assert despill(rgb, np.array([0, 255, 0]))[0, 2].tolist() == [120, 100, 90]  # other hues untouched
    assert despill(rgb, np.array([255, 0, 255]))[0, 1].tolist() == [50, 50, 60]


def test_write_sheet_round_trips_frames_and_transparency(tmp_path):
    frames = np.zeros((4, 16, 16, 4), np.uint8)
    for k in range(4):
        frames[k, 4:12, 2 + k : 6 + k] = (255, 0, 0, 255)
    paths = write_sheet(tmp_path / "s.png", [Animation("move", frames, 8, True), Animation("boom", frames, 8, False)])
    atlas = np.asarray(Image.open(paths["png"]))
    assert np.array_equal(atlas[16:32, 48:64], frames[3]) and atlas[..., 3].min() == 0
    assert '"loop": false, "name": &"boom"' in paths["tres"].read_text()


@pytest.mark.parametrize("prompt, effect", [("a spinning gold coin", "spin"), ("a blue gem sparkles", "sparkle"),
                                            ("an explosion", "explode"), ("a red knight", None)])  # fmt: skip
def test_effects_are_told_from_characters(prompt, effect):
    assert effect_of(prompt) == effect


def test_an_effect_is_one_animation_and_an_explosion_plays_once(tmp_path, capsys):
    """Also with --stride 4: 33 frames generated, every 4th kept, still the 8 frames asked for; progress on stderr."""
    out = tmp_path / "boom.png"
    assert main(["sprites", "an explosion", "-o", str(out), "--size", "32", "--steps", "2", "--stride", "4"]) == 0
    data = json.loads(out.with_suffix(".json").read_text())
    assert [t["name"] for t in data["meta"]["frameTags"]] == ["explode"] and len(data["frames"]) == 8
    assert "sprites: 100%" in capsys.readouterr().err
    assert '"loop": false' in out.with_suffix(".tres").read_text()


@pytest.mark.parametrize("flags, message", [(["--frames", "6"], "multiple of 4"), (["--size", "50"], "multiple of 16"),
                                            (["--actions", "dance"], "unknown action 'dance'"),
                                            (["--frames", "32", "--stride", "4"], "at most 64"),
                                            (["--palettes", "blue,teal"], "'teal' is not a color"),
                                            (["--palettes", "blue"], "'a knight' names none")])  # fmt: skip
def test_bad_sprite_requests_are_one_line(tmp_path, capsys, flags, message):
    assert main(["sprites", "a knight", "-o", str(tmp_path / "x.png"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert SpriteOptions().frames == 8
    assert main(["sprites", "a red explosion", "-o", str(tmp_path / "x.png"), "--palettes", "blue"]) == 2
    assert "an effect" in capsys.readouterr().err


def test_a_palette_the_key_would_cut_out_is_warned_about():
    """On a green key, keying holds green down to the other channels: a green palette would come out dark."""
    from kinetoscope.studio.sprites import _warn_if_keyed_out

    on_green = np.zeros((2, 32, 32, 3), np.uint8)
    on_green[..., 1] = 255
    with pytest.warns(UserWarning, match="--palettes green: the sheet's background key is \\(0, 255, 0\\)"):
        _warn_if_keyed_out("green", on_green)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_if_keyed_out("blue", on_green)


def test_a_palette_is_the_sheet_recolored_in_its_own_poses(tmp_path, capsys):
    """--palettes blue: a second sheet beside the first, every action edited from its prompt to the blue one, written
    in the same layout; only the colors inside the sprite change (the cut-out's alpha is the first sheet's)."""
    out = tmp_path / "hero.png"
    assert main(["sprites", "a red knight", "-o", str(out), "--size", "32", "--steps", "6", "--actions", "idle,walk",
                 "--palettes", "blue"]) == 0  # fmt: skip
    assert "hero_blue.png: the sheet in blue" in capsys.readouterr().out
    red, blue = (np.asarray(Image.open(out.with_name(n))) for n in ("hero.png", "hero_blue.png"))
    assert red.shape == blue.shape == (2 * 32, 8 * 32, 4) and not np.array_equal(red, blue)
    assert np.array_equal(red[..., 3], blue[..., 3])
    tags = [json.loads(out.with_name(n).read_text())["meta"]["frameTags"] for n in ("hero.json", "hero_blue.json")]
    assert tags[0] == tags[1]
    assert out.with_name("hero_blue.tres").exists() and out.with_name("hero_blue_walk.gif").exists()


def test_the_character_design_sheet_labels_every_seed(tmp_path):
    out = tmp_path / "looks.png"
    assert main(["character", "a green robot", "-o", str(out), "--variants", "6", "--size", "32", "--steps", "6",
                 "--seed", "40"]) == 0  # fmt: skip
    meta = json.loads(out.with_suffix(".json").read_text())
    assert [v["seed"] for v in meta["variants"]] == list(range(40, 46))
    im = np.asarray(Image.open(out))
    cells = [im[v["cell"]["y"] : v["cell"]["y"] + v["cell"]["h"], v["cell"]["x"] : v["cell"]["x"] + v["cell"]["w"]]
             for v in meta["variants"]]  # fmt: skip
    assert len({c.tobytes() for c in cells}) == 6  # six different looks


def test_a_cutscene_is_the_drama_studio_at_16_9(tmp_path, capsys):
    story = tmp_path / "cut.yaml"
    story.write_text("cast:\n  Hero: {look: a knight in red armor}\nshots:\n  - {setting: blue sky, cast: [Hero]}\n")
    assert load_storyboard(story, "16:9").aspect == "16:9" and load_storyboard(story).aspect == "9:16"
    assert main(["cutscene", str(story), "--check"]) == 0


@pytest.mark.skipif(not (ENGINE / "node_modules" / "phaser").exists(), reason="run scripts/install-web-deps.sh")
def test_phaser_plays_our_sheet_unmodified(sheet, tmp_path):
    from playwright.sync_api import sync_playwright

    site = tmp_path / "site"
    shutil.copytree(ENGINE, site, ignore=shutil.ignore_patterns("package*.json"))
    for suffix in (".png", ".json"):
        shutil.copy(sheet.with_suffix(suffix), site / f"sheet{suffix}")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    artifacts = REPO / "outputs" / "test-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"http://127.0.0.1:{server.server_port}/phaser.html?sheet=sheet")
            page.wait_for_function("window.results !== null", timeout=60_000)
            results = page.evaluate("window.results")
            page.screenshot(path=str(artifacts / "phaser_sheet.png"))
            browser.close()
    finally:
        server.shutdown()
    assert not errors, errors
    tags = results["tags"]
    assert set(tags) == {"idle", "walk", "attack"}
    for tag in tags.values():
        assert tag["frames"] == 8 and tag["durations"] == [83] * 8
        assert tag["distinctCanvases"] > 1  # the canvas changes frame to frame
