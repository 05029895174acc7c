"""Helpers shared by the SpaVAE task benchmarks (``benchmarks/spavae_<task>.py``).

One script per task: ``spavae_synthetic.py``, ``spavae_interpolation.py``, ``spavae_svg.py``,
``spavae_integration.py`` and ``spavae_predict.py``. Here: the command line they share
(``--seeds``, ``--max-epochs``, ``--data``, ``--threads`` and the permutation-null options),
the run wrapper (torch threads, quiet logging, the part's wall time), quiet training, the
per-seed rows and their summary, DLPFC loading, Moran's I, KMeans and the integration scores
(used on simulated and on DLPFC sections).
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import QUIET, quiet_logging


# -- command line -----------------------------------------------------------------------------
def make_parser(
    doc: str, max_epochs_help: str, *, data: bool = True, seeds_help: str | None = None
) -> argparse.ArgumentParser:
    """A parser showing ``doc``, with ``--seeds``, ``--max-epochs``, ``--threads``, ``--data``."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help=seeds_help)
    parser.add_argument("--max-epochs", type=int, default=None, help=max_epochs_help)
    if data:
        parser.add_argument("--data", type=Path, default=None, help="folder with dlpfc_*.h5ad")
    parser.add_argument("--threads", type=int, default=1)
    return parser


def add_null_arguments(parser: argparse.ArgumentParser, permutations: str, default: int) -> None:
    """The refit permutation null's options: ``permutations`` (its count), pooling, steps."""
    parser.add_argument(permutations, type=int, default=default)
    parser.add_argument(
        "--svg-pooled",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pool the permutation null over genes (needed for p <= 0.05 with few permutations)",
    )
    parser.add_argument("--refit-steps", type=int, default=300)


def null_settings(args: argparse.Namespace, n_permutations: int) -> dict:
    """``tl.spatially_variable_genes`` keywords of the refit null (see ``add_null_arguments``)."""
    return {
        "n_permutations": n_permutations,
        "refit_steps": args.refit_steps,
        "pooled": args.svg_pooled,
    }


def run_part(name: str, threads: int, body: Callable[[], None]) -> None:
    """Run ``body`` on ``threads`` torch threads with quiet logging; print its wall time."""
    import scanpy as sc
    import torch

    torch.set_num_threads(threads)
    quiet_logging()
    sc.settings.verbosity = 0
    start = time.perf_counter()
    body()
    print(f"-- part {name}: {time.perf_counter() - start:.0f} s wall", flush=True)


# -- training and rows ------------------------------------------------------------------------
def train_quietly(model, max_epochs: int | None = None, **kwargs) -> float:
    """Train quietly (``max_epochs=None``: the model's default); return the wall time."""
    if max_epochs is not None:
        kwargs["max_epochs"] = max_epochs
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.train(**QUIET, **kwargs)
    return time.perf_counter() - start


def n_epochs(model) -> int:
    """Epochs the model was trained for."""
    return int(model.n_epochs_trained)


def epochs_text(max_epochs: int | None) -> str:
    """The ``train(...)`` arguments as printed in the headers (empty: the default training)."""
    return "" if max_epochs is None else f"max_epochs={max_epochs}"


def print_row(title: str, row: dict) -> None:
    """One seed's row, ``key=value`` pairs (floats to 4 significant digits)."""
    text = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
    print(f"{title}: {text}", flush=True)


def summary(title: str, rows: list[dict]) -> None:
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


def over_seeds(title: str, seeds, task: Callable[[int], dict]) -> None:
    """Run ``task(seed)`` for each seed, printing each row and then the summary."""
    rows = []
    for seed in seeds:
        rows.append(task(seed))
        print_row(title, rows[-1])
    summary(title, rows)


# -- data and scores --------------------------------------------------------------------------
def load_dlpfc(section: str, data: Path | None):
    """DLPFC ``section`` (``spatialvi.datasets.dlpfc``; ``data``: the folder, else the default)."""
    from spatialvi.datasets import dlpfc

    return dlpfc(section, path=data)


def null_text(null: dict, n_genes: int) -> str:
    """The refit null's settings and smallest attainable p-value, as printed in the headers."""
    n = null["n_permutations"]
    n_null = n * n_genes if null["pooled"] else n
    return (
        f"refit null {n} permutations x {null['refit_steps']} steps, "
        f"{'pooled over genes' if null['pooled'] else 'per gene'} (min p {1 / (1 + n_null):.2g})"
    )


def _log_normalised(adata):
    """Copy of ``adata`` with log1p(counts / library × 1e4) in ``X`` (for Moran's I)."""
    import scanpy as sc

    out = adata.copy()
    sc.pp.normalize_total(out, target_sum=1e4)
    sc.pp.log1p(out)
    return out


def morans_i(adata):
    """Moran's I of every gene's log-normalised counts (``spatialvi.metrics.morans_i``).

    squidpy's ``spatial_autocorr`` leaves torch with more threads than it had (measured: 1 -> 2);
    on a shared 2-core machine that slowed the following trainings ~9x, so the count is restored.
    Its graph-building log line is silenced (squidpy sets its logger up on first import).
    """
    import squidpy  # noqa: F401
    import torch

    from spatialvi.metrics import morans_i as spatialvi_morans_i

    logging.getLogger("spatialdata._logging").setLevel(logging.WARNING)
    threads = torch.get_num_threads()
    try:
        return spatialvi_morans_i(_log_normalised(adata))
    finally:
        torch.set_num_threads(threads)


def kmeans(z: np.ndarray, k: int, seed: int) -> np.ndarray:
    """KMeans labels (``n_init=100``) of the latent ``z``."""
    from sklearn.cluster import KMeans

    return KMeans(k, n_init=100, random_state=seed).fit_predict(z)


# -- integration --------------------------------------------------------------------------------
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

    def score(model, prefix: str) -> None:
        """Layer ARI per section, its mean, mixing entropy and epochs of a two-section model."""
        z = model.get_latent_representation()
        labels = kmeans(z, k, seed)
        aris = [ari(truth[sections == s], labels[sections == s]) for s in levels]
        row.update({f"{prefix} ARI {s}": a for s, a in zip(levels, aris)})
        row[f"{prefix} ARI mean"] = float(np.mean(aris))
        row[f"{prefix} entropy"] = batch_mixing_entropy(z, sections)
        row[f"{prefix} epochs"] = n_epochs(model)

    # Joint model: one GP per section, section one-hot in encoder and decoder.
    adata = joint.copy()
    SpaVAE.setup_anndata(adata, batch_key=section_key)
    scvi.settings.seed = seed
    model = SpaVAE(adata, n_inducing=n_inducing)
    t_joint = train_quietly(model, **train_kwargs)
    score(model, "joint")

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
    t_unc = train_quietly(model, **train_kwargs)
    score(model, "uncorr")

    # One model per section.
    t_single, aris = 0.0, []
    for s in levels:
        adata = joint[sections == s].copy()
        SpaVAE.setup_anndata(adata)
        scvi.settings.seed = seed
        model = SpaVAE(adata, n_inducing=n_inducing)
        t_single += train_quietly(model, **train_kwargs)
        labels = kmeans(model.get_latent_representation(), k, seed)
        aris.append(ari(adata.obs[label_key], labels))
        row[f"single ARI {s}"] = aris[-1]
        row[f"single epochs {s}"] = n_epochs(model)
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
