"""scripts/train_gpu.py, the GPU session's training command: the parts that stand in for what the GPU machine lacks
(emoji PNGs for the font, a trimmed text encoder, footage read with OpenCV), its schedule, and the split weights."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from kinetoscope.data.crops import CropMix
from kinetoscope.data.latents import CAPTION_KINDS, LatentCache
from kinetoscope.data.shards import ClipRecord
from kinetoscope.models.text import TextEncoder, model_folder
from kinetoscope.train.common import lr_at
from kinetoscope.train.dit import PRESETS
from kinetoscope.world import canvas, render, sample_spec

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("train_gpu", ROOT / "scripts" / "train_gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gpu():
    return _script()


@pytest.fixture(scope="module")
def assets(gpu, tmp_path_factory):
    folder = tmp_path_factory.mktemp("assets")
    gpu.prepare(folder)
    return folder


def test_emoji_pngs_draw_what_the_font_draws(gpu, assets, monkeypatch):
    font_loader = canvas.emoji_image
    font = {name: np.asarray(font_loader(name)) for name in canvas.EMOJI}
    monkeypatch.setattr(canvas, "emoji_image", font_loader)  # put back after the test
    gpu.use_assets(assets)
    assert canvas.emoji_image is not font_loader
    for name, pixels in font.items():
        assert np.array_equal(np.asarray(canvas.emoji_image(name)), pixels), name


def test_trimmed_text_encoder_matches_minilm_on_world_captions(gpu, assets, tmp_path):
    trimmed, kept = gpu.trimmed_text_encoder(assets, tmp_path / "minilm")
    captions = []
    for i in range(12):
        clip = render(sample_spec(i, seed=5))
        captions += [clip.terse, clip.detailed]
    ids = {t for c in captions for t in trimmed.tokenizer(c)["input_ids"]}
    assert ids <= kept
    full, small = TextEncoder()(captions), trimmed(captions)
    assert torch.equal(full.mask, small.mask)
    assert (full.tokens - small.tokens).abs().max() < 0.02  # fp16 weights
    assert (full.pooled - small.pooled).abs().max() < 5e-3


def test_memory_crops_draw_world_footage_and_photos(gpu, assets):
    clips = [render(sample_spec(i, seed=7)).frames for i in range(6)]
    source = gpu.MemoryCrops(clips, assets, CropMix(world=0.4, real=0.2, photo_pan=0.2, photo=0.2), seed=0)
    assert len(source.real) == 3 and len(source.photos) == 6
    x = source.batch(step=3, rank=0, size=32, frames=5, batch=8)
    assert x.shape == (8, 3, 5, 32, 32) and x.min() >= -1 and x.max() <= 1
    assert torch.equal(x, source.batch(step=3, rank=0, size=32, frames=5, batch=8))


def test_schedule_sizes_itself_to_the_deadline(gpu, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(gpu.time, "time", lambda: clock[0])
    sched = gpu.Schedule(peak=1e-3, warmup=10, deadline=1000.0 + 100.0, probe=30)
    for step in range(30):
        assert sched.lr(step) == pytest.approx(lr_at(step, 10**9, 1e-3, 10))
        clock[0] += 0.5  # half a second a step
        assert not sched.done(step)
    sched.lr(30)  # 25 steps took 12.5 s; 85 s are left: 170 more
    assert sched.total == 30 + 170
    assert sched.lr(sched.total - 1) < 1e-6 and sched.done(sched.total) and not sched.done(sched.total - 1)


def test_dit_batches_carry_the_contrasts_wrong_captions(gpu, monkeypatch):
    """A contrast DiT's loader item: the directed samples again at its end, the same noised latents under their
    swapped captions, encoded by the text encoder at MINILM (the trimmed one on the GPU machine)."""
    monkeypatch.setattr(gpu, "MINILM", model_folder())
    text = TextEncoder()
    caps = [{"terse": "a red ball rolls left", "detailed": "A red ball rolls to the left."},
            {"terse": "a blue cube spins", "detailed": "A blue cube spins in place."}]  # fmt: skip
    emb = {k: text([c[k] for c in caps]) for k in CAPTION_KINDS}
    cache = LatentCache([ClipRecord(f"memory/{i}", 9, 16, 64, 64, c, "world") for i, c in enumerate(caps)],
                        [torch.randn(8, 3, 8, 8) for _ in caps],
                        {k: [e.tokens[j][e.mask[j]] for j in range(2)] for k, e in emb.items()},
                        {k: [e.pooled[j] for j in range(2)] for k, e in emb.items()}, text([""]))  # fmt: skip
    cfg = replace(PRESETS["tiny"], contrast_weight=0.1, caption_dropout=0.0)
    batches = gpu.DiTBatches(cfg, cache, {(3, 8, 8): [0, 1]}, {(3, 8, 8): 48})
    seen = 0
    for step in range(4):
        _, x_t, t, (tokens, mask, pooled), target, given, rows = batches[step]
        b = len(target)
        assert len(x_t) == len(t) == len(pooled) == b + len(rows)
        assert torch.equal(x_t[b:], x_t[rows]) and torch.equal(t[b:], t[rows])
        assert all(not torch.equal(pooled[b + k], pooled[j]) for k, j in enumerate(rows.tolist()))
        seen += len(rows)
    assert seen > 0


def test_split_weights_come_back_whole(gpu, tmp_path):
    weights = {f"block.{i}.w": torch.randn(64, 64).half() for i in range(5)}
    save_file(weights, str(tmp_path / "model.safetensors"))
    gpu.split_weights(tmp_path, limit=4096)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.part0.safetensors", "model.part1.safetensors"]
    gpu.join_weights(tmp_path)
    back = load_file(str(tmp_path / "model.safetensors"))
    assert back.keys() == weights.keys() and all(torch.equal(back[k], weights[k]) for k in weights)


def test_decoder_only_fine_tune_keeps_the_latent_space(gpu, assets, tmp_path, monkeypatch):
    """run_directed's VAE: the decoder moves, the encoder and the latent shift/scale stay the bundle's, so a DiT
    trained on the bundle's latents still fits the new decoder."""
    monkeypatch.setattr(gpu, "SCALE", dict(gpu.DRY))
    monkeypatch.setattr(gpu.time, "time", iter(range(0, 10**6, 2)).__next__)  # 2 s a call: the deadline comes soon
    init = ROOT / "kinetoscope" / "weights" / "vae"
    clips = [render(sample_spec(i, seed=7)).frames for i in range(4)]
    run = gpu.train_vae_gpu(clips, assets, init, deadline=20.0, out=tmp_path, decoder_only=True)
    old, new = load_file(str(init / "model.safetensors")), load_file(str(run / "model.safetensors"))
    kept = [k for k in old if not k.startswith("decoder.")]
    assert "shift" in kept and "scale" in kept and any(k.startswith("encoder.") for k in kept)
    assert all(torch.equal(new[k].half(), old[k]) for k in kept)
    assert any(not torch.equal(new[k].half(), old[k]) for k in old if k.startswith("decoder."))
