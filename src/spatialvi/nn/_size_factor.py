"""Library sizes and size factors: the one definition used by every count model.

A spot's size factor is its library size (total counts) relative to the median library of the
training spots, with the library floored at one count so that all-zero spots stay finite.
Works on numpy arrays, scipy sparse matrices (library only) and torch tensors alike.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import sparse


def library_size(x) -> np.ndarray | torch.Tensor:
    """Total counts per row of ``x`` (``n``; ``n × 1`` for a tensor, to broadcast over genes)."""
    if isinstance(x, torch.Tensor):
        return x.sum(-1, keepdim=True)
    if sparse.issparse(x):
        return np.asarray(x.sum(1), dtype=np.float64).reshape(-1)
    return np.asarray(x).sum(-1, dtype=np.float64)


def median_library(library) -> float:
    """Median of the libraries floored at one count (the reference of :func:`size_factor`)."""
    return float(np.median(np.maximum(np.asarray(library, dtype=np.float64), 1.0)))


def size_factor(library, median: float | torch.Tensor):
    """``max(library, 1) / median``: the NB mean of a spot is ``size_factor × rate``."""
    return library.clip(min=1.0) / median


__all__ = ["library_size", "median_library", "size_factor"]
