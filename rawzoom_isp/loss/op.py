"""``rawzoom::cobi_forward`` / ``rawzoom::cobi_backward``: one registered op, several kernels.

A ``torch.library.custom_op`` with an explicit fake kernel (so ``torch.compile(fullgraph=True)``
works, on the CPU too) and autograd. The CPU kernel is the chunked backend (or, with
``TRITON_INTERPRET=1``, the Triton kernels interpreted, for tests); the CUDA kernel launches the
fused Triton kernels, the csrc extension or the chunked backend, as ``kernel`` says. Every kernel
computes the same function; the Triton and CUDA ones handle ``spatial`` None or "distance" and fall
back to the chunked backend for "blend" (logged once).
"""
from __future__ import annotations

import logging

import torch
from torch import Tensor

from .chunked import add_argmin_term, chunked_backward, chunked_forward, column_coefficients, nearest_backward
from .options import CoBiOptions, interpreting

log = logging.getLogger(__name__)
NO_SPATIAL = "none"
FUSED_KERNELS = ("triton", "cuda")
_warned: set[str] = set()


def _options(kind, distance, h, eps, spatial_weight, spatial):
    return dict(kind=kind, distance=distance, h=h, eps=eps, spatial_weight=spatial_weight,
                spatial=None if spatial == NO_SPATIAL else spatial)


def _fused_kernel(kernel: str, device: torch.device, spatial: str) -> str:
    """The kernel that will run: fused ones only where they apply, otherwise chunked."""
    if kernel not in FUSED_KERNELS:
        return "chunked"
    if spatial == "blend":
        if "blend" not in _warned:
            _warned.add("blend")
            log.warning("cobi: spatial='blend' runs on the chunked backend (the fused kernels implement "
                        "spatial=None and 'distance'); same function, more time")
        return "chunked"
    if device.type == "cpu":
        return "triton" if kernel == "triton" and interpreting() else "chunked"
    return kernel


@torch.library.custom_op("rawzoom::cobi_forward", mutates_args=())
def cobi_forward(targets: Tensor, outputs: Tensor, pos_tgt: Tensor, pos_out: Tensor, kind: str, distance: str,
                 h: float, eps: float, spatial_weight: float, spatial: str, kernel: str,
                 memory_budget: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(losses (B,), row_min, row_argmin, row_logsum (B, M), best, arg, feature_cx (B, N))."""
    opts = _options(kind, distance, h, eps, spatial_weight, spatial)
    chosen = _fused_kernel(kernel, targets.device, spatial)
    if chosen == "chunked":
        return chunked_forward(targets, outputs, pos_tgt, pos_out, memory_budget=memory_budget, **opts)
    if chosen == "triton":
        from .triton_kernels import triton_forward

        results = triton_forward(targets, outputs, pos_tgt, pos_out, **opts)
    else:
        from .cuda_ext import cuda_forward

        results = cuda_forward(targets, outputs, pos_tgt, pos_out, **opts)
    losses, row_min, row_argmin, row_logsum, best, arg = results
    cast = targets.dtype
    return (losses.to(cast), row_min.to(cast), row_argmin, row_logsum.to(cast), best.to(cast), arg,
            torch.zeros_like(best, dtype=cast))


@cobi_forward.register_fake
def _(targets, outputs, pos_tgt, pos_out, kind, distance, h, eps, spatial_weight, spatial, kernel, memory_budget):
    batch, n_tgt, n_out = targets.shape[0], targets.shape[1], outputs.shape[1]
    per_row = targets.new_empty(batch, n_tgt)
    per_col = targets.new_empty(batch, n_out)
    long_row = targets.new_empty(batch, n_tgt, dtype=torch.long)
    long_col = targets.new_empty(batch, n_out, dtype=torch.long)
    return targets.new_empty(batch), per_row, long_row, targets.new_empty(batch, n_tgt), per_col, long_col, \
        targets.new_empty(batch, n_out)


@torch.library.custom_op("rawzoom::cobi_backward", mutates_args=())
def cobi_backward(grad: Tensor, targets: Tensor, outputs: Tensor, pos_tgt: Tensor, pos_out: Tensor, row_min: Tensor,
                  row_argmin: Tensor, row_logsum: Tensor, best: Tensor, arg: Tensor, feature_cx: Tensor, kind: str,
                  distance: str, h: float, eps: float, spatial_weight: float, spatial: str, kernel: str,
                  memory_budget: int, need_targets: bool) -> tuple[Tensor, Tensor]:
    """(d_targets, or an empty tensor when not needed, d_outputs)."""
    opts = _options(kind, distance, h, eps, spatial_weight, spatial)
    chosen = _fused_kernel(kernel, targets.device, spatial)
    if chosen == "chunked":
        d_tgt, d_out = chunked_backward(grad, targets, outputs, pos_tgt, pos_out, row_min, row_argmin, row_logsum,
                                        best, arg, feature_cx, memory_budget=memory_budget, need_tgt=need_targets,
                                        **opts)
    elif kind == "nearest":
        d_tgt, d_out = nearest_backward(grad, targets, outputs, arg, distance, need_targets)
    else:
        coef = column_coefficients(grad, best, feature_cx, opts["spatial"], spatial_weight)
        if chosen == "triton":
            from .triton_kernels import triton_dense_backward as dense
        else:
            from .cuda_ext import cuda_dense_backward as dense
        d_tgt, d_out, through_min = dense(coef, targets, outputs, pos_tgt, pos_out, row_min, row_logsum, arg,
                                          distance, h, eps, spatial_weight, opts["spatial"])
        d_tgt, d_out, through_min = d_tgt.to(targets.dtype), d_out.to(outputs.dtype), through_min.to(targets.dtype)
        add_argmin_term(d_tgt, d_out, targets, outputs, row_argmin, through_min, distance)
        if not need_targets:
            d_tgt = None
    return (targets.new_empty(0) if d_tgt is None else d_tgt.contiguous()), d_out.contiguous()


@cobi_backward.register_fake
def _(grad, targets, outputs, pos_tgt, pos_out, row_min, row_argmin, row_logsum, best, arg, feature_cx, kind,
      distance, h, eps, spatial_weight, spatial, kernel, memory_budget, need_targets):
    return (targets.new_empty(targets.shape) if need_targets else targets.new_empty(0)), outputs.new_empty(
        outputs.shape
    )


def _op_arguments(options: CoBiOptions, kernel: str, memory_budget: int) -> tuple:
    """The op's option arguments (after the four tensors), from the one options value: the op's
    schema takes plain values, so this is the only place they are listed."""
    spatial = NO_SPATIAL if options.spatial is None else options.spatial
    return (options.kind, options.distance, options.h, options.eps, options.spatial_weight, spatial, kernel,
            memory_budget)


def _setup_context(ctx, inputs, output):
    targets, outputs, pos_tgt, pos_out, kind, distance, h, eps, spatial_weight, spatial, kernel, budget = inputs
    ctx.options = CoBiOptions(kind, distance, h, eps, spatial_weight, None if spatial == NO_SPATIAL else spatial)
    ctx.kernel, ctx.memory_budget = kernel, budget
    ctx.need_targets = ctx.needs_input_grad[0]
    _, row_min, row_argmin, row_logsum, best, arg, feature_cx = output
    ctx.save_for_backward(targets, outputs, pos_tgt, pos_out, row_min, row_argmin, row_logsum, best, arg, feature_cx)


def _backward(ctx, grad_losses, *unused):
    d_tgt, d_out = torch.ops.rawzoom.cobi_backward(
        grad_losses, *ctx.saved_tensors, *_op_arguments(ctx.options, ctx.kernel, ctx.memory_budget), ctx.need_targets)
    return (d_tgt if ctx.need_targets else None), d_out, *([None] * 10)


cobi_forward.register_autograd(_backward, setup_context=_setup_context)


def fused_cobi(targets, outputs, pos_tgt, pos_out, options: CoBiOptions, *, kernel: str, memory_budget: int):
    """(B,) losses through the registered op, differentiable in targets and outputs."""
    return torch.ops.rawzoom.cobi_forward(targets, outputs, pos_tgt, pos_out,
                                          *_op_arguments(options, kernel, memory_budget))[0]
