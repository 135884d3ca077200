"""Training configuration: TOML sections [data], [model], [loss], [optim], [train], with defaults.

Every value is checked (type, range, choice) when the config is loaded, before anything is built or
written: unknown sections or keys, wrong types and out-of-range values raise a ConfigError naming the
setting, and input files and folders must exist. In a TOML file, input paths are relative to the file
and the output folder ([train] out) to the current folder. A config is a path, or the name of one
shipped with the package (``config_path``: "default-4x", "compare-cpu-small", ...). [model] holds the
network's options (``arch`` "packed", the default, or "zoomnet"; see ``rawzoom_isp.models``), checked
by ``build_model``.
"""
from __future__ import annotations

import copy
import math
import os
import warnings
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..tomlfile import read_toml, tomllib

DEFAULTS: dict[str, dict[str, Any]] = {
    "data": {
        "source": "emulated",  # synthetic | emulated | srraw | rgb (emulated pairs, 8-bit RGB input)
        "root": None,  # a folder (of images, raws, or SR-RAW sequences)
        "files": None,  # or an explicit list of files (emulated)
        "input": "raw",  # raw | rgb
        "scale": 4,
        "patch": 32,
        "augment": True,
        "method": "brooks",  # synthetic
        "noise": True,  # synthetic
        "reference": "libraw",  # emulated
        "noise_match": True,  # emulated
        "noise_range": [1.0, 1.0],  # emulated: noise factor drawn log-uniformly (1 = a native capture's)
        "texture_candidates": 1,  # emulated: windows drawn per sample, the most textured kept
        "degradation": "centred",  # emulated: centred | footprint | mixed (rz.synth.sensor)
        "footprint_share": 0.5,  # emulated, mixed: share of the samples in the footprint geometry
        "blur": [0.0, 0.0],  # emulated, centred: Gaussian blur sigma drawn from [low, high] LR px
        "shift": 0.0,  # emulated, centred: sub-pixel shift of the LR sites, uniform within +-shift HR px
        "clean_share": 0.0,  # emulated: share of the samples without added noise
        "demosaic": "libraw",  # emulated, centred: the HR raw's linear demosaic (libraw = AHD, or an ISP one)
        "input_source": "real",  # emulated: what the LR sensor sees: real | brooks | paper (synthetic raw)
        "misalign": 0.0,  # emulated: random target shift up to this many LR px (optical-pair misalignment)
        "misalign_affine": 0.0,  # emulated: and a random linear part I + D, |D_ij| up to this
        "rgb_render": "classical",  # input "rgb": classical | libraw (LibRaw's AHD render of the LR raw)
        "jpeg_quality": 0,  # input "rgb": 0 = 8-bit PNG-like, 1..100 = stored as a JPEG of that quality
        "split": "train",  # srraw
        "cache_dir": None,  # srraw: where prepared pairs are cached (default $XDG_CACHE_HOME/rawzoom_isp/srraw)
        "target_margin": 0,
        "seed": 0,
        "options": {},  # settings of a plugin pair source, passed to it as they are
    },
    "model": {"arch": "packed"},
    "loss": {
        "type": "l1",  # l1 | cobi | contextual
        "tolerance": 0,  # the target is larger by this many px per side: shift-tolerant loss
        "preset": "paper",  # cobi / contextual: paper | zlz-code (see rz.loss.CoBiLoss); None below: the preset's
        "patch_size": None,
        "patch_stride": 1,
        "patch_padding": None,
        "rgb_weight": None,
        "vgg_weight": None,
        "spatial_weight": None,
        "sample": None,
        "backend": "auto",  # auto, or a registered CoBi backend (rz.loss.backends)
        "h": 0.5,  # CoBi bandwidth
        "eps": 1e-3,  # CoBi: relative distance d / (min d + eps)
        "kind": "contextual",  # CoBi: contextual (the CX form) | nearest
    },
    "optim": {"lr": 1e-4, "decay": 0.05, "decay_steps": 20000, "batch_size": 4, "steps": 1000},
    "train": {"out": "runs/zoom", "checkpoint_every": 100, "log_every": 10, "device": "auto", "seed": 0,
              "threads": 0,
              "freeze": [],  # names (prefixes) of parameters kept as initialised, e.g. ["body"]
              # Held-out loss every val_every steps (0: never) on val_batches fixed batches of fresh pairs;
              # with patience, the run stops once it has flattened (``trainer.flattened``).
              "val_every": 0, "val_batches": 4, "patience": 0, "min_delta": 0.01},
}

_INT, _FLOAT, _BOOL, _STR = (int,), (int, float), (bool,), (str,)
# (section, key) -> (types, low, high) for numbers, or a tuple of choices for strings.
_RULES: dict[tuple[str, str], tuple] = {
    ("data", "input"): ("raw", "rgb"), ("data", "method"): ("brooks", "paper"),
    ("data", "reference"): ("libraw", "classical"), ("data", "split"): _STR,
    ("data", "scale"): (_INT, 2, 16), ("data", "patch"): (_INT, 4, 4096), ("data", "augment"): _BOOL,
    ("data", "noise"): _BOOL, ("data", "noise_match"): _BOOL, ("data", "target_margin"): (_INT, 0, 4096),
    ("data", "seed"): (_INT, 0, 2**63 - 1),
    ("data", "texture_candidates"): (_INT, 1, 64), ("data", "misalign"): (_FLOAT, 0, 64),
    ("data", "misalign_affine"): (_FLOAT, 0, 0.1), ("data", "rgb_render"): ("classical", "libraw"),
    ("data", "jpeg_quality"): (_INT, 0, 100),
    ("data", "degradation"): ("centred", "footprint", "mixed"), ("data", "footprint_share"): (_FLOAT, 0, 1),
    ("data", "shift"): (_FLOAT, 0, 0.5), ("data", "clean_share"): (_FLOAT, 0, 1),
    ("data", "demosaic"): ("libraw", "menon2007", "malvar2004", "bilinear"),
    ("data", "input_source"): ("real", "brooks", "paper"),
    ("loss", "type"): ("l1", "cobi", "contextual"), ("loss", "tolerance"): (_INT, 0, 4096),
    ("loss", "preset"): ("paper", "zlz-code"), ("loss", "patch_stride"): (_INT, 1, 64),
    ("loss", "backend"): _STR, ("loss", "h"): (_FLOAT, 1e-3, 1e3), ("loss", "eps"): (_FLOAT, 1e-12, 1e3),
    ("loss", "kind"): ("contextual", "nearest"),
    ("optim", "lr"): (_FLOAT, 1e-12, 1.0), ("optim", "decay"): (_FLOAT, 1e-12, 1.0),
    ("optim", "decay_steps"): (_INT, 1, 10**9), ("optim", "batch_size"): (_INT, 1, 4096),
    ("optim", "steps"): (_INT, 1, 10**9),
    ("train", "out"): _STR, ("train", "checkpoint_every"): (_INT, 1, 10**9), ("train", "log_every"): (_INT, 1, 10**9),
    ("train", "device"): _STR, ("train", "seed"): (_INT, 0, 2**63 - 1), ("train", "threads"): (_INT, 0, 1024),
    ("train", "val_every"): (_INT, 0, 10**9), ("train", "val_batches"): (_INT, 1, 4096),
    ("train", "patience"): (_INT, 0, 10**6), ("train", "min_delta"): (_FLOAT, 0, 1),
}
_OPTIONAL = {("loss", "patch_size"): (_INT, 1, 64), ("loss", "sample"): (_INT, 1, 10**8),
             ("loss", "rgb_weight"): (_FLOAT, 0, 1e6), ("loss", "vgg_weight"): (_FLOAT, 0, 1e6),
             ("loss", "spatial_weight"): (_FLOAT, 0, 1e6), ("loss", "patch_padding"): ("valid", "same")}


def _check(section: str, key: str, value) -> None:
    where = f"[{section}] {key}"
    rule = _RULES.get((section, key))
    if (section, key) in _OPTIONAL:
        if value is None:
            return
        rule = _OPTIONAL[section, key]
    if rule is None:
        return
    if rule in (_STR, _BOOL):
        if type(value) not in rule:
            raise ConfigError(f"{where} must be a {rule[0].__name__}, got {value!r}")
    elif isinstance(rule[0], str):
        if value not in rule:
            raise ConfigError(f"{where} must be one of {', '.join(rule)}, got {value!r}")
    else:
        types, low, high = rule
        if type(value) not in types or not (math.isfinite(value) and low <= value <= high):
            kind = "an integer" if types == _INT else "a number"
            raise ConfigError(f"{where} must be {kind} in [{low:g}, {high:g}], got {value!r}")


def shipped_configs() -> dict[str, str]:
    """{name: path} of the configs shipped in the package."""
    from importlib import resources

    folder = resources.files("rawzoom_isp") / "configs"
    return {entry.name[:-5]: str(entry) for entry in folder.iterdir() if entry.name.endswith(".toml")}


def config_path(config: str | os.PathLike) -> str:
    """A config file's path: ``config`` itself if it is a file, else the shipped config of that name."""
    path = os.fspath(config)
    if os.path.exists(path) or os.sep in path:
        return path
    shipped = shipped_configs()
    name = path[:-5] if path.endswith(".toml") else path
    if name in shipped:
        return shipped[name]
    raise ConfigError(f"{path}: no such config file, nor a shipped config (shipped: {', '.join(sorted(shipped))})")


def resolve_path(path: str, base: str | None) -> str:
    """``path`` relative to the folder ``base`` (None: as given)."""
    return path if base is None or os.path.isabs(path) else os.path.normpath(os.path.join(base, path))


def read_config(
    config: Mapping[str, Any] | str | os.PathLike, what: str = "training config"
) -> tuple[dict, str | None]:
    """(the config as a dict, the folder its relative input paths start from: None for a dict)."""
    if isinstance(config, Mapping):
        return copy.deepcopy(dict(config)), None
    path = config_path(config)
    return read_toml(path, what), os.path.dirname(os.path.abspath(path))


def apply_overrides(config: dict, overrides: list[str]) -> dict:
    """``section.key=value`` settings (value in TOML syntax; a bare word is a string) over a config."""
    for item in overrides:
        name, sep, text = item.partition("=")
        section, dot, key = name.strip().partition(".")
        if not sep or not dot or not key:
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. optim.steps=100")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        config.setdefault(section, {})[key] = value
    return config


RENAMED_KEYS = {("data", "flips"): "augment"}  # old name -> new name, accepted with a warning


def _renamed(section: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with deprecated key names replaced by their new names (a DeprecationWarning each)."""
    values = dict(values)
    for (where, old), new in RENAMED_KEYS.items():
        if where == section and old in values:
            warnings.warn(f"[{section}] {old} is deprecated; use {new}", DeprecationWarning, stacklevel=3)
            values.setdefault(new, values.pop(old))
    return values


def load_config(config: Mapping[str, Any] | str | os.PathLike, overrides: list[str] = (),
                base_model: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Defaults overlaid with ``config`` (a dict, a TOML path or a shipped config's name) and the
    ``overrides`` (``section.key=value``; their paths are relative to the current folder), every value
    checked. ``base_model``: network options under the config's [model] (an ``--init`` checkpoint's)."""
    config, base = read_config(config)
    overridden = {item.partition("=")[0].strip() for item in overrides}
    apply_overrides(config, list(overrides))
    merged = copy.deepcopy(DEFAULTS)
    if base_model is not None:
        merged["model"] = dict(base_model)
    for section, values in config.items():
        if section not in merged:
            raise ConfigError(f"unknown config section [{section}]; expected {', '.join(DEFAULTS)}")
        if not isinstance(values, Mapping):
            raise ConfigError(f"[{section}] must be a table of settings, got {values!r}")
        values = _renamed(section, values)
        unknown = sorted(set(values) - set(merged[section]))
        if unknown and section != "model":
            raise ConfigError(f"[{section}] has no key(s) {', '.join(unknown)}; known: {', '.join(merged[section])}")
        merged[section].update(values)
    data = merged["data"]
    if data["source"] == "rgb":
        warnings.warn("[data] source = 'rgb' is deprecated; use source = 'emulated' with input = 'rgb'",
                      DeprecationWarning, stacklevel=2)
        data["source"], data["input"] = "emulated", "rgb"
    for section, values in merged.items():
        for key, value in values.items():
            _check(section, key, value)
    _check_data(data, base, overridden)
    from ..loss.backends import available_cobi_backends

    backends = ("auto", *available_cobi_backends())
    if merged["loss"]["backend"] not in backends:
        raise ConfigError(f"[loss] backend must be one of {', '.join(backends)}, got {merged['loss']['backend']!r}")
    freeze = merged["train"]["freeze"]
    if not isinstance(freeze, list) or not all(isinstance(name, str) and name for name in freeze):
        raise ConfigError(f"[train] freeze must be a list of parameter names (prefixes), got {freeze!r}")
    import torch

    from ..models import build_model

    _check_device(merged["train"]["device"])
    if merged["train"]["patience"] and not merged["train"]["val_every"]:
        raise ConfigError("[train] patience stops a run on its held-out loss: give val_every (steps) as well")
    with torch.device("meta"):  # checks the network's options without allocating it
        build_model(model_config(merged))
    return merged


def _check_device(name: str) -> None:
    import torch

    if name == "auto":
        return
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"[train] device {name!r} is not a torch device (auto, cpu, cuda, cuda:1, ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"[train] device {name!r}: no CUDA device here; use auto or cpu")


def model_config(config: dict) -> dict:
    """The network's config for a loaded training config: [model] plus the data's scale and input."""
    data = config["data"]
    return dict(config["model"], scale=data["scale"], in_channels=4 if data["input"] == "raw" else 3)


def _check_data(data: dict, base: str | None, overridden: set[str]) -> None:
    from ..data.registry import available_pair_sources

    if not isinstance(data["source"], str) or data["source"] not in available_pair_sources():
        raise ConfigError(f"[data] source must be one of {', '.join(available_pair_sources())}, got {data['source']!r}")
    if not isinstance(data["options"], dict):
        raise ConfigError(f"[data] options must be a table (a plugin pair source's settings), got {data['options']!r}")
    if data["root"] is None and data["files"] is None:
        raise ConfigError("[data] needs root (a folder) or files (a list)")
    if data["cache_dir"] is not None and not isinstance(data["cache_dir"], str):
        raise ConfigError(f"[data] cache_dir must be a folder path, got {data['cache_dir']!r}")
    if data["root"] is not None:
        if not isinstance(data["root"], str):
            raise ConfigError(f"[data] root must be a folder path, got {data['root']!r}")
        data["root"] = resolve_path(data["root"], None if "data.root" in overridden else base)
        if not os.path.isdir(data["root"]):
            raise ConfigError(f"[data] root {data['root']}: no such folder")
    if data["files"] is not None:
        files = data["files"]
        if not isinstance(files, list) or not files or not all(
                isinstance(f, str) or isinstance(f, Mapping) and isinstance(f.get("path"), str) for f in files):
            raise ConfigError(f"[data] files must be a non-empty list of paths (or tables with a path, for headerless "
                              f"dumps), got {files!r}")
        relative = None if "data.files" in overridden else base
        data["files"] = [resolve_path(f, relative) if isinstance(f, str)
                         else {**f, "path": resolve_path(f["path"], relative)} for f in files]
        paths = [f if isinstance(f, str) else f["path"] for f in data["files"]]
        missing = [f for f in paths if not os.path.isfile(f)]
        if missing:
            raise ConfigError(f"[data] files: no such file {missing[0]}" + (f" (and {len(missing) - 1} more)"
                                                                           if len(missing) > 1 else ""))
    blur = data["blur"]
    if not (isinstance(blur, list) and len(blur) == 2 and all(type(v) in _FLOAT and math.isfinite(v) for v in blur)
            and 0 <= blur[0] <= blur[1] <= 4):
        raise ConfigError(f"[data] blur must be [low, high] LR px with 0 <= low <= high <= 4, got {blur!r}")
    noise_range = data["noise_range"]
    if not (isinstance(noise_range, list) and len(noise_range) == 2
            and all(type(v) in _FLOAT and math.isfinite(v) for v in noise_range)
            and 0 < noise_range[0] <= noise_range[1] <= 1000):
        raise ConfigError(f"[data] noise_range must be [low, high] with 0 < low <= high <= 1000, got {noise_range!r}")
