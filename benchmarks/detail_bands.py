"""Where a zoom keeps or loses detail: each method's power per spatial-frequency band, over the
target's, on held-out emulated cases (``rz.eval.emulated_cases``, one CFA phase per window).

For each window the grey (R, G, B mean) of the output and of the target are Fourier transformed; per
radial band (cycles per output px) the ratio of the output's power to the target's (1: the band's
detail kept at its strength; below 1: smoothed; above: sharpened or noise) and the error's power over
the target's. Bands below 1 / (2 N) cycles/px lie inside what the LR sensor resolves. The mean over
windows is printed, per method. A second table answers whether a model's smoothing follows the
input's brightness: the LR raw pushed ``--push`` times (before the zoom, clipped at white) and the
output divided back, against the plain output (1: brightness-blind; above 1: it keeps more detail
in brighter input, as a blind denoiser that expects the noise of a darker capture does).

    python benchmarks/detail_bands.py RAW [--weights W ...] [--scale 4] [--crops 8] [--clean] [--push 2.5]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import machine  # noqa: E402

from rawzoom_isp.eval.cases import emulated_cases  # noqa: E402
from rawzoom_isp.eval.evaluate import ModelMethod, baseline  # noqa: E402

EDGES = (0.0, 0.03, 0.0625, 0.09, 0.125, 0.19, 0.25, 0.5)  # cycles per output px


def band_powers(image: torch.Tensor) -> torch.Tensor:
    """Power of the grey of ``image`` (3, H, W), its mean removed, in each band of ``EDGES``."""
    grey = image.double().mean(0)
    power = torch.fft.fft2(grey - grey.mean()).abs() ** 2
    radius = (torch.fft.fftfreq(grey.shape[0])[:, None] ** 2 + torch.fft.fftfreq(grey.shape[1])[None] ** 2).sqrt()
    return torch.stack([power[(radius >= low) & (radius < high)].sum() for low, high in zip(EDGES[:-1], EDGES[1:])])


def pushed(method, low, push: float) -> torch.Tensor:
    """``method``'s linear output for the LR raw pushed ``push`` times, divided back. The noise it
    states scales with it (S x + O of the pushed signal p x: p S and p^2 O), so a network told the
    noise sees the same signal-to-noise ratio."""
    black = low.black_level.repeat(low.shape[0] // 2, low.shape[1] // 2)
    bayer = ((low.bayer - black) * push + black).clamp(max=low.white_level)
    profile = low.noise_profile
    profile = None if profile is None else profile * torch.tensor([push, push ** 2])
    linear = method.pipeline(dataclasses.replace(low, bayer=bayer, noise_profile=profile), stop="zoom")
    return linear / push


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raws", nargs="+")
    parser.add_argument("--weights", nargs="*", default=["default"])
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--crops", type=int, default=8)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--clean", action="store_true", help="no added noise (default: a native capture's)")
    parser.add_argument("--push", type=float, default=2.5)
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    models = {os.path.basename(w): ModelMethod(w, args.scale) for w in args.weights}
    ratios, errors, brightness = {}, {}, {name: [] for name in models}
    cases = emulated_cases(args.raws, scale=args.scale, size=args.size, crops=args.crops, phases=((0, 0),),
                           noise=not args.clean)
    with torch.no_grad():
        for case in cases:
            target = band_powers(case.target)
            outputs = {"libraw + bicubic": baseline("libraw", case.low, args.scale)}
            outputs.update({name: method(case.low) for name, method in models.items()})
            for name, output in outputs.items():
                ratios.setdefault(name, []).append(band_powers(output) / target)
                errors.setdefault(name, []).append(band_powers(output - case.target) / target)
            for name, method in models.items():
                if method.raw_input:
                    plain = method.pipeline(case.low, stop="zoom")
                    brightness[name].append(band_powers(pushed(method, case.low, args.push)) / band_powers(plain))
    bands = " | ".join(f"{low:g}-{high:g}" for low, high in zip(EDGES[:-1], EDGES[1:]))
    print(f"{machine()}; {', '.join(args.raws)}; {args.scale}x, {'no added noise' if args.clean else 'native noise'}, "
          f"{args.crops} windows of {args.size} px, phase 0; LR Nyquist {1 / (2 * args.scale):g} cycles/px\n")
    print(f"| method | quantity | {bands} |\n|---|---|" + "---|" * (len(EDGES) - 1))
    for name in ratios:
        for label, table in (("power / target's", ratios), ("error power / target's", errors)):
            values = torch.stack(table[name]).mean(0)
            print(f"| {name} | {label} | " + " | ".join(f"{v:.2f}" for v in values.tolist()) + " |")
    for name, rows in brightness.items():
        if rows:
            values = torch.stack(rows).mean(0)
            print(f"| {name} | power, input x{args.push:g} / plain | " + " | ".join(f"{v:.2f}" for v in values.tolist())
                  + " |")


if __name__ == "__main__":
    main()
