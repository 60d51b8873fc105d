"""Camera motion from pixels: a global shift and a uniform scale about the frame center, per frame.

A frame is related to a reference frame by ``p' = s (p - c) + c + d`` (c the frame center): a pan is a shift d, a
zoom a scale s. Candidates come from coarse-to-fine Gauss-Newton on the Lab image (Lucas-Kanade for a 3-parameter
warp, Huber weights, a small ridge that keeps unobservable directions such as a pan over a plain sky at zero) and
from an exhaustive whole-pixel search; the background then decides between them and a still camera by a truncated
difference, with a small price for breaking the camera's steady motion. Pixels on and around the objects found are
masked out throughout, so a walker the camera follows cannot pass for the background.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

PAN_MIN = 0.08  # net pan, as a fraction of the frame width, to call the camera panning
SMOOTH_PRICE = 0.005  # cost per pixel a candidate warp departs from the predicted one
ZOOM_MIN = 0.12  # net |log scale| to call it zooming (the world zooms by 1.3x to 1.6x over a clip)


class Warp:
    """A reference frame prepared for repeated fits (blurred pyramid, gradients, pixel grids)."""

    def __init__(self, image: np.ndarray, valid: np.ndarray, min_side: int = 12):
        # (C, H, W) float image, (H, W) bool usable pixels; finest level last
        self.levels = []
        im, w = ndi.gaussian_filter(image.astype(np.float32), (0, 1.0, 1.0)), valid.astype(np.float32)
        full_h = image.shape[1]
        while True:
            nc, h, wd = im.shape
            yy, xx = np.mgrid[0:h, 0:wd].astype(np.float32)
            cx, cy = (wd - 1) / 2, (h - 1) / 2
            gy, gx = np.gradient(im, axis=(1, 2))
            self.levels.append((im, w, gx, gy, xx - cx, yy - cy, (cx, cy), h / full_h))
            if min(h, wd) < 2 * min_side:
                break
            im = ndi.gaussian_filter(im, (0, 1.0, 1.0))[:, ::2, ::2]
            w = ndi.minimum_filter(w, 3)[::2, ::2]
        self.levels.reverse()

    @staticmethod
    def pyramid_of(image: np.ndarray, valid: np.ndarray, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        im, w = ndi.gaussian_filter(image.astype(np.float32), (0, 1.0, 1.0)), valid.astype(np.float32)
        for _ in range(n):
            out.append((im, w))
            im = ndi.gaussian_filter(im, (0, 1.0, 1.0))[:, ::2, ::2]
            w = ndi.minimum_filter(w, 3)[::2, ::2]
        return out[::-1]

    def fit(self, target: list[tuple[np.ndarray, np.ndarray]], theta: np.ndarray, keep: np.ndarray | None = None,
            iters: int = 6) -> tuple[np.ndarray, np.ndarray]:
        """Robust Gauss-Newton for theta = (scale - 1, dx, dy): reference point p appears in the target at
        (1 + theta[0]) (p - c) + c + theta[1:]. Returns theta and the full-resolution absolute residual (H, W)."""
        theta = theta.astype(np.float64).copy()
        res = None
        last = len(self.levels) - 1
        for li, ((ia, wa, gx_a, gy_a, ux, uy, (cx, cy), f), (ib, wb)) in enumerate(zip(self.levels, target)):
            nc, h, w = ia.shape
            if keep is not None and li == last:
                wa = wa * keep
            jac = np.stack([(gx_a * ux + gy_a * uy).reshape(-1), gx_a.reshape(-1) * f, gy_a.reshape(-1) * f], axis=1)
            informative = np.tile((np.abs(gx_a) + np.abs(gy_a)).max(axis=0).reshape(-1) > 0.3, nc)
            for it in range(iters + 1):
                s, dx, dy = 1 + theta[0], theta[1] * f, theta[2] * f
                warped = _zoom_shift(ib, s, dx, dy)
                wx, wy = s * ux + cx + dx, s * uy + cy + dy
                inside = (wx >= 0) & (wx <= w - 1) & (wy >= 0) & (wy <= h - 1)
                r = (warped - ia).reshape(-1)  # (C*H*W,)
                if it == iters:
                    break
                xi = np.clip(np.rint(wx), 0, w - 1).astype(np.int64)
                yi = np.clip(np.rint(wy), 0, h - 1).astype(np.int64)
                base = (inside & (wa > 0.5) & (wb[yi, xi] > 0.5)).reshape(-1)
                weight = np.tile(base, nc).astype(np.float32)
                if weight.sum() < 16:
                    break
                sel = informative & (weight > 0)
                sigma = max(1.4826 * float(np.median(np.abs(r[sel]))), 0.3) if sel.sum() > 16 else 1.0
                weight *= np.minimum(1.0, 1.5 * sigma / (np.abs(r) + 1e-9))  # Huber: moving things get little say
                jtw = jac.T * weight
                ridge = np.diag([0.5 * max(h, w) ** 2, 1.0, 1.0]) * 1e-4 * (1 + weight.sum() * 1e-2)  # unobserved -> 0
                step = np.linalg.solve(jtw @ jac + ridge, -(jtw @ r))
                theta += step
                if abs(step[0]) * max(h, w) < 0.01 and abs(step[1]) * f < 0.01 and abs(step[2]) * f < 0.01:
                    if li < last:
                        break
                    iters = it + 1  # one last residual evaluation at the solution
            if li == last:
                res = np.abs(r.reshape(nc, h, w)).max(axis=0)
        return theta, res


def _zoom_shift(img: np.ndarray, s: float, dx: float, dy: float) -> np.ndarray:
    """Sample a (C, H, W) image at s (p - c) + c + d for every pixel p (bilinear, clamped at the border)."""
    _, h, w = img.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    offset = (cy - s * cy + dy, cx - s * cx + dx)
    return np.stack([ndi.affine_transform(ch, (s, s), offset=offset, order=1, mode="nearest") for ch in img])


@dataclass(frozen=True)
class CameraPath:
    """Cumulative camera: frame t sees frame 0's point p at scale[t] * (p - c) + c + shift[t]."""

    scale: np.ndarray  # (T,)
    shift: np.ndarray  # (T, 2) x, y in frame pixels
    center: tuple[float, float]  # (cx, cy)

    def to_reference(self, t: int, x: float, y: float) -> tuple[float, float]:
        """Frame-t pixel -> the widest view's pixel grid (frame 0 rescaled to the least-zoomed frame's scale).

        Displacements measured there are in the units of the frame that sees the most of the scene, which for a
        world clip are world units (zoom 1); for a static camera they are plain frame pixels.
        """
        cx, cy = self.center
        s0 = float(self.scale.min())
        x0 = (x - cx - self.shift[t, 0]) / self.scale[t] + cx
        y0 = (y - cy - self.shift[t, 1]) / self.scale[t] + cy
        return s0 * (x0 - cx) + cx, s0 * (y0 - cy) + cy

    @property
    def motion(self) -> str:
        """The vocabulary camera motion of the whole clip."""
        if len(self.scale) < 2:
            return "static"
        log_zoom = float(np.log(self.scale[-1]))
        width = 2 * self.center[0] + 1
        pan = float(self.shift[-1, 0]) / width  # content moving left means the camera pans right
        if abs(log_zoom) >= ZOOM_MIN and abs(log_zoom) * 0.5 * width >= abs(self.shift[-1, 0]):
            return "zooms in" if log_zoom > 0 else "zooms out"
        if abs(pan) >= PAN_MIN:
            return "pans right" if pan < 0 else "pans left"
        return "static"


def track_camera(image: np.ndarray, valid: np.ndarray) -> CameraPath:
    """Camera path of a clip. image: (T, C, H, W) float (Lab); valid: (T, H, W) bool, False on object pixels.

    Each frame is fitted directly against a reference frame (the first, until less than half of it is in view),
    starting from the previous frame's solution extrapolated, so errors do not pile up from step to step. A frame
    whose textured background is bit-for-bit the reference's, or whose best warp moves no pixel by a quarter pixel,
    is a still camera.
    """
    t_len, _, h, w = image.shape
    center = ((w - 1) / 2, (h - 1) / 2)
    scale, shift = np.ones(t_len), np.zeros((t_len, 2))
    ref_i, ref = 0, None
    reach = 0.5 * np.hypot(w, h)
    prev = np.zeros(3)  # theta of frame t-1 relative to the reference
    prev2 = np.zeros(3)
    textured = None
    for t in range(1, t_len):
        if textured is None:
            gy, gx = np.gradient(image[ref_i], axis=(1, 2))
            textured = valid[ref_i] & (np.hypot(gx, gy).max(axis=0) > 3.0)
        if not prev.any() and _unchanged(image[ref_i], image[t], textured & valid[t]):
            continue  # a still camera over a clean background: nothing moved, nothing to fit
        if ref is None:
            ref = Warp(image[ref_i], valid[ref_i])
        target = Warp.pyramid_of(image[t], valid[t], len(ref.levels))
        init = prev + (prev - prev2) if t - ref_i >= 2 else prev
        candidates = [np.zeros(3), init, _refit(ref, target, init, valid[ref_i])]
        coarse = _search_shift(ref, target, init)
        if coarse is not None and np.abs(coarse[1:] - candidates[-1][1:]).max() > 1.0:
            candidates += [coarse, _refit(ref, target, coarse, valid[ref_i])]
        # the background decides: the candidate with the lowest robust difference wins, a still camera on ties
        blur_ref, blur_t = ref.levels[-1][0], target[-1][0]  # blurred: texture aliasing does not decide

        def price(c: np.ndarray) -> float:  # a small price for breaking the camera's steady motion
            return SMOOTH_PRICE * float(np.abs(c[1:] - init[1:]).max() + abs(c[0] - init[0]) * reach)

        def cost(c: np.ndarray) -> float:
            return _cost(blur_ref, blur_t, valid[ref_i], valid[t], c) + price(c)

        diffs = [_diff(blur_ref, blur_t, valid[ref_i], valid[t], c) for c in candidates]
        common = np.logical_and.reduce([u for _, u in diffs])  # every candidate judged on the same pixels
        if common.sum() < 16:
            common = np.logical_and(diffs[0][1], diffs[2][1])
        plausible = [abs(c[0]) < 0.5 and abs(c[1]) < w / 2 and abs(c[2]) < h / 2 for c in candidates]
        raw = [float(d[common].mean()) if common.sum() >= 16 and ok else np.inf
               for (d, _), ok in zip(diffs, plausible)]
        costs = [r + price(c) for r, c in zip(raw, candidates)]
        best = 1 + int(np.argmin(costs[1:]))
        if not np.isfinite(costs[best]) or raw[0] <= 1.05 * raw[best] + 0.002:
            best = 0  # a still camera unless moving explains the background clearly better (a blank one cannot)
        theta = candidates[best]
        if best == 3:  # the raw whole-pixel search won: polish it on the same robust score
            theta = _polish(theta, costs[best], cost)
        if abs(theta[0]) * reach < 0.25 and abs(theta[1]) < 0.25 and abs(theta[2]) < 0.25:
            theta = np.zeros(3)
        s_rel, d_rel = 1 + theta[0], theta[1:]
        scale[t] = s_rel * scale[ref_i]
        shift[t] = s_rel * shift[ref_i] + d_rel
        prev2, prev = (prev, theta)
        overlap = (1 - min(abs(d_rel[0]) / w, 1)) * (1 - min(abs(d_rel[1]) / h, 1)) / max(s_rel, 1 / s_rel) ** 2
        if overlap < 0.5:  # the next frames use this one, starting from the last step's motion
            ref_i, ref, prev, prev2, textured = t, None, theta - prev2, np.zeros(3), None
    return CameraPath(scale, shift, center)


def _refit(ref: Warp, target: list, init: np.ndarray, valid_ref: np.ndarray) -> np.ndarray:
    """Fit from init; then once more without the pixels the first fit could not explain (moving things the object
    mask missed)."""
    theta, res = ref.fit(target, init)
    if res is None or valid_ref.sum() < 16:
        return theta
    cut = max(4 * 1.4826 * float(np.median(res[valid_ref])), 2.0)
    outliers = ndi.binary_dilation(res > cut, iterations=1)
    if 0.01 < outliers.mean() < 0.5:
        theta, _ = ref.fit(target, theta, keep=~outliers)
    return theta


def _search_shift(ref: Warp, target: list, init: np.ndarray, radius: int = 4) -> np.ndarray | None:
    """Exhaustive search of whole-pixel shifts (at half resolution, within radius of init) by robust difference:
    a start for the fit that cannot be lured by a large moving thing the way gradient descent can."""
    if len(ref.levels) < 2:
        return None
    ia, wa, *_rest, f = ref.levels[-2]
    ib, wb = target[-2]
    a, b = ia[0], _zoom_shift(ib[:1], 1 + init[0], 0.0, 0.0)[0]  # L channel, target brought to init's scale
    h, w = a.shape
    cx0, cy0 = int(round(init[1] * f)), int(round(init[2] * f))
    best, best_cost = None, np.inf
    for dy in range(cy0 - radius // 2, cy0 + radius // 2 + 1):
        for dx in range(cx0 - radius, cx0 + radius + 1):
            if abs(dx) >= w // 2 or abs(dy) >= h // 2:
                continue
            ya, yb = slice(max(0, -dy), min(h, h - dy)), slice(max(0, dy), min(h, h + dy))
            xa, xb = slice(max(0, -dx), min(w, w - dx)), slice(max(0, dx), min(w, w + dx))
            use = (wa[ya, xa] > 0.5) & (wb[yb, xb] > 0.5)
            if use.sum() < 0.2 * h * w:
                continue
            cost = float(np.minimum(np.abs(b[yb, xb] - a[ya, xa])[use], 3.0).mean())
            if cost < best_cost:
                best, best_cost = (dx, dy), cost
    if best is None:
        return None
    return np.array([init[0], best[0] / f, best[1] / f])


def _polish(theta: np.ndarray, best: float, cost) -> np.ndarray:
    """Coordinate descent of a robust cost over the shift, in half- then quarter-pixel steps."""
    theta = theta.copy()
    for step in (0.5, 0.25):
        for k in (1, 2):
            for sign in (1, -1):
                trial = theta.copy()
                trial[k] += sign * step
                c = cost(trial)
                if c < best:
                    theta, best = trial, c
    return theta


def _diff(a: np.ndarray, b: np.ndarray, valid_a: np.ndarray, valid_b: np.ndarray, theta: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel truncated absolute difference between frame a and frame b warped by theta, and where it is
    usable (background in both frames, inside frame b)."""
    _, h, w = a.shape
    s, dx, dy = 1 + theta[0], theta[1], theta[2]
    warped = _zoom_shift(b, s, dx, dy)
    yy, xx = np.mgrid[0:h, 0:w]
    wx, wy = s * (xx - (w - 1) / 2) + (w - 1) / 2 + dx, s * (yy - (h - 1) / 2) + (h - 1) / 2 + dy
    inside = (wx >= 0) & (wx <= w - 1) & (wy >= 0) & (wy <= h - 1)
    xi = np.clip(np.rint(wx), 0, w - 1).astype(np.int64)
    yi = np.clip(np.rint(wy), 0, h - 1).astype(np.int64)
    return np.minimum(np.abs(warped - a).max(axis=0), 3.0), inside & valid_a & valid_b[yi, xi]


def _cost(a: np.ndarray, b: np.ndarray, valid_a: np.ndarray, valid_b: np.ndarray, theta: np.ndarray) -> float:
    """Truncated mean absolute difference between frame a and frame b warped by theta over background pixels both
    frames see: a robust score to choose between candidate warps (a moving thing costs at most the cap per pixel)."""
    d, use = _diff(a, b, valid_a, valid_b, theta)
    if use.sum() < 16:
        return float("inf")
    return float(d[use].mean())


def _unchanged(a: np.ndarray, b: np.ndarray, textured: np.ndarray) -> bool:
    """True if nearly every textured background pixel is bit-for-bit the same in both frames (a moving camera,
    even a slow zoom, changes most of them)."""
    if textured.sum() < 32:
        return False
    return float(np.mean(np.abs(b - a).max(axis=0)[textured] < 0.05)) >= 0.9


def warp_to(img: np.ndarray, path: CameraPath, src: int, dst: int) -> tuple[np.ndarray, np.ndarray]:
    """Resample frame ``src`` (H, W) into frame ``dst``'s pixel grid (bilinear); returns it and where it is valid."""
    h, w = img.shape
    cx, cy = path.center
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    x0 = (xx - cx - path.shift[dst, 0]) / path.scale[dst] + cx  # dst pixel -> frame-0 point -> src pixel
    y0 = (yy - cy - path.shift[dst, 1]) / path.scale[dst] + cy
    xs = path.scale[src] * (x0 - cx) + cx + path.shift[src, 0]
    ys = path.scale[src] * (y0 - cy) + cy + path.shift[src, 1]
    inside = (xs >= 0) & (xs <= w - 1) & (ys >= 0) & (ys <= h - 1)
    return ndi.map_coordinates(img, [ys, xs], order=1, mode="nearest"), inside
