"""Every AnnData key and scvi-tools registry key spatialvi reads or writes, defined once.

Models, tools and plots import names from here instead of spelling string literals, so a
key is renamed in one place and the documentation (``docs/conventions.md``) lists them all.
"""

from __future__ import annotations

from typing import NamedTuple


class _ObsmKeys(NamedTuple):
    SPATIAL: str = "spatial"
    IMAGE: str = "image"
    POINTS: str = "points"
    X_SPAVAE: str = "X_spavae"
    X_SPALDVAE: str = "X_spaldvae"
    X_DPVAE: str = "X_dpvae"
    X_SIVAE: str = "X_sivae"
    X_ADAGVAE: str = "X_adagvae"
    X_DINO: str = "X_dino"
    X_PCA: str = "X_pca"
    X_UMAP: str = "X_umap"


class _ObsKeys(NamedTuple):
    DOMAIN: str = "domain"
    SECTION: str = "section"
    LAYER: str = "layer"
    N_POINTS: str = "n_points"
    SIZE_FACTOR: str = "size_factor"
    TILE_ROW: str = "tile_row"
    TILE_COL: str = "tile_col"
    SOURCE: str = "source"
    SPAVAE_CLUSTER: str = "spavae_cluster"
    PARENT_SPOT: str = "parent_spot"
    INDICES: str = "_indices"


class _VarKeys(NamedTuple):
    SPATIALLY_VARIABLE: str = "spatially_variable"
    MARKER_OF: str = "marker_of"
    SPATIAL_SCORE: str = "spatial_score"
    SVG_RANK: str = "svg_rank"
    SVG_PVAL: str = "svg_pval"


class _LayerKeys(NamedTuple):
    TRUE_MEAN: str = "true_mean"
    SPAVAE_DENOISED: str = "spavae_denoised"
    SPALDVAE_DENOISED: str = "spaldvae_denoised"
    DPVAE_DENOISED: str = "dpvae_denoised"


class _UnsKeys(NamedTuple):
    SYNTHETIC_TISSUE: str = "synthetic_tissue"
    IMAGE: str = "image"
    SPAVAE: str = "spavae"
    SPALDVAE: str = "spaldvae"
    SVG: str = "svg"
    DPVAE: str = "dpvae"
    SIVAE: str = "sivae"
    ADAGVAE: str = "adagvae"
    RECONSTRUCT_SPATIAL: str = "reconstruct_spatial"


class _RegistryKeys(NamedTuple):
    """scvi-tools registry keys (the names tensors carry in a minibatch)."""

    X_KEY: str = "X"
    BATCH_KEY: str = "batch"
    LABELS_KEY: str = "labels"
    SPATIAL_KEY: str = "spatial"
    SIZE_FACTOR_KEY: str = "size_factor"
    POINTS_KEY: str = "points"
    IMAGE_KEY: str = "image"
    FACTORS_KEY: str = "factors"
    INDICES_KEY: str = "ind_x"


OBSM = _ObsmKeys()
OBS = _ObsKeys()
VAR = _VarKeys()
LAYERS = _LayerKeys()
UNS = _UnsKeys()
REGISTRY_KEYS = _RegistryKeys()

#: Missing annotations (e.g. DLPFC's unannotated spots) are stored as this pandas missing value.
UNLABELLED = None
