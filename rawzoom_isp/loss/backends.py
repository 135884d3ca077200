"""CoBi backends: every one computes ``cobi``'s function on prepared vectors, at its own cost.

A backend is an object with ``unavailable(device)`` (None when it runs there, else why not) and
``__call__(targets, outputs, pos_tgt, pos_out, options, memory_budget)`` -> losses (B,), differentiable
in targets and outputs; ``options`` is a ``CoBiOptions``. The built-ins: ``naive`` (plain autograd
over N x M matrices, the reference), and ``chunked``, ``triton``, ``cuda``: the registered op
``rawzoom::cobi_forward`` with that kernel. ``auto`` picks, on CUDA tensors, Triton, then the csrc
extension, then chunked; on the CPU chunked. Others join with ``register_cobi_backend(name)`` or the
entry-point group ``rawzoom_isp.cobi_backends`` (tests/plugin_example).
"""
from __future__ import annotations

import importlib.util
import logging
from importlib.metadata import entry_points

import torch

from ..errors import ConfigError
from .naive import naive_cobi
from .op import fused_cobi
from .options import CoBiOptions, interpreting

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "rawzoom_isp.cobi_backends"
AUTO_ORDER = {"cuda": ("triton", "cuda", "chunked"), "cpu": ("chunked",)}
TRITON_INSTALLED = importlib.util.find_spec("triton") is not None
_BACKENDS: dict[str, object] = {}
_entry_points_loaded = False


def register_cobi_backend(name: str):
    """Decorator of a backend class (instantiated without arguments) or object: ``backend = name``."""

    def decorate(backend):
        instance = backend() if isinstance(backend, type) else backend
        if not (callable(instance) and callable(getattr(instance, "unavailable", None))):
            raise ConfigError(f"cobi backend {name!r} needs unavailable(device) and __call__(...)")
        _BACKENDS[name] = instance
        return backend

    return decorate


@register_cobi_backend("naive")
class Naive:
    def unavailable(self, device):
        return None

    def __call__(self, targets, outputs, pos_tgt, pos_out, options: CoBiOptions, memory_budget: int):
        return naive_cobi(targets, outputs, pos_tgt, pos_out, **options.as_kwargs())


class _Fused:
    """The registered op with one of its kernels."""

    kernel = "chunked"

    def unavailable(self, device):
        return None

    def __call__(self, targets, outputs, pos_tgt, pos_out, options: CoBiOptions, memory_budget: int):
        return fused_cobi(targets, outputs, pos_tgt, pos_out, options, kernel=self.kernel, memory_budget=memory_budget)


@register_cobi_backend("chunked")
class Chunked(_Fused):
    kernel = "chunked"


@register_cobi_backend("triton")
class Triton(_Fused):
    kernel = "triton"

    def unavailable(self, device):
        if TRITON_INSTALLED and (device.type == "cuda" or interpreting()):
            return None
        return "needs the triton package and a CUDA device (or TRITON_INTERPRET=1)"


@register_cobi_backend("cuda")
class Cuda(_Fused):
    kernel = "cuda"

    def unavailable(self, device):
        from .cuda_ext import cuda_extension_available

        if device.type == "cuda" and cuda_extension_available():
            return None
        return "needs a CUDA device and the csrc extension (RAWZOOM_BUILD_CUDA=1 or a JIT build with nvcc)"


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _BACKENDS:
            continue
        try:
            register_cobi_backend(ep.name)(ep.load())
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the library
            raise ConfigError(f"cobi backend plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc


def available_cobi_backends() -> list[str]:
    """Every backend's name (whether it runs on a given device is ``resolve_backend``'s question)."""
    _load_entry_points()
    return sorted(_BACKENDS)


def available_backends(device: torch.device) -> list[str]:
    """Backends that can run on ``device`` here."""
    return [name for name in available_cobi_backends() if _BACKENDS[name].unavailable(device) is None]


def resolve_backend(name: str, device: torch.device) -> str:
    """The backend ``name`` stands for on ``device`` ("auto": the fastest available)."""
    if name != "auto" and name not in available_cobi_backends():
        raise ConfigError(f"unknown cobi backend {name!r}; choose from auto, {', '.join(available_cobi_backends())}")
    if name == "auto":
        for candidate in AUTO_ORDER["cuda" if device.type == "cuda" else "cpu"]:
            if _BACKENDS[candidate].unavailable(device) is None:
                if candidate == "chunked" and device.type == "cuda":
                    log.info("cobi: no fused kernel available on %s, using the chunked backend", device)
                return candidate
    reason = _BACKENDS[name].unavailable(device)
    if reason is not None:
        raise ConfigError(f"cobi backend {name!r} cannot run on {device}: it {reason}")
    return name


def run_backend(name: str, targets, outputs, pos_tgt, pos_out, options: CoBiOptions, memory_budget: int):
    """Losses (B,) from the backend ``name`` stands for on the outputs' device."""
    return _BACKENDS[resolve_backend(name, outputs.device)](targets, outputs, pos_tgt, pos_out, options,
                                                            memory_budget)
