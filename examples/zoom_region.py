"""Zoom a region of a raw 4x with the shipped learned zoom: as a display PNG, and as a linear DNG to
keep developing in a raw editor.

    python examples/zoom_region.py RAW TOP LEFT HEIGHT WIDTH OUT_STEM
(TOP LEFT HEIGHT WIDTH in the displayed image's pixels, as `rawzoom zoom --region` takes them)
"""
import argparse

import torch

import rawzoom_isp as rz
from rawzoom_isp.imageio import ImageInfo, write_image
from rawzoom_isp.raw.dng import write_linear_dng


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw")
    parser.add_argument("box", type=int, nargs=4)
    parser.add_argument("out")
    args = parser.parse_args()
    # The displayed image's box, turned as displayed: the zoom comes out the way a viewer shows it. The
    # network is told the capture's noise: the file's NoiseProfile, or read from the whole frame first.
    raw = rz.synth.with_noise_profile(rz.read_raw(args.raw)).oriented().crop_displayed(*args.box)
    pipe = rz.Pipeline.default(scale=4)
    with torch.no_grad():
        rgb, steps = pipe(raw, return_intermediates=True)
    write_image(f"{args.out}.png", rgb, info=ImageInfo(raw.make, raw.model))
    write_linear_dng(f"{args.out}.dng", steps["zoom"], raw)  # linear camera RGB, before white balance
    print(f"wrote {args.out}.png and {args.out}.dng ({rgb.shape[2]}x{rgb.shape[1]})")


if __name__ == "__main__":
    main()
