"""A raw's levels: digital numbers to the normalised signal, (x - black) / (white - black)."""
from __future__ import annotations

import torch

from ..errors import ShapeError


def check_even_mosaic(x: torch.Tensor, what: str) -> None:
    """ShapeError unless ``x`` is a mosaic (..., H, W) of whole 2x2 CFA tiles."""
    if x.ndim < 2 or x.shape[-1] % 2 or x.shape[-2] % 2:
        raise ShapeError(f"{what} needs a Bayer mosaic (..., 1, H, W) with even H and W, got {tuple(x.shape)}")


def subtract_black_level(x: torch.Tensor, black_level, white_level, clip: bool = True) -> torch.Tensor:
    """(x - black) / (white - black), black tiled from its 2x2 CFA tile; clipped to [0, 1] if asked.

    x: (..., 1, H, W) DN; black_level: a scalar, (2, 2) or (B, 2, 2); white_level: scalar or (B,)."""
    check_even_mosaic(x, "subtract_black_level")
    height, width = x.shape[-2:]
    tiles = x.reshape(*x.shape[:-2], height // 2, 2, width // 2, 2)  # (..., 1, h, 2, w, 2)
    black = torch.as_tensor(black_level, dtype=x.dtype, device=x.device)
    black = black.expand(2, 2) if black.ndim == 0 else black
    black = black.reshape(*black.shape[:-2], 1, 1, 2, 1, 2)  # (B?, 1, 1, 2, 1, 2)
    white = torch.as_tensor(white_level, dtype=x.dtype, device=x.device)
    white = white.reshape(white.shape + (1,) * 5)
    out = ((tiles - black) / (white - black)).reshape(x.shape)
    return out.clamp(0.0, 1.0) if clip else out
