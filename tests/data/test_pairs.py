"""Pair minibatches: whole pairs in consecutive rows, every pair once per epoch, splits by pair."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spatialvi.data import PairBatchSampler, pair_members


def test_pair_members_groups_rows_by_id():
    ids = np.array(["b", "a", "b", "c", "a", "c"])
    np.testing.assert_array_equal(pair_members(ids), [[0, 2], [1, 4], [3, 5]])


@pytest.mark.parametrize(
    ("ids", "match"),
    [
        ([0, 0, 1], "exactly two members: 1 \\(1 rows\\)"),
        ([0, 0, 0, 1, 1], "exactly two members: 0 \\(3 rows\\)"),
        ([0, 0, None, 1], "no pair id"),
    ],
)
def test_missing_partners_and_third_members_are_errors(ids, match):
    with pytest.raises(ValueError, match=match):
        pair_members(np.array(ids, dtype=object))


@pytest.mark.parametrize("shuffle", [False, True])
def test_sampler_yields_whole_pairs_once_per_epoch(shuffle):
    rng = np.random.default_rng(0)
    members = rng.permutation(40).reshape(20, 2)
    torch.manual_seed(0)
    sampler = PairBatchSampler(members, pairs_per_batch=6, shuffle=shuffle)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 4  # 6 + 6 + 6 + 2 pairs
    rows = np.concatenate(batches)
    np.testing.assert_array_equal(np.sort(rows), np.arange(40))
    partner = {a: b for a, b in members} | {b: a for a, b in members}
    for batch in batches:
        assert all(partner[a] == b for a, b in zip(batch[0::2], batch[1::2], strict=True))
    order = [tuple(p) for p in np.asarray(rows).reshape(-1, 2)]
    assert (order == [tuple(p) for p in members]) is (not shuffle)
    dropped = PairBatchSampler(members, pairs_per_batch=6, shuffle=shuffle, drop_last=True)
    assert len(dropped) == 3 and all(len(b) == 12 for b in dropped)
