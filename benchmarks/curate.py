"""Curation throughput on all the real footage our packages ship, and shot-cut accuracy, on this machine.

    python benchmarks/curate.py [--workers 1,2] [--quick] [-o benchmarks/results/curate.json]

Throughput is seconds of footage curated per second of wall time (`kinetoscope curate` with the default options:
scan, cuts, fps resampling to 8, buckets, scores, H.264 clips, manifest), a fresh output folder per run, best of
``--repeats``. The cut table scans a clip made of three real videos back to back (bigbuckbunny 0-49, one shot of
bikes, vtest 0-49; 25 fps) and reports the frames found against the frames where the videos meet.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import machine, write_result
from PIL import Image

from kinetoscope.data.curate import CurateOptions, curate
from kinetoscope.data.footage import gather_footage
from kinetoscope.data.scenes import scan
from kinetoscope.media import iter_frames, write_video

QUICK = ("carphone_pristine.mp4", "bikes.mp4")
SEGMENTS = (("bigbuckbunny.mp4", 0, 50), ("bikes.mp4", 30, 76), ("vtest.avi", 0, 50))  # bikes cuts at 30 and 76


def throughput_rows(footage: Path, workers: list[int], repeats: int, scratch: Path) -> list[dict]:
    rows = []
    for w in workers:
        best = None
        for r in range(repeats):
            out = scratch / f"ds-{w}-{r}"
            t0 = time.perf_counter()
            s = curate(footage, out, CurateOptions(), workers=w, progress=False)
            wall = time.perf_counter() - t0
            if best is None or wall < best["wall_s"]:
                best = {"workers": w, "files": s.files, "skipped": s.skipped, "clips": s.clips,
                        "footage_s": round(s.footage_s, 2), "wall_s": round(wall, 2),
                        "footage_s_per_s": round(s.footage_s / wall, 2)}  # fmt: skip
            shutil.rmtree(out)
        rows.append(best)
    return rows


def cut_rows(footage: Path, scratch: Path) -> list[dict]:
    frames, truth = [], []
    for name, a, b in SEGMENTS:
        if frames:
            truth.append(len(frames))
        frames += [np.asarray(Image.fromarray(f).resize((320, 176), Image.BILINEAR))
                   for f in iter_frames(footage / name, start=a, stop=b)]  # fmt: skip
    clip = write_video(scratch / "three.mp4", np.stack(frames), 25)
    found = list(scan(clip).cuts)
    return [{"true_cut": t, "found": min(found, key=lambda c: abs(c - t)) if found else None,
             "error_frames": min((abs(c - t) for c in found), default=None)} for t in truth] + \
           [{"true_cut": None, "found": c, "error_frames": None} for c in found
            if all(abs(c - t) > 2 for t in truth)]  # fmt: skip


def table(res: dict) -> str:
    lines = ["workers | files | skipped | clips | footage s | wall s | footage s / s",
             "---|---|---|---|---|---|---"]  # fmt: skip
    lines += [f"{r['workers']} | {r['files']} | {r['skipped']} | {r['clips']} | {r['footage_s']} | {r['wall_s']} | "
              f"{r['footage_s_per_s']}" for r in res["throughput"]]  # fmt: skip
    lines += ["", "true cut (frame) | found | error (frames)", "---|---|---"]
    lines += [f"{r['true_cut'] if r['true_cut'] is not None else 'none (spurious)'} | {r['found']} | "
              f"{r['error_frames'] if r['error_frames'] is not None else '-'}" for r in res["cuts"]]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    ap.add_argument("--repeats", type=int, default=2, help="best of this many runs per worker count (default 2)")
    ap.add_argument("--quick", action="store_true", help="two short files, one run: checks the script runs")
    ap.add_argument("-o", "--out", default="benchmarks/results/curate.json")
    a = ap.parse_args(argv)
    workers = [int(w) for w in a.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="kinetoscope-curate-") as tmp:
        scratch = Path(tmp)
        footage = scratch / "footage"
        names = QUICK if a.quick else None
        files = gather_footage(footage, names)
        cut_footage = gather_footage(scratch / "cut_sources", tuple(n for n, _, _ in SEGMENTS))[0].parent
        res = {"machine": machine(), "inputs": [f.name for f in files],
               "throughput": throughput_rows(footage, workers, 1 if a.quick else a.repeats, scratch),
               "cuts": cut_rows(cut_footage, scratch)}  # fmt: skip
    return write_result(res, a.out, table(res))


if __name__ == "__main__":
    sys.exit(main())
