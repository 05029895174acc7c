"""The six-class point-pattern dataset (SIVAE benchmark)."""

from __future__ import annotations

import numpy as np
import pytest

from spatialvi import sim
from spatialvi._keys import OBS, OBSM, UNS
from spatialvi._validation import check_images, check_points


@pytest.fixture(scope="module", params=[3, 4, 5])
def dataset(request):
    """60 images per class; three simulation seeds, so the statistical checks below hold on
    each."""
    return sim.point_pattern_dataset(60, image_size=48, snr=12.8, random_state=request.param)


def test_dataset_layout(dataset):
    n = 6 * 60
    assert dataset.shape == (n, 0)
    assert check_images(dataset).shape == (n, 1, 48, 48)
    points = check_points(dataset)  # padding, window and counts are consistent
    assert points.shape[0] == n and points.dtype == np.float32
    assert list(dataset.obs[OBS.LABEL].cat.categories) == list(sim.PATTERN_CLASSES)
    assert (dataset.obs[OBS.LABEL].value_counts() == 60).all()
    uns = dataset.uns[UNS.POINT_PATTERNS]
    assert (
        uns["snr"] == 12.8
        and uns["image_size"] == 48
        and set(uns["classes"]) == set(sim.PATTERN_CLASSES)
    )


def test_every_class_has_the_expected_mean_count(dataset):
    for name, counts in dataset.obs.groupby(OBS.LABEL, observed=True)[OBS.N_POINTS]:
        se = counts.std(ddof=1) / np.sqrt(len(counts))
        assert abs(counts.mean() - 52) < 4 * se + 1.0, name


def test_counts_differ_in_variance_by_class(dataset):
    var = dataset.obs.groupby(OBS.LABEL, observed=True)[OBS.N_POINTS].var()
    assert var["thomas"] > 3 * var["poisson"]
    assert var["strauss"] < var["poisson"]


def test_inhomogeneous_classes_follow_the_trend(dataset):
    points = dataset.obsm[OBSM.POINTS]
    labels = dataset.obs[OBS.LABEL].to_numpy()
    # exp(2x): a fraction (e − 1)/(e² − 1) = 0.269 of the points in the left half
    left = {}
    for name in ("poisson_inhom", "thomas_inhom", "strauss_inhom"):
        x = points[labels == name][..., 0]
        left[name] = (x[~np.isnan(x)] < 0.5).mean()
    assert abs(left["poisson_inhom"] - (np.e - 1) / (np.e**2 - 1)) < 0.05
    assert abs(left["thomas_inhom"] - (np.e - 1) / (np.e**2 - 1)) < 0.05
    # Strauss: the trend is in β; repulsion flattens the intensity where β is high
    assert 0.27 < left["strauss_inhom"] < 0.42
    x = points[labels == "poisson"][..., 0]
    assert abs((x[~np.isnan(x)] < 0.5).mean() - 0.5) < 0.05


def test_images_show_the_points(dataset):
    """Pixels at the true points are brighter than the background by about the amplitude."""
    images = dataset.obsm[OBSM.IMAGE][:, 0]
    points = dataset.obsm[OBSM.POINTS]
    i = 0
    pts = points[i][~np.isnan(points[i, :, 0])]
    cols, rows = np.floor(pts[:, 0] * 48).astype(int), np.floor(pts[:, 1] * 48).astype(int)
    assert images[i][rows, cols].mean() > 0.5
    assert abs(np.median(images[i])) < 0.1


def test_dataset_is_reproducible():
    a = sim.point_pattern_dataset(2, image_size=16, random_state=1)
    b = sim.point_pattern_dataset(2, image_size=16, random_state=1)
    np.testing.assert_array_equal(a.obsm[OBSM.IMAGE], b.obsm[OBSM.IMAGE])
    np.testing.assert_array_equal(a.obsm[OBSM.POINTS], b.obsm[OBSM.POINTS])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_per_class": 0}, "n_per_class"),
        ({"n_per_class": 2, "image_size": 2}, "image_size"),
        ({"n_per_class": 2, "expected_points": -1}, "expected_points"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sim.point_pattern_dataset(**kwargs)
