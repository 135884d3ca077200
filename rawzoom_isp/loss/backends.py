"""Backend selection: every backend computes ``cobi``'s function on prepared vectors."""
from __future__ import annotations

from ..errors import ConfigError
from .chunked import chunked_cobi
from .naive import naive_cobi

BACKENDS = {"naive": naive_cobi, "chunked": chunked_cobi}


def resolve_backend(name: str, device) -> str:
    """The backend ``name`` stands for on ``device`` ("auto": the fastest available)."""
    if name == "auto":
        return "chunked"
    if name not in BACKENDS:
        raise ConfigError(f"unknown cobi backend {name!r}; available: auto, {', '.join(BACKENDS)}")
    return name


def run_backend(name, targets, outputs, pos_tgt, pos_out, *, memory_budget, **opts):
    backend = resolve_backend(name, outputs.device)
    if backend == "chunked":
        return chunked_cobi(targets, outputs, pos_tgt, pos_out, memory_budget=memory_budget, **opts)
    return BACKENDS[backend](targets, outputs, pos_tgt, pos_out, **opts)
