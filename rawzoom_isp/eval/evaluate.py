"""Scoring zoom models against the bicubic baseline on held-out pairs.

For each pair (whole images): the model's output, white-balanced after the network in gamma space
(out * wb^(1/2.2)); the bicubic baseline, the classical render of the LR mosaic zoomed N x; the
target with its white balance. Output and baseline lose ``tolerance`` px per side and the target is
searched for the best integer shift within +-tolerance (the original's shift-tolerant alignment,
stride 1, mean L1); PSNR, SSIM and LPIPS (or why it is unavailable) are computed on what overlaps.
"""
from __future__ import annotations

import csv
import json
import os

import torch

from ..align import shift_tolerant_crop
from ..atomic import atomic_path
from ..data import render_camera_rgb, render_rgb, render_rgb8
from ..isp import functional as F
from ..isp.zoom import receptive_radius, run_tiled
from ..models.checkpoint import load_model
from .metrics import lpips_distance, lpips_model, psnr, ssim



def _pieces(sample: dict):
    cfa = sample["cfa"]
    mosaic = F.unpack_bayer(sample["input"], cfa)
    ccm = sample["cam_to_srgb"] if sample["has_color_matrix"] else None
    gains = sample["wb_gains"]
    target = sample["target"]
    if not sample["target_white_balanced"]:
        target = F.apply_white_balance(target, gains, gamma=F.WB_GAMMA, clip=True)
    return mosaic, cfa, gains, ccm, target


def predict(model, sample: dict, tile: int = 192) -> torch.Tensor:
    """A model's zoomed output for a raw-input sample, rendered like the target: white balance in
    gamma space for display-output networks, the target's render (WB, colour matrix, gamma) for
    linear-output ones. RGB models get the 8-bit render of the same LR view."""
    mosaic, cfa, gains, ccm, _ = _pieces(sample)
    x = sample["input"] if model.in_channels == 4 else render_rgb8(mosaic, cfa, gains, ccm)
    overlap = receptive_radius(model.config)
    with torch.no_grad():
        out = run_tiled(model, x[None], model.zoom, max(tile, 2 * overlap + 16), overlap)
        if model.config["output"] == "linear":
            if "render" not in sample:
                raise ValueError("a network with linear output needs pairs whose target render is known")
            return render_camera_rgb(out, gains[None], (torch.eye(3) if ccm is None else ccm)[None], sample["render"])[0]
    return F.apply_white_balance(out[0], gains, gamma=F.WB_GAMMA, clip=True)


def bicubic(sample: dict) -> torch.Tensor:
    """The classical render of the LR mosaic, zoomed N x with bicubic interpolation."""
    mosaic, cfa, gains, ccm, _ = _pieces(sample)
    return F.resize(render_rgb(mosaic, cfa, gains, ccm)[None], float(sample["scale"]))[0]


def score(output: torch.Tensor, target: torch.Tensor, tolerance: int) -> dict:
    if tolerance:
        output = output[:, tolerance:-tolerance, tolerance:-tolerance]
        target, _ = shift_tolerant_crop(output[None], target[None], tolerance, stride=1)
        target = target[0]
    return {"psnr": psnr(output, target), "ssim": ssim(output, target), "lpips": lpips_distance(output, target)}


def evaluate(models: dict[str, str], dataset, out: str | None = None, tolerance: int = 8) -> dict:
    """Score each ``{name: checkpoint path}`` and bicubic on every pair of ``dataset`` (a raw-input
    pair source with patch=None); write results.md/.csv/.json and figure.png to ``out``."""
    nets = {name: load_model(path) for name, path in models.items()}
    per_image, kinds = [], set()
    figure = None
    for index in range(len(dataset)):
        sample = dataset.sample(index, 0)
        target = _pieces(sample)[4]
        kinds.add(str(sample.get("pairs")))
        outputs = {"bicubic": bicubic(sample)}
        outputs.update({name: predict(net, sample) for name, net in nets.items()})
        for method, image in outputs.items():
            per_image.append({"image": sample.get("source", str(index)), "method": method,
                              **score(image, target, tolerance)})
        if figure is None:
            figure = (sample, outputs, target)
    methods = ["bicubic", *nets]
    summary = []
    for method in methods:
        rows = [r for r in per_image if r["method"] == method]
        lp = [r["lpips"] for r in rows if r["lpips"] is not None]
        summary.append({"method": method, "images": len(rows),
                        "psnr": sum(r["psnr"] for r in rows) / len(rows),
                        "ssim": sum(r["ssim"] for r in rows) / len(rows),
                        "lpips": (sum(lp) / len(lp)) if len(lp) == len(rows) else None})
    _, reason = lpips_model()
    result = {"tolerance_px": tolerance, "lpips_note": reason, "summary": summary, "per_image": per_image,
              "pairs": sorted(kinds)}
    if out:
        write_reports(result, out)
        if figure is not None:
            write_figure(*figure, os.path.join(out, "figure.png"))
    return result


def markdown_table(result: dict) -> str:
    lines = ["| method | images | PSNR (dB) | SSIM | LPIPS |", "|---|---|---|---|---|"]
    for row in result["summary"]:
        lpips = f"{row['lpips']:.4f}" if row["lpips"] is not None else "unavailable"
        lines.append(f"| {row['method']} | {row['images']} | {row['psnr']:.2f} | {row['ssim']:.4f} | {lpips} |")
    note = f"\nAligned within +-{result['tolerance_px']} px (integer shift, least mean L1) before scoring."
    if result["lpips_note"]:
        note += f" {result['lpips_note']}."
    return "\n".join(lines) + "\n" + note + "\n"


def write_reports(result: dict, out: str) -> None:
    os.makedirs(out, exist_ok=True)
    with atomic_path(os.path.join(out, "results.md")) as tmp, open(tmp, "w") as fh:
        fh.write(markdown_table(result))
    with atomic_path(os.path.join(out, "results.json")) as tmp, open(tmp, "w") as fh:
        json.dump(result, fh, indent=1)
    with atomic_path(os.path.join(out, "results.csv")) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "method", "psnr", "ssim", "lpips"])
        for row in result["per_image"]:
            writer.writerow([row["image"], row["method"], f"{row['psnr']:.4f}", f"{row['ssim']:.5f}",
                             "unavailable" if row["lpips"] is None else f"{row['lpips']:.5f}"])


def write_figure(sample: dict, outputs: dict, target: torch.Tensor, path: str, size: int = 256) -> None:
    """Input (the LR render, shown N x nearest), bicubic, each model, target: centre crops side by side."""
    from PIL import Image, ImageDraw

    mosaic, cfa, gains, ccm, _ = _pieces(sample)
    n = int(sample["scale"])
    lr = render_rgb(mosaic, cfa, gains, ccm).repeat_interleave(n, -2).repeat_interleave(n, -1)
    panels = [("input (LR render)", lr), *outputs.items(), ("target", target)]
    _, h, w = target.shape
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    label, gap = 24, 6
    canvas = Image.new("RGB", (len(panels) * (size + gap) - gap, size + label), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (name, image) in enumerate(panels):
        crop = image[:, top:top + size, left:left + size].clamp(0, 1)
        pixels = (crop.permute(1, 2, 0).numpy() * 255 + 0.5).astype("uint8")
        canvas.paste(Image.fromarray(pixels), (i * (size + gap), label))
        draw.text((i * (size + gap) + 4, 6), name, fill="black")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
