"""SRRawDataset: the SR-RAW layout (Zhang et al. 2019) as optical zoom pairs.

Layout: ``root[/split]/<sequence>/0000k.<raw>`` + ``0000k.JPG``, k = 1..7, 00001 the longest focal
length. Pairs: 4x (00005 -> 00001), (00006 -> 00002), (00007 -> 00003), as the original; 8x: the
input whose focal ratio to 00001 is nearest 8. For a pair, with focal lengths from the JPEG EXIF:
the input raw is cropped (centred, CFA phase kept) to the target's field of view; its JPEG, cropped
alike, is the template to which the target JPEG is aligned by ECC (affine, on grey images shrunk
``align_downscale`` x; the warp is cached per sequence as JSON); the target is warped onto the input
crop, resized to exactly N x the crop, and divided by its white balance ** (1 / 2.2) (the original's
"WB removed from the target"; the network output gets it back after the net). The target keeps
``target_margin`` extra pixels per side for the shift-tolerant loss.
"""
from __future__ import annotations

import json
import os

import numpy as np
import torch

from ..imageio import read_image
from ..isp import functional as F
from ..raw.reader import read_raw
from .align import ecc_affine, warp_affine
from .emulated import RAW_EXTENSIONS
from .pairs import PairDataset, ZoomPair

PAIRS_4X = ((5, 1), (6, 2), (7, 3))


def _centre_scaling(fx: float, fy: float) -> np.ndarray:
    """Pixel-centre coordinates of an image resized by (fx, fy): x' = (x + 0.5) f - 0.5."""
    return np.array([[fx, 0, (fx - 1) / 2], [0, fy, (fy - 1) / 2], [0, 0, 1.0]])


def _resize_to(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    shrink = height < image.shape[1]
    out = torch.nn.functional.interpolate(image[None], size=(height, width), mode="bicubic", align_corners=False,
                                          antialias=shrink)
    return out[0].clamp(0, 1)


def jpeg_focal_length(path: str) -> float | None:
    from PIL import Image

    with Image.open(path) as image:
        value = image.getexif().get_ifd(0x8769).get(37386)
    return float(value) if value else None


def _find(folder: str, index: int, extensions) -> str | None:
    stem = f"{index:05d}"
    for name in sorted(os.listdir(folder)):
        base, ext = os.path.splitext(name)
        if base == stem and ext.lower() in extensions:
            return os.path.join(folder, name)
    return None


class SRRawDataset(PairDataset):
    def __init__(self, root: str, scale: int = 4, split: str | None = None, align_downscale: int = 8,
                 cache_dir: str | None = None, target_margin: int = 16, **crop_options):
        super().__init__(scale=scale, target_margin=target_margin, **crop_options)
        if scale not in (4, 8):
            raise ValueError(f"SR-RAW pairs exist for 4x and 8x, got {scale}")
        base = os.path.join(root, split) if split and os.path.isdir(os.path.join(root, split)) else root
        if not os.path.isdir(base):
            raise FileNotFoundError(f"{base}: no such SR-RAW folder")
        self.align_downscale = align_downscale
        self.cache_dir = cache_dir or os.path.join(base, ".rawzoom_align")
        self.pairs = []
        for sequence in sorted(os.listdir(base)):
            folder = os.path.join(base, sequence)
            if os.path.isdir(folder) and not sequence.startswith("."):
                self.pairs += self._sequence_pairs(folder)
        if not self.pairs:
            raise FileNotFoundError(f"{base}: no SR-RAW sequences (0000k raw + JPG files) found")

    def _sequence_pairs(self, folder: str) -> list[dict]:
        files = {}
        for k in range(1, 8):
            raw, jpg = _find(folder, k, RAW_EXTENSIONS), _find(folder, k, (".jpg", ".jpeg"))
            if raw and jpg:
                files[k] = (raw, jpg, jpeg_focal_length(jpg))
        if self.scale == 4:
            chosen = [(s, t) for s, t in PAIRS_4X if s in files and t in files]
        else:
            candidates = [k for k in files if k != 1 and files[k][2] and 1 in files and files[1][2]]
            chosen = [(min(candidates, key=lambda k: abs(files[1][2] / files[k][2] - 8)), 1)] if candidates else []
        return [{"sequence": os.path.basename(folder), "folder": folder, "source": files[s], "target": files[t],
                 "ids": (s, t)} for s, t in chosen]

    def __len__(self) -> int:
        return len(self.pairs)

    def _warp(self, pair: dict, template: torch.Tensor, moving: torch.Tensor) -> np.ndarray:
        os.makedirs(self.cache_dir, exist_ok=True)
        path = os.path.join(self.cache_dir, f"{pair['sequence']}.json")
        key = "{:05d}-{:05d}@{}x{}".format(*pair["ids"], *template.shape[-2:])
        cached = json.load(open(path)) if os.path.isfile(path) else {}
        if key not in cached:
            cached[key] = ecc_affine(template, moving, downscale=self.align_downscale).tolist()
            tmp = f"{path}.part"
            with open(tmp, "w") as fh:
                json.dump(cached, fh, indent=1)
            os.replace(tmp, path)
        return np.asarray(cached[key])

    def load(self, index: int, generator: torch.Generator) -> ZoomPair:
        pair = self.pairs[index]
        (src_raw, src_jpg, src_focal), (tgt_raw, tgt_jpg, tgt_focal) = pair["source"], pair["target"]
        raw = read_raw(src_raw)
        if not (src_focal and tgt_focal) or tgt_focal <= src_focal:
            raise ValueError(f"{pair['folder']}: need EXIF focal lengths with the target longer than the input")
        n, margin = self.scale, self.target_margin
        ratio = tgt_focal / src_focal
        # Centred field-of-view crop of the input mosaic, even offsets, sizes such that N x fits.
        height = int(raw.shape[0] / ratio) // 2 * 2
        width = int(raw.shape[1] / ratio) // 2 * 2
        top, left = (raw.shape[0] - height) // 4 * 2, (raw.shape[1] - width) // 4 * 2
        crop = raw.crop(top, left, height, width)
        # Template: the input JPEG cut to the same field of view, at the crop's size.
        src_image = read_image(src_jpg)
        sy, sx = src_image.shape[1] / raw.shape[0], src_image.shape[2] / raw.shape[1]
        template = _resize_to(src_image[:, round(top * sy):round((top + height) * sy),
                                        round(left * sx):round((left + width) * sx)], height, width)
        target_full = read_image(tgt_jpg)
        warp = self._warp(pair, template, _resize_to(target_full, height, width))
        # Target grid q (N x the crop, plus margins) -> crop grid -> warp -> full target JPEG.
        to_crop = np.linalg.inv(_centre_scaling(n, n)) @ np.array([[1, 0, -margin], [0, 1, -margin], [0, 0, 1.0]])
        to_jpeg = _centre_scaling(target_full.shape[2] / width, target_full.shape[1] / height)
        full = to_jpeg @ np.vstack([warp, [0, 0, 1]]) @ to_crop
        target = warp_affine(target_full, full[:2], (n * height + 2 * margin, n * width + 2 * margin))
        target_wb = read_raw(tgt_raw).wb_gains
        target = F.apply_white_balance(target, 1.0 / target_wb, gamma=F.WB_GAMMA, clip=True)
        mosaic = F.subtract_black_level(crop.bayer[None], crop.black_level, crop.white_level)
        return ZoomPair(mosaic=mosaic, cfa=crop.cfa, target=target, wb_gains=target_wb, cam_to_srgb=crop.cam_to_srgb,
                        info={"source": f"{pair['sequence']}/{pair['ids'][0]:05d}->{pair['ids'][1]:05d}",
                              "pairs": "SR-RAW", "target_white_balanced": False, "warp": torch.from_numpy(np.asarray(warp)).float()})
