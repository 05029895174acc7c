from __future__ import annotations

import numpy as np
import pytest

from spatialvi._validation import check_images, check_points
from spatialvi.pp import image_window, pixels_to_points, points_to_pixels, tile_image


def test_convention():
    # 4 rows × 8 cols: s = 8, window [0, 1] × [0, 0.5]
    assert image_window(4, 8) == (0.0, 1.0, 0.0, 0.5)
    pts = pixels_to_points(np.array([[0, 0], [7, 3]]), 4, 8)
    np.testing.assert_allclose(pts, [[0.0625, 0.0625], [0.9375, 0.4375]])
    np.testing.assert_allclose(points_to_pixels(pts, 4, 8), [[0, 0], [7, 3]])
    with pytest.raises(ValueError, match="n × 2"):
        pixels_to_points(np.zeros(3), 4, 8)


def test_tiles_and_points_land_in_right_crops():
    image = np.arange(6 * 9, dtype=np.float64).reshape(6, 9)
    points = np.array([[0.0, 0.0], [2.4, 2.4], [2.6, 0.0], [8.0, 5.0], [4.0, 1.0]])  # (col, row)
    adata = tile_image(image, tile_size=3, points=points)
    assert adata.n_obs == 6
    assert list(adata.obs_names) == [
        "tile_0_0",
        "tile_0_3",
        "tile_0_6",
        "tile_3_0",
        "tile_3_3",
        "tile_3_6",
    ]
    np.testing.assert_array_equal(adata.obsm["image"][1, 0], image[0:3, 3:6])
    assert adata.obsm["image"].dtype == np.float32
    # 2.4 lies in pixel 2 (tile 0); 2.6 lies in pixel 3 (tile 0_3).
    assert list(adata.obs["n_points"]) == [2, 2, 0, 0, 0, 1]
    np.testing.assert_allclose(
        adata.obsm["points"][0, :2], [[0.5 / 3, 0.5 / 3], [2.9 / 3, 2.9 / 3]], rtol=1e-6
    )
    np.testing.assert_allclose(
        adata.obsm["points"][1, :2], [[0.1 / 3, 0.5 / 3], [1.5 / 3, 1.5 / 3]], rtol=1e-6
    )
    np.testing.assert_allclose(adata.obsm["points"][5, 0], [2.5 / 3, 2.5 / 3], rtol=1e-6)
    assert np.isnan(adata.obsm["points"][2]).all()
    assert adata.uns["image"]["window"] == [0.0, 1.0, 0.0, 1.0]
    check_images(adata)
    check_points(adata)


def test_overlapping_tiles_and_channels():
    image = np.random.default_rng(0).random((2, 8, 8))
    adata = tile_image(image, tile_size=(4, 6), stride=2, points=np.array([[3.0, 3.0]]))
    # rows 0, 2, 4 × cols 0, 2
    assert adata.obsm["image"].shape == (6, 2, 4, 6)
    assert adata.uns["image"]["window"] == [0.0, 1.0, 0.0, 4 / 6]
    assert adata.obs["n_points"].sum() == 4  # the point at (3, 3) is in 4 of the overlapping tiles
    hwc = np.moveaxis(image, 0, -1)
    np.testing.assert_array_equal(
        tile_image(hwc, 4, channel_axis=-1).obsm["image"], tile_image(image, 4).obsm["image"]
    )


def test_bad_tiling():
    with pytest.raises(ValueError, match="larger than the image"):
        tile_image(np.zeros((4, 4)), 5)
    with pytest.raises(ValueError, match="stride"):
        tile_image(np.zeros((4, 4)), 2, stride=0)
    with pytest.raises(ValueError, match="H × W or C × H × W"):
        tile_image(np.zeros((1, 2, 4, 4)), 2)
