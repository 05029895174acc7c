"""The ``spatialvi`` command line.

Kept light: only the standard library is imported until a command runs, so ``--help``
answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import time
from pathlib import Path

from spatialvi._version import __version__
from spatialvi.demos import DEMOS


def _available_demos() -> list[str]:
    """Demos whose module exists in this installation."""
    found = []
    for name, target in DEMOS.items():
        module = target.split(":")[0]
        if importlib.util.find_spec(module) is not None:
            found.append(name)
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spatialvi",
        description="Spatially informed and interpretable VAEs for spatial omics and microscopy.",
    )
    parser.add_argument("--version", action="version", version=f"spatialvi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="run a short demonstration on data the package generates itself",
        description="Run a demonstration on the embedded synthetic data and write results to OUT.",
    )
    demo.add_argument(
        "model",
        nargs="?",
        default=None,
        help=f"what to demonstrate: one of {', '.join(DEMOS)} (default: every available demo)",
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("spatialvi_demo"),
        help="output folder (default: spatialvi_demo)",
    )
    demo.add_argument(
        "--random-state",
        "--seed",
        dest="random_state",
        type=int,
        default=0,
        help="random seed (default: 0)",
    )
    demo.add_argument(
        "--quick", action="store_true", help="tiny data and few epochs (for smoke tests)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "demo":
        names = _available_demos() if args.model is None else [args.model.lower()]
        for name in names:
            if name not in DEMOS:
                parser.error(f"unknown demo {name!r}; choose one of: {', '.join(DEMOS)}")
        args.out.mkdir(parents=True, exist_ok=True)
        for name in names:
            module, function = DEMOS[name].split(":")
            start = time.perf_counter()
            print(f"[spatialvi] demo {name} -> {args.out}", flush=True)
            result = getattr(importlib.import_module(module), function)(
                args.out, quick=args.quick, random_state=args.random_state
            )
            for key, value in result.items():
                print(f"  {key}: {value}")
            print(
                f"[spatialvi] demo {name} done in {time.perf_counter() - start:.1f} s", flush=True
            )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
