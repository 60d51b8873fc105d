"""The storyboard: a short drama as YAML (DESIGN.md §6), read and checked before anything is generated.

    title: The Umbrella
    aspect: "9:16"                 # default
    fps: 16
    seed: 7
    series: series.yaml            # optional: a cast shared by many episodes (same looks, same voices)
    cast:
      Mei: {look: a woman in a red shirt with long black hair, voice: {lang: cmn, variant: f2}}
    shots:
      - id: hello
        setting: living room       # where (English: the model's words)
        size: medium               # wide | medium | close-up
        cast: [Mei]
        action: waves
        lines: ["Mei: 你好！"]      # who: text, in any language espeak-ng speaks
        duration: 2                # seconds; stretched if the lines need longer
        transition: cut            # into this shot: cut | crossfade | connect (a generated transition)
        next: other-shot           # optional; default the next shot in the list
        choices:                   # optional: the viewer picks; each goes to a shot
          - {text: Follow her, goto: street}
        end: true                  # optional: the story may stop here

Every mistake is reported with the file, line and field (``story.yaml:12: shots[2].cast: unknown character
'Bob'``), all of them at once, as one :class:`StoryboardError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kinetoscope.errors import KinetoscopeError
from kinetoscope.sizes import parse_aspect

SIZES = {"wide": "wide shot", "medium": "medium shot", "close-up": "close-up", "closeup": "close-up"}
TRANSITIONS = ("cut", "crossfade", "connect")
MAX_SHOT_SECONDS = 20.0
MAX_SHOTS = 200
ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
LANGS = ("en", "en-us", "en-gb", "cmn", "yue", "ja", "ko", "fr", "de", "es", "it", "pt", "ru", "hi", "vi", "th")


class StoryboardError(KinetoscopeError):
    """One or more mistakes in a storyboard, each ``file:line: field: problem``."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:])})" if len(problems) > 1 else ""
        super().__init__(problems[0] + more)


@dataclass(frozen=True)
class Voice:
    lang: str = "en-us"
    variant: str = "m3"  # espeak-ng voice variant (m1-m7, f1-f5, ...)
    pitch: int = 50  # 0..99
    speed: int = 160  # words per minute


@dataclass(frozen=True)
class Character:
    name: str
    look: str  # the words the model understands: clothes and their colors, hair
    voice: Voice = field(default_factory=Voice)
    seed: int = 0  # the seed of their reference image


@dataclass(frozen=True)
class Line:
    who: str
    text: str


@dataclass(frozen=True)
class Choice:
    text: str
    goto: str


@dataclass(frozen=True)
class Shot:
    id: str
    setting: str
    size: str  # "wide shot" | "medium shot" | "close-up"
    cast: tuple[str, ...]
    action: str
    lines: tuple[Line, ...]
    duration: float
    transition: str
    next: str | None  # None: the story ends after this shot (or branches)
    choices: tuple[Choice, ...]


@dataclass(frozen=True)
class Storyboard:
    path: Path
    title: str
    aspect: str
    fps: float
    seed: int
    cast: dict[str, Character]
    shots: tuple[Shot, ...]

    def shot(self, shot_id: str) -> Shot:
        return next(s for s in self.shots if s.id == shot_id)

    def main_line(self) -> list[Shot]:
        """The episode as one video: from the first shot, follow `next`, taking the first choice at a branch."""
        out, seen, here = [], set(), self.shots[0].id
        while here is not None and here not in seen:
            seen.add(here)
            shot = self.shot(here)
            out.append(shot)
            here = shot.choices[0].goto if shot.choices else shot.next
        return out


class _Loader(yaml.SafeLoader):
    """SafeLoader whose mappings remember the line of each key (``_Map.lines``)."""


class _Map(dict):
    line: int = 0
    lines: dict


def _mapping(loader: _Loader, node: yaml.MappingNode) -> _Map:
    m = _Map(loader.construct_mapping(node, deep=True))
    m.line = node.start_mark.line + 1
    m.lines = {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    return m


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


class _Check:
    """Collects problems as ``file:line: field: message``."""

    def __init__(self, path: Path):
        self.path, self.problems = path, []

    def add(self, where: _Map | None, key: str | None, field_name: str, message: str) -> None:
        line = (where.lines.get(key, where.line) if key else where.line) if isinstance(where, _Map) else 1
        self.problems.append(f"{self.path}:{line}: {field_name}: {message}")


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StoryboardError([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise StoryboardError([f"{path}: cannot read it ({e})"]) from None
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        raise StoryboardError([f"{path}:{line}: not valid YAML: {e.problem or e}"]) from None
    except yaml.YAMLError as e:
        raise StoryboardError([f"{path}:1: not valid YAML: {e}"]) from None


def load_storyboard(path: str | Path, default_aspect: str = "9:16") -> Storyboard:
    """Read and check a storyboard (and its series file); StoryboardError lists every mistake. ``default_aspect``
    applies when the file names none (9:16 for dramas, 16:9 for game cutscenes)."""
    path = Path(path)
    doc = read_yaml(path)
    check = _Check(path)
    if not isinstance(doc, _Map):
        raise StoryboardError([f"{path}:1: storyboard: expected a mapping with title, cast and shots"])
    cast: dict[str, Character] = {}
    if "series" in doc:
        series_path = path.parent / str(doc["series"])
        series = read_yaml(series_path)
        if not isinstance(series, _Map) or not isinstance(series.get("cast"), _Map):
            check.add(doc, "series", "series", f"{series_path} has no cast mapping")
        else:
            cast.update(_cast(series["cast"], _Check(series_path), "cast", collect=check))
    if "cast" in doc:
        if isinstance(doc["cast"], _Map):
            cast.update(_cast(doc["cast"], check, "cast"))
        else:
            check.add(doc, "cast", "cast", "expected a mapping of name -> {look, voice}")
    if not cast:
        check.add(doc, None, "cast", "no characters (give a cast, or a series file with one)")
    title = doc.get("title", path.stem)
    aspect = str(doc.get("aspect", default_aspect))
    try:
        parse_aspect(aspect)
    except KinetoscopeError as e:
        check.add(doc, "aspect", "aspect", str(e))
    fps = _number(doc, "fps", 16, 1, 60, check, "fps")
    seed = int(_number(doc, "seed", 0, 0, 2**31, check, "seed"))
    raw_shots = doc.get("shots")
    shots: list[Shot] = []
    if not isinstance(raw_shots, list) or not raw_shots:
        check.add(doc, "shots" if "shots" in doc else None, "shots", "expected a non-empty list of shots")
    elif len(raw_shots) > MAX_SHOTS:
        check.add(doc, "shots", "shots", f"{len(raw_shots)} shots; the limit is {MAX_SHOTS}")
    else:
        ids = [s.get("id", f"shot{i + 1}") if isinstance(s, _Map) else f"shot{i + 1}" for i, s in enumerate(raw_shots)]
        for i, raw in enumerate(raw_shots):
            shot = _shot(raw, i, ids, cast, check, doc)
            if shot:
                shots.append(shot)
        if not check.problems:
            _check_graph(shots, raw_shots, check)
    if check.problems:
        raise StoryboardError(check.problems)
    return Storyboard(path, str(title), aspect, float(fps), seed, cast, tuple(shots))


def _number(m: _Map, key: str, default: float, lo: float, hi: float, check: _Check, name: str) -> float:
    value = m.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        check.add(m, key, name, f"expected a number in {lo:g}..{hi:g}, got {value!r}")
        return default
    return value


def _cast(raw: _Map, check: _Check, where: str, collect: _Check | None = None) -> dict[str, Character]:
    out = {}
    for name, spec in raw.items():
        field_name = f"{where}.{name}"
        if not isinstance(spec, _Map) or not isinstance(spec.get("look"), str) or not spec["look"].strip():
            check.add(raw, name, field_name, "needs a look: the words the model understands, e.g. "
                                             "'a woman in a red shirt with long black hair'")  # fmt: skip
            continue
        voice = spec.get("voice", {})
        if isinstance(voice, str):
            lang, _, variant = voice.partition("+")
            voice = {"lang": lang, "variant": variant or "m3"}
        if not isinstance(voice, dict) or str(voice.get("lang", "en-us")) not in LANGS:
            check.add(spec, "voice", f"{field_name}.voice", f"lang must be one of {', '.join(LANGS)}, "
                                                             f"got {voice!r}")  # fmt: skip
            continue
        out[str(name)] = Character(str(name), " ".join(spec["look"].split()),
                                   Voice(str(voice.get("lang", "en-us")), str(voice.get("variant", "m3")),
                                         int(voice.get("pitch", 50)), int(voice.get("speed", 160))),
                                   int(spec.get("seed", len(out))))  # fmt: skip
    if collect is not None:
        collect.problems.extend(check.problems)
    return out


def _shot(raw: Any, i: int, ids: list, cast: dict[str, Character], check: _Check, doc: _Map) -> Shot | None:
    where = f"shots[{i}]"
    if not isinstance(raw, _Map):
        check.add(doc, "shots", where, "expected a mapping with setting, size, cast, ...")
        return None
    shot_id = str(raw.get("id", f"shot{i + 1}"))
    if not ID.fullmatch(shot_id):
        check.add(raw, "id", f"{where}.id", f"{shot_id!r} must be 1-64 letters, digits, '-' or '_'")
    if ids.count(raw.get("id", f"shot{i + 1}")) > 1:
        check.add(raw, "id", f"{where}.id", f"{shot_id!r} is used by more than one shot")
    setting = raw.get("setting")
    if not isinstance(setting, str) or not setting.strip():
        check.add(raw, "setting" if "setting" in raw else None, f"{where}.setting", "missing: say where it happens")
    size = str(raw.get("size", "medium")).lower().removesuffix(" shot")
    if size not in SIZES:
        check.add(raw, "size", f"{where}.size", f"{raw.get('size')!r} is not one of wide, medium, close-up")
    who = raw.get("cast", [])
    who = [who] if isinstance(who, str) else who
    if not isinstance(who, list) or not who:
        check.add(raw, "cast" if "cast" in raw else None, f"{where}.cast", "name at least one character")
        who = []
    for name in who:
        if name not in cast:
            check.add(raw, "cast", f"{where}.cast", f"unknown character {name!r} (the cast: {', '.join(cast)})")
    lines = []
    for text in raw.get("lines", []) or []:
        speaker, sep, said = str(text).partition(":")
        if not sep or not said.strip():
            check.add(raw, "lines", f"{where}.lines", f"{text!r} is not 'Name: what they say'")
        elif speaker.strip() not in cast:
            check.add(raw, "lines", f"{where}.lines", f"unknown speaker {speaker.strip()!r}")
        else:
            lines.append(Line(speaker.strip(), said.strip()))
    duration = _number(raw, "duration", 2.0, 0.25, MAX_SHOT_SECONDS, check, f"{where}.duration")
    transition = str(raw.get("transition", "cut"))
    if transition not in TRANSITIONS:
        check.add(raw, "transition", f"{where}.transition", f"{transition!r} is not one of {', '.join(TRANSITIONS)}")
    choices = []
    for c in raw.get("choices", []) or []:
        if not isinstance(c, _Map) or not isinstance(c.get("text"), str) or "goto" not in c:
            check.add(raw, "choices", f"{where}.choices", "each choice needs text and goto")
            continue
        if c["goto"] not in ids:
            check.add(c, "goto", f"{where}.choices.goto", f"no shot {c['goto']!r}")
        choices.append(Choice(c["text"], str(c["goto"])))
    nxt = raw.get("next")
    if nxt is not None and nxt not in ids:
        check.add(raw, "next", f"{where}.next", f"no shot {nxt!r}")
    if nxt is None and not choices and not raw.get("end") and i + 1 < len(ids):
        nxt = ids[i + 1]
    return Shot(shot_id, " ".join(str(setting or "").split()), SIZES.get(size, "medium shot"),
                tuple(str(n) for n in who), " ".join(str(raw.get("action", "")).split()), tuple(lines),
                float(duration), transition, None if nxt is None else str(nxt), tuple(choices))  # fmt: skip


def _check_graph(shots: list[Shot], raw: list[_Map], check: _Check) -> None:
    """Every shot must be able to reach an ending: a loop the viewer can never leave is a mistake."""
    nexts = {s.id: ([s.next] if s.next else []) + [c.goto for c in s.choices] for s in shots}
    can_end = {s for s, n in nexts.items() if not n}
    changed = True
    while changed:
        changed = False
        for s, n in nexts.items():
            if s not in can_end and any(t in can_end for t in n):
                can_end.add(s)
                changed = True
    for i, s in enumerate(shots):
        if s.id not in can_end:
            check.add(raw[i], "next" if "next" in raw[i] else "choices" if "choices" in raw[i] else None,
                      f"shots[{i}]", f"shot {s.id!r} is in a cycle with no exit: no path from it reaches an ending")  # fmt: skip
