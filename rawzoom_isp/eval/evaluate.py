"""Scoring zoom models against the classical pipelines a user already has, with statistical power.

Methods, each run on the LR raw of every case (``cases``):
- ``libraw``: LibRaw's AHD render of the LR raw (written as a DNG: camera WB, its colour matrix, sRGB),
  zoomed N x with bicubic. What a photographer would do; the strongest classical baseline here.
- ``classical``: the project's best classical render (Menon 2007 demosaic, camera WB, colour matrix,
  sRGB), bicubic N x.
- ``bilinear``: a weak baseline, labelled as such: bilinear demosaic, bicubic N x.
- each model: its learned-zoom pipeline (``Pipeline.default`` with its weights; an 8-bit RGB model
  gets the LR raw's 8-bit classical render).

Scoring: every output loses ``tolerance`` px per side and the target is searched for the best integer
shift within +-tolerance (least mean L1); PSNR and SSIM on what overlaps, plus a colour-matched PSNR
(an affine 3x4 colour fit per image, which forgives colour rendering and keeps detail: the headline),
and the colour diagnostics: each channel's mean error and the error in the target's highlights.
Summaries count windows, not cases (``rz.eval.stats``: a window's CFA phases are averaged first): per
method the mean and standard error; per model against each baseline the mean paired difference, its
standard error, t-test p and the share of windows won, overall and per CFA phase.
"""
from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable

import torch

from ..atomic import atomic_path
from ..data.pairs import RGB_RENDERS, render_rgb, render_rgb8
from ..errors import CheckpointError, ConfigError, DataError
from ..isp import functional as F
from ..isp.pipeline import Pipeline, resample_factor
from ..models.checkpoint import read_checkpoint
from ..models.learned_zoom import LearnedZoom
from ..raw.dng import libraw_render_mosaic
from ..raw.image import RawImage
from ..shift_tolerant import shift_tolerant_crop
from .cases import Case
from .metrics import lpips_distance, lpips_model, psnr, ssim
from .stats import by_window, mean_se, paired_rows

BASELINES = {
    "libraw": "LibRaw AHD render of the LR raw (camera WB, sRGB; mirrored borders for context), bicubic N x",
    "classical": "rawzoom classical render (Menon 2007 demosaic, camera WB, colour matrix, sRGB), bicubic N x",
    "bilinear": "weak baseline: bilinear demosaic, camera WB, colour matrix, sRGB, bicubic N x",
}
STRONGEST = "libraw"
GALLERY_WINDOWS = 3  # rows of figure.png: the first case of each of the first windows


def _classical(low: RawImage, demosaic: str) -> torch.Tensor:
    return Pipeline.classical(demosaic=demosaic, color_matrix=low.cam_to_srgb is not None)(low)


def baseline(name: str, low: RawImage, scale: int) -> torch.Tensor:
    """A classical zoom of the LR raw (see BASELINES): (3, N h, N w) display sRGB."""
    if name == "libraw":
        rendered = libraw_render_mosaic(low)
    elif name in ("classical", "bilinear"):
        rendered = _classical(low, "menon2007" if name == "classical" else "bilinear")
    else:
        raise ConfigError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    return F.resize(rendered[None], float(scale))[0]


class ModelMethod:
    """A checkpoint as a method: ``method(low)`` -> (3, N h, N w) display sRGB. A model trained on
    8-bit RGB gets the LR raw rendered the way its training inputs were (``rgb_render``,
    ``jpeg_quality`` of its training config), and its output the camera white balance unless it
    learned it (``white_balanced_output``). ``scale`` N may be a multiple of the network's factor
    k: the network's zoom, then bicubic N / k x (what ``rawzoom zoom --centre N`` does); ConfigError
    otherwise. ``weights="default"``: the shipped model of ``scale``."""

    def __init__(self, weights: str, scale: int | None = None):
        self.zoom = LearnedZoom(weights=weights, scale=scale)
        self.rest = resample_factor(self.zoom.scale, scale)
        self.raw_input = self.zoom.net.in_channels == 4
        self.pipeline = Pipeline.learned(self.zoom, scale=scale) if self.raw_input else None
        checkpoint = read_checkpoint(self.zoom.path)
        stored = checkpoint.get("train_config")
        self.add_white_balance = checkpoint.get("white_balanced_output", False) is not True
        data = stored.get("data") if isinstance(stored, dict) else None
        data = data if isinstance(data, dict) else {}
        self.rgb_render, self.jpeg_quality = data.get("rgb_render", "classical"), data.get("jpeg_quality", 0)
        quality_ok = type(self.jpeg_quality) is int and 0 <= self.jpeg_quality <= 100
        if self.rgb_render not in RGB_RENDERS or not quality_ok:
            raise CheckpointError(f"{self.zoom.path}: its training config names no RGB render this library makes "
                                  f"({str(self.rgb_render)[:40]}, JPEG quality {str(self.jpeg_quality)[:20]})")

    def __call__(self, low: RawImage) -> torch.Tensor:
        with torch.no_grad():
            if self.raw_input:
                return self.pipeline(low)
            normalised = low.normalised()
            rgb8 = render_rgb8(normalised, low.cfa, low.wb_gains, low.cam_to_srgb, self.rgb_render, self.jpeg_quality)
            out = self.zoom(rgb8[None])[0]
            if self.add_white_balance:  # trained towards un-balanced targets (``rz.train.white_balanced_output``)
                out = F.apply_white_balance(out, low.wb_gains, gamma=F.WB_GAMMA)
            out = out.clamp(0.0, 1.0)
        return out if self.rest == 1 else F.resize(out, self.rest)


def color_matched_psnr(output: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR after the affine colour map (3 x 4, least squares over all pixels) that best takes
    ``output`` to ``target``: what is left is detail, noise and misregistration, not colour."""
    x = torch.cat([output.reshape(3, -1), torch.ones(1, output[0].numel(), dtype=output.dtype)]).double()
    y = target.reshape(3, -1).double()
    mapping = torch.linalg.lstsq(x.T, y.T).solution.T
    return psnr((mapping @ x).reshape(target.shape).clamp(0, 1), target.double())


HIGHLIGHT = 0.9  # display value above which a target pixel counts as a highlight


def color_diagnostics(output: torch.Tensor, target: torch.Tensor) -> dict:
    """Where a render departs in colour: each channel's mean error (output - target, display units);
    the share of the squared error that is chroma (each pixel's error minus its mean over R, G, B:
    false colour and colour casts, as opposed to brightness); the mean absolute error over the
    target's highlights (any channel above ``HIGHLIGHT``; None when there are none) and their share
    of the pixels."""
    error = output - target
    bias = error.mean((1, 2)).tolist()
    chroma = error - error.mean(0, keepdim=True)
    total = float((error ** 2).sum())
    bright = target.amax(0) > HIGHLIGHT
    share = float(bright.float().mean())
    return {"bias_r": bias[0], "bias_g": bias[1], "bias_b": bias[2],
            "chroma_share": float((chroma ** 2).sum()) / total if total else 0.0, "highlights": share,
            "highlight_mae": float(error.abs().amax(0)[bright].mean()) if share else None}


def score(output: torch.Tensor, target: torch.Tensor, tolerance: int) -> dict:
    """PSNR, SSIM, colour-matched PSNR, LPIPS (None when unavailable) and the colour diagnostics,
    after the shift search."""
    if tolerance:
        output = output[:, tolerance:-tolerance, tolerance:-tolerance]
        target = shift_tolerant_crop(output[None], target[None], tolerance, stride=1)[0][0]
    return {"psnr": psnr(output, target), "ssim": ssim(output, target),
            "psnr_cm": color_matched_psnr(output, target), "lpips": lpips_distance(output, target),
            **color_diagnostics(output, target)}


def evaluate(models: dict[str, str], cases: Iterable[Case], scale: int, out: str | None = None,
             tolerance: int = 2, baselines: Iterable[str] = tuple(BASELINES), progress: bool = False) -> dict:
    """Score each ``{name: checkpoint}`` and the baselines on every case; summaries as the module
    docstring says; with ``out``, results.md/.csv/.json and figure.png there."""
    from tqdm.auto import tqdm

    methods = {name: (lambda low, name=name: baseline(name, low, scale)) for name in baselines}
    methods.update({name: ModelMethod(path, scale) for name, path in models.items()})
    rows, gallery = [], {}
    for index, case in enumerate(tqdm(list(cases) if progress else cases, desc="eval", disable=not progress)):
        outputs = {name: method(case.low) for name, method in methods.items()}
        for name, image in outputs.items():
            rows.append({"case": index, **case.info, "method": name, **score(image, case.target, tolerance)})
        window = case.info.get("window", index)
        if len(gallery) < GALLERY_WINDOWS and window not in gallery:
            gallery[window] = (case, outputs)
    if not rows:
        raise DataError("no test cases to score")
    result = summarise(rows, list(methods), list(models), list(baselines))
    result.update(tolerance_px=tolerance, lpips_note=lpips_model()[1], scale=scale,
                  baselines={b: BASELINES[b] for b in baselines})
    if out:
        write_reports(result, out)
        write_figure(list(gallery.values()), scale, os.path.join(out, "figure.png"))
    return result


METRICS = ("psnr_cm", "psnr", "ssim")  # the headline first
METRIC_NAMES = {"psnr_cm": "colour-matched PSNR", "psnr": "PSNR", "ssim": "SSIM"}
DIAGNOSTICS = ("bias_r", "bias_g", "bias_b", "chroma_share", "highlight_mae")


def summarise(rows: list[dict], methods: list[str], models: list[str], baselines: list[str]) -> dict:
    """Per method the mean and SE over windows of each metric (and the colour diagnostics' means);
    per model and baseline the paired differences over windows, overall and per CFA phase."""
    by_method = {m: [r for r in rows if r["method"] == m] for m in methods}
    summary = []
    for method, mine in by_method.items():
        entry = {"method": method, "cases": len(mine), "windows": len(by_window(mine, "psnr"))}
        for metric in METRICS:
            entry[metric], entry[f"{metric}_se"] = mean_se(list(by_window(mine, metric).values()))
        for name in DIAGNOSTICS:
            values = [r[name] for r in mine if r.get(name) is not None]
            entry[name] = sum(values) / len(values) if values else None
        lp = [r["lpips"] for r in mine if r["lpips"] is not None]
        entry["lpips"] = mean_se(lp)[0] if lp and len(lp) == len(mine) else None
        summary.append(entry)
    comparisons = []
    for model in models:
        sources = sorted({r["source"] for r in by_method[model] if r.get("source")})
        groups = [("all", "all"), *(("all", p) for p in sorted({r["cfa"] for r in by_method[model] if r.get("cfa")}))]
        groups += [(source, "all") for source in sources] if len(sources) > 1 else []
        for base in baselines:
            for source, phase in groups:
                def chosen(row, source=source, phase=phase):
                    return source in ("all", row.get("source")) and phase in ("all", row.get("cfa"))

                entry = {"model": model, "baseline": base, "source": source, "cfa": phase}
                for metric in METRICS:
                    entry[metric] = paired_rows([r for r in by_method[model] if chosen(r)],
                                                [r for r in by_method[base] if chosen(r)], metric)
                comparisons.append(entry)
    return {"summary": summary, "comparisons": comparisons, "per_case": rows}


def _difference(entry: dict) -> str:
    digits = 4 if abs(entry["mean"]) < 0.1 and entry["se"] < 0.01 else 3
    return f"{entry['mean']:+.{digits}f} +- {entry['se']:.{digits}f} | {entry['wins']}/{entry['n']}"


def markdown_table(result: dict, phases: bool = True) -> str:
    """The summary and the paired comparisons (per CFA phase too, unless ``phases=False``) as markdown,
    the colour-matched PSNR first."""
    lines = ["| method | windows (cases) | colour-matched PSNR (dB) | PSNR (dB) | SSIM | LPIPS |",
             "|---|---|---|---|---|---|"]
    for row in result["summary"]:
        lpips = f"{row['lpips']:.4f}" if row["lpips"] is not None else "unavailable"
        lines.append(f"| {row['method']} | {row['windows']} ({row['cases']}) | {row['psnr_cm']:.2f} +- "
                     f"{row['psnr_cm_se']:.2f} | {row['psnr']:.2f} +- {row['psnr_se']:.2f} | "
                     f"{row['ssim']:.4f} +- {row['ssim_se']:.4f} | {lpips} |")
    if result["comparisons"]:
        lines += ["", "| model vs baseline | CFA or camera | d colour-matched PSNR (dB) | windows won | dPSNR (dB) | "
                  "windows won | dSSIM | windows won |", "|---|---|---|---|---|---|---|---|"]
        for c in result["comparisons"]:
            if not phases and c["cfa"] != "all":
                continue
            cells = [_difference(c[m]) for m in METRICS]
            group = c["cfa"] if c.get("source", "all") == "all" else c["source"]
            lines.append(f"| {c['model']} vs {c['baseline']} | {group} | " + " | ".join(cells) + " |")
    lines += ["", "Colour diagnostics (mean over cases; display units, output - target):", "",
              "| method | mean error R | G | B | chroma share of the squared error | mean abs error in highlights |",
              "|---|---|---|---|---|---|"]
    for row in result["summary"]:
        highlight = f"{row['highlight_mae']:.4f}" if row.get("highlight_mae") is not None else "none"
        lines.append(f"| {row['method']} | {row['bias_r']:+.4f} | {row['bias_g']:+.4f} | {row['bias_b']:+.4f} | "
                     f"{100 * row['chroma_share']:.0f}% | {highlight} |")
    note = ("\nMean +- standard error over windows: the CFA phases of a window are one image, averaged first. "
            "d = model minus baseline on the same window; windows won = windows where the model scores higher. "
            f"Aligned within +-{result['tolerance_px']} px (integer shift, least mean L1) before scoring. "
            f"Highlights: target pixels with a channel above {HIGHLIGHT}.")
    if result["lpips_note"]:
        note += f" {result['lpips_note']}."
    baselines = "\n".join(f"- `{name}`: {text}" for name, text in result.get("baselines", {}).items())
    return "\n".join(lines) + "\n" + note + "\n" + (f"\nBaselines:\n{baselines}\n" if baselines else "")


def write_reports(result: dict, out: str) -> None:
    os.makedirs(out, exist_ok=True)
    with atomic_path(os.path.join(out, "results.md")) as tmp, open(tmp, "w") as fh:
        fh.write(markdown_table(result))
    with atomic_path(os.path.join(out, "results.json")) as tmp, open(tmp, "w") as fh:
        json.dump(result, fh, indent=1)
    fields = sorted({k for row in result["per_case"] for k in row}, key=lambda k: (k != "case", k != "method", k))
    with atomic_path(os.path.join(out, "results.csv")) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(result["per_case"])


def lr_preview(case: Case, scale: int) -> torch.Tensor:
    """The LR raw as a viewer shows it (classical bilinear render), enlarged N x by repetition."""
    normalised = case.low.normalised()
    lr = render_rgb(normalised, case.low.cfa, case.low.wb_gains, case.low.cam_to_srgb)
    return lr.repeat_interleave(scale, -2).repeat_interleave(scale, -1)


def write_figure(examples: list[tuple[Case, dict]], scale: int, path: str, size: int = 256) -> None:
    """A gallery, one row per (case, outputs): LR input, each method, target, as centre crops."""
    save_gallery([[("LR input (nearest)", lr_preview(case, scale)), *outputs.items(), ("target", case.target)]
                  for case, outputs in examples], path, size)


def save_gallery(rows: list[list[tuple[str, torch.Tensor]]], path: str, size: int = 256) -> None:
    """Rows of labelled centre crops of (name, (3, H, W)) images, side by side, as a PNG."""
    from PIL import Image, ImageDraw

    label, gap = 24, 6
    canvas = Image.new("RGB", (max(map(len, rows)) * (size + gap) - gap, len(rows) * (size + label + gap) - gap),
                       "white")
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(rows):
        _, h, w = row[-1][1].shape
        top, left, y = max(0, (h - size) // 2), max(0, (w - size) // 2), r * (size + label + gap)
        for i, (name, image) in enumerate(row):
            crop = image[:, top:top + size, left:left + size].clamp(0, 1)
            pixels = (crop.permute(1, 2, 0).numpy() * 255 + 0.5).astype("uint8")
            canvas.paste(Image.fromarray(pixels), (i * (size + gap), y + label))
            draw.text((i * (size + gap) + 4, y + 6), name, fill="black")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
