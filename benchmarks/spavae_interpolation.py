"""SpaVAE interpolation on DLPFC 151673: layer accuracy of ``predict_at`` at masked spots.

10 % of the spots masked at random (seeded), SpaVAE trained on the other 90 %, ``predict_at``
the masked coordinates, 11-NN classifier on the training latent with the ``layer`` annotation
(unannotated spots skipped), accuracy on the masked spots; non-spatial peer: 11-NN on the
training spots' coordinates alone. Paper's tutorial: 0.931.

``--max-epochs`` caps the training (default: ``train()``'s default, early stopping within 5000
epochs). ``--seeds`` repeats the run (mean and SD printed). Torch runs on ``--threads``
(default 1; the machine is shared) threads; set ``OMP_NUM_THREADS`` to match.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/spavae_interpolation.py --seeds 0
    python benchmarks/spavae_interpolation.py --max-epochs 400
    python benchmarks/spavae_interpolation.py --max-epochs 5  # smoke

Time (one seed, one thread; estimated, not measured end to end): ≈ 12–25 min. The smoke runs
measured 0.7–0.8 s per epoch (validation included) for one DLPFC section, and DLPFC 151673
was still improving past 900 epochs under the early-stopping rule, so ≈ 1000–2000 epochs.
The smoke line ≈ 20 s (measured 17 s, imports included).
"""

from __future__ import annotations

import time

import numpy as np
from _spavae import (
    epochs_text,
    load_dlpfc,
    make_parser,
    n_epochs,
    print_row,
    run_part,
    summary,
    train_quietly,
)


def run_interpolation(seeds, max_epochs, data) -> None:
    import scvi
    from sklearn.neighbors import KNeighborsClassifier

    from spatialvi._keys import OBS, OBSM
    from spatialvi.model import SpaVAE

    full = load_dlpfc("151673", data)
    layer = full.obs[OBS.LAYER]
    coords = np.asarray(full.obsm[OBSM.SPATIAL], dtype=float)
    print(
        f"== interpolation: DLPFC 151673 {full.n_obs} spots x {full.n_vars} genes, 10 % masked, "
        f"SpaVAE train({epochs_text(max_epochs)}) on the rest; "
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
        wall = train_quietly(model, max_epochs)
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
                "epochs": n_epochs(model),
                "early stopped": model.run_params_["early_stopped"],
                "train s": wall,
                "s/epoch": wall / max(n_epochs(model), 1),
                "predict_at s": t_pred,
            }
        )
        print_row("151673 interpolation", rows[-1])
    summary("151673 interpolation", rows)
    print("paper (spaVAE tutorial, 151673, 10 % masked): accuracy 0.931", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = make_parser(__doc__, "cap the training (default: train()'s default)")
    args = parser.parse_args(argv)
    run_part(
        "interpolation",
        args.threads,
        lambda: run_interpolation(args.seeds, args.max_epochs, args.data),
    )


if __name__ == "__main__":
    main()
