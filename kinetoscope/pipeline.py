"""The one entry to generation (DESIGN.md §1): prompt and request in, frames out.

``Pipeline`` holds the text encoder, the VAE and the DiT. It builds the velocity the samplers integrate: the DiT
with every latent frame's own noise level, classifier-free guidance (cond and uncond in one batched forward), and
given frames held clean. The CLI, the server and the studio apps build a ``Request`` and call ``generate``; none of
them touches the models or the samplers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor
from tqdm import tqdm

from kinetoscope.diffusion.flow import resolution_shift, schedule
from kinetoscope.diffusion.guidance import classifier_free
from kinetoscope.diffusion.samplers import SAMPLERS, given_frames
from kinetoscope.errors import KinetoscopeError, SizeError
from kinetoscope.models.dit import DiT, DiTConfig
from kinetoscope.models.text import TextEmbedding, TextEncoder, check_prompt
from kinetoscope.models.vae_stream import StreamConfig, decode_stream
from kinetoscope.sizes import SPATIAL_MULTIPLE, parse_aspect, round_size
from kinetoscope.train.common import CONFIG_FILE, MODEL_FILE
from kinetoscope.train.vae import load_vae

BUNDLED = Path(__file__).parent / "weights"
DEFAULT_SHORT_SIDE = 64  # the bundled model's training size; other sizes work, less well


@dataclass(frozen=True)
class Request:
    """What to generate. Sizes off the grid are rounded with a warning; sizes past the limits are refused."""

    prompt: str
    width: int = 64
    height: int = 112  # vertical 9:16 by default: our users make short dramas
    frames: int = 33
    fps: float = 16.0
    seed: int = 0
    steps: int = 20
    guidance: float = 4.0
    sampler: str = "euler"


@dataclass(frozen=True)
class Video:
    frames: np.ndarray  # uint8 (T, H, W, 3)
    fps: float


def size_for(aspect: str | None = None, size: str | None = None, short: int = DEFAULT_SHORT_SIDE) -> tuple[int, int]:
    """(width, height) from `--size WxH` or `--aspect W:H` (short side `short`); vertical 9:16 by default."""
    if size:
        w, sep, h = size.lower().partition("x")
        if not sep or not w.strip().isdigit() or not h.strip().isdigit():
            raise SizeError(f"size {size!r} is not WIDTHxHEIGHT, e.g. 64x112")
        return int(w), int(h)
    ratio = parse_aspect(aspect or "9:16")  # width / height
    long = round(short * max(ratio, 1 / ratio) / SPATIAL_MULTIPLE) * SPATIAL_MULTIPLE  # on the grid: no warning
    return (short, long) if ratio < 1 else (long, short)


def frames_for(seconds: float | None, frames: int | None, fps: float) -> int:
    """The frame count from --frames, or --seconds at --fps (1 + fps x seconds, rounded onto the grid later)."""
    if frames is not None:
        return frames
    if seconds is None:
        return 33
    if seconds < 0:
        raise SizeError(f"--seconds {seconds} must be positive")
    return 1 + round(fps * seconds)


def read_folder(folder: Path) -> tuple[dict, dict[str, Tensor]]:
    """config.json and the fp32 weights of a model folder (bundled fp16 or a training run)."""
    if not (folder / CONFIG_FILE).exists() or not (folder / MODEL_FILE).exists():
        raise KinetoscopeError(f"{folder}: not a model folder ({CONFIG_FILE} + {MODEL_FILE} expected)")
    config = json.loads((folder / CONFIG_FILE).read_text())
    return config, {k: v.float() for k, v in load_file(str(folder / MODEL_FILE)).items()}


def model_folders(model: str | Path | None) -> tuple[Path, Path]:
    """(dit folder, vae folder) of a bundle (DIR/dit, DIR/vae) or of a DiT training run (its config names its VAE)."""
    root = Path(model) if model else BUNDLED
    if (root / "dit").is_dir() and (root / "vae").is_dir():
        return root / "dit", root / "vae"
    if (root / CONFIG_FILE).exists():
        config = json.loads((root / CONFIG_FILE).read_text())
        if config.get("kind") == "dit":
            vae = Path(config["vae"])
            return root, vae if vae.is_absolute() or not (root / vae).exists() else (root / vae).resolve()
    hint = " (the bundled weights are missing: is this a complete checkout?)" if model is None else ""
    raise KinetoscopeError(f"{root}: no model here; give a bundle folder (dit/ + vae/) or a DiT run{hint}")


def export_bundle(dit_run: str | Path, vae_run: str | Path, out: str | Path, card: str | None = None) -> Path:
    """Write a bundle (OUT/dit, OUT/vae) with fp16 weights from two training runs: what ships in weights/."""
    out = Path(out)
    for name, src in (("dit", Path(dit_run)), ("vae", Path(vae_run))):
        config, weights = read_folder(src)
        if name == "dit":
            config["vae"] = "../vae"
        (out / name).mkdir(parents=True, exist_ok=True)
        save_file({k: v.half().contiguous() for k, v in weights.items()}, str(out / name / MODEL_FILE))
        (out / name / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        for f in (MODEL_FILE, CONFIG_FILE):
            (out / name / f).chmod(0o644)  # safetensors writes 0600; shipped files are world-readable
    return out


class Pipeline:
    """Text encoder + VAE + DiT, loaded once; `generate` is the only way to make a video."""

    def __init__(self, model: str | Path | None = None, text: TextEncoder | None = None):
        dit_dir, vae_dir = model_folders(model)
        dit_config, dit_weights = read_folder(dit_dir)
        self.vae = load_vae(vae_dir)
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in dit_config["model"].items()}
        self.dit = DiT(DiTConfig(**fields)).eval()
        self.dit.load_state_dict(dit_weights)
        self.config = dit_config
        self.text = text or TextEncoder()

    def latent_shape(self, height: int, width: int, frames: int) -> tuple[int, int, int, int]:
        """(C, T', H', W') of the latent for a clip of this size."""
        v = self.vae.cfg
        return (v.latent, 1 + (frames - 1) // v.time_factor, height // v.space_factor, width // v.space_factor)

    def encode_text(self, prompt: str) -> TextEmbedding:
        """[cond, uncond] embeddings of the prompt, padded together for one batched forward."""
        return self.text([check_prompt(prompt), ""])

    @torch.no_grad()
    def generate(self, req: Request, given: Tensor | None = None, given_latent: Tensor | None = None,
                 progress: bool = True) -> Video:
        """Sample a clip for the request. `given_latent` (1, C, T', H', W') with the bool mask `given` (1, T')
        holds frames fixed (the modes issue builds on this); None generates everything."""
        if req.sampler not in SAMPLERS:
            raise KinetoscopeError(f"sampler {req.sampler!r} is not one of {', '.join(SAMPLERS)}")
        if req.steps < 1 or req.steps > 1000:
            raise KinetoscopeError(f"--steps {req.steps} must be between 1 and 1000")
        height, width, frames = round_size(req.height, req.width, req.frames)
        txt = self.encode_text(req.prompt)
        shape = self.latent_shape(height, width, frames)
        gen = torch.Generator().manual_seed(req.seed)
        x = torch.randn((1, *shape), generator=gen)  # (1, C, T', H', W')
        if given is None:
            given = torch.zeros(1, shape[1], dtype=torch.bool)
        elif given_latent is not None:
            x = torch.where(given[:, None, :, None, None], given_latent, x)
        p = self.dit.cfg.patch
        tokens = (shape[1] // p[0]) * (shape[2] // p[1]) * (shape[3] // p[2])
        ts = schedule(req.steps, resolution_shift(tokens))
        given2 = given.repeat(2, 1)  # (2, T') for the doubled batch

        def batched(x2: Tensor, t: Tensor) -> Tensor:
            t_frames = torch.where(given2, 0.0, t.float().expand(2, shape[1]))  # (2, T')
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return self.dit(x2, t_frames, txt).float()

        velocity = given_frames(classifier_free(batched, req.guidance), given)
        bar = tqdm(total=req.steps, desc="sampling", disable=not progress, leave=False)
        z = SAMPLERS[req.sampler](velocity, x, ts, lambda i, _: bar.update(1))
        bar.close()
        out = np.stack(list(decode_stream(self.vae, z, StreamConfig(bf16=True))))  # (T, H, W, 3)
        return Video(out, req.fps)

