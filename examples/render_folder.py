"""Render every raw file of a folder to 16-bit PNGs with the classical ISP (Menon demosaic), the way
the Python API does it: read_raw, turned as displayed (raw.oriented()), Pipeline.classical,
write_image with ICC and EXIF.

    python examples/render_folder.py RAW_FOLDER OUT_FOLDER
"""
import argparse
import os

import rawzoom_isp as rz
from rawzoom_isp.imageio import ImageInfo, write_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("out")
    args = parser.parse_args()
    pipe = rz.Pipeline.classical(demosaic="menon2007")
    os.makedirs(args.out, exist_ok=True)
    for name in sorted(os.listdir(args.folder)):
        if not name.lower().endswith(rz.raw.reader.RAW_EXTENSIONS):
            continue
        raw = rz.read_raw(os.path.join(args.folder, name)).oriented()
        rgb = pipe(raw)
        target = os.path.join(args.out, os.path.splitext(name)[0] + ".png")
        write_image(target, rgb, bits=16, info=ImageInfo(raw.make, raw.model))
        print(f"{name} -> {target} ({rgb.shape[2]}x{rgb.shape[1]})")


if __name__ == "__main__":
    main()
