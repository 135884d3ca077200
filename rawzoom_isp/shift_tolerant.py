"""The original ZLLZ shift-tolerant alignment: the target is larger than the output by ``tolerance``
pixels on each side; the integer shift (a multiple of ``stride``) with the least mean L1 wins."""
from __future__ import annotations

import torch

from .errors import ShapeError


def shift_tolerant_crop(output: torch.Tensor, target: torch.Tensor, tolerance: int, stride: int = 2):
    """Crop ``target`` (B, C, H + 2t, W + 2t) to the (B, C, H, W) window that best matches ``output``
    by mean L1, trying offsets 0, stride, ..., 2t in each direction (per image).

    Returns (cropped target, offsets (B, 2) as (dy, dx) into the target). The choice carries no
    gradient; the crop does."""
    if output.ndim != 4 or target.ndim != 4:
        raise ShapeError(
            f"expected (B, C, H, W) output and target, got {tuple(output.shape)} and {tuple(target.shape)}"
        )
    height, width = output.shape[-2:]
    if tuple(target.shape[-2:]) != (height + 2 * tolerance, width + 2 * tolerance):
        raise ShapeError(
            f"target {tuple(target.shape[-2:])} must be the output {(height, width)} plus {tolerance} px on each side"
        )
    if tolerance == 0:
        return target, torch.zeros(output.shape[0], 2, dtype=torch.long)
    offsets = range(0, 2 * tolerance + 1, stride)
    with torch.no_grad():
        errors = torch.stack([
            (target[..., dy:dy + height, dx:dx + width] - output).abs().mean(dim=(1, 2, 3))
            for dy in offsets for dx in offsets
        ], dim=1)  # (B, shifts)
        best = errors.argmin(dim=1)
    n = len(offsets)
    shifts = torch.stack([torch.tensor([offsets[int(i) // n], offsets[int(i) % n]]) for i in best])
    cropped = torch.stack([
        target[b, :, dy:dy + height, dx:dx + width] for b, (dy, dx) in enumerate(shifts.tolist())
    ])
    return cropped, shifts
