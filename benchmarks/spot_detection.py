"""Spot detection accuracy: LoG and Otsu on the smFISH crops and on synthetic Gaussian spots.

Detections are matched one-to-one to the annotations (Hungarian matching, 3 px radius, in
0-based pixels) and scored by precision, recall and F1, next to the reference figures of the
data README (LoG F1 ≈ 0.90; Otsu + connected-component centroids 0.54–0.69). Defaults of
:func:`spatialvi.pp.detect_spots` throughout (``spot_sigma = 1.5``, noise floor 5 MAD, decoy
FDR 0.1), none of them fitted to these crops.

Synthetic images: 128 × 128 px, 60 Gaussian spots (std 1.5 px, amplitude 0.5, at least 5 px
apart) on a background of 0.1 with white Gaussian noise of sd amplitude / SNR, at SNR 12.8 and
9.6; RMS localisation error of the matched pairs in pixels.

The crops are also cut into tiles (``--tile-size``, default 64 px) and detected per tile,
with per-tile thresholds and with one threshold shared by all tiles
(``detect_points(..., shared_threshold=True)``); F1 is pooled over the tiles.

``--sensitivity`` adds LoG F1 on the crops for other spot sizes and FDR levels (a sensitivity
check, not used to choose the defaults); ``--floor-only`` adds the noise-floor rule alone
(``fdr=None``).

Usage: ``python benchmarks/spot_detection.py [--seeds 0 1 2 3 4] [--sensitivity]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

REFERENCE = {"log": "≈ 0.90", "otsu": "0.54–0.69"}


def render_spots(seed: int, snr: float, n: int = 60, size: int = 128, sigma: float = 1.5):
    """Synthetic image of Gaussian spots at known positions (0-based ``(col, row)``)."""
    rng = np.random.default_rng(seed)
    positions: list[np.ndarray] = []
    while len(positions) < n:
        p = rng.uniform(2, size - 3, 2)
        if all(np.hypot(*(p - q)) >= 5.0 for q in positions):
            positions.append(p)
    pts = np.array(positions)
    rows, cols = np.mgrid[:size, :size]
    image = np.full((size, size), 0.1)
    for c, r in pts:
        image += 0.5 * np.exp(-((cols - c) ** 2 + (rows - r) ** 2) / (2 * sigma**2))
    return image + rng.normal(0.0, 0.5 / snr, image.shape), pts


def row(label: str, scores: dict, extra: str = "") -> str:
    return (
        f"{label:<22} P {scores['precision']:.3f}  R {scores['recall']:.3f}  "
        f"F1 {scores['f1']:.3f}  (detected {scores['n_detected']:>3}, true {scores['n_true']:>3})"
        f"{extra}"
    )


def crops_report(variants: dict[str, dict], sensitivity: bool) -> None:
    from spatialvi.datasets import smfish
    from spatialvi.metrics import detection_scores
    from spatialvi.pp import detect_spots

    crops = smfish()
    print("smFISH crops (3 px radius, one-to-one):")
    for name, crop in crops.items():
        for label, kwargs in variants.items():
            start = time.perf_counter()
            detected = detect_spots(crop.image, **kwargs)
            seconds = time.perf_counter() - start
            scores = detection_scores(detected, crop.spots, radius=3.0)
            ref = REFERENCE.get(kwargs.get("method", "log"), "")
            print(row(f"{name} {label}", scores, f"  ref {ref}  {seconds * 1e3:.0f} ms"))
    if not sensitivity:
        return
    print("sensitivity of LoG F1 on the crops (not used to choose defaults):")
    for sigma in (1.0, 1.25, 1.5, 2.0, 2.5):
        f1 = [
            detection_scores(detect_spots(c.image, spot_sigma=sigma), c.spots)["f1"]
            for c in crops.values()
        ]
        print(f"  spot_sigma {sigma:<4}  F1 " + " / ".join(f"{v:.3f}" for v in f1))
    for fdr in (0.05, 0.1, 0.2, None):
        f1 = [
            detection_scores(detect_spots(c.image, fdr=fdr), c.spots)["f1"] for c in crops.values()
        ]
        print(f"  fdr {fdr!s:<11}  F1 " + " / ".join(f"{v:.3f}" for v in f1))


def tiles_report(tile_size: int) -> None:
    """Pooled F1 over the tiles of each crop: per-tile thresholds against one shared one."""
    from spatialvi.datasets import smfish
    from spatialvi.metrics import detection_scores
    from spatialvi.pp import detect_points, points_to_pixels

    print(f"smFISH crops cut into {tile_size} px tiles (pooled over tiles):")
    for name in ("tfrc_300", "tfrc_500", "tfrc_700"):
        tiles = smfish(crops=(name,), tile_size=tile_size)
        parts = []
        for method in ("log", "otsu"):
            for shared in (False, True):
                key = f"{method}_{'shared' if shared else 'per_tile'}"
                detect_points(tiles, method=method, key_added=key, shared_threshold=shared)
                totals = np.zeros(3)
                for i in range(tiles.n_obs):
                    found = tiles.obsm[key][i, : tiles.obs[f"n_{key}"].iloc[i]]
                    truth = tiles.obsm["points"][i, : tiles.obs["n_points"].iloc[i]]
                    s = detection_scores(
                        points_to_pixels(found, tile_size, tile_size),
                        points_to_pixels(truth, tile_size, tile_size),
                    )
                    totals += (s["n_matched"], s["n_detected"], s["n_true"])
                f1 = 2 * totals[0] / (totals[1] + totals[2])
                parts.append(f"{key} F1 {f1:.3f}")
        print(f"{name} ({tiles.n_obs} tiles): " + ", ".join(parts))


def synthetic_report(variants: dict[str, dict], seeds: list[int]) -> None:
    from spatialvi.metrics import detection_scores, match_points
    from spatialvi.pp import detect_spots

    print(f"synthetic Gaussian spots (seeds {seeds}; mean over seeds, F1 range):")
    for snr in (12.8, 9.6):
        for label, kwargs in variants.items():
            res = []
            for seed in seeds:
                image, truth = render_spots(seed, snr)
                detected = detect_spots(image, **kwargs)
                scores = detection_scores(detected, truth, radius=3.0)
                _, _, dist = match_points(detected, truth, 3.0)
                rms = np.sqrt(np.mean(dist**2)) if len(dist) else np.nan
                res.append((scores["precision"], scores["recall"], scores["f1"], rms))
            p, r, f1, rms = np.array(res).T
            print(
                f"SNR {snr:<5} {label:<12} P {p.mean():.3f}  R {r.mean():.3f}  "
                f"F1 {f1.mean():.3f} ({f1.min():.3f}–{f1.max():.3f})  RMS error {rms.mean():.3f} px"
            )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--sensitivity", action="store_true")
    parser.add_argument("--floor-only", action="store_true")
    parser.add_argument("--no-crops", action="store_true", help="synthetic images only")
    parser.add_argument("--tile-size", type=int, default=64, help="0: skip the tile report")
    args = parser.parse_args(argv)

    variants: dict[str, dict] = {"LoG": {"method": "log"}, "Otsu": {"method": "otsu"}}
    if args.floor_only:
        variants["LoG floor"] = {"method": "log", "fdr": None}
    if not args.no_crops:
        crops_report(variants, args.sensitivity)
        if args.tile_size:
            tiles_report(args.tile_size)
    synthetic_report(variants, args.seeds)


if __name__ == "__main__":
    main()
