"""The shard format (DESIGN.md §6): a folder of MP4 clips plus ``manifest.jsonl``, one JSON line a clip.

A line holds ``path`` (relative to the folder), ``frames``, ``fps``, ``height``, ``width``, ``captions``
(``{"terse": ..., "detailed": ...}``) and ``source`` ("world", "curated", ...); world clips add ``script`` (the scene
script) and ``spec`` (the ClipSpec fields). Keys this module does not know are kept in ``ClipRecord.extra`` and
written back unchanged, so other producers can add fields without a format change.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from kinetoscope.errors import DataError

MANIFEST = "manifest.jsonl"
TEMP_MARK = ".tmp-"  # every temp file this package writes has this in its name, so a resumed run can sweep them

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once at import: os.umask can only be read by setting it

_FIELDS = ("path", "frames", "fps", "height", "width", "captions", "source", "script", "spec")


@dataclass(frozen=True)
class ClipRecord:
    """One clip of a shard: where it is, its size, its captions and where it came from."""

    path: str  # relative to the shard folder, '/'-separated
    frames: int
    fps: float
    height: int
    width: int
    captions: Mapping[str, str]  # "terse" and/or "detailed"
    source: str  # "world" | "curated" | ...
    script: dict | None = None  # world clips: the scene script (ground truth)
    spec: dict | None = None  # world clips: the ClipSpec fields
    extra: dict = field(default_factory=dict)  # unknown keys, kept for round trips

    @property
    def bucket(self) -> tuple[int, int, int]:
        """(frames, height, width): clips of one bucket can be stacked into a batch."""
        return (self.frames, self.height, self.width)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "path": self.path,
            "frames": self.frames,
            "fps": self.fps,
            "height": self.height,
            "width": self.width,
            "captions": dict(self.captions),
            "source": self.source,
        }
        if self.script is not None:
            d["script"] = self.script
        if self.spec is not None:
            d["spec"] = self.spec
        d.update(self.extra)
        return d

    @classmethod
    def from_json(cls, d: object, where: str = "record") -> ClipRecord:
        """Build a record from a decoded JSON line; DataError naming ``where`` on a missing or mistyped field."""
        if not isinstance(d, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(d).__name__}")
        for key in ("path", "frames", "fps", "height", "width", "captions", "source"):
            if key not in d:
                raise DataError(f"{where}: missing field {key!r}")
        _expect(where, "path", d["path"], str)
        _expect(where, "source", d["source"], str)
        for key in ("frames", "height", "width"):
            _expect(where, key, d[key], int)
            if d[key] < 1:
                raise DataError(f"{where}: field {key!r} must be >= 1, got {d[key]}")
        _expect(where, "fps", d["fps"], (int, float))
        if not d["fps"] > 0:
            raise DataError(f"{where}: field 'fps' must be > 0, got {d['fps']}")
        caps = d["captions"]
        if not isinstance(caps, dict) or not caps or not all(isinstance(v, str) for v in caps.values()):
            raise DataError(f"{where}: field 'captions' must be a non-empty object of strings, got {caps!r}")
        for key in ("script", "spec"):
            if d.get(key) is not None:
                _expect(where, key, d[key], dict)
        return cls(
            path=d["path"],
            frames=d["frames"],
            fps=d["fps"],
            height=d["height"],
            width=d["width"],
            captions=caps,
            source=d["source"],
            script=d.get("script"),
            spec=d.get("spec"),
            extra={k: v for k, v in d.items() if k not in _FIELDS},
        )


def _expect(where: str, key: str, value: object, types: type | tuple[type, ...]) -> None:
    # bool is an int to Python but never a valid frame count or fps
    if isinstance(value, bool) or not isinstance(value, types):
        names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise DataError(f"{where}: field {key!r} must be {names}, got {value!r}")


def record_line(record: ClipRecord) -> str:
    """One manifest line (no newline), compact; equal records give equal bytes."""
    return json.dumps(record.to_json(), separators=(",", ":"), ensure_ascii=False)


def parse_record(text: str, where: str) -> ClipRecord:
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: malformed JSON ({e.msg} at column {e.colno})") from None
    return ClipRecord.from_json(d, where)


def read_manifest(folder: str | os.PathLike) -> list[ClipRecord]:
    """Read ``folder/manifest.jsonl``; blank lines are skipped, anything else malformed is a DataError."""
    path = Path(folder) / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no manifest (is {folder} a kinetoscope dataset?)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read manifest ({e})") from None
    records = []
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            records.append(parse_record(line, f"{path}:{n}"))
    return records


def write_manifest(folder: str | os.PathLike, records: Iterable[ClipRecord]) -> Path:
    """Write ``folder/manifest.jsonl`` atomically: readers see the old manifest or the new one, never a part."""
    return atomic_write_text(Path(folder) / MANIFEST, "".join(record_line(r) + "\n" for r in records), fsync=True)


def atomic_write_text(path: str | os.PathLike, text: str, *, fsync: bool = False) -> Path:
    """Write ``text`` to a temp file beside ``path``, then rename it over ``path`` (atomic on POSIX).

    A process killed mid-write leaves a ``.NAME.tmp-*`` file, never a truncated ``path``. ``fsync`` also survives a
    power cut; a SIGKILL alone does not need it.
    """
    with atomic_open(path, fsync=fsync) as f:
        f.write(text)
    return Path(path)


@contextmanager
def atomic_open(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[TextIO]:
    """A text file that appears at ``path`` only when the block exits cleanly (streamed ``atomic_write_text``)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{TEMP_MARK}")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; the final file gets the usual permissions
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
