"""Everything only a GPU can show, in one command (``make gpu-check``): build the CUDA extension, run
every GPU test (Triton and CUDA kernels against the chunked backend at real sizes, the memory bound,
pipelines and the learned zoom on the device), the CoBi kernel benchmark at full sizes, the ISP and
zoom throughput benchmarks; write one results file (default benchmarks/GPU_RESULTS.md) with the
card, each command, its exit status and output.

    python benchmarks/gpu_check.py [-o benchmarks/GPU_RESULTS.md]
"""
from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = [
    ("CUDA extension (JIT build for this card)",
     [sys.executable, "-c", "from rawzoom_isp.loss.cuda_ext import build_extension; build_extension(verbose=True); "
                            "print('built and loaded')"]),
    ("GPU tests", [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "tests"]),
    ("CoBi kernels vs naive, chunked and the GEMM floor", [sys.executable, "benchmarks/cobi_kernel.py"]),
    ("ISP throughput (with the batched GPU chain)", [sys.executable, "benchmarks/isp_throughput.py"]),
    ("Zoom throughput", [sys.executable, "benchmarks/zoom_throughput.py"]),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default=os.path.join(REPO, "benchmarks", "GPU_RESULTS.md"))
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("gpu-check: no CUDA device here; run it on a machine with a GPU", file=sys.stderr)
        return 1
    environment = dict(os.environ, TRITON_INTERPRET="0")  # real kernels, not the CPU interpreter
    environment.setdefault("TORCH_CUDA_ARCH_LIST", ".".join(map(str, torch.cuda.get_device_capability())))
    card = f"{torch.cuda.get_device_name()} (capability {torch.cuda.get_device_capability()})"
    sections, failed = [], []
    for title, command in STEPS:
        start = time.time()
        result = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True)
        seconds = time.time() - start
        status = "passed" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
        if result.returncode:
            failed.append(title)
        output = (result.stdout + result.stderr).strip()[-20000:]
        sections.append(f"## {title}: {status}, {seconds:.0f} s\n\n`{' '.join(command[1:])}`\n\n```\n{output}\n```\n")
        print(f"gpu-check: {title}: {status}")
    header = (f"# GPU check\n\nCard: {card}; torch {torch.__version__}; "
              f"{datetime.datetime.now().isoformat(timespec='minutes')}; command: `make gpu-check`.\n"
              f"Result: {'every step passed' if not failed else 'failed: ' + ', '.join(failed)}.\n\n")
    with open(args.output, "w") as fh:
        fh.write(header + "\n".join(sections))
    print(f"gpu-check: wrote {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
