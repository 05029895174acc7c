"""Helpers shared by the benchmark scripts (run as ``python benchmarks/<name>.py``)."""

from __future__ import annotations

import logging
import resource
import time
import warnings

#: Trainer arguments that keep benchmark output short, keeping scvi-tools' default logger
#: (the per-epoch ``model.history``), for runs that read the training curves.
QUIET_WITH_HISTORY = {"enable_progress_bar": False, "enable_model_summary": False}

#: Trainer arguments that keep benchmark output short (no logger, no history).
QUIET = {**QUIET_WITH_HISTORY, "logger": False}


def quiet_logging() -> None:
    """Silence warnings, scvi-tools' INFO messages and Lightning's per-fit banners.

    Call it after the arguments are parsed: it imports scvi-tools (and with it Lightning, which
    sets its loggers' levels when imported).
    """
    import scvi

    warnings.filterwarnings("ignore")
    scvi.settings.verbosity = logging.WARNING
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far, in GiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def epoch_timer():
    """A Lightning callback recording the wall time of each training epoch in ``.times``."""
    from lightning.pytorch.callbacks import Callback

    class EpochTimer(Callback):
        def __init__(self):
            self.times: list[float] = []
            self._start = 0.0

        def on_train_epoch_start(self, trainer, pl_module):
            self._start = time.perf_counter()

        def on_train_epoch_end(self, trainer, pl_module):
            self.times.append(time.perf_counter() - self._start)

    return EpochTimer()
