"""`kinetoscope train dit`: the diffusion transformer's training loop, on the latent cache.

Each step draws one bucket (latent frames x height x width: sizes, aspect ratios and durations, images as 1-frame
clips in the same run) with probability proportional to its clips, and a global batch sized to a token budget. Every
sample's caption choice (terse or detailed), caption dropout (for guidance), noise level, noise and given-frame mask
(none, first, prefix, suffix, first+last: the conditioning every mode uses) are a pure function of
(seed, step, sample index). So a killed run resumes to the same losses, and torchrun with N ranks, each taking a
1/N slice of the global batch, computes the same per-sample losses as one process (DDP averages the gradients of the
per-rank means of per-sample losses: the same mean). The learning rate warms up and decays to zero at the last step,
which DESIGN.md §8 measured better than EMA for runs this short. With `contrast_weight`, samples whose caption names a
direction run a second time, in the same forward, under the caption with its directions swapped (`WrongCaptions`),
and `flow.contrast_loss` asks the first to explain the clip better.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from kinetoscope.data.latents import (
    CAPTION_KINDS,
    LatentCache,
    build_cache,
    cache_dir,
    caption_of,
    join_caches,
    load_cache,
    pad_tokens,
)
from kinetoscope.diffusion.flow import (
    TrainingExample,
    contrast_loss,
    loss_weights,
    resolution_shift,
    sample_given,
    training_example,
    training_loss,
)
from kinetoscope.errors import KinetoscopeError
from kinetoscope.models.dit import PRESETS as MODEL_PRESETS
from kinetoscope.models.dit import DiT, flops_per_token
from kinetoscope.models.text import TextEmbedding, TextEncoder
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
from kinetoscope.world.captions import swap_directions


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
    contrast_weight: float = 0.0  # weight of flow.contrast_loss: each caption against it with directions swapped
    contrast_scale: float = 0.05  # the loss gap (a share of the loss) at which the contrast counts a word as read
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
        if self.contrast_weight < 0 or self.contrast_scale <= 0:
            raise KinetoscopeError(f"contrast_weight {self.contrast_weight} must be at least 0 and contrast_scale "
                                   f"{self.contrast_scale} above 0")  # fmt: skip


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
    return torch.cat(xs), torch.cat(ts), cache.text(picks), torch.cat(targets), torch.cat(givens), picks


class WrongCaptions:
    """The contrast term's wrong captions: a sample's caption (of the kind drawn) with its directions swapped
    (`swap_directions`), encoded on first use and kept, at the cache's fp16 precision so that nothing but the words
    tells them from the right ones."""

    def __init__(self, cache: LatentCache, text: TextEncoder | None = None):
        self.cache, self.text, self.known = cache, text or TextEncoder(), {}

    def __call__(self, picks: list[tuple[int, str | None]]) -> tuple[list[int], TextEmbedding | None]:
        """The rows of PICKS whose caption names a direction, and their wrong captions (None where no row does)."""
        rows, wrong = [], []
        for j, (i, kind) in enumerate(picks):
            caption = "" if kind is None else caption_of(self.cache.records[i], kind)
            swapped = swap_directions(caption)
            if swapped != caption:
                rows.append(j), wrong.append(swapped)
        new = sorted(set(wrong) - set(self.known))
        if new:
            emb = self.text(new)
            for k, caption in enumerate(new):
                self.known[caption] = (emb.tokens[k][emb.mask[k]].half().float(), emb.pooled[k])
        if not rows:
            return rows, None
        toks, pooled = zip(*(self.known[w] for w in wrong), strict=True)
        return rows, pad_tokens(list(toks), torch.stack(pooled))


def with_wrong_captions(batch: tuple, wrong: WrongCaptions | None) -> tuple:
    """A `make_batch` batch (x_t, t, txt, target, given, picks) -> (x_t, t, txt, target, given, rows): the rows whose
    caption names a direction are appended again to x_t, t and txt under their wrong captions, so that one forward
    (DDP and FSDP allow one a step) gives both; rows is [] without `wrong`."""
    x_t, t, txt, target, given, picks = batch
    rows, other = wrong(picks) if wrong else ([], None)
    if rows:
        x_t, t, txt = torch.cat([x_t, x_t[rows]]), torch.cat([t, t[rows]]), TextEmbedding.cat([txt, other])
    return x_t, t, txt, target, given, rows


def step_loss(cfg: DiTTrainConfig, v: Tensor, x_t: Tensor, t: Tensor, target: Tensor, given: Tensor, rows: list[int]
              ) -> tuple[Tensor, Tensor]:
    """The loss of one forward over a `with_wrong_captions` batch (its first len(target) rows the samples, then
    `rows` again under wrong captions), and the contrast's (K,) costs. The contrast is summed over the rows and
    divided by the batch, so N ranks, each with its share, still average to one process's loss."""
    b = len(target)
    ex = TrainingExample(x_t[:b], t[:b], target, given)
    loss = training_loss(v[:b], ex, cfg.motion_weight, cfg.temporal_weight)
    if not rows:
        return loss, torch.zeros(0, device=v.device)
    w = loss_weights(ex, cfg.motion_weight)
    costs = contrast_loss(v[rows], v[b:], target[rows], given[rows], None if w is None else w[rows],
                          cfg.contrast_scale)  # fmt: skip
    return loss + cfg.contrast_weight * costs.sum() / b, costs


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
    contrast = WrongCaptions(cache) if cfg.contrast_weight else None
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
        batch = with_wrong_captions(make_batch(cfg, cache, mine, step, d.rank * per, shift), contrast)
        x_t, t, txt, target, given = (on(v, device) for v in batch[:5])
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg.steps, cfg.lr, cfg.warmup)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            v = model(x_t, t, txt)
        loss, costs = step_loss(cfg, v, x_t, t, target, given, batch[5])
        if contrast:  # for the log: the costs' sum and count (log 2 a row while the words are unread, 0 once read)
            tally = torch.stack([costs.detach().sum(), torch.tensor(float(len(costs)), device=device)])
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
            if contrast:
                total, count = (all_reduce_mean(tally, d) * d.world).tolist()
                last |= {"contrast": total / count if count else None, "contrasted": round(count)}
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
