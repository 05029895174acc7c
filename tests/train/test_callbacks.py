"""Training callbacks and schedules: relative early stopping, the KL warm-up controller."""

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


def test_restore_best_loads_the_weights_of_the_lowest_value():
    # The weight records the epoch; the lowest value (epoch 3) beats the best by no margin.
    values = [10.0, 8.0, 7.99, 7.5, 9.0, 9.5, 9.9]
    module = torch.nn.Linear(1, 1)
    stopper = RelativeEarlyStopping("elbo_validation", patience=3, rel_delta=0.1, restore_best=True)
    trainer = SimpleNamespace(sanity_checking=False, should_stop=False, callback_metrics={})
    stopper.on_train_start(trainer, module)
    for epoch, v in enumerate(values):
        with torch.no_grad():
            module.weight.fill_(float(epoch))
        trainer.current_epoch = epoch
        trainer.callback_metrics = {"elbo_validation": torch.tensor(v)}
        stopper.on_validation_end(trainer, module)
        if trainer.should_stop:
            break
    # Margin 10 %: 8.0 is the last counted improvement, so patience runs out at epoch 4.
    assert stopper.best_epoch == 1 and stopper.stopped_epoch == 4
    assert stopper.lowest_epoch == 3 and module.weight.item() == 4.0
    stopper.on_train_end(trainer, module)
    assert stopper.restored_epoch == 3 and module.weight.item() == 3.0
    # Without restore_best the final weights stay.
    plain, _ = _run(values, patience=3, rel_delta=0.1)
    plain.on_train_end(trainer, module)
    assert plain.restored_epoch is None and module.weight.item() == 3.0


def test_kl_warmup_controller():
    from spatialvi.train import KLWarmup

    warm = KLWarmup(4, beta=2.0, beta_start=0.5)
    assert warm.beta == 0.5
    assert [warm.start_epoch(e) for e in range(6)] == [0.5, 0.875, 1.25, 1.625, 2.0, 2.0]
    assert warm.update(123.0) == 2.0  # per-step KL values do not move it
    assert KLWarmup(0).beta == 1.0
    with pytest.raises(ValueError, match="n_epochs"):
        KLWarmup(-1)
