"""Where the shots of a real video begin and end, and which of its frames become which training clip.

``scan`` decodes a file once at a small size, strictly (damage is an error), and finds hard cuts with
PySceneDetect's content detector. ``plan_clips`` is pure: from the frame times and the cuts it picks, for each clip,
the source frames nearest to the clip's output times at the target fps (fps resampling), keeping clips inside one
shot and `1 + 4k` frames long. ``nearest_bucket`` picks the training size whose aspect is closest to the footage's, so
vertical footage stays vertical.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
from scenedetect.common import FrameTimecode
from scenedetect.detectors import ContentDetector

from kinetoscope.errors import DataError
from kinetoscope.media import VideoInfo, iter_timed_frames, probe
from kinetoscope.sizes import is_valid_frames

ANALYSIS_WIDTH = 128  # cut detection runs on frames this wide: the content detector averages over pixels anyway
MIN_SHOT_SECONDS = 0.4  # two cuts closer than this are one cut (a flash, a fast pan)
CUT_THRESHOLD = 27.0  # PySceneDetect's default for its content detector


@dataclass(frozen=True)
class Scan:
    """A decoded file: its header, the time of every frame, and the frames where a new shot starts."""

    info: VideoInfo
    times: np.ndarray  # (N,) float64 seconds, one per decoded frame
    cuts: tuple[int, ...]  # frame indices that start a new shot (0 is never listed)

    @property
    def shots(self) -> list[tuple[int, int]]:
        """[start, stop) frame ranges of the shots."""
        edges = [0, *self.cuts, len(self.times)]
        return [(a, b) for a, b in pairwise(edges) if b > a]


@dataclass(frozen=True)
class ClipPlan:
    """One output clip: the source frame shown at each of its output frames, and where it sits in the source."""

    shot: int
    frames: tuple[int, ...]  # source frame index per output frame; repeats when the source is slower than the target
    start_s: float
    end_s: float


def scan(path: str | Path, threshold: float = CUT_THRESHOLD) -> Scan:
    """Decode ``path`` once at ANALYSIS_WIDTH and find its cuts; MediaError if it is unreadable, damaged or cut short."""
    info = probe(path)
    if info.width < 1 or info.height < 1:
        raise DataError(f"{path}: the video stream has no picture size")
    height = max(2, 2 * round(ANALYSIS_WIDTH * info.height / info.width / 2))
    fps = info.fps if info.fps > 0 else 25.0
    detector = ContentDetector(threshold=threshold, min_scene_len=max(2, round(MIN_SHOT_SECONDS * fps)))
    times, cuts = [], []
    for i, (t, bgr) in enumerate(iter_timed_frames(path, size=(ANALYSIS_WIDTH, height), fmt="bgr24")):
        times.append(t)
        cuts += [c.frame_num for c in detector.process_frame(FrameTimecode(i, fps), bgr)]
    return Scan(info, np.asarray(times, np.float64), tuple(sorted({c for c in cuts if 0 < c < len(times)})))


def plan_clips(times: np.ndarray, cuts: Sequence[int], fps: float, lengths: Sequence[int], min_seconds: float,
               src_fps: float) -> list[ClipPlan]:  # fmt: skip
    """Cut every shot into back-to-back clips of the longest allowed length, resampled to ``fps``.

    Output frame k of a shot shows the source frame nearest to ``shot start + k / fps``. A shot shorter than
    ``min_seconds`` gives nothing; what is left at a shot's end becomes a clip of the longest allowed length that
    fits, or is dropped.
    """
    assert all(is_valid_frames(n) for n in lengths), lengths
    lengths = sorted(set(lengths), reverse=True)
    frame_s = 1 / src_fps if src_fps > 0 else float(np.median(np.diff(times))) if len(times) > 1 else 1 / fps
    edges = [0, *cuts, len(times)]
    plans = []
    for shot, (a, b) in enumerate(pairwise(edges)):
        if b <= a:
            continue
        start, end = times[a], times[b - 1] + frame_s  # the shot is on screen from its first frame to past its last
        if end - start < min_seconds - 1e-6:
            continue
        # output times run to half a source frame past the last frame's time: nearer than that, the last frame is
        # the nearest one; further, a frame the shot does not have would be (upsampling would hold it too long)
        n_out = math.floor((end - frame_s / 2 - start) * fps + 1e-6) + 1
        wanted = start + np.arange(n_out) / fps  # output times
        # nearest source frame: the last frame starting at or before each midpoint between frames
        mids = np.concatenate([(times[a : b - 1] + times[a + 1 : b]) / 2, [np.inf]])
        picks = a + np.searchsorted(mids, wanted, side="left")
        k = 0
        while k < n_out:
            n = next((n for n in lengths if n <= n_out - k), None)
            if n is None:
                break
            chosen = tuple(int(i) for i in picks[k : k + n])
            plans.append(ClipPlan(shot, chosen, float(wanted[k]), float(min(wanted[k + n - 1] + 1 / fps, end))))
            k += n
    return plans


def nearest_bucket(width: int, height: int, sizes: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The (height, width) of ``sizes`` whose aspect is closest to width:height on a log scale (ties: the larger)."""
    if not sizes:
        raise DataError("no sizes to choose a bucket from")
    aspect = math.log(width / height)
    return min(sizes, key=lambda hw: (abs(math.log(hw[1] / hw[0]) - aspect), -hw[0] * hw[1]))


def cover_size(width: int, height: int, bucket: tuple[int, int]) -> tuple[int, int]:
    """(width, height) to scale footage to so that it covers the (height, width) bucket with the least cropping."""
    bh, bw = bucket
    k = max(bw / width, bh / height)
    return max(bw, round(width * k)), max(bh, round(height * k))
