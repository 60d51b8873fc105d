"""The one entry to generation (DESIGN.md §1): prompt and request in, frames out.

``Pipeline`` holds the text encoder, the VAE and the DiT. It builds the velocity the samplers integrate: the DiT
with every latent frame's own noise level, classifier-free guidance (cond and uncond in one batched forward), and
given frames held clean. The CLI, the server and the studio apps build a ``Request`` and call ``generate``; none of
them touches the models or the samplers.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor
from tqdm import tqdm

from kinetoscope.diffusion.flow import resolution_shift, schedule, video_noise
from kinetoscope.diffusion.edit import edit_mask, flow_edit
from kinetoscope.diffusion.guidance import classifier_free
from kinetoscope.diffusion.samplers import SAMPLERS, Velocity, given_frames
from kinetoscope.errors import KinetoscopeError, SizeError
from kinetoscope.evaluate.analyzer import loop_seam
from kinetoscope.media import fit_frames
from kinetoscope.models.dit import DiT, DiTConfig
from kinetoscope.models.text import TextEmbedding, TextEncoder, check_negative, check_prompt
from kinetoscope.models.vae_stream import StreamConfig, decode_stream, encode_stream
from kinetoscope.sizes import SPATIAL_MULTIPLE, parse_aspect, round_size
from kinetoscope.train.common import CONFIG_FILE, MODEL_FILE
from kinetoscope.train.vae import load_vae

BUNDLED = Path(__file__).parent / "weights"
TIME = 4  # pixel frames per latent frame (after the first): the VAE's time factor
WINDOW = 33  # the most frames one window samples: the bundled model's training length; longer videos roll
CONTEXT = 3  # latent frames (9 pixel frames) a window is given from the frames before it
PAD_LATENTS = 2  # still latent frames before a given suffix (see Pipeline.tail)
LOOP_SEAM = 1.5  # a loop is seamless when its wrap is at most this many median frame steps (analyzer.loop_seam)
EDIT_STRENGTH = 0.6  # SDEdit's t0: the clip's layout and motion survive, its details are redrawn
SOURCE_EDIT_STRENGTH = 0.8  # FlowEdit's t_max: higher than SDEdit's, as only the masked part moves (README, Modes)
EDIT_TARGET_GUIDANCE = 2.0  # FlowEdit: the target prompt's guidance over the source's (the paper's are 3-4x)
EDIT_MASK_THRESHOLD = 0.5  # share of each frame's largest prompt difference that an edited latent pixel reaches
HARMONIZE = 0.3  # a window continued from given frames is raised to this t again and denoised whole (README, Modes)
LOOP_TRIES = 3  # loops drawn at most (new seeds for the part that closes it) until one is seamless; the best is kept
# window(k, prefix frames, j given latent frames, n new frames, new frames before it) -> the window's frames
RollWindow = Callable[[int, np.ndarray, int, int, int], np.ndarray]
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
    shift: float | None = None  # the schedule's time shift (flow.shift_t); None: from the token count, as in training
    negative: str = ""  # what the video should not show: guidance pushes away from it instead of from no prompt
    harmonize: float = HARMONIZE  # t of the second, nothing-held pass of windows that continue given frames (0: none)


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


def fade(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross-fade frames (n, H, W, 3) from `a` into `b`: b's weight rises linearly to 1 at the last frame."""
    w = (np.arange(1, len(a) + 1, dtype=np.float32) / len(a))[:, None, None, None]  # (n, 1, 1, 1)
    return np.round((1 - w) * a + w * b).astype(np.uint8)


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
    export_part("dit", dit_run, out)
    export_part("vae", vae_run, out)
    return out


def export_part(name: str, run: str | Path, out: str | Path) -> None:
    """Write one part of a bundle, OUT/NAME ("dit" or "vae"), with fp16 weights from a training run."""
    config, weights = read_folder(Path(run))
    if name == "dit":
        config["vae"] = "../vae"
    folder = Path(out) / name
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.half().contiguous() for k, v in weights.items()}, str(folder / MODEL_FILE))
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    for f in (MODEL_FILE, CONFIG_FILE):
        (folder / f).chmod(0o644)  # safetensors writes 0600; shipped files are world-readable


def check_sampling(req: Request) -> None:
    """Refuse sampler settings no sampling can run with, naming the limit."""
    if req.sampler not in SAMPLERS:
        raise KinetoscopeError(f"sampler {req.sampler!r} is not one of {', '.join(SAMPLERS)}")
    if req.steps < 1 or req.steps > 1000:
        raise KinetoscopeError(f"--steps {req.steps} must be between 1 and 1000")
    if req.shift is not None and not 0.1 <= req.shift <= 20:
        raise KinetoscopeError(f"--shift {req.shift} must be between 0.1 and 20")
    if not 0.0 <= req.harmonize < 1.0:
        raise KinetoscopeError(f"--harmonize {req.harmonize} must be in [0, 1): the noise level a window is raised to")


@dataclass(frozen=True)
class Inputs:
    """What a mode starts from (DESIGN.md §3): frames held clean (given) or, for an edit, a clip to noise. None of
    them is text-to-video. Frames are uint8 (T, H, W, 3), any size: they are cropped and resized to the request."""

    image: np.ndarray | None = None  # (H, W, 3): frame 0 of the video (image-to-video)
    extend: np.ndarray | None = None  # a clip to continue: forward from its end, or backward from its start
    backward: bool = False
    connect: tuple[np.ndarray, np.ndarray] | None = None  # clips A and B: the transition from A's end to B's start
    loop: bool = False  # the last frame flows into the first
    tries: int = LOOP_TRIES  # loop only: closing parts drawn at most until the wrap is seamless (Pipeline.loop)
    edit: np.ndarray | None = None  # a clip to redo with the prompt: all of it (SDEdit), or what `source` changes
    source: str | None = None  # edit only: what the clip shows; then only what the prompt says differently changes
    strength: float | None = None  # edit only: the noise level t0 the edit starts from (0 keeps the clip, 1 redoes
    # it); None: EDIT_STRENGTH, or SOURCE_EDIT_STRENGTH with a source prompt

    def mode(self) -> str:
        """The one mode these inputs ask for; impossible combinations are refused with the reason."""
        picked = [name for name, on in (("extend", self.extend is not None), ("connect", self.connect is not None),
                                        ("edit", self.edit is not None), ("loop", self.loop)) if on]  # fmt: skip
        if len(picked) > 1:
            raise KinetoscopeError(f"--{picked[0]} and --{picked[1]} do not go together: choose one mode")
        if self.image is not None and picked and picked != ["loop"]:
            raise KinetoscopeError(f"--image and --{picked[0]} do not go together (--image works alone or with --loop)")
        if self.backward and picked != ["extend"]:
            raise KinetoscopeError("--backward goes with --extend CLIP")
        if self.tries < 1:
            raise KinetoscopeError(f"loop tries {self.tries} must be at least 1")
        if self.strength is not None and not 0.0 < self.strength <= 1.0:
            raise KinetoscopeError(f"--strength {self.strength} must be in (0, 1]: the noise level the clip is raised to")
        if self.source is not None and self.edit is None:
            raise KinetoscopeError("--source-prompt goes with --edit CLIP: it says what the clip shows")
        if self.source is not None and not self.source.strip():
            raise KinetoscopeError("--source-prompt is empty: say what the clip shows, e.g. \"a red ball rolls left\"")
        if picked:
            return picked[0]
        return "image" if self.image is not None else "text"


class Pipeline:
    """Text encoder + VAE + DiT, loaded once. `generate` samples one window of latent frames, some of them given;
    every mode (`run`) is windows of `generate` with different frames given (DESIGN.md §3)."""

    def __init__(self, model: str | Path | None = None, text: TextEncoder | None = None):
        dit_dir, vae_dir = model_folders(model)
        dit_config, dit_weights = read_folder(dit_dir)
        self.vae = load_vae(vae_dir)
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in dit_config["model"].items()}
        self.dit = DiT(DiTConfig(**fields)).eval()
        self.dit.load_state_dict(dit_weights)
        self.config = dit_config
        self.noise_shared = float(dit_config.get("train", {}).get("noise_shared", 0.0))  # the noise it learned on
        self.text = text or TextEncoder()
        self.stream = StreamConfig(bf16=True)
        self.on_step: Callable[[], None] | None = None  # called after every sampling step (the server's progress)

    def latent_shape(self, height: int, width: int, frames: int) -> tuple[int, int, int, int]:
        """(C, T', H', W') of the latent for a clip of this size."""
        v = self.vae.cfg
        return (v.latent, 1 + (frames - 1) // v.time_factor, height // v.space_factor, width // v.space_factor)

    def times(self, req: Request, shape: tuple[int, ...], start: float = 1.0) -> Tensor:
        """The request's times from `start` down to 0 for a latent of shape (C, T', H', W'): an edit (start < 1) runs
        the tail of the full schedule, its share of the steps; the shift follows the token count unless given."""
        p = self.dit.cfg.patch
        tokens = (shape[1] // p[0]) * (shape[2] // p[1]) * (shape[3] // p[2])
        return schedule(max(1, round(req.steps * start)), req.shift or resolution_shift(tokens), start=start)

    def encode_text(self, prompt: str, negative: str = "") -> TextEmbedding:
        """[cond, uncond] embeddings of the prompt, padded together for one batched forward; the uncond side is the
        negative prompt (empty: no prompt, the caption dropout the model was trained with)."""
        return self.text([check_prompt(prompt), check_negative(negative)])

    def encode(self, frames: np.ndarray) -> Tensor:
        """uint8 frames (1 + 4k, H, W, 3) -> normalized latent (1, C, 1 + k, H/8, W/8), as one causal stream."""
        return encode_stream(self.vae, frames, self.stream)

    def decode(self, z: Tensor) -> np.ndarray:
        """Normalized latent (1, C, T', h, w) -> uint8 frames (1 + 4 (T' - 1), H, W, 3), as one causal stream."""
        return np.stack(list(decode_stream(self.vae, z, self.stream)))

    @torch.no_grad()
    def generate(self, req: Request, given: Tensor | None = None, given_latent: Tensor | None = None,
                 progress: bool = True) -> Video:
        """Sample one window for the request and decode it. `given_latent` (1, C, T', H', W') with the bool mask
        `given` (1, T') holds frames fixed; None generates everything."""
        return Video(self.decode(self.sample(req, given, given_latent, progress)), req.fps)

    @torch.no_grad()
    def sample(self, req: Request, given: Tensor | None = None, given_latent: Tensor | None = None,
               progress: bool = True, strength: float = 1.0) -> Tensor:
        """The latent (1, C, T', H', W') of one window; see `generate`. `strength` < 1 starts every frame that is not
        given from `given_latent` noised to t0 = strength instead of from pure noise (SDEdit)."""
        check_sampling(req)
        height, width, frames = round_size(req.height, req.width, req.frames)
        txt = self.encode_text(req.prompt, req.negative)
        shape = self.latent_shape(height, width, frames)
        gen = torch.Generator().manual_seed(req.seed)
        noise = video_noise((1, *shape), gen, self.noise_shared)  # (1, C, T', H', W')
        if given is None:
            given = torch.zeros(1, shape[1], dtype=torch.bool)
        x = noise
        if given_latent is not None:
            start = (1 - strength) * given_latent + strength * noise if strength < 1 else noise
            x = torch.where(given[:, None, :, None, None], given_latent, start)
        ts = self.times(req, shape, strength)
        steps = len(ts) - 1
        velocity = given_frames(self.velocity(txt, req.guidance, given), given)
        with self.steps_bar(steps, progress) as step:
            return SAMPLERS[req.sampler](velocity, x, ts, step)

    def velocity(self, txt: TextEmbedding, guidance: float, given: Tensor) -> Velocity:
        """The DiT's guided velocity under the [cond, uncond] text `txt`; frames marked in `given` (1, T') are told
        they sit clean at t = 0."""
        given2 = given.repeat(2, 1)  # (2, T') for the doubled batch

        def batched(x2: Tensor, t: Tensor) -> Tensor:
            t_frames = torch.where(given2, 0.0, t.float().expand(2, given.shape[1]))  # (2, T')
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return self.dit(x2, t_frames, txt).float()

        return classifier_free(batched, guidance)

    @contextmanager
    def steps_bar(self, steps: int, progress: bool) -> Iterator[Callable[[int, Tensor], None]]:
        """A sampler callback that advances a progress bar and the server's `on_step`."""
        bar = tqdm(total=steps, desc="sampling", disable=not progress, leave=False)

        def step(i: int, _: Tensor) -> None:
            bar.update(1)
            if self.on_step:
                self.on_step()

        try:
            yield step
        finally:
            bar.close()

    # --- modes: windows with given frames -------------------------------------------------------------------------

    def run(self, req: Request, inputs: Inputs = Inputs(), progress: bool = True) -> Iterator[np.ndarray]:
        """Every mode, frames (H, W, 3) yielded as they are made (a minute-long video streams to disk):

        - text / image: `req.frames` frames; past `WINDOW` frames, chunk after chunk with a rolling given prefix.
        - extend: the clip, then `req.frames - 1` new frames (backward: the new frames, then the clip).
        - connect: A, a transition of `req.frames - 2` frames, B.
        - loop: `req.frames - 1` frames whose last flows into the first (the frame after it would repeat frame 0).
        - edit: the clip redone under the prompt, window after window past WINDOW frames.
        """
        mode = inputs.mode()
        height, width, frames = round_size(req.height, req.width, req.frames)
        req = replace(req, height=height, width=width, frames=frames)
        fit = lambda clip, what: self.fit(clip, req, what)
        if mode == "extend" and inputs.backward:
            return iter(self.extend_backward(req, fit(inputs.extend, "--extend"), progress))
        if mode == "extend":
            return self.continue_from(req, fit(inputs.extend, "--extend"), frames - 1, progress)
        if mode == "connect":
            a, b = fit(inputs.connect[0], "--connect A"), fit(inputs.connect[1], "--connect B")
            return iter(self.connect(req, a, b, frames - 2, progress))
        if mode == "edit":
            return self.edit(req, fit(inputs.edit, "--edit"), inputs.strength, progress, inputs.source)
        image = None if inputs.image is None else fit(inputs.image[None], "--image")
        if mode == "loop" or inputs.loop:
            return iter(self.loop(req, image, progress, inputs.tries))
        return self.long(req, image, progress)

    def fit(self, clip: np.ndarray, req: Request, what: str) -> np.ndarray:
        """An input clip cropped to the request's aspect and resized to its size, with a warning when the crop cut
        off a visible part of the picture."""
        if clip.ndim != 4 or clip.shape[-1] != 3 or len(clip) == 0:
            raise KinetoscopeError(f"{what}: expected frames (T, H, W, 3) with T >= 1, got {clip.shape}")
        out, cut = fit_frames(clip, req.height, req.width)
        if cut > 0.02:
            h, w = clip.shape[1:3]
            warnings.warn(f"{what}: {w}x{h} cropped to the {req.width}x{req.height} aspect ({cut:.0%} of the picture "
                          f"cut off); give --size {w}x{h}-like sizes to keep it all")  # fmt: skip
        return out

    def window(self, req: Request, latents: int, prefix: Tensor | None = None, suffix: Tensor | None = None,
               progress: bool = True, harmonize: bool = False) -> np.ndarray:
        """Decoded frames (1 + 4 (latents - 1), H, W, 3) of one window whose first / last latent frames are given."""
        return self.decode(self.window_latent(req, latents, prefix, suffix, progress, harmonize))

    def window_latent(self, req: Request, latents: int, prefix: Tensor | None = None, suffix: Tensor | None = None,
                      progress: bool = True, harmonize: bool = False) -> Tensor:
        """The latent (1, C, latents, h, w) of one window: `prefix` (1, C, P, h, w) given as its first latent frames,
        `suffix` (1, C, S, h, w) as its last, the rest sampled. With `harmonize`, the sampled window is then noised
        to t = req.harmonize and denoised again with nothing held (SDEdit over the whole window): the small model
        does not always continue given frames smoothly, and in that pass the join between given and generated frames
        becomes one it drew itself, while the given frames stay close to what they were (the callers fade the
        inputs into them)."""
        c, _, h, w = self.latent_shape(req.height, req.width, 1)
        given_latent = torch.zeros(1, c, latents, h, w)  # (1, C, T', h, w)
        given = torch.zeros(1, latents, dtype=torch.bool)  # (1, T')
        if prefix is not None:
            given_latent[:, :, : prefix.shape[2]] = prefix
            given[:, : prefix.shape[2]] = True
        if suffix is not None:
            given_latent[:, :, latents - suffix.shape[2] :] = suffix
            given[:, latents - suffix.shape[2] :] = True
        window = replace(req, frames=1 + TIME * (latents - 1))
        z = self.sample(window, given, given_latent, progress)  # (1, C, latents, h, w)
        if harmonize and req.harmonize > 0:
            z = self.sample(window, None, z, progress, strength=req.harmonize)
        return z

    def head(self, frames: np.ndarray, latents: int) -> Tensor:
        """Latents (1, C, latents, h, w) of a clip's last 1 + 4 (latents - 1) frames, encoded as the start of a
        stream: what a window's given prefix holds (its first latent frame is an image, as in training)."""
        return self.encode(frames[len(frames) - 1 - TIME * (latents - 1) :])

    def tail(self, frames: np.ndarray, latents: int) -> Tensor:
        """Latents (1, C, latents, h, w) of a clip's frames 1 .. 4 latents, encoded as the middle of a stream: what a
        window's given suffix holds. The stream before them is the clip's frame 0 held still (the causal encoder must
        see something there); the window's last generated frame stands where frame 0 is."""
        still = np.repeat(frames[:1], TIME * PAD_LATENTS, axis=0)  # (4 m, H, W, 3)
        z = self.encode(np.concatenate([still, frames[: 1 + TIME * latents]]))  # (1, C, 1 + m + latents, h, w)
        return z[:, :, -latents:]

    def context(self, frames: np.ndarray) -> int:
        """How many latent frames of a clip to hold given: CONTEXT, fewer for a short clip."""
        return max(1, min(CONTEXT, 1 + (len(frames) - 1) // TIME))

    def long(self, req: Request, image: np.ndarray | None, progress: bool) -> Iterator[np.ndarray]:
        """Text- or image-to-video of any length: the first window, then `continue_from` its end."""
        first = min(req.frames, WINDOW)
        given = None
        if image is not None:
            given = self.encode(image)  # (1, C, 1, h, w)
        clip = self.window(replace(req, frames=first), 1 + (first - 1) // TIME, given, None, progress)
        if req.frames == first:
            return iter(clip)
        return self.continue_from(replace(req, seed=req.seed + 1), clip, req.frames - first, progress)

    def continue_from(self, req: Request, clip: np.ndarray, new: int, progress: bool) -> Iterator[np.ndarray]:
        """The clip, then `new` frames (rounded up to a multiple of 4) that follow it, each window given the last
        frames made so far (`roll`) and harmonized."""

        def window(k: int, prefix: np.ndarray, j: int, n: int, made: int) -> np.ndarray:
            return self.window(replace(req, seed=req.seed + k), j + n // TIME, self.encode(prefix), None, progress,
                               harmonize=True)

        return self.roll(clip, TIME * -(-new // TIME), window, progress)

    def roll(self, clip: np.ndarray, total: int, window: RollWindow, progress: bool) -> Iterator[np.ndarray]:
        """The clip, then `total` (a multiple of 4) frames made by windows of at most WINDOW frames, each given the
        last frames made so far (a rolling prefix), so memory stays flat however long the video runs. `window(k,
        prefix, j, n, made)` makes window k: the `prefix` frames (1 + 4 (j - 1), given as j latent frames), then n
        new ones, `made` new frames having come before it. Given frames come back from the VAE a little changed, so
        the frames before a window fade into their decoded form (`fade`) instead of jumping where the window starts."""
        chunks = -(-total // (WINDOW - 1 - TIME * (CONTEXT - 1)))
        bar = tqdm(total=chunks, desc="windows", disable=not progress or chunks < 2, leave=False)
        made, k, held = 0, 0, clip  # held: frames made but not yet yielded, which the next window may fade
        while made < total:
            j = self.context(held)
            ctx = 1 + TIME * (j - 1)  # frames given to the window
            n = min(total - made, WINDOW - ctx)  # new frames in this window, a multiple of 4
            out = window(k, held[-ctx:], j, n, made)  # (ctx + n, H, W, 3)
            yield from held[:-ctx]
            held = np.concatenate([fade(held[-ctx:], out[:ctx]), out[ctx:]])  # (ctx + n, H, W, 3)
            made, k = made + n, k + 1
            bar.update(1)
        bar.close()
        yield from held

    def extend_backward(self, req: Request, clip: np.ndarray, progress: bool) -> np.ndarray:
        """`req.frames - 1` new frames (rounded to a multiple of 4) that lead into the clip, then the clip."""
        if len(clip) < 1 + TIME:
            raise KinetoscopeError(f"--extend --backward needs a clip of at least {1 + TIME} frames, got {len(clip)}")
        j = min(CONTEXT, (len(clip) - 1) // TIME)
        k = max(1, -(-(req.frames - 1) // TIME))  # generated latent frames before the given suffix
        out = self.window(req, k + 1 + j, None, self.tail(clip, j), progress)
        span = 1 + TIME * j  # out[4 k:] stands where clip[:span] is
        return np.concatenate([out[: TIME * k], fade(out[TIME * k :], clip[:span]), clip[span:]])

    def connect(self, req: Request, a: np.ndarray, b: np.ndarray, frames: int, progress: bool) -> np.ndarray:
        """A, about `frames` new frames (4 g - 1) from A's last frame into B's first, then B: A's end given as the
        window's prefix, B's start as its suffix (the window harmonized), both faded into their decoded form at the
        joins."""
        if len(b) < 1 + TIME:
            raise KinetoscopeError(f"--connect: clip B needs at least {1 + TIME} frames, got {len(b)}")
        ja, jb = self.context(a), min(CONTEXT, (len(b) - 1) // TIME)
        g = max(1, round((frames + 1) / TIME))
        out = self.window(req, ja + g + jb, self.head(a, ja), self.tail(b, jb), progress, harmonize=True)
        ctx, span = 1 + TIME * (ja - 1), 1 + TIME * jb
        end = ctx + TIME * g - 1  # out[end:] stands where b[:span] is
        return np.concatenate([a[:-ctx], fade(a[-ctx:], out[:ctx]), out[ctx:end], fade(out[end:], b[:span]), b[span:]])

    def loop(self, req: Request, image: np.ndarray | None, progress: bool, tries: int = LOOP_TRIES) -> np.ndarray:
        """A loop of `req.frames - 1` frames. A first window makes the loop's opening (from the image, if given); a
        second holds that opening as its prefix and again as its suffix, so its end is generated to lead back into its
        start. The loop is that window from just past the opening's first `span` frames to the end, with the suffix
        faded into the opening's own frames: its last frame is the opening's frame span - 1, and its first frame is what
        the window made next, so the seam is an ordinary step of one window once the window is harmonized
        (`window_latent`). The small model does not always close it smoothly, so the second window is drawn again with
        new seeds (at most `tries` in all) until the wrap is at most LOOP_SEAM ordinary steps; the smoothest is kept,
        with a warning if none was."""
        if req.frames < 1 + 2 * TIME:
            raise KinetoscopeError(f"--loop needs at least {1 + 2 * TIME} frames, got {req.frames}")
        latents = 1 + (req.frames - 1) // TIME  # the loop is n = 4 (latents - 1) frames long
        p = max(2, (latents - 1) // 2)  # latent frames of the opening
        j = min(CONTEXT, p - 1)  # of them, given again as the suffix
        first = None if image is None else self.encode(image)  # (1, C, 1, h, w)
        opening_z = self.window_latent(req, p, first, None, progress)  # (1, C, p, h, w)
        opening = self.decode(opening_z)
        suffix = self.tail(opening, j)
        n, span = TIME * (latents - 1), 1 + TIME * j  # out[n:] stands where opening[:span] is
        best: tuple[float, np.ndarray] | None = None
        for k in range(tries):
            out = self.window(replace(req, seed=req.seed + 1 + k), latents + j, opening_z, suffix, progress,
                              harmonize=True)
            clip = np.concatenate([out[span:n], fade(out[n:], out[:span])])
            wrap = loop_seam(clip)
            if best is None or wrap < best[0]:
                best = (wrap, clip)
            if wrap <= LOOP_SEAM:
                break
        if best[0] > LOOP_SEAM:
            which = "the loop" if tries == 1 else f"the smoothest of {tries} loops"
            warnings.warn(f"--loop: {which} wraps around in {best[0]:.2f} ordinary frame steps "
                          f"(seamless is <= {LOOP_SEAM}); another --seed may close it better")  # fmt: skip
        return best[1]

    def edit(self, req: Request, clip: np.ndarray, strength: float | None, progress: bool,
             source: str | None = None) -> Iterator[np.ndarray]:
        """Redo the clip under the prompt, every frame of it. Without `source`, SDEdit: the latent noised to
        t0 = strength, then denoised. With `source` (what the clip shows), FlowEdit: only what the two prompts differ
        in changes, inside the latent pixels where they disagree (diffusion/edit.py). A clip longer than WINDOW is
        edited in windows that overlap the one before by 1 + 4 (CONTEXT - 1) frames and fade into it (`roll`), so
        memory stays flat. Each window is edited on its own: given the edit before it as a prefix, later windows
        lost the new color (README, Modes). A clip of other than 1 + 4k frames is edited with its last frame repeated
        to the next such length, then cut back."""
        check_sampling(req)
        if source is not None and req.sampler != "euler":
            warnings.warn(f"--sampler {req.sampler}: an edit with --source-prompt takes FlowEdit's own Euler steps")
        length = len(clip)
        clip = np.concatenate([clip, np.repeat(clip[-1:], -(length - 1) % TIME, axis=0)])  # (1 + 4k, H, W, 3)
        first = min(WINDOW, len(clip))

        def window(k: int, prefix: np.ndarray, j: int, n: int, made: int) -> np.ndarray:
            start = first + made - len(prefix)  # the window overlaps the frames the prefix holds
            return self.edit_window(replace(req, seed=req.seed + 1 + k), clip[start : first + made + n], strength,
                                    progress, source)  # fmt: skip

        out = self.edit_window(req, clip[:first], strength, progress, source)
        return islice(self.roll(out, len(clip) - first, window, progress), length)

    def edit_window(self, req: Request, clip: np.ndarray, strength: float | None, progress: bool,
                    source: str | None) -> np.ndarray:
        """One window of an edit: the clip's frames (1 + 4k, at most WINDOW) redone."""
        x = self.encode(clip)  # (1, C, T', h, w)
        given = torch.zeros(1, x.shape[2], dtype=torch.bool)
        if source is None:
            strength = EDIT_STRENGTH if strength is None else strength
            return self.decode(self.sample(replace(req, frames=len(clip)), given, x, progress, strength=strength))
        strength = SOURCE_EDIT_STRENGTH if strength is None else strength
        gen = torch.Generator().manual_seed(req.seed)

        def noise() -> Tensor:
            return video_noise(tuple(x.shape), gen, self.noise_shared)

        v_source = self.velocity(self.encode_text(source), req.guidance, given)
        v_target = self.velocity(self.encode_text(req.prompt, req.negative), EDIT_TARGET_GUIDANCE * req.guidance, given)
        mask = edit_mask(v_source, v_target, x, noise, threshold=EDIT_MASK_THRESHOLD)  # (1, 1, T', h, w)
        ts = self.times(req, x.shape[1:], strength)
        with self.steps_bar(len(ts) - 1, progress) as step:
            return self.decode(flow_edit(v_source, v_target, x, ts, noise, mask, step))
