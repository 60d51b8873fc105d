"""The ``kinetoscope`` command (DESIGN.md §7): one argparse app, each subcommand a thin wrapper over a library call.

To add a command, write ``_add_NAME(parser)`` and ``_run_NAME(args) -> int`` and list them in ``COMMANDS``. Import
heavy modules inside ``_run_NAME`` so ``kinetoscope --help`` stays fast. A user mistake raises a KinetoscopeError
(or a ValueError from a flag's value); ``main`` prints it as one line on stderr and exits with 2
(``KINETOSCOPE_DEBUG=1`` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kinetoscope import __version__
from kinetoscope.errors import KinetoscopeError

if TYPE_CHECKING:
    import numpy as np

    from kinetoscope.pipeline import Inputs

PROG = "kinetoscope"


class UsageError(KinetoscopeError):
    """A bad command line: argparse's complaint, raised instead of printed so main() prints one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print the usage too: two lines and more
        command = self.prog.removeprefix(PROG).strip()  # "world" for a subcommand's parser, "" for the app's
        raise UsageError(f"{command}: {message}" if command else message)


# --- flag value parsers: raise ArgumentTypeError with the bad value, argparse names the flag ---------------------


def int_list(text: str) -> tuple[int, ...]:
    """'1,9,17' -> (1, 9, 17)."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of whole numbers") from None
    return values


def size_list(text: str) -> tuple[tuple[int, int], ...]:
    """'64x64,64x112' -> ((64, 64), (64, 112)): HEIGHTxWIDTH pairs."""
    sizes = []
    for item in text.split(","):
        h, sep, w = item.strip().lower().partition("x")
        if not sep or not h.isdigit() or not w.isdigit():
            raise argparse.ArgumentTypeError(f"{item!r} is not HEIGHTxWIDTH, e.g. 64x112")
        sizes.append((int(h), int(w)))
    return tuple(sizes)


def name_list(text: str) -> tuple[str, ...]:
    """'physics,drama' -> ('physics', 'drama')."""
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    if not names:
        raise argparse.ArgumentTypeError("give at least one name")
    return names


# --- kinetoscope world ---------------------------------------------------------------------------------------------


def _add_world(p: argparse.ArgumentParser) -> None:
    from kinetoscope.world.clip import DEFAULT_FPS, DEFAULT_FRAMES, DEFAULT_SIZES, FAMILIES

    def join(values) -> str:
        return ",".join(f"{v[0]}x{v[1]}" if isinstance(v, tuple) else str(v) for v in values)

    p.add_argument("-o", "--out", required=True, metavar="DATASET", help="folder to write (new, or a run to resume)")
    p.add_argument("--clips", required=True, type=int, metavar="N", help="number of clips")
    p.add_argument("--families", type=name_list, default=FAMILIES,
                   help=f"scene families (default {join(FAMILIES)}; or the drill `directions`: one object rolling or "
                   "sliding one way under a static camera)")
    p.add_argument("--seed", type=int, default=0, help="data set seed; clip i is a pure function of (seed, i)")
    p.add_argument("--workers", type=int, default=2, help="processes rendering in parallel (default 2)")
    p.add_argument("--sizes", type=size_list, default=DEFAULT_SIZES,
                   help=f"HEIGHTxWIDTH sizes, multiples of 16 (default {join(DEFAULT_SIZES)})")
    p.add_argument("--frames", type=int_list, default=DEFAULT_FRAMES,
                   help=f"frame counts, each 1+4k (default {join(DEFAULT_FRAMES)})")
    p.add_argument("--fps", type=int_list, default=DEFAULT_FPS, help=f"frame rates (default {join(DEFAULT_FPS)})")
    p.add_argument("--crf", type=int, default=18, help="H.264 quality, lower is better (default 18)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _run_world(a: argparse.Namespace) -> int:
    from kinetoscope.data.worldgen import write_world_dataset

    s = write_world_dataset(a.out, a.clips, seed=a.seed, families=a.families, sizes=a.sizes, frames=a.frames,
                            fps=a.fps, workers=a.workers, crf=a.crf, progress=not a.quiet)  # fmt: skip
    print(f"{s.out_dir}: {s.clips} clips ({s.rendered} rendered, {s.skipped} already there) in {s.wall_s:.1f} s, "
          f"{s.clips_per_s:.2f} clips/s")  # fmt: skip
    return 0


# --- kinetoscope curate --------------------------------------------------------------------------------------------


def _add_curate(p: argparse.ArgumentParser) -> None:
    from kinetoscope.data.curate import DEFAULT_FRAMES, DEFAULT_SIZES, CurateOptions
    from kinetoscope.data.quality import Thresholds

    d, t = CurateOptions(), Thresholds()
    p.add_argument("in_dir", metavar="IN_DIR", help="folder of footage (any container FFmpeg reads), searched recursively")
    p.add_argument("-o", "--out", required=True, metavar="DATASET", help="output folder (shards + manifest.jsonl)")
    p.add_argument("--workers", type=int, default=2, help="processes, one file each at a time (default 2)")
    p.add_argument("--fps", type=float, default=d.fps, help=f"resample every clip to this rate (default {d.fps:g})")
    p.add_argument("--sizes", type=size_list, default=DEFAULT_SIZES, metavar="HxW[,HxW]",
                   help="buckets; each file goes to the one nearest its aspect (default "
                        + ",".join(f"{h}x{w}" for h, w in DEFAULT_SIZES) + ")")
    p.add_argument("--frames", type=int_list, default=DEFAULT_FRAMES, metavar="N[,N]",
                   help="clip lengths, 1 + 4k (default " + ",".join(map(str, DEFAULT_FRAMES)) + ")")
    p.add_argument("--min-seconds", type=float, default=d.min_seconds, help="drop shots shorter than this (default 1)")
    p.add_argument("--min-motion", type=float, default=t.min_motion,
                   help=f"reject clips whose moving part travels less (short sides/s, default {t.min_motion})")
    p.add_argument("--max-flicker", type=float, default=t.max_flicker,
                   help=f"reject clips whose brightness jumps more (luma levels/frame, default {t.max_flicker})")
    p.add_argument("--crf", type=int, default=d.crf, help="H.264 quality of the clips, lower is better (default 18)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _run_curate(a: argparse.Namespace) -> int:
    from dataclasses import replace

    from kinetoscope.data.curate import REPORT, CurateOptions, curate
    from kinetoscope.data.quality import Thresholds

    options = CurateOptions(fps=a.fps, sizes=a.sizes, frames=a.frames, min_seconds=a.min_seconds, crf=a.crf,
                            thresholds=replace(Thresholds(), min_motion=a.min_motion, max_flicker=a.max_flicker))
    s = curate(a.in_dir, a.out, options, workers=a.workers, progress=not a.quiet)
    rejected = ", ".join(f"{n} {why}" for why, n in s.rejected.items()) or "none"
    print(f"{s.out_dir}: {s.clips} clips from {s.files} files; skipped {s.skipped} files; rejected clips: {rejected}; "
          f"this run {s.curated_now} files, {s.footage_s:.1f} s of footage in {s.wall_s:.1f} s "
          f"({s.throughput:.1f} s/s); report {s.out_dir / REPORT}")
    return 0


# --- kinetoscope serve ---------------------------------------------------------------------------------------------


def _add_serve(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--db", default="jobs.sqlite", help="job store: a SQLite file (default jobs.sqlite; videos go in a "
                   "folder beside it) or a postgresql:// URL shared by servers on many machines (then give --files)")
    p.add_argument("--files", metavar="DIR", help="where videos and inputs go (required with PostgreSQL: a shared folder)")
    p.add_argument("--workers", type=int, default=1, help="generation processes (default 1)")
    p.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (default: $KINETOSCOPE_API_KEY, or none)")
    p.add_argument("--model", metavar="DIR", help="a bundle folder (default: the bundled model)")
    p.add_argument("--max-queue", type=int, default=100, help="unfinished jobs accepted before 429 (default 100)")
    p.add_argument("--max-seconds", type=float, default=20.0, help="longest video a request may ask for (default 20)")


def _run_serve(a: argparse.Namespace) -> int:
    from kinetoscope.serve.jobs import Limits
    from kinetoscope.serve.server import API_KEY_ENV, ServeConfig, serve

    key = a.api_key or os.environ.get(API_KEY_ENV) or None
    serve(ServeConfig(a.host, a.port, a.db, a.workers, key, a.model,
                      Limits(max_seconds=a.max_seconds, max_queue=a.max_queue),
                      Path(a.files) if a.files else None))  # fmt: skip
    return 0


# --- kinetoscope drama ---------------------------------------------------------------------------------------------


def _add_drama(p: argparse.ArgumentParser) -> None:
    p.add_argument("storyboard", metavar="STORYBOARD.yaml", help="the episode: cast, shots, dialogue, branches")
    p.add_argument("-o", "--out", default="episode.mp4", help="the episode (default episode.mp4); .srt, .otio, "
                                                              ".jpg and the project folder go beside it")
    p.add_argument("--steps", type=int, default=20, help="sampling steps per shot (default 20)")
    p.add_argument("--guidance", type=float, default=4.0, help="classifier-free guidance (default 4)")
    p.add_argument("--upscale", type=int, default=4, help="write the episode this many times the model's size "
                                                          "(default 4: 256x448 for 9:16)")
    p.add_argument("--model", metavar="DIR", help="a bundle folder (default: the bundled model)")
    p.add_argument("--check", action="store_true", help="only check the storyboard")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _run_drama(a: argparse.Namespace, default_aspect: str = "9:16") -> int:
    from kinetoscope.studio.storyboard import load_storyboard

    board = load_storyboard(a.storyboard, default_aspect)  # every mistake, before anything is generated
    if a.check:
        print(f"{a.storyboard}: {len(board.shots)} shots, {len(board.cast)} characters, main line "
              f"{len(board.main_line())} shots; no problems")  # fmt: skip
        return 0
    if not 1 <= a.upscale <= 8:
        raise KinetoscopeError(f"--upscale {a.upscale} is outside 1..8")
    from kinetoscope.studio.drama import DramaOptions, render_drama

    e = render_drama(board, a.out, DramaOptions(a.steps, a.guidance, a.model, a.upscale, not a.quiet))
    r = e.report
    looks = ", ".join(f"{n} {c['matching']}/{c['shots']}" for n, c in r["consistency"].items())
    print(f"{e.video}: {r['size'][0]}x{r['size'][1]}, {r['seconds']} s, {len(r['main_line'])} shots "
          f"({r['reused_shots']} reused), {r['cues']} subtitles, in {r['wall_s']} s; characters matching their look: "
          f"{looks}; also {e.srt.name}, {e.timeline.name}, {e.cover.name}"
          + (f", {e.interactive.name}/" if e.interactive else ""))
    return 0


# --- kinetoscope sprites / character / cutscene -------------------------------------------------------------------


def _add_sprites(p: argparse.ArgumentParser) -> None:
    p.add_argument("prompt", help='a character ("a red knight") or an effect ("a spinning gold coin", "an explosion")')
    p.add_argument("-o", "--out", default="sprites.png", help="the atlas; .json (Aseprite hash), .tres (Godot) and "
                                                              "previews go beside it")
    p.add_argument("--size", type=int, default=64, help="frame size in pixels, square (default 64)")
    p.add_argument("--frames", type=int, default=8, help="frames per loop, a multiple of 4 (default 8)")
    p.add_argument("--actions", type=name_list, default=("idle", "walk", "jump", "attack"),
                   help="for a character: some of idle, walk, run, jump, attack (default idle,walk,jump,attack)")
    p.add_argument("--fps", type=float, default=12.0, help="playback rate (default 12)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same sprite (default 0)")
    p.add_argument("--steps", type=int, default=20, help="sampling steps (default 20)")
    p.add_argument("--stride", type=int, default=1, help="generate N times the frames and keep every Nth (4: one per "
                   "latent frame; longer clips drift more in color, see README) (default 1)")  # fmt: skip
    p.add_argument("--palettes", type=name_list, default=(), metavar="COLORS",
                   help="for a character whose prompt names its color: the same sheet in each of these colors too, "
                   "poses kept (e.g. blue,green: OUT_blue.png, OUT_green.png)")  # fmt: skip
    p.add_argument("--model", metavar="DIR", help="a bundle folder (default: the bundled model)")


def _run_sprites(a: argparse.Namespace) -> int:
    from kinetoscope.evaluate.analyzer import loop_seam
    from kinetoscope.studio.sprites import STILL_STEP, SpriteOptions, colors_of, make_sprites, motion, over_gray

    s = make_sprites(a.prompt, a.out, SpriteOptions(a.size, a.frames, tuple(a.actions), a.fps, a.seed, a.steps,
                                                    model=a.model, stride=a.stride, progress=True,
                                                    palettes=tuple(a.palettes)))  # fmt: skip
    # as the bar and the retries read it: the cut-out sprite over gray, as a game shows it; loops only
    seams = ", ".join(f"{x.name} {loop_seam(over_gray(x.frames)):.2f}" for x in s.animations if x.loop)
    steps = {x.name: motion(x.frames)["step"] for x in s.animations}
    print(f"{s.paths['png']}: {s.kind}, {len(s.animations)} animation(s) x {len(s.animations[0].frames)} frames "
          f"({', '.join(x.name for x in s.animations)}); loop seam / median step: {seams or 'none (plays once)'}; "
          f"mean frame step: {', '.join(f'{n} {v:.2f}' for n, v in steps.items())}; also {s.paths['json'].name}, "
          f"{s.paths['tres'].name} and GIF/WebP/APNG previews")  # fmt: skip
    for color, p in s.palettes.items():
        read = [colors_of(x.frames, x.fps)[0] for x in p.animations]
        print(f"{p.paths['png']}: the sheet in {color}; the cut-out reads {color} in {read.count(color)} of "
              f"{len(read)} actions ({', '.join(f'{x.name} {c}' for x, c in zip(p.animations, read, strict=True))})")
    still = [n for n, v in steps.items() if v < STILL_STEP]
    if still:
        print(f"note: {', '.join(still)} barely move{'s' if len(still) == 1 else ''} (under {STILL_STEP} gray level a "
              f"frame): the bundled model moves sprites little; another --seed or --stride 4 may move more "
              f"(README, Game content)")  # fmt: skip
    return 0


def _add_character(p: argparse.ArgumentParser) -> None:
    p.add_argument("prompt", help='what the character looks like, e.g. "a green robot"')
    p.add_argument("-o", "--out", default="character.png", help="the design sheet (a .json of seeds goes beside it)")
    p.add_argument("--variants", type=int, default=8, help="how many looks (default 8)")
    p.add_argument("--size", type=int, default=64, help="each look's size in pixels (default 64)")
    p.add_argument("--seed", type=int, default=0, help="the first seed (default 0)")
    p.add_argument("--steps", type=int, default=20, help="sampling steps (default 20)")
    p.add_argument("--model", metavar="DIR", help="a bundle folder (default: the bundled model)")


def _run_character(a: argparse.Namespace) -> int:
    from kinetoscope.studio.sprites import character_sheet

    out = character_sheet(a.prompt, a.out, a.variants, a.size, a.seed, a.steps, a.model, progress=True)
    print(f"{out}: {a.variants} looks, seeds {a.seed}..{a.seed + a.variants - 1} (labeled; reuse one with --seed)")
    return 0


def _run_cutscene(a: argparse.Namespace) -> int:
    return _run_drama(a, default_aspect="16:9")  # a game's screen; the rest is the drama studio, unchanged


# --- kinetoscope train ---------------------------------------------------------------------------------------------


def _add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=("vae", "dit"), help="which network to train")
    p.add_argument("--config", default="small", help="a preset name (tiny, small) or a JSON file of config fields")
    p.add_argument("--data", required=True, type=name_list, metavar="DATASET[,DATASET]", help="world/curated shards")
    p.add_argument("-o", "--out", required=True, metavar="RUN", help="run folder: checkpoints, config, metrics.jsonl")
    p.add_argument("--vae", metavar="DIR", help="dit only: the VAE whose latents it learns (default: the bundled VAE)")
    p.add_argument("--steps", type=int, help="override the config's number of steps")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN exactly where it stopped")
    p.add_argument("--init", metavar="DIR", help="start from this run's (or bundle folder's) weights: fine-tune "
                   "with a fresh schedule")
    p.add_argument("--parallel", choices=("ddp", "fsdp"), help="dit only: data parallel (default) or FSDP2 sharding "
                   "(sharded checkpoints that resume on any number of processes)")
    p.add_argument("--checkpointing", action="store_true", default=None, help="dit only: activation checkpointing")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _run_train(a: argparse.Namespace) -> int:
    if a.what == "vae":
        from kinetoscope.train.vae import train_vae, vae_train_config

        if a.parallel == "fsdp" or a.checkpointing:
            raise KinetoscopeError("--parallel fsdp and --checkpointing are for the DiT; the VAE trains with DDP")

        train_vae(vae_train_config(a.config, steps=a.steps), list(a.data), a.out, resume=a.resume,
                  progress=not a.quiet, init=a.init)  # fmt: skip
        return 0
    from kinetoscope.pipeline import BUNDLED
    from kinetoscope.train.dit import dit_train_config, train_dit

    config = dit_train_config(a.config, steps=a.steps, parallel=a.parallel, checkpointing=a.checkpointing)
    train_dit(config, list(a.data), a.vae or BUNDLED / "vae", a.out,
              resume=a.resume, progress=not a.quiet, init=a.init)  # fmt: skip
    return 0


# --- kinetoscope generate ------------------------------------------------------------------------------------------


def _add_generate(p: argparse.ArgumentParser) -> None:
    p.add_argument("prompt", help="what happens in the video, e.g. \"a red ball bounces on a gray floor\"")
    p.add_argument("-o", "--out", default="video.mp4", help="output: .mp4 (H.264), .gif, .webp, .png (a still with "
                   "--frames 1) or a folder for PNG frames (default video.mp4)")
    p.add_argument("--aspect", help="W:H, e.g. 9:16 (default; with an input: the input's), 16:9, 1:1")
    p.add_argument("--size", help="WIDTHxHEIGHT in pixels, e.g. 64x112 (overrides --aspect)")
    p.add_argument("--seconds", type=float, help="duration (default 2 s; past 2 s, window after window)")
    p.add_argument("--frames", type=int, help="frame count, 1 + 4k (overrides --seconds; 1 = an image)")
    p.add_argument("--fps", type=float, help="frames per second (default 16, the training rate; with a clip: its rate)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same video (default 0)")
    p.add_argument("--steps", type=int, default=20, help="sampling steps (default 20)")
    p.add_argument("--guidance", type=float, default=4.0, help="classifier-free guidance scale (default 4)")
    p.add_argument("--negative", metavar="TEXT", default="", help="what the video should not show, e.g. \"a ball "
                   "rolling right\": guidance pushes away from it instead of from no prompt (default: none)")
    p.add_argument("--sampler", default="euler", help="euler (default), heun or ab2")
    p.add_argument("--shift", type=float, help="time shift of the schedule, > 1 spends more steps near noise "
                   "(default: from the token count, as in training)")
    p.add_argument("--model", metavar="DIR", help="a bundle folder (dit/ + vae/) or a DiT run (default: bundled)")
    m = p.add_argument_group("modes (one at a time; --image also goes with --loop)")
    m.add_argument("--image", metavar="IMG", help="image-to-video: the image is frame 0, the prompt says what happens")
    m.add_argument("--extend", metavar="CLIP", help="continue CLIP: the output is CLIP plus --seconds of new frames")
    m.add_argument("--backward", action="store_true", help="with --extend: new frames lead into CLIP's start")
    m.add_argument("--connect", nargs=2, metavar=("A", "B"), help="a transition from clip A's end to clip B's start")
    m.add_argument("--loop", action="store_true", help="a seamless loop: the last frame flows into the first (the "
                   "part that closes it is drawn up to 3 times, until the wrap is at most 1.5 ordinary frame steps)")
    m.add_argument("--harmonize", type=float, metavar="T", help="--extend, --connect, --loop and videos past 33 "
                   "frames: each window that continues given frames is noised to T and denoised again whole, so the "
                   "model draws the join itself (default 0.3; 0: off)")
    m.add_argument("--edit", metavar="CLIP", help="redo CLIP under the prompt (SDEdit); layout and motion stay")
    m.add_argument("--source-prompt", metavar="TEXT", help="with --edit: what CLIP shows; then only what the prompt "
                   "says differently changes (FlowEdit, masked), the rest of the clip stays as it was")
    m.add_argument("--strength", type=float, help="with --edit: how much changes, 0..1 (default 0.6; 0.8 with "
                   "--source-prompt)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _read_inputs(a: argparse.Namespace) -> tuple[Inputs, float | None, tuple[int, int] | None]:
    """The mode's input files read and checked (before any model loads): the Inputs, the clips' frame rate and the
    first input's (width, height), which set the output's rate and aspect unless given."""
    from kinetoscope.media import probe, read_image, read_video
    from kinetoscope.pipeline import Inputs

    if a.strength is not None and not a.edit:
        raise KinetoscopeError("--strength goes with --edit CLIP")
    clip = lambda path: read_video(path, max_bytes=2**30)
    named = [path for path in (a.extend, a.edit, *(a.connect or ())) if path]
    fps = (probe(named[0]).fps or None) if named else None
    inputs = Inputs(image=read_image(a.image) if a.image else None, extend=clip(a.extend) if a.extend else None,
                    backward=a.backward, connect=(clip(a.connect[0]), clip(a.connect[1])) if a.connect else None,
                    loop=a.loop, edit=clip(a.edit) if a.edit else None,
                    source=a.source_prompt, strength=a.strength)  # fmt: skip
    inputs.mode()  # refuse impossible combinations now
    first = next((x for x in (inputs.image, inputs.extend, inputs.edit, *(inputs.connect or ())) if x is not None), None)
    shape = None if first is None else (first.shape[-2], first.shape[-3])
    return inputs, fps, shape


def _run_generate(a: argparse.Namespace) -> int:
    import time

    from kinetoscope.media import PILLOW_FORMATS, write_video
    from kinetoscope.models.text import check_negative, check_prompt
    from kinetoscope.pipeline import Pipeline, Request, check_sampling, frames_for, size_for
    from kinetoscope.sizes import round_size

    t0 = time.time()
    prompt, negative = check_prompt(a.prompt), check_negative(a.negative)  # refuse before loading anything
    out = Path(a.out)
    still = out.suffix.lower() in (".png", ".jpg", ".jpeg")
    if out.suffix and not still and out.suffix.lower() not in (".mp4", *PILLOW_FORMATS):
        raise KinetoscopeError(f"{out}: unknown suffix {out.suffix!r}; use .mp4, .gif, .webp, .apng, .png (an image) "
                               f"or no suffix for a folder of PNG frames")  # fmt: skip
    inputs, clip_fps, shape = _read_inputs(a)
    fps = a.fps or clip_fps or 16.0
    aspect = a.aspect or (f"{shape[0]}:{shape[1]}" if shape and not a.size else None)
    width, height = size_for(aspect, a.size)
    frames = 1 if still else frames_for(a.seconds, a.frames, fps)
    if still and (a.frames not in (None, 1) or inputs.mode() != "text"):
        raise KinetoscopeError(f"{out}: an image holds one frame; use .mp4/.gif/.webp for --frames {a.frames} "
                               f"and for the modes")  # fmt: skip
    height, width, frames = round_size(height, width, frames)  # refuse impossible sizes before loading the models
    req = Request(prompt, width, height, frames, fps, a.seed, a.steps, a.guidance, a.sampler, a.shift,
                  negative=negative, **({} if a.harmonize is None else {"harmonize": a.harmonize}))
    check_sampling(req)  # bad sampler settings too are refused before the models load
    pipe = Pipeline(a.model)
    if still:
        from PIL import Image

        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pipe.generate(req, progress=not a.quiet).frames[0]).save(out)
        t = 1
    else:
        counted = _Counter(pipe.run(req, inputs, progress=not a.quiet))
        write_video(out, counted, fps)
        t = counted.n
    print(f"{out}: {width}x{height}, {t} frame{'s' * (t > 1)} at {fps:g} fps, seed {a.seed}, {inputs.mode()}, "
          f"in {time.time() - t0:.1f} s")  # fmt: skip
    return 0


class _Counter:
    """Pass frames through to the writer, counting them (a long video is never held in memory)."""

    def __init__(self, frames: Iterator[np.ndarray]):
        self.frames, self.n = frames, 0

    def __iter__(self) -> Iterator[np.ndarray]:
        for f in self.frames:
            self.n += 1
            yield f


# --- kinetoscope export -------------------------------------------------------------------------------------------


def _add_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dit", required=True, metavar="RUN", help="a DiT training run")
    p.add_argument("--vae", metavar="RUN", help="its VAE run (default: the VAE the DiT run names)")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="bundle folder to write (dit/ + vae/, fp16)")


def _run_export(a: argparse.Namespace) -> int:
    from kinetoscope.pipeline import export_bundle, model_folders

    dit, vae = model_folders(a.dit)
    out = export_bundle(dit, a.vae or vae, a.out)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{out}: fp16 bundle, {size / 2**20:.1f} MiB (use it with --model {out})")
    return 0


# --- the app -------------------------------------------------------------------------------------------------------

# name -> (one-line help, add_arguments(parser), run(args) -> exit code); add a command by adding a line here
# --- kinetoscope eval ---------------------------------------------------------------------------------------------


def _add_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="DIR", help="a bundle folder (dit/ + vae/) or a DiT run (default: bundled)")
    p.add_argument("--suite", default="quick", help="quick (about a minute) or full (what the README quotes)")
    p.add_argument("-o", "--out", default="eval/report.json", help="report JSON; .md and .png (contact sheet) beside it")
    p.add_argument("--steps", type=int, help="sampling steps instead of the suite's 20 (fewer: faster, worse)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _run_eval(a: argparse.Namespace) -> int:
    from kinetoscope.evaluate.suites import SUITES, markdown, run_suite, write_report

    if a.suite not in SUITES:  # before any model loads
        raise KinetoscopeError(f"--suite {a.suite!r}: the suites are {', '.join(SUITES)}")
    report, sheet = run_suite(a.suite, a.model, progress=not a.quiet, steps=a.steps)
    paths = write_report(report, sheet, a.out)
    print(markdown(report))
    print("wrote " + ", ".join(map(str, paths)), file=sys.stderr)
    return 0


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "world": ("render a procedural world data set (MP4 shards + manifest.jsonl); resumes if cut off",
              _add_world, _run_world),
    "curate": ("turn a folder of real footage into training shards (cuts, filters, buckets, captions); resumes",
               _add_curate, _run_curate),
    "serve": ("serve the OpenAI-shaped Videos API and a web page; jobs survive restarts", _add_serve, _run_serve),
    "drama": ("a storyboard in, a vertical episode out: shots, voices, subtitles, timeline, interactive branches",
              _add_drama, _run_drama),
    "sprites": ("looping sprite animations of one character (or an effect) as an engine-ready sheet",
                _add_sprites, _run_sprites),
    "character": ("a design sheet: many looks of one character, each labeled with its seed", _add_character,
                  _run_character),
    "cutscene": ("a game cutscene from a storyboard: the drama studio with a 16:9 default", _add_drama,
                 _run_cutscene),
    "generate": ("generate a video (or an image) from a prompt with the bundled model", _add_generate, _run_generate),
    "export": ("write a fp16 bundle (dit/ + vae/) from training runs, as shipped in kinetoscope/weights",
               _add_export, _run_export),
    "train": ("train the VAE or the DiT (one process, or many under torchrun); --resume continues exactly",
              _add_train, _run_train),
    "eval": ("score a model on a suite (adherence, consistency, modes, reconstruction): JSON, Markdown, contact sheet",
             _add_eval, _run_eval),
}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Text-to-video: a causal video VAE and a spacetime-patch DiT.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, add_arguments, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a user mistake is one line ``kinetoscope: error: ...`` on stderr and exit code 2."""
    warnings.showwarning = _show_warning
    try:
        args = build_parser().parse_args(argv)
        return args._run(args)
    except (KinetoscopeError, ValueError) as e:
        if os.environ.get("KINETOSCOPE_DEBUG"):  # the traceback, for telling a user mistake from a bug
            raise
        print(f"{PROG}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings (a size rounded, a prompt truncated) as one line each, without the source location."""
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def _one_line(e: Exception) -> str:
    text = str(e).strip() or type(e).__name__
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
