"""The paper's training loss: CoBi_RGB on n x n RGB patches + lambda * CoBi_VGG."""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..align import shift_tolerant_crop
from .cobi import cobi
from .vgg import VGG19Features

PAPER_PATCH_SIZE = {4: 10, 8: 15}
PAPER_VGG_LAYERS = {"relu1_2": 1.0, "relu2_2": 1.0, "relu3_2": 0.5}


def rgb_patches(image: torch.Tensor, size: int, stride: int = 1) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, 3 n^2, H', W') patch vectors x 255 (the original's scale),
    valid positions only (no zero-padded patches)."""
    batch, _, height, width = image.shape
    patches = F.unfold(image * 255.0, kernel_size=size, stride=stride)
    return patches.reshape(batch, -1, (height - size) // stride + 1, (width - size) // stride + 1)


class CoBiLoss(nn.Module):
    """CoBi_RGB(n x n patches, L2) + ``vgg_weight`` * sum_l w_l CoBi_VGG(layer l, cosine).

    ``scale`` picks the paper's patch size (n = 10 for 4x, 15 for 8x) unless ``patch_size`` is given;
    ``vgg_weight`` is the paper's lambda (default 0.2: the original code weights the terms 1 : 5 as
    VGG : RGB, i.e. RGB + 0.2 VGG); ``tolerance`` > 0 expects a target larger by that many pixels on
    each side and crops it at the best integer shift (L1, step ``shift_stride``) first, as the
    original training did. Remaining keyword arguments (h, eps, spatial_weight, spatial, sample,
    backend, memory_budget) go to ``rz.loss.cobi`` for both terms."""

    def __init__(self, scale: int = 4, patch_size: int | None = None, patch_stride: int = 1, rgb_weight: float = 1.0,
                 vgg_weight: float = 0.2, vgg_layers: Mapping[str, float] | None = None, vgg_pooling: str = "avg",
                 vgg_weights: str | None = None, features: VGG19Features | None = None, tolerance: int = 0,
                 shift_stride: int = 2, **cobi_options):
        super().__init__()
        if patch_size is None and scale not in PAPER_PATCH_SIZE:
            raise ValueError(f"no paper patch size for scale {scale}; pass patch_size")
        self.patch_size = patch_size or PAPER_PATCH_SIZE[scale]
        self.patch_stride = patch_stride
        self.rgb_weight, self.vgg_weight = rgb_weight, vgg_weight
        self.vgg_layers = dict(PAPER_VGG_LAYERS if vgg_layers is None else vgg_layers)
        self.tolerance, self.shift_stride = tolerance, shift_stride
        self.cobi_options = cobi_options
        self.features = None
        if vgg_weight:
            self.features = features or VGG19Features(tuple(self.vgg_layers), pooling=vgg_pooling, weights=vgg_weights)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """output, target: (B, 3, H, W) RGB in [0, 1] (target + 2 * tolerance when tolerant)."""
        if self.tolerance:
            target, _ = shift_tolerant_crop(output, target, self.tolerance, self.shift_stride)
        loss = output.new_zeros(())
        if self.rgb_weight:
            patches = (rgb_patches(output, self.patch_size, self.patch_stride),
                       rgb_patches(target, self.patch_size, self.patch_stride))
            loss = loss + self.rgb_weight * cobi(*patches, distance="l2", **self.cobi_options)
        if self.vgg_weight:
            out_features, target_features = self.features(output), self.features(target)
            for layer, weight in self.vgg_layers.items():
                term = cobi(out_features[layer], target_features[layer], distance="cosine", **self.cobi_options)
                loss = loss + self.vgg_weight * weight * term
        return loss
