"""How well an embedding mixes batches (sections) while keeping neighbourhoods local."""

from __future__ import annotations

import numpy as np
import pandas as pd


def batch_mixing_entropy(
    embedding: np.ndarray, batches, n_neighbors: int = 50, balanced: bool = True
) -> float:
    """Mean entropy (nats) of the batch labels among each observation's nearest neighbours.

    For each observation, the ``n_neighbors`` nearest other observations in ``embedding``
    (Euclidean) give a distribution over batches; its Shannon entropy is averaged over all
    observations. 0 means neighbourhoods hold one batch only; ``ln(n_batches)`` is perfect
    mixing of equally sized batches (ln 2 ≈ 0.69 for two sections).

    Parameters
    ----------
    embedding
        ``n × d`` coordinates (e.g. ``adata.obsm['X_spavae']``).
    batches
        Batch label per observation.
    n_neighbors
        Neighbourhood size.
    balanced
        Reweight neighbour counts by the inverse batch frequency, so that unequal batch sizes do
        not lower the entropy of a perfectly mixed embedding.
    """
    from sklearn.neighbors import NearestNeighbors

    embedding = np.asarray(embedding, dtype=np.float64)
    codes, uniques = pd.factorize(pd.Series(np.asarray(batches, dtype=object)))
    if embedding.ndim != 2 or len(codes) != embedding.shape[0]:
        raise ValueError(
            f"`embedding` must be n × d with one batch label per row; got {embedding.shape} "
            f"and {len(codes)} labels."
        )
    if (codes < 0).any():
        raise ValueError("`batches` contains missing labels.")
    if not 1 <= n_neighbors < len(codes):
        raise ValueError(f"`n_neighbors` must be in [1, n_obs), got {n_neighbors}.")
    _, idx = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(embedding).kneighbors(embedding)
    counts = np.zeros((len(codes), len(uniques)))
    np.add.at(
        counts, (np.repeat(np.arange(len(codes)), n_neighbors), codes[idx[:, 1:]].ravel()), 1.0
    )
    if balanced:
        counts = counts / np.bincount(codes, minlength=len(uniques))[None, :]
    p = counts / counts.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    return float(entropy.mean())
