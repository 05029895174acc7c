"""The plain-torch ViT against an independent forward pass and the DINO checkpoint facts (SPEC)."""

from __future__ import annotations

import argparse

import pytest
import torch
import torch.nn.functional as F

from spatialvi.nn import (
    VisionTransformer,
    dino_state_dict,
    load_dino_checkpoint,
    vit_base_16,
    vit_small_16,
)

D, HEADS, DEPTH, PATCH, NATIVE = 64, 4, 2, 16, 32


def _small(seed: int = 0) -> VisionTransformer:
    torch.manual_seed(seed)
    vit = VisionTransformer(D, DEPTH, HEADS, patch_size=PATCH, img_size=NATIVE).eval()
    # Non-trivial norms and biases, so that every parameter matters in the comparison.
    with torch.no_grad():
        for name, p in vit.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(0.3 * torch.randn_like(p))
    return vit


def _reference_forward(state: dict, x: torch.Tensor, heads: int, patch: int) -> torch.Tensor:
    """The DINO ViT written independently: torch.nn.MultiheadAttention for the attention."""
    dim = state["cls_token"].shape[-1]
    depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    tokens = F.conv2d(
        x, state["patch_embed.proj.weight"], state["patch_embed.proj.bias"], stride=patch
    )
    gh, gw = tokens.shape[-2:]
    tokens = tokens.flatten(2).transpose(1, 2)
    pos = state["pos_embed"]
    g = round((pos.shape[1] - 1) ** 0.5)
    grid = pos[:, 1:].reshape(1, g, g, dim).permute(0, 3, 1, 2)
    if (gh, gw) != (g, g):
        grid = F.interpolate(grid, size=(gh, gw), mode="bicubic", align_corners=False)
    pos = torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, gh * gw, dim)], dim=1)
    h = torch.cat([state["cls_token"].expand(len(x), -1, -1), tokens], dim=1) + pos
    for i in range(depth):
        p = f"blocks.{i}."
        attn = torch.nn.MultiheadAttention(dim, heads, batch_first=True)
        with torch.no_grad():
            attn.in_proj_weight.copy_(state[p + "attn.qkv.weight"])
            attn.in_proj_bias.copy_(state[p + "attn.qkv.bias"])
            attn.out_proj.weight.copy_(state[p + "attn.proj.weight"])
            attn.out_proj.bias.copy_(state[p + "attn.proj.bias"])
        y = F.layer_norm(h, (dim,), state[p + "norm1.weight"], state[p + "norm1.bias"], eps=1e-6)
        h = h + attn(y, y, y, need_weights=False)[0]
        y = F.layer_norm(h, (dim,), state[p + "norm2.weight"], state[p + "norm2.bias"], eps=1e-6)
        y = F.linear(y, state[p + "mlp.fc1.weight"], state[p + "mlp.fc1.bias"])
        y = 0.5 * y * (1 + torch.erf(y / 2**0.5))  # exact GELU
        h = h + F.linear(y, state[p + "mlp.fc2.weight"], state[p + "mlp.fc2.bias"])
    h = F.layer_norm(h, (dim,), state["norm.weight"], state["norm.bias"], eps=1e-6)
    return h[:, 0]


@pytest.mark.parametrize("size", [(32, 32), (48, 48), (32, 48)])
def test_forward_matches_multihead_attention_reference(size):
    vit = _small()
    torch.manual_seed(1)
    x = torch.rand(3, 3, *size)
    with torch.no_grad():
        ours = vit(x)
        reference = _reference_forward(vit.state_dict(), x, HEADS, PATCH)
    assert ours.shape == (3, D)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)
    # The class token attends to every patch: changing one patch changes the feature.
    x2 = x.clone()
    x2[:, :, :PATCH, :PATCH] = 0
    with torch.no_grad():
        assert (vit(x2) - ours).abs().max() > 1e-3


def test_dino_layout_of_vit_small_16(tmp_path):
    vit = vit_small_16()
    path = tmp_path / "vits16.pth"
    torch.save(vit.state_dict(), path)
    saved = torch.load(path, weights_only=True)
    d = 384
    expected = {
        "cls_token": (1, 1, d),
        "pos_embed": (1, 1 + 196, d),
        "patch_embed.proj.weight": (d, 3, 16, 16),
        "patch_embed.proj.bias": (d,),
        "norm.weight": (d,),
        "norm.bias": (d,),
    }
    for i in range(12):
        p = f"blocks.{i}."
        expected |= {
            p + "norm1.weight": (d,),
            p + "norm1.bias": (d,),
            p + "attn.qkv.weight": (3 * d, d),
            p + "attn.qkv.bias": (3 * d,),
            p + "attn.proj.weight": (d, d),
            p + "attn.proj.bias": (d,),
            p + "norm2.weight": (d,),
            p + "norm2.bias": (d,),
            p + "mlp.fc1.weight": (4 * d, d),
            p + "mlp.fc1.bias": (4 * d,),
            p + "mlp.fc2.weight": (d, 4 * d),
            p + "mlp.fc2.bias": (d,),
        }
    assert {k: tuple(v.shape) for k, v in saved.items()} == expected
    assert vit.num_heads == 6 and vit.blocks[0].attn.scale == pytest.approx(64**-0.5)
    # LayerNorm eps 1e-6 everywhere (torch's default is 1e-5).
    norms = [m for m in vit.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert len(norms) == 2 * 12 + 1 and all(m.eps == 1e-6 for m in norms)
    gelus = [m for m in vit.modules() if isinstance(m, torch.nn.GELU)]
    assert len(gelus) == 12 and all(m.approximate == "none" for m in gelus)
    # One forward at the native size (the only depth-12 forward of the tests).
    loaded = load_dino_checkpoint(path, "vit_small_16")
    with torch.no_grad():
        assert loaded(torch.rand(1, 3, 224, 224)).shape == (1, 384)
    # ViT-B/16 has the same keys with D 768 and 12 heads (shapes only, on the meta device).
    with torch.device("meta"):
        base = vit_base_16()
    assert base.num_heads == 12 and base.pos_embed.shape == (1, 197, 768)
    assert base.state_dict().keys() == saved.keys()


def test_pos_embed_interpolation():
    vit = _small()
    # Identity at the native size (the parameter itself, not a resampled copy).
    assert vit.interpolate_pos_embed(2, 2) is vit.pos_embed
    out = vit.interpolate_pos_embed(3, 5)
    assert out.shape == (1, 1 + 15, D)
    torch.testing.assert_close(out[:, 0], vit.pos_embed[:, 0])  # class token kept
    # A constant grid stays constant (bicubic weights sum to one).
    with torch.no_grad():
        vit.pos_embed[:, 1:] = torch.linspace(-1, 1, D)
    out = vit.interpolate_pos_embed(7, 3)
    torch.testing.assert_close(out[:, 1:], torch.linspace(-1, 1, D).expand(1, 21, D))
    # Bicubic, not bilinear: a 4 × 4 grid upsampled matches F.interpolate's bicubic values.
    big = VisionTransformer(8, 1, 2, patch_size=4, img_size=16)
    grid = big.pos_embed[:, 1:].reshape(1, 4, 4, 8).permute(0, 3, 1, 2)
    want = F.interpolate(grid, size=(6, 6), mode="bicubic", align_corners=False)
    torch.testing.assert_close(
        big.interpolate_pos_embed(6, 6)[:, 1:], want.permute(0, 2, 3, 1).reshape(1, 36, 8)
    )


def test_nested_training_checkpoint(tmp_path):
    vit = _small()
    state = vit.state_dict()
    teacher = {f"backbone.{k}": v for k, v in state.items()}
    teacher |= {"head.mlp.0.weight": torch.zeros(2, D), "head.last_layer.weight_g": torch.ones(1)}
    student = {f"module.backbone.{k}": torch.zeros_like(v) for k, v in state.items()}
    checkpoint = {
        "teacher": teacher,
        "student": student,
        "optimizer": {"state": {}, "param_groups": []},
        "epoch": 100,
        "args": argparse.Namespace(arch="vit_small", patch_size=16),
    }
    path = tmp_path / "checkpoint.pth"
    torch.save(checkpoint, path)
    fresh = VisionTransformer(D, DEPTH, HEADS, patch_size=PATCH, img_size=NATIVE)
    loaded = load_dino_checkpoint(path, fresh)
    for k, v in loaded.state_dict().items():
        torch.testing.assert_close(v, state[k])
    assert not loaded.training
    # The student, when asked for; its `module.backbone.` prefix is stripped too.
    fresh = VisionTransformer(D, DEPTH, HEADS, patch_size=PATCH, img_size=NATIVE)
    student_model = load_dino_checkpoint(path, fresh, network="student")
    assert all((v == 0).all() for v in student_model.state_dict().values())
    assert set(dino_state_dict(checkpoint)) == set(state)
    with pytest.raises(KeyError, match="network 'ema'.*'student', 'teacher'"):
        dino_state_dict({"teacher": teacher, "student": student}, network="ema")


def test_wrong_keys_are_named(tmp_path):
    state = _small().state_dict()
    del state["blocks.1.attn.qkv.weight"], state["norm.bias"]
    state["blocks.1.attn.in_proj_weight"] = torch.zeros(3 * D, D)
    fresh = VisionTransformer(D, DEPTH, HEADS, patch_size=PATCH, img_size=NATIVE)
    with pytest.raises(ValueError, match="missing keys") as err:
        load_dino_checkpoint(state, fresh)
    message = str(err.value)
    assert "blocks.1.attn.qkv.weight" in message and "norm.bias" in message
    assert "unexpected keys (1): blocks.1.attn.in_proj_weight" in message
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        load_dino_checkpoint(tmp_path / "absent.pth")
    with pytest.raises(ValueError, match="Unknown ViT architecture 'vit_huge'"):
        load_dino_checkpoint(state, "vit_huge")


def test_checkpoint_of_another_architecture():
    with torch.device("meta"):
        base = vit_base_16().state_dict()
    with pytest.raises(ValueError, match="does not fit ViT-S/16") as err:
        load_dino_checkpoint(base, "vit_small_16")
    message = str(err.value)
    assert "embed_dim 768, depth 12, patch 16: ViT-B/16 (arch='vit_base_16')" in message
    assert "shape mismatches" in message and "cls_token: checkpoint (1, 1, 768)" in message


def test_input_checks():
    vit = _small()
    with pytest.raises(ValueError, match="smaller than one 16-px patch"):
        vit(torch.rand(1, 3, 8, 40))
    with pytest.raises(ValueError, match="1 channels; this ViT takes 3"):
        vit(torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match="B × C × H × W"):
        vit(torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match="must divide `embed_dim`"):
        VisionTransformer(64, 1, 5)
