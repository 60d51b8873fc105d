"""The analyzer: reads a clip's frames back into facts, from pixels only (DESIGN.md §4).

It never asks the renderer anything, so the same code scores generated video. The steps:

1. Name every pixel with the vocabulary (colors.py): saturated hues, bright white, deep black; muted tones, which is
   what backgrounds are made of, stay unnamed. Nothing else marks an object: a still one, or a single image, is
   found as well as a moving one.
2. Cut named pixels into same-colored blobs, follow them through time, and fold parts (a leaf, a hat, trousers)
   into their objects (tracks.py).
3. Fit the camera (camera.py): a shift and a uniform scale about the frame center per frame, on the background
   (pixels away from everything named and from the objects' boxes).
4. Per object: colors, per-frame center and size, camera-compensated direction, bounces and gravity (motion.py).
5. Whole-clip measures: objects per frame, camera motion, loop seam, flicker.

Positions are frame pixel coordinates as the world writes them: pixel (i, j) covers [j, j+1) x [i, i+1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi

from kinetoscope.evaluate.camera import CameraPath, track_camera, warp_to
from kinetoscope.evaluate.colors import NAMES, label_pixels, rank_labels, rgb_to_lab
from kinetoscope.evaluate.motion import bounces_and_gravity, direction
from kinetoscope.evaluate.tracks import Track, find_blobs, link, merge_nearby, merge_parts, object_mask, object_pixels

MIN_PRESENCE = 0.15  # an object seen in under this share of the frames and in under 3 frames is noise


@dataclass(frozen=True)
class ObjectTrack:
    """One object: its colors, where it is in every frame (None when unseen), and what its motion says."""

    color: str  # the dominant vocabulary color
    colors: tuple[tuple[str, float], ...]  # ranked (name, share of its named pixels)
    track: tuple[tuple[float, float] | None, ...]  # per frame (x, y) center in frame pixels
    sizes: tuple[float | None, ...]  # per frame diameter of the disc of the same area, frame pixels
    direction: str  # left/right/up/down/none, camera-compensated, the world's rule
    gravity: float | None  # fitted vertical acceleration, px/frame^2 in the widest view (down positive)
    bounces: tuple[int, ...]  # frame indices right after floor contacts


@dataclass(frozen=True)
class CameraEstimate:
    """Camera motion: the vocabulary name and, per frame, how frame 0's content appears (shift and scale)."""

    motion: str
    shift: tuple[tuple[float, float], ...]  # per frame, frame pixels
    scale: tuple[float, ...]  # per frame, > 1 is magnified (zooming in)


@dataclass(frozen=True)
class Analysis:
    """Everything the analyzer reads from one clip; ``to_dict`` gives plain JSON types."""

    frames: int
    height: int
    width: int
    fps: float
    objects: tuple[ObjectTrack, ...]
    count_per_frame: tuple[int, ...]
    camera: CameraEstimate
    loop_seam: float  # last->first frame difference over the median frame-to-frame difference
    flicker: float  # brightness jitter + temporal noise per frame step on the background, L* units (0..100)

    @property
    def colors(self) -> list[str]:
        return [o.color for o in self.objects]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["objects"] = [
            {**o, "colors": [list(c) for c in o["colors"]], "track": [list(p) if p else None for p in o["track"]],
             "sizes": list(o["sizes"]), "bounces": list(o["bounces"])}
            for o in d["objects"]
        ]
        d["camera"] = {"motion": self.camera.motion, "shift": [list(s) for s in self.camera.shift],
                       "scale": list(self.camera.scale)}
        d["count_per_frame"] = list(self.count_per_frame)
        return d


def analyze(frames: np.ndarray, fps: float) -> Analysis:
    """Read a clip (uint8 (T, H, W, 3), or one (H, W, 3) image) into an Analysis."""
    frames = _as_uint8(frames)
    t_len, h, w, _ = frames.shape
    lab = rgb_to_lab(frames)  # (T, H, W, 3)
    labels = label_pixels(lab)  # (T, H, W)
    tracks = merge_nearby(merge_parts(link(find_blobs(labels), min(h, w)), (h, w)), lab, labels >= 0)
    # background pixels the camera may trust: away from named pixels and from the objects found
    valid = ~(ndi.binary_dilation(labels >= 0, np.ones((1, 5, 5), bool)) | object_mask(tracks, t_len, (h, w)))
    path = track_camera(np.ascontiguousarray(lab.transpose(0, 3, 1, 2)), valid)
    objects = [o for o in (_describe(tr, labels, path, t_len, min(h, w)) for tr in tracks) if o is not None]
    objects.sort(key=lambda o: -sum(s or 0 for s in o.sizes))
    counts = tuple(sum(o.track[t] is not None for o in objects) for t in range(t_len))
    camera = CameraEstimate(
        path.motion if t_len > 1 else "static",
        tuple((round(float(x), 3), round(float(y), 3)) for x, y in path.shift),
        tuple(round(float(s), 5) for s in path.scale),
    )
    return Analysis(t_len, h, w, float(fps), tuple(objects), counts, camera, loop_seam(frames),
                    flicker(lab[..., 0], valid, path))


def _as_uint8(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) RGB, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        scale = 255.0 if frames.max() <= 1.0 else 1.0
        frames = np.clip(np.rint(frames.astype(np.float64) * scale), 0, 255).astype(np.uint8)
    return frames


def _describe(track: Track, labels: np.ndarray, path: CameraPath, t_len: int, short: int) -> ObjectTrack | None:
    """Turn a merged track into an ObjectTrack, or None if it is too fleeting to be an object."""
    seen = sorted(set().union(*(tr.blobs for tr in [track, *track.parts])))
    if (len(seen) < 2 and t_len > 2) or (len(seen) < MIN_PRESENCE * t_len and len(seen) < 3):
        return None
    pos: list[tuple[float, float] | None] = [None] * t_len
    sizes: list[float | None] = [None] * t_len
    picked = []
    pixels = {t: object_pixels(track, t) for t in seen}
    centers = _centers(pixels, path, labels.shape[1:])
    for t in seen:
        ys, xs = pixels[t]
        pos[t] = centers[t]
        sizes[t] = round(float(2 * np.sqrt(ys.size / np.pi)), 3)
        picked.append(labels[t][ys, xs])
    colors = rank_labels(np.concatenate(picked))
    main = NAMES[track.color]
    if colors and colors[0][0] != main and colors[0][1] > 0.5:
        main = colors[0][0]
    ref = np.array([path.to_reference(t, *pos[t]) for t in seen])  # (N, 2) camera-compensated
    # where the object starts and ends: frames where it is mostly visible (not a last spark or a sliver)
    diam = np.array([sizes[t] / path.scale[t] for t in seen])
    solid = np.flatnonzero(diam >= 0.35 * np.median(diam))
    ends = solid if solid.size >= 2 else np.arange(len(seen))
    dx, dy = _net_displacement(np.array(seen)[ends], ref[ends], pixels, labels.shape[1:], t_len)
    way = direction(dx, dy, short) if len(seen) > 1 else "none"
    bounces, gravity = bounces_and_gravity(np.array(seen), ref[:, 1] - ref[0, 1])
    track_out = tuple(None if p is None else (round(p[0] + 0.5, 3), round(p[1] + 0.5, 3)) for p in pos)
    return ObjectTrack(main, tuple(colors), track_out, tuple(sizes), way,
                       None if gravity is None else round(gravity, 5), tuple(bounces))


def _touches(ys: np.ndarray, xs: np.ndarray, shape: tuple[int, int]) -> tuple[bool, bool, bool, bool]:
    """Which frame borders a blob touches: left, right, top, bottom."""
    return xs.min() == 0, xs.max() == shape[1] - 1, ys.min() == 0, ys.max() == shape[0] - 1


def _centers(pixels: dict, path: CameraPath, shape: tuple[int, int]) -> dict[int, tuple[float, float]]:
    """Per-frame object centers. A blob cut by the frame border has its centroid pulled inward; there the center
    is rebuilt from the visible edge and the object's extent in the nearest frame where it was whole (rescaled by
    the camera), plus that frame's centroid-to-box offset."""
    whole = {}
    for t, (ys, xs) in pixels.items():
        if not any(_touches(ys, xs, shape)):
            box = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
            whole[t] = (np.ptp(xs) + 1, np.ptp(ys) + 1, xs.mean() - box[0], ys.mean() - box[1])
    out = {}
    for t, (ys, xs) in pixels.items():
        cx, cy = float(xs.mean()), float(ys.mean())
        left, right, top, bottom = _touches(ys, xs, shape)
        if (left or right or top or bottom) and whole:
            near = min(whole, key=lambda k: abs(k - t))
            k = path.scale[t] / path.scale[near]
            ex, ey, ox, oy = (v * k for v in whole[near])
            if left != right and ex > np.ptp(xs) + 1:
                cx = (xs.max() - (ex - 1) / 2 if left else xs.min() + (ex - 1) / 2) + ox
            if top != bottom and ey > np.ptp(ys) + 1:
                cy = (ys.max() - (ey - 1) / 2 if top else ys.min() + (ey - 1) / 2) + oy
        out[t] = (cx, cy)
    return out


def _net_displacement(seen: np.ndarray, ref: np.ndarray, pixels: dict, shape: tuple[int, int], t_len: int
                      ) -> tuple[float, float]:
    """Camera-compensated displacement from the first frame to the last. An object that entered or left through
    the frame border is carried on to the clip's ends at the speed it had there (it kept moving out of view)."""
    start, end = ref[0].copy(), ref[-1].copy()
    if len(seen) >= 3:
        if seen[-1] < t_len - 1 and any(_touches(*pixels[int(seen[-1])], shape)):
            k = min(3, len(seen) - 1)
            v = (ref[-1] - ref[-1 - k]) / (seen[-1] - seen[-1 - k])
            end = end + v * (t_len - 1 - seen[-1])
        if seen[0] > 0 and any(_touches(*pixels[int(seen[0])], shape)):
            k = min(3, len(seen) - 1)
            v = (ref[k] - ref[0]) / (seen[k] - seen[0])
            start = start - v * seen[0]
    return float(end[0] - start[0]), float(end[1] - start[1])


def loop_seam(frames: np.ndarray) -> float:
    """How much the jump from the last frame back to the first stands out: its mean absolute pixel difference over
    the median of the ordinary frame-to-frame differences (1 = as smooth as any step; a still clip gives 1)."""
    if len(frames) < 3:
        return 1.0
    f = frames.astype(np.float32)
    steps = np.abs(np.diff(f, axis=0)).mean(axis=(1, 2, 3))
    seam = float(np.abs(f[0] - f[-1]).mean())
    eps = 0.05  # a twentieth of a gray level: two identical frames
    return round((seam + eps) / (float(np.median(steps)) + eps), 4)


def flicker(light: np.ndarray, valid: np.ndarray, path: CameraPath) -> float:
    """How much the picture flickers from frame to frame, in L* units (0..100), on the background after undoing
    the camera: the global brightness change of each step (the median per-pixel change, so moving objects do not
    count), plus, on steps where the camera stood still, the temporal noise (the median absolute change left after
    that). Averaged over steps; ~0 for clean renders, a few units for exposure jitter or sensor-like noise."""
    t_len = light.shape[0]
    changes = []
    for t in range(1, t_len):
        prev, inside = warp_to(light[t - 1], path, t - 1, t)
        prev_valid, _ = warp_to(valid[t - 1].astype(np.float32), path, t - 1, t)
        use = inside & valid[t] & (prev_valid > 0.99)
        if use.sum() < 16:
            continue
        diff = light[t][use] - prev[use]
        level = float(np.median(diff))
        still = path.scale[t] == path.scale[t - 1] and np.array_equal(path.shift[t], path.shift[t - 1])
        noise = float(np.median(np.abs(diff - level))) if still else 0.0  # resampling would pass for noise
        changes.append(abs(level) + noise)
    return round(float(np.mean(changes)), 4) if changes else 0.0
