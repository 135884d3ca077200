"""Held-out test cases: an LR raw, exactly what a camera would hand the ISP, and its HR target.

Emulated cases (``emulated_cases``): from each held-out full-resolution raw, ``crops`` textured
windows (the most textured of a grid of non-overlapping windows, measured on the target), each at
every CFA phase asked for (the window moved by 0 or 1 px down and right: for an RGGB camera RGGB,
GRBG, GBRG, BGGR), captured by an LR sensor N x coarser (``rz.synth.sensor``) in the ``geometry``
asked for: "centred" (a native sensor's: sites centred on their N x N blocks of the raw's
``demosaic`` to linear RGB, Menon by default, a demosaic no training config uses) or "footprint"
(the first emulation), with a native capture's noise (the file's NoiseProfile or an estimate) or
none, quantised to the file's digital numbers. Each LR raw states the noise its capture added (its
NoiseProfile, ``HighRes.added_noise`` times the native model; zero without added noise), for networks
told the noise: the noise of the LR that the target does not share, as a camera's NoiseProfile states
a real capture's. (What an LR site keeps of the HR's own noise is in the target too: a network told
to remove it would be scored for removing the target's noise.) The
target is LibRaw's AHD render of the full-resolution raw, cut to the window. The four phases of a
window are one image: statistics average them first (``window_key``). SR-RAW pairs become cases
through ``case_from_pair``.
"""
from __future__ import annotations

import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import torch

from ..data.emulated import high_res, noise_model, reference_render
from ..data.pairs import ZoomPair
from ..data.srraw import SRRawDataset
from ..errors import ConfigError, DataError
from ..isp import functional as F
from ..raw.image import RawImage, colour_noise
from ..raw.reader import read_raw
from ..synth.sensor import GEOMETRIES, Degradation

PHASE_OFFSETS = ((0, 0), (0, 1), (1, 0), (1, 1))


@dataclass
class Case:
    """``low``: the LR raw (digital numbers, its own CFA and metadata); ``target``: (3, N h, N w)
    display sRGB aligned with it; ``info``: where it came from (source, window, phase, noise)."""

    low: RawImage
    target: torch.Tensor
    info: dict = field(default_factory=dict)


def window_grid(height: int, width: int, size: int, margin: int = 2) -> list[tuple[int, int]]:
    """The non-overlapping ``size`` x ``size`` windows on a grid inside height x width, ``margin`` px
    from the edges: their (top, left), even."""
    start = margin + (margin % 2)
    return [(y, x) for y in range(start, height - size - margin + 1, size)
            for x in range(start, width - size - margin + 1, size)]


def textured_windows(image: torch.Tensor, size: int, count: int, margin: int = 2) -> list[tuple[int, int]]:
    """The ``count`` most textured (mean absolute gradient of the grey image) of the ``window_grid``
    windows of ``image`` (3, H, W); positions (top, left), most textured first."""
    grey = image.float().mean(0)
    gradient = (grey[1:, :-1] - grey[:-1, :-1]).abs() + (grey[:-1, 1:] - grey[:-1, :-1]).abs()
    grid = window_grid(image.shape[1], image.shape[2], size, margin)
    _check_fit(len(grid), count, size, image.shape[1:])
    scored = sorted(((float(gradient[y:y + size, x:x + size].mean()), y, x) for y, x in grid), reverse=True)
    return [(y, x) for _, y, x in scored[:count]]


def _check_fit(available: int, count: int, size: int, shape) -> None:
    if available < count:
        raise DataError(f"{count} windows of {size} px do not fit in {shape[0]}x{shape[1]} (at most {available})")


def _crop_shares(paths: Sequence[str], crops: int) -> list[int]:
    """How many windows each raw gives: split evenly, the first raws taking the remainder."""
    return [crops // len(paths) + (i < crops % len(paths)) for i in range(len(paths))]


def check_emulated_cases(paths: Sequence[str], size: int = 512, crops: int = 24) -> None:
    """DataError now, before anything trains, if ``emulated_cases`` would not find its windows."""
    for path, count in zip(paths, _crop_shares(paths, crops)):
        shape = read_raw(path).shape
        _check_fit(len(window_grid(*shape, size)), count, size, shape)


def emulated_cases(paths: Sequence[str], scale: int = 4, size: int = 512, crops: int = 24,
                   phases: Sequence[tuple[int, int]] = PHASE_OFFSETS, noise: bool = True,
                   seed: int = 0, geometry: str = "centred", demosaic: str = "menon2007") -> Iterator[Case]:
    """``crops`` windows per raw in ``paths`` (split evenly, the first raws taking the remainder),
    each at every phase offset in ``phases``; see the module docstring."""
    unit = 2 * scale
    if size % unit:
        raise ConfigError(f"window size {size} must be a multiple of {unit} at {scale}x")
    if geometry not in GEOMETRIES:
        raise ConfigError(f"geometry must be one of {', '.join(GEOMETRIES)}, got {geometry!r}")
    degradation = Degradation(geometry, noise=1.0 if noise else 0.0)
    for path, count in zip(paths, _crop_shares(paths, crops)):
        raw = read_raw(path)
        target = reference_render(raw, "libraw")
        model = noise_model(raw) if noise else None
        source = high_res(raw, demosaic if geometry == "centred" else None)
        stated = torch.zeros(3, 2) if model is None else colour_noise(model) * source.added_noise(scale, degradation)
        for number, (top, left) in enumerate(textured_windows(target, size, count)):
            for dy, dx in phases:
                y, x = top + dy, left + dx
                key = f"{seed}/{os.path.basename(path)}/{number}/{dy}{dx}".encode()
                generator = torch.Generator().manual_seed(zlib.crc32(key))
                low, cfa = source.capture(y, x, (size, size), scale, degradation, model, generator)
                window = replace(raw.crop(y, x, 2, 2), noise_profile=stated)  # its black-level tile and CFA
                yield Case(window.with_mosaic(low), target[:, y:y + size, x:x + size],
                           {"source": os.path.basename(path), "window": number, "top": y, "left": x, "cfa": cfa,
                            "geometry": geometry, "noise": "native" if noise else "none"})


def window_key(info: dict, index: int) -> tuple:
    """The independent unit a case belongs to: its (source, window) (the phases of a window are one
    image), or the case itself when it has no window (SR-RAW pairs)."""
    return (info.get("source"), info["window"]) if "window" in info else ("case", index)


def phase_offsets(which: str) -> tuple[tuple[int, int], ...]:
    """The window offsets of ``which`` phases: "all" (every CFA phase) or "native" (the camera's own)."""
    if which not in ("all", "native"):
        raise ConfigError(f"phases must be 'all' or 'native', got {which!r}")
    return PHASE_OFFSETS if which == "all" else PHASE_OFFSETS[:1]


def srraw_cases(root: str, scale: int, split: str = "test", cache_dir: str | None = None) -> Iterator[Case]:
    """The SR-RAW pairs of ``split`` under ``root`` as cases, whole images (``case_from_pair``)."""
    pairs = SRRawDataset(root, scale=scale, split=split, patch=None, augment=False, target_margin=0,
                         cache_dir=cache_dir)
    return (case_from_pair(pairs.load(i, pairs.generator(i, 0))) for i in range(len(pairs)))


def case_from_pair(pair: ZoomPair) -> Case:
    """A pair from a dataset (e.g. SR-RAW, whole images) as a case: the normalised mosaic as 16-bit
    digital numbers, the target with its white balance."""
    target = pair.target.float()
    if not pair.info.get("target_white_balanced", True):
        target = F.apply_white_balance(target, pair.wb_gains, gamma=F.WB_GAMMA, clip=True)
    like = RawImage(bayer=torch.zeros(2, 2), cfa=pair.cfa, black_level=0, white_level=65535, wb_gains=pair.wb_gains,
                    cam_to_srgb=pair.cam_to_srgb, wb_source="camera")
    info = {key: value.tolist() if isinstance(value, torch.Tensor) else value for key, value in pair.info.items()}
    return Case(like.with_mosaic(pair.mosaic.float()), target, info)
