"""The shared validators reject each malformed input with the documented message."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
from scipy import sparse

from spatialvi._validation import check_coordinates, check_counts, check_images, check_points


def _adata(x, **obsm):
    adata = ad.AnnData(X=x)
    for key, value in obsm.items():
        adata.obsm[key] = value
    return adata


@pytest.mark.parametrize(
    "x",
    [
        np.array([[0, 1], [2, 3]], dtype=np.int32),
        np.array([[0, 1], [2, 3]], dtype=np.uint16),
        np.array([[0.0, 1.0], [2.0, 3.0]], dtype=np.float32),
        sparse.csr_matrix(np.array([[0, 1], [2, 3]], dtype=np.int64)),
        sparse.csc_matrix(np.array([[0.0, 1.0], [2.0, 0.0]])),
    ],
)
def test_counts_accepted(x):
    check_counts(_adata(x))


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.array([[0.5, 1.0], [2.0, 3.0]]), "non-integer"),
        (np.array([[-1, 1], [2, 3]]), "negative"),
        (sparse.csr_matrix(np.array([[0.0, -2.0], [1.0, 0.0]])), "negative"),
        (np.array([[np.nan, 1.0], [2.0, 3.0]]), "NaN or infinite"),
        (np.array([[True, False], [False, True]]), "boolean"),
    ],
)
def test_counts_rejected(x, message):
    with pytest.raises(ValueError, match=message) as err:
        check_counts(_adata(x))
    assert "adata.X" in str(err.value)


def test_counts_layer_named_in_error():
    adata = _adata(np.ones((2, 2)))
    adata.layers["logged"] = np.full((2, 2), 0.3)
    with pytest.raises(ValueError, match=r"adata.layers\['logged'\]"):
        check_counts(adata, layer="logged")
    with pytest.raises(KeyError, match="'counts' not found"):
        check_counts(adata, layer="counts")


def test_coordinates():
    coords = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    adata = _adata(np.ones((3, 2)), spatial=coords)
    np.testing.assert_array_equal(check_coordinates(adata), coords)
    with pytest.raises(KeyError, match=r"adata.obsm\['xy'\] is missing"):
        check_coordinates(adata, "xy")
    adata.obsm["flat"] = np.ones((3, 1))
    with pytest.raises(ValueError, match=r"shape \(3, 1\)"):
        check_coordinates(adata, "flat")
    adata.obsm["bad"] = np.array([[0.0, np.inf], [1.0, 0.0], [np.nan, 1.0]])
    with pytest.raises(ValueError, match="NaN or infinite coordinates for 2 observations"):
        check_coordinates(adata, "bad")
    adata.obsm["dup"] = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    check_coordinates(adata, "dup")
    with pytest.raises(ValueError, match="2 observations sharing a position"):
        check_coordinates(adata, "dup", allow_duplicates=False)


def test_images():
    adata = _adata(np.zeros((2, 0)), image=np.zeros((2, 1, 4, 4), dtype=np.float32))
    assert check_images(adata).shape == (2, 1, 4, 4)
    adata.obsm["grey"] = np.zeros((2, 4, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="C × H × W"):
        check_images(adata, "grey")
    adata.obsm["f64"] = np.zeros((2, 1, 4, 4))
    with pytest.raises(ValueError, match="float32"):
        check_images(adata, "f64")
    with pytest.raises(KeyError, match="tile_image"):
        check_images(adata, "nothing")


def test_points():
    pts = np.full((2, 3, 2), np.nan, dtype=np.float32)
    pts[0, :2] = [[0.1, 0.2], [0.5, 0.5]]
    adata = _adata(np.zeros((2, 0)), image=np.zeros((2, 1, 8, 8), dtype=np.float32), points=pts)
    adata.obs["n_points"] = [2, 0]
    check_points(adata)
    adata.obs["n_points"] = [1, 0]
    with pytest.raises(ValueError, match="does not match"):
        check_points(adata)
    del adata.obs["n_points"]
    gap = pts.copy()
    gap[1, 1] = [0.3, 0.3]
    adata.obsm["points"] = gap
    with pytest.raises(ValueError, match="padding must follow"):
        check_points(adata)
    half = pts.copy()
    half[1, 0] = [0.3, np.nan]
    adata.obsm["points"] = half
    with pytest.raises(ValueError, match="one NaN coordinate"):
        check_points(adata)
    outside = pts.copy()
    outside[0, 0] = [1.2, 0.5]
    adata.obsm["points"] = outside
    with pytest.raises(ValueError, match="outside the window"):
        check_points(adata)
    adata.obsm["points"] = pts.astype(np.float64)
    with pytest.raises(ValueError, match="float32"):
        check_points(adata)
