"""AdaGVAE: disentanglement on sprites, transfer to BCCD blood cells, feature throughput.

Parts (``--parts``, default all):

- ``sprites``: Ada-GVAE against the β-VAE of the same architecture and budget on raw-pixel
  Texture-dSprites features (32 px, colour and texture fixed, k = 1) for each ``--seeds``; MIG,
  DCI (disentanglement, completeness, informativeness), SAP, FactorVAE score and OMES on
  ``--n-eval`` held-out pairs (the reference sizes are 10,000 / 5,000 samples; DCI with 50
  trees).
- ``bccd``: cell-type classification on BCCD crops (``../shared/data/bccd``; 3 classes) with
  balanced accuracy of gradient-boosted trees on an 80/20 split grouped by source image, from
  (a) the 10-d Ada-GVAE latent trained on sprites (colours and textures varying), transferred
  and fine-tuned on BCCD, (b) PCA-10 of the same features, (c) a β-VAE trained on BCCD alone,
  (d) the box size alone (width, height). Features: ``--features raw`` (32-px crops, flattened)
  or ``handcrafted``.
- ``throughput``: images per second of :func:`spatialvi.pp.extract_features` with ViT-S/16 and
  ViT-B/16 (random weights; the speed does not depend on them) on this machine's device.

Usage: ``python benchmarks/adagvae_transfer.py [--parts sprites bccd throughput]
[--seeds 0 1 2] [--n-pairs 2000] [--epochs 30] [--features raw]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import QUIET, quiet_logging

SIZE = 32
HIDDEN = (256, 256)


def sprites(n_pairs, seed, factors):
    from spatialvi.pp import extract_features
    from spatialvi.sim import texture_dsprites

    adata = texture_dsprites(n_pairs, k=1, image_size=SIZE, factors=factors, random_state=seed)
    extract_features(adata, backbone="raw", progress_bar=False)
    return adata


def fit(adata, aggregation, epochs, seed, **setup):
    import scvi

    from spatialvi.model import AdaGVAE

    scvi.settings.seed = seed
    AdaGVAE.setup_anndata(adata, **setup)
    model = AdaGVAE(adata, aggregation=aggregation, hidden=HIDDEN)
    model.train(max_epochs=epochs, batch_size=64, **QUIET)
    return model


def part_sprites(args) -> None:
    from spatialvi import metrics
    from spatialvi._keys import OBS, OBSM, UNS

    fixed = {"colour": 0, "texture": 0}
    print(
        f"sprites: {args.n_pairs} training pairs, {args.n_eval} held-out pairs, {SIZE} px, "
        f"{args.epochs} epochs, hidden {HIDDEN}"
    )
    print(
        f"{'seed':>4} {'model':<8}{'MIG':>6}{'DCI-D':>7}{'DCI-C':>7}{'DCI-I':>7}{'SAP':>6}"
        f"{'FVAE':>6}{'OMES':>6}{'s':>6}"
    )
    for seed in args.seeds:
        train = sprites(args.n_pairs, seed, fixed)
        test = sprites(args.n_eval, seed + 1000, fixed)
        names = train.uns[UNS.TEXTURE_DSPRITES]["factors"]
        codes = test.obs[names].to_numpy()
        for label, aggregation in (("Ada-GVAE", "gvae"), ("β-VAE", None)):
            t0 = time.perf_counter()
            model = fit(train, aggregation, args.epochs, seed, features_key=OBSM.X_RAW)
            z = model.get_latent_representation(test)
            d = metrics.dci(z, codes, random_state=seed)
            row = (
                metrics.mig(z, codes),
                d["disentanglement"],
                d["completeness"],
                d["informativeness"],
                metrics.sap(z, codes),
                metrics.factorvae_score(z, codes, random_state=seed),
                metrics.omes(z, codes, test.obs[OBS.PAIR_ID].to_numpy()),
            )
            print(
                f"{seed:>4} {label:<8}"
                + "".join(f"{v:>6.3f} " for v in row)
                + f"{time.perf_counter() - t0:>5.0f}",
                flush=True,
            )


def part_bccd(args) -> None:
    from sklearn.decomposition import PCA

    from spatialvi._keys import OBS, OBSM
    from spatialvi.datasets import bccd
    from spatialvi.metrics import downstream_accuracy
    from spatialvi.pp import extract_features

    cells = bccd(crop=SIZE)
    labels, groups = cells.obs[OBS.CELL_TYPE].to_numpy(), cells.obs[OBS.SOURCE].to_numpy()
    backbone = args.features
    key = OBSM.X_RAW if backbone == "raw" else OBSM.X_HANDCRAFTED
    extract_features(cells, backbone=backbone, progress_bar=False)
    source = sprites(args.n_pairs, 0, None)  # every colour and texture
    if backbone != "raw":
        extract_features(source, backbone=backbone, progress_bar=False)
    print(
        f"bccd: {cells.n_obs} crops ({SIZE} px), {backbone} features "
        f"({cells.obsm[key].shape[1]}); sprites source {source.n_obs} images; balanced "
        "accuracy (HistGradientBoosting, 80/20 split grouped by source image)"
    )

    def score(name, z):
        accs = [
            downstream_accuracy(z, labels, groups=groups, test_fraction=0.2, random_state=s)
            for s in args.seeds
        ]
        print(f"  {name:<50}{np.mean(accs):.3f} ± {np.std(accs):.3f}", flush=True)

    score("box size (width, height)", cells.obs[[OBS.BOX_WIDTH, OBS.BOX_HEIGHT]].to_numpy(float))
    score("PCA-10 of the features", PCA(10, random_state=0).fit_transform(cells.obsm[key]))
    scratch = fit(cells, None, args.epochs, 0, features_key=key, pair_key=None)
    score("β-VAE trained on BCCD alone", scratch.get_latent_representation())
    ada = fit(source, "gvae", args.epochs, 0, features_key=key)
    transferred = ada.transfer(cells)
    score("Ada-GVAE from sprites, transferred (no tuning)", transferred.get_latent_representation())
    transferred.train(max_epochs=args.epochs, batch_size=64, **QUIET)
    score("Ada-GVAE from sprites, fine-tuned", transferred.get_latent_representation())


def part_throughput(args) -> None:
    import anndata as ad
    import torch

    from spatialvi.pp import extract_features

    device = "cuda" if torch.cuda.is_available() else "cpu"
    images = np.random.default_rng(0).random((args.n_images, 3, 64, 64), dtype=np.float32)
    print(
        f"throughput: {args.n_images} images of 64 px resized to 224, device {device}, "
        f"{torch.get_num_threads()} threads"
    )
    for backbone in ("dino_vits16", "dino_vitb16"):
        adata = ad.AnnData(X=np.zeros((args.n_images, 0), np.float32), obsm={"image": images})
        t0 = time.perf_counter()
        extract_features(
            adata,
            backbone=backbone,
            random_weights=True,
            batch_size=32,
            progress_bar=False,
            device=device,
        )
        seconds = time.perf_counter() - t0
        print(f"  {backbone}: {args.n_images / seconds:.1f} images/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["sprites", "bccd", "throughput"],
        choices=["sprites", "bccd", "throughput"],
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n-pairs", type=int, default=2000)
    parser.add_argument("--n-eval", type=int, default=2500)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--features", choices=["raw", "handcrafted"], default="raw")
    parser.add_argument("--n-images", type=int, default=64)
    args = parser.parse_args()
    quiet_logging()
    import warnings

    warnings.filterwarnings("ignore")
    for part in args.parts:
        {"sprites": part_sprites, "bccd": part_bccd, "throughput": part_throughput}[part](args)


if __name__ == "__main__":
    main()
