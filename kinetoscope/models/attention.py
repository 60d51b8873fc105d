"""Attention and 3D rotary positions: the small math the DiT is built from (flux's ``math.py``, our sizes).

Rotary positions split each head's channels in three, one part per axis (t, h, w), so any frame count, height and
width works at train and sample time without a learned table. Attention is plain ``softmax(q kᵀ / √d) v``: at our
token counts (≤ ~1k) it measured faster in bf16 on this CPU than ``scaled_dot_product_attention`` (benchmarks/dit.py
prints both), and it is the same math either way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

ROPE_THETA = 10_000.0


def rope_split(head_dim: int) -> tuple[int, int, int]:
    """Channels of a head given to (t, h, w): even numbers, time a quarter, the rest shared by height and width."""
    t = 2 * (head_dim // 8)
    h = 2 * ((head_dim - t) // 4)
    return t, h, head_dim - t - h


def rope_3d(grid: tuple[int, int, int], head_dim: int, t_offset: int = 0) -> Tensor:
    """Rotation angles for a (T, H, W) token grid in row-major order: (T*H*W, head_dim / 2)."""
    angles = []
    for n, dim, offset in zip(grid, rope_split(head_dim), (t_offset, 0, 0)):
        freqs = 1.0 / ROPE_THETA ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # (dim/2,)
        angles.append(torch.outer(torch.arange(offset, offset + n, dtype=torch.float64), freqs))  # (n, dim/2)
    t, h, w = grid
    at, ah, aw = angles
    return torch.cat([
        at[:, None, None].expand(t, h, w, -1),
        ah[None, :, None].expand(t, h, w, -1),
        aw[None, None, :].expand(t, h, w, -1),
    ], dim=-1).reshape(t * h * w, -1).float()  # (N, head_dim/2)


def apply_rope(x: Tensor, angles: Tensor) -> Tensor:
    """Rotate channel pairs of x (B, heads, N, D) by angles (N, D/2)."""
    pairs = rearrange(x.float(), "b n l (d two) -> b n l d two", two=2)
    cos, sin = angles.cos(), angles.sin()  # (N, D/2)
    a, b = pairs[..., 0], pairs[..., 1]
    out = torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1)
    return rearrange(out, "b n l d two -> b n l (d two)").to(x.dtype)


SDPA_AFTER = 512 * 1024  # query x key pairs (about 724 tokens of self-attention); see attention()


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
    """softmax(q kᵀ / √d) v over (B, heads, N, D); mask (B, M) True where a key may be attended.

    Plain matmul-softmax-matmul while the score matrix is small (measured 2-5x faster than PyTorch's SDPA at 48-504
    tokens on this CPU, bf16: benchmarks/dit.py); SDPA's fused kernel past SDPA_AFTER query x key pairs, where
    materializing the scores costs more than it saves (benchmarks/generation.py's peer table at 1 904 tokens)."""
    if q.shape[-2] * k.shape[-2] > SDPA_AFTER:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=None if mask is None else mask[:, None, None, :])
    scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5  # (B, heads, N, M)
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    return scores.softmax(dim=-1).to(v.dtype) @ v  # (B, heads, N, D)
