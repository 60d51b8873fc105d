"""The DiT presets from tests to GPU clusters: parameters, tokens, FLOPs, estimated memory per GPU under FSDP and
estimated step time, and, for the presets that fit this machine, the estimate against a measured training step.

    python benchmarks/presets.py [--measure tiny,small,base] [-o benchmarks/results/presets.json]

Estimates (stated, not measured on a GPU here):
- tokens per sample: a 480p, 5 s clip at 16 fps (480x848, 81 frames) -> latent 21x60x106 -> 33,390 tokens (patch 1x2x2).
- training FLOPs per sample: 3 x forward (models/dit.flops_per_token x tokens).
- memory per GPU under FSDP2 over N GPUs with activation checkpointing and bf16 compute: 16 bytes per parameter of
  sharded state (fp32 weights, gradients, Adam's two moments) / N, plus two blocks' gathered bf16 parameters, plus
  activations for one sample: every block's bf16 input kept (depth x tokens x width x 2 bytes) and one block's
  recompute working set (~22 bytes per token per width unit: qkv, attention output, the 4x MLP hidden, in bf16,
  with flash attention's memory linear in tokens).
- step time per sample on one H100 (989 TFLOP/s dense bf16) at 40% MFU.
Measured: one training step (forward, backward, AdamW) under bf16 autocast at the 64x112, 33-frame bucket, against
the same FLOPs at this machine's measured bf16 matmul peak (the ratio is the MFU).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from common import best_of, machine, write_result

from kinetoscope.models.dit import PRESETS, DiT, count_params, flops_per_token
from kinetoscope.models.text import TextEmbedding

TOKENS_480P = 21 * 30 * 53
H100_BF16 = 989e12
GPU_MFU = 0.4
GPUS = (1, 8, 64)
BUCKET = (9, 14, 8)  # latent (T', H', W') of 64x112, 33 frames
BATCH = 4


def estimate(name: str) -> dict:
    cfg = PRESETS[name]
    with torch.device("meta"):
        params = count_params(DiT(cfg))
    flops = 3 * flops_per_token(cfg, TOKENS_480P) * TOKENS_480P
    block = params / cfg.depth
    act = cfg.depth * TOKENS_480P * cfg.width * 2 + TOKENS_480P * cfg.width * 22
    memory = {n: (16 * params / n + 2 * 2 * block + act) / 2**30 for n in GPUS}
    return {"preset": name, "width": cfg.width, "depth": cfg.depth, "heads": cfg.heads, "params_m": params / 1e6,
            "tokens_480p_5s": TOKENS_480P, "train_tflop_per_sample": flops / 1e12,
            "memory_gib_per_gpu": {str(n): round(v, 1) for n, v in memory.items()},
            "h100_s_per_sample": flops / (GPU_MFU * H100_BF16)}  # fmt: skip


def measure(name: str, peak: float) -> dict:
    torch.manual_seed(0)
    cfg = PRESETS[name]
    model = DiT(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    t, h, w = BUCKET
    x = torch.randn(BATCH, cfg.latent, t, h, w)
    times = torch.rand(BATCH, t)
    txt = TextEmbedding(torch.randn(BATCH, 16, cfg.text_dim), torch.ones(BATCH, 16, dtype=torch.bool),
                        torch.randn(BATCH, cfg.text_dim))  # fmt: skip

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(x, times, txt).float().pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    seconds = best_of(step, 2)
    tokens = t * (h // cfg.patch[1]) * (w // cfg.patch[2])
    flops = 3 * flops_per_token(cfg, tokens) * tokens * BATCH
    return {"preset": name, "tokens": tokens, "batch": BATCH, "measured_s": round(seconds, 4),
            "estimate_at_peak_s": round(flops / peak, 4), "mfu": round(flops / peak / seconds, 3)}  # fmt: skip


def table(res: dict) -> str:
    lines = ["preset | width x depth | params | train TFLOP / sample (480p, 5 s) | GiB/GPU FSDP 1 / 8 / 64 | "
             "H100 s / sample (40% MFU)", "---|---|---|---|---|---"]  # fmt: skip
    for r in res["estimates"]:
        m = r["memory_gib_per_gpu"]
        lines.append(f"{r['preset']} | {r['width']} x {r['depth']} | {r['params_m']:.1f} M | "
                     f"{r['train_tflop_per_sample']:.1f} | {m['1']} / {m['8']} / {m['64']} | "
                     f"{r['h100_s_per_sample']:.2f}")  # fmt: skip
    lines += ["", f"measured here (one step, batch {BATCH}, 64x112x33; peak {res['peak_tflops']:.2f} TFLOP/s bf16) "
              "| tokens | measured s | estimate at peak s | MFU", "---|---|---|---|---"]  # fmt: skip
    lines += [f"{r['preset']} | {r['tokens']} | {r['measured_s']} | {r['estimate_at_peak_s']} | {r['mfu']:.0%}"
              for r in res["measured"]]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--measure", default="tiny,small,base", help="presets to time on this machine")
    ap.add_argument("-o", "--out", default="benchmarks/results/presets.json")
    a = ap.parse_args(argv)
    t0 = time.time()
    n = 2048
    x, y = torch.randn(n, n, dtype=torch.bfloat16), torch.randn(n, n, dtype=torch.bfloat16)
    peak = 2 * n**3 / best_of(lambda: x @ y, 5)  # a 2048-square bf16 matmul: this machine's practical peak now
    res = {"machine": machine(), "peak_tflops": peak / 1e12, "estimates": [estimate(n) for n in PRESETS],
           "measured": [measure(n, peak) for n in a.measure.split(",") if n]}  # fmt: skip
    res["wall_s"] = round(time.time() - t0, 1)
    return write_result(res, a.out, table(res))


if __name__ == "__main__":
    sys.exit(main())
