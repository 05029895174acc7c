"""image_noise_sd: the noise level of images that hold trends and sharp spots."""

from __future__ import annotations

import numpy as np
import pytest

from spatialvi.geometry import image_noise_sd, robust_sd
from spatialvi.sim import render_points


def _images(sigma: float, seed: int, n: int = 6, size: int = 64, spot_sigma: float = 1.0):
    """50 spots (amplitude 1; the density of the six-class data) on a smooth background (a
    ramp and a sine), plus white noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    background = 0.7 * x - 0.3 * y + np.sin(3.0 * x)
    out = []
    for _ in range(n):
        spots = render_points(rng.uniform(0, 1, (50, 2)), size, spot_sigma, 1.0, None)
        out.append(spots + background + rng.normal(0.0, sigma, (size, size)))
    return np.stack(out)[:, None]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sigma", [0.05, 0.1, 0.5])
@pytest.mark.parametrize("spot_sigma", [0.3, 1.0])
def test_noise_level_is_recovered_through_spots_and_background(seed, sigma, spot_sigma):
    images = _images(sigma, seed, spot_sigma=spot_sigma)
    estimate = image_noise_sd(images)
    assert estimate.shape == (1,)
    # 6 × 62² response pixels: the MAD's sampling error is ≈ 1 %; the spots' edges bias it
    # up, by up to 9 % at SNR 20 (1 % at SNR 2); at SNR 50 it is 15 % high
    assert abs(estimate[0] / sigma - 1.0) < 0.10
    # the plain robust sd of the pixels is off by more: background and spots are in it
    assert robust_sd(images) > 1.25 * sigma


def test_separable_trends_cancel_and_scale_carries_through():
    rng = np.random.default_rng(3)
    images = rng.normal(0.0, 0.2, (4, 2, 20, 30))
    base = image_noise_sd(images)
    rows = rng.normal(0.0, 5.0, (4, 2, 20, 1))  # any function of the row ...
    cols = rng.normal(0.0, 5.0, (4, 2, 1, 30))  # ... plus any function of the column
    y, x = np.mgrid[0:20, 0:30]
    np.testing.assert_allclose(image_noise_sd(images + rows + cols + 0.01 * x * y), base)
    np.testing.assert_allclose(image_noise_sd(-3.0 * images + 7.0), 3.0 * base)


def test_channels_are_measured_apart():
    rng = np.random.default_rng(4)
    images = rng.normal(0.0, 1.0, (5, 3, 40, 40)) * np.array([0.05, 0.3, 1.0])[None, :, None, None]
    np.testing.assert_allclose(image_noise_sd(images), [0.05, 0.3, 1.0], rtol=0.05)


def test_shapes():
    assert np.isnan(image_noise_sd(np.zeros((2, 1, 2, 9)))).all()
    assert image_noise_sd(np.zeros((3, 2, 5, 5))).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="images"):
        image_noise_sd(np.zeros((5, 5)))
