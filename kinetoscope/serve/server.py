"""``kinetoscope serve``: one web process (uvicorn + the FastAPI app) and N worker processes over one job store.

Start-up makes the store consistent with a server that may have died with SIGKILL: its in_progress jobs go back to
the queue (their workers died with it), and files with no job behind them (a half-accepted upload) are deleted.
Finished videos are never half-written: every file is written under a temporary name and renamed.
"""

from __future__ import annotations

import fcntl
import os
import socket
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
    db: str = "jobs.sqlite"  # a SQLite path, or a postgresql:// URL that servers on many machines share
    workers: int = 1
    api_key: str | None = None
    model: str | None = None  # a bundle folder; None: the bundled model
    limits: Limits = field(default_factory=Limits)
    files_dir: Path | None = None  # default: beside a SQLite database (jobs.sqlite -> jobs-files/)

    @property
    def postgres(self) -> bool:
        return str(self.db).startswith(("postgresql://", "postgres://"))

    @property
    def files(self) -> Path:
        """Videos and inputs: --files, else beside the SQLite database. With PostgreSQL the servers must share it."""
        if self.files_dir is not None:
            return Path(self.files_dir)
        if self.postgres:
            raise KinetoscopeError("--db postgresql://... needs --files DIR: a folder every server shares")
        db = Path(self.db)
        return db.with_name(f"{db.stem}-files")


def serve(cfg: ServeConfig) -> None:
    """Run the server until interrupted (Ctrl-C or SIGTERM stop it cleanly; SIGKILL loses no accepted job)."""
    import uvicorn

    from kinetoscope.serve.app import create_app

    if cfg.workers < 1:
        raise KinetoscopeError(f"--workers must be >= 1, got {cfg.workers}")
    if not 0 <= cfg.port <= 65535:
        raise KinetoscopeError(f"--port {cfg.port} is outside 0..65535")
    lock = _lock(cfg) if not cfg.postgres else None
    store, files = JobStore(cfg.db), Files(cfg.files)
    host = socket.gethostname()
    # the jobs a killed server was running: every in-progress job with SQLite (one server); with PostgreSQL only those
    # of dead servers on this machine (workers are named host:pid:wN; other servers own theirs), and orphan files
    # are left alone (another server may be writing them)
    requeued, failed = store.requeue() if not cfg.postgres else _requeue_dead(store, host)
    swept = 0 if cfg.postgres else sweep_orphans(store, files)
    threads = max(1, (os.cpu_count() or 1) // cfg.workers)
    spec = WorkerSpec(cfg.db, cfg.files, cfg.model, threads)
    supervisor = Supervisor(spec, cfg.workers, JobStore(cfg.db), prefix=f"{host}:{os.getpid()}:")
    health = {"workers": cfg.workers}
    app = create_app(store, files, cfg.limits, cfg.api_key, health)
    supervisor.start()
    where = "PostgreSQL" if cfg.postgres else cfg.db
    print(f"kinetoscope: serving http://{cfg.host}:{cfg.port} (db {where}, {cfg.workers} worker(s); "
          f"{requeued} job(s) requeued, {failed} failed, {swept} orphan file(s) removed)", file=sys.stderr, flush=True)
    try:
        uvicorn.Server(uvicorn.Config(app, host=cfg.host, port=cfg.port, log_level="warning",
                                      access_log=False)).run()  # fmt: skip
    finally:
        supervisor.stop()
        if lock is not None:
            os.close(lock)


def _lock(cfg: ServeConfig) -> int:
    """One server per SQLite database: a lock file beside it (the kernel drops it if the server dies)."""
    db = Path(cfg.db)
    db.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(db.with_name(f"{db.name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise KinetoscopeError(f"{cfg.db}: another kinetoscope server is using this database") from None
    return fd


def _requeue_dead(store: JobStore, host: str) -> tuple[int, int]:
    """Requeue the jobs of workers of servers on this host that are no longer running."""
    requeued = failed = 0
    for name in store.running_workers():
        parts = (name or "").split(":")
        if len(parts) == 3 and parts[0] == host and parts[1].isdigit() and not _alive(int(parts[1])):
            r, f = store.requeue(prefix=f"{host}:{parts[1]}:")
            requeued, failed = requeued + r, failed + f
    return requeued, failed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
