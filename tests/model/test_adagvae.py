"""AdaGVAE: pairs reach the loss whole, encoding needs features only, save/load and transfer
keep the weights and the source scaling, and bad input is named."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pytest
import torch

import spatialvi as sv
from helpers import train_quietly
from spatialvi._keys import OBS, OBSM, REGISTRY_KEYS
from spatialvi.model import AdaGVAE

SMALL = {"hidden": (32, 32), "n_latent": 4}


def _sprites(n_pairs=60, seed=0, **factors):
    adata = sv.sim.texture_dsprites(
        n_pairs=n_pairs, k=1, image_size=16, factors=factors or None, random_state=seed
    )
    sv.pp.extract_features(adata, backbone="raw", progress_bar=False)
    return adata


@pytest.fixture(scope="module")
def trained():
    adata = _sprites()
    names = adata.uns["texture_dsprites"]["factors"]
    AdaGVAE.setup_anndata(adata, features_key=OBSM.X_RAW, factor_keys=names, k=1)
    model = AdaGVAE(adata, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # with the logger: the history holds the shared dims per pair
        model.train(
            max_epochs=3,
            batch_size=16,
            accelerator="cpu",
            enable_progress_bar=False,
            enable_model_summary=False,
        )
    return adata, model


def test_training_sees_whole_pairs_and_shares_dims(trained):
    adata, model = trained
    assert model.run_params_["paired"] and model.is_trained
    history = model.history
    # every pair shares at least one and at most n_latent − 1 dims (τ between min and max)
    shared = history["shared_dims_per_pair_train"].to_numpy(dtype=float)
    assert (shared >= 1).all() and (shared <= SMALL["n_latent"] - 1).all()
    # the splitter split pairs: training minibatches hold whole pairs
    splitter = sv.data.PairDataSplitter(
        model.adata_manager, REGISTRY_KEYS.PAIR_KEY, train_size=0.75, batch_size=16
    )
    splitter.setup()
    ids = adata.obs[OBS.PAIR_ID].to_numpy()
    assert not set(ids[splitter.train_idx]) & set(ids[splitter.val_idx])
    batch = next(iter(splitter.train_dataloader()))
    pair = batch[REGISTRY_KEYS.PAIR_KEY].reshape(-1)
    assert torch.equal(pair[0::2], pair[1::2]) and len(pair) == 16


def test_encoding_needs_features_only_and_save_load_is_identical(trained, tmp_path):
    adata, model = trained
    z = model.get_latent_representation()
    query = ad.AnnData(
        X=np.zeros((adata.n_obs, 0), np.float32), obsm={"X_raw": adata.obsm["X_raw"]}
    )
    np.testing.assert_allclose(model.get_latent_representation(query), z, atol=1e-6)
    model.save(tmp_path / "m", save_anndata=False)
    loaded = AdaGVAE.load(str(tmp_path / "m"), adata=adata, accelerator="cpu")
    np.testing.assert_array_equal(loaded.get_latent_representation(), z)
    # a query without pairs loads too
    loaded_q = AdaGVAE.load(str(tmp_path / "m"), adata=query, accelerator="cpu")
    np.testing.assert_array_equal(loaded_q.get_latent_representation(), z)
    model.write_outputs()
    assert adata.obsm["X_adagvae"].shape == (adata.n_obs, SMALL["n_latent"])


def test_decode_reconstructs_in_feature_units_and_traversal_sweeps_one_dim():
    adata = _sprites(n_pairs=150, seed=2)
    # features in other units (0–255 plus an offset): decode must map back to them
    adata.obsm["X_units"] = adata.obsm[OBSM.X_RAW] * 255.0 + 10.0
    AdaGVAE.setup_anndata(adata, features_key="X_units")
    model = AdaGVAE(adata, hidden=(64, 64), n_latent=4)
    train_quietly(model, max_epochs=25, batch_size=32, lr=1e-2, accelerator="cpu")
    x = adata.obsm["X_units"]
    z = model.get_latent_representation()
    decoded = model.decode(z)
    assert decoded.shape == x.shape
    mse, baseline = ((decoded - x) ** 2).mean(), ((x - x.mean(0)) ** 2).mean()
    assert mse < 0.9 * baseline, (mse, baseline)
    assert abs(decoded.mean() - x.mean()) < 0.1 * x.std()
    traversal = model.traverse(index=3, values=[-2.0, 0.0, 2.0])
    assert traversal.shape == (4, 3, x.shape[1])
    z3 = np.repeat(z[3:4], 3, axis=0)
    z3[:, 1] = [-2.0, 0.0, 2.0]
    np.testing.assert_allclose(traversal[1], model.decode(z3), atol=1e-4)
    with pytest.raises(ValueError, match="n_latent"):
        model.decode(np.zeros((2, 5)))


def test_transfer_keeps_weights_and_source_ranges(trained, tmp_path):
    _, model = trained
    # a target of another colour: its features have other ranges
    target = _sprites(n_pairs=30, seed=5, colour=3)
    target.obs = target.obs[[]]  # unlabelled target: no pairs, no factors
    new = model.transfer(target)
    assert not new.run_params_["paired"] and new.run_params_["transferred"]
    for (name, a), b in zip(
        model.module.state_dict().items(), new.module.state_dict().values(), strict=True
    ):
        assert torch.equal(a.cpu(), b.cpu()), name
    np.testing.assert_allclose(
        new.get_latent_representation(target), model.get_latent_representation(target), atol=1e-6
    )
    before = new.module.encoder.first_linear.weight.detach().clone()
    train_quietly(new, max_epochs=2, batch_size=16, accelerator="cpu")
    assert not torch.equal(before, new.module.encoder.first_linear.weight.detach().cpu())
    # fine-tuning changed the weights but not the source scaling
    torch.testing.assert_close(new.module.scaling.lo.cpu(), model.module.scaling.lo.cpu())
    torch.testing.assert_close(new.module.scaling.hi.cpu(), model.module.scaling.hi.cpu())
    model.save(tmp_path / "src", save_anndata=False)
    again = AdaGVAE.load_pretrained(tmp_path / "src", target)
    np.testing.assert_allclose(
        again.get_latent_representation(target), model.get_latent_representation(target), atol=1e-6
    )


def test_beta_vae_ignores_pairs():
    adata = _sprites(n_pairs=20)
    AdaGVAE.setup_anndata(adata, features_key=OBSM.X_RAW)
    model = AdaGVAE(adata, aggregation=None, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.train(max_epochs=1, batch_size=16, accelerator="cpu", enable_progress_bar=False)
    assert "kl_per_obs_train" in model.history
    assert "shared_dims_per_pair_train" not in model.history


def test_bad_input_is_named():
    adata = _sprites(n_pairs=20)
    names = adata.uns["texture_dsprites"]["factors"]
    bad = adata.copy()
    bad.obsm["X_raw"][3, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        AdaGVAE.setup_anndata(bad, features_key=OBSM.X_RAW)
    with pytest.raises(KeyError, match="X_dino"):
        AdaGVAE.setup_anndata(adata)
    lonely = adata[1:].copy()  # pair 0 lost a member
    with pytest.raises(ValueError, match="exactly two members"):
        AdaGVAE.setup_anndata(lonely, features_key=OBSM.X_RAW)
    triple = adata.copy()
    triple.obs[OBS.PAIR_ID] = np.r_[0, 0, 0, np.arange(3, adata.n_obs) // 2]
    with pytest.raises(ValueError, match="exactly two members"):
        AdaGVAE.setup_anndata(triple, features_key=OBSM.X_RAW)
    two = sv.sim.texture_dsprites(n_pairs=20, k=2, image_size=16, random_state=1)
    sv.pp.extract_features(two, backbone="raw", progress_bar=False)
    with pytest.raises(ValueError, match="more than k=1"):
        AdaGVAE.setup_anndata(two, features_key=OBSM.X_RAW, factor_keys=names, k=1)
    with pytest.raises(KeyError, match="hue"):
        AdaGVAE.setup_anndata(adata, features_key=OBSM.X_RAW, factor_keys=["hue"])
    with pytest.raises(KeyError, match="pairs"):
        AdaGVAE.setup_anndata(adata, features_key=OBSM.X_RAW, pair_key="pairs")
    AdaGVAE.setup_anndata(adata, features_key=OBSM.X_RAW)
    with pytest.raises(ValueError, match="aggregation"):
        AdaGVAE(adata, aggregation="mean", **SMALL)
    model = AdaGVAE(adata, **SMALL)
    narrow = ad.AnnData(
        X=np.zeros((5, 0), np.float32), obsm={"X_raw": np.zeros((5, 7), np.float32)}
    )
    with pytest.raises(ValueError, match="7 features"):
        model.transfer(narrow)
    with pytest.raises(ValueError, match="architecture"):
        model.transfer(adata, n_latent=3)
