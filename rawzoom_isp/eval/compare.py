"""The paper's experiments, reproduced with statistical power: one network trained in several arms,
every arm scored with the classical baselines on the same held-out cases, reported as paired
differences with standard errors and win rates.

A compare config is a training config (its [data], [model], [loss], [optim], [train] options shared
by the arms) plus a [compare] section:

- ``experiment``: "data-type" (the paper's Table 2: real raw vs synthetic raw vs 8-bit RGB), "loss"
  (misaligned pairs: L1 vs contextual vs CoBi, with L1 on aligned pairs as an upper reference) or
  "fine-tune" (a model trained without one camera, before and after ``--init`` fine-tuning on a few
  of that camera's crops);
- ``train``: raw files to train on; ``test``: held-out full-resolution raws (emulated cases at every
  CFA phase, noise matched); or ``srraw``: an SR-RAW root, whose train split trains and test split
  tests (optical pairs); ``out``: the report folder (relative to the current folder);
- ``arms`` (default: all of the experiment's), ``seeds`` (default [0]); ``crops``, ``size``,
  ``phases`` ("all" or "native"), ``tolerance`` for the test cases;
- data-type: ``jpeg_quality`` of the RGB arm's input (LibRaw's AHD render of the LR raw, 8-bit;
  0 = no JPEG); loss: ``misalign`` (LR px) and ``misalign_affine``; fine-tune: ``init`` (the model to
  start from; the fine-tuned network is its network, so the config has no [model]), ``camera`` (the
  new camera's full-resolution raw: its top half is fine-tuned on, its bottom half tested),
  ``finetune_steps``.

Arms train one after another, each resumable: a finished arm is skipped, an interrupted one resumes
from its last checkpoint, so a comparison can be run in pieces. ``<out>/REPORT.md`` holds the tables,
a plot with error bars, the commands, machine, time and the kind of pairs; ``results.json`` all scores.
"""
from __future__ import annotations

import copy
import itertools
import math
import os
import platform
import sys
import time

import torch

from ..atomic import atomic_path
from ..errors import ConfigError
from ..imageio import write_image
from ..models.checkpoint import read_checkpoint
from ..raw.reader import libraw_render, read_raw
from ..train.config import load_config, read_config, resolve_path
from ..train.trainer import train, training_seconds
from .cases import PHASE_OFFSETS, case_from_pair, check_emulated_cases, emulated_cases
from .evaluate import BASELINES, evaluate, markdown_table
from .stats import mean_se, paired

EXPERIMENTS = {
    "data-type": {
        "real-raw": "real sensor raw: emulated zoom pairs from the real mosaics",
        "synthetic-raw": "synthetic raw: Brooks et al. unprocessing of the same targets, reduced N x",
        "synthetic-raw-paper": "synthetic raw as the paper made it: x^2.22, mosaic, Gaussian noise",
        "rgb": "8-bit RGB: LibRaw's AHD render of the LR raw in 8 bits (optionally a JPEG), as a phone stores it",
    },
    "loss": {
        "l1-aligned": "L1 on aligned pairs (an upper reference)",
        "l1": "L1 on misaligned pairs",
        "contextual": "contextual loss (no spatial term) on misaligned pairs",
        "cobi": "CoBi (RGB patches + VGG) on misaligned pairs",
    },
    "fine-tune": {
        "after": "the model fine-tuned (--init) on a few crops of the new camera",
        "before": "the same model as trained, without the new camera",
    },
}
MISALIGN, MISALIGN_AFFINE = 2.0, 0.005  # loss experiment defaults: shift (LR px), affine (fraction)
COMPARE_KEYS = {"experiment", "profile", "train", "test", "srraw", "out", "arms", "seeds", "crops", "size", "phases",
                "tolerance", "jpeg_quality", "misalign", "misalign_affine", "init", "camera", "finetune_steps"}
SRRAW_KIND = "SR-RAW optical zoom pairs (the train split trains, the test split tests)."
PAIR_KIND = ("emulated zoom pairs from real raw files: each LR input is the real mosaic reduced N x in the Bayer "
             "domain, with noise matched to a native capture; the target is LibRaw's AHD render of the "
             "full-resolution raw. These are not optical zoom pairs like SR-RAW's.")


def read_compare_config(config, overrides: list[str] = ()) -> tuple[dict, dict]:
    """([compare] with input paths resolved and defaults filled, the shared training config)."""
    from ..train.config import apply_overrides

    config, base = read_config(config, "compare config")
    section = config.pop("compare", None)
    if not isinstance(section, dict):
        raise ConfigError("a compare config needs a [compare] section (experiment, train, test, out)")
    ours = [o for o in overrides if o.startswith("compare.")]
    apply_overrides(config, [o for o in overrides if o not in ours])
    apply_overrides({"compare": section}, ours)
    overridden = {o.partition("=")[0].strip().removeprefix("compare.") for o in ours}
    unknown = sorted(set(section) - COMPARE_KEYS)
    if unknown:
        raise ConfigError(f"[compare] has no key(s) {', '.join(unknown)}; known: {', '.join(sorted(COMPARE_KEYS))}")
    experiment = section.setdefault("experiment", "data-type")
    if experiment not in EXPERIMENTS:
        raise ConfigError(f"[compare] experiment must be one of {', '.join(EXPERIMENTS)}, got {experiment!r}")
    arms = section.setdefault("arms", list(EXPERIMENTS[experiment]))
    if not arms or any(arm not in EXPERIMENTS[experiment] for arm in arms):
        raise ConfigError(f"[compare] arms of {experiment} are {', '.join(EXPERIMENTS[experiment])}, got {arms!r}")
    if "srraw" in section:
        if experiment == "fine-tune" or "train" in section or "test" in section:
            raise ConfigError("[compare] srraw replaces train and test, for the data-type and loss experiments")
        section["srraw"] = resolve_path(section["srraw"], None if "srraw" in overridden else base)
    for key in () if "srraw" in section or experiment == "fine-tune" else ("train", "test"):
        files = section.get(key)
        if not isinstance(files, list) or not files:
            raise ConfigError(f"[compare] {key} must be a non-empty list of raw files")
        section[key] = [resolve_path(f, None if key in overridden else base) for f in files]
    if experiment == "fine-tune":
        if "model" in config:
            raise ConfigError("[compare] fine-tune trains the init checkpoint's network: drop [model]")
        for key in ("init", "camera"):
            if not isinstance(section.get(key), str):
                raise ConfigError(f"[compare] fine-tune needs {key} (a path)")
        for key in ("camera", "init"):
            if section[key] != "default":
                section[key] = resolve_path(section[key], None if key in overridden else base)
    if "out" not in section:
        raise ConfigError("[compare] needs out (the report folder)")
    section.setdefault("seeds", [0])
    section.setdefault("crops", 24)
    section.setdefault("size", 512)
    section.setdefault("phases", "all")
    section.setdefault("tolerance", 2)
    return section, config


def arm_config(base: dict, arm: str, seed: int, compare: dict, work: str) -> dict:
    """The training config of one arm and seed: the shared options plus that arm's pair source."""
    config = copy.deepcopy(base)
    data, loss, train_section = (config.setdefault(s, {}) for s in ("data", "loss", "train"))
    if "srraw" in compare:
        data.update(seed=seed, source="srraw", root=compare["srraw"], split="train", input="raw", files=None)
    else:
        data.update(seed=seed, source="emulated", input="raw", files=compare.get("train"))
        data.pop("root", None)
    train_section.update(out=os.path.join(compare["out"], f"{arm}-seed{seed}"), seed=seed)
    if arm in ("synthetic-raw", "synthetic-raw-paper"):
        data.update(source="synthetic", root=os.path.join(work, "synthetic-targets"),
                    method="brooks" if arm == "synthetic-raw" else "paper", files=None)
        for key in ("reference", "noise_match", "noise_range", "texture_candidates"):
            data.pop(key, None)
    elif arm == "rgb":
        data.update(input="rgb", rgb_render="libraw", jpeg_quality=int(compare.get("jpeg_quality", 0)))
    elif compare["experiment"] == "loss":
        misaligned = arm != "l1-aligned"
        data.update(misalign=float(compare.get("misalign", MISALIGN)) if misaligned else 0.0,
                    misalign_affine=float(compare.get("misalign_affine", MISALIGN_AFFINE)) if misaligned else 0.0)
        loss["type"] = "l1" if arm.startswith("l1") else arm
    return config


def _synthetic_targets(compare: dict, folder: str) -> None:
    """The synthetic arms' images: the very targets the real-raw arm learns (LibRaw renders of the
    training raws as 16-bit PNGs; SR-RAW's target JPEGs, linked)."""
    os.makedirs(folder, exist_ok=True)
    if "srraw" in compare:
        from ..data import SRRawDataset

        for pair in SRRawDataset(compare["srraw"], split="train").pairs:
            jpeg = pair["target"][1]
            link = os.path.join(folder, f"{pair['sequence']}_{os.path.basename(jpeg)}")
            if not os.path.exists(link):
                os.symlink(os.path.abspath(jpeg), link)
        return
    for path in compare["train"]:
        png = os.path.join(folder, os.path.splitext(os.path.basename(path))[0] + ".png")
        if not os.path.exists(png):
            write_image(png, libraw_render(path), bits=16)


def _camera_halves(camera: str, folder: str) -> tuple[str, str]:
    """The new camera's raw cut into a top half (to fine-tune on) and a bottom half (to test on), as
    DNGs with its metadata."""
    from ..raw.dng import write_dng

    raw = read_raw(camera)
    height = raw.shape[0] // 4 * 2
    os.makedirs(folder, exist_ok=True)
    halves = []
    for name, top in (("finetune-top", 0), ("test-bottom", height)):
        path = os.path.join(folder, f"{os.path.splitext(os.path.basename(camera))[0]}-{name}.dng")
        if not os.path.exists(path):
            write_dng(path, raw.crop(top, 0, height, raw.shape[1] // 2 * 2))
        halves.append(path)
    return halves[0], halves[1]


def compare(config, progress: bool = True, overrides: list[str] = ()) -> dict:
    """Train every arm and seed (skipping finished ones, resuming interrupted ones), score them and
    the baselines on the held-out cases, write ``<out>/REPORT.md``; returns the results."""
    section, base = read_compare_config(config, overrides)
    out = section["out"]
    started = time.time()
    weights, timings = {}, {}
    experiment, scale = section["experiment"], base.get("data", {}).get("scale", 4)
    test_files = section.get("test")
    if experiment == "fine-tune":
        from ..models import default_weights

        tune_file, test_file = _camera_halves(section["camera"], out)
        test_files = [test_file]
    if "srraw" not in section:
        check_emulated_cases(test_files, section["size"], section["crops"])  # before anything trains
    os.makedirs(out, exist_ok=True)
    if experiment == "fine-tune":
        init = default_weights(scale) if section["init"] == "default" else section["init"]
        for seed in section["seeds"]:
            if "before" in section["arms"]:
                weights[f"before-seed{seed}"] = init
            if "after" in section["arms"]:
                config = copy.deepcopy(base)
                config["model"] = dict(read_checkpoint(init)["config"])
                config.setdefault("data", {}).update(files=[tune_file], source="emulated", input="raw", seed=seed)
                config["data"].pop("root", None)
                config.setdefault("optim", {})["steps"] = int(section.get("finetune_steps", 300))
                config.setdefault("train", {}).update(out=os.path.join(out, f"after-seed{seed}"), seed=seed)
                load_config(config)
                weights[f"after-seed{seed}"] = train(config, resume=True, init=init, progress=progress)
                timings[f"after-seed{seed}"] = training_seconds(config["train"]["out"])
    else:
        if any(arm.startswith("synthetic") for arm in section["arms"]):
            _synthetic_targets(section, os.path.join(out, "synthetic-targets"))
        configs = {f"{arm}-seed{seed}": arm_config(base, arm, seed, section, out)
                   for arm, seed in itertools.product(section["arms"], section["seeds"])}
        for config in configs.values():
            load_config(config)  # every arm checked before any trains
        for name, config in configs.items():
            weights[name] = train(config, resume=True, progress=progress)
            timings[name] = training_seconds(config["train"]["out"])
    if "srraw" in section:
        from ..data import SRRawDataset

        pairs = SRRawDataset(section["srraw"], scale=scale, split="test", patch=None, augment=False, target_margin=0)
        cases = [case_from_pair(pairs.load(i, pairs.generator(i, 0))) for i in range(len(pairs))]
    else:
        phases = PHASE_OFFSETS if section["phases"] == "all" else PHASE_OFFSETS[:1]
        cases = list(emulated_cases(test_files, scale=scale, size=section["size"], crops=section["crops"],
                                    phases=phases))
    result = evaluate(weights, cases, scale=scale, out=out, tolerance=section["tolerance"], progress=progress)
    result["arms"] = arm_summary(result, section)
    result.update(timings_s=timings, total_s=time.time() - started, experiment=experiment,
                  seeds=section["seeds"], command=f"rawzoom {' '.join(sys.argv[1:])}")
    plot_arms(result, os.path.join(out, "arms.png"))
    result["report"] = write_report(result, section, base)
    return result


def arm_summary(result: dict, section: dict) -> dict:
    """Per arm (scores averaged over its seeds on each case): mean +- SE; for every pair of arms and
    arm vs baseline, the paired difference, its SE and the win rate; the spread between seeds."""
    rows = result["per_case"]
    cases = sorted({r["case"] for r in rows})

    def per_case(method_names, metric):
        return [sum(r[metric] for r in rows if r["case"] == c and r["method"] in method_names) / len(method_names)
                for c in cases]

    members = {arm: [f"{arm}-seed{s}" for s in section["seeds"]] for arm in section["arms"]}
    members.update({b: [b] for b in BASELINES})
    scores = {name: {m: per_case(names, m) for m in ("psnr", "ssim", "psnr_cm")} for name, names in members.items()}
    summary = {name: {m: mean_se(v) for m, v in metrics.items()} for name, metrics in scores.items()}
    pairs = {f"{a} vs {b}": {m: paired(scores[a][m], scores[b][m]) for m in ("psnr", "ssim", "psnr_cm")}
             for a, b in itertools.combinations(section["arms"], 2)}
    pairs.update({f"{a} vs {b}": {m: paired(scores[a][m], scores[b][m]) for m in ("psnr", "ssim", "psnr_cm")}
                  for a in section["arms"] for b in ("libraw", "classical")})
    seeds = {}
    if len(section["seeds"]) > 1:
        for arm, names in members.items():
            if arm in section["arms"]:
                means = [mean_se(per_case([n], "psnr"))[0] for n in names]
                seeds[arm] = max(means) - min(means)
    return {"summary": summary, "pairs": pairs, "seed_spread_psnr": seeds, "cases": len(cases)}


def plot_arms(result: dict, path: str) -> None:
    """Mean PSNR difference to LibRaw + bicubic per arm, with +-2 SE error bars (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    arms = [name.split(" vs ")[0] for name in result["arms"]["pairs"] if name.endswith(" vs libraw")]
    stats = [result["arms"]["pairs"][f"{arm} vs libraw"] for arm in arms]
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for axis, metric, label in ((axes[0], "psnr", "PSNR"), (axes[1], "psnr_cm", "colour-matched PSNR")):
        means = [s[metric]["mean"] for s in stats]
        errors = [2 * s[metric]["se"] for s in stats]
        axis.bar(arms, means, yerr=errors, capsize=4, color="#4c72b0")
        axis.axhline(0, color="black", linewidth=0.8)
        axis.set_ylabel(f"{label} - LibRaw + bicubic (dB)")
        axis.tick_params(axis="x", rotation=20)
    figure.suptitle("mean paired difference over held-out cases, error bars +-2 SE")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)


def _verdict(result: dict, section: dict) -> str:
    """One line per claim, each saying how strong it is: "clearly" only where the mean PSNR difference
    exceeds 2 SE, the winner wins at least 75% of the cases and colour-matched PSNR agrees (beyond 2 SE);
    a difference significant in the mean alone is said to be "in the mean, not robustly", with its win
    rate and colour-matched difference; otherwise, how many cases would settle it."""
    pairs, experiment = result["arms"]["pairs"], section["experiment"]

    def said(a, b):
        """(mean, SE, strength, words) of a - b in PSNR; strength: "robust", "mean" or "none"."""
        sign = 1 if f"{a} vs {b}" in pairs else -1
        stat = pairs[f"{a} vs {b}" if sign > 0 else f"{b} vs {a}"]
        mean, se = sign * stat["psnr"]["mean"], stat["psnr"]["se"]
        matched, matched_se = sign * stat["psnr_cm"]["mean"], stat["psnr_cm"]["se"]
        if abs(mean) > 2 * se:
            wins = stat["psnr"]["win_rate"] if (mean > 0) == (sign > 0) else 1 - stat["psnr"]["win_rate"]
            who = a if mean > 0 else b
            if wins >= 0.75 and matched * mean > 0 and abs(matched) > 2 * matched_se:
                return mean, se, "robust", f"clearly: {who} wins {100 * wins:.0f}% of cases, colour-matched PSNR agrees"
            return mean, se, "mean", (f"in the mean, not robustly: {who} wins {100 * wins:.0f}% of cases, "
                                      f"colour-matched PSNR {matched:+.2f} +- {matched_se:.2f} dB")
        if mean == 0:
            return mean, se, "none", "not significantly"
        needed = math.ceil(result["arms"]["cases"] * (2 * se / abs(mean)) ** 2)  # SE shrinks as 1 / sqrt(cases)
        return mean, se, "none", f"not significantly; at this spread about {needed} cases would settle it"

    lines = []
    if experiment == "data-type":
        for synthetic in [a for a in ("synthetic-raw", "synthetic-raw-paper") if a in section["arms"]] or [None]:
            chain = [a for a in ("real-raw", synthetic, "rgb") if a in section["arms"]]
            facts = [(a, b, *said(a, b)) for a, b in zip(chain, chain[1:])]
            if not facts:
                continue
            if any(m < 0 and strength != "none" for _, _, m, _, strength, _ in facts):
                verdict = "does not hold"
            elif any(strength == "none" for *_, strength, _ in facts):
                verdict = "is not established"
            elif all(strength == "robust" for *_, strength, _ in facts):
                verdict = "holds clearly"
            else:
                verdict = "holds in the mean, not robustly"
            detail = "; ".join(f"{a} - {b}: {m:+.2f} +- {se:.2f} dB ({words})" for a, b, m, se, _, words in facts)
            made = f", synthetic raw made as `{synthetic}`" if synthetic else ""
            ordering = " > ".join({"real-raw": "real", "rgb": "RGB"}.get(a, "synthetic") for a in chain)
            lines.append(f"The paper's ordering {ordering}{made}: {verdict} here ({detail}).")
    elif experiment == "loss":
        for arm in ("contextual", "cobi"):
            if arm in section["arms"] and "l1" in section["arms"]:
                m, se, _, s = said(arm, "l1")
                lines.append(f"On misaligned pairs {arm} vs L1: {m:+.2f} +- {se:.2f} dB PSNR ({s}).")
        if "l1-aligned" in section["arms"] and "l1" in section["arms"]:
            m, se, _, s = said("l1-aligned", "l1")
            lines.append(f"What misalignment costs L1: {m:+.2f} +- {se:.2f} dB ({s}).")
    else:
        m, se, _, s = said("after", "before")
        lines.append(f"Fine-tuning on the new camera: {m:+.2f} +- {se:.2f} dB PSNR on its held-out crops ({s}).")
    for arm in section["arms"]:
        m, se, _, s = said(arm, "libraw")
        lines.append(f"{arm} vs LibRaw AHD + bicubic: {m:+.2f} +- {se:.2f} dB PSNR ({s}).")
    if result["arms"]["seed_spread_psnr"]:
        spread = ", ".join(f"{a} {v:.2f} dB" for a, v in result["arms"]["seed_spread_psnr"].items())
        lines.append(f"Spread of the mean PSNR between seeds: {spread}.")
    return "\n".join(f"- {line}" for line in lines)


def _pairs_table(result: dict) -> str:
    lines = ["| comparison | dPSNR (dB) | wins | dSSIM | wins | d colour-matched PSNR | wins |",
             "|---|---|---|---|---|---|---|"]
    for name, stat in result["arms"]["pairs"].items():
        cells = [f"{stat[m]['mean']:+.3f} +- {stat[m]['se']:.3f} | {100 * stat[m]['win_rate']:.0f}%"
                 for m in ("psnr", "ssim", "psnr_cm")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(result: dict, section: dict, training: dict) -> str:
    """``<out>/REPORT.md``: data, arms, tables, plot, verdict, gallery and how it was made; ``training``
    is the config the arms share (without [compare])."""
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    if torch.cuda.is_available():
        machine += f", GPU {torch.cuda.get_device_name()}"
    arms = "\n".join(f"- `{arm}`: {EXPERIMENTS[section['experiment']][arm]}" for arm in section["arms"])
    timing = ", ".join(f"{name} {seconds / 60:.1f} min" for name, seconds in result["timings_s"].items()
                       if seconds is not None)
    if "srraw" in section:
        data_line = f"SR-RAW root: {section['srraw']}."
    elif section["experiment"] == "fine-tune":
        data_line = (f"New camera: {os.path.basename(section['camera'])}, its top half fine-tuned on, its bottom "
                     f"half tested; starting model: {section['init']}.")
    else:
        data_line = (f"Training raws: {', '.join(os.path.basename(p) for p in section['train'])}. Held-out test "
                     f"raws: {', '.join(os.path.basename(p) for p in section['test'])}.")
    if section["experiment"] == "loss":
        loss = training.get("loss", {})
        data_line += (f" Misaligned arms: each pair shifted by up to {section.get('misalign', MISALIGN)} LR px with "
                      f"an affine of up to {section.get('misalign_affine', MISALIGN_AFFINE)}; contextual and CoBi on "
                      f"{loss.get('sample') or 'all'} sampled positions per term (the kernel's `sample` option).")
    summary = "\n".join(f"| {name} | {v['psnr'][0]:.2f} +- {v['psnr'][1]:.2f} | {v['ssim'][0]:.4f} +- "
                        f"{v['ssim'][1]:.4f} | {v['psnr_cm'][0]:.2f} +- {v['psnr_cm'][1]:.2f} |"
                        for name, v in result["arms"]["summary"].items())
    text = f"""# Experiment: {section['experiment']} ({section.get('profile', 'custom')})

Pairs: {SRRAW_KIND if 'srraw' in section else PAIR_KIND}
{data_line}
Cases: {result['arms']['cases']} ({section['crops']} textured windows of {section['size']} px at {section['phases']}
CFA phases). Seeds: {', '.join(map(str, section['seeds']))} (an arm's score on a case is its mean over seeds).

Arms (same network, steps and seeds):
{arms}

## Per arm (mean +- SE over cases)

| arm | PSNR (dB) | SSIM | colour-matched PSNR (dB) |
|---|---|---|---|
{summary}

## Paired differences (first minus second; wins: share of cases the first wins)

{_pairs_table(result)}

![arms against LibRaw + bicubic](arms.png)

## What it shows
{_verdict(result, section)}

## Every model and seed

{markdown_table(result, phases=False)}
![input, methods, target](figure.png)

## How it was made
- Command: `{result['command']}`
- Machine: {machine}
- Time: this run {result['total_s'] / 60:.1f} min; training of each arm, resumes included: {timing or 'none'}
- Per-case scores: `results.csv`, `results.json`; training curves: `<arm>-seed<k>/metrics.csv`.
"""
    path = os.path.join(section["out"], "REPORT.md")
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        fh.write(text)
    return path
