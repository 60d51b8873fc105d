"""The shard manifest: round trips, atomic writes, and one clear DataError per kind of malformed line."""

import json
import os
import stat

import pytest

from kinetoscope.data.shards import MANIFEST, ClipRecord, atomic_open, atomic_write_text, read_manifest, write_manifest
from kinetoscope.errors import DataError


def record(i: int, **kw) -> ClipRecord:
    fields = dict(path=f"clips/{i:06d}.mp4", frames=9, fps=12, height=64, width=112,
                  captions={"terse": f"clip {i}", "detailed": f"A longer caption of clip {i}."}, source="world")
    return ClipRecord(**{**fields, **kw})


def test_round_trip_keeps_every_field(tmp_path):
    records = [
        record(0, script={"objects": [{"x": [1.5, 2.0]}]}, spec={"family": "physics", "seed": 7}),
        record(1, source="curated", fps=29.97, captions={"terse": "a dog"}, extra={"origin": "a.mp4", "start": 3}),
        record(2, captions={"terse": "ünïcode ✓", "detailed": "quotes \" and\nnewlines"}),
    ]
    write_manifest(tmp_path, records)
    assert read_manifest(tmp_path) == records
    text = (tmp_path / MANIFEST).read_text()
    assert text.endswith("\n") and len(text.splitlines()) == 3
    assert list(json.loads(text.splitlines()[0]))[0] == "path"  # path first: the manifest reads well with head
    assert read_manifest(tmp_path)[1].bucket == (9, 64, 112)


def test_blank_lines_are_skipped(tmp_path):
    write_manifest(tmp_path, [record(0), record(1)])
    path = tmp_path / MANIFEST
    path.write_text(path.read_text().replace("\n", "\n\n", 1) + "   \n")
    assert [r.path for r in read_manifest(tmp_path)] == ["clips/000000.mp4", "clips/000001.mp4"]


@pytest.mark.parametrize(
    "line, expected",
    [
        ('{"path": "a.mp4", "frames": 9', "malformed JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"path": "a.mp4"}', "missing field 'frames'"),
        (None, "missing field 'captions'"),
        ({"frames": "9"}, "field 'frames' must be int"),
        ({"frames": True}, "field 'frames' must be int"),
        ({"frames": 0}, "field 'frames' must be >= 1"),
        ({"fps": -1}, "field 'fps' must be > 0"),
        ({"captions": {}}, "field 'captions' must be a non-empty object"),
        ({"captions": {"terse": 3}}, "field 'captions' must be a non-empty object"),
        ({"script": [1]}, "field 'script' must be dict"),
    ],
)
def test_malformed_line_names_file_line_and_problem(tmp_path, line, expected):
    good = record(0).to_json()
    if line is None:
        del good["captions"]
        line = json.dumps(good)
    elif isinstance(line, dict):
        line = json.dumps({**good, **line})
    (tmp_path / MANIFEST).write_text(json.dumps(record(0).to_json()) + "\n" + line + "\n")
    with pytest.raises(DataError) as e:
        read_manifest(tmp_path)
    assert f"{tmp_path / MANIFEST}:2:" in str(e.value)
    assert expected in str(e.value)


def test_missing_manifest_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no manifest"):
        read_manifest(tmp_path)


def test_atomic_write_replaces_whole_and_leaves_no_temp(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two", fsync=True)
    assert path.read_text() == "two"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    with pytest.raises(RuntimeError):
        with atomic_open(path) as f:
            f.write("half")
            raise RuntimeError("killed mid-write")
    assert path.read_text() == "two"
    assert os.listdir(tmp_path) == ["a.txt"]
