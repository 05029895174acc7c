"""Min–max scaling of features with ranges fitted once (on the source data) and reused.

The DRL paper min–max scales its DINO features; for transfer the ranges fitted on the training
(source) features are stored with the model and applied unchanged to the target, so a target
feature outside the source range maps outside [0, 1] instead of being silently re-fitted.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def _as_2d(features, name: str):
    if isinstance(features, torch.Tensor):
        x, finite = features, bool(torch.isfinite(features).all())
    else:
        x = np.asarray(features)
        if x.dtype.kind not in "biuf":
            raise ValueError(f"`{name}` must hold real numbers, got dtype {x.dtype}.")
        finite = bool(np.isfinite(x).all())
    if x.ndim != 2:
        raise ValueError(f"`{name}` must be an n × F matrix, got shape {tuple(x.shape)}.")
    if not finite:
        raise ValueError(
            f"`{name}` contains NaN or infinite values; remove or impute them before scaling."
        )
    return x


def fit_minmax(features):
    """Per-column minimum and maximum ``(lo, hi)`` of an ``n × F`` matrix (numpy or torch).

    Raises
    ------
    ValueError
        If ``features`` is not 2-D, has no rows, or holds NaN/infinite values.
    """
    x = _as_2d(features, "features")
    if x.shape[0] == 0:
        raise ValueError("`features` has no rows; min–max ranges need at least one.")
    if isinstance(x, torch.Tensor):
        return x.amin(dim=0), x.amax(dim=0)
    return x.min(axis=0), x.max(axis=0)


def apply_minmax(features, lo, hi):
    """``(features − lo) / (hi − lo)`` per column; constant columns (``hi == lo``) map to 0.

    Works on numpy arrays and torch tensors alike (the type of ``features`` is kept). Values
    outside the fitted range map outside [0, 1]; they are not clipped.
    """
    x = _as_2d(features, "features")
    if isinstance(x, torch.Tensor):
        lo = torch.as_tensor(lo, dtype=x.dtype, device=x.device)
        hi = torch.as_tensor(hi, dtype=x.dtype, device=x.device)
    else:
        lo, hi = np.asarray(lo), np.asarray(hi)
    if lo.shape != (x.shape[1],) or hi.shape != (x.shape[1],):
        raise ValueError(
            f"`lo` and `hi` must have one value per feature column ({x.shape[1]}), got shapes "
            f"{tuple(lo.shape)} and {tuple(hi.shape)}; fit them with `fit_minmax` on features "
            "of the same width."
        )
    return _scale(x, lo, hi)


def _scale(x, lo, hi):
    span = hi - lo
    constant = span == 0
    # Dividing by 1 where the span is 0 keeps the arithmetic finite; those columns are zeroed.
    return (x - lo) / (span + constant) * ~constant


class MinMaxScaling(nn.Module):
    """Min–max scaling as a module whose ranges are buffers (saved in the model's state dict).

    Parameters
    ----------
    lo, hi
        Per-feature minimum and maximum, e.g. from :func:`fit_minmax` on the source features.
    """

    def __init__(self, lo, hi):
        super().__init__()
        lo = torch.as_tensor(np.asarray(lo, dtype=np.float32))
        hi = torch.as_tensor(np.asarray(hi, dtype=np.float32))
        if lo.ndim != 1 or lo.shape != hi.shape:
            raise ValueError(
                f"`lo` and `hi` must be 1-D of equal length, got shapes {tuple(lo.shape)} and "
                f"{tuple(hi.shape)}."
            )
        if not (torch.isfinite(lo).all() and torch.isfinite(hi).all()) or (hi < lo).any():
            raise ValueError("`lo` and `hi` must be finite with `hi >= lo` in every column.")
        self.register_buffer("lo", lo)
        self.register_buffer("hi", hi)

    @classmethod
    def fit(cls, features) -> MinMaxScaling:
        """A scaling with the ranges of ``features`` (``n × F``)."""
        lo, hi = fit_minmax(features)
        if isinstance(lo, torch.Tensor):
            lo, hi = lo.detach().cpu().numpy(), hi.detach().cpu().numpy()
        return cls(lo, hi)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # No finiteness check here: it would synchronise with the GPU on every minibatch.
        return _scale(x, self.lo, self.hi)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Back to the original units: ``lo + y · (hi − lo)``, with the span of a constant
        column taken as 1 (the divisor :meth:`forward` uses there)."""
        span = self.hi - self.lo
        return self.lo + y * (span + (span == 0))
