"""What a video job is: the request checked into job parameters (web process), and the job run (worker process).

The web process turns a request into a :class:`Job` whose ``params`` say everything the worker needs (sizes, seed,
steps, mode, the paths of uploaded inputs), refusing anything impossible with an :class:`ApiError` before a job
exists. The worker runs ``params`` through the one :class:`~kinetoscope.pipeline.Pipeline` and writes the MP4, a
thumbnail and a sprite sheet, each atomically.
"""

from __future__ import annotations

import io
import math
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from kinetoscope.errors import KinetoscopeError
from kinetoscope.media import atomic_file, probe, read_video, write_video
from kinetoscope.models.text import MAX_PROMPT_CHARS
from kinetoscope.serve.store import Job
from kinetoscope.sizes import SPATIAL_MULTIPLE, TEMPORAL_MULTIPLE, parse_aspect

MODEL = "kinetoscope"
ALIASES = ("sora-2", "sora-2-pro", "sora-2-2025-10-06", "sora-2-pro-2025-10-06", "sora-2-2025-12-08")
SORA_SIZES = {"720x1280": "9:16", "1280x720": "16:9", "1024x1792": "9:16", "1792x1024": "16:9"}  # read as aspects
ID = re.compile(r"video_[0-9a-f]{32}")
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
DEFAULTS = {"seconds": "4", "aspect": "9:16", "fps": 16.0, "seed": 0, "steps": 20, "guidance": 4.0, "strength": 0.8}
# strength: the remix's, pipeline.SOURCE_EDIT_STRENGTH (the web process does not import the pipeline)


class ApiError(KinetoscopeError):
    """A request the API refuses: HTTP status, a message for people, and the OpenAI error fields."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error", headers: dict[str, str] | None = None):  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind
        self.headers = headers or {}


@dataclass(frozen=True)
class Limits:
    """What one server accepts; the defaults fit a 2-core CPU serving the bundled model."""

    max_seconds: float = 20.0
    max_side: int = 256
    max_steps: int = 100
    max_upload_bytes: int = 10 * 2**20
    max_queue: int = 100  # accepted and unfinished jobs; past it, 429 with Retry-After
    short_side: int = 64  # the size an aspect is drawn at (the bundled model's training size)


@dataclass(frozen=True)
class Files:
    """Where a server keeps its videos and inputs: one folder; every name is a checked job id plus a fixed suffix."""

    root: Path

    def path(self, job_id: str, what: str) -> Path:
        if not ID.fullmatch(job_id):
            raise ApiError(404, f"no video {job_id!r}", "video_id", "not_found")
        folder, suffix = {"video": ("videos", ".mp4"), "thumbnail": ("videos", ".webp"),
                          "spritesheet": ("videos", ".jpg"), "image": ("inputs", ".png"),
                          "clip": ("inputs", ".mp4")}[what]  # fmt: skip
        return self.root / folder / f"{job_id}{suffix}"

    def remove(self, job_id: str) -> None:
        for what in ("video", "thumbnail", "spritesheet", "image", "clip"):
            self.path(job_id, what).unlink(missing_ok=True)


def new_id() -> str:
    return "video_" + secrets.token_hex(16)


# --- the web side: a request in, a job out ---------------------------------------------------------------------------


def _number(fields: Mapping[str, Any], name: str, kind: type, lo: float, hi: float) -> Any:
    value = fields.get(name)
    if value is None or value == "":
        return DEFAULTS[name]
    try:
        if isinstance(value, bool):
            raise ValueError
        number = kind(value) if kind is float else int(str(value).strip())
    except (TypeError, ValueError):
        raise ApiError(400, f"{name} must be a number, got {value!r}", name) from None
    if not (lo <= number <= hi) or (kind is float and not math.isfinite(number)):
        raise ApiError(400, f"{name} {number:g} is outside {lo:g}..{hi:g}", name)
    return number


def _prompt(fields: Mapping[str, Any]) -> str:
    prompt = fields.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ApiError(400, "prompt is required: describe the video, e.g. \"a red ball bounces on a gray floor\"",
                       "prompt")  # fmt: skip
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ApiError(400, f"prompt has {len(prompt):,} characters; the limit is {MAX_PROMPT_CHARS:,}", "prompt")
    return prompt.strip()


def _negative(fields: Mapping[str, Any]) -> str:
    negative = fields.get("negative") or ""
    if not isinstance(negative, str):
        raise ApiError(400, "negative must be a string: what the video should not show", "negative")
    if len(negative) > MAX_PROMPT_CHARS:
        raise ApiError(400, f"negative has {len(negative):,} characters; the limit is {MAX_PROMPT_CHARS:,}", "negative")
    return negative.strip()


def _model(fields: Mapping[str, Any]) -> str:
    model = fields.get("model") or MODEL
    if model != MODEL and model not in ALIASES:
        raise ApiError(400, f"model {model!r} is not served here; use {MODEL!r} (the OpenAI names "
                            f"{', '.join(ALIASES[:2])} are accepted as aliases)", "model")  # fmt: skip
    return str(model)


def _size(fields: Mapping[str, Any], limits: Limits) -> tuple[int, int]:
    """(width, height): `size` WxH on the grid, a Sora size read as its aspect, or `aspect` at the short side."""
    size = fields.get("size")
    aspect = fields.get("aspect") or DEFAULTS["aspect"]
    if size and str(size) in SORA_SIZES:
        aspect, size = SORA_SIZES[str(size)], None
    if size:
        w, sep, h = str(size).lower().partition("x")
        if not sep or not w.isdigit() or not h.isdigit():
            raise ApiError(400, f"size {size!r} is not WIDTHxHEIGHT, e.g. 64x112", "size")
        width, height = int(w), int(h)
        for side in (width, height):
            if side % SPATIAL_MULTIPLE or not SPATIAL_MULTIPLE <= side <= limits.max_side:
                raise ApiError(400, f"size {size}: sides must be multiples of {SPATIAL_MULTIPLE} between "
                                    f"{SPATIAL_MULTIPLE} and {limits.max_side}", "size")  # fmt: skip
        return width, height
    try:
        ratio = parse_aspect(str(aspect))
    except KinetoscopeError as e:
        raise ApiError(400, str(e), "aspect") from None
    if not 1 / 4 <= ratio <= 4:
        raise ApiError(400, f"aspect {aspect} is outside 1:4..4:1", "aspect")
    return _at_short_side(ratio, limits)


def aspect_size(width: int, height: int, limits: Limits) -> tuple[int, int]:
    """(width, height) on the grid at the short side for footage of this size (its aspect kept within 1:4..4:1)."""
    return _at_short_side(min(4.0, max(0.25, width / height)), limits)


def _at_short_side(ratio: float, limits: Limits) -> tuple[int, int]:
    long = round(limits.short_side * max(ratio, 1 / ratio) / SPATIAL_MULTIPLE) * SPATIAL_MULTIPLE
    return (limits.short_side, long) if ratio < 1 else (long, limits.short_side)


def _seconds(fields: Mapping[str, Any], limits: Limits) -> float:
    seconds = float(_number(fields, "seconds", float, 0, limits.max_seconds))
    if seconds <= 0:
        raise ApiError(400, f"seconds must be > 0, got {seconds:g}", "seconds")
    return seconds


def frames_of(seconds: float, fps: float) -> int:
    """1 + 4k frames nearest `seconds` at `fps` (at least 1 + 4)."""
    return 1 + TEMPORAL_MULTIPLE * max(1, round(seconds * fps / TEMPORAL_MULTIPLE))


def create_job(fields: Mapping[str, Any], limits: Limits, mode: str = "text", source: Job | None = None) -> Job:
    """A queued job for POST /v1/videos (mode text or image), /remix (remix) or /extensions (extend).

    Remix keeps the source's size and length; an extension adds `seconds` to the source (the job's `seconds` is the
    stitched total, as in the OpenAI API)."""
    prompt, model = _prompt(fields), _model(fields)
    fps = float(_number(fields, "fps", float, 1, 60))
    seed = _number(fields, "seed", int, 0, 2**63 - 1)
    steps = _number(fields, "steps", int, 1, limits.max_steps)
    guidance = float(_number(fields, "guidance", float, 0, 30))
    loop = str(fields.get("loop", "")).lower() in ("1", "true", "yes", "on")
    strength = float(_number(fields, "strength", float, 0.05, 1))
    params: dict[str, Any] = {"mode": mode, "fps": fps, "seed": seed, "steps": steps, "guidance": guidance,
                              "loop": loop, "negative": _negative(fields)}  # fmt: skip
    remixed_from = None
    if source is None:
        width, height = _size(fields, limits)
        seconds = _seconds(fields, limits)
        frames = frames_of(seconds, fps)
        if loop and frames < 9:
            raise ApiError(400, "a loop needs at least 9 frames; ask for more seconds", "seconds")
        total = seconds
    else:
        width, height = (int(v) for v in source.size.split("x"))
        fps = params["fps"] = float(source.params.get("fps", fps))
        if mode == "remix":
            frames, total, remixed_from = source.params["frames"], float(source.seconds), source.id
            params["strength"] = strength
            params["source_prompt"] = source.prompt  # what the clip shows: the remix changes what the prompts differ in
        else:
            new = _seconds(fields, limits)
            frames = frames_of(new, fps)
            total = float(source.seconds) + new
            if total > limits.max_seconds * 2:
                raise ApiError(400, f"the extended video would last {total:g} s; the limit is "
                                    f"{limits.max_seconds * 2:g} s", "seconds")  # fmt: skip
    params.update(width=width, height=height, frames=frames)
    return Job(id=new_id(), created_at=int(time.time()), status="queued", progress=0, model=model, prompt=prompt,
               seconds=f"{total:g}", size=f"{width}x{height}", params=params, remixed_from=remixed_from)  # fmt: skip


def check_image(data: bytes, limits: Limits, param: str = "input_reference") -> Image.Image:
    """An uploaded image, opened and verified by decoding it (the name and the declared type are not trusted)."""
    if len(data) > limits.max_upload_bytes:
        raise ApiError(413, f"{param} is {len(data):,} bytes; the limit is {limits.max_upload_bytes:,}", param)
    if not data:
        raise ApiError(400, f"{param} is empty", param)
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()  # structure and checksums
        im = Image.open(io.BytesIO(data))
        if im.format not in IMAGE_FORMATS:
            raise ApiError(400, f"{param} is a {im.format} image; send PNG, JPEG, WebP or GIF", param)
        if im.width * im.height > 64 * 2**20:
            raise ApiError(400, f"{param} is {im.width}x{im.height}; the limit is 64 megapixels", param)
        if min(im.width, im.height) < 16:
            raise ApiError(400, f"{param} is {im.width}x{im.height}; at least 16 px a side is needed", param)
        return im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ApiError(400, f"{param} is not an image (PNG, JPEG, WebP or GIF)", param) from None


# --- the worker side: a job run --------------------------------------------------------------------------------------


def windows_of(params: Mapping[str, Any]) -> int:
    """How many sampling windows the pipeline runs for a job (for progress; the last percent waits for the end)."""
    from kinetoscope.pipeline import CONTEXT, TIME, WINDOW

    per = WINDOW - 1 - TIME * (CONTEXT - 1)  # new frames per rolling window
    frames, mode = params["frames"], params["mode"]
    if params.get("loop"):
        return 2
    if mode == "extend":
        return math.ceil((frames - 1) / per)
    return 1 + math.ceil(max(0, frames - WINDOW) / per)  # a remix rolls as text does


def run_job(pipe, job: Job, files: Files, on_progress: Callable[[int], bool]) -> None:
    """Generate the job's video with ``pipe`` and write the MP4, thumbnail and sprite sheet (each atomically).

    ``on_progress(percent)`` is called as sampling steps complete; when it returns False (the job was deleted)
    the run stops with :class:`Cancelled`."""
    from kinetoscope.pipeline import Inputs, Request

    p = job.params
    steps = max(1, round(p["steps"] * p.get("strength", 1.0))) if p["mode"] == "remix" else p["steps"]
    total, done = windows_of(p) * steps, [0]

    def step() -> None:
        done[0] += 1
        if not on_progress(int(99 * done[0] / total)):
            raise Cancelled(job.id)

    req = Request(job.prompt, p["width"], p["height"], p["frames"], p["fps"], p["seed"], p["steps"], p["guidance"],
                  negative=p.get("negative", ""))  # jobs stored before negative prompts have none
    source = lambda: read_video(files.path(job.id, "clip"), max_bytes=2**30)
    inputs = {"text": Inputs(loop=p["loop"]),
              "image": lambda: Inputs(image=np.asarray(Image.open(files.path(job.id, "image")).convert("RGB")),
                                      loop=p["loop"]),
              "remix": lambda: Inputs(edit=source(), source=p.get("source_prompt"), strength=p["strength"]),
              "extend": lambda: Inputs(extend=source())}[p["mode"]]  # fmt: skip
    pipe.on_step = step
    try:
        frames = pipe.run(req, inputs() if callable(inputs) else inputs, progress=False)
        video = write_video(files.path(job.id, "video"), frames, p["fps"])
    finally:
        pipe.on_step = None
    write_previews(video, files.path(job.id, "thumbnail"), files.path(job.id, "spritesheet"))


class Cancelled(Exception):
    """The job was deleted while it ran."""


def write_previews(video: Path, thumbnail: Path, sheet: Path, cells: int = 16) -> None:
    """A WebP of the middle frame and a JPEG sprite sheet of up to ``cells`` frames (4 a row), both atomically."""
    n = probe(video).frames
    idx = np.unique(np.linspace(0, n - 1, min(cells, n)).round().astype(int))
    frames = read_video(video)[idx]  # (K, H, W, 3)
    k, h, w = frames.shape[:3]
    cols = min(4, k)
    rows = -(-k // cols)
    grid = np.zeros((rows * h, cols * w, 3), np.uint8)
    for i, f in enumerate(frames):
        grid[(i // cols) * h : (i // cols + 1) * h, (i % cols) * w : (i % cols + 1) * w] = f
    for path, image, fmt in ((thumbnail, frames[k // 2], "WEBP"), (sheet, grid, "JPEG")):
        with atomic_file(path) as tmp:
            Image.fromarray(image).save(tmp, fmt, quality=90)
