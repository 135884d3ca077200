"""Everything only a GPU can show, in one command (``make gpu-check``): build the CUDA extension, run
every GPU test (Triton and CUDA kernels against the chunked backend at real sizes, the memory bound,
pipelines and the learned zoom on the device), the CoBi kernel benchmark at full sizes, the ISP and
zoom throughput benchmarks and a short training run of the default network on the GPU; write one
results file (default benchmarks/GPU_RESULTS.md) with the card, each command, its exit status and
output. The file is rewritten after every step, so a run cut short keeps what it measured; steps run
in order of importance, each within its own time limit and what is left of ``--budget``.

    python benchmarks/gpu_check.py [-o benchmarks/GPU_RESULTS.md] [--budget SECONDS] [--raws FILE ...]
        [--skip WORD ...]
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DNG = os.path.join(REPO, "..", "shared", "data", "raw", "dng")
SAMPLE = os.path.join(REPO, "rawzoom_isp", "samples", "gopro_hero7_crop.dng")
TRAIN_STEPS = 200


def training_rate(run: str, batch: int) -> str:
    """Steps per second of a training run from its metrics.csv, the first logged step excluded (warm-up)."""
    with open(os.path.join(run, "metrics.csv")) as fh:
        rows = list(csv.DictReader(fh))
    first, last = rows[0], rows[-1]
    count, seconds = int(last["step"]) - int(first["step"]), float(last["seconds"]) - float(first["seconds"])
    return (f"steps {first['step']}..{last['step']}: {count / seconds:.2f} steps/s ({seconds / count * 1000:.0f} ms "
            f"per step, batch {batch}); loss {float(first['loss']):.4f} -> {float(last['loss']):.4f}")


def default_raws() -> list[str]:
    """The 12 MP GoPro frames of the project's shared folder, else the bundled sample crop."""
    names = ("gopro_hero7_gopr9231_full.dng", "gopro_hero6_gopr0024_full.dng")
    full = [os.path.join(SHARED_DNG, name) for name in names]
    present = [path for path in full if os.path.exists(path)]
    return present or [SAMPLE]


def twelve_megapixel_frame(run_dir: str) -> str:
    """A 12 MP DNG made by tiling the bundled sample crop's mosaic (its CFA phase kept), for the ISP
    benchmark where no full frame travelled with the checkout."""
    import dataclasses

    from rawzoom_isp.raw import read_raw, write_dng

    sample = read_raw(SAMPLE)
    rows, cols = (size - size % 2 for size in sample.shape)  # whole CFA tiles keep the phase
    reps = (-(-3000 // rows), -(-4000 // cols))
    tiled = sample.bayer[:rows, :cols].repeat(*reps)[:3000, :4000]
    path = os.path.join(run_dir, "tiled_12mp.dng")
    write_dng(path, dataclasses.replace(sample, bayer=tiled))
    return path


def steps(raws: list[str], run_dir: str) -> list[tuple]:
    """(title, command, time limit in seconds, summary of a passed step or None, extra environment),
    most important first."""
    python = sys.executable
    train_out = os.path.join(run_dir, "train")
    files = json.dumps([os.path.abspath(path) for path in raws])
    vgg_size = [python, "benchmarks/cobi_kernel.py", "--sizes", "262144", "--channels", "64", "--backends",
                "triton", "--repeat", "2"]
    return [
        ("CUDA extension (JIT build for this card)",
         [python, "-c", "from rawzoom_isp.loss.cuda_ext import build_extension; build_extension(verbose=True); "
                        "print('built and loaded')"], 300, None, {}),
        ("GPU tests", [python, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "tests"], 400, None, {}),
        ("CoBi at VGG conv1_2 of a 512 px crop (N = M = 262144, C = 64), Triton, tf32x3 dots", vgg_size, 120,
         None, {"RAWZOOM_COBI_PRECISION": "tf32x3"}),
        ("CoBi at VGG conv1_2 of a 512 px crop (N = M = 262144, C = 64), Triton, IEEE fp32 dots", vgg_size, 120,
         None, {"RAWZOOM_COBI_PRECISION": "ieee"}),
        ("CoBi kernels vs naive, chunked and the GEMM floor",
         [python, "benchmarks/cobi_kernel.py", "--repeat", "3"], 300, None, {}),
        ("Training the default network on the GPU (speed only; pairs emulated on the CPU each step)",
         [python, "-m", "rawzoom_isp.cli", "-q", "train", "--config", "default-4x", "--set", f"data.files={files}",
          "--set", f"optim.steps={TRAIN_STEPS}", "--set", "train.log_every=20", "--set",
          f"train.checkpoint_every={TRAIN_STEPS}", "--set", "train.device=cuda", "--set", f"train.out={train_out}"],
         240, lambda: training_rate(train_out, 16), {}),
        ("Zoom throughput on the GPU (default network vs the paper's ZoomNet)",
         [python, "benchmarks/zoom_throughput.py", "--device", "cuda", "--batch", "16", "--patch", "48",
          "--infer", "512", "--repeat", "5"], 180, None, {}),
        ("ISP throughput on a 12 MP frame (with the batched GPU chain)",
         [python, "benchmarks/isp_throughput.py", "--repeat", "3", "--files", *raws], 180, None, {}),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default=os.path.join(REPO, "benchmarks", "GPU_RESULTS.md"))
    parser.add_argument("--budget", type=float, default=570,
                        help="seconds for all steps together (default: what fits one 10-minute device call)")
    parser.add_argument("--raws", nargs="+", default=None,
                        help="raw files for the ISP benchmark and the training run (default: the shared "
                             "12 MP GoPro frames, else a 12 MP frame tiled from the bundled sample)")
    parser.add_argument("--skip", nargs="+", default=[], metavar="WORD",
                        help="leave out the steps whose title contains one of these words (to rerun the rest)")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("gpu-check: no CUDA device here; run it on a machine with a GPU", file=sys.stderr)
        return 1
    environment = dict(os.environ, TRITON_INTERPRET="0")  # real kernels, not the CPU interpreter
    environment.setdefault("TORCH_CUDA_ARCH_LIST", ".".join(map(str, torch.cuda.get_device_capability())))
    card = f"{torch.cuda.get_device_name()} (capability {torch.cuda.get_device_capability()})"
    import triton

    header = (f"# GPU check\n\nCard: {card}; torch {torch.__version__}, CUDA {torch.version.cuda}, "
              f"triton {triton.__version__}; {datetime.datetime.now().isoformat(timespec='minutes')}; "
              f"command: `python benchmarks/gpu_check.py {' '.join(sys.argv[1:])}`.\n")
    deadline = time.time() + args.budget
    sections, failed = [], []
    with tempfile.TemporaryDirectory(prefix="rawzoom-gpu-check-") as run_dir:
        raws = args.raws or default_raws()
        if raws == [SAMPLE]:
            raws = [twelve_megapixel_frame(run_dir)]
        for title, command, limit, summary, extra in steps(raws, run_dir):
            if any(word.lower() in title.lower() for word in args.skip):
                continue
            left = deadline - time.time()
            if left < 10:
                status, seconds, output = "not run (out of budget)", 0.0, ""
            else:
                start = time.time()
                try:
                    result = subprocess.run(command, cwd=REPO, env={**environment, **extra}, capture_output=True,
                                            text=True, timeout=min(limit, left))
                    status = "passed" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
                    output = result.stdout + result.stderr
                    if result.returncode == 0 and summary is not None:
                        output += "\n" + summary()
                except subprocess.TimeoutExpired as timeout:
                    status = f"STOPPED after {timeout.timeout:.0f} s"
                    output = "".join(part.decode(errors="replace") if isinstance(part, bytes) else (part or "")
                                     for part in (timeout.stdout, timeout.stderr))
                seconds = time.time() - start
            if not status.startswith("passed"):
                failed.append(title)
            settings = "".join(f"{name}={value} " for name, value in extra.items())
            sections.append(f"## {title}: {status}, {seconds:.0f} s\n\n`{settings}{' '.join(command[1:])}`\n\n"
                            f"```\n{output.strip()[-20000:]}\n```\n")
            print(f"gpu-check: {title}: {status} ({seconds:.0f} s)", flush=True)
            verdict = "every step passed" if not failed else "not passed: " + "; ".join(failed)
            with open(args.output, "w") as fh:
                fh.write(header + f"Result so far: {verdict}.\n\n" + "\n".join(sections))
    print(f"gpu-check: wrote {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
