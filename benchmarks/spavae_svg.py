"""SpaLDVAE spatially variable genes on DLPFC 151507 against Moran's I.

SpaLDVAE + ``tl.spatially_variable_genes`` (``"refit"`` null, ``--svg-permutations``, default
5, pooled over genes unless ``--no-svg-pooled``; ``--refit-steps``, default 300); top-50 by
spatial score against the top-50 by Moran's I of log-normalised counts
(``spatialvi.metrics.morans_i``, squidpy): overlap, Jaccard, chance level; Spearman correlation
of the two scores over all genes.

``--max-epochs`` caps the training (default: ``train()``'s default, early stopping within 5000
epochs). ``--seeds`` repeats the run (mean and SD printed). Torch runs on ``--threads``
(default 1; the machine is shared) threads; set ``OMP_NUM_THREADS`` to match.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/spavae_svg.py --seeds 0
    python benchmarks/spavae_svg.py --svg-permutations 100
    python benchmarks/spavae_svg.py --max-epochs 5 --svg-permutations 2 --refit-steps 20  # smoke

Time (one seed, one thread; estimated, not measured end to end): ≈ 15–30 min; the refit null
≈ 30 s per permutation at 300 steps. The smoke runs measured 0.7–0.8 s per epoch (validation
included) for one DLPFC section, ≈ 1000–2000 epochs under the early-stopping rule. The smoke
line ≈ 30 s (measured 26 s, imports included).
"""

from __future__ import annotations

import time

from _spavae import (
    add_null_arguments,
    epochs_text,
    load_dlpfc,
    make_parser,
    morans_i,
    n_epochs,
    null_settings,
    null_text,
    print_row,
    run_part,
    summary,
    train_quietly,
)


def run_svg(seeds, max_epochs, data, null: dict, top: int = 50) -> None:
    import scvi
    from scipy.stats import spearmanr

    from spatialvi._keys import VAR
    from spatialvi.model import SpaLDVAE
    from spatialvi.tl import spatially_variable_genes

    base = load_dlpfc("151507", data)
    print(
        f"== svg: DLPFC 151507 {base.n_obs} spots x {base.n_vars} genes, SpaLDVAE "
        f"train({epochs_text(max_epochs)}), "
        f"{null_text(null, base.n_vars)}; top-{top} vs Moran's I top-{top} "
        f"of log-normalised counts (chance overlap {top * top / base.n_vars:.1f}) ==",
        flush=True,
    )
    start = time.perf_counter()
    moran = morans_i(base)
    t_moran = time.perf_counter() - start
    top_moran = set(moran.sort_values(ascending=False).index[:top])
    rows = []
    for seed in seeds:
        adata = base.copy()
        SpaLDVAE.setup_anndata(adata)
        scvi.settings.seed = seed
        model = SpaLDVAE(adata)
        wall = train_quietly(model, max_epochs)
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
                "epochs": n_epochs(model),
                "train s": wall,
                "s/epoch": wall / max(n_epochs(model), 1),
                "null s": t_svg,
                "Moran s": t_moran,
                "null/Moran time": t_svg / t_moran,
            }
        )
        print_row("151507 SVG", rows[-1])
    summary("151507 SVG", rows)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = make_parser(__doc__, "cap the training (default: train()'s default)")
    add_null_arguments(parser, "--svg-permutations", 5)
    args = parser.parse_args(argv)
    null = null_settings(args, args.svg_permutations)
    run_part("svg", args.threads, lambda: run_svg(args.seeds, args.max_epochs, args.data, null))


if __name__ == "__main__":
    main()
