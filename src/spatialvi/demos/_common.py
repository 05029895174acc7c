"""Scaffolding shared by the demos: the non-spatial baseline and figure output."""

from __future__ import annotations

from pathlib import Path


def pca_kmeans_labels(adata, n_clusters: int, random_state: int = 0):
    """The non-spatial baseline of the demos: KMeans on PCA of log-normalised counts.

    Works on a copy (``adata`` is not modified) and returns one integer label per observation.
    """
    import scanpy as sc
    from sklearn.cluster import KMeans

    from spatialvi._keys import OBSM

    work = adata.copy()
    sc.pp.normalize_total(work, target_sum=1e4)
    sc.pp.log1p(work)
    sc.pp.pca(work, n_comps=min(20, adata.n_vars - 1), random_state=random_state)
    return KMeans(n_clusters, n_init=10, random_state=random_state).fit_predict(
        work.obsm[OBSM.X_PCA]
    )


def match_to_domains(adata, column: str) -> None:
    """Rename the clusters in ``adata.obs[column]`` after the simulated domains they overlap most.

    Uses :func:`spatialvi.metrics.match_labels` (Hungarian matching, so scores are unchanged)
    and stores a categorical whose categories are the domains' in their order, followed by
    any unmatched clusters: :func:`spatialvi.pl.spatial_scatter` then colours each cluster
    like the domain it stands for.
    """
    import pandas as pd

    from spatialvi._keys import OBS
    from spatialvi.metrics import match_labels

    domains = adata.obs[OBS.DOMAIN].astype("category")
    matched = match_labels(domains, adata.obs[column])
    known = list(domains.cat.categories)
    extra = sorted(set(matched.tolist()) - set(known), key=str)
    adata.obs[column] = pd.Categorical(matched, categories=known + extra)


def figure(n_panels: int, panel_size: tuple[float, float] = (5.5, 5.0), wspace: float = 0.45):
    """A row of ``n_panels`` axes on the non-interactive Agg backend: ``(fig, axes)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width, height = panel_size
    fig, axes = plt.subplots(
        1, n_panels, figsize=(width * n_panels, height), gridspec_kw={"wspace": wspace}
    )
    return fig, axes


def save_figure(fig, out_dir: Path, name: str, dpi: int = 100) -> Path:
    """Save ``fig`` as ``out_dir/name`` (tight bounding box), close it and return the path."""
    import matplotlib.pyplot as plt

    path = Path(out_dir) / name
    fig.savefig(path, bbox_inches="tight", dpi=dpi)
    plt.close(fig)
    return path


def prepare(out_dir: Path) -> Path:
    """The output folder, created if needed."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir
