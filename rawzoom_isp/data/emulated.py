"""Zoom pairs emulated from real raw files (not optical pairs: say so in reports).

Target: a reference render of the full-resolution raw (LibRaw's AHD or ``Pipeline.classical()``,
camera WB, sRGB). Input: the real mosaic reduced N x in the Bayer domain (``emulate_low``): each LR
site averages the same-colour sites inside its own N x N footprint (real sensor signal, colour filters
and optics), then noise is added so that the LR mosaic carries the noise of a native capture:
averaging k = (N/2)^2 sites divides the variance S x + O by k, so (f - 1/k)(S x + O) is added back,
f = 1 for matched noise (f > 1: a noisier capture). (S, O) per packed channel is the file's
NoiseProfile, or ``estimate_noise`` for files without one (``noise_model``).

``EmulatedRawPairs`` draws a window of the full-resolution raw at any pixel offset, so its CFA phase
varies (RGGB, GRBG, GBRG, BGGR for a RGGB camera), and reduces that window: the pair is what a
camera with that phase would give.
"""
from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as TF

from ..errors import ConfigError, DataError, ShapeError
from ..isp import functional as F
from ..isp.pipeline import Pipeline
from ..raw.cfa import PACK_INDEX, shifted_pattern
from ..raw.image import RawImage
from ..raw.reader import RAW_EXTENSIONS, libraw_render, read_raw
from ..synth.noise import add_noise, estimate_noise
from .pairs import PairDataset, ZoomPair
from .synthetic import list_files

REFERENCES = ("libraw", "classical")


def _downscale_packed(packed: torch.Tensor, cfa: str, scale: int) -> torch.Tensor:
    """(B, 4, h, w) [R, Gr, Gb, B] of a mosaic in ``cfa`` -> (B, 4, h / N, w / N) of the reduced
    mosaic (same CFA): an LR site at tile position (dy, dx) averages its colour's (N/2)^2 sites in its
    N x N footprint, which start N/2 packed positions further for dy or dx = 1."""
    half = scale // 2
    height, width = packed.shape[-2] // scale, packed.shape[-1] // scale
    planes = []
    for k, position in enumerate(PACK_INDEX[cfa]):
        dy, dx = divmod(position, 2)
        plane = packed[:, k:k + 1, half * dy:, half * dx:]
        planes.append(TF.avg_pool2d(plane, half, stride=scale)[..., :height, :width])
    return torch.cat(planes, 1)


def _check_reducible(mosaic: torch.Tensor, scale: int) -> None:
    if scale < 2 or scale % 2:
        raise ConfigError(f"Bayer-domain reduction needs an even factor, got {scale}")
    height, width = mosaic.shape[-2:]
    if height % (2 * scale) or width % (2 * scale):
        raise ShapeError(f"mosaic {height}x{width} must be a multiple of {2 * scale} in both sizes")


def bayer_downscale(mosaic: torch.Tensor, cfa: str, scale: int) -> torch.Tensor:
    """(..., 1, H, W) -> (..., 1, H / N, W / N): each LR site is the mean of the same-colour sites in
    its N x N footprint ((N/2)^2 of them). N must be even; H, W multiples of 2N."""
    _check_reducible(mosaic, scale)
    lead = mosaic.shape[:-3]
    packed = F.pack_bayer(mosaic.reshape(-1, 1, *mosaic.shape[-2:]), cfa)
    low = F.unpack_bayer(_downscale_packed(packed, cfa, scale), cfa)
    return low.reshape(*lead, *low.shape[-3:])


def emulate_low(mosaic: torch.Tensor, cfa: str, scale: int, noise: torch.Tensor | None = None,
                noise_factor: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """A normalised HR mosaic (1, H, W) -> the LR mosaic (1, H / N, W / N) a native capture N x
    coarser would give: ``bayer_downscale`` plus, with a noise model (S, O) per packed channel (4, 2),
    noise of variance max(f - 1/k, 0)(S x + O), k = (N/2)^2, f = ``noise_factor``; clipped to [0, 1].
    Packed once, unpacked once."""
    _check_reducible(mosaic, scale)
    low = _downscale_packed(F.pack_bayer(mosaic[None], cfa), cfa, scale)
    if noise is not None:
        kept = max(noise_factor - 1.0 / (scale // 2) ** 2, 0.0)
        low = add_noise(low, (kept * noise[:, 0])[None], (kept * noise[:, 1])[None], generator)
    return F.unpack_bayer(low, cfa)[0].clamp(0, 1)


def noise_model(raw: RawImage) -> torch.Tensor:
    """(S, O) per packed channel [R, Gr, Gb, B], (4, 2), of a native capture: the file's NoiseProfile
    (what the camera states), else estimated from the raw (``estimate_noise``)."""
    profile = raw.noise_profile
    if profile is not None and bool(torch.isfinite(profile).all()) and bool((profile >= 0).all()):
        return (profile if len(profile) == 4 else profile[:1].expand(4, 2)).clone()
    try:
        return estimate_noise(raw)
    except ValueError:
        raise DataError(f"{raw.path}: too small to estimate its noise and no NoiseProfile in the file; "
                         "use noise_match=False") from None


def reference_render(raw: RawImage, reference: str) -> torch.Tensor:
    """The target of an emulated pair: LibRaw's AHD render ("libraw") or the classical pipeline with
    Malvar demosaicing ("classical"), camera WB, sRGB, the raw's visible area, sensor orientation."""
    if reference == "libraw":
        return libraw_render(raw.path)[:, : raw.shape[0], : raw.shape[1]]
    return Pipeline.classical(demosaic="malvar2004", color_matrix=raw.cam_to_srgb is not None)(raw)


class EmulatedRawPairs(PairDataset):
    """Pairs from a folder of real raws (or a list of paths). ``reference``: "libraw" (AHD) or
    "classical"; ``noise_match``: add the noise a native LR capture would have, times a factor drawn
    log-uniformly from ``noise_range`` (default (1, 1): matched). With ``patch`` set, each sample is a
    window of 2 x patch LR sites at any offset (and so any CFA phase): the most textured (mean
    absolute gradient of the target) of ``texture_candidates`` drawn uniformly, so that flat sky and
    walls do not dominate; without ``patch``, the whole raw. Renders are cached per dataset object.

    ``misalign`` > 0 makes the pairs misaligned as optical-zoom pairs are after ECC alignment: the
    target window is seen through a random affine about its centre, a shift of up to ``misalign`` LR
    pixels in each direction and a linear part I + D, each entry of D up to ``misalign_affine``."""

    def __init__(self, root: str | list[str], scale: int = 4, reference: str = "libraw", noise_match: bool = True,
                 noise_range: tuple[float, float] = (1.0, 1.0), texture_candidates: int = 1, misalign: float = 0.0,
                 misalign_affine: float = 0.0, **crop_options):
        super().__init__(scale=scale, **crop_options)
        if reference not in REFERENCES:
            raise ConfigError(f"reference must be one of {REFERENCES}, got {reference!r}")
        low, high = (float(v) for v in noise_range)
        if not 0 < low <= high or not math.isfinite(high):
            raise ConfigError(f"noise_range must be two factors 0 < low <= high, got {noise_range!r}")
        if self.target_margin:
            raise ConfigError("emulated pairs are aligned by construction: use target_margin=0")
        self.files = list(root) if isinstance(root, (list, tuple)) else list_files(root, RAW_EXTENSIONS)
        if texture_candidates < 1:
            raise ConfigError(f"texture_candidates must be at least 1, got {texture_candidates}")
        if not (0 <= misalign <= 64 and 0 <= misalign_affine <= 0.1):
            raise ConfigError(f"misalign must be in [0, 64] LR px and misalign_affine in [0, 0.1], got {misalign!r}, "
                              f"{misalign_affine!r}")
        self.reference, self.noise_match, self.noise_range = reference, noise_match, (low, high)
        self.texture_candidates = int(texture_candidates)
        self.misalign, self.misalign_affine = float(misalign), float(misalign_affine)
        self._cache: dict[int, tuple] = {}

    def __len__(self) -> int:
        return len(self.files)

    def _prepared(self, index: int):
        if index not in self._cache:
            raw = read_raw(self.files[index])
            target = reference_render(raw, self.reference).half()
            noise = noise_model(raw) if self.noise_match else None
            mosaic = F.subtract_black_level(raw.bayer[None], raw.black_level, raw.white_level)
            self._cache[index] = (raw, mosaic, target, noise)
        return self._cache[index]

    def _noise_factor(self, generator: torch.Generator) -> float:
        low, high = (math.log(v) for v in self.noise_range)
        return math.exp(low + (high - low) * float(torch.rand(1, generator=generator)))

    def _window(self, target: torch.Tensor, size: tuple[int, int], generator: torch.Generator) -> tuple[int, int]:
        """The most textured of ``texture_candidates`` uniformly drawn windows (top, left)."""
        best, chosen = -1.0, (0, 0)
        for _ in range(self.texture_candidates):
            top = int(torch.randint(0, target.shape[1] - size[0] + 1, (1,), generator=generator))
            left = int(torch.randint(0, target.shape[2] - size[1] + 1, (1,), generator=generator))
            if self.texture_candidates == 1:
                return top, left
            grey = target[:, top:top + size[0]:2, left:left + size[1]:2].float().mean(0)
            texture = float((grey[1:] - grey[:-1]).abs().mean() + (grey[:, 1:] - grey[:, :-1]).abs().mean())
            if texture > best:
                best, chosen = texture, (top, left)
        return chosen

    def _misaligned(self, target: torch.Tensor, top: int, left: int, size: tuple[int, int],
                    generator: torch.Generator) -> torch.Tensor:
        """The target window through a random affine (see the class docstring), bilinear, sampled from
        the whole target (so its borders hold real content)."""
        shift = (torch.rand(2, generator=generator) * 2 - 1) * self.misalign * self.scale  # HR px (y, x)
        linear = torch.eye(2) + (torch.rand(2, 2, generator=generator) * 2 - 1) * self.misalign_affine
        margin = int(math.ceil(self.misalign * self.scale + self.misalign_affine * 2 * max(size))) + 2
        y0, x0 = max(0, top - margin), max(0, left - margin)
        y1, x1 = min(target.shape[1], top + size[0] + margin), min(target.shape[2], left + size[1] + margin)
        region = target[None, :, y0:y1, x0:x1].float()
        ys, xs = torch.meshgrid(torch.arange(size[0], dtype=torch.float32), torch.arange(size[1], dtype=torch.float32),
                                indexing="ij")
        centre = torch.tensor([(size[0] - 1) / 2, (size[1] - 1) / 2])
        offsets = torch.stack([ys, xs], -1) - centre
        points = offsets @ linear.T + centre + shift + torch.tensor([top - y0, left - x0], dtype=torch.float32)
        grid = torch.stack([(2 * points[..., 1] + 1) / region.shape[-1] - 1,
                            (2 * points[..., 0] + 1) / region.shape[-2] - 1], -1)
        return TF.grid_sample(region, grid[None], mode="bilinear", padding_mode="border", align_corners=False)[0]

    def load(self, index: int, generator: torch.Generator) -> ZoomPair:
        raw, mosaic, target, noise = self._prepared(index)
        unit = 2 * self.scale
        size = (unit * self.patch,) * 2 if self.patch is not None else \
            (raw.shape[0] // unit * unit, raw.shape[1] // unit * unit)
        if size[0] > raw.shape[0] or size[1] > raw.shape[1]:
            raise DataError(f"{raw.path}: a {size[0]}x{size[1]} window (patch {self.patch} at {self.scale}x) "
                             f"does not fit in {raw.shape[0]}x{raw.shape[1]}; use a smaller patch")
        top, left = 0, 0
        if self.patch is not None:
            top, left = self._window(target, size, generator)
        cfa = shifted_pattern(raw.cfa, top, left)
        window = mosaic[:, top:top + size[0], left:left + size[1]]
        factor = self._noise_factor(generator) if noise is not None else 1.0
        low = emulate_low(window, cfa, self.scale, noise, factor, generator)
        if self.misalign or self.misalign_affine:
            seen = self._misaligned(target, top, left, size, generator)
        else:
            seen = target[:, top:top + size[0], left:left + size[1]].float()
        return ZoomPair(mosaic=low, cfa=cfa, target=seen,
                        wb_gains=raw.wb_gains, cam_to_srgb=raw.cam_to_srgb,
                        info={"source": os.path.basename(self.files[index]), "pairs": "emulated",
                              "target_white_balanced": True, "render": "srgb", "noise_factor": factor,
                              "window": (top, left)})
