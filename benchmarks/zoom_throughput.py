"""The learned zoom's speed, side by side in one run: training steps and inference of the default
network (PackedZoomNet, packed resolution, pixel shuffle, channels-last) against the paper's ZoomNet
at the same batch; and the camera-like digital zoom (`rawzoom zoom FILE --centre 4`: the centre
quarter of a 12 MP frame zoomed to 12 MP) end to end in fresh processes, with their peak memory,
beside rawpy's AHD render of the whole frame to a 16-bit PNG in the same run.

    python benchmarks/zoom_throughput.py [--repeat 3] [--batch 4] [--patch 32] [--infer 128]
        [--file FRAME.dng] [--weights W] [--device cuda] [--tiles 256 512 0]
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

from rawzoom_isp.models import build_model, default_weights, load_model, zoom_input  # noqa: E402
from rawzoom_isp.models.learned_zoom import DEFAULT_TILE  # noqa: E402
from rawzoom_isp.models.registry import told_noise  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_FILE = os.path.join(REPO, "..", "shared", "data", "raw", "dng", "gopro_hero7_gopr9231_full.dng")
NATIVE_NOISE = torch.tensor([[[4e-4, 1e-6]] * 3])  # (1, 3, 2): (S, O) per colour, a native capture's
RAWPY = "rawpy AHD render of the whole frame + 16-bit PNG (OpenCV)"


def training_step(net, batch: int, patch: int, device: torch.device):
    """One Adam step on random packed crops (L1 on the raw output; the loss does not change the cost
    of the network much)."""
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-5)
    x = torch.rand(batch, 4, patch, patch, device=device).contiguous(memory_format=torch.channels_last)
    gains = torch.tensor([[2.0, 1.0, 1.5]], device=device).expand(batch, 3)
    told = (NATIVE_NOISE.to(device).expand(batch, 3, 2),) if told_noise(net) else ()

    def step():
        out = net(x, gains, *told)
        loss = out.abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def digital_zoom(path: str, weights: str, repeat: int, device: str, tiles: list[int]) -> dict[str, list]:
    """{command: [(wall s, peak resident MiB), ...]} of fresh processes, alternating: `rawzoom zoom PATH
    --centre 4` at each tile size, and rawpy's AHD render of the whole frame written as a 16-bit PNG
    (what a photographer's classical pipeline costs, the ratio's base)."""
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "zoom.png")
        zoom = [sys.executable, "-m", "rawzoom_isp.cli", "-q", "zoom", path, "--centre", "4", "-o", out, "--force",
                "--weights", weights, "--threads", str(torch.get_num_threads()), "--device", device]
        commands = {RAWPY: [sys.executable, "-c", RAWPY_TO_PNG, path, out]}
        commands.update({f"`rawzoom zoom --centre 4 --tile {tile}`": [*zoom, "--tile", str(tile)] for tile in tiles})
        runs = {name: [] for name in commands}
        for _ in range(repeat):
            for name, command in commands.items():
                runs[name].append(run_measured(command))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--patch", type=int, default=32, help="packed positions per side of a training crop")
    parser.add_argument("--infer", type=int, default=128, help="packed positions per side of the inference input")
    parser.add_argument("--file", default=DEFAULT_FILE, help="a 12 MP raw for the digital-zoom timing")
    parser.add_argument("--weights", default=None, help="the learned zoom (default: the shipped 4x)")
    parser.add_argument("--device", default="cpu", help="torch device for the networks (cpu, cuda, ...)")
    parser.add_argument("--tiles", type=int, nargs="+", default=[DEFAULT_TILE],
                        help="`rawzoom zoom --tile` values to time side by side (input pixels; 0: untiled)")
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    weights = args.weights or default_weights(4)
    zoom = digital_zoom(args.file, weights, args.repeat, args.device, args.tiles) if os.path.exists(args.file) else None
    default = load_model(weights).train().to(device, memory_format=torch.channels_last)
    paper = build_model({"arch": "zoomnet", "scale": 4}).train().to(device, memory_format=torch.channels_last)
    print(f"Machine: {machine()}\n")
    print(f"## Training (batch {args.batch} of {args.patch} x {args.patch} packed crops) and inference "
          f"({args.infer} x {args.infer} packed input, tiles of {DEFAULT_TILE} px)\n")
    print("| network | parameters | train step s (median) | samples/s | inference MP/s (output) | vs ZoomNet |")
    print("|---|---|---|---|---|---|")
    rows = {}
    for name, net in (("PackedZoomNet (default)", default), ("ZoomNet (paper)", paper)):
        step = timeit(training_step(net, args.batch, args.patch, device), repeat=args.repeat, cuda=cuda)
        net.eval()
        x = torch.rand(1, 4, args.infer, args.infer, device=device)
        gains = torch.tensor([2.0, 1.0, 1.5], device=device)
        with torch.no_grad():
            noise = NATIVE_NOISE.to(device) if told_noise(net) else None
            infer = timeit(lambda: zoom_input(net, x, "RGGB", gains, noise=noise), repeat=args.repeat, cuda=cuda)
        net.train()
        output_mp = args.infer ** 2 * net.zoom ** 2 / 1e6
        rows[name] = (sum(p.numel() for p in net.parameters()), step["median"], output_mp / infer["median"])
    reference = rows["ZoomNet (paper)"][1]
    for name, (count, seconds, mps) in rows.items():
        print(f"| {name} | {count:,} | {seconds:.3f} | {args.batch / seconds:.1f} | {mps:.2f} | "
              f"{reference / seconds:.1f}x faster per step |")
    if zoom is not None:
        print(f"\n## Digital zoom: `rawzoom zoom {os.path.basename(args.file)} --centre 4` (decode, zoom, 16-bit "
              f"PNG), fresh processes, {args.repeat} runs each, alternating\n")
        print("| command | median wall s | best s | peak RSS MiB | wall vs rawpy |")
        print("|---|---|---|---|---|")
        base = statistics.median(wall for wall, _ in zoom[RAWPY])
        for name, runs in zoom.items():
            walls = [wall for wall, _ in runs]
            print(f"| {name} | {statistics.median(walls):.2f} | {min(walls):.2f} | {max(m for _, m in runs):.0f} | "
                  f"{statistics.median(walls) / base:.2f}x |")
    else:
        print(f"\n(no {args.file}: digital-zoom timing skipped)")


if __name__ == "__main__":
    main()
