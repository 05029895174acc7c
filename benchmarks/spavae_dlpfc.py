"""SpaVAE on DLPFC 151673: clustering accuracy, convergence and speed against a direct baseline.

For each seed: default ``SpaVAE.train()`` (early stopping), KMeans (k = 7, n_init = 100) on the
latent, ARI/NMI on the annotated spots (plain and after spatial majority-vote refinement),
epochs to early stop, wall time, seconds per epoch, peak memory. In the same process the same
model with the direct, non-whitened float64 GP formulation is timed per epoch.

``--scaling`` instead reports seconds per epoch on synthetic sections of 4k / 20k / 100k spots
with 49 / 169 / 400 inducing points, for both formulations. ``--finite-epochs 2000`` trains
seed 0 for that many epochs without early stopping and checks that loss, β and latent stay
finite (ARI reported too).

Examples
--------
    python benchmarks/spavae_dlpfc.py --seeds 0 1 2
    python benchmarks/spavae_dlpfc.py --seeds 0 --max-epochs 300
    python benchmarks/spavae_dlpfc.py --seeds 0 1 2 --per-axis   # the authors' coordinate scaling
    python benchmarks/spavae_dlpfc.py --seeds 0 1 --patience 100  # a shorter patience
    python benchmarks/spavae_dlpfc.py --seeds 0 --lr 3e-3  # another learning rate
    python benchmarks/spavae_dlpfc.py --seeds 0 --rel-delta 1e-2  # another stopping margin
    python benchmarks/spavae_dlpfc.py --seeds 0 --lr 3e-3 --warmup-steps 1000  # lr warm-up
    python benchmarks/spavae_dlpfc.py --seeds 0 --lr 5e-3 --warmup-steps 1000 --warmup-start 0.2
    python benchmarks/spavae_dlpfc.py --seeds            # s/epoch against the baseline only
    python benchmarks/spavae_dlpfc.py --scaling --spots 4000 20000 --inducing 49 169 400
    python benchmarks/spavae_dlpfc.py --finite-epochs 2000
    python benchmarks/spavae_dlpfc.py --levers --baseline-epochs 6   # s/epoch per lever
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import QUIET, QUIET_WITH_HISTORY, epoch_timer, peak_rss_gib, quiet_logging


def seconds_per_epoch(adata, n_epochs: int = 5, train_kwargs=None, **model_kwargs) -> float:
    """Median seconds per training epoch (no validation) of SpaVAE with ``model_kwargs``."""
    from spatialvi.model import SpaVAE

    timer = epoch_timer()
    model = SpaVAE(adata, **model_kwargs)
    model.train(
        max_epochs=n_epochs,
        train_size=1.0,
        early_stopping=False,
        callbacks=[timer],
        **(train_kwargs or {}),
        **QUIET,
    )
    return float(np.median(timer.times[1:] if len(timer.times) > 1 else timer.times))


def run_levers(path: Path, n_epochs: int, rounds: int = 3) -> None:
    """Seconds per epoch of each per-step lever alone, and of all of them, on one section.

    The levers are switched off in this script (their code stays the package's only path):
    the in-memory loader (``in_memory=False``: scvi-tools' ``AnnDataLoader``), the loader's
    non-zero positions (dropped from the batch: the NB likelihood searches them), the epoch
    metrics (scvi-tools' per-step ``self.log`` calls instead) and the fused Adam step (torch's
    per-parameter loop). Every configuration runs ``rounds`` times, interleaved, and the median
    over rounds of the per-round median epoch is printed (the machine's speed drifts).
    """
    import anndata as ad
    import scvi
    from scvi.train import TrainingPlan

    from spatialvi._keys import REGISTRY_KEYS
    from spatialvi.data import TensorStore
    from spatialvi.train import SpatialviTrainingPlan

    adata = ad.read_h5ad(path)
    from spatialvi.model import SpaVAE

    SpaVAE.setup_anndata(adata)
    plan = SpatialviTrainingPlan
    originals = {
        "gather": TensorStore.gather,
        "training_step": plan.training_step,
        "validation_step": plan.validation_step,
        "on_train_epoch_end": plan.on_train_epoch_end,
        "on_validation_epoch_end": plan.on_validation_epoch_end,
        "optimizer": plan._optimizer_creator_fn,
    }

    def without_nonzero(self, positions):
        batch = originals["gather"](self, positions)
        batch.pop(REGISTRY_KEYS.X_NONZERO_KEY, None)
        return batch

    def per_step_training(self, batch, batch_idx):  # the plan before the epoch metrics
        self.loss_kwargs.update({"kl_weight": self.kl_weight})
        self.log("beta", float(self.beta_controller.beta), on_step=False, on_epoch=True)
        _, _, out = self.forward(batch, loss_kwargs=self.loss_kwargs)
        self.log("train_loss", out.loss, on_step=False, on_epoch=True, prog_bar=True)
        self.compute_and_log_metrics(out, self.train_metrics, "train")
        kl = out.extra_metrics.get("kl_per_obs")
        if kl is not None:
            self.beta_controller.update(float(kl))
        return out.loss

    def switch(loader=True, nonzero=True, epoch_metrics=True, fused=True):
        TensorStore.gather = originals["gather"] if nonzero else without_nonzero
        if epoch_metrics:
            for name in ("training_step", "validation_step", "on_train_epoch_end"):
                setattr(plan, name, originals[name])
            plan.on_validation_epoch_end = originals["on_validation_epoch_end"]
        else:
            plan.training_step = per_step_training
            plan.validation_step = TrainingPlan.validation_step
            plan.on_train_epoch_end = TrainingPlan.on_train_epoch_end
            plan.on_validation_epoch_end = TrainingPlan.on_validation_epoch_end
        plan._optimizer_creator_fn = (
            originals["optimizer"] if fused else TrainingPlan._optimizer_creator_fn
        )
        return {} if loader else {"datasplitter_kwargs": {"in_memory": False}}

    off = {"loader": False, "nonzero": False, "epoch_metrics": False, "fused": False}
    configs = {
        "no lever": off,
        "in-memory loader alone": {**off, "loader": True},
        "in-memory loader + its non-zero positions": {**off, "loader": True, "nonzero": True},
        "epoch metrics alone": {**off, "epoch_metrics": True},
        "fused Adam alone": {**off, "fused": True},
        "all (default)": {},
    }
    times: dict[str, list[float]] = {name: [] for name in configs}
    try:
        for _ in range(rounds):
            for name, levers in configs.items():
                train_kwargs = switch(**levers)
                scvi.settings.seed = 0
                times[name].append(seconds_per_epoch(adata, n_epochs, train_kwargs))
    finally:
        switch()
    base = float(np.median(times["no lever"]))
    for name, values in times.items():
        sec = float(np.median(values))
        print(
            f"{name}: {sec:.3f} s/epoch ({base / sec:.2f}x of no lever; rounds "
            f"{', '.join(f'{v:.3f}' for v in values)})",
            flush=True,
        )
    print(f"peak RSS {peak_rss_gib():.2f} GiB", flush=True)


def run_dlpfc(
    path: Path,
    seeds: list[int],
    max_epochs: int,
    baseline_epochs: int,
    keep_aspect: bool = True,
    patience: int | None = None,
    lr: float | None = None,
    rel_delta: float | None = None,
    warmup_steps: int | None = None,
    warmup_start: float | None = None,
) -> None:
    """Train, cluster and score on DLPFC 151673; time the direct baseline."""
    import anndata as ad
    import scvi
    from sklearn.cluster import KMeans

    from spatialvi._keys import OBS
    from spatialvi.metrics import ari, nmi
    from spatialvi.model import SpaVAE
    from spatialvi.tl import refine_labels

    adata = ad.read_h5ad(path)
    SpaVAE.setup_anndata(adata)
    truth = adata.obs[OBS.LAYER]
    coords = np.asarray(adata.obsm["spatial"], dtype=float)
    print(
        f"data: {path.name} {adata.n_obs} spots x {adata.n_vars} genes, keep_aspect={keep_aspect}",
        flush=True,
    )
    rows = []
    for seed in seeds:
        scvi.settings.seed = seed
        timer = epoch_timer()
        model = SpaVAE(adata, keep_aspect=keep_aspect)
        start = time.perf_counter()
        stopping = {} if patience is None else {"early_stopping_patience": patience}
        if lr is not None:
            stopping["lr"] = lr
        if rel_delta is not None:
            stopping["early_stopping_rel_delta"] = rel_delta
        if warmup_steps is not None:
            stopping["lr_warmup_steps"] = warmup_steps
        if warmup_start is not None:
            stopping["plan_kwargs"] = {"lr_warmup_start": warmup_start}
        model.train(max_epochs=max_epochs, callbacks=[timer], **stopping, **QUIET)
        wall = time.perf_counter() - start
        z = model.get_latent_representation()
        labels = KMeans(7, n_init=100, random_state=seed).fit_predict(z)
        refined = refine_labels(coords, labels, n_neighbors=10)
        row = {
            "seed": seed,
            "lr": f"{model.run_params_['lr']:g}",
            "warm-up steps": model.run_params_["lr_warmup_steps"],
            "ARI": ari(truth, labels),
            "NMI": nmi(truth, labels),
            "ARI refined": ari(truth, refined),
            "NMI refined": nmi(truth, refined),
            "epochs": model.n_epochs_trained,
            "early stopped": model.run_params_["early_stopped"],
            "restored epoch": model.run_params_["best_epoch"],
            "wall s": wall,
            "s/epoch": float(np.median(timer.times)),
            "final beta": model.run_params_["final_beta"],
            "peak RSS GiB": peak_rss_gib(),
        }
        rows.append(row)
        print(
            " ".join(
                f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
            ),
            flush=True,
        )
    if len(rows) > 1:
        for key in ("ARI", "NMI", "ARI refined", "NMI refined", "epochs", "s/epoch"):
            vals = np.array([r[key] for r in rows], dtype=float)
            print(
                f"{key}: median {np.median(vals):.4f} mean {vals.mean():.4f} "
                f"sd {vals.std(ddof=1):.4f}"
            )
    scvi.settings.seed = 0
    white = seconds_per_epoch(adata, baseline_epochs)
    direct = seconds_per_epoch(adata, baseline_epochs, formulation="direct")
    print(
        f"s/epoch (training only, no validation): whitened float32 {white:.3f}, "
        f"direct float64 {direct:.3f}, speed-up {direct / white:.2f}x",
        flush=True,
    )
    print("paper: ARI 0.554 / NMI 0.715; authors' code 1.4–2 s/epoch, ~1550 epochs")


def run_finite(path: Path, n_epochs: int) -> None:
    """Train seed 0 for ``n_epochs`` without early stopping; check everything stays finite."""
    import anndata as ad
    import scvi
    from sklearn.cluster import KMeans

    from spatialvi._keys import OBS
    from spatialvi.metrics import ari
    from spatialvi.model import SpaVAE

    adata = ad.read_h5ad(path)
    SpaVAE.setup_anndata(adata)
    scvi.settings.seed = 0
    model = SpaVAE(adata)
    start = time.perf_counter()
    # scvi-tools' default logger keeps the per-epoch history read below.
    model.train(max_epochs=n_epochs, early_stopping=False, **QUIET_WITH_HISTORY)
    wall = time.perf_counter() - start
    loss = np.asarray(model.history["elbo_train"], dtype=float).ravel()
    beta = np.asarray(model.history["beta"], dtype=float).ravel()
    z = model.get_latent_representation()
    finite = bool(np.isfinite(loss).all() and np.isfinite(beta).all() and np.isfinite(z).all())
    labels = KMeans(7, n_init=100, random_state=0).fit_predict(z)
    print(
        f"{n_epochs} epochs without early stopping: finite={finite} epochs={len(loss)} "
        f"final elbo_train={loss[-1]:.2f} beta range [{beta.min():.2f}, {beta.max():.2f}] "
        f"ARI={ari(adata.obs[OBS.LAYER], labels):.3f} wall={wall:.0f} s",
        flush=True,
    )


def run_scaling(spots: list[int], inducing: list[int], n_genes: int, n_epochs: int) -> None:
    """Seconds per epoch on synthetic sections for both GP formulations."""
    from spatialvi.model import SpaVAE
    from spatialvi.sim import synthetic_tissue

    for n in spots:
        adata = synthetic_tissue(n_spots=n, n_genes=n_genes, random_state=0)
        SpaVAE.setup_anndata(adata)
        for m in inducing:
            white = seconds_per_epoch(adata, n_epochs, n_inducing=m)
            direct = seconds_per_epoch(adata, n_epochs, n_inducing=m, formulation="direct")
            print(
                f"spots={n} inducing={m}: whitened {white:.3f} s/epoch, direct {direct:.3f} "
                f"s/epoch, peak RSS {peak_rss_gib():.2f} GiB",
                flush=True,
            )


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2], help="none: timing only")
    parser.add_argument("--data", type=Path, default=None, help="path to dlpfc_151673.h5ad")
    parser.add_argument("--max-epochs", type=int, default=5000)
    parser.add_argument("--baseline-epochs", type=int, default=5)
    parser.add_argument(
        "--per-axis",
        action="store_true",
        help="rescale each coordinate axis separately (the authors' convention) instead of "
        "keeping the aspect ratio (the package default)",
    )
    parser.add_argument(
        "--patience", type=int, default=None, help="early-stopping patience (default: train's)"
    )
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: train's)")
    parser.add_argument(
        "--rel-delta", type=float, default=None, help="early-stopping margin (default: train's)"
    )
    parser.add_argument(
        "--warmup-steps", type=int, default=None, help="linear lr warm-up steps (default: train's)"
    )
    parser.add_argument(
        "--warmup-start",
        type=float,
        default=None,
        help="fraction of lr at the warm-up's start (default: train's)",
    )
    parser.add_argument("--scaling", action="store_true", help="synthetic s/epoch grid instead")
    parser.add_argument("--spots", type=int, nargs="+", default=[4000, 20000, 100000])
    parser.add_argument("--inducing", type=int, nargs="+", default=[49, 169, 400])
    parser.add_argument("--genes", type=int, default=3000)
    parser.add_argument("--finite-epochs", type=int, default=None, help="finiteness run instead")
    parser.add_argument(
        "--levers", action="store_true", help="s/epoch of each data-path lever alone instead"
    )
    args = parser.parse_args(argv)
    quiet_logging()
    if args.scaling:
        run_scaling(args.spots, args.inducing, args.genes, args.baseline_epochs)
        return
    if args.data is None:
        from spatialvi.datasets import data_dir

        args.data = data_dir() / "dlpfc" / "dlpfc_151673.h5ad"
    if args.finite_epochs:
        run_finite(args.data, args.finite_epochs)
        return
    if args.levers:
        run_levers(args.data, max(args.baseline_epochs, 4))
        return
    run_dlpfc(
        args.data,
        args.seeds,
        args.max_epochs,
        args.baseline_epochs,
        not args.per_axis,
        patience=args.patience,
        lr=args.lr,
        rel_delta=args.rel_delta,
        warmup_steps=args.warmup_steps,
        warmup_start=args.warmup_start,
    )


if __name__ == "__main__":
    main()
