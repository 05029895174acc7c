"""Tutorial notebooks execute from top to bottom (with short training)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import import_test_dependency

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
REAL_DATA = {
    "adagvae_sprites_to_cells.ipynb": ("bccd",),
    "dpvae_reconstruction.ipynb": ("dlpfc",),
    "point_patterns.ipynb": ("smfish",),
    "sivae_point_patterns.ipynb": ("smfish",),
    "spavae_dlpfc.ipynb": ("dlpfc",),
}


@pytest.mark.parametrize("name", sorted(p.name for p in TUTORIALS.glob("*.ipynb")))
def test_tutorial_executes(name, request, monkeypatch):
    nbformat = import_test_dependency("nbformat")
    nbclient = import_test_dependency("nbclient")
    if name in REAL_DATA:
        request.getfixturevalue(
            f"{REAL_DATA[name][0]}_dir"
        )  # skips (or fails where data is required, see conftest) without data
    monkeypatch.setenv("SPATIALVI_TUTORIAL_EPOCHS", "2")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(TUTORIALS / name, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(TUTORIALS)}},
    )
    client.execute()
    errors = [
        o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"
    ]
    assert not errors
