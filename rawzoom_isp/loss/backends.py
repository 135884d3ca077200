"""Backend selection: every backend computes ``cobi``'s function on prepared vectors.

``naive``: plain torch autograd over N x M matrices (the reference). ``chunked``, ``triton``,
``cuda``: the registered op ``rawzoom::cobi_forward`` with that kernel. ``auto``: on CUDA tensors
Triton, then the csrc extension, then chunked; on the CPU chunked.
"""
from __future__ import annotations

import importlib.util
import logging

import torch

from ..errors import ConfigError
from .naive import naive_cobi
from .op import fused_cobi
from .options import interpreting

log = logging.getLogger(__name__)
BACKENDS = ("naive", "chunked", "triton", "cuda")


TRITON_INSTALLED = importlib.util.find_spec("triton") is not None


def available_backends(device: torch.device) -> list[str]:
    """Backends that can run on ``device`` here."""
    from .cuda_ext import cuda_extension_available

    names = ["naive", "chunked"]
    if TRITON_INSTALLED and (device.type == "cuda" or interpreting()):
        names.append("triton")
    if device.type == "cuda" and cuda_extension_available():
        names.append("cuda")
    return names


def resolve_backend(name: str, device: torch.device) -> str:
    """The backend ``name`` stands for on ``device`` ("auto": the fastest available)."""
    if name not in BACKENDS and name != "auto":
        raise ConfigError(f"unknown cobi backend {name!r}; choose from auto, {', '.join(BACKENDS)}")
    available = available_backends(device)
    if name == "auto":
        if device.type != "cuda":
            return "chunked"
        for candidate in ("triton", "cuda", "chunked"):
            if candidate in available:
                if candidate == "chunked":
                    log.info("cobi: no fused kernel available on %s, using the chunked backend", device)
                return candidate
    if name not in available:
        reason = {"triton": "needs the triton package and a CUDA device (or TRITON_INTERPRET=1)",
                  "cuda": "needs a CUDA device and the csrc extension (RAWZOOM_BUILD_CUDA=1 or a JIT build with nvcc)"}
        raise ConfigError(f"cobi backend {name!r} cannot run on {device}: it {reason[name]}")
    return name


def run_backend(name, targets, outputs, pos_tgt, pos_out, *, memory_budget, **opts):
    backend = resolve_backend(name, outputs.device)
    if backend == "naive":
        return naive_cobi(targets, outputs, pos_tgt, pos_out, **opts)
    return fused_cobi(targets, outputs, pos_tgt, pos_out, kernel=backend, memory_budget=memory_budget, **opts)
