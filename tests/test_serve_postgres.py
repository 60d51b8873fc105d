"""Serving on a shared PostgreSQL job store: a real PostgreSQL server (Debian's package, started here in a private
folder), a server with 3 workers, 60 jobs, one worker SIGKILLed mid-run: every job completes exactly once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from conftest import free_port
from test_serve import FAST, Server

PG_BIN = Path("/usr/lib/postgresql")
pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")


def _pg_tool(name: str) -> str | None:
    found = sorted(PG_BIN.glob(f"*/bin/{name}"))
    return str(found[-1]) if found else None


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    """A throwaway PostgreSQL cluster on a free port (trust auth on 127.0.0.1), stopped at the end."""
    if _pg_tool("initdb") is None:
        pytest.fail("PostgreSQL is missing: scripts/install-system-deps.sh installs Debian's postgresql")
    # PostgreSQL will not run as root: as root, its folder (outside pytest's root-only tree) belongs to postgres
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="kinetoscope-pg-"))
    data = root / "data"
    data.mkdir()
    if as_user:
        for path in (root, data):
            shutil.chown(path, "postgres", "postgres")
    subprocess.run([*as_user, _pg_tool("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"], check=True,
                   capture_output=True)  # fmt: skip
    port = free_port()
    subprocess.run([*as_user, _pg_tool("pg_ctl"), "-D", str(data), "-l", str(data / "log"), "-w", "-o",
                    f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"], check=True,
                   capture_output=True)  # fmt: skip
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, _pg_tool("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], check=False,
                       capture_output=True)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def _workers(server_pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(server_pid), "-f", "spawn_main"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_three_workers_sixty_jobs_one_worker_killed(postgres, tmp_path):
    import psycopg

    server = Server(postgres, "--files", str(tmp_path / "files"), "--workers", "3").start()  # type: ignore[arg-type]
    try:
        c = server.client(retries=5)
        ids = [c.videos.create(prompt=f"a ball number {i}", seconds="1", extra_body=FAST).id for i in range(60)]
        deadline = time.time() + 120
        while time.time() < deadline and len(_workers(server.proc.pid)) < 3:
            time.sleep(0.2)
        while time.time() < deadline:  # kill a worker while it is working
            with psycopg.connect(postgres) as db:
                busy = db.execute("SELECT worker FROM jobs WHERE status = 'in_progress'").fetchall()
                done = db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'completed'").fetchone()[0]
            if busy and done >= 5:
                break
            time.sleep(0.05)
        victim = sorted(_workers(server.proc.pid))[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.time() + 300
        while time.time() < deadline:
            jobs = list(c.videos.list(limit=100))
            if len(jobs) == 60 and all(v.status in ("completed", "failed") for v in jobs):
                break
            time.sleep(0.5)
        assert sorted(v.id for v in jobs) == sorted(ids)
        assert all(v.status == "completed" for v in jobs), [v.error for v in jobs if v.status != "completed"]
        with psycopg.connect(postgres) as db:
            attempts = [r[0] for r in db.execute("SELECT attempts FROM jobs").fetchall()]
        assert attempts.count(1) >= 59 and max(attempts) <= 2  # only the killed worker's job ran twice
        assert len(list((tmp_path / "files" / "videos").glob("*.mp4"))) == 60
        assert len(_workers(server.proc.pid)) == 3  # the dead worker was replaced
        assert requests.get(server.url + "/healthz", timeout=5).ok
    finally:
        server.stop()


def test_postgres_needs_a_shared_files_folder(postgres, capsys):
    from kinetoscope.cli import main

    assert main(["serve", "--db", postgres, "--port", str(free_port())]) == 2
    assert "needs --files DIR" in capsys.readouterr().err
