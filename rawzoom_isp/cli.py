"""The ``rawzoom`` command.

Every subcommand prints a one-line error and exits 1 on bad input (130 on Ctrl-C), never overwrites
an output unless ``--force`` is given, and never leaves a half-written file (outputs are written to
a temporary name and renamed when complete). ``render``, ``zoom`` and ``info`` take several files or
folders; with several inputs (or an existing folder as ``-o``) outputs go into that folder, named
after their inputs. ``-q`` prints errors only, ``-v`` also the warnings of the libraries underneath
(tifffile, libpng, OpenCV) and tracebacks of unexpected errors.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import warnings

from . import __version__
from .color import OUTPUT_SPACES
from .errors import OutputExistsError, RawZoomError
from .isp.kinds import DEMOSAIC_METHODS, HIGHLIGHT_MODES, DataKind
from .raw.cfa import PATTERNS
from .raw.reader import raw_files

IMAGE_FORMATS = ("png", "tif", "jpg")
_FILE_KINDS = {"png", "tif", "tiff", "jpg", "jpeg", "dng"}


class _Console:
    """What the command prints: results unless quiet."""

    quiet = False

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text)


console = _Console()


def _set_loudness(quiet: bool, verbose: bool) -> None:
    """-q: errors only; default: our own warnings too; -v: also the libraries' warnings and infos."""
    console.quiet = quiet
    if verbose:
        logging.basicConfig(level=logging.INFO, format="rawzoom: %(name)s: %(message)s")
        return
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    warnings.simplefilter("ignore")
    for name in ("tifffile", "PIL"):  # their errors about a damaged file: ours names it in one line
        logging.getLogger(name).setLevel(logging.CRITICAL)
    logging.basicConfig(level=logging.ERROR if quiet else logging.WARNING, format="rawzoom: %(message)s")


# -- inputs and outputs ------------------------------------------------------------------------

def _outputs(inputs: list[str], output: str, fmt: str | None, suffix: str = "") -> list[str]:
    """The output path of each input. One input and a file name: that name (its extension gives the
    format unless --format says otherwise, which must agree). Several inputs, an existing folder, or
    a name ending in a separator: a folder, with <input stem><suffix>.<format>."""
    folder = len(inputs) > 1 or os.path.isdir(output) or output.endswith(("/", os.sep))
    named_like_a_file = os.path.splitext(output.rstrip("/" + os.sep))[1].lower().lstrip(".") in _FILE_KINDS
    if len(inputs) > 1 and named_like_a_file and not os.path.isdir(output):
        raise RawZoomError(f"{output}: {len(inputs)} inputs need a folder for -o (a name without an image "
                           "extension, or ending in /)")
    if not folder:
        ext = os.path.splitext(output)[1].lower().lstrip(".")
        ext = {"tiff": "tif", "jpeg": "jpg"}.get(ext, ext)
        if fmt and ext != fmt:
            raise RawZoomError(f"{output}: the name says .{ext or '(none)'} but --format says {fmt}")
        return [output]
    fmt = fmt or "png"
    stems = [os.path.splitext(os.path.basename(p))[0] for p in inputs]
    if len(set(stems)) != len(stems):
        raise RawZoomError(
            f"{output}: two inputs share a name ({', '.join(sorted({s for s in stems if stems.count(s) > 1}))}); "
            "give them separate runs"
        )
    return [os.path.join(output, f"{stem}{suffix}.{fmt}") for stem in stems]


def _check_outputs(paths: list[str], args, inputs: list[str] = ()) -> None:
    """Before any work: each output's format and bits are writable, no output is an input (even with
    --force), and nothing is overwritten without --force (with --skip-existing, those inputs are
    skipped instead)."""
    from .imageio import check_image_path

    sources = {os.path.realpath(p) for p in inputs}
    for path in paths:
        if os.path.realpath(path) in sources:
            raise RawZoomError(f"{path}: is an input of this command; write the output elsewhere")
        if not path.lower().endswith(".dng"):
            check_image_path(path, args.bits)
        if os.path.exists(path) and not args.force and not getattr(args, "skip_existing", False):
            raise OutputExistsError(f"{path}: exists; pass --force to overwrite it (or --skip-existing)")


def _each(command: str, pairs: list[tuple[str, list[str]]], args, work) -> None:
    """``work(source, targets)`` for each input: with --skip-existing, inputs whose outputs all exist
    are skipped; with --continue-on-error, a failing input prints its one-line error and the batch
    goes on, ending with a summary and a RawZoomError if any failed."""
    done = skipped = 0
    failed = []
    for source, targets in _progress(pairs, command):
        if getattr(args, "skip_existing", False) and not args.force and all(os.path.exists(t) for t in targets):
            skipped += 1
            continue
        try:
            work(source, targets)
            done += 1
        except (RawZoomError, OSError) as exc:
            if not args.continue_on_error:
                raise
            failed.append(source)
            print(f"rawzoom {command}: error: {exc}", file=sys.stderr)
    if len(pairs) > 1 or skipped or failed:
        console.say(f"{command}: {done} written, {skipped} skipped (outputs exist), {len(failed)} failed")
    if failed:
        raise RawZoomError(f"{len(failed)} of {len(pairs)} inputs failed: {', '.join(failed[:5])}"
                           + (" ..." if len(failed) > 5 else ""))


def _raw_options(args) -> dict:
    """read_raw's options from the headerless flags (which need --shape)."""
    if args.shape is None:
        given = [flag for flag, value in (("--cfa", args.cfa), ("--black", args.black), ("--white", args.white))
                 if value is not None]
        if given:
            raise RawZoomError(f"{', '.join(given)} describe a headerless dump and need --shape H W")
        return {"check_data": not args.no_data_checks}
    return dict(shape=args.shape, dtype=args.dtype, cfa=args.cfa, black_level=args.black, white_level=args.white)


def _progress(items: list, what: str):
    from tqdm.auto import tqdm

    return tqdm(items, desc=what, disable=len(items) < 2 or console.quiet, leave=False)


def _write(path: str, rgb, raw, args, linear=None) -> None:
    """An output image (PNG/TIFF/JPEG with ICC and EXIF), or for .dng the linear DNG of ``linear``."""
    from .imageio import write_image
    from .isp.functional import apply_orientation

    if path.lower().endswith(".dng"):
        from .raw.dng import write_linear_dng

        if linear is None:
            raise RawZoomError(f"{path}: this pipeline gives no linear camera RGB to store in a DNG")
        write_linear_dng(path, linear, raw, overwrite=args.force)
        return
    if not args.no_orient:
        rgb = apply_orientation(rgb, raw.orientation)
    write_image(path, rgb, bits=args.bits, overwrite=args.force, info=_image_info(raw, args))


def _image_info(raw, args):
    """What an output carries: the camera, the orientation its pixels are in, its colour space, the
    capture's EXIF and GPS."""
    from .imageio import ImageInfo

    return ImageInfo(raw.make, raw.model, orientation=raw.orientation if args.no_orient else 1,
                     colorspace=getattr(args, "colorspace", "srgb"), exif_tags=raw.exif, gps=raw.gps)


# -- commands -------------------------------------------------------------------------------------

def _cmd_info(args) -> None:
    from .raw.reader import describe_raw, read_raw_facts

    described = [describe_raw(read_raw_facts(path, **_raw_options(args))) for path in raw_files(args.files)]
    if args.json:
        print(json.dumps(described[0] if len(described) == 1 else described, indent=2, allow_nan=False))
        return
    for number, facts in enumerate(described):
        if number:
            print()
        width = max(len(k) for k in facts)
        for key, value in facts.items():
            print(f"{key:<{width}}  {value}")


def _classical_pipeline(raw, args):
    from .isp import Pipeline

    if args.config:
        return Pipeline.from_config(args.config)
    if raw.cam_to_srgb is None:
        console.say(f"rawzoom: note: {raw.path} has no colour matrix; colours stay in camera RGB")
    if raw.wb_source not in ("camera", args.wb):
        console.say(f"rawzoom: note: {raw.path} has no camera white balance; using {raw.wb_source} gains "
                    f"{[round(g, 3) for g in raw.wb_gains.tolist()]}")
    matrix = raw.cam_to_srgb is not None
    return Pipeline.classical(demosaic=args.demosaic, color_matrix=matrix, **_look(args, raw, matrix))


def _cmd_render(args) -> None:
    from .imageio import write_image_array
    from .isp.functional import apply_orientation
    from .isp.strips import render_array
    from .isp.white_balance import with_white_balance
    from .raw import read_raw

    inputs = raw_files(args.files)
    outputs = _outputs(inputs, args.output, args.format)
    _check_outputs(outputs, args, inputs)

    def render_one(source: str, targets: list[str]) -> None:
        target = targets[0]
        raw = with_white_balance(read_raw(source, **_raw_options(args)), args.wb)
        _check_pixels(source, raw.shape[0] * raw.shape[1], args.max_pixels)
        pipe = _classical_pipeline(raw, args)
        if pipe.output_kind != DataKind.DISPLAY_RGB:
            raise RawZoomError(f"{source}: the pipeline gives {pipe.output_kind.label}, not a displayable image")
        if target.lower().endswith(".dng"):  # the linear DNG of the demosaic
            rgb, steps = pipe(raw, return_intermediates=True)
            _write(target, rgb, raw, args, linear=steps.get("demosaic"))
            console.say(f"wrote {target} ({rgb.shape[2]}x{rgb.shape[1]})")
            return
        array = render_array(pipe, raw, args.bits)  # in strips when the pipeline allows: bounded memory
        if not args.no_orient:
            array = apply_orientation(torch_view(array), raw.orientation).permute(1, 2, 0).contiguous().numpy()
        write_image_array(target, array, _image_info(raw, args), overwrite=args.force)
        console.say(f"wrote {target} ({array.shape[1]}x{array.shape[0]})")

    _each("render", [(source, [target]) for source, target in zip(inputs, outputs)], args, render_one)


def torch_view(array):
    """An (H, W, 3) array as a (3, H, W) tensor sharing its memory."""
    import torch

    return torch.from_numpy(array).permute(2, 0, 1)


def _check_pixels(source: str, pixels: int, limit: float) -> None:
    if pixels > limit:
        raise RawZoomError(f"{source}: {pixels / 1e6:.0f} MP, over --max-pixels {limit / 1e6:.0f} MP; raise "
                           "--max-pixels to go on")


def _cmd_synth(args) -> None:
    """sRGB image -> synthetic raw DNG (rz.synth.synthetic_raw)."""
    import torch

    from .imageio import read_image
    from .raw import write_dng
    from .synth import synthetic_raw

    if not args.output.lower().endswith(".dng"):
        raise RawZoomError(f"{args.output}: synth writes a raw DNG; name the output .dng")
    _check_outputs([args.output], args, [args.input])
    raw, exposure = synthetic_raw(read_image(args.input), cfa=args.cfa, method=args.method, noise=not args.no_noise,
                                  bits=args.bits, generator=torch.Generator().manual_seed(args.seed))
    write_dng(args.output, raw, baseline_exposure=exposure, overwrite=args.force)
    console.say(f"wrote {args.output} ({raw.shape[1]}x{raw.shape[0]} {args.cfa}, {args.method}, seed {args.seed})")


def _zoom_region(raw, args):
    """The part of the raw to zoom: the whole raw, the display-centred 1/N (``--centre N``) or a
    display box (``--region Y X H W``), as a stored-orientation crop with even sides."""
    if args.centre:
        return raw.crop_centre(args.centre)
    if args.region:
        return raw.crop_displayed(*args.region)
    return raw


def _cmd_zoom(args) -> None:
    import torch

    from .eval.evaluate import baseline
    from .isp import Pipeline
    from .isp.functional import resize_to
    from .isp.white_balance import with_white_balance
    from .models.learned_zoom import DEFAULT_TILE
    from .raw import read_raw
    from .synth import with_noise_profile

    inputs = raw_files(args.files)
    outputs = _outputs(inputs, args.output, args.format)
    compared = [_beside(path, "libraw") for path in outputs] if args.compare else []
    if args.compare and any(path.lower().endswith(".dng") for path in outputs):
        raise RawZoomError("--compare writes display images; use --format png or tif")
    _check_outputs(outputs + compared, args, inputs)
    device = _device(args.device)
    torch.set_num_threads(args.threads or idle_cores())
    zoom = Pipeline.default(scale=args.scale, weights=args.weights or "default",
                            tile=DEFAULT_TILE if args.tile is None else args.tile, progress=not console.quiet)["zoom"]
    factor = args.scale or zoom.scale

    def zoom_one(source: str, targets: list[str]) -> None:
        whole = _without_missing_colour(with_white_balance(read_raw(source, **_raw_options(args)), args.wb))
        if zoom.told_noise:
            whole = with_noise_profile(whole)
        raw = _zoom_region(whole, args)
        pipe = Pipeline.learned(zoom, scale=factor, **_look(args, raw))
        pixels = raw.shape[0] * raw.shape[1] * factor ** 2
        if pixels > args.max_pixels:
            raise RawZoomError(
                f"{source}: the {factor}x zoom of {raw.shape[1]}x{raw.shape[0]} would be "
                f"{pixels / 1e6:.0f} MP, over --max-pixels {args.max_pixels / 1e6:.0f} MP; zoom a region "
                "(--centre, --region) or raise --max-pixels"
            )

        with torch.no_grad():
            rgb, steps = pipe(raw.bayer.to(device), raw.meta, return_intermediates=True)
        size = tuple(whole.shape) if args.centre else tuple(rgb.shape[-2:])

        def sized(image):  # --centre N: the zoom, then a resample to the input's size
            return resize_to(image, *size) if tuple(image.shape[-2:]) != size else image

        linear = sized(steps["zoom"].cpu()) if pipe["zoom"].gives == DataKind.LINEAR_RGB else None
        rgb = sized(rgb.cpu())
        _write(targets[0], rgb, raw, args, linear=linear)
        how = f"learned {zoom.scale}x zoom" + (f", bicubic to {factor}x" if factor != zoom.scale else "")
        how += f", resampled to the input's size ({args.centre:g}x)" if args.centre and args.centre != factor else ""
        console.say(f"wrote {targets[0]} ({rgb.shape[2]}x{rgb.shape[1]}, {how})")
        if args.compare:
            _write(targets[1], sized(baseline("libraw", raw, factor)), raw, args)
            console.say(f"wrote {targets[1]} (LibRaw AHD render, bicubic)")

    pairs = [(source, [target] + ([_beside(target, "libraw")] if args.compare else []))
             for source, target in zip(inputs, outputs)]
    _each("zoom", pairs, args, zoom_one)


def _without_missing_colour(raw):
    """A raw without a colour matrix (a headerless dump) zooms in camera RGB, said once per file."""
    import dataclasses

    import torch

    if raw.cam_to_srgb is not None:
        return raw
    console.say(f"rawzoom: note: {raw.path} has no colour matrix; the zoom stays in camera RGB")
    return dataclasses.replace(raw, cam_to_srgb=torch.eye(3))


def idle_cores() -> int:
    """The CPU threads worth running now: the cores this process may use, less those other processes
    keep busy (the 1-minute load average, rounded), at least 1. Threads that share a busy core wait
    for each other at every parallel region, so on a loaded machine fewer threads finish sooner."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        busy = round(os.getloadavg()[0])
    except (AttributeError, OSError):  # no load average on this system
        busy = 0
    return max(1, cores - busy)


def _device(name: str):
    """A torch device the network can run on here (cpu, or a CUDA device that exists)."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise RawZoomError(f"--device {name}: not a device (cpu, cuda, cuda:1, ...)") from None
    if device.type not in ("cpu", "cuda"):
        raise RawZoomError(f"--device {name}: the zoom runs on cpu or cuda")
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise RawZoomError(f"--device {name}: no such CUDA device here; use --device cpu")
    return device


def _beside(path: str, suffix: str) -> str:
    stem, ext = os.path.splitext(path)
    return f"{stem}_{suffix}{ext}"


def _cmd_train(args) -> None:
    from .train import train
    from .train.trainer import resume_config

    if args.resume is None and args.config is None:
        raise RawZoomError("give --config CONFIG (a new run) or --resume RUN_DIR (go on with one)")
    config = args.config
    if args.resume:  # a run folder: everything from its last.pt
        if args.config:
            raise RawZoomError("--resume RUN_DIR takes the config from the run's last.pt; drop --config (or give "
                               "--config with --resume alone to resume that config's run)")
        config = resume_config(args.resume)
        if args.set:
            console.say(f"rawzoom: note: resuming {args.resume} with {', '.join(args.set)} over its own config")
    final = train(config, resume=args.resume is not None, init=args.init, progress=not console.quiet,
                  overrides=args.set, force=args.force)
    console.say(f"trained: {final}")


def _eval_scale(weights: list[str], scale: int | None) -> int:
    """The zoom factor of an evaluation: ``--scale``, which each checkpoint's factor must divide (a
    smaller one is scored as its zoom, then bicubic for the rest); else the checkpoints' (they must
    agree); else 4."""
    from .isp.pipeline import resample_factor
    from .models import checkpoint_scale

    scales = {path: checkpoint_scale(path) for path in weights}
    named = ", ".join(f"{os.path.basename(p)} {s}x" for p, s in scales.items())
    if scale is not None:
        for path, factor in scales.items():
            try:
                resample_factor(factor, scale)
            except RawZoomError as exc:
                raise RawZoomError(f"--scale {scale}: {os.path.basename(path)}: {exc}") from None
        return scale
    if len(set(scales.values())) > 1:
        raise RawZoomError(f"the checkpoints disagree on the zoom factor ({named}); give --scale (a multiple of "
                           "each: a smaller factor is scored as its zoom, then bicubic) or evaluate one at a time")
    return scales.popitem()[1] if scales else 4


def _cmd_eval(args) -> None:
    from .eval import evaluate, markdown_table
    from .eval.cases import phase_offsets, srraw_cases
    from .eval.protocol import held_out_eval, summary_markdown

    if bool(args.raws) == bool(args.srraw):
        raise RawZoomError("give held-out pairs with --raws FILES (emulated pairs) or --srraw ROOT")
    names = args.name or [os.path.splitext(os.path.basename(w))[0] for w in args.weights]
    if len(names) != len(args.weights) or len(set(names)) != len(names):
        raise RawZoomError("give one distinct --name per --weights")
    if os.path.exists(os.path.join(args.output, "results.json")) and not args.force:
        raise OutputExistsError(f"{args.output}: holds results already; pass --force to overwrite them")
    scale = _eval_scale(args.weights, args.scale)
    models = dict(zip(names, args.weights))
    if args.srraw:
        cases = srraw_cases(args.srraw, scale, args.split, args.cache_dir)
        result = evaluate(models, cases, scale=scale, out=args.output, tolerance=args.tolerance,
                          progress=not console.quiet)
        console.say(markdown_table(result))
        console.say(f"wrote {os.path.join(args.output, 'results.md')}, results.csv, results.json, figure.png")
        return
    noises = {"native" if n == "matched" else n for n in args.noise}
    conditions = [f"{geometry}-{'noisy' if noise == 'native' else 'clean'}" for geometry in args.geometry
                  for noise in ("native", "none") if noise in noises]
    summary = held_out_eval(models, raw_files(args.raws), scale, out=args.output, conditions=conditions,
                            crops=args.crops, size=args.size,
                            phases=phase_offsets(args.phases), seed=args.seed,
                            tolerance=args.tolerance, period=not args.no_period, progress=not console.quiet)
    console.say(summary_markdown(summary))
    console.say(f"wrote {os.path.join(args.output, 'results.md')} and a folder per condition ({', '.join(conditions)})")


def _cmd_compare(args) -> None:
    from .experiments import compare

    command = " ".join(["rawzoom compare --config", args.config, *(f"--set '{o}'" for o in args.set)])
    result = compare(args.config, progress=not console.quiet, overrides=args.set, command=command,
                     score=not args.train_only)
    if args.train_only:
        console.say(f"trained {', '.join(result['trained'])}; run without --train-only to score and report")
    else:
        console.say(f"wrote {result['report']}")


def _cmd_export(args) -> None:
    from .export import export_pipeline

    written = export_pipeline(args.pipeline, args.output, fmt="onnx" if args.onnx else "pt2", scale=args.scale,
                              weights=args.weights, size=tuple(args.size), cfa=args.cfa, force=args.force,
                              demosaic=args.demosaic)
    console.say(f"wrote {written} (input: a {args.cfa} mosaic; other patterns: flip them into it, see "
                "examples/onnx_zoom.py)")


def _cmd_demo(args) -> None:
    from .eval.demo import SAMPLE_RAW, run_demo

    scores = run_demo(args.output)
    console.say(f"4x zoom of {len(next(iter(scores.values())))} emulated 4x-smaller captures (384 px windows) of "
                f"{SAMPLE_RAW}, a GoPro HERO7, a camera the shipped model never saw; the LR capture in the centred "
                "geometry of a native sensor, with a native capture's noise:")
    for name, rows in scores.items():
        means = {k: sum(r[k] for r in rows) / len(rows) for k in ("psnr_cm", "psnr", "ssim")}
        console.say(f"  {name:<21} colour-matched PSNR {means['psnr_cm']:.2f} dB   PSNR {means['psnr']:.2f} dB   "
                    f"SSIM {means['ssim']:.4f}")
    console.say(f"wrote {os.path.join(args.output, 'hero7_zoom4x_figure.png')} (LR input | LibRaw + bicubic | "
                "learned | target) and the zoomed images beside it")


# -- the parser -------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse with the house's one-line errors (exit 2, as argparse)."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def _raw_arguments() -> _Parser:
    parent = _Parser(add_help=False)
    parent.add_argument("--no-data-checks", action="store_true",
                        help="accept raws whose pixel data looks missing (many blank rows)")
    headerless = parent.add_argument_group("headerless Bayer dumps")
    headerless.add_argument("--shape", nargs=2, type=_number_in(2, 1 << 20), metavar=("H", "W"),
                            help="mosaic height and width")
    headerless.add_argument("--dtype", default="<u2", help="numpy dtype of the samples (default <u2)")
    headerless.add_argument("--cfa", choices=PATTERNS)
    headerless.add_argument("--black", type=_number_in(0, 2.0 ** 32, float), nargs="+",
                            help="black level: one value or 4 (2x2 row-major)")
    headerless.add_argument("--white", type=_number_in(1e-9, 2.0 ** 32, float), help="white level")
    return parent


def _look_arguments(parser: _Parser) -> None:
    look = parser.add_argument_group("exposure and colour")
    look.add_argument("--exposure", type=_number_in(-16, 16, float), default=0.0, metavar="EV",
                      help="exposure compensation in stops (default 0)")
    look.add_argument("--auto-bright", action="store_true",
                      help="LibRaw's auto-brightness: the brightest 1%% of each channel reaches white")
    look.add_argument("--highlights", choices=HIGHLIGHT_MODES, default="clip",
                      help="clip (default), or blend clipped highlights toward white")
    look.add_argument("--wb", default="camera", metavar="camera|auto|daylight|R,G,B",
                      help="white balance: the camera's (default), grey world, daylight, or three gains")
    look.add_argument("--colorspace", choices=OUTPUT_SPACES, default="srgb",
                      help="output colour space, with its ICC profile (linear: sRGB primaries, no curve)")


def _look(args, raw, color_matrix: bool = True) -> dict:
    """``rendering_stages``'s options from the exposure and colour flags; --auto-bright is measured
    once, on a half-size render of the raw, so that the full render can run in strips."""
    look = dict(space=args.colorspace, exposure=args.exposure, highlights=args.highlights)
    if args.auto_bright:
        from .isp import Pipeline
        from .isp.functional import auto_exposure_ev

        preview = Pipeline.classical(demosaic="half", color_matrix=color_matrix, space=args.colorspace,
                                     highlights=args.highlights)
        look["exposure"] += auto_exposure_ev(preview(raw, stop="ccm" if color_matrix else "wb"))
    return look


def _output_arguments(parser: _Parser, formats: tuple[str, ...]) -> None:
    parser.add_argument("-o", "--output", required=True,
                        help="output file, or a folder (several inputs, or a name ending in /)")
    parser.add_argument("--skip-existing", action="store_true",
                        help="skip inputs whose outputs exist (resume a batch)")
    parser.add_argument("--continue-on-error", action="store_true",
                        help="go on past a failing input; a summary at the end, exit 1 if any failed")
    parser.add_argument("--format", choices=formats, help="output format in a folder (default png)")
    parser.add_argument("--bits", type=int, choices=[8, 16], default=8)
    parser.add_argument("--no-orient", action="store_true", help="keep the sensor's orientation")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")


def _number_in(low: float, high: float, kind=int):
    """argparse type: a ``kind`` (int or float) number in [low, high] (finite)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not (low <= value <= high):  # NaN fails too
            raise argparse.ArgumentTypeError(f"{text} is not in [{low:.15g}, {high:.15g}]")
        return value

    parse.__name__ = "integer" if kind is int else "number"
    return parse


def _zoom_factor(text: str) -> float:
    """argparse type of --centre: a finite number above 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 1 and value < 1000):
        raise argparse.ArgumentTypeError(f"{text}: a digital zoom needs a factor above 1 (and below 1000)")
    return value


def _loudness_arguments(parser: _Parser) -> _Parser:
    """-q / -v, before or after the subcommand (a subcommand's own only set them when given)."""
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="print errors only")
    loudness.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                          help="also library warnings and tracebacks")
    return parser


def build_parser() -> _Parser:
    parser = _Parser(prog="rawzoom", description="Camera raw ISP with a learned zoom.")
    parser.add_argument("--version", action="version", version=f"rawzoom_isp {__version__}")
    parser.set_defaults(quiet=False, verbose=False)
    _loudness_arguments(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    raw_args, loud = _raw_arguments(), _loudness_arguments(_Parser(add_help=False))

    info = sub.add_parser("info", parents=[raw_args, loud], help="print raw files' metadata")
    info.add_argument("files", nargs="+", help="raw files or folders (or headerless dumps with --shape)")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(run=_cmd_info)

    render = sub.add_parser("render", parents=[raw_args, loud], help="render raw files to sRGB with the classical ISP")
    render.add_argument("files", nargs="+", help="raw files or folders")
    _output_arguments(render, (*IMAGE_FORMATS, "dng"))
    _look_arguments(render)
    render.add_argument("--config", help="pipeline TOML (default: the classical pipeline)")
    render.add_argument("--demosaic", default="malvar2004", choices=DEMOSAIC_METHODS,
                        help="default malvar2004 (gradient-corrected, fast); menon2007 is sharper and slower")
    render.add_argument("--max-pixels", type=_number_in(1, 1e12, float), default=400e6,
                        help="refuse raws larger than this many pixels (default 400e6)")
    render.set_defaults(run=_cmd_render)

    zoom = sub.add_parser("zoom", parents=[raw_args, loud], help="zoom raw files with the learned zoom")
    zoom.add_argument("files", nargs="+", help="raw files or folders")
    _output_arguments(zoom, (*IMAGE_FORMATS, "dng"))
    _look_arguments(zoom)
    zoom.add_argument("--scale", type=int,
                      help="zoom factor of the shipped zoom, 4 or 8 (default 4; 8 is the 4x network, then bicubic "
                           "2x); a --weights checkpoint knows its own factor, or zooms a multiple of it with bicubic "
                           "for the rest")
    zoom.add_argument("--weights", help="a checkpoint (default: the shipped weights)")
    where = zoom.add_mutually_exclusive_group()
    where.add_argument("--centre", "--center", type=_zoom_factor, metavar="N",
                       help="digital zoom: the central 1/N of the displayed image, back to the input's size (the "
                            "model's factor, then a resample for the rest); N > 1, fractions allowed (2.5)")
    where.add_argument("--region", type=_number_in(0, 1 << 20), nargs=4, metavar=("Y", "X", "H", "W"),
                       help="zoom this box of the displayed image (top, left, height, width)")
    zoom.add_argument("--compare", action="store_true",
                      help="also write OUT_libraw: LibRaw's AHD render of the same raw, bicubic N x")
    zoom.add_argument("--device", default="cpu", help="torch device for the network (cpu, cuda, cuda:1, ...)")
    zoom.add_argument("--tile", type=_number_in(0, 1 << 16),
                      help="tile size in packed pixels (memory per tile; default 512; 0: one piece)")
    zoom.add_argument("--threads", type=_number_in(0, 1024), default=0,
                      help="CPU threads (default: the cores other processes leave idle, at least 1)")
    zoom.add_argument("--max-pixels", type=_number_in(1, 1e12, float), default=100e6,
                      help="refuse outputs larger than this many pixels (default 100e6)")
    zoom.set_defaults(run=_cmd_zoom)

    synth = sub.add_parser("synth", parents=[loud], help="turn an sRGB image into a synthetic raw DNG")
    synth.add_argument("input", help="sRGB image (.png, .jpg, .tif)")
    synth.add_argument("-o", "--output", required=True, help="output .dng")
    synth.add_argument("--method", choices=["brooks", "paper"], default="brooks")
    synth.add_argument("--cfa", choices=PATTERNS, default="RGGB")
    synth.add_argument("--seed", type=_number_in(0, 2 ** 63 - 1), default=0)
    synth.add_argument(
        "--bits", type=int, default=14, choices=range(8, 17), metavar="8..16", help="white level 2^bits - 1"
    )
    synth.add_argument("--no-noise", action="store_true")
    synth.add_argument("--force", action="store_true", help="overwrite an existing output")
    synth.set_defaults(run=_cmd_synth)

    train = sub.add_parser("train", parents=[loud], help="train the zoom network (TOML config; under torchrun: DDP)")
    train.add_argument("--config", help="a config file, or a shipped config's name (default-4x)")
    train.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a setting (TOML value), e.g. --set optim.steps=100")
    train.add_argument("--resume", nargs="?", const="", metavar="RUN_DIR",
                       help="go on from RUN_DIR/last.pt with the config stored there (alone after --config: that "
                            "config's run folder)")
    train.add_argument("--init", help="start from a checkpoint's weights and network (fine-tuning; [model] keys "
                                      "given override its options)")
    train.add_argument("--force", action="store_true", help="start over in a run folder that holds a run")
    train.set_defaults(run=_cmd_train)

    evaluate = sub.add_parser("eval", parents=[loud],
                              help="score models against LibRaw and classical zooms on held-out raws")
    evaluate.add_argument("--weights", nargs="*", default=[], help="checkpoints (none: baselines only)")
    evaluate.add_argument("--name", nargs="+", help="a display name per checkpoint")
    evaluate.add_argument("--raws", nargs="+", help="held-out full-resolution raws or folders (emulated pairs)")
    evaluate.add_argument("--crops", type=_number_in(1, 10000), default=24,
                          help="textured windows, shared among the raws")
    evaluate.add_argument("--size", type=_number_in(16, 1 << 16), default=512, help="window size in target pixels")
    evaluate.add_argument("--phases", choices=["all", "native"], default="all",
                          help="every CFA phase (windows moved by 0/1 px), or the raw's own")
    evaluate.add_argument("--geometry", nargs="+", choices=["centred", "footprint"], default=["centred", "footprint"],
                          help="the LR sensor's geometry: centred sites (a native sensor, the headline) and/or the "
                               "footprint emulation (default: both)")
    evaluate.add_argument("--noise", nargs="+", choices=["native", "none", "matched"], default=["native", "none"],
                          help="a native LR capture's noise and/or none (default: both; matched = native)")
    evaluate.add_argument("--no-period", action="store_true",
                          help="skip the measure of a pattern at the LR period on the native frames")
    evaluate.add_argument("--seed", type=_number_in(0, 2 ** 63 - 1), default=0)
    evaluate.add_argument("--srraw", help="an SR-RAW root (optical pairs) instead of --raws")
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--cache-dir", help="where prepared SR-RAW pairs are cached "
                          "(default $XDG_CACHE_HOME/rawzoom_isp/srraw)")
    evaluate.add_argument("--scale", type=int, choices=[2, 4, 8, 16],
                          help="zoom factor (default: the checkpoints'; 4 for baselines only); a checkpoint of a "
                               "smaller factor that divides it is scored as its zoom, then bicubic for the rest")
    evaluate.add_argument("--tolerance", type=_number_in(0, 64), default=2,
                          help="shift tolerance (px) of the alignment")
    evaluate.add_argument("-o", "--output", required=True, help="output folder")
    evaluate.add_argument("--force", action="store_true", help="overwrite results in the output folder")
    evaluate.set_defaults(run=_cmd_eval)

    compare = sub.add_parser("compare", parents=[loud],
                             help="train the arms of an experiment and compare them (resumable)")
    compare.add_argument("--config", required=True, help="a compare config file or a shipped one's name")
    compare.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                         help="override a setting of every arm")
    compare.add_argument("--train-only", action="store_true",
                         help="train (or resume) the arms and stop, without scoring or a report; to share an "
                              "experiment between processes, give each its own arms (--set 'compare.arms=[...]', "
                              "compare.seeds), then run once without this flag")
    compare.set_defaults(run=_cmd_compare)

    export = sub.add_parser("export", parents=[loud], help="export a pipeline for deployment (torch.export or ONNX)")
    kind = export.add_mutually_exclusive_group(required=True)
    kind.add_argument("--onnx", action="store_true", help="an ONNX model (.onnx)")
    kind.add_argument("--pt2", action="store_true", help="a torch.export program (.pt2)")
    export.add_argument("--pipeline", choices=["learned", "classical"], default="learned")
    export.add_argument("--scale", type=int,
                        help="zoom factor of the shipped zoom, 4 or 8 (default 4; 8 is the 4x network, then bicubic "
                             "2x); a --weights checkpoint knows its own factor")
    export.add_argument("--weights", default="default", help="a checkpoint (default: the shipped weights)")
    export.add_argument("--size", type=_number_in(16, 8192), nargs=2, default=[256, 256], metavar=("H", "W"),
                        help="example mosaic size; height and width stay dynamic")
    export.add_argument("--cfa", choices=PATTERNS, default="RGGB",
                        help="the CFA of the mosaics it will take (recorded in the file; default RGGB)")
    export.add_argument("--demosaic", choices=["bilinear", "malvar2004", "half"], default="malvar2004",
                        help="the classical pipeline's demosaic")
    export.add_argument("-o", "--output", required=True, help="the file: .onnx for --onnx, .pt2 for --pt2")
    export.add_argument("--force", action="store_true", help="overwrite an existing output")
    export.set_defaults(run=_cmd_export)

    demo = sub.add_parser("demo", parents=[loud], help="zoom the bundled sample raw (what `make demo` runs)")
    demo.add_argument("-o", "--output", default="demo_output", help="output folder")
    demo.set_defaults(run=_cmd_demo)
    return parser


@contextlib.contextmanager
def _c_stderr_silenced(enabled: bool):
    """While a command runs, what C libraries (LibRaw, libpng) print to file descriptor 2 goes nowhere:
    the command's own messages, Python's sys.stderr, stay. A sys.stderr that writes to fd 2 is moved to
    a copy of it first."""
    if not enabled:
        yield
        return
    try:
        sys.stderr.flush()
        python_on_fd2 = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # replaced by a test, a notebook, ...
        python_on_fd2 = False
    saved = os.dup(2)
    stream = os.fdopen(os.dup(saved), "w", buffering=1) if python_on_fd2 else None
    original = sys.stderr
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    if stream is not None:
        sys.stderr = stream
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is original:
                handler.setStream(stream)
    try:
        yield
    finally:
        if stream is not None:
            stream.flush()
            for handler in logging.getLogger().handlers:
                if isinstance(handler, logging.StreamHandler) and handler.stream is stream:
                    handler.setStream(original)
            sys.stderr = original
            stream.close()
        os.dup2(saved, 2)
        os.close(saved)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _set_loudness(args.quiet, args.verbose)
    with _c_stderr_silenced(not args.verbose):
        return _run(args)


def _run(args) -> int:
    try:
        args.run(args)
    except KeyboardInterrupt:
        print(f"rawzoom {args.command}: interrupted", file=sys.stderr)
        return 130
    except (RawZoomError, OSError) as exc:
        print(f"rawzoom {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"rawzoom {args.command}: error: out of memory; work on a smaller region or fewer tiles",
              file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a bug: one line, the traceback with -v
        if args.verbose:
            raise
        print(f"rawzoom {args.command}: internal error: {type(exc).__name__}: {exc} (rerun with -v for the "
              "traceback)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
