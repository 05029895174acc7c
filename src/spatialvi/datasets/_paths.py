"""Where real data is read from: ``$SPATIALVI_DATA`` or ``../shared/data`` beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "SPATIALVI_DATA"


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """Resolve the folder holding real data sets (``dlpfc/``, ``smfish/``).

    Order: the ``path`` argument; the ``SPATIALVI_DATA`` environment variable;
    ``../shared/data`` relative to the working directory; ``../shared/data`` relative to the
    source checkout. The first that exists wins.

    Raises
    ------
    FileNotFoundError
        If none of them exists; the message lists the places looked at.
    """
    candidates: list[Path] = []
    if path is not None:
        candidates.append(Path(path))
    elif os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]))
    else:
        candidates.append(Path.cwd().parent / "shared" / "data")
        # src/spatialvi/datasets/_paths.py -> checkout root is parents[3]
        candidates.append(Path(__file__).resolve().parents[3].parent / "shared" / "data")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"Real data folder not found (looked at: {looked}). Pass `path=` or set the "
        f"{ENV_VAR} environment variable to the folder holding dlpfc/ and smfish/."
    )
