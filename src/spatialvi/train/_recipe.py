"""Pieces of the shared training recipe that do not need a model: minibatch sizes."""

from __future__ import annotations


def spavae_batch_size(n_obs: int) -> int:
    """SpaVAE's minibatch size: 128 / 256 / 512 for ``N ≤ 1024 / ≤ 2048 / larger``."""
    return 128 if n_obs <= 1024 else 256 if n_obs <= 2048 else 512


def dpvae_max_epochs(n_obs: int) -> int:
    """DPVAE's default epochs: ``min(round(20000 / n_obs · 200), 200)``.

    Half of scvi-tools' ``get_max_epochs_heuristic`` (same shape: fewer epochs for large data),
    which DPVAE trains at twice scvi-tools' learning rate; at least one epoch.
    """
    if int(n_obs) != n_obs or n_obs < 1:
        raise ValueError(f"`n_obs` must be a positive integer, got {n_obs!r}.")
    return max(1, int(min(round(20000 / int(n_obs) * 200), 200)))


def fit_batch_size(batch_size: int, n_train: int) -> tuple[int, bool]:
    """The minibatch size capped at the training-set size, and whether to drop the last batch.

    A training minibatch of 1–2 observations breaks batch norm: such a remainder is dropped
    each epoch (different observations every epoch, as batches are shuffled).
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    batch_size = int(min(batch_size, n_train))
    return batch_size, 0 < n_train % batch_size < 3


__all__ = ["dpvae_max_epochs", "fit_batch_size", "spavae_batch_size"]
