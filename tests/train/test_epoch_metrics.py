"""Epoch metrics accumulated on the device give the values scvi-tools' per-step logging gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scvi.module.base import LossOutput
from scvi.train._metrics import ElboMetric

from spatialvi.train import EpochMetrics


def _outputs(seed: int, n_batches: int = 5):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for k in range(n_batches):
        b = 7 + 3 * k
        rec = torch.rand(b, generator=gen) * 100
        kl = torch.rand(b, generator=gen) * 5
        kl_global = torch.rand((), generator=gen)
        loss = rec.mean() + kl.mean()
        out.append(
            LossOutput(
                loss=loss,
                reconstruction_loss=rec,
                kl_local=kl,
                kl_global=kl_global,
                extra_metrics={"kl_per_obs": kl.mean(), "vector": kl},
                n_obs_minibatch=b,
            )
        )
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_values_match_scvi_tools_metrics(seed):
    outputs = _outputs(seed)
    n_total = sum(o.n_obs_minibatch for o in outputs)
    ours = EpochMetrics("validation", n_total)
    betas = [1.0 + 0.5 * k for k in range(len(outputs))]
    for o, beta in zip(outputs, betas, strict=True):
        ours.add(o, beta=beta)
    values = ours.values()
    # scvi-tools' torchmetrics objects, fed as its TrainingPlan feeds them.
    rec, kl_local = (
        ElboMetric("reconstruction_loss", "validation", "obs"),
        ElboMetric("kl_local", "validation", "obs"),
    )
    kl_global = ElboMetric("kl_global", "validation", "batch")
    elbo = rec + kl_local + (1 / n_total) * kl_global
    for o in outputs:
        elbo.update(
            reconstruction_loss=o.reconstruction_loss_sum,
            kl_local=o.kl_local_sum,
            kl_global=o.kl_global_sum,
            n_obs_minibatch=o.n_obs_minibatch,
        )
    sizes = np.array([o.n_obs_minibatch for o in outputs], dtype=float)
    expected = {
        "elbo_validation": float(elbo.compute()),
        "reconstruction_loss_validation": float(rec.compute()),
        "kl_local_validation": float(kl_local.compute()),
        "kl_global_validation": float(kl_global.compute()),
        # Lightning's epoch value of a step-logged scalar: the batch-size-weighted mean.
        "validation_loss": float(np.average([float(o.loss) for o in outputs], weights=sizes)),
        "kl_per_obs_validation": float(
            np.average([float(o.extra_metrics["kl_per_obs"]) for o in outputs], weights=sizes)
        ),
        "beta": float(np.average(betas, weights=sizes)),
    }
    assert set(values) == set(expected)  # the non-scalar extra metric is not logged
    for key, value in expected.items():
        np.testing.assert_allclose(values[key], value, rtol=1e-6, err_msg=key)


def test_no_minibatch_gives_no_values():
    assert EpochMetrics("train", 10).values() == {}
