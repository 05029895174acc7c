"""DPVAE spatial reconstruction and SMACOF speed benchmark.

Parts (``--part``):

* ``smacof``: our dense SMACOF vs :func:`sklearn.manifold.smacof` (metric, unit weights) on the
  same noisy distances, same random start, same ``max_iter`` and ``eps``; wall time and final
  stress (ours must be within 1 %). Then ``--sparse-n`` points in the sparse kNN mode.
* ``dlpfc``: Procrustes disparity of held-out reconstructions, DPVAE vs the λ = 0 VAE (several
  seeds), within 151507 (80/20 split) and 151507 → 151508 on their shared genes, next to a
  kNN regression from expression PCA to coordinates.

Usage: ``python benchmarks/dpvae_reconstruction.py --part smacof --sizes 2000 5000 10000``;
``--part dlpfc --default-training --no-vae`` times and scores ``DPVAE.train()`` with its
defaults (the training-speed target).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import QUIET, peak_rss_gib


def _noisy_distances(n, seed):
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 100, size=(n, 2))
    d = cdist(x, x)
    noise = rng.normal(0, 0.05, size=(n, n))
    d = d * np.exp((noise + noise.T) / 2)
    np.fill_diagonal(d, 0)
    return x, d


def bench_smacof(sizes, max_iter, eps, sparse_n, threads):
    import torch
    from sklearn.manifold import smacof as sk_smacof

    from spatialvi.geometry import smacof

    torch.set_num_threads(threads)
    for n in sizes:
        _, d = _noisy_distances(n, 0)
        init = np.random.default_rng(1).normal(size=(n, 2))
        t = time.perf_counter()
        ours = smacof(d, init=init, max_iter=max_iter, eps=eps)
        t_ours = time.perf_counter() - t
        t = time.perf_counter()
        theirs, _, n_iter = sk_smacof(
            d,
            metric=True,
            init=init.copy(),
            n_init=1,
            max_iter=max_iter,
            eps=eps,
            normalized_stress=False,
            return_n_iter=True,
        )
        t_sk = time.perf_counter() - t
        # Both final stresses measured the same way (ours, float64 chunked).
        from scipy.spatial.distance import pdist, squareform

        sk_stress = float(((pdist(theirs) - squareform(d, checks=False)) ** 2).sum())
        print(
            f"n={n}: ours {t_ours:.1f}s ({ours.n_iter} it, stress {ours.stress:.5g}) | sklearn {t_sk:.1f}s "
            f"({n_iter} it, stress {sk_stress:.5g}) | speed-up {t_sk / t_ours:.1f}x | "
            f"stress ratio {ours.stress / sk_stress:.4f}",
            flush=True,
        )
    if sparse_n:
        from scipy import sparse
        from sklearn.neighbors import NearestNeighbors

        from spatialvi.metrics import procrustes_disparity

        rng = np.random.default_rng(0)
        x = rng.uniform(0, 1000, size=(sparse_n, 2))
        dist, idx = NearestNeighbors(n_neighbors=16).fit(x).kneighbors(x)
        noisy = dist[:, 1:] * np.exp(rng.normal(0, 0.02, size=dist[:, 1:].shape))
        r = np.repeat(np.arange(sparse_n), 15)
        graph = sparse.csr_matrix(
            (noisy.ravel() + 1e-12, (r, idx[:, 1:].ravel())), shape=(sparse_n, sparse_n)
        )
        t = time.perf_counter()
        res = smacof(graph, max_iter=max_iter, eps=eps)
        print(
            f"sparse kNN n={sparse_n}: {time.perf_counter() - t:.1f}s, {res.n_iter} it, stress {res.stress:.5g}, "
            f"disparity to truth {procrustes_disparity(x, res.coordinates):.4g}",
            flush=True,
        )


def bench_dlpfc(data_dir, seeds, epochs, dp_weight, default_training=False, vae=True):
    import anndata as ad
    import scanpy as sc
    import scvi
    from sklearn.decomposition import PCA
    from sklearn.neighbors import KNeighborsRegressor

    from spatialvi.metrics import procrustes_disparity
    from spatialvi.model import DPVAE
    from spatialvi.tl import reconstruct_spatial

    a7 = ad.read_h5ad(f"{data_dir}/dlpfc_151507.h5ad")
    a8 = ad.read_h5ad(f"{data_dir}/dlpfc_151508.h5ad")
    shared = a7.var_names.intersection(a8.var_names)
    print(f"151507 {a7.shape}, 151508 {a8.shape}, shared genes {len(shared)}")

    def knn_peer(train, query):
        xt, xq = train.copy(), query.copy()
        for a in (xt, xq):
            sc.pp.normalize_total(a, target_sum=1e4)
            sc.pp.log1p(a)
        pca = PCA(30, random_state=0).fit(xt.X.toarray())
        reg = KNeighborsRegressor(15).fit(pca.transform(xt.X.toarray()), train.obsm["spatial"])
        return reg.predict(pca.transform(xq.X.toarray()))

    tasks = {}
    rng = np.random.default_rng(0)
    test = rng.random(a7.n_obs) < 0.2
    tasks["151507 80/20"] = (a7[~test].copy(), a7[test].copy())
    tasks["151507→151508"] = (a7[:, shared].copy(), a8[:, shared].copy())
    for task, (train, query) in tasks.items():
        truth = query.obsm["spatial"].copy()
        q = query.copy()
        del q.obsm["spatial"]
        res = {"dpvae": [], "vae": []}
        models = (("dpvae", dp_weight), ("vae", 0.0)) if vae else (("dpvae", dp_weight),)
        for seed in seeds:
            for name, w in models:
                scvi.settings.seed = seed
                DPVAE.setup_anndata(train)
                m = DPVAE(train, dp_weight=w)
                start = time.perf_counter()
                if default_training:
                    m.train(**QUIET)
                else:
                    m.train(max_epochs=epochs, batch_size=256, **QUIET)
                wall = time.perf_counter() - start
                n_epochs = m.n_epochs_trained
                out = reconstruct_spatial(q, m, copy=True)
                res[name].append(procrustes_disparity(truth, out.obsm["spatial"]))
                print(
                    f"  {task} seed {seed} {name}: disparity {res[name][-1]:.4f}, training "
                    f"{wall:.1f} s, {n_epochs} epochs ({wall / n_epochs:.3f} s/epoch), peak RSS "
                    f"{peak_rss_gib():.2f} GiB",
                    flush=True,
                )
        peer = procrustes_disparity(truth, knn_peer(train, query))
        line = f"{task}: disparity DPVAE {np.mean(res['dpvae']):.4f}±{np.std(res['dpvae']):.4f}"
        if vae:
            line += (
                f" | VAE {np.mean(res['vae']):.4f}±{np.std(res['vae']):.4f} | ratio "
                f"{np.mean(res['dpvae']) / np.mean(res['vae']):.2f}"
            )
        print(f"{line} | kNN(PCA) peer {peer:.4f}", flush=True)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=["smacof", "dlpfc", "all"], default="all")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000, 10000])
    parser.add_argument("--max-iter", type=int, default=300)
    parser.add_argument("--eps", type=float, default=1e-6)
    parser.add_argument("--sparse-n", type=int, default=50000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder of the DLPFC .h5ad files (default: dlpfc/ in SPATIALVI_DATA or ../shared/data)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--dp-weight", type=float, default=100.0)
    parser.add_argument(
        "--default-training",
        action="store_true",
        help="train with DPVAE.train()'s defaults (epochs, batch size) instead of --epochs",
    )
    parser.add_argument("--no-vae", action="store_true", help="skip the λ = 0 VAE")
    args = parser.parse_args()
    if args.part in ("smacof", "all"):
        bench_smacof(args.sizes, args.max_iter, args.eps, args.sparse_n, args.threads)
    if args.part in ("dlpfc", "all"):
        if args.data_dir is None:
            from spatialvi.datasets import data_dir

            args.data_dir = data_dir() / "dlpfc"
        bench_dlpfc(
            args.data_dir,
            args.seeds,
            args.epochs,
            args.dp_weight,
            default_training=args.default_training,
            vae=not args.no_vae,
        )


if __name__ == "__main__":
    main()
