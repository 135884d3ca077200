"""Zoom pairs emulated from real raw files (not optical pairs: say so in reports).

Target: a reference render of the full-resolution raw (LibRaw's AHD or ``Pipeline.classical()``,
camera WB, sRGB). Input: the LR capture a sensor N x coarser would give (``rz.synth.sensor``): in the
centred geometry (a native sensor's sites) from the raw's linear demosaic, or in the footprint
geometry (each LR site the mean of the same-colour HR sites of its footprint), with the noise of a
native capture times a factor (the file's NoiseProfile, or ``estimate_noise`` for files without one:
``noise_model``).

``EmulatedRawPairs`` draws a window of the full-resolution raw at any pixel offset, so its CFA phase
varies (RGGB, GRBG, GBRG, BGGR for a RGGB camera), and one capture of the ``SensorFamily`` per
sample. Headerless Bayer dumps join through a table that says how to read them (``read_entry``).
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import replace

import torch
import torch.nn.functional as TF

from ..errors import ConfigError, DataError
from ..isp import functional as F
from ..isp.pipeline import Pipeline
from ..raw.dng import libraw_render_mosaic
from ..raw.image import RawImage, colour_noise
from ..raw.reader import RAW_EXTENSIONS, libraw_render, raw_files, read_raw
from ..synth.noise import estimate_noise
from ..synth.sensor import HighRes, SensorFamily, bayer_downscale, crop_clamped
from ..synth.unprocess import unprocess_linear
from .pairs import PairDataset, ZoomPair

REFERENCES = ("libraw", "classical")
INPUT_SOURCES = ("real", "brooks", "paper")
LINEAR_DEMOSAICS = ("libraw", "menon2007", "malvar2004", "bilinear")
__all__ = ["EmulatedRawPairs", "bayer_downscale", "high_res", "linear_demosaic", "noise_model", "read_entry",
           "reference_render"]


def noise_model(raw: RawImage) -> torch.Tensor:
    """(S, O) per packed channel [R, Gr, Gb, B], (4, 2), of a native capture: the file's NoiseProfile
    (what the camera states), else estimated from the raw (``estimate_noise``)."""
    profile = raw.noise_profile
    stated = colour_noise(profile)
    if stated is not None:
        return profile.clone() if len(profile) == 4 else stated[[0, 1, 1, 2]]
    try:
        return estimate_noise(raw)
    except ValueError:
        raise DataError(f"{raw.path}: too small to estimate its noise and no NoiseProfile in the file; "
                         "use noise_match=False") from None


def _libraw(raw: RawImage, linear: bool) -> torch.Tensor:
    """LibRaw's AHD render of a raw: from its file when LibRaw reads it, else written as a DNG."""
    if raw.path and os.path.splitext(raw.path)[1].lower() in RAW_EXTENSIONS:
        return libraw_render(raw.path, linear)[:, : raw.shape[0], : raw.shape[1]]
    return libraw_render_mosaic(raw, linear=linear)


def reference_render(raw: RawImage, reference: str) -> torch.Tensor:
    """The target of an emulated pair: LibRaw's AHD render ("libraw") or the classical pipeline with
    Malvar demosaicing ("classical"), camera WB, sRGB, the raw's visible area, sensor orientation."""
    if reference == "libraw":
        return _libraw(raw, linear=False)
    return Pipeline.classical(demosaic="malvar2004", color_matrix=raw.cam_to_srgb is not None)(raw)


def linear_demosaic(raw: RawImage, method: str) -> torch.Tensor:
    """The raw demosaiced to linear camera RGB (3, H, W), normalised, not white balanced: LibRaw's
    AHD ("libraw") or one of the ISP's demosaics."""
    if method == "libraw":
        return _libraw(raw, linear=True)
    if method not in LINEAR_DEMOSAICS:
        raise ConfigError(f"linear demosaic must be one of {', '.join(LINEAR_DEMOSAICS)}, got {method!r}")
    mosaic = raw.normalised()
    return F.demosaic(mosaic[None], raw.cfa, method)[0].clamp(0, 1)


def high_res(raw: RawImage, demosaic: str | None) -> HighRes:
    """The raw as the sensor model's HR source; its ``linear`` demosaic only when ``demosaic`` is set
    (the centred geometry needs it), kept in half precision."""
    mosaic = raw.normalised()
    linear = linear_demosaic(raw, demosaic).half() if demosaic else None
    return HighRes(mosaic, raw.cfa, linear)


_SPEC_KEYS = {"path", "shape", "cfa", "black_level", "white_level", "dtype", "offset", "wb_gains"}


def read_entry(entry) -> RawImage:
    """A training file: a path LibRaw reads, or a table for a headerless dump (``path``, ``shape``,
    ``cfa``, ``black_level``, ``white_level``, optional ``dtype``, ``offset``) with its white balance
    ``wb_gains``: [R, G, B], or "grey-world" (the gains that make the mean R, G, B equal)."""
    if not isinstance(entry, Mapping):
        return read_raw(entry)
    unknown = sorted(set(entry) - _SPEC_KEYS)
    if unknown or "path" not in entry or "wb_gains" not in entry:
        raise ConfigError(f"a headerless file's table takes {', '.join(sorted(_SPEC_KEYS))} (path and wb_gains "
                          f"required), got {dict(entry)!r}")
    options = {k: v for k, v in entry.items() if k not in ("path", "wb_gains")}
    raw = read_raw(entry["path"], **options)
    gains = entry["wb_gains"]
    if gains == "grey-world":
        normalised = raw.normalised()[None]
        gains = F.grey_world_gains(F.pack_bayer(normalised, raw.cfa)[0])
    gains = torch.as_tensor(gains, dtype=torch.float32)
    if gains.shape != (3,) or not bool(torch.isfinite(gains).all()) or not bool((gains > 0).all()):
        raise ConfigError(f"{entry['path']}: wb_gains must be three positive numbers or 'grey-world', "
                          f"got {entry['wb_gains']!r}")
    return replace(raw, wb_gains=gains / gains[1], wb_source="given")


def entry_name(entry) -> str:
    return os.path.basename(entry["path"] if isinstance(entry, Mapping) else entry)


class EmulatedRawPairs(PairDataset):
    """Pairs from a folder of real raws or a list of files (paths, or tables for headerless dumps:
    ``read_entry``). ``reference``: the target, "libraw" (AHD) or "classical". The input is one capture
    of the sensor family per sample (``rz.synth.sensor.SensorFamily``): ``degradation`` "centred" (a
    native sensor's geometry, from the raw's ``demosaic`` to linear RGB), "footprint", or "mixed"
    (``footprint_share`` of the samples footprint); centred captures blurred by a Gaussian drawn
    from ``blur`` (LR px) and shifted by up to ``shift`` HR px. ``noise_match``: add the noise a native LR
    capture would have, times a factor drawn log-uniformly from ``noise_range`` (default (1, 1):
    matched), none for ``clean_share`` of the samples. With ``patch`` set, each sample is a window of
    2 x patch LR sites at any offset (and so any CFA phase): the most textured (mean absolute gradient
    of the target) of ``texture_candidates`` drawn uniformly, so that flat sky and walls do not
    dominate; without ``patch``, the whole raw. Renders are cached per dataset object.

    ``input_source`` says what the LR sensor sees: the real raw ("real"), or synthetic raw made from
    the target window itself, by Brooks et al.'s unprocessing ("brooks") or the paper's x^2.22
    ("paper"), captured in the same geometry with that method's own noise and metadata: the same
    windows, targets and sensor family, only the kind of raw differs.

    ``misalign`` > 0 makes the pairs misaligned as optical-zoom pairs are after ECC alignment: the
    target window is seen through a random affine about its centre, a shift of up to ``misalign`` LR
    pixels in each direction and a linear part I + D, each entry of D up to ``misalign_affine``."""

    def __init__(self, root: str | list, scale: int = 4, reference: str = "libraw", noise_match: bool = True,
                 noise_range: tuple[float, float] = (1.0, 1.0), texture_candidates: int = 1, misalign: float = 0.0,
                 misalign_affine: float = 0.0, degradation: str = "centred", footprint_share: float = 0.5,
                 blur: tuple[float, float] = (0.0, 0.0), shift: float = 0.0, clean_share: float = 0.0,
                 demosaic: str = "libraw", input_source: str = "real", **crop_options):
        super().__init__(scale=scale, **crop_options)
        if reference not in REFERENCES:
            raise ConfigError(f"reference must be one of {REFERENCES}, got {reference!r}")
        if demosaic not in LINEAR_DEMOSAICS:
            raise ConfigError(f"demosaic must be one of {', '.join(LINEAR_DEMOSAICS)}, got {demosaic!r}")
        if input_source not in INPUT_SOURCES:
            raise ConfigError(f"input_source must be one of {', '.join(INPUT_SOURCES)}, got {input_source!r}")
        self.input_source = input_source
        self.sensor = SensorFamily.of(degradation, footprint_share=footprint_share, blur=tuple(blur), shift=shift,
                                      clean_share=clean_share, noise_range=tuple(noise_range))
        if self.target_margin:
            raise ConfigError("emulated pairs are aligned by construction: use target_margin=0")
        self.files = list(root) if isinstance(root, (list, tuple)) else raw_files([root])
        if texture_candidates < 1:
            raise ConfigError(f"texture_candidates must be at least 1, got {texture_candidates}")
        if not (0 <= misalign <= 64 and 0 <= misalign_affine <= 0.1):
            raise ConfigError(f"misalign must be in [0, 64] LR px and misalign_affine in [0, 0.1], got {misalign!r}, "
                              f"{misalign_affine!r}")
        self.reference, self.noise_match, self.demosaic = reference, noise_match, demosaic
        self.texture_candidates = int(texture_candidates)
        self.misalign, self.misalign_affine = float(misalign), float(misalign_affine)
        self._cache: dict[int, tuple] = {}

    @classmethod
    def from_config(cls, data: dict, source, **common) -> EmulatedRawPairs:
        """The pairs a checked [data] section describes (``rz.data.registry``)."""
        return cls(source, reference=data["reference"], noise_match=data["noise_match"],
                   noise_range=tuple(data["noise_range"]), texture_candidates=data["texture_candidates"],
                   misalign=data["misalign"], misalign_affine=data["misalign_affine"],
                   degradation=data["degradation"], footprint_share=data["footprint_share"], blur=tuple(data["blur"]),
                   shift=data["shift"], clean_share=data["clean_share"], demosaic=data["demosaic"],
                   input_source=data["input_source"], **common)

    def __len__(self) -> int:
        return len(self.files)

    def _prepared(self, index: int):
        if index not in self._cache:
            raw = read_entry(self.files[index])
            target = reference_render(raw, self.reference).half()
            noise = noise_model(raw) if self.noise_match else None
            source = None  # synthetic raw is made per sample from the target window
            if self.input_source == "real":
                source = high_res(raw, self.demosaic if self.sensor.needs_linear else None)
            self._cache[index] = (raw, source, target, noise)
        return self._cache[index]

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
        raw, source, target, noise = self._prepared(index)
        unit = 2 * self.scale
        size = (unit * self.patch,) * 2 if self.patch is not None else \
            (raw.shape[0] // unit * unit, raw.shape[1] // unit * unit)
        if size[0] > raw.shape[0] or size[1] > raw.shape[1]:
            raise DataError(f"{raw.path}: a {size[0]}x{size[1]} window (patch {self.patch} at {self.scale}x) "
                             f"does not fit in {raw.shape[0]}x{raw.shape[1]}; use a smaller patch")
        top, left = 0, 0
        if self.patch is not None:
            top, left = self._window(target, size, generator)
        degradation = self.sensor.sample(generator)
        gains, matrix, render = raw.wb_gains, raw.cam_to_srgb, "srgb"
        if source is not None:
            low, cfa = source.capture(top, left, size, self.scale, degradation, noise, generator)
            stated = None if noise is None else colour_noise(noise) * source.added_noise(self.scale, degradation)
        else:  # synthetic raw of the target window (and the context the capture reads around it)
            margin = degradation.margin(self.scale)
            seen = crop_clamped(target, top - margin, left - margin, size[0] + 2 * margin, size[1] + 2 * margin)
            linear, meta = unprocess_linear(seen.clamp(0, 1), method=self.input_source, noise=noise is not None,
                                            generator=generator)
            window_cfa = raw.cfa.shifted(top - margin, left - margin)
            synthetic = HighRes(F.mosaic(linear[None], window_cfa)[0], window_cfa, linear, noisy=False)
            levels = torch.stack([meta.shot, meta.read], 1).expand(4, 2) if noise is not None else None
            low, cfa = synthetic.capture(margin, margin, size, self.scale, degradation, levels, generator)
            stated = None if levels is None else colour_noise(levels) * synthetic.added_noise(self.scale, degradation)
            gains, matrix, render = (meta.wb_gains * meta.brightness[:, None])[0], meta.cam_to_srgb[0], meta.method
        if self.misalign or self.misalign_affine:
            seen = self._misaligned(target, top, left, size, generator)
        else:
            seen = target[:, top:top + size[0], left:left + size[1]].float()
        return ZoomPair(mosaic=low, cfa=cfa, target=seen, wb_gains=gains, cam_to_srgb=matrix, noise=stated,
                        info={"source": entry_name(self.files[index]), "pairs": "emulated",
                              "input_source": self.input_source, "target_white_balanced": True, "render": render,
                              "geometry": degradation.geometry,
                              "noise_factor": degradation.noise if noise is not None else 0.0,
                              "blur": degradation.blur, "window": (top, left)})
