"""Human DLPFC 10x Visium sections (Maynard et al. 2021), read from a local path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from spatialvi._keys import OBS, OBSM
from spatialvi._validation import check_coordinates, check_counts
from spatialvi.datasets._files import read_h5ad
from spatialvi.datasets._paths import data_dir

DLPFC_SECTIONS = ("151507", "151508", "151673")
#: Label the spatialLIBD annotation uses for spots without a layer.
DLPFC_UNANNOTATED = "NA"


def dlpfc(section: str | os.PathLike = "151673", path: str | os.PathLike | None = None):
    """Read one DLPFC Visium section as AnnData.

    Parameters
    ----------
    section
        Sample id (``'151507'``, ``'151508'`` or ``'151673'`` in the shared data), or the path
        of a section's ``.h5ad`` file (``dlpfc("/data/dlpfc_151673.h5ad")``).
    path
        A ``.h5ad`` file, or a folder holding ``dlpfc_<section>.h5ad`` (directly or in a
        ``dlpfc/`` subfolder). By default the ``dlpfc/`` folder of
        :func:`spatialvi.datasets.data_dir` (``$SPATIALVI_DATA`` or ``../shared/data``).

    Returns
    -------
    :class:`~anndata.AnnData` with raw counts in ``X``, ``obsm['spatial']`` in µm and
    ``obs['layer']`` as a categorical whose unannotated spots (``'NA'`` in the file) are missing
    values, so that :func:`spatialvi.metrics.ari` and friends leave them out. No spot or gene is
    dropped or reordered.
    """
    if path is None and (isinstance(section, os.PathLike) or str(section).endswith(".h5ad")):
        section, path = Path(section).stem.removeprefix("dlpfc_"), Path(section)
        if not path.is_file():
            raise FileNotFoundError(f"DLPFC file {path} does not exist.")
    file = _resolve(section, path)
    adata = read_h5ad(file)
    check_counts(adata)
    check_coordinates(adata, OBSM.SPATIAL, n_dims=(2,))
    if OBS.LAYER not in adata.obs:
        raise KeyError(f"{file} has no obs[{OBS.LAYER!r}] annotation; is it a DLPFC section file?")
    layer = adata.obs[OBS.LAYER].astype(object)
    layer = layer.where(~layer.isin([DLPFC_UNANNOTATED]) & layer.notna(), None)
    categories = sorted(c for c in pd.unique(layer.dropna()))
    adata.obs[OBS.LAYER] = pd.Categorical(layer, categories=categories)
    adata.obsm[OBSM.SPATIAL] = np.asarray(adata.obsm[OBSM.SPATIAL], dtype=np.float64)
    adata.uns.setdefault("sample_id", section)
    return adata


def _resolve(section: str, path) -> Path:
    section = str(section)
    if path is not None and Path(path).is_file():
        return Path(path)
    root = Path(path) if path is not None else data_dir() / "dlpfc"
    for candidate in (root / f"dlpfc_{section}.h5ad", root / "dlpfc" / f"dlpfc_{section}.h5ad"):
        if candidate.is_file():
            return candidate
    available = sorted(p.stem.removeprefix("dlpfc_") for p in root.glob("dlpfc_*.h5ad"))
    raise FileNotFoundError(
        f"DLPFC section {section!r} not found in {root} (sections there: {available}). "
        "Pass `path=` pointing at the .h5ad file or its folder."
    )
