"""Checks of plain arguments and arrays: the AnnData-free half of the validation layer.

Every public entry point checks its scalar and array arguments with these functions, so that
the same mistake gets the same message everywhere (an integer argument given as ``True``, a
distance matrix that is not symmetric, ...). They live at the bottom of the package because
the pure building blocks (``nn``, ``geometry``, ``sim``) need them too; the AnnData checks in
:mod:`spatialvi._validation` build on them and re-export them, so code above the building
blocks imports everything from ``_validation``.

Conventions: a check raises :class:`ValueError` (or :class:`TypeError` for a value of the
wrong kind) naming the argument in backticks, saying what was expected and what was given; it
returns the checked value in a canonical type and never modifies its input.
"""

from __future__ import annotations

import numbers
from collections.abc import Collection

import numpy as np


def check_int(name: str, value, minimum: int | None = 1, maximum: int | None = None) -> int:
    """Check that ``value`` is an integer in ``[minimum, maximum]`` and return it as ``int``.

    Python and NumPy integers are accepted; ``bool`` and floats (even ``3.0``) are not, as in
    scikit-learn's parameter checks: ``True`` is almost always a misplaced flag.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer, got {value!r} ({type(value).__name__}).")
    value = int(value)
    if minimum is not None and value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer ≥ {minimum}"
        raise ValueError(f"`{name}` must be {what}, got {value}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"`{name}` must be an integer ≤ {maximum}, got {value}.")
    return value


def check_number(
    name: str,
    value,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Check that ``value`` is a finite real number within the given bounds; return a ``float``.

    ``low_open`` / ``high_open`` exclude the bound itself (``low=0, low_open=True``: positive).
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number, got {value!r} ({type(value).__name__}).")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"`{name}` must be finite, got {value}.")
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ValueError(f"`{name}` must lie in {left}{lo}, {hi}{right}, got {value:g}.")
    return value


def check_choice(name: str, value, choices: Collection):
    """Check that ``value`` is one of ``choices``; return it."""
    if isinstance(value, str | int | float | type(None)) and value in choices:
        return value
    options = ", ".join(repr(c) for c in choices)
    raise ValueError(f"`{name}` must be one of {options}; got {value!r}.")


def _as_real_array(name: str, values) -> np.ndarray:
    array = np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values)
    if array.dtype.kind == "b" or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"`{name}` must hold real numbers, got dtype {array.dtype}.")
    if np.iscomplexobj(array):
        raise ValueError(f"`{name}` must hold real numbers, got complex values.")
    return array


def _check_rows(name: str, array: np.ndarray, n_obs: int | None, what: str, fix: str) -> None:
    """One row per observation (when ``n_obs`` is given), every row finite."""
    if n_obs is not None and array.shape[0] != n_obs:
        raise ValueError(
            f"`{name}` has {array.shape[0]} rows; expected one per observation ({n_obs})."
        )
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        raise ValueError(
            f"`{name}` has NaN or infinite {what} in {int(bad.sum())} rows "
            f"(first: row {int(np.flatnonzero(bad)[0])}){fix}."
        )


def check_array_coordinates(
    name: str, coords, n_dims: Collection[int] = (2, 3), n_obs: int | None = None
) -> np.ndarray:
    """Check an ``n × d`` array of finite coordinates (``d`` in ``n_dims``); return float64."""
    array = _as_real_array(name, coords)
    if array.ndim != 2 or array.shape[1] not in n_dims:
        raise ValueError(
            f"`{name}` has shape {array.shape}; expected n × d coordinates with d in "
            f"{tuple(n_dims)}."
        )
    array = array.astype(np.float64)
    _check_rows(name, array, n_obs, "coordinates", "")
    return array


def check_feature_matrix(name: str, values, n_obs: int | None = None) -> np.ndarray:
    """Check a finite ``n × F`` matrix of real numbers (``F ≥ 1``); return it (not copied)."""
    array = _as_real_array(name, values)
    if array.ndim != 2 or array.shape[1] == 0:
        raise ValueError(f"`{name}` has shape {array.shape}; expected an n × F matrix (F ≥ 1).")
    _check_rows(name, array, n_obs, "values", "; fix or remove those rows")
    return array


def check_distance_matrix(name: str, values, rtol: float = 1e-6) -> np.ndarray:
    """Check a dense dissimilarity matrix: square, finite, non-negative, symmetric.

    Returns it as float64. The diagonal is not inspected (self-dissimilarities never enter a
    stress). Symmetry is checked up to ``rtol`` times the largest entry.
    """
    d = _as_real_array(name, values).astype(np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"`{name}` must be a square n × n matrix, got shape {d.shape}.")
    if not np.isfinite(d).all():
        raise ValueError(
            f"`{name}` contains NaN or infinite values; impute them or give those pairs weight 0."
        )
    if (d < 0).any():
        i, j = np.argwhere(d < 0)[0]
        raise ValueError(f"`{name}` contains negative values (e.g. [{i}, {j}] = {d[i, j]:g}).")
    if not np.allclose(d, d.T, rtol=0.0, atol=rtol * max(1.0, float(np.abs(d).max()))):
        i, j = np.unravel_index(np.argmax(np.abs(d - d.T)), d.shape)
        raise ValueError(
            f"`{name}` must be symmetric: [{i}, {j}] = {d[i, j]:g} but [{j}, {i}] = {d[j, i]:g}; "
            "symmetrise it, e.g. `(d + d.T) / 2`."
        )
    return d


def check_mask(name: str, mask, n: int) -> np.ndarray:
    """Check a boolean mask of length ``n`` (one entry per observation); return it as bool."""
    array = np.asarray(mask)
    if array.dtype.kind != "b":
        raise ValueError(
            f"`{name}` must be a boolean mask, got dtype {array.dtype}; for row indices use a "
            "boolean array built with `np.isin` or `adata.obs_names.isin(...)`."
        )
    if array.shape != (n,):
        raise ValueError(
            f"`{name}` has shape {array.shape}; expected ({n},), one entry per observation."
        )
    return array


__all__ = [
    "check_array_coordinates",
    "check_choice",
    "check_distance_matrix",
    "check_feature_matrix",
    "check_int",
    "check_mask",
    "check_number",
]
