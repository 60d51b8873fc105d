"""The editor hand-off: the episode as an OpenTimelineIO timeline (``.otio``), the industry's interchange format.

One video track holds the main line's shots as clips (each referencing its shot file in the project folder, in
frames at the episode's rate, placed where the episode has it: crossfades overlap, so later clips start earlier than
the sum of the earlier ones), one audio track holds each spoken line (its WAV), and every subtitle is a marker on the
video track with its text. Gaps fill the space between clips, so each clip's position in the track is its place in
the cut.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import opentimelineio as otio

from kinetoscope.media import atomic_file
from kinetoscope.studio.subtitles import Cue


def _rt(frames: float, fps: float) -> otio.opentime.RationalTime:
    return otio.opentime.RationalTime(frames, fps)


def write_timeline(path: Path, board, placed: list[tuple[str, int]], made: dict, lines: list[tuple[Cue, Path]],
                   total: int) -> Path:  # fmt: skip
    """Write ``path`` (.otio) for the main line ``placed`` [(shot id, start frame)] of ``total`` frames; ``lines``
    are the subtitles on the episode's clock with the WAV each was spoken into."""
    fps = board.fps
    timeline = otio.schema.Timeline(name=board.title, global_start_time=_rt(0, fps))
    video = otio.schema.Track(name="shots", kind=otio.schema.TrackKind.Video)
    audio = otio.schema.Track(name="dialogue", kind=otio.schema.TrackKind.Audio)
    at = 0
    for shot_id, start in placed:
        r = made[shot_id]
        n = len(r.frames)
        if start < at:  # a crossfade: this clip begins under the previous one; trim the overlap from its head
            head = at - start
        else:
            head = 0
            if start > at:
                video.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(_rt(0, fps), _rt(start - at, fps))))
        clip = otio.schema.Clip(name=shot_id, media_reference=otio.schema.ExternalReference(
                                    target_url=r.file.resolve().as_uri(),
                                    available_range=otio.opentime.TimeRange(_rt(0, fps), _rt(n, fps))),
                                source_range=otio.opentime.TimeRange(_rt(head, fps), _rt(n - head, fps)))  # fmt: skip
        clip.metadata["kinetoscope"] = {"shot": asdict(r.shot), "start_frame": start}
        video.append(clip)
        at = start + n
    if at < total:
        video.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(_rt(0, fps), _rt(total - at, fps))))
    at_ms = 0
    for cue, wav in lines:
        a, b = round(cue.start * 1000), round(cue.end * 1000)
        if a > at_ms:
            audio.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(_rt(0, 1000), _rt(a - at_ms, 1000))))
        span = otio.opentime.TimeRange(_rt(0, 1000), _rt(b - a, 1000))
        reference = otio.schema.ExternalReference(target_url=wav.resolve().as_uri())
        audio.append(otio.schema.Clip(name=f"{cue.who}: {cue.text}", media_reference=reference, source_range=span))
        at_ms = b
        video.markers.append(otio.schema.Marker(name=cue.text, metadata={"who": cue.who},
                                                marked_range=otio.opentime.TimeRange(_rt(a, 1000), _rt(b - a, 1000))))
    timeline.tracks.append(video)
    timeline.tracks.append(audio)
    with atomic_file(path) as tmp:
        otio.adapters.write_to_file(timeline, str(tmp), adapter_name="otio_json")
    return path
