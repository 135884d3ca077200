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


def _zoom_outputs(raw, scale: int, weights: str | None, no_orient: bool = False):
    """(learned zoom, bicubic zoom of the classical render), both N x the mosaic, display oriented."""
    from .isp import Pipeline
    from .isp import functional as F

    zoomed = Pipeline.default(scale=scale, weights=weights or "default", progress=True)(raw)
    classical = Pipeline.classical(demosaic="bilinear", color_matrix=raw.cam_to_srgb is not None)(raw)
    bicubic = F.resize(classical[None], float(scale))[0]
    if not no_orient:
        zoomed, bicubic = (F.apply_orientation(x, raw.orientation) for x in (zoomed, bicubic))
    return zoomed, bicubic


def _beside(path: str, suffix: str) -> str:
    stem, ext = os.path.splitext(path)
    return f"{stem}_{suffix}{ext}"


def _cmd_zoom(args) -> None:
    from .imageio import write_image

    zoomed, bicubic = _zoom_outputs(_load(args), args.scale, args.weights, args.no_orient)
    write_image(args.output, zoomed, bits=args.bits)
    print(f"wrote {args.output} ({zoomed.shape[2]}x{zoomed.shape[1]}, learned {args.scale}x zoom)")
    if args.compare:
        write_image(_beside(args.output, "bicubic"), bicubic, bits=args.bits)
        print(f"wrote {_beside(args.output, 'bicubic')} (bicubic zoom of the classical render)")


def _cmd_train(args) -> None:
    from .train import train

    final = train(args.config, resume=args.resume, init=args.init)
    if final and os.path.exists(final):
        print(f"trained: {final}")


def _cmd_eval(args) -> None:
    from .data import EmulatedRawPairs, SRRawDataset
    from .eval import evaluate, markdown_table

    if bool(args.raws) == bool(args.srraw):
        raise RawZoomError("give held-out pairs with --raws FILES (emulated pairs) or --srraw ROOT")
    if args.raws:
        pairs = EmulatedRawPairs(args.raws, scale=args.scale, patch=None, flips=False, noise_match=True)
    else:
        pairs = SRRawDataset(args.srraw, scale=args.scale, split=args.split, patch=None, flips=False,
                             target_margin=0)
    names = args.name or [os.path.splitext(os.path.basename(w))[0] for w in args.weights]
    if len(names) != len(args.weights):
        raise RawZoomError("give one --name per --weights")
    result = evaluate(dict(zip(names, args.weights)), pairs, out=args.output, tolerance=args.tolerance)
    print(markdown_table(result))
    print(f"wrote {args.output}/results.md, results.csv, results.json, figure.png")


def _cmd_compare(args) -> None:
    from .eval import compare

    result = compare(args.config)
    print(f"wrote {result['report']}")


def _cmd_demo(args) -> None:
    """Zoom the bundled HERO7 raw 4x with the shipped model, and write the bicubic comparison."""
    from .imageio import write_image
    from .raw import read_raw

    with resources.as_file(resources.files("rawzoom_isp") / "samples" / SAMPLE_RAW) as sample:
        raw = read_raw(sample)
    crop = raw.crop(raw.shape[0] // 2 - 96, raw.shape[1] // 2 - 128, 192, 256)  # a centre crop keeps it quick
    zoomed, bicubic = _zoom_outputs(crop, 4, None)
    os.makedirs(args.output, exist_ok=True)
    paths = [os.path.join(args.output, "hero7_zoom4x.png"), os.path.join(args.output, "hero7_zoom4x_bicubic.png")]
    write_image(paths[0], zoomed)
    write_image(paths[1], bicubic)
    print(f"zoomed the centre of {SAMPLE_RAW} ({raw.make} {raw.model}) 4x with the shipped model:")
    print("\n".join(f"  {p}" for p in paths))


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

    zoom = sub.add_parser("zoom", parents=[raw_args], help="zoom a raw file with the learned zoom")
    zoom.add_argument("-o", "--output", required=True, help="output image (.png, .tif, .jpg)")
    zoom.add_argument("--scale", type=int, default=4)
    zoom.add_argument("--weights", help="a checkpoint (default: the shipped weights)")
    zoom.add_argument("--compare", action="store_true", help="also write the bicubic zoom of the classical render")
    zoom.add_argument("--bits", type=int, choices=[8, 16], default=8)
    zoom.add_argument("--no-orient", action="store_true", help="keep the sensor's orientation")
    zoom.set_defaults(run=_cmd_zoom)

    train = sub.add_parser("train", help="train the zoom network (TOML config; under torchrun: DDP)")
    train.add_argument("--config", required=True)
    train.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    train.add_argument("--init", help="start from a checkpoint's weights (fine-tuning)")
    train.set_defaults(run=_cmd_train)

    evaluate = sub.add_parser("eval", help="score models and bicubic on held-out pairs")
    evaluate.add_argument("--weights", nargs="+", required=True)
    evaluate.add_argument("--name", nargs="+", help="a display name per checkpoint")
    evaluate.add_argument("--raws", nargs="+", help="held-out raw files (emulated pairs)")
    evaluate.add_argument("--srraw", help="an SR-RAW root")
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--scale", type=int, default=4)
    evaluate.add_argument("--tolerance", type=int, default=8, help="shift tolerance (px) of the alignment")
    evaluate.add_argument("-o", "--output", required=True, help="output folder")
    evaluate.set_defaults(run=_cmd_eval)

    compare = sub.add_parser("compare", help="train on real raw, synthetic raw and 8-bit RGB; compare")
    compare.add_argument("--config", required=True)
    compare.set_defaults(run=_cmd_compare)

    demo = sub.add_parser("demo", help="zoom the bundled sample raw (what `make demo` runs)")
    demo.add_argument("-o", "--output", default="demo_output", help="output folder")
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
