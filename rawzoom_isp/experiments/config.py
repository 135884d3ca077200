"""Compare configs: a training config (its [data], [model], [loss], [optim], [train] shared by the
arms) plus a [compare] section:

- ``experiment``: "data-type" (the paper's Table 2: real raw vs synthetic raw vs 8-bit RGB), "loss"
  (misaligned pairs: L1 vs contextual vs CoBi, with L1 on aligned pairs as an upper reference) or
  "fine-tune" (a model trained without one camera, before and after ``--init`` fine-tuning on a few
  of that camera's crops);
- ``train``: raw files to train on; ``test``: held-out full-resolution raws (emulated cases at every
  CFA phase); or ``srraw``: an SR-RAW root, whose train split trains and test split tests (optical
  pairs); ``out``: the report folder (relative to the current folder);
- ``conditions``: the test conditions of emulated cases (``rz.eval.protocol.CONDITIONS``; default
  ["centred-noisy"], a native sensor's geometry and noise): the first is the report in ``out``,
  each other one a report in ``out/<condition>`` whose verdicts the first report repeats;
- ``arms`` (default: all of the experiment's), ``seeds`` (default [0]); ``crops``, ``size``,
  ``phases`` ("all" or "native"), ``tolerance`` for the test cases;
- data-type: ``jpeg_quality`` of the RGB arm's input (LibRaw's AHD render of the LR raw, 8-bit;
  0 = no JPEG); loss: ``misalign`` (LR px) and ``misalign_affine``; fine-tune: ``init`` (the model to
  start from; the fine-tuned network is its network, so the config has no [model]), ``camera`` (the
  new camera's full-resolution raw: its top part is fine-tuned on, its bottom part tested, a guard
  band of ``guard`` px between them), ``recipes`` (name -> [optim] settings and ``freeze_body``).
"""
from __future__ import annotations

from ..errors import ConfigError
from ..eval.protocol import CONDITIONS
from ..train.config import apply_overrides, read_config, resolve_path

EXPERIMENTS = {
    "data-type": {
        "real-raw": "real sensor raw: the LR capture of the real mosaic",
        "synthetic-raw": "synthetic raw: Brooks et al. unprocessing of the same target window, captured alike",
        "synthetic-raw-paper": "synthetic raw as the paper made it (x^2.22, Gaussian noise), captured alike",
        "rgb": "8-bit RGB: LibRaw's AHD render of the real LR capture in 8 bits (optionally a JPEG)",
    },
    "loss": {
        "l1-aligned": "L1 on aligned pairs (an upper reference)",
        "l1": "L1 on misaligned pairs",
        "contextual": "contextual loss (no spatial term) on misaligned pairs",
        "cobi": "CoBi (RGB patches + VGG) on misaligned pairs",
    },
    "fine-tune": {
        "before": "the model as trained, without the new camera",
        "after": "the model fine-tuned (--init) on the top part of the new camera's frame, per recipe",
    },
}
# What each data-type arm's input goes through, step by step, and what its network's output is before
# it meets the target (the report's pipeline table). Every arm learns the same targets (LibRaw's AHD
# render of the HR raw) from the same windows, drawn the same way, with the same LR sensor geometry and
# noise factors; only the kind of raw differs, and with it what the network must add (an RGB input is
# already white balanced and rendered; a raw input is neither).
ARM_PIPELINES = {
    "real-raw": ("HR window of the real raw", "LibRaw AHD linear demosaic", "LR sensor (geometry of [data])",
                 "the camera's own noise model x factor", "packed raw + camera WB and matrix",
                 "linear camera RGB, rendered with the camera WB and matrix (sRGB tone)"),
    "synthetic-raw": ("HR window of the target (sRGB)", "Brooks unprocessing: random matrix, gains, tone",
                      "LR sensor (geometry of [data])", "Brooks noise levels x factor",
                      "packed raw + the synthetic WB and matrix",
                      "linear camera RGB, rendered with the synthetic WB, matrix and Brooks tone"),
    "synthetic-raw-paper": ("HR window of the target (sRGB)", "x^2.22, no matrix or WB",
                            "LR sensor (geometry of [data])", "Gaussian sigma ~ U[0, 20/255] x factor",
                            "packed raw, unity WB, identity matrix", "linear RGB, rendered by x^(1/2.22)"),
    "rgb": ("HR window of the real raw", "LibRaw AHD linear demosaic", "LR sensor (geometry of [data])",
            "the camera's own noise model x factor", "LibRaw AHD render of the LR raw, 8-bit (JPEG when set)",
            "display sRGB, white balanced as its input is (nothing in an 8-bit render tells the gains)"),
}
PIPELINE_STEPS = ("source", "to linear camera RGB", "capture", "noise", "network input", "network output")
MISALIGN, MISALIGN_AFFINE = 2.0, 0.005  # loss experiment defaults: shift (LR px), affine (fraction)
GUARD = 256  # fine-tune: rows between the part tuned on and the part tested
DEFAULT_RECIPES = {"full": {"steps": 300, "lr": 5e-5, "freeze_body": False}}
COMPARE_KEYS = {"experiment", "profile", "train", "test", "srraw", "out", "arms", "seeds", "crops", "size", "phases",
                "conditions", "tolerance", "jpeg_quality", "misalign", "misalign_affine", "init", "camera", "guard",
                "recipes"}
RECIPE_KEYS = {"steps", "lr", "decay", "freeze_body"}


def read_compare_config(config, overrides: list[str] = ()) -> tuple[dict, dict]:
    """([compare] with input paths resolved and defaults filled, the shared training config)."""
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
        if "conditions" in section:
            raise ConfigError("[compare] conditions are those of emulated cases; SR-RAW's test pairs are optical")
        section["srraw"] = resolve_path(section["srraw"], None if "srraw" in overridden else base)
    else:
        conditions = section.setdefault("conditions", ["centred-noisy"])
        if (not isinstance(conditions, list) or not conditions
                or any(not isinstance(c, str) or c not in CONDITIONS for c in conditions)
                or len(set(conditions)) < len(conditions)):
            raise ConfigError(f"[compare] conditions must be a list of distinct names from {', '.join(CONDITIONS)}, "
                              f"got {conditions!r}")
    for key in () if "srraw" in section or experiment == "fine-tune" else ("train", "test"):
        files = section.get(key)
        if not isinstance(files, list) or not files:
            raise ConfigError(f"[compare] {key} must be a non-empty list of raw files")
        section[key] = [resolve_path(f, None if key in overridden else base) if isinstance(f, str)
                        else {**f, "path": resolve_path(f["path"], None if key in overridden else base)}
                        for f in files]
    if experiment == "fine-tune":
        _check_fine_tune(section, config, base, overridden)
    if "out" not in section:
        raise ConfigError("[compare] needs out (the report folder)")
    section.setdefault("seeds", [0])
    section.setdefault("crops", 24)
    section.setdefault("size", 512)
    section.setdefault("phases", "all")
    section.setdefault("tolerance", 2)
    return section, config


def _check_fine_tune(section: dict, config: dict, base: str | None, overridden: set[str]) -> None:
    if "model" in config:
        raise ConfigError("[compare] fine-tune trains the init checkpoint's network: drop [model]")
    for key in ("init", "camera"):
        if not isinstance(section.get(key), str):
            raise ConfigError(f"[compare] fine-tune needs {key} (a path)")
        if section[key] != "default":
            section[key] = resolve_path(section[key], None if key in overridden else base)
    recipes = section.setdefault("recipes", DEFAULT_RECIPES)
    if not isinstance(recipes, dict) or not recipes or not all(
            isinstance(r, dict) and set(r) <= RECIPE_KEYS for r in recipes.values()):
        raise ConfigError(f"[compare] recipes must map names to tables of {', '.join(sorted(RECIPE_KEYS))}, "
                          f"got {recipes!r}")
    guard = section.setdefault("guard", GUARD)
    if type(guard) is not int or guard < 0:
        raise ConfigError(f"[compare] guard must be a number of rows >= 0, got {guard!r}")
