"""Reading a user's AnnData file with an error that says what is wrong with it."""

from __future__ import annotations

import os
from pathlib import Path


def read_h5ad(path: str | os.PathLike):
    """Read an ``.h5ad`` file, raising a clear error when it is missing or not an AnnData.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (or is a folder).
    ValueError
        If the file is not an HDF5 AnnData file (a CSV, a loom, a truncated write, ...).
    """
    import anndata as ad

    path = Path(path)
    if not path.is_file():
        where = "is a folder" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"{path} {where}; pass the path of an .h5ad file.")
    with open(path, "rb") as handle:
        signature = handle.read(8)
    if signature != b"\x89HDF\r\n\x1a\n":
        raise ValueError(
            f"{path} is not an AnnData .h5ad file (it is not HDF5); convert it with anndata "
            "(e.g. `anndata.read_csv`, `scanpy.read_10x_h5`) and `adata.write_h5ad`."
        )
    try:
        return ad.read_h5ad(path)
    except Exception as err:  # h5py/anndata raise many types for a malformed file
        raise ValueError(
            f"{path} is an HDF5 file but not a readable AnnData ({type(err).__name__}: {err})."
        ) from err
