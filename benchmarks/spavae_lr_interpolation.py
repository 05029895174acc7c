"""SpaVAE's suite interpolation check under several learning-rate settings.

The check of ``tests/model/test_spavae_tasks.py::test_interpolated_latent_classifies_held_out_domains``
(700 simulated spots, 10 % held out, 150 epochs at β = 1, 25 inducing points; an 11-NN classifier
on the training latent assigns the held-out spots' domains from their ``predict_at`` latent),
repeated for data seeds 11 / 12 / 13 × model seeds 0 / 1 / 2 at each ``--setting``:
``old`` (lr 1e-3, no warm-up: the default) or ``warmup`` (lr 3e-3 with a 1000-step warm-up from
1e-3). It prints one accuracy per run and the nearest-training-spot baseline.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/spavae_lr_interpolation.py --setting old warmup

Time: about 4 min per setting (measured with another one-thread job on the second core).
"""

from __future__ import annotations

import argparse

from _common import QUIET, quiet_logging

SETTINGS = {
    "old": {"lr": 1e-3, "lr_warmup_steps": 0},
    "warmup": {"lr": 3e-3, "lr_warmup_steps": 1000},
}


def run(settings: list[str], data_seeds: list[int], model_seeds: list[int]) -> None:
    import scvi
    from scipy.spatial import cKDTree
    from sklearn.neighbors import KNeighborsClassifier

    from spatialvi._keys import OBS, OBSM
    from spatialvi.model import SpaVAE
    from spatialvi.sim import held_out_section

    for setting in settings:
        for data_seed in data_seeds:
            full, held = held_out_section(random_state=data_seed)
            truth = full.obs[OBS.DOMAIN].to_numpy()[held]
            for model_seed in model_seeds:
                scvi.settings.seed = model_seed
                train = full[~held].copy()
                SpaVAE.setup_anndata(train)
                model = SpaVAE(train, n_inducing=25)
                model.train(max_epochs=150, beta=1.0, **SETTINGS[setting], **QUIET)
                model.write_outputs(train)
                out = model.predict_at(full.obsm[OBSM.SPATIAL][held])
                clf = KNeighborsClassifier(11).fit(train.obsm[OBSM.X_SPAVAE], train.obs[OBS.DOMAIN])
                accuracy = (clf.predict(out.obsm[OBSM.X_SPAVAE]) == truth).mean()
                nearest = cKDTree(train.obsm[OBSM.SPATIAL]).query(full.obsm[OBSM.SPATIAL][held])[1]
                copied = (train.obs[OBS.DOMAIN].to_numpy()[nearest] == truth).mean()
                print(
                    f"setting={setting} data_seed={data_seed} model_seed={model_seed} "
                    f"accuracy={accuracy:.3f} nearest_spot={copied:.3f}",
                    flush=True,
                )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", nargs="+", choices=sorted(SETTINGS), default=["old"])
    parser.add_argument("--data-seeds", type=int, nargs="+", default=[11, 12, 13])
    parser.add_argument("--model-seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    quiet_logging()
    run(args.setting, args.data_seeds, args.model_seeds)


if __name__ == "__main__":
    main()
