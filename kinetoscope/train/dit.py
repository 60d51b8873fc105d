"""`kinetoscope train dit`: the diffusion transformer's training loop, on the latent cache.

Each step draws one bucket (latent frames x height x width: sizes, aspect ratios and durations, images as 1-frame
clips in the same run) with probability proportional to its clips, and a global batch sized to a token budget. Every
sample's caption choice (terse or detailed), caption dropout (for guidance), noise level, noise and given-frame mask
(none, first, prefix, suffix, first+last: the conditioning every mode uses) are a pure function of
(seed, step, sample index). So a killed run resumes to the same losses, and torchrun with N ranks, each taking a
1/N slice of the global batch, computes the same per-sample losses as one process (DDP averages the gradients of the
per-rank means of per-sample losses: the same mean). The learning rate warms up and decays to zero at the last step,
which DESIGN.md §8 measured better than EMA for runs this short.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from kinetoscope.data.latents import CAPTION_KINDS, LatentCache, build_cache, cache_dir, join_caches, load_cache
from kinetoscope.diffusion.flow import TrainingExample, resolution_shift, sample_given, training_example, training_loss
from kinetoscope.errors import KinetoscopeError
from kinetoscope.models.dit import PRESETS as MODEL_PRESETS
from kinetoscope.models.dit import DiT, flops_per_token
from kinetoscope.train.common import (
    MetricsLog,
    all_reduce_mean,
    init_weights,
    load_checkpoint,
    lr_at,
    save_checkpoint,
    setup_distributed,
    teardown_distributed,
    train_config,
    training_device,
)
from kinetoscope.train.parallel import full_weights, load_sharded, parallelize, plain, save_sharded
from kinetoscope.train.peak import matmul_peak
from kinetoscope.train.plot import plot_metrics


@dataclass(frozen=True)
class DiTTrainConfig:
    model: str = "small"  # a preset of models/dit.py
    steps: int = 4000
    lr: float = 6e-4
    warmup: int = 200
    weight_decay: float = 0.0
    tokens: int = 6144  # global batch budget in DiT tokens; batch = tokens // tokens per clip (even, at least 2)
    max_batch: int = 64
    caption_dropout: float = 0.1  # share of captions replaced by "" (the unconditional embedding for guidance)
    detailed: float = 0.5  # share of captions that are the detailed kind (the rest terse)
    given: dict = field(default_factory=lambda: {"none": 0.5, "first": 0.2, "prefix": 0.1, "suffix": 0.1,
                                                 "first_last": 0.1})
    t_mean: float = 0.0  # logit-normal timesteps
    t_std: float = 1.0
    motion_weight: float = 0.0  # loss weight on latent pixels that change between frames (flow.motion_weights)
    noise_shared: float = 0.0  # share of the noise common to all frames (flow.video_noise); sampling reads it too
    temporal_weight: float = 0.0  # weight of flow.temporal_loss: the error's change from frame to frame (flicker)
    seed: int = 0
    bf16: bool = True
    save_every: int = 250
    log_every: int = 10
    parallel: str = "ddp"  # ddp | fsdp (train/parallel.py); fsdp checkpoints are sharded and resume on any world size
    checkpointing: bool = False  # activation checkpointing per block: memory for compute

    def __post_init__(self) -> None:
        if not 0.0 <= self.noise_shared < 1.0:
            raise KinetoscopeError(f"noise_shared {self.noise_shared} must be in [0, 1)")
        if self.temporal_weight < 0:
            raise KinetoscopeError(f"temporal_weight {self.temporal_weight} must be at least 0")


PRESETS = {
    "tiny": DiTTrainConfig(model="tiny", steps=6, tokens=256, max_batch=8, warmup=2, save_every=3, log_every=1),
    "small": DiTTrainConfig(),
}


def tokens_of(cfg_model, bucket: tuple[int, int, int]) -> int:
    p = cfg_model.patch
    return (bucket[0] // p[0]) * (bucket[1] // p[1]) * (bucket[2] // p[2])


def plan_step(cfg: DiTTrainConfig, buckets: dict[tuple, list[int]], tokens: dict[tuple, int], step: int
              ) -> tuple[tuple, list[int]]:
    """The step's bucket and global batch of clip indices: a pure function of (seed, step)."""
    rng = np.random.default_rng([cfg.seed, step, 11])
    keys = sorted(buckets)
    p = np.array([len(buckets[k]) for k in keys], float)
    key = keys[rng.choice(len(keys), p=p / p.sum())]
    batch = max(2, min(cfg.max_batch, cfg.tokens // tokens[key]) // 2 * 2)
    items = buckets[key]
    picks = rng.choice(len(items), size=batch, replace=len(items) < batch)
    return key, [items[j] for j in picks]


def make_batch(cfg: DiTTrainConfig, cache: LatentCache, clips: list[int], step: int, offset: int, shift: float):
    """Inputs and targets for clips (the rank's slice starting at global sample `offset`), each sample seeded by
    (seed, step, its global index)."""
    xs, ts, targets, givens, picks = [], [], [], [], []
    for j, i in enumerate(clips):
        seed = int(np.random.default_rng([cfg.seed, step, offset + j, 5]).integers(2**62))
        gen = torch.Generator().manual_seed(seed)
        r = torch.rand(2, generator=gen)
        kind = None if r[0] < cfg.caption_dropout else CAPTION_KINDS[1] if r[1] < cfg.detailed else CAPTION_KINDS[0]
        picks.append((i, kind))
        z = cache.z[i][None]  # (1, C, T', H', W')
        given = sample_given(1, z.shape[2], gen, cfg.given)  # (1, T')
        ex = training_example(z, gen, given=given, mean=cfg.t_mean, std=cfg.t_std, shift=shift,
                              shared=cfg.noise_shared)
        xs.append(ex.x_t), ts.append(ex.t_frames), targets.append(ex.target), givens.append(ex.given)
    return torch.cat(xs), torch.cat(ts), cache.text(picks), torch.cat(targets), torch.cat(givens)


def on(x, device: torch.device):
    """A tensor, or a TextEmbedding's tensors, on ``device`` (a no-op on the CPU)."""
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=True)
    return type(x)(*(t.to(device, non_blocking=True) for t in (x.tokens, x.mask, x.pooled)))


def prepare_cache(data: Sequence[str | Path], vae_dir: str | Path, progress: bool = True) -> tuple[LatentCache, str]:
    """Load (building each first if needed) the latent caches of the data sets DATA for the VAE in VAE_DIR, joined in
    the order given, and the caches' folder name (the same in every data set: it names the VAE)."""
    from kinetoscope.train.vae import load_vae

    vae = load_vae(vae_dir)
    caches = []
    for root in data:
        folder = cache_dir(Path(root), vae)
        if not (folder / "index.json").exists():
            build_cache(root, vae, progress=progress)
        caches.append(load_cache(root, folder))
    return join_caches(caches), folder.name


def train_dit(cfg: DiTTrainConfig, data: str | Path | Sequence[str | Path], vae_dir: str | Path, run: str | Path,
              resume: bool = False, progress: bool = True, init: str | Path | None = None) -> dict:
    """Train (or resume) a DiT into RUN on the latents of DATA (one data set, or several mixed clip by clip) under the
    VAE in VAE_DIR, from scratch or from INIT's weights; returns the last metrics."""
    run = Path(run)
    data = [str(data)] if isinstance(data, (str, Path)) else [str(p) for p in data]
    d = setup_distributed()
    if d.main:
        cache, cache_name = prepare_cache(data, vae_dir, progress)
    if d.world > 1:
        torch.distributed.barrier()  # rank 0 builds the cache; the others load it when it is finished
    if not d.main:
        cache, cache_name = prepare_cache(data, vae_dir, progress=False)
    torch.manual_seed(cfg.seed)
    model_cfg = replace(MODEL_PRESETS[cfg.model], latent=cache.z[0].shape[0])
    device = training_device()
    dit = DiT(model_cfg)
    if init is not None and not resume:
        init_weights(init, dit)
    dit.to(device)
    sharded = cfg.parallel == "fsdp"
    if sharded:  # FSDP2: shard first, then build the optimizer over the sharded parameters
        model = parallelize(dit, d.world, "fsdp", cfg.checkpointing)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=cfg.weight_decay)
        start = load_sharded(run, model, opt) if resume else 0
    else:
        opt = torch.optim.AdamW(dit.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=cfg.weight_decay)
        start = 0
        if resume:
            state = load_checkpoint(run, dit)
            opt.load_state_dict(state["optimizer"])
            start = state["step"]
        model = parallelize(dit, d.world, "ddp", cfg.checkpointing)
    buckets: dict[tuple, list[int]] = {}
    for i in range(len(cache)):
        buckets.setdefault(cache.bucket(i), []).append(i)
    tokens = {k: tokens_of(model_cfg, k) for k in buckets}
    peak = matmul_peak(device=str(device))
    config = {"kind": "dit", "model": asdict(model_cfg), "train": asdict(cfg),
              "data": data[0] if len(data) == 1 else data,
              "vae": str(vae_dir), "latents": cache_name,
              "init": None if init is None else str(init), "fps": sorted({r.fps for r in cache.records})}
    log = MetricsLog(run, d.main, start if resume else None)
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="train dit", disable=not (progress and d.main))
    last: dict = {}
    for step in bar:
        t0 = time.time()
        key, clips = plan_step(cfg, buckets, tokens, step)
        if len(clips) % d.world:
            raise KinetoscopeError(f"global batch {len(clips)} does not split over {d.world} ranks")
        per = len(clips) // d.world
        mine = clips[d.rank * per : (d.rank + 1) * per]
        shift = resolution_shift(tokens[key])
        x_t, t, txt, target, given = (on(v, device) for v in make_batch(cfg, cache, mine, step, d.rank * per, shift))
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg.steps, cfg.lr, cfg.warmup)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            v = model(x_t, t, txt)
        loss = training_loss(v, TrainingExample(x_t, t, target, given), cfg.motion_weight, cfg.temporal_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        grad_norm = grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm  # FSDP: a DTensor
        opt.step()
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            sec = time.time() - t0
            tok_s = len(clips) * tokens[key] / sec
            last = {"step": done, "loss": float(all_reduce_mean(loss.detach(), d)), "lr": opt.param_groups[0]["lr"],
                    "grad_norm": float(grad_norm), "bucket": list(key), "batch": len(clips), "sec": sec,
                    "samples_per_s": len(clips) / sec, "tokens_per_s": tok_s,
                    "mfu": 3 * flops_per_token(model_cfg, tokens[key]) * tok_s / peak}
            if device.type == "cuda":
                last["max_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
            log.write(**last)
            bar.set_postfix(loss=f"{last['loss']:.4f}", sps=f"{last['samples_per_s']:.1f}", mfu=f"{last['mfu']:.0%}")
        if done == 1 or done % cfg.save_every == 0 or done == cfg.steps:
            if sharded:  # every rank writes its shards; rank 0 also the gathered weights for inference
                save_sharded(run, done, model, opt)
                weights = full_weights(model)
                if d.main:
                    save_checkpoint(run, weights, config, {"step": done, "sharded": True})
            elif d.main:
                save_checkpoint(run, plain(dit.state_dict()), config, {"step": done, "optimizer": opt.state_dict()})
        if d.world > 1:
            torch.distributed.barrier()
    if d.main:
        plot_metrics(run)
    teardown_distributed()
    return last


def dit_train_config(name_or_path: str, **overrides) -> DiTTrainConfig:
    """A preset by name, or a JSON file of DiTTrainConfig fields (over the small preset); CLI overrides on top."""
    return train_config(PRESETS, name_or_path, **overrides)
