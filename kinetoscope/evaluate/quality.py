"""Reconstruction quality: PSNR and SSIM on videos in [-1, 1], per frame, averaged. SSIM also serves as the
VAE's structural training term (it is differentiable)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def psnr(x: Tensor, y: Tensor) -> float:
    """Peak signal-to-noise ratio in dB of two videos in [-1, 1] (B, C, T, H, W), over all voxels of each clip,
    averaged over the batch."""
    mse = ((x.float().clamp(-1, 1) - y.float().clamp(-1, 1)) / 2).pow(2).flatten(1).mean(1)  # (B,) on a [0, 1] scale
    return float((10 * torch.log10(1.0 / mse.clamp_min(1e-10))).mean())


def _gaussian(size: int = 11, sigma: float = 1.5) -> Tensor:
    g = torch.exp(-((torch.arange(size) - size // 2) ** 2) / (2 * sigma**2))
    return g / g.sum()


def ssim_map(x: Tensor, y: Tensor) -> Tensor:
    """SSIM (Wang et al. 2004, Gaussian window 11, sigma 1.5) of two videos in [-1, 1], per frame and pixel.

    (B, C, T, H, W) x 2 -> (B * T, C, H', W'). Frames smaller than the window use a smaller window.
    """
    b, c, t, h, w = x.shape
    x = ((x.float() + 1) / 2).transpose(1, 2).reshape(b * t, c, h, w)  # (B*T, C, H, W) in [0, 1]
    y = ((y.float() + 1) / 2).transpose(1, 2).reshape(b * t, c, h, w)
    size = min(11, h, w)
    size -= 1 - size % 2  # odd, and no larger than the frame (8 px gives 7, not 9)
    g = _gaussian(size).to(x)
    k = (g[:, None] * g[None, :]).expand(c, 1, size, size)  # (C, 1, k, k) depthwise window

    def blur(z: Tensor) -> Tensor:
        return F.conv2d(z, k, groups=c)

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))


def ssim(x: Tensor, y: Tensor) -> float:
    """Mean SSIM of two videos in [-1, 1] (B, C, T, H, W)."""
    return float(ssim_map(x.clamp(-1, 1), y.clamp(-1, 1)).mean())
