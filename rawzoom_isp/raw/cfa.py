"""Bayer CFA conventions, in one place.

A pattern is named by its top-left 2x2 tile read row-major ("RGGB", "BGGR", "GRBG", "GBRG").
The canonical packed order is [R, Gr, Gb, B]: Gr is the green in the red row, Gb the green in the
blue row. ``PACK_INDEX[p][k]`` is the position (0..3, row-major inside the 2x2 tile, i.e. the
channel order of ``F.pixel_unshuffle(x, 2)``) that holds packed channel k.
"""
from __future__ import annotations

import numpy as np

PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")

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
        raise ValueError(f"unknown CFA pattern {cfa!r}; expected one of {', '.join(PATTERNS)}")
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


def position_of(cfa: str, colour: str) -> list[tuple[int, int]]:
    """(row, col) positions inside the 2x2 tile where ``colour`` ('R', 'G' or 'B') sits."""
    name = check_pattern(cfa)
    return [divmod(i, 2) for i, c in enumerate(name) if c == colour]


def colour_index_map(cfa: str) -> np.ndarray:
    """2x2 array of colour indices (0 = R, 1 = G, 2 = B) for the pattern."""
    return np.array([_DNG_CODE[c] for c in check_pattern(cfa)]).reshape(2, 2)
