"""What the CoBi front end, the reference and every backend share: the options (one frozen value),
the spatial grid, the memory default, and whether Triton runs in its CPU interpreter. A leaf: it
imports no other module of the loss package."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import torch

KINDS = ("contextual", "nearest")
KIND_ALIASES = {"nn": "nearest"}  # the name used before "nearest", kept for old code
DISTANCES = ("cosine", "l2")
SPATIAL = ("distance", "blend", None)
REDUCTIONS = ("mean", "sum", "none")
DEFAULT_MEMORY_BUDGET = 256 * 2**20
# The original code's grid: rows = arange(H) / H * 255 (CX/CSFlow.py), used by spatial="blend".
BLEND_GRID_SCALE = 255.0


def grid_positions(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(H * W, 2) positions ((r + 0.5) / H, (c + 0.5) / W), row-major."""
    rows = (torch.arange(height, device=device, dtype=dtype) + 0.5) / height
    cols = (torch.arange(width, device=device, dtype=dtype) + 0.5) / width
    return torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1).reshape(-1, 2)


def interpreting() -> bool:
    """Whether Triton kernels run in the CPU interpreter (TRITON_INTERPRET=1, for tests)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


@dataclass(frozen=True)
class CoBiOptions:
    """What ``cobi`` computes (``rz.loss.cobi``'s docstring has the math): ``kind`` "contextual" or
    "nearest", ``distance`` "cosine" or "l2", bandwidth ``h``, ``eps`` of the relative distance, and the
    spatial term (``spatial`` None, "distance" or "blend", with ``spatial_weight``). Every backend
    takes it whole."""

    kind: str = "contextual"
    distance: str = "cosine"
    h: float = 0.5
    eps: float = 1e-3
    spatial_weight: float = 0.1
    spatial: str | None = "distance"

    def as_kwargs(self) -> dict:
        return asdict(self)


# The contextual loss is CoBi without its spatial term: this, in the front end and in configs alike.
CONTEXTUAL = {"spatial": None, "spatial_weight": 0.0}
