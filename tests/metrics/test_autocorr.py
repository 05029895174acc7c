from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import NearestNeighbors

from spatialvi.metrics import gearys_c, morans_i


def _weights(coords, k):
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(coords).kneighbors(coords)
    n = len(coords)
    w = np.zeros((n, n))
    for i in range(n):
        w[i, idx[i, 1:]] = 1.0 / k  # row-normalised kNN weights
    return w


@pytest.fixture
def adata():
    rng = np.random.default_rng(0)
    coords = rng.uniform(size=(150, 2))
    x = np.column_stack([coords[:, 0] * 5 + rng.normal(size=150), rng.normal(size=150)])
    a = ad.AnnData(X=x, var=pd.DataFrame(index=["trend", "noise"]))
    a.obs_names = [f"c{i}" for i in range(150)]
    a.obsm["spatial"] = coords
    a.obsm["X_lat"] = x[:, ::-1].copy()
    return a


def _moran(x, w):
    z = x - x.mean()
    return len(x) / w.sum() * (z @ w @ z) / (z @ z)


def _geary(x, w):
    n = len(x)
    diff = (x[:, None] - x[None, :]) ** 2
    return (n - 1) * (w * diff).sum() / (2 * w.sum() * ((x - x.mean()) ** 2).sum())


def test_morans_i_hand_computed(adata):
    w = _weights(adata.obsm["spatial"], 6)
    result = morans_i(adata, n_neighbors=6)
    for j, gene in enumerate(adata.var_names):
        assert result[gene] == pytest.approx(_moran(adata.X[:, j], w), abs=1e-6)
    assert result["trend"] > 0.3
    assert abs(result["noise"]) < 0.1


def test_gearys_c_obsm_hand_computed(adata):
    w = _weights(adata.obsm["spatial"], 6)
    result = gearys_c(adata, use_rep="X_lat", n_neighbors=6)
    assert list(result.index) == ["0", "1"]
    assert result["1"] == pytest.approx(_geary(adata.X[:, 0], w), abs=1e-6)
    assert result["0"] == pytest.approx(_geary(adata.X[:, 1], w), abs=1e-6)


def test_does_not_modify_input_and_errors(adata):
    before = set(adata.obsp.keys()), set(adata.uns.keys())
    morans_i(adata, genes="trend")
    assert (set(adata.obsp.keys()), set(adata.uns.keys())) == before
    with pytest.raises(KeyError, match="not in adata.var_names"):
        morans_i(adata, genes=["nope"])
    with pytest.raises(KeyError, match="X_missing"):
        morans_i(adata, use_rep="X_missing")
    with pytest.raises(KeyError, match="Coordinates not found"):
        morans_i(adata, spatial_key="xy")
