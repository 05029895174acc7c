"""Architecture checks on the source tree: the arrows point down.

Read with :mod:`ast` only (nothing in ``spatialvi`` is imported, so the checks take a fraction
of a second and need neither torch nor scvi-tools). What is checked and why:

1. Import direction. The layers below the user-facing verbs (``data``, ``train``, ``nn``,
   ``module``, ``model``, ``geometry``) never import ``tl``, ``pl``, ``pp``, ``demos`` or
   ``cli``; only ``cli`` and ``demos`` itself import ``demos``; nothing imports ``cli``. The
   building blocks in ``nn`` are pure torch (no AnnData handling), ``geometry`` is pure
   numerics and ``metrics`` does not depend on models or verbs. Every import counts: module
   level, inside functions and under ``if TYPE_CHECKING``, absolute and relative.
2. No cycles between subpackages, so each one can be read, tested and replaced on its own.
3. AnnData keys are spelled out only in ``_keys.py``; everything else uses its names
   (``OBSM.SPATIAL``, ``UNS.SPAVAE``, ...), so a key is renamed in one place.
4. Self-tests of the checkers on small synthetic sources, so that none of the above passes
   vacuously.
5. The directory tree names the architecture: each layer is a subpackage.

The checkers are plain functions taking a path relative to ``src/spatialvi`` and the source
text, and returning violations as ``"src/spatialvi/<path>:<line>: <what> (<why>)"`` strings.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "spatialvi"
PACKAGE_DIR = ROOT / "src" / PACKAGE
KEYS_FILE = "_keys.py"

#: Subpackages the tree must have (each with an ``__init__.py``).
LAYOUT_DIRS = (
    "data",
    "train",
    "nn",
    "module",
    "model",
    "model/base",
    "geometry",
    "pp",
    "tl",
    "pl",
    "metrics",
    "sim",
    "datasets",
    "demos",
)
#: Top-level modules the tree must have.
LAYOUT_MODULES = (
    "__init__.py",
    "_keys.py",
    "_checks.py",
    "_validation.py",
    "_version.py",
    "cli.py",
)

#: Node standing for ``spatialvi`` itself (``import spatialvi``, ``from spatialvi import
#: __version__``) and for ``spatialvi/__init__.py``.
ROOT_NODE = PACKAGE

VERBS_AND_ENTRY_POINTS = frozenset({"tl", "pl", "pp", "demos", "cli"})
LOWER_LAYERS = ("model", "module", "nn", "train", "data", "geometry")

#: subpackage -> (forbidden spatialvi subpackages, forbidden dotted module prefixes, reason)
FORBIDDEN: dict[str, tuple[frozenset[str], tuple[str, ...], str]] = {
    **{
        layer: (
            VERBS_AND_ENTRY_POINTS,
            (),
            f"{layer}/ sits below the verbs and entry points; arrows point down",
        )
        for layer in LOWER_LAYERS
    },
    "nn": (
        VERBS_AND_ENTRY_POINTS | {"data", "_validation", "_keys"},
        ("anndata", "scanpy", "squidpy", "scvi.data"),
        "nn/ holds pure-torch building blocks: no AnnData handling",
    ),
    "geometry": (
        VERBS_AND_ENTRY_POINTS | {"model", "module", "metrics"},
        ("anndata",),
        "geometry/ is pure numerics below models, metrics and verbs",
    ),
    "metrics": (
        frozenset({"model", "module", "tl", "pl", "pp", "demos", "cli"}),
        (),
        "metrics/ are pure metrics: no models or verbs",
    ),
}
#: The layers, bottom (0) to top: a module may import its own layer's and lower layers' modules
#: only (cycles within a layer are caught by rule 2). The folder tree tells this architecture.
LAYER_RANK: dict[str, int] = {
    "_version": 0,
    "_keys": 0,
    "_threads": 0,
    "_checks": 0,
    "_validation": 1,
    "nn": 2,
    "geometry": 2,
    "data": 2,
    "train": 3,
    "metrics": 3,
    "sim": 3,
    "module": 4,
    "model": 5,
    "pp": 6,
    "tl": 6,
    "pl": 6,
    "datasets": 7,
    "demos": 8,
    "cli": 9,
}

#: Who may import ``demos``; nobody may import ``cli``.
DEMOS_IMPORTERS = frozenset({"cli", "demos"})

#: Attributes of an AnnData whose string subscripts are keys.
ANNDATA_ATTRS = frozenset({"obs", "obsm", "var", "varm", "layers", "uns", "obsp", "varp"})
#: Parameter / keyword names whose string values are keys.
KEY_ARG_NAMES = frozenset({"key_added", "use_rep", "layer", "spatial_key", "batch_key"})
KEYS_HINT = "use the names in spatialvi._keys"


# --------------------------------------------------------------------------------------------
# helpers


def _where(path: str, node: ast.AST | int) -> str:
    line = node if isinstance(node, int) else getattr(node, "lineno", 0)
    return f"src/{PACKAGE}/{path}:{line}"


def _code(node: ast.AST, limit: int = 90) -> str:
    text = " ".join(ast.unparse(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parse(path: str, source: str) -> tuple[ast.Module | None, list[str]]:
    try:
        return ast.parse(source, filename=path), []
    except SyntaxError as err:
        return None, [f"{_where(path, err.lineno or 0)}: cannot be parsed ({err.msg})"]


def subpackage_of(path: str) -> str:
    """Top-level subpackage (or module) of ``spatialvi`` a file belongs to.

    ``model/base/_x.py`` -> ``model``; ``cli.py`` -> ``cli``; ``__init__.py`` -> ``spatialvi``.
    """
    parts = PurePosixPath(path).parts
    if len(parts) > 1:
        return parts[0]
    stem = PurePosixPath(parts[0]).stem
    return ROOT_NODE if stem == "__init__" else stem


def _package_parts(path: str) -> list[str]:
    """Dotted package of a file, for resolving its relative imports."""
    parts = [PACKAGE, *PurePosixPath(path).parts]
    return parts[:-1]  # drop the file name: a module's package, or an __init__'s own package


def _known_top_level() -> frozenset[str]:
    names = {d.split("/")[0] for d in LAYOUT_DIRS}
    names |= {PurePosixPath(m).stem for m in LAYOUT_MODULES if m != "__init__.py"}
    if PACKAGE_DIR.is_dir():
        for child in PACKAGE_DIR.iterdir():
            if child.is_dir() and (child / "__init__.py").exists():
                names.add(child.name)
            elif child.suffix == ".py" and child.stem != "__init__":
                names.add(child.stem)
    return frozenset(names)


KNOWN_TOP_LEVEL = _known_top_level()


@dataclass(frozen=True)
class ImportRef:
    """One name an import statement brings in."""

    line: int
    code: str  # the statement, unparsed
    name: str  # absolute dotted name (``spatialvi.tl.cluster``, ``scvi.data.fields``)
    target: str | None  # spatialvi subpackage it reaches, ROOT_NODE, or None when external


def _target(dotted: list[str], from_import: bool) -> str | None:
    if not dotted or dotted[0] != PACKAGE:
        return None
    if len(dotted) == 1:
        return ROOT_NODE
    head = dotted[1]
    # ``from spatialvi import __version__`` names an attribute of the package, not a module
    if len(dotted) == 2 and from_import and head not in KNOWN_TOP_LEVEL:
        return ROOT_NODE
    return head


def collect_imports(path: str, tree: ast.Module) -> list[ImportRef]:
    """Every import anywhere in the file (functions, methods, ``if TYPE_CHECKING`` included)."""
    refs: list[ImportRef] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                dotted = alias.name.split(".")
                refs.append(ImportRef(node.lineno, _code(node), alias.name, _target(dotted, False)))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = _package_parts(path)
                up = node.level - 1
                if up > len(package) - 1:
                    continue  # beyond the top-level package; Python would refuse it too
                base = package[: len(package) - up]
            else:
                base = []
            module = base + (node.module.split(".") if node.module else [])
            for alias in node.names:
                dotted = module if alias.name == "*" else [*module, alias.name]
                refs.append(
                    ImportRef(node.lineno, _code(node), ".".join(dotted), _target(dotted, True))
                )
    return sorted(refs, key=lambda r: (r.line, r.name))


# --------------------------------------------------------------------------------------------
# rule 1: import direction


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def check_import_direction(path: str, source: str) -> list[str]:
    """Imports of ``path`` that point up or sideways (rule 1)."""
    tree, errors = _parse(path, source)
    if tree is None:
        return errors
    own = subpackage_of(path)
    banned_sub, banned_ext, reason = FORBIDDEN.get(own, (frozenset(), (), ""))
    violations: list[str] = []
    for ref in collect_imports(path, tree):
        why = None
        if ref.target is not None and ref.target != own:
            if ref.target in banned_sub:
                why = f"{reason}; it must not import {PACKAGE}.{ref.target}"
            elif ref.target == "cli":
                why = f"nothing imports {PACKAGE}.cli, it is the outermost entry point"
            elif ref.target == "demos" and own not in DEMOS_IMPORTERS:
                why = f"only {PACKAGE}.cli and demos/ itself may import {PACKAGE}.demos"
        elif ref.target is None:
            hit = next((p for p in banned_ext if _matches(ref.name, p)), None)
            if hit is not None:
                why = f"{reason}; it must not import {hit}"
        if why:
            violations.append(f"{_where(path, ref.line)}: `{ref.code}` -> {ref.name} ({why})")
    return violations


def check_layer_ranks(path: str, source: str) -> list[str]:
    """Imports of ``path`` that reach a higher layer of :data:`LAYER_RANK` (rule 1b)."""
    own = subpackage_of(path)
    if own not in LAYER_RANK:
        return []
    tree, errors = _parse(path, source)
    if tree is None:
        return errors
    violations = []
    for ref in collect_imports(path, tree):
        rank = LAYER_RANK.get(ref.target or "")
        if rank is not None and rank > LAYER_RANK[own]:
            violations.append(
                f"{_where(path, ref.line)}: `{ref.code}` -> {ref.name} ({own} is in layer "
                f"{LAYER_RANK[own]}, {ref.target} in layer {rank}; arrows point down)"
            )
    return violations


# --------------------------------------------------------------------------------------------
# rule 2: no cycles between subpackages

#: (source subpackage, target subpackage) -> first import seen, as "file:line: `code`"
Edges = dict[tuple[str, str], str]


def import_graph(files: dict[str, str]) -> Edges:
    """Subpackage -> subpackage edges of the files (``path -> source``)."""
    edges: Edges = {}
    for path, source in sorted(files.items()):
        if path == "__init__.py":  # the package root lists its submodules lazily
            continue
        tree, _ = _parse(path, source)
        if tree is None:
            continue
        own = subpackage_of(path)
        for ref in collect_imports(path, tree):
            if ref.target is None or ref.target in (own, ROOT_NODE):
                continue
            edges.setdefault((own, ref.target), f"{_where(path, ref.line)}: `{ref.code}`")
    return edges


def strongly_connected_components(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative); components with more than one node, sorted."""
    graph: dict[str, list[str]] = {}
    for a, b in edges:
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, [])
    for targets in graph.values():
        targets.sort()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return sorted(components)


def _cycle_in(component: list[str], edges: Collection[tuple[str, str]]) -> list[str]:
    """A shortest cycle through the first node of a strongly connected component (BFS)."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for a, b in sorted(edges):
                if a != node or b not in members:
                    continue
                if b == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if b not in previous:
                    previous[b] = node
                    following.append(b)
        frontier = following
    return component  # unreachable for a true component


def check_cycles(files: dict[str, str]) -> list[str]:
    """One violation per import cycle between subpackages (rule 2)."""
    edges = import_graph(files)
    violations = []
    for component in strongly_connected_components(edges):
        cycle = _cycle_in(component, edges)
        lines = [f"cycle {' -> '.join(cycle)} (subpackages {', '.join(component)}):"]
        lines += [f"    {a} -> {b}: {edges[a, b]}" for a, b in itertools.pairwise(cycle)]
        violations.append("\n".join(lines))
    return violations


# --------------------------------------------------------------------------------------------
# rule 3: AnnData keys only in _keys.py


def collect_keys(source: str) -> frozenset[str]:
    """Key values in ``_keys.py``: NamedTuple string defaults and module-level string constants."""
    tree = ast.parse(source)
    keys: set[str] = set()

    def add(value: ast.expr | None) -> None:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            keys.add(value.value)

    for stmt in tree.body:
        if isinstance(stmt, ast.ClassDef):
            for item in stmt.body:
                if isinstance(item, ast.AnnAssign):
                    add(item.value)
        elif isinstance(stmt, ast.Assign | ast.AnnAssign):
            add(stmt.value)
    return frozenset(keys)


def _is_key_arg(name: str | None) -> bool:
    return name is not None and (name.endswith("_key") or name in KEY_ARG_NAMES)


def _is_str(node: ast.AST | None) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def _anndata_attr(node: ast.AST, keys_call: bool = False) -> str | None:
    """``obsm`` for ``<x>.obsm`` (and, with ``keys_call``, ``<x>.obsm.keys()``), else None."""
    if keys_call and isinstance(node, ast.Call) and not node.args and not node.keywords:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "keys":
            node = func.value
    if isinstance(node, ast.Attribute) and node.attr in ANNDATA_ATTRS:
        return node.attr
    return None


def _docstrings(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                ids.add(id(body[0].value))
    return ids


def _export_lists(tree: ast.Module) -> set[int]:
    """Strings in ``__all__ = [...]`` (and ``+=``): names of functions, not keys."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        else:
            continue
        if node.value is not None and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in targets
        ):
            ids |= {id(part) for part in ast.walk(node.value)}
    return ids


def _distinctive(value: str) -> bool:
    return len(value) >= 5 and ("_" in value or value.startswith("X_"))


def check_keys(path: str, source: str, keys: Collection[str] = ()) -> list[str]:
    """AnnData keys spelled out as string literals in ``path`` (rule 3)."""
    if path == KEYS_FILE:
        return []
    tree, errors = _parse(path, source)
    if tree is None:
        return errors
    found: list[tuple[int, int, str]] = []
    flagged: set[int] = set()

    def flag(literal: ast.AST, shown: ast.AST, why: str) -> None:
        if id(literal) in flagged:
            return
        flagged.add(id(literal))
        where = f"{_where(path, shown)}: `{_code(shown)}`"
        found.append((getattr(shown, "lineno", 0), getattr(shown, "col_offset", 0), where + why))

    in_fstring: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            in_fstring |= {id(part) for part in ast.walk(node) if part is not node}

    for node in ast.walk(tree):
        attr = _anndata_attr(node.value) if isinstance(node, ast.Subscript) else None
        if isinstance(node, ast.Subscript) and attr and _is_str(node.slice):
            flag(node.slice, node, f" (AnnData key spelled out in .{attr}[...]; {KEYS_HINT})")
        elif isinstance(node, ast.Compare) and _is_str(node.left):
            for op, right in zip(node.ops, node.comparators):
                if isinstance(op, ast.In | ast.NotIn) and _anndata_attr(right, True):
                    flag(
                        node.left,
                        node,
                        f" (AnnData key spelled out in a membership test; {KEYS_HINT})",
                    )
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            args = node.args
            positional = [*args.posonlyargs, *args.args]
            pairs = list(zip(positional[len(positional) - len(args.defaults) :], args.defaults))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
            for arg, default in pairs:
                if _is_key_arg(arg.arg) and _is_str(default):
                    flag(
                        default,
                        default,
                        f" (default of parameter {arg.arg!r} spells out an AnnData key; {KEYS_HINT})",
                    )
        elif isinstance(node, ast.Call):
            for keyword in node.keywords:
                if _is_key_arg(keyword.arg) and _is_str(keyword.value):
                    flag(
                        keyword.value,
                        keyword,
                        f" (keyword {keyword.arg!r} spells out an AnnData key; {KEYS_HINT})",
                    )

    # Keys of dict literals and indices of non-AnnData subscripts are the names of tensors
    # and keyword arguments inside a module (``{"size_factor": sf}``, ``out["size_factor"]``),
    # not AnnData keys; AnnData subscripts are caught above.
    internal: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            internal |= {id(k) for k in node.keys if k is not None}
        elif isinstance(node, ast.Subscript) and _anndata_attr(node.value) is None:
            internal.add(id(node.slice))
    skipped = _docstrings(tree) | _export_lists(tree) | in_fstring | internal
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value in keys
            and _distinctive(node.value)
            and id(node) not in skipped
        ):
            flag(node, node, f" (the value of a key in _keys.py spelled out; {KEYS_HINT})")
    return [message for _, _, message in sorted(found)]


# --------------------------------------------------------------------------------------------
# the real tree


def _source_files() -> dict[str, str]:
    return {
        p.relative_to(PACKAGE_DIR).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(PACKAGE_DIR.rglob("*.py"))
        if "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def source_files() -> dict[str, str]:
    files = _source_files()
    assert files, f"no Python files under {PACKAGE_DIR}"
    return files


@pytest.fixture
def torch_threads_per_worker():
    """Overrides the conftest fixture of that name: these checks never import torch."""
    yield


@pytest.fixture
def torch_threads_reset():
    """Overrides the conftest fixture of that name: these checks never import torch."""


def _report(title: str, violations: list[str]) -> str:
    return f"{len(violations)} {title}:\n" + "\n".join(violations)


def test_import_direction(source_files):
    violations = [
        v for path, src in source_files.items() for v in check_import_direction(path, src)
    ]
    assert not violations, _report("imports point the wrong way (rule 1)", violations)


def test_layers_point_down(source_files):
    unranked = sorted({subpackage_of(p) for p in source_files} - set(LAYER_RANK) - {ROOT_NODE})
    assert not unranked, f"give these subpackages a layer in LAYER_RANK: {unranked}"
    violations = [v for path, src in source_files.items() for v in check_layer_ranks(path, src)]
    assert not violations, _report("imports reach a higher layer (rule 1b)", violations)


@pytest.mark.parametrize(
    ("path", "source", "flagged"),
    [
        ("sim/_x.py", "from spatialvi.tl import cluster\n", True),
        ("nn/_x.py", "from spatialvi.train import KLWarmup\n", True),
        ("_validation.py", "from spatialvi.metrics import ari\n", True),
        ("datasets/_x.py", "from spatialvi.pp import tile_image\n", False),
        ("model/_x.py", "from spatialvi.train import KLWarmup\nfrom spatialvi import nn\n", False),
        ("tl/_x.py", "from spatialvi.pl import spatial_scatter\n", False),
    ],
)
def test_self_layer_ranks(path, source, flagged):
    assert bool(check_layer_ranks(path, source)) is flagged


def test_no_cycles_between_subpackages(source_files):
    violations = check_cycles(source_files)
    assert not violations, _report("import cycles between subpackages (rule 2)", violations)


def test_anndata_keys_only_in_keys_module(source_files):
    assert KEYS_FILE in source_files, f"src/{PACKAGE}/{KEYS_FILE} is missing"
    keys = collect_keys(source_files[KEYS_FILE])
    assert {"spatial", "X_spavae"} <= keys, f"keys read from {KEYS_FILE}: {sorted(keys)}"
    violations = [v for path, src in source_files.items() for v in check_keys(path, src, keys)]
    assert not violations, _report("AnnData keys spelled out outside _keys.py (rule 3)", violations)


def test_tree_tells_the_architecture():
    missing = [
        f"src/{PACKAGE}/{d}/__init__.py"
        for d in LAYOUT_DIRS
        if not (PACKAGE_DIR / d / "__init__.py").is_file()
    ]
    missing += [f"src/{PACKAGE}/{m}" for m in LAYOUT_MODULES if not (PACKAGE_DIR / m).is_file()]
    assert not missing, _report("pieces of the layout are missing", missing)


# --------------------------------------------------------------------------------------------
# self-tests of the checkers


def _only(violations: list[str], needle: str) -> None:
    assert len(violations) == 1, violations
    assert needle in violations[0], violations


@pytest.mark.parametrize(
    ("path", "source", "needle"),
    [
        ("model/_x.py", "def f():\n    from spatialvi.tl import cluster\n", "model/_x.py:2"),
        ("model/base/_x.py", "from ...tl import cluster\n", "spatialvi.tl.cluster"),
        ("module/_x.py", "from spatialvi import pl\n", "spatialvi.pl"),
        ("train/_x.py", "import spatialvi.pp._images\n", "spatialvi.pp._images"),
        (
            "data/_x.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from spatialvi.demos import d\n",
            "data/_x.py:3",
        ),
        ("geometry/_x.py", "from ..model import SpaVAE\n", "spatialvi.model.SpaVAE"),
        ("geometry/_x.py", "from ..metrics import ari\n", "spatialvi.metrics.ari"),
        ("geometry/_x.py", "class A:\n    def f(self):\n        import anndata\n", "anndata"),
        ("nn/_x.py", "from scvi.data import AnnDataManager\n", "scvi.data"),
        ("nn/_x.py", "from scvi.data.fields import LayerField\n", "scvi.data"),
        ("nn/_x.py", "import scanpy as sc\n", "scanpy"),
        ("nn/_x.py", "from .._keys import OBSM\n", "spatialvi._keys"),
        ("nn/_x.py", "from spatialvi._validation import check_counts\n", "_validation"),
        ("nn/_x.py", "from spatialvi.data import SpatialviAnnDataManager\n", "spatialvi.data"),
        ("metrics/_x.py", "from spatialvi.module import SpaVAEModule\n", "spatialvi.module"),
        ("tl/_x.py", "from spatialvi.demos import spavae\n", "only spatialvi.cli and demos/"),
        ("pl/_x.py", "from spatialvi.cli import main\n", "nothing imports spatialvi.cli"),
        ("_validation.py", "from . import demos\n", "spatialvi.demos"),
        ("__init__.py", "from spatialvi import tl, demos\n", "spatialvi.demos"),
    ],
)
def test_self_import_direction_flags(path, source, needle):
    _only(check_import_direction(path, source), needle)


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("model/_x.py", "from spatialvi.geometry import smacof\nfrom spatialvi.module import M\n"),
        ("model/_x.py", "from ._spavae import SpaVAE\nfrom .base import Base\n"),
        ("nn/_x.py", "import torch\nfrom torch import nn\nfrom scvi import REGISTRY_KEYS\n"),
        ("nn/_x.py", "from scvi.nn import FCLayers\nfrom .._version import __version__\n"),
        ("geometry/_x.py", "import torch\nimport numpy as np\nfrom spatialvi import nn\n"),
        ("tl/_x.py", "from spatialvi.model import SpaVAE\nfrom spatialvi.geometry import fit\n"),
        ("cli.py", "def main():\n    from spatialvi.demos import spavae\n"),
        ("demos/_x.py", "from spatialvi.pl import spatial_scatter\nfrom . import _common\n"),
        ("__init__.py", "from spatialvi import tl, pl\nfrom . import model\n"),
    ],
)
def test_self_import_direction_clean(path, source):
    assert check_import_direction(path, source) == []


def test_self_relative_imports_resolve():
    tree = ast.parse("from . import a\nfrom .. import tl\nfrom .._keys import OBSM\n")
    got = [(r.name, r.target) for r in collect_imports("model/base/_x.py", tree)]
    assert got == [
        ("spatialvi.model.base.a", "model"),
        ("spatialvi.model.tl", "model"),
        ("spatialvi.model._keys.OBSM", "model"),
    ]
    tree = ast.parse(
        "from . import tl\nfrom ._keys import OBSM\nfrom spatialvi import __version__\n"
    )
    got = [(r.name, r.target) for r in collect_imports("__init__.py", tree)]
    assert got == [
        ("spatialvi.tl", "tl"),
        ("spatialvi._keys.OBSM", "_keys"),
        ("spatialvi.__version__", ROOT_NODE),
    ]
    assert subpackage_of("model/base/_x.py") == "model"
    assert subpackage_of("cli.py") == "cli"


def test_self_cycles():
    files = {
        "tl/_a.py": "from spatialvi.model import SpaVAE\n",
        "model/_b.py": "def f():\n    from spatialvi.tl import cluster\n",
        "model/_c.py": "from spatialvi._keys import OBSM\n",
        "__init__.py": "from spatialvi import model, tl\n",
    }
    violations = check_cycles(files)
    _only(violations, "cycle model -> tl -> model")
    assert "model/_b.py:2" in violations[0] and "tl/_a.py:1" in violations[0], violations

    three = {
        "a/_x.py": "from spatialvi.b import x\n",
        "b/_x.py": "from spatialvi.c import x\n",
        "c/_x.py": "from spatialvi.a import x\nfrom spatialvi.d import y\n",
        "d/_x.py": "from spatialvi._keys import K\n",
    }
    _only(check_cycles(three), "cycle a -> b -> c -> a")
    acyclic = {"tl/_a.py": "from ..model import M\n", "model/_b.py": "from .._keys import K\n"}
    assert check_cycles(acyclic) == []
    assert strongly_connected_components([("a", "b"), ("b", "a"), ("c", "d"), ("d", "c")]) == [
        ["a", "b"],
        ["c", "d"],
    ]


SELF_KEYS_SOURCE = '''"""Keys."""
from typing import NamedTuple


class _ObsmKeys(NamedTuple):
    SPATIAL: str = "spatial"
    X_SPAVAE: str = "X_spavae"


class _LayerKeys(NamedTuple):
    SPAVAE_DENOISED: str = "spavae_denoised"


OBSM = _ObsmKeys()
SCORE = "spatial_score"
NOTHING = None
'''


def test_self_collect_keys():
    assert collect_keys(SELF_KEYS_SOURCE) == {
        "spatial",
        "X_spavae",
        "spavae_denoised",
        "spatial_score",
    }


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ('adata.obsm["spatial"] = x\n', ".obsm[...]"),
        ('del self.adata.uns["svg"]\n', ".uns[...]"),
        ('y = query.obs["domain"]\n', ".obs[...]"),
        ('y = adata.layers[f"{name}_denoised"]\n', ".layers[...]"),
        ('if "spatial" in adata.obsm:\n    pass\n', "membership test"),
        ('ok = "image" not in adata.uns.keys()\n', "membership test"),
        ('def f(adata, spatial_key="spatial"):\n    pass\n', "parameter 'spatial_key'"),
        ('def f(adata, *, labels_key="domain"):\n    pass\n', "parameter 'labels_key'"),
        ('def f(adata, layer="counts", key_added=None):\n    pass\n', "parameter 'layer'"),
        ('f(use_rep="X_spavae")\n', "keyword 'use_rep'"),
        ('f(adata, key_added=f"{prefix}_svg")\n', "keyword 'key_added'"),
        ('f(adata, spatial_key="coords")\n', "keyword 'spatial_key'"),
        ('layer = "spavae_denoised"\n', "value of a key in _keys.py"),
        ('class A:\n    """Doc."""\n\n    name = "X_spavae"\n', "_x.py:4"),
    ],
)
def test_self_keys_flagged(source, needle):
    keys = collect_keys(SELF_KEYS_SOURCE)
    _only(check_keys("tl/_x.py", source, keys), needle)


@pytest.mark.parametrize(
    "source",
    [
        "adata.obsm[OBSM.SPATIAL] = x\n",
        "y = adata.obs[key]\n",
        "def f(adata, spatial_key=OBSM.SPATIAL, key_added=None):\n    pass\n",
        "f(use_rep=OBSM.X_SPAVAE, key_added=UNS.SVG)\n",
        "if OBSM.SPATIAL in adata.obsm:\n    pass\n",
        'def f(adata):\n    """Reads ``adata.obsm["spatial"]`` and writes "X_spavae"."""\n',
        '"""Module docstring mentioning spavae_denoised."""\n',
        'msg = f"missing spatial_score {x}"\n',
        'color = "spatial"\nmode = "image"\nf(method="spatial_score_v2")\n',
        'df["spatial_score_v2"] = 1\n',
        '__all__ = ["spatial_score", "cluster"]\n__all__ += ["X_spavae"]\n',
        'out = {"spatial_score": s}\ny = out["spatial_score"]\n',
    ],
)
def test_self_keys_clean(source):
    keys = collect_keys(SELF_KEYS_SOURCE)
    assert check_keys("tl/_x.py", source, keys) == []


def test_self_keys_module_exempt():
    assert check_keys(KEYS_FILE, 'adata.obsm["spatial"]\n', {"spatial"}) == []
