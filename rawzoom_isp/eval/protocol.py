"""The held-out protocol of ``rawzoom eval``: every condition a user's captures can be in, side by side.

Conditions (``CONDITIONS``): the LR capture in the centred geometry of a native sensor (the
headline: no training config mirrors it, since its HR demosaic is Menon's and training's is
LibRaw's) and in the footprint geometry of the first emulation, each with a native capture's noise
and without added noise, every window at every CFA phase. A network told the capture's noise reads
it from each LR raw, which states the noise its capture added (the native model, or none), as a
camera's NoiseProfile states a real capture's: the noise of the LR its target does not share. Each
condition is one ``evaluate`` run in
its own folder; the summary puts the models against LibRaw + bicubic in every condition and on
every camera, the colour-matched PSNR first, with standard errors over windows, and adds the period
measure on the native frames (``rz.eval.period``).
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence

from ..atomic import atomic_path
from ..raw.reader import read_raw
from ..synth.noise import with_noise_profile
from .cases import PHASE_OFFSETS, emulated_cases
from .evaluate import BASELINES, METRIC_NAMES, METRICS, STRONGEST, ModelMethod, baseline, evaluate
from .period import period_measure

CONDITIONS = {
    "centred-noisy": ("centred", True),
    "centred-clean": ("centred", False),
    "footprint-noisy": ("footprint", True),
    "footprint-clean": ("footprint", False),
}
HEADLINE = "centred-noisy"
_DESCRIPTIONS = {
    "centred": "centred sites (a native sensor; N x N block means of the HR raw's Menon demosaic)",
    "footprint": "footprint sites (each LR site the mean of its footprint's same-colour HR sites)",
}


def describe_condition(name: str) -> str:
    """A condition in words: the LR capture's sensor geometry, then its noise."""
    geometry, noise = CONDITIONS[name]
    return f"{_DESCRIPTIONS[geometry]}, {'a native capture' + chr(39) + 's noise' if noise else 'no added noise'}"


def held_out_eval(models: dict[str, str], raws: Sequence[str], scale: int, out: str | None = None,
                  conditions: Sequence[str] = tuple(CONDITIONS), crops: int = 24, size: int = 512,
                  phases: Sequence[tuple[int, int]] = PHASE_OFFSETS, seed: int = 0, tolerance: int = 2,
                  baselines: Sequence[str] = tuple(BASELINES), period: bool = True, progress: bool = False) -> dict:
    """Score ``{name: checkpoint}`` and the baselines in each of ``conditions`` on ``crops`` windows of
    the held-out ``raws`` (shared among them); with ``period``, the period measure of each model and
    LibRaw + bicubic on each raw's native frame. With ``out``: a folder per condition (``evaluate``'s
    reports) and the summary, results.md and results.json, there."""
    results = {}
    for name in conditions:
        geometry, noise = CONDITIONS[name]
        cases = emulated_cases(list(raws), scale=scale, size=size, crops=crops, phases=phases, noise=noise,
                               seed=seed, geometry=geometry)
        results[name] = evaluate(models, cases, scale, out=os.path.join(out, name) if out else None,
                                 tolerance=tolerance, baselines=baselines, progress=progress)
    periods = {}
    if period and models:
        methods = {STRONGEST: lambda low: baseline(STRONGEST, low, scale)}
        learned = {name: ModelMethod(path, scale) for name, path in models.items()}
        methods.update(learned)
        told = any(method.zoom.told_noise for method in learned.values())
        for path in raws:
            raw = read_raw(path)
            # A network told the noise reads it from the whole frame (the windows are too small).
            periods[os.path.basename(path)] = period_measure(methods, with_noise_profile(raw) if told else raw, scale)
    summary = {"scale": scale, "conditions": {name: results[name] for name in conditions}, "period": periods,
               "headline": HEADLINE if HEADLINE in conditions else conditions[0], "models": dict(models)}
    if out:
        write_summary(summary, out)
    return summary


def headline_rows(summary: dict, baseline_name: str = STRONGEST) -> list[dict]:
    """Each model against ``baseline_name`` in each condition, overall and per camera: the paired
    differences over windows of every metric."""
    rows = []
    for condition, result in summary["conditions"].items():
        for c in result["comparisons"]:
            if c["baseline"] == baseline_name and c["cfa"] == "all":
                rows.append({"condition": condition, "model": c["model"], "camera": c["source"],
                             **{metric: c[metric] for metric in METRICS}})
    return rows


def summary_markdown(summary: dict) -> str:
    """The summary: models vs LibRaw + bicubic in every condition and camera, then the period measure."""
    lines = [f"Held-out evaluation at {summary['scale']}x; headline: `{summary['headline']}`.", "",
             "| condition | model | camera | d colour-matched PSNR (dB) | windows won | p | dPSNR (dB) | windows won | "
             "dSSIM | windows won |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in headline_rows(summary):
        cells = []
        for metric in METRICS:
            stat = row[metric]
            digits = 4 if metric == "ssim" else 3
            cells.append(f"{stat['mean']:+.{digits}f} +- {stat['se']:.{digits}f} | {stat['wins']}/{stat['n']}")
            if metric == "psnr_cm":
                cells.append(f"{stat['p']:.1g}")
        lines.append(f"| {row['condition']} | {row['model']} | {row['camera']} | " + " | ".join(cells) + " |")
    lines += ["", "Against LibRaw AHD + bicubic, the strongest classical zoom a user has. Mean +- standard error over "
              "windows (a window's CFA phases averaged first), two-sided t-test p of the colour-matched gain, "
              f"windows won. The {METRIC_NAMES['psnr_cm']} fits an affine colour map per image first. A network "
              "told the capture's noise reads it from each LR raw: the noise that condition added (none without "
              "added noise), as a NoiseProfile states a capture's; the HR noise an LR site keeps is in the target "
              "too, and is not stated.",
              "", "Conditions:"]
    lines += [f"- `{name}`: {describe_condition(name)}" for name in summary["conditions"]]
    if summary["period"]:
        lines += ["", "Pattern at the LR pixel period on the native frames (`rz.eval.period`: flattest windows, "
                  "+1.5 EV, power at the period over its neighbours; about 1 = none):", "",
                  "| camera | method | peak at N px | peak at 2N px |", "|---|---|---|---|"]
        for camera, measure in summary["period"].items():
            for method, peaks in measure["methods"].items():
                lines.append(f"| {camera} | {method} | {peaks['lr_period']:.2f} | {peaks['tile_period']:.2f} |")
    return "\n".join(lines) + "\n"


def write_summary(summary: dict, out: str) -> None:
    os.makedirs(out, exist_ok=True)
    with atomic_path(os.path.join(out, "results.md")) as tmp, open(tmp, "w") as fh:
        fh.write(summary_markdown(summary))
    compact = {key: value for key, value in summary.items() if key != "conditions"}
    compact["headline_rows"] = headline_rows(summary)
    with atomic_path(os.path.join(out, "results.json")) as tmp, open(tmp, "w") as fh:
        json.dump(compact, fh, indent=1)


__all__ = ["CONDITIONS", "HEADLINE", "held_out_eval", "headline_rows", "summary_markdown"]
