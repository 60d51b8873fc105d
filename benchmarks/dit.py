"""DiT training throughput and MFU per bucket, and the attention choice (plain bf16 vs SDPA), on this machine.

    python benchmarks/dit.py [--preset tiny,small,base] [--quick] [-o benchmarks/results/dit.json]

One training step (forward, backward, AdamW) of the DiT under bf16 autocast at each bucket the bundled model trains
on, with the token-budgeted batch the training loop would use; MFU is against the bf16 matmul peak measured here in
the same run. The attention table times ``models/attention.attention`` (plain softmax(q kᵀ) v) against
``F.scaled_dot_product_attention`` forward + backward at the same shapes, which is how the plain one was chosen.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from common import best_of

from kinetoscope.models.attention import attention
from kinetoscope.models.dit import PRESETS, DiT, count_params, flops_per_token
from kinetoscope.models.text import TextEmbedding
from kinetoscope.train.dit import PRESETS as TRAIN_PRESETS
from kinetoscope.train.peak import matmul_peak

# (latent frames, latent height, latent width) for 64x64, 64x112 (WxH, 9:16) at 1, 9, 17, 33 frames
BUCKETS = [(1, 8, 8), (3, 8, 8), (5, 14, 8), (9, 8, 8), (9, 14, 8)]
QUICK_BUCKETS = [(1, 8, 8), (3, 8, 8)]


def train_step_rows(preset: str, buckets: list, repeats: int, peak: float) -> list[dict]:
    torch.manual_seed(0)
    model = DiT(PRESETS[preset])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    budget = TRAIN_PRESETS["small"].tokens
    rows = []
    for b in buckets:
        p = model.cfg.patch
        tokens = (b[0] // p[0]) * (b[1] // p[1]) * (b[2] // p[2])
        batch = max(2, min(TRAIN_PRESETS["small"].max_batch, budget // tokens) // 2 * 2)
        x = torch.randn(batch, model.cfg.latent, *b)
        t = torch.rand(batch, b[0])
        txt = TextEmbedding(torch.randn(batch, 24, 384), torch.ones(batch, 24, dtype=torch.bool), torch.randn(batch, 384))

        def step(x=x, t=t, txt=txt):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                v = model(x, t, txt)
            loss = v.float().pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        sec = best_of(step, repeats)
        tok_s = batch * tokens / sec
        rows.append({"bucket": list(b), "tokens": tokens, "batch": batch, "sec_per_step": sec, "clips_per_s": batch / sec,
                     "tokens_per_s": tok_s, "mfu": 3 * flops_per_token(model.cfg, tokens) * tok_s / peak})
    return rows


def attention_rows(preset: str, token_counts: list[int], repeats: int) -> list[dict]:
    cfg = PRESETS[preset]
    rows = []
    for n in token_counts:
        batch = max(2, TRAIN_PRESETS["small"].tokens // n)
        shape = (batch, cfg.heads, n, cfg.head_dim)
        q, k, v = (torch.randn(shape, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
        row = {"tokens": n, "batch": batch}
        for name, fn in (("plain", attention), ("sdpa", F.scaled_dot_product_attention)):
            row[f"{name}_ms"] = 1000 * best_of(lambda fn=fn, q=q, k=k, v=v: fn(q, k, v).float().sum().backward(), repeats)
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small", help="a preset or several, comma-separated (e.g. tiny,small,base)")
    ap.add_argument("--quick", action="store_true", help="two small buckets, one repeat (for tests)")
    ap.add_argument("-o", "--out", default="benchmarks/results/dit.json")
    args = ap.parse_args()
    names = [n.strip() for n in args.preset.split(",") if n.strip()]
    unknown = [n for n in names if n not in PRESETS]
    if unknown or not names:
        ap.error(f"--preset {args.preset!r}: the presets are {', '.join(PRESETS)}")
    repeats = 1 if args.quick else 3
    peak = matmul_peak()
    print(f"bf16 matmul peak {peak / 1e9:.0f} GFLOP/s ({torch.get_num_threads()} threads)")
    by_preset = {}
    for name in names:
        steps = train_step_rows(name, QUICK_BUCKETS if args.quick else BUCKETS, repeats, peak)
        by_preset[name] = {"params": count_params(DiT(PRESETS[name])), "train_steps": steps}
        print(f"\nDiT {name}: {by_preset[name]['params'] / 1e6:.2f}M params")
        print(f"{'bucket (T,H,W)':>16} {'tokens':>6} {'batch':>5} {'s/step':>7} {'clips/s':>8} {'tokens/s':>9} {'MFU':>6}")
        for r in steps:
            print(f"{tuple(r['bucket'])!s:>16} {r['tokens']:>6} {r['batch']:>5} {r['sec_per_step']:>7.3f} "
                  f"{r['clips_per_s']:>8.1f} {r['tokens_per_s']:>9.0f} {r['mfu']:>6.1%}")
    attn = attention_rows(names[0], [16, 64] if args.quick else [48, 140, 252, 504], repeats)
    print(f"\n{'attention tokens':>16} {'batch':>5} {'plain ms':>9} {'sdpa ms':>9}  (forward + backward, bf16, "
          f"{names[0]}'s heads)")
    for r in attn:
        print(f"{r['tokens']:>16} {r['batch']:>5} {r['plain_ms']:>9.1f} {r['sdpa_ms']:>9.1f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    first = by_preset[names[0]]
    out.write_text(json.dumps({
        "command": " ".join(["python", *sys.argv]), "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "preset": names[0], "params": first["params"], "peak_flops": peak, "train_steps": first["train_steps"],
        "presets": by_preset, "attention": attn}, indent=2) + "\n")  # fmt: skip
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
