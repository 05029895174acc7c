"""SpaVAE analyses: interpolation, resolution enhancement, SVGs, DE, multi-slice integration, speed.

Parts (``--part``; ``all`` runs them in this order):

* ``synthetic``: simulated tissue with known truth (``spatialvi.sim.synthetic_tissue``, the test
  settings a bit larger). Interpolation: 10 % of 1000 spots held out, 11-NN domain accuracy of
  the ``predict_at`` latent (peer: the nearest training spot's domain) and correlation of the
  predicted expression with the true means, per spot and per spatially variable gene, against
  copying the nearest training spot's denoised expression. Enhancement (``factor=2``):
  correlation of the sub-spots with the simulated sub-spot truth against copying the spot, at
  all sub-spots and at those across a domain boundary. DE: AUROC of ``lfc_mean`` (change mode)
  for each domain's markers. SVGs: SpaLDVAE spatial-score AUROC against
  ``var['spatially_variable']`` (and of the permutation p-values of
  ``tl.spatially_variable_genes``), peer Moran's I. Integration (2 sections): ARI of the joint
  model per section against single-section models, batch-mixing entropy joint (``batch_key``)
  against an uncorrected model (no ``batch_key``, sections side by side).
* ``interpolation``: DLPFC 151673, 10 % of the spots masked at random (seeded), SpaVAE trained on
  the other 90 %, ``predict_at`` the masked coordinates, 11-NN classifier on the training latent
  with the ``layer`` annotation (unannotated spots skipped), accuracy on the masked spots;
  non-spatial peer: 11-NN on the training spots' coordinates alone. Paper's tutorial: 0.931.
* ``svg``: DLPFC 151507, SpaLDVAE + ``tl.spatially_variable_genes`` (``"refit"`` null,
  ``--svg-permutations``, default 5, pooled over genes); top-50 by spatial score against the
  top-50 by Moran's I of log-normalised counts (``spatialvi.metrics.morans_i``, squidpy):
  overlap, Jaccard, chance level; Spearman correlation of the two scores over all genes.
* ``integration``: DLPFC 151507 + 151508 on their 836 shared genes. Joint SpaVAE
  (``batch_key='section'``, one GP per section), the uncorrected model (no ``batch_key``; the
  second section shifted right by one section width, one 7 × 7 grid of inducing points per
  section and ``loc_range`` scaled so that µm map to the GP frame as for one section) and one
  model per section. KMeans (k = 7, n_init = 100) on each latent, layer ARI per section;
  batch-mixing entropy (50-NN, balanced; ln 2 = 0.693 is perfect mixing); wall times.
* ``predict``: ``predict_at`` at 100 000 random points inside DLPFC 151673 (within one spot
  spacing of a spot) after a short training (``--predict-epochs``, default 20: the speed does
  not depend on training length), against the authors' ``batching_predict_samples`` procedure
  (ttgump/spaVAE), re-implemented here on the same trained model: per batch of 512 query points
  a Python loop over the points for the nearest training spot, and the GP posterior
  re-conditioned on all training spots with the direct float64 formulas. The loop is timed on
  ``--loop-points`` (default 1000) points and extrapolated linearly to 100 000 (printed as such).

``--max-epochs`` caps every training (default: ``train()``'s default, early stopping within
5000 epochs, for DLPFC; 150 / 100 epochs for the synthetic SpaVAE / SpaLDVAE fits).
``--seeds`` repeats the training parts (mean and SD printed). Torch runs on ``--threads``
(default 1; the machine is shared) threads; set ``OMP_NUM_THREADS`` to match.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/spavae_tasks.py --part all --seeds 0
    OMP_NUM_THREADS=2 python benchmarks/spavae_tasks.py --part predict --threads 2
    python benchmarks/spavae_tasks.py --part svg --svg-permutations 100
    python benchmarks/spavae_tasks.py --part all --max-epochs 5 --svg-permutations 2  # smoke

Time of a full run (one seed, one thread; estimated, not measured end to end): the smoke runs
measured 0.7–0.8 s per epoch (validation included) for one DLPFC section, and DLPFC 151673 was
still improving past 900 epochs under the early-stopping rule, so ≈ 1000–2000 epochs → 12–25
min per single-section model. synthetic ≈ 3 min; interpolation ≈ 12–25 min; svg ≈ 15–30 min
(the refit null ≈ 30 s per permutation at 300 steps); integration ≈ 1–2.5 h (joint and
uncorrected models on both sections, plus one model per section); predict ≈ 1 min.
``--part all`` ≈ 2–3.5 h per seed. ``--max-epochs 5`` runs everything in ≈ 1 min.
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from pathlib import Path

import numpy as np
from _common import QUIET, quiet_logging

#: Synthetic-part trainings (epochs) when ``--max-epochs`` is not given.
SYNTH_SPAVAE_EPOCHS = 150
SYNTH_SPALDVAE_EPOCHS = 100


# -- helpers --------------------------------------------------------------------------------------
def _train(model, max_epochs: int | None = None, **kwargs) -> float:
    """Train quietly (``max_epochs=None``: the model's default); return the wall time."""
    if max_epochs is not None:
        kwargs["max_epochs"] = max_epochs
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.train(**QUIET, **kwargs)
    return time.perf_counter() - start


def _print_row(title: str, row: dict) -> None:
    text = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
    print(f"{title}: {text}", flush=True)


def _summary(title: str, rows: list[dict]) -> None:
    """Mean and SD over seeds of every numeric entry."""
    if len(rows) < 2:
        return
    parts = []
    for key in rows[0]:
        vals = [r[key] for r in rows]
        numeric = all(
            isinstance(v, float | int | np.floating) and not isinstance(v, bool) for v in vals
        )
        if key == "seed" or not numeric:
            continue
        vals = np.asarray(vals, dtype=float)
        parts.append(f"{key}={vals.mean():.4g}±{vals.std(ddof=1):.2g}")
    print(f"{title} over {len(rows)} seeds: " + " ".join(parts), flush=True)


def _over_seeds(title: str, seeds, task) -> None:
    """Run ``task(seed)`` for each seed, printing each row and then the summary."""
    rows = []
    for seed in seeds:
        rows.append(task(seed))
        _print_row(title, rows[-1])
    _summary(title, rows)


def _log_proportions(x: np.ndarray) -> np.ndarray:
    x = np.maximum(np.asarray(x, dtype=np.float64), 1e-12)
    return np.log(x / x.sum(1, keepdims=True))


def _row_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))


def _log_normalised(adata):
    """Copy of ``adata`` with log1p(counts / library × 1e4) in ``X`` (for Moran's I)."""
    import scanpy as sc

    out = adata.copy()
    sc.pp.normalize_total(out, target_sum=1e4)
    sc.pp.log1p(out)
    return out


def _morans_i(adata):
    """Moran's I of every gene's log-normalised counts (``spatialvi.metrics.morans_i``).

    squidpy's ``spatial_autocorr`` leaves torch with more threads than it had (measured: 1 -> 2);
    on a shared 2-core machine that slowed the following trainings ~9x, so the count is restored.
    Its graph-building log line is silenced (squidpy sets its logger up on first import).
    """
    import squidpy  # noqa: F401
    import torch

    from spatialvi.metrics import morans_i

    logging.getLogger("spatialdata._logging").setLevel(logging.WARNING)
    threads = torch.get_num_threads()
    try:
        return morans_i(_log_normalised(adata))
    finally:
        torch.set_num_threads(threads)


def _kmeans(z: np.ndarray, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(k, n_init=100, random_state=seed).fit_predict(z)


def _epochs(model) -> int:
    return int(model.n_epochs_trained)


def _dlpfc(section: str, data: Path | None):
    from spatialvi.datasets import dlpfc

    return dlpfc(section, path=data)


def _null_text(null: dict, n_genes: int) -> str:
    n = null["n_permutations"]
    n_null = n * n_genes if null["pooled"] else n
    return (
        f"refit null {n} permutations x {null['refit_steps']} steps, "
        f"{'pooled over genes' if null['pooled'] else 'per gene'} (min p {1 / (1 + n_null):.2g})"
    )


# -- synthetic ------------------------------------------------------------------------------------
def synthetic_tasks(seed: int, max_epochs: int | None) -> dict:
    """Interpolation, enhancement and DE on one simulated section (10 % held out)."""
    import scvi
    from scipy.spatial import cKDTree
    from sklearn.metrics import roc_auc_score
    from sklearn.neighbors import KNeighborsClassifier

    from spatialvi._keys import LAYERS, OBS, OBSM, VAR
    from spatialvi.model import SpaVAE
    from spatialvi.sim import synthetic_tissue

    full = synthetic_tissue(
        n_spots=1000,
        n_genes=150,
        n_domains=4,
        subspot_factor=2,
        marker_lfc=(1.0, 1.5),
        random_state=11 + seed,
    )
    held = np.zeros(full.n_obs, dtype=bool)
    rng = np.random.default_rng(seed)
    held[rng.choice(full.n_obs, full.n_obs // 10, replace=False)] = True
    train = full[~held].copy()
    SpaVAE.setup_anndata(train)
    scvi.settings.seed = seed
    # β fixed at 1 as in the tests: the PI controller's β ≥ 4 collapses the Gaussian dims on a
    # section this small, leaving nothing for predict_at to interpolate.
    model = SpaVAE(train, n_inducing=25)
    wall = _train(model, max_epochs or SYNTH_SPAVAE_EPOCHS, beta=1.0)
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
        "epochs": _epochs(model),
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
    wall = _train(model, max_epochs or SYNTH_SPALDVAE_EPOCHS, beta=5.0, lr=1e-2, batch_size=64)
    scores = model.spatial_scores()
    start = time.perf_counter()
    spatially_variable_genes(model, progress_bar=False, **null)
    t_svg = time.perf_counter() - start
    pval = adata.var[VAR.SVG_PVAL].to_numpy()
    start = time.perf_counter()
    moran = _morans_i(adata).to_numpy()
    t_moran = time.perf_counter() - start
    return {
        "seed": seed,
        "epochs": _epochs(model),
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


def _side_by_side(coords: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, float]:
    """Shift the ``second`` section right by one section width past the first; return shift."""
    first = ~second
    width = np.ptp(coords[first, 0])
    shift = coords[first, 0].max() - coords[second, 0].min() + width
    out = coords.copy()
    out[second, 0] += shift
    return out, float(shift)


def integration_scores(
    joint, section_key: str, label_key: str, k: int, seed: int, train_kwargs: dict, n_inducing
) -> dict:
    """Joint (batch-aware) vs uncorrected vs single-section SpaVAE on the same spots."""
    import scvi

    from spatialvi.geometry import coordinate_rescaling, grid_inducing_points
    from spatialvi.metrics import ari, batch_mixing_entropy
    from spatialvi.model import SpaVAE

    sections = joint.obs[section_key].astype(str).to_numpy()
    levels = list(dict.fromkeys(sections))
    if len(levels) != 2:
        raise ValueError(f"expected two sections, got {levels}")
    truth = joint.obs[label_key]
    row: dict = {"seed": seed}

    # Joint model: one GP per section, section one-hot in encoder and decoder.
    adata = joint.copy()
    SpaVAE.setup_anndata(adata, batch_key=section_key)
    scvi.settings.seed = seed
    model = SpaVAE(adata, n_inducing=n_inducing)
    t_joint = _train(model, **train_kwargs)
    z = model.get_latent_representation()
    labels = _kmeans(z, k, seed)
    aris = [ari(truth[sections == s], labels[sections == s]) for s in levels]
    row.update({f"joint ARI {s}": a for s, a in zip(levels, aris)})
    row["joint ARI mean"] = float(np.mean(aris))
    row["joint entropy"] = batch_mixing_entropy(z, sections)
    row["joint epochs"] = _epochs(model)

    # Uncorrected: one GP over both sections placed side by side, no section covariate. Each
    # section keeps the inducing grid it would have alone, and loc_range is chosen so that µm
    # map to GP units as for the first section alone.
    adata = joint.copy()
    second = sections == levels[1]
    coords, _ = _side_by_side(np.asarray(adata.obsm["spatial"], dtype=float), second)
    adata.obsm["spatial"] = coords
    inducing = []
    for mask in (~second, second):
        offset, scale = coordinate_rescaling(coords[mask])
        inducing.append(grid_inducing_points((coords[mask] - offset) * scale, n_inducing))
        inducing[-1] = inducing[-1] / scale + offset
    scale_single = coordinate_rescaling(coords[~second])[1][0]
    loc_range = float(np.ptp(coords, axis=0).max() * scale_single)
    SpaVAE.setup_anndata(adata)
    scvi.settings.seed = seed
    model = SpaVAE(adata, inducing=np.vstack(inducing), loc_range=loc_range)
    t_unc = _train(model, **train_kwargs)
    z = model.get_latent_representation()
    labels = _kmeans(z, k, seed)
    aris = [ari(truth[sections == s], labels[sections == s]) for s in levels]
    row.update({f"uncorr ARI {s}": a for s, a in zip(levels, aris)})
    row["uncorr ARI mean"] = float(np.mean(aris))
    row["uncorr entropy"] = batch_mixing_entropy(z, sections)
    row["uncorr epochs"] = _epochs(model)

    # One model per section.
    t_single, aris = 0.0, []
    for s in levels:
        adata = joint[sections == s].copy()
        SpaVAE.setup_anndata(adata)
        scvi.settings.seed = seed
        model = SpaVAE(adata, n_inducing=n_inducing)
        t_single += _train(model, **train_kwargs)
        labels = _kmeans(model.get_latent_representation(), k, seed)
        aris.append(ari(adata.obs[label_key], labels))
        row[f"single ARI {s}"] = aris[-1]
        row[f"single epochs {s}"] = _epochs(model)
    row["single ARI mean"] = float(np.mean(aris))
    row.update(
        {
            "joint s": t_joint,
            "uncorr s": t_unc,
            "singles s": t_single,
            "joint/uncorr time": t_joint / t_unc,
            "joint/singles time": t_joint / t_single,
        }
    )
    return row


def synthetic_integration(seed: int, max_epochs: int | None) -> dict:
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
    _over_seeds(
        "synthetic interpolation/enhancement/DE",
        seeds,
        lambda seed: synthetic_tasks(seed, max_epochs),
    )
    print(
        "== synthetic SVG: 500 spots x 120 genes, SpaLDVAE n_gp=3 β=5 lr 1e-2, "
        f"{max_epochs or SYNTH_SPALDVAE_EPOCHS} epochs; {_null_text(null, 120)} ==",
        flush=True,
    )
    _over_seeds("synthetic SVG", seeds, lambda seed: synthetic_svg(seed, max_epochs, null))
    print(
        "== synthetic integration: 2 sections x 500 spots x 100 genes, batch effect 0.5, 4 "
        f"domains, β=1, {max_epochs or SYNTH_SPAVAE_EPOCHS} epochs; entropy max ln2=0.693 ==",
        flush=True,
    )
    _over_seeds(
        "synthetic integration", seeds, lambda seed: synthetic_integration(seed, max_epochs)
    )


# -- DLPFC interpolation ----------------------------------------------------------------------------
def run_interpolation(seeds, max_epochs, data) -> None:
    import scvi
    from sklearn.neighbors import KNeighborsClassifier

    from spatialvi._keys import OBS, OBSM
    from spatialvi.model import SpaVAE

    full = _dlpfc("151673", data)
    layer = full.obs[OBS.LAYER]
    coords = np.asarray(full.obsm[OBSM.SPATIAL], dtype=float)
    print(
        f"== interpolation: DLPFC 151673 {full.n_obs} spots x {full.n_vars} genes, 10 % masked, "
        f"SpaVAE train({'' if max_epochs is None else f'max_epochs={max_epochs}'}) on the rest; "
        "11-NN on the training latent (annotated spots) ==",
        flush=True,
    )
    rows = []
    for seed in seeds:
        held = np.zeros(full.n_obs, dtype=bool)
        held[np.random.default_rng(seed).choice(full.n_obs, full.n_obs // 10, replace=False)] = True
        train = full[~held].copy()
        SpaVAE.setup_anndata(train)
        scvi.settings.seed = seed
        model = SpaVAE(train)
        wall = _train(model, max_epochs)
        start = time.perf_counter()
        out = model.predict_at(coords[held])
        t_pred = time.perf_counter() - start
        z_train = model.get_latent_representation()
        known = train.obs[OBS.LAYER].notna().to_numpy()
        y_train = train.obs[OBS.LAYER].astype(str).to_numpy()[known]
        test_known = layer[held].notna().to_numpy()
        y_test = layer[held].astype(str).to_numpy()[test_known]
        clf = KNeighborsClassifier(11).fit(z_train[known], y_train)
        acc = float((clf.predict(out.obsm[OBSM.X_SPAVAE][test_known]) == y_test).mean())
        peer = KNeighborsClassifier(11).fit(train.obsm[OBSM.SPATIAL][known], y_train)
        acc_pos = float((peer.predict(coords[held][test_known]) == y_test).mean())
        rows.append(
            {
                "seed": seed,
                "acc spaVAE": acc,
                "acc position-only 11-NN": acc_pos,
                "n scored": int(test_known.sum()),
                "epochs": _epochs(model),
                "early stopped": model.run_params_["early_stopped"],
                "train s": wall,
                "s/epoch": wall / max(_epochs(model), 1),
                "predict_at s": t_pred,
            }
        )
        _print_row("151673 interpolation", rows[-1])
    _summary("151673 interpolation", rows)
    print("paper (spaVAE tutorial, 151673, 10 % masked): accuracy 0.931", flush=True)


# -- DLPFC SVGs ---------------------------------------------------------------------------------------
def run_svg(seeds, max_epochs, data, null: dict, top: int = 50) -> None:
    import scvi
    from scipy.stats import spearmanr

    from spatialvi._keys import VAR
    from spatialvi.model import SpaLDVAE
    from spatialvi.tl import spatially_variable_genes

    base = _dlpfc("151507", data)
    print(
        f"== svg: DLPFC 151507 {base.n_obs} spots x {base.n_vars} genes, SpaLDVAE "
        f"train({'' if max_epochs is None else f'max_epochs={max_epochs}'}), "
        f"{_null_text(null, base.n_vars)}; top-{top} vs Moran's I top-{top} "
        f"of log-normalised counts (chance overlap {top * top / base.n_vars:.1f}) ==",
        flush=True,
    )
    start = time.perf_counter()
    moran = _morans_i(base)
    t_moran = time.perf_counter() - start
    top_moran = set(moran.sort_values(ascending=False).index[:top])
    rows = []
    for seed in seeds:
        adata = base.copy()
        SpaLDVAE.setup_anndata(adata)
        scvi.settings.seed = seed
        model = SpaLDVAE(adata)
        wall = _train(model, max_epochs)
        start = time.perf_counter()
        spatially_variable_genes(model, progress_bar=False, **null)
        t_svg = time.perf_counter() - start
        var = adata.var
        top_svg = set(var.index[var[VAR.SVG_RANK] <= top])
        overlap = len(top_svg & top_moran)
        rows.append(
            {
                "seed": seed,
                "top overlap": overlap,
                "Jaccard": overlap / len(top_svg | top_moran),
                "Spearman score~Moran": float(
                    spearmanr(var[VAR.SPATIAL_SCORE], moran.loc[var.index]).statistic
                ),
                "n p<=0.05": int((var[VAR.SVG_PVAL] <= 0.05).sum()),
                "epochs": _epochs(model),
                "train s": wall,
                "s/epoch": wall / max(_epochs(model), 1),
                "null s": t_svg,
                "Moran s": t_moran,
                "null/Moran time": t_svg / t_moran,
            }
        )
        _print_row("151507 SVG", rows[-1])
    _summary("151507 SVG", rows)


# -- DLPFC integration --------------------------------------------------------------------------------
def run_integration(seeds, max_epochs, data) -> None:
    import anndata as ad

    from spatialvi._keys import OBS

    a7, a8 = _dlpfc("151507", data), _dlpfc("151508", data)
    shared = a7.var_names[a7.var_names.isin(a8.var_names)]
    joint = ad.concat(
        {"151507": a7[:, shared], "151508": a8[:, shared]},
        label=OBS.SECTION,
        index_unique="_",
    )
    joint.obs[OBS.LAYER] = joint.obs[OBS.LAYER].astype("category")
    print(
        f"== integration: DLPFC 151507 ({a7.n_obs}) + 151508 ({a8.n_obs}) spots on "
        f"{len(shared)} shared genes; SpaVAE train("
        f"{'' if max_epochs is None else f'max_epochs={max_epochs}'}); KMeans k=7 per latent; "
        "entropy 50-NN balanced, ln2=0.693 is perfect mixing ==",
        flush=True,
    )
    kwargs = {} if max_epochs is None else {"max_epochs": max_epochs}
    _over_seeds(
        "151507+151508 integration",
        seeds,
        lambda seed: integration_scores(joint, OBS.SECTION, OBS.LAYER, 7, seed, kwargs, 49),
    )


# -- predict_at speed -----------------------------------------------------------------------------------
def _query_points(coords: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` uniform random points within one spot spacing of a spot of the section."""
    from scipy.spatial import cKDTree

    tree = cKDTree(coords)
    spacing = float(np.median(tree.query(coords, k=2)[0][:, 1]))
    lo, hi = coords.min(0) - spacing, coords.max(0) + spacing
    rng = np.random.default_rng(seed)
    out = []
    while sum(len(o) for o in out) < n:
        cand = rng.uniform(lo, hi, size=(2 * n, 2))
        out.append(cand[tree.query(cand)[0] <= spacing])
    return np.concatenate(out)[:n]


def authors_predict(model, query: np.ndarray, batch_size: int = 512):
    """The authors' ``batching_predict_samples`` (ttgump/spaVAE) on our trained SpaVAE.

    Training spots are encoded once; then, per batch of ``batch_size`` query points, a Python
    loop finds each point's nearest training spot (``argmin`` of squared distances, their
    ``find_nearest``), whose encoder means give the Gaussian dims; each GP dim's posterior at
    the batch is recomputed from all training spots with the direct float64 formulas
    (explicit inverses of ``K_mm`` and ``Σ = K_mm + K_mn V⁻¹ K_nm``; variances from the
    ``x × x`` matrix's diagonal, as in their ``approximate_posterior_params``); the posterior
    mean latent is decoded, times the nearest spot's size factor. Returns latent, expression.
    """
    import torch
    from scipy import sparse

    from spatialvi._keys import REGISTRY_KEYS

    module = model.module
    module.eval()
    device = module.device
    gp = module.gp
    manager = model.adata_manager
    x = manager.get_from_registry(REGISTRY_KEYS.X_KEY)
    x = torch.as_tensor(
        x.toarray() if sparse.issparse(x) else np.asarray(x), dtype=torch.float32, device=device
    )
    raw = np.asarray(manager.get_from_registry(REGISTRY_KEYS.SPATIAL_KEY), dtype=np.float64)
    n_gp = module.n_gp
    with torch.inference_mode():
        sf = module.size_factor_from_counts(x)
        mu, var = [], []
        for start in range(0, len(x), batch_size):
            m, v = module.encode(x[start : start + batch_size], sf[start : start + batch_size])
            mu.append(m)
            var.append(v)
        mu, var = torch.cat(mu).double(), torch.cat(var).double()
        x_train = module.rescale_coordinates(torch.as_tensor(raw, device=device)).double()
        x_test = module.rescale_coordinates(torch.as_tensor(query, device=device)).double()
        z_ind = gp.inducing_points.double()

        def kern(a, b):
            return gp.kernel(a, b).to_dense()

        eye = torch.eye(len(z_ind), dtype=torch.float64, device=device)
        latents, expression = [], []
        for start in range(0, len(x_test), batch_size):
            xb = x_test[start : start + batch_size]
            nearest = torch.stack([torch.argmin(((x_train - p) ** 2).sum(1)) for p in xb])
            k_mm = kern(z_ind, z_ind) + gp.jitter * eye
            k_mm_inv = torch.linalg.inv(k_mm)
            k_xm = kern(xb, z_ind)
            k_nm = kern(x_train, z_ind)
            k_xx = gp.kernel(xb, xb, diag=True)
            means = []
            for ell in range(n_gp):
                y, noise = mu[:, ell], var[:, ell]
                sigma_inv = torch.linalg.inv(k_mm + k_nm.T @ (k_nm / noise[:, None]))
                means.append(k_xm @ (sigma_inv @ (k_nm.T @ (y / noise))))
                # Their variance (unused for the mean output, computed as they do).
                _ = k_xx + torch.diagonal(-k_xm @ (k_mm_inv @ k_xm.T) + k_xm @ (sigma_inv @ k_xm.T))
            gp_mean = torch.stack(means, 1) - module.gp_offset[0].double()
            z = torch.cat([gp_mean, mu[nearest, n_gp:]], 1).float()
            rate = torch.exp(module.decode_log_rate(z)) * sf[nearest]
            latents.append(z.cpu().numpy())
            expression.append(rate.cpu().numpy())
    return np.concatenate(latents), np.concatenate(expression)


def run_predict(epochs: int, data, n_query: int, n_loop: int, seed: int = 0) -> None:
    import scvi
    import torch

    from spatialvi._keys import OBSM
    from spatialvi.model import SpaVAE

    adata = _dlpfc("151673", data)
    SpaVAE.setup_anndata(adata)
    scvi.settings.seed = seed
    model = SpaVAE(adata)
    wall = _train(model, epochs)
    query = _query_points(np.asarray(adata.obsm[OBSM.SPATIAL], dtype=float), n_query, seed)
    print(
        f"== predict: DLPFC 151673 {adata.n_obs} spots x {adata.n_vars} genes, SpaVAE trained "
        f"{_epochs(model)} epochs ({wall:.0f} s); {n_query} random query points within one spot "
        f"spacing of a spot; torch threads {torch.get_num_threads()} ==",
        flush=True,
    )
    start = time.perf_counter()
    out = model.predict_at(query)
    t_ours = time.perf_counter() - start
    shape = out.shape
    del out
    sub = query[:n_loop]
    start = time.perf_counter()
    z_loop, x_loop = authors_predict(model, sub)
    t_loop = time.perf_counter() - start
    extrapolated = t_loop * n_query / len(sub)
    # Same procedure as the loop (nearest spot, its size factor) on the same points.
    check = model.predict_at(sub, n_neighbors=1)
    dz = float(np.abs(check.obsm[OBSM.X_SPAVAE] - z_loop).max())
    dx = float(np.median(np.abs(check.X - x_loop) / np.maximum(np.abs(x_loop), 1e-6)))
    print(
        f"predict_at: {n_query} points -> {shape[0]} x {shape[1]} expression in {t_ours:.1f} s "
        f"(target < 60 s)",
        flush=True,
    )
    print(
        f"authors' per-point loop: {t_loop:.2f} s on {len(sub)} points, extrapolated linearly to "
        f"{n_query} points: {extrapolated:.0f} s (not run); predict_at speed-up "
        f"{extrapolated / t_ours:.1f}x",
        flush=True,
    )
    print(
        f"agreement on those {len(sub)} points (predict_at n_neighbors=1 vs the loop): max |Δz| "
        f"{dz:.2e}, median relative |Δexpression| {dx:.2e}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--part",
        choices=["synthetic", "interpolation", "svg", "integration", "predict", "all"],
        default="all",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        help="cap every training (default: train() defaults on DLPFC, 150/100 synthetic)",
    )
    parser.add_argument("--data", type=Path, default=None, help="folder with dlpfc_*.h5ad")
    parser.add_argument("--svg-permutations", type=int, default=5)
    parser.add_argument(
        "--svg-pooled",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pool the permutation null over genes (needed for p <= 0.05 with few permutations)",
    )
    parser.add_argument("--synthetic-permutations", type=int, default=20)
    parser.add_argument("--refit-steps", type=int, default=300)
    parser.add_argument("--predict-epochs", type=int, default=20)
    parser.add_argument("--n-query", type=int, default=100_000)
    parser.add_argument("--loop-points", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    import scanpy as sc
    import torch

    torch.set_num_threads(args.threads)
    quiet_logging()
    sc.settings.verbosity = 0
    parts = (
        ["synthetic", "interpolation", "svg", "integration", "predict"]
        if args.part == "all"
        else [args.part]
    )
    for part in parts:
        start = time.perf_counter()
        if part == "synthetic":
            null = {
                "n_permutations": args.synthetic_permutations,
                "refit_steps": args.refit_steps,
                "pooled": args.svg_pooled,
            }
            run_synthetic(args.seeds, args.max_epochs, null)
        elif part == "interpolation":
            run_interpolation(args.seeds, args.max_epochs, args.data)
        elif part == "svg":
            null = {
                "n_permutations": args.svg_permutations,
                "refit_steps": args.refit_steps,
                "pooled": args.svg_pooled,
            }
            run_svg(args.seeds, args.max_epochs, args.data, null)
        elif part == "integration":
            run_integration(args.seeds, args.max_epochs, args.data)
        else:
            epochs = args.predict_epochs if args.max_epochs is None else args.max_epochs
            run_predict(epochs, args.data, args.n_query, args.loop_points, args.seeds[0])
        print(f"-- part {part}: {time.perf_counter() - start:.0f} s wall", flush=True)


if __name__ == "__main__":
    main()
