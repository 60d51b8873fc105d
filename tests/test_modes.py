"""Every mode through the one mechanism (given latent frames held clean), on the bundled model with few steps:
what each mode keeps, how long its output is, and how it refuses bad input. Whether the generated frames are
good is the modes benchmark's question (benchmarks/modes.py), not these tests'."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from kinetoscope.diffusion.flow import schedule
from kinetoscope.errors import KinetoscopeError, SizeError
from kinetoscope.evaluate.analyzer import loop_seam
from kinetoscope.evaluate.quality import psnr
from kinetoscope.media import fit_frames, frames_to_tensor, probe, read_video, write_video
from kinetoscope import pipeline
from kinetoscope.pipeline import WINDOW, Inputs, Pipeline, Request, fade

KINETOSCOPE = [sys.executable, "-m", "kinetoscope"]
W, H = 64, 112


def _run(*args, timeout=300):
    cmd = KINETOSCOPE + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def pipe():
    return Pipeline()


def _req(frames=17, seed=0, prompt="a red ball rolls right on a gray floor", steps=3):
    return Request(prompt, W, H, frames, seed=seed, steps=steps)


@pytest.fixture(scope="module")
def clip(pipe):
    return pipe.generate(_req(), progress=False).frames  # (17, H, W, 3)


def _frames(pipe, req, inputs):
    return np.stack(list(pipe.run(req, inputs, progress=False)))


def test_given_prefix_and_suffix_stay_bit_identical(pipe):
    c, _, h, w = pipe.latent_shape(H, W, 1)
    prefix, suffix = torch.randn(1, c, 2, h, w), torch.randn(1, c, 1, h, w)
    z = pipe.window_latent(_req(), 6, prefix, suffix, progress=False)  # (1, C, 6, h, w)
    assert torch.equal(z[:, :, :2], prefix) and torch.equal(z[:, :, 5:], suffix)
    assert not torch.equal(z[:, :, 2:5], torch.zeros_like(z[:, :, 2:5]))


def test_harmonize_redraws_the_whole_window_from_a_low_noise_level(pipe, clip):
    """A harmonized window is sampled with its given frames held, then noised to t = harmonize and denoised with
    nothing held: the given frames move (the join becomes the model's own), less than the noise put on them did."""
    prefix = pipe.head(clip, 3)  # (1, C, 3, h, w)
    held = pipe.window_latent(_req(), 6, prefix, None, progress=False)  # (1, C, 6, h, w)
    off = pipe.window_latent(replace(_req(), harmonize=0.0), 6, prefix, None, progress=False, harmonize=True)
    assert torch.equal(off, held)
    moved = pipe.window_latent(_req(), 6, prefix, None, progress=False, harmonize=True)
    assert torch.equal(held[:, :, :3], prefix) and not torch.equal(moved[:, :, :3], prefix)
    noised = pipeline.HARMONIZE * (torch.randn(prefix.shape, generator=torch.Generator().manual_seed(0)) - prefix)
    assert (moved[:, :, :3] - prefix).abs().mean() < 0.5 * noised.abs().mean()  # denoised back toward the clip
    with pytest.raises(KinetoscopeError, match=r"--harmonize 1.0 must be in \[0, 1\)"):
        pipe.window_latent(replace(_req(), harmonize=1.0), 6, prefix, None, progress=False, harmonize=True)


def test_extend_forward_keeps_the_clip_and_adds_frames(pipe, clip):
    out = _frames(pipe, _req(frames=9), Inputs(extend=clip))
    assert out.shape == (17 + 8, H, W, 3)
    assert np.array_equal(out[:8], clip[:8])  # the last 9 frames were given: they fade into their decoded form
    assert np.abs(out[8:17].astype(int) - clip[8:].astype(int)).mean() < 20


def test_extend_backward_ends_with_the_clip(pipe, clip):
    out = _frames(pipe, _req(frames=9), Inputs(extend=clip, backward=True))
    assert out.shape == (8 + 17, H, W, 3)
    assert np.array_equal(out[8 + 13 :], clip[13:])  # frames 0..12 were given: faded from their decoded form
    assert np.array_equal(out[8 + 12], clip[12])


def test_connect_starts_with_a_and_ends_with_b(pipe, clip):
    b = pipe.generate(_req(seed=5, prompt="a blue cube slides left"), progress=False).frames
    out = _frames(pipe, _req(frames=9), Inputs(connect=(clip, b)))
    assert out.shape == (17 + 7 + 17, H, W, 3)
    assert np.array_equal(out[:8], clip[:8]) and np.array_equal(out[-4:], b[-4:])


def test_loop_is_one_frame_shorter_than_asked_and_its_seam_is_an_ordinary_step(pipe):
    out = _frames(pipe, _req(frames=17, prompt="a green ball spins"), Inputs(loop=True))
    assert out.shape == (16, H, W, 3)
    assert loop_seam(out) < 2.0  # the last frame is the one the window made just before the first


def test_loop_redraws_its_closing_part_until_the_wrap_is_seamless(pipe, monkeypatch):
    req = _req(frames=17, seed=3, prompt="a green ball spins")
    once = _frames(pipe, req, Inputs(loop=True, tries=1))
    again = _frames(pipe, req, Inputs(loop=True))
    assert loop_seam(again) <= max(loop_seam(once), pipeline.LOOP_SEAM)
    if loop_seam(once) <= pipeline.LOOP_SEAM:
        assert np.array_equal(once, again)  # a seamless first draw is kept as it is
    monkeypatch.setattr(pipeline, "LOOP_SEAM", 0.0)  # no wrap passes: every try is drawn, the smoothest kept
    with pytest.warns(UserWarning, match="smoothest of 2 loops"):
        best = _frames(pipe, req, Inputs(loop=True, tries=2))
    assert loop_seam(best) <= loop_seam(once)  # the first draw is one of the two
    with pytest.warns(UserWarning, match="--loop: the loop wraps around"):  # one try: no "smoothest of 1 loops"
        _frames(pipe, req, Inputs(loop=True, tries=1))


def test_image_to_video_starts_from_the_image(pipe, clip):
    image = clip[5]
    out = _frames(pipe, _req(frames=9), Inputs(image=image))
    assert out.shape == (9, H, W, 3)
    roundtrip = pipe.decode(pipe.encode(image[None]))[0]  # frame 0 is the given latent frame, decoded alone
    assert psnr(frames_to_tensor(out[:1]), frames_to_tensor(roundtrip[None])) > 40


def test_edit_strength_moves_from_the_clip_to_a_new_video(pipe, clip):
    weak = _frames(pipe, _req(prompt="a blue ball rolls right on a gray floor"), Inputs(edit=clip, strength=0.1))
    full = _frames(pipe, _req(prompt="a blue ball rolls right on a gray floor"), Inputs(edit=clip, strength=1.0))
    text = pipe.generate(_req(prompt="a blue ball rolls right on a gray floor"), progress=False).frames
    roundtrip = pipe.decode(pipe.encode(clip))
    assert weak.shape == clip.shape
    assert psnr(frames_to_tensor(weak), frames_to_tensor(roundtrip)) > 25
    assert np.array_equal(full, text)  # strength 1 starts from pure noise: the clip is ignored


def test_edit_with_a_source_prompt_moves_only_by_what_the_prompts_differ_in(pipe, clip):
    """FlowEdit starts at the clip's own latent: with nothing between the prompts (one prompt, no guidance) the clip
    comes back as its VAE round trip, bit for bit; a changed word changes it, the same way for the same seed."""
    prompt = "a red ball rolls right on a gray floor"
    same = _frames(pipe, replace(_req(prompt=prompt), guidance=0.0), Inputs(edit=clip, source=prompt))
    assert np.array_equal(same, pipe.decode(pipe.encode(clip)))
    blue = _req(prompt="a blue ball rolls right on a gray floor")
    edited = _frames(pipe, blue, Inputs(edit=clip, source=prompt))
    assert edited.shape == clip.shape and not np.array_equal(edited, same)
    assert np.array_equal(edited, _frames(pipe, blue, Inputs(edit=clip, source=prompt)))
    with pytest.warns(UserWarning, match="FlowEdit's own Euler steps"):
        _frames(pipe, replace(blue, sampler="heun", steps=1), Inputs(edit=clip, source=prompt))
    with pytest.raises(KinetoscopeError, match="--steps 0"):
        _frames(pipe, replace(blue, steps=0), Inputs(edit=clip, source=prompt))


def test_a_long_clip_is_edited_whole_window_after_window(pipe):
    """Past WINDOW frames the edit rolls: every frame comes back, however many (not only 1 + 4k), the first window
    is the one-window edit, and with prompts that agree the clip comes back (its windows' round trips, faded at the
    joins)."""
    long = pipe.generate(_req(frames=WINDOW + 12, steps=2), progress=False).frames[:-2]  # 43 frames
    prompt = "a red ball rolls right on a gray floor"
    same = _frames(pipe, replace(_req(prompt=prompt), guidance=0.0), Inputs(edit=long, source=prompt))
    assert same.shape == long.shape
    assert psnr(frames_to_tensor(same), frames_to_tensor(long)) > 30
    blue = _req(prompt="a blue ball rolls right on a gray floor", steps=2)
    edited = _frames(pipe, blue, Inputs(edit=long, source=prompt))
    one = _frames(pipe, blue, Inputs(edit=long[:WINDOW], source=prompt))
    assert edited.shape == long.shape
    assert np.array_equal(edited[: WINDOW - 9], one[: WINDOW - 9])  # the second window overlaps the last 9
    sdedit = _frames(pipe, blue, Inputs(edit=long, strength=0.5))
    assert sdedit.shape == long.shape


def test_long_video_rolls_windows(pipe):
    frames = WINDOW + 2 * 24
    out = _frames(pipe, _req(frames=frames, steps=2), Inputs())
    assert out.shape == (frames, H, W, 3)
    first = pipe.generate(_req(frames=WINDOW, steps=2), progress=False).frames
    assert np.array_equal(out[: WINDOW - 9], first[: WINDOW - 9])  # the first window is the plain text-to-video


def test_fade_runs_from_a_into_b():
    a, b = np.zeros((4, 2, 2, 3), np.uint8), np.full((4, 2, 2, 3), 200, np.uint8)
    out = fade(a, b)
    assert out[:, 0, 0, 0].tolist() == [50, 100, 150, 200]


def test_schedule_start_is_the_tail_of_the_full_curve():
    full, part = schedule(20, 2.0), schedule(10, 2.0, start=0.5)
    assert part[0] == 0.5 and part[-1] == 0 and torch.all(part[1:] < part[:-1])
    assert torch.allclose(schedule(20, 2.0, start=1.0), full)
    with pytest.raises(ValueError):
        schedule(4, 1.0, start=0.0)


@pytest.mark.parametrize("inputs,message", [
    (Inputs(loop=True, extend=np.zeros((5, 8, 8, 3), np.uint8)), "do not go together"),
    (Inputs(edit=np.zeros((5, 8, 8, 3), np.uint8), connect=(np.zeros((5, 8, 8, 3), np.uint8),) * 2), "together"),
    (Inputs(image=np.zeros((8, 8, 3), np.uint8), extend=np.zeros((5, 8, 8, 3), np.uint8)), "--image and --extend"),
    (Inputs(backward=True), "--backward goes with --extend"),
    (Inputs(edit=np.zeros((5, 8, 8, 3), np.uint8), strength=1.5), "--strength"),
    (Inputs(source="a red ball"), "--source-prompt goes with --edit"),
    (Inputs(edit=np.zeros((5, 8, 8, 3), np.uint8), source=" "), "--source-prompt is empty"),
])  # fmt: skip
def test_impossible_combinations_are_refused(inputs, message):
    with pytest.raises(KinetoscopeError, match=message):
        inputs.mode()


def test_fit_frames_crops_to_the_aspect_and_refuses_tiny_inputs():
    wide = np.zeros((2, 100, 200, 3), np.uint8)
    wide[:, :, 75:125] = 255  # a white band in the middle survives the center crop
    out, cut = fit_frames(wide, 112, 64)
    assert out.shape == (2, 112, 64, 3) and cut == pytest.approx(1 - (100 * 57) / (100 * 200), abs=0.01)
    assert out[:, :, 32].min() == 255
    same, none = fit_frames(np.zeros((1, 56, 32, 3), np.uint8), 112, 64)
    assert none == 0 and same.shape == (1, 112, 64, 3)
    with pytest.raises(SizeError, match="too small"):
        fit_frames(np.zeros((1, 8, 8, 3), np.uint8), 112, 64)


def test_short_inputs_are_refused(pipe):
    with pytest.raises(KinetoscopeError, match="at least 5 frames"):
        list(pipe.run(_req(frames=9), Inputs(extend=np.zeros((2, 112, 64, 3), np.uint8), backward=True)))
    with pytest.raises(KinetoscopeError, match="--loop needs"):
        list(pipe.run(_req(frames=5), Inputs(loop=True)))


def test_cli_modes_write_joined_clips(clip, tmp_path):
    src = write_video(tmp_path / "a.mp4", clip, 12)
    ext = tmp_path / "ext.mp4"
    r = _run("generate", "a red ball rolls right", "--extend", src, "--frames", "5", "--steps", "2", "-o", ext, "-q")
    assert r.returncode == 0, r.stderr
    info = probe(ext)
    assert (info.frames, info.width, info.height, info.fps) == (17 + 4, W, H, 12)  # the clip's size and rate
    made, given = read_video(ext)[:17].astype(float), read_video(src).astype(float)
    np.testing.assert_allclose(made[:8], given[:8], atol=40)  # the clip up to its given end, through H.264 twice
    assert np.abs(made[8:] - given[8:]).mean() < 20  # its given end fades into the harmonized window's frames
    edit = tmp_path / "edit.mp4"
    r = _run("generate", "a blue ball rolls right", "--edit", src, "--source-prompt", "a red ball rolls right",
             "--steps", "2", "-o", edit, "-q")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (probe(edit).frames, probe(edit).width) == (17, W)


def test_cli_image_of_another_aspect_is_cropped_with_a_warning(tmp_path):
    from PIL import Image

    img = tmp_path / "wide.jpg"
    Image.fromarray(np.full((60, 160, 3), 200, np.uint8)).save(img)
    out = tmp_path / "i2v.mp4"
    r = _run("generate", "a ball falls", "--image", img, "--aspect", "9:16", "--frames", "5", "--steps", "2",
             "-o", out, "-q")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "cropped to the 64x112 aspect" in r.stderr and probe(out).frames == 5


@pytest.mark.parametrize("args,message", [
    (["--loop", "--extend", "{clip}"], "--extend and --loop do not go together"),
    (["--strength", "0.5"], "--strength goes with --edit"),
    (["--source-prompt", "a red ball"], "--source-prompt goes with --edit"),
    (["--extend", "{bad}"], "bad.mp4"),
    (["--image", "{tiny}"], "too small"),
    (["--image", "{missing}"], "missing.png"),
    (["--edit", "{clip}", "-o", "{out_png}"], "an image holds one frame"),
])  # fmt: skip
def test_cli_bad_inputs_get_one_line(clip, tmp_path, args, message):
    from PIL import Image

    paths = {"clip": write_video(tmp_path / "c.mp4", clip, 16), "bad": tmp_path / "bad.mp4",
             "tiny": tmp_path / "tiny.png", "missing": tmp_path / "missing.png", "out_png": tmp_path / "x.png"}  # fmt: skip
    paths["bad"].write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(paths["tiny"])
    args = [a.format(**paths) for a in args]
    out = [] if "-o" in args else ["-o", str(tmp_path / "never.mp4")]
    r = _run("generate", "a ball", *args, *out, "--steps", "1")
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "never.mp4").exists()

