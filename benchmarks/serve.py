"""Serving throughput and API latency: a real `kinetoscope serve` on this machine, driven by the official openai
client from concurrent threads.

    python benchmarks/serve.py [--jobs 12] [--clients 4] [--workers 1,2] [--quick] [-o benchmarks/results/serve.json]

For each worker count: start a fresh server (its own database), submit ``--jobs`` default requests (2 s of 9:16
video, 20 steps) from ``--clients`` threads, and time until the last completes: jobs per minute and seconds of
video per wall second. While they run, a thread times ``GET /v1/videos/{id}`` (what a polling client does) to show
the web process stays responsive while the workers generate.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import openai
import requests
from common import machine, write_result

warnings.filterwarnings("ignore", message="The Sora API")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_one(workers: int, jobs: int, clients: int, seconds: str, steps: int, folder: Path) -> dict:
    port = _port()
    url = f"http://127.0.0.1:{port}"
    t_start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "kinetoscope", "serve", "--port", str(port), "--db",
                             str(folder / f"jobs-{workers}.sqlite"), "--workers", str(workers)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        while True:
            try:
                if requests.get(url + "/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        web_ready = time.perf_counter() - t_start
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused")
        warm = client.videos.poll(client.videos.create(prompt="warm up", seconds="1", extra_body={"steps": 1}).id,
                                  poll_interval_ms=50)  # fmt: skip
        assert warm.status == "completed", warm.error
        first_job = time.perf_counter() - t_start  # workers loaded the model
        ids: list[str] = []
        lock = threading.Lock()
        latencies: list[float] = []
        done = threading.Event()

        def submit(k: int) -> None:
            c = openai.OpenAI(base_url=url + "/v1", api_key="unused")
            for i in range(k, jobs, clients):
                v = c.videos.create(prompt=f"a red ball bounces on a gray floor, take {i}", seconds=seconds,
                                    extra_body={"steps": steps, "seed": i})  # fmt: skip
                with lock:
                    ids.append(v.id)

        def poll() -> None:
            while not done.is_set():
                with lock:
                    target = ids[-1] if ids else None
                if target:
                    t0 = time.perf_counter()
                    requests.get(f"{url}/v1/videos/{target}", timeout=10).raise_for_status()
                    latencies.append(time.perf_counter() - t0)
                time.sleep(0.02)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=submit, args=(k,)) for k in range(clients)]
        poller = threading.Thread(target=poll)
        for t in [*threads, poller]:
            t.start()
        for t in threads:
            t.join()
        finished = [client.videos.poll(i, poll_interval_ms=100) for i in ids]
        wall = time.perf_counter() - t0
        done.set()
        poller.join()
        assert all(v.status == "completed" for v in finished), [v.error for v in finished if v.status != "completed"]
        video_s = sum(float(v.seconds) for v in finished)
        ms = np.array(latencies) * 1000
        return {"workers": workers, "jobs": jobs, "clients": clients, "seconds_per_job": seconds, "steps": steps,
                "web_ready_s": round(web_ready, 2), "first_job_s": round(first_job, 2), "wall_s": round(wall, 2),
                "jobs_per_min": round(60 * jobs / wall, 2), "video_s_per_wall_s": round(video_s / wall, 3),
                "get_p50_ms": round(float(np.percentile(ms, 50)), 1),
                "get_p99_ms": round(float(np.percentile(ms, 99)), 1), "gets": len(ms)}  # fmt: skip
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)


def table(res: dict) -> str:
    lines = ["workers | jobs | wall s | jobs/min | video s / wall s | web up s | model up s | GET p50 ms | GET p99 ms",
             "---|---|---|---|---|---|---|---|---"]  # fmt: skip
    lines += [f"{r['workers']} | {r['jobs']} | {r['wall_s']} | {r['jobs_per_min']} | {r['video_s_per_wall_s']} | "
              f"{r['web_ready_s']} | {r['first_job_s']} | {r['get_p50_ms']} | {r['get_p99_ms']}" for r in res["rows"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=12)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    ap.add_argument("--seconds", default="2", help="video length per job (default 2)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="3 one-second 2-step jobs, one worker: checks the script runs")
    ap.add_argument("-o", "--out", default="benchmarks/results/serve.json")
    a = ap.parse_args(argv)
    if a.quick:
        a.jobs, a.clients, a.workers, a.seconds, a.steps = 3, 2, "1", "1", 2
    with tempfile.TemporaryDirectory(prefix="kinetoscope-serve-") as tmp:
        rows = [run_one(int(w), a.jobs, a.clients, a.seconds, a.steps, Path(tmp)) for w in a.workers.split(",")]
    return write_result({"machine": machine(), "rows": rows}, a.out, table({"rows": rows}))


if __name__ == "__main__":
    sys.exit(main())
