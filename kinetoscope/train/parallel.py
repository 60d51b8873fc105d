"""Parallelism applied to a finished model from outside it (after torchtitan): DDP, or FSDP2 with per-block
sharding, activation checkpointing and bf16 mixed precision, and sharded checkpoints that resume on any number of
processes.

    model = parallelize(dit, d, "fsdp", checkpointing=True)   # d: the Dist of setup_distributed()
    save_sharded(run, step, model, opt)                        # every rank writes its shards (torch.distributed.checkpoint)
    step = load_sharded(run, model, opt)                       # any world size: DCP reshards on load
    weights = full_weights(model)                              # every rank calls; the full fp32 state dict on rank 0

FSDP2 (``torch.distributed.fsdp.fully_shard``) shards each transformer block's parameters, gradients and optimizer
state over the ranks of a 1-D device mesh and gathers a block's parameters just before it runs; the model itself
knows nothing about it. On CPU (gloo) it is the same code that runs on GPUs (NCCL), which is how the tests check it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
from torch.nn.parallel import DistributedDataParallel as DDP

from kinetoscope.errors import KinetoscopeError

MODES = ("ddp", "fsdp")
SHARDED = "sharded"  # the folder of DCP checkpoints inside a run
LATEST = "latest.json"


def parallelize(model: nn.Module, world: int, mode: str = "ddp", checkpointing: bool = False) -> nn.Module:
    """Wrap ``model`` (a DiT: its blocks are ``model.blocks``) for ``world`` processes in ``mode``."""
    if mode not in MODES:
        raise KinetoscopeError(f"parallel {mode!r} is not one of {', '.join(MODES)}")
    if checkpointing:
        checkpoint_blocks(model)
    if mode == "ddp":
        return DDP(model) if world > 1 else model
    cuda = torch.cuda.is_available()
    if not dist.is_initialized():  # one process without torchrun: FSDP still wants a (one-rank) process group
        dist.init_process_group("nccl" if cuda else "gloo", store=dist.HashStore(), rank=0, world_size=1)
    mesh = init_device_mesh("cuda" if cuda else "cpu", (world,))
    # On GPU FSDP casts parameters to bf16 for compute and reduces gradients in fp32; on CPU the loop's autocast
    # does the bf16 compute and FSDP keeps fp32 (its mixed-precision casts target accelerators).
    policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if cuda else \
        MixedPrecisionPolicy()  # fmt: skip
    for block in model.blocks:
        fully_shard(block, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    return model


def checkpoint_blocks(model: nn.Module) -> None:
    """Recompute each block's activations in the backward pass instead of keeping them: memory for compute."""
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

    model.blocks = nn.ModuleList([checkpoint_wrapper(b) for b in model.blocks])


def save_sharded(run: Path, step: int, model: nn.Module, opt: torch.optim.Optimizer) -> Path:
    """Every rank writes its shards of the model and optimizer under run/sharded/step-N; rank 0 then points
    latest.json at it (written last and atomically, so a killed save resumes from the previous checkpoint)."""
    folder = run / SHARDED / f"step-{step:08d}"
    model_sd, optim_sd = get_state_dict(model, opt)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(folder))
    if dist.is_initialized():
        dist.barrier()
    if not dist.is_initialized() or dist.get_rank() == 0:
        tmp = run / SHARDED / f".{LATEST}.tmp"
        tmp.write_text(json.dumps({"step": step, "folder": folder.name, "world": _world()}) + "\n")
        os.replace(tmp, run / SHARDED / LATEST)
        for old in (run / SHARDED).glob("step-*"):
            if old.name != folder.name:
                shutil.rmtree(old, ignore_errors=True)
    return folder


def load_sharded(run: Path, model: nn.Module, opt: torch.optim.Optimizer) -> int:
    """Load the latest sharded checkpoint into ``model`` and ``opt`` on any number of ranks; return its step."""
    latest = run / SHARDED / LATEST
    if not latest.exists():
        raise KinetoscopeError(f"{run}: no sharded checkpoint to resume from ({SHARDED}/{LATEST})")
    info = json.loads(latest.read_text())
    model_sd, optim_sd = get_state_dict(model, opt)
    state = {"model": model_sd, "optim": optim_sd}
    dcp.load(state, checkpoint_id=str(run / SHARDED / info["folder"]))
    set_state_dict(model, opt, model_state_dict=state["model"], optim_state_dict=state["optim"])
    return int(info["step"])


def full_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole model's fp32 weights, gathered from the shards (a collective: every rank calls it); plain names,
    as an unsharded model would have them, so inference loads them unchanged."""
    return plain(get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)))


def plain(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict with the activation-checkpoint wrapper's names taken out: what an unwrapped model loads."""
    return {k.replace("._checkpoint_wrapped_module", ""): v for k, v in state.items()}


def _world() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1
