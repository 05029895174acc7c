"""A query AnnData is matched to the training genes by ``var_names`` (issue: reordered genes
were accepted and encoded wrong); setting up a model leaves the user's AnnData untouched."""

from __future__ import annotations

import numpy as np
import pytest
import scvi

from helpers import train_quietly
from spatialvi.model import DPVAE, SpaLDVAE, SpaVAE
from spatialvi.sim import synthetic_tissue


@pytest.fixture(scope="module", params=["spavae", "spaldvae", "dpvae"])
def trained(request):
    scvi.settings.seed = 0
    adata = synthetic_tissue(n_spots=200, n_genes=40, n_domains=3, random_state=2)
    if request.param == "dpvae":
        DPVAE.setup_anndata(adata)
        model = DPVAE(adata, n_latent=4)
    else:
        cls = SpaVAE if request.param == "spavae" else SpaLDVAE
        cls.setup_anndata(adata)
        model = cls(adata, n_inducing=16)
    return adata, train_quietly(model, max_epochs=3)


def test_reordered_genes_give_the_training_latent(trained):
    adata, model = trained
    z = model.get_latent_representation(adata.copy())
    for order in (
        np.arange(adata.n_vars)[::-1],
        np.random.default_rng(0).permutation(adata.n_vars),
    ):
        query = adata[:, order].copy()
        np.testing.assert_allclose(model.get_latent_representation(query), z, atol=1e-5)


def test_extra_genes_are_ignored(trained):
    adata, model = trained
    z = model.get_latent_representation(adata.copy())
    import anndata as ad

    extra = ad.concat(
        [adata, adata[:, :5].copy()], axis=1, merge="first", uns_merge="first"
    )  # 5 more genes, named apart below
    extra.var_names = [*adata.var_names, *[f"extra_{i}" for i in range(5)]]
    extra = extra[:, np.random.default_rng(1).permutation(extra.n_vars)].copy()
    np.testing.assert_allclose(model.get_latent_representation(extra), z, atol=1e-5)


def test_missing_genes_are_named(trained):
    adata, model = trained
    if isinstance(model, DPVAE):
        # DPVAE pads up to half the genes with zeros by design (min_gene_overlap).
        with pytest.raises(ValueError, match="min_gene_overlap|at least 50%"):
            model.get_latent_representation(adata[:, 30:].copy())
        return
    with pytest.raises(ValueError, match=r"lacks 3 of the 40 genes.*gene_0000"):
        model.get_latent_representation(adata[:, 3:].copy())


def test_denoised_follow_the_query_gene_order(trained):
    adata, model = trained
    order = np.arange(adata.n_vars)[::-1]
    if isinstance(model, DPVAE):
        # DPVAE denoises the training genes in the training order only; the layer is left out.
        query = adata[:, order].copy()
        with pytest.raises(ValueError, match="same order"):
            model.get_denoised_expression(query)
        model.write_outputs(query)
        assert model.output_keys().denoised not in query.layers
        return
    reference = model.get_denoised_expression(adata.copy())
    query = adata[:, order].copy()
    np.testing.assert_allclose(model.get_denoised_expression(query), reference[:, order], rtol=1e-5)
    model.write_outputs(query)
    np.testing.assert_allclose(
        query.layers[model.output_keys().denoised], reference[:, order], rtol=1e-5
    )
    np.testing.assert_allclose(
        query.obsm[model.output_keys().latent],
        model.get_latent_representation(adata.copy()),
        atol=1e-5,
    )


def test_setup_leaves_the_data_untouched():
    adata = synthetic_tissue(n_spots=60, n_genes=20, n_domains=3, random_state=0)
    columns, x, layers = list(adata.obs.columns), adata.X.copy(), list(adata.layers)
    DPVAE.setup_anndata(adata)
    assert list(adata.obs.columns) == columns  # no obs['_indices'] any more
    SpaVAE.setup_anndata(adata)
    # scvi-tools' registration column, documented in SpaVAE.setup_anndata; nothing else.
    assert [c for c in adata.obs.columns if c not in columns] == ["_scvi_batch"]
    assert (adata.X != x).nnz == 0 and list(adata.layers) == layers
