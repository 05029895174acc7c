"""The training plan's linear learning-rate warm-up sets the rate each optimizer step uses."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from lightning.pytorch.callbacks import Callback

from spatialvi.model import DPVAE
from spatialvi.sim import synthetic_tissue
from spatialvi.train import SpatialviTrainingPlan


class _StepRates(Callback):
    """The learning rate of every parameter group just before each optimizer step."""

    def __init__(self):
        self.rates: list[list[float]] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.rates.append([group["lr"] for group in optimizer.param_groups])


def _train(plan_kwargs, lr=2e-3, max_epochs=6):
    adata = synthetic_tissue(n_spots=120, n_genes=30, n_domains=2, random_state=0)
    DPVAE.setup_anndata(adata)
    model = DPVAE(adata, n_latent=2, n_hidden=16)
    rates = _StepRates()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.train(
            max_epochs=max_epochs,
            batch_size=40,
            train_size=1.0,
            lr=lr,
            plan_kwargs=plan_kwargs,
            callbacks=[rates],
            enable_progress_bar=False,
            enable_model_summary=False,
            logger=False,
        )
    return np.array(rates.rates)


@pytest.mark.parametrize(("steps", "start"), [(7, 0.0), (10, 0.25)])
def test_warmup_rises_linearly_then_holds(steps, start):
    lr = 2e-3
    rates = _train({"lr_warmup_steps": steps, "lr_warmup_start": start}, lr=lr)
    # 120 spots in batches of 40: 3 steps per epoch, 18 in all.
    assert rates.shape[0] == 18
    k = np.arange(18)
    expected = np.where(k < steps, lr * (start + (1 - start) * k / steps), lr)
    np.testing.assert_allclose(rates[:, 0], expected, rtol=1e-6, atol=1e-12)
    # Every parameter group follows the same schedule.
    assert np.all(rates == rates[:, :1])


def test_no_warmup_keeps_the_rate_and_bad_arguments_are_named():
    rates = _train(None, lr=3e-3, max_epochs=2)
    np.testing.assert_allclose(rates, 3e-3)
    for bad in ({"lr_warmup_steps": -1}, {"lr_warmup_steps": 2.5}, {"lr_warmup_steps": True}):
        with pytest.raises(ValueError, match="lr_warmup_steps"):
            SpatialviTrainingPlan(None, **bad)
    with pytest.raises(ValueError, match="lr_warmup_start"):
        SpatialviTrainingPlan(None, lr_warmup_start=1.5)


@pytest.mark.parametrize(("lr", "steps"), [(1e-3, 0), (3e-3, 4)])
def test_spavae_warmup_starts_at_a_third_of_the_rate(lr, steps):
    """SpaVAE's ``lr_warmup_steps`` rises from ``lr / 3``; by default the authors' 1e-3 holds."""
    from spatialvi.model import SpaVAE

    adata = synthetic_tissue(n_spots=120, n_genes=30, n_domains=2, random_state=0)
    SpaVAE.setup_anndata(adata)
    model = SpaVAE(adata, n_inducing=9, n_gp=2, n_gauss=2)
    rates = _StepRates()
    train = {} if steps == 0 else {"lr": lr, "lr_warmup_steps": steps}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.train(
            max_epochs=3,
            batch_size=40,
            train_size=1.0,
            callbacks=[rates],
            enable_progress_bar=False,
            enable_model_summary=False,
            logger=False,
            **train,
        )
    got = np.array(rates.rates)[:, 0]
    assert got.shape == (9,)
    k = np.arange(9)
    expected = np.where(k < steps, lr * (1 / 3 + (2 / 3) * k / max(steps, 1)), lr)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert model.run_params_["lr"] == lr and model.run_params_["lr_warmup_steps"] == steps
