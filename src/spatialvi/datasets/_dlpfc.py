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
    if path is None and _is_file_name(section):
        section, path = Path(section).stem.removeprefix("dlpfc_"), Path(section)
        if not path.is_file():
            where = "is a folder" if path.is_dir() else "does not exist"
            raise FileNotFoundError(
                f"DLPFC file {path} {where}; pass the path of a section's .h5ad file, or a "
                f"section id ({', '.join(DLPFC_SECTIONS)}) with `path=` naming its folder."
            )
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


def _is_file_name(section) -> bool:
    """Whether ``section`` names a file (a path, or a name with an extension) not a sample id."""
    if isinstance(section, os.PathLike):
        return True
    text = str(section)
    return bool(Path(text).suffix) or "/" in text or os.sep in text


def _resolve(section: str, path) -> Path:
    section = str(section)
    if path is not None and Path(path).is_file():
        return Path(path)
    if path is not None and not Path(path).exists():
        raise FileNotFoundError(
            f"`path`={str(path)!r} does not exist; pass a DLPFC section's .h5ad file or the "
            "folder holding dlpfc_<section>.h5ad."
        )
    root = Path(path) if path is not None else data_dir() / "dlpfc"
    if not root.is_dir():
        raise FileNotFoundError(
            f"The DLPFC folder {root} does not exist; pass `path=` naming the folder holding "
            "dlpfc_<section>.h5ad (or the file itself)."
        )
    for candidate in (root / f"dlpfc_{section}.h5ad", root / "dlpfc" / f"dlpfc_{section}.h5ad"):
        if candidate.is_file():
            return candidate
    available = sorted(p.stem.removeprefix("dlpfc_") for p in root.glob("dlpfc_*.h5ad"))
    raise FileNotFoundError(
        f"DLPFC section {section!r} not found in {root} (sections there: {available}). "
        "Pass `path=` pointing at the .h5ad file or its folder."
    )
