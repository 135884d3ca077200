"""Zoom networks by name (a config's ``arch``), and what a zoom network must offer.

Built-in networks are listed by import path; a class anywhere can join with ``@register_model(name)``,
and an installed package through the entry-point group ``rawzoom_isp.models`` (one file and one line:
tests/plugin_example). ``build_model`` checks a config's options against the class's signature,
builds it on the meta device to count its parameters, then builds it.
"""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

import torch

from ..errors import ConfigError

ENTRY_POINT_GROUP = "rawzoom_isp.models"
DEFAULT_ARCH = "packed"  # what a config or a checkpoint without ``arch`` means
BUILTIN_MODELS = {"packed": "rawzoom_isp.models.packed:PackedZoomNet", "zoomnet": "rawzoom_isp.models.zoomnet:ZoomNet"}
_MODELS: dict[str, type] = {}
_entry_points_loaded = False


@runtime_checkable
class ZoomNetwork(Protocol):
    """The contract of a zoom network (an ``nn.Module``):

    - ``config``: the keyword arguments that rebuild it, with ``arch`` (stored in checkpoints);
    - ``in_channels``: 4 (packed raw [R, Gr, Gb, B] in RGGB geometry, linear, not white balanced) or 3
      (display RGB); ``zoom``: output pixels per input pixel of what it takes (2 N for packed raw);
    - ``receptive_radius``: input pixels an output pixel depends on (tiling overlaps by it);
    - ``forward(x, wb_gains=None)``: (B, in_channels, h, w) -> (B, 3, zoom h, zoom w); with
      ``config["output"] == "linear"``, linear camera RGB before white balance, else display RGB;
    - a network told the capture's noise has ``config["noise_input"]`` true and takes
      ``forward(x, wb_gains, noise)``, noise (B, 3, 2): (S, O) per colour R, G, B.
    """

    config: dict
    in_channels: int
    zoom: int
    receptive_radius: int

    def forward(self, x: torch.Tensor, wb_gains: torch.Tensor | None = None) -> torch.Tensor: ...


def told_noise(net) -> bool:
    """Whether zoom network ``net`` is told the capture's noise (``config["noise_input"]``)."""
    return bool(net.config.get("noise_input"))


def register_model(name: str):
    """Class decorator: make a zoom network available to configs as ``arch = name``."""

    def decorate(cls):
        existing = _MODELS.get(name)
        if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
            raise ConfigError(f"model arch {name!r} is already registered by "
                              f"{existing.__module__}.{existing.__qualname__}")
        cls.arch = name
        _MODELS[name] = cls
        return cls

    return decorate


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _MODELS or ep.name in BUILTIN_MODELS:
            continue
        try:
            loaded = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the library
            raise ConfigError(f"model plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        if isinstance(loaded, type) and ep.name not in _MODELS:
            register_model(ep.name)(loaded)


def model_class(name: str) -> type:
    """The network class registered as ``name`` (built-ins, decorated classes, then plugins)."""
    if type(name) is not str:
        raise ConfigError(f"model arch must be a name, got {type(name).__name__}")
    if name not in _MODELS and name in BUILTIN_MODELS:
        module, cls = BUILTIN_MODELS[name].split(":")
        register_model(name)(getattr(importlib.import_module(module), cls))
    if name not in _MODELS:
        _load_entry_points()
    if name not in _MODELS:
        raise ConfigError(f"unknown model arch {name[:40]!r}; known: {', '.join(available_models())}")
    return _MODELS[name]


def available_models() -> list[str]:
    _load_entry_points()
    return sorted(set(_MODELS) | set(BUILTIN_MODELS))
