"""The bucketed loader: one bucket a batch, weights, disjoint equal ranks, exact resume, and a real DataLoader."""

from collections import Counter
from itertools import chain

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from kinetoscope.data.loader import BucketBatchSampler, ClipDataset, budget_batch_sizes, collate
from kinetoscope.data.shards import read_manifest
from kinetoscope.data.worldgen import available_families, write_world_dataset


def make_keys(counts: dict[tuple, int], seed: int = 0) -> list[tuple]:
    keys = list(chain.from_iterable([k] * n for k, n in counts.items()))
    np.random.default_rng(seed).shuffle(keys)
    return keys


KEYS = make_keys({(1, 64, 64): 37, (9, 64, 64): 50, (9, 64, 112): 23, (17, 128, 128): 10})


def ranks(keys, batch_size, world_size, **kw) -> list[list[list[int]]]:
    return [list(BucketBatchSampler(keys, batch_size, rank=r, world_size=world_size, **kw)) for r in range(world_size)]


def test_every_batch_is_one_bucket_of_batch_size():
    batches = list(BucketBatchSampler(KEYS, 4, seed=1))
    assert batches and all(len(b) == 4 and len({KEYS[i] for i in b}) == 1 for b in batches)
    per_bucket = Counter(KEYS[b[0]] for b in batches)  # without weights: every full batch once
    assert per_bucket == {k: n // 4 for k, n in Counter(KEYS).items()}
    flat = [i for b in batches for i in b]
    assert len(flat) == len(set(flat))


def test_per_bucket_batch_sizes():
    sizes = budget_batch_sizes(KEYS, voxels=9 * 64 * 64 * 4, max_batch=16)
    assert sizes[(1, 64, 64)] == 16 and sizes[(9, 64, 64)] == 4 and sizes[(17, 128, 128)] == 1
    for b in BucketBatchSampler(KEYS, 1, batch_sizes=sizes):
        assert len(b) == sizes[KEYS[b[0]]]


def test_weights_set_each_buckets_share_of_batches():
    keys = make_keys({"a": 400, "b": 400, "c": 200, "d": 100})
    weights = {"a": 3.0, "b": 1.0, "c": 2.0, "d": 0.0}
    sampler = BucketBatchSampler(keys, 4, weights=weights, seed=5)
    counts, first_halves = Counter(), Counter()
    for epoch in range(20):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == 275  # the epoch's length does not depend on the weights
        counts.update(keys[b[0]] for b in batches)
        first_halves.update(keys[b[0]] for b in batches[: len(batches) // 2])
    total = sum(counts.values())
    # share of batches proportional to items x weight: a 1200, b 400, c 400, d 0 of 2000
    assert counts["a"] / total == pytest.approx(0.6, abs=0.01)
    assert counts["b"] / total == pytest.approx(0.2, abs=0.01)
    assert counts["c"] / total == pytest.approx(0.2, abs=0.01)
    assert counts["d"] == 0
    # and spread over the epoch, not in blocks: the first half of each epoch draws the same mix
    assert first_halves["a"] / sum(first_halves.values()) == pytest.approx(0.6, abs=0.03)


def test_ranks_are_disjoint_equal_in_length_and_in_step():
    parts = ranks(KEYS, 3, 4, seed=2)
    assert len({len(p) for p in parts}) == 1  # DDP would hang on a rank with fewer batches
    for step in zip(*parts):
        assert len({KEYS[i] for b in step for i in b}) == 1  # all ranks on one bucket at each step
    flat = [i for p in parts for b in p for i in b]
    assert len(flat) == len(set(flat))
    missed = Counter(KEYS[i] for i in set(range(len(KEYS))) - set(flat))
    assert all(missed[k] < 3 * 4 for k in missed)  # only each bucket's remainder short of a global batch


def test_epochs_and_seeds_shuffle_deterministically():
    def run(seed, epoch):
        s = BucketBatchSampler(KEYS, 4, seed=seed)
        s.set_epoch(epoch)
        return list(s)

    assert run(0, 0) == run(0, 0) and run(3, 7) == run(3, 7)
    assert run(0, 0) != run(0, 1) and run(0, 0) != run(1, 0)


@pytest.mark.parametrize("world_size", [1, 3])
def test_resume_yields_exactly_the_rest_of_the_epoch(world_size):
    for rank in range(world_size):
        full = BucketBatchSampler(KEYS, 2, seed=4, rank=rank, world_size=world_size)
        full.set_epoch(2)
        expected = list(full)
        first = BucketBatchSampler(KEYS, 2, seed=4, rank=rank, world_size=world_size)
        first.set_epoch(2)
        it = iter(first)
        head = [next(it) for _ in range(7)]
        state = first.state_dict()
        assert state == {"epoch": 2, "batches_done": 7}
        resumed = BucketBatchSampler(KEYS, 2, seed=4, rank=rank, world_size=world_size)
        resumed.load_state_dict(state)
        assert head + list(resumed) == expected
        assert resumed.state_dict() == {"epoch": 2, "batches_done": len(expected)}
        assert list(resumed) == expected  # the next pass over the same epoch starts from its beginning


def test_too_small_for_one_batch_is_an_error():
    with pytest.raises(ValueError, match="no bucket has a full batch"):
        BucketBatchSampler(KEYS, 30, world_size=2)
    assert sum(map(len, BucketBatchSampler(KEYS, 30, world_size=2, drop_last=False))) > 0


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(1, 25), min_size=1, max_size=5),
    batch_size=st.integers(1, 5),
    world_size=st.integers(1, 4),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    epoch=st.integers(0, 3),
)
def test_ranks_partition_the_data(counts, batch_size, world_size, drop_last, seed, epoch):
    keys = make_keys({(1 + 4 * b, 16, 16): n for b, n in enumerate(counts)}, seed=seed % 1000)
    global_batch = batch_size * world_size
    if drop_last and all(n < global_batch for n in counts):
        with pytest.raises(ValueError):
            BucketBatchSampler(keys, batch_size, world_size=world_size, drop_last=drop_last)
        return
    samplers = [BucketBatchSampler(keys, batch_size, seed=seed, rank=r, world_size=world_size, drop_last=drop_last)
                for r in range(world_size)]  # fmt: skip
    for s in samplers:
        s.set_epoch(epoch)
    parts = [list(s) for s in samplers]
    assert len({len(p) for p in parts}) == 1
    assert all(b and len({keys[i] for i in b}) == 1 for p in parts for b in p)
    flat = [i for p in parts for b in p for i in b]
    if drop_last:
        assert len(flat) == len(set(flat))  # disjoint across ranks and batches
        used = sorted(n - n % global_batch for n in counts if n >= global_batch)  # all but each bucket's remainder
        assert sorted(Counter(keys[i] for i in flat).values()) == used
    else:
        assert set(flat) == set(range(len(keys)))  # covers everything; padding repeats at most world_size - 1 a bucket
        assert len(flat) - len(keys) <= (world_size - 1) * len(counts)


# --- the dataset and a real DataLoader --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("loader") / "ds"
    write_world_dataset(out, 12, families=available_families(), sizes=((64, 64), (64, 112)), frames=(1, 9),
                        workers=2, progress=False)  # fmt: skip
    return out


def test_items_are_videos_in_minus_one_one_with_captions(dataset):
    ds = ClipDataset([dataset], caption="random", seed=0)
    records = read_manifest(dataset)
    assert len(ds) == 12 and ds.buckets() == [r.bucket for r in records]
    item = ds[3]
    t, h, w = records[3].bucket
    assert item["video"].shape == (3, t, h, w) and item["video"].dtype == torch.float32
    assert -1 <= item["video"].min() < item["video"].max() <= 1
    assert item["index"] == 3 and item["bucket"] == (t, h, w)
    assert item["caption"] in records[3].captions.values()
    assert ClipDataset(dataset, caption="detailed")[3]["caption"] == records[3].captions["detailed"]
    def kinds(seed, epoch):  # which caption "random" picks for every item
        d = ClipDataset(dataset, caption="random", seed=seed)
        d.set_epoch(epoch)
        return ["terse" if d.caption_of(i) == r.captions["terse"] else "detailed" for i, r in enumerate(records)]

    assert kinds(0, 1) == kinds(0, 1)  # a pure function of (seed, epoch, index)
    assert kinds(0, 1) != kinds(0, 2) and kinds(0, 1) != kinds(1, 1)
    assert set(kinds(0, 1)) == {"terse", "detailed"}


def test_dataloader_with_two_workers_yields_bucketed_batches_and_resumes(dataset):
    ds = ClipDataset([dataset, dataset], caption="terse", seed=0)  # two roots: 24 items
    keys = ds.buckets()

    def loader(state=None):
        sampler = BucketBatchSampler(keys, 2, seed=1)
        if state:
            sampler.load_state_dict(state)
        return DataLoader(ds, batch_sampler=sampler, num_workers=2, collate_fn=collate)

    batches = [(b["index"].tolist(), b["bucket"], b["video"].shape, len(b["caption"])) for b in loader()]
    assert len(batches) == sum(n // 2 for n in Counter(keys).values())
    for idx, (t, h, w), shape, captions in batches:
        assert shape == (2, 3, t, h, w) and captions == 2 and all(keys[i] == (t, h, w) for i in idx)
    # the loop consumed k batches (the loader prefetched more): resume from what the loop consumed
    k = 3
    rest = [b["index"].tolist() for b in loader({"epoch": 0, "batches_done": k})]
    assert rest == [idx for idx, *_ in batches[k:]]
