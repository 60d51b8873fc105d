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
from collections.abc import Callable, Sequence
from pathlib import Path

from kinetoscope import __version__
from kinetoscope.errors import KinetoscopeError

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
    p.add_argument("--families", type=name_list, default=FAMILIES, help=f"scene families (default {join(FAMILIES)})")
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


# --- kinetoscope train ---------------------------------------------------------------------------------------------


def _add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=("vae", "dit"), help="which network to train")
    p.add_argument("--config", default="small", help="a preset name (tiny, small) or a JSON file of config fields")
    p.add_argument("--data", required=True, type=name_list, metavar="DATASET[,DATASET]", help="world/curated shards")
    p.add_argument("-o", "--out", required=True, metavar="RUN", help="run folder: checkpoints, config, metrics.jsonl")
    p.add_argument("--vae", metavar="DIR", help="dit only: the VAE whose latents it learns (default: the bundled VAE)")
    p.add_argument("--steps", type=int, help="override the config's number of steps")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN exactly where it stopped")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _run_train(a: argparse.Namespace) -> int:
    if a.what == "vae":
        from kinetoscope.train.vae import train_vae, vae_train_config

        train_vae(vae_train_config(a.config, steps=a.steps), list(a.data), a.out, resume=a.resume,
                  progress=not a.quiet)  # fmt: skip
        return 0
    from kinetoscope.pipeline import BUNDLED
    from kinetoscope.train.dit import dit_train_config, train_dit

    if len(a.data) != 1:
        raise KinetoscopeError("train dit: give one DATASET (its latents are cached beside its manifest)")
    train_dit(dit_train_config(a.config, steps=a.steps), a.data[0], a.vae or BUNDLED / "vae", a.out,
              resume=a.resume, progress=not a.quiet)  # fmt: skip
    return 0


# --- kinetoscope generate ------------------------------------------------------------------------------------------


def _add_generate(p: argparse.ArgumentParser) -> None:
    p.add_argument("prompt", help="what happens in the video, e.g. \"a red ball bounces on a gray floor\"")
    p.add_argument("-o", "--out", default="video.mp4", help="output: .mp4 (H.264), .gif, .webp, .png (a still with "
                   "--frames 1) or a folder for PNG frames (default video.mp4)")
    p.add_argument("--aspect", help="W:H, e.g. 9:16 (default), 16:9, 1:1")
    p.add_argument("--size", help="WIDTHxHEIGHT in pixels, e.g. 64x112 (overrides --aspect)")
    p.add_argument("--seconds", type=float, help="duration (default 2 s)")
    p.add_argument("--frames", type=int, help="frame count, 1 + 4k (overrides --seconds; 1 = an image)")
    p.add_argument("--fps", type=float, default=16.0, help="frames per second (default 16, the training rate)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same video (default 0)")
    p.add_argument("--steps", type=int, default=20, help="sampling steps (default 20)")
    p.add_argument("--guidance", type=float, default=4.0, help="classifier-free guidance scale (default 4)")
    p.add_argument("--sampler", default="euler", help="euler (default), heun or ab2")
    p.add_argument("--model", metavar="DIR", help="a bundle folder (dit/ + vae/) or a DiT run (default: bundled)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _run_generate(a: argparse.Namespace) -> int:
    import time

    from kinetoscope.media import PILLOW_FORMATS, write_video
    from kinetoscope.models.text import check_prompt
    from kinetoscope.pipeline import Pipeline, Request, frames_for, size_for
    from kinetoscope.sizes import round_size

    t0 = time.time()
    prompt = check_prompt(a.prompt)  # refuse before loading anything
    out = Path(a.out)
    still = out.suffix.lower() in (".png", ".jpg", ".jpeg")
    if out.suffix and not still and out.suffix.lower() not in (".mp4", *PILLOW_FORMATS):
        raise KinetoscopeError(f"{out}: unknown suffix {out.suffix!r}; use .mp4, .gif, .webp, .apng, .png (an image) "
                               f"or no suffix for a folder of PNG frames")  # fmt: skip
    width, height = size_for(a.aspect, a.size)
    frames = 1 if still else frames_for(a.seconds, a.frames, a.fps)
    if still and a.frames not in (None, 1):
        raise KinetoscopeError(f"{out}: an image holds one frame; use .mp4/.gif/.webp for --frames {a.frames}")
    height, width, frames = round_size(height, width, frames)  # refuse impossible sizes before loading the models
    pipe = Pipeline(a.model)
    video = pipe.generate(Request(prompt, width, height, frames, a.fps, a.seed, a.steps, a.guidance, a.sampler),
                          progress=not a.quiet)  # fmt: skip
    if still:
        from PIL import Image

        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(video.frames[0]).save(out)
    else:
        write_video(out, video.frames, video.fps)
    t, h, w = video.frames.shape[:3]
    print(f"{out}: {w}x{h}, {t} frame{'s' * (t > 1)} at {video.fps:g} fps, seed {a.seed}, in {time.time() - t0:.1f} s")
    return 0


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
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "world": ("render a procedural world data set (MP4 shards + manifest.jsonl); resumes if cut off",
              _add_world, _run_world),
    "generate": ("generate a video (or an image) from a prompt with the bundled model", _add_generate, _run_generate),
    "export": ("write a fp16 bundle (dit/ + vae/) from training runs, as shipped in kinetoscope/weights",
               _add_export, _run_export),
    "train": ("train the VAE or the DiT (one process, or many under torchrun); --resume continues exactly",
              _add_train, _run_train),
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
