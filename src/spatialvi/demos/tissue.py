"""The foundation demo: simulate the embedded default tissue and write it out."""

from __future__ import annotations

from pathlib import Path


def demo(out_dir: Path, quick: bool = False, random_state: int = 0) -> dict:
    """Simulate a synthetic section, write it as ``synthetic_tissue.h5ad`` and a PNG of its domains.

    Also reports how well PCA + KMeans (no spatial information) recovers the domains, the
    baseline every spatial model in the package should beat; its clusters are stored in
    ``obs['pca_kmeans']`` renamed after the domains they overlap most
    (:func:`spatialvi.metrics.match_labels`), so that both panels colour a domain alike.
    """
    from spatialvi._keys import OBS, VAR
    from spatialvi.demos._common import (
        figure,
        match_to_domains,
        pca_kmeans_labels,
        prepare,
        save_figure,
    )
    from spatialvi.metrics import ari, morans_i
    from spatialvi.pl import spatial_scatter
    from spatialvi.sim import synthetic_tissue

    out_dir = prepare(out_dir)
    adata = synthetic_tissue(
        n_spots=400 if quick else 3000, n_genes=100 if quick else 500, random_state=random_state
    )
    n_domains = adata.obs[OBS.DOMAIN].nunique()
    labels = pca_kmeans_labels(adata, n_domains, random_state)
    adata.obs[OBS.PCA_KMEANS] = labels.astype(str)
    match_to_domains(adata, OBS.PCA_KMEANS)  # same colour for a cluster and its domain
    moran = morans_i(adata)
    sv = adata.var[VAR.SPATIALLY_VARIABLE].to_numpy()

    h5ad = out_dir / "synthetic_tissue.h5ad"
    adata.write_h5ad(h5ad)
    fig, axes = figure(2)
    spatial_scatter(adata, OBS.DOMAIN, ax=axes[0], title="simulated domains")
    spatial_scatter(adata, OBS.PCA_KMEANS, ax=axes[1], title="PCA + KMeans (no space)")
    png = save_figure(fig, out_dir, "synthetic_tissue.png", dpi=110)
    return {
        "spots x genes": f"{adata.n_obs} x {adata.n_vars}",
        "domains": n_domains,
        "PCA+KMeans ARI": round(ari(adata.obs[OBS.DOMAIN], labels), 3),
        "mean Moran's I (spatially variable / other genes)": f"{moran[sv].mean():.3f} / {moran[~sv].mean():.3f}",
        "wrote": f"{h5ad}, {png}",
    }
