"""Helpers shared by the test modules (``tests`` is on ``pythonpath``, see pyproject.toml)."""

from __future__ import annotations

import warnings

#: Trainer arguments that keep test output short.
QUIET = {"enable_progress_bar": False, "enable_model_summary": False, "logger": False}


def train_quietly(model, **kwargs):
    """``model.train(**kwargs)`` without progress bar, summary, logger or warnings; returns it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.train(**QUIET, **kwargs)
    return model
