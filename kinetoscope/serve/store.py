"""The job store: every accepted video job, its status and progress, in SQLite (WAL; one machine) or PostgreSQL
(many machines share one queue), shared by the web process and the worker processes.

A job is a row; its state moves queued -> in_progress -> completed | failed, and only through this module:

    store.add(job)                         web: accept (an Idempotency-Key seen before returns the earlier job)
    store.claim(worker)                    worker: the oldest queued job, atomically marked in_progress
    store.progress(id, p) / complete / fail
    store.requeue(worker=None)             supervisor: jobs of a dead worker (or, at start, of a dead server) go back
                                           to the queue; after MAX_ATTEMPTS crashes a job fails instead

Every write is one short transaction, so a SIGKILL at any instant leaves the database consistent (SQLite's journal),
and no accepted job is lost: a job is in the table before its id is returned to the client.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

MAX_ATTEMPTS = 3  # a job whose worker died this many times is failed, not retried forever
STATUSES = ("queued", "in_progress", "completed", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    idempotency_key TEXT UNIQUE,
    created_at INTEGER NOT NULL,
    completed_at INTEGER,
    status TEXT NOT NULL,
    progress INTEGER NOT NULL DEFAULT 0,
    model TEXT NOT NULL,
    prompt TEXT NOT NULL,
    seconds TEXT NOT NULL,
    size TEXT NOT NULL,
    remixed_from TEXT,
    params TEXT NOT NULL,
    error TEXT,
    worker TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, seq);
"""

# PostgreSQL: the same table, with its own auto-increment and 64-bit timestamps
_PG_SCHEMA = (_SCHEMA.replace("seq INTEGER PRIMARY KEY AUTOINCREMENT", "seq BIGSERIAL PRIMARY KEY")
              .replace("_at INTEGER", "_at BIGINT"))


@dataclass(frozen=True)
class Job:
    """One row of the store."""

    id: str
    created_at: int
    status: str
    progress: int
    model: str
    prompt: str
    seconds: str
    size: str
    params: dict = field(default_factory=dict)  # what the worker needs: sizes, seed, steps, mode, input files
    remixed_from: str | None = None
    completed_at: int | None = None
    error: dict | None = None
    worker: str | None = None
    attempts: int = 0
    seq: int = 0


class JobStore:
    """The job store over SQLite (a path: one machine) or PostgreSQL (a postgresql:// URL: workers on many machines
    share one queue; a claim takes its row with SELECT ... FOR UPDATE SKIP LOCKED). One instance per process."""

    def __init__(self, where: str | Path):
        self.where = str(where)
        self.postgres = self.where.startswith(("postgresql://", "postgres://"))
        if self.postgres:
            import psycopg
            from psycopg.rows import dict_row

            self._db = psycopg.connect(self.where, autocommit=True, row_factory=dict_row)
            with self._db.transaction():
                self._db.execute("SELECT pg_advisory_xact_lock(727274)")  # one process creates the schema at a time
                for statement in _PG_SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
            return
        self.path = Path(where)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a process kill
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _run(self, sql: str, args: tuple = ()):
        """Execute with the store's parameter style (SQLite's ?, psycopg's %s)."""
        return self._db.execute(sql.replace("?", "%s") if self.postgres else sql, args)

    @contextmanager
    def _tx(self) -> Iterator[JobStore]:
        if self.postgres:
            with self._db.transaction():
                yield self
            return
        self._db.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlocks between processes
        try:
            yield self
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def add(self, job: Job, idempotency_key: str | None = None) -> tuple[Job, bool]:
        """Insert a queued job; (job, True). With a key seen before: (the earlier job, False), nothing inserted."""
        with self._tx() as db:
            if idempotency_key:
                row = db._run("SELECT * FROM jobs WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
                if row:
                    return _job(row), False
            db._run(
                "INSERT INTO jobs (id, idempotency_key, created_at, status, progress, model, prompt, seconds, size, "
                "remixed_from, params) VALUES (?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?, ?)",
                (job.id, idempotency_key, job.created_at, job.model, job.prompt, job.seconds, job.size,
                 job.remixed_from, json.dumps(job.params)),
            )  # fmt: skip
        return self.get(job.id), True

    def get(self, job_id: str) -> Job | None:
        row = self._run("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def page(self, after: str | None = None, limit: int = 20, order: str = "desc") -> tuple[list[Job], bool]:
        """A page of jobs by creation order, starting after the job ``after``; (jobs, has_more)."""
        op, direction = (">", "ASC") if order == "asc" else ("<", "DESC")
        where, args = "", []
        if after:
            where, args = f"WHERE seq {op} (SELECT seq FROM jobs WHERE id = ?)", [after]
        rows = self._run(f"SELECT * FROM jobs {where} ORDER BY seq {direction} LIMIT ?",
                                (*args, limit + 1)).fetchall()  # fmt: skip
        return [_job(r) for r in rows[:limit]], len(rows) > limit

    def pending(self) -> int:
        """Jobs accepted and not finished (queued or in progress): the queue depth."""
        row = self._run("SELECT COUNT(*) AS n FROM jobs WHERE status IN ('queued', 'in_progress')").fetchone()
        return row["n"]

    def running_workers(self) -> set[str]:
        """The names of the workers that hold in-progress jobs."""
        return {r["worker"] for r in self._run("SELECT DISTINCT worker FROM jobs WHERE status = 'in_progress'")}

    def delete(self, job_id: str) -> bool:
        with self._tx() as db:
            return db._run("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount > 0

    def claim(self, worker: str) -> Job | None:
        """The oldest queued job, now in_progress under ``worker``; None when the queue is empty."""
        with self._tx() as db:
            row = db._run(
                "UPDATE jobs SET status = 'in_progress', worker = ?, attempts = attempts + 1, progress = 0 "
                "WHERE seq = (SELECT seq FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1"
                + (" FOR UPDATE SKIP LOCKED" if self.postgres else "") + ") RETURNING *",
                (worker,),
            ).fetchone()
        return _job(row) if row else None

    def progress(self, job_id: str, worker: str, percent: int) -> bool:
        """Record progress; False when the job is gone (deleted) or no longer this worker's: stop working on it."""
        with self._tx() as db:
            return db._run("UPDATE jobs SET progress = ? WHERE id = ? AND worker = ? AND status = 'in_progress'",
                              (max(0, min(99, percent)), job_id, worker)).rowcount > 0  # fmt: skip

    def complete(self, job_id: str, worker: str) -> bool:
        with self._tx() as db:
            return db._run("UPDATE jobs SET status = 'completed', progress = 100, completed_at = ? "
                              "WHERE id = ? AND worker = ? AND status = 'in_progress'",
                              (int(time.time()), job_id, worker)).rowcount > 0  # fmt: skip

    def fail(self, job_id: str, code: str, message: str, worker: str | None = None) -> bool:
        with self._tx() as db:
            return db._run("UPDATE jobs SET status = 'failed', completed_at = ?, error = ? WHERE id = ? AND "
                              "status IN ('queued', 'in_progress') AND (? IS NULL OR worker = ?)",
                              (int(time.time()), json.dumps({"code": code, "message": message}), job_id, worker,
                               worker)).rowcount > 0  # fmt: skip

    def requeue(self, worker: str | None = None, prefix: str | None = None) -> tuple[int, int]:
        """Put the in_progress jobs of ``worker`` (or of every worker whose name starts with ``prefix``; neither: of
        every worker) back in the queue, or fail those that crashed their worker MAX_ATTEMPTS times;
        (requeued, failed)."""
        who, args = ("", ())
        if worker is not None:
            who, args = " AND worker = ?", (worker,)
        elif prefix is not None:
            who, args = " AND worker LIKE ?", (prefix.replace("%", "") + "%",)
        error = json.dumps({"code": "worker_crashed",
                            "message": f"the worker died {MAX_ATTEMPTS} times on this job; not retried again"})
        with self._tx() as db:
            failed = db._run(f"UPDATE jobs SET status = 'failed', completed_at = ?, error = ? WHERE status = "
                                f"'in_progress' AND attempts >= ?{who}",
                                (int(time.time()), error, MAX_ATTEMPTS, *args)).rowcount  # fmt: skip
            requeued = db._run(f"UPDATE jobs SET status = 'queued', worker = NULL, progress = 0 "
                                  f"WHERE status = 'in_progress'{who}", args).rowcount  # fmt: skip
        return requeued, failed


def _job(row) -> Job:
    d = dict(row)
    return Job(id=d["id"], created_at=d["created_at"], status=d["status"], progress=d["progress"], model=d["model"],
               prompt=d["prompt"], seconds=d["seconds"], size=d["size"], params=json.loads(d["params"]),
               remixed_from=d["remixed_from"], completed_at=d["completed_at"],
               error=json.loads(d["error"]) if d["error"] else None, worker=d["worker"], attempts=d["attempts"],
               seq=d["seq"])  # fmt: skip
