"""A run's loss and throughput curves as one PNG beside its metrics.jsonl (written at the end of training)."""

from __future__ import annotations

import json
from pathlib import Path

from kinetoscope.train.common import METRICS_FILE


def plot_metrics(run: str | Path, out: str | Path | None = None) -> Path:
    """Plot loss (log scale) and samples/s against step from RUN/metrics.jsonl into RUN/metrics.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Path(run)
    rows = [json.loads(ln) for ln in (run / METRICS_FILE).read_text().splitlines() if ln.strip()]
    steps = [r["step"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    a.plot(steps, [r["loss"] for r in rows], lw=0.8)
    a.set(xlabel="step", ylabel="loss", yscale="log", title="training loss")
    speed = "samples_per_s" if "samples_per_s" in rows[0] else "clips_per_s"
    b.plot(steps, [r.get(speed, 0.0) for r in rows], lw=0.8, color="tab:orange")
    b.set(xlabel="step", ylabel=speed.replace("_", " "), title="throughput")
    fig.tight_layout()
    out = Path(out) if out else run / "metrics.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
