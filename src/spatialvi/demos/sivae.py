"""SIVAE demo: six kinds of point patterns, SI-VAE against the plain VAE, learned potentials."""

from __future__ import annotations

import time
from pathlib import Path


def demo(out_dir: Path, quick: bool = False, random_state: int = 0) -> dict:
    """Train SI-VAE and the plain VAE (``pl_weight=0``) on simulated point-pattern images.

    The six classes of :func:`spatialvi.sim.point_pattern_dataset` (Poisson, Thomas, Strauss ×
    homogeneous, inhomogeneous) are simulated for training and, separately, for testing; a
    logistic-regression probe on the latent of the held-out images measures how well each
    model's representation tells the arrangements apart. Writes ``sivae_demo.h5ad`` (test
    images with ``obsm['X_sivae']``, ``obsm['X_vae']`` and the simulated patterns) and
    ``sivae_demo.png`` (the learned pair potentials per class and observed vs simulated L
    functions, each panel with its legend) into ``out_dir``.

    Parameters
    ----------
    out_dir
        Output folder (created if needed).
    quick
        Tiny data and two epochs (a smoke test, seconds).
    random_state
        Seed of the simulation and the training.

    Returns
    -------
    A dict with sizes, epochs, the probe accuracies of both models and the wall time.
    """
    import warnings

    import numpy as np
    import scvi
    from matplotlib.lines import Line2D
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from spatialvi._keys import OBS, OBSM, latent_key
    from spatialvi.demos._common import figure, prepare, save_figure
    from spatialvi.metrics import l_function
    from spatialvi.model import SIVAE
    from spatialvi.sim import PATTERN_CLASSES, point_pattern_dataset
    from spatialvi.tl import simulate_points

    start = time.perf_counter()
    out_dir = prepare(out_dir)
    n_train, n_test, epochs = (6, 4, 2) if quick else (100, 40, 20)
    train = point_pattern_dataset(n_train, random_state=random_state)
    test = point_pattern_dataset(n_test, random_state=random_state + 1000)
    result = {"n_train": int(train.n_obs), "n_test": int(test.n_obs), "epochs": epochs}
    models = {}
    for name, weight in (("sivae", 1.0), ("vae", 0.0)):
        scvi.settings.seed = random_state
        SIVAE.setup_anndata(train)
        model = SIVAE(train, pl_weight=weight)
        model.train(max_epochs=epochs, enable_progress_bar=False, enable_model_summary=False)
        models[name] = model
        key = latent_key(name)
        test.obsm[key] = model.get_latent_representation(test)
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
        probe.fit(model.get_latent_representation(), train.obs[OBS.LABEL])
        result[f"probe_accuracy_{name}"] = float(probe.score(test.obsm[key], test.obs[OBS.LABEL]))
    result["images_per_second"] = models["sivae"].run_params_["images_per_second"]
    simulate_points(models["sivae"], test, n_steps=5_000 if quick else 30_000)
    test.write_h5ad(out_dir / "sivae_demo.h5ad")

    labels = test.obs[OBS.LABEL].to_numpy()
    pots = models["sivae"].get_potentials(test)
    r = np.linspace(0, 0.2, 21)
    fig, axes = figure(2, panel_size=(5.0, 4.0), wspace=0.3)
    for name in PATTERN_CLASSES:
        sel = labels == name
        axes[0].plot(pots["radii"], pots["psi"][sel].mean(0), label=name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # L is undefined (NaN) for patterns of < 2 points
            l_obs = [l_function(p, r, (0, 1, 0, 1)) - r for p in test.obsm[OBSM.POINTS][sel]]
            l_sim = [
                l_function(p, r, (0, 1, 0, 1)) - r for p in test.obsm[OBSM.POINTS_SIMULATED][sel, 0]
            ]
        (line,) = axes[1].plot(r, np.nanmean(l_obs, 0), label=name)
        axes[1].plot(r, np.nanmean(l_sim, 0), ls="--", color=line.get_color())
    axes[0].axhline(0, color="grey", lw=0.8)
    axes[0].set(xlabel="r", ylabel="ψ(r) (> 0 repulsion)", title="learned pair potential")
    axes[0].legend(fontsize=7, frameon=False)
    axes[1].axhline(0, color="grey", lw=0.8)
    axes[1].set(xlabel="r", ylabel="L(r) − r", title="observed (solid) vs simulated (dashed)")
    # The classes' colours (as in the first panel) and the two line styles.
    styles = [
        Line2D([], [], color="black", label="observed"),
        Line2D([], [], color="black", ls="--", label="simulated"),
    ]
    axes[1].legend(
        handles=[*axes[1].get_legend_handles_labels()[0], *styles], fontsize=7, frameon=False
    )
    save_figure(fig, out_dir, "sivae_demo.png")
    result["seconds"] = time.perf_counter() - start
    print(
        f"probe accuracy on {result['n_test']} held-out images: SI-VAE "
        f"{result['probe_accuracy_sivae']:.3f} vs VAE {result['probe_accuracy_vae']:.3f} "
        f"({result['seconds']:.0f} s)"
    )
    return result
