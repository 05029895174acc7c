"""A plain-torch Vision Transformer with the layout of the official DINO checkpoints.

The parameter names and the maths follow DINO's ``vision_transformer.py`` (Caron et al. 2021,
itself the timm layout), so the released ``dino_deitsmall16_pretrain.pth`` and
``dino_vitbase16_pretrain.pth`` state dicts load without renaming:

- ``patch_embed.proj``: a ``P × P`` convolution with stride ``P`` (non-overlapping patches);
- ``cls_token`` (1, 1, D) and ``pos_embed`` (1, 1 + (S/P)², D) for the native size ``S``;
- ``blocks.i``: pre-norm residual blocks ``x + attn(norm1(x))``, ``x + mlp(norm2(x))`` with
  LayerNorm eps 1e-6, multi-head attention whose ``qkv`` output is read as
  (batch, tokens, 3, heads, D/heads) in the order q, k, v and scaled by (D/heads)^-1/2, and an
  MLP ``fc1`` (D → 4D) → exact (erf) GELU → ``fc2`` (4D → D);
- ``norm``: the final LayerNorm; the image feature is ``norm(x)[:, 0]``, the class token.

Inputs of another size use a bicubic interpolation of the patch grid of ``pos_embed`` (the
class token's embedding is kept), as DINO does. torchvision and timm are not needed (there is
no CPU build of torchvision here).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

import torch
from torch import nn

from spatialvi._checks import check_int

#: LayerNorm epsilon of the DINO/timm ViTs (torch's default is 1e-5).
LAYER_NORM_EPS = 1e-6

#: Architectures of the official DINO ViT checkpoints: name -> (embed_dim, depth, heads, patch).
ARCHITECTURES: dict[str, tuple[int, int, int, int]] = {
    "vit_small_16": (384, 12, 6, 16),
    "vit_base_16": (768, 12, 12, 16),
}
_ARCH_LABELS = {"vit_small_16": "ViT-S/16", "vit_base_16": "ViT-B/16"}

#: Prefixes of backbone keys in DINO training checkpoints (DDP's ``module.``, the
#: ``MultiCropWrapper``'s ``backbone.``); the projection head sits under ``head.``.
_PREFIXES = ("module.", "backbone.")
_HEAD_PREFIX = "head."


class PatchEmbed(nn.Module):
    """Non-overlapping ``P × P`` patches projected to ``D`` channels by one convolution."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C, H, W) -> (B, D, H/P, W/P) -> (B, H/P · W/P, D), patches in row-major order
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with one fused ``qkv`` projection."""

    def __init__(self, embed_dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (embed_dim // num_heads) ** -0.5
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim)
        self.proj = nn.Linear(embed_dim, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, D // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, heads, N, D/heads)
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, D))


class Mlp(nn.Module):
    """``fc1`` → exact GELU → ``fc2``."""

    def __init__(self, embed_dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(embed_dim, hidden)
        self.act = nn.GELU()  # approximate="none": the erf form of the checkpoints
        self.fc2 = nn.Linear(hidden, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, embed_dim: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dim, eps=LAYER_NORM_EPS)
        self.attn = Attention(embed_dim, num_heads)
        self.norm2 = nn.LayerNorm(embed_dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(embed_dim, int(embed_dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """Vision Transformer whose output is the class-token feature ``norm(x)[:, 0]``.

    Parameters
    ----------
    embed_dim
        Token width ``D``.
    depth
        Number of transformer blocks.
    num_heads
        Attention heads; must divide ``embed_dim``.
    patch_size
        Side ``P`` of the square patches, in pixels.
    img_size
        Native (training) input side ``S``; ``pos_embed`` holds ``(S/P)²`` patch positions
        plus the class token. Other input sizes interpolate it (see
        :meth:`interpolate_pos_embed`).
    in_chans
        Input channels (3 for the DINO checkpoints).
    mlp_ratio
        Hidden width of the MLPs as a multiple of ``embed_dim``.

    Notes
    -----
    Input is ``B × C × H × W`` with ``H, W ≥ P``; pixels beyond the last whole patch are
    not seen (the patch convolution has stride ``P``). Weights are initialised as in DINO
    (truncated normal, std 0.02, for linear layers and embeddings); load trained ones with
    :func:`load_dino_checkpoint`.
    """

    def __init__(
        self,
        embed_dim: int,
        depth: int,
        num_heads: int,
        patch_size: int = 16,
        img_size: int = 224,
        in_chans: int = 3,
        mlp_ratio: float = 4.0,
    ):
        super().__init__()
        for name, value in (
            ("embed_dim", embed_dim),
            ("depth", depth),
            ("num_heads", num_heads),
            ("patch_size", patch_size),
            ("img_size", img_size),
            ("in_chans", in_chans),
        ):
            check_int(name, value)
        if embed_dim % num_heads:
            raise ValueError(
                f"`num_heads` ({num_heads}) must divide `embed_dim` ({embed_dim}); e.g. "
                "ViT-S/16 uses embed_dim=384 with 6 heads."
            )
        if img_size % patch_size:
            raise ValueError(
                f"`img_size` ({img_size}) must be a multiple of `patch_size` ({patch_size})."
            )
        self.embed_dim, self.depth, self.num_heads = embed_dim, depth, num_heads
        self.patch_size, self.img_size, self.in_chans = patch_size, img_size, in_chans
        self.grid_size = img_size // patch_size
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid_size**2, embed_dim))
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=LAYER_NORM_EPS)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """DINO's initialisation: truncated normal (std 0.02) weights, zero biases, unit norms."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    @property
    def num_features(self) -> int:
        """Width of the output feature (``embed_dim``)."""
        return self.embed_dim

    def interpolate_pos_embed(self, grid_h: int, grid_w: int) -> torch.Tensor:
        """``pos_embed`` for a ``grid_h × grid_w`` patch grid (class token kept unchanged).

        The native grid is returned as is; any other grid is a bicubic interpolation
        (``align_corners=False``) of the native one, so a constant grid stays constant.
        """
        if (grid_h, grid_w) == (self.grid_size, self.grid_size):
            return self.pos_embed
        cls_pos, patch_pos = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        g, D = self.grid_size, self.embed_dim
        grid = patch_pos.reshape(1, g, g, D).permute(0, 3, 1, 2)
        grid = nn.functional.interpolate(
            grid, size=(grid_h, grid_w), mode="bicubic", align_corners=False
        )
        patch_pos = grid.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, D)
        return torch.cat([cls_pos, patch_pos], dim=1)

    def prepare_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens with the class token prepended and position embeddings added."""
        if x.ndim != 4:
            raise ValueError(f"Input must be B × C × H × W, got shape {tuple(x.shape)}.")
        B, C, H, W = x.shape
        if C != self.in_chans:
            raise ValueError(
                f"Input has {C} channels; this ViT takes {self.in_chans} (repeat a greyscale "
                "channel to 3 for the DINO checkpoints)."
            )
        P = self.patch_size
        if H < P or W < P:
            raise ValueError(
                f"Input images of {H} × {W} px are smaller than one {P}-px patch; the ViT "
                f"needs H, W ≥ {P} (resize them, e.g. to {self.img_size} px)."
            )
        tokens = self.patch_embed(x)
        cls = self.cls_token.expand(B, -1, -1)
        return torch.cat([cls, tokens], dim=1) + self.interpolate_pos_embed(H // P, W // P)

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """All normalised output tokens, ``B × (1 + patches) × D`` (class token first)."""
        x = self.prepare_tokens(x)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class-token feature ``norm(x)[:, 0]``, ``B × D``."""
        return self.forward_tokens(x)[:, 0]


def vision_transformer(arch: str, **kwargs) -> VisionTransformer:
    """A ViT of a named DINO architecture (``'vit_small_16'`` or ``'vit_base_16'``)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"Unknown ViT architecture {arch!r}; choose one of {list(ARCHITECTURES)}.")
    embed_dim, depth, heads, patch = ARCHITECTURES[arch]
    return VisionTransformer(embed_dim, depth, heads, patch_size=patch, **kwargs)


def vit_small_16(**kwargs) -> VisionTransformer:
    """ViT-S/16 of DINO (``dino_deitsmall16_pretrain.pth``): D 384, 6 heads, depth 12."""
    return vision_transformer("vit_small_16", **kwargs)


def vit_base_16(**kwargs) -> VisionTransformer:
    """ViT-B/16 of DINO (``dino_vitbase16_pretrain.pth``): D 768, 12 heads, depth 12."""
    return vision_transformer("vit_base_16", **kwargs)


# --------------------------------------------------------------------------------------------
# checkpoints


def _read_checkpoint(path) -> Mapping:
    try:
        # DINO training checkpoints pickle their argparse arguments next to the weights.
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"DINO checkpoint {str(path)!r} not found; pass the local path of a checkpoint "
            "such as dino_deitsmall16_pretrain.pth (nothing is downloaded)."
        ) from None
    except Exception as err:  # unpickling errors come in many types
        raise ValueError(
            f"Could not read {str(path)!r} as a torch checkpoint of tensors ({err}). If you "
            "trust the file, load it yourself with `torch.load(path, weights_only=False)` and "
            "pass the resulting dict instead of the path."
        ) from err


def dino_state_dict(checkpoint: Mapping, network: str = "teacher") -> dict:
    """The backbone's state dict from a DINO checkpoint, keys as in :class:`VisionTransformer`.

    Accepts a plain state dict (the released ``*_pretrain.pth`` files) or a training
    checkpoint holding it under ``network`` (``'teacher'``, DINO's default for
    evaluation, or ``'student'``). The ``module.`` (DistributedDataParallel) and ``backbone.``
    (DINO's multi-crop wrapper) prefixes are stripped and the projection head (``head.*``)
    is left out.
    """
    if not isinstance(checkpoint, Mapping):
        raise ValueError(
            f"A DINO checkpoint must be a dict of tensors, got {type(checkpoint).__name__}."
        )
    if network in checkpoint and isinstance(checkpoint[network], Mapping):
        checkpoint = checkpoint[network]
    elif any(isinstance(v, Mapping) for v in checkpoint.values()) and not any(
        isinstance(v, torch.Tensor) for v in checkpoint.values()
    ):
        nested = sorted(str(k) for k, v in checkpoint.items() if isinstance(v, Mapping))
        raise KeyError(
            f"network {network!r} not found in the checkpoint; it nests state "
            f"dicts under {nested}. Pass `network=` one of them (DINO: 'teacher' or "
            "'student')."
        )
    state = {}
    for key, value in checkpoint.items():
        key = str(key)
        stripped = True
        while stripped:
            stripped = False
            for prefix in _PREFIXES:
                if key.startswith(prefix):
                    key, stripped = key[len(prefix) :], True
        if key.startswith(_HEAD_PREFIX) or not isinstance(value, torch.Tensor):
            continue
        state[key] = value
    return state


def _describe_checkpoint(state: Mapping) -> str:
    """What architecture a checkpoint holds, read from its shapes."""
    cls, blocks = state.get("cls_token"), set()
    for key in state:
        parts = key.split(".")
        if parts[0] == "blocks" and len(parts) > 1 and parts[1].isdigit():
            blocks.add(int(parts[1]))
    if cls is None or cls.ndim != 3:
        return "a checkpoint without a `cls_token` of shape (1, 1, D)"
    D, depth = int(cls.shape[-1]), len(blocks)
    proj = state.get("patch_embed.proj.weight")
    patch = int(proj.shape[-1]) if proj is not None and proj.ndim == 4 else None
    name = next(
        (
            f"{_ARCH_LABELS[a]} (arch={a!r})"
            for a, (d, n, _, p) in ARCHITECTURES.items()
            if (d, n, p) == (D, depth, patch)
        ),
        "an architecture not in " + str(list(ARCHITECTURES)),
    )
    return f"a ViT with embed_dim {D}, depth {depth}, patch {patch}: {name}"


def _check_state(model: VisionTransformer, state: Mapping, arch_label: str) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)}, model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if not (missing or unexpected or mismatched):
        return

    def listed(items: list[str], limit: int = 8) -> str:
        more = f" … and {len(items) - limit} more" if len(items) > limit else ""
        return ", ".join(items[:limit]) + more

    parts = []
    if missing:
        parts.append(f"missing keys ({len(missing)}): {listed(missing)}")
    if unexpected:
        parts.append(f"unexpected keys ({len(unexpected)}): {listed(unexpected)}")
    if mismatched:
        parts.append(f"shape mismatches ({len(mismatched)}): {listed(mismatched, 4)}")
    raise ValueError(
        f"The checkpoint does not fit {arch_label}: it holds {_describe_checkpoint(state)}. "
        + "; ".join(parts)
        + ". Pass the `arch` of the checkpoint (ViT-S/16 weights: 'vit_small_16', ViT-B/16: "
        "'vit_base_16'), or a checkpoint in the DINO layout."
    )


def load_dino_checkpoint(
    path: str | os.PathLike | Mapping,
    arch: str | VisionTransformer = "vit_small_16",
    network: str = "teacher",
) -> VisionTransformer:
    """Load DINO ViT weights from a local file into a :class:`VisionTransformer`.

    Parameters
    ----------
    path
        Local checkpoint file (nothing is downloaded), or the loaded dict. A plain state dict
        (``dino_deitsmall16_pretrain.pth``, ``dino_vitbase16_pretrain.pth``) or a DINO training
        checkpoint (see :func:`dino_state_dict`).
    arch
        ``'vit_small_16'``, ``'vit_base_16'``, or a :class:`VisionTransformer` to load the
        weights into (for other configurations).
    network
        Entry of a training checkpoint holding the backbone (``'teacher'`` or ``'student'``).

    Returns
    -------
    The model in eval mode (a new one on the CPU; a given one stays on its device).

    Raises
    ------
    ValueError
        If keys are missing or unexpected or shapes differ; the message names them and the
        architecture the checkpoint holds (e.g. ViT-B/16 weights loaded as ViT-S/16).
    """
    if not isinstance(arch, VisionTransformer) and arch not in ARCHITECTURES:
        raise ValueError(
            f"Unknown ViT architecture {arch!r}; choose one of {list(ARCHITECTURES)} or pass a "
            "VisionTransformer."
        )
    checkpoint = path if isinstance(path, Mapping) else _read_checkpoint(path)
    state = dino_state_dict(checkpoint, network=network)
    if isinstance(arch, VisionTransformer):
        model, label = arch, f"the given VisionTransformer (embed_dim {arch.embed_dim})"
    else:
        model = vision_transformer(arch)
        label = f"{_ARCH_LABELS[arch]} (arch={arch!r})"
    _check_state(model, state, label)
    model.load_state_dict(state, strict=True)
    return model.eval()
