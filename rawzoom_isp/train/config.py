"""Training configuration: TOML sections [data], [model], [loss], [optim], [train], with defaults;
unknown sections or keys raise ConfigError naming them."""
from __future__ import annotations

import copy
import os
from typing import Any, Mapping

from ..errors import ConfigError

DEFAULTS: dict[str, dict[str, Any]] = {
    "data": {
        "source": "emulated",  # synthetic | emulated | srraw | rgb (emulated pairs, 8-bit RGB input)
        "root": None,  # a folder (of images, raws, or SR-RAW sequences)
        "files": None,  # or an explicit list of files (emulated)
        "input": "raw",  # raw | rgb
        "scale": 4,
        "patch": 32,
        "flips": True,
        "method": "brooks",  # synthetic
        "noise": True,  # synthetic
        "reference": "libraw",  # emulated
        "noise_match": True,  # emulated
        "split": "train",  # srraw
        "target_margin": 0,
        "seed": 0,
        "workers": 0,
    },
    "model": {"width": 32, "blocks": 4, "up_channels": 64, "norm": "batch", "output": "display",
              "skip": "none"},
    "loss": {
        "type": "l1",  # l1 | cobi | contextual
        "tolerance": 0,  # the target is larger by this many px per side: shift-tolerant loss
        "vgg_weight": 0.2,
        "patch_size": None,
        "patch_stride": 1,
        "spatial_weight": 0.1,
        "sample": None,
        "backend": "auto",
    },
    "optim": {"lr": 1e-4, "decay": 0.05, "decay_steps": 20000, "batch_size": 4, "steps": 1000},
    "train": {"out": "runs/zoom", "checkpoint_every": 100, "log_every": 10, "device": "auto", "seed": 0},
}


def load_config(config: Mapping[str, Any] | str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Defaults overlaid with ``config`` (a dict or a TOML path)."""
    if not isinstance(config, Mapping):
        import tomllib

        path = os.fspath(config)
        try:
            with open(path, "rb") as fh:
                config = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such training config") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    merged = copy.deepcopy(DEFAULTS)
    for section, values in config.items():
        if section not in merged:
            raise ConfigError(f"unknown config section [{section}]; expected {', '.join(DEFAULTS)}")
        unknown = sorted(set(values) - set(merged[section]))
        if unknown:
            raise ConfigError(f"[{section}] has no key(s) {', '.join(unknown)}; known: {', '.join(merged[section])}")
        merged[section].update(values)
    data = merged["data"]
    if data["source"] == "rgb":
        data["source"], data["input"] = "emulated", "rgb"
    choices = {("data", "source"): ("synthetic", "emulated", "srraw"), ("data", "input"): ("raw", "rgb"),
               ("loss", "type"): ("l1", "cobi", "contextual")}
    for (section, key), options in choices.items():
        if merged[section][key] not in options:
            raise ConfigError(f"[{section}] {key} must be one of {options}, got {merged[section][key]!r}")
    if data["root"] is None and data["files"] is None:
        raise ConfigError("[data] needs root (a folder) or files (a list)")
    return merged
