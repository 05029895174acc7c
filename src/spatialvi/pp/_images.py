"""Tiling large images into AnnData crops (pixel ↔ point conventions: :mod:`spatialvi.geometry`).

Convention (SPEC): an image of ``H × W`` pixels has scale ``s = max(H, W)``; a position at
0-based pixel ``(col, row)`` maps to ``x = (col + 0.5)/s`` (to the right) and
``y = (row + 0.5)/s`` (down), so pixel centres sit at half-integers and the observation
window is ``[0, W/s] × [0, H/s]`` (the unit square for a square image).
"""

from __future__ import annotations

import numpy as np

from spatialvi._keys import OBS, OBSM, UNS
from spatialvi.geometry._image_frames import _as_positions, image_scale, image_window


def _channels_first(image: np.ndarray, channel_axis: int | None) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        if channel_axis is not None:
            raise ValueError("`channel_axis` was given but `image` is 2-D (H × W).")
        return image[None]
    if image.ndim == 3:
        axis = 0 if channel_axis is None else channel_axis
        return np.moveaxis(image, axis, 0)
    raise ValueError(
        f"`image` must be H × W or C × H × W (see `channel_axis`); got shape {image.shape}."
    )


def tile_image(
    image: np.ndarray,
    tile_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    points: np.ndarray | None = None,
    channel_axis: int | None = None,
):
    """Cut a large image (and optional point annotations) into an AnnData of crops.

    Tiles are taken on a regular grid with the given stride, starting at the top-left corner;
    only whole tiles are made, so a border narrower than a tile at the right or bottom is not
    covered (the covered extent is recorded in ``uns['image']``).

    Parameters
    ----------
    image
        ``H × W`` greyscale, or ``C × H × W`` (or channels on ``channel_axis``). Values are kept
        as given (cast to float32); scale them to [0, 1] beforehand if needed.
    tile_size
        Tile height and width in pixels (one int for square tiles).
    stride
        Step between tile origins; defaults to ``tile_size`` (non-overlapping tiles).
    points
        Optional ``n × 2`` array of 0-based pixel positions ``(col, row)`` (sub-pixel allowed).
        A point belongs to every tile whose pixel area contains it (tiles overlap when
        ``stride < tile_size``).
    channel_axis
        Axis of a 3-D ``image`` holding channels (default 0).

    Returns
    -------
    :class:`~anndata.AnnData` with one observation per tile: ``obsm['image']``
    (``n × C × h × w`` float32); ``obs['tile_row']``, ``obs['tile_col']`` (pixel origin); with
    ``points``: ``obsm['points']`` (``n × K_max × 2`` float32, NaN-padded, tile point units)
    and ``obs['n_points']``; ``uns['image']`` with scale, window, tile size, stride and the
    source shape. ``X`` is an empty ``n × 0`` matrix.
    """
    import anndata as ad
    import pandas as pd

    img = _channels_first(image, channel_axis).astype(np.float32)
    _, height, width = img.shape
    th, tw = (tile_size, tile_size) if np.isscalar(tile_size) else tuple(tile_size)
    sh, sw = (
        (th, tw) if stride is None else ((stride, stride) if np.isscalar(stride) else tuple(stride))
    )
    for name, value in (("tile_size", th), ("tile_size", tw), ("stride", sh), ("stride", sw)):
        if int(value) != value or value < 1:
            raise ValueError(f"`{name}` must be positive integers, got {value!r}.")
    if th > height or tw > width:
        raise ValueError(
            f"`tile_size` ({th} × {tw}) is larger than the image ({height} × {width})."
        )
    row0 = np.arange(0, height - th + 1, sh)
    col0 = np.arange(0, width - tw + 1, sw)
    origins = np.array([(r, c) for r in row0 for c in col0])
    # Strided view: (n_rows, n_cols, C, th, tw) without copying the whole image per tile.
    windows = np.lib.stride_tricks.sliding_window_view(img, (th, tw), axis=(1, 2))
    tiles = windows[:, origins[:, 0], origins[:, 1]].transpose(1, 0, 2, 3).copy()

    obs = pd.DataFrame(
        {OBS.TILE_ROW: origins[:, 0], OBS.TILE_COL: origins[:, 1]},
        index=[f"tile_{r}_{c}" for r, c in origins],
    )
    adata = ad.AnnData(X=np.zeros((len(origins), 0), dtype=np.float32), obs=obs)
    adata.obsm[OBSM.IMAGE] = tiles
    scale = image_scale(th, tw)
    adata.uns[UNS.IMAGE] = {
        "scale": scale,
        "window": list(image_window(th, tw)),
        "tile_size": [int(th), int(tw)],
        "stride": [int(sh), int(sw)],
        "source_shape": [int(height), int(width)],
        "covered_shape": [int(row0[-1] + th), int(col0[-1] + tw)],
    }
    if points is not None:
        pts = _as_positions(points, "points")
        # Pixel (c, r) covers [c − 0.5, c + 0.5): a tile holds positions in [c0 − 0.5, c0 + w − 0.5).
        local = pts[None, :, :] - origins[:, None, ::-1]
        inside = (
            (local >= -0.5).all(axis=2) & (local[..., 0] < tw - 0.5) & (local[..., 1] < th - 0.5)
        )
        n_points = inside.sum(axis=1)
        k_max = int(n_points.max()) if len(n_points) else 0
        padded = np.full((len(origins), k_max, 2), np.nan, dtype=np.float32)
        for i in np.flatnonzero(n_points):
            padded[i, : n_points[i]] = (local[i, inside[i]] + 0.5) / scale
        adata.obsm[OBSM.POINTS] = padded
        adata.obs[OBS.N_POINTS] = n_points.astype(np.int64)
    return adata
