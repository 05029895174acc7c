"""The foundation demo: simulate the embedded default tissue and write it out."""

from __future__ import annotations

from pathlib import Path


def pca_kmeans_labels(adata, n_clusters: int, seed: int = 0):
    """The non-spatial baseline of the demos: KMeans on PCA of log-normalised counts.

    Works on a copy (``adata`` is not modified) and returns one integer label per observation.
    """
    import scanpy as sc
    from sklearn.cluster import KMeans

    from spatialvi._keys import OBSM

    work = adata.copy()
    sc.pp.normalize_total(work, target_sum=1e4)
    sc.pp.log1p(work)
    sc.pp.pca(work, n_comps=min(20, adata.n_vars - 1), random_state=seed)
    return KMeans(n_clusters, n_init=10, random_state=seed).fit_predict(work.obsm[OBSM.X_PCA])


def tissue_demo(out_dir: Path, quick: bool = False, seed: int = 0) -> dict:
    """Simulate a synthetic section, write it as ``synthetic_tissue.h5ad`` and a PNG of its domains.

    Also reports how well PCA + KMeans (no spatial information) recovers the domains, the
    baseline every spatial model in the package should beat.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from spatialvi._keys import OBS
    from spatialvi.metrics import ari, morans_i
    from spatialvi.pl import spatial_scatter
    from spatialvi.sim import synthetic_tissue

    out_dir = Path(out_dir)
    adata = synthetic_tissue(
        n_spots=400 if quick else 3000, n_genes=100 if quick else 500, seed=seed
    )
    n_domains = adata.obs[OBS.DOMAIN].nunique()
    labels = pca_kmeans_labels(adata, n_domains, seed)
    adata.obs["pca_kmeans"] = labels.astype(str)
    moran = morans_i(adata)
    sv = adata.var["spatially_variable"].to_numpy()

    h5ad = out_dir / "synthetic_tissue.h5ad"
    adata.write_h5ad(h5ad)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"wspace": 0.45})
    spatial_scatter(adata, OBS.DOMAIN, ax=axes[0], title="simulated domains")
    spatial_scatter(adata, "pca_kmeans", ax=axes[1], title="PCA + KMeans (no space)")
    png = out_dir / "synthetic_tissue.png"
    fig.savefig(png, bbox_inches="tight", dpi=110)
    plt.close(fig)
    return {
        "spots x genes": f"{adata.n_obs} x {adata.n_vars}",
        "domains": n_domains,
        "PCA+KMeans ARI": round(ari(adata.obs[OBS.DOMAIN], labels), 3),
        "mean Moran's I (spatially variable / other genes)": f"{moran[sv].mean():.3f} / {moran[~sv].mean():.3f}",
        "wrote": f"{h5ad}, {png}",
    }
