"""The ``rawzoom`` command. Every subcommand prints a one-line error and exits non-zero on bad
input, and never leaves a half-written output file."""
from __future__ import annotations

import argparse
import json
import os
import sys
from importlib import resources

from .errors import RawZoomError

SAMPLE_RAW = "gopro_hero7_crop.dng"


def _raw_arguments() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("file", help="raw file (DNG, CR2, NEF, ARW, ...) or a headerless Bayer dump")
    headerless = parent.add_argument_group("headerless Bayer dumps")
    headerless.add_argument("--shape", nargs=2, type=int, metavar=("H", "W"), help="mosaic height and width")
    headerless.add_argument("--dtype", default="<u2", help="numpy dtype of the samples (default <u2)")
    headerless.add_argument("--cfa", choices=["RGGB", "BGGR", "GRBG", "GBRG"])
    headerless.add_argument("--black", type=float, nargs="+", help="black level: one value or 4 (2x2 row-major)")
    headerless.add_argument("--white", type=float, help="white level")
    return parent


def _load(args):
    from .raw import read_raw

    if args.shape is None:
        return read_raw(args.file)
    black = None if args.black is None else (args.black[0] if len(args.black) == 1 else args.black)
    return read_raw(args.file, shape=args.shape, dtype=args.dtype, cfa=args.cfa, black_level=black, white_level=args.white)


def _cmd_info(args) -> None:
    facts = _load(args).describe()
    if args.json:
        print(json.dumps(facts, indent=2))
        return
    width = max(len(k) for k in facts)
    for key, value in facts.items():
        print(f"{key:<{width}}  {value}")


def _render(raw, args):
    from .isp import Pipeline
    from .isp.functional import apply_orientation

    if args.config:
        pipe = Pipeline.from_config(args.config)
    else:
        if raw.cam_to_srgb is None:
            print("rawzoom: note: the file has no colour matrix; colours stay in camera RGB", file=sys.stderr)
        if raw.wb_source != "camera":
            print(f"rawzoom: note: no camera white balance in the file; using {raw.wb_source} gains "
                  f"{[round(g, 3) for g in raw.wb_gains.tolist()]}", file=sys.stderr)
        pipe = Pipeline.classical(demosaic=args.demosaic, color_matrix=raw.cam_to_srgb is not None)
    rgb = pipe(raw)
    if rgb.ndim != 3 or rgb.shape[0] != 3:
        raise RawZoomError(f"the pipeline gives {pipe.output_kind.label} of shape {tuple(rgb.shape)}, not an RGB image")
    return rgb if args.no_orient else apply_orientation(rgb, raw.orientation)


def _cmd_render(args) -> None:
    from .imageio import write_image

    rgb = _render(_load(args), args)
    write_image(args.output, rgb, bits=args.bits)
    print(f"wrote {args.output} ({rgb.shape[2]}x{rgb.shape[1]}, {args.bits}-bit)")


def _cmd_synth(args) -> None:
    """sRGB image -> synthetic raw DNG (rz.synth.unprocess)."""
    import math

    import torch

    from .imageio import read_image
    from .raw import RawImage, write_dng
    from .synth import unprocess

    image = read_image(args.input)
    image = image[:, : image.shape[1] // 2 * 2, : image.shape[2] // 2 * 2]
    generator = torch.Generator().manual_seed(args.seed)
    mosaic, meta = unprocess(image, cfa=args.cfa, method=args.method, noise=not args.no_noise, generator=generator)
    white = 2**args.bits - 1
    raw = RawImage(bayer=torch.round(mosaic[0] * white), cfa=args.cfa, black_level=0, white_level=white,
                   wb_gains=meta.wb_gains[0], wb_source="camera", cam_to_srgb=meta.cam_to_srgb[0],
                   noise_profile=torch.stack([meta.shot, meta.read], 1).expand(3, 2) if not args.no_noise else None,
                   make="rawzoom_isp", model=f"synthetic ({args.method})")
    write_dng(args.output, raw, baseline_exposure=math.log2(float(meta.brightness[0])))
    print(f"wrote {args.output} ({raw.shape[1]}x{raw.shape[0]} {args.cfa}, {args.method}, seed {args.seed})")


def _cmd_demo(args) -> None:
    """Render the bundled HERO7 raw with the classical pipeline, plus a bicubic 4x zoom of its centre."""
    from .imageio import write_image
    from .isp import functional as F
    from .raw import read_raw

    with resources.as_file(resources.files("rawzoom_isp") / "samples" / SAMPLE_RAW) as sample:
        raw = read_raw(sample)
    args.no_orient, args.config = False, None
    rgb = _render(raw, args)
    os.makedirs(args.output, exist_ok=True)
    full = os.path.join(args.output, "hero7_classical.png")
    write_image(full, rgb)
    _, height, width = rgb.shape
    crop = rgb[:, height // 2 - 64 : height // 2 + 64, width // 2 - 64 : width // 2 + 64]
    zoom = os.path.join(args.output, "hero7_center_bicubic_x4.png")
    write_image(zoom, F.resize(crop, 4.0))
    print(f"rendered {SAMPLE_RAW} ({raw.make} {raw.model}) with the classical pipeline:\n  {full}\n  {zoom}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rawzoom", description="Camera raw ISP with a learned zoom.")
    sub = parser.add_subparsers(dest="command", required=True)
    raw_args = _raw_arguments()

    info = sub.add_parser("info", parents=[raw_args], help="print a raw file's metadata")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(run=_cmd_info)

    render = sub.add_parser("render", parents=[raw_args], help="render a raw file to sRGB with the classical ISP")
    render.add_argument("-o", "--output", required=True, help="output image (.png, .tif, .jpg)")
    render.add_argument("--bits", type=int, choices=[8, 16], default=8)
    render.add_argument("--config", help="pipeline TOML (default: the classical pipeline)")
    render.add_argument("--demosaic", default="bilinear",
                        choices=["bilinear", "half", "colour_bilinear", "malvar2004", "menon2007"])
    render.add_argument("--no-orient", action="store_true", help="keep the sensor's orientation")
    render.set_defaults(run=_cmd_render)

    synth = sub.add_parser("synth", help="turn an sRGB image into a synthetic raw DNG")
    synth.add_argument("input", help="sRGB image (.png, .jpg, .tif)")
    synth.add_argument("-o", "--output", required=True, help="output .dng")
    synth.add_argument("--method", choices=["brooks", "paper"], default="brooks")
    synth.add_argument("--cfa", choices=["RGGB", "BGGR", "GRBG", "GBRG"], default="RGGB")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--bits", type=int, default=14, choices=range(8, 17), metavar="8..16", help="white level 2^bits - 1")
    synth.add_argument("--no-noise", action="store_true")
    synth.set_defaults(run=_cmd_synth)

    demo = sub.add_parser("demo", help="render the bundled sample raw (what `make demo` runs)")
    demo.add_argument("-o", "--output", default="demo_output", help="output folder")
    demo.add_argument("--demosaic", default="malvar2004",
                      choices=["bilinear", "half", "colour_bilinear", "malvar2004", "menon2007"])
    demo.set_defaults(run=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (RawZoomError, OSError, ValueError) as exc:
        print(f"rawzoom {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
