"""The bucketed loader: a dataset over shards and a batch sampler whose every batch is one (frames, H, W) bucket.

    ds = ClipDataset(["data/world"], caption="random", seed=0)
    sampler = BucketBatchSampler(ds.buckets(), batch_size=8, seed=0, rank=rank, world_size=world)
    loader = DataLoader(ds, batch_sampler=sampler, num_workers=2, collate_fn=collate)
    for epoch in range(E):
        sampler.set_epoch(epoch); ds.set_epoch(epoch)
        for batch in loader: ...   # batch["video"]: (B, C, T, H, W) float32 in [-1, 1]

The sampler's plan for an epoch is a pure function of (keys, seed, epoch, batch sizes, world size), computed the
same on every rank; rank r takes slice r of each global batch. That makes ranks disjoint, gives every rank the same
number of batches (DDP never waits on a rank that ran out), keeps all ranks on the same bucket at each step, and
makes resume exact: skip the first ``batches_done`` batches of the epoch's plan.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from kinetoscope.data.shards import ClipRecord, read_manifest
from kinetoscope.errors import DataError
from kinetoscope.media import frames_to_tensor, read_video

CAPTION_MODES = ("random", "terse", "detailed")


class ClipDataset(Dataset):
    """Clips of one or more shard folders; an item is a dict: video (C, T, H, W) in [-1, 1], caption, index, bucket."""

    def __init__(self, roots: Sequence[str | os.PathLike] | str | os.PathLike, caption: str = "random", seed: int = 0):
        if caption not in CAPTION_MODES:
            raise ValueError(f"caption {caption!r} is not one of {', '.join(CAPTION_MODES)}")
        if isinstance(roots, (str, os.PathLike)):
            roots = [roots]
        self.caption = caption
        self.seed = seed
        self.epoch = 0
        self.items: list[tuple[Path, ClipRecord]] = [(Path(r), rec) for r in roots for rec in read_manifest(r)]

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        """Reseed the random caption choice. DataLoader workers see it only if they are not persistent."""
        self.epoch = epoch

    def buckets(self) -> list[tuple[int, int, int]]:
        """(frames, height, width) of every item, from the manifests alone: the sampler's keys."""
        return [rec.bucket for _, rec in self.items]

    def caption_of(self, i: int) -> str:
        """Terse or detailed; for "random" a pure function of (seed, epoch, i), so runs and resumes agree."""
        caps = self.items[i][1].captions
        kind = self.caption
        if kind == "random":
            kind = "terse" if np.random.default_rng([self.seed, self.epoch, i]).random() < 0.5 else "detailed"
        return caps.get(kind) or next(iter(caps.values()))

    def __getitem__(self, i: int) -> dict:
        root, rec = self.items[i]
        path = root / rec.path
        frames = read_video(path)  # uint8 (T, H, W, 3)
        if frames.shape[:3] != rec.bucket:
            raise DataError(f"{path}: decoded {tuple(frames.shape[:3])} (T, H, W), manifest says {rec.bucket}")
        return {
            "video": frames_to_tensor(frames),  # (C, T, H, W) float32 in [-1, 1]
            "caption": self.caption_of(i),
            "index": i,
            "bucket": rec.bucket,
        }


def collate(items: list[dict]) -> dict:
    """Stack the items of one bucket: video (B, C, T, H, W), caption list[str], index (B,), bucket tuple."""
    buckets = {it["bucket"] for it in items}
    if len(buckets) != 1:
        raise DataError(f"a batch mixes buckets {sorted(buckets)}; use BucketBatchSampler")
    return {
        "video": torch.stack([it["video"] for it in items]),  # (B, C, T, H, W)
        "caption": [it["caption"] for it in items],
        "index": torch.tensor([it["index"] for it in items]),
        "bucket": buckets.pop(),
    }


def budget_batch_sizes(keys: Sequence[tuple[int, int, int]], voxels: int, max_batch: int) -> dict[tuple, int]:
    """Per-bucket batch sizes that keep batch x frames x height x width under ``voxels`` (at least 1 a batch)."""
    return {k: max(1, min(max_batch, voxels // (k[0] * k[1] * k[2]))) for k in set(keys)}


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of indices, each from one bucket; bucket b's share of batches is proportional to its full batches
    (its usable items) times ``weights[b]`` (default 1). Deterministic per (seed, epoch); split across ranks.

    ``batch_size`` is per rank; ``batch_sizes`` overrides it per bucket (see ``budget_batch_sizes``). With
    ``drop_last`` (the default) each epoch sees every item at most once across all ranks when no weights are given.
    Without it, a bucket's last short batch is padded by wrapping around so every rank gets a non-empty part.
    With weights, a bucket allotted more batches than it has passes over its items again (reshuffled).
    """

    def __init__(
        self,
        keys: Sequence[Hashable],
        batch_size: int,
        *,
        weights: Mapping[Hashable, float] | None = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = True,
        batch_sizes: Mapping[Hashable, int] | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1} (world_size {world_size})")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        weights = dict(weights or {})
        if any(w < 0 for w in weights.values()):
            raise ValueError(f"bucket weights must be >= 0, got {weights}")
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        keys = list(keys)
        groups: dict[Hashable, list[int]] = {}
        for i, k in enumerate(keys):
            groups.setdefault(k, []).append(i)
        self._buckets = _sorted(groups)
        self._groups = {b: np.asarray(groups[b], dtype=np.int64) for b in self._buckets}
        self._sizes = {b: int((batch_sizes or {}).get(b, batch_size)) for b in self._buckets}
        if any(s < 1 for s in self._sizes.values()):
            raise ValueError(f"batch sizes must be >= 1, got {dict(batch_sizes or {})}")
        self._weights = {b: float(weights.get(b, 1.0)) for b in self._buckets}
        self.epoch = 0
        self._resume = 0  # batches to skip at the next __iter__ (set by load_state_dict)
        self._done = 0  # batches yielded so far in this epoch
        self._cache: tuple[int, list[list[int]]] | None = None
        if len(self) == 0 and len(keys) > 0:
            raise ValueError(f"no bucket has a full batch of {batch_size} x {world_size} ranks; "
                             f"lower batch_size or set drop_last=False")

    # --- the epoch's plan --------------------------------------------------------------------------------------

    def _chunks(self, b: Hashable, rng: np.random.Generator) -> list[np.ndarray]:
        """One pass over bucket b: its items shuffled and cut into global batches of batch_size x world_size."""
        idx = rng.permutation(self._groups[b])
        g = self._sizes[b] * self.world_size
        chunks = [idx[i : i + g] for i in range(0, len(idx), g)]
        if chunks and len(chunks[-1]) < g:
            if self.drop_last:
                chunks.pop()
            else:  # pad by wrapping around so each rank gets ceil(L / world_size) items
                short = chunks[-1]
                per_rank = -(-len(short) // self.world_size)
                chunks[-1] = np.concatenate([short, np.resize(idx, per_rank * self.world_size - len(short))])
        return chunks

    def _global_plan(self, epoch: int) -> list[np.ndarray]:
        """Every rank computes the same list of global batches; rank r later takes slice r of each."""
        rng = np.random.default_rng([self.seed, epoch])
        passes = {b: self._chunks(b, rng) for b in self._buckets}
        # Allot the epoch's batches in proportion to (full batches x weight), by largest remainder so the counts
        # are exact when all weights are 1; then shuffle the order so each step's bucket is a weighted draw.
        total = sum(len(c) for c in passes.values())
        q = np.array([len(passes[b]) * self._weights[b] for b in self._buckets])
        if total == 0:
            return []
        if q.sum() == 0:
            raise ValueError("every bucket with a full batch has weight 0")
        target = total * q / q.sum()
        allot = np.floor(target).astype(int)
        by_remainder = np.argsort(-(target - allot), kind="stable")
        allot[by_remainder[: total - allot.sum()]] += 1
        batches: list[np.ndarray] = []
        for b, n in zip(self._buckets, allot):
            chunks = passes[b]
            while 0 < len(chunks) < n:  # weighted up: another reshuffled pass over the bucket
                chunks = chunks + self._chunks(b, rng)
            batches.extend(chunks[:n])
        return [batches[j] for j in rng.permutation(len(batches))]

    def _plan(self) -> list[list[int]]:
        if self._cache is None or self._cache[0] != self.epoch:
            rank_part = []
            for g in self._global_plan(self.epoch):
                m = len(g) // self.world_size
                rank_part.append(g[self.rank * m : (self.rank + 1) * m].tolist())
            self._cache = (self.epoch, rank_part)
        return self._cache[1]

    # --- Sampler protocol and resume ---------------------------------------------------------------------------

    def __len__(self) -> int:
        """Batches per epoch for this rank (the same on every rank), including any already done before a resume."""
        return len(self._plan())

    def __iter__(self):
        plan = self._plan()
        start, self._resume = self._resume, 0
        self._done = start
        for batch in plan[start:]:
            self._done += 1  # counted before the yield: after receiving k batches the state says k
            yield batch

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` from its first batch (call before each epoch, as with DistributedSampler)."""
        self.epoch = int(epoch)
        self._resume = self._done = 0

    def state_dict(self) -> dict[str, int]:
        """Position in the epoch. Behind a DataLoader that prefetches, save the batches your loop consumed instead."""
        return {"epoch": self.epoch, "batches_done": self._done}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """The next __iter__ yields exactly the batches of ``state['epoch']`` after the first ``batches_done``."""
        self.epoch = int(state["epoch"])
        done = int(state["batches_done"])
        if not 0 <= done <= len(self):
            raise ValueError(f"batches_done {done} is outside 0..{len(self)} for epoch {self.epoch}")
        self._resume = self._done = done


def _sorted(keys) -> list:
    """Buckets in a fixed order (the plan must not depend on dict order); repr order if keys do not compare."""
    try:
        return sorted(keys)
    except TypeError:
        return sorted(keys, key=repr)
