"""SR-RAW loading speed, before and after caching the prepared pairs: samples per second of a
DataLoader over an SR-RAW-shaped folder at real file sizes (24 MP DNG raws, 8-bit JPEGs with EXIF
focal lengths), first with an empty cache (every pair decoded, aligned and warped: what every
sample cost before the cache) and then from the cache.

    python benchmarks/srraw_loading.py [--sequences 2] [--side 4000] [--workers 2]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from importlib import resources

import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
from common import machine  # noqa: E402
from test_srraw import FOCALS, _write_jpeg  # noqa: E402

import rawzoom_isp as rz  # noqa: E402
from rawzoom_isp.data import SRRawDataset  # noqa: E402
from rawzoom_isp.isp import functional as F  # noqa: E402


def build(root: str, sequences: int, height: int, width: int) -> None:
    """Sequences of seven captures, height x width each, from the bundled raw's render enlarged."""
    sample = resources.files("rawzoom_isp") / "samples" / "gopro_hero7_crop.dng"
    scene = rz.Pipeline.classical(demosaic="bilinear")(rz.read_raw(str(sample)))
    for number in range(sequences):
        folder = os.path.join(root, "train", f"{number:05d}")
        os.makedirs(folder)
        for k, focal in enumerate(FOCALS, start=1):
            side = round(scene.shape[1] * 24 / focal)
            top, left = (scene.shape[1] - side) // 2, (scene.shape[2] - side) // 2
            view = F.resize_to(scene[None, :, top:top + side, left:left + side], height, width)[0]
            mosaic = F.mosaic(F.srgb_degamma(view), "RGGB")[0]
            rz.write_dng(os.path.join(folder, f"{k:05d}.dng"),
                         rz.RawImage(bayer=(mosaic * 16000 + 512).round(), cfa="RGGB", black_level=512,
                                     white_level=16383, wb_gains=[2.0, 1.0, 1.5], cam_to_srgb=torch.eye(3)))
            _write_jpeg(os.path.join(folder, f"{k:05d}.JPG"), view, focal)


def rate(dataset, workers: int, epochs: int, warm_up: bool) -> float:
    """Samples per second over ``epochs`` passes; with ``warm_up``, after one untimed pass (workers
    started and kept, as in training)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=workers, shuffle=False,
                                         multiprocessing_context="spawn" if workers else None,
                                         persistent_workers=workers > 0)
    for _ in range(1 if warm_up else 0):
        for _ in loader:
            pass
    start = time.perf_counter()
    for _ in range(epochs):
        for _ in loader:
            pass
    return epochs * len(dataset) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=2)
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--width", type=int, default=6000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        build(root, args.sequences, args.height, args.width)
        cache = os.path.join(root, "cache")
        dataset = SRRawDataset(root, split="train", patch=64, target_margin=16, cache_dir=cache)
        cold = rate(dataset, args.workers, 1, warm_up=False)  # every pair prepared once
        warm = rate(dataset, args.workers, 20, warm_up=True)
    print(f"Machine: {machine()}\n")
    print(f"SR-RAW-shaped folder: {args.sequences} sequences x 7 captures of {args.height}x{args.width} "
          f"({args.height * args.width / 1e6:.0f} MP DNGs + JPEGs), {len(dataset)} 4x pairs, patch 64, "
          f"{args.workers} workers\n")
    print("| loading | samples/s |\n|---|---|")
    print(f"| uncached (decode both raws and JPEGs, ECC, warp: every sample before the cache) | {cold:.2f} |")
    print(f"| cached prepared pairs (crops only) | {warm:.2f} |")
    print(f"\nspeed-up: {warm / cold:.0f}x")


if __name__ == "__main__":
    main()
