"""The command line on files: fit, reconstruct, info; bad input gets a message and exit code 1."""

from __future__ import annotations

import numpy as np
import pytest
import scvi

from spatialvi._keys import LAYERS, OBS, OBSM, UNS
from spatialvi.cli import EXIT_BAD_INPUT, main
from spatialvi.sim import synthetic_tissue


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    adata = synthetic_tissue(n_spots=240, n_genes=40, n_domains=3, random_state=3)
    adata.write_h5ad(folder / "tissue.h5ad")
    query = adata[:80].copy()
    query.obs["anchor"] = np.arange(query.n_obs) < 10
    query.obsm["known"] = query.obsm[OBSM.SPATIAL]
    del query.obsm[OBSM.SPATIAL]
    query.write_h5ad(folder / "query.h5ad")
    logged = adata.copy()
    logged.X = np.log1p(logged.X.toarray())
    logged.write_h5ad(folder / "logged.h5ad")
    (folder / "table.csv").write_text("a,b\n1,2\n")
    return folder


def _error(capsys) -> str:
    return capsys.readouterr().err


def test_fit_spavae_writes_the_python_api_latent(files, tmp_path, capsys):
    """Same random_state and one thread: the file's latent equals the API's (|Δ| ≤ 1e-6)."""
    import anndata as ad
    import torch

    from spatialvi.model import SpaVAE

    out = tmp_path / "out.h5ad"
    args = ["fit", "spavae", str(files / "tissue.h5ad"), "-o", str(out), "--max-epochs", "4"]
    assert main([*args, "--random-state", "7", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "SpaVAE: 240 observations × 40 variables, 4 epochs" in printed
    written = ad.read_h5ad(out)

    torch.set_num_threads(1)
    adata = ad.read_h5ad(files / "tissue.h5ad")
    scvi.settings.seed = 7
    SpaVAE.setup_anndata(adata)
    model = SpaVAE(adata, random_state=7)
    model.train(max_epochs=4, enable_progress_bar=False)
    latent = model.get_latent_representation()
    np.testing.assert_allclose(written.obsm[OBSM.X_SPAVAE], latent, atol=1e-6)
    assert written.layers[LAYERS.SPAVAE_DENOISED].shape == written.shape
    assert written.uns[UNS.SPAVAE]["model"] == "SpaVAE"
    assert written.obs_names.equals(adata.obs_names) and written.var_names.equals(adata.var_names)
    # A different seed gives a different latent: the seed is really passed through.
    assert main([*args, "--random-state", "8", "--threads", "1", "--overwrite"]) == 0
    assert np.abs(ad.read_h5ad(out).obsm[OBSM.X_SPAVAE] - latent).max() > 1e-3


def test_fit_dpvae_then_reconstruct(files, tmp_path, capsys):
    import anndata as ad

    model_dir = tmp_path / "dpvae"
    fit = ["fit", "dpvae", str(files / "tissue.h5ad"), "-o", str(tmp_path / "dp.h5ad")]
    assert main([*fit, "--max-epochs", "3", "--save-model", str(model_dir)]) == 0
    assert (model_dir / "model.pt").is_file()
    out = tmp_path / "placed.h5ad"
    rec = ["reconstruct", str(files / "query.h5ad"), "--model", str(model_dir), "-o", str(out)]
    assert main([*rec, "--anchors-key", "anchor", "--spatial-key", "known"]) == 0
    assert "placed 80 cells (10 anchors)" in capsys.readouterr().out
    placed = ad.read_h5ad(out)
    coords = placed.obsm[OBSM.SPATIAL]
    assert coords.shape == (80, 2) and np.isfinite(coords).all()
    # Hard anchors stay where they were given.
    np.testing.assert_allclose(coords[:10], placed.obsm["known"][:10], atol=1e-6)
    # The existing key is not replaced without --overwrite.
    assert main([*rec[:-1], str(tmp_path / "again.h5ad"), "--key-added", "known"]) == 1
    assert "obsm['known'] exists" in _error(capsys)
    assert not (tmp_path / "again.h5ad").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fit", "spavae", "{f}/missing.h5ad", "-o", "{t}/o.h5ad"], "does not exist"),
        (["fit", "spavae", "{f}/table.csv", "-o", "{t}/o.h5ad"], "not an AnnData .h5ad file"),
        (["fit", "spavae", "{f}/logged.h5ad", "-o", "{t}/o.h5ad"], "non-integer values"),
        (
            ["fit", "spavae", "{f}/tissue.h5ad", "-o", "{t}/o.h5ad", "--layer", "raw"],
            "'raw' not found",
        ),
        (["fit", "spavae", "{f}/tissue.h5ad", "-o", "{t}/o.h5ad", "--batch-key", "slide"], "slide"),
        (
            ["fit", "spavae", "{f}/tissue.h5ad", "-o", "{t}/o.h5ad", "--spatial-key", "xy"],
            "obsm['xy'] is missing",
        ),
        (
            ["fit", "dpvae", "{f}/tissue.h5ad", "-o", "{t}/o.h5ad", "--batch-key", OBS.DOMAIN],
            "--batch-key does not apply to dpvae",
        ),
        (["fit", "spavae", "{f}/tissue.h5ad", "-o", "{t}/o.txt"], "must end in .h5ad"),
        (
            ["fit", "spavae", "{f}/tissue.h5ad", "-o", "{t}/o.h5ad", "--threads", "0"],
            "`--threads` must be a positive integer, got 0",
        ),
        (
            ["fit", "spavae", "{f}/tissue.h5ad", "-o", "{t}/nofolder/o.h5ad"],
            "does not exist; create it",
        ),
        (["fit", "spavae", "{f}/tissue.h5ad", "-o", "{f}/tissue.h5ad"], "pass --overwrite"),
        (["fit", "sivae", "{f}/tissue.h5ad", "-o", "{t}/o.h5ad"], "Images not found"),
        (
            ["reconstruct", "{f}/query.h5ad", "--model", "{t}", "-o", "{t}/o.h5ad"],
            "holds no saved model",
        ),
        (["info", "{f}/table.csv"], "not an AnnData"),
        (["info", "{f}"], "is a folder"),
    ],
)
def test_bad_input_exits_with_the_message(files, tmp_path, capsys, argv, message):
    argv = [a.format(f=files, t=tmp_path) for a in argv]
    assert main(argv) == EXIT_BAD_INPUT
    err = _error(capsys)
    assert err.startswith(f"spatialvi {argv[0]}: error:") and message in err, err
    assert not (tmp_path / "o.h5ad").exists()
    assert not list(tmp_path.glob(".*.tmp")), "a temporary file was left behind"


def test_reconstruct_rejects_bad_anchors(files, tmp_path, capsys):
    model_dir = tmp_path / "dpvae"
    fit = ["fit", "dpvae", str(files / "tissue.h5ad"), "-o", str(tmp_path / "dp.h5ad")]
    assert main([*fit, "--max-epochs", "1", "--save-model", str(model_dir)]) == 0
    rec = ["reconstruct", str(files / "query.h5ad"), "--model", str(model_dir)]
    out = ["-o", str(tmp_path / "o.h5ad")]
    assert main([*rec, *out, "--anchors-key", "nope"]) == 1
    assert "`--anchors-key`='nope' is not a column of adata.obs" in _error(capsys)
    assert main([*rec, *out, "--anchors-key", OBS.DOMAIN]) == 1
    assert "must be boolean" in _error(capsys)
    # Anchors need their coordinates: the query keeps them under 'known', not 'spatial'.
    assert main([*rec, *out, "--anchors-key", "anchor"]) == 1
    assert "spatial_key" in _error(capsys)
    spavae_dir = tmp_path / "spavae"
    fit = ["fit", "spavae", str(files / "tissue.h5ad"), "-o", str(tmp_path / "sp.h5ad")]
    assert main([*fit, "--max-epochs", "1", "--save-model", str(spavae_dir)]) == 0
    assert main(["reconstruct", str(files / "query.h5ad"), "--model", str(spavae_dir), *out]) == 1
    assert "not a saved DPVAE" in _error(capsys)
    assert not (tmp_path / "o.h5ad").exists()


def test_a_failed_write_leaves_no_file(files, tmp_path, monkeypatch):
    import anndata as ad

    from spatialvi.cli import write_atomically

    adata = ad.read_h5ad(files / "tissue.h5ad")
    target = tmp_path / "out.h5ad"
    target.write_bytes(b"previous")

    def broken(self, path, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(ad.AnnData, "write_h5ad", broken)
    with pytest.raises(OSError, match="disk full"):
        write_atomically(adata, target)
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5ad"]


def test_info_says_what_feeds_what(files, tmp_path, capsys):
    assert main(["info", str(files / "tissue.h5ad")]) == 0
    out = capsys.readouterr().out
    assert "240 observations × 40 variables" in out and "X: csr_matrix, raw counts" in out
    assert "  spavae: yes" in out and "  dpvae: yes" in out
    assert "  sivae: no, Images not found" in out
    assert main(["info", str(files / "logged.h5ad")]) == 0
    out = capsys.readouterr().out
    assert "X: ndarray, not raw counts" in out and "  spavae: no, no raw counts" in out
    assert main(["info", str(files / "query.h5ad")]) == 0
    out = capsys.readouterr().out
    assert "  spavae: no, Coordinates not found" in out
    assert "adagvae: yes (features: --features-key one of known)" in out


def test_fit_image_models_read_obsm_only(tmp_path, capsys):
    """AdaGVAE on raw-pixel sprite features (no genes: n_vars = 0) from the command line."""
    import anndata as ad

    from spatialvi.pp import extract_features
    from spatialvi.sim import texture_dsprites

    sprites = texture_dsprites(40, k=1, image_size=16, random_state=0)
    extract_features(sprites, backbone="raw", progress_bar=False)
    sprites.write_h5ad(tmp_path / "sprites.h5ad")
    out = tmp_path / "ada.h5ad"
    argv = ["fit", "adagvae", str(tmp_path / "sprites.h5ad"), "-o", str(out)]
    assert main([*argv, "--features-key", OBSM.X_RAW, "--max-epochs", "2"]) == 0
    assert "AdaGVAE: 80 observations × 0 variables, 2 epochs" in capsys.readouterr().out
    latent = ad.read_h5ad(out).obsm[OBSM.X_ADAGVAE]
    assert latent.shape == (80, 10) and np.isfinite(latent).all()
    # The same file without images cannot feed SIVAE: the setup's message, exit code 1.
    assert (
        main(["fit", "sivae", str(tmp_path / "sprites.h5ad"), "-o", str(out), "--overwrite"]) == 1
    )
    assert "obsm['points']" in capsys.readouterr().err


def test_format_value_rounds_for_people():
    from spatialvi.cli import format_value

    assert format_value(54.73266629699992) == "54.7"
    assert format_value(0.69712) == "0.697"
    assert format_value([0.123456, 2]) == "[0.123, 2]"
    assert format_value(123456.7) == "123457"
    assert format_value(True) == "True"
