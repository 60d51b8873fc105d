"""`kinetoscope train vae`: the VAE's training loop.

Loss = L1 + w_ssim * (1 - SSIM) + w_temporal * L1 of frame steps + w_kl * KL, on fixed-size spacetime crops of world
clips, real footage and real photos (data/crops.py), images as 1-frame crops in the same run. bf16 autocast on CPU
(measured ~2x over fp32 here; fp16 is unusable on this CPU). Every batch and every sampled latent is a pure function
of (seed, step, rank), and the optimizer state is checkpointed with the weights, so a killed run resumes to the same
losses. Under torchrun each rank draws its own crops and DDP averages the gradients. `decoder_only` fine-tunes the
decoder of a trained VAE with its encoder frozen, so the latents (and a DiT trained on them) stay valid while
reconstructions sharpen.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from kinetoscope.data.crops import CropMix, CropSource
from kinetoscope.errors import KinetoscopeError
from kinetoscope.evaluate.quality import psnr, ssim_map
from kinetoscope.models.vae import PRESETS as MODEL_PRESETS
from kinetoscope.models.vae import VAE, VAEConfig
from kinetoscope.train.common import (
    MODEL_FILE,
    MetricsLog,
    all_reduce_mean,
    init_weights,
    load_checkpoint,
    lr_at,
    read_config,
    save_checkpoint,
    setup_distributed,
    teardown_distributed,
    train_config,
)


@dataclass(frozen=True)
class VAETrainConfig:
    model: str = "small"  # a preset of models/vae.py
    steps: int = 3000
    lr: float = 5e-4
    warmup: int = 100
    size: int = 64  # crop side in pixels
    frames: tuple[int, ...] = (1, 9, 17)  # crop durations, drawn per step
    frame_weights: tuple[float, ...] = (0.15, 0.6, 0.25)
    voxels: int = 6 * 9 * 64 * 64  # per rank and step: batch = voxels // (frames * size^2)
    w_ssim: float = 0.5
    w_kl: float = 1e-6
    w_temporal: float = 0.0  # L1 between frame steps (frame t+1 - frame t) of the reconstruction and of the input
    seed: int = 0
    bf16: bool = True
    decoder_only: bool = False  # fine-tune the decoder alone: the latent space (and any DiT trained on it) stays valid
    save_every: int = 250
    log_every: int = 10
    mix: CropMix = field(default_factory=CropMix)


PRESETS = {
    "tiny": VAETrainConfig(model="tiny", steps=6, size=32, frames=(1, 5), frame_weights=(0.3, 0.7), voxels=2 * 5 * 32 * 32,
                           save_every=3, log_every=1, warmup=2, mix=CropMix(world=0.7, real=0.1, photo_pan=0.1, photo=0.1)),
    "small": VAETrainConfig(),
}


def step_shape(cfg: VAETrainConfig, step: int) -> tuple[int, int]:
    """(frames, batch) of a step: the duration is drawn per step, the batch keeps voxels per step constant."""
    rng = np.random.default_rng([cfg.seed, step, 7])
    p = np.asarray(cfg.frame_weights, float)
    frames = int(cfg.frames[rng.choice(len(cfg.frames), p=p / p.sum())])
    return frames, max(1, cfg.voxels // (frames * cfg.size * cfg.size))


def vae_loss(cfg: VAETrainConfig, x: torch.Tensor, recon: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> dict:
    """The loss terms, in fp32. The temporal term matches the frame steps: per-pixel L1 alone let the decoder jump
    where one latent frame's four frames end and the next one's begin (every 4th step about 1.8x the others on the
    v2 VAE's round trips of world clips, a flicker even on a still scene); a 1-frame crop has no steps, so 0."""
    recon, mean, logvar = recon.float(), mean.float(), logvar.float()  # x, recon: (B, 3, T, H, W)
    l1 = (recon - x).abs().mean()
    structural = 1 - ssim_map(recon, x).mean()
    kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean()
    temporal = (recon.diff(dim=2) - x.diff(dim=2)).abs().mean() if x.shape[2] > 1 else recon.new_zeros(())
    loss = l1 + cfg.w_ssim * structural + cfg.w_temporal * temporal + cfg.w_kl * kl
    return {"loss": loss, "l1": l1, "ssim": 1 - structural, "temporal": temporal, "kl": kl}


def train_vae(cfg: VAETrainConfig, data: list[str | Path], run: str | Path, resume: bool = False, progress: bool = True,
              init: str | Path | None = None) -> dict:
    """Train (or resume) a VAE into RUN, from scratch or from INIT's weights; returns the final step's metrics."""
    run = Path(run)
    if cfg.decoder_only and init is None and not resume:
        raise KinetoscopeError("decoder_only fine-tunes a trained VAE's decoder: give --init RUN")
    d = setup_distributed()
    torch.manual_seed(cfg.seed)  # same initial weights on every rank
    vae = VAE(MODEL_PRESETS[cfg.model])
    vae.encoder.requires_grad_(not cfg.decoder_only)
    trained = vae.decoder.parameters() if cfg.decoder_only else vae.parameters()
    opt = torch.optim.AdamW(trained, lr=cfg.lr, betas=(0.9, 0.99), weight_decay=0.0)
    start = 0
    if resume:
        state = load_checkpoint(run, vae)
        opt.load_state_dict(state["optimizer"])
        start = state["step"]
    elif init is not None:
        init_weights(init, vae)
    model = DDP(vae) if d.world > 1 else vae
    source = CropSource([str(p) for p in data], "train", cfg.mix, cfg.seed)
    log = MetricsLog(run, d.main, start if resume else None)
    config = {"kind": "vae", "model": asdict(vae.cfg), "train": asdict(cfg), "data": [str(p) for p in data],
              "init": None if init is None else str(init)}
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="train vae", disable=not (progress and d.main))
    last: dict = {}
    for step in bar:
        t0 = time.time()
        frames, batch = step_shape(cfg, step)
        x = source.batch(step, d.rank, cfg.size, frames, batch)  # (B, 3, T, S, S)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg.steps, cfg.lr, cfg.warmup)
        gen = torch.Generator().manual_seed(int(np.random.default_rng([cfg.seed, step, d.rank]).integers(2**62)))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            recon, mean, logvar = model(x, generator=gen)
        terms = vae_loss(cfg, x, recon, mean, logvar)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            last = {k: float(all_reduce_mean(v.detach(), d)) for k, v in terms.items()}
            last.update(step=done, lr=opt.param_groups[0]["lr"], grad_norm=float(grad_norm), frames=frames,
                        psnr=psnr(recon.detach(), x), sec=time.time() - t0, clips_per_s=batch * d.world / (time.time() - t0))
            log.write(**last)
            bar.set_postfix(loss=f"{last['loss']:.4f}", psnr=f"{last['psnr']:.1f}")
        if d.main and (done == 1 or done % cfg.save_every == 0 or done == cfg.steps):
            save_checkpoint(run, vae, config, {"step": done, "optimizer": opt.state_dict()})
        if d.world > 1:
            torch.distributed.barrier()
    if d.main:
        if not cfg.decoder_only:  # a frozen encoder keeps the init's latent normalization
            calibrate_latents(vae, source, cfg)
        save_checkpoint(run, vae, config, {"step": cfg.steps, "optimizer": opt.state_dict()})
    teardown_distributed()
    return last


@torch.no_grad()
def calibrate_latents(vae: VAE, source: CropSource, cfg: VAETrainConfig, batches: int = 8) -> None:
    """Set the latent shift/scale so that latents of training crops have zero mean and unit variance per channel."""
    vae.shift.zero_()
    vae.scale.fill_(1.0)
    zs = []
    for i in range(batches):
        x = source.batch(10**9 + i, 0, cfg.size, 9 if 9 in cfg.frames else cfg.frames[-1], 4)
        zs.append(vae.encode(x).transpose(0, 1).flatten(1))  # (C, N)
    z = torch.cat(zs, dim=1)
    vae.shift.copy_(z.mean(1))
    vae.scale.copy_(z.std(1).clamp_min(1e-4))


def load_vae(run: str | Path) -> VAE:
    """A trained VAE from a run or weights folder (config.json + model.safetensors)."""
    run = Path(run)
    cfg = read_config(run)["model"]
    vae = VAE(VAEConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}))
    vae.load_state_dict({k: v.float() for k, v in load_file(str(run / MODEL_FILE)).items()})
    return vae.eval()


def vae_train_config(name_or_path: str, **overrides) -> VAETrainConfig:
    """A preset by name, or a JSON file of VAETrainConfig fields (over the small preset); CLI overrides on top
    (None means keep)."""
    return train_config(PRESETS, name_or_path, parse={"mix": lambda m: CropMix(**m)}, **overrides)
