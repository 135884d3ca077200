"""Classical ISP throughput against LibRaw, side by side in one run.

Part 1, the chain in one process: for each 12 MP GoPro frame, LibRaw (rawpy ``postprocess``) at half
and full size, and our differentiable float32 chain (``Pipeline.classical``), eager and under
``torch.compile``, file decode included in every figure. With a GPU, also the chain batched on the
GPU. A markdown table of megapixels (of the raw mosaic) per second and the ratio to LibRaw half size.

Part 2, what a user runs: raw file to 16-bit PNG in a fresh process, each command alone, wall time
and peak resident memory (the child's ``ru_maxrss``): ``rawzoom render`` (default demosaic and
menon2007) against rawpy's AHD render written with the same PNG encoder (OpenCV), and the cost of
starting Python with torch alone.

    python benchmarks/isp_throughput.py [--repeat 5] [--files a.dng b.dng] [--batch 8] [--commands-only]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import RAWPY_TO_PNG, machine, run_measured, timeit  # noqa: E402

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


def user_commands(files: list[str], repeat: int) -> None:
    """Part 2: raw file -> 16-bit PNG per command, medians over ``repeat`` fresh processes, alternating
    the commands so that load on the machine falls on all of them alike."""
    rawzoom = [sys.executable, "-m", "rawzoom_isp.cli", "-q", "render", "--bits", "16", "--force"]
    print("\n| file | command (raw -> 16-bit PNG, fresh process) | median wall s | peak RSS MiB "
          "| wall vs rawpy | memory vs rawpy |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="rawzoom-isp-bench-") as folder:
        out = os.path.join(folder, "out.png")
        for path in files:
            commands = {
                "rawpy AHD + OpenCV PNG": [sys.executable, "-c", RAWPY_TO_PNG, path, out],
                "rawzoom render (default, malvar2004)": [*rawzoom, path, "-o", out],
                "rawzoom render --demosaic menon2007": [*rawzoom, "--demosaic", "menon2007", path, "-o", out],
                "python -c 'import torch' (start-up alone)": [sys.executable, "-c", "import torch"],
            }
            runs = {name: [] for name in commands}
            for _ in range(repeat):
                for name, command in commands.items():
                    runs[name].append(run_measured(command))
            walls = {name: statistics.median(w for w, _ in r) for name, r in runs.items()}
            peaks = {name: max(m for _, m in r) for name, r in runs.items()}
            base = "rawpy AHD + OpenCV PNG"
            for name in commands:
                print(f"| {os.path.basename(path)} | {name} | {walls[name]:.2f} | {peaks[name]:.0f} | "
                      f"{walls[name] / walls[base]:.2f}x | {peaks[name] / peaks[base]:.2f}x |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", nargs="+", default=DEFAULT_FILES)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8, help="frames per GPU batch")
    parser.add_argument("--commands-only", action="store_true", help="part 2 only (the user's commands)")
    args = parser.parse_args()
    files = [f for f in args.files if os.path.isfile(f)]
    if not files:
        sys.exit("no input files: the 12 MP GoPro DNGs live in ../shared/data/raw/dng (pass --files otherwise)")
    print(f"machine: {machine()}\n")
    if not args.commands_only:
        chain_throughput(files, args)
    user_commands(files, args.repeat)


def chain_throughput(files: list[str], args) -> None:
    """Part 1: the chain in this process, LibRaw alongside."""
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

    print("| file | pipeline | median s | best s | MP/s (median) | speed vs LibRaw half |")
    print("|---|---|---|---|---|---|")
    for name, case, median, best, mps, ratio in rows:
        print(f"| {name} | {case} | {median:.3f} | {best:.3f} | {mps:.1f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
