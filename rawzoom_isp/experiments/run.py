"""``compare``: train every arm of an experiment (resumably), score them and the classical baselines on
the same held-out windows, and write the report (``rz.experiments.report``).

Arms train one after another, each resumable: a finished arm is skipped, an interrupted one resumes
from its last checkpoint, so a comparison can be run in pieces. ``<out>/REPORT.md`` holds the tables,
plots, verdicts, the command, machine and times; ``results.json`` all scores.
"""
from __future__ import annotations

import copy
import itertools
import os
import time

from ..eval.cases import check_emulated_cases, emulated_cases, phase_offsets, srraw_cases
from ..eval.evaluate import evaluate
from ..models.checkpoint import default_weights, read_checkpoint
from ..train.config import load_config
from ..train.trainer import train, training_seconds
from .arms import arm_config, camera_parts, srraw_synthetic_targets
from .config import read_compare_config
from .report import arm_summary, plot_arms, plot_curves, write_report


def _fine_tune_configs(section: dict, base: dict, out: str, tune_file: str, init: str) -> dict[str, dict]:
    """{after-<recipe>-seed<k>: training config} of the fine-tune experiment."""
    configs = {}
    for (name, recipe), seed in itertools.product(section["recipes"].items(), section["seeds"]):
        config = copy.deepcopy(base)
        config["model"] = dict(read_checkpoint(init)["config"])
        config.setdefault("data", {}).update(files=[tune_file], source="emulated", input="raw", seed=seed)
        config["data"].pop("root", None)
        optim = config.setdefault("optim", {})
        optim.update({k: v for k, v in recipe.items() if k in ("steps", "lr", "decay")})
        optim.setdefault("decay_steps", optim.get("steps", 300))
        config.setdefault("train", {}).update(out=os.path.join(out, f"after-{name}-seed{seed}"), seed=seed,
                                              freeze=["body"] if recipe.get("freeze_body") else [])
        configs[f"after-{name}-seed{seed}"] = config
    return configs


def compare(config, progress: bool = True, overrides: list[str] = (), command: str | None = None,
            score: bool = True) -> dict:
    """Train every arm and seed (skipping finished ones, resuming interrupted ones), score them and
    the baselines on the held-out cases, write ``<out>/REPORT.md``; returns the results. ``command``:
    how it was run, for the report (default: the ``rawzoom compare`` line of ``config`` and ``overrides``).
    ``score=False`` stops after training and returns {"trained": {run: checkpoint}, "timings_s": ...}:
    processes that each train other arms (``compare.arms``, ``compare.seeds``) share the work, and a
    last call with every arm scores them (a run folder trains in one process at a time)."""
    section, base = read_compare_config(config, overrides)
    out, experiment = section["out"], section["experiment"]
    scale = base.get("data", {}).get("scale", 4)
    started = time.time()
    test_files = section.get("test")
    init = None
    if experiment == "fine-tune":
        tune_file, test_file = camera_parts(section["camera"], out, section["guard"])
        test_files = [test_file]
        init = default_weights(scale) if section["init"] == "default" else section["init"]
    if "srraw" not in section:
        check_emulated_cases(test_files, section["size"], section["crops"])  # before anything trains
    os.makedirs(out, exist_ok=True)
    if experiment == "fine-tune":
        configs = _fine_tune_configs(section, base, out, tune_file, init)
        arms = {f"after-{name}": [f"after-{name}-seed{seed}" for seed in section["seeds"]]
                for name in section["recipes"]}
        arms["before"] = ["before"]
        weights = {"before": init}
    else:
        if "srraw" in section and any(arm.startswith("synthetic") for arm in section["arms"]):
            srraw_synthetic_targets(section["srraw"], os.path.join(out, "synthetic-targets"))
        configs = {f"{arm}-seed{seed}": arm_config(base, arm, seed, section, out)
                   for arm, seed in itertools.product(section["arms"], section["seeds"])}
        arms = {arm: [f"{arm}-seed{seed}" for seed in section["seeds"]] for arm in section["arms"]}
        weights = {}
    for arm_settings in configs.values():
        load_config(arm_settings)  # every arm checked before any trains
    init_of = init if experiment == "fine-tune" else None
    timings = {}
    for name, arm_settings in configs.items():
        started_before = os.path.isfile(os.path.join(arm_settings["train"]["out"], "last.pt"))
        weights[name] = train(arm_settings, resume=started_before, init=init_of, progress=progress)
        timings[name] = training_seconds(arm_settings["train"]["out"])
    if not score:
        return {"trained": {name: weights[name] for name in configs}, "timings_s": timings}
    if "srraw" in section:
        cases = list(srraw_cases(section["srraw"], scale))
    else:
        cases = list(emulated_cases(test_files, scale=scale, size=section["size"], crops=section["crops"],
                                    phases=phase_offsets(section["phases"])))
    result = evaluate(weights, cases, scale=scale, out=out, tolerance=section["tolerance"], progress=progress)
    result["arms"] = arm_summary(result, arms)
    if command is None:
        name = config if isinstance(config, str) else "<config>"
        command = " ".join(["rawzoom compare --config", str(name), *(f"--set '{o}'" for o in overrides)])
    result.update(timings_s=timings, total_s=time.time() - started, experiment=experiment,
                  seeds=section["seeds"], command=command)
    plot_arms(result, os.path.join(out, "arms.png"))
    plot_curves({name: c["train"]["out"] for name, c in configs.items()}, os.path.join(out, "curves.png"))
    result["report"] = write_report(result, section, base, list(arms))
    return result
