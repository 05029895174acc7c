"""smFISH crops with expert spot annotations (czbiohub instapipeline; Jenny et al. 2021)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from spatialvi.datasets._paths import data_dir

SMFISH_CROPS = ("tfrc_300", "tfrc_500", "tfrc_700")


class SmFishCrop(NamedTuple):
    """One annotated crop: greyscale image in [0, 1] and expert spot centres."""

    image: np.ndarray
    """``H × W`` float32 image scaled to [0, 1] (8-bit values / 255)."""
    spots: np.ndarray
    """``n × 2`` float64 spot centres as 0-based pixel positions ``(col, row)``."""


def smfish(
    path: str | os.PathLike | None = None,
    crops: tuple[str, ...] = SMFISH_CROPS,
    tile_size: int | None = None,
    stride: int | None = None,
):
    """Read the smFISH crops with their expert annotations.

    The annotation files hold 1-based pixel positions (``col,row``); they are converted to
    0-based positions here.

    Parameters
    ----------
    path
        Folder holding ``<crop>.png`` and ``<crop>_spots.csv``; by default ``smfish/`` in
        :func:`spatialvi.datasets.data_dir`.
    crops
        Which crops to read.
    tile_size, stride
        If ``tile_size`` is given, return every crop cut into tiles by
        :func:`spatialvi.pp.tile_image` and concatenated into one AnnData (``obs['source']``
        names the crop); otherwise a dict of :class:`SmFishCrop` by crop name.
    """
    from skimage.io import imread

    if isinstance(crops, str):
        crops = (crops,)
    if not crops:
        raise ValueError(f"`crops` is empty; name at least one of {SMFISH_CROPS}.")
    root = Path(path) if path is not None else data_dir() / "smfish"
    if not root.is_dir():
        what = "is a file" if root.exists() else "does not exist"
        raise FileNotFoundError(
            f"The smFISH folder {root} {what}; pass `path=` naming the folder holding the crops "
            f"(<crop>.png and <crop>_spots.csv for each of {list(crops)})."
        )
    if (root / "smfish").is_dir() and not (root / f"{crops[0]}.png").exists():
        root = root / "smfish"
    out: dict[str, SmFishCrop] = {}
    for name in crops:
        image_file, spots_file = root / f"{name}.png", root / f"{name}_spots.csv"
        for file in (image_file, spots_file):
            if not file.is_file():
                raise FileNotFoundError(
                    f"{file} not found; pass `path=` to the folder holding the smFISH crops "
                    f"(expected files {name}.png and {name}_spots.csv)."
                )
        image = imread(image_file)
        if image.ndim == 3:  # an RGB(A) export of a greyscale image
            image = image[..., :3].mean(axis=-1)
        scale = (
            255.0
            if image.dtype == np.uint8
            else float(np.iinfo(image.dtype).max)
            if image.dtype.kind in "ui"
            else 1.0
        )
        table = np.loadtxt(spots_file, delimiter=",", skiprows=1, ndmin=2)
        out[name] = SmFishCrop(image.astype(np.float32) / scale, table[:, :2] - 1.0)
    if tile_size is None:
        return out

    import anndata as ad

    from spatialvi._keys import OBS, UNS
    from spatialvi.pp import tile_image

    tiles = []
    for name, crop in out.items():
        tile = tile_image(crop.image, tile_size, stride=stride, points=crop.spots)
        tile.obs[OBS.SOURCE] = name
        tile.obs_names = [f"{name}_{i}" for i in tile.obs_names]
        tiles.append(tile)
    # Tile geometry is shared; source shapes differ per crop and are not kept.
    uns = {k: tiles[0].uns[UNS.IMAGE][k] for k in ("scale", "window", "tile_size", "stride")}
    joined = ad.concat(tiles, axis=0, merge="same")
    joined = _pad_points(joined, tiles)
    joined.uns[UNS.IMAGE] = uns
    return joined


def _pad_points(joined, tiles):
    """ad.concat cannot join NaN-padded point arrays of different K_max: pad them to one."""
    from spatialvi._keys import OBSM

    k_max = max(t.obsm[OBSM.POINTS].shape[1] for t in tiles)
    padded = []
    for t in tiles:
        p = t.obsm[OBSM.POINTS]
        pad = np.full((p.shape[0], k_max - p.shape[1], 2), np.nan, dtype=np.float32)
        padded.append(np.concatenate([p, pad], axis=1))
    joined.obsm[OBSM.POINTS] = np.concatenate(padded, axis=0)
    joined.obsm[OBSM.IMAGE] = np.concatenate([t.obsm[OBSM.IMAGE] for t in tiles], axis=0)
    return joined
