"""Image features: DINO ViT preprocessing and batching, raw pixels, handcrafted morphology."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spatialvi._keys import OBSM, UNS, key_stem
from spatialvi.nn import VisionTransformer
from spatialvi.pp import extract_features, handcrafted_features

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def _adata(images) -> ad.AnnData:
    adata = ad.AnnData(np.zeros((len(images), 1), dtype=np.float32))
    adata.obsm[OBSM.IMAGE] = np.asarray(images, dtype=np.float32)
    return adata


@pytest.fixture
def tiny_vit() -> VisionTransformer:
    torch.manual_seed(0)
    return VisionTransformer(32, 1, 2, patch_size=16, img_size=32)


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).random((5, 3, 32, 32), dtype=np.float32)


def _grid(size: int = 64):
    rows, cols = np.mgrid[:size, :size] + 0.0
    centre = (size - 1) / 2
    return rows - centre, cols - centre


def _ellipse(a: float, b: float, theta: float = 0.0, size: int = 64, shift=(0, 0)):
    """Mask of an ellipse with semi-axes a ≥ b, major axis at angle theta from the row axis."""
    dr, dc = _grid(size)
    dr, dc = dr - shift[0], dc - shift[1]
    u = dr * np.cos(theta) + dc * np.sin(theta)
    v = -dr * np.sin(theta) + dc * np.cos(theta)
    return (u / a) ** 2 + (v / b) ** 2 <= 1


def _paint(mask, colour, background=(0.0, 0.0, 0.0)):
    image = np.empty((len(colour), *mask.shape), dtype=np.float32)
    for c, (fg, bg) in enumerate(zip(colour, background)):
        image[c] = np.where(mask, fg, bg)
    return image


# --------------------------------------------------------------------------------------------
# DINO backbones


def test_vit_features_equal_the_model_on_normalised_images(tiny_vit, images):
    adata = _adata(images)
    extract_features(adata, tiny_vit, image_size=None, batch_size=2, progress_bar=False)
    feats = adata.obsm[OBSM.X_DINO]
    assert feats.shape == (5, 32) and feats.dtype == np.float32
    with torch.no_grad():
        want = tiny_vit.eval()((torch.from_numpy(images) - MEAN) / STD).numpy()
    np.testing.assert_allclose(feats, want, atol=1e-5)
    # Batching does not change the features; the model is put back in training mode.
    tiny_vit.train()
    again = extract_features(
        adata, tiny_vit, image_size=None, batch_size=64, progress_bar=False, copy=True
    )
    np.testing.assert_allclose(again.obsm[OBSM.X_DINO], feats, atol=1e-6)
    assert tiny_vit.training
    params = adata.uns[key_stem(OBSM.X_DINO)]
    assert key_stem(OBSM.X_DINO) == UNS.DINO
    assert params["backbone"].startswith("VisionTransformer(embed_dim=32")
    assert params["image_size"] == "native" and params["batch_size"] == 2
    assert params["mean"] == [0.485, 0.456, 0.406] and params["std"] == [0.229, 0.224, 0.225]
    assert params["n_features"] == 32 and params["device"] == "cpu"


def test_vit_resize_and_greyscale(tiny_vit, images):
    adata = _adata(images)
    extract_features(adata, tiny_vit, image_size=48, progress_bar=False, key_added="X_48")
    x = F.interpolate(
        torch.from_numpy(images), size=(48, 48), mode="bicubic", antialias=True
    ).clamp(0, 1)
    with torch.no_grad():
        want = tiny_vit.eval()((x - MEAN) / STD).numpy()
    np.testing.assert_allclose(adata.obsm["X_48"], want, atol=1e-5)
    assert adata.uns["48"]["image_size"] == 48
    # One channel is repeated to RGB.
    grey = images[:, :1]
    one = extract_features(_adata(grey), tiny_vit, image_size=None, progress_bar=False, copy=True)
    three = extract_features(
        _adata(np.repeat(grey, 3, axis=1)), tiny_vit, image_size=None, progress_bar=False, copy=True
    )
    np.testing.assert_allclose(one.obsm[OBSM.X_DINO], three.obsm[OBSM.X_DINO], atol=1e-6)


def test_vit_weights_from_a_checkpoint(tiny_vit, images, tmp_path):
    path = tmp_path / "tiny.pth"
    torch.save({"teacher": {f"backbone.{k}": v for k, v in tiny_vit.state_dict().items()}}, path)
    torch.manual_seed(5)
    fresh = VisionTransformer(32, 1, 2, patch_size=16, img_size=32)
    adata = _adata(images)
    extract_features(adata, fresh, weights=path, image_size=None, progress_bar=False)
    want = extract_features(
        _adata(images), tiny_vit, image_size=None, progress_bar=False, copy=True
    ).obsm[OBSM.X_DINO]
    np.testing.assert_allclose(adata.obsm[OBSM.X_DINO], want, atol=1e-6)
    assert adata.uns[UNS.DINO]["weights"] == str(path)
    # The tiny checkpoint is not a ViT-S/16: the error says what it holds.
    with pytest.raises(ValueError, match="does not fit ViT-S/16.*embed_dim 32, depth 1"):
        extract_features(adata, "dino_vits16", weights=path, progress_bar=False)


def test_dino_needs_weights_or_an_explicit_random_model(images):
    adata = _adata(images[:2])
    with pytest.raises(ValueError, match="needs `weights`.*random_weights=True"):
        extract_features(adata, "dino_vits16")
    assert OBSM.X_DINO not in adata.obsm
    with pytest.warns(UserWarning, match="random weights; the features carry no pretrained"):
        out = extract_features(adata, "dino_vits16", random_weights=True, copy=True)
    assert out.obsm[OBSM.X_DINO].shape == (2, 384)
    assert out.uns[UNS.DINO]["random_weights"] and out.uns[UNS.DINO]["image_size"] == 224
    assert OBSM.X_DINO not in adata.obsm and UNS.DINO not in adata.uns  # copy=True
    with pytest.raises(ValueError, match="either `weights`"):
        extract_features(adata, "dino_vitb16", weights="x.pth", random_weights=True)


def test_bad_images_are_refused(tiny_vit, images):
    nan = images.copy()
    nan[1, 0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        extract_features(_adata(nan), tiny_vit)
    flat = ad.AnnData(np.zeros((5, 1), dtype=np.float32))
    flat.obsm[OBSM.IMAGE] = images[:, 0]
    with pytest.raises(ValueError, match=r"expected n_obs × C × H × W"):
        extract_features(flat, "raw")
    with pytest.raises(KeyError, match="obsm\\['pixels'\\] is missing"):
        extract_features(_adata(images), "raw", image_key="pixels")
    with pytest.raises(ValueError, match="has 2 channels; the DINO ViT takes 1"):
        extract_features(_adata(images[:, :2]), tiny_vit)
    with pytest.raises(ValueError, match="8 × 8 px images, smaller than one 16-px ViT patch"):
        extract_features(_adata(images[:, :, :8, :8]), tiny_vit)
    with pytest.raises(ValueError, match=r"values in \[0, 255\].*divide 8-bit images by 255"):
        extract_features(_adata(np.round(images * 255)), tiny_vit)
    with pytest.raises(ValueError, match="Unknown `backbone` 'resnet50'"):
        extract_features(_adata(images), "resnet50")
    with pytest.raises(ValueError, match="apply to the DINO backbones only"):
        extract_features(_adata(images), "handcrafted", weights="w.pth")
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer"):
        extract_features(_adata(images), tiny_vit, batch_size=0)
    with pytest.raises(ValueError, match="is the image key"):
        extract_features(_adata(images), "raw", key_added=OBSM.IMAGE)
    with pytest.raises(ValueError, match="`device` 'tpu:9' is not a torch device"):
        extract_features(_adata(images), tiny_vit, device="tpu:9")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            extract_features(_adata(images), tiny_vit, device="cuda")


# --------------------------------------------------------------------------------------------
# raw and handcrafted


def test_raw_pixels(images):
    adata = _adata(images)
    before = adata.obsm[OBSM.IMAGE].copy()
    extract_features(adata, "raw")
    np.testing.assert_array_equal(adata.obsm[OBSM.X_RAW], images.reshape(5, -1))
    np.testing.assert_array_equal(adata.obsm[OBSM.IMAGE], before)  # input untouched
    assert adata.uns[UNS.RAW]["n_features"] == 3 * 32 * 32


def test_handcrafted_disc_and_ellipses():
    size, r = 64, 14.0
    disc = _paint(_ellipse(r, r, size=size), (0.8, 0.2, 0.5))
    thetas = (0.0, 0.5, -0.9)
    ellipses = [_paint(_ellipse(24, 10, t, size=size), (0.3, 0.9, 0.6)) for t in thetas]
    adata = _adata([disc, *ellipses])
    extract_features(adata, "handcrafted", progress_bar=False)
    params = adata.uns[UNS.HANDCRAFTED]
    cols = params["columns"]
    assert cols == [
        "area",
        "equivalent_diameter",
        "solidity",
        "eccentricity",
        "orientation",
        "mean_red",
        "mean_green",
        "mean_blue",
    ]
    f = dict(zip(cols, adata.obsm[OBSM.X_HANDCRAFTED].T))
    # Disc: area π r² (as a fraction of the image), diameter 2r / side, round and convex.
    np.testing.assert_allclose(f["area"][0], np.pi * r**2 / size**2, rtol=0.03)
    np.testing.assert_allclose(f["equivalent_diameter"][0], 2 * r / size, rtol=0.02)
    assert f["eccentricity"][0] < 0.1 and f["solidity"][0] > 0.95
    np.testing.assert_allclose(
        [f["mean_red"][0], f["mean_green"][0], f["mean_blue"][0]], [0.8, 0.2, 0.5], atol=1e-6
    )
    # Ellipses with semi-axes 24 and 10: area π·24·10, eccentricity √(1 − (10/24)²), angle θ.
    np.testing.assert_allclose(f["area"][1:], np.pi * 240 / size**2, rtol=0.03)
    np.testing.assert_allclose(f["eccentricity"][1:], np.sqrt(1 - (10 / 24) ** 2), atol=0.01)
    np.testing.assert_allclose(f["orientation"][1:], thetas, atol=0.02)
    np.testing.assert_allclose(f["mean_green"][1:], 0.9, atol=1e-6)


def test_handcrafted_solidity_polarity_component_and_empty():
    size = 64
    dr, dc = _grid(size)
    # A plus sign of arm length 40 and width 8: area 2·40·8 − 8², hull an octagon
    # 40² − 4·½·16² (the four corner triangles with legs (40 − 8)/2).
    plus = ((np.abs(dr) < 20) & (np.abs(dc) < 4)) | ((np.abs(dr) < 4) & (np.abs(dc) < 20))
    solidity = (2 * 40 * 8 - 64) / (40**2 - 2 * 16**2)
    # A dark cell on a bright background (a stained smear) is found by the border rule.
    dark = _paint(_ellipse(12, 12, size=size), (0.2, 0.1, 0.3), background=(0.9, 0.9, 0.9))
    # Two discs: the larger one off-centre, the smaller one at the centre.
    two = _ellipse(5, 5, size=size) | _ellipse(12, 12, size=size, shift=(0, 19))
    flat = np.full((3, size, size), 0.5, dtype=np.float32)
    stack = np.stack([_paint(plus, (1, 1, 1)), dark, _paint(two, (1, 1, 1)), flat])
    with pytest.warns(UserWarning, match="1 of 4 images have no foreground"):
        feats, cols, n_empty = handcrafted_features(stack)
    f = dict(zip(cols, feats.T))
    np.testing.assert_allclose(f["solidity"][0], solidity, rtol=0.05)
    np.testing.assert_allclose(f["area"][0], plus.sum() / size**2)
    np.testing.assert_allclose(f["area"][1], np.pi * 144 / size**2, rtol=0.03)
    np.testing.assert_allclose(f["mean_red"][1], 0.2, atol=1e-6)
    np.testing.assert_allclose(f["area"][2], np.pi * 144 / size**2, rtol=0.03)  # largest
    assert n_empty == 1 and (feats[3] == 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        central, _, _ = handcrafted_features(stack[2:3], component="central")
        np.testing.assert_allclose(central[0, 0], np.pi * 25 / size**2, rtol=0.1)
        bright, _, _ = handcrafted_features(stack[1:2], foreground="bright")
    np.testing.assert_allclose(bright[0, 0], 1 - f["area"][1])  # the background, as asked
    # Greyscale images get one colour column.
    _, grey_cols, _ = handcrafted_features(stack[:1, :1])
    assert grey_cols[-1] == "mean_intensity" and len(grey_cols) == 6
    with pytest.raises(ValueError, match="`foreground` must be one of"):
        handcrafted_features(stack, foreground="light")
