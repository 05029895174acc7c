from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from spatialvi.pl import spatial_scatter
from spatialvi.sim import synthetic_tissue


def test_spatial_scatter(tmp_path):
    adata = synthetic_tissue(n_spots=200, n_genes=20, n_domains=3, random_state=0)
    ax = spatial_scatter(adata, "domain", save=tmp_path / "d.png")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "domain_0",
        "domain_1",
        "domain_2",
    ]
    offsets = np.concatenate([c.get_offsets() for c in ax.collections])
    assert len(offsets) == adata.n_obs  # every spot drawn once
    assert ax.yaxis_inverted()
    assert (tmp_path / "d.png").stat().st_size > 5000
    _, ax2 = plt.subplots()
    assert spatial_scatter(adata, adata.var_names[0], ax=ax2) is ax2
    assert np.allclose(ax2.collections[0].get_array(), adata[:, 0].X.toarray().ravel())
    with pytest.raises(KeyError, match="neither an adata.obs column nor a gene"):
        spatial_scatter(adata, "nothing")
    plt.close("all")
