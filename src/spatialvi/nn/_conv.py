"""Convolutional encoder and decoder for image VAEs (SIVAE), any size and channel count.

The encoder halves the image ``n_down`` times with stride-2 convolutions (4 × 4 kernels, batch
norm, ReLU) until the shorter side would drop below 4 pixels (at most ``len(channels)`` times),
flattens and maps to the mean and log-variance of a diagonal Gaussian. The decoder mirrors it
with transposed convolutions from the smallest feature map and crops to the image size, so
sizes that are not powers of two work too.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn


def n_downsamplings(height: int, width: int, max_down: int) -> int:
    """Stride-2 steps that keep the shorter side ≥ 4 pixels (at most ``max_down``, at least 1)."""
    return max(1, min(max_down, math.floor(math.log2(max(min(height, width), 4) / 4))))


class ConvEncoder(nn.Module):
    """``C × H × W`` images → ``(mean, log_var)`` of q(z | x), each ``n_latent``-dimensional.

    Parameters
    ----------
    in_channels
        Image channels ``C``.
    image_shape
        ``(H, W)``.
    n_latent
        Latent dimension.
    channels
        Feature channels after each stride-2 convolution (the first ``n_down`` are used).
    n_hidden
        Width of the fully connected layer before the Gaussian parameters.
    """

    def __init__(
        self,
        in_channels: int,
        image_shape: tuple[int, int],
        n_latent: int,
        channels: tuple[int, ...] = (16, 32, 64, 64),
        n_hidden: int = 256,
    ):
        super().__init__()
        height, width = (int(v) for v in image_shape)
        self.n_down = n_downsamplings(height, width, len(channels))
        layers: list[nn.Module] = []
        c_in = in_channels
        for c_out in channels[: self.n_down]:
            layers += [
                nn.Conv2d(c_in, c_out, 4, stride=2, padding=1),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, in_channels, height, width)).numel()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(n_flat, n_hidden), nn.ReLU())
        self.mean = nn.Linear(n_hidden, n_latent)
        self.log_var = nn.Linear(n_hidden, n_latent)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.head(self.features(x))
        return self.mean(h), self.log_var(h)


class ConvDecoder(nn.Module):
    """``n_latent`` codes → ``C × H × W`` images (the mean of p(x | z)).

    Mirrors :class:`ConvEncoder` with the same ``channels``: a linear layer to the smallest
    feature map (``ceil(H / 2^n) × ceil(W / 2^n)``), ``n_down`` transposed stride-2
    convolutions, a final 3 × 3 convolution to ``C`` channels, cropped to ``H × W``.
    """

    def __init__(
        self,
        n_latent: int,
        out_channels: int,
        image_shape: tuple[int, int],
        channels: tuple[int, ...] = (16, 32, 64, 64),
        n_hidden: int = 256,
    ):
        super().__init__()
        self.height, self.width = (int(v) for v in image_shape)
        n_down = n_downsamplings(self.height, self.width, len(channels))
        used = list(channels[:n_down])[::-1]
        self.start = (
            used[0],
            math.ceil(self.height / 2**n_down),
            math.ceil(self.width / 2**n_down),
        )
        self.fc = nn.Sequential(
            nn.Linear(n_latent, n_hidden),
            nn.ReLU(),
            nn.Linear(n_hidden, int(math.prod(self.start))),
            nn.ReLU(),
        )
        layers: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(used):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]
        # the last upsampling goes straight to the image channels: a full-resolution layer
        # with many channels would cost more than the rest of the network together
        layers.append(nn.ConvTranspose2d(used[-1], out_channels, 4, stride=2, padding=1))
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, *self.start)
        return self.deconv(h)[..., : self.height, : self.width]
