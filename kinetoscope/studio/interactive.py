"""Interactive episodes: a storyboard with branches as a self-contained folder that plays in any browser.

    index.html      the player: plays a clip; when it ends, shows its choices (or plays the next shot)
    story.json      the graph: {"title", "start", "shots": {id: {"clip", "next", "choices": [{"text", "goto"}]}}}
    clips/<id>.mp4  every shot with its speech and burned-in subtitles (H.264 + AAC: plays everywhere)

No server is needed: index.html embeds the graph, so it also works opened from disk.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from kinetoscope.studio.drama import finish, mix
from kinetoscope.studio.mux import write_episode
from kinetoscope.studio.voice import RATE

PLAYER = Path(__file__).with_name("player.html")


def export_interactive(folder: Path, board, made: dict, upscale: int) -> Path:
    """Write the folder for ``board`` from its rendered shots ``made`` (id -> Rendered)."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "clips").mkdir(parents=True)
    graph = {"title": board.title, "start": board.shots[0].id, "shots": {}}
    for shot in board.shots:
        r = made[shot.id]
        cues = [c for c, _, _ in r.speech]
        audio = np.zeros(int(np.ceil(len(r.frames) / board.fps * RATE)), np.float32)
        mix(audio, r.speech, 0.0)
        frames = (finish(f, i / board.fps, cues, upscale) for i, f in enumerate(r.frames))
        write_episode(tmp / "clips" / f"{shot.id}.mp4", frames, board.fps, np.clip(audio, -1, 1), RATE, cues)
        graph["shots"][shot.id] = {"clip": f"clips/{shot.id}.mp4", "next": shot.next,
                                   "choices": [{"text": c.text, "goto": c.goto} for c in shot.choices]}  # fmt: skip
    (tmp / "story.json").write_text(json.dumps(graph, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    page = PLAYER.read_text(encoding="utf-8").replace("/*STORY*/null", json.dumps(graph, ensure_ascii=False))
    (tmp / "index.html").write_text(page, encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.replace(folder)
    return folder
