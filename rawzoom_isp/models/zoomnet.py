"""The ZLLZ network (Zhang et al. 2019, ``net.py::SRResnet``), with width, depth and norm configurable
so that small CPU models and the full model share one code path.

input conv 9x9 -> PReLU; ``blocks`` residual blocks (conv 4x4 [TF "SAME": pad 1 before, 2 after],
norm, PReLU, conv 3x3, norm, + input); conv 3x3 + norm; long skip; ``log2(zoom)`` up-convolution
stages (conv 3x3 -> ``up_channels``, transposed conv 3x3 stride 2, PReLU); output conv 9x9, linear.
Packed raw input (4 channels) is zoomed 2N x (log2 N + 1 stages): the output is N x the Bayer mosaic;
the 8-bit RGB arm (3 channels at mosaic resolution) is zoomed N x. The norm is batch norm without
scale ("batch", as the original) or none.

``output`` says what the network was trained to produce: "display" (the paper: camera-rendered RGB,
white balance applied after the network in gamma space) or "linear" (linear camera RGB before white
balance: the classical stages WB -> colour matrix -> gamma render it from the raw's metadata, so the
network need not learn each camera's colour). It does not change the layers.

``skip="bicubic"`` makes the network residual: it adds its output to the classical zoom of its input
(packed raw: bilinear demosaic, then bicubic N x, linear camera RGB; RGB: bicubic N x, display RGB,
so only with output="display"), and its last layer starts at zero, so training starts from the
bicubic baseline and learns what improves on it.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .registry import register_model
from .residual import classical_zoom


class CenteredBatchNorm(nn.BatchNorm2d):
    """Batch norm with a learned shift and no scale (TF slim ``scale=False``, ``center=True``):
    (x - mean) / sqrt(var + eps) + beta, beta added once."""

    def __init__(self, channels: int):
        super().__init__(channels, eps=1e-3, momentum=0.1, affine=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The shift is added outside F.batch_norm: with weight None and a bias, cuDNN's backward returns
        # an empty bias gradient (seen on an H200 with torch 2.11), so the network could not train on a GPU.
        if self.training:
            self.num_batches_tracked.add_(1)
        normalised = F.batch_norm(x, self.running_mean, self.running_var, None, None, self.training, self.momentum,
                                  self.eps)
        return normalised + self.bias.view(1, -1, 1, 1)


class _TransposedConvSame(nn.ConvTranspose2d):
    """TF ``conv2d_transpose(k=3, stride=2, padding="SAME")``: the full transposed convolution
    (2h + 1 outputs) without its last row and column, so output i sums the inputs j with
    2j <= i <= 2j + 2. (PyTorch's padding=1, output_padding=1 drops the first instead: one pixel off.)"""

    def __init__(self, channels: int):
        super().__init__(channels, channels, 3, stride=2, padding=0)

    def forward(self, x):
        return super().forward(x)[..., :-1, :-1]


def _norm(kind: str, channels: int) -> nn.Module:
    return CenteredBatchNorm(channels) if kind == "batch" else nn.Identity()


class _ResidualBlock(nn.Module):
    def __init__(self, width: int, norm: str):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 4, bias=False)
        self.norm1 = _norm(norm, width)
        self.act = nn.PReLU(width, init=0.0)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.norm2 = _norm(norm, width)

    def forward(self, x):
        y = self.act(self.norm1(self.conv1(F.pad(x, (1, 2, 1, 2)))))
        return x + self.norm2(self.conv2(y))


@register_model("zoomnet")
class ZoomNet(nn.Module):
    """``forward(x, wb_gains=None)``: (B, in_channels, h, w) -> (B, 3, zoom h, zoom w). As in the paper
    the network sees raw that is not white balanced: ``wb_gains`` is part of the zoom networks' common
    call and is not used here."""


    def __init__(self, scale: int = 4, in_channels: int = 4, width: int = 64, blocks: int = 16,
                 up_channels: int = 256, norm: str = "batch", output: str = "display", skip: str = "none"):
        super().__init__()
        if in_channels not in (3, 4):
            raise ConfigError(f"in_channels must be 4 (packed raw) or 3 (RGB), got {in_channels}")
        if norm not in ("batch", "none"):
            raise ConfigError(f"norm must be 'batch' or 'none', got {norm!r}")
        if output not in ("display", "linear"):
            raise ConfigError(f"output must be 'display' or 'linear', got {output!r}")
        if skip not in ("none", "bicubic"):
            raise ConfigError(f"skip must be 'none' or 'bicubic', got {skip!r}")
        if skip == "bicubic" and in_channels == 3 and output == "linear":
            raise ConfigError("skip='bicubic' adds the zoomed input to the output: an RGB (display) input needs "
                             "output='display'")
        self.zoom = 2 * scale if in_channels == 4 else scale
        stages = math.log2(self.zoom)
        if stages != int(stages):
            raise ConfigError(f"scale {scale} must be a power of two")
        self.config = dict(
            arch=self.arch,
            scale=scale,
            in_channels=in_channels,
            width=width,
            blocks=blocks,
            up_channels=up_channels,
            norm=norm,
            output=output,
            skip=skip,
        )
        self.head = nn.Sequential(nn.Conv2d(in_channels, width, 9, padding=4), nn.PReLU(width, init=0.0))
        self.body = nn.Sequential(*[_ResidualBlock(width, norm) for _ in range(blocks)])
        self.body_out = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False), _norm(norm, width))
        ups, channels = [], width
        for _ in range(int(stages)):
            ups += [nn.Conv2d(channels, up_channels, 3, padding=1),
                    _TransposedConvSame(up_channels),
                    nn.PReLU(up_channels, init=0.0)]
            channels = up_channels
        self.up = nn.Sequential(*ups)
        self.tail = nn.Conv2d(channels, 3, 9, padding=4)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        if skip == "bicubic":
            nn.init.zeros_(self.tail.weight)

    @property
    def in_channels(self) -> int:
        return self.config["in_channels"]

    @property
    def receptive_radius(self) -> int:
        """An upper bound, in input pixels, of how far an output pixel sees: head 9x9 (4), each block
        4x4 [pads 2 after] + 3x3 (3), body conv (1), each up stage's conv and transposed conv (at most
        2), the tail 9x9 at the output scale (at most 1), plus 2 for the bicubic base."""
        stages = int(math.log2(self.zoom))
        return 4 + 3 * self.config["blocks"] + 1 + 2 * stages + 3

    def forward(self, x: torch.Tensor, wb_gains: torch.Tensor | None = None) -> torch.Tensor:
        head = self.head(x)
        out = self.tail(self.up(head + self.body_out(self.body(head))))
        if self.config["skip"] == "bicubic":
            out = out + classical_zoom(x, self.config["scale"])
        return out
