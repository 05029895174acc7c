"""Shared fixtures. Real-data tests skip when the data is absent, but fail where it is required.

Real data is required under ``CI=true`` (``bash .ci/run`` sets it), unless
``SPATIALVI_REQUIRE_DATA=0`` says the job has none (the GitHub workflow, whose runners lack
``../shared/data``); ``SPATIALVI_REQUIRE_DATA=1`` requires it anywhere. Skips show their reason
in the summary (``-ra``).
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from scvi-tools' seed 0 (torch, NumPy and Python generators).

    Results then do not depend on which tests ran before in the same worker (``-n 2`` deals
    tests out differently from run to run); tests that need other seeds set them.
    """
    import scvi

    scvi.settings.seed = 0


@pytest.fixture(scope="session", autouse=True)
def torch_threads_per_worker():
    """One share of the cores per pytest-xdist worker for torch's intra-op threads.

    The models in the tests are tiny; with ``-n 2`` on 2 cores, two workers running two OpenMP
    threads each mostly wait for each other (measured: a model test module took 9.6 min instead
    of 31 s on a loaded 2-core machine).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(_threads_per_worker())
    yield
    torch.set_num_threads(before)


def _threads_per_worker() -> int:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, (os.cpu_count() or 1) // workers)


@pytest.fixture(autouse=True)
def torch_threads_reset(torch_threads_per_worker):
    """Put the worker's share back before every test: numba kernels (UMAP's, SMACOF's) and
    squidpy share torch's OpenMP runtime and raise its thread count (measured 1 -> 2), which made
    every later training of that worker ~10x slower with two workers on 2 cores."""
    import torch

    torch.set_num_threads(_threads_per_worker())


def _require(path_parts: tuple[str, ...]):
    from helpers import real_data_required
    from spatialvi.datasets import data_dir

    try:
        path = data_dir().joinpath(*path_parts)
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing")
    except FileNotFoundError as err:
        required, why = real_data_required()
        if required:
            pytest.fail(f"real data required ({why}): {err}")
        pytest.skip(f"real data not available ({why}): {err}")
    return path


@pytest.fixture
def dlpfc_dir():
    """Folder holding the DLPFC .h5ad files (skips/fails when absent)."""
    return _require(("dlpfc",))


@pytest.fixture
def smfish_dir():
    """Folder holding the smFISH crops and annotations (skips/fails when absent)."""
    return _require(("smfish",))


@pytest.fixture(scope="module")
def bccd_dir():
    """Folder holding the BCCD images and VOC annotations (skips/fails when absent)."""
    return _require(("bccd",))
