"""Sphinx configuration for spatialvi."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from spatialvi import __version__

project = "spatialvi"
author = "spatialvi developers"
copyright = "2026, spatialvi developers"
version = release = __version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
]
autosummary_generate = True
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "inherited-members": False, "show-inheritance": False}
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
myst_enable_extensions = ["dollarmath", "colon_fence"]
# Tutorials are executed by their own tests and benchmarks; the docs show them as stored.
nb_execution_mode = "off"
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
intersphinx_mapping = {}
nitpicky = False
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header"]
html_theme = "furo"
html_title = f"spatialvi {version}"
