"""Helpers shared by the test modules (``tests`` is on ``pythonpath``, see pyproject.toml)."""

from __future__ import annotations

import importlib
import os
import warnings

import pytest

#: Trainer arguments that keep test output short.
QUIET = {"enable_progress_bar": False, "enable_model_summary": False, "logger": False}


def train_quietly(model, **kwargs):
    """``model.train(**kwargs)`` without progress bar, summary, logger or warnings; returns it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.train(**QUIET, **kwargs)
    return model


def on_ci() -> bool:
    """Whether the tests run under ``CI=true`` (GitHub Actions and ``bash .ci/run`` set it)."""
    return os.environ.get("CI", "").lower() == "true"


def real_data_required() -> tuple[bool, str]:
    """Whether a missing ``../shared/data`` fails the real-data tests, and why.

    ``SPATIALVI_REQUIRE_DATA`` (``1``/``0``) decides where it is set; otherwise data is required
    under ``CI=true``.
    """
    flag = os.environ.get("SPATIALVI_REQUIRE_DATA", "").strip().lower()
    if flag in ("1", "true", "yes"):
        return True, "SPATIALVI_REQUIRE_DATA=1"
    if flag in ("0", "false", "no"):
        return False, "SPATIALVI_REQUIRE_DATA=0"
    if on_ci():
        return True, "CI=true"
    return False, "not under CI; set SPATIALVI_DATA or SPATIALVI_REQUIRE_DATA=1 to require it"


def import_test_dependency(name: str):
    """Import an optional test dependency: skipped when missing, but failing under ``CI=true``.

    The ``test`` extra installs every such package, so on CI a missing one is a broken
    environment, not a reason to skip (``pytest.importorskip`` would hide it).
    """
    if on_ci():
        return importlib.import_module(name)
    return pytest.importorskip(name)
