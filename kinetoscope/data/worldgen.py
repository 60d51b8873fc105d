"""Write a world data set: N rendered clips as shards (DESIGN.md §4, §6), in parallel, resumable after a kill.

Layout of ``out_dir``:

    dataset.json          {"kind": "world", "args": {...}, ...}: written first, so a rerun can refuse other args
    clips/000000.mp4      clip 0 (yuv420p H.264)
    clips/000000.json     its manifest record, written only after the MP4 is complete
    manifest.jsonl        all records in index order, written last

Clip i is ``render(sample_spec(i, seed, ...))``, a pure function of (i, args), so clips can be made in any order by
any process. Both files of a clip are written under a temporary name and renamed into place, and the JSON comes
second: a clip exists iff its JSON exists. A rerun with the same args sweeps temp files, keeps every clip whose JSON
and non-empty MP4 exist, renders the rest, and writes the manifest, so a run killed at any point ends, after one
rerun, with exactly N clips and no duplicates.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import multiprocessing as mp
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from kinetoscope.data.folder import init_pool_worker, pool_results, sweep_temps, write_meta, writing
from kinetoscope.data.shards import MANIFEST, ClipRecord, atomic_open, atomic_write_text, parse_record, record_line
from kinetoscope.errors import DataError, KinetoscopeError, SizeError
from kinetoscope.sizes import check_size
from kinetoscope.world import render
from kinetoscope.world.clip import (DEFAULT_FPS, DEFAULT_FRAMES, DEFAULT_SIZES, DRILLS, FAMILIES, KNOWN_FAMILIES,
                                   sample_spec)

FORMAT = 1
START_METHOD = "fork"  # measured: see write_world_dataset's docstring


@dataclass(frozen=True)
class WorldSummary:
    """What one call did: ``rendered`` clips now plus ``skipped`` ones a killed run had already made."""

    out_dir: Path
    clips: int
    rendered: int
    skipped: int
    wall_s: float
    clips_per_s: float  # rendered / wall_s, the whole call (set-up and manifest included)


@dataclass(frozen=True)
class _Job:
    """What a worker needs to render any clip of the data set (picklable, sent once per worker)."""

    clip_dir: Path
    seed: int
    families: tuple[str, ...]
    sizes: tuple[tuple[int, int], ...]
    frames: tuple[int, ...]
    fps: tuple[int, ...]
    crf: int


def write_world_dataset(
    out_dir: str | os.PathLike,
    clips: int,
    *,
    seed: int = 0,
    families: tuple[str, ...] = FAMILIES,
    sizes: tuple[tuple[int, int], ...] = DEFAULT_SIZES,
    frames: tuple[int, ...] = DEFAULT_FRAMES,
    fps: tuple[int, ...] = DEFAULT_FPS,
    workers: int = 2,
    progress: bool = True,
    crf: int = 18,
    start_method: str = START_METHOD,
) -> WorldSummary:
    """Render clips 0..clips-1 of the world into ``out_dir`` (sizes are (height, width)); resume if it was cut off.

    Workers are processes; "fork" and "forkserver" gave the same clips/s on 2 cores (rendering dominates), and
    fork starts faster. A worker dies with its parent, so a killed run leaves no orphan writing files.
    """
    t0 = time.perf_counter()
    job_args = _checked_args(clips, seed, families, sizes, frames, fps, crf, workers)
    with writing(out_dir, "world", job_args, FORMAT) as out:
        clip_dir = out / "clips"
        clip_dir.mkdir(exist_ok=True)
        todo = _sweep(out, clip_dir, clips)
        job = _Job(clip_dir, seed, tuple(families), tuple(map(tuple, sizes)), tuple(frames), tuple(fps), crf)
        _render_all(job, todo, workers, start_method, progress, total=clips)
        counts = _write_manifest(out, clip_dir, clips)
        wall = time.perf_counter() - t0
        summary = WorldSummary(out, clips, len(todo), clips - len(todo), wall, len(todo) / wall)
        meta = {"kind": "world", "format": FORMAT, "args": job_args, "complete": True, **counts,
                "last_run": {"rendered": summary.rendered, "skipped": summary.skipped, "wall_s": round(wall, 3),
                             "clips_per_s": round(summary.clips_per_s, 3), "workers": workers,
                             "start_method": start_method}}  # fmt: skip
        write_meta(out, meta)
    return summary


def available_families() -> tuple[str, ...]:
    """The families whose renderer module exists (all of FAMILIES once the world is complete)."""
    return tuple(f for f in FAMILIES if importlib.util.find_spec(f"kinetoscope.world.{f}") is not None)


def _checked_args(clips, seed, families, sizes, frames, fps, crf, workers) -> dict:
    """Refuse impossible arguments before touching the disk; return them in the JSON form dataset.json keeps."""
    if isinstance(clips, bool) or not isinstance(clips, int) or clips < 1:
        raise KinetoscopeError(f"clips must be a whole number >= 1, got {clips!r}")
    if not isinstance(seed, int) or seed < 0:
        raise KinetoscopeError(f"seed must be a whole number >= 0, got {seed!r}")
    if workers < 1:
        raise KinetoscopeError(f"workers must be >= 1, got {workers}")
    if not 0 <= crf <= 51:
        raise KinetoscopeError(f"crf must be in 0..51 (H.264), got {crf}")
    for name, values in (("families", families), ("sizes", sizes), ("frames", frames), ("fps", fps)):
        if not values:
            raise KinetoscopeError(f"{name} is empty; give at least one")
    for family in families:
        if family not in KNOWN_FAMILIES:
            raise KinetoscopeError(f"unknown family {family!r}; known: {', '.join(KNOWN_FAMILIES)}")
    for h, w in sizes:
        try:
            check_size(h, w, 1)
        except SizeError as e:
            raise SizeError(f"size {h}x{w} (height x width): {e}") from None
    for t in frames:
        check_size(sizes[0][0], sizes[0][1], t)  # frame counts alone first, then every combination's volume
    for h, w in sizes:
        for t in frames:
            check_size(h, w, t)
    for f in fps:
        if isinstance(f, bool) or not isinstance(f, int) or not 1 <= f <= 120:
            raise KinetoscopeError(f"fps {f!r} is outside 1..120 (whole frames per second)")
    missing = [f for f in families if DRILLS.get(f, f) not in available_families()]
    if missing:
        raise KinetoscopeError(f"family {missing[0]!r} has no renderer yet (kinetoscope/world/{missing[0]}.py); "
                               f"available: {', '.join(available_families()) or 'none'}")
    return {"clips": clips, "seed": seed, "families": list(families), "sizes": [[h, w] for h, w in sizes],
            "frames": list(frames), "fps": list(fps), "crf": crf}  # fmt: skip


def _sweep(out: Path, clip_dir: Path, clips: int) -> list[int]:
    """Delete temp files and half-made clips a killed run left; return the indices still to render."""
    sweep_temps([out, clip_dir])
    sizes = {e.name: e.stat().st_size for e in os.scandir(clip_dir)}
    todo = []
    for i in range(clips):
        stem = f"{i:06d}"
        if f"{stem}.json" in sizes and sizes.get(f"{stem}.mp4", 0) > 0:
            continue
        for name in (f"{stem}.json", f"{stem}.mp4"):  # a JSON without its MP4, or an MP4 whose JSON never came
            if name in sizes:
                os.unlink(clip_dir / name)
        todo.append(i)
    return todo


def _render_all(job: _Job, todo: list[int], workers: int, start_method: str, progress: bool, total: int) -> None:
    import kinetoscope.media  # noqa: F401  imports torch (2 s): once, here, before the fork, so workers share it

    workers = min(workers, len(todo))
    if workers <= 1:
        _init_worker(job, in_pool=False)
        with _bar(total, total - len(todo), progress) as bar:
            for i in todo:
                _render_one(i)
                bar.update()
        return
    ctx = mp.get_context(start_method)
    if start_method == "forkserver":
        ctx.set_forkserver_preload(["kinetoscope.media", "kinetoscope.data.worldgen"])
    parent = os.getpid() if start_method == "fork" else None
    chunk = max(1, min(8, len(todo) // (8 * workers)))  # small chunks: clip costs vary 100x across sizes
    # The pool forks before tqdm starts its monitor thread: forking a process with threads is unsafe.
    with pool_results(_render_one, todo, workers, _init_worker, (job, True, parent), start_method=start_method,
                      chunksize=chunk) as done, _bar(total, total - len(todo), progress) as bar:  # fmt: skip
        for _ in done:
            bar.update()


def _bar(total: int, done: int, progress: bool) -> tqdm:
    return tqdm(total=total, initial=done, unit="clip", desc="world", disable=not progress, smoothing=0.05)


_JOB: _Job | None = None


def _init_worker(job: _Job, in_pool: bool, parent: int | None = None) -> None:
    global _JOB
    _JOB = job
    if in_pool:
        init_pool_worker(parent)


def _render_one(i: int) -> int:
    """Render clip i and write its MP4, then its JSON record; both appear atomically, the JSON last."""
    from kinetoscope.media import write_video

    job = _JOB
    spec = sample_spec(i, job.seed, job.families, job.sizes, job.frames, job.fps)
    clip = render(spec)
    t, h, w, _ = clip.frames.shape
    assert (t, h, w) == (spec.frames, spec.height, spec.width), f"{spec} rendered {clip.frames.shape}"
    stem = f"{i:06d}"
    write_video(job.clip_dir / f"{stem}.mp4", clip.frames, clip.fps, crf=job.crf)
    record = ClipRecord(
        path=f"clips/{stem}.mp4",
        frames=t,
        fps=clip.fps,
        height=h,
        width=w,
        captions={"terse": clip.terse, "detailed": clip.detailed},
        source="world",
        script=clip.script,
        spec=dataclasses.asdict(spec),
    )
    atomic_write_text(job.clip_dir / f"{stem}.json", record_line(record) + "\n")
    return i


def _write_manifest(out: Path, clip_dir: Path, clips: int) -> dict:
    """Stream the clips' JSON records into manifest.jsonl in index order (memory flat in N); return counts."""
    families: Counter[str] = Counter()
    buckets: Counter[tuple[int, int, int]] = Counter()
    with atomic_open(out / MANIFEST, fsync=True) as f:
        for i in range(clips):
            path = clip_dir / f"{i:06d}.json"
            try:
                record = parse_record(path.read_text(encoding="utf-8"), str(path))
            except FileNotFoundError:
                raise DataError(f"{path}: missing after rendering; was another process writing here?") from None
            f.write(record_line(record) + "\n")
            families[record.spec["family"]] += 1
            buckets[record.bucket] += 1
    return {
        "clips": clips,
        "families": dict(sorted(families.items())),
        "buckets": [{"frames": t, "height": h, "width": w, "clips": n} for (t, h, w), n in sorted(buckets.items())],
    }
