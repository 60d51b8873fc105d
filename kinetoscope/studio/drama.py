"""``kinetoscope drama``: a storyboard in, a vertical episode out (video + speech + subtitles), through the Pipeline.

Characters stay the same from shot to shot through the pipeline's one conditioning mechanism, given frames:

1. each character's **reference** is generated once from their look and seed (a still, "wide shot of <look>
   standing on a gray floor") and kept in the project folder;
2. each shot's **keyframe** starts from its characters' references (side by side when two share the shot) and is
   redrawn under the shot's prompt with SDEdit at KEY_STRENGTH, so the setting and framing follow the shot while
   the people keep their colors;
3. the **shot** is image-to-video from that keyframe (frame 0 given).

Everything lands in ``<episode>.drama/``: cast/ (references), shots/ (each shot's frames as a lossless MP4, named by
the hash of everything that made it, so a killed run reuses finished shots), speech/ (WAV per line), and
report.json. Beside the episode: ``.srt``, ``.otio`` (studio/timeline.py), a cover ``.jpg``, and, when the
storyboard branches, an interactive folder (studio/interactive.py).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import wave
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from kinetoscope.media import atomic_file, read_video, write_video
from kinetoscope.pipeline import Inputs, Pipeline, Request, fade, model_folders, size_for
from kinetoscope.studio.mux import write_episode
from kinetoscope.studio.storyboard import Shot, Storyboard
from kinetoscope.studio.subtitles import Cue, burn, srt
from kinetoscope.studio.voice import RATE, SPEECH_FLOOR, speak

KEY_STRENGTH = 0.55  # how far a keyframe may move from its characters' references
LEAD_S, GAP_S, TAIL_S = 0.25, 0.2, 0.3  # silence before the first line of a shot, between lines, after the last
CROSSFADE = 4  # frames two shots overlap in a crossfade
CONNECT_FRAMES = 7  # new frames a generated transition adds


@dataclass(frozen=True)
class DramaOptions:
    steps: int = 20
    guidance: float = 4.0
    model: str | None = None
    upscale: int = 4  # the episode is written this many times the model's size (Lanczos), so subtitles are legible
    progress: bool = True


@dataclass
class Rendered:
    """A shot made: its frames at the model's size and its spoken lines (audio, offset in the shot)."""

    shot: Shot
    frames: np.ndarray  # (T, H, W, 3)
    speech: list[tuple[Cue, np.ndarray, Path]]  # cue times relative to the shot's start; audio; its WAV
    file: Path


@dataclass(frozen=True)
class Episode:
    video: Path
    srt: Path
    cover: Path
    timeline: Path
    interactive: Path | None
    report: dict


def render_drama(board: Storyboard, out: str | Path, options: DramaOptions = DramaOptions()) -> Episode:
    """Render every shot of ``board`` (reusing those already made), then write the episode and its companions."""
    t0 = time.perf_counter()
    out = Path(out)
    project = out.with_suffix(".drama")
    for sub in ("cast", "shots", "speech"):
        (project / sub).mkdir(parents=True, exist_ok=True)
    pipe = Pipeline(options.model)
    width, height = size_for(board.aspect)
    model_id = _model_id(options.model)
    refs = {name: _reference(pipe, c.look, c.seed + board.seed, width, height, board.fps, options, project, model_id)
            for name, c in board.cast.items()}  # fmt: skip
    made: dict[str, Rendered] = {}
    reused = 0
    with tqdm(total=len(board.shots), desc="shots", unit="shot", disable=not options.progress) as bar:
        for i, shot in enumerate(board.shots):
            made[shot.id], was_cached = _shot(pipe, board, i, shot, refs, width, height, options, project, model_id)
            reused += was_cached
            bar.update()
    frames, cues, audio, placed = _assemble(pipe, board, [made[s.id] for s in board.main_line()], options)
    shown = (finish(f, k / board.fps, cues, options.upscale) for k, f in enumerate(frames))
    video = write_episode(out, shown, board.fps, audio, RATE, cues)
    srt_path = out.with_suffix(".srt")
    srt_path.write_text(srt(cues), encoding="utf-8")
    cover = out.with_suffix(".jpg")
    _cover(finish(frames[len(made[board.shots[0].id].frames) // 2], -1, [], options.upscale), board.title, cover)
    from kinetoscope.studio.interactive import export_interactive
    from kinetoscope.studio.timeline import write_timeline

    wavs = [w for s in board.main_line() for _, _, w in made[s.id].speech]
    timeline = write_timeline(out.with_suffix(".otio"), board, placed, made, list(zip(cues, wavs)), len(frames))
    branches = any(s.choices for s in board.shots)
    interactive = export_interactive(out.with_name(out.stem + "_interactive"), board, made, options.upscale) \
        if branches else None  # fmt: skip
    report = {"title": board.title, "shots": len(board.shots), "main_line": [s.id for s in board.main_line()],
              "reused_shots": reused, "frames": len(frames), "seconds": round(len(frames) / board.fps, 3),
              "size": [width * options.upscale, height * options.upscale], "model_size": [width, height],
              "cues": len(cues), "wall_s": round(time.perf_counter() - t0, 1),
              "consistency": consistency(board, made, refs), "options": asdict(options)}  # fmt: skip
    (project / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return Episode(video, srt_path, cover, timeline, interactive, report)


def _model_id(model: str | None) -> str:
    dit, vae = model_folders(model)
    h = hashlib.sha1()
    for folder in (dit, vae):
        for f in sorted(folder.iterdir()):
            if f.is_file():
                h.update(f.name.encode() + str(f.stat().st_size).encode() + str(f.stat().st_mtime_ns).encode())
    return h.hexdigest()[:12]


def _key(**parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _reference(pipe: Pipeline, look: str, seed: int, width: int, height: int, fps: float, options: DramaOptions,
               project: Path, model_id: str) -> np.ndarray:  # fmt: skip
    """A character's still, made once and kept: (H, W, 3)."""
    prompt = f"wide shot of {look} standing on a gray floor"
    path = project / "cast" / f"{_key(p=prompt, s=seed, w=width, h=height, m=model_id, n=options.steps)}.png"
    if path.exists():
        return np.asarray(Image.open(path).convert("RGB"))
    req = Request(prompt, width, height, 1, fps, seed, options.steps, options.guidance)
    image = pipe.generate(req, progress=False).frames[0]
    with atomic_file(path) as tmp:
        Image.fromarray(image).save(tmp, "PNG")
    return image


def prompt_of(board: Storyboard, shot: Shot) -> str:
    """The shot as the model reads it: '<size> of <look> and <look> <action> in <setting>'."""
    looks = " and ".join(board.cast[n].look for n in shot.cast)
    action = f" {shot.action}" if shot.action else ""
    return f"{shot.size} of {looks}{action} in {shot.setting}"


def _shot(pipe: Pipeline, board: Storyboard, i: int, shot: Shot, refs: dict[str, np.ndarray], width: int,
          height: int, options: DramaOptions, project: Path, model_id: str) -> tuple[Rendered, bool]:  # fmt: skip
    speech = _speech(board, shot, project)
    spoken = LEAD_S + sum(len(a) / RATE for _, a, _ in speech) + GAP_S * max(0, len(speech) - 1) + TAIL_S
    seconds = max(shot.duration, spoken if speech else 0.0)
    frames = 1 + 4 * math.ceil(seconds * board.fps / 4)
    prompt = prompt_of(board, shot)
    seed = board.seed * 1000 + i
    key = _key(p=prompt, f=frames, w=width, h=height, s=seed, m=model_id, n=options.steps, g=options.guidance,
               r=[hashlib.sha1(refs[n].tobytes()).hexdigest() for n in shot.cast], k=KEY_STRENGTH)  # fmt: skip
    path = project / "shots" / f"{shot.id}-{key}.mp4"
    cached = path.exists()
    if cached:
        clip = read_video(path)
    else:
        req = Request(prompt, width, height, frames, board.fps, seed, options.steps, options.guidance)
        base = _side_by_side([refs[n] for n in shot.cast])
        keyframe = next(pipe.edit(Request(prompt, width, height, 1, board.fps, seed, options.steps, options.guidance),
                                  base[None], KEY_STRENGTH, False))  # fmt: skip
        clip = np.stack(list(pipe.run(req, Inputs(image=keyframe), progress=False)))
        write_video(path, clip, board.fps, lossless=True)
    return Rendered(shot, clip, speech, path), cached


def _side_by_side(images: list[np.ndarray]) -> np.ndarray:
    """One image from the references of a shot's characters: each gets an equal vertical strip (its center)."""
    w = images[0].shape[1]
    edges = [round(k * w / len(images)) for k in range(len(images) + 1)]
    out = np.empty_like(images[0])
    for im, a, b in zip(images, edges[:-1], edges[1:]):
        left = (w - (b - a)) // 2
        out[:, a:b] = im[:, left : left + b - a]
    return out


def _speech(board: Storyboard, shot: Shot, project: Path) -> list[tuple[Cue, np.ndarray, Path]]:
    """Each line spoken in its character's voice, with its cue relative to the shot's start."""
    out, t = [], LEAD_S
    for line in shot.lines:
        voice = board.cast[line.who].voice
        path = project / "speech" / f"{_key(t=line.text, v=asdict(voice), floor=SPEECH_FLOOR)}.wav"
        if path.exists():
            with wave.open(str(path)) as w:
                audio = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768
        else:
            audio = speak(line.text, voice)
            _write_wav(path, audio)
        out.append((Cue(t, t + len(audio) / RATE, line.text, line.who), audio, path))
        t += len(audio) / RATE + GAP_S
    return out


def _write_wav(path: Path, audio: np.ndarray) -> None:
    with atomic_file(path) as tmp, wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes())


def _assemble(pipe: Pipeline, board: Storyboard, shots: list[Rendered], options: DramaOptions
              ) -> tuple[np.ndarray, list[Cue], np.ndarray, list[tuple[str, int]]]:  # fmt: skip
    """Join the main line's shots with their transitions: frames, cues and audio on the episode's clock, and where
    each shot starts (shot id, frame)."""
    frames: list[np.ndarray] = []
    placed: list[tuple[str, int]] = []
    for r in shots:
        clip = list(r.frames)
        if not frames or r.shot.transition == "cut":
            start = len(frames)
            frames += clip
        elif r.shot.transition == "crossfade":
            k = min(CROSSFADE, len(frames), len(clip))
            frames[-k:] = list(fade(np.stack(frames[-k:]), np.stack(clip[:k])))
            start = len(frames) - k
            frames += clip[k:]
        else:  # connect: a generated bridge from the previous shot's end into this shot's start
            prev = np.stack(frames[-len(shots[len(placed) - 1].frames) :])
            req = Request(prompt_of(board, r.shot), prev.shape[2], prev.shape[1], 1 + CONNECT_FRAMES + 2, board.fps,
                          board.seed, options.steps, options.guidance)  # fmt: skip
            joined = list(pipe.run(req, Inputs(connect=(prev, r.frames)), progress=False))
            frames = frames[: len(frames) - len(prev)] + joined
            start = len(frames) - len(clip)
        placed.append((r.shot.id, start))
    cues = [Cue(c.start + start / board.fps, c.end + start / board.fps, c.text, c.who)
            for r, (_, start) in zip(shots, placed) for c, _, _ in r.speech]  # fmt: skip
    audio = np.zeros(math.ceil(len(frames) / board.fps * RATE), np.float32)
    for r, (_, start) in zip(shots, placed):
        mix(audio, r.speech, start / board.fps)
    return np.stack(frames), cues, np.clip(audio, -1, 1), placed


def mix(audio: np.ndarray, speech: list[tuple[Cue, np.ndarray, Path]], offset_s: float) -> None:
    """Add each spoken line into ``audio`` (in place) at its cue's start plus ``offset_s``."""
    for cue, a, _ in speech:
        k = round((cue.start + offset_s) * RATE)
        audio[k : k + len(a)] += a[: max(0, len(audio) - k)]


def finish(frame: np.ndarray, t: float, cues: list[Cue], upscale: int) -> np.ndarray:
    """A frame as shown: ``upscale`` times larger (Lanczos), with the subtitle on screen at ``t`` seconds burned in."""
    if upscale > 1:
        h, w = frame.shape[:2]
        frame = np.asarray(Image.fromarray(frame).resize((w * upscale, h * upscale), Image.LANCZOS))
    text = next((c.text for c in cues if c.start <= t < c.end), None)
    return burn(frame, text) if text else frame


def _cover(frame: np.ndarray, title: str, path: Path) -> None:
    with atomic_file(path) as tmp:
        Image.fromarray(burn(frame, title)).save(tmp, "JPEG", quality=92)


def consistency(board: Storyboard, made: dict[str, Rendered], refs: dict[str, np.ndarray],
                analyze: Callable | None = None) -> dict:  # fmt: skip
    """Per character: the analyzer's dominant color of their reference, and in how many of their shots that color
    is among the dominant colors of the objects the analyzer finds."""
    from kinetoscope.evaluate.analyzer import analyze as default

    analyze = analyze or default
    out = {}
    for name, ref in refs.items():
        objects = analyze(ref[None], board.fps).objects
        signature = objects[0].color if objects else None  # the largest object: the character
        shots = [r for r in made.values() if name in r.shot.cast]
        hits = []
        for r in shots:
            colors = {c for o in analyze(r.frames, board.fps).objects for c, share in o.colors[:2] if share >= 0.15}
            hits.append(signature in colors)
        out[name] = {"signature": signature, "shots": len(shots), "matching": int(sum(hits)),
                     "share": round(sum(hits) / len(shots), 3) if shots else None,
                     "per_shot": {r.shot.id: h for r, h in zip(shots, hits)}}  # fmt: skip
    return out
