"""The one MLP builder: widths, one-hot covariates in every block, bad widths refused."""

from __future__ import annotations

import pytest
import torch

from spatialvi.nn import MLP


def test_widths_and_covariates():
    torch.manual_seed(0)
    mlp = MLP(10, (8, 4), n_cat_list=[3])
    assert [layer.fc_layers[0][0].in_features for layer in mlp.layers] == [13, 11]
    assert mlp.first_linear is mlp.layers[0].fc_layers[0][0]
    mlp.eval()
    x = torch.randn(6, 10)
    a = mlp(x, torch.zeros(6, 1, dtype=torch.long))
    b = mlp(x, torch.ones(6, 1, dtype=torch.long))
    assert a.shape == (6, 4) and not torch.allclose(a, b)  # the covariate changes the output
    # A single-category covariate is ignored (scvi-tools), so one-section models have none.
    assert MLP(10, (8,), n_cat_list=[1]).first_linear.in_features == 10


def test_empty_widths_are_refused():
    with pytest.raises(ValueError, match="at least one layer"):
        MLP(10, ())
