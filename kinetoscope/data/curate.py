"""``kinetoscope curate``: a folder of real footage in, training shards out (DESIGN.md §5, §6), resumable after a kill.

For every file under IN_DIR (a process pool, one file per task, biggest first):

1. **scan** (data/scenes.py): decode once at a small size, strictly; an unreadable, empty, truncated, damaged or
   audio-only file is skipped with the reason. Shots are found with PySceneDetect.
2. **plan**: every shot becomes back-to-back clips of ``1 + 4k`` frames resampled to the target fps.
3. **normalize**: decode again, scaled by FFmpeg to cover the bucket of the nearest aspect and center-cropped, one
   clip in memory at a time (a long video is never held whole).
4. **score and filter** (data/quality.py): dark, blown out, flicker, static clips are rejected with their scores;
   the kept clips are written as MP4s with their scores in the manifest.
5. **captions** come from sidecars (data/captions.py); a clip without one keeps the empty caption.

Then, in one process: near-duplicates across all clips are dropped (the first in path order stays), and
``manifest.jsonl``, ``curate_report.json`` and ``dataset.json`` are written.

Layout of the output folder:

    dataset.json               {"kind": "curated", "args": {...}}: written first, so a rerun can refuse other args
    clips/<name>-<hash>/0003.mp4   clip 3 of one input file (names are sanitized: nothing escapes the folder)
    clips/<name>-<hash>.json   that file's result (clips, rejects, cuts, or why it was skipped), written last
    manifest.jsonl             every kept clip, in input path order
    curate_report.json         what was skipped, rejected and kept, and why

A file is done iff its result JSON exists and names the same size and mtime. A rerun sweeps temp files, deletes the
half-made clip folders of files without a result, and curates only those: a run killed at any point ends, after one
rerun, with each clip once and every clip whole. The unit of resumption is one input file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from kinetoscope.data.captions import SIDECAR_SUFFIXES, CaptionBook
from kinetoscope.data.folder import init_pool_worker, pool_results, sweep_temps, write_meta, writing
from kinetoscope.data.quality import (
    SIG_FRAMES,
    SIG_SIDE,
    Thresholds,
    near_duplicates,
    score,
    signature,
    thumbnails,
    verdict,
)
from kinetoscope.data.scenes import ClipPlan, cover_size, nearest_bucket, plan_clips, scan
from kinetoscope.data.shards import ClipRecord, atomic_write_text, write_manifest
from kinetoscope.errors import DataError, KinetoscopeError, SizeError
from kinetoscope.media import iter_timed_frames, write_video
from kinetoscope.sizes import check_size, is_valid_frames

FORMAT = 1
REPORT = "curate_report.json"
# (height, width) buckets of ~37k pixels: 16:9, 9:16, 4:3, 3:4, 1:1, 2.5:1
DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((144, 256), (256, 144), (144, 192), (192, 144), (176, 176), (128, 320))
DEFAULT_FRAMES: tuple[int, ...] = (9, 17, 33)


@dataclass(frozen=True)
class CurateOptions:
    """What every clip is normalized to and where clips are rejected."""

    fps: float = 8.0
    sizes: tuple[tuple[int, int], ...] = DEFAULT_SIZES  # (height, width) buckets
    frames: tuple[int, ...] = DEFAULT_FRAMES  # allowed clip lengths, each 1 + 4k
    min_seconds: float = 1.0  # shots shorter than this give no clip
    thresholds: Thresholds = field(default_factory=Thresholds)
    crf: int = 18

    def checked(self) -> dict:
        """Refuse impossible options before touching the disk; return their JSON form (kept in dataset.json)."""
        if not 1 <= self.fps <= 120:
            raise KinetoscopeError(f"fps {self.fps} is outside 1..120")
        if not self.sizes or not self.frames:
            raise KinetoscopeError("give at least one size and one frame count")
        for n in self.frames:
            if not is_valid_frames(n) or n < 5:
                raise SizeError(f"clip length {n} is not 1 + 4k frames with k >= 1 (5, 9, 17, 33, ...)")
        for h, w in self.sizes:
            for n in self.frames:
                check_size(h, w, n)
        if self.min_seconds < 0:
            raise KinetoscopeError(f"min-seconds must be >= 0, got {self.min_seconds}")
        if not 0 <= self.crf <= 51:
            raise KinetoscopeError(f"crf must be in 0..51 (H.264), got {self.crf}")
        return {"fps": self.fps, "sizes": [list(s) for s in self.sizes], "frames": list(self.frames),
                "min_seconds": self.min_seconds, "thresholds": asdict(self.thresholds), "crf": self.crf}  # fmt: skip


@dataclass(frozen=True)
class CurateSummary:
    """What a run produced (the report has the details)."""

    out_dir: Path
    files: int
    skipped: int  # files that gave nothing: unreadable, damaged, truncated, no video
    clips: int
    rejected: dict[str, int]  # reason -> clips
    footage_s: float  # seconds of input footage read by this run
    wall_s: float
    curated_now: int  # files curated by this run (the rest were done by a killed one)

    @property
    def throughput(self) -> float:
        """Seconds of footage per second of wall time, this run."""
        return self.footage_s / self.wall_s if self.wall_s > 0 else 0.0


@dataclass(frozen=True)
class _Task:
    rel: str  # path under IN_DIR, '/'-separated
    path: Path
    name: str  # the output name: sanitized stem + hash of rel
    caption: str
    caption_from: str | None
    size: int
    mtime_ns: int


def curate(in_dir: str | os.PathLike, out_dir: str | os.PathLike, options: CurateOptions = CurateOptions(), *,
           workers: int = 2, progress: bool = True) -> CurateSummary:  # fmt: skip
    """Curate every file under ``in_dir`` into shards in ``out_dir``; resume if a previous run was cut off."""
    t0 = time.perf_counter()
    args = options.checked()
    if workers < 1:
        raise KinetoscopeError(f"workers must be >= 1, got {workers}")
    src = Path(in_dir)
    if not src.is_dir():
        raise DataError(f"{src}: no such folder")
    with writing(out_dir, "curated", args, FORMAT) as out:
        clip_root = out / "clips"
        clip_root.mkdir(exist_ok=True)
        book = CaptionBook.load(src)
        tasks = [_task(src, p, book) for p in _walk(src, out)]
        if not tasks:
            raise DataError(f"{src}: no files to curate (sidecars {', '.join(SIDECAR_SUFFIXES)} and hidden files "
                            f"are not footage)")  # fmt: skip
        results, todo = _resume(clip_root, tasks)
        fresh = _run_all(todo, clip_root, options, workers, progress)
        results.update(fresh)
        wall = time.perf_counter() - t0
        footage = sum(r.get("seconds", 0.0) for r in fresh.values())
        summary = _finish(out, src, tasks, results, options, args, book, wall, footage, len(todo), workers)
    return summary


def _walk(src: Path, out: Path) -> list[Path]:
    """Every regular file under ``src`` but hidden ones, sidecars and the output folder, in path order."""
    skip = out.resolve()
    found = []
    for folder, dirs, files in os.walk(src):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (here / d).resolve() != skip)
        for name in sorted(files):
            p = here / name
            if not name.startswith(".") and p.suffix.lower() not in SIDECAR_SUFFIXES and p.is_file():
                found.append(p)
    return found


def _task(src: Path, path: Path, book: CaptionBook) -> _Task:
    rel = path.relative_to(src).as_posix()
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", path.stem).strip("_")[:40] or "clip"
    name = f"{stem}-{hashlib.sha1(rel.encode('utf-8', 'surrogateescape')).hexdigest()[:10]}"
    caption, where = book.caption(path)
    st = path.stat()
    return _Task(rel, path, name, caption, where, st.st_size, st.st_mtime_ns)


def _resume(clip_root: Path, tasks: list[_Task]) -> tuple[dict[str, dict], list[_Task]]:
    """Results of the files a previous run finished (same size and mtime); delete everything else it left."""
    sweep_temps([clip_root])
    names = {t.name for t in tasks}
    for entry in os.scandir(clip_root):  # folders and results of files no longer in the input
        stem = entry.name.removesuffix(".json")
        if stem not in names:
            shutil.rmtree(entry.path) if entry.is_dir() else os.unlink(entry.path)
    results, todo = {}, []
    for t in tasks:
        result = _read_result(clip_root / f"{t.name}.json")
        if result and result.get("size") == t.size and result.get("mtime_ns") == t.mtime_ns:
            results[t.rel] = result
            continue
        (clip_root / f"{t.name}.json").unlink(missing_ok=True)
        shutil.rmtree(clip_root / t.name, ignore_errors=True)
        todo.append(t)
    return results, sorted(todo, key=lambda t: -t.size)  # biggest first: the pool ends together


def _read_result(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _run_all(todo: list[_Task], clip_root: Path, options: CurateOptions, workers: int, progress: bool
             ) -> dict[str, dict]:  # fmt: skip
    import kinetoscope.media  # noqa: F401  imports torch (2 s): once, before the fork, so workers share it

    results: dict[str, dict] = {}
    bar = {"total": sum(t.size for t in todo), "unit": "B", "unit_scale": True, "desc": "curate", "disable": not progress}
    workers = min(workers, len(todo))
    if workers <= 1:
        _init(clip_root, options, None, in_pool=False)
        with tqdm(**bar) as b:
            for t in todo:
                results[t.rel] = _curate_one(t)
                b.update(t.size)
        return results
    # The pool forks before tqdm starts its monitor thread: forking a process with threads is unsafe.
    with pool_results(_curate_one, todo, workers, _init, (clip_root, options, os.getpid(), True)) as done, \
            tqdm(**bar) as b:  # fmt: skip
        for t, result in zip(todo, done):
            results[t.rel] = result
            b.update(t.size)
    return results


_JOB: tuple[Path, CurateOptions] | None = None


def _init(clip_root: Path, options: CurateOptions, parent: int | None, in_pool: bool) -> None:
    global _JOB
    _JOB = (clip_root, options)
    if in_pool:
        init_pool_worker(parent)


def _curate_one(task: _Task) -> dict:
    """Curate one file and publish its result JSON (after its clips). A file problem is a result; a bug in us is
    reported without a result, so a rerun tries the file again."""
    clip_root, options = _JOB
    head = {"file": task.rel, "name": task.name, "size": task.size, "mtime_ns": task.mtime_ns}
    try:
        result = head | _curate_file(task, clip_root / task.name, options)
    except KinetoscopeError as e:
        shutil.rmtree(clip_root / task.name, ignore_errors=True)
        result = head | {"status": "skipped", "reason": _problem(e)}
    except Exception as e:  # noqa: BLE001  one bad file never stops the run
        shutil.rmtree(clip_root / task.name, ignore_errors=True)
        return head | {"status": "error", "reason": f"{type(e).__name__}: {e}"}
    atomic_write_text(clip_root / f"{task.name}.json", json.dumps(result) + "\n")
    return result


def _problem(e: KinetoscopeError) -> str:
    return getattr(e, "problem", None) or str(e)


def _curate_file(task: _Task, folder: Path, options: CurateOptions) -> dict:
    s = scan(task.path)
    info = s.info
    bucket = nearest_bucket(info.width, info.height, options.sizes)
    plans = plan_clips(s.times, s.cuts, options.fps, options.frames, options.min_seconds, info.fps)
    folder.mkdir(exist_ok=True)
    clips, rejected = [], []
    for k, plan, frames in _normalized(task.path, plans, info.width, info.height, bucket):
        thumbs = thumbnails(frames)
        scores = score(thumbs, options.fps)
        where = {"shot": plan.shot, "start_s": round(plan.start_s, 3), "end_s": round(plan.end_s, 3)}
        reason = verdict(scores, options.thresholds)
        if reason:
            rejected.append(where | {"reason": reason, "scores": scores.to_json()})
            continue
        rel = f"clips/{task.name}/{k:04d}.mp4"
        write_video(folder / f"{k:04d}.mp4", frames, options.fps, crf=options.crf)
        record = ClipRecord(rel, len(frames), options.fps, bucket[0], bucket[1], {"terse": task.caption}, "curated",
                            extra={"origin": {"file": task.rel, **where}, "scores": scores.to_json()})  # fmt: skip
        clips.append({"record": record.to_json(), "sig": base64.b64encode(signature(thumbs).tobytes()).decode()})
    return {"status": "ok", "seconds": round(float(info.duration or s.times[-1]), 3), "fps": info.fps,
            "width": info.width, "height": info.height, "frames": len(s.times), "cuts": list(s.cuts),
            "shots": len(s.shots), "bucket": list(bucket), "caption_from": task.caption_from, "clips": clips,
            "rejected": rejected}  # fmt: skip


def _normalized(path: Path, plans: list[ClipPlan], width: int, height: int, bucket: tuple[int, int]):
    """Yield (k, plan, frames (T, H, W, 3) uint8) for each plan, decoding the file once more at the cover size."""
    bh, bw = bucket
    sw, sh = cover_size(width, height, bucket)
    y0, x0 = (sh - bh) // 2, (sw - bw) // 2
    k, buf = 0, []
    for i, (_, frame) in enumerate(iter_timed_frames(path, size=(sw, sh))):
        while k < len(plans) and len(buf) < len(plans[k].frames) and plans[k].frames[len(buf)] == i:
            buf.append(frame[y0 : y0 + bh, x0 : x0 + bw])
            if len(buf) == len(plans[k].frames):
                yield k, plans[k], np.stack(buf)
                k, buf = k + 1, []
        if k == len(plans):
            return
    if k < len(plans):
        raise DataError(f"{path}: the second decode ended before frame {plans[k].frames[len(buf)]}")


def _finish(out: Path, src: Path, tasks: list[_Task], results: dict[str, dict], options: CurateOptions, args: dict,
            book: CaptionBook, wall: float, footage: float, curated_now: int, workers: int) -> CurateSummary:
    """Drop near-duplicates, then write the manifest, the report and dataset.json; delete the duplicates' MP4s."""
    kept = [c for t in tasks if results[t.rel]["status"] == "ok" for c in results[t.rel]["clips"]]
    sigs = [np.frombuffer(base64.b64decode(c["sig"]), np.uint8).reshape(SIG_FRAMES, SIG_SIDE, SIG_SIDE) for c in kept]
    copy_of, nearest = near_duplicates(sigs, options.thresholds.dup_levels)
    records, duplicates = [], []
    for c, j, d in zip(kept, copy_of, nearest):
        rec = c["record"]
        if j is None:
            rec["scores"]["duplicate"] = round(d, 2)
            records.append(ClipRecord.from_json(rec))
        else:
            duplicates.append(rec["origin"] | {"reason": "near-duplicate", "of": kept[j]["record"]["path"],
                                               "path": rec["path"]})  # fmt: skip
    write_manifest(out, records)
    report = _report(src, tasks, results, records, duplicates, book, wall, footage, curated_now, workers)
    atomic_write_text(out / REPORT, json.dumps(report, indent=1) + "\n", fsync=True)
    write_meta(out, {"kind": "curated", "format": FORMAT, "args": args, "complete": True,
                     "clips": len(records), "buckets": report["buckets"]})  # fmt: skip
    for dup in duplicates:
        (out / dup["path"]).unlink(missing_ok=True)
    return CurateSummary(out, len(tasks), report["files_skipped"], len(records), report["rejected"], footage, wall,
                         curated_now)  # fmt: skip


def _report(src: Path, tasks: list[_Task], results: dict[str, dict], records: list[ClipRecord],
            duplicates: list[dict], book: CaptionBook, wall: float, footage: float, curated_now: int,
            workers: int) -> dict:  # fmt: skip
    rs = [results[t.rel] for t in tasks]
    rejected = Counter(r["reason"] for res in rs for r in res.get("rejected", ()))
    rejected["near-duplicate"] = len(duplicates)
    buckets = Counter((r.frames, r.height, r.width) for r in records)
    with_caption = sum(1 for r in records if r.captions.get("terse"))
    return {
        "input": str(src),
        "files": len(tasks),
        "files_ok": sum(r["status"] == "ok" for r in rs),
        "files_skipped": sum(r["status"] != "ok" for r in rs),
        "skipped": [{"file": r["file"], "reason": r["reason"]} for r in rs if r["status"] != "ok"],
        "clips": len(records),
        "rejected": {k: v for k, v in sorted(rejected.items()) if v},
        "captions": {"clips_with": with_caption, "clips_without": len(records) - with_caption,
                     "problems": book.problems},
        "buckets": [{"frames": t, "height": h, "width": w, "clips": n} for (t, h, w), n in sorted(buckets.items())],
        "footage_s": round(sum(r.get("seconds", 0.0) for r in rs), 3),
        "last_run": {"wall_s": round(wall, 3), "files_curated": curated_now, "footage_s": round(footage, 3),
                     "footage_s_per_s": round(footage / wall, 3) if wall else 0.0, "workers": workers},
        "files_detail": [{k: r.get(k) for k in ("file", "status", "reason", "seconds", "fps", "width", "height",
                                                 "frames", "cuts", "bucket", "caption_from")}
                         | {"clips": len(r.get("clips", ())), "rejected": r.get("rejected", [])} for r in rs],
        "duplicates": duplicates,
    }
