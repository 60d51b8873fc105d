"""The causal VAE: shapes, causality, exact chunked streaming, clear errors, training, exact resume, torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import finish, start, torchrun
from kinetoscope.data.latents import vae_id
from kinetoscope.errors import KinetoscopeError, SizeError
from kinetoscope.evaluate.reconstruction import latent_seam
from kinetoscope.models.vae import PRESETS, VAE, CausalCache
from kinetoscope.models.vae_stream import (StreamConfig, decode_stream, encode_stream, even_steps, ramp,
                                           retime_weights, tile_starts)
from kinetoscope.train.vae import PRESETS as TRAIN_PRESETS
from kinetoscope.train.vae import load_vae, train_vae, vae_loss

KINETOSCOPE = [sys.executable, "-m", "kinetoscope"]


@pytest.fixture(scope="module")
def vae() -> VAE:
    torch.manual_seed(0)
    return VAE(PRESETS["tiny"]).eval()


@pytest.mark.parametrize("frames,latent_frames", [(1, 1), (5, 2), (17, 5)])
def test_shapes(vae, frames, latent_frames):
    x = torch.rand(2, 3, frames, 32, 48) * 2 - 1
    with torch.no_grad():
        z = vae.encode(x)
        assert z.shape == (2, vae.cfg.latent, latent_frames, 4, 6)
        assert vae.decode(z).shape == x.shape


@pytest.mark.parametrize("j", [0, 1, 2])
def test_encoder_is_causal(vae, j):
    """Encoding the first 1 + 4j frames alone reproduces the first 1 + j latent frames of the whole clip."""
    x = torch.rand(1, 3, 13, 32, 32) * 2 - 1
    with torch.no_grad():
        whole = vae.encode(x)
        prefix = vae.encode(x[:, :, : 1 + 4 * j])
    torch.testing.assert_close(prefix, whole[:, :, : 1 + j], atol=1e-5, rtol=1e-5)


def test_decoder_is_causal(vae):
    z = torch.randn(1, vae.cfg.latent, 4, 4, 4)
    with torch.no_grad():
        whole = vae.decode(z)
        prefix = vae.decode(z[:, :, :2])
    torch.testing.assert_close(prefix, whole[:, :, :5], atol=1e-5, rtol=1e-5)


def test_chunked_streaming_is_exact(vae):
    """Temporal chunks through the causal cache give the one-shot result (no tiling: one tile covers the frame)."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (17, 32, 32, 3), dtype=np.uint8)
    x = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    with torch.no_grad():
        z = vae.encode(x)
        y = vae.decode(z)
    cfg = StreamConfig(chunk=4, tile=256, overlap=0)
    zs = encode_stream(vae, iter(frames), cfg)
    torch.testing.assert_close(zs, z, atol=1e-5, rtol=1e-5)
    ys = np.stack(list(decode_stream(vae, z, cfg)))
    expected = ((y[0].permute(1, 2, 3, 0).clamp(-1, 1) + 1) * 127.5).round().numpy()
    assert np.abs(ys.astype(float) - expected).max() <= 1


def test_even_steps_undo_a_decoder_that_runs_ahead_inside_a_latent_frame():
    """A ramp decoded with the bundled decoder's timing (front-loaded steps 1.20 / 0.91 / 0.76 / 0.53) comes back
    with even steps; an even timing, or one that lags (it would need the next frame), leaves frames as decoded;
    frame 0 is never touched."""
    phase = np.array([1.20, 0.91, 0.76, 0.53])
    tau = np.concatenate([[0.0], np.cumsum(4 * phase / phase.sum())])  # the moment each frame of a latent frame shows
    times = np.concatenate([[0.0], *(4 * k + tau[1:] for k in range(4))])  # 17 frames, 4 latent frames after the first
    frames = [np.full((2, 2, 3), 10 * t, np.float32).round().astype(np.uint8) for t in times]  # brightness = time
    even = np.stack(list(even_steps(frames, retime_weights(tuple(phase))))).astype(float)[:, 0, 0, 0]
    assert np.abs(np.diff(even) - 10).max() <= 1 and even[0] == frames[0][0, 0, 0]
    raw_steps = np.diff(np.stack(frames).astype(float)[:, 0, 0, 0])
    assert raw_steps.max() > 13  # the uneven input the test starts from
    assert np.array_equal(retime_weights((1.0, 1.0, 1.0, 1.0)), np.ones(4))
    assert np.array_equal(retime_weights((0.5, 0.8, 1.0, 1.2)), np.ones(4))


def test_decode_stream_retimes_with_the_vaes_measured_timing(vae):
    """A VAE whose config carries phase_steps decodes through even_steps (what the pipeline shows); without them,
    frames come out as decoded."""
    timed = VAE(replace(vae.cfg, phase_steps=(1.2, 0.9, 0.7, 0.5))).eval()
    timed.load_state_dict(vae.state_dict())
    z = torch.randn(1, vae.cfg.latent, 3, 4, 4)
    raw = list(decode_stream(vae, z))
    expected = np.stack(list(even_steps(raw, retime_weights(timed.cfg.phase_steps))))
    assert np.array_equal(np.stack(list(decode_stream(timed, z))), expected)
    assert not np.array_equal(expected, np.stack(raw))


def test_cache_carries_state_between_chunks(vae):
    x = torch.rand(1, 3, 9, 32, 32) * 2 - 1
    cache = CausalCache()
    with torch.no_grad():
        a = vae.encode(x[:, :, :1], cache)
        b = vae.encode(x[:, :, 1:5], cache)
        fresh = vae.encode(x[:, :, 1:6])  # without the cache, frame 1 is treated as a stream start
    assert a.shape[2] == 1 and b.shape[2] == 1
    assert not torch.allclose(b, fresh[:, :, :1], atol=1e-4)


def test_tiles_cover_and_blend_to_one():
    for size, tile, overlap in [(128, 64, 16), (200, 64, 32), (64, 64, 16), (48, 64, 16)]:
        starts = tile_starts(size, min(tile, size), overlap)
        t = min(tile, size)
        total = np.zeros(size)
        for s in starts:
            total[s : s + t] += ramp(size, s, t, overlap)
        assert starts[0] == 0 and starts[-1] + t == size
        assert total.min() > 0  # every pixel has weight; the blend divides by the total


@pytest.mark.parametrize(
    "shape,message",
    [
        ((1, 3, 1, 8, 8), "8x8 pixels.*at least 16"),
        ((1, 3, 0, 32, 32), "0 frames"),
        ((1, 3, 10, 32, 32), "10 frames.*1 \\+ 4k"),
        ((1, 4, 1, 32, 32), "\\(B, 3, T, H, W\\)"),
    ],
)
def test_bad_input_is_a_clear_error(vae, shape, message):
    with pytest.raises(SizeError, match=message):
        vae.encode(torch.zeros(shape))


def test_stream_refuses_ragged_clips(vae):
    with pytest.raises(SizeError, match="1 \\+ 4k"):
        encode_stream(vae, np.zeros((7, 32, 32, 3), np.uint8), StreamConfig(chunk=4))
    with pytest.raises(SizeError, match="0 frames"):
        encode_stream(vae, [], StreamConfig(chunk=4))


def _train(data, run, *extra, steps=None):
    cmd = KINETOSCOPE + ["train", "vae", "--config", "tiny", "--data", str(data), "-o", str(run), *extra]
    if steps:
        cmd += ["--steps", str(steps)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _losses(run):
    return [json.loads(ln)["loss"] for ln in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    subprocess.run(
        KINETOSCOPE + ["world", "-o", str(out), "--clips", "6", "--sizes", "64x64", "--frames", "9", "--workers", "1"],
        check=True, capture_output=True,
    )
    return out


def test_training_runs_and_saves(world, tmp_path):
    run = tmp_path / "run"
    p = _train(world, run)
    _out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    for name in ("model.safetensors", "config.json", "state.pt", "metrics.jsonl"):
        assert (run / name).exists()
    losses = _losses(run)
    assert len(losses) == 6 and all(np.isfinite(losses))


def test_killed_training_resumes_exactly(world, tmp_path):
    """SIGKILL after a checkpoint, resume: the loss curve equals an uninterrupted run's."""
    steps = 9
    full = tmp_path / "full"
    p = _train(world, full, steps=steps)
    assert p.wait(timeout=300) == 0, p.stderr.read()
    killed = tmp_path / "killed"
    p = _train(world, killed, steps=steps)
    deadline = time.time() + 300
    while time.time() < deadline:  # wait for the step-6 checkpoint (save_every=3), then kill -9
        if (killed / "state.pt").exists() and torch.load(killed / "state.pt", weights_only=False)["step"] >= 6:
            break
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    saved = torch.load(killed / "state.pt", weights_only=False)["step"]
    assert 6 <= saved < steps or saved == steps
    p = _train(world, killed, "--resume", steps=steps)
    assert p.wait(timeout=300) == 0, p.stderr.read()
    np.testing.assert_allclose(_losses(killed), _losses(full), rtol=1e-5, atol=1e-6)


def test_torchrun_two_processes(world, tmp_path):
    run = tmp_path / "ddp"
    r = finish(start(torchrun(2, "-m", "kinetoscope", "train", "vae", "--config", "tiny", "--data", str(world),
                              "-o", str(run), "--steps", "4")))  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(_losses(run)) == 4 and (run / "model.safetensors").exists()


TILED_PSNR_MIN = 40.0  # tiled vs one-shot reconstruction of the bundled VAE: the stated tolerance (dB)


def test_tiled_matches_one_shot_with_the_bundled_vae():
    """Overlapping 64 px tiles (32 px blended) reproduce the one-shot reconstruction of a 128x192 world clip to within
    TILED_PSNR_MIN dB (tiles see zero padding at their edges; the overlap hides it); both retimed as the bundled
    VAE's config says, since decode_stream retimes."""
    from kinetoscope.evaluate.quality import psnr
    from kinetoscope.media import frames_to_tensor, tensor_to_frames
    from kinetoscope.pipeline import BUNDLED
    from kinetoscope.train.vae import load_vae
    from kinetoscope.world import render, sample_spec

    bundled = load_vae(BUNDLED / "vae")
    frames = render(sample_spec(3, 7, families=("physics",), sizes=((128, 192),), frames=(9,))).frames
    x = frames_to_tensor(frames)[None]
    with torch.no_grad():
        one_shot = bundled.decode(bundled.encode(x))
    z = encode_stream(bundled, frames, StreamConfig(chunk=4, tile=64, overlap=32))
    tiled = np.stack(list(decode_stream(bundled, z, StreamConfig(chunk=4, tile=64, overlap=32))))
    expected = np.stack(list(even_steps(tensor_to_frames(one_shot[0]), retime_weights(bundled.cfg.phase_steps))))
    assert psnr(frames_to_tensor(tiled)[None], frames_to_tensor(expected)[None]) > TILED_PSNR_MIN


def test_decoder_only_fine_tune_keeps_the_latent_space(world, tmp_path):
    """decoder_only leaves the encoder and the latent normalization bit-identical (a DiT trained on them and its
    latent cache stay valid) and trains the decoder; without a VAE to start from it is refused."""
    cfg = replace(TRAIN_PRESETS["tiny"], steps=2)
    train_vae(cfg, [world], tmp_path / "base", progress=False)
    train_vae(replace(cfg, decoder_only=True, seed=1, w_temporal=1.0), [world], tmp_path / "dec", progress=False,
              init=tmp_path / "base")  # fmt: skip
    base, dec = (load_file(str(tmp_path / r / "model.safetensors")) for r in ("base", "dec"))
    kept = [k for k in base if not k.startswith("decoder.")]
    assert "shift" in kept and any(k.startswith("encoder.") for k in kept)
    for k in kept:
        torch.testing.assert_close(dec[k], base[k], rtol=0, atol=0)
    assert any(not torch.equal(dec[k], base[k]) for k in base if k.startswith("decoder."))
    assert vae_id(load_vae(tmp_path / "dec")) == vae_id(load_vae(tmp_path / "base"))  # the DiT's latent cache is kept
    with pytest.raises(KinetoscopeError, match="--init"):
        train_vae(replace(cfg, decoder_only=True), [world], tmp_path / "none", progress=False)


def test_temporal_loss_and_latent_seam_see_the_flicker_where_latent_frames_meet():
    """A reconstruction that is off by a constant has the input's frame steps (temporal term 0); one that jumps at
    every 4th step (where latent frames meet) is penalized and reads as a seam ratio far above the input's 1."""
    cfg = replace(TRAIN_PRESETS["tiny"], w_temporal=1.0)
    ramp_clip = torch.linspace(-0.5, 0.5, 17)[None, None, :, None, None].expand(1, 3, 17, 8, 8)  # steady steps
    stats = torch.zeros(1, 4, 5, 1, 1), torch.zeros(1, 4, 5, 1, 1)
    assert float(vae_loss(cfg, ramp_clip, ramp_clip + 0.1, *stats)["temporal"]) == pytest.approx(0.0, abs=1e-6)
    flicker = ramp_clip + 0.1 * ((torch.arange(17) + 3) // 4)[None, None, :, None, None]  # jumps 0->1, 4->5, ...
    assert float(vae_loss(cfg, ramp_clip, flicker, *stats)["temporal"]) > 0.005
    assert float(vae_loss(cfg, ramp_clip[:, :, :1], flicker[:, :, :1], *stats)["temporal"]) == 0.0  # an image
    seam, seam_input = latent_seam(flicker, ramp_clip, time=4)
    assert seam_input == pytest.approx(1.0) and seam > 2.0
