"""Media I/O against real files written at test time: round trips per format, slicing, limits, atomic writes, and a
MediaError naming the file for every way a file on disk can be broken."""

from __future__ import annotations

import json
import multiprocessing
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from kinetoscope.errors import MediaError, SizeError
from kinetoscope.media import (
    SEEK_AFTER,
    VideoInfo,
    frames_to_tensor,
    iter_frames,
    iter_timed_frames,
    probe,
    read_video,
    tensor_to_frames,
    write_video,
)


def smooth_clip(t: int = 12, h: int = 48, w: int = 64) -> np.ndarray:
    """A drifting colour gradient: the kind of content lossy codecs keep well."""
    tt, yy, xx = np.meshgrid(np.arange(t), np.arange(h), np.arange(w), indexing="ij")  # (T, H, W) each
    channels = [128 + 90 * np.sin(0.08 * xx + 0.05 * yy + 0.3 * tt + phase) for phase in (0.0, 2.0, 4.0)]
    return np.stack(channels, -1).round().astype(np.uint8)  # (T, H, W, 3)


def noise_clip(t: int = 6, h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def indexed_clip(t: int, h: int = 16, w: int = 16) -> np.ndarray:
    """Grey frames whose top-left 4x4 patch holds 3 * i: frame i says which one it is, and frames differ so little
    that the encoder keeps its regular keyframe interval (no scene cuts)."""
    frames = np.full((t, h, w, 3), 128, np.uint8)  # (T, H, W, 3)
    frames[:, :4, :4] = (3 * np.arange(t, dtype=np.uint8))[:, None, None, None]
    return frames


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def write_av(path: Path, *, video: bool = True, audio: bool = False, faststart: bool = False, t: int = 48) -> Path:
    """Encode with PyAV directly: H.264 noise frames and/or a 440 Hz AAC tone."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=options) as container:
        if video:
            vs = container.add_stream("libx264", rate=24)
            vs.width, vs.height, vs.pix_fmt = 64, 64, "yuv420p"
        if audio:
            aus = container.add_stream("aac", rate=44100)
            tone = np.sin(2 * np.pi * 440 * np.arange(44100) / 44100).astype(np.float32)[None]  # (1, samples)
            for k in range(0, tone.shape[1], 1024):
                chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, k:k + 1024]), format="fltp",
                                                   layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = 44100, k, Fraction(1, 44100)
                container.mux(aus.encode(chunk))
            container.mux(aus.encode())
        if video:
            for frame in noise_clip(t, 64, 64):
                container.mux(vs.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(vs.encode())
    return path


def cut(path: Path, fraction: float) -> Path:
    data = path.read_bytes()
    out = path.with_name(f"cut_{path.name}")
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


# Round trips ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv444p"])
def test_mp4_lossy_round_trip_and_probe(tmp_path: Path, pix_fmt: str) -> None:
    frames = smooth_clip()
    path = write_video(tmp_path / "clip.mp4", frames, 24, pix_fmt=pix_fmt)
    assert probe(path) == VideoInfo(str(path), 12, 24.0, 64, 48, 0.5, False, "h264", "mp4")
    back = read_video(path)
    assert back.shape == frames.shape and back.dtype == np.uint8
    assert psnr(back, frames) > 35


def test_mp4_lossless_is_bit_exact(tmp_path: Path) -> None:
    frames = noise_clip(h=23, w=31)  # odd sizes are fine: libx264rgb has no chroma subsampling
    path = write_video(tmp_path / "exact.mp4", frames, 30, lossless=True)
    np.testing.assert_array_equal(read_video(path), frames)


def test_gif_round_trip_is_approximate(tmp_path: Path) -> None:
    frames = smooth_clip(t=6)
    path = write_video(tmp_path / "clip.gif", frames, 25)
    info = probe(path)
    assert (info.frames, info.width, info.height, info.fps, info.codec) == (6, 64, 48, 25.0, "gif")
    assert psnr(read_video(path), frames) > 25  # a 256-colour palette per frame


@pytest.mark.parametrize("name", ["clip.webp", "clip.png", "clip.apng", "frames"])
def test_exact_formats_round_trip(tmp_path: Path, name: str) -> None:
    frames = noise_clip()
    path = write_video(tmp_path / name, frames, 20, lossless=True)
    np.testing.assert_array_equal(read_video(path), frames)
    info = probe(path)
    assert (info.frames, info.width, info.height, info.fps, info.duration) == (6, 32, 24, 20.0, 0.3)


def test_repeated_frames_survive_pillow_merging(tmp_path: Path) -> None:
    frames = noise_clip(t=4)
    frames[1:3] = frames[1]  # Pillow stores this run as one frame twice as long
    for name in ("runs.png", "runs.webp"):
        np.testing.assert_array_equal(read_video(write_video(tmp_path / name, frames, 10, lossless=True)), frames)


def test_png_folder_writes_meta_and_replaces_old_frames(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    write_video(folder, noise_clip(t=5), 12)
    write_video(folder, noise_clip(t=3, seed=1), 8)
    assert sorted(p.name for p in folder.iterdir()) == ["00000.png", "00001.png", "00002.png", "meta.json"]
    assert json.loads((folder / "meta.json").read_text()) == {"fps": 8}
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(MediaError, match="other than PNG frames"):
        write_video(folder, noise_clip(t=1), 8)


@pytest.mark.parametrize("name", ["one.mp4", "one.gif", "one.webp", "one.png", "one"])
def test_one_frame_video(tmp_path: Path, name: str) -> None:
    frames = smooth_clip(t=1)
    path = write_video(tmp_path / name, frames, 24)
    assert probe(path).frames == 1
    back = read_video(path)
    assert back.shape == (1, 48, 64, 3) and psnr(back, frames) > 25


def test_streamed_frames_are_written(tmp_path: Path) -> None:
    frames = smooth_clip(t=8)
    path = write_video(tmp_path / "streamed.mp4", (f for f in frames), 24, lossless=True)
    np.testing.assert_array_equal(read_video(path), frames)


def test_has_audio(tmp_path: Path) -> None:
    assert probe(write_av(tmp_path / "av.mp4", audio=True)).has_audio
    assert not probe(write_av(tmp_path / "v.mp4")).has_audio


# Slicing and limits ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["idx.mp4", "idx.png", "idx.webp", "idx"])
@pytest.mark.parametrize(("start", "stop", "stride"), [(0, None, 1), (3, 11, 2), (SEEK_AFTER + 29, None, 4),
                                                      (SEEK_AFTER + 3, SEEK_AFTER + 9, 3), (70, None, 1)])
def test_iter_frames_selects_the_right_frames(tmp_path: Path, name: str, start: int, stop: int | None,
                                              stride: int) -> None:
    path = write_video(tmp_path / name, indexed_clip(60), 10, lossless=True)  # keyframes every 20 frames in MP4
    got = [int(frame[0, 0, 0]) // 3 for frame in iter_frames(path, start=start, stop=stop, stride=stride)]
    assert got == list(range(60))[start:stop:stride]


def test_read_video_refuses_selections_past_max_bytes(tmp_path: Path) -> None:
    path = write_video(tmp_path / "big.mp4", smooth_clip(), 24)
    frame_bytes = 48 * 64 * 3
    with pytest.raises(MediaError, match=r"big\.mp4: reading 12 frames .* iter_frames"):
        read_video(path, max_bytes=frame_bytes * 11)
    assert read_video(path, stride=2, max_bytes=frame_bytes * 6).shape == (6, 48, 64, 3)
    assert len(list(iter_frames(path))) == 12


# Errors from real broken files ----------------------------------------------------------------------------------


def broken_truncated(tmp: Path) -> Path:
    return cut(write_av(tmp / "moov_at_end.mp4"), 0.4)


def broken_empty(tmp: Path) -> Path:
    (tmp / "empty.mp4").touch()
    return tmp / "empty.mp4"


def broken_text(tmp: Path) -> Path:
    (tmp / "notes.mp4").write_text("these are not the frames you are looking for\n" * 20)
    return tmp / "notes.mp4"


def broken_audio_only(tmp: Path) -> Path:
    return write_av(tmp / "song.mp4", video=False, audio=True)


def broken_missing(tmp: Path) -> Path:
    return tmp / "nowhere.mp4"


def broken_gif(tmp: Path) -> Path:
    (tmp / "fake.gif").write_bytes(b"GIF89a\x00garbage")
    return tmp / "fake.gif"


def broken_gif_truncated(tmp: Path) -> Path:
    return cut(write_video(tmp / "anim.gif", noise_clip(), 10), 0.5)


def broken_empty_folder(tmp: Path) -> Path:
    (tmp / "blank").mkdir()
    return tmp / "blank"


READERS = {
    "probe": probe,
    "iter_frames": lambda p: list(iter_frames(p)),
    "read_video": read_video,
}


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(("make", "problem"), [
    (broken_truncated, "truncated or corrupt"),
    (broken_empty, r"file is empty \(0 bytes\)"),
    (broken_text, "not a video file"),
    (broken_audio_only, r"no video stream \(audio only\)"),
    (broken_missing, "no such file"),
    (broken_gif, "not a GIF file"),
    (broken_gif_truncated, "truncated or corrupt"),
    (broken_empty_folder, "no \\*.png frames"),
])
def test_broken_files_raise_media_error(tmp_path: Path, make, problem: str, reader: str) -> None:
    path = make(tmp_path)
    with pytest.raises(MediaError, match=problem) as err:
        READERS[reader](path)
    assert path.name in str(err.value) and str(err.value).startswith(str(path))


@pytest.mark.parametrize("reader", ["iter_frames", "read_video"])
def test_truncated_faststart_mp4_fails_after_decoding_some_frames(tmp_path: Path, reader: str) -> None:
    path = cut(write_av(tmp_path / "faststart.mp4", faststart=True), 0.4)
    assert probe(path).frames == 48  # the index is intact; the frames behind it are gone
    with pytest.raises(MediaError, match=r"cut_faststart\.mp4: truncated or corrupt: decoded \d+ frames"):
        READERS[reader](path)


@pytest.mark.parametrize("reader", ["iter_frames", "read_video"])
def test_broken_frame_in_folder_is_named(tmp_path: Path, reader: str) -> None:
    folder = write_video(tmp_path / "frames", noise_clip(), 10)
    (folder / "00003.png").write_bytes((folder / "00003.png").read_bytes()[:100])
    with pytest.raises(MediaError, match=r"frames/00003\.png: truncated or corrupt image"):
        READERS[reader](folder)


def _ffmpeg_threads() -> list[str]:
    """Names of this process's FFmpeg decoder threads (FFmpeg names them "av:<codec>:...")."""
    names = [Path(f"/proc/self/task/{t}/comm").read_text().strip() for t in os.listdir("/proc/self/task")]
    return [n for n in names if n.startswith("av:")]


def test_the_strict_reader_decodes_without_ffmpeg_threads(tmp_path: Path) -> None:
    """While FFmpeg's log goes to Python (the strict reader watches it for damage), a decoder thread that logs waits
    for the GIL that closing the codec holds: a deadlock (it hung curation about one run in thirty). So no threads."""
    path = write_video(tmp_path / "a.mp4", smooth_clip(24), 12)
    during = [_ffmpeg_threads() for _ in iter_frames(path)]
    assert any(during)  # the plain reader does use them, so the check below can see them
    assert not any(_ffmpeg_threads() for _ in iter_timed_frames(path))


@pytest.mark.parametrize("reader", [read_video, lambda p: list(iter_timed_frames(p, size=(32, 24)))])
def test_a_process_forked_after_a_read_can_read(tmp_path: Path, reader) -> None:
    """A read here, then a fork (a DataLoader or pool worker): the child reads too. With swscale's automatic thread
    pool the child inherited the pool without its threads and waited for them forever."""
    path = write_video(tmp_path / "a.mp4", smooth_clip(9), 12)
    reader(path)
    child = multiprocessing.get_context("fork").Process(target=reader, args=(path,))
    child.start()
    child.join(60)
    if child.exitcode is None:
        child.kill()
    assert child.exitcode == 0, "the forked reader hung" if child.exitcode is None else child.exitcode


# Writing --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a.mp4", "a.gif", "a.webp", "a.png", "a"])
def test_writes_leave_no_temp_files(tmp_path: Path, name: str) -> None:
    write_video(tmp_path / name, smooth_clip(t=3), 24)
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    def frames():
        yield from smooth_clip(t=3)
        yield np.zeros((8, 8, 3), np.uint8)  # wrong size, discovered mid-stream

    for name in ("fail.mp4", "fail"):
        with pytest.raises(ValueError, match="shape"):
            write_video(tmp_path / name, frames(), 24)
    assert list(tmp_path.iterdir()) == []


def test_odd_sizes_need_yuv444p_or_lossless(tmp_path: Path) -> None:
    with pytest.raises(SizeError, match="yuv420p needs even height and width, got 31x23"):
        write_video(tmp_path / "odd.mp4", noise_clip(h=23, w=31), 24)
    assert probe(write_video(tmp_path / "odd.mp4", noise_clip(h=23, w=31), 24, pix_fmt="yuv444p")).width == 31


def test_bad_frames_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        write_video(tmp_path / "x.mp4", noise_clip()[0], 24)
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "x.mp4", noise_clip().astype(np.float32), 24)
    with pytest.raises(ValueError, match="GIF cannot be lossless"):
        write_video(tmp_path / "x.gif", noise_clip(), 24, lossless=True)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="suffix"):
        write_video(tmp_path / "x.avi", noise_clip(), 24)


# Tensors --------------------------------------------------------------------------------------------------------


def test_tensor_round_trip() -> None:
    frames = noise_clip()
    x = frames_to_tensor(frames)
    assert x.shape == (3, 6, 24, 32) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    np.testing.assert_array_equal(tensor_to_frames(x), frames)
    assert tensor_to_frames(torch.full((3, 1, 2, 2), 5.0)).max() == 255  # clamped
