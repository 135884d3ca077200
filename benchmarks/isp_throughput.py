"""Classical ISP throughput against LibRaw, side by side in one run.

For each 12 MP GoPro frame: LibRaw (rawpy ``postprocess``) at half and full size, and our
differentiable float32 chain (``Pipeline.classical``), eager and under ``torch.compile``, file decode
included in every figure. With a GPU, also the chain batched on the GPU. Prints a markdown table of
megapixels (of the raw mosaic) per second and the ratio to LibRaw half size.

    python benchmarks/isp_throughput.py [--repeat 5] [--files a.dng b.dng] [--batch 8]
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import machine, timeit  # noqa: E402

import rawzoom_isp as rz  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_FILES = [
    os.path.join(REPO, "..", "shared", "data", "raw", "dng", name)
    for name in ("gopro_hero7_gopr9231_full.dng", "gopro_hero6_gopr0024_full.dng")
]


def libraw(path: str, half: bool):
    import rawpy

    with rawpy.imread(path) as raw:
        return raw.postprocess(half_size=half, use_camera_wb=True, no_auto_bright=True, output_bps=16, user_flip=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", nargs="+", default=DEFAULT_FILES)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8, help="frames per GPU batch")
    args = parser.parse_args()
    files = [f for f in args.files if os.path.isfile(f)]
    if not files:
        sys.exit("no input files: the 12 MP GoPro DNGs live in ../shared/data/raw/dng (pass --files otherwise)")

    half, full = rz.Pipeline.classical(demosaic="half"), rz.Pipeline.classical(demosaic="bilinear")
    compiled_half, compiled_full = torch.compile(half, dynamic=False), torch.compile(full, dynamic=False)
    rows = []
    for path in files:
        megapixels = rz.read_raw(path).bayer.numel() / 1e6
        cases = {
            "LibRaw postprocess, half size": lambda: libraw(path, True),
            "LibRaw postprocess, full size (AHD)": lambda: libraw(path, False),
            "ours eager, half size": lambda: half(rz.read_raw(path)),
            "ours torch.compile, half size": lambda: compiled_half(rz.read_raw(path)),
            "ours eager, full size (bilinear)": lambda: full(rz.read_raw(path)),
            "ours torch.compile, full size (bilinear)": lambda: compiled_full(rz.read_raw(path)),
        }
        timings = {name: timeit(fn, repeat=args.repeat, warmup=1) for name, fn in cases.items()}
        if torch.cuda.is_available():
            raws = [rz.read_raw(path)] * args.batch
            gpu_half = rz.Pipeline.classical(demosaic="half")
            bayer = torch.stack([r.bayer for r in raws]).unsqueeze(1)
            meta = rz.RawMeta.stack([r.meta for r in raws])

            def gpu_batch():
                return gpu_half(bayer.cuda(non_blocking=True), meta)

            gpu = timeit(gpu_batch, repeat=args.repeat, warmup=2, cuda=True)
            timings[f"ours GPU, half size, batch {args.batch} (decode excluded, upload included)"] = {
                k: v / args.batch for k, v in gpu.items()
            }
        reference = timings["LibRaw postprocess, half size"]["median"]
        for name, t in timings.items():
            rows.append(
                (
                    os.path.basename(path),
                    name,
                    t["median"],
                    t["best"],
                    megapixels / t["median"],
                    reference / t["median"],
                )
            )

    print(f"machine: {machine()}\n")
    print("| file | pipeline | median s | best s | MP/s (median) | speed vs LibRaw half |")
    print("|---|---|---|---|---|---|")
    for name, case, median, best, mps, ratio in rows:
        print(f"| {name} | {case} | {median:.3f} | {best:.3f} | {mps:.1f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
