"""The naive CoBi backend: every N x M matrix materialised, autograd through plain torch ops.
The ground truth the other backends are tested against; small sizes only."""
from __future__ import annotations

import torch

from .options import BLEND_GRID_SCALE


def _exact_sq_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist") ** 2


def _contextual_similarity(d: torch.Tensor, h: float, eps: float) -> torch.Tensor:
    return torch.softmax((1 - d / (d.min(dim=1, keepdim=True).values + eps)) / h, dim=1)


def naive_cobi(targets, outputs, pos_tgt, pos_out, *, kind, distance, h, eps, spatial_weight, spatial):
    """(B, M, C) targets and (B, N, C) outputs, prepared by ``cobi.prepare`` -> (B,) losses."""
    losses = []
    for tgt, out in zip(targets, outputs):
        d = (1 - tgt @ out.T) / 2 if distance == "cosine" else _exact_sq_dist(tgt, out)
        if spatial == "distance":
            d = d + spatial_weight * torch.cdist(pos_tgt, pos_out, compute_mode="donot_use_mm_for_euclid_dist")
        if kind == "nearest":
            losses.append(d.min(dim=0).values.mean())
            continue
        cx = _contextual_similarity(d, h, eps)
        if spatial == "blend":
            grid = _exact_sq_dist(BLEND_GRID_SCALE * pos_tgt, BLEND_GRID_SCALE * pos_out)
            cx = (1 - spatial_weight) * cx + spatial_weight * _contextual_similarity(grid, h, eps)
        losses.append(-torch.log(cx.max(dim=0).values.mean()))
    return torch.stack(losses)
