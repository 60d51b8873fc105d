"""The video compression network: a causal 3D convolutional VAE, 4x in time and 8x in height and width.

Causal means a latent frame depends only on the frames at and before it: every temporal convolution pads on the
left, and temporal downsampling groups frames (0, 0), (1, 2), (3, 4), ... so the first frame is encoded alone. An
image is a 1-frame video, and ``1 + 4k`` frames map to ``1 + k`` latent frames. Normalization is per voxel (RMS over
channels), never over time or space, so the network is causal in time and local in space: that is what lets
``models/vae_stream.py`` encode and decode in temporal chunks (exactly) and spatial tiles (nearly exactly).

Resampling follows DC-AE: each down/up block adds a parameter-free space-to-channel shortcut to its convolution, so
the network starts close to an identity-like reshuffle and trains fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from kinetoscope.errors import SizeError


@dataclass(frozen=True)
class VAEConfig:
    channels: tuple[int, ...] = (32, 64, 128, 128)  # widths at full, 1/2, 1/4 and 1/8 resolution
    latent: int = 16  # latent channels
    blocks: int = 1  # residual blocks per stage
    temporal_down: tuple[bool, ...] = (False, True, True)  # which of the three 2x spatial downsamples also halve time
    temporal_kernel: tuple[int, ...] = (1, 1, 3, 3)  # per stage: 1 = per-frame 2D convs (cheap at high resolution)
    patch: int = 1  # pixels folded into channels before the first convolution (LTX-Video style): p^2 less work
    # the decoder's mean frame step by phase inside a latent frame, measured (benchmarks/seams.py --calibrate) so
    # decode_stream can even out its timing; () = not measured, frames come out as decoded
    phase_steps: tuple[float, ...] = ()

    @property
    def time_factor(self) -> int:
        return 2 ** sum(self.temporal_down)

    @property
    def space_factor(self) -> int:
        return self.patch * 2 ** (len(self.channels) - 1)


PRESETS = {
    "tiny": VAEConfig(channels=(8, 16, 16, 16), latent=8),
    "small": VAEConfig(channels=(64, 128, 128), latent=16, temporal_down=(True, True), temporal_kernel=(1, 3, 3), patch=2),
    "base": VAEConfig(channels=(128, 256, 256), latent=16, blocks=2, temporal_down=(True, True), temporal_kernel=(1, 3, 3),
                      patch=2),
}


class CausalCache:
    """The state carried from one temporal chunk to the next: each causal layer's last input frames.

    One cache per stream (and per spatial tile); pass None to process a whole clip in one go.
    """

    def __init__(self) -> None:
        self.tails: dict[nn.Module, Tensor] = {}
        self.started: set[nn.Module] = set()


class RMSNorm(nn.Module):
    """RMS normalization over channels, per voxel: causal in time and local in space."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        # x: (B, C, T, H, W)
        rms = torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)  # in x's dtype: 2x faster in bf16 here
        return x * rms * self.weight.view(1, -1, 1, 1, 1).to(x.dtype)


class CausalConv3d(nn.Module):
    """A 3D convolution padded only on the past side in time (the first frame replicated when no cache)."""

    def __init__(self, cin: int, cout: int, kt: int = 3, k: int = 3):
        super().__init__()
        self.kt = kt
        self.conv = nn.Conv3d(cin, cout, (kt, k, k), padding=(0, k // 2, k // 2))

    def forward(self, x: Tensor, cache: CausalCache | None = None) -> Tensor:
        # x: (B, C, T, H, W) -> (B, C_out, T, H, W)
        if self.kt == 1:
            return self.conv(x)
        past = cache.tails.get(self) if cache is not None else None
        if past is None:
            past = x[:, :, :1].expand(-1, -1, self.kt - 1, -1, -1)
        x = torch.cat([past, x], dim=2)  # (B, C, kt - 1 + T, H, W)
        if cache is not None:
            cache.tails[self] = x[:, :, -(self.kt - 1) :].detach()
        return self.conv(x)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, kt: int):
        super().__init__()
        self.norm1, self.conv1 = RMSNorm(cin), CausalConv3d(cin, cout, kt)
        self.norm2, self.conv2 = RMSNorm(cout), CausalConv3d(cout, cout, kt)
        self.skip = nn.Conv3d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, cache: CausalCache | None = None) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)), cache)
        h = self.conv2(F.silu(self.norm2(h)), cache)
        return self.skip(x) + h


def first_chunk(layer: nn.Module, cache: CausalCache | None) -> bool:
    """True when this layer sees the start of its stream (always, without a cache), and marks it started."""
    if cache is None:
        return True
    first = layer not in cache.started
    cache.started.add(layer)
    return first


def pair_frames(x: Tensor, first: bool) -> Tensor:
    """Group frames in causal pairs (0, 0), (1, 2), (3, 4), ...: (B, C, T, H, W) -> (B, 2C, T', H, W).

    The first frame of a stream is paired with itself, so it is encoded alone; later chunks pair straight through.
    """
    if first:
        x = torch.cat([x[:, :, :1], x], dim=2)  # (B, C, 1 + T, H, W)
    if x.shape[2] % 2:
        raise SizeError(f"a temporal chunk of {x.shape[2] - first} frames does not split into causal pairs")
    return rearrange(x, "b c (t two) h w -> b (two c) t h w", two=2)


def unpair_frames(x: Tensor, first: bool) -> Tensor:
    """The inverse of pair_frames: (B, 2C, T', H, W) -> (B, C, T, H, W), dropping the duplicate of frame 0."""
    x = rearrange(x, "b (two c) t h w -> b c (t two) h w", two=2)
    return x[:, :, 1:] if first else x


class Down(nn.Module):
    """2x down in space (and optionally time): a convolution plus a space-to-channel shortcut averaged to width."""

    def __init__(self, cin: int, cout: int, time: bool, kt: int):
        super().__init__()
        self.time = time
        r = 8 if time else 4
        self.conv = CausalConv3d(cin, cout // r, kt=kt)
        self.group = cin * r // cout  # shortcut: average groups of space-to-channel features down to cout

    def forward(self, x: Tensor, cache: CausalCache | None = None) -> Tensor:
        first = first_chunk(self, cache)

        def squeeze(y: Tensor) -> Tensor:
            y = rearrange(y, "b c t (h p) (w q) -> b (p q c) t h w", p=2, q=2)  # (B, 4C, T, H/2, W/2)
            return pair_frames(y, first) if self.time else y

        h = squeeze(self.conv(x, cache))  # (B, cout, T', H/2, W/2)
        s = squeeze(x)  # (B, cin * r, T', H/2, W/2)
        s = rearrange(s, "b (c g) t h w -> b c g t h w", g=self.group).mean(dim=2)  # (B, cout, T', H/2, W/2)
        return h + s


class Up(nn.Module):
    """2x up in space (and optionally time). Time is split through channels (a convolution to 2x width, unpaired:
    frame 0 of a stream stays one frame, later latent frames become two); space by nearest-neighbor repeat, left for
    the next 3x3 convolutions to refine. A shortcut carries the input, averaged to width, the same way."""

    def __init__(self, cin: int, cout: int, time: bool, kt: int):
        super().__init__()
        self.time = time
        self.conv = CausalConv3d(cin, cout * (2 if time else 1), kt=kt)
        self.group = cin // cout

    def forward(self, x: Tensor, cache: CausalCache | None = None) -> Tensor:
        first = first_chunk(self, cache)
        h = self.conv(x, cache)  # (B, cout * (2 if time else 1), T', H, W)
        s = rearrange(x, "b (c g) t h w -> b c g t h w", g=self.group).mean(dim=2)  # (B, cout, T', H, W)
        if self.time:
            h = unpair_frames(h, first)  # (B, cout, T, H, W)
            s = s.repeat_interleave(2, dim=2)[:, :, 1 if first else 0 :]  # (B, cout, T, H, W)
        y = h + s
        return y.repeat_interleave(2, dim=3).repeat_interleave(2, dim=4)  # (B, cout, T, 2H, 2W)


class Encoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        c = cfg.channels
        self.patch = cfg.patch
        self.conv_in = CausalConv3d(3 * cfg.patch**2, c[0], kt=cfg.temporal_kernel[0])
        self.stages = nn.ModuleList()
        kts = cfg.temporal_kernel
        for i in range(len(c) - 1):
            blocks = [ResBlock(c[i], c[i], kts[i]) for _ in range(cfg.blocks)]
            self.stages.append(nn.ModuleList([*blocks, Down(c[i], c[i + 1], cfg.temporal_down[i], kts[i])]))
        self.mid = ResBlock(c[-1], c[-1], 3)
        self.norm = RMSNorm(c[-1])
        self.conv_out = CausalConv3d(c[-1], 2 * cfg.latent, kt=3)
        # start with a narrow posterior (std ~0.05): unit noise on a fresh encoder's small means would hide the
        # signal from the decoder for hundreds of steps
        nn.init.constant_(self.conv_out.conv.bias[cfg.latent :], -6.0)

    def forward(self, x: Tensor, cache: CausalCache | None = None) -> Tensor:
        # x: (B, 3, T, H, W) -> (B, 2 * latent, 1 + (T - 1) / 4, H / 8, W / 8)
        x = rearrange(x, "b c t (h p) (w q) -> b (p q c) t h w", p=self.patch, q=self.patch)  # (B, 3p^2, T, H/p, W/p)
        x = self.conv_in(x, cache)
        for stage in self.stages:
            for layer in stage:
                x = layer(x, cache)
        x = self.mid(x, cache)
        return self.conv_out(F.silu(self.norm(x)), cache)


class Decoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        c = cfg.channels
        self.conv_in = CausalConv3d(cfg.latent, c[-1], kt=3)
        self.mid = ResBlock(c[-1], c[-1], 3)
        self.stages = nn.ModuleList()
        kts = cfg.temporal_kernel
        for i in reversed(range(len(c) - 1)):
            blocks = [ResBlock(c[i], c[i], kts[i]) for _ in range(cfg.blocks)]
            up = Up(c[i + 1], c[i], cfg.temporal_down[i], kts[i + 1])  # the conv runs at the lower resolution
            self.stages.append(nn.ModuleList([up, *blocks]))
        self.norm = RMSNorm(c[0])
        self.patch = cfg.patch
        self.conv_out = CausalConv3d(c[0], 3 * cfg.patch**2, kt=cfg.temporal_kernel[0])

    def forward(self, z: Tensor, cache: CausalCache | None = None) -> Tensor:
        # z: (B, latent, T', H', W') -> (B, 3, 1 + 4 (T' - 1), 8 H', 8 W')
        x = self.mid(self.conv_in(z, cache), cache)
        for stage in self.stages:
            for layer in stage:
                x = layer(x, cache)
        x = self.conv_out(F.silu(self.norm(x)), cache)  # (B, 3p^2, T, H/p, W/p)
        return rearrange(x, "b (p q c) t h w -> b c t (h p) (w q)", p=self.patch, q=self.patch)


class VAE(nn.Module):
    """Encoder, decoder and the latent normalization (shift, scale) that makes latents unit-variance."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.register_buffer("shift", torch.zeros(cfg.latent))
        self.register_buffer("scale", torch.ones(cfg.latent))

    def check_input(self, x: Tensor) -> None:
        """Refuse clips the network cannot take, with the size and the rule, before any shape error."""
        if x.ndim != 5 or x.shape[1] != 3:
            raise SizeError(f"video tensor must be (B, 3, T, H, W), got {tuple(x.shape)}")
        t, h, w = x.shape[2:]
        f, s = self.cfg.time_factor, self.cfg.space_factor
        if t < 1 or (t - 1) % f:
            raise SizeError(f"{t} frames: the VAE takes 1 + {f}k frames (1, {1 + f}, {1 + 2 * f}, ...)")
        if h < 2 * s or w < 2 * s or h % s or w % s:
            raise SizeError(f"{w}x{h} pixels: the VAE takes sides that are multiples of {s}, at least {2 * s}")

    def posterior(self, x: Tensor, cache: CausalCache | None = None) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(z | x) in raw (unscaled) latent units."""
        mean, logvar = self.encoder(x, cache).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def encode(self, x: Tensor, cache: CausalCache | None = None) -> Tensor:
        """Video in [-1, 1] (B, 3, T, H, W) -> normalized latent mean (B, latent, T', H/8, W/8)."""
        if cache is None or not cache.started:
            self.check_input(x)
        mean, _ = self.posterior(x, cache)
        return self.normalize(mean)

    def decode(self, z: Tensor, cache: CausalCache | None = None) -> Tensor:
        """Normalized latent -> video in about [-1, 1]."""
        return self.decoder(self.denormalize(z), cache)

    def normalize(self, z: Tensor) -> Tensor:
        return (z - self.shift.view(1, -1, 1, 1, 1)) / self.scale.view(1, -1, 1, 1, 1)

    def denormalize(self, z: Tensor) -> Tensor:
        return z * self.scale.view(1, -1, 1, 1, 1) + self.shift.view(1, -1, 1, 1, 1)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Training pass: sample z ~ q(z | x), decode. Returns (reconstruction, mean, logvar)."""
        mean, logvar = self.posterior(x)
        noise = torch.randn(mean.shape, generator=generator, dtype=torch.float32).to(mean.device, mean.dtype)
        z = mean + noise * (0.5 * logvar).exp()
        return self.decoder(z), mean, logvar
