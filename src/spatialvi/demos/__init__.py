"""One demonstration per model on data the package generates itself (plots live here).

Each demo is a function ``demo(out_dir, quick=False, random_state=0) -> dict`` that writes an
``.h5ad`` and a PNG into ``out_dir`` and returns the figures it measured; ``spatialvi demo NAME``
runs it. This module stays light (no heavy imports) so that the command line answers at once.
"""

from __future__ import annotations

#: Demo name -> "module:function" (imported only when the demo runs).
DEMOS: dict[str, str] = {
    "tissue": "spatialvi.demos.tissue:demo",
    "spavae": "spatialvi.demos.spavae:demo",
    "dpvae": "spatialvi.demos.dpvae:demo",
    "sivae": "spatialvi.demos.sivae:demo",
    "adagvae": "spatialvi.demos.adagvae:demo",
}

__all__ = ["DEMOS"]
