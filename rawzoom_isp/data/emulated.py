"""EmulatedRawPairs: zoom pairs emulated from real raw files (not optical pairs: say so in reports).

Target: a reference render of the full-resolution raw (LibRaw AHD or ``Pipeline.classical()``,
camera WB, sRGB). Input: the real mosaic reduced N x in the Bayer domain, each LR site averaging the
same-colour sites inside its own N x N footprint (real sensor signal, colour filters and optics),
optionally with noise added so that its per-pixel noise matches a native capture: averaging k =
(N/2)^2 sites divides the variance S x + O by k, so (1 - 1/k)(S x + O) is added back, with (S, O) from
``estimate_noise`` (or the file's NoiseProfile for raws too small to estimate from).
"""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as TF

from ..isp import functional as F
from ..isp.pipeline import Pipeline
from ..raw.cfa import PACK_INDEX
from ..raw.reader import read_raw
from ..synth.noise import add_noise, estimate_noise
from .pairs import PairDataset, ZoomPair
from .synthetic import list_files

RAW_EXTENSIONS = (".dng", ".cr2", ".cr3", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".rw2", ".orf", ".raf", ".pef",
                  ".kdc", ".dcr", ".mos", ".3fr", ".erf", ".mrw", ".x3f", ".srw", ".iiq", ".rwl")


def bayer_downscale(mosaic: torch.Tensor, cfa: str, scale: int) -> torch.Tensor:
    """(..., 1, H, W) -> (..., 1, H / N, W / N): each LR site is the mean of the same-colour sites in
    its N x N footprint ((N/2)^2 of them). N must be even; H, W multiples of 2N."""
    if scale % 2:
        raise ValueError(f"Bayer-domain reduction needs an even factor, got {scale}")
    height, width = mosaic.shape[-2:]
    if height % (2 * scale) or width % (2 * scale):
        raise ValueError(f"mosaic {height}x{width} must be a multiple of {2 * scale} in both sizes")
    packed = F.pack_bayer(mosaic, cfa)
    lead = packed.shape[:-3]
    flat = packed.reshape(-1, 4, height // 2, width // 2)
    half = scale // 2
    planes = []
    for k, position in enumerate(PACK_INDEX[cfa]):
        dy, dx = divmod(position, 2)
        plane = flat[:, k:k + 1, half * dy:, half * dx:]
        planes.append(TF.avg_pool2d(plane, half, stride=scale)[..., : height // (2 * scale), : width // (2 * scale)])
    return F.unpack_bayer(torch.cat(planes, 1).reshape(*lead, 4, height // (2 * scale), width // (2 * scale)), cfa)


def libraw_render(path: str) -> torch.Tensor:
    """LibRaw's AHD render with camera WB, sRGB primaries and sRGB gamma, no auto-brightening, sensor
    orientation: (3, H, W) in [0, 1] on the raw's visible area."""
    import rawpy

    with rawpy.imread(path) as raw:
        rgb = raw.postprocess(use_camera_wb=True, no_auto_bright=True, output_bps=16, user_flip=0,
                              gamma=(2.4, 12.92), output_color=rawpy.ColorSpace.sRGB)
    return torch.from_numpy(rgb.astype(np.float32) / 65535.0).permute(2, 0, 1)


class EmulatedRawPairs(PairDataset):
    """Pairs from a folder of real raws (or a list of paths). ``reference``: "libraw" (AHD) or
    "classical" (``Pipeline.classical(demosaic="malvar2004")``); ``noise_match``: add the noise a
    native LR capture would have. Renders are cached per dataset object."""

    def __init__(self, root: str | list[str], scale: int = 4, reference: str = "libraw", noise_match: bool = True,
                 **crop_options):
        super().__init__(scale=scale, **crop_options)
        if reference not in ("libraw", "classical"):
            raise ValueError(f"reference must be 'libraw' or 'classical', got {reference!r}")
        self.files = list(root) if isinstance(root, (list, tuple)) else list_files(root, RAW_EXTENSIONS)
        self.reference, self.noise_match = reference, noise_match
        self._cache: dict[int, tuple] = {}

    def __len__(self) -> int:
        return len(self.files)

    def _prepared(self, index: int):
        if index not in self._cache:
            path = self.files[index]
            raw = read_raw(path)
            unit = 2 * self.scale
            raw = raw.crop(0, 0, raw.shape[0] // unit * unit, raw.shape[1] // unit * unit)
            if self.reference == "libraw":
                target = libraw_render(path)[:, : raw.shape[0], : raw.shape[1]]
            else:
                target = Pipeline.classical(demosaic="malvar2004")(raw)
            noise = self._noise_model(raw) if self.noise_match else None
            normalised = F.subtract_black_level(raw.bayer[None], raw.black_level, raw.white_level)
            low = bayer_downscale(normalised, raw.cfa, self.scale)
            self._cache[index] = (raw, low, target.half(), noise)
        return self._cache[index]

    @staticmethod
    def _noise_model(raw) -> torch.Tensor:
        """(S, O) per packed channel: estimated from the raw, or, for a raw too small to estimate
        from, the file's NoiseProfile."""
        try:
            return estimate_noise(raw)
        except ValueError:
            if raw.noise_profile is None:
                raise ValueError(f"{raw.path}: too small to estimate its noise and no NoiseProfile in the file; "
                                 "use noise_match=False") from None
            profile = raw.noise_profile
            return (profile if len(profile) == 4 else profile[:1].expand(4, 2)).clone()

    def load(self, index: int, generator: torch.Generator) -> ZoomPair:
        raw, low, target, noise = self._prepared(index)
        if self.target_margin:
            raise ValueError("emulated pairs are aligned by construction: use target_margin=0")
        if self.patch is not None:  # only the window a crop can use (2p + 4 sites, even offsets)
            window = 2 * self.patch + 4
            height, width = low.shape[-2:]
            if height >= window and width >= window:
                top = 2 * int(torch.randint(0, (height - window) // 2 + 1, (1,), generator=generator))
                left = 2 * int(torch.randint(0, (width - window) // 2 + 1, (1,), generator=generator))
                n = self.scale
                low = low[..., top:top + window, left:left + window]
                target = target[..., n * top:n * (top + window), n * left:n * (left + window)]
        if noise is not None:
            kept = 1.0 - 1.0 / (self.scale // 2) ** 2
            packed = add_noise(F.pack_bayer(low[None], raw.cfa), (kept * noise[:, 0])[None], (kept * noise[:, 1])[None],
                               generator)
            low = F.unpack_bayer(packed, raw.cfa)[0].clamp(0, 1)
        return ZoomPair(mosaic=low, cfa=raw.cfa, target=target.float(), wb_gains=raw.wb_gains, cam_to_srgb=raw.cam_to_srgb,
                        info={"source": os.path.basename(self.files[index]), "pairs": "emulated", "target_white_balanced": True,
                              "render": "srgb"})
