"""The latent cache: every clip of a shard encoded once by the VAE, and its captions once by the text encoder.

DiT training never touches pixels: it reads this cache. It lives beside the manifest in ``latents-<vae id>/`` (the
id is a hash of the encoder's weights and the latent normalization, so a retrained encoder gets a fresh cache and a
decoder-only fine-tune keeps it), as safetensors chunks of CHUNK clips:
``z.<i>`` the normalized latent mean (C, T', H', W') and, per caption kind k, ``tok.<k>.<i>`` (L, 384) the token
embeddings (real tokens only) and ``pool.<k>.<i>`` (384,). ``index.json`` lists the chunks; writing is resumable
chunk by chunk (atomic files), and the empty caption's embedding (the unconditional one) is stored once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor
from tqdm import tqdm

from kinetoscope.data.shards import TEMP_MARK, ClipRecord, atomic_write_text, read_manifest
from kinetoscope.errors import DataError
from kinetoscope.media import frames_to_tensor, read_video
from kinetoscope.models.text import TextEmbedding, TextEncoder
from kinetoscope.models.vae import VAE

CHUNK = 256
CAPTION_KINDS = ("terse", "detailed")
INDEX = "index.json"


def vae_id(vae: VAE) -> str:
    """A short hash of what the latents depend on, the encoder's weights and the latent normalization (not the
    decoder): the cache's name."""
    h = hashlib.sha256()
    for k, v in sorted(vae.state_dict().items()):
        if k.startswith("decoder."):
            continue
        h.update(k.encode())
        h.update(v.detach().float().numpy().tobytes())
    return h.hexdigest()[:12]


@dataclass
class LatentCache:
    """A loaded cache: latents and caption embeddings of every clip, in manifest order."""

    records: list[ClipRecord]
    z: list[Tensor]  # (C, T', H', W') each, float32
    tokens: dict[str, list[Tensor]]  # caption kind -> (L, 384) each
    pooled: dict[str, list[Tensor]]  # caption kind -> (384,) each
    empty: TextEmbedding  # the empty caption: the unconditional embedding for guidance

    def __len__(self) -> int:
        return len(self.z)

    def bucket(self, i: int) -> tuple[int, int, int]:
        return tuple(self.z[i].shape[1:])  # (T', H', W')

    def text(self, picks: list[tuple[int, str | None]]) -> TextEmbedding:
        """Padded text embeddings for (clip, caption kind) pairs; kind None is the empty (dropped) caption."""
        toks, pools = [], []
        for i, kind in picks:
            if kind is None:
                toks.append(self.empty.tokens[0][self.empty.mask[0]])
                pools.append(self.empty.pooled[0])
            else:
                toks.append(self.tokens[kind][i])
                pools.append(self.pooled[kind][i])
        return pad_tokens(toks, torch.stack(pools))


def join_caches(caches: Sequence[LatentCache]) -> LatentCache:
    """Several data sets' caches as one, clips in the order given (training on a mix of data sets)."""
    first = caches[0]
    for c in caches[1:]:
        if c.z[0].shape[0] != first.z[0].shape[0] or set(c.tokens) != set(first.tokens):
            raise DataError("cannot train on these data sets together: their latents differ in channels or their "
                            "captions in kinds (were they cached with different VAEs or versions?)")
    return LatentCache(
        records=[r for c in caches for r in c.records],
        z=[z for c in caches for z in c.z],
        tokens={k: [t for c in caches for t in c.tokens[k]] for k in first.tokens},
        pooled={k: [t for c in caches for t in c.pooled[k]] for k in first.pooled},
        empty=first.empty,
    )


def pad_tokens(toks: list[Tensor], pooled: Tensor) -> TextEmbedding:
    """Stack variable-length (L_i, D) token embeddings into a padded batch with its mask."""
    length = max(t.shape[0] for t in toks)
    tokens = torch.zeros(len(toks), length, toks[0].shape[1])
    mask = torch.zeros(len(toks), length, dtype=torch.bool)
    for j, t in enumerate(toks):
        tokens[j, : t.shape[0]] = t.float()
        mask[j, : t.shape[0]] = True
    return TextEmbedding(tokens, mask, pooled.float())


def caption_of(rec: ClipRecord, kind: str) -> str:
    """The clip's caption of one kind as cached: the terse one where it has none of that kind."""
    return rec.captions.get(kind) or rec.captions.get("terse") or ""


def cache_dir(root: Path, vae: VAE) -> Path:
    return root / f"latents-{vae_id(vae)}"


@torch.no_grad()
def build_cache(root: str | Path, vae: VAE, text: TextEncoder | None = None, progress: bool = True) -> Path:
    """Encode every clip of the shard at ROOT (resuming chunk by chunk); returns the cache folder."""
    root = Path(root)
    records = read_manifest(root)
    if not records:
        raise DataError(f"{root}: the manifest lists no clips")
    out = cache_dir(root, vae)
    out.mkdir(exist_ok=True)
    for stale in out.glob(f"*{TEMP_MARK}*"):
        stale.unlink()
    text = text or TextEncoder()
    chunks = [records[i : i + CHUNK] for i in range(0, len(records), CHUNK)]
    bar = tqdm(total=len(records), desc="cache latents", disable=not progress)
    names = []
    for c, chunk in enumerate(chunks):
        name = f"chunk-{c:05d}.safetensors"
        names.append(name)
        if (out / name).exists():
            bar.update(len(chunk))
            continue
        tensors: dict[str, Tensor] = {}
        for j, rec in enumerate(chunk):
            i = c * CHUNK + j
            x = frames_to_tensor(read_video(root / rec.path))[None]  # (1, 3, T, H, W)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                tensors[f"z.{i}"] = vae.encode(x)[0].float().contiguous()  # (C, T', H', W')
            bar.update(1)
        for kind in CAPTION_KINDS:
            caps = [caption_of(rec, kind) for rec in chunk]
            emb = text(caps)
            for j in range(len(chunk)):
                i = c * CHUNK + j
                tensors[f"tok.{kind}.{i}"] = emb.tokens[j][emb.mask[j]].half().contiguous()
                tensors[f"pool.{kind}.{i}"] = emb.pooled[j].contiguous()
        tmp = out / f"{TEMP_MARK}{name}"
        save_file(tensors, str(tmp))
        tmp.rename(out / name)
    bar.close()
    empty = text([""])
    save_file({"tokens": empty.tokens[0], "pooled": empty.pooled[0]}, str(out / "empty.safetensors"))
    atomic_write_text(out / INDEX, json.dumps({"clips": len(records), "chunks": names, "kinds": list(CAPTION_KINDS)}))
    return out


def load_cache(root: str | Path, folder: str | Path) -> LatentCache:
    """Load a finished cache (every chunk in memory: ~0.1 MB a clip at our sizes)."""
    root, folder = Path(root), Path(folder)
    if not (folder / INDEX).exists():
        raise DataError(f"{folder}: no finished latent cache ({INDEX} missing); run the cache step again to finish it")
    index = json.loads((folder / INDEX).read_text())
    records = read_manifest(root)
    if len(records) != index["clips"]:
        raise DataError(f"{folder}: caches {index['clips']} clips but the manifest lists {len(records)}")
    z: list[Tensor] = []
    tokens: dict[str, list[Tensor]] = {k: [] for k in index["kinds"]}
    pooled: dict[str, list[Tensor]] = {k: [] for k in index["kinds"]}
    for name in index["chunks"]:
        t = load_file(str(folder / name))
        ids = sorted(int(k[2:]) for k in t if k.startswith("z."))
        for i in ids:
            z.append(t[f"z.{i}"])
            for kind in index["kinds"]:
                tokens[kind].append(t[f"tok.{kind}.{i}"].float())
                pooled[kind].append(t[f"pool.{kind}.{i}"])
    e = load_file(str(folder / "empty.safetensors"))
    empty = TextEmbedding(e["tokens"][None], torch.ones(1, e["tokens"].shape[0], dtype=torch.bool), e["pooled"][None])
    return LatentCache(records, z, tokens, pooled, empty)
