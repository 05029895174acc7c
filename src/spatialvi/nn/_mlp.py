"""The one MLP builder of the package's encoders and decoders."""

from __future__ import annotations

from itertools import pairwise

import torch
from scvi.nn import FCLayers
from torch import nn


class MLP(nn.Module):
    """Stack of scvi-tools ``FCLayers`` blocks (Linear → BatchNorm → activation → Dropout).

    One block per hidden width. Categorical covariates (e.g. the section) are injected one-hot
    into every block (scvi-tools ignores covariates with a single category, so a one-section
    model has none).

    Parameters
    ----------
    n_in
        Input width.
    hidden
        Hidden widths, at least one (e.g. ``(128, 64)``); the output width is the last one.
    dropout_rate
        Dropout after each block.
    n_cat_list
        Number of categories of each categorical covariate.
    activation_fn
        Activation class (default ELU, as in SpaVAE).
    use_batch_norm
        Batch norm after each linear layer (scvi-tools' default). Off, the blocks are plain
        Linear → activation, as the MLP of the DRL paper.
    """

    def __init__(
        self,
        n_in: int,
        hidden,
        dropout_rate: float = 0.0,
        n_cat_list=(),
        activation_fn: type[nn.Module] = nn.ELU,
        use_batch_norm: bool = True,
    ):
        super().__init__()
        widths = [n_in, *hidden]
        if len(widths) < 2:
            raise ValueError("Hidden layer widths must name at least one layer, e.g. (128,).")
        self.layers = nn.ModuleList(
            FCLayers(
                a,
                b,
                n_cat_list=list(n_cat_list),
                n_layers=1,
                dropout_rate=dropout_rate,
                activation_fn=activation_fn,
                use_batch_norm=use_batch_norm,
            )
            for a, b in pairwise(widths)
        )

    @property
    def first_linear(self) -> nn.Linear:
        """The first linear layer (its columns after the input are the covariates' one-hots)."""
        return self.layers[0].fc_layers[0][0]

    def forward(self, x: torch.Tensor, *cat_list: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, *cat_list)
        return x


__all__ = ["MLP"]
