"""RelativeEarlyStopping: stops exactly when the relative margin is not met for `patience` runs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from spatialvi.train import RelativeEarlyStopping


def _run(values, **kwargs):
    stopper = RelativeEarlyStopping("elbo_validation", **kwargs)
    trainer = SimpleNamespace(sanity_checking=False, should_stop=False, callback_metrics={})
    stopper.on_train_start(trainer, None)
    for epoch, v in enumerate(values):
        trainer.current_epoch = epoch
        trainer.callback_metrics = {"elbo_validation": torch.tensor(v)}
        stopper.on_validation_end(trainer, None)
        if trainer.should_stop:
            return stopper, epoch
    return stopper, None


def test_creeping_noisy_loss_stops_only_with_a_margin():
    # Improves by 0.1 % per epoch from 1000 for 50 epochs, then creeps by 1e-6 relative.
    values = [1000 * (1 - 1e-3) ** k for k in range(50)]
    values += [values[-1] * (1 - 1e-6) ** k for k in range(1, 400)]
    _, stop = _run(values, patience=20, rel_delta=0.0)
    assert stop is None  # every epoch is a new best without a margin
    stopper, stop = _run(values, patience=20, rel_delta=1e-4)
    assert stopper.best_epoch == 49 and stop == 49 + 20


def test_nan_counts_as_no_improvement_and_state_resets():
    stopper, stop = _run([5.0, float("nan"), float("nan"), 6.0], patience=3)
    assert stop == 3 and stopper.best == 5.0
    trainer = SimpleNamespace(sanity_checking=False, should_stop=False, callback_metrics={})
    stopper.on_train_start(trainer, None)
    assert stopper.best is None and stopper.wait == 0


def test_missing_metric_and_bad_arguments():
    with pytest.raises(KeyError, match="nope"):
        stopper = RelativeEarlyStopping("nope")
        trainer = SimpleNamespace(sanity_checking=False, callback_metrics={"a": 1.0})
        stopper.on_validation_end(trainer, None)
    with pytest.raises(ValueError, match="patience"):
        RelativeEarlyStopping(patience=0)
    with pytest.raises(ValueError, match="rel_delta"):
        RelativeEarlyStopping(rel_delta=-1)
