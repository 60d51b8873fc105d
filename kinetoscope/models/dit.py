"""The diffusion transformer: spacetime patches of the VAE latent in, a velocity out.

The latent (C, T, H, W) is cut into pt x ph x pw patches (default 1 x 2 x 2: every latent frame keeps its own tokens)
and flattened to tokens with 3D rotary positions, so any frame count, height, width and aspect ratio that the patch
divides works at train and sample time. Each block is self-attention over all spacetime tokens, cross-attention to
the text tokens, and an MLP. The noise level is given **per latent frame** (B, T): a frame that is given (clean, t = 0)
and one being generated sit side by side, which is how every mode (image-to-video, extend, connect, loop) conditions
through one mechanism. The per-frame noise level and the pooled text modulate each block through one shared adaLN
projection plus a learned per-block offset (PixArt-α's adaLN-single: ~6·D² fewer parameters per block than DiT's).

The network knows nothing about noise schedules: diffusion/ owns the path, the target and the samplers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor, nn

from kinetoscope.errors import SizeError
from kinetoscope.models.attention import apply_rope, attention, rope_3d
from kinetoscope.models.text import DIM as TEXT_DIM
from kinetoscope.models.text import TextEmbedding


@dataclass(frozen=True)
class DiTConfig:
    width: int
    depth: int
    heads: int
    patch: tuple[int, int, int] = (1, 2, 2)  # (pt, ph, pw) in latent units
    latent: int = 16  # the VAE's latent channels
    mlp_ratio: float = 4.0
    text_dim: int = TEXT_DIM

    @property
    def head_dim(self) -> int:
        return self.width // self.heads


PRESETS = {
    "tiny": DiTConfig(width=32, depth=2, heads=2, latent=8),
    "small": DiTConfig(width=192, depth=6, heads=3),
    "medium": DiTConfig(width=256, depth=8, heads=4),  # 9.5 M: with the small VAE, a ~30 MB bundle (GPU-trained)
    "base": DiTConfig(width=512, depth=12, heads=8),
    "large": DiTConfig(width=1024, depth=24, heads=16),
    "xl": DiTConfig(width=1536, depth=28, heads=24),  # ~1.3 B parameters: the open 1.3 B-class video models' size
}


def patchify(z: Tensor, p: tuple[int, int, int]) -> Tensor:
    # (B, C, T, H, W) -> (B, T/pt * H/ph * W/pw, C*pt*ph*pw)
    return rearrange(z, "b c (t pt) (h ph) (w pw) -> b (t h w) (c pt ph pw)", pt=p[0], ph=p[1], pw=p[2])


def unpatchify(x: Tensor, p: tuple[int, int, int], grid: tuple[int, int, int]) -> Tensor:
    # (B, N, C*pt*ph*pw) -> (B, C, T, H, W)
    t, h, w = grid
    return rearrange(x, "b (t h w) (c pt ph pw) -> b c (t pt) (h ph) (w pw)", t=t, h=h, w=w, pt=p[0], ph=p[1], pw=p[2])


def timestep_embedding(t: Tensor, dim: int = 256, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal features of t in [0, 1] (scaled by 1000, as in DiT): (...,) -> (..., dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)  # (half,)
    args = 1000.0 * t.float()[..., None] * freqs  # (..., half)
    return torch.cat([args.cos(), args.sin()], dim=-1)


@dataclass(frozen=True)
class Modulation:
    """One adaLN modulation per patch-frame, broadcast over that frame's tokens (tokens are in (t h w) order)."""

    shift: Tensor  # (B, T', 1, D)
    scale: Tensor
    gate: Tensor

    def __call__(self, x: Tensor) -> Tensor:
        # x: (B, N, D) -> x * (1 + scale) + shift at each token's frame
        return self._frames(x, lambda y: y * (1 + self.scale) + self.shift)

    def gated(self, x: Tensor) -> Tensor:
        return self._frames(x, lambda y: y * self.gate)

    def _frames(self, x: Tensor, f) -> Tensor:
        b, n, d = x.shape
        return f(x.view(b, self.shift.shape[1], -1, d)).view(b, n, d)  # via (B, T', N/T', D)


def qk_norm(head_dim: int) -> nn.Module:
    """RMS norm of queries and keys per head, without a weight (a weight in fp32 would break bf16 fusion here)."""
    return nn.RMSNorm(head_dim, eps=1e-6, elementwise_affine=False)


class SelfAttention(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.heads = cfg.heads
        self.qkv = nn.Linear(cfg.width, 3 * cfg.width)
        self.q_norm, self.k_norm = qk_norm(cfg.head_dim), qk_norm(cfg.head_dim)  # QK-norm: stable in bf16
        self.out = nn.Linear(cfg.width, cfg.width)

    def forward(self, x: Tensor, angles: Tensor) -> Tensor:
        q, k, v = rearrange(self.qkv(x), "b n (k h d) -> k b h n d", k=3, h=self.heads)  # 3 x (B, heads, N, hd)
        q, k = apply_rope(self.q_norm(q), angles), apply_rope(self.k_norm(k), angles)
        return self.out(rearrange(attention(q, k, v), "b h n d -> b n (h d)"))  # (B, N, D)


class CrossAttention(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.heads = cfg.heads
        self.q = nn.Linear(cfg.width, cfg.width)
        self.kv = nn.Linear(cfg.width, 2 * cfg.width)
        self.q_norm, self.k_norm = qk_norm(cfg.head_dim), qk_norm(cfg.head_dim)
        self.out = nn.Linear(cfg.width, cfg.width)

    def forward(self, x: Tensor, txt: Tensor, mask: Tensor) -> Tensor:
        q = rearrange(self.q(x), "b n (h d) -> b h n d", h=self.heads)  # (B, heads, N, hd)
        k, v = rearrange(self.kv(txt), "b l (k h d) -> k b h l d", k=2, h=self.heads)  # 2 x (B, heads, L, hd)
        out = attention(self.q_norm(q), self.k_norm(k), v, mask)  # (B, heads, N, hd)
        return self.out(rearrange(out, "b h n d -> b n (h d)"))


class Block(nn.Module):
    """adaLN-modulated self-attention, cross-attention to the text, and an MLP, each a residual branch."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        d = cfg.width
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.attn = SelfAttention(cfg)
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.cross = CrossAttention(cfg)
        self.norm3 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        hidden = int(d * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, d))
        self.table = nn.Parameter(torch.randn(6, d) / d**0.5)  # this block's offset to the shared modulation

    def forward(self, x: Tensor, mod: Tensor, angles: Tensor, txt: Tensor, txt_mask: Tensor) -> Tensor:
        # x: (B, N, D); mod: (B, T', 6, D) the shared modulation per patch-frame
        m = (mod + self.table)[:, :, None]  # (B, T', 1, 6, D)
        attn_mod, mlp_mod = (Modulation(*part.unbind(3)) for part in m.chunk(2, dim=3))
        x = x + attn_mod.gated(self.attn(attn_mod(self.norm1(x)), angles))
        x = x + self.cross(self.norm2(x), txt, txt_mask)
        return x + mlp_mod.gated(self.mlp(mlp_mod(self.norm3(x))))


class DiT(nn.Module):
    """(noisy latent, per-frame noise level, text) -> velocity, at any size the patch divides."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        d, p = cfg.width, cfg.patch
        self.patch_in = nn.Linear(cfg.latent * p[0] * p[1] * p[2], d)
        self.time_embed = nn.Sequential(nn.Linear(256, d), nn.SiLU(), nn.Linear(d, d))
        self.pooled_embed = nn.Sequential(nn.Linear(cfg.text_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.txt_embed = nn.Sequential(nn.Linear(cfg.text_dim, d), nn.GELU(approximate="tanh"), nn.Linear(d, d))
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))  # shared by all blocks (adaLN-single)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.depth)])
        self.norm_out = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.mod_out = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        self.patch_out = nn.Linear(d, cfg.latent * p[0] * p[1] * p[2])
        self.init_weights()

    def init_weights(self) -> None:
        """Xavier linears; zero the shared modulation, the output modulation and the output projection, so every
        block starts as the identity and the network starts predicting zero velocity (DiT's adaLN-Zero)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        for layer in (self.modulation[-1], self.mod_out[-1], self.patch_out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        for block in self.blocks:
            nn.init.zeros_(block.cross.out.weight)

    def grid(self, z: Tensor) -> tuple[int, int, int]:
        """The token grid (T/pt, H/ph, W/pw) of a latent; a clear error when the patch does not divide it."""
        p = self.cfg.patch
        if z.ndim != 5 or z.shape[1] != self.cfg.latent:
            raise SizeError(f"latent must be (B, {self.cfg.latent}, T, H, W), got {tuple(z.shape)}")
        t, h, w = z.shape[2:]
        if t % p[0] or h % p[1] or w % p[2]:
            raise SizeError(f"latent {t}x{h}x{w} (frames x height x width) is not divisible by the patch {p}")
        return t // p[0], h // p[1], w // p[2]

    def forward(self, x: Tensor, t: Tensor, txt: TextEmbedding) -> Tensor:
        # x: (B, C, T, H, W) noisy latent; t: (B, T) noise level per latent frame -> velocity (B, C, T, H, W)
        grid = self.grid(x)
        t = t[:, :: self.cfg.patch[0]]  # (B, T/pt): a patch-frame takes the level of its first latent frame
        angles = rope_3d(grid, self.cfg.head_dim).to(x.device)  # (N, hd/2)
        h = self.patch_in(patchify(x, self.cfg.patch))  # (B, N, D)
        cond = self.time_embed(timestep_embedding(t)) + self.pooled_embed(txt.pooled)[:, None]  # (B, T', D)
        mod = rearrange(self.modulation(cond), "b t (k d) -> b t k d", k=6)  # (B, T', 6, D)
        txt_tokens = self.txt_embed(txt.tokens)  # (B, L, D)
        for block in self.blocks:
            h = block(h, mod, angles, txt_tokens, txt.mask)
        shift, scale = self.mod_out(cond)[:, :, None].chunk(2, dim=-1)  # 2 x (B, T', 1, D)
        h = self.patch_out(Modulation(shift, scale, gate=scale)(self.norm_out(h)))  # no gate at the output; (B, N, C*pt*ph*pw)
        return unpatchify(h, self.cfg.patch, grid)  # (B, C, T, H, W)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_per_token(cfg: DiTConfig, tokens: int, txt_tokens: int = 32) -> float:
    """Forward matmul FLOPs per token (2 per multiply-add), for MFU: linears plus attention scores and mixing."""
    d, hidden = cfg.width, int(cfg.width * cfg.mlp_ratio)
    linears = 3 * d * d + d * d + 2 * d * d + 2 * d * hidden  # qkv, out, cross q + out, mlp (text kv is per text token)
    attn = 2 * tokens * d + 2 * txt_tokens * d  # q kᵀ and (softmax) v, self and cross
    return 2.0 * cfg.depth * (linears + attn)
