"""Image features for the AdaGVAE: DINO ViT class tokens, raw pixels, handcrafted morphology.

The DINO backbones are the plain-torch :class:`spatialvi.nn.VisionTransformer` loaded from a
local checkpoint (nothing is downloaded). Preprocessing follows DINO's evaluation: images in
[0, 1], greyscale repeated to three channels, resized to 224 px (bicubic, anti-aliased), then
normalised with the ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225).

The features are written unscaled; the AdaGVAE min–max scales them with ranges fitted on the
training (source) data (:func:`spatialvi.nn.fit_minmax`) and reuses those at transfer.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING

import numpy as np

from spatialvi._keys import OBSM, key_stem
from spatialvi._validation import check_images

if TYPE_CHECKING:
    from anndata import AnnData

#: Backbones by name: (default obsm key, ViT architecture or None).
BACKBONES: dict[str, tuple[str, str | None]] = {
    "dino_vits16": (OBSM.X_DINO, "vit_small_16"),
    "dino_vitb16": (OBSM.X_DINO, "vit_base_16"),
    "raw": (OBSM.X_RAW, None),
    "handcrafted": (OBSM.X_HANDCRAFTED, None),
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FOREGROUND = ("auto", "bright", "dark")
COMPONENT = ("largest", "central")
#: Handcrafted shape features, before the per-channel mean colours.
SHAPE_FEATURES = ("area", "equivalent_diameter", "solidity", "eccentricity", "orientation")
_RANGE_TOL = 1e-3


def extract_features(
    adata: AnnData,
    backbone="dino_vits16",
    weights: str | os.PathLike | None = None,
    image_key: str = OBSM.IMAGE,
    key_added: str | None = None,
    batch_size: int = 64,
    device=None,
    random_weights: bool = False,
    image_size: int = 224,
    foreground: str = "auto",
    component: str = "largest",
    random_state: int = 0,
    progress_bar: bool = True,
    copy: bool = False,
) -> AnnData | None:
    """Compute one feature vector per image of ``adata.obsm[image_key]``.

    Parameters
    ----------
    adata
        AnnData with images in ``obsm[image_key]``: ``n × C × H × W`` float32, finite, in
        [0, 1] for the DINO backbones.
    backbone
        ``"dino_vits16"`` (ViT-S/16, 384-d), ``"dino_vitb16"`` (ViT-B/16, 768-d): the DINO
        class-token feature. ``"raw"``: the pixels, flattened in ``C × H × W`` order (no
        resizing; ``C·H·W`` columns). ``"handcrafted"``: foreground morphology and colour (see
        Notes). Or a :class:`spatialvi.nn.VisionTransformer` (any configuration; DINO
        preprocessing), for small or custom
        models; it is used in eval mode and put back on its device and mode afterwards.
        Inputs are resized to ``image_size`` for it too (its position embeddings are
        interpolated when that differs from its native size).
    weights
        Local path of a DINO checkpoint for the ``dino_*`` backbones (the released
        ``dino_deitsmall16_pretrain.pth`` / ``dino_vitbase16_pretrain.pth`` or a training
        checkpoint, see :func:`spatialvi.nn.load_dino_checkpoint`). Required unless
        ``random_weights=True``; with a :class:`~spatialvi.nn.VisionTransformer` it is loaded
        into that model.
    image_key
        ``obsm`` key of the images.
    key_added
        ``obsm`` key of the features; default ``X_dino``, ``X_raw`` or ``X_handcrafted`` by
        backbone. The run parameters go to ``uns[stem]`` with ``stem`` the key without a
        leading ``X_`` (``uns['dino']`` by default).
    batch_size
        Images per ViT forward pass.
    device
        Torch device of the ViT (``"cpu"``, ``"cuda"``, …); default CUDA when available. The
        features are returned to the CPU.
    random_weights
        Use a randomly initialised ViT (seeded by ``random_state``) instead of a checkpoint;
        a warning says the features carry no pretrained meaning. For tests and timing.
    image_size
        Side the images are resized to before the ViT (224, the DINO training size; a
        non-square image is resized to a square). ``None`` keeps the input size and
        interpolates the position embeddings (pixels beyond the last whole 16-px patch are
        not seen).
    foreground
        Handcrafted: which side of Otsu's threshold is the object. ``"auto"`` takes as
        background the side holding most of the image border (bright cells on a dark
        background and dark cells on a bright smear both work); ``"bright"`` or ``"dark"``
        fix it.
    component
        Handcrafted: the connected component measured, ``"largest"`` or ``"central"`` (the one
        containing the image centre, else the one nearest to it; for crops centred on a cell).
    random_state
        Seed of ``random_weights``; the global torch random state is left unchanged.
    progress_bar
        Show a progress bar over the batches (DINO) or images (handcrafted).
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    ``None``, or the modified copy with ``copy=True``. Written: ``obsm[key_added]`` (``n × F``
    float32) and ``uns[stem]`` with the backbone, the weights path, the preprocessing and the
    run parameters (handcrafted: also the column names in ``'columns'`` and the number of
    images without foreground in ``'n_empty'``).

    Raises
    ------
    KeyError, ValueError
        Missing or malformed images (not ``n × C × H × W`` float32, NaN or infinite pixels),
        images outside [0, 1], channels other than 1 or 3, or images smaller than one ViT patch
        (DINO); a DINO backbone without ``weights`` and without ``random_weights=True``; an
        unknown backbone or bad arguments.

    Notes
    -----
    Handcrafted features, per image: the grey image (mean over channels) is thresholded with
    Otsu's method (:func:`skimage.filters.threshold_otsu`) and one 8-connected component is
    kept (``component``). Its ``area`` as a fraction of the image area; its
    ``equivalent_diameter`` (of the disc of the same area) as a fraction of ``√(H·W)``, a scale
    feature; ``solidity`` (area / convex-hull area); ``eccentricity`` of the ellipse of the
    same second moments (0 for a disc); ``orientation``, the angle in radians in
    [−π/2, π/2] between the row axis and the major axis, counter-clockwise
    (:func:`skimage.measure.regionprops`; arbitrary for a disc); and the mean of each channel
    inside the component (``mean_red``, ``mean_green``, ``mean_blue`` for 3 channels,
    ``mean_intensity`` for 1, ``mean_channel_<c>`` otherwise). An image without foreground
    (e.g. constant) gets zeros, and a warning counts such images.
    """
    images = check_images(adata, image_key)
    is_vit = _is_vit(backbone)
    if not is_vit and backbone not in BACKBONES:
        raise ValueError(
            f"Unknown `backbone` {backbone!r}; choose one of {list(BACKBONES)} or pass a "
            "spatialvi.nn.VisionTransformer."
        )
    default_key = OBSM.X_DINO if is_vit else BACKBONES[backbone][0]
    key = default_key if key_added is None else key_added
    if not isinstance(key, str) or not key:
        raise ValueError(f"`key_added` must be a non-empty string or None, got {key_added!r}.")
    if key == image_key:
        raise ValueError(
            f"`key_added` ({key!r}) is the image key; pass another `key_added` for the features."
        )
    uns_key = key_stem(key)
    name = _backbone_name(backbone)
    params: dict = {"backbone": name, "image_key": image_key}

    if is_vit or BACKBONES[backbone][1] is not None:
        features, run = _dino_features(
            images,
            backbone,
            weights,
            batch_size,
            device,
            random_weights,
            image_size,
            random_state,
            progress_bar,
            image_key,
        )
        params |= run
    else:
        if weights is not None or random_weights:
            raise ValueError(
                f"`weights` and `random_weights` apply to the DINO backbones only; backbone "
                f"{backbone!r} has no weights. Leave them unset."
            )
        if backbone == "raw":
            features = images.reshape(len(images), -1).astype(np.float32, copy=True)
            params |= {"layout": "C x H x W, flattened", "shape": list(images.shape[1:])}
        else:
            features, columns, n_empty = handcrafted_features(
                images, foreground=foreground, component=component, progress_bar=progress_bar
            )
            params |= {
                "columns": columns,
                "foreground": foreground,
                "component": component,
                "threshold": "otsu",
                "n_empty": int(n_empty),
            }
    params["n_features"] = int(features.shape[1])

    adata = adata.copy() if copy else adata
    adata.obsm[key] = features
    adata.uns[uns_key] = params
    return adata if copy else None


# --------------------------------------------------------------------------------------------
# DINO


def _is_vit(backbone) -> bool:
    if isinstance(backbone, str):
        return False
    from spatialvi.nn import VisionTransformer

    return isinstance(backbone, VisionTransformer)


def _backbone_name(backbone) -> str:
    if isinstance(backbone, str):
        return backbone
    return (
        f"VisionTransformer(embed_dim={backbone.embed_dim}, depth={backbone.depth}, "
        f"num_heads={backbone.num_heads}, patch_size={backbone.patch_size}, "
        f"img_size={backbone.img_size})"
    )


def _resolve_device(device):
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"`device` {device!r} is not a torch device ({err}).") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"`device` {str(device)!r} was asked for but CUDA is not available.")
    return device


def _build_vit(backbone, weights, random_weights, random_state):
    import torch

    from spatialvi.nn import load_dino_checkpoint, vit_base_16, vit_small_16

    if weights is not None and random_weights:
        raise ValueError("Pass either `weights` (a checkpoint path) or `random_weights=True`.")
    if _is_vit(backbone):
        if weights is not None:
            load_dino_checkpoint(weights, backbone)
        return backbone
    arch = BACKBONES[backbone][1]
    if weights is not None:
        return load_dino_checkpoint(weights, arch)
    if not random_weights:
        raise ValueError(
            f"backbone {backbone!r} needs `weights`, the local path of a DINO checkpoint "
            "(e.g. dino_deitsmall16_pretrain.pth for dino_vits16, dino_vitb16: "
            "dino_vitbase16_pretrain.pth); nothing is downloaded. Pass `random_weights=True` "
            "for an untrained ViT (tests and timing only)."
        )
    warnings.warn(
        f"extract_features: backbone {backbone!r} with random weights; the features carry "
        "no pretrained meaning (pass `weights=` a DINO checkpoint for real features).",
        UserWarning,
        stacklevel=3,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(random_state)
        return {"vit_small_16": vit_small_16, "vit_base_16": vit_base_16}[arch]()


def _dino_features(
    images,
    backbone,
    weights,
    batch_size,
    device,
    random_weights,
    image_size,
    random_state,
    progress_bar,
    image_key,
):
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    if not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    n, channels, height, width = images.shape
    if channels not in (1, 3):
        raise ValueError(
            f"adata.obsm[{image_key!r}] has {channels} channels; the DINO ViT takes 1 (repeated "
            "to RGB) or 3. Select or combine channels first, e.g. `images[:, :3]`."
        )
    lo, hi = float(images.min(initial=0.0)), float(images.max(initial=0.0))
    if lo < -_RANGE_TOL or hi > 1 + _RANGE_TOL:
        raise ValueError(
            f"adata.obsm[{image_key!r}] has values in [{lo:.3g}, {hi:.3g}]; the DINO "
            "preprocessing expects [0, 1] (divide 8-bit images by 255)."
        )
    vit_patch = backbone.patch_size if _is_vit(backbone) else 16
    if height < vit_patch or width < vit_patch:
        raise ValueError(
            f"adata.obsm[{image_key!r}] holds {height} × {width} px images, smaller than one "
            f"{vit_patch}-px ViT patch; the ViT cannot take them (resizing would invent the "
            "detail). Use larger crops, e.g. `spatialvi.datasets.bccd(crop=64)`."
        )
    if image_size is None:
        size = None
    elif isinstance(image_size, int | np.integer) and image_size >= vit_patch:
        size = int(image_size)
    else:
        raise ValueError(
            f"`image_size` must be an integer of at least one patch ({vit_patch} px) or None, "
            f"got {image_size!r}."
        )
    device = _resolve_device(device)
    vit = _build_vit(backbone, weights, random_weights, random_state)
    was_training = vit.training
    home = next(vit.parameters()).device
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    out = np.empty((n, vit.embed_dim), dtype=np.float32)
    vit.to(device).eval()
    try:
        with torch.no_grad():
            starts = range(0, n, batch_size)
            for start in tqdm(starts, desc="extract_features", disable=not progress_bar):
                x = torch.from_numpy(images[start : start + batch_size]).to(device)
                if channels == 1:
                    x = x.expand(-1, 3, -1, -1)
                if size is not None and (height, width) != (size, size):
                    x = F.interpolate(
                        x, size=(size, size), mode="bicubic", align_corners=False, antialias=True
                    ).clamp_(0.0, 1.0)  # bicubic overshoots at edges
                x = (x - mean) / std
                out[start : start + len(x)] = vit(x).float().cpu().numpy()
    finally:
        vit.to(home).train(was_training)
    run = {
        "weights": _weights_label(weights),
        "random_weights": bool(random_weights),
        "random_state": int(random_state) if random_weights else None,
        "image_size": size if size is not None else "native",
        "interpolation": "bicubic, antialiased",
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "batch_size": int(batch_size),
        "device": str(device),
        "feature": "class token, norm(x)[:, 0]",
    }
    # uns must stay writable to h5ad: no None values.
    return out, {k: ("none" if v is None else v) for k, v in run.items()}


def _weights_label(weights) -> str | None:
    if weights is None:
        return None
    if isinstance(weights, str | os.PathLike):
        return os.fspath(weights)
    return "a state dict given in memory"


# --------------------------------------------------------------------------------------------
# handcrafted


def _colour_names(channels: int) -> list[str]:
    if channels == 3:
        return ["mean_red", "mean_green", "mean_blue"]
    if channels == 1:
        return ["mean_intensity"]
    return [f"mean_channel_{c}" for c in range(channels)]


def handcrafted_features(
    images, foreground: str = "auto", component: str = "largest", progress_bar: bool = False
):
    """Morphology and colour of the foreground object of each image (see :func:`extract_features`).

    Parameters
    ----------
    images
        ``n × C × H × W`` finite array.
    foreground, component
        As in :func:`extract_features`.
    progress_bar
        Show a progress bar over the images.

    Returns
    -------
    ``(features, columns, n_empty)``: the ``n × (5 + C)`` float32 features, their names, and
    the number of images without foreground (their rows are zero; a warning is issued).
    """
    from scipy import ndimage
    from skimage.filters import threshold_otsu
    from skimage.measure import regionprops
    from tqdm.auto import tqdm

    if foreground not in FOREGROUND:
        raise ValueError(f"`foreground` must be one of {FOREGROUND}, got {foreground!r}.")
    if component not in COMPONENT:
        raise ValueError(f"`component` must be one of {COMPONENT}, got {component!r}.")
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"`images` must be n × C × H × W, got shape {images.shape}.")
    n, channels, height, width = images.shape
    columns = [*SHAPE_FEATURES, *_colour_names(channels)]
    features = np.zeros((n, len(columns)), dtype=np.float32)
    structure = np.ones((3, 3), dtype=bool)  # 8-connectivity
    side = np.sqrt(height * width)
    n_empty = 0
    for i in tqdm(range(n), desc="handcrafted features", disable=not progress_bar):
        grey = images[i].mean(axis=0, dtype=np.float64)
        mask = _foreground_mask(grey, foreground, threshold_otsu)
        labels, n_components = ndimage.label(mask, structure=structure)
        if n_components == 0:
            n_empty += 1
            continue
        chosen = _choose_component(labels, n_components, component, ndimage)
        region = regionprops((labels == chosen).astype(np.uint8))[0]
        inside = labels == chosen
        features[i, : len(SHAPE_FEATURES)] = (
            region.area / (height * width),
            region.equivalent_diameter_area / side,
            region.solidity,
            region.eccentricity,
            region.orientation,
        )
        features[i, len(SHAPE_FEATURES) :] = images[i][:, inside].mean(axis=1, dtype=np.float64)
    if n_empty:
        warnings.warn(
            f"{n_empty} of {n} images have no foreground (e.g. a constant image); their "
            "handcrafted features are set to 0.",
            UserWarning,
            stacklevel=2,
        )
    return features, columns, n_empty


def _foreground_mask(grey, foreground, threshold_otsu):
    if grey.max() <= grey.min():
        return np.zeros(grey.shape, dtype=bool)
    bright = grey > threshold_otsu(grey)
    if foreground == "bright":
        return bright
    if foreground == "dark":
        return ~bright
    border = np.concatenate([bright[0], bright[-1], bright[1:-1, 0], bright[1:-1, -1]])
    # The background is the side of the threshold that holds most of the border.
    return ~bright if border.mean() > 0.5 else bright


def _choose_component(labels, n_components, component, ndimage):
    if component == "largest":
        sizes = np.bincount(labels.ravel(), minlength=n_components + 1)[1:]
        return int(np.argmax(sizes)) + 1
    h, w = labels.shape
    centre = labels[h // 2, w // 2]
    if centre:
        return int(centre)
    # Nearest foreground pixel to the centre (Euclidean distance transform of the background).
    _, (rows, cols) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    return int(labels[rows[h // 2, w // 2], cols[h // 2, w // 2]])
