"""BCCD blood-smear images with Pascal VOC cell boxes (Shenggan/BCCD_Dataset, MIT licence).

364 light-microscopy images (640 × 480 RGB) of stained peripheral blood with boxes of three
cell classes (RBC, WBC, Platelets). :func:`bccd` cuts one fixed-size window around each box
centre, so that the cell's size stays visible in the crop (a platelet stays small, a white
cell large), which makes box size a measured morphology factor of the target data.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from spatialvi._keys import OBS, OBSM, UNS
from spatialvi.datasets._paths import data_dir

#: Cell classes of BCCD, in the order of the ``cell_type`` categories.
BCCD_CLASSES = ("RBC", "WBC", "Platelets")
#: Border padding of the windows (``numpy.pad`` modes).
PADDING = ("edge", "constant", "reflect")
_BOX_COLUMNS = (OBS.BOX_XMIN, OBS.BOX_YMIN, OBS.BOX_XMAX, OBS.BOX_YMAX)


def _root(path) -> Path:
    root = Path(path) if path is not None else data_dir() / "bccd"
    if (root / "bccd").is_dir() and not (root / "Annotations").is_dir():
        root = root / "bccd"
    for sub in ("Annotations", "JPEGImages"):
        if not (root / sub).is_dir():
            raise FileNotFoundError(
                f"{root / sub} not found; pass `path=` to the BCCD folder holding Annotations/ "
                "(VOC .xml files) and JPEGImages/ (.jpg images), or set SPATIALVI_DATA to the "
                "folder holding bccd/."
            )
    return root


def _read_boxes(file: Path) -> list[tuple]:
    import xml.etree.ElementTree as ET

    rows = []
    for k, obj in enumerate(ET.parse(file).getroot().iter("object")):
        name = (obj.findtext("name") or "").strip()
        if name not in BCCD_CLASSES:
            raise ValueError(
                f"{file.name}: object {k} has class {name!r}; BCCD classes are "
                f"{list(BCCD_CLASSES)}. Is {file.parent} a BCCD annotation folder?"
            )
        box = obj.find("bndbox")
        try:
            coords = [round(float(box.findtext(c))) for c in ("xmin", "ymin", "xmax", "ymax")]
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"{file.name}: object {k} has no complete bndbox.") from None
        rows.append((k, name, *coords))
    return rows


def bccd_boxes(path: str | os.PathLike | None = None, images: Sequence[str] | int | None = None):
    """The BCCD cell boxes as a table, one row per box with a positive width and height.

    Parameters
    ----------
    path, images
        As in :func:`bccd`.

    Returns
    -------
    DataFrame indexed ``<image stem>_<object index>`` with ``cell_type`` (categorical RBC,
    WBC, Platelets), ``source`` (image file stem, categorical), ``box_xmin``, ``box_ymin``,
    ``box_xmax``, ``box_ymax`` (1-based pixels, as in the VOC files), ``box_width`` =
    ``xmax − xmin`` and ``box_height`` = ``ymax − ymin`` (pixels). Degenerate boxes (zero
    width or height) are left out with a warning that counts them; the number is in
    ``DataFrame.attrs['n_degenerate']``.
    """
    return _boxes(_root(path), images, stacklevel=3)


def _boxes(root: Path, images, stacklevel: int):
    import pandas as pd

    stems = _select(root, images)
    rows = []
    for stem in stems:
        rows += [(stem, *row) for row in _read_boxes(root / "Annotations" / f"{stem}.xml")]
    table = pd.DataFrame(rows, columns=[OBS.SOURCE, "object", OBS.CELL_TYPE, *_BOX_COLUMNS])
    table[OBS.BOX_WIDTH] = table[OBS.BOX_XMAX] - table[OBS.BOX_XMIN]
    table[OBS.BOX_HEIGHT] = table[OBS.BOX_YMAX] - table[OBS.BOX_YMIN]
    degenerate = (table[OBS.BOX_WIDTH] <= 0) | (table[OBS.BOX_HEIGHT] <= 0)
    if degenerate.any():
        where = ", ".join(
            f"{r[OBS.SOURCE]} object {r['object']}" for _, r in table[degenerate].iterrows()
        )
        warnings.warn(
            f"bccd: {int(degenerate.sum())} degenerate boxes (zero width or height) left out: "
            f"{where}.",
            UserWarning,
            stacklevel=stacklevel,
        )
    table = table[~degenerate].copy()
    table.index = [f"{s}_{k}" for s, k in zip(table[OBS.SOURCE], table["object"])]
    table = table.drop(columns="object")
    table[OBS.CELL_TYPE] = pd.Categorical(table[OBS.CELL_TYPE], categories=list(BCCD_CLASSES))
    table[OBS.SOURCE] = pd.Categorical(table[OBS.SOURCE], categories=stems)
    table.attrs["n_degenerate"] = int(degenerate.sum())
    return table


def _select(root: Path, images) -> list[str]:
    stems = sorted(p.stem for p in (root / "Annotations").glob("*.xml"))
    if not stems:
        raise FileNotFoundError(f"No .xml annotation files in {root / 'Annotations'}.")
    if images is None:
        return stems
    if isinstance(images, int | np.integer) and not isinstance(images, bool):
        if images < 1:
            raise ValueError(f"`images` must be a positive count or a list of stems, got {images}.")
        return stems[: int(images)]
    if isinstance(images, str):
        images = [images]
    chosen = [str(s) for s in images]
    unknown = [s for s in chosen if s not in set(stems)]
    if unknown:
        raise ValueError(
            f"`images` names unknown BCCD images {unknown[:5]}; use file stems such as "
            f"{stems[0]!r}."
        )
    return chosen


def _window_start(lo: int, hi: int, window: int) -> int:
    """First 0-based pixel of a ``window``-px window centred on the box ``[lo, hi]`` (1-based).

    The box covers the pixel edges ``[lo − 1, hi]`` (0-based pixel ``i`` spans ``[i, i + 1)``),
    so its centre is ``(lo − 1 + hi)/2``; the window ``[start, start + window)`` puts its own
    centre within half a pixel of it.
    """
    return int(np.floor((lo - 1 + hi) / 2 - window / 2 + 0.5))


def bccd(
    path: str | os.PathLike | None = None,
    crop: int = 64,
    window: int = 256,
    padding: str = "edge",
    images: Sequence[str] | int | None = None,
):
    """Read BCCD into an AnnData of cell crops, one per annotated box.

    Each crop is a ``window × window`` px square of the source image centred on the box
    centre, resized to ``crop × crop`` px. The window has the same size for every cell, so
    cell size stays visible (the median RBC, WBC and platelet box sides are 109, 207 and
    42 px; the default 256-px window holds a whole white cell). Windows reaching beyond the
    image are padded (``padding``).

    Parameters
    ----------
    path
        The BCCD folder (holding ``Annotations/`` and ``JPEGImages/``); by default ``bccd/``
        in :func:`spatialvi.datasets.data_dir`.
    crop
        Side of the crops in pixels.
    window
        Side of the window cut around each box centre, in source pixels.
    padding
        How windows are filled beyond the image border: ``"edge"`` repeats the border pixels
        (default; continues the bright smear background), ``"constant"`` fills with 0
        (black), ``"reflect"`` mirrors the image (:func:`numpy.pad` modes).
    images
        Which images to read: all (``None``), the first ``n`` in file order (an integer), or
        a list of file stems (``"BloodImage_00000"``). For quick looks and tests.

    Returns
    -------
    AnnData with ``n_obs`` boxes (the non-degenerate ones, in file and object order) and no
    variables: ``obsm['image']`` ``n × 3 × crop × crop`` float32 in [0, 1]; ``obs`` as in
    :func:`bccd_boxes` (``cell_type``, ``source``, the box coordinates, ``box_width``,
    ``box_height``); ``uns['bccd']`` the crop, window, padding, resampling and the number of
    degenerate boxes left out.

    Notes
    -----
    Resizing is :func:`skimage.transform.resize` with anti-aliasing: a Gaussian of standard
    deviation ``(window/crop − 1)/2`` followed by bilinear resampling. The Gaussian is applied
    once to the padded source image rather than to each window, so near window edges it sees
    the true neighbouring pixels instead of a mirrored window (and the loader is ~4× faster);
    away from the edges the crops equal a per-window ``resize(..., anti_aliasing=True)``.
    Degenerate boxes (two in BCCD, zero width or height) are left out with a warning; nothing
    else is dropped (boxes overlap and some touch the border).
    """
    import anndata as ad
    from skimage.io import imread

    for name, value in (("crop", crop), ("window", window)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer (pixels), got {value!r}.")
    if padding not in PADDING:
        raise ValueError(f"`padding` must be one of {PADDING}, got {padding!r}.")
    root = _root(path)
    table = _boxes(root, images, stacklevel=3)
    crops = np.empty((len(table), 3, crop, crop), dtype=np.float32)
    factor = window / crop
    sigma = max(0.0, (factor - 1) / 2)  # skimage.transform.resize's anti-aliasing sigma
    resample, radius = _resampling_matrix(window, crop, sigma)
    ext = window + 2 * radius
    pad = window // 2 + 1 + radius  # every window and its Gaussian support lie inside
    sources = table[OBS.SOURCE].to_numpy()
    boxes = table[list(_BOX_COLUMNS)].to_numpy()
    for stem in table[OBS.SOURCE].cat.categories:
        rows = np.flatnonzero(sources == stem)
        if not len(rows):
            continue
        file = root / "JPEGImages" / f"{stem}.jpg"
        if not file.is_file():
            raise FileNotFoundError(f"{file} not found (annotated in {stem}.xml).")
        image = _as_rgb_float(imread(file), file)
        padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode=padding)
        r0 = [_window_start(b[1], b[3], window) + pad - radius for b in boxes[rows]]
        c0 = [_window_start(b[0], b[2], window) + pad - radius for b in boxes[rows]]
        patches = np.stack([padded[r : r + ext, c : c + ext] for r, c in zip(r0, c0)])
        # The blur and the bilinear resampling are separable linear maps: crop = M · P · Mᵀ,
        # each as one large matrix product (numpy's broadcast matmul is far slower).
        k = len(rows)
        cols = patches.transpose(0, 1, 3, 2).reshape(-1, ext) @ resample.T  # (k·i·c, b)
        cols = cols.reshape(k, ext, 3 * crop).transpose(1, 0, 2).reshape(ext, -1)  # (i, k·c·b)
        out = (resample @ cols).reshape(crop, k, 3, crop)  # (a, k, c, b)
        crops[rows] = np.clip(out.transpose(1, 2, 0, 3), 0.0, 1.0)

    adata = ad.AnnData(X=np.zeros((len(table), 0), dtype=np.float32), obs=table)
    adata.obsm[OBSM.IMAGE] = crops
    adata.uns[UNS.BCCD] = {
        "crop": int(crop),
        "window": int(window),
        "padding": padding,
        "resize": f"skimage resize, anti-aliased (gaussian sigma {sigma:g}), bilinear",
        "pixel_size": float(factor),  # source pixels per crop pixel
        "n_degenerate": int(table.attrs["n_degenerate"]),
        "n_images": int(table[OBS.SOURCE].nunique()),
    }
    return adata


def _resampling_matrix(window: int, crop: int, sigma: float) -> tuple[np.ndarray, int]:
    """``crop × (window + 2r)`` matrix of skimage's anti-aliased resize along one axis.

    Built by applying :func:`scipy.ndimage.gaussian_filter1d` (as ``resize`` does, truncated
    at 4σ, radius ``r``) and :func:`skimage.transform.resize` (bilinear, ``anti_aliasing=False``)
    to the identity, so each crop is exactly the resize of its window blurred with its true
    surroundings. One matrix serves every window: they all have the same size.
    """
    from scipy import ndimage
    from skimage.transform import resize

    radius = int(4.0 * sigma + 0.5) if sigma > 0 else 0
    ext = window + 2 * radius
    blur = np.eye(ext)
    if sigma > 0:
        blur = ndimage.gaussian_filter1d(blur, sigma, axis=0, mode="mirror")
    blur = blur[radius : radius + window]  # rows whose kernel lies inside the extension
    bilinear = resize(np.eye(window), (crop, window), order=1, mode="reflect", anti_aliasing=False)
    return (bilinear @ blur).astype(np.float32), radius


def _as_rgb_float(image: np.ndarray, file: Path) -> np.ndarray:
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] < 3:
        raise ValueError(f"{file} is not an RGB image (shape {image.shape}).")
    image = image[..., :3]
    scale = float(np.iinfo(image.dtype).max) if image.dtype.kind in "ui" else 1.0
    return image.astype(np.float32) / scale
