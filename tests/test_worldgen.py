"""The world data set writer: complete, deterministic, resumable after a SIGKILL, and refusing other arguments."""

import dataclasses
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kinetoscope.data.shards import MANIFEST, read_manifest
from kinetoscope.data.worldgen import available_families, write_world_dataset
from kinetoscope.errors import DataError, KinetoscopeError, SizeError
from kinetoscope.media import probe
from kinetoscope.world import sample_spec

REPO = Path(__file__).resolve().parents[1]
FAMILIES = available_families()  # the families whose renderer exists; the tests use all of them
SMALL = dict(families=FAMILIES, sizes=((64, 64), (64, 112)), frames=(1, 9))


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "kinetoscope", *args]


def cli_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def assert_complete(out: Path, n: int, seed: int = 0) -> None:
    """Exactly n clips, n manifest lines in index order, every MP4 decodable at its recorded size, no temp files."""
    clips = sorted(os.listdir(out / "clips"))
    assert clips == sorted([f"{i:06d}.json" for i in range(n)] + [f"{i:06d}.mp4" for i in range(n)])
    assert sorted(os.listdir(out)) == ["clips", "dataset.json", MANIFEST]
    records = read_manifest(out)
    assert [r.path for r in records] == [f"clips/{i:06d}.mp4" for i in range(n)]
    for i, r in enumerate(records):
        info = probe(out / r.path)
        assert (info.frames, info.height, info.width) == r.bucket
        assert info.fps == pytest.approx(r.fps)
        assert r.spec == dataclasses.asdict(sample_spec(i, seed, SMALL["families"], SMALL["sizes"], SMALL["frames"]))
        assert r.source == "world" and r.captions["terse"] and r.captions["detailed"] and r.script
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["complete"] and meta["clips"] == n and sum(b["clips"] for b in meta["buckets"]) == n


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world") / "ds"
    summary = write_world_dataset(out, 12, seed=0, workers=2, progress=False, **SMALL)
    assert (summary.clips, summary.rendered, summary.skipped) == (12, 12, 0)
    return out


def test_dataset_is_complete(dataset):
    assert_complete(dataset, 12)
    assert {r.spec["family"] for r in read_manifest(dataset)} <= set(FAMILIES)


def test_same_seed_gives_same_records(dataset, tmp_path):
    write_world_dataset(tmp_path / "again", 12, seed=0, workers=1, progress=False, **SMALL)
    assert (tmp_path / "again" / MANIFEST).read_bytes() == (dataset / MANIFEST).read_bytes()


def test_rerun_repairs_half_made_clips_and_sweeps_temp_files(dataset, tmp_path):
    out = tmp_path / "ds"
    write_world_dataset(out, 4, seed=3, workers=1, progress=False, **SMALL)
    before = (out / MANIFEST).read_bytes()
    (out / "clips" / "000001.mp4").write_bytes(b"")  # a JSON whose MP4 is empty: not a clip
    (out / "clips" / "000002.json").unlink()  # an MP4 whose JSON never came: not a clip
    (out / "clips" / ".000003.mp4.abc.tmp").write_bytes(b"x")  # temp files of a killed write
    (out / ".manifest.jsonl.tmp-abc").write_text("x")
    summary = write_world_dataset(out, 4, seed=3, workers=2, progress=False, **SMALL)
    assert (summary.rendered, summary.skipped) == (2, 2)
    assert (out / MANIFEST).read_bytes() == before
    assert not [p for p in out.rglob(".*")]


def test_other_arguments_are_refused(dataset):
    before = sorted(os.listdir(dataset / "clips"))
    with pytest.raises(DataError, match=r"other arguments \(clips 12 there, 13 asked\)"):
        write_world_dataset(dataset, 13, seed=0, progress=False, **SMALL)
    with pytest.raises(DataError, match="seed 0 there, 1 asked"):
        write_world_dataset(dataset, 12, seed=1, progress=False, **SMALL)
    assert sorted(os.listdir(dataset / "clips")) == before


def test_a_second_concurrent_run_is_refused(dataset):
    fd = os.open(dataset, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what a running write_world_dataset holds
        with pytest.raises(DataError, match="another process is writing"):
            write_world_dataset(dataset, 12, seed=0, progress=False, **SMALL)
    finally:
        os.close(fd)


def test_a_foreign_folder_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        write_world_dataset(tmp_path, 2, progress=False, **SMALL)


@pytest.mark.parametrize(
    "kw, error, match",
    [
        (dict(sizes=((65, 64),)), SizeError, "height 65 is not a multiple of 16"),
        (dict(frames=(10,)), SizeError, "frames 10 is not 1 \\+ 4k"),
        (dict(families=("physics", "opera")), KinetoscopeError, "unknown family 'opera'; known: .*, directions"),
        (dict(fps=(0,)), KinetoscopeError, "fps 0"),
    ],
)
def test_impossible_arguments_fail_before_touching_disk(tmp_path, kw, error, match):
    with pytest.raises(error, match=match):
        write_world_dataset(tmp_path / "ds", 2, progress=False, **{**SMALL, **kw})
    assert not (tmp_path / "ds").exists()


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # field 4, after the parenthesized name
                out.append(int(entry))
    return out


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_then_rerun_gives_exactly_n_clips(tmp_path):
    n, out = 40, tmp_path / "ds"
    sizes = ",".join(f"{h}x{w}" for h, w in SMALL["sizes"])
    frames = ",".join(map(str, SMALL["frames"]))
    args = cli("world", "-o", str(out), "--clips", str(n), "--families", ",".join(FAMILIES), "--sizes", sizes,
               "--frames", frames, "--workers", "2", "-q")  # fmt: skip
    proc = subprocess.Popen(args, cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(list((out / "clips").glob("*.json")) if (out / "clips").exists() else []) < 4:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no clips after 60 s"
        time.sleep(0.02)
    workers = children(proc.pid)
    assert len(workers) == 2, workers
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)  # the workers hold the pipes too: this also waits for them to die with their parent
    deadline = time.monotonic() + 10  # workers die with their parent: no orphan keeps writing clips
    while any(alive(p) for p in workers):
        assert time.monotonic() < deadline, f"orphan workers {workers} outlived the killed run"
        time.sleep(0.05)
    made = len(list((out / "clips").glob("*.json")))
    assert 4 <= made < n, "the run finished before the kill; the test proves nothing"
    rerun = subprocess.run(args, cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    done = re.search(r"(\d+) clips \((\d+) rendered, (\d+) already there\)", rerun.stdout)
    assert done and [int(g) for g in done.groups()] == [n, n - made, made], rerun.stdout
    assert_complete(out, n)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_dead_worker_stops_the_run_with_a_clear_error(tmp_path):
    """A Pool replaces a dead worker and waits forever for its task; the run must stop and say so instead."""
    out = tmp_path / "ds"
    args = cli("world", "-o", str(out), "--clips", "400", "--families", ",".join(FAMILIES), "--sizes",
               ",".join(f"{h}x{w}" for h, w in SMALL["sizes"]), "--workers", "2", "-q")  # fmt: skip
    proc = subprocess.Popen(args, cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while not (out / "clips").exists() or not list((out / "clips").glob("*.json")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate(timeout=300)
        time.sleep(0.02)
    os.kill(children(proc.pid)[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "a worker process died" in err and "run the same command again" in err, err
