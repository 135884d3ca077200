r"""CoBi (contextual bilateral) and contextual loss between feature maps: the one definition.

x holds the network-output features, y the target features, both (B, C, H, W); the two maps may
differ in H, W. Per image, with k over the N output vectors x_k and i over the M target vectors y_i:

1. Distance d_ik. ``cosine``: centre both by the per-channel mean of that image's output features,
   L2-normalise (||v|| floored at 1e-3 of the features' RMS norm, so that constant features have
   bounded gradients), d_ik = (1 - <y^_i, x^_k>) / 2. ``l2``: d_ik = ||y_i - x_k||^2 (computed after
   subtracting the same mean from both, which leaves it unchanged and avoids cancellation).
2. Spatial term, with p = ((r + 0.5) / H, (c + 0.5) / W) the position of pixel (r, c) of its map.
   ``spatial="distance"`` (default): d_ik += w_s ||p_i - p_k||_2 (the paper's D + w_s D').
   ``spatial="blend"``: the original code's form, applied after step 4:
   CX_ik <- (1 - w_s) CX_ik + w_s CXsp_ik, where CXsp is steps 3-4 on the squared distances of the
   255-scaled coordinate grid (numerically near the identity; kept for comparison).
3. Relative distance d~_ik = d_ik / (min_k d_ik + eps).
4. Contextual similarity CX_ik = softmax over k of (1 - d~_ik) / h.
5. ``kind="contextual"``: loss = -log( (1/N) sum_k max_i CX_ik ).
   ``kind="nearest"`` (the paper's Eq. 2 read literally; alias "nn"): loss = (1/N) sum_k min_i d_ik.
6. ``sample=S``: compute on S random positions (the original's 63 x 63 = 3969): the same positions in
   both maps when they have the same size, independent ones otherwise; spatial terms use the true
   pixel positions of the samples. Default None: every position.

Backends compute the same function at different cost: ``naive`` materialises the N x M matrices
(the ground truth, small sizes only); ``chunked`` runs over target rows in chunks chosen from
``memory_budget`` bytes and recomputes them in backward, so its extra memory is
O(chunk * N + (N + M) * C) in forward and backward. ``auto`` picks the fastest available.
"""
from __future__ import annotations

import math
import warnings

import torch

from ..errors import ConfigError, DataError, ShapeError
from .backends import run_backend
from .options import (
    CONTEXTUAL,
    DEFAULT_MEMORY_BUDGET,
    DISTANCES,
    KIND_ALIASES,
    KINDS,
    REDUCTIONS,
    SPATIAL,
    CoBiOptions,
    grid_positions,
)

MAX_FEATURE = 1e15  # squared distances of features up to this stay far from float32's 3.4e38
NORM_FLOOR = 1e-3  # cosine: ||v|| is floored at this fraction of the features' RMS norm


def _check(x: torch.Tensor, y: torch.Tensor, kind, distance, spatial, h, eps, spatial_weight, reduction,
           check_finite: bool) -> None:
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor) or t.ndim != 4:
            raise ShapeError(f"cobi expects {name} as features (B, C, H, W), got {getattr(t, 'shape', type(t))}")
        if not t.is_floating_point():
            raise ShapeError(f"cobi expects floating-point features, {name} is {t.dtype}")
        if t.numel() == 0:
            raise ShapeError(f"cobi needs non-empty features, {name} is {tuple(t.shape)}")
    if x.shape[:2] != y.shape[:2]:
        raise ShapeError(f"x {tuple(x.shape)} and y {tuple(y.shape)} must share batch size and channels")
    if x.device != y.device:
        raise ShapeError(f"x is on {x.device} and y on {y.device}")
    if x.device.type == "meta":
        raise ShapeError("cobi needs features with values (not on the meta device)")
    for name, value, options in (("kind", kind, KINDS), ("distance", distance, DISTANCES),
                                 ("spatial", spatial, SPATIAL), ("reduction", reduction, REDUCTIONS)):
        if value not in options:
            raise ConfigError(f"cobi {name} must be one of {options}, got {value!r}")
    if spatial == "blend" and kind == "nearest":
        raise ConfigError("spatial='blend' mixes similarities and only applies to kind='contextual'")
    if not (math.isfinite(h) and 1e-3 <= h <= 1e3):
        raise ConfigError(f"cobi needs a bandwidth h in [1e-3, 1e3], got {h}")
    if not (math.isfinite(eps) and 1e-12 <= eps <= 1e3):  # below, float32 arithmetic loses it (d / (min d + eps))
        raise ConfigError(f"cobi needs eps in [1e-12, 1e3], got {eps}")
    if not (math.isfinite(spatial_weight) and 0 <= spatial_weight <= 1e6):
        raise ConfigError(f"cobi needs a spatial_weight in [0, 1e6], got {spatial_weight}")
    if check_finite and not torch.compiler.is_compiling():  # one reduction per input (not traceable)
        for name, t in (("x", x), ("y", y)):
            largest = float(t.detach().abs().amax())
            if not math.isfinite(largest):
                raise DataError(f"cobi: {name} holds NaN or infinite values")
            if largest > MAX_FEATURE:
                raise DataError(f"cobi: {name} reaches {largest:.3g}; features above {MAX_FEATURE:g} in magnitude "
                                "overflow the distances (rescale them)")


def _sample_indices(n_out: int, n_tgt: int, sample: int | None, generator, device):
    if sample is None or (sample >= n_out and sample >= n_tgt):
        return None, None
    if sample <= 0:
        raise ConfigError(f"sample must be a positive number of positions, got {sample}")
    out = torch.randperm(n_out, generator=generator)[: min(sample, n_out)].to(device)
    tgt = out if n_tgt == n_out else torch.randperm(n_tgt, generator=generator)[: min(sample, n_tgt)].to(device)
    return out, tgt


def _unit(v: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
    """v / sqrt(||v||^2 + floor^2): unit length unless ||v|| is near the floor, so that a feature close
    to the mean (an all-constant output) gets a bounded gradient (1 / floor), not 1 / ||v||."""
    return v * torch.rsqrt(v.square().sum(-1, keepdim=True) + floor.square())


def prepare(x: torch.Tensor, y: torch.Tensor, distance: str, sample=None, generator=None):
    """Feature maps -> (targets (B, M, C), outputs (B, N, C), target positions (M, 2), output
    positions (N, 2)), sampled, centred and (cosine) normalised; differentiable in x and y."""
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    out = x.to(compute).flatten(2).transpose(1, 2)
    tgt = y.to(compute).flatten(2).transpose(1, 2)
    pos_out = grid_positions(*x.shape[-2:], device=x.device, dtype=compute)
    pos_tgt = grid_positions(*y.shape[-2:], device=x.device, dtype=compute)
    idx_out, idx_tgt = _sample_indices(out.shape[1], tgt.shape[1], sample, generator, x.device)
    if idx_out is not None:
        out, pos_out = out[:, idx_out], pos_out[idx_out]
        tgt, pos_tgt = tgt[:, idx_tgt], pos_tgt[idx_tgt]
    mean = out.mean(dim=1, keepdim=True)
    if distance == "cosine":
        tgt, out = tgt - mean, out - mean
        rms = torch.cat([tgt, out], 1).detach().square().sum(-1).mean(1).sqrt()[:, None, None]  # (B, 1, 1)
        floor = NORM_FLOOR * rms + 1e-12
        return _unit(tgt, floor), _unit(out, floor), pos_tgt, pos_out
    # Squared L2 is translation invariant: the (detached) shift only improves the expanded form's accuracy.
    mean = mean.detach()
    return tgt - mean, out - mean, pos_tgt, pos_out


def cobi(x: torch.Tensor, y: torch.Tensor, *, kind: str = "contextual", distance: str = "cosine", h: float = 0.5,
         eps: float = 1e-3, spatial_weight: float = 0.1, spatial: str | None = "distance", sample: int | None = None,
         generator: torch.Generator | None = None, reduction: str = "mean", backend: str = "auto",
         memory_budget: int | None = None, check_finite: bool = True) -> torch.Tensor:
    """CoBi loss of output features ``x`` against target features ``y`` (see the module docstring for
    the math). Returns a scalar ("mean", "sum" over the batch) or (B,) for ``reduction="none"``.
    Inputs with NaN, infinite or overflowing values raise a DataError (``check_finite=False`` skips
    that check, one reduction per input; so does torch.compile, which cannot trace it)."""
    for name, value in (("kind", kind), ("distance", distance), ("reduction", reduction), ("backend", backend)):
        if not isinstance(value, str):
            raise ConfigError(f"cobi {name} must be a name (text), got {type(value).__name__}")
    for name, value in (("h", h), ("eps", eps), ("spatial_weight", spatial_weight)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"cobi {name} must be a number, got {type(value).__name__}")
    if sample is not None and (isinstance(sample, bool) or not isinstance(sample, int) or sample < 1):
        raise ConfigError(f"cobi sample must be None or a whole number of positions >= 1, got {sample!r}")
    if kind in KIND_ALIASES:
        warnings.warn(f"cobi kind={kind!r} is deprecated; use kind={KIND_ALIASES[kind]!r}", DeprecationWarning,
                      stacklevel=2)
        kind = KIND_ALIASES[kind]
    _check(x, y, kind, distance, spatial, float(h), float(eps), float(spatial_weight), reduction, check_finite)
    if spatial_weight == 0:
        spatial = None
    targets, outputs, pos_tgt, pos_out = prepare(x, y, distance, sample, generator)
    options = CoBiOptions(kind, distance, float(h), float(eps), float(spatial_weight), spatial)
    losses = run_backend(backend, targets, outputs, pos_tgt, pos_out, options,
                         DEFAULT_MEMORY_BUDGET if memory_budget is None else int(memory_budget))
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.mean()


def contextual(x: torch.Tensor, y: torch.Tensor, **kwargs) -> torch.Tensor:
    """The contextual loss: ``cobi`` with no spatial term (``CONTEXTUAL``)."""
    if "spatial_weight" in kwargs or "spatial" in kwargs:
        raise ConfigError("contextual() has no spatial term; use cobi() for one")
    return cobi(x, y, **CONTEXTUAL, **kwargs)
