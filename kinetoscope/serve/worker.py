"""Worker processes: each loads the Pipeline once, then claims jobs from the store and runs them; a supervisor thread
in the server restarts a worker that dies and puts its job back in the queue.

Generation never runs in the web process: a slow or crashing job cannot stall or take down the API.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from kinetoscope.data.folder import die_with_parent
from kinetoscope.errors import KinetoscopeError
from kinetoscope.serve.jobs import Cancelled, Files, run_job
from kinetoscope.serve.store import JobStore

POLL_S = 0.1  # an idle worker looks for a job this often (one indexed SELECT)


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process needs (picklable)."""

    db: str  # a SQLite path or a postgresql:// URL
    files: Path
    model: str | None
    threads: int


def worker_main(spec: WorkerSpec, name: str, parent: int) -> None:
    """A worker process: die with the server, load the model, run jobs until killed."""
    die_with_parent(parent)
    import torch

    from kinetoscope.pipeline import Pipeline

    torch.set_num_threads(spec.threads)
    store, files = JobStore(spec.db), Files(spec.files)
    pipe = Pipeline(spec.model)
    while True:
        job = store.claim(name)
        if job is None:
            time.sleep(POLL_S)
            continue
        try:
            run_job(pipe, job, files, _Progress(store, job.id, name))
        except Cancelled:
            files.remove(job.id)
            continue
        except KinetoscopeError as e:  # the request could not be made (e.g. an input too small): the user's to fix
            store.fail(job.id, "invalid_request", str(e), name)
            continue
        except Exception as e:  # noqa: BLE001  a bug: the job fails with the reason, the worker goes on
            traceback.print_exc()
            store.fail(job.id, "internal_error", f"{type(e).__name__}: {e}", name)
            continue
        if not store.complete(job.id, name):  # deleted at the last moment
            files.remove(job.id)


class _Progress:
    """Write a job's progress to the store when the percentage changes; False once the job is gone."""

    def __init__(self, store: JobStore, job_id: str, worker: str):
        self.store, self.job_id, self.worker, self.last = store, job_id, worker, -1

    def __call__(self, percent: int) -> bool:
        if percent == self.last:
            return True
        self.last = percent
        return self.store.progress(self.job_id, self.worker, percent)


class Supervisor:
    """Starts ``n`` worker processes and keeps them running: a dead worker's job is requeued and the worker replaced."""

    def __init__(self, spec: WorkerSpec, n: int, store: JobStore, prefix: str = ""):
        self.spec, self.n, self.store, self.prefix = spec, n, store, prefix  # worker names: prefix + wN
        self.ctx = mp.get_context("spawn")  # the server has threads: never fork it
        self.procs: dict[str, mp.process.BaseProcess] = {}
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)

    def start(self) -> None:
        for i in range(self.n):
            self._spawn(f"{self.prefix}w{i}")
        self._thread.start()

    def _spawn(self, name: str) -> None:
        p = self.ctx.Process(target=worker_main, args=(self.spec, name, os.getpid()), name=f"kinetoscope-{name}",
                             daemon=True)  # fmt: skip
        p.start()
        self.procs[name] = p

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            for name, p in list(self.procs.items()):
                if not p.is_alive() and not self._stop.is_set():
                    self.store.requeue(name)
                    self.restarts += 1
                    self._spawn(name)

    def alive(self) -> int:
        return sum(p.is_alive() for p in self.procs.values())

    def stop(self) -> None:
        self._stop.set()
        for p in self.procs.values():
            p.terminate()
        for p in self.procs.values():
            p.join(timeout=5)
