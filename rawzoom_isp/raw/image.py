"""RawImage: a Bayer mosaic in raw digital numbers plus the metadata needed to render it."""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch

from ..errors import ConfigError, DataError, RawShapeError, ShapeError
from .cfa import Cfa
from .facts import check_levels, describe_raw
from .levels import subtract_black_level
from .orientation import apply_orientation, display_box_to_stored

log = logging.getLogger(__name__)


def _as_tensor(value, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float32)
    if shape is not None:
        t = t.expand(shape) if t.numel() == 1 else t.reshape(shape)
    return t.clone()


@dataclass
class RawMeta:
    """What the ISP stages need besides the pixels. Tensors may carry a leading batch dimension
    (``black_level`` (B, 2, 2), ``wb_gains`` (B, 3), ``cam_to_srgb`` (B, 3, 3), ``white_level`` (B,),
    ``noise`` (B, 3, 2)); one CFA pattern per batch. ``noise``: the capture's noise per colour R, G, B
    (``colour_noise``), when known."""

    cfa: Cfa
    black_level: torch.Tensor
    white_level: torch.Tensor
    wb_gains: torch.Tensor
    cam_to_srgb: torch.Tensor | None = None
    noise: torch.Tensor | None = None

    def __post_init__(self):
        self.cfa = Cfa(self.cfa)

    @staticmethod
    def of_normalised(cfa: str, wb_gains: torch.Tensor, cam_to_srgb: torch.Tensor | None = None,
                      noise: torch.Tensor | None = None) -> RawMeta:
        """Metadata of an already normalised mosaic or linear RGB (black 0, white 1), per image
        (``wb_gains`` (3,)) or batched ((B, 3))."""
        batch = wb_gains.shape[:-1]
        return RawMeta(cfa=cfa, black_level=torch.zeros(*batch, 2, 2), white_level=torch.ones(batch),
                       wb_gains=wb_gains, cam_to_srgb=cam_to_srgb, noise=noise)

    @staticmethod
    def stack(metas: Sequence[RawMeta]) -> RawMeta:
        """Batch per-image metadata; all images must share one CFA pattern."""
        patterns = {m.cfa for m in metas}
        if len(patterns) != 1:
            raise DataError(f"cannot batch raws of different CFA patterns {sorted(patterns)}: pack them first")
        ccms = [m.cam_to_srgb for m in metas]
        noises = [m.noise for m in metas]
        return RawMeta(
            cfa=metas[0].cfa,
            black_level=torch.stack([m.black_level for m in metas]),
            white_level=torch.stack([torch.as_tensor(m.white_level, dtype=torch.float32) for m in metas]),
            wb_gains=torch.stack([m.wb_gains for m in metas]),
            cam_to_srgb=None if any(c is None for c in ccms) else torch.stack(ccms),
            noise=None if any(n is None for n in noises) else torch.stack(noises),
        )


def colour_noise(profile: torch.Tensor | None) -> torch.Tensor | None:
    """A noise profile (P, 2) as (S, O) per colour R, G, B (3, 2), variance S x + O of the normalised
    signal x: one pair for all colours (P = 1), one per colour plane as a DNG NoiseProfile states it
    (P = 3), or one per packed channel [R, Gr, Gb, B] (P = 4, the greens averaged). None for none, or
    for a profile of another length or with negative or non-finite values (unusable, as if the file
    had none)."""
    if profile is None:
        return None
    profile = torch.as_tensor(profile, dtype=torch.float32).reshape(-1, 2)
    if not (bool(torch.isfinite(profile).all()) and bool((profile >= 0).all())):
        return None
    if len(profile) == 1:
        return profile.expand(3, 2).clone()
    if len(profile) == 3:
        return profile.clone()
    if len(profile) == 4:
        return torch.stack([profile[0], profile[1:3].mean(0), profile[3]])
    return None


@dataclass
class RawImage:
    """A raw capture: ``bayer`` (H, W) float32 digital numbers of the visible area, before black level.

    ``cfa`` is the top-left 2x2 tile ("RGGB", "BGGR", "GRBG", "GBRG"); ``black_level`` (2, 2) black per
    CFA position; ``wb_gains`` (3,) R, G, B camera white-balance gains with G == 1 and ``wb_source``
    saying where they came from ("camera", "daylight" or "none" = unity gains); ``cam_to_srgb`` (3, 3)
    maps white-balanced camera RGB to linear sRGB, or None when the file has no colour matrix;
    ``orientation`` is the EXIF orientation code (1 = as stored); ``noise_profile`` (P, 2) is the DNG
    NoiseProfile (S, O) per plane, variance = S * x + O with x the normalised signal;
    ``daylight_wb_gains`` (3,) the camera's gains for daylight, when LibRaw knows them; ``exif`` and
    ``gps``: the capture's EXIF and GPS tags (number -> plain value) that outputs carry over.
    """

    bayer: torch.Tensor
    cfa: Cfa
    black_level: torch.Tensor
    white_level: float
    wb_gains: torch.Tensor = field(default_factory=lambda: torch.ones(3))
    cam_to_srgb: torch.Tensor | None = None
    wb_source: str = "none"
    focal_length_mm: float | None = None
    make: str | None = None
    model: str | None = None
    orientation: int = 1
    iso: float | None = None
    exposure_time_s: float | None = None
    noise_profile: torch.Tensor | None = None
    path: str | None = None
    daylight_wb_gains: torch.Tensor | None = None
    exif: dict = field(default_factory=dict, repr=False)
    gps: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.cfa = Cfa(self.cfa)
        self.bayer = torch.as_tensor(self.bayer, dtype=torch.float32)
        if self.bayer.ndim != 2:
            raise RawShapeError(f"RawImage.bayer must be (H, W), got shape {tuple(self.bayer.shape)}")
        self.black_level = _as_tensor(self.black_level, (2, 2))
        self.white_level = float(self.white_level)
        self.wb_gains = _as_tensor(self.wb_gains, (3,))
        if self.cam_to_srgb is not None:
            self.cam_to_srgb = _as_tensor(self.cam_to_srgb, (3, 3))
        if self.noise_profile is not None:
            self.noise_profile = _as_tensor(self.noise_profile).reshape(-1, 2)
        if self.daylight_wb_gains is not None:
            self.daylight_wb_gains = _as_tensor(self.daylight_wb_gains, (3,))
        if not 1 <= int(self.orientation) <= 8:
            raise ConfigError(f"orientation must be an EXIF code 1..8, got {self.orientation}")
        check_levels(self.black_level.numpy(), self.white_level, None,
                     lambda reason: ConfigError(f"{self.path or 'RawImage'}: {reason}"))

    def __repr__(self) -> str:
        gains = ", ".join(f"{g:.3f}" for g in self.wb_gains.tolist())
        black = sorted({round(float(b), 3) for b in self.black_level.flatten()})
        return (f"RawImage({self.shape[0]}x{self.shape[1]} {self.cfa}, black {black}, white {self.white_level:g}, "
                f"wb [{gains}] ({self.wb_source}), colour matrix {'yes' if self.cam_to_srgb is not None else 'none'}, "
                f"orientation {self.orientation}, {self.make or '?'} {self.model or '?'}, path {self.path!r})")

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.bayer.shape)

    @property
    def meta(self) -> RawMeta:
        return RawMeta(
            cfa=self.cfa,
            black_level=self.black_level,
            white_level=torch.tensor(self.white_level),
            wb_gains=self.wb_gains,
            cam_to_srgb=self.cam_to_srgb,
            noise=colour_noise(self.noise_profile),
        )

    def crop(self, top: int, left: int, height: int, width: int) -> RawImage:
        """A window of the mosaic; the CFA name and black-level tile follow the window's phase."""
        if min(top, left) < 0 or top + height > self.bayer.shape[0] or left + width > self.bayer.shape[1]:
            raise ShapeError(f"crop ({top}, {left}, {height}, {width}) leaves the {self.shape} mosaic")
        black = torch.roll(self.black_level, shifts=(-(top % 2), -(left % 2)), dims=(0, 1))
        return replace(
            self,
            bayer=self.bayer[top : top + height, left : left + width].clone(),
            cfa=self.cfa.shifted(top, left),
            black_level=black,
        )

    @property
    def display_shape(self) -> tuple[int, int]:
        """(rows, columns) as displayed, after the EXIF orientation."""
        rows, cols = self.shape
        return (cols, rows) if self.orientation >= 5 else (rows, cols)

    def oriented(self) -> RawImage:
        """This raw as it is displayed: its mosaic turned as its EXIF orientation says (the same flips
        and transposes of the CFA pattern, black-level tile and noise planes), orientation 1. What the
        command line's outputs show; ``Pipeline``'s output of ``raw.oriented()`` needs no turning."""
        if self.orientation == 1:
            return self
        transpose = self.orientation >= 5
        flip_v, flip_h = {2: (False, True), 3: (True, True), 4: (True, False), 5: (False, False),
                          6: (False, True), 7: (True, True), 8: (True, False)}[self.orientation]
        profile = self.noise_profile
        if profile is not None and transpose and len(profile) == 4:
            profile = profile[[0, 2, 1, 3]]  # the green of the red rows becomes the green of the red columns
        return replace(self, bayer=apply_orientation(self.bayer, self.orientation).contiguous(),
                       cfa=self.cfa.transformed(flip_v, flip_h, transpose),
                       black_level=apply_orientation(self.black_level, self.orientation).contiguous(),
                       noise_profile=profile, orientation=1)

    def crop_displayed(self, top: int, left: int, height: int, width: int) -> RawImage:
        """The window of the mosaic that shows the box (top, left, height, width) of the displayed
        image, in stored orientation (as ``crop``). A mosaic keeps whole 2x2 tiles: an odd height or
        width loses its last row or column, with a warning that says so."""
        rows, cols = self.display_shape
        if min(top, left) < 0 or height < 2 or width < 2 or top + height > rows or left + width > cols:
            raise ShapeError(f"{self.path or 'raw'}: box {(top, left, height, width)} (top, left, height, width) is "
                             f"not inside the {rows}x{cols} displayed image")
        if height % 2 or width % 2:
            log.warning("%s: box %dx%d trimmed to %dx%d (a mosaic keeps whole 2x2 tiles)", self.path or "raw",
                        height, width, height // 2 * 2, width // 2 * 2)
        stored = display_box_to_stored((top, left, height // 2 * 2, width // 2 * 2), self.orientation, self.shape)
        return self.crop(*stored)

    def normalised(self, clip: bool = True, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The mosaic as the normalised signal (1, H, W), (x - black) / (white - black), computed in
        ``dtype``, clipped to [0, 1] unless ``clip`` is False (``subtract_black_level``)."""
        return subtract_black_level(self.bayer[None].to(dtype), self.black_level, self.white_level, clip=clip)

    def crop_centre(self, zoom: float) -> RawImage:
        """The display-centred 1/``zoom`` of each side (``zoom`` > 1, fractions welcome): what a
        camera's ``zoom`` x digital zoom frames, its sides rounded to whole 2x2 tiles (``crop_displayed``)."""
        if not (math.isfinite(zoom) and zoom > 1):
            raise ConfigError(f"a centre crop zooms more than 1x, got {zoom!r}")
        rows, cols = self.display_shape
        height, width = max(2, round(rows / zoom / 2) * 2), max(2, round(cols / zoom / 2) * 2)
        return self.crop_displayed((rows - height) // 2, (cols - width) // 2, height, width)

    def with_mosaic(self, normalised: torch.Tensor) -> RawImage:
        """This raw's metadata around another mosaic, given normalised to [0, 1] as (1, h, w) or (h, w)
        in this raw's CFA: stored in digital numbers (black per CFA position, white level), rounded
        like a sensor's ADC."""
        mosaic = normalised.reshape(normalised.shape[-2:]).float()
        black = self.black_level.repeat(mosaic.shape[0] // 2, mosaic.shape[1] // 2)
        return replace(self, bayer=torch.round(mosaic * (self.white_level - black) + black))

    def describe(self) -> dict:
        """Metadata as plain, JSON-safe Python values (for ``rawzoom info``)."""
        return describe_raw(vars(self))
