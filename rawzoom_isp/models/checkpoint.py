"""Zoom networks from configs and checkpoints.

A model checkpoint holds the network's config (``arch`` names the class), its weights and their
content hash; one the trainer wrote also the training config and whether the network's output
includes the camera white balance (``white_balanced_output``), a training checkpoint also the
optimizer and the step.
Checkpoints are written atomically and read with ``weights_only=True``, and nothing in them is
trusted before it is checked: the zip container's CRCs (``torch.load`` does not check them), the
shape of the stored config (plain values, bounded depth and size, before anything is formatted
from it), the network config's types and ranges and a parameter budget (before any layer is built),
then the weights (names, shapes, floating dtype, finite and of sane magnitude in float32) and the
content hash (SHA-256 of every tensor). The shipped weights' file hashes are pinned here. A missing
file is a ``WeightsUnavailableError``; anything else wrong, a ``CheckpointError`` that names the file.
"""
from __future__ import annotations

import errno
import hashlib
import inspect
import math
import os
import zipfile
from importlib import resources

import torch

from ..atomic import atomic_path
from ..errors import CheckpointError, ConfigError, WeightsUnavailableError
from .registry import DEFAULT_ARCH, model_class

# The shipped network of each zoom factor. Its own factor divides it; ``Pipeline.default`` resamples the
# rest (bicubic on the display image): at 8x the 4x network then 2x beats the 8x network we trained in
# every held-out window (model card).
DEFAULT_WEIGHTS = {4: "zoom4x.pt", 8: "zoom4x.pt"}
SCALES = (2, 4, 8, 16)
MAX_PARAMETERS = 200_000_000
_SIZE_LIMITS = {"width": 1024, "blocks": 256, "up_channels": 1024, "blend_kernel": 15, "degrid": 63}
_CHOICES = {"in_channels": (3, 4)}


def _check_value(name: str, value, default):
    if name == "scale":
        if type(value) is not int or value not in SCALES:
            raise ConfigError(f"model scale must be one of {SCALES}, got {_brief(value)}")
    elif name in _CHOICES:
        if value not in _CHOICES[name] or type(value) is not int:
            raise ConfigError(f"model {name} must be one of {_CHOICES[name]}, got {_brief(value)}")
    elif name in _SIZE_LIMITS:
        low = 0 if name in ("blocks", "blend_kernel", "degrid") else 1
        if type(value) is not int or not low <= value <= _SIZE_LIMITS[name]:
            raise ConfigError(f"model {name} must be an integer in [{low}, {_SIZE_LIMITS[name]}], got {_brief(value)}")
    elif isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"model {name} must be a string, got {_brief(value)}")


def _parameter_count(model_class, options: dict) -> int:
    """The network's parameter count, computed on the meta device (nothing is allocated)."""
    with torch.device("meta"):
        return sum(p.numel() for p in model_class(**options).parameters())


def build_model(config: dict) -> torch.nn.Module:
    """The zoom network a config describes (``arch``: a registered network, ``rz.models.registry``;
    without one, ``DEFAULT_ARCH``, in a checkpoint as in training). Every value is checked first; a
    network over MAX_PARAMETERS is refused before it is built."""
    if not isinstance(config, dict):
        raise ConfigError(f"a model config is a table of options, got {type(config).__name__}")
    if not all(type(key) is str for key in config):
        raise ConfigError("a model config's keys are option names (text)")
    options = dict(config)
    arch = options.pop("arch", DEFAULT_ARCH)
    if type(arch) is not str:
        raise ConfigError(f"unknown model arch {_brief(arch)}")
    model_class_ = model_class(arch)
    signature = inspect.signature(model_class_.__init__).parameters
    unknown = sorted(set(options) - set(signature) - {"self"})
    if unknown:
        raise ConfigError(f"model arch {arch!r} has no option(s) {', '.join(unknown)}; "
                          f"known: {', '.join(n for n in signature if n != 'self')}")
    for name, value in options.items():
        _check_value(name, value, signature[name].default)
    try:
        count = _parameter_count(model_class_, options)
    except ValueError as exc:
        raise ConfigError(f"model arch {arch!r}: {exc}") from None
    if count > MAX_PARAMETERS:
        raise ConfigError(f"model arch {arch!r} with {_brief(options)} has {count:,} parameters, over the limit of "
                          f"{MAX_PARAMETERS:,}")
    return model_class_(**options)


MAX_WEIGHT = 1e4  # no trained layer of ours comes near; 1e10 weights only saturate
MAX_DEPTH, MAX_ITEMS, MAX_TEXT = 6, 4096, 4096  # what a stored config may hold
# SHA-256 of the shipped weight files, checked before they are loaded.
SHIPPED_SHA256 = {
    "zoom4x.pt": "ba92c5c898966c7e7b5d590cb49755836c61e07d748ca0ca10b1870b80405fb9",
}


def content_hash(state: dict) -> str:
    """SHA-256 over a state dict: each tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, **extra) -> None:
    """torch.save({"config", "model", "content_sha256", **extra}) to a temporary file, then renamed
    into place."""
    state = model.state_dict()
    with atomic_path(path) as tmp:
        try:
            torch.save({"config": model.config, "model": state, "content_sha256": content_hash(state), **extra}, tmp)
        except RuntimeError as exc:  # how torch reports a failed write (a full disk, a size limit)
            raise OSError(errno.EIO, f"the write failed ({str(exc)[:120]})") from None


def _brief(value) -> str:
    """A value's repr for an error message, cut to 120 characters."""
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def check_plain(value, where: str, depth: int = 0, budget: list | None = None) -> None:
    """CheckpointError unless ``value`` is plain data: None, bool, int, finite float, str (at most
    MAX_TEXT characters), lists of them, dicts with str keys; at most MAX_DEPTH deep and MAX_ITEMS
    items in all. Checked without formatting the value, so a hostile one cannot make the check slow."""
    budget = [MAX_ITEMS] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise CheckpointError(f"{where}: nested more than {MAX_DEPTH} deep or larger than {MAX_ITEMS} items")
    if value is None or type(value) in (bool, int):
        return
    if type(value) is float:
        if not math.isfinite(value):
            raise CheckpointError(f"{where}: holds a non-finite number")
        return
    if type(value) is str:
        if len(value) > MAX_TEXT:
            raise CheckpointError(f"{where}: holds a text of {len(value)} characters")
        return
    if type(value) in (list, tuple):
        for item in value:
            check_plain(item, where, depth + 1, budget)
        return
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise CheckpointError(f"{where}: a key of type {type(key).__name__}, not text")
            check_plain(key, where, depth + 1, budget)
            check_plain(item, where, depth + 1, budget)
        return
    raise CheckpointError(f"{where}: holds a {type(value).__name__}, not plain data")


def _check_container(path: str) -> None:
    """The zip container's CRCs, which ``torch.load`` does not check."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        raise CheckpointError(f"{path}: not a rawzoom checkpoint (not a torch zip archive)") from None
    if damaged is not None:
        raise CheckpointError(f"{path}: damaged (the CRC of {damaged!r} inside it fails); restore it from a copy")


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The checkpoint's dict (weights_only), its container and stored configs checked (see the module
    docstring); WeightsUnavailableError if the file is missing, CheckpointError naming it if it is not
    a sound rawzoom checkpoint."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise WeightsUnavailableError(f"{path}: no such checkpoint")
    _check_container(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - whatever torch says (and its advice), it is not our checkpoint
        raise CheckpointError(f"{path}: not a rawzoom checkpoint (unreadable as torch weights)") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("config"), dict) \
            or not isinstance(checkpoint.get("model"), dict):
        raise CheckpointError(f"{path}: not a rawzoom checkpoint (no config/model entries)")
    for key in ("config", "train_config", "step", "content_sha256", "white_balanced_output"):
        if key in checkpoint:
            check_plain(checkpoint[key], f"{path}: its {key}")
    if not all(type(name) is str and isinstance(t, torch.Tensor) for name, t in checkpoint["model"].items()):
        raise CheckpointError(f"{path}: its weights are not named tensors")
    stored = checkpoint.get("content_sha256")
    if stored is not None and stored != content_hash(checkpoint["model"]):
        raise CheckpointError(f"{path}: its weights do not match their recorded hash (damaged or altered)")
    return checkpoint


def load_state(model: torch.nn.Module, state: dict, source: str) -> None:
    """Load weights after checking that they are the network's (names, shapes), floating point, and
    finite and below MAX_WEIGHT in magnitude once in float32."""
    expected = model.state_dict()
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{source}: weights do not fit the network {_brief(model.config)} "
                              f"(missing {missing[:3]}, unexpected {extra[:3]})")
    for name, tensor in state.items():
        if not isinstance(tensor, torch.Tensor) or tensor.shape != expected[name].shape:
            raise CheckpointError(f"{source}: weight {name} has shape {tuple(getattr(tensor, 'shape', ()))}, the "
                                  f"network needs {tuple(expected[name].shape)}")
        if tensor.layout != torch.strided or expected[name].is_floating_point() != tensor.is_floating_point():
            raise CheckpointError(f"{source}: weight {name} is {tensor.dtype} ({tensor.layout}), not dense "
                                  f"{expected[name].dtype}")
        if tensor.is_floating_point():
            cast = tensor.to(expected[name].dtype)
            if not bool(torch.isfinite(cast).all()):
                raise CheckpointError(f"{source}: weight {name} holds NaN or infinite values (in "
                                      f"{expected[name].dtype})")
            if cast.numel() and float(cast.abs().max()) > MAX_WEIGHT:
                raise CheckpointError(f"{source}: weight {name} reaches {float(cast.abs().max()):.3g}, beyond any "
                                      f"trained network's ({MAX_WEIGHT:g})")
    model.load_state_dict(state)


def load_model(path: str | os.PathLike) -> torch.nn.Module:
    """The network stored in a checkpoint, in eval mode."""
    checkpoint = read_checkpoint(path)
    try:
        model = build_model(checkpoint["config"])
    except ConfigError as exc:
        raise CheckpointError(f"{os.fspath(path)}: {exc}") from None
    load_state(model, checkpoint["model"], os.fspath(path))
    return model.eval()


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_scale(path: str | os.PathLike) -> int:
    """The zoom factor a checkpoint's network was built for."""
    scale = read_checkpoint(path)["config"].get("scale")
    if type(scale) is not int or scale not in SCALES:
        raise CheckpointError(f"{os.fspath(path)}: its network config names no zoom factor of {SCALES}")
    return scale


def default_weights(scale: int = 4) -> str:
    """Path of the shipped network of a ``scale`` x zoom (its own factor divides ``scale``: at 8x the 4x
    network, the rest resampled); WeightsUnavailableError when none is shipped."""
    folder = resources.files("rawzoom_isp") / "models" / "weights"
    name = DEFAULT_WEIGHTS.get(scale)
    if name is None or not os.path.isfile(str(folder / name)):
        shipped = ", ".join(f"{s}x" for s, n in DEFAULT_WEIGHTS.items() if os.path.isfile(str(folder / n)))
        raise WeightsUnavailableError(
            f"no shipped {scale}x weights (shipped: {shipped or 'none'}); train some with `rawzoom train` and "
            "pass them with --weights (Python: weights=PATH)"
        )
    path = str(folder / name)
    if file_sha256(path) != SHIPPED_SHA256[name]:
        raise CheckpointError(f"{path}: the shipped weights differ from the released ones (damaged or replaced); "
                              "reinstall rawzoom_isp")
    return path
