"""VAE benchmark: reconstruction quality on held-out data, speed and peak memory, side by side with Wan's VAE.

    python benchmarks/vae.py [--weights RUN_DIR] [--quick] [-o benchmarks/results/vae.json]

Every speed/memory configuration runs in a fresh subprocess of this script (``--one CONFIG_JSON``) so that its peak
RSS (``ru_maxrss``) belongs to that configuration alone. The peer is diffusers' ``AutoencoderKLWan`` built from a
config of our width (random weights, never downloaded): same input, same thread count. Speed does not depend on
the weights, so random weights are fine for both models; quality needs ``--weights``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

THREADS = 2
WAN_SKIP_S = 60.0  # default: skip a Wan configuration whose estimated encode+decode time is above this
CHILD_TIMEOUT_S = 900


# ----------------------------------------------------------------------------------------------------------------
# One configuration, measured in a fresh process


def _max_rss_mb() -> float:
    """Peak RSS of this whole process (imports and warm-up included)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _status_mb(key: str) -> float | None:
    try:
        return next(int(ln.split()[1]) / 1024 for ln in open("/proc/self/status") if ln.startswith(key + ":"))
    except (OSError, StopIteration):
        return None


def _reset_peak() -> float | None:
    """Reset the kernel's peak-RSS mark (VmHWM, Linux >= 4.0) so one-off spikes from imports and warm-up don't mask
    the measured pass; returns the resident MB at this point (model, input and libraries)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    return _status_mb("VmRSS")


def build_model(model: str, preset: str):
    """Our VAE (a preset) or Wan's VAE of the same base width; random weights, eval mode. Returns (model, params)."""
    import torch

    from kinetoscope.models.vae import PRESETS, VAE

    torch.manual_seed(0)
    cfg = PRESETS[preset]
    if model == "ours":
        net = VAE(cfg)
    else:
        from diffusers import AutoencoderKLWan

        # Wan 2.1's VAE is base_dim 96, num_res_blocks 2; we shrink it to our width and block count.
        net = AutoencoderKLWan(base_dim=cfg.channels[0], z_dim=cfg.latent, num_res_blocks=cfg.blocks)
    return net.eval(), sum(p.numel() for p in net.parameters())


def run_one(conf: dict) -> dict:
    """Measure one configuration: encode and decode seconds, peak RSS. Runs in its own process."""
    import numpy as np
    import torch

    torch.set_num_threads(THREADS)
    net, params = build_model(conf["model"], conf["preset"])
    t, s = conf["frames"], conf["size"]
    amp = torch.autocast("cpu", dtype=torch.bfloat16, enabled=conf["dtype"] == "bf16")

    if conf["model"] == "ours":
        encode, decode = net.encode, net.decode
    else:
        def encode(x):
            return net.encode(x).latent_dist.mode()

        def decode(z):
            return net.decode(z).sample

    if conf["stream"]:
        from kinetoscope.models.vae_stream import StreamConfig, decode_stream, encode_stream

        scfg = StreamConfig(chunk=16, tile=256, overlap=64, bf16=conf["dtype"] == "bf16")
        rng = np.random.default_rng(0)

        def frames():  # generated lazily, so the input clip itself is never held in memory
            for _ in range(t):
                yield rng.integers(0, 256, (s, s, 3), dtype=np.uint8)

        list(decode_stream(net, encode_stream(net, np.zeros((1, s, s, 3), np.uint8), scfg), scfg))  # warm-up
        base = _reset_peak()
        t0 = time.perf_counter()
        z = encode_stream(net, frames(), scfg)
        t1 = time.perf_counter()
        n = sum(1 for _ in decode_stream(net, z, scfg))  # frames are consumed, not kept
        t2 = time.perf_counter()
        assert n == t, (n, t)
    else:
        x = torch.rand(1, 3, t, s, s, generator=torch.Generator().manual_seed(0)) * 2 - 1  # (B, 3, T, H, W)
        with torch.no_grad(), amp:  # warm-up on one frame: first-call allocations and kernel selection
            decode(encode(x[:, :, :1]))
        base = _reset_peak()
        with torch.no_grad(), amp:
            t0 = time.perf_counter()
            z = encode(x)  # (B, C, 1 + (T-1)/4, H/8, W/8)
            t1 = time.perf_counter()
            y = decode(z)  # (B, 3, T, H, W)
            t2 = time.perf_counter()
        assert y.shape == x.shape, (y.shape, x.shape)
    enc, dec = t1 - t0, t2 - t1
    return {
        **conf,
        "params": params,
        "encode_s": enc,
        "decode_s": dec,
        "encode_fps": t / enc,
        "decode_fps": t / dec,
        "encdec_fps": t / (enc + dec),
        "base_rss_mb": base,  # resident before the measured pass
        "peak_rss_mb": _status_mb("VmHWM") if base is not None else _max_rss_mb(),  # peak during the measured pass
        "process_peak_rss_mb": _max_rss_mb(),  # ru_maxrss: whole process, imports and warm-up included
    }


def spawn(conf: dict) -> dict:
    """Run one configuration in a fresh interpreter; its result is the last line of its stdout."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", json.dumps(conf)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {**conf, "error": f"timed out after {CHILD_TIMEOUT_S} s"}
    if out.returncode != 0:
        return {**conf, "error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"rc {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------------------------
# The grid


def conf(model: str, preset: str, size: int, frames: int, dtype: str = "fp32", stream: bool = False) -> dict:
    return {"model": model, "preset": preset, "size": size, "frames": frames, "dtype": dtype, "stream": stream}


def speed_grid(preset: str, sizes: list[int], frames: list[int], stream_size: int, stream_frames: list[int],
               wan_max_s: float = WAN_SKIP_S) -> dict:  # fmt: skip
    """All speed/memory measurements: ours (fp32, bf16), Wan (fp32), our streaming path; one process each."""
    oneshot, wan, stream = [], [], []
    wan_rate = None  # Wan's seconds per voxel so far, to skip configurations that would take > WAN_SKIP_S
    for s in sizes:
        for t in frames:
            for dtype in ("fp32", "bf16"):
                oneshot.append(_log(spawn(conf("ours", preset, s, t, dtype))))
            if wan_rate is not None and wan_rate * s * s * t > wan_max_s:
                wan.append(_log({**conf("wan", preset, s, t), "skipped": f"estimated > {wan_max_s:.0f} s"}))
                continue
            r = _log(spawn(conf("wan", preset, s, t)))
            if "encode_s" in r:
                wan_rate = (r["encode_s"] + r["decode_s"]) / (s * s * t)
            wan.append(r)
    for t in stream_frames:
        stream.append(_log(spawn(conf("ours", preset, stream_size, t, stream=True))))
    return {"oneshot": oneshot, "wan": wan, "stream": stream}


def _log(r: dict) -> dict:
    what = f"{r['model']} {r['size']}px x{r['frames']} {r['dtype']}{' stream' if r['stream'] else ''}"
    if "encode_s" in r:
        print(f"  {what}: enc {r['encode_s']:.2f}s dec {r['decode_s']:.2f}s peak {r['peak_rss_mb']:.0f} MB",
              file=sys.stderr, flush=True)  # fmt: skip
    else:
        print(f"  {what}: {r.get('skipped') or r.get('error')}", file=sys.stderr, flush=True)
    return r


def compare(speed: dict) -> list[dict]:
    """ours (fp32) vs Wan (fp32) per (size, frames): encode+decode speed ratio and peak memory ratios."""
    ours = {(r["size"], r["frames"]): r for r in speed["oneshot"] if r["dtype"] == "fp32" and "encode_s" in r}
    rows = []
    for w in speed["wan"]:
        o = ours.get((w["size"], w["frames"]))
        if o is None or "encode_s" not in w:
            continue
        rows.append({
            "size": w["size"],
            "frames": w["frames"],
            "speed_ratio": o["encdec_fps"] / w["encdec_fps"],  # > 1: ours is faster
            "peak_ratio": o["peak_rss_mb"] / w["peak_rss_mb"],  # < 1: ours uses less
            "work_ratio": (o["peak_rss_mb"] - o["base_rss_mb"]) / max(w["peak_rss_mb"] - w["base_rss_mb"], 1e-6),
        })  # fmt: skip
    return rows


# ----------------------------------------------------------------------------------------------------------------
# Quality on held-out data


def quality(weights: str, sides: list[int], world_n: int, real_windows: int) -> dict:
    """PSNR and SSIM of a trained VAE's one-shot reconstruction, per held-out source and size."""
    import torch

    from kinetoscope.evaluate.reconstruction import reconstruction
    from kinetoscope.train.vae import load_vae

    torch.set_num_threads(THREADS)
    return {"weights": str(weights), "rows": reconstruction(load_vae(weights), sides, world_n, real_windows)}


# ----------------------------------------------------------------------------------------------------------------
# Report


def machine() -> dict:
    import diffusers
    import torch

    cpu = platform.processor()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": THREADS,
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "python": platform.python_version(),
        "load_avg_at_start": os.getloadavg(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def markdown(res: dict) -> str:
    sp = res["speed"]
    get = {(r["size"], r["frames"], r["dtype"]): r for r in sp["oneshot"]}
    wan = {(r["size"], r["frames"]): r for r in sp["wan"]}
    ratio = {(r["size"], r["frames"]): r for r in res["ours_vs_wan"]}

    def f(r: dict | None, key: str, fmt: str = "{:.1f}") -> str:
        if r is None:
            return "-"
        return fmt.format(r[key]) if key in r else r.get("skipped", "err")

    rows = []
    for s, t in sorted({(r["size"], r["frames"]) for r in sp["oneshot"]}):
        o, b, w, q = get.get((s, t, "fp32")), get.get((s, t, "bf16")), wan.get((s, t)), ratio.get((s, t))
        rows.append([f"{s}x{s}", t, f(o, "encode_fps"), f(o, "decode_fps"), f(b, "encode_fps"), f(b, "decode_fps"),
                     f(o, "encdec_fps"), f(w, "encdec_fps"), f(q, "speed_ratio", "{:.2f}"), f(o, "peak_rss_mb", "{:.0f}"),
                     f(b, "peak_rss_mb", "{:.0f}"), f(w, "peak_rss_mb", "{:.0f}"), f(q, "peak_ratio", "{:.2f}"),
                     f(q, "work_ratio", "{:.2f}")])  # fmt: skip
    p = res["params"]
    out = [f"### Speed and peak memory (CPU, {THREADS} threads; ours = `{res['preset']}` {p['ours'] / 1e6:.2f}M params, "
           f"Wan = AutoencoderKLWan {res['wan_config']} {p['wan'] / 1e6:.2f}M params)",  # fmt: skip
           "", table(["size", "T", "enc fps fp32", "dec fps fp32", "enc fps bf16", "dec fps bf16", "enc+dec fps",
                      "Wan enc+dec fps", "speed ours/Wan", "peak MB fp32", "peak MB bf16", "Wan peak MB",
                      "peak ours/Wan", "above-base ours/Wan"], rows)]  # fmt: skip
    st = res["stream"]
    srows = [[f"{r['size']}x{r['size']}", r["frames"], f(r, "encode_fps"), f(r, "decode_fps"), f(r, "peak_rss_mb", "{:.0f}")]
             for r in sp["stream"]]  # fmt: skip
    out += ["", "### Streaming (chunk 16, tile 256, fp32)", "",
            table(["size", "T", "enc fps", "dec fps", "peak MB"], srows), "",
            f"peak({st['frames'][1]})/peak({st['frames'][0]}) = {st['peak_ratio']:.3f}" if st["peak_ratio"] else ""]  # fmt: skip
    if res.get("quality"):
        qrows = [[r["source"], f"{r['size']}", r["frames"] if r["source"] != "photo" else 1, r["n"], f"{r['psnr']:.2f}",
                  f"{r['ssim']:.4f}", "-" if r.get("seam") is None else f"{r['seam']:.2f} ({r['seam_input']:.2f})"]
                 for r in res["quality"]["rows"]]  # fmt: skip
        out += ["", f"### Held-out quality ({res['quality']['weights']})", "",
                table(["source", "short side", "T", "n", "PSNR dB", "SSIM", "latent-frame seam (input)"], qrows)]  # fmt: skip
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", help="VAE run dir (config.json + model.safetensors) for the quality section")
    ap.add_argument("--quick", action="store_true", help="reduced grid: 64 and 128 px, 17 frames")
    ap.add_argument("--preset", default="small", help="our VAE preset for speed (Wan is built at its width)")
    ap.add_argument("--wan-max-s", type=float, default=WAN_SKIP_S, help="skip Wan sizes estimated to take longer")
    ap.add_argument("-o", "--output", default="benchmarks/results/vae.json")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one configuration (JSON) and print it
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(json.loads(args.one))))
        return 0

    import torch

    from kinetoscope.models.vae import PRESETS

    torch.set_num_threads(THREADS)
    if args.preset not in PRESETS:
        print(f"unknown preset {args.preset!r}: choose from {sorted(PRESETS)}", file=sys.stderr)
        return 2
    if args.quick:
        sizes, frames, stream_size, stream_frames = [64, 128], [17], 64, [17, 33]
        world_n, real_windows = 4, 3
    else:
        sizes, frames, stream_size, stream_frames = [64, 128, 256], [17, 65], 128, [17, 65, 257]
        world_n, real_windows = 16, 6
    res = {"machine": machine(), "preset": args.preset, "quick": args.quick, "wan_max_s": args.wan_max_s}
    cfg = PRESETS[args.preset]
    res["wan_config"] = {"base_dim": cfg.channels[0], "z_dim": cfg.latent, "num_res_blocks": cfg.blocks}
    res["params"] = {m: build_model(m, args.preset)[1] for m in ("ours", "wan")}
    t0 = time.time()
    res["speed"] = speed_grid(args.preset, sizes, frames, stream_size, stream_frames, args.wan_max_s)
    res["ours_vs_wan"] = compare(res["speed"])
    peaks = [r.get("peak_rss_mb") for r in res["speed"]["stream"]]
    res["stream"] = {
        "size": stream_size,
        "frames": [stream_frames[0], stream_frames[-1]],
        "peak_ratio": peaks[-1] / peaks[0] if None not in (peaks[0], peaks[-1]) else None,  # ~1: flat in duration
    }
    res["speed_seconds"] = time.time() - t0
    if args.weights:
        res["quality"] = quality(args.weights, [64, 128], world_n, real_windows)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(markdown(res))
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
