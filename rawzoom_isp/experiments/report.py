"""An experiment's statistics, verdicts and report.

Every statistic counts windows (``rz.eval.stats``): an arm's score on a case is its mean over seeds,
a window's score the mean over its CFA phases. A difference between two arms is called clear only
when plain PSNR, colour-matched PSNR and SSIM agree in sign and each is significant over windows
(two-sided t-test, p < 0.05); otherwise the verdict says which metrics disagree or are not
significant, and how many windows would make each of those significant at this spread.
"""
from __future__ import annotations

import itertools
import os
import platform

import torch

from ..atomic import atomic_path
from ..eval.evaluate import BASELINES, METRIC_NAMES, METRICS, markdown_table
from ..eval.protocol import describe_condition
from ..eval.stats import by_window, mean_se, paired, units_needed
from ..train.trainer import read_metrics
from .config import ARM_PIPELINES, EXPERIMENTS, MISALIGN, MISALIGN_AFFINE, PIPELINE_STEPS

SIGNIFICANCE = 0.05
PAIR_KIND = ("emulated zoom pairs from real raw files: each LR input is what an LR sensor N x coarser would "
             "capture of the real raw (rz.synth.sensor); the target is LibRaw's AHD render of the full-resolution "
             "raw. These are not optical zoom pairs like SR-RAW's.")
SRRAW_KIND = "SR-RAW optical zoom pairs (the train split trains, the test split tests)."


def arm_summary(result: dict, arms: dict[str, list[str]]) -> dict:
    """``arms``: {arm: its models (one per seed)}. Per arm and baseline the mean +- SE over windows of
    each metric; for every pair of arms and each arm against the baselines, the paired differences
    over windows; the spread of the arms' means between seeds."""
    rows = result["per_case"]
    members = dict(arms, **{b: [b] for b in BASELINES if any(r["method"] == b for r in rows)})

    def scores(names: list[str], metric: str) -> dict[tuple, float]:
        per_model = [by_window([r for r in rows if r["method"] == n], metric) for n in names]
        return {unit: sum(m[unit] for m in per_model) / len(per_model) for unit in per_model[0]}

    table = {name: {m: scores(names, m) for m in METRICS} for name, names in members.items()}

    def compared(a: str, b: str) -> dict:
        units = [u for u in table[a]["psnr"] if u in table[b]["psnr"]]
        return {m: paired([table[a][m][u] for u in units], [table[b][m][u] for u in units]) for m in METRICS}

    pairs = {f"{a} vs {b}": compared(a, b) for a, b in itertools.combinations(arms, 2)}
    pairs.update({f"{a} vs {b}": compared(a, b) for a in arms for b in ("libraw", "classical") if b in members})
    spread = {}
    for arm, names in arms.items():
        if len(names) > 1:
            means = [mean_se(list(by_window([r for r in rows if r["method"] == n], "psnr_cm").values()))[0]
                     for n in names]
            spread[arm] = max(means) - min(means)
    return {"summary": {name: {m: mean_se(list(v.values())) for m, v in metrics.items()}
                        for name, metrics in table.items()},
            "pairs": pairs, "seed_spread_psnr_cm": spread, "windows": len(table[next(iter(arms))]["psnr"])}


def judge(stat: dict) -> tuple[str, str]:
    """(strength, words) of one paired comparison (``arm_summary``'s pairs entry), a - b:
    "clear" (all three metrics agree in sign and each p < 0.05), "reversed" (they agree, each
    significant, and a loses), "mixed" (significant metrics disagree in sign), or "none"."""
    significant = {m: stat[m]["p"] < SIGNIFICANCE for m in METRICS}
    signs = {m: (stat[m]["mean"] > 0) - (stat[m]["mean"] < 0) for m in METRICS}
    facts = "; ".join(f"{METRIC_NAMES[m]} {stat[m]['mean']:+.{4 if m == 'ssim' else 2}f} +- "
                      f"{stat[m]['se']:.{4 if m == 'ssim' else 2}f} (p {stat[m]['p']:.2g}, "
                      f"{stat[m]['wins']}/{stat[m]['n']} windows won)" for m in METRICS)
    if all(significant.values()) and len(set(signs.values())) == 1:
        return ("clear" if signs["psnr_cm"] > 0 else "reversed"), facts
    if len({signs[m] for m in METRICS if significant[m]}) > 1:
        return "mixed", facts
    return "none", facts


def claim(pairs: dict, a: str, b: str) -> str:
    """One sentence about a - b: the verdict, then every metric with its SE, p and windows won."""
    stat = pairs[f"{a} vs {b}"] if f"{a} vs {b}" in pairs else _flipped(pairs[f"{b} vs {a}"])
    strength, facts = judge(stat)
    if strength == "clear":
        verdict = f"{a} beats {b} clearly (all three metrics agree, each significant over windows)"
    elif strength == "reversed":
        verdict = f"{b} beats {a} clearly (all three metrics agree, each significant over windows)"
    elif strength == "mixed":
        ups = [METRIC_NAMES[m] for m in METRICS if stat[m]["p"] < SIGNIFICANCE and stat[m]["mean"] > 0]
        downs = [METRIC_NAMES[m] for m in METRICS if stat[m]["p"] < SIGNIFICANCE and stat[m]["mean"] < 0]
        verdict = f"the metrics disagree: {a} is better on {', '.join(ups)} and worse on {', '.join(downs)}"
    else:
        open_metrics = [m for m in METRICS if stat[m]["p"] >= SIGNIFICANCE]
        needed = {m: units_needed(stat[m]["mean"], stat[m]["se"], stat[m]["n"], SIGNIFICANCE) for m in open_metrics}
        settle = ", ".join(f"{METRIC_NAMES[m]} about {needed[m]}" for m in open_metrics if needed[m])
        settle = f"; at this spread the windows that would make each significant: {settle}" if settle else ""
        verdict = (f"not established ({', '.join(METRIC_NAMES[m] for m in open_metrics)} not significant "
                   f"over windows{settle})")
    return f"{a} vs {b}: {verdict}. {facts}."


def _flipped(stat: dict) -> dict:
    return {m: {**s, "mean": -s["mean"], "wins": s["n"] - s["wins"], "win_rate": 1 - s["win_rate"]}
            for m, s in stat.items()}


def verdict_lines(result: dict, section: dict, arms: list[str]) -> list[str]:
    """The report's claims: the experiment's question, then every arm against LibRaw + bicubic."""
    pairs, experiment = result["arms"]["pairs"], section["experiment"]
    lines = []
    if experiment == "data-type":
        chain = [a for a in ("real-raw", "synthetic-raw", "synthetic-raw-paper", "rgb") if a in arms]
        lines += [claim(pairs, a, b) for a, b in itertools.combinations(chain, 2)]
    elif experiment == "loss":
        if "l1" in arms:
            lines += [claim(pairs, arm, "l1") for arm in ("contextual", "cobi", "l1-aligned") if arm in arms]
        if "cobi" in arms and "contextual" in arms:
            lines.append(claim(pairs, "cobi", "contextual"))
    else:
        lines += [claim(pairs, arm, "before") for arm in arms if arm != "before"]
    lines += [claim(pairs, arm, "libraw") for arm in arms if f"{arm} vs libraw" in pairs]
    if result["arms"]["seed_spread_psnr_cm"]:
        spread = ", ".join(f"{a} {v:.2f} dB" for a, v in result["arms"]["seed_spread_psnr_cm"].items())
        lines.append(f"Spread of the mean colour-matched PSNR between seeds: {spread}.")
    return lines


def plot_arms(result: dict, path: str) -> None:
    """Each arm's mean difference to LibRaw + bicubic over windows, +-2 SE, for every metric."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    arms = [name.split(" vs ")[0] for name in result["arms"]["pairs"] if name.endswith(" vs libraw")]
    stats = [result["arms"]["pairs"][f"{arm} vs libraw"] for arm in arms]
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for axis, metric in zip(axes, METRICS):
        axis.bar(arms, [s[metric]["mean"] for s in stats], yerr=[2 * s[metric]["se"] for s in stats], capsize=4,
                 color="#4c72b0")
        axis.axhline(0, color="black", linewidth=0.8)
        axis.set_ylabel(f"{METRIC_NAMES[metric]} - LibRaw + bicubic")
        axis.tick_params(axis="x", rotation=20)
    figure.suptitle("mean paired difference over held-out windows, error bars +-2 SE")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)


def plot_curves(runs: dict[str, str], path: str) -> None:
    """Each run's training loss (and held-out loss, where logged) against the step."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3.6))
    for name, run in runs.items():
        rows = read_metrics(run)
        if not rows:
            continue
        line, = axis.plot([r["step"] for r in rows], [r["loss"] for r in rows], label=name, linewidth=0.8)
        held = [(r["step"], r["val_loss"]) for r in rows if r.get("val_loss") is not None]
        if held:
            axis.plot(*zip(*held), color=line.get_color(), linestyle="--", marker=".", label=f"{name} (held out)")
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    axis.set_yscale("log")
    axis.legend(fontsize=6)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)


def _pipeline_table(arms: list[str]) -> str:
    shown = [a for a in arms if a in ARM_PIPELINES]
    if not shown:
        return ""
    lines = ["| step | " + " | ".join(f"`{a}`" for a in shown) + " |", "|---" * (len(shown) + 1) + "|"]
    for number, step in enumerate(PIPELINE_STEPS):
        lines.append(f"| {step} | " + " | ".join(ARM_PIPELINES[a][number] for a in shown) + " |")
    return "\n".join(lines) + "\n"


def _pairs_table(result: dict) -> str:
    lines = ["| comparison | d colour-matched PSNR (dB) | windows won | p | dPSNR (dB) | windows won | p | dSSIM | "
             "windows won | p |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, stat in result["arms"]["pairs"].items():
        cells = [f"{stat[m]['mean']:+.{4 if m == 'ssim' else 3}f} +- {stat[m]['se']:.{4 if m == 'ssim' else 3}f} | "
                 f"{stat[m]['wins']}/{stat[m]['n']} | {stat[m]['p']:.2g}" for m in METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(result: dict, section: dict, training: dict, arms: list[str], others: dict | None = None) -> str:
    """``<out>/REPORT.md``: data, arms and their pipelines, tables, plots, verdicts, gallery and how it
    was made; ``training`` is the config the arms share (without [compare]); ``others``: {condition:
    its results} of the other test conditions, whose verdicts it repeats with a link to their reports."""
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    if torch.cuda.is_available():
        machine += f", GPU {torch.cuda.get_device_name()}"
    described = {**EXPERIMENTS[section["experiment"]]}
    arm_lines = "\n".join(f"- `{arm}`: {described.get(arm, described.get(arm.split('-')[0], ''))}" for arm in arms)
    timing = ", ".join(f"{name} {seconds / 60:.1f} min" for name, seconds in result["timings_s"].items()
                       if seconds is not None)
    trained_by = "; ".join(f"{name} " + ", ".join(f"{key} {value}" for key, value in settings.items())
                           for name, settings in result.get("run_settings", {}).items())
    if trained_by:
        trained_by = (f"- Trained, at least in part, by a call with other run settings (they do not change what an arm "
                      f"learns): {trained_by}\n")
    data = training.get("data", {})
    sensor = (f"LR sensor: {data.get('degradation', 'centred')} geometry"
              + (f" ({100 * data.get('footprint_share', 0.5):.0f}% footprint)" if data.get("degradation") == "mixed"
                 else "")
              + f", noise factor {data.get('noise_range', [1.0, 1.0])} ({100 * data.get('clean_share', 0):.0f}% "
              "without added noise).")
    if "srraw" in section:
        data_line = f"SR-RAW root: {section['srraw']}."
    elif section["experiment"] == "fine-tune":
        data_line = (f"New camera: {os.path.basename(section['camera'])}: the top part of its frame fine-tuned on, the "
                     f"bottom part tested, {section['guard']} rows apart; starting model: {section['init']}. Recipes: "
                     + "; ".join(f"`{name}` {recipe}" for name, recipe in section["recipes"].items()) + ".")
    else:
        names = [os.path.basename(p if isinstance(p, str) else p["path"]) for p in section["train"]]
        data_line = (f"Training raws: {', '.join(names)}. Held-out test raws: "
                     f"{', '.join(os.path.basename(p) for p in section['test'])}. {sensor}")
    if section["experiment"] == "loss":
        loss = training.get("loss", {})
        data_line += (f" Misaligned arms: each pair shifted by up to {section.get('misalign', MISALIGN)} LR px with "
                      f"an affine of up to {section.get('misalign_affine', MISALIGN_AFFINE)}; contextual and CoBi on "
                      f"{loss.get('sample') or 'all'} sampled positions per term (the kernel's `sample` option), "
                      f"CoBi backend {loss.get('backend', 'auto')} (auto: the fused kernel on a GPU, the chunked "
                      "PyTorch one on a CPU).")
    summary = "\n".join(f"| {name} | {v['psnr_cm'][0]:.2f} +- {v['psnr_cm'][1]:.2f} | {v['psnr'][0]:.2f} +- "
                        f"{v['psnr'][1]:.2f} | {v['ssim'][0]:.4f} +- {v['ssim'][1]:.4f} |"
                        for name, v in result["arms"]["summary"].items())
    pipelines = _pipeline_table(arms)
    claims = "\n".join(f"- {line}" for line in verdict_lines(result, section, arms))
    condition = result.get("condition")
    tested = f" Test condition `{condition}`: {describe_condition(condition)}." if condition else ""
    elsewhere = "".join(
        f"\n### [`{name}`]({name}/REPORT.md): {describe_condition(name)}\n\n"
        + "\n".join(f"- {line}" for line in verdict_lines(other, section, arms)) + "\n"
        for name, other in (others or {}).items())
    if elsewhere:
        elsewhere = f"\n## The same windows in the other test conditions\n{elsewhere}"
    text = f"""# Experiment: {section['experiment']} ({section.get('profile', 'custom')})

Pairs: {SRRAW_KIND if 'srraw' in section else PAIR_KIND}
{data_line}
Test: {result['arms']['windows']} windows ({section['crops']} textured windows of {section['size']} px, at
{section['phases']} CFA phases; a window's phases are one image and are averaged first).{tested} Seeds:
{', '.join(map(str, section['seeds']))} (an arm's score on a case is its mean over seeds).

Arms (the same network, steps, seeds, windows, targets, sensor geometry and noise factors; only what
the arm tests differs):
{arm_lines}
{chr(10) + 'Each arm' + chr(39) + 's pipeline:' + chr(10) + chr(10) + pipelines if pipelines else ''}
## Per arm (mean +- SE over windows)

| arm | colour-matched PSNR (dB) | PSNR (dB) | SSIM |
|---|---|---|---|
{summary}

## Paired differences over windows (first minus second)

{_pairs_table(result)}

![arms against LibRaw + bicubic](arms.png)

![training curves](curves.png)

## What it shows
A difference is called clear only when colour-matched PSNR, plain PSNR and SSIM agree in sign and
each is significant over windows (p < {SIGNIFICANCE}).

{claims}
{elsewhere}
## Every model and seed

{markdown_table(result, phases=False)}
![input, methods, target](figure.png)

## How it was made
- Command: `{result['command']}`
- Machine: {machine}
- Time: this run {result['total_s'] / 60:.1f} min; training of each arm, every segment of a resumed run included:
  {timing or 'none'}
- Per-case scores: `results.csv`, `results.json`; training curves: `<arm>-seed<k>/metrics.csv`.
{trained_by}"""
    path = os.path.join(section["out"], "REPORT.md")
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        fh.write(text)
    return path
