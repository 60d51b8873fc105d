"""Kinetoscope: text-to-video with a causal video VAE and a spacetime-patch diffusion transformer."""

__version__ = "0.1.0"
