"""``kinetoscope serve``: one web process (uvicorn + the FastAPI app) and N worker processes over one job store.

Start-up makes the store consistent with a server that may have died with SIGKILL: its in_progress jobs go back to
the queue (their workers died with it), and files with no job behind them (a half-accepted upload) are deleted.
Finished videos are never half-written: every file is written under a temporary name and renamed.
"""

from __future__ import annotations

import fcntl
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from kinetoscope.errors import KinetoscopeError
from kinetoscope.serve.jobs import ID, Files, Limits
from kinetoscope.serve.store import JobStore
from kinetoscope.serve.worker import Supervisor, WorkerSpec

API_KEY_ENV = "KINETOSCOPE_API_KEY"


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"  # local only unless told otherwise
    port: int = 8000
    db: Path = Path("jobs.sqlite")
    workers: int = 1
    api_key: str | None = None
    model: str | None = None  # a bundle folder; None: the bundled model
    limits: Limits = field(default_factory=Limits)

    @property
    def files(self) -> Path:
        """Videos and inputs live beside the database: jobs.sqlite -> jobs-files/."""
        return self.db.with_name(f"{self.db.stem}-files")


def serve(cfg: ServeConfig) -> None:
    """Run the server until interrupted (Ctrl-C or SIGTERM stop it cleanly; SIGKILL loses no accepted job)."""
    import uvicorn

    from kinetoscope.serve.app import create_app

    if cfg.workers < 1:
        raise KinetoscopeError(f"--workers must be >= 1, got {cfg.workers}")
    if not 0 <= cfg.port <= 65535:
        raise KinetoscopeError(f"--port {cfg.port} is outside 0..65535")
    cfg.db.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(cfg.db.with_name(f"{cfg.db.name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise KinetoscopeError(f"{cfg.db}: another kinetoscope server is using this database") from None
    store, files = JobStore(cfg.db), Files(cfg.files)
    requeued, failed = store.requeue()  # the jobs a killed server was running
    swept = sweep_orphans(store, files)
    threads = max(1, (os.cpu_count() or 1) // cfg.workers)
    supervisor = Supervisor(WorkerSpec(cfg.db, cfg.files, cfg.model, threads), cfg.workers, JobStore(cfg.db))
    health = {"workers": cfg.workers}
    app = create_app(store, files, cfg.limits, cfg.api_key, health)
    supervisor.start()
    print(f"kinetoscope: serving http://{cfg.host}:{cfg.port} (db {cfg.db}, {cfg.workers} worker(s); "
          f"{requeued} job(s) requeued, {failed} failed, {swept} orphan file(s) removed)", file=sys.stderr, flush=True)
    try:
        uvicorn.Server(uvicorn.Config(app, host=cfg.host, port=cfg.port, log_level="warning",
                                      access_log=False)).run()  # fmt: skip
    finally:
        supervisor.stop()
        os.close(lock)


def sweep_orphans(store: JobStore, files: Files) -> int:
    """Delete temp files and files whose job is gone (deleted, or never stored because the server died)."""
    n = 0
    for folder in (files.root / "videos", files.root / "inputs"):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            job_id = path.name.split(".")[0]
            if path.name.startswith(".") or not ID.fullmatch(job_id) or store.get(job_id) is None:
                path.unlink(missing_ok=True)
                n += 1
    return n
