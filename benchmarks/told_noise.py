"""What a network told the noise gives for what it is told: on held-out emulated cases
(``rz.eval.emulated_cases``, one CFA phase per window, the centred geometry), each model's gain over
LibRaw + bicubic (colour-matched PSNR, plain PSNR, SSIM; mean +- SE over windows) when the LR raw
states:

- ``stated``: the noise its capture added (what the evaluation states: the native model times the
  noise factor; none on a clean capture), and with noise that times 0.5 and 2 (a profile that is off);
- ``estimate``: what ``estimate_noise`` reads on the whole LR frame that sensor captures, which is
  what a user's raw without a NoiseProfile gives the network (``rz.synth.with_noise_profile``). On a
  clean capture it reads the HR noise the LR sites keep, which the target shares, and texture.

    python benchmarks/told_noise.py RAW [RAW ...] [--weights W ...] [--scale 4] [--crops 8] [--clean]
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import machine  # noqa: E402

from rawzoom_isp.data.emulated import high_res, noise_model  # noqa: E402
from rawzoom_isp.eval.cases import emulated_cases  # noqa: E402
from rawzoom_isp.eval.evaluate import ModelMethod, baseline, score  # noqa: E402
from rawzoom_isp.raw import colour_noise, read_raw  # noqa: E402
from rawzoom_isp.synth.noise import estimate_noise  # noqa: E402
from rawzoom_isp.synth.sensor import Degradation  # noqa: E402

METRICS = ("psnr_cm", "psnr", "ssim")


def frame_estimate(path: str, scale: int, noisy: bool) -> torch.Tensor:
    """(S, O) per colour (3, 2) that ``estimate_noise`` reads on the whole centred LR frame of ``path``."""
    raw = read_raw(path)
    source = high_res(raw, "menon2007")
    unit = 2 * scale
    size = (raw.shape[0] // unit * unit, raw.shape[1] // unit * unit)
    degradation = Degradation("centred", noise=1.0 if noisy else 0.0)
    low, _ = source.capture(0, 0, size, scale, degradation, noise_model(raw) if noisy else None,
                            torch.Generator().manual_seed(0))
    return colour_noise(estimate_noise(raw.crop(0, 0, 2, 2).with_mosaic(low)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raws", nargs="+")
    parser.add_argument("--weights", nargs="*", default=["default"])
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--crops", type=int, default=8)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--clean", action="store_true", help="no added noise (default: a native capture's)")
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    models = {os.path.basename(w): ModelMethod(w, args.scale) for w in args.weights}
    told = [name for name, method in models.items() if method.zoom.told_noise]
    if not told:
        parser.error("none of --weights is told the noise")
    print(f"{machine()}; {args.scale}x, centred, {'no added noise' if args.clean else 'native noise'}, "
          f"{args.crops} windows of {args.size} px per raw, phase 0; gain over LibRaw + bicubic, mean +- SE over "
          "windows\n")
    print("| raw | model | told | " + " | ".join(METRICS) + " |\n|---|---|---|" + "---|" * len(METRICS))
    for path in args.raws:
        estimate = frame_estimate(path, args.scale, not args.clean)
        variants = {"stated": 1.0, "estimate": None} if args.clean else \
            {"stated x0.5": 0.5, "stated": 1.0, "stated x2": 2.0, "estimate": None}
        gains = {(name, variant): {m: [] for m in METRICS} for name in told for variant in variants}
        cases = emulated_cases([path], scale=args.scale, size=args.size, crops=args.crops, phases=((0, 0),),
                               noise=not args.clean)
        with torch.no_grad():
            for case in cases:
                reference = score(baseline("libraw", case.low, args.scale), case.target, 2)
                for variant, factor in variants.items():
                    stated = estimate if factor is None else case.low.noise_profile * factor
                    low = dataclasses.replace(case.low, noise_profile=stated)
                    for name in told:
                        scores = score(models[name](low), case.target, 2)
                        for m in METRICS:
                            gains[name, variant][m].append(scores[m] - reference[m])
        for (name, variant), table in gains.items():
            cells = []
            for m in METRICS:
                values = torch.tensor(table[m], dtype=torch.float64)
                se = float(values.std() / math.sqrt(len(values))) if len(values) > 1 else float("nan")
                digits = 4 if m == "ssim" else 2
                cells.append(f"{float(values.mean()):+.{digits}f} +- {se:.{digits}f}")
            print(f"| {os.path.basename(path)} | {name} | {variant} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
