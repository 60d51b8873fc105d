"""DiT training and generation end to end through the CLI: latent cache, exact resume, torchrun, `generate`."""

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
from safetensors.torch import load_file, save_file

from conftest import finish, start, torchrun
from kinetoscope.data.latents import build_cache, cache_dir, join_caches, load_cache
from kinetoscope.diffusion.flow import resolution_shift
from kinetoscope.errors import DataError
from kinetoscope.media import probe, read_video
from kinetoscope.models.dit import DiT, DiTConfig
from kinetoscope.models.text import PromptError, TextEncoder
from kinetoscope.pipeline import Pipeline, Request
from kinetoscope.train.common import init_weights, load_checkpoint, save_checkpoint
from kinetoscope.train.dit import PRESETS as DIT_PRESETS
from kinetoscope.train.dit import step_loss, tokens_of
from kinetoscope.train.vae import load_vae

KINETOSCOPE = [sys.executable, "-m", "kinetoscope"]


def _run(*args, timeout=300):
    cmd = KINETOSCOPE + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def _losses(run):
    return [json.loads(ln)["loss"] for ln in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    r = _run("world", "-o", out, "--clips", "8", "--sizes", "64x64,64x32", "--frames", "1,9", "--fps", "16",
             "--workers", "1", "-q")  # fmt: skip
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def vae_run(world, tmp_path_factory):
    run = tmp_path_factory.mktemp("vae")
    r = _run("train", "vae", "--config", "tiny", "--data", world, "-o", run, "-q")
    assert r.returncode == 0, r.stderr
    return run


@pytest.fixture(scope="module")
def dit_run(world, vae_run, tmp_path_factory):
    run = tmp_path_factory.mktemp("dit")
    r = _run("train", "dit", "--config", "tiny", "--data", world, "--vae", vae_run, "-o", run, "-q")
    assert r.returncode == 0, r.stderr
    return run


def test_latent_cache_matches_the_vae_and_resumes(world, vae_run, dit_run):
    vae = load_vae(vae_run)
    folder = cache_dir(world, vae)
    cache = load_cache(world, folder)
    assert len(cache) == 8
    x = torch.from_numpy(read_video(world / cache.records[0].path)).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        z = vae.encode(x)[0].float()
    torch.testing.assert_close(cache.z[0], z)
    chunk = folder / "chunk-00000.safetensors"
    before = chunk.read_bytes()
    chunk.unlink()
    (folder / "index.json").unlink()
    build_cache(world, vae, TextEncoder(), progress=False)  # rebuilds only what is missing
    assert chunk.read_bytes() == before


def test_dit_training_logs_throughput(dit_run):
    rows = [json.loads(ln) for ln in (dit_run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(np.isfinite(r["loss"]) for r in rows)
    assert all(r["samples_per_s"] > 0 and 0 < r["mfu"] < 1 for r in rows)
    config = json.loads((dit_run / "config.json").read_text())
    assert config["kind"] == "dit" and config["fps"] == [16]
    assert (dit_run / "metrics.png").stat().st_size > 1000


def _train(world, vae_run, run, *extra):
    cmd = KINETOSCOPE + ["train", "dit", "--config", "tiny", "--data", str(world), "--vae", str(vae_run), "-o",
                         str(run), "--steps", "9", "-q", *extra]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_killed_dit_training_resumes_exactly(world, vae_run, dit_run, tmp_path):
    full = tmp_path / "full"
    p = _train(world, vae_run, full)
    assert p.wait(timeout=300) == 0, p.stderr.read()
    killed = tmp_path / "killed"
    p = _train(world, vae_run, killed)
    deadline = time.time() + 300
    while time.time() < deadline:  # the step-6 checkpoint (save_every=3), then kill -9
        if (killed / "state.pt").exists() and torch.load(killed / "state.pt", weights_only=False)["step"] >= 6:
            break
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    p = _train(world, vae_run, killed, "--resume")
    assert p.wait(timeout=300) == 0, p.stderr.read()
    np.testing.assert_allclose(_losses(killed), _losses(full), rtol=1e-5, atol=1e-6)


def test_a_save_killed_between_its_files_resumes_from_one_checkpoint(tmp_path):
    """A kill after the new weights are renamed into place but before the state is: resuming still pairs the step-6
    weights with the step-6 optimizer (the race the killed-training test met on CI, made certain here)."""
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    save_checkpoint(tmp_path, model, {}, {"step": 6, "optimizer": opt.state_dict()})
    at_six = {k: v.clone() for k, v in model.state_dict().items()}
    save_file({k: v + 1 for k, v in at_six.items()}, str(tmp_path / "model.safetensors"))  # step 9's half-done save
    fresh = torch.nn.Linear(4, 3)
    state = load_checkpoint(tmp_path, fresh)
    assert state["step"] == 6 and "model" not in state
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in at_six.items())


def test_init_starts_from_a_runs_weights(world, vae_run, dit_run, tmp_path):
    """--init fine-tunes: the new run starts from the old weights and records where it started; weights of another
    architecture are refused in one line."""
    run = tmp_path / "ft"
    r = _run("train", "dit", "--config", "tiny", "--data", world, "--vae", vae_run, "-o", run, "--steps", "3",
             "--init", dit_run, "-q")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads((run / "config.json").read_text())["init"] == str(dit_run)
    fields = json.loads((dit_run / "config.json").read_text())["model"]
    torch.manual_seed(123)
    fresh = DiT(DiTConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}))
    init_weights(dit_run, fresh)
    saved = load_file(str(dit_run / "model.safetensors"))
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in saved.items())
    r = _run("train", "dit", "--config", "tiny", "--data", world, "--vae", vae_run, "-o", tmp_path / "bad",
             "--steps", "1", "--init", vae_run, "-q")  # fmt: skip
    assert r.returncode == 2 and "do not fit this model" in r.stderr and "Traceback" not in r.stderr


def test_dit_trains_on_two_data_sets_at_once(world, vae_run, dit_run, tmp_path):
    """--data A,B mixes two data sets clip by clip: the joined cache holds both in order, the run names both, and
    caches that cannot go together are refused in one line."""
    other = tmp_path / "other"
    r = _run("world", "-o", other, "--clips", "4", "--seed", "1", "--sizes", "64x64", "--frames", "9", "--fps", "16",
             "--workers", "1", "-q")  # fmt: skip
    assert r.returncode == 0, r.stderr
    run = tmp_path / "mix"
    r = _run("train", "dit", "--config", "tiny", "--data", f"{world},{other}", "--vae", vae_run, "-o", run,
             "--steps", "2", "-q")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads((run / "config.json").read_text())["data"] == [str(world), str(other)]
    vae = load_vae(vae_run)
    a, b = (load_cache(d, cache_dir(d, vae)) for d in (world, other))
    both = join_caches([a, b])
    assert len(both) == 12 and both.records[8] == b.records[0] and torch.equal(both.z[8], b.z[0])
    assert torch.equal(both.tokens["terse"][3], a.tokens["terse"][3])
    with pytest.raises(DataError, match="differ in channels"):
        join_caches([a, replace(b, z=[z[:1] for z in b.z])])


def test_torchrun_matches_one_process(world, vae_run, dit_run, tmp_path):
    """Two ranks, each half of the same global batch, follow one process's loss curve."""
    run = tmp_path / "ddp"
    r = finish(start(torchrun(2, "-m", "kinetoscope", "train", "dit", "--config", "tiny", "--data", str(world),
                              "--vae", str(vae_run), "-o", str(run), "-q")))  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    np.testing.assert_allclose(_losses(run), _losses(dit_run), rtol=2e-2)


def test_contrast_adds_its_term_to_the_first_step(world, vae_run, dit_run, tmp_path):
    """contrast_weight: the rows whose caption names a direction also run under the swapped caption; the first
    step's loss is the plain run's plus weight x cost x rows / batch, and the log counts them."""
    tiny = {"model": "tiny", "steps": 6, "tokens": 256, "max_batch": 8, "warmup": 2, "save_every": 3, "log_every": 1}
    config = tmp_path / "contrast.json"
    config.write_text(json.dumps({**tiny, "contrast_weight": 2.0}))
    base = ["train", "dit", "--config", config, "--data", world, "--vae", vae_run, "-q"]
    r = _run(*base, "-o", tmp_path / "one")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(ln) for ln in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    plain = [json.loads(ln) for ln in (dit_run / "metrics.jsonl").read_text().splitlines()]
    assert sum(r["contrasted"] for r in rows) > 0 and all(0 < r["contrast"] < 3 for r in rows if r["contrasted"])
    first, before = rows[0], plain[0]
    extra = 2.0 * (first["contrast"] or 0.0) * first["contrasted"] / first["batch"]
    assert first["loss"] == pytest.approx(before["loss"] + extra, rel=1e-2)


def test_the_contrast_splits_over_ranks_as_one_process():
    """step_loss sums the contrast over a rank's directed rows and divides by the rank's batch, so the mean over
    ranks (what DDP's gradient averaging and the log compute) is one process's loss, however the directed rows fall
    (here all four on the first rank; the torchrun machinery itself is test_torchrun_matches_one_process's)."""
    g = torch.Generator().manual_seed(3)
    cfg = replace(DIT_PRESETS["tiny"], contrast_weight=0.5, motion_weight=4.0)
    x_t, target = torch.randn(8, 4, 3, 4, 4, generator=g), torch.randn(8, 4, 3, 4, 4, generator=g)
    t, given = torch.rand(8, 1, generator=g).expand(8, 3), torch.zeros(8, 3, dtype=torch.bool)
    v, wrong = torch.randn(8, 4, 3, 4, 4, generator=g), torch.randn(4, 4, 3, 4, 4, generator=g)
    rows = [0, 1, 2, 3]
    one, costs = step_loss(cfg, torch.cat([v, wrong]), x_t, t, target, given, rows)
    first, _ = step_loss(cfg, torch.cat([v[:4], wrong]), x_t[:4], t[:4], target[:4], given[:4], rows)
    second, none = step_loss(cfg, v[4:], x_t[4:], t[4:], target[4:], given[4:], [])
    assert len(costs) == 4 and len(none) == 0 and costs.min() > 0
    assert ((first + second) / 2).item() == pytest.approx(one.item(), rel=1e-6)


def test_export_bundle_generates_the_same(dit_run, tmp_path):
    out = tmp_path / "bundle"
    r = _run("export", "--dit", dit_run, "-o", out)
    assert r.returncode == 0, r.stderr
    assert (out / "dit" / "model.safetensors").exists() and (out / "vae" / "config.json").exists()
    assert oct((out / "dit" / "model.safetensors").stat().st_mode & 0o777) == "0o644"
    req = Request("a red ball", width=32, height=64, frames=5, steps=2)
    a = Pipeline(out).generate(req, progress=False).frames.astype(int)
    b = Pipeline(dit_run).generate(req, progress=False).frames.astype(int)
    assert np.abs(a - b).mean() < 3  # fp16 weights: nearly the fp32 run's frames


@pytest.fixture(scope="module")
def pipe(dit_run):
    return Pipeline(dit_run)


def test_same_seed_same_frames(pipe):
    req = Request("a red ball bounces on a gray floor", width=32, height=64, frames=9, steps=3)
    a, b = pipe.generate(req, progress=False), pipe.generate(req, progress=False)
    assert a.frames.shape == (9, 64, 32, 3) and a.frames.tobytes() == b.frames.tobytes()
    c = pipe.generate(Request(req.prompt, width=32, height=64, frames=9, steps=3, seed=1), progress=False)
    assert c.frames.tobytes() != a.frames.tobytes()


def test_shift_moves_the_schedule(pipe):
    """--shift overrides the token-count rule: the token count's own value changes nothing, another value does."""
    req = Request("a red ball bounces on a gray floor", width=32, height=64, frames=9, steps=3)
    tokens = tokens_of(pipe.dit.cfg, pipe.latent_shape(64, 32, 9)[1:])
    base = pipe.sample(req, progress=False)
    same = pipe.sample(replace(req, shift=resolution_shift(tokens)), progress=False)
    other = pipe.sample(replace(req, shift=3.0), progress=False)
    assert torch.equal(base, same) and not torch.equal(base, other)


def test_negative_prompt_replaces_the_unconditional_side(pipe):
    """Guidance is v_neg + g (v_cond - v_neg): a negative equal to the prompt leaves the conditional velocity alone,
    which is guidance 1 under any scale; an empty negative is the default; another negative changes the video."""
    req = Request("a red ball bounces on a gray floor", width=32, height=64, frames=9, steps=3)
    base = pipe.sample(req, progress=False)
    assert torch.equal(base, pipe.sample(replace(req, negative="  "), progress=False))
    itself = pipe.sample(replace(req, negative=req.prompt, guidance=7.0), progress=False)
    assert torch.allclose(itself, pipe.sample(replace(req, guidance=1.0), progress=False), atol=1e-5)
    assert not torch.equal(base, pipe.sample(replace(req, negative="a blue cube"), progress=False))
    with pytest.raises(PromptError, match="negative prompt has"):
        pipe.sample(replace(req, negative="x" * 5000), progress=False)


@pytest.mark.parametrize("aspect,frames", [("1:1", 1), ("16:9", 5), ("9:16", 33), ("1:1", 17)])
def test_generate_cli_sizes(dit_run, tmp_path, aspect, frames):
    out = tmp_path / "v.mp4"
    r = _run("generate", "a blue square slides left", "--model", dit_run, "--aspect", aspect, "--frames", frames,
             "--steps", "2", "-o", out, "-q")  # fmt: skip
    assert r.returncode == 0, r.stderr
    info = probe(out)
    w, h = {"1:1": (64, 64), "16:9": (112, 64), "9:16": (64, 112)}[aspect]
    assert (info.frames, info.width, info.height) == (frames, w, h)


def test_generate_image_and_rounding(dit_run, tmp_path):
    out = tmp_path / "still.png"
    r = _run("generate", "a green triangle", "--model", dit_run, "--size", "70x60", "--steps", "2", "-o", out, "-q")
    assert r.returncode == 0, r.stderr
    assert "rounded to 64x64" in r.stderr and out.exists()


@pytest.mark.parametrize("args,message", [
    (["", "--steps", "2"], "prompt is empty"),
    (["a ball", "--size", "9000x64"], "outside"),
    (["a ball", "--frames", "0"], "positive"),
    (["a ball", "--sampler", "rk9"], "sampler"),
    (["a ball", "--shift", "0"], "--shift 0.0 must be between"),
    (["a ball", "--harmonize", "-0.1"], "--harmonize -0.1 must be in [0, 1)"),
    (["a ball", "--model", "/nonexistent"], "no model here"),
    (["a ball", "-o", "clip.avi"], "unknown suffix"),
    (["a ball", "--negative", "y" * 4001], "negative prompt has 4001 characters"),
])  # fmt: skip
def test_generate_errors_are_one_line(dit_run, tmp_path, args, message):
    extra = [] if "--model" in args else ["--model", str(dit_run)]
    out = [] if "-o" in args else ["-o", str(tmp_path / "never.mp4")]
    r = _run("generate", *args, *extra, *out)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
