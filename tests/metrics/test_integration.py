from __future__ import annotations

import numpy as np
import pytest

from spatialvi.metrics._integration import batch_mixing_entropy


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_mixing_entropy_extremes(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(400, 2))
    mixed = np.repeat(["a", "b"], 200)
    rng.shuffle(mixed)
    # Interleaved batches in the same cloud: close to ln 2.
    assert batch_mixing_entropy(x, mixed, n_neighbors=30) == pytest.approx(np.log(2), abs=0.05)
    # Separated clouds: zero.
    separated = np.vstack([x[:200], x[200:] + 100])
    assert batch_mixing_entropy(separated, np.repeat(["a", "b"], 200), n_neighbors=30) == 0.0


def test_batch_mixing_entropy_hand_computed():
    # Four points on a line, k = 1: each point's nearest neighbour is the adjacent one.
    x = np.array([[0.0], [1.0], [3.0], [4.0]])
    # nearest: 0->1 (b), 1->0 (a), 2->3 (a), 3->2 (b): each neighbourhood is one batch.
    assert batch_mixing_entropy(x, ["a", "b", "b", "a"], n_neighbors=1) == 0.0
    # k = 2 with balanced=False: point 0 sees {1, 2} -> labels (b, b) -> 0; point 1 sees {0, 2}
    # -> (a, b) -> ln 2; point 2 sees {3, 1} -> (a, b) -> ln 2; point 3 sees {2, 1} -> (b, b) -> 0.
    value = batch_mixing_entropy(x, ["a", "b", "b", "a"], n_neighbors=2, balanced=False)
    assert value == pytest.approx(np.log(2) / 2)


def test_batch_mixing_entropy_errors():
    with pytest.raises(ValueError, match="n_neighbors"):
        batch_mixing_entropy(np.zeros((3, 2)), ["a", "b", "a"], n_neighbors=3)
    with pytest.raises(ValueError, match="one batch label per row"):
        batch_mixing_entropy(np.zeros((3, 2)), ["a", "b"])
