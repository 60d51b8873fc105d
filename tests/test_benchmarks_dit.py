"""The DiT benchmark runs end to end (quick: two buckets, one repeat) and writes its JSON; the loss probe runs and
reads what the bundled DiT reads, and its data and text variants are what they say."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kinetoscope.models.text import TextEncoder
from kinetoscope.pipeline import Pipeline

REPO = Path(__file__).resolve().parents[1]


def test_dit_benchmark_quick(tmp_path):
    out = tmp_path / "dit.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "dit.py"), "--quick", "--preset", "tiny,tiny", "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert len(res["train_steps"]) == 2 and all(0 < row["mfu"] < 1 for row in res["train_steps"])
    assert all(row["plain_ms"] > 0 and row["sdpa_ms"] > 0 for row in res["attention"])
    assert "MFU" in r.stdout and set(res["presets"]) == {"tiny"}


def test_loss_probe_reads_the_bundled_models_color_words(tmp_path):
    out, run = tmp_path / "probe.json", tmp_path / "run"
    cmd = [sys.executable, str(REPO / "benchmarks" / "loss_probe.py"), "--data", "discs", "--clips", "32",
           "--steps", "0", "--init", "--save", str(run), "-o", str(out)]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    (row,) = res["curve"]
    assert res["settings"]["probe_clips"] == 4 and len(row["direction"]) == len(row["color"]) == 3
    assert row["color"][0]["plain"] > 1.0  # the bundled DiT reads color words: a wrong color costs loss
    assert "Loss probe" in r.stdout and "partial" not in res  # the finished run's JSON replaced the partial one
    saved = Pipeline(run)  # --save: a run folder the pipeline loads, here v4's weights after 0 steps
    bundled = Pipeline().dit.state_dict()
    assert all(torch.allclose(v, bundled[k]) for k, v in saved.dit.state_dict().items())


@pytest.fixture(scope="module")
def probe_module():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        return importlib.import_module("loss_probe")
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


@pytest.mark.parametrize("kind", ["discs", "textured", "small"])
def test_loss_probe_discs_move_as_their_captions_say(probe_module, kind):
    rng = np.random.default_rng(4)
    for direction, (dx, dy) in probe_module.DISC_DIRECTIONS.items():
        clip = probe_module.disc_clip(rng, "red", direction, textured=kind == "textured", small=kind == "small")
        disc = np.all(clip == probe_module.DISC_COLORS["red"], axis=-1)  # (T, H, W) the disc's own pixels
        ys, xs = (np.array([np.nonzero(f)[axis].mean() for f in disc[[0, -1]]]) for axis in (0, 1))
        travel = np.array([xs[1] - xs[0], ys[1] - ys[0]])
        assert np.sign(travel[0 if dx else 1]) == (dx or dy), (kind, direction, travel)
        radius = np.sqrt(disc[0].sum() / np.pi)
        if kind == "small":  # the world's slides: radius 0.07-0.13 and travel 0.3-0.55 of the side
            assert 0.06 * 64 < radius < 0.14 * 64 and 0.28 * 64 < abs(travel).max() < 0.57 * 64
        background = clip[0][~disc[0]]
        assert (background.std(0).max() > 5) == (kind == "textured")  # a world setting, or one flat gray


def test_loss_probe_directions_are_world_clips_with_one_directed_object(probe_module):
    kept = [c for c in map(probe_module.direction_clip, range(30)) if c is not None]
    assert kept, "no clip of the first 30 fits (one object, still camera, rolls or slides)"
    for frames, terse, simple in kept:
        assert frames.shape == (probe_module.FRAMES, 112, 64, 3) and terse
        assert simple.startswith("a ") and simple.split()[-1] in ("left", "right", "up", "down")


def test_loss_probe_mirrors_are_the_clips_flipped_with_left_and_right_swapped(probe_module):
    """--mirror's data: the frames flipped before encoding (the latent is not flip-symmetric), and the caption the
    mirror would earn: left and right swapped, up, down and words that merely contain them ("bright") kept."""
    mirror = probe_module.mirror_caption
    assert mirror("a red ball rolls left, the camera pans right") == "a red ball rolls right, the camera pans left"
    assert mirror("a bright cube slides up") == "a bright cube slides up"
    pipe = Pipeline()
    made = probe_module._make_data(pipe, "world", 2, mirror=True)  # one render, both encodings
    (lat, (terse,)), (plain, plain_caps) = made[True], made[False]
    frames, caption = probe_module.world_clip(1)
    assert lat.shape[0] == 2 and terse[1] == caption  # load_data swaps the words, _make_data keeps them
    assert plain_caps == [terse] and torch.equal(plain[1:], pipe.encode(frames))
    assert torch.equal(lat[1:], pipe.encode(np.ascontiguousarray(frames[:, :, ::-1])))
    assert not torch.allclose(lat[1:], torch.flip(pipe.encode(frames), [-1]), atol=0.1)


def test_loss_probe_keeps_its_curve_at_every_probe(probe_module):
    """A probe run hands its curve so far to KEEP at each probe (main writes it as the JSON), so a run stopped for
    time keeps what it measured."""
    kept: list[dict] = []
    args = argparse.Namespace(data="discs", clips=32, steps=1, lr=5e-4, simple=False, lexical=False, mirror=False,
                              init=True, motion_weight=0.0, contrast=0.1, masks=True, save=None)  # fmt: skip
    res = probe_module.run(args, kept.append)  # one step with the contrast: every disc caption names a direction
    assert [k["partial"] for k in kept] == ["through step 0 of 1"] and kept[0]["curve"] == res["curve"]
    assert res["settings"]["contrast"] == 0.1


def test_lexical_text_adds_the_input_embeddings_after_the_contextual_tokens(probe_module):
    prompts = ["a red ball rolls left on a gray floor", "a yellow cube slides to the left under a blue sky", ""]
    enc = TextEncoder()
    plain, lexical = enc(prompts), probe_module.LexicalText()(prompts)
    batch = enc.tokenizer(prompts, padding=True, return_tensors="pt")
    with torch.no_grad():
        words = enc.model.embeddings(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"])
    assert torch.equal(lexical.pooled, plain.pooled)
    for i in range(len(prompts)):
        n = int(plain.mask[i].sum())
        assert torch.equal(lexical.tokens[i, :n], plain.tokens[i, :n])
        assert torch.allclose(lexical.tokens[i, n : 2 * n], words[i, :n])
        assert lexical.mask[i, : 2 * n].all() and not lexical.mask[i, 2 * n :].any()
