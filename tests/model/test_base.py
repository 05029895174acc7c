"""The shared model base: one output verb, cloning and the training recipe for every model."""

from __future__ import annotations

import numpy as np
import pytest
import scvi

from helpers import train_quietly
from spatialvi._keys import LAYERS, OBSM, UNS
from spatialvi.model import DPVAE, SpaLDVAE, SpaVAE
from spatialvi.sim import synthetic_tissue

_MODELS = {
    "spavae": (SpaVAE, {"n_inducing": 9}, {"beta": 1.0}),
    "spaldvae": (SpaLDVAE, {"n_inducing": 9}, {"beta": 1.0}),
    "dpvae": (DPVAE, {"n_latent": 3, "n_hidden": 16}, {"batch_size": 32}),
}


@pytest.fixture(scope="module", params=sorted(_MODELS))
def trained(request):
    cls, init, train = _MODELS[request.param]
    scvi.settings.seed = 0
    adata = synthetic_tissue(n_spots=80, n_genes=20, n_domains=3, random_state=2)
    cls.setup_anndata(adata)
    model = train_quietly(cls(adata, **init), max_epochs=3, **train)
    return request.param, adata, model


def _snapshot(adata):
    return (
        set(adata.obsm),
        set(adata.layers),
        set(adata.uns),
        adata.X.copy(),
        adata.obs.copy(),
    )


def test_write_outputs_default_keys(trained):
    name, adata, model = trained
    out = adata.copy()
    names, genes = out.obs_names.copy(), out.var_names.copy()
    assert model.write_outputs(out) is None
    latent = f"X_{name}"
    assert latent in (OBSM.X_SPAVAE, OBSM.X_SPALDVAE, OBSM.X_DPVAE)
    assert out.obs_names.equals(names) and out.var_names.equals(genes)
    np.testing.assert_allclose(out.obsm[latent], model.get_latent_representation(), atol=1e-6)
    denoised = out.layers[f"{name}_denoised"]
    assert f"{name}_denoised" in (
        LAYERS.SPAVAE_DENOISED,
        LAYERS.SPALDVAE_DENOISED,
        LAYERS.DPVAE_DENOISED,
    )
    assert denoised.shape == out.shape and np.isfinite(denoised).all() and (denoised >= 0).all()
    params = out.uns[name]
    assert name in (UNS.SPAVAE, UNS.SPALDVAE, UNS.DPVAE)
    assert params["model"] == type(model).__name__
    assert params["latent_key"] == latent and params["denoised_key"] == f"{name}_denoised"
    assert params["n_epochs"] == model.n_epochs_trained == 3


def test_write_outputs_key_added(trained):
    name, adata, model = trained
    out = adata.copy()
    model.write_outputs(out, key_added="X_run2", denoised=False)
    assert "X_run2" in out.obsm and f"X_{name}" not in out.obsm
    assert "run2" in out.uns and "run2_denoised" not in out.layers
    model.write_outputs(out, key_added="mine")
    assert {"mine"} <= set(out.obsm) and "mine_denoised" in out.layers
    assert out.uns["mine"]["latent_key"] == "mine"
    np.testing.assert_allclose(out.obsm["mine"], out.obsm["X_run2"], atol=1e-6)
    with pytest.raises(ValueError, match="key_added"):
        model.write_outputs(out, key_added="")


def test_write_outputs_copy_leaves_input_untouched(trained):
    name, adata, model = trained
    before = _snapshot(adata)
    out = model.write_outputs(copy=True)
    after = _snapshot(adata)
    assert before[:3] == after[:3]
    assert (before[3] != after[3]).nnz == 0 and before[4].equals(after[4])
    assert out is not adata and f"X_{name}" in out.obsm and name in out.uns
    np.testing.assert_allclose(out.obsm[f"X_{name}"], model.get_latent_representation(), atol=1e-6)


def test_clone_is_an_untrained_model_with_the_same_parameters(trained):
    _, adata, model = trained
    other = adata.copy()
    clone = model.clone(other)
    assert type(clone) is type(model) and clone.adata is other
    assert not clone.is_trained_
    ours, theirs = clone.init_kwargs(), model.init_kwargs()
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        np.testing.assert_equal(ours[key], value, err_msg=key)
    assert clone.setup_args() == model.setup_args()
    # Same architecture: the parameter shapes agree one to one.
    shapes = {k: v.shape for k, v in model.module.state_dict().items()}
    assert {k: v.shape for k, v in clone.module.state_dict().items()} == shapes


def test_registered_size_factors_are_library_over_median(trained):
    name, adata, model = trained
    library = np.asarray(adata.X.sum(1)).ravel()
    sf = model.registered_size_factors()
    if name == "dpvae":  # no stored median: relative to the data's own
        np.testing.assert_allclose(sf, np.maximum(library, 1) / np.median(np.maximum(library, 1)))
    else:
        median = float(model.module.median_library)
        np.testing.assert_allclose(sf, np.maximum(library, 1) / median, rtol=1e-6)


def test_train_docstrings_carry_the_shared_arguments():
    for cls in (SpaVAE, SpaLDVAE, DPVAE):
        doc = cls.train.__doc__
        assert "{train_common}" not in doc
        assert "Lightning device arguments" in doc and "**trainer_kwargs" in doc


def test_training_again_after_inference_trains_in_training_mode(trained):
    """Inference leaves the module in eval mode; a second `train()` must switch it back
    (Lightning keeps the mode it finds: batch norm would stay frozen)."""
    from lightning.pytorch.callbacks import Callback

    model = trained[2]
    modes = []

    class RecordMode(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            modes.append(pl_module.module.training)

    model.get_latent_representation()
    assert not model.module.training
    train_quietly(model, max_epochs=1, callbacks=[RecordMode()])
    assert modes and all(modes)
