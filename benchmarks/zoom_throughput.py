"""The learned zoom's speed, side by side in one run: training steps and inference of the default
network (PackedZoomNet, packed resolution, pixel shuffle, channels-last) against the paper's ZoomNet
at the same batch; and the camera-like digital zoom (`rawzoom zoom FILE --centre 4`: the centre
quarter of a 12 MP frame zoomed to 12 MP) end to end, with its peak memory.

    python benchmarks/zoom_throughput.py [--repeat 3] [--batch 4] [--patch 32] [--infer 128]
        [--file FRAME.dng] [--weights W] [--device cuda]
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import machine, timeit  # noqa: E402

from rawzoom_isp.models import build_model, default_weights, load_model, zoom_input  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_FILE = os.path.join(REPO, "..", "shared", "data", "raw", "dng", "gopro_hero7_gopr9231_full.dng")


def training_step(net, batch: int, patch: int, device: torch.device):
    """One Adam step on random packed crops (L1 on the raw output; the loss does not change the cost
    of the network much)."""
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-5)
    x = torch.rand(batch, 4, patch, patch, device=device).contiguous(memory_format=torch.channels_last)
    gains = torch.tensor([[2.0, 1.0, 1.5]], device=device).expand(batch, 3)

    def step():
        out = net(x, gains)
        loss = out.abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def digital_zoom(path: str, weights: str, repeat: int, device: str) -> tuple[list[float], float]:
    """Wall times of `rawzoom zoom PATH --centre 4` and the peak resident memory (MiB) of its process.
    Run while this process is still small: a child's peak counts the parent's memory it forked with."""
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "zoom.png")
        command = [sys.executable, "-m", "rawzoom_isp.cli", "-q", "zoom", path, "--centre", "4", "-o", out,
                   "--weights", weights, "--threads", str(torch.get_num_threads()), "--device", device]
        times = []
        for _ in range(repeat):
            if os.path.exists(out):
                os.remove(out)
            start = time.perf_counter()
            subprocess.run(command, check=True)
            times.append(time.perf_counter() - start)
    return times, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--patch", type=int, default=32, help="packed positions per side of a training crop")
    parser.add_argument("--infer", type=int, default=128, help="packed positions per side of the inference input")
    parser.add_argument("--file", default=DEFAULT_FILE, help="a 12 MP raw for the digital-zoom timing")
    parser.add_argument("--weights", default=None, help="the learned zoom (default: the shipped 4x)")
    parser.add_argument("--device", default="cpu", help="torch device for the networks (cpu, cuda, ...)")
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    weights = args.weights or default_weights(4)
    zoom = digital_zoom(args.file, weights, args.repeat, args.device) if os.path.exists(args.file) else None
    default = load_model(weights).train().to(device, memory_format=torch.channels_last)
    paper = build_model({"arch": "zoomnet", "scale": 4}).train().to(device, memory_format=torch.channels_last)
    print(f"Machine: {machine()}\n")
    print(f"## Training (batch {args.batch} of {args.patch} x {args.patch} packed crops) and inference "
          f"({args.infer} x {args.infer} packed input, 256-px tiles)\n")
    print("| network | parameters | train step s (median) | samples/s | inference MP/s (output) | vs ZoomNet |")
    print("|---|---|---|---|---|---|")
    rows = {}
    for name, net in (("PackedZoomNet (default)", default), ("ZoomNet (paper)", paper)):
        step = timeit(training_step(net, args.batch, args.patch, device), repeat=args.repeat, cuda=cuda)
        net.eval()
        x = torch.rand(1, 4, args.infer, args.infer, device=device)
        gains = torch.tensor([2.0, 1.0, 1.5], device=device)
        with torch.no_grad():
            infer = timeit(lambda: zoom_input(net, x, "RGGB", gains), repeat=args.repeat, cuda=cuda)
        net.train()
        output_mp = args.infer ** 2 * net.zoom ** 2 / 1e6
        rows[name] = (sum(p.numel() for p in net.parameters()), step["median"], output_mp / infer["median"])
    reference = rows["ZoomNet (paper)"][1]
    for name, (count, seconds, mps) in rows.items():
        print(f"| {name} | {count:,} | {seconds:.3f} | {args.batch / seconds:.1f} | {mps:.2f} | "
              f"{reference / seconds:.1f}x faster per step |")
    if zoom is not None:
        times, peak = zoom
        print(f"\n## Digital zoom: `rawzoom zoom {os.path.basename(args.file)} --centre 4` (decode, zoom, write PNG)\n")
        print(f"- wall time: median {sorted(times)[len(times) // 2]:.1f} s, best {min(times):.1f} s, "
              f"{args.repeat} runs; peak resident memory of the process: {peak:.0f} MiB")
    else:
        print(f"\n(no {args.file}: digital-zoom timing skipped)")


if __name__ == "__main__":
    main()
