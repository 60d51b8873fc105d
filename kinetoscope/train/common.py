"""What every training loop shares: distributed set-up, the LR schedule, checkpoints that resume exactly, logging.

All training state is explicit and saved together (after torchtitan): model weights (safetensors, fp32) with the
config that rebuilds the model, and a separate state file with optimizer, step, and anything else the loop needs to
continue exactly (data position, RNG). A first checkpoint is written at step 1, so a broken checkpointer fails fast.
Parallelism is applied from outside the model: the loop wraps a finished model in DDP when torchrun started it.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import nn

from kinetoscope.data.shards import atomic_write_text
from kinetoscope.errors import KinetoscopeError

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
STATE_FILE = "state.pt"
METRICS_FILE = "metrics.jsonl"
GLOO_DRAIN_S = 0.5  # teardown_distributed: time for gloo's threads to free the last collective before the group goes


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Dist:
    """Join the process group when torchrun started us (gloo on CPU, NCCL on GPU); a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    # torchrun gives each process all cores; split them so ranks do not oversubscribe the CPU
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world))))
    return Dist(dist.get_rank(), dist.get_world_size())


def training_device() -> torch.device:
    """This rank's GPU when there is one (torchrun's LOCAL_RANK), else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def teardown_distributed() -> None:
    """Leave the process group, after a pause that lets gloo's threads finish with the last collective.

    A gloo thread frees a finished collective's work after the caller has moved on, and freeing it can drop the last
    reference to a Python tensor, which needs the GIL. A rank that went straight on to free the process group (DDP's
    reducer holds it) joined those threads while holding the GIL, so both waited forever: gdb showed
    ~ProcessGroupGloo in join and a pt_gloo_runloop thread in take_gil, in 1 of 23 two-rank runs here and on CI.
    The sleep releases the GIL so the thread can finish. It makes the race rare rather than impossible.
    """
    if dist.is_initialized():
        time.sleep(GLOO_DRAIN_S)
        dist.destroy_process_group()


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warmup, then cosine decay to zero at the last step: short runs end fully annealed."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * 0.5 * (1 + math.cos(math.pi * progress))


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def save_checkpoint(run: Path, model: nn.Module | dict[str, torch.Tensor], config: dict, state: dict) -> None:
    """Write weights (a model's, or a gathered state dict) + config + training state, each file atomically (temp file,
    then rename). A state that resumes (it carries the optimizer) holds its own copy of the weights: a run killed
    between the two renames would otherwise pair new weights with the old optimizer and step, and resume off by a few
    steps. model.safetensors is the copy inference reads."""
    run.mkdir(parents=True, exist_ok=True)
    weights = model if isinstance(model, dict) else unwrap(model).state_dict()
    tensors = {k: v.detach().contiguous().cpu() for k, v in weights.items()}
    tmp = run / f".{MODEL_FILE}.tmp"
    save_file(tensors, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, run / MODEL_FILE)
    atomic_write_text(run / CONFIG_FILE, json.dumps(config, indent=2))
    tmp = run / f".{STATE_FILE}.tmp"
    torch.save({**state, "model": tensors} if "optimizer" in state else state, tmp)
    os.replace(tmp, run / STATE_FILE)


def load_checkpoint(run: Path, model: nn.Module) -> dict:
    """Load the weights saved with the training state into `model` and return that state (weights, optimizer and step
    from one file, so they always belong together)."""
    if not (run / STATE_FILE).exists() or not (run / MODEL_FILE).exists():
        raise KinetoscopeError(f"{run}: no checkpoint to resume from ({MODEL_FILE} + {STATE_FILE})")
    state = torch.load(run / STATE_FILE, weights_only=False)
    unwrap(model).load_state_dict(state.pop("model") if "model" in state else load_file(str(run / MODEL_FILE)))
    return state


def init_weights(source: str | Path, model: nn.Module) -> None:
    """Start a new run from another run's (or a bundle folder's) weights: fine-tuning, a new schedule, no optimizer
    state. The architectures must match."""
    path = Path(source) / MODEL_FILE
    if not path.exists():
        raise KinetoscopeError(f"--init {source}: no {MODEL_FILE} there")
    weights = {k: v.float() for k, v in load_file(str(path)).items()}
    try:
        unwrap(model).load_state_dict(weights)
    except RuntimeError as e:
        raise KinetoscopeError(f"--init {source}: its weights do not fit this model ({str(e).splitlines()[0]})") from e


def read_config(run: Path) -> dict:
    path = run / CONFIG_FILE
    if not path.exists():
        raise KinetoscopeError(f"{run}: no {CONFIG_FILE}")
    return json.loads(path.read_text())


class MetricsLog:
    """Appends one JSON line per logged step to RUN/metrics.jsonl (rank 0 only); cut back to the checkpoint so a
    resumed run's log reads as one run."""

    def __init__(self, run: Path, main: bool, resume_step: int | None):
        self.path, self.main = run / METRICS_FILE, main
        if main:
            run.mkdir(parents=True, exist_ok=True)
        if main and resume_step is not None and self.path.exists():
            keep = [ln for ln in self.path.read_text().splitlines() if ln and json.loads(ln)["step"] <= resume_step]
            atomic_write_text(self.path, "".join(ln + "\n" for ln in keep))
        elif main and resume_step is None and self.path.exists():
            self.path.unlink()
        self.t0 = time.time()

    def write(self, **row: float) -> None:
        if self.main:
            with open(self.path, "a") as f:
                f.write(json.dumps(row) + "\n")


def all_reduce_mean(value: torch.Tensor, d: Dist) -> torch.Tensor:
    """Average a scalar tensor over ranks (for logging identical numbers on every rank)."""
    if d.world > 1:
        value = value.detach().clone()
        dist.all_reduce(value)
        value /= d.world
    return value


def train_config(presets: Mapping[str, Any], name_or_path: str, parse: Mapping[str, Callable] | None = None,
                 **overrides: Any) -> Any:
    """A training config: a preset by name, or a JSON file of its fields over the "small" preset (lists become
    tuples; `parse` builds nested fields); then the CLI's overrides (None means keep)."""
    if name_or_path in presets:
        cfg = presets[name_or_path]
    elif Path(name_or_path).is_file():
        fields = json.loads(Path(name_or_path).read_text())
        for key, build in (parse or {}).items():
            if key in fields:
                fields[key] = build(fields[key])
        try:
            cfg = replace(presets["small"], **{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
        except TypeError as e:
            raise KinetoscopeError(f"{name_or_path}: {e}") from None
    else:
        raise KinetoscopeError(f"config {name_or_path!r} is neither a preset ({', '.join(presets)}) nor a JSON file")
    return replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
