"""The paper's training loss: CoBi_RGB on n x n RGB patches + lambda * CoBi_VGG, with two presets.

``preset="paper"`` (the default) is the paper's Eq. 2 as written: the spatial distance added to the
feature distance (``spatial="distance"``, w_s = 0.1), patches at valid positions only, CoBi_RGB +
0.2 CoBi_VGG, n = 10 at 4x and 15 at 8x. ``preset="zlz-code"`` is what the authors' training code
computes (zoom-learn-zoom, train.py at 14b9e5f): the spatial term blended into the CX matrix
(``spatial="blend"``, w_s = 0.5), TF "SAME" zero-padded 5 x 5 RGB patches, and 1 x CoBi_VGG +
5 x CoBi_RGB. Any argument given explicitly overrides the preset. Both centre the cosine features per
image (the original centres over the whole batch; per image keeps each sample's loss independent of
what it is batched with).
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, ShapeError
from ..shift_tolerant import shift_tolerant_crop
from .cobi import cobi
from .vgg import VGG19Features

PAPER_PATCH_SIZE = {4: 10, 8: 15}
PAPER_VGG_LAYERS = {"relu1_2": 1.0, "relu2_2": 1.0, "relu3_2": 0.5}
PRESETS = {
    "paper": dict(patch_padding="valid", spatial="distance", spatial_weight=0.1, rgb_weight=1.0, vgg_weight=0.2),
    "zlz-code": dict(patch_padding="same", spatial="blend", spatial_weight=0.5, rgb_weight=5.0, vgg_weight=1.0,
                     patch_size=5),
}


def rgb_patches(image: torch.Tensor, size: int, stride: int = 1, padding: str = "valid") -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, 3 n^2, H', W') patch vectors x 255 (the original's scale).
    ``padding="valid"``: whole patches only; ``"same"``: TF's SAME, zero padding of (n - 1) // 2
    before and the rest after, one patch per pixel (for ``stride`` 1)."""
    if padding == "same":
        before = (size - 1) // 2
        image = F.pad(image, (before, size - 1 - before, before, size - 1 - before))
    elif padding != "valid":
        raise ConfigError(f"patch padding must be 'valid' or 'same', got {padding!r}")
    batch, _, height, width = image.shape
    if height < size or width < size:
        raise ShapeError(f"an image of {height}x{width} is smaller than the {size}x{size} RGB patches of CoBi_RGB; "
                         "use larger crops or a smaller patch_size")
    patches = F.unfold(image * 255.0, kernel_size=size, stride=stride)
    return patches.reshape(batch, -1, (height - size) // stride + 1, (width - size) // stride + 1)


class CoBiLoss(nn.Module):
    """``rgb_weight`` * CoBi_RGB(n x n patches, L2) + ``vgg_weight`` * sum_l w_l CoBi_VGG(layer l, cosine).

    ``preset`` ("paper" or "zlz-code", see the module docstring) sets patch_size, patch_padding,
    spatial, spatial_weight, rgb_weight and vgg_weight unless given; "paper" picks n from ``scale``
    (10 for 4x, 15 for 8x). ``tolerance`` > 0 expects a target larger by that many pixels on each side
    and crops it at the best integer shift (L1, step ``shift_stride``) first, as the original training
    did. Remaining keyword arguments (h, eps, sample, backend, memory_budget) go to ``rz.loss.cobi``
    for both terms."""

    def __init__(
        self,
        scale: int = 4,
        preset: str = "paper",
        patch_size: int | None = None,
        patch_stride: int = 1,
        patch_padding: str | None = None,
        rgb_weight: float | None = None,
        vgg_weight: float | None = None,
        spatial: str | None = "preset",
        spatial_weight: float | None = None,
        vgg_layers: Mapping[str, float] | None = None,
        vgg_pooling: str = "avg",
        vgg_weights: str | None = None,
        features: VGG19Features | None = None,
        tolerance: int = 0,
        shift_stride: int = 2,
        **cobi_options,
    ):
        super().__init__()
        if preset not in PRESETS:
            raise ConfigError(f"CoBiLoss preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        chosen = dict(PRESETS[preset])
        given = dict(patch_size=patch_size, patch_padding=patch_padding, rgb_weight=rgb_weight, vgg_weight=vgg_weight,
                     spatial_weight=spatial_weight)
        chosen.update({k: v for k, v in given.items() if v is not None})
        if spatial != "preset":
            chosen["spatial"] = spatial
        if "patch_size" not in chosen and scale not in PAPER_PATCH_SIZE:
            raise ConfigError(f"no paper patch size for scale {scale}; pass patch_size")
        self.preset = preset
        self.patch_size = chosen.get("patch_size") or PAPER_PATCH_SIZE[scale]
        self.patch_stride, self.patch_padding = patch_stride, chosen["patch_padding"]
        self.rgb_weight, self.vgg_weight = chosen["rgb_weight"], chosen["vgg_weight"]
        self.vgg_layers = dict(PAPER_VGG_LAYERS if vgg_layers is None else vgg_layers)
        self.tolerance, self.shift_stride = tolerance, shift_stride
        self.cobi_options = dict(cobi_options, spatial=chosen["spatial"], spatial_weight=chosen["spatial_weight"])
        self.features = None
        if self.vgg_weight:
            self.features = features or VGG19Features(tuple(self.vgg_layers), pooling=vgg_pooling, weights=vgg_weights)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """output, target: (B, 3, H, W) RGB in [0, 1] (target + 2 * tolerance when tolerant)."""
        if self.tolerance:
            target, _ = shift_tolerant_crop(output, target, self.tolerance, self.shift_stride)
        loss = output.new_zeros(())
        if self.rgb_weight:
            patches = (rgb_patches(output, self.patch_size, self.patch_stride, self.patch_padding),
                       rgb_patches(target, self.patch_size, self.patch_stride, self.patch_padding))
            loss = loss + self.rgb_weight * cobi(*patches, distance="l2", **self.cobi_options)
        if self.vgg_weight:
            out_features, target_features = self.features(output), self.features(target)
            for layer, weight in self.vgg_layers.items():
                term = cobi(out_features[layer], target_features[layer], distance="cosine", **self.cobi_options)
                loss = loss + self.vgg_weight * weight * term
        return loss
