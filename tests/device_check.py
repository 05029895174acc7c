"""Device check: one short training per model on whatever ``accelerator="auto"`` picks.

Run by ``tests/device_check.sh`` (not collected by pytest: the name does not start with
``test_``). On a GPU machine the models train and infer on CUDA, which exercises every place
where the library moves inputs to the model's device and results back to the CPU; on a CPU
machine the same checks run on the CPU. Each check compares numbers, not only shapes:

- SpaVAE (one section and two sections), SpaLDVAE: the latent of a reordered copy is the
  reordered latent; save/load gives the same latent, denoised layer and ``predict_at``;
  ``predict_at`` at the training spots reproduces the latent; ``enhance_resolution`` runs;
  SpaLDVAE's spatial scores are finite.
- DPVAE (``all`` and ``knn`` masks): a query without coordinates gets the training latent;
  ``tl.reconstruct_spatial`` places it; save/load gives the same latent.
- The in-memory loader: sparse counts gathered on the device equal SciPy's rows, and their
  non-zero positions are the counts' non-zeros.
- SIVAE: images alone give the training latent; save/load gives the same latent and
  potentials; ``tl.simulate_points`` runs.

Usage: ``python tests/device_check.py [--require-cuda]``; exits non-zero when a check fails.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

QUIET = {"enable_progress_bar": False, "enable_model_summary": False, "logger": False}


def _train(model, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.train(accelerator="auto", **QUIET, **kwargs)
    return model


def _close(a, b, atol, what):
    err = float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())
    if not err <= atol:
        raise AssertionError(f"{what}: max difference {err:.3g} > {atol:g}")


def check_spavae(tmp: Path) -> str:
    import scvi

    from spatialvi._keys import OBS, OBSM
    from spatialvi.model import SpaLDVAE, SpaVAE
    from spatialvi.sim import synthetic_tissue

    scvi.settings.seed = 0
    adata = synthetic_tissue(n_spots=200, n_genes=40, n_domains=3, random_state=0)
    SpaVAE.setup_anndata(adata)
    model = _train(SpaVAE(adata, n_inducing=16), max_epochs=5, beta=1.0)
    z = model.get_latent_representation()
    assert z.shape == (200, 10) and np.isfinite(z).all()
    perm = np.random.default_rng(0).permutation(adata.n_obs)
    _close(model.get_latent_representation(adata[perm].copy()), z[perm], 1e-4, "reordered latent")
    den = model.get_denoised_expression()
    assert np.isfinite(den).all() and (den >= 0).all()
    at_spots = model.predict_at(adata.obsm[OBSM.SPATIAL])
    _close(at_spots.obsm[OBSM.X_SPAVAE], z, 1e-4, "predict_at at the training spots")
    query = adata.obsm[OBSM.SPATIAL][:20] + 10.0
    pred = model.predict_at(query)
    enhanced = model.enhance_resolution(2)
    assert enhanced.n_obs == 5 * adata.n_obs and np.isfinite(enhanced.X).all()
    model.save(tmp / "spavae", overwrite=True)
    loaded = SpaVAE.load(tmp / "spavae", adata=adata.copy(), accelerator="auto")
    _close(loaded.get_latent_representation(), z, 1e-5, "SpaVAE latent after save/load")
    _close(loaded.get_denoised_expression(), den, 1e-3, "denoised layer after save/load")
    _close(loaded.predict_at(query).X, pred.X, 1e-3, "predict_at after save/load")
    device = str(model.device)

    two = synthetic_tissue(n_spots=80, n_genes=20, n_domains=3, n_sections=2, random_state=3)
    SpaVAE.setup_anndata(two, batch_key=OBS.SECTION)
    multi = _train(SpaVAE(two, n_inducing=9), max_epochs=3, beta=1.0)
    z2 = multi.get_latent_representation()
    for k in range(2):
        _close(z2[multi._section_codes() == k, :2].mean(0), 0.0, 1e-4, f"section {k} centring")
    first = multi.predict_at(two.obsm[OBSM.SPATIAL][:5], batch="section_0")
    _close(first.obsm[OBSM.X_SPAVAE], z2[:5], 1e-4, "multi-section predict_at")

    ld = synthetic_tissue(n_spots=150, n_genes=30, random_state=1)
    SpaLDVAE.setup_anndata(ld)
    spald = _train(SpaLDVAE(ld, n_inducing=9), max_epochs=3, beta=1.0)
    scores = spald.spatial_scores()
    assert np.isfinite(scores).all() and len(scores) == 30
    assert np.isfinite(spald.get_loadings().to_numpy()).all()
    return f"SpaVAE/SpaLDVAE on {device}"


def check_dpvae(tmp: Path) -> str:
    import scvi

    from spatialvi.metrics import procrustes_disparity
    from spatialvi.model import DPVAE
    from spatialvi.sim import synthetic_tissue
    from spatialvi.tl import reconstruct_spatial

    adata = synthetic_tissue(n_spots=200, n_genes=40, n_domains=3, random_state=0)
    DPVAE.setup_anndata(adata)
    devices = []
    for mask in ("all", "knn", "cluster"):
        scvi.settings.seed = 0
        extra = {"cluster_key": "domain"} if mask == "cluster" else {}
        model = DPVAE(adata, n_latent=4, n_hidden=32, dp_weight=10.0, mask=mask, **extra)
        _train(model, max_epochs=5, batch_size=64)
        z = model.get_latent_representation()
        assert np.isfinite(z).all()
        devices.append(str(model.device))
    query = adata[:50].copy()
    truth = query.obsm["spatial"].copy()
    del query.obsm["spatial"]
    _close(model.get_latent_representation(query), z[:50], 1e-5, "DPVAE query latent")
    reconstruct_spatial(query, model)
    disparity = procrustes_disparity(truth, query.obsm["spatial"])
    assert np.isfinite(disparity)
    den = model.get_denoised_expression()
    assert np.isfinite(den).all() and (den >= 0).all()
    model.save(tmp / "dpvae", overwrite=True)
    loaded = DPVAE.load(tmp / "dpvae", adata=adata.copy(), accelerator="auto")
    _close(loaded.get_latent_representation(), z, 1e-5, "DPVAE latent after save/load")
    return f"DPVAE on {', '.join(devices)}; held-out disparity {disparity:.3f}"


def check_sivae(tmp: Path) -> str:
    import scvi

    from spatialvi import sim, tl
    from spatialvi._keys import OBS, OBSM
    from spatialvi.model import SIVAE

    scvi.settings.seed = 0
    adata = sim.point_pattern_dataset(4, image_size=32, random_state=0)
    SIVAE.setup_anndata(adata)
    model = SIVAE(adata, n_latent=4, n_grid=8, channels=(8, 8), n_hidden=32, head_hidden=8)
    _train(model, max_epochs=2, batch_size=16)
    z = model.get_latent_representation()
    assert np.isfinite(z).all()
    images_only = adata.copy()
    del images_only.obsm[OBSM.POINTS]
    del images_only.obs[OBS.N_POINTS]
    _close(model.get_latent_representation(images_only), z, 1e-5, "SIVAE latent from images")
    radii = np.array([0.0, 0.05, 0.1])
    pots = model.get_potentials(radii=radii)
    model.save(tmp / "sivae", overwrite=True)
    loaded = SIVAE.load(tmp / "sivae", adata=adata.copy(), accelerator="auto")
    _close(loaded.get_latent_representation(), z, 1e-5, "SIVAE latent after save/load")
    _close(loaded.get_potentials(radii=radii)["psi"], pots["psi"], 1e-5, "psi after save/load")
    small = adata[:4].copy()
    tl.simulate_points(model, small, n_steps=200, random_state=0, progress_bar=False)
    return f"SIVAE on {model.device}"


def check_loader(tmp: Path) -> str:
    """The in-memory loader on the training device: sparse rows gathered there match SciPy."""
    import scipy.sparse as sp
    import torch

    from spatialvi._keys import REGISTRY_KEYS
    from spatialvi.data import TensorStore
    from spatialvi.model import SpaVAE
    from spatialvi.sim import synthetic_tissue

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    adata = synthetic_tissue(n_spots=300, n_genes=40, random_state=0)
    adata.X = sp.csr_matrix(adata.X)
    SpaVAE.setup_anndata(adata)
    manager = SpaVAE(adata).adata_manager
    indices = np.random.default_rng(0).permutation(adata.n_obs)[:200]
    store = TensorStore(manager, indices, device)
    positions = torch.as_tensor([5, 0, 199, 5, 17], device=device)
    batch = store.gather(positions)
    expected = adata.X[indices[positions.cpu().numpy()]].toarray()
    x = batch[REGISTRY_KEYS.X_KEY]
    _close(x.cpu().numpy(), expected, 0.0, "gathered counts")
    nz = batch[REGISTRY_KEYS.X_NONZERO_KEY].cpu().numpy()
    if not np.array_equal(nz, np.flatnonzero(expected)):
        raise AssertionError("non-zero positions differ from the gathered counts'")
    return f"device {x.device}, {len(nz)} non-zeros"


CHECKS = {
    "loader": check_loader,
    "spavae": check_spavae,
    "dpvae": check_dpvae,
    "sivae": check_sivae,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--require-cuda", action="store_true", help="fail unless torch sees a CUDA device"
    )
    parser.add_argument("checks", nargs="*", default=list(CHECKS), help="subset of the checks")
    args = parser.parse_args(argv)

    import scvi
    import torch

    # After the imports: lightning sets its loggers' levels when it is imported.
    scvi.settings.verbosity = logging.WARNING
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)

    cuda = torch.cuda.is_available()
    name = torch.cuda.get_device_name(0) if cuda else "none"
    print(f"torch {torch.__version__}; CUDA available: {cuda} ({name})", flush=True)
    if args.require_cuda and not cuda:
        print("FAIL: --require-cuda given but torch sees no CUDA device", flush=True)
        return 1
    failed = []
    start_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.checks:
            start = time.perf_counter()
            try:
                info = CHECKS[key](Path(tmp))
            except Exception:
                failed.append(key)
                print(f"FAIL {key} ({time.perf_counter() - start:.1f} s)", flush=True)
                traceback.print_exc()
                continue
            print(f"ok   {key} ({time.perf_counter() - start:.1f} s): {info}", flush=True)
            if cuda and "cuda" not in info:
                failed.append(key)
                print(f"FAIL {key}: CUDA is available but the model did not use it", flush=True)
    total = time.perf_counter() - start_all
    print(f"{len(args.checks) - len(failed)}/{len(args.checks)} checks passed in {total:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
