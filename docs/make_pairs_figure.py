"""Make docs/pairs.png: for one real raw, the HR target, the emulated LR input and the synthetic LR
input, rendered side by side (the LR inputs rendered by the classical ISP and shown 4x, nearest).

    python docs/make_pairs_figure.py [RAW] [-o docs/pairs.png]
"""
from __future__ import annotations

import argparse
import os
import tempfile
from importlib import resources

import numpy as np
import torch

import rawzoom_isp as rz
from rawzoom_isp.data import EmulatedRawPairs, SyntheticPairs, render_rgb8
from rawzoom_isp.isp import functional as F

SCALE = 4
PANEL = 384


def _render_input(sample: dict) -> torch.Tensor:
    mosaic = F.unpack_bayer(sample["input"], sample["cfa"])
    return render_rgb8(
        mosaic, sample["cfa"], sample["wb_gains"], sample["cam_to_srgb"] if sample["has_color_matrix"] else None
    )


def _panel(rgb: torch.Tensor, zoom: int) -> np.ndarray:
    if zoom > 1:
        rgb = rgb.repeat_interleave(zoom, -2).repeat_interleave(zoom, -1)
    _, h, w = rgb.shape
    top, left = (h - PANEL) // 2, (w - PANEL) // 2
    return (rgb[:, top : top + PANEL, left : left + PANEL].clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(
        np.uint8
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw", nargs="?", help="a raw file (default: the bundled HERO7 crop)")
    parser.add_argument("-o", "--output", default=os.path.join(os.path.dirname(__file__), "pairs.png"))
    args = parser.parse_args()
    with resources.as_file(resources.files("rawzoom_isp") / "samples" / "gopro_hero7_crop.dng") as sample:
        path = args.raw or str(sample)
        emulated = EmulatedRawPairs([path], scale=SCALE, patch=None, flips=False)[0]
    target = emulated["target"]
    with tempfile.TemporaryDirectory() as folder:
        rz.imageio.write_image(os.path.join(folder, "target.png"), target, bits=16)
        synthetic_sample = SyntheticPairs(folder, scale=SCALE, patch=None, flips=False)[0]
    panels = [("HR target (LibRaw render)", _panel(target, 1)),
              ("emulated LR input (real mosaic, 4x Bayer reduction)", _panel(_render_input(emulated), SCALE)),
              ("synthetic LR input (unprocessed sRGB, Brooks)", _panel(_render_input(synthetic_sample), SCALE))]
    from PIL import Image, ImageDraw

    label_height, gap = 28, 8
    canvas = Image.new("RGB", (len(panels) * PANEL + (len(panels) - 1) * gap, PANEL + label_height), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (label, pixels) in enumerate(panels):
        x = i * (PANEL + gap)
        canvas.paste(Image.fromarray(pixels), (x, label_height))
        draw.text((x + 4, 8), label, fill="black")
    canvas.save(args.output)
    print(f"wrote {args.output} from {os.path.basename(path)} (emulated pairs, not optical zoom pairs)")


if __name__ == "__main__":
    main()
