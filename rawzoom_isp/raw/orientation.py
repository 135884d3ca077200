"""EXIF orientation: stored pixels to display and display boxes back to the stored mosaic."""
from __future__ import annotations

import torch

from ..errors import ConfigError


def display_box_to_stored(box: tuple[int, int, int, int], orientation: int, stored_shape: tuple[int, int]):
    """A box (top, left, height, width) in display coordinates (after ``apply_orientation``) as the
    box of the stored image that shows it."""
    top, left, height, width = box
    rows, cols = stored_shape
    if orientation not in range(1, 9):
        raise ConfigError(f"EXIF orientation must be 1..8, got {orientation}")
    if orientation >= 5:  # transposed: display (r, c) shows stored rows from c, columns from r
        top, left, height, width = left, top, width, height
        flip_rows, flip_cols = orientation in (6, 7), orientation in (7, 8)
    else:
        flip_rows, flip_cols = orientation in (3, 4), orientation in (2, 3)
    if flip_rows:
        top = rows - top - height
    if flip_cols:
        left = cols - left - width
    return top, left, height, width


def apply_orientation(x: torch.Tensor, orientation: int) -> torch.Tensor:
    """Turn (..., H, W) stored pixels into display orientation for an EXIF orientation code 1..8."""
    t = x.transpose(-1, -2)
    views = {
        1: lambda: x,
        2: lambda: x.flip(-1),
        3: lambda: x.flip(-1, -2),
        4: lambda: x.flip(-2),
        5: lambda: t,
        6: lambda: t.flip(-1),
        7: lambda: t.flip(-1, -2),
        8: lambda: t.flip(-2),
    }
    if orientation not in views:
        raise ConfigError(f"EXIF orientation must be 1..8, got {orientation}")
    return views[orientation]()
