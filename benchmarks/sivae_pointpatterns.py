"""SIVAE on the six-class point-pattern benchmark: linear probes on held-out images.

Simulates ``--n-per-class`` training and ``--n-test`` test images per class
(:func:`spatialvi.sim.point_pattern_dataset`, 64 × 64, SNR 12.8) and prints the accuracy of a
logistic-regression probe (standardised features, fitted on the training images, scored on the
test images) on:

- the SI-VAE latent with true points (``--seeds``) and the plain VAE's (``pl_weight=0``, same
  seeds and architecture);
- SI-VAE trained on LoG- and Otsu-detected points, with erosion 0.1 instead of 0.25, and at
  SNR 9.6 (first seed each; ``--parts``);
- a sweep of ``pl_weight`` (0, 0.25, 1, 4, 16; first seed; ``--parts sweep``, not run by default);
- the training trajectory (``--parts trajectory``, not run by default): the probe every 10
  epochs up to ``--epochs`` (training resumed in 10-epoch calls, Adam restarted each call), with
  the image σ and the training and validation log pseudo-likelihood per point; per seed once
  with σ fixed at the images' estimated noise level (``noise_sd="estimate"``) and once learned
  (``noise_sd=None``);
- the Gibbs head alone with the class (one-hot) as the code, fitted to the true points: the
  short-range ψ per class it reaches for ψ-prior weights 0, 0.01 and 0.1 (``--parts oracle``,
  not run by default): what the head can represent when the code is perfect;
- references from the same run: raw pixels (PCA to 100 components), counts alone (count and its
  square), the L function of the true points (64 radii; it ignores the trend), and the L function
  with the true points' 4 × 4 quadrat counts (first- and second-order summaries together: what a
  latent that encodes trend and interaction could reach linearly).

Paper (5000 images per class): VAE ≈ 0.48; SI-VAE 0.90 with true points, 0.80 with Otsu at
SNR 12.8; 0.88 / 0.83 at 9.6. Also prints the training time and images per second.

Usage: ``python benchmarks/sivae_pointpatterns.py [--n-per-class 500] [--n-test 200]
[--epochs 30] [--seeds 0 1 2] [--parts main detected erosion snr sweep trajectory oracle]``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _common import QUIET, QUIET_WITH_HISTORY


def probe(train_features, train_labels, test_features, test_labels) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    return float(clf.fit(train_features, train_labels).score(test_features, test_labels))


def l_features(points, radii):
    from spatialvi.metrics import l_function

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.nan_to_num(
            np.array([l_function(p, radii, (0, 1, 0, 1))[1:] - radii[1:] for p in points])
        )


def quadrat_counts(points, n: int = 4) -> np.ndarray:
    """Counts of the points in an ``n × n`` grid of quadrats of the unit square, per pattern."""
    out = []
    for p in points:
        p = p[~np.isnan(p[:, 0])]
        out.append(np.histogram2d(p[:, 0], p[:, 1], bins=n, range=((0, 1), (0, 1)))[0].ravel())
    return np.array(out)


def oracle_head(train, psi_penalty: float, steps: int = 2000) -> dict[str, float]:
    """Fit the Gibbs head with the one-hot class as the code; mean ψ over r ≤ 0.05 per class."""
    import torch

    from spatialvi._keys import OBS, OBSM, REGISTRY_KEYS
    from spatialvi.module import SIVAEModule

    torch.manual_seed(0)
    points = torch.as_tensor(train.obsm[OBSM.POINTS])
    labels = train.obs[OBS.LABEL]
    codes = torch.as_tensor(labels.cat.codes.to_numpy(), dtype=torch.long)
    onehot = torch.nn.functional.one_hot(codes, len(labels.cat.categories)).float()
    module = SIVAEModule(
        (1, 64, 64),
        (0.0, 1.0, 0.0, 1.0),
        n_latent=onehot.shape[1],
        psi_penalty=psi_penalty,
        initial_log_intensity=float(np.log(52.0)),
    )
    features = module.derived_tensors({REGISTRY_KEYS.POINTS_KEY: points})
    data_f = features[REGISTRY_KEYS.PAIR_FEATURES_DATA_KEY]
    dummy_f = features[REGISTRY_KEYS.PAIR_FEATURES_DUMMY_KEY]
    optimizer = torch.optim.Adam(module.head.parameters(), 1e-2)
    for _ in range(steps):
        b = torch.randint(0, len(points), (128,))
        z = onehot[b]
        pl = module.log_pseudo_likelihood(z, points[b], data_f[b], dummy_f[b])
        ridge = psi_penalty * (module.head.psi_net(z) ** 2).sum(-1)
        loss = -(pl - ridge).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        psi = module.head.psi(torch.eye(onehot.shape[1]), torch.linspace(0.01, 0.05, 5))
    return {c: float(v) for c, v in zip(labels.cat.categories, psi.mean(1))}


def latent_probe(model, train, test) -> float:
    """Probe accuracy on the model's posterior-mean latents of the training and test images."""
    from spatialvi._keys import OBS

    return probe(
        model.get_latent_representation(),
        train.obs[OBS.LABEL],
        model.get_latent_representation(test),
        test.obs[OBS.LABEL],
    )


def train_sivae(train, test, seed, epochs, points_key=None, **kwargs):
    import scvi

    from spatialvi._keys import OBSM
    from spatialvi.model import SIVAE

    scvi.settings.seed = seed
    SIVAE.setup_anndata(train, points_key=points_key or OBSM.POINTS)
    model = SIVAE(train, **kwargs)
    start = time.perf_counter()
    model.train(max_epochs=epochs, **QUIET)
    seconds = time.perf_counter() - start
    return latent_probe(model, train, test), seconds, model.run_params_["images_per_second"]


def trajectory(train, test, seed, epochs, noise_sd) -> None:
    """Probe accuracy every 10 epochs (10-epoch ``train`` calls on one model)."""
    import scvi

    from spatialvi._keys import OBSM
    from spatialvi.model import SIVAE

    scvi.settings.seed = seed
    SIVAE.setup_anndata(train, points_key=OBSM.POINTS)
    model = SIVAE(train, noise_sd=noise_sd)
    label = "learned" if noise_sd is None else "estimated"
    for done in range(10, epochs + 1, 10):
        model.train(max_epochs=10, check_val_every_n_epoch=1, **QUIET_WITH_HISTORY)
        acc = latent_probe(model, train, test)
        history = model.history
        pl_train = float(history["log_pl_per_point_train"].iloc[-1, 0])
        pl_val = float(history["log_pl_per_point_validation"].iloc[-1, 0])
        sigma = float(model.module.log_sigma.detach().exp()[0])
        print(
            f"trajectory, image sigma {label}, seed {seed}, epoch {done:3d}: accuracy {acc:.3f}"
            f"  sigma {sigma:.3f}  log PL per point train {pl_train:.2f} / validation "
            f"{pl_val:.2f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-per-class", type=int, default=500)
    parser.add_argument("--n-test", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["main", "detected", "erosion", "snr"],
        choices=["main", "detected", "erosion", "snr", "sweep", "trajectory", "oracle"],
    )
    args = parser.parse_args()

    from sklearn.decomposition import PCA

    from spatialvi import pp, sim
    from spatialvi._keys import OBS, OBSM

    def data(snr, seed):
        train = sim.point_pattern_dataset(args.n_per_class, snr=snr, random_state=seed)
        test = sim.point_pattern_dataset(args.n_test, snr=snr, random_state=seed + 10_000)
        return train, test

    def row(label, acc, seconds=None, ips=None):
        extra = "" if seconds is None else f"  ({seconds:.0f} s, {ips:.0f} images/s)"
        print(f"{label:<44} accuracy {acc:.3f}{extra}", flush=True)

    first = args.seeds[0]
    train, test = data(12.8, first)
    y_train, y_test = train.obs[OBS.LABEL], test.obs[OBS.LABEL]
    print(f"== SNR 12.8: {train.n_obs} training, {test.n_obs} test images, {args.epochs} epochs")
    pixels = PCA(100, random_state=0).fit(train.obsm[OBSM.IMAGE].reshape(train.n_obs, -1))
    row(
        "reference: raw pixels (PCA 100)",
        probe(
            pixels.transform(train.obsm[OBSM.IMAGE].reshape(train.n_obs, -1)),
            y_train,
            pixels.transform(test.obsm[OBSM.IMAGE].reshape(test.n_obs, -1)),
            y_test,
        ),
    )
    counts = [
        np.column_stack([a.obs[OBS.N_POINTS], (a.obs[OBS.N_POINTS] - 52.0) ** 2])
        for a in (train, test)
    ]
    row("reference: count and count²", probe(counts[0], y_train, counts[1], y_test))
    radii = np.linspace(0, 0.25, 65)
    l_train, l_test = (l_features(a.obsm[OBSM.POINTS], radii) for a in (train, test))
    row("reference: L function of the true points", probe(l_train, y_train, l_test, y_test))
    row(
        "reference: L function + quadrat counts",
        probe(
            np.hstack([l_train, quadrat_counts(train.obsm[OBSM.POINTS])]),
            y_train,
            np.hstack([l_test, quadrat_counts(test.obsm[OBSM.POINTS])]),
            y_test,
        ),
    )
    if "main" in args.parts:
        for seed in args.seeds:
            if seed != first:
                train, test = data(12.8, seed)
            for name, weight in (("SI-VAE, true points", 1.0), ("VAE (pl_weight=0)", 0.0)):
                acc, sec, ips = train_sivae(train, test, seed, args.epochs, pl_weight=weight)
                row(f"{name}, seed {seed}", acc, sec, ips)
        train, test = data(12.8, first)
    if "oracle" in args.parts:
        for penalty in (0.0, 0.01, 0.1):
            short = oracle_head(train, penalty)
            print(
                f"head alone, class as code, psi prior {penalty:g}: short-range psi "
                + ", ".join(f"{c} {v:+.2f}" for c, v in short.items()),
                flush=True,
            )
    if "sweep" in args.parts:
        for weight in (0.0, 0.25, 1.0, 4.0, 16.0):
            acc, sec, ips = train_sivae(train, test, first, args.epochs, pl_weight=weight)
            row(f"SI-VAE, pl_weight {weight:g}, seed {first}", acc, sec, ips)
    if "trajectory" in args.parts:
        for seed in args.seeds:
            if seed != first:
                train, test = data(12.8, seed)
            for noise_sd in ("estimate", None):
                trajectory(train, test, seed, args.epochs, noise_sd)
        train, test = data(12.8, first)
    if "detected" in args.parts:
        for method in ("log", "otsu"):
            key = f"points_{method}"
            pp.detect_points(train, method=method, spot_sigma=1.0, key_added=key)
            acc, sec, ips = train_sivae(train, test, first, args.epochs, points_key=key)
            row(f"SI-VAE, {method} points, seed {first}", acc, sec, ips)
    if "erosion" in args.parts:
        acc, sec, ips = train_sivae(train, test, first, args.epochs, erosion=0.1)
        row(f"SI-VAE, true points, erosion 0.1, seed {first}", acc, sec, ips)
    if "snr" in args.parts:
        train, test = data(9.6, first)
        acc, sec, ips = train_sivae(train, test, first, args.epochs)
        row(f"SI-VAE, true points, SNR 9.6, seed {first}", acc, sec, ips)
        acc, sec, ips = train_sivae(train, test, first, args.epochs, pl_weight=0.0)
        row(f"VAE, SNR 9.6, seed {first}", acc, sec, ips)


if __name__ == "__main__":
    main()
