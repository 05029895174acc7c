"""Texture-dSprites: pairs differ in exactly k factors, factors= fixes what it says, rendering
has the geometry its factors promise, and a seed fixes the images."""

from __future__ import annotations

import numpy as np
import pytest

from spatialvi._keys import OBS, OBSM, UNS
from spatialvi.sim import (
    COLOURS,
    FACTORS,
    SCALES,
    factor_sizes,
    render_sprite,
    texture_dsprites,
    texture_dsprites_factors,
)

S = 32  # small images keep the tests fast


def _codes(adata):
    names = adata.uns[UNS.TEXTURE_DSPRITES]["factors"]
    return adata.obs[names].to_numpy(), names


@pytest.mark.parametrize("k", [1, 2, 3])
def test_pairs_differ_in_exactly_k_factors(k):
    adata = texture_dsprites(n_pairs=150, k=k, image_size=S, random_state=k)
    codes, names = _codes(adata)
    assert names == list(FACTORS)
    assert list(adata.obs.columns) == [*FACTORS, OBS.PAIR_ID, OBS.PAIR_MEMBER]
    first, second = codes[0::2], codes[1::2]
    np.testing.assert_array_equal((first != second).sum(axis=1), k)
    np.testing.assert_array_equal(adata.obs[OBS.PAIR_ID].to_numpy()[0::2], np.arange(150))
    np.testing.assert_array_equal(adata.obs[OBS.PAIR_MEMBER].to_numpy(), np.tile([0, 1], 150))
    images = adata.obsm[OBSM.IMAGE]
    assert images.shape == (300, 3, S, S) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1
    # every image is the rendering of its own codes
    for i in (0, 1, 77):
        np.testing.assert_array_equal(images[i], render_sprite(codes[i], S))


def test_changed_factors_are_spread_over_all_factors():
    adata = texture_dsprites(n_pairs=700, k=1, image_size=16, random_state=0)
    codes, _ = _codes(adata)
    changed = np.argmax(codes[0::2] != codes[1::2], axis=1)
    counts = np.bincount(changed, minlength=len(FACTORS))
    # uniform choice of the changed factor: 100 per factor expected
    assert counts.min() > 60 and counts.max() < 140


def test_factors_fix_and_restrict():
    adata = texture_dsprites(
        n_pairs=100,
        k=2,
        image_size=S,
        factors={"colour": 0, "texture": 0, "shape": [0, 2]},
        random_state=3,
    )
    uns = adata.uns[UNS.TEXTURE_DSPRITES]
    assert uns["factors"] == ["shape", "scale", "orientation", "pos_x", "pos_y"]
    assert uns["fixed"] == {"colour": 0, "texture": 0}
    assert uns["n_values"]["shape"] == 2 and "colour" not in adata.obs
    assert set(np.unique(adata.obs["shape"])) == {0, 2}
    codes, _ = _codes(adata)
    np.testing.assert_array_equal((codes[0::2] != codes[1::2]).sum(axis=1), 2)
    # white, untextured sprites: every lit pixel is grey (R = G = B)
    img = adata.obsm[OBSM.IMAGE]
    np.testing.assert_allclose(img[:, 0], img[:, 1], atol=1e-6)
    np.testing.assert_allclose(img[:, 0], img[:, 2], atol=1e-6)


def test_same_seed_same_images_other_seed_other_images():
    a = texture_dsprites(n_pairs=20, image_size=S, random_state=5)
    b = texture_dsprites(n_pairs=20, image_size=S, random_state=5)
    c = texture_dsprites(n_pairs=20, image_size=S, random_state=6)
    np.testing.assert_array_equal(a.obsm[OBSM.IMAGE], b.obsm[OBSM.IMAGE])
    assert a.obs.equals(b.obs)
    assert not np.array_equal(a.obsm[OBSM.IMAGE], c.obsm[OBSM.IMAGE])
    # the codes alone come from the same draws
    assert texture_dsprites_factors(n_pairs=20, random_state=5).equals(a.obs)


def _sprite(**codes):
    base = dict(shape=0, scale=5, orientation=0, pos_x=16, pos_y=16, colour=0, texture=0)
    base.update(codes)
    return render_sprite([base[name] for name in FACTORS], 64)


def test_area_grows_with_the_square_of_scale():
    for shape in (0, 1, 2):
        small = _sprite(shape=shape, scale=0)[0].sum()
        large = _sprite(shape=shape, scale=5)[0].sum()
        ratio = (SCALES[5] / SCALES[0]) ** 2
        assert large / small == pytest.approx(ratio, rel=0.08)


def test_position_moves_the_centroid_by_the_grid_step():
    def centroid(img):
        w = img[0]
        rows, cols = np.indices(w.shape)
        return (w * cols).sum() / w.sum(), (w * rows).sum() / w.sum()

    x0, y0 = centroid(_sprite(shape=1, pos_x=4, pos_y=20))
    x1, y1 = centroid(_sprite(shape=1, pos_x=24, pos_y=20))
    margin = 1.2 * 0.14 * 64
    step = (64 - 2 * margin) / 31
    assert x1 - x0 == pytest.approx(20 * step, rel=0.02)
    assert y1 == pytest.approx(y0, abs=0.05)


def test_documented_symmetries_make_orientations_identical():
    # square: every 90° (10 of 40 orientations); ellipse: every 180° (20); heart: none
    square = _sprite(shape=0, orientation=3), _sprite(shape=0, orientation=13)
    ellipse = _sprite(shape=1, orientation=3), _sprite(shape=1, orientation=23)
    heart = _sprite(shape=2, orientation=3), _sprite(shape=2, orientation=23)
    np.testing.assert_allclose(*square, atol=0.02)
    np.testing.assert_allclose(*ellipse, atol=0.02)
    assert np.abs(heart[0] - heart[1]).max() > 0.5
    assert np.abs(_sprite(shape=1, orientation=3) - _sprite(shape=1, orientation=13)).max() > 0.5


def test_flat_texture_fills_with_the_colour_and_textures_modulate_it():
    for colour in (1, 6):
        img = _sprite(colour=colour, texture=0)
        inside = img[0] > 0.999 * COLOURS[colour][0]
        np.testing.assert_allclose(
            img[:, inside].astype(np.float64).mean(axis=1), COLOURS[colour], atol=1e-5
        )
    full = _sprite(texture=0)[0] > 0.999  # fully covered pixels of the white sprite
    for texture in range(1, 6):
        fill = _sprite(texture=texture)[0][full]
        assert fill.std() > 0.1, texture  # visibly textured
        assert fill.min() >= 0.35 - 1e-6 and fill.max() <= 1 + 1e-6  # floor 0.35, colour 1


def test_factor_sizes_are_the_dsprites_grid():
    assert factor_sizes() == {
        "shape": 3,
        "scale": 6,
        "orientation": 40,
        "pos_x": 32,
        "pos_y": 32,
        "colour": 8,
        "texture": 6,
    }


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 0}, "`k`"),
        ({"k": 8}, "`k`"),
        (
            {"k": 3, "factors": {"shape": 0, "scale": 0, "orientation": 0, "pos_x": 0, "pos_y": 0}},
            "`k`",
        ),
        ({"factors": {"hue": 1}}, "unknown names"),
        ({"factors": {"shape": 3}}, "shape"),
        ({"factors": {"scale": []}}, "scale"),
        ({"factors": ["colour"]}, "dict"),
        ({"n_pairs": 0}, "n_pairs"),
        ({"image_size": 8}, "image_size"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        texture_dsprites(**{"n_pairs": 2, "image_size": 16, **kwargs})
