"""Bayer CFA conventions, in one place.

A pattern is named by its top-left 2x2 tile read row-major ("RGGB", "BGGR", "GRBG", "GBRG").
The canonical packed order is [R, Gr, Gb, B]: Gr is the green in the red row, Gb the green in the
blue row. ``PACK_INDEX[p][k]`` is the position (0..3, row-major inside the 2x2 tile, i.e. the
channel order of ``F.pixel_unshuffle(x, 2)``) that holds packed channel k.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError

PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
NETWORK_CFA = "RGGB"  # the pattern every zoom network sees: ``unify_flips`` brings any Bayer mosaic to it

PACK_INDEX = {
    "RGGB": (0, 1, 2, 3),
    "BGGR": (3, 2, 1, 0),
    "GRBG": (1, 0, 3, 2),
    "GBRG": (2, 3, 0, 1),
}

# DNG CFAPattern codes: 0 = red, 1 = green, 2 = blue.
_DNG_CODE = {"R": 0, "G": 1, "B": 2}


def check_pattern(cfa: str) -> str:
    """Return ``cfa`` upper-cased if it is one of the four Bayer patterns, else raise ValueError."""
    name = str(cfa).upper()
    if name not in PATTERNS:
        raise ConfigError(f"unknown CFA pattern {cfa!r}; expected one of {', '.join(PATTERNS)}")
    return name


def pattern_from_rawpy(raw_pattern: np.ndarray, color_desc: bytes | str) -> str | None:
    """Decode rawpy's ``raw_pattern`` (colour indices into ``color_desc``) into a pattern name.

    Returns None when the tile is not a 2x2 Bayer tile of R, G, G, B (X-Trans, CYGM, ...).
    """
    desc = color_desc.decode() if isinstance(color_desc, bytes) else str(color_desc)
    tile = np.asarray(raw_pattern)
    if tile.shape != (2, 2):
        return None
    try:
        letters = "".join(desc[int(i)] for i in tile.flat)
    except IndexError:
        return None
    return letters if letters in PATTERNS else None


def dng_cfa_codes(cfa: str) -> bytes:
    """The 4-byte DNG CFAPattern value of a pattern (R=0, G=1, B=2)."""
    return bytes(_DNG_CODE[c] for c in check_pattern(cfa))


def shifted_pattern(cfa: str, top: int, left: int) -> str:
    """The pattern of the window of a ``cfa`` mosaic that starts at row ``top``, column ``left``."""
    name = check_pattern(cfa)
    dy, dx = top % 2, left % 2
    return "".join(name[((r + dy) % 2) * 2 + (c + dx) % 2] for r in range(2) for c in range(2))


def transform_pattern(cfa: str, flip_v: bool = False, flip_h: bool = False, transpose: bool = False) -> str:
    """The pattern of a mosaic with even height and width after ``x.transpose(-1, -2)`` (if
    ``transpose``), then ``flip(-2)`` (``flip_v``) and ``flip(-1)`` (``flip_h``)."""
    tile = np.array(list(check_pattern(cfa))).reshape(2, 2)
    if transpose:
        tile = tile.T
    if flip_v:
        tile = tile[::-1]
    if flip_h:
        tile = tile[:, ::-1]
    return "".join(tile.ravel())


def unify_flips(cfa: str) -> tuple[int, ...]:
    """The dims (-2 and/or -1) to flip a mosaic (or its packed planes) with even height and width in
    ``cfa`` so that it becomes ``NETWORK_CFA`` (RGGB): R moves to the top-left corner of every 2x2 tile. A flip maps
    2x2 tiles onto 2x2 tiles, so it changes no sample's neighbourhood, unlike cropping or padding a
    row or column (Liu et al. 2019, "Bayer pattern unification"); flipping the result back is exact."""
    dy, dx = divmod(check_pattern(cfa).index("R"), 2)
    return tuple(dim for dim, odd in ((-2, dy), (-1, dx)) if odd)
