"""Can the DiT learn to read a word from these data? Train a small DiT a few hundred steps and probe, every 100
steps, how much worse its flow loss gets on held-out clips when a word of their captions is swapped (direction:
left <-> right, up <-> down; color: two places along the color list), at several t. The gaps are reported twice:
over every latent pixel (the plain loss) and weighted toward what moves (`motion_weights` squared).

    python benchmarks/loss_probe.py --data discs|small|textured [--init] [--motion-weight 4] [--clips 1600] [--steps N]
    python benchmarks/loss_probe.py --data world [--init] [--motion-weight 4] [--clips 1000] [--steps 500]
    python benchmarks/loss_probe.py --data directions [--init] [--motion-weight 4] [--simple] [--lexical] [--steps N]
    python benchmarks/loss_probe.py --data directions --mirror [--init] [--motion-weight 4] [--steps N]
    python benchmarks/loss_probe.py --data directions --contrast 0.1 [--masks] [--init] [--motion-weight 4] [--steps N]

- discs: one disc of four colors moving left, right, up or down across a flat gray 64x64 frame, 33 frames;
  captions "a {color} ball moves {direction}" (the simplest data on which a direction word matters).
- small: the discs at the world's object size, travel and start; textured: the discs over a world setting.
- world: the world's physics clips (seed 77, 64x112, 33 frames at 16 fps) with their terse captions, as the
  bundled DiT saw them; the probe uses the held-out clips whose caption has a direction word.
- directions: the same world clips kept only when they look like the discs: one object, a static camera, and a motion
  with a direction word (rolls or slides left/right/up/down); the textured settings and the object's size stay.
  --simple captions them as the discs are; --lexical adds MiniLM's input embeddings to its tokens (LexicalText).
- --mirror: each training batch is half clips and half their mirror images (the frames flipped left to right, then
  encoded; the latent itself is not flip-symmetric) captioned with left and right swapped, so the two halves differ
  only in which way things go and the word that says so. The probe clips are never mirrored.
- --masks: given-frame masks drawn as the trainer draws them (half the clips with some frames given), not none.
- --contrast W: add W x `flow.contrast_loss`, the clip's caption against the same caption with its direction word
  swapped (a second forward of the clips that have one), so the step's gradient asks for the word directly.

Latents come from the bundled VAE and are cached in /tmp; --init starts from the bundled DiT instead of from scratch.
One process, bf16 autocast, AdamW at a constant lr, batches of 24-32 clips. --save RUN keeps the trained DiT as a run
folder that `kinetoscope generate --model RUN` and `benchmarks/adherence.py --model RUN` load. The JSON is written at
every probe (with "partial": how far), so a run stopped early keeps its curve.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import shlex
import sys
import time
from collections.abc import Callable, Iterable
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
from common import machine, write_result

from kinetoscope.diffusion.flow import contrast_loss, flow_loss, motion_weights, sample_given, training_example
from kinetoscope.models.dit import PRESETS, DiT
from kinetoscope.models.text import TextEmbedding, TextEncoder
from kinetoscope.pipeline import Pipeline, model_folders
from kinetoscope.train.common import save_checkpoint
from kinetoscope.world import render, sample_spec
from kinetoscope.world.canvas import make_camera, render_background
from kinetoscope.world.captions import OPPOSITE, swap_directions
from kinetoscope.world.vocab import COLORS, SETTINGS

DISC_COLORS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 70, 220), "yellow": (230, 210, 40)}
DISC_DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
PROBE_T = (0.5, 0.8, 0.95)
DISCS = ("discs", "textured", "small")  # the data kinds made of disc clips
FRAMES, WORLD_SEED = 33, 77


# ----------------------------------------------------------------------------------------------------------------
# Data: (latents (N, C, T', h, w), captions)


def disc_clip(rng: np.random.Generator, color: str, direction: str, side: int = 64, textured: bool = False,
              small: bool = False) -> np.ndarray:
    """A disc crossing a flat gray frame (or, textured, a world setting seen by a still camera) in a straight line:
    uint8 (33, side, side, 3). Small: the world's object size, travel and start instead of the discs' own."""
    yy, xx = np.mgrid[0:side, 0:side]
    dx, dy = DISC_DIRECTIONS[direction]
    if small:  # as world/physics.py's single_body draws a slide: radius, travel over the clip, start off center
        radius, speed = rng.uniform(0.07, 0.13) * side, rng.uniform(0.3, 0.55) * side / (FRAMES - 1)
        start = rng.uniform(0.15, 0.3) * side
    else:
        radius, speed = rng.uniform(6, 9), rng.uniform(0.9, 1.3)
        start = speed * FRAMES / 2
    cx = side / 2 - dx * start + (rng.uniform(-8, 8) if dx == 0 else 0)
    cy = side / 2 - dy * start + (rng.uniform(-8, 8) if dy == 0 else 0)
    out = np.full((FRAMES, side, side, 3), rng.integers(90, 170), np.uint8)
    if textured:
        camera = make_camera("static", 1, side, side, rng)
        out[:] = render_background(str(rng.choice(SETTINGS)), camera, 0, side, side, int(rng.integers(2**31)))
    for f in range(FRAMES):
        out[f][(xx - cx - dx * speed * f) ** 2 + (yy - cy - dy * speed * f) ** 2 <= radius**2] = DISC_COLORS[color]
    return out


def world_clip(k: int) -> tuple[np.ndarray, str]:
    clip = render(sample_spec(k, WORLD_SEED, ("physics",), ((112, 64),), (FRAMES,), (16,)))
    return clip.frames, clip.terse


def direction_clip(k: int) -> tuple[np.ndarray, str, str] | None:
    """World clip k if it looks like the discs (one object, static camera, a directed motion), else None; with its
    terse caption and a disc-style one ("a red ball moves left")."""
    clip = render(sample_spec(k, WORLD_SEED, ("physics",), ((112, 64),), (FRAMES,), (16,)))
    objects, camera = clip.script["objects"], clip.script["camera"]["motion"]
    if len(objects) != 1 or not objects[0]["motion"].startswith(("rolls", "slides")) or camera != "static":
        return None
    o = objects[0]
    noun = o["kind"] if o["emoji"] else f"{o['color']} {o['kind']}"
    return clip.frames, clip.terse, f"a {noun} moves {o['direction']}"


def load_data(pipe: Pipeline, kind: str, n: int, simple: bool = False, mirror: bool = False
              ) -> tuple[torch.Tensor, list[str]]:
    """Latents and captions of n clips; for `directions`, disc-style captions when simple (else the terse ones). With
    mirror, the same clips seen in a mirror: flipped left to right before encoding, left and right swapped in their
    captions. A mirror cache is made from the same render as the plain one, and both are kept."""
    caches = {flipped: Path(f"/tmp/kinetoscope_loss_probe_{kind}_{n}{'_mirror' if flipped else ''}.pt")
              for flipped in (False, True)}  # fmt: skip
    if not caches[mirror].exists():
        for flipped, (lat, caps) in _make_data(pipe, kind, n, mirror).items():
            torch.save((lat, *caps), caches[flipped])
    lat, *captions = torch.load(caches[mirror])
    caps = captions[-1 if simple else 0]
    return lat, [mirror_caption(c) for c in caps] if mirror else caps


def _make_data(pipe: Pipeline, kind: str, n: int, mirror: bool = False
               ) -> dict[bool, tuple[torch.Tensor, list[list[str]]]]:
    """Render n clips once and encode them, and with mirror their mirror images too: {flipped: (latents, one list of
    captions per caption kind)}; the captions are as rendered."""
    if kind in DISCS:
        rng = np.random.default_rng(0)
        labels = [(str(rng.choice(list(DISC_COLORS))), str(rng.choice(list(DISC_DIRECTIONS)))) for _ in range(n)]
        clips = ((disc_clip(rng, c, d, textured=kind == "textured", small=kind == "small"), f"a {c} ball moves {d}")
                 for c, d in labels)  # fmt: skip
        return _encode(pipe, clips, mirror)
    make, tries = (world_clip, n) if kind == "world" else (direction_clip, 10 * n)  # ~1 in 5 world clips fits
    with Pool(2) as pool:
        kept = itertools.islice((c for c in pool.imap(make, range(tries), chunksize=8) if c is not None), n)
        return _encode(pipe, kept, mirror)


def _encode(pipe: Pipeline, clips: Iterable[tuple], mirror: bool) -> dict[bool, tuple[torch.Tensor, list[list[str]]]]:
    """(frames, caption, ...) items -> {flipped: (latents (N, C, T', h, w), one list per caption kind)}."""
    lats: dict[bool, list[torch.Tensor]] = {False: [], True: []}
    captions = []
    for frames, *caps in clips:
        lats[False].append(pipe.encode(frames))
        if mirror:
            lats[True].append(pipe.encode(np.ascontiguousarray(frames[:, :, ::-1])))
        captions.append(caps)
    kinds = [list(c) for c in zip(*captions, strict=True)]
    return {flipped: (torch.cat(z), kinds) for flipped, z in lats.items() if z}


class LexicalText(TextEncoder):
    """Each prompt's tokens twice: MiniLM's last layer (the words in context), then its input embeddings (the words
    themselves: the last layer nearly merges "to the left" and "to the right", 0.16 cosine distance at the word
    against 0.50 at the input). Pooled as TextEncoder."""

    @torch.no_grad()
    def __call__(self, prompts: list[str]) -> TextEmbedding:
        ctx = super().__call__(prompts)  # tokens (B, L, 384), mask (B, L)
        batch = self.tokenizer(prompts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt")
        words = self.model.embeddings(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"])
        both = torch.cat([ctx.tokens, words * ctx.mask[..., None]], 1)  # (B, 2L, 384)
        mask = torch.cat([ctx.mask, ctx.mask], 1)
        order = torch.sort((~mask).int(), dim=1, stable=True).indices  # real tokens first, each kind in order
        return TextEmbedding(torch.gather(both, 1, order[..., None].expand_as(both)), torch.gather(mask, 1, order),
                             ctx.pooled)  # fmt: skip


def mirror_caption(caption: str) -> str:
    """The caption of the clip seen in a mirror: left and right swapped, everything else kept."""
    return re.sub(r"\b(left|right)\b", lambda m: OPPOSITE[m.group(1)], caption)


def swap_color(caption: str) -> str:
    names = list(COLORS)
    for name in names:
        if re.search(rf"\b{name}\b", caption):
            return re.sub(rf"\b{name}\b", names[(names.index(name) + 2) % len(names)], caption, count=1)
    return caption


# ----------------------------------------------------------------------------------------------------------------
# Training and the probe


def probe(dit: DiT, lat: torch.Tensor, txt: TextEmbedding, swapped: TextEmbedding, t: float) -> dict:
    """The loss increase (%) when the captions are swapped, plain and weighted toward motion, at one t."""
    dit.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        ex = training_example(lat, torch.Generator().manual_seed(5), t=torch.full((len(lat),), t))
        w = motion_weights(lat, 4.0) ** 2  # (B, 1, T', h, w)
        a, b = dit(ex.x_t, ex.t_frames, txt), dit(ex.x_t, ex.t_frames, swapped)
        plain = (flow_loss(b, ex.target, ex.given).item(), flow_loss(a, ex.target, ex.given).item())
        moving = (flow_loss(b, ex.target, ex.given, w).item(), flow_loss(a, ex.target, ex.given, w).item())
    dit.train()
    gap = lambda pair: round(100 * (pair[0] / pair[1] - 1), 3)
    return {"t": t, "plain": gap(plain), "moving": gap(moving)}


def run(args: argparse.Namespace, keep: Callable[[dict], None] = lambda part: None) -> dict:
    """Train and probe as ARGS say; KEEP gets the curve so far at every probe, so a run stopped early keeps it."""
    torch.manual_seed(0)
    pipe = Pipeline(text=LexicalText() if args.lexical else None)
    t0 = time.perf_counter()
    if args.mirror:  # first: its render caches the plain clips too
        mirrored, mirror_caps = load_data(pipe, args.data, args.clips, args.simple, mirror=True)
    lat, caps = load_data(pipe, args.data, args.clips, args.simple)
    n, held = len(caps), len(caps) // 8
    if args.mirror:  # rows n..2n are the mirror images of rows 0..n
        lat, caps = torch.cat([lat, mirrored]), caps + mirror_caps
    data_s = time.perf_counter() - t0
    rows = [i for i in range(held) if swap_directions(caps[i]) != caps[i]]
    txt = pipe.text(caps)
    if args.contrast:  # every clip's caption with its direction word swapped; rows without one are not contrasted
        contrast_txt = pipe.text([swap_directions(c) for c in caps])
        directed = torch.tensor([swap_directions(c) != c for c in caps])  # (N,)
    probes = {"direction": pipe.text([swap_directions(caps[i]) for i in rows]),
              "color": pipe.text([swap_color(caps[i]) for i in rows])}  # fmt: skip
    index = torch.tensor(rows)
    dit = DiT(PRESETS["small"])
    if args.init:
        dit.load_state_dict({k: v.float() for k, v in pipe.dit.state_dict().items()})
    opt = torch.optim.AdamW(dit.parameters(), lr=args.lr, weight_decay=0.0)
    gen, batch = torch.Generator().manual_seed(1), 32 if args.data in DISCS else 24
    curve, t0 = [], time.perf_counter()
    for step in range(args.steps + 1):
        if step % 100 == 0:
            row = {"step": step, "seconds": round(time.perf_counter() - t0, 1)}
            for word, swapped in probes.items():
                row[word] = [probe(dit, lat[index], txt.select(index), swapped, t) for t in PROBE_T]
            curve.append(row)
            keep({"curve": curve, "partial": f"through step {step} of {args.steps}"})
            gaps = "  ".join(f"{w} " + " ".join(f"{p['plain']:+.2f}/{p['moving']:+.2f}" for p in row[w])
                             for w in probes)  # fmt: skip
            print(f"  step {step:4d}  {gaps}", file=sys.stderr, flush=True)
        if step == args.steps:
            break
        b = torch.randint(held, n, (batch // 2 if args.mirror else batch,), generator=gen)
        b = torch.cat([b, b + n]) if args.mirror else b
        with torch.autocast("cpu", dtype=torch.bfloat16):
            given = sample_given(len(b), lat.shape[2], gen) if args.masks else None  # (B, T') or none given
            ex = training_example(lat[b], gen, given=given)
            v = dit(ex.x_t, ex.t_frames, txt.select(b))
            w = motion_weights(lat[b], args.motion_weight)  # (B, 1, T', h, w)
            loss = flow_loss(v, ex.target, ex.given, w)
            if args.contrast and directed[b].any():
                d = directed[b]
                v_swapped = dit(ex.x_t[d], ex.t_frames[d], contrast_txt.select(b[d]))
                loss = loss + args.contrast * contrast_loss(v[d], v_swapped, ex.target[d], ex.given[d], w[d]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if args.save:  # a DiT run folder under the bundled VAE: `adherence.py --model RUN` generates with it
        config = {"kind": "dit", "model": pipe.config["model"], "vae": str(model_folders(None)[1].resolve()),
                  "init": "the bundled DiT" if args.init else None, "probe": vars(args)}
        save_checkpoint(Path(args.save), dit, config, {"step": args.steps})
    settings = {"data": args.data, "clips": n, "probe_clips": len(rows), "simple": args.simple,
                "lexical": args.lexical, "mirror": args.mirror, "init": args.init,
                "motion_weight": args.motion_weight, "contrast": args.contrast, "masks": args.masks,
                "steps": args.steps, "lr": args.lr, "batch": batch}  # fmt: skip
    return {"settings": settings, "curve": curve, "seconds": {"data": round(data_s, 1),
            "train": round(time.perf_counter() - t0, 1)}}  # fmt: skip


def report(res: dict) -> str:
    s = res["settings"]
    head = (f"### Loss probe: {s['data']} ({s['clips']} clips, {s['probe_clips']} probed), "
            f"{'from the bundled DiT' if s['init'] else 'from scratch'}, "
            f"motion weight {s['motion_weight']}{', mirrored pairs' if s.get('mirror') else ''}"
            f"{f', contrast {c}' if (c := s.get('contrast')) else ''}"
            f"{', given-frame masks' if s.get('masks') else ''}")  # fmt: skip
    cols = " | ".join(f"{w} t={t}" for w in ("direction", "color") for t in PROBE_T)
    lines = [head, "", f"| step | {cols} |", "|---" * (1 + 2 * len(PROBE_T)) + "|"]
    for row in res["curve"]:
        cells = " | ".join(f"{p['plain']:+.2f}% / {p['moving']:+.2f}%" for w in ("direction", "color")
                           for p in row[w])  # fmt: skip
        lines.append(f"| {row['step']} | {cells} |")
    return "\n".join([*lines, "", "(loss increase with the word swapped: every latent pixel / weighted to motion)"])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", choices=(*DISCS, "world", "directions"), default="discs")
    ap.add_argument("--clips", type=int, help="clips to make (default 1600 discs, 1000 world clips)")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--simple", action="store_true", help="directions: disc-style captions ('a red ball moves left')")
    ap.add_argument("--lexical", action="store_true", help="the text's input embeddings too (LexicalText)")
    ap.add_argument("--mirror", action="store_true", help="half of each batch: its clips mirrored, left/right swapped")
    ap.add_argument("--init", action="store_true", help="start from the bundled DiT (default: from scratch)")
    ap.add_argument("--motion-weight", type=float, default=0.0, help="train with flow.motion_weights (0: plain)")
    ap.add_argument("--contrast", type=float, default=0.0,
                    help="add this weight x flow.contrast_loss against the caption with its direction swapped")
    ap.add_argument("--masks", action="store_true", help="given-frame masks as `kinetoscope train dit` draws them")
    ap.add_argument("--save", metavar="RUN", help="write the trained DiT here, a run folder (adherence.py --model RUN)")
    ap.add_argument("-o", "--output", default="benchmarks/results/loss_probe.json")
    args = ap.parse_args(argv)
    args.clips = args.clips or (1600 if args.data in DISCS else 1000)
    if args.clips < 16 or args.steps < 0:
        ap.error("--clips must be at least 16 and --steps at least 0")
    if args.simple and args.data != "directions":
        ap.error("--simple recaptions the directions data only (the discs are captioned that way already)")
    if args.mirror and args.data not in ("directions", "world"):
        ap.error("--mirror is for the world's clips (directions, world)")
    head = {"command": shlex.join(["python", sys.argv[0], *argv]), **machine()}
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    res = {**head, **run(args, lambda part: out.write_text(json.dumps({**head, **part}, indent=1) + "\n"))}
    return write_result(res, args.output, report(res))


if __name__ == "__main__":
    sys.exit(main())
