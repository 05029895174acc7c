"""The batch-size rule of the shared training recipe."""

from __future__ import annotations

import pytest

from spatialvi.train import fit_batch_size, spavae_batch_size


def test_spavae_batch_size_follows_the_papers_rule():
    assert [spavae_batch_size(n) for n in (100, 1024, 1025, 2048, 2049, 10**6)] == [
        128,
        128,
        256,
        256,
        512,
        512,
    ]


def test_fit_batch_size_caps_and_drops_tiny_remainders():
    assert fit_batch_size(512, 300) == (300, False)  # capped at the training set
    assert fit_batch_size(128, 258) == (128, True)  # remainder of 2 would break batch norm
    assert fit_batch_size(128, 259) == (128, False)  # remainder of 3 is kept
    assert fit_batch_size(128, 256) == (128, False)
    for bad in (0, -4, 2.5):
        with pytest.raises(ValueError, match="batch_size"):
            fit_batch_size(bad, 100)
