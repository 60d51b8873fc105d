"""Sharded training on the PyTorch distributed stack, on CPU with gloo: FSDP2 over 2 processes follows 1 process,
a sharded checkpoint saved by 2 processes resumes on 1 and on 4, activation checkpointing changes nothing, and the
gathered weights load for inference."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import finish, kill_tree, start, torchrun
from kinetoscope.pipeline import Pipeline, Request
from kinetoscope.errors import KinetoscopeError
from kinetoscope.train.dit import PRESETS, DiTTrainConfig

STEPS = 20


def _train(world: Path, run: Path, procs: int, *flags: str, wait: bool = True, config: str = "tiny"):
    base = ["-m", "kinetoscope", "train", "dit", "--config", config, "--steps", str(STEPS), "--data", str(world),
            "-o", str(run), "-q", *flags]  # fmt: skip
    p = start([sys.executable, *base] if procs == 1 else torchrun(procs, *base))
    if wait:
        r = finish(p)
        assert r.returncode == 0, r.stderr[-3000:]
    return p


def _losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("par") / "world"
    subprocess.run([sys.executable, "-m", "kinetoscope", "world", "-o", str(out), "--clips", "8", "--sizes", "64x64",
                    "--frames", "9", "--workers", "1", "-q"], check=True, capture_output=True)  # fmt: skip
    return out


@pytest.fixture(scope="module")
def one(world) -> Path:
    run = world.parent / "one"
    _train(world, run, 1)
    return run


def test_fsdp_on_two_processes_follows_one_process(world, one):
    run = world.parent / "fsdp2"
    _train(world, run, 2, "--parallel", "fsdp")
    np.testing.assert_allclose(_losses(run), _losses(one), rtol=1e-3)
    assert json.loads((run / "sharded" / "latest.json").read_text()) == {"step": STEPS, "folder": "step-00000020",
                                                                         "world": 2}  # fmt: skip
    frames = Pipeline(run).generate(Request("a red ball", 32, 32, 5, steps=2), progress=False).frames
    assert frames.shape == (5, 32, 32, 3)  # the gathered weights load as a plain model


def test_a_sharded_checkpoint_from_two_resumes_on_one_and_on_four(world, one):
    killed = world.parent / "killed"
    p = _train(world, killed, 2, "--parallel", "fsdp", wait=False)
    latest = killed / "sharded" / "latest.json"
    deadline = time.time() + 300
    while time.time() < deadline:
        if latest.exists() and json.loads(latest.read_text())["step"] >= 9:
            break
        time.sleep(0.05)
    kill_tree(p, signal.SIGKILL)  # torchrun and both workers: the whole job dies at once, as on a lost machine
    p.wait()
    saved = json.loads(latest.read_text())
    assert saved["world"] == 2 and 9 <= saved["step"] < STEPS
    for procs in (1, 4):
        run = world.parent / f"resume{procs}"
        shutil.copytree(killed, run)
        _train(world, run, procs, "--parallel", "fsdp", "--resume")
        np.testing.assert_allclose(_losses(run), _losses(one), rtol=1e-3)


def test_activation_checkpointing_changes_nothing(world, one):
    run = world.parent / "ckpt"
    _train(world, run, 1, "--checkpointing")
    np.testing.assert_allclose(_losses(run), _losses(one), rtol=1e-4)
    assert Pipeline(run).dit is not None  # plain names: loads without the wrapper


@pytest.mark.parametrize("term", ["motion_weight", "temporal_weight"])
def test_a_weighted_or_temporal_run_trains_on_its_own_loss(world, one, term):
    config = world.parent / f"{term}.json"
    config.write_text(json.dumps({**asdict(PRESETS["tiny"]), term: 4.0 if term == "motion_weight" else 1.0}))
    run = world.parent / term
    _train(world, run, 1, config=str(config))
    weighted, plain = _losses(run), _losses(one)
    assert len(weighted) == len(plain) and all(np.isfinite(weighted))
    assert weighted != plain  # the same batches from the same weights: only the loss differs
    if term == "temporal_weight":  # the first step, same weights and batch: the flicker term only adds
        assert weighted[0] > plain[0]
        with pytest.raises(KinetoscopeError, match="temporal_weight -1.0 must be at least 0"):
            DiTTrainConfig(temporal_weight=-1.0)


def test_a_shared_noise_run_trains_and_samples_on_its_own_noise(world, one, capsys):
    """noise_shared: the run trains on mixed noise (same batches, other losses) and records it, and the pipeline
    samples a model of it from that noise (with the same weights only the noise differs); a share of 1 is refused
    in one line."""
    from kinetoscope.cli import main

    config = world.parent / "shared.json"
    config.write_text(json.dumps({**asdict(PRESETS["tiny"]), "noise_shared": 0.5}))
    run = world.parent / "shared"
    _train(world, run, 1, config=str(config))
    shared, plain = _losses(run), _losses(one)
    assert len(shared) == len(plain) and all(np.isfinite(shared)) and shared != plain
    a, b = Pipeline(one), Pipeline(run)
    assert (a.noise_shared, b.noise_shared) == (0.0, 0.5)
    b.dit.load_state_dict(a.dit.state_dict())
    req = Request("a red ball rolls left", 64, 64, 9, 16, seed=0, steps=2)
    assert not torch.equal(a.sample(req, progress=False), b.sample(req, progress=False))
    b.noise_shared = 0.0
    assert torch.equal(a.sample(req, progress=False), b.sample(req, progress=False))
    config.write_text(json.dumps({**asdict(PRESETS["tiny"]), "noise_shared": 1.0}))
    assert main(["train", "dit", "--config", str(config), "--data", str(world), "-o", str(world.parent / "x")]) == 2
    assert "noise_shared 1.0 must be in [0, 1)" in capsys.readouterr().err


def test_fsdp_is_refused_for_the_vae(world, capsys):
    from kinetoscope.cli import main

    assert main(["train", "vae", "--config", "tiny", "--data", str(world), "-o", "/tmp/x", "--parallel", "fsdp"]) == 2
    assert "for the DiT" in capsys.readouterr().err


def test_the_gpu_check_script_runs_its_path_on_the_cpu(world):
    """scripts/gpu_check.sh with CPU=1: the same torchrun + FSDP + report path, tiny preset, on this machine's
    world (no GPU was ever lent to run it for real; its CUDA lines are the only ones this does not reach)."""
    env = {**os.environ, "CPU": "1", "WORK": str(world.parent), "PY": sys.executable, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(["bash", "scripts/gpu_check.sh", "3"], cwd=Path(__file__).parents[1], env=env,
                       capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert "steps 3," in r.stdout and "samples/s" in r.stdout and "MFU" in r.stdout
