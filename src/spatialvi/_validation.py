"""Input validation shared by every model and tool: the one validation layer.

Each check raises :class:`KeyError` (a key is missing), :class:`TypeError` (an argument of the
wrong kind) or :class:`ValueError` (the data under a key is malformed) with a message that names
the key or argument, says what was expected and how to fix it. None of them modifies its input.

The checks of plain arguments and arrays (integers, numbers, choices, coordinate, feature and
distance matrices, masks) live in :mod:`spatialvi._checks`, below the pure building blocks
that need them too, and are re-exported here; code above the building blocks imports every
check from this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

if TYPE_CHECKING:
    from anndata import AnnData

from spatialvi._checks import (
    check_array_coordinates,
    check_choice,
    check_distance_matrix,
    check_feature_matrix,
    check_int,
    check_mask,
    check_number,
)
from spatialvi._keys import OBS, OBSM


def check_anndata(
    adata, name: str = "adata", min_obs: int = 1, purpose: str = "", min_vars: int = 1
) -> AnnData:
    """Check that ``adata`` is an AnnData with at least ``min_obs`` observations and
    ``min_vars`` variables (image models read ``obsm`` only: ``min_vars=0``).

    ``purpose`` completes the message of too few observations ("at least 2 are needed
    ``purpose``"), e.g. ``"to train SpaVAE"``.
    """
    from anndata import AnnData

    if not isinstance(adata, AnnData):
        raise TypeError(
            f"`{name}` must be an AnnData, got {type(adata).__name__}; read files with "
            "`anndata.read_h5ad` (or `spatialvi.datasets`)."
        )
    if adata.n_obs < min_obs:
        noun = "observation" if adata.n_obs == 1 else "observations"
        raise ValueError(
            f"`{name}` has {adata.n_obs} {noun}; at least {min_obs} are needed"
            + (f" {purpose}" if purpose else "")
            + "."
        )
    if adata.n_vars < min_vars:
        raise ValueError(f"`{name}` has no variables (adata.n_vars == 0).")
    return adata


def check_setup_anndata(adata, model: str, query: bool = False, needs_vars: bool = True) -> AnnData:
    """The AnnData check at the top of every ``setup_anndata``.

    Training needs at least two observations (a single spot, cell or image cannot be fitted);
    a ``query`` AnnData set up for a saved model (scvi-tools passes ``source_registry``) needs
    one. Expression models need genes (``needs_vars``); image models read ``obsm`` only.
    """
    min_vars = 1 if needs_vars else 0
    if query:
        return check_anndata(
            adata, min_obs=1, purpose=f"to set it up for a saved {model}", min_vars=min_vars
        )
    return check_anndata(
        adata,
        min_obs=2,
        purpose=(
            f"to train {model}, which cannot be fitted to a single observation; set up the "
            "whole data set (a trained model can encode any number of new observations)"
        ),
        min_vars=min_vars,
    )


def check_obs_column(adata: AnnData, key: str, argument: str) -> None:
    """Check that ``adata.obs[key]`` exists and has no missing values (``argument`` names the
    parameter that passed ``key``)."""
    if not isinstance(key, str):
        raise TypeError(f"`{argument}` must name a column of adata.obs, got {key!r}.")
    if key not in adata.obs:
        raise KeyError(
            f"`{argument}`={key!r} is not a column of adata.obs (columns: {list(adata.obs)})."
        )
    missing = adata.obs[key].isna()
    if missing.any():
        raise ValueError(
            f"adata.obs[{key!r}] (`{argument}`) has {int(missing.sum())} missing values "
            f"(first: {adata.obs_names[np.flatnonzero(missing.to_numpy())[0]]!r}); fill them."
        )


def check_obsm_key(adata: AnnData, key: str, argument: str, hint: str = "") -> np.ndarray:
    """Check that ``adata.obsm[key]`` exists (``argument`` names the parameter); return it."""
    if not isinstance(key, str) or key not in adata.obsm:
        raise KeyError(
            f"`{argument}`={key!r} is not a key of adata.obsm (keys: {list(adata.obsm)})."
            + (f" {hint}" if hint else "")
        )
    values = adata.obsm[key]
    return values.to_numpy() if hasattr(values, "to_numpy") else np.asarray(values)


def gene_order(reference, query, what: str = "the model") -> np.ndarray | None:
    """Positions of ``reference`` genes in ``query`` var_names (``None`` if already identical).

    Raises
    ------
    ValueError
        If some reference genes are missing from ``query`` (the first ones are named) or
        ``query`` has duplicated gene names.
    """
    import pandas as pd

    reference, query = pd.Index(reference), pd.Index(query)
    if reference.equals(query):
        return None
    if not query.is_unique:
        dup = list(query[query.duplicated()][:5])
        raise ValueError(
            f"The query's var_names are not unique (e.g. {dup}); call `adata.var_names_make_unique()`."
        )
    missing = reference.difference(query, sort=False)
    if len(missing):
        raise ValueError(
            f"The query lacks {len(missing)} of the {len(reference)} genes of {what} "
            f"(e.g. {list(missing[:5])}); subset or pad it to the training genes."
        )
    return query.get_indexer(reference)


def _describe(layer: str | None) -> str:
    return "adata.X" if layer is None else f"adata.layers[{layer!r}]"


def get_matrix(adata: AnnData, layer: str | None = None):
    """Return ``adata.X`` or ``adata.layers[layer]``, raising a helpful error if absent."""
    if layer is None:
        if adata.X is None:
            raise KeyError(
                "adata.X is empty; store counts in adata.X or pass `layer=` naming a layer."
            )
        return adata.X
    if not isinstance(layer, str) or layer not in adata.layers:
        raise KeyError(
            f"`layer`={layer!r} not found in adata.layers (layers: {list(adata.layers)}); "
            "pass `layer=None` to use adata.X, or the name of an existing layer (for the "
            "models: the one holding raw counts)."
        )
    return adata.layers[layer]


def _matrix_values(adata: AnnData, layer: str | None) -> np.ndarray:
    x = get_matrix(adata, layer)
    return x.data if sparse.issparse(x) else np.asarray(x)


def check_expression(adata: AnnData, layer: str | None = None) -> None:
    """Check that ``adata.X`` (or ``adata.layers[layer]``) holds finite real numbers.

    Counts as well as normalised or log-transformed values pass; strings, objects, booleans,
    NaN and infinities do not (see :func:`check_counts` for raw counts).
    """
    values = _matrix_values(adata, layer)
    where = _describe(layer)
    if values.dtype.kind not in "iuf":
        raise ValueError(
            f"{where} has dtype {values.dtype}; expected numbers (counts or normalised "
            "expression). Convert it with `.astype(np.float32)` after fixing non-numeric entries."
        )
    if values.dtype.kind == "f" and values.size and not np.isfinite(values).all():
        raise ValueError(
            f"{where} contains NaN or infinite values; fix or remove those observations or genes."
        )


def check_counts(adata: AnnData, layer: str | None = None) -> None:
    """Check that ``adata.X`` (or ``adata.layers[layer]``) holds raw counts.

    Raw counts are finite, non-negative and integral; any integer dtype or integral floats,
    dense or sparse, are accepted.

    Raises
    ------
    KeyError
        If the layer does not exist.
    ValueError
        If values are negative, non-finite or not integers.
    """
    values = _matrix_values(adata, layer)
    where = _describe(layer)
    fix = "Pass raw UMI counts (e.g. `layer='counts'`), not normalised or log-transformed values."
    if values.dtype.kind == "b":
        raise ValueError(f"{where} is boolean; expected raw integer counts. {fix}")
    if values.dtype.kind not in "iuf":
        raise ValueError(f"{where} has dtype {values.dtype}; expected raw integer counts. {fix}")
    if values.size == 0:
        return
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{where} contains NaN or infinite values; expected raw counts. {fix}")
        if not np.all(values == np.round(values)):
            raise ValueError(f"{where} contains non-integer values; expected raw counts. {fix}")
    if values.min() < 0:
        raise ValueError(f"{where} contains negative values; expected raw counts. {fix}")


def check_coordinates(
    adata: AnnData,
    key: str = OBSM.SPATIAL,
    n_dims: tuple[int, ...] = (2, 3),
    allow_duplicates: bool = True,
) -> np.ndarray:
    """Check spot/cell coordinates in ``adata.obsm[key]`` and return them as float64.

    Parameters
    ----------
    adata
        Annotated data.
    key
        Key in ``adata.obsm`` holding an ``n_obs × d`` array of coordinates.
    n_dims
        Accepted numbers of columns ``d``.
    allow_duplicates
        If ``False``, two observations at the same position are an error.
    """
    if key not in adata.obsm:
        raise KeyError(
            f"Coordinates not found: adata.obsm[{key!r}] is missing (available: {list(adata.obsm)}). "
            "Store spot coordinates as an n_obs × 2 array there (squidpy convention) or pass the "
            "right `spatial_key=`."
        )
    coords = adata.obsm[key]
    coords = np.asarray(coords.to_numpy() if hasattr(coords, "to_numpy") else coords)
    if coords.ndim != 2 or coords.shape[1] not in n_dims:
        raise ValueError(
            f"adata.obsm[{key!r}] has shape {coords.shape}; expected (n_obs, d) with d in {n_dims}."
        )
    if coords.dtype.kind not in "iuf":
        raise ValueError(f"adata.obsm[{key!r}] has dtype {coords.dtype}; expected numbers.")
    coords = coords.astype(np.float64)
    bad = ~np.isfinite(coords).all(axis=1)
    if bad.any():
        names = list(adata.obs_names[bad][:5])
        raise ValueError(
            f"adata.obsm[{key!r}] has NaN or infinite coordinates for {int(bad.sum())} observations "
            f"(e.g. {names}); fix or remove those observations before setup."
        )
    if not allow_duplicates:
        _, inverse, counts = np.unique(coords, axis=0, return_inverse=True, return_counts=True)
        dup = counts[inverse.ravel()] > 1
        if dup.any():
            names = list(adata.obs_names[dup][:5])
            raise ValueError(
                f"adata.obsm[{key!r}] has {int(dup.sum())} observations sharing a position "
                f"(e.g. {names}); each observation needs its own coordinates."
            )
    return coords


def check_images(adata: AnnData, key: str = OBSM.IMAGE) -> np.ndarray:
    """Check ``adata.obsm[key]`` is an ``n × C × H × W`` finite float32 image stack."""
    if key not in adata.obsm:
        raise KeyError(
            f"Images not found: adata.obsm[{key!r}] is missing. Store images as an "
            "n_obs × C × H × W float32 array there, e.g. with `spatialvi.pp.tile_image`."
        )
    images = np.asarray(adata.obsm[key])
    if images.ndim != 4:
        raise ValueError(
            f"adata.obsm[{key!r}] has shape {images.shape}; expected n_obs × C × H × W "
            "(add a channel axis for greyscale images: `images[:, None]`)."
        )
    if images.dtype != np.float32:
        raise ValueError(
            f"adata.obsm[{key!r}] has dtype {images.dtype}; expected float32 "
            "(convert with `.astype(np.float32)`, scaled to [0, 1])."
        )
    if not np.isfinite(images).all():
        raise ValueError(f"adata.obsm[{key!r}] contains NaN or infinite pixels.")
    return images


def check_features(adata: AnnData, key: str) -> np.ndarray:
    """Check ``adata.obsm[key]`` is a finite ``n × F`` feature matrix (F ≥ 1); returns it."""
    if key not in adata.obsm:
        raise KeyError(
            f"Features not found: adata.obsm[{key!r}] is missing. Compute them with "
            "`spatialvi.pp.extract_features` (or store any n_obs × F matrix there) and pass "
            "its key as `features_key`."
        )
    features = adata.obsm[key]
    features = features.to_numpy() if hasattr(features, "to_numpy") else np.asarray(features)
    return check_feature_matrix(f"adata.obsm[{key!r}]", features, n_obs=adata.n_obs)


def check_points(
    adata: AnnData,
    key: str = OBSM.POINTS,
    image_key: str = OBSM.IMAGE,
    count_key: str = OBS.N_POINTS,
    samples: bool = False,
) -> np.ndarray:
    """Check NaN-padded point sets ``adata.obsm[key]`` (n × K_max × 2 float32, image units).

    Each row holds the points of one image first and NaN padding after; coordinates lie in the
    window ``[0, W/s] × [0, H/s]`` with ``s = max(H, W)``; ``adata.obs[count_key]``, if present,
    equals the number of non-padded rows. ``samples``: the array holds several patterns per
    image, ``n × S × K_max × 2`` (as :func:`spatialvi.tl.simulate_points` writes), each checked
    the same way (``count_key`` is then not compared).
    """
    if key not in adata.obsm:
        raise KeyError(
            f"Point sets not found: adata.obsm[{key!r}] is missing. Store them as an "
            "n_obs × K_max × 2 float32 array padded with NaN (see `spatialvi.pp.tile_image`) "
            "or detect them with `spatialvi.pp.detect_points`."
        )
    points = np.asarray(adata.obsm[key])
    ndim, layout = (4, "n_obs × n_samples × K_max × 2") if samples else (3, "n_obs × K_max × 2")
    if points.ndim != ndim or points.shape[-1] != 2:
        raise ValueError(
            f"adata.obsm[{key!r}] has shape {points.shape}; expected {layout} (x, y)"
            + (", as `spatialvi.tl.simulate_points` writes." if samples else ".")
        )
    if points.dtype != np.float32:
        raise ValueError(f"adata.obsm[{key!r}] has dtype {points.dtype}; expected float32.")
    nan = np.isnan(points)
    if (nan[..., 0] != nan[..., 1]).any():
        raise ValueError(f"adata.obsm[{key!r}] has points with one NaN coordinate; pad whole rows.")
    present = ~nan[..., 0]
    n_points = present.sum(axis=-1)
    # Padding must come after the points: row k is present only if all rows before it are.
    if (present != (np.arange(points.shape[-2]) < n_points[..., None])).any():
        raise ValueError(f"adata.obsm[{key!r}]: NaN padding must follow the points of each row.")
    if np.isinf(points).any():
        raise ValueError(f"adata.obsm[{key!r}] contains infinite coordinates.")
    if image_key in adata.obsm:
        h, w = np.asarray(adata.obsm[image_key]).shape[-2:]
        s = max(h, w)
        xs, ys = points[..., 0][present], points[..., 1][present]
        if (xs < 0).any() or (ys < 0).any() or (xs > w / s).any() or (ys > h / s).any():
            raise ValueError(
                f"adata.obsm[{key!r}] has points outside the window [0, {w / s:g}] × [0, {h / s:g}]; "
                "convert pixel positions with `spatialvi.pp.pixels_to_points`."
            )
    if count_key in adata.obs and not samples:
        counts = np.asarray(adata.obs[count_key])
        if not np.array_equal(counts, n_points):
            raise ValueError(
                f"adata.obs[{count_key!r}] does not match the number of points per row of "
                f"adata.obsm[{key!r}]; recompute it as `(~np.isnan(points[..., 0])).sum(1)`."
            )
    return points


# -- single point patterns (arrays, not AnnData) ------------------------------------------------
def check_window(window) -> tuple[float, float, float, float]:
    """Check a rectangular window ``(x_min, x_max, y_min, y_max)`` and return it as floats."""
    try:
        values = tuple(float(v) for v in window)
    except (TypeError, ValueError):
        raise ValueError(
            f"`window` must be (x_min, x_max, y_min, y_max), got {window!r}."
        ) from None
    if len(values) != 4 or not np.isfinite(values).all():
        raise ValueError(
            f"`window` must be four finite numbers (x_min, x_max, y_min, y_max), got {window!r}."
        )
    x_min, x_max, y_min, y_max = values
    if not (x_max > x_min and y_max > y_min):
        raise ValueError(
            f"`window` {window!r} is empty: need x_min < x_max and y_min < y_max "
            "(the order is (x_min, x_max, y_min, y_max))."
        )
    return values


def check_pattern(points, window, name: str = "points") -> np.ndarray:
    """Check one point pattern in a window; return its points as an ``n × 2`` float64 array.

    Rows that are NaN in both coordinates are the padding of the ``obsm['points']`` convention
    and are not points; a row with one NaN, an infinite coordinate or a point outside the
    window is an error (nothing is dropped silently). Zero points is a valid pattern.
    """
    x_min, x_max, y_min, y_max = check_window(window)
    pts = np.asarray(points, dtype=np.float64)
    if pts.size == 0:
        return np.zeros((0, 2))
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"`{name}` must be an n × 2 array of (x, y); got shape {pts.shape}.")
    nan = np.isnan(pts)
    if (nan[:, 0] != nan[:, 1]).any():
        raise ValueError(
            f"`{name}` has {int((nan[:, 0] != nan[:, 1]).sum())} row(s) with one NaN coordinate; "
            "NaN marks padding and must fill whole rows."
        )
    pts = pts[~nan[:, 0]]
    if np.isinf(pts).any():
        raise ValueError(f"`{name}` contains infinite coordinates.")
    outside = (pts[:, 0] < x_min) | (pts[:, 0] > x_max) | (pts[:, 1] < y_min) | (pts[:, 1] > y_max)
    if outside.any():
        first = pts[np.flatnonzero(outside)[0]]
        raise ValueError(
            f"`{name}` has {int(outside.sum())} point(s) outside the window "
            f"[{x_min:g}, {x_max:g}] × [{y_min:g}, {y_max:g}] (e.g. ({first[0]:g}, {first[1]:g})); "
            "pass the window the pattern was observed in, or convert pixel positions with "
            "`spatialvi.pp.pixels_to_points`."
        )
    return pts


def check_radii(radii, window, name: str = "radii", max_fraction: float = 0.5) -> np.ndarray:
    """Check distances ``radii``: finite, ≥ 0, increasing, at most ``max_fraction`` of the shorter side."""
    x_min, x_max, y_min, y_max = check_window(window)
    r = np.atleast_1d(np.asarray(radii, dtype=np.float64))
    if r.ndim != 1 or r.size == 0:
        raise ValueError(f"`{name}` must be a non-empty 1-D array of distances.")
    if not np.isfinite(r).all() or (r < 0).any():
        raise ValueError(f"`{name}` must be finite and non-negative.")
    if (np.diff(r) <= 0).any():
        raise ValueError(f"`{name}` must be strictly increasing.")
    limit = max_fraction * min(x_max - x_min, y_max - y_min)
    if r[-1] > limit:
        raise ValueError(
            f"`{name}` reaches {r[-1]:g}, beyond the window: edge corrections need distances up "
            f"to {max_fraction:g} of the shorter window side ({limit:g}); spatstat's default is "
            "¼ of it."
        )
    return r


def check_interaction_range(R, window) -> float:
    """``R`` must lie in ``(0, ½ of the shorter side of window)``."""
    x_min, x_max, y_min, y_max = check_window(window)
    half = 0.5 * min(x_max - x_min, y_max - y_min)
    R = float(R)
    if not (0 < R < half):
        raise ValueError(
            f"The interaction range `R` = {R!r} must lie in (0, {half:g}): above 0 and below "
            "half the shorter window side, so that the eroded window is not empty."
        )
    return R


__all__ = [
    "check_anndata",
    "check_array_coordinates",
    "check_choice",
    "check_coordinates",
    "check_counts",
    "check_distance_matrix",
    "check_expression",
    "check_feature_matrix",
    "check_features",
    "check_images",
    "check_int",
    "check_interaction_range",
    "check_mask",
    "check_number",
    "check_obs_column",
    "check_obsm_key",
    "check_pattern",
    "check_points",
    "check_radii",
    "check_setup_anndata",
    "check_window",
    "gene_order",
    "get_matrix",
]
