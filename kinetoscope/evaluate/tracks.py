"""Objects from labeled pixels: per-frame blobs of one color, tracks across frames, and tracks merged into objects.

An object is found as blobs of one vocabulary color (a red ball), followed from frame to frame by position. Parts
of one object that wear other colors (an apple's green leaf, the blended rim of a purple star on a blue sky, a
person's trousers and hat) are their own tracks at first. A track that touches a bigger one in most of the frames
they share is folded into it (merge_parts); then a much smaller object that stays joined to a bigger one, by a
gap of a pixel or two or by something that is not background (a face between a hat and a shirt), is folded in
too (merge_nearby). Two real objects touch only when they meet and have background between them otherwise, so
they stay apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from kinetoscope.evaluate.colors import NAMES

MIN_AREA_FRACTION = 0.0015  # a blob smaller than this share of the frame (6 px at 64x64) is noise
MAX_AREA_FRACTION = 0.3  # a blob this large touching every border is background wearing a vocabulary color
ATTACH_FRACTION = 0.6  # a track touching a bigger one in this share of their common frames is a part of it
NEARBY_RATIO = 2.5  # an object this many times bigger, always close by, takes a small one in as a part
NEARBY_SHARE = 0.8  # "always": in this share of the small one's frames
NEARBY_CLOSE = 0.4  # "close": a gap under this share of the big one's longer box side...
TINY_RATIO = 5.0  # ...for an object this many times smaller (a hat on a figure; physics bodies differ less)
NEARBY_REACH = 0.55  # a gap up to this share is close only if something other than background fills it
BRIDGE_DELTA = 8.0  # Lab distance between a gap line and the background beside it that says "not background"
BRIDGE_SHARE = 0.6  # share of the gap's lines that must say so
_CROSS = ndi.generate_binary_structure(2, 1)


@dataclass(eq=False)
class Blob:
    """Connected pixels of one color in one frame."""

    t: int
    color: int  # index into NAMES
    ys: np.ndarray
    xs: np.ndarray

    @property
    def area(self) -> int:
        return int(self.ys.size)

    @property
    def center(self) -> tuple[float, float]:
        return float(self.xs.mean()), float(self.ys.mean())


@dataclass(eq=False)
class Track:
    """Blobs of one color over time, at most one per frame."""

    color: int
    blobs: dict[int, Blob] = field(default_factory=dict)
    parts: list[Track] = field(default_factory=list)  # other-colored tracks folded into this one

    def last(self) -> Blob:
        return self.blobs[max(self.blobs)]

    @property
    def median_area(self) -> float:
        return float(np.median([b.area for b in self.blobs.values()]))


def find_blobs(labels: np.ndarray) -> list[list[Blob]]:
    """Per frame, the blobs of each vocabulary color. labels: (T, H, W) int8 from colors.label_pixels."""
    t_len, h, w = labels.shape
    min_area = max(4, round(MIN_AREA_FRACTION * h * w))
    out: list[list[Blob]] = []
    for t in range(t_len):
        frame_blobs = []
        present = np.bincount(labels[t].ravel().astype(np.int64) + 1, minlength=len(NAMES) + 1)[1:]
        for c in np.nonzero(present >= min_area)[0]:
            mask = labels[t] == c
            # pieces of one color a pixel or two apart (a ball cut by its own gray stripe) are one blob
            groups, n = ndi.label(ndi.binary_dilation(mask, _CROSS), _CROSS)
            ids = groups[mask]
            ys, xs = np.nonzero(mask)
            order = np.argsort(ids, kind="stable")
            ids, ys, xs = ids[order], ys[order], xs[order]
            cuts = np.flatnonzero(np.diff(ids)) + 1
            for gy, gx in zip(np.split(ys, cuts), np.split(xs, cuts)):
                if gy.size < min_area or _is_backdrop(gy, gx, h, w):
                    continue
                frame_blobs.append(Blob(t, int(c), gy, gx))
        out.append(frame_blobs)
    return out


def _is_backdrop(ys: np.ndarray, xs: np.ndarray, h: int, w: int) -> bool:
    """A region that reaches all four frame borders and covers a big share of the frame, or nearly all of it, is
    the background wearing a vocabulary color (a flat key color behind a sprite, a colored wall), not an object.
    A close-up's shirt may fill half the frame but leaves the top to the head."""
    area = ys.size / (h * w)
    borders = int(ys.min() == 0) + int(ys.max() == h - 1) + int(xs.min() == 0) + int(xs.max() == w - 1)
    return (borders == 4 and area > MAX_AREA_FRACTION) or area > 0.7


def link(blobs: list[list[Blob]], short_side: int) -> list[Track]:
    """Greedy frame-to-frame association of same-colored blobs by distance (gaps of a few frames allowed)."""
    tracks: list[Track] = []
    for frame_blobs in blobs:
        pairs = []
        for bi, b in enumerate(frame_blobs):
            bx, by = b.center
            for ti, tr in enumerate(tracks):
                if tr.color != b.color:
                    continue
                last = tr.last()
                gap = b.t - last.t
                if gap > 4:
                    continue
                lx, ly = last.center
                d = float(np.hypot(bx - lx, by - ly))
                size = np.sqrt(max(b.area, last.area))
                if d <= 0.2 * short_side * gap + 1.5 * size:
                    pairs.append((d, bi, ti))
        used_b, used_t = set(), set()
        for d, bi, ti in sorted(pairs):
            if bi in used_b or ti in used_t:
                continue
            used_b.add(bi)
            used_t.add(ti)
            tracks[ti].blobs[frame_blobs[bi].t] = frame_blobs[bi]
        for bi, b in enumerate(frame_blobs):
            if bi not in used_b:
                tracks.append(Track(b.color, {b.t: b}))
    return tracks


def _touch(a: Blob, b: Blob, shape: tuple[int, int], reach: int = 2) -> bool:
    """True if blob b comes within ``reach`` pixels of blob a."""
    y0, y1 = max(0, min(a.ys.min(), b.ys.min()) - reach), min(shape[0], max(a.ys.max(), b.ys.max()) + reach + 1)
    x0, x1 = max(0, min(a.xs.min(), b.xs.min()) - reach), min(shape[1], max(a.xs.max(), b.xs.max()) + reach + 1)
    if a.ys.max() + reach < b.ys.min() or b.ys.max() + reach < a.ys.min():
        return False
    if a.xs.max() + reach < b.xs.min() or b.xs.max() + reach < a.xs.min():
        return False
    m = np.zeros((y1 - y0, x1 - x0), bool)
    m[a.ys - y0, a.xs - x0] = True
    m = ndi.binary_dilation(m, iterations=reach)
    return bool(m[b.ys - y0, b.xs - x0].any())


def merge_parts(tracks: list[Track], shape: tuple[int, int]) -> list[Track]:
    """Fold each track into the biggest track it touches in most of their common frames; return the roots."""
    order = sorted(range(len(tracks)), key=lambda i: tracks[i].median_area)
    parent = list(range(len(tracks)))
    for i in order:
        small = tracks[i]
        best = None
        for j, big in enumerate(tracks):
            if j == i or big.median_area <= small.median_area or big.color == small.color:
                continue
            common = [t for t in small.blobs if t in big.blobs]
            if not common or len(common) < 0.5 * len(small.blobs):
                continue
            touching = sum(_touch(big.blobs[t], small.blobs[t], shape) for t in common)
            score = touching / len(common)
            if score >= ATTACH_FRACTION and (best is None or big.median_area > tracks[best].median_area):
                best = j
        if best is not None:
            parent[i] = best
    roots: dict[int, Track] = {}

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(len(tracks)):
        r = root(i)
        roots.setdefault(r, tracks[r])
        if r != i:
            roots[r].parts.append(tracks[i])
    return list(roots.values())


def _box(track: Track, t: int) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1) of an object (with its parts) in frame t."""
    pieces = [tr.blobs[t] for tr in [track, *track.parts] if t in tr.blobs]
    if not pieces:
        return None
    return (min(int(p.xs.min()) for p in pieces), min(int(p.ys.min()) for p in pieces),
            max(int(p.xs.max()) for p in pieces), max(int(p.ys.max()) for p in pieces))


def _area(track: Track) -> float:
    frames = set().union(*(tr.blobs for tr in [track, *track.parts]))
    return float(np.median([sum(tr.blobs[t].area for tr in [track, *track.parts] if t in tr.blobs) for t in frames]))


def merge_nearby(objects: list[Track], lab: np.ndarray, named: np.ndarray) -> list[Track]:
    """Fold a small object into a much bigger one it stays joined to in most of the frames it is seen: a hat above
    a face, trousers a pixel below a shirt, a piece the color naming split off. Joined means a gap of at most two
    pixels (or NEARBY_CLOSE of the big one's longer box side, for one TINY_RATIO times smaller), or a wider gap
    (up to NEARBY_REACH) filled with something that is not the background beside it (the face between a hat and a
    shirt). Separate objects have background between them.
    lab: (T, H, W, 3) frames in Lab; named: (T, H, W) pixels with a vocabulary name. Repeats until nothing
    changes, so a person's trousers join the shirt before the hat is measured against the whole figure."""
    alive = list(objects)
    changed = True
    while changed:
        changed = False
        areas = {id(o): _area(o) for o in alive}
        for small in sorted(alive, key=lambda o: areas[id(o)]):
            frames = set().union(*(tr.blobs for tr in [small, *small.parts]))
            best = None
            for big in alive:
                if big is small or areas[id(big)] < NEARBY_RATIO * areas[id(small)]:
                    continue
                tiny = areas[id(big)] >= TINY_RATIO * areas[id(small)]
                near = sum(_joined(_box(big, t), _box(small, t), lab[t], named[t], tiny) for t in frames)
                if near >= NEARBY_SHARE * len(frames) and (best is None or areas[id(big)] > areas[id(best)]):
                    best = big
            if best is not None:
                best.parts.extend([small, *small.parts])
                alive.remove(small)
                changed = True
                break
    return alive


def _joined(a, b, lab: np.ndarray, named: np.ndarray, tiny: bool) -> bool:
    """Are boxes a (big) and b (small) in one frame touching, close (b tiny next to a), or bridged by something
    unlike the background?"""
    if a is None or b is None:
        return False
    gap = max(a[0] - b[2], b[0] - a[2], a[1] - b[3], b[1] - a[3], 0)
    side = max(a[2] - a[0] + 1, a[3] - a[1] + 1)
    if gap <= (max(2.0, NEARBY_CLOSE * side) if tiny else 2.0):
        return True
    if gap > NEARBY_REACH * side:
        return False
    h, w = named.shape
    c0, c1 = max(a[0], b[0]), min(a[2], b[2])  # shared columns: one is above the other
    r0, r1 = max(a[1], b[1]), min(a[3], b[3])  # shared rows: flank by flank
    if c0 <= c1:
        rows = range(min(a[3], b[3]) + 1, max(a[1], b[1]))
        gap_px = [lab[r, c0 : c1 + 1][~named[r, c0 : c1 + 1]] for r in rows]
        flank = max(2, (c1 - c0 + 1) // 2)
        flanks = [(lab[r, max(0, c0 - flank) : c0][~named[r, max(0, c0 - flank) : c0]],
                   lab[r, c1 + 1 : min(w, c1 + 1 + flank)][~named[r, c1 + 1 : min(w, c1 + 1 + flank)]]) for r in rows]
    elif r0 <= r1:
        cols = range(min(a[2], b[2]) + 1, max(a[0], b[0]))
        gap_px = [lab[r0 : r1 + 1, c][~named[r0 : r1 + 1, c]] for c in cols]
        flank = max(2, (r1 - r0 + 1) // 2)
        flanks = [(lab[max(0, r0 - flank) : r0, c][~named[max(0, r0 - flank) : r0, c]],
                   lab[r1 + 1 : min(h, r1 + 1 + flank), c][~named[r1 + 1 : min(h, r1 + 1 + flank), c]]) for c in cols]
    else:
        return False
    bridged = 0
    for g, (f0, f1) in zip(gap_px, flanks):
        if g.size == 0:
            bridged += 1  # the gap line is all named pixels: something is there
            continue
        m = g.mean(axis=0)
        far = [float(np.linalg.norm(m - f.mean(axis=0))) for f in (f0, f1) if f.size]
        bridged += bool(far) and float(np.mean(far)) > BRIDGE_DELTA
    return bridged >= BRIDGE_SHARE * len(gap_px)


def object_mask(objects: list[Track], t_len: int, shape: tuple[int, int]) -> np.ndarray:
    """(T, H, W) bool: each object's box per frame, grown by a quarter of its size (a third upward, two thirds for
    an upright figure) so that the unnamed parts that move with it (a face and hair above a shirt, hands, an
    emoji's outline) are covered too."""
    mask = np.zeros((t_len, *shape), bool)
    for o in objects:
        for t in set().union(*(tr.blobs for tr in [o, *o.parts])):
            x0, y0, x1, y1 = _box(o, t)
            bw, bh = x1 - x0 + 1, y1 - y0 + 1
            m, up = 0.25 * max(bw, bh), (0.67 if bh > 1.2 * bw else 0.35) * max(bw, bh)  # a figure's head
            mask[t, max(0, int(y0 - up)) : int(y1 + m) + 1, max(0, int(x0 - m)) : int(x1 + m) + 1] = True
    return mask


def object_pixels(track: Track, t: int) -> tuple[np.ndarray, np.ndarray] | None:
    """All pixels of an object (its own blobs and its parts') in frame t, or None if unseen."""
    pieces = [tr.blobs[t] for tr in [track, *track.parts] if t in tr.blobs]
    if not pieces:
        return None
    return np.concatenate([p.ys for p in pieces]), np.concatenate([p.xs for p in pieces])
