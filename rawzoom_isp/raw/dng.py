"""DNG writers that LibRaw (rawpy) and raw editors read: ``write_dng`` for a Bayer mosaic (read back
exactly), ``write_linear_dng`` for demosaiced linear camera RGB (a "linear DNG", as Adobe's converter
writes: the editor still applies white balance, colour matrix and tone)."""
from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from ..atomic import atomic_path
from ..color import xyz_to_cam_from_cam_to_srgb
from ..errors import DataError, RawShapeError
from .image import RawImage

if TYPE_CHECKING:
    import torch

_RATIONAL_DEN = 1_000_000
_D65 = 21  # DNG CalibrationIlluminant code
_LIBRAW_MIN_SIZE = 22  # dcraw/LibRaw treat smaller images as "not raw"


def _rationals(values, den: int = _RATIONAL_DEN) -> list[int]:
    return [x for v in np.ravel(values) for x in (int(round(float(v) * den)), den)]


def _camera_tags(raw: RawImage, orientation: int, baseline_exposure: float | None = None) -> list[tuple]:
    """The DNG tags every file of ours carries: version, white balance, colour matrix, camera names,
    orientation, and the baseline exposure when given."""
    tags = [
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50728, "2I", 3, _rationals(1.0 / raw.wb_gains.numpy()), True),  # AsShotNeutral
        (274, "H", 1, int(orientation), True),
    ]
    if raw.cam_to_srgb is not None:
        xyz_to_cam = xyz_to_cam_from_cam_to_srgb(raw.cam_to_srgb.numpy())
        tags += [(50721, "2i", 9, _rationals(xyz_to_cam, 10000), True), (50778, "H", 1, _D65, True)]
    if raw.make:
        tags.append((271, "s", 0, raw.make, True))
    if raw.model:
        tags += [(272, "s", 0, raw.model, True), (50708, "s", 0, f"{raw.make or ''} {raw.model}".strip(), True)]
    else:
        tags.append((50708, "s", 0, "rawzoom_isp", True))  # UniqueCameraModel is required
    if baseline_exposure is not None:
        tags.append((50730, "2i", 1, _rationals([baseline_exposure], 1000), True))
    return tags


def write_linear_dng(
    path: str | os.PathLike, linear: torch.Tensor, raw: RawImage, orientation: int | None = None,
    overwrite: bool = True,
) -> None:
    """Write linear camera RGB (3, H, W) in [0, 1], not white balanced (what ``learned_zoom`` and
    ``demosaic`` give), as a linear DNG: 16-bit LinearRaw samples, black 0, white 65535, with
    ``raw``'s white balance (AsShotNeutral), colour matrix, camera names and orientation (default:
    the raw's). LibRaw renders it as it renders the raw; values above 1 are clipped."""
    data = linear.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    if data.ndim != 3 or data.shape[2] != 3:
        raise RawShapeError(f"{path}: a linear DNG holds RGB (3, H, W), got {tuple(linear.shape)}")
    height, width = data.shape[:2]
    if min(height, width) < _LIBRAW_MIN_SIZE:
        raise RawShapeError(f"{path}: LibRaw ignores images smaller than {_LIBRAW_MIN_SIZE} px, got {height}x{width}")
    tags = [
        (50714, "I", 3, (0, 0, 0), True),  # BlackLevel per sample
        (50717, "I", 3, (65535, 65535, 65535), True),  # WhiteLevel per sample
        *_camera_tags(raw, raw.orientation if orientation is None else orientation),
    ]
    import tifffile

    with atomic_path(path, overwrite) as tmp:
        tifffile.imwrite(tmp, np.round(data * 65535).astype(np.uint16), photometric=34892, planarconfig="contig",
                         subfiletype=0, extratags=tags, software="rawzoom_isp")


def write_dng(path: str | os.PathLike, raw: RawImage, *, quantize: bool = False,
              baseline_exposure: float | None = None, overwrite: bool = True) -> None:
    """Write ``raw`` as a DNG: uint16 CFA data with CFAPattern, BlackLevel per 2x2 position,
    WhiteLevel, AsShotNeutral (= 1 / wb_gains), ColorMatrix1 (from cam_to_srgb, D65), Make/Model,
    Orientation, FocalLength and NoiseProfile when known, BaselineExposure (EV) when given.

    The mosaic must hold integer digital numbers in [0, 65535]; ``quantize=True`` rounds and clips
    instead of refusing. The file appears only once complete.
    """
    data = raw.bayer.detach().cpu().numpy().astype(np.float64)
    height, width = data.shape
    if height % 2 or width % 2 or min(height, width) < _LIBRAW_MIN_SIZE:
        raise RawShapeError(
            f"{path}: a DNG CFA image needs even height and width of at least {_LIBRAW_MIN_SIZE} "
            f"(LibRaw ignores smaller ones), got {height}x{width}"
        )
    if quantize:
        data = np.clip(np.round(data), 0, 65535)
    elif data.min() < 0 or data.max() > 65535 or not np.array_equal(data, np.round(data)):
        raise DataError(
            f"{path}: bayer values must be integers in [0, 65535] (got {data.min():g}..{data.max():g}); "
            "pass quantize=True to round and clip"
        )
    tags = [
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, raw.cfa.dng_codes, True),  # CFAPattern
        (50713, "H", 2, (2, 2), True),  # BlackLevelRepeatDim
        (50714, "2I", 4, _rationals(raw.black_level.numpy(), 1000), True),  # BlackLevel, row-major
        (50717, "I", 1, int(round(raw.white_level)), True),  # WhiteLevel
        *_camera_tags(raw, raw.orientation, baseline_exposure),
    ]
    if raw.focal_length_mm:
        tags.append((37386, "2I", 1, _rationals([raw.focal_length_mm], 1000), True))
    if raw.noise_profile is not None:
        values = raw.noise_profile.numpy().astype(np.float64).ravel()
        tags.append((51041, "d", len(values), tuple(values), True))
    import tifffile

    with atomic_path(path, overwrite) as tmp:
        tifffile.imwrite(
            tmp, data.astype(np.uint16), photometric=32803, subfiletype=0, extratags=tags, software="rawzoom_isp"
        )


def libraw_render_mosaic(raw: RawImage, margin: int = 16, linear: bool = False) -> torch.Tensor:
    """LibRaw's AHD render (``libraw_render``, sRGB or ``linear`` camera RGB) of a RawImage that has no
    file: written as a DNG with its mosaic mirrored by up to ``margin`` sites on each side (an even
    number keeps the CFA; it gives AHD context at the borders, and LibRaw needs 22 px at least),
    rendered, and cut back: (3, H, W)."""
    import tempfile

    import torch.nn.functional as TF

    from .reader import libraw_render

    height, width = raw.shape
    pad = min(margin, (min(height, width) - 2) // 2 * 2)
    padded = TF.pad(raw.bayer[None, None], (pad,) * 4, mode="reflect")[0, 0]
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "mosaic.dng")
        write_dng(path, replace(raw, bayer=padded))
        return libraw_render(path, linear)[:, pad:pad + height, pad:pad + width]
