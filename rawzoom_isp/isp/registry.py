"""Stage registry: the built-in stages named below (each imported when first asked for), classes
registered with ``@register_stage("name")``, and third-party stages found through the entry-point
group ``rawzoom_isp.stages``, so that a config can name any of them.

The built-ins are listed by import path, not imported here: the registry depends on nothing, the
stages depend on it (for the decorator), and the learned zoom, which lives with the networks, is
found without an installed entry point (a checkout on sys.path works).
"""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from ..errors import ConfigError

ENTRY_POINT_GROUP = "rawzoom_isp.stages"
_CLASSICAL = "rawzoom_isp.isp.classical"
BUILTIN_STAGES = {  # name -> module:class
    "black_level": f"{_CLASSICAL}:BlackLevel", "bayer_pack": f"{_CLASSICAL}:BayerPack",
    "bayer_unpack": f"{_CLASSICAL}:BayerUnpack", "demosaic": f"{_CLASSICAL}:Demosaic",
    "white_balance": f"{_CLASSICAL}:WhiteBalance", "exposure": f"{_CLASSICAL}:Exposure",
    "color_matrix": f"{_CLASSICAL}:ColorMatrix", "gamma": f"{_CLASSICAL}:Gamma", "tone_map": f"{_CLASSICAL}:ToneMap",
    "resize": f"{_CLASSICAL}:Resize", "learned_zoom": "rawzoom_isp.models.learned_zoom:LearnedZoom",
}
_STAGES: dict[str, type] = {}
_entry_points_loaded = False


def register_stage(name: str):
    """Class decorator: make a Stage subclass available to configs as ``type = name``."""

    def decorate(cls):
        existing = _STAGES.get(name)
        if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
            raise ConfigError(
                f"stage type {name!r} is already registered by {existing.__module__}.{existing.__qualname__}"
            )
        cls.type_name = name
        _STAGES[name] = cls
        return cls

    return decorate


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _STAGES or ep.name in BUILTIN_STAGES:
            continue
        try:
            loaded = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the library
            raise ConfigError(f"stage plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        if isinstance(loaded, type) and ep.name not in _STAGES:
            register_stage(ep.name)(loaded)


def stage_class(name: str) -> type:
    """The Stage class registered under ``name`` (built-ins, decorated classes, then plugins)."""
    if name not in _STAGES and name in BUILTIN_STAGES:
        module, cls = BUILTIN_STAGES[name].split(":")
        register_stage(name)(getattr(importlib.import_module(module), cls))
    if name not in _STAGES:
        _load_entry_points()
    if name not in _STAGES:
        raise ConfigError(f"unknown stage type {name!r}; known: {', '.join(sorted(available_stages()))}")
    return _STAGES[name]


def available_stages() -> list[str]:
    """The names configs may use: built-in, registered and plugin stages."""
    _load_entry_points()
    return sorted(set(_STAGES) | set(BUILTIN_STAGES))
