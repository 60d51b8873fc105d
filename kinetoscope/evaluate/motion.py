"""Facts about one object's motion from its (camera-compensated) track: direction, bounces, gravity.

Direction follows the world's rule (vocab.direction_of): the dominant axis of the net displacement, if that
displacement reaches 0.12 of the frame's short side; else "none". Gravity is fitted on the vertical track: between
floor contacts an object in free flight follows y(t) = a + b t + c t^2, so the track is cut at its bounces (the
lowest points where it turns from falling to rising), each lowest point is given to the flight before or after its
contact (whichever parabola it fits), every flight segment gets its own parabola, and the curvatures of the
segments a parabola explains are averaged (inverse-variance weights). The vertical acceleration is 2c, in pixels
per frame squared (y grows downward, so falling objects give g > 0).
"""

from __future__ import annotations

import numpy as np

from kinetoscope.world.vocab import direction_of

MIN_SEGMENT = 4  # points a flight segment needs to say anything about curvature
MIN_VERTICAL_RANGE = 2.0  # px: an object that barely moves vertically has no measurable gravity


def direction(dx: float, dy: float, short_side: float) -> str:
    """left/right/up/down by the dominant axis of a net displacement (y down), or none below the threshold: the
    vocabulary's own rule, so the analyzer and the world cannot drift apart."""
    return direction_of(dx, dy, short_side)


def _runs(t: np.ndarray) -> list[np.ndarray]:
    """Indices of t split into runs of consecutive frames."""
    cuts = np.flatnonzero(np.diff(t) != 1) + 1
    return np.split(np.arange(t.size), cuts)


def _quad(t: np.ndarray, y: np.ndarray, seg: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Quadratic fit of y over one segment: coefficients (c, b, a) in centered time, rms residual, var factor of c."""
    tt = (t[seg] - t[seg].mean()).astype(np.float64)
    a = np.stack([tt**2, tt, np.ones_like(tt)], axis=1)
    coef, *_ = np.linalg.lstsq(a, y[seg], rcond=None)
    resid = y[seg] - a @ coef
    rms = float(np.sqrt((resid**2).sum() / max(seg.size - 3, 1)))
    var_c = float(np.linalg.inv(a.T @ a)[0, 0]) if seg.size >= 3 else float("inf")
    return coef, rms, var_c


def _predict(t: np.ndarray, y: np.ndarray, seg: np.ndarray, at: int, c: float | None) -> float | None:
    """y predicted at index ``at`` by the flight through seg: its own parabola (3+ points), else a line bent by
    the acceleration 2c (2 points), else None."""
    if seg.size >= 3:
        coef, _, _ = _quad(t, y, seg)
        tt = t[at] - t[seg].mean()
        return float(coef[0] * tt**2 + coef[1] * tt + coef[2])
    if seg.size == 2 and c is not None:
        t0, t1 = t[seg]
        b = (y[seg[1]] - y[seg[0]]) / (t1 - t0) - c * (t0 + t1)
        a0 = y[seg[0]] - b * t0 - c * t0**2
        return float(a0 + b * t[at] + c * t[at] ** 2)
    return None


def bounces_and_gravity(t: np.ndarray, y: np.ndarray) -> tuple[list[int], float | None]:
    """Floor contacts (the frame right after each) and the fitted vertical acceleration (px/frame^2) of a track.

    t: frame indices where the object was seen (increasing); y: its vertical position there (down positive).
    In free flight under gravity y(t) is convex (its only turning point is the apex), so every lowest point where
    the track turns from falling to rising is a contact. Each flight segment gets its own parabola; segments that a
    parabola explains (contacts the sampling hid make the others fail) are averaged, weighted by how well they pin
    the curvature down. Gravity is None when no segment of 4+ frames exists or the object hardly moves vertically.
    """
    t = np.asarray(t, np.int64)
    y = np.asarray(y, np.float64)
    if t.size < MIN_SEGMENT + 1 or np.ptp(y) < MIN_VERTICAL_RANGE:
        return [], None
    # an object at rest after its last bounce is not in flight: drop the still tail, keep its arrival as a contact
    end = t.size
    while end > 1 and abs(y[end - 1] - y[end - 2]) < 0.25 and y[end - 1] >= y[:end].max() - 0.5:
        end -= 1
    rest = end - 1 if end < t.size else t.size  # first frame at rest, if the track ends resting
    bounces: list[int] = []
    segments: list[np.ndarray] = []
    contacts: list[int] = []  # indices into segments of the single lowest points, assigned below
    for run in _runs(t[:rest]):
        start = 0
        for i in _lowest_points(y[run]):
            segments.append(run[start:i])
            contacts.append(len(segments))
            segments.append(run[i : i + 1])
            start = i + 1
        segments.append(run[start:])
    c_all = _robust_c(t, y, [sg for k, sg in enumerate(segments) if sg.size >= MIN_SEGMENT and k not in contacts])
    # each lowest point was seen either just before or just after its contact: give it to the flight it fits
    for k in contacts:
        point = int(segments[k][0])
        before, after = segments[k - 1], segments[k + 1]
        pb, pa = _predict(t, y, before, point, c_all), _predict(t, y, after, point, c_all)
        err_b = abs(pb - y[point]) if pb is not None else np.inf
        err_a = abs(pa - y[point]) if pa is not None else np.inf
        segments[k] = segments[k][:0]
        if err_a < err_b:
            segments[k + 1] = np.concatenate([[point], after])
            bounces.append(int(t[point]))
        else:
            segments[k - 1] = np.concatenate([before, [point]])
            bounces.append(int(t[point]) + 1)
    segments = [sg for sg in segments if sg.size]
    # a contact between the last two frames seen (nothing after it to show the rise) breaks the last parabola
    if segments and segments[-1].size >= MIN_SEGMENT + 1:
        last = segments[-1]
        pred = _predict(t, y, last[:-1], int(last[-1]), None)
        _, rms, _ = _quad(t, y, last[:-1])
        if pred is not None and pred - y[last[-1]] > max(0.5, 4 * rms):
            segments[-1] = last[:-1]
            bounces.append(int(t[last[-1]]))
    if 0 < rest < t.size and t[rest] == t[rest - 1] + 1 and y[rest] - y[rest - 1] > 0.2:
        bounces.append(int(t[rest]))
    c = _robust_c(t, y, [sg for sg in segments if sg.size >= MIN_SEGMENT])
    return sorted(set(bounces)), None if c is None else 2.0 * c



def _robust_c(t: np.ndarray, y: np.ndarray, segments: list[np.ndarray]) -> float | None:
    """Curvature shared by the segments a parabola explains (rms under 0.35 px, or within 3x the best one's),
    inverse-variance weighted; None without segments that rise or fall by 2 px or more."""
    segments = [sg for sg in segments if np.ptp(y[sg]) >= MIN_VERTICAL_RANGE]  # hops on the floor say little
    fits = [_quad(t, y, sg) for sg in segments]
    if not fits:
        return None
    best = min(rms for _, rms, _ in fits)
    keep = [(coef[0], var) for coef, rms, var in fits if rms <= max(0.35, 3 * best)]
    w = np.array([1 / v for _, v in keep])
    return float(np.sum(w * np.array([c for c, _ in keep])) / w.sum())


def _lowest_points(y: np.ndarray, prominence: float = 0.3) -> list[int]:
    """Indices where a track turns from falling to rising (a local maximum of y, by at least ``prominence`` px on
    both sides within two frames); plateaus count once, at their first point."""
    out = []
    n = y.size
    for i in range(1, n - 1):
        if y[i] < y[i - 1] or y[i] < y[i + 1] or (out and out[-1] == i - 1 and y[i] == y[i - 1]):
            continue
        left = y[i] - y[max(0, i - 2) : i].min()
        j = i + 1
        while j < n - 1 and y[j] == y[i]:
            j += 1
        right = y[i] - y[j : j + 2].min()
        if left >= prominence and right >= prominence:
            out.append(i)
    return out
