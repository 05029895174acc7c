"""Loaders on the shared real data (skipped when absent, failing where required: see conftest)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spatialvi.datasets import dlpfc, smfish
from spatialvi.pp import pixels_to_points, points_to_pixels

DLPFC = {"151673": (3639, 3000, 28), "151507": (4226, 1159, 5), "151508": (4384, 1140, 3)}


@pytest.mark.realdata
@pytest.mark.parametrize("section", list(DLPFC))
def test_dlpfc_sections(dlpfc_dir, section):
    n_obs, n_vars, n_unlabelled = DLPFC[section]
    adata = dlpfc(section, path=dlpfc_dir)
    assert adata.shape == (n_obs, n_vars)
    assert adata.obs["layer"].isna().sum() == n_unlabelled
    assert list(adata.obs["layer"].cat.categories) == [*(f"Layer{i}" for i in range(1, 7)), "WM"]
    xy = adata.obsm["spatial"]
    # x = array_col·50, y = array_row·50·√3 (µm)
    np.testing.assert_allclose(xy[:, 0], adata.obs["array_col"] * 50)
    np.testing.assert_allclose(xy[:, 1], adata.obs["array_row"] * 50 * np.sqrt(3))
    # Reading a file path directly gives the same object.
    same = dlpfc(section, path=dlpfc_dir / f"dlpfc_{section}.h5ad")
    assert (same.obs_names == adata.obs_names).all()


@pytest.mark.realdata
def test_dlpfc_shared_genes(dlpfc_dir):
    a, b = dlpfc("151507", path=dlpfc_dir), dlpfc("151508", path=dlpfc_dir)
    assert len(a.var_names.intersection(b.var_names)) == 836


def test_dlpfc_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="DLPFC section '151999' not found"):
        dlpfc("151999", path=tmp_path)


def test_data_dir_env(tmp_path, monkeypatch):
    from spatialvi.datasets import data_dir

    monkeypatch.setenv("SPATIALVI_DATA", str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.setenv("SPATIALVI_DATA", str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="SPATIALVI_DATA"):
        data_dir()


@pytest.mark.realdata
def test_smfish_crops(smfish_dir):
    crops = smfish(path=smfish_dir)
    expected = {
        "tfrc_300": ((450, 300), 145),
        "tfrc_500": ((450, 500), 230),
        "tfrc_700": ((450, 700), 268),
    }
    for name, (shape, n_spots) in expected.items():
        crop = crops[name]
        assert crop.image.shape == shape
        assert crop.image.dtype == np.float32
        assert 0 <= crop.image.min() and crop.image.max() <= 1
        assert crop.spots.shape == (n_spots, 2)
        raw = pd.read_csv(smfish_dir / f"{name}_spots.csv")
        np.testing.assert_allclose(
            crop.spots, raw[["col", "row"]].to_numpy() - 1
        )  # 1-based -> 0-based
        # Annotated spots are bright: the pixel at a spot beats the image median.
        cols, rows = np.round(crop.spots).astype(int).T
        assert np.median(crop.image[rows, cols]) > np.median(crop.image) * 1.5


@pytest.mark.realdata
def test_smfish_tiled(smfish_dir):
    crops = smfish(path=smfish_dir)
    tiles = smfish(path=smfish_dir, tile_size=150)
    # 450×300 -> 3×2, 450×500 -> 3×3, 450×700 -> 3×4 whole tiles
    assert tiles.n_obs == 6 + 9 + 12
    assert tiles.obsm["image"].shape[1:] == (1, 150, 150)
    for name, crop in crops.items():
        sub = tiles[tiles.obs["source"] == name]
        covered = (crop.spots[:, 0] < (sub.obs["tile_col"].max() + 150) - 0.5) & (
            crop.spots[:, 1] < (sub.obs["tile_row"].max() + 150) - 0.5
        )
        assert sub.obs["n_points"].sum() == covered.sum()
        # Points map back to the original pixel positions.
        back = []
        for i in range(sub.n_obs):
            pts = sub.obsm["points"][i, : sub.obs["n_points"].iloc[i]]
            px = points_to_pixels(pts, 150, 150)
            origin = np.array([sub.obs["tile_col"].iloc[i], sub.obs["tile_row"].iloc[i]])
            back.append(px + origin)
        back = np.concatenate(back)
        order = np.lexsort(back.T)
        expected = crop.spots[covered][np.lexsort(crop.spots[covered].T)]
        np.testing.assert_allclose(back[order], expected, atol=1e-4)
    np.testing.assert_allclose(
        pixels_to_points(np.array([[0.0, 149.0]]), 150, 150), [[0.5 / 150, 149.5 / 150]]
    )
