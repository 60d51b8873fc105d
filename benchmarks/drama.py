"""The drama studio's bars on the example storyboard: render it on this machine and measure the episode.

    python benchmarks/drama.py [--story examples/drama/rain_check.yaml] [--steps 20] [--quick] [-o benchmarks/results/drama.json]

Renders from scratch (a fresh output folder), then reads the episode back: its streams and size (probe), every
subtitle against where the speech actually is in the decoded AAC track, and each character's color signature across
their shots (the analyzer, as `kinetoscope drama` reports it). A second run times the resume (every shot reused).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import av
from common import machine, write_result

from kinetoscope.studio.drama import DramaOptions, render_drama
from kinetoscope.studio.mux import read_audio, read_subtitles
from kinetoscope.studio.storyboard import load_storyboard
from kinetoscope.studio.subtitles import parse_srt
from kinetoscope.studio.voice import spoken_spans


def measure(story: Path, steps: int, folder: Path) -> dict:
    board = load_storyboard(story)
    out = folder / "episode.mp4"
    t0 = time.perf_counter()
    episode = render_drama(board, out, DramaOptions(steps=steps, progress=False))
    wall = time.perf_counter() - t0
    t1 = time.perf_counter()
    again = render_drama(board, out, DramaOptions(steps=steps, progress=False))
    resume = time.perf_counter() - t1
    with av.open(str(out)) as c:
        streams = [s.type for s in c.streams]
        width, height = c.streams.video[0].width, c.streams.video[0].height
    cues = parse_srt(episode.srt.read_text(encoding="utf-8"))
    audio, _ = read_audio(out)
    spans = spoken_spans(audio, [(c.start, c.end) for c in cues])
    sync = [{"text": c.text, "cue": [round(c.start, 3), round(c.end, 3)], "speech": list(s) if s else None,
             "error_ms": round(1000 * max(abs(s[0] - c.start), abs(s[1] - c.end))) if s else None}
            for c, s in zip(cues, spans)]  # fmt: skip
    consistency = episode.report["consistency"]
    return {"story": str(story), "steps": steps, "shots": len(board.shots), "main_line": len(board.main_line()),
            "seconds": episode.report["seconds"], "wall_s": round(wall, 1), "resume_s": round(resume, 1),
            "reused_on_resume": again.report["reused_shots"], "streams": streams, "size": [width, height],
            "soft_subtitles": len(read_subtitles(out)), "subtitle_sync": sync,
            "max_sync_error_ms": max((s["error_ms"] for s in sync if s["error_ms"] is not None), default=None),
            "consistency": {n: {k: v[k] for k in ("signature", "shots", "matching", "share")}
                            for n, v in consistency.items()}}  # fmt: skip


def table(r: dict) -> str:
    lines = [f"episode: {r['size'][0]}x{r['size'][1]}, {r['seconds']} s, streams {'+'.join(r['streams'])}, "
             f"{r['main_line']} shots on the main line ({r['shots']} in all), rendered in {r['wall_s']} s "
             f"(resume with every shot reused: {r['resume_s']} s)",
             f"subtitles vs speech: {len(r['subtitle_sync'])} cues, worst error {r['max_sync_error_ms']} ms",
             "", "character | signature | shots | matching | share", "---|---|---|---|---"]  # fmt: skip
    lines += [f"{n} | {c['signature']} | {c['shots']} | {c['matching']} | {c['share']}"
              for n, c in r["consistency"].items()]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--story", default="examples/drama/rain_check.yaml")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="examples/drama/minimal.yaml at 2 steps: checks the script runs")
    ap.add_argument("-o", "--out", default="benchmarks/results/drama.json")
    a = ap.parse_args(argv)
    if a.quick:
        a.story, a.steps = "examples/drama/minimal.yaml", 2
    with tempfile.TemporaryDirectory(prefix="kinetoscope-drama-") as tmp:
        res = {"machine": machine(), **measure(Path(a.story), a.steps, Path(tmp))}
    return write_result(res, a.out, table(res))


if __name__ == "__main__":
    sys.exit(main())
