"""CoBi backends side by side: time, peak memory and error against the naive reference, with the
GEMM floor (the equivalent torch matmuls) measured in the same run.

For N = M in {1024, 4096, 16384, 65536} and C in {300 (3 x 10 x 10 RGB patches), 64, 128, 256}:
forward and forward+backward time of every backend that fits, extra peak memory (CPU: resident-set
high-water mark; GPU: torch.cuda.max_memory_allocated), relative error of the loss and of the
gradient against naive where naive fits. Prints a markdown table.

    python benchmarks/cobi_kernel.py            # every size, on CUDA when present
    python benchmarks/cobi_kernel.py --quick    # the CPU subset (N <= 16384)
    python benchmarks/cobi_kernel.py --sizes 262144 --channels 64 --backends triton   # VGG conv1_2 of 512 px
"""
from __future__ import annotations

import argparse
import ctypes
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import machine, timeit  # noqa: E402

from rawzoom_isp.loss import cobi  # noqa: E402
from rawzoom_isp.loss.backends import available_backends  # noqa: E402

NAIVE_LIVE_MATRICES = 12  # N x M buffers the naive autograd graph keeps alive (measured order)


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field))


class PeakMemory:
    """Extra peak memory of a block: CUDA allocator peak, or the CPU resident-set high-water mark."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def __enter__(self):
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.before = torch.cuda.memory_allocated()
        else:
            ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back, so reuse does not hide the peak
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset the high-water mark to the current resident set
            self.before = _status_bytes("VmRSS:")
        return self

    def __exit__(self, *exc):
        if self.cuda:
            torch.cuda.synchronize()
            self.extra = torch.cuda.max_memory_allocated() - self.before
        else:
            self.extra = _status_bytes("VmHWM:") - self.before


def gemm_floor(n: int, channels: int, device, repeat: int) -> tuple[float, float]:
    """Seconds of the matmuls CoBi cannot avoid: D = Y X^T (forward), plus dY = G X and dX = G^T Y
    (backward), run in row blocks so that they fit in memory."""
    x = torch.randn(n, channels, device=device)
    y = torch.randn(n, channels, device=device)
    block = max(1, min(n, (256 * 2**20) // (4 * n)))
    g = torch.randn(block, n, device=device)

    def forward():
        for i in range(0, n, block):
            y[i:i + block] @ x.T

    def backward():
        for i in range(0, n, block):
            g[: min(block, n - i)] @ x
            g[: min(block, n - i)].T @ y[i:i + block]

    cuda = device.type == "cuda"
    fwd = timeit(forward, repeat=repeat, cuda=cuda)["median"]
    bwd = timeit(backward, repeat=repeat, cuda=cuda)["median"]
    return fwd, fwd + bwd


def run_case(backend: str, x, y, distance: str, repeat: int):
    cuda = x.device.type == "cuda"

    def forward():
        with torch.no_grad():
            return cobi(x, y, distance=distance, backend=backend)

    def forward_backward():
        xg = x.detach().requires_grad_()
        loss = cobi(xg, y, distance=distance, backend=backend)
        loss.backward()
        return loss, xg.grad

    fwd = timeit(forward, repeat=repeat, cuda=cuda)["median"]
    with PeakMemory(x.device) as peak:
        loss, grad = forward_backward()
    both = timeit(forward_backward, repeat=repeat, cuda=cuda)["median"]
    return fwd, both, peak.extra, loss.detach(), grad


def fits_naive(n: int, device, limit_bytes: int) -> bool:
    return NAIVE_LIVE_MATRICES * n * n * 4 < limit_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CPU subset: N up to 16384, fewer repeats")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", type=int, nargs="+")
    parser.add_argument("--channels", type=int, nargs="+", default=[300, 64, 128, 256])
    parser.add_argument("--repeat", type=int)
    parser.add_argument("--backends", nargs="+", default=None,
                        help="backends to time (default: every one that runs natively on the device)")
    parser.add_argument("--naive-limit-gb", type=float, default=None, help="largest naive working set to attempt")
    args = parser.parse_args()
    device = torch.device(args.device)
    sizes = args.sizes or ([1024, 4096, 16384] if args.quick else [1024, 4096, 16384, 65536])
    repeat = args.repeat or (2 if args.quick else 5)
    if args.naive_limit_gb is not None:
        limit = int(args.naive_limit_gb * 2**30)
    elif device.type == "cuda":
        limit = int(torch.cuda.mem_get_info()[0] * 0.8)
    else:
        limit = 6 * 2**30
    # Every backend that runs natively on the device (the Triton interpreter is for tests, not timing).
    backends = [b for b in available_backends(device) if not (b == "triton" and device.type != "cuda")]
    if args.backends is not None:
        unknown = sorted(set(args.backends) - set(backends))
        if unknown:
            parser.error(f"--backends: {', '.join(unknown)} not available on {device}; "
                         f"available: {', '.join(backends)}")
        backends = [b for b in backends if b in args.backends]

    print(f"machine: {machine()}; device {device}\n")
    print(
        "| N = M | C | backend | fwd s | fwd+bwd s | GEMM floor fwd+bwd s | ratio to floor | extra peak MiB "
        "| loss rel. err | grad rel. err | fwd+bwd vs naive |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        side = int(math.isqrt(n))
        for channels in args.channels:
            distance = "l2" if channels == 300 else "cosine"
            torch.manual_seed(0)
            x = torch.randn(1, channels, side, side, device=device)
            y = torch.randn(1, channels, side, side, device=device)
            _, floor = gemm_floor(side * side, channels, device, repeat)
            reference = None
            for backend in backends:
                if backend == "naive" and not fits_naive(n, device, limit):
                    print(
                        f"| {n} | {channels} | naive | - | - | {floor:.4f} | - | "
                        f"needs ~{NAIVE_LIVE_MATRICES * n * n * 4 / 2**30:.0f} GiB | - | - | - |"
                    )
                    continue
                try:
                    fwd, both, extra, loss, grad = run_case(backend, x, y, distance, repeat)
                except torch.OutOfMemoryError as exc:  # naive's exact cdist backward on CUDA holds N x M x C
                    torch.cuda.empty_cache()
                    print(f"| {n} | {channels} | {backend} | - | - | {floor:.4f} | - | out of memory "
                          f"({str(exc).split('.')[0]}) | - | - | - |", flush=True)
                    continue
                if backend == "naive":
                    reference = (loss, grad, both)
                    errors = ("0", "0", "1.00x")
                elif reference is not None:
                    loss_err = float((loss - reference[0]).abs() / reference[0].abs())
                    grad_err = float((grad - reference[1]).abs().max() / reference[1].abs().max())
                    errors = (f"{loss_err:.1e}", f"{grad_err:.1e}", f"{both / reference[2]:.2f}x")
                else:
                    errors = ("-", "-", "-")
                print(f"| {n} | {channels} | {backend} | {fwd:.4f} | {both:.4f} | {floor:.4f} | {both / floor:.1f}x | "
                      f"{extra / 2**20:.0f} | {errors[0]} | {errors[1]} | {errors[2]} |", flush=True)


if __name__ == "__main__":
    main()
