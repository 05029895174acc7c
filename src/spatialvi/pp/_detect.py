"""Spot detection: point sets from images of point-like objects (smFISH spots, puncta, nuclei).

Two detectors are offered, both returning 0-based pixel positions ``(col, row)``:

``"log"``
    Scale-normalised Laplacian of Gaussian at the stated spot size; local maxima above a
    threshold set by the rule below, refined to sub-pixel positions.
``"otsu"``
    Otsu's global threshold on the lightly smoothed image, connected components, and their
    intensity-weighted centroids: the classical baseline, which merges touching spots.

Threshold rule of ``"log"``
---------------------------
With ``σ = spot_sigma`` the filtered image is ``R = −σ² ∇²G_σ * I`` (bright spots positive).
A Gaussian spot of amplitude ``A`` and standard deviation ``σ`` responds with ``A/2`` at its
centre, so ``R`` is in image-intensity units. The threshold is the larger of two bounds, each
with a statistical meaning and nothing fitted to a particular data set:

1. Noise floor, ``n_sd · σ̂``, with ``σ̂ = 1.4826 · median(|R − median R|)`` (normal-consistent
   MAD; spots cover few pixels and barely move the median). For white noise ``R`` is a smooth
   Gaussian field whose gradient variance is ``3/(2σ²)`` times its variance, so the expected
   number of its local maxima above ``u`` standard deviations in ``|W|`` pixels is, by the
   expected Euler characteristic of the excursion set, ``|W| · 3/(2σ²) · u · exp(−u²/2) /
   (2π)^{3/2}``: at ``u = 5``, ``σ = 1.5`` that is 0.8 per megapixel (at ``u = 4``, 56; on
   sampled white noise about half as many are counted). A spot with ``A/η ≥ 2 n_sd /
   (σ √(2π))`` (``η`` the pixel noise sd; SNR 2.7 at ``σ = 1.5``) still reaches the floor.
2. Decoy false-discovery bound. Real images hold structure that is not white noise (cell
   texture, autofluorescent granules, edges) and exceeds the floor. Such background makes dark
   LoG blobs as often as bright ones, spots make bright ones only; so the local minima of
   ``R`` serve as decoys (as in target–decoy search and knockoffs): ``#{minima ≤ −t}``
   estimates the number of false maxima ``≥ t``, and the threshold is the smallest ``t`` (at
   least the floor) where that estimate is at most ``fdr`` times the number of maxima
   ``≥ t``. The LoG itself makes dark rings: a Gaussian spot's response has a negative ring
   of depth ``e⁻² ≈ 0.135`` of its peak at ``2√2 σ``, which for bright spots lies beyond the
   floor. Before counting, the rings of all extrema beyond the floor are therefore subtracted
   from ``R`` (the analytic ring of a spot of std ``σ`` at each extremum's sub-pixel position,
   scaled by its response); maxima are then taken on the corrected response. ``fdr = 0.1``
   is the conventional 10 % level; on images of Gaussian spots in white noise there are
   almost no decoys above the floor and the bound is inactive. The estimate is a lower bound
   where the background is brighter than it is dark (bright granules), and it fluctuates
   when few extrema exceed the floor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from spatialvi._keys import OBSM, UNS, points_count_key
from spatialvi._validation import check_images
from spatialvi.geometry import pixels_to_points, robust_sd

if TYPE_CHECKING:
    from anndata import AnnData

METHODS = ("log", "otsu")


def _image_2d(image) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype.kind not in "biuf":
        raise ValueError(
            f"`image` must hold real numbers; got dtype {arr.dtype}. Pass a numeric H × W array."
        )
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(
            f"`image` must be one H × W (or 1 × H × W) image; got shape {arr.shape}. "
            "Pass a single channel, e.g. `image[c]` of a C × H × W stack."
        )
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"`image` is empty (shape {arr.shape}); it needs at least one pixel.")
    if not np.isfinite(arr).all():
        raise ValueError(
            "`image` contains NaN or infinite pixels; replace them first "
            "(e.g. `np.nan_to_num(image, nan=background)`)."
        )
    # A float64 copy: the caller's array is never written to.
    return np.array(arr, dtype=np.float64)


def _check_positive(name: str, value, unit: str) -> None:
    if not np.isscalar(value) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"`{name}` must be a positive finite number ({unit}); got {value!r}.")


def default_min_distance(spot_sigma: float) -> int:
    """Smallest spacing (pixels) kept between two LoG maxima: ``max(1, round(σ))``.

    Noise on the flank of one spot's response (a peak of standard deviation ``√2 σ``) can make
    a second maximum within about ``σ`` of the first; two real spots closer than ``≈ 2σ``
    merge into one response peak anyway, so nothing resolvable is lost.
    """
    return max(1, round(spot_sigma))


def log_response(image, spot_sigma: float = 1.5) -> np.ndarray:
    """Scale-normalised Laplacian-of-Gaussian response ``−σ² ∇²G_σ * image`` (bright spots > 0).

    A Gaussian spot of amplitude ``A`` and standard deviation ``σ = spot_sigma`` responds with
    ``A/2`` at its centre. Borders are handled by reflection.
    """
    _check_positive("spot_sigma", spot_sigma, "pixels")
    return _log(_image_2d(image), spot_sigma)


def _log(img: np.ndarray, spot_sigma: float) -> np.ndarray:
    from scipy import ndimage

    return -(spot_sigma**2) * ndimage.gaussian_laplace(img, sigma=spot_sigma, mode="reflect")


def _quadratic_offsets(response: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Sub-pixel offsets ``(d_col, d_row)`` of the vertex of a parabola through 3 pixels per axis.

    Pixels on the image border are not refined along the axis that leaves the image.
    """
    h, w = response.shape
    out = np.zeros((len(rows), 2))
    for axis, (idx, size) in enumerate(((cols, w), (rows, h))):
        ok = (idx > 0) & (idx < size - 1)
        r, c = rows[ok], cols[ok]
        if axis == 0:
            lo, mid, hi = response[r, c - 1], response[r, c], response[r, c + 1]
        else:
            lo, mid, hi = response[r - 1, c], response[r, c], response[r + 1, c]
        curvature = lo - 2.0 * mid + hi
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = np.where(curvature < 0, 0.5 * (lo - hi) / curvature, 0.0)
        out[ok, axis] = np.clip(delta, -0.5, 0.5)
    return out


#: Side lobes are modelled out to this many ``spot_sigma`` (the lobe is below 1 % of the peak
#: beyond ``5σ``).
LOBE_EXTENT = 5.0


def _extrema(signed: np.ndarray, floor: float, min_distance: int):
    """Local maxima of ``signed`` above ``floor``: (row, col) indices, sub-pixel (col, row)."""
    from skimage.feature import peak_local_max

    peaks = peak_local_max(
        signed, min_distance=min_distance, threshold_abs=floor, exclude_border=False
    )
    rows, cols = peaks[:, 0], peaks[:, 1]
    positions = np.stack([cols, rows], axis=1) + _quadratic_offsets(signed, rows, cols)
    return peaks, positions.astype(np.float64)


def side_lobes(
    shape: tuple[int, int], positions: np.ndarray, heights: np.ndarray, spot_sigma: float
) -> np.ndarray:
    """Side lobes of the LoG responses of Gaussian spots of std ``spot_sigma``.

    A spot of amplitude ``A`` at ``p`` has response ``(A/2)·h(|x − p|)`` with
    ``h(r) = (1 − t) e^{−t}``, ``t = r²/(4σ²)``: a peak inside ``r = 2σ`` and a negative ring
    of depth ``e^{−2} ≈ 0.135`` of the peak at ``r = 2√2 σ``. Returned is the sum over the
    given extrema (sub-pixel ``(col, row)`` positions, response values ``heights``) of their
    rings, ``height · h(r) · 1{r > 2σ}``, on an image of ``shape``.
    """
    h, w = shape
    out = np.zeros(shape)
    reach = int(np.ceil(LOBE_EXTENT * spot_sigma)) + 1
    for (col, row), height in zip(positions, heights):
        r0, r1 = max(int(row) - reach, 0), min(int(row) + reach + 1, h)
        c0, c1 = max(int(col) - reach, 0), min(int(col) + reach + 1, w)
        yy, xx = np.mgrid[r0:r1, c0:c1]
        t = ((xx - col) ** 2 + (yy - row) ** 2) / (4.0 * spot_sigma**2)
        out[r0:r1, c0:c1] += np.where(t > 1.0, height * (1.0 - t) * np.exp(-t), 0.0)
    return out


def decoy_threshold(targets: np.ndarray, decoys: np.ndarray, floor: float, fdr: float) -> float:
    """Smallest threshold ``t ≥ floor`` whose estimated false-discovery proportion is ``≤ fdr``.

    ``targets`` are the response values at the local maxima, ``decoys`` the magnitudes at the
    local minima (both above ``floor``). Background structure makes dark LoG blobs as often as
    bright ones, spots only bright ones, so ``#{decoys ≥ t}`` estimates the number of false
    targets ``≥ t``; the ratio ``#{decoys ≥ t} / #{targets ≥ t}`` is evaluated at ``floor``
    and at every target value. Targets at or above the returned value are kept.
    """
    targets, decoys = np.sort(targets), np.sort(decoys)
    candidates = np.concatenate([[floor], targets])
    n_targets = len(targets) - np.searchsorted(targets, candidates, side="left")
    n_decoys = len(decoys) - np.searchsorted(decoys, candidates, side="left")
    ok = n_decoys <= fdr * n_targets
    if not ok.any():  # decoys beyond every target: nothing stands out from the background
        return float(np.nextafter(candidates[-1], np.inf))
    return float(candidates[np.argmax(ok)])


def _noise_floor(response: np.ndarray, n_sd: float) -> float:
    # A noise-free image has MAD 0: keep numerical ripples (~1e-16) out all the same.
    return max(n_sd * robust_sd(response), 1e-9 * float(np.abs(response).max()))


def _log_candidates(response, floor, spot_sigma, min_distance, subpixel, correct):
    """Maxima beyond ``floor``: positions ``(col, row)``, values, and decoy magnitudes.

    With ``correct``, the rings of all extrema beyond the floor are removed first (bright
    spots' rings would pose as decoys, dark blobs' rings as targets) and both maxima and
    minima are taken on what is left; otherwise no decoys are returned.
    """
    if correct:
        bright, bright_at = _extrema(response, floor, min_distance)
        dark, dark_at = _extrema(-response, floor, min_distance)
        extrema = np.concatenate([bright, dark])
        response = response - side_lobes(
            response.shape,
            np.concatenate([bright_at, dark_at]),
            response[extrema[:, 0], extrema[:, 1]],
            spot_sigma,
        )
        decoys, _ = _extrema(-response, floor, min_distance)
        decoy_values = -response[decoys[:, 0], decoys[:, 1]]
    else:
        decoy_values = np.zeros(0)
    peaks, refined = _extrema(response, floor, min_distance)
    positions = refined if subpixel else peaks[:, ::-1].astype(np.float64)
    return positions, response[peaks[:, 0], peaks[:, 1]], decoy_values


def _detect_log(img, spot_sigma, threshold, n_sd, fdr, min_distance, subpixel):
    response = _log(img, spot_sigma)
    floor = _noise_floor(response, n_sd) if threshold is None else float(threshold)
    correct = threshold is None and fdr is not None
    positions, values, decoys = _log_candidates(
        response, floor, spot_sigma, min_distance, subpixel, correct
    )
    threshold = decoy_threshold(values, decoys, floor, fdr) if correct else floor
    return positions[values >= threshold], float(threshold)


def _detect_otsu(img, spot_sigma, threshold, smooth):
    from scipy import ndimage
    from skimage.filters import threshold_otsu
    from skimage.measure import label, regionprops

    smoothed = ndimage.gaussian_filter(img, 0.5 * spot_sigma, mode="reflect") if smooth else img
    if threshold is None:
        if np.ptp(smoothed) == 0:
            return np.zeros((0, 2)), float(smoothed.flat[0])
        threshold = float(threshold_otsu(smoothed))
    labels = label(smoothed > threshold, connectivity=2)
    # Intensity-weighted centroids (above the threshold) of the 8-connected components.
    weights = smoothed - threshold
    regions = regionprops(labels, intensity_image=weights)
    if not regions:
        return np.zeros((0, 2)), float(threshold)
    centroids = np.array([region.centroid_weighted for region in regions])  # (row, col)
    return centroids[:, ::-1].astype(np.float64), float(threshold)


def detect_spots(
    image,
    method: str = "log",
    spot_sigma: float = 1.5,
    threshold: float | None = None,
    n_sd: float = 5.0,
    fdr: float | None = 0.1,
    min_distance: int | None = None,
    subpixel: bool = True,
    smooth: bool = True,
    return_threshold: bool = False,
):
    """Detect bright point-like spots in one image.

    Parameters
    ----------
    image
        One ``H × W`` (or ``1 × H × W``) image of finite real values, bright spots on a dark
        background. It is not modified.
    method
        ``"log"``: local maxima of the scale-normalised Laplacian of Gaussian at
        ``spot_sigma`` above a threshold (see the module notes for the rule). ``"otsu"``: Otsu
        threshold of the image smoothed with a Gaussian of ``spot_sigma / 2`` pixels, then the
        intensity-weighted centroids of the 8-connected components above it.
    spot_sigma
        Stated spot size: the standard deviation, in pixels, of a spot's (Gaussian)
        intensity profile. The default 1.5 px (FWHM ≈ 3.5 px) is a diffraction-limited spot
        at the pixel sizes of common smFISH and puncta images, mid-range of the 1–3 px
        usually used for LoG spot detection.
    threshold
        Absolute threshold overriding the rule: on the LoG response for ``"log"`` (image
        intensity units; a Gaussian spot of amplitude ``A`` and std ``spot_sigma`` responds
        with ``A/2``), on the smoothed intensities for ``"otsu"`` (instead of Otsu's value).
    n_sd
        ``"log"`` only, with ``threshold=None``: the noise floor of the threshold is ``n_sd``
        robust standard deviations (normal-consistent MAD) of the response. The default 5
        keeps the expected number of maxima from pure noise below one per megapixel.
    fdr
        ``"log"`` only, with ``threshold=None``: raise the threshold above the noise floor
        until the decoy estimate of the false-discovery proportion (local minima of the
        ring-corrected response as decoys, module notes) is at most ``fdr``; ``None`` keeps
        the noise floor and the plain response.
    min_distance
        ``"log"``: minimum spacing of two maxima in pixels (Chebyshev); by default
        ``max(1, round(spot_sigma))``.
    subpixel
        ``"log"``: refine each maximum to the vertex of a parabola through the response at
        the maximum and its two neighbours along each axis (shift of at most half a pixel).
    smooth
        ``"otsu"``: smooth the image before thresholding (suppresses single-pixel noise).
    return_threshold
        Also return the threshold that was applied.

    Returns
    -------
    ``n × 2`` float64 array of spot positions as 0-based pixel coordinates ``(col, row)``
    (pixel ``(c, r)`` covers ``[c − ½, c + ½) × [r − ½, r + ½)``; convert to point units with
    :func:`spatialvi.pp.pixels_to_points`). ``"log"`` lists spots by decreasing response.
    With ``return_threshold=True``, the tuple ``(positions, threshold)``.

    Raises
    ------
    ValueError
        For an unknown ``method``, an image that is not one finite 2-D array, or a
        non-positive ``spot_sigma``, ``n_sd``, ``min_distance``, an ``fdr`` outside (0, 1]
        or a non-finite ``threshold``.
    """
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}; got {method!r}.")
    _check_positive("spot_sigma", spot_sigma, "pixels")
    _check_positive("n_sd", n_sd, "robust standard deviations")
    if fdr is not None and (not np.isscalar(fdr) or not 0 < fdr <= 1):
        raise ValueError(f"`fdr` must be in (0, 1] or None (noise floor only); got {fdr!r}.")
    if threshold is not None and (not np.isscalar(threshold) or not np.isfinite(threshold)):
        raise ValueError(
            f"`threshold` must be a finite number or None (the rule); got {threshold!r}."
        )
    if min_distance is None:
        min_distance = default_min_distance(spot_sigma)
    elif int(min_distance) != min_distance or min_distance < 1:
        raise ValueError(
            f"`min_distance` must be a positive integer (pixels); got {min_distance!r}."
        )
    img = _image_2d(image)
    if method == "log":
        positions, used = _detect_log(
            img, spot_sigma, threshold, n_sd, fdr, int(min_distance), subpixel
        )
    else:
        positions, used = _detect_otsu(img, spot_sigma, threshold, smooth)
    return (positions, used) if return_threshold else positions


def _rule_name(method: str, threshold, fdr) -> str:
    if threshold is not None:
        return "fixed"
    if method == "otsu":
        return "otsu"
    return "mad_floor" if fdr is None else "mad_floor_decoy_fdr"


def _detect_shared(
    planes, method, spot_sigma, threshold, n_sd, fdr, min_distance, subpixel, smooth
):
    """One threshold for all images: the rule evaluated on all of them pooled."""
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    if method == "otsu":
        if threshold is None:
            smoothed = [
                ndimage.gaussian_filter(_image_2d(p), 0.5 * spot_sigma, mode="reflect")
                if smooth
                else _image_2d(p)
                for p in planes
            ]
            pooled = np.concatenate([x.ravel() for x in smoothed])
            threshold = float(threshold_otsu(pooled)) if np.ptp(pooled) > 0 else pooled[0]
        found = [detect_spots(p, "otsu", spot_sigma, threshold, smooth=smooth) for p in planes]
        return found, float(threshold)
    responses = [_log(_image_2d(p), spot_sigma).astype(np.float32) for p in planes]
    if threshold is None:
        floor = _noise_floor(np.concatenate([r.ravel() for r in responses]), n_sd)
    else:
        floor = float(threshold)
    correct = threshold is None and fdr is not None
    candidates = [
        _log_candidates(r.astype(np.float64), floor, spot_sigma, min_distance, subpixel, correct)
        for r in responses
    ]
    if correct:
        threshold = decoy_threshold(
            np.concatenate([c[1] for c in candidates]),
            np.concatenate([c[2] for c in candidates]),
            floor,
            fdr,
        )
    else:
        threshold = floor
    return [pos[values >= threshold] for pos, values, _ in candidates], float(threshold)


def detect_points(
    adata: AnnData,
    method: str = "log",
    image_key: str = OBSM.IMAGE,
    key_added: str = OBSM.POINTS_DETECTED,
    spot_sigma: float = 1.5,
    threshold: float | None = None,
    n_sd: float = 5.0,
    fdr: float | None = 0.1,
    channel: int = 0,
    shared_threshold: bool = False,
    min_distance: int | None = None,
    subpixel: bool = True,
    smooth: bool = True,
    overwrite: bool = False,
    copy: bool = False,
    progress_bar: bool = False,
) -> AnnData | None:
    """Detect spots in every image of ``adata.obsm[image_key]`` and store them as point sets.

    Runs :func:`detect_spots` on channel ``channel`` of each image and converts the pixel
    positions to the SPEC point units, ``x = (col + ½)/s``, ``y = (row + ½)/s`` with
    ``s = max(H, W)``.

    Parameters
    ----------
    adata
        AnnData with images in ``obsm[image_key]`` (``n × C × H × W`` float32, finite).
    method, spot_sigma, threshold, n_sd, fdr, min_distance, subpixel, smooth
        As in :func:`detect_spots`: ``"log"`` or ``"otsu"``; spot std in pixels; an absolute
        threshold overriding the rule; noise multiple and decoy false-discovery level of the
        LoG rule; LoG peak spacing and sub-pixel refinement; Otsu pre-smoothing. A given
        ``threshold`` applies to every image.
    image_key
        ``obsm`` key of the images.
    key_added
        ``obsm`` key receiving the point sets; their count goes to
        ``obs[n_<key_added>]`` (``obs['n_points']`` for ``'points'``).
    channel
        Channel holding the spots.
    shared_threshold
        Evaluate the threshold rule once on all images pooled (noise floor from all pixels,
        targets and decoys of all images; Otsu on all pixels) and apply it to each. Use it for
        tiles of one large image: small tiles hold too few extrema for a stable per-image
        decoy estimate, and Otsu splits pure background. By default each image gets its own.
    overwrite
        Allow replacing an existing ``obsm[key_added]`` (and its count column). Without it,
        existing point sets, e.g. true points in ``obsm['points']``, are never overwritten.
    copy
        Return a modified copy instead of writing into ``adata``.
    progress_bar
        Show a progress bar over the images (per-image thresholds).

    Returns
    -------
    ``None``, or the modified copy with ``copy=True``. Written: ``obsm[key_added]``,
    ``n × K_max × 2`` float32 point sets padded with NaN (``K_max`` the largest count);
    ``obs[n_<key_added>]`` (int64 counts); ``uns['detect_points'][key_added]``, the
    parameters and the threshold applied to each image (``threshold_used``).

    Raises
    ------
    KeyError, ValueError
        Missing or malformed images, a channel out of range, ``key_added`` equal to
        ``image_key``, ``key_added`` already present without ``overwrite=True``, or the
        errors of :func:`detect_spots` for bad parameters.
    """
    from tqdm.auto import tqdm

    images = check_images(adata, image_key)
    n_obs, n_channels, height, width = images.shape
    if int(channel) != channel or not -n_channels <= channel < n_channels:
        raise ValueError(
            f"`channel` must index one of the {n_channels} channels of "
            f"adata.obsm[{image_key!r}]; got {channel!r}."
        )
    if key_added == image_key:
        raise ValueError(
            f"`key_added` ({key_added!r}) is the image key; pass another `key_added` for the "
            "point sets."
        )
    count_key = points_count_key(key_added)
    if not overwrite:
        if key_added in adata.obsm:
            raise ValueError(
                f"adata.obsm[{key_added!r}] already exists; pass `overwrite=True` to replace it "
                "or another `key_added`."
            )
        if count_key in adata.obs:
            raise ValueError(
                f"adata.obs[{count_key!r}] already exists (the count column of "
                f"{key_added!r}); pass `overwrite=True` to replace it or another `key_added`."
            )
    options = {"min_distance": min_distance, "subpixel": subpixel, "smooth": smooth}
    # Check the arguments once, on a tiny image, before the loop (and before copying).
    detect_spots(np.zeros((3, 3)), method, spot_sigma, threshold, n_sd, fdr, **options)
    if min_distance is None:
        min_distance = default_min_distance(spot_sigma)

    planes = images[:, channel]
    if shared_threshold:
        pixels, shared = _detect_shared(
            planes, method, spot_sigma, threshold, n_sd, fdr, min_distance, subpixel, smooth
        )
        used = np.full(n_obs, shared)
    else:
        pixels, used = [], np.empty(n_obs, dtype=np.float64)
        for i in tqdm(range(n_obs), desc=f"detect_points ({method})", disable=not progress_bar):
            found, used[i] = detect_spots(
                planes[i],
                method,
                spot_sigma,
                threshold,
                n_sd,
                fdr,
                **options,
                return_threshold=True,
            )
            pixels.append(found)
    found = [pixels_to_points(p, height, width) for p in pixels]
    counts = np.array([len(p) for p in found], dtype=np.int64)
    k_max = int(counts.max()) if n_obs else 0
    padded = np.full((n_obs, k_max, 2), np.nan, dtype=np.float32)
    for i, points in enumerate(found):
        padded[i, : len(points)] = points

    adata = adata.copy() if copy else adata
    adata.obsm[key_added] = padded
    adata.obs[count_key] = counts
    runs = dict(adata.uns.get(UNS.DETECT_POINTS, {}))
    runs[key_added] = {
        "method": method,
        "image_key": image_key,
        "channel": int(channel),
        "spot_sigma": float(spot_sigma),
        "threshold_rule": _rule_name(method, threshold, fdr),
        "n_sd": float(n_sd),
        "fdr": "none" if fdr is None else float(fdr),
        "shared_threshold": bool(shared_threshold),
        "min_distance": int(min_distance),
        "subpixel": bool(subpixel),
        "smooth": bool(smooth),
        "threshold_used": used,
    }
    adata.uns[UNS.DETECT_POINTS] = runs
    return adata if copy else None
