"""Shared fixtures. Real-data tests skip when the data is absent, but fail under CI=true."""

from __future__ import annotations

import os

import pytest


def _require(path_parts: tuple[str, ...]):
    from spatialvi.datasets import data_dir

    try:
        root = data_dir()
    except FileNotFoundError as err:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"real data required under CI=true: {err}")
        pytest.skip(f"real data not available: {err}")
    path = root.joinpath(*path_parts)
    if not path.exists():
        msg = f"{path} is missing"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"real data required under CI=true: {msg}")
        pytest.skip(f"real data not available: {msg}")
    return path


@pytest.fixture
def dlpfc_dir():
    """Folder holding the DLPFC .h5ad files (skips/fails when absent)."""
    return _require(("dlpfc",))


@pytest.fixture
def smfish_dir():
    """Folder holding the smFISH crops and annotations (skips/fails when absent)."""
    return _require(("smfish",))
