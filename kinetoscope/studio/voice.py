"""Speech for dialogue lines: espeak-ng (Debian package, offline; English, Mandarin and ~100 other languages), one
voice per character (language, variant, pitch, speed), returned as float32 mono samples at RATE."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave

import numpy as np

from kinetoscope.errors import KinetoscopeError
from kinetoscope.studio.storyboard import Voice

RATE = 22050  # espeak-ng's own output rate
SPEECH_FLOOR = 0.02  # a 10 ms window louder than this (peak) is speech: trimming and sync checks agree on it


def espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise KinetoscopeError("espeak-ng is not installed: `apt-get install espeak-ng` (scripts/install-system-deps.sh)")
    return path


def speak(text: str, voice: Voice) -> np.ndarray:
    """``text`` spoken in ``voice``: (N,) float32 in [-1, 1] at RATE, leading and trailing silence trimmed."""
    name = f"{voice.lang}+{voice.variant}" if voice.variant else voice.lang
    cmd = [espeak(), "-v", name, "-p", str(voice.pitch), "-s", str(voice.speed), "--stdout", text]
    try:
        wav = subprocess.run(cmd, capture_output=True, check=True, timeout=60).stdout
    except subprocess.CalledProcessError as e:
        raise KinetoscopeError(f"espeak-ng could not speak {text!r} in {name}: {e.stderr.decode().strip()}") from None
    with wave.open(io.BytesIO(wav)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1, "espeak-ng writes 16-bit mono"
        samples = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768
    return trim(samples)


def trim(samples: np.ndarray, floor: float = SPEECH_FLOOR) -> np.ndarray:
    """Cut leading and trailing silence (10 ms windows whose peak is under ``floor``)."""
    loud = np.flatnonzero(envelope(samples) > floor)
    if not len(loud):
        return samples[:0]
    hop = RATE // 100
    return samples[loud[0] * hop : (loud[-1] + 1) * hop]


def envelope(samples: np.ndarray) -> np.ndarray:
    """Peak |sample| per 10 ms window: what speech detection reads."""
    hop = RATE // 100
    n = len(samples) // hop
    return np.abs(samples[: n * hop]).reshape(n, hop).max(axis=1) if n else np.zeros(0)


def spoken_spans(audio: np.ndarray, cues: list[tuple[float, float]], floor: float = SPEECH_FLOOR
                 ) -> list[tuple[float, float] | None]:  # fmt: skip
    """Where speech actually is for each expected (start, end) in seconds: the first and last envelope window louder
    than ``floor`` between the previous cue's end and the next cue's start (at most 0.2 s outside the cue); None
    where it is silent. Measures subtitle sync."""
    step = (RATE // 100) / RATE  # seconds per envelope window (10 ms, near enough: 220 samples)
    env = envelope(audio) > floor
    spans = []
    for k, (start, end) in enumerate(cues):
        before = cues[k - 1][1] + 0.02 if k else 0.0
        after = cues[k + 1][0] - 0.02 if k + 1 < len(cues) else len(env) * step
        lo, hi = round(max(before, start - 0.2) / step), round(min(after, end + 0.2) / step)
        loud = np.flatnonzero(env[lo:hi]) + lo
        spans.append((loud[0] * step, (loud[-1] + 1) * step) if len(loud) else None)
    return spans
