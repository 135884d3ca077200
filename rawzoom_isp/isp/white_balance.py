"""A raw's white balance, as a photographer picks it: the camera's, daylight, grey world or given
gains (``with_white_balance``)."""
from __future__ import annotations

import dataclasses

import torch

from ..errors import ConfigError, DataError
from ..raw.image import RawImage
from . import functional as F

WHITE_BALANCES = ("camera", "daylight", "auto")
AUTO_RANGE = (0.01, 0.95)  # grey world over the sites neither darker nor brighter than these


def with_white_balance(raw: RawImage, choice: str) -> RawImage:
    """``raw`` with the white balance ``choice`` names, its ``wb_source`` saying which: "camera" (as
    shot), "daylight" (the camera's daylight gains, when LibRaw knows them), "auto" (``grey_world_gains``
    over the sites neither dark nor near clipping, ``AUTO_RANGE``) or three positive gains "R,G,B"
    (normalised to G = 1)."""
    if choice == "camera":
        return raw
    if choice == "daylight":
        if raw.daylight_wb_gains is None:
            raise DataError(f"{raw.path}: LibRaw knows no daylight white balance for this camera; use camera, auto "
                            "or R,G,B gains")
        return dataclasses.replace(raw, wb_gains=raw.daylight_wb_gains, wb_source="daylight")
    if choice == "auto":
        normalised = raw.normalised()[None]
        gains = F.grey_world_gains(F.pack_bayer(normalised, raw.cfa)[0], *AUTO_RANGE)
        return dataclasses.replace(raw, wb_gains=gains, wb_source="auto")
    try:
        gains = torch.tensor([float(v) for v in str(choice).split(",")])
    except ValueError:
        gains = torch.tensor([])
    if gains.shape != (3,) or not bool(torch.isfinite(gains).all()) or not bool((gains > 0).all()):
        raise ConfigError(f"white balance {choice}: give {', '.join(WHITE_BALANCES)} or three positive gains R,G,B")
    return dataclasses.replace(raw, wb_gains=gains / gains[1], wb_source="given")
