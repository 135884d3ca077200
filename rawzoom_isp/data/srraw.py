"""SRRawDataset: the SR-RAW layout (Zhang et al. 2019) as optical zoom pairs.

Layout: ``root/<split>/<sequence>/0000k.<raw>`` + ``0000k.JPG``, k = 1..7, 00001 the longest focal
length. Pairs: 4x (00005 -> 00001), (00006 -> 00002), (00007 -> 00003), as the original; 8x: the
input whose focal ratio to 00001 is nearest 8. A pair needs both EXIF focal lengths, with a ratio
within ``FOCAL_RATIO_TOLERANCE`` of the scale; pairs that fail are skipped, one warning each, and
``summary`` says how many were used and why others were not.

For a pair: the input raw is cropped (centred, CFA phase kept) to the target's field of view; its
JPEG, cut alike, is the template to which the target JPEG is aligned by ECC (affine, on grey images
shrunk ``align_downscale`` x, less for crops under ``align_downscale`` x 128 px); the target is
warped onto the input crop at N x its size. JPEGs are read as stored, ignoring their EXIF
orientation, like the raw mosaic (a camera stores both in sensor orientation). White balance as the
original (``main_wb.py``): per image, the ratio of the means of LibRaw's linear renders with and
without the camera's WB, [R, G, B], read from the sequence's ``wb.txt`` when it has one; the target
is divided by it ** (1 / 2.2) (the network output gets it back after the net). The target keeps
``target_margin`` extra pixels per side for the shift-tolerant loss.

Each prepared pair (the input crop, the aligned target, the WB) is cached, written atomically, in
``cache_dir`` (default: ``$XDG_CACHE_HOME/rawzoom_isp/srraw``; never the dataset folder, which may be
read-only), keyed by the files' names, sizes and times and the preparation settings, and memory-mapped
when read, so DataLoader workers only read the pages of the crops they take. (rawpy and OpenMP can
deadlock in forked workers: use ``multiprocessing_context="spawn"`` with workers.)
"""
from __future__ import annotations

import hashlib
import logging
import os

import numpy as np
import torch

from ..atomic import atomic_path
from ..errors import AlignmentError, ConfigError, DataError, MissingDataError
from ..imageio import read_image
from ..isp import functional as F
from ..raw.reader import RAW_EXTENSIONS, libraw_linear_means, read_raw
from ..synth.noise import with_noise_profile
from .ecc import centre_scaling, ecc_affine, warp_affine
from .pairs import PairDataset, ZoomPair

log = logging.getLogger(__name__)
PAIRS_4X = ((5, 1), (6, 2), (7, 3))
FOCAL_RATIO_TOLERANCE = (0.75, 1.5)  # accepted focal ratio / scale


def jpeg_focal_length(path: str) -> float | None:
    """The EXIF FocalLength (mm) of an image, or None."""
    from PIL import Image

    with Image.open(path) as image:
        value = image.getexif().get_ifd(0x8769).get(37386)
    return float(value) if value else None


def read_wb_file(path: str) -> dict[str, torch.Tensor]:
    """The original's ``wb.txt`` (``main_wb.py``): lines "WB", then "<path without extension>:" and
    "r g g b"; -> {file stem: (R, G, B) gains}."""
    gains, key = {}, None
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if not line or line == "WB":
                continue
            if line.endswith(":"):
                key = os.path.basename(line[:-1])
            elif key is not None:
                r, g, _, b = (float(v) for v in line.split()[:4])
                gains[key] = torch.tensor([r, g, b]) / g
                key = None
    return gains


def _find(folder: str, index: int, extensions) -> str | None:
    stem = f"{index:05d}"
    for name in sorted(os.listdir(folder)):
        base, ext = os.path.splitext(name)
        if base == stem and ext.lower() in extensions:
            return os.path.join(folder, name)
    return None


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "rawzoom_isp", "srraw")


class SRRawDataset(PairDataset):
    @classmethod
    def from_config(cls, data: dict, source, **common) -> SRRawDataset:
        """The pairs a checked [data] section describes (``rz.data.registry``): an SR-RAW root."""
        return cls(data["root"], split=data["split"], cache_dir=data["cache_dir"], **common)

    def __init__(self, root: str, scale: int = 4, split: str | None = None, align_downscale: int = 8,
                 cache_dir: str | None = None, target_margin: int = 16, **crop_options):
        super().__init__(scale=scale, target_margin=target_margin, **crop_options)
        if scale not in (4, 8):
            raise ConfigError(f"SR-RAW pairs exist for 4x and 8x, got {scale}")
        base = os.path.join(root, split) if split else root
        if not os.path.isdir(base):
            raise MissingDataError(f"{base}: no such SR-RAW folder" + (f" (split {split!r})" if split else ""))
        self.align_downscale = align_downscale
        self.cache_dir = cache_dir or default_cache_dir()
        self.pairs, self.skipped = [], []
        for sequence in sorted(os.listdir(base)):
            folder = os.path.join(base, sequence)
            if os.path.isdir(folder) and not sequence.startswith("."):
                self._sequence_pairs(folder)
        if not self.pairs:
            raise MissingDataError(f"{base}: no usable SR-RAW pairs (0000k raw + JPG files); {self.summary}")
        log.info("SR-RAW %s: %s", base, self.summary)

    @property
    def summary(self) -> str:
        """How many pairs are used, and how many were skipped, by reason."""
        reasons: dict[str, int] = {}
        for _, reason in self.skipped:
            reasons[reason] = reasons.get(reason, 0) + 1
        skipped = "; ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
        return f"{len(self.pairs)} pairs used, {len(self.skipped)} skipped" + (f" ({skipped})" if skipped else "")

    def _skip(self, what: str, reason: str) -> None:
        self.skipped.append((what, reason))
        log.warning("SR-RAW: skipping %s: %s", what, reason)

    def _sequence_pairs(self, folder: str) -> None:
        files = {}
        for k in range(1, 8):
            raw, jpg = _find(folder, k, RAW_EXTENSIONS), _find(folder, k, (".jpg", ".jpeg"))
            if raw and jpg:
                files[k] = (raw, jpg, jpeg_focal_length(jpg))
        if self.scale == 4:
            chosen = [(s, t) for s, t in PAIRS_4X if s in files and t in files]
        else:
            focal = {k: f[2] for k, f in files.items() if f[2]}
            candidates = [k for k in focal if k != 1] if 1 in focal else []
            chosen = [(min(candidates, key=lambda k: abs(focal[1] / focal[k] - 8)), 1)] if candidates else []
        name = os.path.basename(folder)
        for s, t in chosen:
            what = f"{name}/{s:05d}->{t:05d}"
            (_, _, source_focal), (_, _, target_focal) = files[s], files[t]
            if not (source_focal and target_focal):
                self._skip(what, "no EXIF focal length")
                continue
            ratio = target_focal / source_focal
            low, high = FOCAL_RATIO_TOLERANCE
            if not low * self.scale <= ratio <= high * self.scale:
                self._skip(what, f"focal ratio far from {self.scale}x")
                continue
            self.pairs.append({"sequence": name, "folder": folder, "source": files[s], "target": files[t],
                               "ids": (s, t), "ratio": ratio})

    def __len__(self) -> int:
        return len(self.pairs)

    def _wb(self, pair: dict, raw_path: str) -> torch.Tensor:
        """The original's per-image WB (see the module docstring)."""
        wb_file = os.path.join(pair["folder"], "wb.txt")
        stem = os.path.splitext(os.path.basename(raw_path))[0]
        if os.path.isfile(wb_file):
            gains = read_wb_file(wb_file)
            if stem in gains:
                return gains[stem]
        with_wb, without = libraw_linear_means(raw_path, camera_wb=True), libraw_linear_means(raw_path, camera_wb=False)
        ratio = with_wb / without
        return ratio / ratio[1]

    def _cache_path(self, pair: dict) -> str:
        parts = [self.scale, self.target_margin, self.align_downscale]
        for path in (*pair["source"][:2], *pair["target"][:2]):
            stat = os.stat(path)
            parts += [os.path.basename(path), stat.st_size, stat.st_mtime_ns]
        key = hashlib.sha1(repr(parts).encode()).hexdigest()[:16]
        return os.path.join(self.cache_dir, f"{pair['sequence']}-{pair['ids'][0]:05d}-{pair['ids'][1]:05d}-{key}.pt")

    def prepared(self, index: int) -> dict:
        """The pair's input crop (mosaic, normalised), aligned target, WB, warp: from the cache, or
        computed and cached."""
        pair = self.pairs[index]
        path = self._cache_path(pair)
        if os.path.isfile(path):
            try:
                return torch.load(path, weights_only=True, mmap=True)  # pages of the crop only are read
            except Exception:  # noqa: BLE001 - a damaged cache entry is recomputed
                log.warning("SR-RAW: cache entry %s is damaged; recomputing it", path)
        entry = self._prepare(pair)
        os.makedirs(self.cache_dir, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.save(entry, tmp)
        return entry

    def _prepare(self, pair: dict) -> dict:
        (src_raw, src_jpg, _), (tgt_raw, tgt_jpg, _) = pair["source"], pair["target"]
        raw = read_raw(src_raw)
        n, margin = self.scale, self.target_margin
        ratio = pair["ratio"]
        # Centred field-of-view crop of the input mosaic, even offsets and sizes.
        height = int(raw.shape[0] / ratio) // 2 * 2
        width = int(raw.shape[1] / ratio) // 2 * 2
        top, left = (raw.shape[0] - height) // 4 * 2, (raw.shape[1] - width) // 4 * 2
        crop = raw.crop(top, left, height, width)
        # Template: the input JPEG cut to the same field of view, at the crop's size.
        src_image = read_image(src_jpg, apply_orientation=False)
        sy, sx = src_image.shape[1] / raw.shape[0], src_image.shape[2] / raw.shape[1]
        template = F.resize_to(src_image[:, round(top * sy):round((top + height) * sy),
                                         round(left * sx):round((left + width) * sx)], height, width)
        target_full = read_image(tgt_jpg, apply_orientation=False)
        shrink = min(self.align_downscale, max(1, min(height, width) // 128))  # ECC needs some 100 px to work on
        try:
            warp = ecc_affine(template, F.resize_to(target_full, height, width), downscale=shrink)
        except AlignmentError as exc:
            raise AlignmentError(f"{pair['folder']}: {pair['ids'][0]:05d} -> {pair['ids'][1]:05d}: {exc}") from None
        # Target grid q (N x the crop, plus margins) -> crop grid -> warp -> full target JPEG.
        to_crop = np.linalg.inv(centre_scaling(n, n)) @ np.array([[1, 0, -margin], [0, 1, -margin], [0, 0, 1.0]])
        to_jpeg = centre_scaling(target_full.shape[2] / width, target_full.shape[1] / height)
        full = to_jpeg @ np.vstack([warp, [0, 0, 1]]) @ to_crop
        target = warp_affine(target_full, full[:2], (n * height + 2 * margin, n * width + 2 * margin))
        target_wb = self._wb(pair, tgt_raw)
        target = F.apply_white_balance(target, 1.0 / target_wb, gamma=F.WB_GAMMA, clip=True)
        mosaic = crop.normalised()
        # Plain data only: the cache is read back with torch.load(weights_only=True), which refuses a Cfa.
        return {"mosaic": mosaic, "cfa": str(crop.cfa), "target": target.half(), "wb_gains": target_wb,
                "cam_to_srgb": crop.cam_to_srgb, "warp": torch.from_numpy(np.asarray(warp)).float(),
                "noise": _capture_noise(raw)}

    def load(self, index: int, generator: torch.Generator) -> ZoomPair:
        pair, entry = self.pairs[index], self.prepared(index)
        return ZoomPair(mosaic=entry["mosaic"], cfa=entry["cfa"], target=entry["target"],
                        wb_gains=entry["wb_gains"], cam_to_srgb=entry["cam_to_srgb"], noise=entry.get("noise"),
                        info={"source": f"{pair['sequence']}/{pair['ids'][0]:05d}->{pair['ids'][1]:05d}",
                              "pairs": "SR-RAW", "target_white_balanced": False, "warp": entry["warp"]})


def _capture_noise(raw) -> torch.Tensor | None:
    """The input capture's noise per colour (its NoiseProfile, else read from the whole frame); None
    where neither is possible (pairs of a cache written before it was kept carry none either)."""
    try:
        return with_noise_profile(raw).meta.noise
    except DataError:
        return None
