"""Spot layouts: hexagonal grids, spot spacing and sub-spot offsets for resolution enhancement."""

from __future__ import annotations

import numpy as np

from spatialvi._checks import check_int


def hex_grid(n_spots: int, spot_distance: float = 100.0) -> np.ndarray:
    """Visium-like hexagonal grid of ``n_spots`` centres, roughly square, row-major order.

    Neighbouring spots are ``spot_distance`` apart: columns step by ``spot_distance``, rows by
    ``spot_distance·√3/2``, odd rows shifted by half a step.
    """
    check_int("n_spots", n_spots)
    row_step = spot_distance * np.sqrt(3) / 2
    n_cols = int(np.ceil(np.sqrt(n_spots * row_step / spot_distance)))
    n_rows = int(np.ceil(n_spots / n_cols))
    rows, cols = np.divmod(np.arange(n_rows * n_cols)[:n_spots], n_cols)
    x = cols * spot_distance + (rows % 2) * spot_distance / 2
    y = rows * row_step
    return np.column_stack([x, y])


def spot_distance(coords: np.ndarray) -> float:
    """Median distance from each spot to its nearest neighbour (the grid's spot spacing)."""
    from scipy.spatial import cKDTree

    coords = np.asarray(coords, dtype=np.float64)
    if len(coords) < 2:
        raise ValueError("At least two spots are needed to measure the spot distance.")
    dist, _ = cKDTree(coords).query(coords, k=2)
    return float(np.median(dist[:, 1]))


def subspot_offsets(factor: int, distance: float, include_centre: bool | None = None) -> np.ndarray:
    """Offsets of the sub-spots around a spot centre.

    A ``factor × factor`` square grid at ``((i + 0.5)/factor − 0.5)·distance`` in x and y. For
    ``factor=2`` this is the spaVAE paper's four points at ``(±d/4, ±d/4)``; the centre is added
    by default for even factors (the paper's fifth point), and is already on the grid for odd ones.
    """
    check_int("factor", factor)
    steps = ((np.arange(factor) + 0.5) / factor - 0.5) * distance
    grid = np.array([(dx, dy) for dy in steps for dx in steps])
    if include_centre is None:
        include_centre = factor % 2 == 0
    if include_centre and factor % 2 == 0:
        grid = np.vstack([grid, [0.0, 0.0]])
    return grid


def subspot_coordinates(
    coords: np.ndarray,
    factor: int = 2,
    distance: float | None = None,
    include_centre: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sub-spot coordinates around every spot and the index of the spot each belongs to.

    Parameters
    ----------
    coords
        ``n × 2`` spot centres.
    factor
        Resolution factor (see :func:`subspot_offsets`).
    distance
        Spot spacing ``d``; by default the median nearest-neighbour distance.
    include_centre
        Whether to add the spot centre for even factors (default: yes).

    Returns
    -------
    ``(points, parent)``: ``(n·k) × 2`` coordinates, spot by spot, and the parent spot of each.
    """
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f"`coords` must be n × 2, got shape {coords.shape}.")
    d = spot_distance(coords) if distance is None else float(distance)
    offsets = subspot_offsets(factor, d, include_centre)
    points = (coords[:, None, :] + offsets[None, :, :]).reshape(-1, 2)
    parent = np.repeat(np.arange(len(coords)), len(offsets))
    return points, parent
