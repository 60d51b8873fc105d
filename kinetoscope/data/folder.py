"""A data set folder that several processes write and a killed run resumes: the lock, the claim, the sweep, the pool.

Every writer of a data set (``kinetoscope world``, ``kinetoscope curate``) follows the same contract:

    with writing(out, kind, args, fmt):   # one writer per folder (the kernel drops the lock if we die), and
                                          # dataset.json first: a rerun with other arguments is refused
        sweep_temps([out, ...])           # temp files a killed run left behind
        ... make the missing units, each published by an atomic rename ...
        ... write the manifest and the report last ...

Workers are forked processes that die with their parent (Linux ``PR_SET_PDEATHSIG``), so a killed run leaves no orphan
writing files; a worker that dies stops the run with a clear error instead of waiting forever (`pool_results`).
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import multiprocessing as mp
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path

from kinetoscope.data.shards import atomic_write_text
from kinetoscope.errors import DataError

META = "dataset.json"


@contextmanager
def writing(out: str | os.PathLike, kind: str, args: dict, fmt: int) -> Iterator[Path]:
    """The data set folder ``out``, created if needed, locked and claimed for a ``kind`` run with ``args``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    with exclusive(out):
        claim(out, kind, args, fmt)
        yield out


@contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """Hold a lock on the folder itself, so two runs never write one data set; the kernel drops it if we die."""
    fd = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataError(f"{out}: another process is writing this data set") from None
        yield
    finally:
        os.close(fd)


def claim(out: Path, kind: str, args: dict, fmt: int) -> None:
    """Make ``out`` ours: a new or empty folder gets dataset.json; an existing data set must have the same args."""
    meta_path = out / META
    if meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
            old = meta["args"] if meta.get("kind") == kind else None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise DataError(f"{meta_path}: unreadable; is {out} a {kind} data set?") from None
        if old is None:
            raise DataError(f"{out} holds a {meta.get('kind')!r} data set, not a {kind} data set")
        if old != args:
            diff = "; ".join(f"{k} {old.get(k)} there, {args.get(k)} asked" for k in sorted(set(old) | set(args))
                             if old.get(k) != args.get(k))  # fmt: skip
            raise DataError(f"{out} was written with other arguments ({diff}); rerun with the same ones to resume, "
                            f"or write to a new folder")  # fmt: skip
        return
    if any(not p.name.startswith(".") for p in out.iterdir()):
        raise DataError(f"{out} is not empty and holds no {META}; refusing to write a {kind} data set into it")
    write_meta(out, {"kind": kind, "format": fmt, "args": args, "complete": False})


def write_meta(out: Path, meta: dict) -> None:
    """Replace dataset.json atomically (and durably: it is what a resumed run trusts)."""
    atomic_write_text(out / META, json.dumps(meta, indent=1) + "\n", fsync=True)


def sweep_temps(folders: Iterable[Path]) -> None:
    """Delete the temp files (ours and media's: hidden, with '.tmp' in the name) that a killed run left."""
    for folder in folders:
        for entry in os.scandir(folder):
            if entry.name.startswith(".") and ".tmp" in entry.name and entry.is_file():
                os.unlink(entry.path)


def init_pool_worker(parent: int | None) -> None:
    """Set up a pool worker: die with the parent, leave Ctrl-C to it, and run torch on one thread (the workers are
    the parallelism)."""
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which stops the pool
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def die_with_parent(parent: int | None) -> None:
    """Ask Linux to SIGKILL this worker when its parent dies, so a killed run leaves no orphan writing files."""
    if not sys.platform.startswith("linux"):
        return
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent is not None and os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


@contextmanager
def pool_results(fn: Callable, items: list, workers: int, initializer: Callable, initargs: tuple, *,
                 start_method: str = "fork", chunksize: int = 1) -> Iterator[Iterator]:  # fmt: skip
    """``fn`` over ``items`` in ``workers`` processes: yields an iterator of the results in order.

    Every task is submitted on entry, so with "fork" every worker forks then, before the caller starts a thread (a
    progress bar's monitor). A worker that dies (a decoder crash on a hostile file, the OOM killer, kill -9) stops the
    run with a DataError; a multiprocessing.Pool would lose its task and wait for it forever. On any error the workers
    are killed at once rather than left to finish their tasks.
    """
    before = {p.pid for p in mp.active_children()}
    pool = ProcessPoolExecutor(workers, mp.get_context(start_method), initializer=initializer, initargs=initargs)
    try:
        results = pool.map(fn, items, chunksize=chunksize)
        ours = [p for p in mp.active_children() if p.pid not in before]
        try:
            yield _unbroken(results)
        except BaseException:
            for p in ours:
                p.kill()
            raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _unbroken(results: Iterator) -> Iterator:
    try:
        yield from results
    except BrokenProcessPool:
        raise DataError("a worker process died (killed, out of memory, or a crash while decoding a file); what "
                        "finished is kept: run the same command again to resume") from None
