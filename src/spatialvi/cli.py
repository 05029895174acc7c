"""The ``spatialvi`` command line: train on files, reconstruct coordinates, inspect files, demos.

Set ``SPATIALVI_DEBUG=1`` to get the traceback of an error instead of its message.

Kept light: only the standard library (and :mod:`spatialvi._keys`) is imported until a command
runs, so ``--help`` of every command answers at once, without torch. Bad input gets the
Python API's message and exit code 1 (2 for a malformed command line, as argparse does); an
output file is written to a temporary file in the same folder and renamed when complete, so
it is never half-written. Warnings that tell a command-line user nothing (Lightning's tips,
deprecation notices, INFO lines) are silenced here, not in the library.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

from spatialvi._keys import OBS, OBSM
from spatialvi._version import __version__
from spatialvi.demos import DEMOS

#: Exit code for bad input (files, keys, values); argparse exits with 2 for a bad command line.
EXIT_BAD_INPUT = 1

#: Setup options of ``spatialvi fit``: option name -> (``setup_anndata`` argument, help).
SETUP_OPTIONS: dict[str, tuple[str, str]] = {
    "--layer": ("layer", "layer holding the counts (default: X)"),
    "--spatial-key": ("spatial_key", f"obsm key of the coordinates (default: {OBSM.SPATIAL})"),
    "--batch-key": ("batch_key", "obs column naming the section of each spot"),
    "--size-factor-key": ("size_factor_key", "obs column of size factors"),
    "--image-key": ("image_key", f"obsm key of the images (default: {OBSM.IMAGE})"),
    "--points-key": ("points_key", f"obsm key of the point sets (default: {OBSM.POINTS})"),
    "--features-key": ("features_key", f"obsm key of the features (default: {OBSM.X_DINO})"),
    "--factor-keys": ("factor_keys", "comma-separated obs columns of known factors"),
    "--pair-key": ("pair_key", f"obs column pairing the observations (default: {OBS.PAIR_ID})"),
}

#: Model name -> (class in ``spatialvi.model``, the setup options it takes).
MODELS: dict[str, tuple[str, tuple[str, ...]]] = {
    "spavae": ("SpaVAE", ("--layer", "--spatial-key", "--batch-key", "--size-factor-key")),
    "spaldvae": ("SpaLDVAE", ("--layer", "--spatial-key", "--batch-key", "--size-factor-key")),
    "dpvae": ("DPVAE", ("--layer", "--spatial-key")),
    "sivae": ("SIVAE", ("--image-key", "--points-key")),
    "adagvae": ("AdaGVAE", ("--features-key", "--factor-keys", "--pair-key")),
}


class InputError(Exception):
    """Bad input found by the command line itself (exit code 1, message shown as is)."""


# -- parser -----------------------------------------------------------------------------------
def _available_demos() -> list[str]:
    """Demos whose module exists in this installation."""
    found = []
    for name, target in DEMOS.items():
        module = target.split(":")[0]
        if importlib.util.find_spec(module) is not None:
            found.append(name)
    return found


def _common_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for torch (default: torch's choice)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the output file if it exists"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spatialvi",
        description="Spatially informed and interpretable VAEs for spatial omics and microscopy.",
    )
    parser.add_argument("--version", action="version", version=f"spatialvi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    fit = sub.add_parser(
        "fit",
        help="train a model on an .h5ad file and write its outputs",
        description=(
            "Train MODEL on IN.h5ad and write IN with the model's outputs (latent in "
            "obsm['X_<model>'], denoised values in layers['<model>_denoised'] where the model "
            "decodes them, run parameters in uns['<model>']) to OUT.h5ad."
        ),
    )
    fit.add_argument("model", choices=sorted(MODELS), metavar="MODEL", help=", ".join(MODELS))
    fit.add_argument("input", type=Path, metavar="IN.h5ad", help="input AnnData file")
    fit.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.h5ad")
    setup = fit.add_argument_group("setup keys (each model takes some of them)")
    for option, (dest, text) in SETUP_OPTIONS.items():
        takers = [m for m, (_, opts) in MODELS.items() if option in opts]
        setup.add_argument(option, dest=dest, default=None, help=f"{text}; {', '.join(takers)}")
    fit.add_argument("--max-epochs", type=int, default=None, help="default: the model's")
    fit.add_argument("--batch-size", type=int, default=None, help="default: the model's")
    fit.add_argument(
        "--random-state", "--seed", dest="random_state", type=int, default=0, help="default: 0"
    )
    fit.add_argument(
        "--accelerator", default="auto", help="Lightning accelerator: auto (default), cpu, gpu"
    )
    fit.add_argument("--key-added", default=None, help="obsm key of the latent")
    fit.add_argument(
        "--save-model",
        type=Path,
        default=None,
        metavar="DIR",
        help="also save the trained model (with its training AnnData) to DIR",
    )
    _common_run_options(fit)

    rec = sub.add_parser(
        "reconstruct",
        help="place the cells of a query in space with a saved DPVAE",
        description=(
            "Encode QUERY.h5ad with the DPVAE saved in DIR (by `spatialvi fit dpvae ... "
            "--save-model DIR`) and reconstruct coordinates by SMACOF on its latent distances."
        ),
    )
    rec.add_argument("query", type=Path, metavar="QUERY.h5ad", help="expression to place")
    rec.add_argument("--model", type=Path, required=True, metavar="DIR", help="saved DPVAE")
    rec.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.h5ad")
    rec.add_argument(
        "--anchors-key",
        default=None,
        help="boolean obs column marking cells with known coordinates (hard anchors)",
    )
    rec.add_argument(
        "--spatial-key",
        default=OBSM.SPATIAL,
        help=f"obsm key of the anchors' coordinates (default: {OBSM.SPATIAL})",
    )
    rec.add_argument(
        "--key-added",
        default=OBSM.SPATIAL,
        help=f"obsm key receiving the coordinates (default: {OBSM.SPATIAL})",
    )
    _common_run_options(rec)

    info = sub.add_parser(
        "info",
        help="what an .h5ad file holds and which models it can feed",
        description="Describe FILE: counts, coordinates, layers, obsm keys, and for every "
        "model whether the file can feed it (and why not).",
    )
    info.add_argument("file", type=Path, metavar="FILE", help=".h5ad file")

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


# -- shared helpers ---------------------------------------------------------------------------
@contextlib.contextmanager
def quiet():
    """Silence warnings, scvi-tools' INFO lines and Lightning's banners for one command.

    Progress bars stay (one per training); errors still surface as exceptions.
    """
    import logging
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import scvi

        names = ("lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric", "scvi")
        loggers = [logging.getLogger(name) for name in names]
        levels = [logger.level for logger in loggers]
        verbosity = scvi.settings.verbosity
        scvi.settings.verbosity = logging.WARNING
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            scvi.settings.verbosity = verbosity
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def format_value(value) -> str:
    """A figure for people: floats to 3 significant digits, sequences element-wise."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.0f}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _check_output(path: Path, overwrite: bool) -> Path:
    path = Path(path)
    if path.suffix != ".h5ad":
        raise InputError(f"output {path} must end in .h5ad")
    if not path.parent.resolve().is_dir():
        raise InputError(f"output folder {path.parent} does not exist; create it first")
    if path.exists() and not overwrite:
        raise InputError(f"output {path} exists; pass --overwrite to replace it")
    return path


def write_atomically(adata, path: Path) -> None:
    """Write ``adata`` to ``path`` through a temporary file in the same folder (then rename)."""
    path = Path(path)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".h5ad.tmp", dir=path.parent)
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual mode
    try:
        adata.write_h5ad(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _set_threads(threads: int | None) -> None:
    if threads is None:
        return
    from spatialvi._validation import check_int

    check_int("--threads", threads)
    import torch

    torch.set_num_threads(threads)


def _read(path: Path):
    from spatialvi._validation import check_anndata
    from spatialvi.datasets import read_h5ad

    # Image models read obsm only (n_vars may be 0); each model's setup checks the rest.
    return check_anndata(read_h5ad(path), name=str(path), min_vars=0)


# -- fit ----------------------------------------------------------------------------------------
def _setup_kwargs(args) -> dict:
    _, accepted = MODELS[args.model]
    kwargs = {}
    for option, (dest, _) in SETUP_OPTIONS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if option not in accepted:
            raise InputError(
                f"{option} does not apply to {args.model} (its setup takes {', '.join(accepted)})"
            )
        kwargs[dest] = value.split(",") if dest == "factor_keys" else value
    return kwargs


def fit(args) -> int:
    """``spatialvi fit``: the Python API's setup, constructor, train and write_outputs."""
    import inspect

    output = _check_output(args.output, args.overwrite)
    setup = _setup_kwargs(args)
    if args.save_model is not None and args.save_model.exists() and not args.overwrite:
        raise InputError(f"--save-model {args.save_model} exists; pass --overwrite to replace it")
    with quiet():
        import scvi

        from spatialvi import model as models

        _set_threads(args.threads)
        adata = _read(args.input)
        cls = getattr(models, MODELS[args.model][0])
        scvi.settings.seed = args.random_state
        cls.setup_anndata(adata, **setup)
        init = {}
        if "random_state" in inspect.signature(cls.__init__).parameters:
            init["random_state"] = args.random_state
        model = cls(adata, **init)
        train = {"accelerator": args.accelerator}
        if args.max_epochs is not None:
            train["max_epochs"] = args.max_epochs
        if args.batch_size is not None:
            train["batch_size"] = args.batch_size
        start = time.perf_counter()
        model.train(**train)
        seconds = time.perf_counter() - start
        model.write_outputs(adata, key_added=args.key_added)
        write_atomically(adata, output)
        if args.save_model is not None:
            model.save(args.save_model, overwrite=args.overwrite, save_anndata=True)
    keys = model.output_keys(args.key_added)
    written = [f"obsm[{keys.latent!r}] ({adata.obsm[keys.latent].shape[1]} dims)"]
    if keys.denoised in adata.layers:
        written.append(f"layers[{keys.denoised!r}]")
    written.append(f"uns[{keys.uns!r}]")
    print(
        f"{cls.__name__}: {adata.n_obs} observations × {adata.n_vars} variables, "
        f"{model.n_epochs_trained} epochs in {format_value(seconds)} s"
    )
    print(f"wrote {', '.join(written)} -> {output}")
    if args.save_model is not None:
        print(f"saved the model -> {args.save_model}")
    return 0


# -- reconstruct ----------------------------------------------------------------------------------
def reconstruct(args) -> int:
    """``spatialvi reconstruct``: DPVAE latent of a query + SMACOF (optionally anchored)."""
    output = _check_output(args.output, args.overwrite)
    model_file = args.model / "model.pt"
    if not model_file.is_file():
        raise InputError(
            f"--model {args.model} holds no saved model ({model_file} missing); save one with "
            "`spatialvi fit dpvae IN.h5ad -o OUT.h5ad --save-model DIR`"
        )
    with quiet():
        import numpy as np

        from spatialvi.model import DPVAE
        from spatialvi.tl import reconstruct_spatial

        _set_threads(args.threads)
        query = _read(args.query)
        try:
            model = DPVAE.load(str(args.model))
        except ValueError as err:
            raise InputError(f"--model {args.model} is not a saved DPVAE ({err})") from err
        anchors = None
        if args.anchors_key is not None:
            from spatialvi._validation import check_obs_column

            check_obs_column(query, args.anchors_key, "--anchors-key")
            anchors = query.obs[args.anchors_key].to_numpy()
            if anchors.dtype != bool:
                raise InputError(
                    f"--anchors-key: obs[{args.anchors_key!r}] must be boolean (True for cells "
                    f"with known coordinates), got dtype {anchors.dtype}"
                )
        if args.key_added in query.obsm and not args.overwrite:
            raise InputError(
                f"obsm[{args.key_added!r}] exists in {args.query}; pass --key-added NAME to keep "
                "it, or --overwrite to replace it"
            )
        reconstruct_spatial(
            query,
            model,
            anchors=anchors,
            spatial_key=args.spatial_key,
            key_added=args.key_added,
            overwrite=True,
        )
        write_atomically(query, output)
    n_anchors = 0 if anchors is None else int(np.sum(anchors))
    print(
        f"placed {query.n_obs} cells ({n_anchors} anchors) in obsm[{args.key_added!r}] -> {output}"
    )
    return 0


# -- info -----------------------------------------------------------------------------------------
def _counts_in(adata) -> list[str]:
    """Where raw counts are: ``'X'`` and layer names."""
    from spatialvi._validation import check_counts

    found = []
    for layer in [None, *adata.layers]:
        with contextlib.suppress(KeyError, ValueError):
            check_counts(adata, layer)
            found.append("X" if layer is None else f"layers[{layer!r}]")
    return found


def _first_error(check, *args, **kwargs) -> str | None:
    try:
        check(*args, **kwargs)
    except (KeyError, ValueError, TypeError) as err:
        return str(err.args[0]) if err.args else str(err)
    return None


def _feature_keys(adata) -> list[str]:
    """obsm keys holding an n × F numeric matrix (coordinates excluded)."""
    import numpy as np

    return [
        k
        for k, v in adata.obsm.items()
        if k != OBSM.SPATIAL and np.ndim(v) == 2 and np.issubdtype(np.asarray(v).dtype, np.number)
    ]


def feeds(adata, counts: list[str], feature_keys: list[str]) -> dict[str, str | None]:
    """For each model, ``None`` if ``adata`` (with default keys) can feed it, else the reason.

    ``counts`` and ``feature_keys`` are :func:`_counts_in` and :func:`_feature_keys` of
    ``adata`` (computed once by the caller, which prints them too).
    """
    from spatialvi._validation import check_coordinates, check_images, check_points

    coords = _first_error(check_coordinates, adata, OBSM.SPATIAL)
    distinct = coords or _first_error(
        check_coordinates, adata, OBSM.SPATIAL, allow_duplicates=False
    )
    no_counts = "no raw counts in X or any layer (normalised or log values cannot feed an NB model)"
    spavae = no_counts if not counts else distinct
    expression = (adata.n_vars > 0 and adata.X is not None) or len(adata.layers) > 0
    dpvae = coords if expression else "no expression matrix"
    sivae = _first_error(check_images, adata, OBSM.IMAGE) or _first_error(
        check_points, adata, OBSM.POINTS
    )
    adagvae = None if feature_keys else "no n × F feature matrix in obsm (pp.extract_features)"
    return {
        "spavae": spavae,
        "spaldvae": spavae,
        "dpvae": dpvae,
        "sivae": sivae,
        "adagvae": adagvae,
    }


def info(args) -> int:
    """``spatialvi info``: what a file holds and which models it can feed."""
    import numpy as np

    with quiet():
        adata = _read(args.file)
        counts, feature_keys = _counts_in(adata), _feature_keys(adata)
        verdict = feeds(adata, counts, feature_keys)
    x = adata.X
    kind = "none" if x is None else type(x).__name__
    print(f"{args.file}: {adata.n_obs} observations × {adata.n_vars} variables")
    print(f"  X: {kind}, {'raw counts' if 'X' in counts else 'not raw counts'}")
    for layer in adata.layers:
        tag = "raw counts" if f"layers[{layer!r}]" in counts else "not raw counts"
        print(f"  layers[{layer!r}]: {tag}")
    for key, value in adata.obsm.items():
        shape = " × ".join(str(s) for s in np.shape(value))
        print(f"  obsm[{key!r}]: {shape}")
    if len(adata.obs.columns):
        print(f"  obs columns: {', '.join(map(str, adata.obs.columns))}")
    if OBSM.SPATIAL in adata.obsm:
        print(f"  coordinates: obsm[{OBSM.SPATIAL!r}]")
    print("models:")
    for name, reason in verdict.items():
        if reason is None:
            hint = ""
            if name in ("spavae", "spaldvae") and "X" not in counts and counts:
                hint = f" (counts in {counts[0]}: pass --layer)"
            if name == "adagvae":
                hint = f" (features: --features-key one of {', '.join(feature_keys)})"
            print(f"  {name}: yes{hint}")
        else:
            print(f"  {name}: no, {reason}")
    return 0


# -- demo -----------------------------------------------------------------------------------------
def demo(args, parser) -> int:
    names = _available_demos() if args.model is None else [args.model.lower()]
    for name in names:
        if name not in DEMOS:
            parser.error(f"unknown demo {name!r}; choose one of: {', '.join(DEMOS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        module, function = DEMOS[name].split(":")
        start = time.perf_counter()
        print(f"[spatialvi] demo {name} -> {args.out}", flush=True)
        with quiet():
            result = getattr(importlib.import_module(module), function)(
                args.out, quick=args.quick, random_state=args.random_state
            )
        for key, value in result.items():
            print(f"  {key}: {format_value(value)}")
        print(f"[spatialvi] demo {name} done in {time.perf_counter() - start:.0f} s", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "demo":
        return demo(args, parser)
    command = {"fit": fit, "reconstruct": reconstruct, "info": info}[args.command]
    try:
        return command(args)
    except (InputError, KeyError, ValueError, TypeError, FileNotFoundError) as err:
        if os.environ.get("SPATIALVI_DEBUG"):
            raise
        message = str(err.args[0]) if err.args else str(err)
        print(f"spatialvi {args.command}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
