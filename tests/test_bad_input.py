"""Every public entry point refuses bad input with a message naming the key or argument.

One case per row of the table in ``docs/errors.md`` (entry point × bad input × error). The
data are tiny and synthetic, and no model is trained: each error fires at setup,
construction or call time, before any work is done.
"""

from __future__ import annotations

import functools
import warnings

import anndata as ad
import numpy as np
import pytest
from scipy import sparse
from scipy.spatial.distance import cdist

import spatialvi as sv
from helpers import train_quietly
from spatialvi._keys import OBS, OBSM
from spatialvi.model import DPVAE, SIVAE, AdaGVAE, SpaLDVAE, SpaVAE

LATENT = "X_latent"


# -- tiny inputs (built once, copied for every case) ---------------------------------------------
@functools.cache
def _tissue() -> ad.AnnData:
    return sv.sim.synthetic_tissue(n_spots=30, n_genes=10, random_state=0)


def tissue() -> ad.AnnData:
    return _tissue().copy()


def dense_counts() -> np.ndarray:
    x = _tissue().X
    return np.asarray(x.toarray() if sparse.issparse(x) else x)


def with_x(x) -> ad.AnnData:
    adata = tissue()
    adata.X = x
    return adata


def inf_counts() -> ad.AnnData:
    x = dense_counts().astype(np.float64)
    x[0, 0] = np.inf
    return with_x(x)


def str_counts() -> ad.AnnData:
    return with_x(dense_counts().astype(str))


def object_counts() -> ad.AnnData:
    return with_x(dense_counts().astype(object))


def points(n: int = 4) -> ad.AnnData:
    """``n`` blank 8 × 8 images with two points each (SIVAE's input layout)."""
    adata = ad.AnnData(np.zeros((n, 0), dtype=np.float32))
    adata.obsm[OBSM.IMAGE] = np.zeros((n, 1, 8, 8), dtype=np.float32)
    pts = np.full((n, 3, 2), np.nan, dtype=np.float32)
    pts[:, :2] = [[0.25, 0.25], [0.75, 0.5]]
    adata.obsm[OBSM.POINTS] = pts
    adata.obs[OBS.N_POINTS] = 2
    return adata


def features() -> ad.AnnData:
    adata = ad.AnnData(np.zeros((6, 0), dtype=np.float32))  # image models: no genes
    adata.obsm[OBSM.X_RAW] = np.random.default_rng(0).random((6, 4))
    adata.obs[OBS.PAIR_ID] = [0, 0, 1, 1, 2, 2]
    return adata


def features_with_obs(**columns) -> ad.AnnData:
    adata = features()
    for key, values in columns.items():
        adata.obs[key] = values
    return adata


def latent(nan_row: int | None = None) -> ad.AnnData:
    adata = tissue()
    adata.obsm[LATENT] = np.random.default_rng(1).normal(size=(adata.n_obs, 4))
    if nan_row is not None:
        adata.obsm[LATENT][nan_row, 1] = np.nan
    return adata


def without_coordinates() -> ad.AnnData:
    adata = latent()
    del adata.obsm[OBSM.SPATIAL]
    return adata


@functools.cache
def _distances() -> np.ndarray:
    x = np.random.default_rng(2).normal(size=(12, 2))
    return cdist(x, x)


def distances() -> np.ndarray:
    return _distances().copy()


def negative() -> np.ndarray:
    d = distances()
    d[0, 1] = d[1, 0] = -1.0
    return d


def asymmetric() -> np.ndarray:
    d = distances()
    d[0, 1] += 1.0
    return d


def with_nan() -> np.ndarray:
    d = distances()
    d[0, 1] = d[1, 0] = np.nan
    return d


def disconnected() -> sparse.csr_matrix:
    d = distances()
    return sparse.block_diag([sparse.csr_matrix(d[:6, :6]), sparse.csr_matrix(d[6:, 6:])]).tocsr()


def setup(model_cls, adata, **kwargs):
    model_cls.setup_anndata(adata, **kwargs)


def dpvae(adata=None, setup_kwargs=None, **kwargs):
    adata = tissue() if adata is None else adata
    DPVAE.setup_anndata(adata, **(setup_kwargs or {}))
    return DPVAE(adata, **kwargs)


def spavae(**kwargs):
    adata = tissue()
    SpaVAE.setup_anndata(adata)
    return SpaVAE(adata, **kwargs)


def reconstruct(adata=None, **kwargs):
    adata = latent() if adata is None else adata
    kwargs.setdefault("use_rep", LATENT)
    return sv.tl.reconstruct_spatial(adata, key_added="placed", **kwargs)


def names(*rows):
    return [_tissue().obs_names[i] for i in rows]


def write(tmp_path, name: str, text: str = "gene,count\nA,1\n"):
    path = tmp_path / name
    path.write_text(text)
    return path


ONE_SPOT = r"`adata` has 1 observation; at least 2 are needed to train {}, which cannot be fitted"
NO_SPOTS = r"`adata` has 0 observations; at least 2 are needed to train {}"

# (id, call, exception, message regex); `call` takes pytest's tmp_path.
CASES = [
    # 1. counts that are not raw counts
    (
        "spavae-inf-counts",
        lambda t: setup(SpaVAE, inf_counts()),
        ValueError,
        r"adata\.X contains NaN or infinite",
    ),
    (
        "spavae-str-counts",
        lambda t: setup(SpaVAE, str_counts()),
        ValueError,
        r"adata\.X has dtype <U\d+; expected raw integer counts",
    ),
    (
        "spavae-object-counts",
        lambda t: setup(SpaVAE, object_counts()),
        ValueError,
        r"adata\.X has dtype object",
    ),
    (
        "spaldvae-inf-counts",
        lambda t: setup(SpaLDVAE, inf_counts()),
        ValueError,
        r"adata\.X contains NaN or infinite",
    ),
    (
        "spaldvae-str-counts",
        lambda t: setup(SpaLDVAE, str_counts()),
        ValueError,
        r"adata\.X has dtype <U\d+",
    ),
    (
        "dpvae-inf-counts",
        lambda t: dpvae(inf_counts(), likelihood="nb"),
        ValueError,
        r"adata\.X contains NaN or infinite",
    ),
    (
        "dpvae-str-counts",
        lambda t: dpvae(str_counts(), likelihood="nb"),
        ValueError,
        r"adata\.X has dtype <U\d+; expected numbers",
    ),
    (
        "dpvae-normal-str",
        lambda t: dpvae(str_counts(), likelihood="normal"),
        ValueError,
        r"adata\.X has dtype <U\d+",
    ),
    (
        "dpvae-nb-logged",
        lambda t: dpvae(with_x(np.log1p(dense_counts())), likelihood="nb"),
        ValueError,
        r"adata\.X contains non-integer values",
    ),
    # 2. too few observations to train on
    (
        "spavae-empty",
        lambda t: setup(SpaVAE, tissue()[:0].copy()),
        ValueError,
        NO_SPOTS.format("SpaVAE"),
    ),
    (
        "spavae-one",
        lambda t: setup(SpaVAE, tissue()[:1].copy()),
        ValueError,
        ONE_SPOT.format("SpaVAE"),
    ),
    (
        "dpvae-empty",
        lambda t: setup(DPVAE, tissue()[:0].copy()),
        ValueError,
        NO_SPOTS.format("DPVAE"),
    ),
    (
        "dpvae-one",
        lambda t: setup(DPVAE, tissue()[:1].copy()),
        ValueError,
        ONE_SPOT.format("DPVAE"),
    ),
    (
        "sivae-empty",
        lambda t: setup(SIVAE, points()[:0].copy()),
        ValueError,
        NO_SPOTS.format("SIVAE"),
    ),
    (
        "sivae-one",
        lambda t: setup(SIVAE, points()[:1].copy()),
        ValueError,
        ONE_SPOT.format("SIVAE"),
    ),
    (
        "adagvae-empty",
        lambda t: setup(AdaGVAE, features()[:0].copy(), features_key=OBSM.X_RAW),
        ValueError,
        NO_SPOTS.format("AdaGVAE"),
    ),
    (
        "adagvae-one",
        lambda t: setup(AdaGVAE, features()[:1].copy(), features_key=OBSM.X_RAW, pair_key=None),
        ValueError,
        ONE_SPOT.format("AdaGVAE"),
    ),
    (
        "adagvae-missing-pair-ids",
        lambda t: setup(AdaGVAE, features(), features_key=OBSM.X_RAW, pair_key="pairs"),
        KeyError,
        r"adata\.obs\['pairs'\] is missing.*pair_key=None",
    ),
    (
        "adagvae-missing-factor",
        lambda t: setup(AdaGVAE, features(), features_key=OBSM.X_RAW, factor_keys=["shape"]),
        KeyError,
        r"`factor_keys`='shape' is not a column of adata\.obs",
    ),
    (
        "adagvae-factor-with-nan",
        lambda t: setup(
            AdaGVAE,
            features_with_obs(shape=[0.0, 1.0, np.nan, 1.0, 0.0, 1.0]),
            features_key=OBSM.X_RAW,
            factor_keys="shape",
        ),
        ValueError,
        r"adata\.obs\['shape'\] \(`factor_keys`\) has 1 missing values",
    ),
    (
        "spavae-not-anndata",
        lambda t: setup(SpaVAE, dense_counts()),
        TypeError,
        r"`adata` must be an AnnData, got ndarray",
    ),
    (
        "spavae-no-genes",
        lambda t: setup(SpaVAE, tissue()[:, :0].copy()),
        ValueError,
        r"`adata` has no variables",
    ),
    # 3. unknown keys
    (
        "spavae-batch-key",
        lambda t: setup(SpaVAE, tissue(), batch_key="slide"),
        KeyError,
        r"`batch_key`='slide' is not a column of adata\.obs",
    ),
    (
        "spavae-size-factor-key",
        lambda t: setup(SpaVAE, tissue(), size_factor_key="sf"),
        KeyError,
        r"`size_factor_key`='sf' is not a column of adata\.obs",
    ),
    (
        "spavae-layer",
        lambda t: setup(SpaVAE, tissue(), layer="counts"),
        KeyError,
        r"`layer`='counts' not found in adata\.layers",
    ),
    (
        "dpvae-layer",
        lambda t: setup(DPVAE, tissue(), layer="counts"),
        KeyError,
        r"`layer`='counts' not found in adata\.layers",
    ),
    # 4. DPVAE arguments
    (
        "dpvae-likelihood",
        lambda t: dpvae(likelihood="poisson"),
        ValueError,
        r"`likelihood` must be one of 'nb', 'normal'; got 'poisson'",
    ),
    (
        "dpvae-dp-loss",
        lambda t: dpvae(dp_loss="l1"),
        ValueError,
        r"`dp_loss` must be one of 'squared', 'abs'; got 'l1'",
    ),
    (
        "dpvae-dp-weight-negative",
        lambda t: dpvae(dp_weight=-1.0),
        ValueError,
        r"`dp_weight` must lie in \[0, inf\], got -1",
    ),
    (
        "dpvae-dp-weight-nan",
        lambda t: dpvae(dp_weight=float("nan")),
        ValueError,
        r"`dp_weight` must be finite, got nan",
    ),
    (
        "dpvae-dp-weight-str",
        lambda t: dpvae(dp_weight="100"),
        TypeError,
        r"`dp_weight` must be a number, got '100' \(str\)",
    ),
    (
        "dpvae-n-latent-bool",
        lambda t: dpvae(n_latent=True),
        TypeError,
        r"`n_latent` must be an integer, got True \(bool\)",
    ),
    (
        "spavae-n-inducing-bool",
        lambda t: spavae(n_inducing=True),
        TypeError,
        r"`n_inducing` must be an integer, got True \(bool\)",
    ),
    # 5. dissimilarities, init and anchors
    (
        "smacof-non-square",
        lambda t: sv.geometry.smacof(distances()[:5]),
        ValueError,
        r"`dissimilarities` must be a square n × n matrix, got shape \(5, 12\)",
    ),
    (
        "smacof-negative",
        lambda t: sv.geometry.smacof(negative()),
        ValueError,
        r"`dissimilarities` contains negative values",
    ),
    (
        "smacof-asymmetric",
        lambda t: sv.tl.smacof(asymmetric()),
        ValueError,
        r"`dissimilarities` must be symmetric.*\(d \+ d\.T\) / 2",
    ),
    (
        "smacof-nan",
        lambda t: sv.tl.smacof(with_nan()),
        ValueError,
        r"`dissimilarities` contains NaN or infinite values",
    ),
    (
        "smacof-init-shape",
        lambda t: sv.tl.smacof(distances(), init=np.zeros((12, 3))),
        ValueError,
        r"`init` must be 12 × 2 .*got shape \(12, 3\)",
    ),
    (
        "smacof-init-nan",
        lambda t: sv.tl.smacof(distances(), init=np.full((12, 2), np.nan)),
        ValueError,
        r"`init` has NaN or infinite coordinates",
    ),
    (
        "smacof-duplicate-anchors",
        lambda t: sv.tl.smacof(distances(), anchors=([0, 0, 3], np.zeros((3, 2)))),
        ValueError,
        r"`anchors`: anchor rows must be distinct; rows \[0\]",
    ),
    (
        "smacof-anchors-out-of-range",
        lambda t: sv.tl.smacof(distances(), anchors={25: [0.0, 0.0]}),
        ValueError,
        r"`anchors`: anchor rows must lie in \[0, 12\).*got \[25\]",
    ),
    (
        "smacof-sparse-disconnected",
        lambda t: sv.tl.smacof(disconnected()),
        ValueError,
        r"`dissimilarities` is a graph of 2 disconnected parts.*raise `n_neighbors`",
    ),
    (
        "reconstruct-duplicate-anchors",
        lambda t: reconstruct(anchors=names(0, 0, 1, 2)),
        ValueError,
        r"`anchors` names 1 cells more than once \(e\.g\. \['spot_00000'\]\)",
    ),
    (
        "reconstruct-unknown-anchors",
        lambda t: reconstruct(anchors=["nope"]),
        KeyError,
        r"`anchors` names 1 cells not in adata\.obs_names \(e\.g\. \['nope'\]\)",
    ),
    # 6. missing representations
    (
        "cluster-use-rep",
        lambda t: sv.tl.cluster(latent(), use_rep="X_nope", n_clusters=2),
        KeyError,
        r"`use_rep`='X_nope' is not a key of adata\.obsm",
    ),
    (
        "reconstruct-use-rep",
        lambda t: reconstruct(use_rep="X_nope"),
        KeyError,
        r"`use_rep`='X_nope' is not a key of adata\.obsm",
    ),
    (
        "morans-use-rep",
        lambda t: sv.metrics.morans_i(latent(), use_rep="X_nope"),
        KeyError,
        r"`use_rep`='X_nope' is not a key of adata\.obsm",
    ),
    (
        "gearys-use-rep",
        lambda t: sv.metrics.gearys_c(latent(), use_rep="X_nope"),
        KeyError,
        r"`use_rep`='X_nope' is not a key of adata\.obsm",
    ),
    # 7. masks over observations
    (
        "reconstruct-mask-length",
        lambda t: reconstruct(anchors=np.ones(5, dtype=bool)),
        ValueError,
        r"`anchors` has shape \(5,\); expected \(30,\), one entry per observation",
    ),
    # 8. clustering input
    (
        "cluster-nan-latent",
        lambda t: sv.tl.cluster(latent(nan_row=3), use_rep=LATENT, n_clusters=2),
        ValueError,
        r"`adata\.obsm\['X_latent'\]` has NaN or infinite values in 1 rows \(first: row 3\)",
    ),
    (
        "cluster-refine-no-coordinates",
        lambda t: sv.tl.cluster(without_coordinates(), use_rep=LATENT, n_clusters=2, refine=True),
        KeyError,
        r"`spatial_key`='spatial' is not a key of adata\.obsm.*`refine=True`",
    ),
    (
        "cluster-n-clusters-bool",
        lambda t: sv.tl.cluster(latent(), use_rep=LATENT, n_clusters=True),
        TypeError,
        r"`n_clusters` must be an integer, got True",
    ),
    (
        "cluster-method",
        lambda t: sv.tl.cluster(latent(), use_rep=LATENT, n_clusters=2, method="dbscan"),
        ValueError,
        r"`method` must be one of 'kmeans', 'leiden'",
    ),
    # 9. files
    (
        "smfish-missing-folder",
        lambda t: sv.datasets.smfish(path=t / "nope"),
        FileNotFoundError,
        r"smFISH folder .*nope does not exist; pass `path=`",
    ),
    (
        "smfish-missing-files",
        lambda t: sv.datasets.smfish(path=t),
        FileNotFoundError,
        r"tfrc_300\.png not found; pass `path=`",
    ),
    (
        "dlpfc-missing-path",
        lambda t: sv.datasets.dlpfc("151673", path=t / "nope"),
        FileNotFoundError,
        r"`path`='.*nope' does not exist",
    ),
    (
        "dlpfc-missing-section",
        lambda t: sv.datasets.dlpfc("151999", path=t),
        FileNotFoundError,
        r"DLPFC section '151999' not found in",
    ),
    (
        "dlpfc-missing-file",
        lambda t: sv.datasets.dlpfc(t / "dlpfc_151673.h5ad"),
        FileNotFoundError,
        r"DLPFC file .*dlpfc_151673\.h5ad does not exist",
    ),
    (
        "dlpfc-csv",
        lambda t: sv.datasets.dlpfc(str(write(t, "some.csv"))),
        ValueError,
        r"some\.csv is not an AnnData \.h5ad file",
    ),
    (
        "dlpfc-csv-as-path",
        lambda t: sv.datasets.dlpfc("151673", path=write(t, "some.csv")),
        ValueError,
        r"some\.csv is not an AnnData \.h5ad file",
    ),
    (
        "read-h5ad-csv",
        lambda t: sv.datasets.read_h5ad(write(t, "fake.h5ad")),
        ValueError,
        r"fake\.h5ad is not an AnnData \.h5ad file",
    ),
    (
        "read-h5ad-missing",
        lambda t: sv.datasets.read_h5ad(t / "absent.h5ad"),
        FileNotFoundError,
        r"absent\.h5ad does not exist",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [pytest.param(call, error, message, id=name) for name, call, error, message in CASES],
)
def test_bad_input_is_refused_with_a_clear_message(tmp_path, call, error, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scvi-tools' and anndata's chatter, not the error
        with pytest.raises(error, match=message):
            call(tmp_path)


def test_image_models_need_no_genes():
    """The observation minimum does not ask image models for variables."""
    SIVAE.setup_anndata(points())
    AdaGVAE.setup_anndata(features(), features_key=OBSM.X_RAW)


def test_case_ids_are_unique():
    ids = [case[0] for case in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("model_cls", [SpaVAE, DPVAE])
def test_a_one_spot_query_still_loads_onto_a_saved_model(tmp_path, model_cls):
    """The two-observation minimum is for training: a saved model encodes a single spot."""
    adata = tissue()
    model_cls.setup_anndata(adata)
    small = {"n_inducing": 4} if model_cls is SpaVAE else {"n_hidden": 8}
    model = train_quietly(model_cls(adata, **small), max_epochs=1, accelerator="cpu")
    model.save(tmp_path / "model", overwrite=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = model_cls.load(tmp_path / "model", adata=tissue()[:1].copy(), accelerator="cpu")
    assert loaded.get_latent_representation().shape[0] == 1
