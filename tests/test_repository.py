"""Repository-level checks: lint clean, docs build without warnings, README commands."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import import_test_dependency

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    paths = [p for p in ("src", "tests", "benchmarks", "docs/conf.py") if (ROOT / p).exists()]
    result = subprocess.run([ruff, "check", *paths], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_docs_build_without_warnings(tmp_path):
    import_test_dependency("myst_nb")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            "docs",
            str(tmp_path / "html"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "html" / "api.html").exists()


def test_readme_has_exactly_two_setup_commands():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    setup = [b.strip() for b in blocks if "python3 -m venv" in b]
    assert len(setup) == 2
    assert setup[0].endswith("spatialvi demo")
    assert "pytest" in setup[1]
    assert all(
        b.startswith("python3 -m venv .venv") and "pip install torch==2.13.0" in b for b in setup
    )
    # .ci/run runs the command that follows the marker.
    marker = readme.split("<!-- test-command -->", 1)[1]
    assert re.search(r"```bash\n(.*?)```", marker, flags=re.S).group(1).strip() == setup[1]
