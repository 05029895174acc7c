"""Every AnnData key and scvi-tools registry key spatialvi reads or writes, defined once.

Models, tools and plots import names from here instead of spelling string literals, so a
key is renamed in one place and the documentation (``docs/conventions.md``) lists them all.
"""

from __future__ import annotations

from typing import NamedTuple

#: Prefix of latent representations in ``obsm`` (scanpy's ``X_pca``, ``X_umap``).
LATENT_PREFIX = "X_"


class _ModelNames(NamedTuple):
    """Names of the models: the stems of their default output keys (see :func:`model_keys`)."""

    SPAVAE: str = "spavae"
    SPALDVAE: str = "spaldvae"
    DPVAE: str = "dpvae"
    SIVAE: str = "sivae"
    ADAGVAE: str = "adagvae"


class _ObsmKeys(NamedTuple):
    SPATIAL: str = "spatial"
    IMAGE: str = "image"
    POINTS: str = "points"
    POINTS_DETECTED: str = "points_detected"
    POINTS_SIMULATED: str = "points_simulated"
    X_SPAVAE: str = "X_spavae"
    X_SPALDVAE: str = "X_spaldvae"
    X_DPVAE: str = "X_dpvae"
    X_SIVAE: str = "X_sivae"
    X_ADAGVAE: str = "X_adagvae"
    X_DINO: str = "X_dino"
    X_RAW: str = "X_raw"
    X_HANDCRAFTED: str = "X_handcrafted"
    X_PCA: str = "X_pca"
    X_UMAP: str = "X_umap"
    REP: str = "rep"


class _ObsKeys(NamedTuple):
    DOMAIN: str = "domain"
    SECTION: str = "section"
    LAYER: str = "layer"
    N_POINTS: str = "n_points"
    N_POINTS_DETECTED: str = "n_points_detected"
    LABEL: str = "label"
    SIZE_FACTOR: str = "size_factor"
    TILE_ROW: str = "tile_row"
    TILE_COL: str = "tile_col"
    SOURCE: str = "source"
    SPAVAE_CLUSTER: str = "spavae_cluster"
    PARENT_SPOT: str = "parent_spot"
    PCA_KMEANS: str = "pca_kmeans"
    LEIDEN: str = "leiden"
    PAIR_ID: str = "pair_id"
    PAIR_MEMBER: str = "pair_member"
    CELL_TYPE: str = "cell_type"
    BOX_XMIN: str = "box_xmin"
    BOX_YMIN: str = "box_ymin"
    BOX_XMAX: str = "box_xmax"
    BOX_YMAX: str = "box_ymax"
    BOX_WIDTH: str = "box_width"
    BOX_HEIGHT: str = "box_height"


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
    POINT_PATTERNS: str = "point_patterns"
    DETECT_POINTS: str = "detect_points"
    SIMULATE_POINTS: str = "simulate_points"
    TEXTURE_DSPRITES: str = "texture_dsprites"
    DINO: str = "dino"
    RAW: str = "raw"
    HANDCRAFTED: str = "handcrafted"
    BCCD: str = "bccd"


class _ObspKeys(NamedTuple):
    SPATIAL_CONNECTIVITIES: str = "spatial_connectivities"


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
    FEATURES_KEY: str = "features"
    PAIR_KEY: str = "pair"
    INDICES_KEY: str = "ind_x"
    #: Not registered: flat positions (row-major, sorted) of the non-zero entries of a
    #: minibatch's ``X``, carried by the in-memory loader's batches of sparse counts so that the
    #: NB likelihood need not search for them.
    X_NONZERO_KEY: str = "X_nonzero"
    #: Not registered: SIVAE's pair features of the points at the points and at the quadrature
    #: points (constant per image), derived once by the in-memory loader.
    PAIR_FEATURES_DATA_KEY: str = "pair_features_data"
    PAIR_FEATURES_DUMMY_KEY: str = "pair_features_dummy"


MODEL = _ModelNames()
OBSM = _ObsmKeys()
OBS = _ObsKeys()
VAR = _VarKeys()
LAYERS = _LayerKeys()
UNS = _UnsKeys()
OBSP = _ObspKeys()
REGISTRY_KEYS = _RegistryKeys()

#: Missing annotations (e.g. DLPFC's unannotated spots) are stored as this pandas missing value.
UNLABELLED = None


# -- keys derived from `key_added` ------------------------------------------------------------
class ModelKeys(NamedTuple):
    """Where a model's :meth:`write_outputs` writes."""

    latent: str
    """``obsm`` key of the latent representation."""
    denoised: str
    """``layers`` key of the denoised values."""
    uns: str
    """``uns`` key of the run parameters."""


def _check_key_added(key_added) -> None:
    if key_added is not None and (not isinstance(key_added, str) or not key_added):
        raise ValueError(f"`key_added` must be a non-empty string or None, got {key_added!r}.")


def key_stem(key: str) -> str:
    """``key`` without a leading ``X_`` (``'X_spavae'`` → ``'spavae'``)."""
    return key[len(LATENT_PREFIX) :] if key.startswith(LATENT_PREFIX) else key


def latent_key(model_name: str) -> str:
    """Default ``obsm`` key of a model's latent: ``'X_<model_name>'``."""
    return f"{LATENT_PREFIX}{model_name}"


def model_keys(model_name: str, key_added: str | None = None) -> ModelKeys:
    """Output keys of a model from ``key_added``.

    ``key_added=None`` gives ``obsm['X_<model>']``, ``layers['<model>_denoised']`` and
    ``uns['<model>']``; a string ``k`` gives ``obsm[k]``, ``layers['<stem>_denoised']`` and
    ``uns['<stem>']`` with ``stem`` = ``k`` without a leading ``X_`` (so ``'X_spavae'`` and
    ``None`` name the same keys for SpaVAE).
    """
    _check_key_added(key_added)
    latent = latent_key(model_name) if key_added is None else key_added
    stem = key_stem(latent)
    return ModelKeys(latent, f"{stem}_denoised", stem)


class SvgKeys(NamedTuple):
    """Where :func:`spatialvi.tl.spatially_variable_genes` writes."""

    score: str
    rank: str
    pval: str
    uns: str


def svg_keys(key_added: str | None = None) -> SvgKeys:
    """``var['spatial_score' | 'svg_rank' | 'svg_pval']`` and ``uns['svg']``, or ``k_*``/``k``."""
    _check_key_added(key_added)
    if key_added is None:
        return SvgKeys(VAR.SPATIAL_SCORE, VAR.SVG_RANK, VAR.SVG_PVAL, UNS.SVG)
    return SvgKeys(f"{key_added}_score", f"{key_added}_rank", f"{key_added}_pval", key_added)


def cluster_key(use_rep: str) -> str:
    """Default ``obs`` column of clusters of ``obsm[use_rep]``: ``'<stem>_cluster'``."""
    return f"{key_stem(use_rep)}_cluster"


def reconstruction_uns_key(key_added: str) -> str:
    """``uns`` key of a spatial reconstruction written to ``obsm[key_added]``."""
    return f"reconstruct_{key_added}"


def points_count_key(points_key: str) -> str:
    """``obs`` column counting the points of ``obsm[points_key]``.

    ``'points'`` → ``'n_points'``; any other key ``k`` → ``'n_<k>'`` (so detected points in
    ``obsm['points_detected']`` are counted in ``obs['n_points_detected']``).
    """
    return OBS.N_POINTS if points_key == OBSM.POINTS else f"n_{points_key}"


def demo_key(kind: str, name: str) -> str:
    """Key of a demo's per-model output, e.g. ``demo_key('spatial', 'dpvae')`` → ``'spatial_dpvae'``."""
    return f"{kind}_{name}"


#: Latent keys of the package's models (what :func:`spatialvi.tl.cluster` looks for).
MODEL_LATENTS = tuple(latent_key(name) for name in MODEL)
