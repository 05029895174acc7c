"""The six-class point-pattern dataset: what counts, summary functions and detection tell apart.

For each SNR (default 12.8 and 9.6, the paper's), simulates ``--n-per-class`` patterns per class
with :func:`spatialvi.sim.point_pattern_dataset` and prints:

- mean ± sd of the count per class (all classes have ≈ 52 expected points; the variances differ);
- probes (5-fold stratified cross-validated multinomial logistic regression, standardised
  features): on the count alone (linear, and with its square: dispersion), on the L function
  of the true points (64 radii up to ¼ of the side; with the points' mean x for the trend),
  and on the L function of LoG- and
  Otsu-detected points — references for SIVAE's linear probe (paper: VAE 0.48, SI-VAE 0.90
  with true points, 0.80–0.90 with detected ones);
- detection against the true points (one-to-one matching within 1.5 px, pooled F1);
- the Strauss fit (:func:`spatialvi.tl.fit_strauss`, R = 0.05) on the true points of the
  homogeneous Strauss class: mean ± sd of γ̂ (true 0.1);
- simulation time per pattern.

Usage: ``python benchmarks/point_patterns.py [--n-per-class 500] [--snr 12.8 9.6] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def probe_accuracy(features: np.ndarray, labels: np.ndarray, seed: int) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    scores = cross_val_score(model, features, labels, cv=folds)
    return float(scores.mean()), float(scores.std())


def l_features(points: np.ndarray, radii: np.ndarray) -> np.ndarray:
    from spatialvi import metrics

    out = np.zeros((len(points), len(radii) - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # patterns with < 2 points: L undefined, left at 0
        for i, row in enumerate(points):
            values = metrics.l_function(row, radii, (0, 1, 0, 1))[1:]
            out[i] = np.nan_to_num(values - radii[1:])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-per-class", type=int, default=500)
    parser.add_argument("--snr", type=float, nargs="+", default=[12.8, 9.6])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from spatialvi import metrics, pp, sim, tl
    from spatialvi._keys import OBS, OBSM

    radii = np.linspace(0, 0.25, 65)
    sim.dataset_parameters()  # calibration of the Strauss β, cached (not in the timing)
    for snr in args.snr:
        start = time.perf_counter()
        adata = sim.point_pattern_dataset(
            args.n_per_class, snr=snr, random_state=args.seed, progress_bar=False
        )
        elapsed = time.perf_counter() - start
        labels = adata.obs[OBS.LABEL].to_numpy()
        counts = adata.obs[OBS.N_POINTS].to_numpy().astype(float)
        print(f"\n== SNR {snr}: {adata.n_obs} images, {elapsed / adata.n_obs * 1e3:.1f} ms/pattern")
        for name in sim.PATTERN_CLASSES:
            c = counts[labels == name]
            print(f"  {name:<14} count {c.mean():6.2f} ± {c.std(ddof=1):5.2f}")
        rows = {
            "count (linear)": counts[:, None],
            "count + count²": np.column_stack([counts, (counts - counts.mean()) ** 2]),
            "L of true points": l_features(adata.obsm[OBSM.POINTS], radii),
        }
        # the inhomogeneous classes differ in first order: add the points' mean x to L
        mean_x = np.nanmean(adata.obsm[OBSM.POINTS][..., 0], axis=1)
        rows["L + mean x (true)"] = np.column_stack([rows["L of true points"], mean_x])
        for method in ("log", "otsu"):
            key = f"points_{method}"
            pp.detect_points(adata, method=method, spot_sigma=1.0, key_added=key)
            rows[f"L of {method} points"] = l_features(adata.obsm[key], radii)
            matched = detected = true = 0
            for i in range(adata.n_obs):
                found = adata.obsm[key][i]
                truth = adata.obsm[OBSM.POINTS][i]
                scores = metrics.detection_scores(
                    found[~np.isnan(found[:, 0])] * 64, truth[~np.isnan(truth[:, 0])] * 64, 1.5
                )
                matched += scores["n_matched"]
                detected += scores["n_detected"]
                true += scores["n_true"]
            print(
                f"  detection {method:<5} precision {matched / max(detected, 1):.3f}  "
                f"recall {matched / max(true, 1):.3f}  F1 {2 * matched / max(detected + true, 1):.3f}"
            )
        for name, features in rows.items():
            mean, sd = probe_accuracy(features, labels, args.seed)
            print(f"  probe on {name:<18} accuracy {mean:.3f} ± {sd:.3f} (chance 0.167)")
        strauss = adata.obsm[OBSM.POINTS][labels == "strauss"]
        gammas = np.array([tl.fit_strauss(p, (0, 1, 0, 1), 0.05, n_grid=64).gamma for p in strauss])
        print(
            f"  Strauss fit on true points: γ̂ = {gammas.mean():.3f} ± {gammas.std(ddof=1):.3f} "
            f"(true {sim.dataset_parameters()['strauss']['gamma']})"
        )


if __name__ == "__main__":
    main()
