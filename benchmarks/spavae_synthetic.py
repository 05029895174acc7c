"""SpaVAE on simulated tissue with known truth: interpolation, enhancement, DE, SVGs, integration.

The sections come from ``spatialvi.sim.held_out_section`` and ``synthetic_tissue`` (the test settings a bit larger).
Interpolation: 10 % of 1000 spots held out, 11-NN domain accuracy of the ``predict_at`` latent
(peer: the nearest training spot's domain) and correlation of the predicted expression with
the true means, per spot and per spatially variable gene, against copying the nearest
training spot's denoised expression. Enhancement (``factor=2``): correlation of the sub-spots
with the simulated sub-spot truth against copying the spot, at all sub-spots and at those
across a domain boundary. DE: AUROC of ``lfc_mean`` (change mode) for each domain's markers.
SVGs: SpaLDVAE spatial-score AUROC against ``var['spatially_variable']`` (and of the
permutation p-values of ``tl.spatially_variable_genes``, ``--synthetic-permutations``, default
20), peer Moran's I. Integration (2 sections): ARI of the joint model per section against
single-section models, batch-mixing entropy joint (``batch_key``) against an uncorrected model
(no ``batch_key``, sections side by side).

``--max-epochs`` caps every training (default: 150 / 100 epochs for the SpaVAE / SpaLDVAE
fits). ``--seeds`` repeats the runs (mean and SD printed). Torch runs on ``--threads``
(default 1; the machine is shared) threads; set ``OMP_NUM_THREADS`` to match.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/spavae_synthetic.py --seeds 0
    python benchmarks/spavae_synthetic.py --max-epochs 5 --synthetic-permutations 2  # smoke

Time (one seed, one thread): ≈ 3 min; the smoke line ≈ 20 s (measured 17 s, imports included).
"""

from __future__ import annotations

import time

import numpy as np
from _spavae import (
    add_null_arguments,
    integration_scores,
    make_parser,
    morans_i,
    n_epochs,
    null_settings,
    null_text,
    over_seeds,
    run_part,
    train_quietly,
)

#: Trainings (epochs) when ``--max-epochs`` is not given.
SYNTH_SPAVAE_EPOCHS = 150
SYNTH_SPALDVAE_EPOCHS = 100


def _log_proportions(x: np.ndarray) -> np.ndarray:
    x = np.maximum(np.asarray(x, dtype=np.float64), 1e-12)
    return np.log(x / x.sum(1, keepdims=True))


def _row_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))


def synthetic_tasks(seed: int, max_epochs: int | None) -> dict:
    """Interpolation, enhancement and DE on one simulated section (10 % held out)."""
    import scvi
    from scipy.spatial import cKDTree
    from sklearn.metrics import roc_auc_score
    from sklearn.neighbors import KNeighborsClassifier

    from spatialvi._keys import LAYERS, OBS, OBSM, VAR
    from spatialvi.model import SpaVAE
    from spatialvi.sim import held_out_section

    full, held = held_out_section(
        n_spots=1000, n_genes=150, random_state=11 + seed, split_state=seed
    )
    train = full[~held].copy()
    SpaVAE.setup_anndata(train)
    scvi.settings.seed = seed
    # β fixed at 1 as in the tests: the PI controller's β ≥ 4 collapses the Gaussian dims on a
    # section this small, leaving nothing for predict_at to interpolate.
    model = SpaVAE(train, n_inducing=25)
    wall = train_quietly(model, max_epochs or SYNTH_SPAVAE_EPOCHS, beta=1.0)
    coords = full.obsm[OBSM.SPATIAL]
    domain = full.obs[OBS.DOMAIN].to_numpy()

    # Interpolation at the held-out spots.
    out = model.predict_at(coords[held])
    z_train = model.get_latent_representation()
    clf = KNeighborsClassifier(11).fit(z_train, train.obs[OBS.DOMAIN].to_numpy())
    acc = float((clf.predict(out.obsm[OBSM.X_SPAVAE]) == domain[held]).mean())
    nearest = cKDTree(train.obsm[OBSM.SPATIAL]).query(coords[held])[1]
    acc_nearest = float((train.obs[OBS.DOMAIN].to_numpy()[nearest] == domain[held]).mean())
    truth = np.log(full.layers[LAYERS.TRUE_MEAN][held])
    denoised = model.get_denoised_expression()
    ours = _log_proportions(out.X)
    copied = _log_proportions(denoised[nearest])
    sv = full.var[VAR.SPATIALLY_VARIABLE].to_numpy()

    # Resolution enhancement of the training spots against the simulated sub-spot truth.
    enhanced = model.enhance_resolution(2)
    parent = train.obs_names.get_indexer(enhanced.obs[OBS.PARENT_SPOT])
    fine = full.uns["synthetic_tissue"]["subspots"]
    dist, match = cKDTree(fine["spatial"]).query(enhanced.obsm[OBSM.SPATIAL])
    on_grid = dist < 1e-6
    fine_truth = np.log(fine["mean"][match[on_grid]])
    enh = _row_corr(_log_proportions(enhanced.X[on_grid]), fine_truth)
    copy_spot = _row_corr(_log_proportions(denoised[parent[on_grid]]), fine_truth)
    boundary = fine["domain"][match[on_grid]].astype(str) != train.obs[OBS.DOMAIN].to_numpy()[
        parent[on_grid]
    ].astype(str)

    # Differential expression: each domain against the rest, markers as positives.
    aurocs = []
    for d in train.obs[OBS.DOMAIN].cat.categories:
        de = model.differential_expression(groupby=OBS.DOMAIN, group1=d, mode="change", silent=True)
        is_marker = (train.var[VAR.MARKER_OF] == d).to_numpy()
        if 0 < is_marker.sum() < len(is_marker):
            aurocs.append(roc_auc_score(is_marker, de.loc[train.var_names, "lfc_mean"]))
    return {
        "seed": seed,
        "epochs": n_epochs(model),
        "train s": wall,
        "interp acc": acc,
        "nearest-spot acc": acc_nearest,
        "expr r/spot": float(_row_corr(ours, truth).mean()),
        "copy r/spot": float(_row_corr(copied, truth).mean()),
        "expr r/SVgene": float(np.median(_row_corr(ours[:, sv].T, truth[:, sv].T))),
        "copy r/SVgene": float(np.median(_row_corr(copied[:, sv].T, truth[:, sv].T))),
        "enh r": float(enh.mean()),
        "copy r": float(copy_spot.mean()),
        "enh r boundary": float(enh[boundary].mean()),
        "copy r boundary": float(copy_spot[boundary].mean()),
        "n boundary": int(boundary.sum()),
        "DE marker AUROC": float(np.mean(aurocs)),
        "DE AUROC min": float(np.min(aurocs)),
    }


def synthetic_svg(seed: int, max_epochs: int | None, null: dict):
    """SpaLDVAE spatial scores and permutation p-values against the simulated SVG truth."""
    import scvi
    from sklearn.metrics import roc_auc_score

    from spatialvi._keys import VAR
    from spatialvi.model import SpaLDVAE
    from spatialvi.sim import synthetic_tissue
    from spatialvi.tl import spatially_variable_genes

    adata = synthetic_tissue(n_spots=500, n_genes=120, n_domains=4, random_state=7 + seed)
    truth = adata.var[VAR.SPATIALLY_VARIABLE].to_numpy()
    SpaLDVAE.setup_anndata(adata)
    scvi.settings.seed = seed
    # The SpaLDVAE tests' settings (fixed β = 5, lr 1e-2, batch 64).
    model = SpaLDVAE(adata, n_gp=3, n_inducing=25)
    wall = train_quietly(
        model, max_epochs or SYNTH_SPALDVAE_EPOCHS, beta=5.0, lr=1e-2, batch_size=64
    )
    scores = model.spatial_scores()
    start = time.perf_counter()
    spatially_variable_genes(model, progress_bar=False, **null)
    t_svg = time.perf_counter() - start
    pval = adata.var[VAR.SVG_PVAL].to_numpy()
    start = time.perf_counter()
    moran = morans_i(adata).to_numpy()
    t_moran = time.perf_counter() - start
    return {
        "seed": seed,
        "epochs": n_epochs(model),
        "train s": wall,
        "score AUROC": float(roc_auc_score(truth, scores.to_numpy())),
        "pval AUROC": float(roc_auc_score(truth, -pval)),
        "SVG p<=0.05": float((pval[truth] <= 0.05).mean()),
        "non-SVG p<=0.05": float((pval[~truth] <= 0.05).mean()),
        "Moran AUROC": float(roc_auc_score(truth, moran)),
        "null s": t_svg,
        "Moran s": t_moran,
        "n SVG": int(truth.sum()),
    }


def synthetic_integration(seed: int, max_epochs: int | None) -> dict:
    """Joint, uncorrected and single-section SpaVAE on two simulated sections."""
    from spatialvi._keys import OBS
    from spatialvi.sim import synthetic_tissue

    adata = synthetic_tissue(
        n_spots=500, n_genes=100, n_domains=4, n_sections=2, random_state=3 + seed
    )
    kwargs = {"max_epochs": max_epochs or SYNTH_SPAVAE_EPOCHS, "beta": 1.0}
    return integration_scores(adata, OBS.SECTION, OBS.DOMAIN, 4, seed, kwargs, 25)


def run_synthetic(seeds, max_epochs, null: dict) -> None:
    print(
        "== synthetic: 1000 spots x 150 genes, 4 domains, 10 % held out, SpaVAE n_inducing=25, "
        f"β=1, {max_epochs or SYNTH_SPAVAE_EPOCHS} epochs ==",
        flush=True,
    )
    over_seeds(
        "synthetic interpolation/enhancement/DE",
        seeds,
        lambda seed: synthetic_tasks(seed, max_epochs),
    )
    print(
        "== synthetic SVG: 500 spots x 120 genes, SpaLDVAE n_gp=3 β=5 lr 1e-2, "
        f"{max_epochs or SYNTH_SPALDVAE_EPOCHS} epochs; {null_text(null, 120)} ==",
        flush=True,
    )
    over_seeds("synthetic SVG", seeds, lambda seed: synthetic_svg(seed, max_epochs, null))
    print(
        "== synthetic integration: 2 sections x 500 spots x 100 genes, batch effect 0.5, 4 "
        f"domains, β=1, {max_epochs or SYNTH_SPAVAE_EPOCHS} epochs; entropy max ln2=0.693 ==",
        flush=True,
    )
    over_seeds("synthetic integration", seeds, lambda seed: synthetic_integration(seed, max_epochs))


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = make_parser(
        __doc__,
        f"cap every training (default: {SYNTH_SPAVAE_EPOCHS} SpaVAE / "
        f"{SYNTH_SPALDVAE_EPOCHS} SpaLDVAE epochs)",
        data=False,
    )
    add_null_arguments(parser, "--synthetic-permutations", 20)
    args = parser.parse_args(argv)
    null = null_settings(args, args.synthetic_permutations)
    run_part("synthetic", args.threads, lambda: run_synthetic(args.seeds, args.max_epochs, null))


if __name__ == "__main__":
    main()
