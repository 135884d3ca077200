"""Bayer CFA conventions, in one place: the ``Cfa`` value.

A pattern is named by its top-left 2x2 tile read row-major ("RGGB", "BGGR", "GRBG", "GBRG").
The canonical packed order is [R, Gr, Gb, B]: Gr is the green in the red row, Gb the green in the
blue row. ``PACK_INDEX[p][k]`` is the position (0..3, row-major inside the 2x2 tile, i.e. the
channel order of ``F.pixel_unshuffle(x, 2)``) that holds packed channel k.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError

PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")

PACK_INDEX = {
    "RGGB": (0, 1, 2, 3),
    "BGGR": (3, 2, 1, 0),
    "GRBG": (1, 0, 3, 2),
    "GBRG": (2, 3, 0, 1),
}

# DNG CFAPattern codes: 0 = red, 1 = green, 2 = blue.
_DNG_CODE = {"R": 0, "G": 1, "B": 2}


class Cfa(str):
    """A Bayer pattern, checked once: ``Cfa("rggb") == "RGGB"``; a ``Cfa`` passes through ``Cfa()``
    unchecked. It is the pattern's name (a str: compare, print, store it as one) and knows its packed
    order, how it moves under a crop or a flip, and the flips that bring it to ``NETWORK_CFA``.
    ConfigError for anything but the four Bayer patterns."""

    __slots__ = ()

    def __new__(cls, pattern: str) -> Cfa:
        if type(pattern) is cls:
            return pattern
        name = str(pattern).upper()
        if name not in PATTERNS:
            raise ConfigError(f"unknown CFA pattern {pattern!r}; expected one of {', '.join(PATTERNS)}")
        return super().__new__(cls, name)

    @classmethod
    def from_rawpy(cls, raw_pattern: np.ndarray, color_desc: bytes | str) -> Cfa | None:
        """Decode rawpy's ``raw_pattern`` (colour indices into ``color_desc``); None when the tile is
        not a 2x2 Bayer tile of R, G, G, B (X-Trans, CYGM, ...)."""
        desc = color_desc.decode() if isinstance(color_desc, bytes) else str(color_desc)
        tile = np.asarray(raw_pattern)
        if tile.shape != (2, 2):
            return None
        try:
            letters = "".join(desc[int(i)] for i in tile.flat)
        except IndexError:
            return None
        return cls(letters) if letters in PATTERNS else None

    @property
    def pack_index(self) -> tuple[int, int, int, int]:
        """The tile position (row-major) of each packed channel [R, Gr, Gb, B]."""
        return PACK_INDEX[self]

    @property
    def dng_codes(self) -> bytes:
        """The 4-byte DNG CFAPattern value (R = 0, G = 1, B = 2)."""
        return bytes(_DNG_CODE[c] for c in self)

    def shifted(self, top: int, left: int) -> Cfa:
        """The pattern of the window of this mosaic that starts at row ``top``, column ``left``."""
        dy, dx = top % 2, left % 2
        return Cfa("".join(self[((r + dy) % 2) * 2 + (c + dx) % 2] for r in range(2) for c in range(2)))

    def transformed(self, flip_v: bool = False, flip_h: bool = False, transpose: bool = False) -> Cfa:
        """The pattern of this mosaic (even height and width) after ``x.transpose(-1, -2)`` (if
        ``transpose``), then ``flip(-2)`` (``flip_v``) and ``flip(-1)`` (``flip_h``)."""
        tile = np.array(list(self)).reshape(2, 2)
        if transpose:
            tile = tile.T
        if flip_v:
            tile = tile[::-1]
        if flip_h:
            tile = tile[:, ::-1]
        return Cfa("".join(tile.ravel()))

    def unify_flips(self) -> tuple[int, ...]:
        """The dims (-2 and/or -1) to flip a mosaic (or its packed planes) with even height and width
        in this pattern so that it becomes ``NETWORK_CFA`` (RGGB): R moves to the top-left corner of
        every 2x2 tile. A flip maps 2x2 tiles onto 2x2 tiles, so it changes no sample's neighbourhood,
        unlike cropping or padding a row or column (Liu et al. 2019, "Bayer pattern unification");
        flipping the result back is exact."""
        dy, dx = divmod(self.index("R"), 2)
        return tuple(dim for dim, odd in ((-2, dy), (-1, dx)) if odd)


NETWORK_CFA = Cfa("RGGB")  # the pattern every zoom network sees: ``Cfa.unify_flips`` brings any Bayer mosaic to it
