"""The command line: help works, and every user mistake is one line on stderr and a non-zero exit.

A full `kinetoscope world` run (and its resume after SIGKILL) is in test_worldgen.py.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kinetoscope.cli import COMMANDS, main

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def run(*args: str, module: str = "kinetoscope", cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


@pytest.mark.parametrize("module", ["kinetoscope", "kinetoscope.cli"])
def test_help_lists_commands(module):
    result = run("--help", module=module)
    assert result.returncode == 0 and result.stderr == ""
    assert all(name in result.stdout for name in COMMANDS)


def test_world_help_explains_sizes():
    result = run("world", "--help")
    assert result.returncode == 0
    assert "HEIGHTxWIDTH" in result.stdout and "1+4k" in result.stdout


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--sizes", "65x64"], "height 65 is not a multiple of 16"),
        (["--frames", "10"], "frames 10 is not 1 + 4k"),
    ],
)
def test_impossible_world_is_one_line_on_stderr(tmp_path, flags, message):
    result = run("world", "-o", str(tmp_path / "ds"), "--clips", "3", *flags, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("kinetoscope: error: ")
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["world", "--clips", "3", "--frames", "0"], "frames 0 is not 1 + 4k"),
        (["world", "--clips", "3", "--sizes", "100000x64"], "height 100000 is outside 16..2048"),
        (["world", "--clips", "3", "--sizes", "64"], "'64' is not HEIGHTxWIDTH"),
        (["world", "--clips", "3", "--families", "physics,opera"], "unknown family 'opera'"),
        (["world", "--clips", "3", "--fps", "0"], "fps 0 is outside 1..120"),
        (["world", "--clips", "0"], "clips must be a whole number >= 1"),
        (["world", "--clips", "many"], "world: argument --clips: invalid int value: 'many'"),
        (["world"], "the following arguments are required: -o/--out, --clips"),
        (["curate", "/no/such/folder"], "/no/such/folder: no such folder"),
        (["curate", ".", "--frames", "10"], "clip length 10 is not 1 + 4k"),
        (["curate", ".", "--sizes", "100x64"], "height 100 is not a multiple of 16"),
        (["curate", ".", "--fps", "500"], "fps 500.0 is outside 1..120"),
        (["paint"], "invalid choice: 'paint'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(tmp_path, capsys, argv, message):
    if argv[:1] in (["world"], ["curate"]) and len(argv) > 1:
        argv = [*argv, "-o", str(tmp_path / "ds")]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("kinetoscope: error: ")
    assert message in err


def test_a_refused_resume_is_one_line(tmp_path, capsys):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "notes.txt").write_text("mine")
    assert main(["world", "-o", str(tmp_path / "ds"), "--clips", "2", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not empty" in err
