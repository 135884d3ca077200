"""The common interface of every (low-resolution input, high-resolution target) source.

A source loads a ``ZoomPair``: a normalised linear LR mosaic (1, H, W) in the source's CFA and the
target RGB (3, N H, N W) aligned to it. ``PairDataset`` turns it into training samples with one
policy for all sources: a random window of ``patch`` x ``patch`` packed positions at any offset (so any
CFA phase), one of the 8 flips and transposes (``augment``), and the input as packed raw
[R, Gr, Gb, B] unified to RGGB geometry by the flips ``Cfa.unify_flips`` names (the target flipped alike),
which is what ``LearnedZoom`` does before the network; or, for the 8-bit RGB arm, the same LR view
rendered to 8-bit sRGB (3, 2p, 2p). Randomness comes from (seed, epoch, index), so samples do not
depend on DataLoader workers. Samples carry the WB gains, the colour matrix (identity, with
``has_color_matrix`` False, when the source has none) and, where the source knows it, the LR's noise
(``noise``, (S, O) per colour, for networks told it).
"""
from __future__ import annotations

import abc
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ConfigError, DataError, ShapeError
from ..isp import functional as F
from ..isp.pipeline import Pipeline
from ..raw.cfa import NETWORK_CFA, Cfa
from ..raw.image import RawMeta
from ..synth.unprocess import render_linear

INPUT_FORMATS = ("raw", "rgb")


@dataclass
class ZoomPair:
    """An LR mosaic (1, H, W) in [0, 1] (linear, not white-balanced) and its target (3, N H, N W)
    (+ 2 * target_margin when the source leaves room for a shift-tolerant loss). ``info`` says,
    among others, whether the target includes the camera white balance ("target_white_balanced") and,
    where known, how it was rendered from linear camera RGB ("render", one of ``rz.synth.RENDERS``).
    ``noise``, where the source knows it: the LR mosaic's noise, (S, O) per colour R, G, B (3, 2)
    (``rz.raw.colour_noise``). Tensors may be stored in half precision or memory-mapped (SR-RAW's
    cache): crop, then convert."""

    mosaic: torch.Tensor
    cfa: Cfa
    target: torch.Tensor
    wb_gains: torch.Tensor
    cam_to_srgb: torch.Tensor | None = None
    info: dict = field(default_factory=dict)
    noise: torch.Tensor | None = None

    def __post_init__(self):
        self.cfa = Cfa(self.cfa)


def render_rgb(
    mosaic: torch.Tensor, cfa: str, wb_gains: torch.Tensor, cam_to_srgb: torch.Tensor | None
) -> torch.Tensor:
    """A normalised mosaic (1, H, W) rendered by the classical pipeline from its packing stage on
    (bilinear demosaic, camera WB, colour matrix when known, sRGB): (3, H, W) in [0, 1]."""
    pipe = Pipeline.classical(demosaic="bilinear", color_matrix=cam_to_srgb is not None)
    return pipe(mosaic, RawMeta.of_normalised(cfa, wb_gains, cam_to_srgb), start="pack")


RGB_RENDERS = ("classical", "libraw")


def render_rgb8(mosaic: torch.Tensor, cfa: str, wb_gains: torch.Tensor, cam_to_srgb: torch.Tensor | None,
                render: str = "classical", jpeg_quality: int = 0) -> torch.Tensor:
    """The 8-bit RGB arm's input, what a camera that stores RGB would keep of the LR mosaic: its
    ``render`` ("classical": ``render_rgb``; "libraw": LibRaw's AHD render, camera WB, sRGB) in 8 bits,
    or, with ``jpeg_quality`` in 1..100, as a JPEG of that quality (4:2:0, as phones store it)."""
    if render == "libraw":
        from ..raw.dng import libraw_render_mosaic
        from ..raw.image import RawImage

        raw = RawImage(bayer=torch.zeros(2, 2), cfa=cfa, black_level=0, white_level=65535, wb_gains=wb_gains,
                       cam_to_srgb=cam_to_srgb, wb_source="camera").with_mosaic(mosaic)
        rgb = libraw_render_mosaic(raw)
    elif render == "classical":
        rgb = render_rgb(mosaic, cfa, wb_gains, cam_to_srgb)
    else:
        raise ConfigError(f"rgb render must be one of {', '.join(RGB_RENDERS)}, got {render!r}")
    pixels = (rgb.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype("uint8")
    if jpeg_quality:
        import io

        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=int(jpeg_quality))
        pixels = np.array(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).float() / 255.0


def render_camera_rgb(linear, wb_gains, cam_to_srgb, render):
    """Deprecated name of ``rz.synth.render_linear``."""
    warnings.warn("rz.data.render_camera_rgb is deprecated; use rz.synth.render_linear", DeprecationWarning,
                  stacklevel=2)
    return render_linear(linear, wb_gains, cam_to_srgb, render)


class PairDataset(Dataset, abc.ABC):
    """Base class: subclasses implement ``__len__`` (number of pairs) and ``load(index, generator)``."""

    def __init__(self, scale: int = 4, patch: int | None = 64, input_format: str = "raw", augment: bool = True,
                 target_margin: int = 0, seed: int = 0, rgb_render: str = "classical", jpeg_quality: int = 0,
                 flips: bool | None = None):
        if flips is not None:
            warnings.warn("flips= is deprecated; use augment=", DeprecationWarning, stacklevel=3)
            augment = flips
        if input_format not in INPUT_FORMATS:
            raise ConfigError(f"input_format must be one of {INPUT_FORMATS}, got {input_format!r}")
        if scale < 1 or patch is not None and patch < 1:
            raise ConfigError(f"scale and patch must be positive, got {scale} and {patch}")
        self.scale, self.patch, self.input_format = int(scale), patch, input_format
        self.augment, self.target_margin, self.seed = augment, int(target_margin), int(seed)
        if rgb_render not in RGB_RENDERS or not 0 <= int(jpeg_quality) <= 100:
            raise ConfigError(f"rgb_render must be one of {RGB_RENDERS} and jpeg_quality 0..100, got {rgb_render!r}, "
                              f"{jpeg_quality!r}")
        self.rgb_render, self.jpeg_quality = rgb_render, int(jpeg_quality)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """New random crops and augmentations for a new epoch (call before iterating)."""
        self.epoch = int(epoch)

    def generator(self, index: int, epoch: int | None = None) -> torch.Generator:
        epoch = self.epoch if epoch is None else epoch
        return torch.Generator().manual_seed(hash((self.seed, int(epoch), int(index))) & (2**63 - 1))

    @abc.abstractmethod
    def __len__(self) -> int:
        """The number of pairs."""

    @abc.abstractmethod
    def load(self, index: int, generator: torch.Generator) -> ZoomPair:
        """Pair ``index``, using ``generator`` for any randomness (window choice, noise)."""

    def __getitem__(self, index: int) -> dict:
        return self.sample(index, self.epoch)

    def sample(self, index: int, epoch: int) -> dict:
        """The sample of pair ``index`` in ``epoch`` (what ``dataset[index]`` gives after set_epoch)."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} pairs")
        generator = self.generator(index, epoch)
        pair = self.load(index, generator)
        mosaic, target, cfa = self._crop(pair, generator)
        if self.augment:
            mosaic, target, cfa = _random_dihedral(mosaic, target, cfa, generator)
        if self.input_format == "raw":
            flips = cfa.unify_flips()
            mosaic, target, cfa = mosaic.flip(flips), target.flip(flips), NETWORK_CFA
            network_input = F.pack_bayer(mosaic, cfa)
        else:
            network_input = render_rgb8(mosaic, cfa, pair.wb_gains, pair.cam_to_srgb, self.rgb_render,
                                        self.jpeg_quality)
        has_matrix = pair.cam_to_srgb is not None
        told = {} if pair.noise is None else {"noise": pair.noise.float()}
        return {"input": network_input.float(), "target": target.float(), "cfa": cfa,
                "wb_gains": pair.wb_gains.float(), "scale": self.scale, "index": index,
                "has_color_matrix": has_matrix,
                "cam_to_srgb": pair.cam_to_srgb.float() if has_matrix else torch.eye(3), **told, **pair.info}

    def _crop(self, pair: ZoomPair, generator: torch.Generator):
        """A window of ``patch`` x ``patch`` packed positions (2 patch mosaic sites) at any offset, so
        any CFA phase; (mosaic, target, the window's CFA)."""
        n, margin = self.scale, self.target_margin
        height, width = pair.mosaic.shape[-2:]
        if pair.target.shape[-2:] != (n * height + 2 * margin, n * width + 2 * margin):
            raise ShapeError(f"target {tuple(pair.target.shape[-2:])} is not {n} x the mosaic {height}x{width} "
                             f"plus {margin} px margins")
        if self.patch is None:
            return pair.mosaic, pair.target, pair.cfa
        size = 2 * self.patch
        if height < size or width < size:
            raise DataError(f"a {size}x{size} mosaic crop does not fit in {height}x{width}; use a smaller patch")
        top = int(torch.randint(0, height - size + 1, (1,), generator=generator))
        left = int(torch.randint(0, width - size + 1, (1,), generator=generator))
        mosaic = pair.mosaic[..., top:top + size, left:left + size]
        target = pair.target[..., n * top:n * (top + size) + 2 * margin, n * left:n * (left + size) + 2 * margin]
        return mosaic, target, pair.cfa.shifted(top, left)


def _random_dihedral(mosaic: torch.Tensor, target: torch.Tensor, cfa: Cfa, generator: torch.Generator):
    """One of the 8 flips/transposes of an (even-sized) mosaic and its target, drawn uniformly, with
    the pattern that results."""
    transpose, flip_v, flip_h = (bool(b) for b in torch.rand(3, generator=generator) < 0.5)
    if transpose:
        mosaic, target = mosaic.transpose(-1, -2), target.transpose(-1, -2)
    dims = [d for d, flag in ((-2, flip_v), (-1, flip_h)) if flag]
    if dims:
        mosaic, target = mosaic.flip(dims), target.flip(dims)
    return mosaic, target, cfa.transformed(flip_v, flip_h, transpose)
