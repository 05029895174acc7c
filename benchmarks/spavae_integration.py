"""SpaVAE multi-slice integration of DLPFC 151507 + 151508: joint, uncorrected, per section.

The two sections on their 836 shared genes. Joint SpaVAE (``batch_key='section'``, one GP per
section), the uncorrected model (no ``batch_key``; the second section shifted right by one
section width, one 7 × 7 grid of inducing points per section and ``loc_range`` scaled so that
µm map to the GP frame as for one section) and one model per section. KMeans (k = 7,
n_init = 100) on each latent, layer ARI per section; batch-mixing entropy (50-NN, balanced;
ln 2 = 0.693 is perfect mixing); wall times.

``--max-epochs`` caps every training (default: ``train()``'s default, early stopping within
5000 epochs). ``--seeds`` repeats the run (mean and SD printed). Torch runs on ``--threads``
(default 1; the machine is shared) threads; set ``OMP_NUM_THREADS`` to match.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/spavae_integration.py --seeds 0
    python benchmarks/spavae_integration.py --max-epochs 400
    python benchmarks/spavae_integration.py --max-epochs 5  # smoke

Time (one seed, one thread; estimated, not measured end to end): ≈ 1–2.5 h (joint and
uncorrected models on both sections, plus one model per section). The smoke runs measured
0.7–0.8 s per epoch (validation included) for one DLPFC section, ≈ 1000–2000 epochs under
the early-stopping rule, so 12–25 min per single-section model. The smoke line ≈ 30 s
(measured 32 s, imports included).
"""

from __future__ import annotations

from _spavae import epochs_text, integration_scores, load_dlpfc, make_parser, over_seeds, run_part


def run_integration(seeds, max_epochs, data) -> None:
    import anndata as ad

    from spatialvi._keys import OBS

    a7, a8 = load_dlpfc("151507", data), load_dlpfc("151508", data)
    shared = a7.var_names[a7.var_names.isin(a8.var_names)]
    joint = ad.concat(
        {"151507": a7[:, shared], "151508": a8[:, shared]},
        label=OBS.SECTION,
        index_unique="_",
    )
    joint.obs[OBS.LAYER] = joint.obs[OBS.LAYER].astype("category")
    print(
        f"== integration: DLPFC 151507 ({a7.n_obs}) + 151508 ({a8.n_obs}) spots on "
        f"{len(shared)} shared genes; SpaVAE train({epochs_text(max_epochs)}); "
        "KMeans k=7 per latent; entropy 50-NN balanced, ln2=0.693 is perfect mixing ==",
        flush=True,
    )
    kwargs = {} if max_epochs is None else {"max_epochs": max_epochs}
    over_seeds(
        "151507+151508 integration",
        seeds,
        lambda seed: integration_scores(joint, OBS.SECTION, OBS.LAYER, 7, seed, kwargs, 49),
    )


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = make_parser(__doc__, "cap every training (default: train()'s default)")
    args = parser.parse_args(argv)
    run_part(
        "integration",
        args.threads,
        lambda: run_integration(args.seeds, args.max_epochs, args.data),
    )


if __name__ == "__main__":
    main()
