"""BCCD cell crops (skipped when the data is absent, failing under CI=true)."""

from __future__ import annotations

import numpy as np
import pytest

from spatialvi._keys import OBS, OBSM, UNS
from spatialvi.datasets import BCCD_CLASSES, bccd, bccd_boxes

#: Boxes per class in the README, without the two degenerate RBC boxes.
COUNTS = {"RBC": 4153, "WBC": 372, "Platelets": 361}
#: BloodImage_00000: a WBC well inside the image and an RBC touching the left border.
INNER, BORDER = "BloodImage_00000_0", "BloodImage_00000_7"
DEGENERATE = ("BloodImage_00338", "BloodImage_00343")


@pytest.fixture(scope="module")
def crops(bccd_dir):
    """Crops of four images: one with border boxes and the two with degenerate boxes."""
    with pytest.warns(UserWarning, match="2 degenerate boxes"):
        return bccd(bccd_dir, crop=32, images=["BloodImage_00000", "BloodImage_00100", *DEGENERATE])


@pytest.mark.realdata
def test_box_counts_of_the_full_set(bccd_dir):
    with pytest.warns(UserWarning, match="2 degenerate boxes.*00338 object 12.*00343 object 3"):
        boxes = bccd_boxes(bccd_dir)
    assert boxes.attrs["n_degenerate"] == 2
    assert boxes[OBS.CELL_TYPE].value_counts().to_dict() == COUNTS
    assert list(boxes[OBS.CELL_TYPE].cat.categories) == list(BCCD_CLASSES)
    assert boxes[OBS.SOURCE].nunique() == 364 and boxes.index.is_unique
    assert (boxes[OBS.BOX_WIDTH] > 0).all() and (boxes[OBS.BOX_HEIGHT] > 0).all()
    # Median longer box sides of the README (109, 207 and 42 px), with width = xmax − xmin.
    side = np.maximum(boxes[OBS.BOX_WIDTH], boxes[OBS.BOX_HEIGHT])
    medians = side.groupby(boxes[OBS.CELL_TYPE], observed=True).median()
    assert medians[list(COUNTS)].tolist() == [109, 207, 42]


@pytest.mark.realdata
def test_crops_layout(crops, bccd_dir):
    with pytest.warns(UserWarning, match="2 degenerate"):
        boxes = bccd_boxes(bccd_dir, images=list(crops.obs[OBS.SOURCE].cat.categories))
    # Every non-degenerate box of the four images is there, in file and object order, with
    # the box table as obs.
    assert list(crops.obs_names) == list(boxes.index)
    assert crops.obs.equals(boxes)
    n_objects = sum(
        (bccd_dir / "Annotations" / f"{stem}.xml").read_text().count("<object>")
        for stem in boxes[OBS.SOURCE].cat.categories
    )
    assert crops.n_obs == n_objects - 2
    assert "BloodImage_00338_12" not in crops.obs_names
    assert "BloodImage_00343_3" not in crops.obs_names
    assert crops.uns[UNS.BCCD]["n_degenerate"] == 2
    images = crops.obsm[OBSM.IMAGE]
    assert images.shape == (crops.n_obs, 3, 32, 32) and images.dtype == np.float32
    assert 0 <= images.min() and images.max() <= 1
    inner = crops.obs.loc[INNER]
    assert inner[OBS.CELL_TYPE] == "WBC" and inner[OBS.SOURCE] == "BloodImage_00000"
    assert (inner[OBS.BOX_XMIN], inner[OBS.BOX_YMIN]) == (260, 177)
    assert (inner[OBS.BOX_WIDTH], inner[OBS.BOX_HEIGHT]) == (231, 199)


@pytest.mark.realdata
def test_crop_is_the_resized_window(crops, bccd_dir):
    from skimage.io import imread
    from skimage.transform import resize

    image = imread(bccd_dir / "JPEGImages" / "BloodImage_00000.jpg").astype(np.float64) / 255
    # WBC box x 260..491, y 177..376 (1-based): centre at pixel edges (259 + 491)/2 = 375 and
    # (176 + 376)/2 = 276, so the 256-px window is columns 247..502, rows 148..403.
    window = image[148:404, 247:503]
    want = resize(window, (32, 32), anti_aliasing=True).transpose(2, 0, 1)
    got = crops.obsm[OBSM.IMAGE][crops.obs_names.get_loc(INNER)]
    # Away from the window edge (the Gaussian reaches 14 source px = 2 crop px) they agree.
    np.testing.assert_allclose(got[:, 16, 16], want[:, 16, 16], atol=1e-5)
    np.testing.assert_allclose(got[:, 3:-3, 3:-3], want[:, 3:-3, 3:-3], atol=1e-5)


@pytest.mark.realdata
def test_border_padding(bccd_dir, crops):
    # RBC box x 1..87 touches the left border: its window starts at column
    # floor((0 + 87)/2 − 128 + ½) = −84, so the 84 left source px (10.5 crop px) are padding.
    edge = crops.obsm[OBSM.IMAGE][crops.obs_names.get_loc(BORDER)]
    assert crops.obs.loc[BORDER, OBS.BOX_XMIN] == 1
    # Edge padding repeats the border column: constant along rows of the padded part.
    assert np.ptp(edge[:, :, :8], axis=2).max() < 1e-5
    assert edge[:, :, :8].min() > 0.3  # the bright smear continues
    constant = bccd(bccd_dir, crop=32, padding="constant", images=["BloodImage_00000"])
    zero = constant.obsm[OBSM.IMAGE][constant.obs_names.get_loc(BORDER)]
    np.testing.assert_allclose(zero[:, :, :8], 0, atol=1e-6)
    # The image part (its window also passes the bottom border from crop row ~24).
    np.testing.assert_allclose(zero[:, :20, 12:], edge[:, :20, 12:], atol=1e-5)
    assert constant.uns[UNS.BCCD]["padding"] == "constant"


def test_missing_folder_and_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="Annotations not found; pass `path=`"):
        bccd(tmp_path)
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "Annotations" / "a.xml").write_text(
        "<annotation><object><name>Neutrophil</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
        "<xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>"
    )
    with pytest.raises(ValueError, match="a.xml: object 0 has class 'Neutrophil'"):
        bccd_boxes(tmp_path)
    with pytest.raises(ValueError, match="unknown BCCD images \\['b'\\]"):
        bccd_boxes(tmp_path, images=["b"])
    with pytest.raises(ValueError, match="`padding` must be one of"):
        bccd(tmp_path, padding="wrap")
    with pytest.raises(ValueError, match="`crop` must be a positive integer"):
        bccd(tmp_path, crop=0)
