"""The ``rawzoom`` command. Every subcommand prints a one-line error and exits non-zero on bad
input, and never leaves a half-written output file."""
from __future__ import annotations

import argparse
import json
import os
import sys
from importlib import resources

from .errors import RawZoomError
from .isp.kinds import DEMOSAIC_METHODS
from .raw.cfa import PATTERNS

SAMPLE_RAW = "gopro_hero7_crop.dng"


def _raw_arguments() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("file", help="raw file (DNG, CR2, NEF, ARW, ...) or a headerless Bayer dump")
    headerless = parent.add_argument_group("headerless Bayer dumps")
    headerless.add_argument("--shape", nargs=2, type=int, metavar=("H", "W"), help="mosaic height and width")
    headerless.add_argument("--dtype", default="<u2", help="numpy dtype of the samples (default <u2)")
    headerless.add_argument("--cfa", choices=PATTERNS)
    headerless.add_argument("--black", type=float, nargs="+", help="black level: one value or 4 (2x2 row-major)")
    headerless.add_argument("--white", type=float, help="white level")
    return parent


def _raw_options(args) -> dict:
    """read_raw's options from the headerless flags (which need --shape)."""
    if args.shape is None:
        given = [flag for flag, value in (("--cfa", args.cfa), ("--black", args.black), ("--white", args.white))
                 if value is not None]
        if given:
            raise RawZoomError(f"{args.file}: {', '.join(given)} describe a headerless dump and need --shape H W")
        return {}
    return dict(shape=args.shape, dtype=args.dtype, cfa=args.cfa, black_level=args.black, white_level=args.white)


def _load(args):
    from .raw import read_raw

    return read_raw(args.file, **_raw_options(args))


def _cmd_info(args) -> None:
    from .raw.reader import describe_raw, read_raw_facts

    facts = describe_raw(read_raw_facts(args.file, **_raw_options(args)))
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


def _zoom_region(raw, args):
    """The part of the raw to zoom: the whole raw, the display-centred 1/N (``--centre N``) or a
    display box (``--region Y X H W``), as a stored-orientation crop with even sides."""
    from .isp.functional import display_box_to_stored

    rows, cols = raw.shape
    display = (cols, rows) if raw.orientation >= 5 else (rows, cols)
    if args.centre:
        height, width = display[0] // args.centre, display[1] // args.centre
        box = ((display[0] - height) // 2, (display[1] - width) // 2, height, width)
    elif args.region:
        box = tuple(args.region)
    else:
        return raw
    top, left, height, width = box
    if min(top, left) < 0 or height < 2 or width < 2 or top + height > display[0] or left + width > display[1]:
        raise RawZoomError(f"{args.file}: region {box} (top, left, height, width) is not inside the "
                           f"{display[0]}x{display[1]} displayed image")
    top, left, height, width = display_box_to_stored(box, raw.orientation, raw.shape)
    return raw.crop(top, left, height // 2 * 2, width // 2 * 2)


def _cmd_zoom(args) -> None:
    import torch

    from .eval.evaluate import baseline
    from .imageio import check_image_path, write_image
    from .isp import Pipeline
    from .isp import functional as F

    outputs = {"learned": args.output}
    if args.compare:
        outputs["libraw"] = _beside(args.output, "libraw")
    for path in outputs.values():
        check_image_path(path, args.bits)
    raw = _zoom_region(_load(args), args)
    pixels = raw.shape[0] * raw.shape[1] * args.scale ** 2
    if pixels > args.max_pixels:
        raise RawZoomError(f"{args.file}: the {args.scale}x zoom of {raw.shape[1]}x{raw.shape[0]} would be "
                           f"{pixels / 1e6:.0f} MP, over --max-pixels {args.max_pixels / 1e6:.0f} MP; zoom a region "
                           "(--centre, --region) or raise --max-pixels")
    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = Pipeline.default(scale=args.scale, weights=args.weights or "default", tile=args.tile, progress=True)
    with torch.no_grad():
        images = {"learned": pipe(raw.bayer.to(args.device), raw.meta).cpu()}
    if args.compare:
        images["libraw"] = baseline("libraw", raw, args.scale)
    for name, image in images.items():
        image = image if args.no_orient else F.apply_orientation(image, raw.orientation)
        write_image(outputs[name], image, bits=args.bits)
        what = f"learned {args.scale}x zoom" if name == "learned" else f"LibRaw AHD render, bicubic {args.scale}x"
        print(f"wrote {outputs[name]} ({image.shape[2]}x{image.shape[1]}, {what})")


def _beside(path: str, suffix: str) -> str:
    stem, ext = os.path.splitext(path)
    return f"{stem}_{suffix}{ext}"


def _cmd_train(args) -> None:
    from .train import train

    final = train(args.config, resume=args.resume, init=args.init)
    if final and os.path.exists(final):
        print(f"trained: {final}")


def _cmd_eval(args) -> None:
    from .data import SRRawDataset
    from .eval import case_from_pair, emulated_cases, evaluate, markdown_table
    from .eval.cases import PHASE_OFFSETS

    if bool(args.raws) == bool(args.srraw):
        raise RawZoomError("give held-out pairs with --raws FILES (emulated pairs) or --srraw ROOT")
    names = args.name or [os.path.splitext(os.path.basename(w))[0] for w in args.weights]
    if len(names) != len(args.weights) or len(set(names)) != len(names):
        raise RawZoomError("give one distinct --name per --weights")
    if args.raws:
        phases = PHASE_OFFSETS if args.phases == "all" else PHASE_OFFSETS[:1]
        cases = list(emulated_cases(args.raws, scale=args.scale, size=args.size, crops=args.crops, phases=phases,
                                    noise=args.noise == "matched", seed=args.seed))
    else:
        pairs = SRRawDataset(args.srraw, scale=args.scale, split=args.split, patch=None, augment=False,
                             target_margin=0)
        cases = [case_from_pair(pairs.load(i, pairs.generator(i, 0))) for i in range(len(pairs))]
    result = evaluate(dict(zip(names, args.weights)), cases, scale=args.scale, out=args.output,
                      tolerance=args.tolerance, progress=True)
    print(markdown_table(result))
    print(f"wrote {os.path.join(args.output, 'results.md')}, results.csv, results.json, figure.png")


def _cmd_compare(args) -> None:
    from .eval import compare

    result = compare(args.config)
    print(f"wrote {result['report']}")


def _cmd_demo(args) -> None:
    """Zoom emulated 4x-smaller captures of the bundled HERO7 raw (a camera the shipped model never saw)
    with the shipped model and with LibRaw + bicubic; write the images and a side-by-side figure and
    print both scores against the full-resolution target."""
    from .eval import emulated_cases, score
    from .eval.evaluate import ModelMethod, baseline, lr_preview, save_strip
    from .imageio import write_image
    from .models import default_weights

    with resources.as_file(resources.files("rawzoom_isp") / "samples" / SAMPLE_RAW) as sample:
        cases = list(emulated_cases([str(sample)], scale=4, size=384, crops=2, phases=((0, 0),)))
    learned = ModelMethod(default_weights(4), 4)
    scores = {"LibRaw AHD + bicubic": [], "learned zoom": []}
    os.makedirs(args.output, exist_ok=True)
    for number, case in enumerate(cases):
        images = dict(zip(scores, (baseline("libraw", case.low, 4), learned(case.low))))
        for name, image in images.items():
            scores[name].append(score(image, case.target, 2))
        if number == 0:
            write_image(os.path.join(args.output, "hero7_zoom4x_libraw.png"), images["LibRaw AHD + bicubic"])
            write_image(os.path.join(args.output, "hero7_zoom4x_learned.png"), images["learned zoom"])
            panels = [("LR input, 4x nearest", lr_preview(case, 4)), *images.items(), ("target", case.target)]
            save_strip(panels, os.path.join(args.output, "hero7_zoom4x_figure.png"), size=384)
    print(f"4x zoom of {len(cases)} emulated 4x-smaller captures (384 px windows) of {SAMPLE_RAW}, a GoPro HERO7, "
          "a camera the shipped model never saw:")
    for name, rows in scores.items():
        print(f"  {name:<21} PSNR {sum(r['psnr'] for r in rows) / len(rows):.2f} dB   "
              f"SSIM {sum(r['ssim'] for r in rows) / len(rows):.4f}")
    print(f"wrote {os.path.join(args.output, 'hero7_zoom4x_figure.png')} (LR input | LibRaw + bicubic | learned | "
          "target) and the zoomed images beside it")


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
                        choices=DEMOSAIC_METHODS)
    render.add_argument("--no-orient", action="store_true", help="keep the sensor's orientation")
    render.set_defaults(run=_cmd_render)

    synth = sub.add_parser("synth", help="turn an sRGB image into a synthetic raw DNG")
    synth.add_argument("input", help="sRGB image (.png, .jpg, .tif)")
    synth.add_argument("-o", "--output", required=True, help="output .dng")
    synth.add_argument("--method", choices=["brooks", "paper"], default="brooks")
    synth.add_argument("--cfa", choices=PATTERNS, default="RGGB")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--bits", type=int, default=14, choices=range(8, 17), metavar="8..16", help="white level 2^bits - 1")
    synth.add_argument("--no-noise", action="store_true")
    synth.set_defaults(run=_cmd_synth)

    zoom = sub.add_parser("zoom", parents=[raw_args], help="zoom a raw file with the learned zoom")
    zoom.add_argument("-o", "--output", required=True, help="output image (.png, .tif, .jpg)")
    zoom.add_argument("--scale", type=int, default=4)
    zoom.add_argument("--weights", help="a checkpoint (default: the shipped weights)")
    where = zoom.add_mutually_exclusive_group()
    where.add_argument("--centre", "--center", type=int, metavar="N",
                       help="digital zoom: the central 1/N of the displayed image (with --scale N: output the "
                            "size of the input)")
    where.add_argument("--region", type=int, nargs=4, metavar=("Y", "X", "H", "W"),
                       help="zoom this box of the displayed image (top, left, height, width)")
    zoom.add_argument("--compare", action="store_true",
                      help="also write OUT_libraw: LibRaw's AHD render of the same raw, bicubic N x")
    zoom.add_argument("--bits", type=int, choices=[8, 16], default=8)
    zoom.add_argument("--no-orient", action="store_true", help="keep the sensor's orientation")
    zoom.add_argument("--device", default="cpu", help="torch device for the network (cpu, cuda, cuda:1, ...)")
    zoom.add_argument("--tile", type=int, default=256, help="tile size in packed pixels (memory per tile)")
    zoom.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's choice)")
    zoom.add_argument("--max-pixels", type=float, default=100e6,
                      help="refuse outputs larger than this many pixels (default 100e6)")
    zoom.set_defaults(run=_cmd_zoom)

    train = sub.add_parser("train", help="train the zoom network (TOML config; under torchrun: DDP)")
    train.add_argument("--config", required=True)
    train.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    train.add_argument("--init", help="start from a checkpoint's weights (fine-tuning)")
    train.set_defaults(run=_cmd_train)

    evaluate = sub.add_parser("eval", help="score models against LibRaw and classical zooms on held-out raws")
    evaluate.add_argument("--weights", nargs="*", default=[], help="checkpoints (none: baselines only)")
    evaluate.add_argument("--name", nargs="+", help="a display name per checkpoint")
    evaluate.add_argument("--raws", nargs="+", help="held-out full-resolution raws (emulated pairs)")
    evaluate.add_argument("--crops", type=int, default=24, help="textured windows, shared among the raws")
    evaluate.add_argument("--size", type=int, default=512, help="window size in target pixels")
    evaluate.add_argument("--phases", choices=["all", "native"], default="all",
                          help="every CFA phase (windows moved by 0/1 px), or the raw's own")
    evaluate.add_argument("--noise", choices=["matched", "none"], default="matched",
                          help="noise of a native LR capture, or none")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--srraw", help="an SR-RAW root (optical pairs) instead of --raws")
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--scale", type=int, default=4)
    evaluate.add_argument("--tolerance", type=int, default=2, help="shift tolerance (px) of the alignment")
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
