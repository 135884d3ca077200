"""Zoom networks from configs and checkpoints.

A model checkpoint holds the network's config (``arch`` names the class) and weights; a training
checkpoint also the optimizer, the step and the random state. Checkpoints are written atomically and
read with ``weights_only=True``. A config is validated (types, ranges, a parameter budget) before any
layer is built, and the weights are checked (names, shapes, finite values) before they are loaded, so
that a damaged or hostile file gives a ``WeightsUnavailableError`` that names it, never a huge
allocation or an image of NaN.
"""
from __future__ import annotations

import inspect
import os
from importlib import resources

import torch

from ..atomic import atomic_path
from ..errors import ConfigError, WeightsUnavailableError
from .packed import PackedZoomNet
from .zoomnet import ZoomNet

ARCHITECTURES = {"zoomnet": ZoomNet, "packed": PackedZoomNet}
DEFAULT_WEIGHTS = {4: "zoom4x.pt", 8: "zoom8x.pt"}
SCALES = (2, 4, 8, 16)
MAX_PARAMETERS = 200_000_000
_SIZE_LIMITS = {"width": 1024, "blocks": 256, "up_channels": 1024, "blend_kernel": 15, "degrid": 63}
_CHOICES = {"in_channels": (3, 4)}


def _check_value(name: str, value, default):
    if name == "scale":
        if type(value) is not int or value not in SCALES:
            raise ConfigError(f"model scale must be one of {SCALES}, got {value!r}")
    elif name in _CHOICES:
        if value not in _CHOICES[name] or type(value) is not int:
            raise ConfigError(f"model {name} must be one of {_CHOICES[name]}, got {value!r}")
    elif name in _SIZE_LIMITS:
        low = 0 if name in ("blocks", "blend_kernel", "degrid") else 1
        if type(value) is not int or not low <= value <= _SIZE_LIMITS[name]:
            raise ConfigError(f"model {name} must be an integer in [{low}, {_SIZE_LIMITS[name]}], got {value!r}")
    elif isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"model {name} must be a string, got {value!r}")


def _parameter_count(model_class, options: dict) -> int:
    """The network's parameter count, computed on the meta device (nothing is allocated)."""
    with torch.device("meta"):
        return sum(p.numel() for p in model_class(**options).parameters())


def build_model(config: dict) -> torch.nn.Module:
    """The zoom network a config describes (``arch`` "packed" or "zoomnet"; configs without ``arch``
    are ZoomNet's, as written before there was a choice). Every value is checked first; a network
    over MAX_PARAMETERS is refused before it is built."""
    if not isinstance(config, dict):
        raise ConfigError(f"a model config is a table of options, got {type(config).__name__}")
    options = dict(config)
    arch = options.pop("arch", "zoomnet")
    if arch not in ARCHITECTURES:
        raise ConfigError(f"unknown model arch {arch!r}; known: {', '.join(ARCHITECTURES)}")
    model_class = ARCHITECTURES[arch]
    signature = inspect.signature(model_class.__init__).parameters
    unknown = sorted(set(options) - set(signature) - {"self"})
    if unknown:
        raise ConfigError(f"model arch {arch!r} has no option(s) {', '.join(unknown)}; "
                          f"known: {', '.join(n for n in signature if n != 'self')}")
    for name, value in options.items():
        _check_value(name, value, signature[name].default)
    try:
        count = _parameter_count(model_class, options)
    except ValueError as exc:
        raise ConfigError(f"model arch {arch!r}: {exc}") from None
    if count > MAX_PARAMETERS:
        raise ConfigError(f"model arch {arch!r} with {options} has {count:,} parameters, over the limit of "
                          f"{MAX_PARAMETERS:,}")
    return model_class(**options)


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, **extra) -> None:
    """torch.save({"config", "model", **extra}) to a temporary file, then renamed into place."""
    with atomic_path(path) as tmp:
        torch.save({"config": model.config, "model": model.state_dict(), **extra}, tmp)


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The checkpoint's dict (weights_only); WeightsUnavailableError naming the file if it is missing
    or not a rawzoom checkpoint."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise WeightsUnavailableError(f"{path}: no such checkpoint")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - whatever torch says (and its advice), it is not our checkpoint
        raise WeightsUnavailableError(f"{path}: not a rawzoom checkpoint (unreadable as torch weights)") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("config"), dict) \
            or not isinstance(checkpoint.get("model"), dict):
        raise WeightsUnavailableError(f"{path}: not a rawzoom checkpoint (no config/model entries)")
    return checkpoint


def load_state(model: torch.nn.Module, state: dict, source: str) -> None:
    """Load weights after checking that they are the network's (names, shapes) and finite."""
    expected = model.state_dict()
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        raise WeightsUnavailableError(f"{source}: weights do not fit the network {model.config} "
                                      f"(missing {missing[:3]}, unexpected {extra[:3]})")
    for name, tensor in state.items():
        if not isinstance(tensor, torch.Tensor) or tensor.shape != expected[name].shape:
            raise WeightsUnavailableError(f"{source}: weight {name} has shape "
                                          f"{tuple(getattr(tensor, 'shape', ()))}, the network needs "
                                          f"{tuple(expected[name].shape)}")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise WeightsUnavailableError(f"{source}: weight {name} holds NaN or infinite values")
    model.load_state_dict(state)


def load_model(path: str | os.PathLike) -> torch.nn.Module:
    """The network stored in a checkpoint, in eval mode."""
    checkpoint = read_checkpoint(path)
    try:
        model = build_model(checkpoint["config"])
    except ConfigError as exc:
        raise WeightsUnavailableError(f"{os.fspath(path)}: {exc}") from None
    load_state(model, checkpoint["model"], os.fspath(path))
    return model.eval()


def checkpoint_scale(path: str | os.PathLike) -> int:
    """The zoom factor a checkpoint's network was built for."""
    scale = read_checkpoint(path)["config"].get("scale")
    if type(scale) is not int or scale not in SCALES:
        raise WeightsUnavailableError(f"{os.fspath(path)}: its network config names no zoom factor of {SCALES}")
    return scale


def default_weights(scale: int = 4) -> str:
    """Path of the shipped weights for ``scale``; WeightsUnavailableError when none are shipped."""
    folder = resources.files("rawzoom_isp") / "models" / "weights"
    name = DEFAULT_WEIGHTS.get(scale)
    if name is None or not os.path.isfile(str(folder / name)):
        shipped = ", ".join(f"{s}x" for s, n in DEFAULT_WEIGHTS.items() if os.path.isfile(str(folder / n)))
        raise WeightsUnavailableError(
            f"no shipped {scale}x weights (shipped: {shipped or 'none'}); train some with `rawzoom train` and "
            "pass them with --weights (Python: weights=PATH)"
        )
    return str(folder / name)
