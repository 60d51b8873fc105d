"""Captions for footage being curated, read from sidecars (DESIGN.md §5).

For a video ``shots/take1.mp4`` the caption is the first of: ``shots/take1.txt`` (the whole file, stripped),
``shots/take1.json`` (``{"caption": "..."}``), or a line of ``captions.jsonl`` at the input folder's root
(``{"file": "shots/take1.mp4", "caption": "..."}``; "path" or "video" work for "file", and a bare file name matches
when it is unique). A video with none gets the empty caption: it still trains the VAE and the unconditional branch.
A sidecar that cannot be read is a problem for the report, never a reason to stop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

CAPTIONS_FILE = "captions.jsonl"
SIDECAR_SUFFIXES = (".txt", ".json", ".jsonl")  # never videos: skipped by the folder walk
MAX_CAPTION_CHARS = 2000  # the text encoder reads 128 tokens; a longer caption is a mistake, cut and reported


@dataclass
class CaptionBook:
    """The captions of one input folder: ``captions.jsonl`` read once, sidecars looked up per video."""

    root: Path
    table: dict[str, str] = field(default_factory=dict)  # relative path (and unique bare name) -> caption
    problems: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, root: Path) -> CaptionBook:
        book = cls(root)
        path = root / CAPTIONS_FILE
        if not path.is_file():
            return book
        names: dict[str, list[str]] = {}
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            book.problems.append(f"{CAPTIONS_FILE}: unreadable ({e}); ignored")
            return book
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                key = next(d[k] for k in ("file", "path", "video") if k in d)
                caption = d["caption"]
                if not isinstance(key, str) or not isinstance(caption, str):
                    raise TypeError
            except (ValueError, StopIteration, KeyError, TypeError):
                book.problems.append(f'{CAPTIONS_FILE}:{n}: expected {{"file": ..., "caption": ...}}; line ignored')
                continue
            book.table[key.replace("\\", "/").lstrip("./")] = caption
            names.setdefault(Path(key).name, []).append(caption)
        for name, caps in names.items():
            if len(caps) == 1:
                book.table.setdefault(name, caps[0])
        return book

    def caption(self, video: Path) -> tuple[str, str | None]:
        """(caption, where it came from) for a video inside root; ("", None) when it has none."""
        for suffix in (".txt", ".json"):
            side = video.with_suffix(suffix)
            if not side.is_file():
                continue
            try:
                text = side.read_text(encoding="utf-8")
                caption = text if suffix == ".txt" else json.loads(text)["caption"]
                if not isinstance(caption, str):
                    raise TypeError
            except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
                self.problems.append(f"{side.relative_to(self.root)}: no caption in it "
                                     f'(want text, or {{"caption": "..."}}); ignored')  # fmt: skip
                continue
            return self._cut(caption.strip(), side), side.name
        rel = video.relative_to(self.root).as_posix()
        for key in (rel, video.name):
            if key in self.table:
                return self._cut(self.table[key].strip(), video), CAPTIONS_FILE
        return "", None

    def _cut(self, caption: str, where: Path) -> str:
        if len(caption) > MAX_CAPTION_CHARS:
            self.problems.append(f"{where.name}: caption of {len(caption)} characters cut to {MAX_CAPTION_CHARS}")
            return caption[:MAX_CAPTION_CHARS]
        return " ".join(caption.split())
