"""``compare``: train every arm of an experiment (resumably), score them and the classical baselines on
the same held-out windows, and write the report (``rz.experiments.report``).

Arms train one after another, each resumable: a finished arm is skipped, an interrupted one resumes
from its last checkpoint, so a comparison can be run in pieces. ``<out>/REPORT.md`` holds the tables,
plots, verdicts, the command, machine and times; ``results.json`` all scores. Each further test
condition (``[compare] conditions``, e.g. a clean capture beside a noisy one) is scored on the same
windows and reported in ``<out>/<condition>``.
"""
from __future__ import annotations

import copy
import itertools
import os
import time

from ..errors import ConfigError
from ..eval.cases import check_emulated_cases, emulated_cases, phase_offsets, srraw_cases
from ..eval.evaluate import evaluate
from ..eval.protocol import CONDITIONS
from ..models.checkpoint import default_weights, read_checkpoint
from ..train.config import DEFAULTS, load_config
from ..train.trainer import train, training_seconds
from .arms import arm_config, camera_parts, srraw_synthetic_targets
from .config import read_compare_config
from .report import arm_summary, plot_arms, plot_curves, write_report

RUN_SETTINGS = ("out", "threads", "device", "checkpoint_every", "log_every")  # [train] keys that change how an
# arm ran, not what it learned


def _compared(value):
    """A config value with file paths reduced to their names (a run trained from another folder or clone)."""
    if isinstance(value, dict):
        return {key: _compared(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_compared(item) for item in value]
    return os.path.basename(value) if isinstance(value, str) and os.sep in value else value


def trained_otherwise(built: dict) -> dict[str, object]:
    """The run settings (``RUN_SETTINGS``: threads, device, logging) an arm already in its run folder
    was trained with, where they differ from ``built`` (the checked config this experiment builds for
    it); {} for an arm not started. A finished arm is not retrained, so one trained under settings that
    change what it learns (another ``--set``, an edited config) would be scored as this arm: that
    raises a ConfigError. Keys a run predates count as their defaults."""
    out = built["train"]["out"]
    runs = [path for path in (os.path.join(out, "model.pt"), os.path.join(out, "last.pt")) if os.path.isfile(path)]
    stored = read_checkpoint(runs[0]).get("train_config") if runs else None
    if not isinstance(stored, dict):
        return {}
    differs = {}
    for section, values in built.items():
        for key, value in values.items():
            theirs = stored.get(section, {}).get(key, DEFAULTS.get(section, {}).get(key))
            if _compared(theirs) != _compared(value):
                differs[section, key] = theirs
    learned = [(section, key) for section, key in differs if section != "train" or key not in RUN_SETTINGS]
    if learned:
        settings = "; ".join(f"{s}.{k} = {differs[s, k]!r}, here {built[s][k]!r}" for s, k in learned)
        raise ConfigError(f"{out}: trained with other settings than this experiment gives it ({settings}); "
                          "run with the settings it was trained with, or remove its run folder to retrain it")
    return {key: value for (_, key), value in differs.items() if key != "out"}


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
    the baselines on the held-out cases of each test condition, write ``<out>/REPORT.md`` (the first
    condition; each other one's in ``<out>/<condition>``, under the first's "other_conditions"); returns
    the first condition's results. ``command``:
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
    # every arm checked before any trains
    run_settings = {name: trained_otherwise(load_config(arm_settings)) for name, arm_settings in configs.items()}
    init_of = init if experiment == "fine-tune" else None
    timings = {}
    for name, arm_settings in configs.items():
        run = arm_settings["train"]["out"]
        final, started_before = os.path.join(run, "model.pt"), os.path.isfile(os.path.join(run, "last.pt"))
        if os.path.isfile(final) and not started_before:
            weights[name] = final  # finished (model.pt is written last); its optimizer state is not committed
        else:
            weights[name] = train(arm_settings, resume=started_before, init=init_of, progress=progress)
        timings[name] = training_seconds(run)
    if not score:
        return {"trained": {name: weights[name] for name in configs}, "timings_s": timings}
    if command is None:
        name = config if isinstance(config, str) else "<config>"
        command = " ".join(["rawzoom compare --config", str(name), *(f"--set '{o}'" for o in overrides)])
    conditions = [None] if "srraw" in section else section["conditions"]
    folders = {condition: out if condition == conditions[0] else os.path.join(out, condition)
               for condition in conditions}
    results = {}
    for condition, folder in folders.items():
        if condition is None:
            cases = list(srraw_cases(section["srraw"], scale))
        else:
            geometry, noise = CONDITIONS[condition]
            cases = list(emulated_cases(test_files, scale=scale, size=section["size"], crops=section["crops"],
                                        phases=phase_offsets(section["phases"]), noise=noise, geometry=geometry))
        result = evaluate(weights, cases, scale=scale, out=folder, tolerance=section["tolerance"], progress=progress)
        result.update(arms=arm_summary(result, arms), condition=condition, timings_s=timings, experiment=experiment,
                      seeds=section["seeds"], command=command,
                      run_settings={name: settings for name, settings in run_settings.items() if settings})
        plot_arms(result, os.path.join(folder, "arms.png"))
        plot_curves({name: c["train"]["out"] for name, c in configs.items()}, os.path.join(folder, "curves.png"))
        results[condition] = result
    first, *rest = conditions
    for condition in [*rest, first]:  # the first report last: it repeats the others' verdicts
        others = {name: results[name] for name in rest} if condition == first else {}
        results[condition]["total_s"] = time.time() - started
        results[condition]["report"] = write_report(results[condition], {**section, "out": folders[condition]}, base,
                                                     list(arms), others)
    results[first]["other_conditions"] = {name: results[name] for name in rest}
    return results[first]
