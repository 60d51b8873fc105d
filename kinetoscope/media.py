"""Video files in and out: probe, lazy frame iteration, bounded reads and atomic writes.

Frames are uint8 (T, H, W, 3) RGB arrays at the edges and float32 (C, T, H, W) tensors in [-1, 1] inside. Any
problem with a file on disk (missing, empty, truncated, not a video, no video stream) becomes a MediaError that names
the file; no PyAV or Pillow exception escapes a read.

Formats: MP4 and anything else PyAV reads; GIF, WebP and (A)PNG through Pillow; a folder of PNG frames. Lossless MP4
is ``libx264rgb`` at ``qp=0``: H.264 coded directly in RGB, so frames round-trip bit-exactly. ``yuv444p`` at
``qp=0`` is lossless only in YUV space; the 8-bit RGB -> YUV -> RGB conversion alone moves pixels by up to 2 levels.
Lossless MP4s use the High 4:4:4 Predictive profile, which ffmpeg plays but most browsers do not.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from kinetoscope.errors import MediaError, SizeError

PILLOW_FORMATS = {".gif": "GIF", ".webp": "WEBP", ".png": "PNG", ".apng": "PNG"}
FOLDER_META = "meta.json"  # {"fps": ...}, written by write_video into a PNG frame folder
SEEK_AFTER = 16  # below this start index, decoding from frame 0 is as cheap as a keyframe seek
KEYFRAME_SECONDS = 2  # a keyframe every 2 s keeps seeks into written MP4s cheap
# Pixel-format conversion on the calling thread. swscale's automatic thread pool (threads=0) outlives the call, and
# a process forked after it (a DataLoader or pool worker) inherits the pool without its threads: the child's first
# conversion waits for them forever (tests/test_media.py; it hung the loader test and stalled CI).
SCALE_THREADS = 1


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds, read from headers (or by demuxing packets when the header has no frame count)."""

    path: str
    frames: int
    fps: float  # 0.0 when unknown (a single image, a frame folder without meta.json)
    width: int
    height: int
    duration: float  # seconds
    has_audio: bool
    codec: str
    container: str


def probe(path: str | os.PathLike) -> VideoInfo:
    """Read frame count, rate, size and codec from headers (an MP4 is never decoded), to plan reads of any length."""
    path = _existing(path)
    if path.is_dir():
        return _probe_folder(path)
    if path.suffix.lower() in PILLOW_FORMATS:
        with _open_image(path) as im:
            repeats, fps = _image_timing(path, im)
            frames = sum(repeats)
            return VideoInfo(str(path), frames, fps, im.width, im.height, frames / fps if fps else 0.0, False,
                             im.format.lower(), im.format.lower())
    with _open_av(path) as (container, stream):
        frames = stream.frames or _count_packets(path, container, stream)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        else:
            duration = frames / fps if fps else 0.0
        suffix = path.suffix.lower().lstrip(".")
        name = suffix if suffix in container.format.extensions else container.format.name.split(",")[0]
        return VideoInfo(str(path), frames, fps, stream.width, stream.height, duration,
                         bool(container.streams.audio), stream.codec_context.name, name)


def iter_frames(
    path: str | os.PathLike, *, start: int = 0, stop: int | None = None, stride: int = 1
) -> Iterator[np.ndarray]:
    """Yield frames start, start + stride, ... before stop as (H, W, 3) uint8, decoding one at a time.

    The file is probed now, so a bad path fails here rather than at the first ``next``.
    """
    info = probe(path)
    return _frames(Path(path), info, *_clamp(info, start, stop, stride))


def iter_timed_frames(
    path: str | os.PathLike, *, size: tuple[int, int] | None = None, fmt: str = "rgb24"
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (seconds, frame) for every decoded frame, scaled by FFmpeg to ``size`` = (width, height) if given.

    Strict, for curation: a frame the decoder reports damaged, or data that ends well before the header's duration,
    is a MediaError; a player would conceal the damage, a training set must not learn it. Timestamps come from the
    stream, so variable-rate footage keeps its timing.
    """
    path = _existing(path)
    info = probe(path)
    width, height = size or (info.width, info.height)
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)  # FFmpeg reports damage only through its log; capture it
    n, last = 0, 0.0
    try:
        with av.logging.Capture(local=False) as logs, _open_av(path, threaded=False) as (container, stream):
            opened = len(logs)  # opening decodes a few packets to probe them; what it logs there is not the frames'
            try:
                for frame in container.decode(stream):
                    if len(logs) > opened:
                        raise MediaError(path, f"corrupt: the decoder reported damage near frame {n} "
                                               f"({_first_line(logs[opened][2])})")  # fmt: skip
                    last = frame.time if frame.time is not None else n / (info.fps or 25.0)
                    yield last, frame.to_ndarray(format=fmt, width=width, height=height, threads=SCALE_THREADS)
                    n += 1
            except av.FFmpegError as e:
                raise MediaError(path, f"truncated or corrupt: decoded {n} frames then failed: {e.strerror}") from None
            if len(logs) > opened:
                raise MediaError(path, f"corrupt: the decoder reported damage at the end "
                                       f"({_first_line(logs[opened][2])})")  # fmt: skip
    finally:
        av.logging.set_level(previous)
    end = last + (1 / info.fps if info.fps else 0.0)
    if n == 0 or (info.duration > 0 and end < 0.9 * info.duration - 0.5):
        raise MediaError(path, f"truncated: the frames end at {end:.2f} s, the header promises {info.duration:.2f} s")


def read_video(
    path: str | os.PathLike, *, start: int = 0, stop: int | None = None, stride: int = 1, max_bytes: int = 2 * 2**30
) -> np.ndarray:
    """Read the selected frames into one (T, H, W, 3) uint8 array, refusing selections past max_bytes.

    The limit is checked from the header before decoding, so an hour of video is never loaded by accident.
    """
    info = probe(path)
    start, stop, stride = _clamp(info, start, stop, stride)
    n = len(range(start, stop, stride))
    need = n * info.height * info.width * 3
    if need > max_bytes:
        raise MediaError(path, f"reading {n} frames of {info.width}x{info.height} needs {need:,} bytes, past "
                               f"max_bytes={max_bytes:,}; stream with iter_frames() or narrow the selection with "
                               f"stop/stride")
    out = np.empty((n, info.height, info.width, 3), np.uint8)  # (T, H, W, 3)
    k = 0
    for k, frame in enumerate(_frames(Path(path), info, start, stop, stride), 1):
        out[k - 1] = frame
    if k != n:
        raise MediaError(path, f"expected {n} frames, read {k}")
    return out


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float,
    *,
    pix_fmt: str = "yuv420p",
    lossless: bool = False,
    crf: int = 18,
) -> Path:
    """Write frames atomically, picking the format by suffix (.mp4, .gif, .webp, .png/.apng, none: PNG folder).

    ``frames`` is a (T, H, W, 3) uint8 array or any iterable of (H, W, 3) frames; MP4s and folders are written
    as frames arrive, so long videos stream to disk (Pillow formats collect frames in memory). The file appears at
    ``path`` only once complete: it is written beside it under a temporary name and moved into place.
    """
    path = Path(path)
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    (height, width), frames = _checked(frames)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir() or not path.suffix:
        _write_folder(path, frames, fps)
        return path
    suffix = path.suffix.lower()
    if suffix != ".mp4" and suffix not in PILLOW_FORMATS:
        raise ValueError(f"{path}: unknown suffix {suffix!r}; use .mp4, .gif, .webp, .png, .apng, or no suffix "
                         f"for a folder of PNG frames")
    with atomic_file(path) as tmp:
        if suffix == ".mp4":
            _write_mp4(path, tmp, frames, fps, height, width, pix_fmt, lossless, crf)
        else:
            _write_animation(tmp, PILLOW_FORMATS[suffix], frames, fps, lossless)
    return path


def read_image(path: str | os.PathLike) -> np.ndarray:
    """The first frame of any image Pillow reads (PNG, JPEG, WebP, GIF, ...) as (H, W, 3) uint8 RGB."""
    path = _existing(path)
    if path.is_dir():
        raise MediaError(path, "is a folder, not an image")
    with _open_image(path) as im:
        return np.asarray(im.convert("RGB"))


def fit_frames(frames: np.ndarray, height: int, width: int, min_side: int = 16) -> tuple[np.ndarray, float]:
    """Center-crop frames (T, H, W, 3) to the aspect of height x width, then resize them to it (Lanczos).

    Returns the frames and the share of the picture the crop removed (0 when the aspect already fits), so the caller
    can warn. Frames with a side under `min_side` pixels hold too little to condition on and are refused.
    """
    t, h, w = frames.shape[:3]
    if min(h, w) < min_side:
        raise SizeError(f"an input of {w}x{h} pixels is too small to condition on (at least {min_side} px a side)")
    if h * width > w * height:  # taller than the target: crop rows
        ch, cw = max(1, round(w * height / width)), w
    else:
        ch, cw = h, max(1, round(h * width / height))
    top, left = (h - ch) // 2, (w - cw) // 2
    out = np.empty((t, height, width, 3), np.uint8)  # (T, height, width, 3)
    for i, frame in enumerate(frames[:, top : top + ch, left : left + cw]):
        im = Image.fromarray(np.ascontiguousarray(frame))
        out[i] = np.asarray(im if im.size == (width, height) else im.resize((width, height), Image.LANCZOS))
    return out, 1.0 - (ch * cw) / (h * w)


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """Map uint8 (T, H, W, 3) frames to the float32 (C, T, H, W) tensor in [-1, 1] the models consume."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2)  # (T, H, W, C) -> (C, T, H, W)
    return x.float() / 127.5 - 1.0


def tensor_to_frames(x: torch.Tensor) -> np.ndarray:
    """Map a (C, T, H, W) tensor in [-1, 1] back to uint8 (T, H, W, 3) frames, clamping and rounding."""
    if x.ndim != 4 or x.shape[0] != 3:
        raise ValueError(f"x must be (3, T, H, W), got {tuple(x.shape)}")
    x = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(1, 2, 3, 0).cpu().numpy()  # (C, T, H, W) -> (T, H, W, C)


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "no message"


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise MediaError(path, "no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise MediaError(path, "file is empty (0 bytes)")
    return path


def _clamp(info: VideoInfo, start: int, stop: int | None, stride: int) -> tuple[int, int, int]:
    if start < 0 or stride < 1 or (stop is not None and stop < 0):
        raise ValueError(f"need start >= 0, stop >= 0 and stride >= 1, got start={start} stop={stop} stride={stride}")
    return start, info.frames if stop is None else min(stop, info.frames), stride


def _frames(path: Path, info: VideoInfo, start: int, stop: int, stride: int) -> Iterator[np.ndarray]:
    if start >= stop:
        return
    if path.is_dir():
        for png in _folder_frames(path)[start:stop:stride]:
            with _open_image(png) as im:
                yield np.array(im.convert("RGB"))  # (H, W, 3)
    elif path.suffix.lower() in PILLOW_FORMATS:
        yield from _image_frames(path, start, stop, stride)
    else:
        yield from _av_frames(path, info, start, stop, stride)


@contextmanager
def _open_av(path: Path, *, threaded: bool = True) -> Iterator[tuple[av.container.InputContainer, av.VideoStream]]:
    """Open a container on its first video stream, turning every way that can fail into a MediaError.

    ``threaded=False`` decodes on the calling thread only: required while FFmpeg's log goes to Python, because a
    decoder thread that logs waits for the GIL while closing the codec holds the GIL and waits for that thread (a
    deadlock, PyAV-Org/PyAV#751; it hung curation about one run in thirty).
    """
    try:
        container = av.open(str(path))
    except av.FFmpegError as e:
        with open(path, "rb") as f:
            looks_mp4 = f.read(12)[4:8] == b"ftyp"
        if looks_mp4:
            raise MediaError(path, f"truncated or corrupt MP4, cannot open it ({e.strerror})") from None
        raise MediaError(path, "not a video file (no container PyAV can read)") from None
    with container:
        if not container.streams.video:
            raise MediaError(path, "no video stream (audio only)" if container.streams.audio else "no video stream")
        stream = container.streams.video[0]
        if threaded:
            stream.thread_type = "AUTO"  # frame and slice threads; decode is the bottleneck of every read
        else:
            stream.thread_count = 1
        yield container, stream


def _count_packets(path: Path, container: av.container.InputContainer, stream: av.VideoStream) -> int:
    """Count frames by demuxing (no decoding), for containers such as WebM whose header has no frame count."""
    try:
        n = sum(1 for packet in container.demux(stream) if packet.size)
    except av.FFmpegError as e:
        raise MediaError(path, f"truncated or corrupt: demuxing failed ({e.strerror})") from None
    container.seek(0)
    return n


def _decode_indexed(container: av.container.InputContainer, stream: av.VideoStream, start: int, fps: float
                    ) -> Iterator[tuple[int, av.VideoFrame]]:
    """Decoded frames with their index, seeking to a keyframe at or before ``start`` when that saves decoding.

    The index of the first frame after a seek comes from its timestamp (assuming a constant frame rate); if the seek
    overshoots or gives no timestamp, decoding restarts from the beginning.
    """
    if start >= SEEK_AFTER and fps > 0 and stream.time_base:
        t0, rate = stream.start_time or 0, Fraction(fps).limit_denominator(1001)
        container.seek(t0 + int(start / rate / stream.time_base), stream=stream, backward=True)
        decoded = container.decode(stream)
        first = next(decoded, None)
        if first is not None and first.pts is not None:
            i = round((first.pts - t0) * stream.time_base * rate)
            if i <= start:
                yield i, first
                yield from enumerate(decoded, i + 1)
                return
        container.seek(0)
    yield from enumerate(container.decode(stream))


def _av_frames(path: Path, info: VideoInfo, start: int, stop: int, stride: int) -> Iterator[np.ndarray]:
    n = 0  # frames 0 .. n-1 decoded (or skipped over by a seek)
    with _open_av(path) as (container, stream):
        try:
            for i, frame in _decode_indexed(container, stream, start, info.fps):
                if i >= stop:
                    return
                n = i + 1
                if i >= start and (i - start) % stride == 0:
                    yield frame.to_ndarray(format="rgb24", threads=SCALE_THREADS)  # (H, W, 3)
                if n == stop:
                    return
        except av.FFmpegError as e:
            raise MediaError(path, f"truncated or corrupt: decoded {n} frames then failed: {e.strerror}") from None
    raise MediaError(path, f"truncated or corrupt: decoded {n} frames then the data ended (the header promises "
                           f"{info.frames})")


@contextmanager
def _open_image(path: Path) -> Iterator[Image.Image]:
    """Open an image or animation lazily, turning every way that can fail into a MediaError."""
    try:
        im = Image.open(path)
    except UnidentifiedImageError:
        raise MediaError(path, f"not a {path.suffix.lstrip('.').upper()} file (no image Pillow can read)") from None
    except OSError as e:
        raise MediaError(path, f"truncated or corrupt image ({e})") from None
    with im:
        try:
            yield im
        except (OSError, EOFError) as e:  # pixel data is read lazily, inside the with-block
            raise MediaError(path, f"truncated or corrupt image ({e})") from None


def _image_timing(path: Path, im: Image.Image) -> tuple[list[int], float]:
    """Repeat count of each stored frame, and the fps.

    GIF and APNG writers (Pillow) and WebP (libwebp) store a run of identical frames as one longer frame, so
    frames are expanded back at the rate of the shortest one.
    """
    durations = []
    try:
        for k in range(getattr(im, "n_frames", 1)):
            im.seek(k)
            im.load()  # WebP sets a frame's duration only when it is decoded
            durations.append(float(im.info.get("duration") or 0))
    except (OSError, EOFError) as e:
        raise MediaError(path, f"truncated or corrupt: read {len(durations)} frames then failed: {e}") from None
    base = min((d for d in durations if d > 0), default=0.0)
    if not base:
        return [1] * len(durations), 0.0
    return [max(1, round(d / base)) for d in durations], 1000.0 / base


def _image_frames(path: Path, start: int, stop: int, stride: int) -> Iterator[np.ndarray]:
    with _open_image(path) as im:
        repeats, _ = _image_timing(path, im)
        i = 0  # index of the first expanded frame of stored frame k
        for k, n in enumerate(repeats):
            wanted = [j for j in range(max(i, start), min(i + n, stop)) if (j - start) % stride == 0]
            if wanted:
                im.seek(k)
                frame = np.array(im.convert("RGB"))  # (H, W, 3)
                yield from (frame.copy() for _ in wanted)
            i += n
            if i >= stop:
                return


def _folder_frames(path: Path) -> list[Path]:
    """The folder's PNGs in natural name order, so frame_2.png comes before frame_10.png."""
    def key(p: Path) -> list[int | str]:
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]

    return sorted(path.glob("*.png"), key=key)


def _probe_folder(path: Path) -> VideoInfo:
    pngs = _folder_frames(path)
    if not pngs:
        raise MediaError(path, "folder holds no *.png frames")
    with _open_image(pngs[0]) as im:
        width, height = im.size
    fps = 0.0
    if (path / FOLDER_META).exists():
        try:
            fps = float(json.loads((path / FOLDER_META).read_text())["fps"])
        except (ValueError, KeyError, TypeError) as e:
            raise MediaError(path / FOLDER_META, f"unreadable frame-folder metadata ({e!r})") from None
    return VideoInfo(str(path), len(pngs), fps, width, height, len(pngs) / fps if fps else 0.0, False, "png", "folder")


def _checked(frames: np.ndarray | Iterable[np.ndarray]) -> tuple[tuple[int, int], Iterator[np.ndarray]]:
    """Peek the first frame for (H, W), then check every frame against it as the stream is consumed."""
    if isinstance(frames, np.ndarray) and frames.ndim != 4:
        raise ValueError(f"frames must be (T, H, W, 3), got shape {frames.shape}; a single image is frames[None]")
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise ValueError("no frames to write")

    def check(frame: np.ndarray) -> np.ndarray:
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"each frame must be a uint8 (H, W, 3) array, got "
                             f"{getattr(frame, 'dtype', type(frame).__name__)} {getattr(frame, 'shape', '')}")
        if frame.shape != first.shape:
            raise ValueError(f"frame of shape {frame.shape} among frames of shape {first.shape}")
        return frame

    check(first)
    return first.shape[:2], map(check, itertools.chain([first], it))


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``, moved onto it only when the block succeeds, so an interrupted
    write never leaves a half-written file at ``path``. The temp name ends in .tmp: give writers the format."""
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a finished file gets ordinary permissions
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_mp4(path: Path, tmp: Path, frames: Iterator[np.ndarray], fps: float, height: int, width: int,
               pix_fmt: str, lossless: bool, crf: int) -> None:
    if lossless:
        codec, pix_fmt, options = "libx264rgb", "rgb24", {"qp": "0"}  # bit-exact RGB; see the module docstring
    elif pix_fmt not in ("yuv420p", "yuv444p"):
        raise ValueError(f"pix_fmt must be 'yuv420p' or 'yuv444p', got {pix_fmt!r}")
    else:
        codec, options = "libx264", {"crf": str(crf)}
    if pix_fmt == "yuv420p" and (height % 2 or width % 2):
        raise SizeError(f"{path}: yuv420p needs even height and width, got {width}x{height}; crop or pad the frames, "
                        f"or pass pix_fmt='yuv444p'")
    rate = Fraction(fps).limit_denominator(1001)
    try:
        # faststart puts the index first, so a copy cut short still decodes up to the cut
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "faststart"}) as container:
            stream = container.add_stream(codec, rate=rate, options=options)
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            stream.codec_context.gop_size = max(1, round(KEYFRAME_SECONDS * fps))
            for i, frame in enumerate(frames):
                video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
                video_frame.pts = i
                container.mux(stream.encode(video_frame))
            container.mux(stream.encode())
    except av.FFmpegError as e:
        raise MediaError(path, f"encoding failed ({e})") from None


def _write_animation(tmp: Path, fmt: str, frames: Iterator[np.ndarray], fps: float, lossless: bool) -> None:
    if lossless and fmt == "GIF":
        raise ValueError("GIF cannot be lossless (256-colour palette); use .webp, .png or .mp4 with lossless=True")
    first, *rest = [Image.fromarray(frame) for frame in frames]  # the APNG writer walks its frames twice
    # GIF keeps 10 ms steps and WebP whole ms; APNG stores the exact fraction
    extra = {"lossless": lossless, "quality": 100 if lossless else 90} if fmt == "WEBP" else {}
    duration = 1000 / fps if fmt == "PNG" else round(1000 / fps)
    first.save(tmp, format=fmt, save_all=True, append_images=rest, duration=duration, loop=0, **extra)


def _write_folder(path: Path, frames: Iterator[np.ndarray], fps: float) -> None:
    """Write 00000.png, 00001.png, ... and meta.json into a temporary folder, then move it onto ``path``."""
    if path.is_dir() and any(p.suffix != ".png" and p.name != FOLDER_META for p in path.iterdir()):
        raise MediaError(path, "folder holds files other than PNG frames; refusing to replace it")
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    old = tmp.with_suffix(".old")
    try:
        for i, frame in enumerate(frames):
            Image.fromarray(frame).save(tmp / f"{i:05d}.png")
        (tmp / FOLDER_META).write_text(json.dumps({"fps": fps}))
        if path.is_dir():
            os.rename(path, old)  # a non-empty folder cannot be replaced in one step
        os.rename(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
