"""SyntheticPairs: the paper's "syn-raw" from any folder of RGB images."""
from __future__ import annotations

import os

import torch
import torch.nn.functional as TF

from ..errors import DataError, MissingDataError
from ..imageio import read_image
from ..isp import functional as F
from ..synth.unprocess import unprocess
from .pairs import PairDataset, ZoomPair

CACHED_IMAGES = 16
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def list_files(root: str, extensions: tuple[str, ...]) -> list[str]:
    if not os.path.isdir(root):
        raise MissingDataError(f"{root}: no such folder")
    files = sorted(os.path.join(root, f) for f in os.listdir(root) if f.lower().endswith(extensions))
    if not files:
        raise MissingDataError(f"{root}: no files ending in {', '.join(extensions)}")
    return files


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W), reflect-padded."""
    radius = max(1, int(3 * sigma + 0.5))
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(x.device)
    c = x.shape[1]
    x = TF.conv2d(
        TF.pad(x, (radius, radius, 0, 0), mode="reflect"), kernel.reshape(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c
    )
    return TF.conv2d(
        TF.pad(x, (0, 0, radius, radius), mode="reflect"), kernel.reshape(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c
    )


def subpixel_shift(x: torch.Tensor, dy: float, dx: float) -> torch.Tensor:
    """Translate (B, C, H, W) by (dy, dx) pixels with bilinear resampling (borders replicated)."""
    height, width = x.shape[-2:]
    theta = torch.tensor([[1.0, 0.0, -2.0 * dx / width], [0.0, 1.0, -2.0 * dy / height]], dtype=x.dtype)
    grid = TF.affine_grid(theta[None].expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    return TF.grid_sample(x, grid.to(x.device), mode="bilinear", padding_mode="border", align_corners=False)


class SyntheticPairs(PairDataset):
    """Target: an sRGB image (a window of it when cropping). Input: the image reduced ``scale`` x
    (antialiased bicubic), optionally blurred (``blur_sigma`` LR px) and shifted by up to ``misalign``
    LR px, then turned into raw by ``rz.synth.unprocess`` (``method`` "brooks" or "paper")."""

    def __init__(self, root: str, scale: int = 4, method: str = "brooks", noise: bool = True, blur_sigma: float = 0.0,
                 misalign: float = 0.0, cfa: str = "RGGB", **crop_options):
        super().__init__(scale=scale, **crop_options)
        self.files = list_files(root, IMAGE_EXTENSIONS)
        self.method, self.noise, self.blur_sigma, self.misalign, self.cfa = method, noise, blur_sigma, misalign, cfa
        self._images: dict[int, torch.Tensor] = {}

    @classmethod
    def from_config(cls, data: dict, source, **common) -> SyntheticPairs:
        """The pairs a checked [data] section describes (``rz.data.registry``): a folder of images."""
        return cls(data["root"], method=data["method"], noise=data["noise"], **common)

    def __len__(self) -> int:
        return len(self.files)

    def load(self, index: int, generator: torch.Generator) -> ZoomPair:
        if index not in self._images:  # decoded images kept, the oldest dropped past CACHED_IMAGES
            if len(self._images) >= CACHED_IMAGES:
                self._images.pop(next(iter(self._images)))
            self._images[index] = read_image(self.files[index])
        return self.from_image(self._images[index], generator, source=os.path.basename(self.files[index]))

    def from_image(self, image: torch.Tensor, generator: torch.Generator, source: str = "") -> ZoomPair:
        n, margin = self.scale, self.target_margin
        unit = 2 * n
        if self.patch is not None:  # only the window a crop can use: 2p + 4 LR sites, plus margins
            window = (2 * self.patch + 4) * n
            height, width = image.shape[-2:]
            if height < window + 2 * margin or width < window + 2 * margin:
                raise DataError(f"{source}: {height}x{width} is smaller than the {window}px window a patch needs")
            top = int(torch.randint(0, height - window - 2 * margin + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - window - 2 * margin + 1, (1,), generator=generator))
            image = image[:, top:top + window + 2 * margin, left:left + window + 2 * margin]
        core = image[:, margin:image.shape[1] - margin, margin:image.shape[2] - margin]
        core = core[:, : core.shape[1] // unit * unit, : core.shape[2] // unit * unit]
        target = image[:, : core.shape[1] + 2 * margin, : core.shape[2] + 2 * margin]
        low = F.resize(core[None], 1.0 / n, mode="bicubic")
        if self.blur_sigma > 0:
            low = gaussian_blur(low, self.blur_sigma)
        if self.misalign > 0:
            dy, dx = ((torch.rand(2, generator=generator) * 2 - 1) * self.misalign).tolist()
            low = subpixel_shift(low, dy, dx)
        mosaic, meta = unprocess(
            low.clamp(0, 1), cfa=self.cfa, method=self.method, noise=self.noise, generator=generator
        )
        return ZoomPair(
            mosaic=mosaic[0],
            cfa=self.cfa,
            target=target,
            wb_gains=(meta.wb_gains * meta.brightness[:, None])[0],
            cam_to_srgb=meta.cam_to_srgb[0],
            noise=meta.colour_noise()[0],
            info={"source": source, "pairs": "synthetic", "target_white_balanced": True, "render": self.method},
        )
