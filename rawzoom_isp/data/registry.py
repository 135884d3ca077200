"""Pair sources by name (a training config's ``[data] source``).

A pair source is a ``PairDataset`` subclass with a ``from_config(data, source, **common)`` class
method: ``data`` is the checked [data] section (a plugin reads its own settings from ``data["options"]``),
``source`` the files or folder to read, ``common`` the crop and input options every source takes.
Built-ins are listed by import path; a class anywhere joins with ``@register_pair_source(name)``, and an
installed package through the entry-point group ``rawzoom_isp.pair_sources``.
"""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from ..errors import ConfigError

ENTRY_POINT_GROUP = "rawzoom_isp.pair_sources"
BUILTIN_SOURCES = {"synthetic": "rawzoom_isp.data.synthetic:SyntheticPairs",
                   "emulated": "rawzoom_isp.data.emulated:EmulatedRawPairs",
                   "srraw": "rawzoom_isp.data.srraw:SRRawDataset"}
_SOURCES: dict[str, type] = {}
_entry_points_loaded = False


def register_pair_source(name: str):
    """Class decorator: make a PairDataset subclass (with ``from_config``) a ``[data] source``."""

    def decorate(cls):
        if not callable(getattr(cls, "from_config", None)):
            raise ConfigError(f"pair source {name!r}: {cls.__qualname__} has no from_config(data, source, **common)")
        _SOURCES[name] = cls
        return cls

    return decorate


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _SOURCES or ep.name in BUILTIN_SOURCES:
            continue
        try:
            register_pair_source(ep.name)(ep.load())
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the library
            raise ConfigError(f"pair source plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc


def pair_source(name: str) -> type:
    """The pair source class registered as ``name``."""
    if name not in _SOURCES and name in BUILTIN_SOURCES:
        module, cls = BUILTIN_SOURCES[name].split(":")
        register_pair_source(name)(getattr(importlib.import_module(module), cls))
    if name not in _SOURCES:
        _load_entry_points()
    if name not in _SOURCES:
        raise ConfigError(f"unknown pair source {str(name)[:40]!r}; known: {', '.join(available_pair_sources())}")
    return _SOURCES[name]


def available_pair_sources() -> list[str]:
    _load_entry_points()
    return sorted(set(_SOURCES) | set(BUILTIN_SOURCES))
