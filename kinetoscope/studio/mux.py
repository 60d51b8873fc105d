"""Write an episode: H.264 video, AAC audio and a soft ``mov_text`` subtitle track in one MP4, atomically."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from kinetoscope.media import atomic_file
from kinetoscope.studio.subtitles import Cue

# mov_text's encoder will not open without an ASS header; the track itself is plain text (tx3g)
_ASS = (b"[Script Info]\nScriptType: v4.00+\n\n[Events]\n"
        b"Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n")  # fmt: skip


def write_episode(path: str | Path, frames: Iterable[np.ndarray], fps: float, audio: np.ndarray, rate: int,
                  cues: list[Cue], language: str = "und", crf: int = 20) -> Path:  # fmt: skip
    """Frames (H, W, 3) uint8 streamed to H.264 (yuv420p, browser-playable), ``audio`` (N,) float32 mono at ``rate``
    to AAC, ``cues`` to a mov_text track; the file appears at ``path`` only when complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp, av.open(str(tmp), "w", format="mp4") as out:
        rate_q = Fraction(fps).limit_denominator(1001)
        video = out.add_stream("libx264", rate=rate_q)
        video.pix_fmt = "yuv420p"
        video.options = {"crf": str(crf), "movflags": "+faststart"}
        sound = out.add_stream("aac", rate=rate)
        sound.layout = "mono"
        subs = out.add_stream("mov_text")
        subs.codec_context.subtitle_header = _ASS
        subs.time_base = Fraction(1, 1000)
        subs.metadata["language"] = language
        opened = False
        for i, frame in enumerate(frames):
            if not opened:
                video.height, video.width = frame.shape[:2]
                opened = True
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            vf.pts = i
            out.mux(video.encode(vf))
        out.mux(video.encode())
        for k in range(0, len(audio), 1024):
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[None, k : k + 1024], np.float32),
                                            format="fltp", layout="mono")  # fmt: skip
            af.sample_rate, af.pts = rate, k
            out.mux(sound.encode(af))
        out.mux(sound.encode())
        for cue in cues:
            data = cue.text.encode("utf-8")
            packet = av.Packet(struct.pack(">H", len(data)) + data)
            start = round(cue.start * 1000)
            packet.stream, packet.time_base = subs, Fraction(1, 1000)
            packet.pts = packet.dts = start
            packet.duration = max(1, round(cue.end * 1000) - start)
            out.mux(packet)
    return path


def read_subtitles(path: str | Path) -> list[Cue]:
    """The mov_text cues of an MP4 (empty packets, which end a cue, are skipped)."""
    cues = []
    with av.open(str(path)) as c:
        if not c.streams.subtitles:
            return []
        stream = c.streams.subtitles[0]
        for p in c.demux(stream):
            if p.size > 2 and p.pts is not None:
                start = float(p.pts * p.time_base)
                cues.append(Cue(start, start + float((p.duration or 0) * p.time_base), bytes(p)[2:].decode("utf-8")))
    return cues


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """The first audio track as (N,) float32 mono and its rate."""
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        chunks = [f.to_ndarray().mean(axis=0) for f in c.decode(stream)]
        return np.concatenate(chunks).astype(np.float32), stream.sample_rate
