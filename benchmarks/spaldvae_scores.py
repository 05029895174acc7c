"""SpaLDVAE spatial scores on synthetic tissue: AUROC of the default score and the authors' share.

The tests' model (300 spots, 80 genes of which the markers and gradient genes are spatially
variable, ``n_gp=3``, 100 epochs at fixed β = 5) is trained once per seed; both scores of
:meth:`~spatialvi.model.SpaLDVAE.spatial_scores` are compared with the simulated truth
(``var['spatially_variable']``) by AUROC.

Usage: ``python benchmarks/spaldvae_scores.py --seeds 0 1 2 3 4``.
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import QUIET, quiet_logging


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    quiet_logging()

    import scvi
    import torch
    from sklearn.metrics import roc_auc_score

    from spatialvi._keys import VAR
    from spatialvi.model import SpaLDVAE
    from spatialvi.sim import synthetic_tissue

    torch.set_num_threads(args.threads)
    rows = []
    for seed in args.seeds:
        scvi.settings.seed = seed
        adata = synthetic_tissue(n_spots=300, n_genes=80, n_domains=4, random_state=7)
        SpaLDVAE.setup_anndata(adata)
        model = SpaLDVAE(adata, n_gp=3, n_inducing=25)
        model.train(max_epochs=100, beta=5.0, lr=1e-2, batch_size=64, **QUIET)
        truth = adata.var[VAR.SPATIALLY_VARIABLE].to_numpy()
        lfc = roc_auc_score(truth, model.spatial_scores().to_numpy())
        share = roc_auc_score(truth, model.spatial_scores("expression_share").to_numpy())
        rows.append((lfc, share))
        print(f"seed {seed}: AUROC log_fold_change {lfc:.3f} | expression_share {share:.3f}")
    lfc, share = np.array(rows).T
    print(
        f"median AUROC log_fold_change {np.median(lfc):.3f} (range {lfc.min():.3f}-{lfc.max():.3f})"
        f" | expression_share {np.median(share):.3f} ({share.min():.3f}-{share.max():.3f})"
    )


if __name__ == "__main__":
    main()
