"""Training callbacks."""

from __future__ import annotations

import math

from lightning.pytorch.callbacks import Callback


class RelativeEarlyStopping(Callback):
    """Stop when a validation quantity has not improved by a relative margin for a while.

    An epoch improves on the best value so far when ``value < best − rel_delta·|best|``; after
    ``patience`` validation runs without such an improvement training stops. Lightning's
    :class:`~lightning.pytorch.callbacks.EarlyStopping` takes an absolute ``min_delta``, whose
    right size depends on the data (an ELBO per spot is ~10² nats for a small gene panel and
    ~10³–10⁴ for a whole transcriptome); a relative margin does not. Without a margin a slowly
    creeping, noisy validation loss (the usual case for a small validation set) sets a new best
    now and then and never stops.

    Parameters
    ----------
    monitor
        Name of the logged validation metric (lower is better).
    patience
        Number of validation runs without improvement before stopping.
    rel_delta
        Relative improvement that counts (``0`` gives Lightning's behaviour with
        ``min_delta=0``).
    restore_best
        At the end of training load the weights of the epoch with the lowest value of
        ``monitor`` (no margin applied), as the spaVAE authors' early stopping does and like
        scvi-tools' ``load_best_on_end``. The weights are kept in memory, not on disk.
    """

    def __init__(
        self,
        monitor: str = "elbo_validation",
        patience: int = 200,
        rel_delta: float = 0.0,
        restore_best: bool = False,
    ):
        super().__init__()
        if patience < 1:
            raise ValueError(f"`patience` must be at least 1, got {patience}.")
        if rel_delta < 0:
            raise ValueError(f"`rel_delta` must be non-negative, got {rel_delta}.")
        self.monitor = monitor
        self.patience = int(patience)
        self.rel_delta = float(rel_delta)
        self.restore_best = bool(restore_best)
        self.on_train_start(None, None)

    def on_train_start(self, trainer, pl_module) -> None:
        """Reset the state (a callback object may be reused for a second training)."""
        self.best, self.best_epoch, self.wait, self.stopped_epoch = None, None, 0, None
        # Lowest value seen (no margin), its epoch and, with `restore_best`, its weights.
        self.lowest: float | None = None
        self.lowest_epoch: int | None = None
        self.restored_epoch: int | None = None
        self._lowest_state: dict | None = None

    def on_validation_end(self, trainer, pl_module) -> None:
        """Compare the latest value with the best and stop when patience is exhausted."""
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            raise KeyError(
                f"Early stopping monitors {self.monitor!r}, which the training plan does not log; "
                f"logged: {sorted(trainer.callback_metrics)}."
            )
        value = float(value)
        if math.isfinite(value) and (self.lowest is None or value < self.lowest):
            self.lowest, self.lowest_epoch = value, trainer.current_epoch
            if self.restore_best:
                self._lowest_state = {
                    k: v.detach().clone() for k, v in pl_module.state_dict().items()
                }
        if math.isfinite(value) and (
            self.best is None or value < self.best - self.rel_delta * abs(self.best)
        ):
            self.best, self.best_epoch, self.wait = value, trainer.current_epoch, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = trainer.current_epoch
            trainer.should_stop = True

    def on_train_end(self, trainer, pl_module) -> None:
        """With ``restore_best``, load the weights of the lowest validation value."""
        if self.restore_best and self._lowest_state is not None:
            pl_module.load_state_dict(self._lowest_state)
            self.restored_epoch = self.lowest_epoch
        self._lowest_state = None


class Throughput(Callback):
    """Training throughput: observations (e.g. images) per second of training-epoch wall time.

    Counts the observations of every training minibatch and the wall time from the start of
    each training epoch to its end (validation excluded); :attr:`per_second` is their ratio
    over the whole training, logged as ``"throughput"`` each epoch.
    """

    def __init__(self):
        super().__init__()
        self.on_train_start(None, None)

    def on_train_start(self, trainer, pl_module) -> None:
        self.n_seen, self.seconds, self._start = 0, 0.0, None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        import time

        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        first = next(iter(batch.values())) if isinstance(batch, dict) else batch[0]
        self.n_seen += int(first.shape[0])

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        import time

        if self._start is not None:
            self.seconds += time.perf_counter() - self._start
        pl_module.log("throughput", self.per_second, on_step=False, on_epoch=True)

    @property
    def per_second(self) -> float:
        """Observations per second so far (0 before any epoch ended)."""
        return self.n_seen / self.seconds if self.seconds > 0 else 0.0
