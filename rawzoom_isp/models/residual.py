"""What every zoom network shares: the classical zoom it is residual over, and white balance around
it. Packed raw is in RGGB geometry here (``LearnedZoom`` unifies other CFAs before the network)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..isp.functional import apply_white_balance, demosaic_bilinear, unpack_bayer
from ..raw.cfa import NETWORK_CFA


def classical_zoom(x: torch.Tensor, scale: int) -> torch.Tensor:
    """The residual base: packed [R, Gr, Gb, B] (RGGB) -> bilinear demosaic -> bicubic ``scale`` x;
    or RGB -> bicubic ``scale`` x. Either way ``scale`` x the mosaic, not clipped."""
    if x.shape[1] == 4:
        x = demosaic_bilinear(unpack_bayer(x, NETWORK_CFA), NETWORK_CFA)
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


def balance(x: torch.Tensor, wb_gains: torch.Tensor | None) -> torch.Tensor:
    """Packed raw times its white-balance gains (B, 3) (none given: unchanged)."""
    return x if wb_gains is None else apply_white_balance(x, wb_gains.to(x))


def unbalance(rgb: torch.Tensor, wb_gains: torch.Tensor | None) -> torch.Tensor:
    """Linear RGB divided by the white-balance gains (B, 3): back to the camera's unbalanced RGB."""
    return rgb if wb_gains is None else apply_white_balance(rgb, 1.0 / wb_gains.to(rgb))
