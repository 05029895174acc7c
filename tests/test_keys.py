"""Keys derived from `key_added` agree with the key registry, and key_added moves them all."""

from __future__ import annotations

import pytest

from spatialvi._keys import (
    LAYERS,
    MODEL,
    MODEL_LATENTS,
    OBS,
    OBSM,
    UNS,
    VAR,
    cluster_key,
    model_keys,
    reconstruction_uns_key,
    svg_keys,
)


def test_default_model_keys_are_the_registered_ones():
    assert tuple(model_keys(MODEL.SPAVAE)) == (OBSM.X_SPAVAE, LAYERS.SPAVAE_DENOISED, UNS.SPAVAE)
    assert tuple(model_keys(MODEL.SPALDVAE)) == (
        OBSM.X_SPALDVAE,
        LAYERS.SPALDVAE_DENOISED,
        UNS.SPALDVAE,
    )
    assert tuple(model_keys(MODEL.DPVAE)) == (OBSM.X_DPVAE, LAYERS.DPVAE_DENOISED, UNS.DPVAE)
    for name, latent, uns in (
        (MODEL.SIVAE, OBSM.X_SIVAE, UNS.SIVAE),
        (MODEL.ADAGVAE, OBSM.X_ADAGVAE, UNS.ADAGVAE),
    ):
        assert model_keys(name)[::2] == (latent, uns)
    # The latents tl.cluster looks for are the registered ones of every model.
    assert MODEL_LATENTS == (
        OBSM.X_SPAVAE,
        OBSM.X_SPALDVAE,
        OBSM.X_DPVAE,
        OBSM.X_SIVAE,
        OBSM.X_ADAGVAE,
    )
    assert cluster_key(OBSM.X_SPAVAE) == OBS.SPAVAE_CLUSTER
    assert reconstruction_uns_key(OBSM.SPATIAL) == UNS.RECONSTRUCT_SPATIAL
    assert tuple(svg_keys()) == (VAR.SPATIAL_SCORE, VAR.SVG_RANK, VAR.SVG_PVAL, UNS.SVG)


def test_key_added_moves_every_output():
    assert tuple(model_keys(MODEL.SPAVAE, "X_spavae")) == tuple(model_keys(MODEL.SPAVAE))
    assert tuple(model_keys(MODEL.DPVAE, "X_run2")) == ("X_run2", "run2_denoised", "run2")
    assert tuple(model_keys(MODEL.DPVAE, "run2")) == ("run2", "run2_denoised", "run2")
    assert tuple(svg_keys("nullb")) == ("nullb_score", "nullb_rank", "nullb_pval", "nullb")
    assert cluster_key("rep") == "rep_cluster"
    assert reconstruction_uns_key("spatial_dpvae") == "reconstruct_spatial_dpvae"
    for bad in ("", 3):
        with pytest.raises(ValueError, match="key_added"):
            model_keys(MODEL.SPAVAE, bad)
        with pytest.raises(ValueError, match="key_added"):
            svg_keys(bad)


def test_demo_keys():
    from spatialvi._keys import demo_key

    assert demo_key(OBSM.SPATIAL, MODEL.DPVAE) == "spatial_dpvae"
