"""SpaVAE demo: train on a simulated section, cluster the latent, compare with PCA + KMeans."""

from __future__ import annotations

import time
from pathlib import Path


def demo(out_dir: Path, quick: bool = False, random_state: int = 0) -> dict:
    """Train SpaVAE on :func:`spatialvi.sim.synthetic_tissue`, cluster, score and plot.

    Training uses a fixed β = 1 and KMeans runs on the standardised latent (see the comments
    in the code); ARI against the simulated domains is compared with PCA + KMeans.

    Writes ``spavae_demo.h5ad`` (with ``obsm['X_spavae']``, ``layers['spavae_denoised']``,
    ``obs['spavae_cluster']``) and ``spavae_demo.png`` (true domains, SpaVAE domains, PCA +
    KMeans domains, latent UMAP) into ``out_dir``. Both clusterings are stored renamed after
    the domains they overlap most (:func:`spatialvi.metrics.match_labels`), so that a
    cluster is drawn in the colour of its domain.

    Parameters
    ----------
    out_dir
        Output folder (created if needed).
    quick
        Tiny data and few epochs (seconds), for smoke tests.
    random_state
        Seed for the simulation, training (``scvi.settings.seed``) and clustering.

    Returns
    -------
    A dict of figures: sizes, epochs, wall time, ARI of SpaVAE and of PCA + KMeans.
    """
    import warnings

    import scanpy as sc
    import scvi

    from spatialvi._keys import OBS, OBSM, cluster_key
    from spatialvi.demos._common import (
        figure,
        match_to_domains,
        pca_kmeans_labels,
        prepare,
        save_figure,
    )
    from spatialvi.metrics import ari
    from spatialvi.model import SpaVAE
    from spatialvi.pl import spatial_scatter
    from spatialvi.sim import synthetic_tissue
    from spatialvi.tl import cluster

    out_dir = prepare(out_dir)
    scvi.settings.seed = random_state
    n_spots, n_genes, epochs = (400, 150, 100) if quick else (1500, 300, 300)
    adata = synthetic_tissue(
        n_spots=n_spots, n_genes=n_genes, n_domains=5, random_state=random_state
    )
    n_domains = adata.obs[OBS.DOMAIN].nunique()

    pca_labels = pca_kmeans_labels(adata, n_domains, random_state)
    adata.obs[OBS.PCA_KMEANS] = pca_labels.astype(str)

    SpaVAE.setup_anndata(adata)
    model = SpaVAE(adata, n_inducing=25 if quick else 49)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Fixed β = 1: within a demo's epoch budget the paper's PI-controlled β (KL target
        # 0.025 nats per dim and spot) collapses the Gaussian dims on this small simulation.
        model.train(
            max_epochs=epochs, beta=1.0, enable_progress_bar=False, enable_model_summary=False
        )
    train_s = time.perf_counter() - start
    model.write_outputs(adata)
    # Standardised dims: the GP dims have several times the spread of the Gaussian ones.
    cluster(
        adata,
        use_rep=OBSM.X_SPAVAE,
        n_clusters=n_domains,
        standardize=True,
        random_state=random_state,
    )
    clusters = cluster_key(OBSM.X_SPAVAE)
    spavae_ari = ari(adata.obs[OBS.DOMAIN], adata.obs[clusters])
    pca_ari = ari(adata.obs[OBS.DOMAIN], pca_labels)
    print(f"SpaVAE ARI {spavae_ari:.3f} | PCA + KMeans ARI {pca_ari:.3f}")

    # Clusters renamed after the domains they overlap most, so that colours agree across panels.
    for column in (clusters, OBS.PCA_KMEANS):
        match_to_domains(adata, column)

    sc.pp.neighbors(adata, use_rep=OBSM.X_SPAVAE, random_state=random_state)
    sc.tl.umap(adata, random_state=random_state)
    fig, axes = figure(4)
    spatial_scatter(adata, OBS.DOMAIN, ax=axes[0], title="simulated domains")
    spatial_scatter(adata, clusters, ax=axes[1], title=f"SpaVAE + KMeans (ARI {spavae_ari:.2f})")
    spatial_scatter(adata, OBS.PCA_KMEANS, ax=axes[2], title=f"PCA + KMeans (ARI {pca_ari:.2f})")
    spatial_scatter(
        adata,
        OBS.DOMAIN,
        spatial_key=OBSM.X_UMAP,
        ax=axes[3],
        size=6,
        title="SpaVAE latent UMAP (true domains)",
    )
    png = save_figure(fig, out_dir, "spavae_demo.png")
    h5ad = out_dir / "spavae_demo.h5ad"
    adata.write_h5ad(h5ad)
    return {
        "spots x genes": f"{adata.n_obs} x {adata.n_vars}",
        "domains": int(n_domains),
        "epochs": model.n_epochs_trained,
        "train seconds": round(train_s, 1),
        "SpaVAE ARI": round(float(spavae_ari), 3),
        "PCA+KMeans ARI": round(float(pca_ari), 3),
        "wrote": f"{h5ad}, {png}",
    }
