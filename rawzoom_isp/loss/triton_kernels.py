"""Fused CoBi in Triton: flash-attention-style tiles over (target rows i, output columns k), the N x M
matrices never stored, O(N + M) state per image, gradients by recomputing tiles.

Forward (contextual): pass 1 row minima m_i (and argmin) of D; pass 2 row log-sums
logS_i = log sum_k exp(L_ik), L_ik = (1 - D_ik / (m_i + eps)) / h, shifted by the row's largest
logit; pass 3 column maxima over i of log CX_ik = L_ik - logS_i and their argmax (log domain: no
exp). ``kind="nearest"``: one pass of column minima of D. Backward: with c_k = dloss/dlogCX_{a(k) k} and
r_i = sum over {k: a(k) = i} of c_k, dL_ik = [a(k) = i] c_k - CX_ik r_i and the dense part of dD is
-dL_ik / (h (m_i + eps)); one kernel accumulates dT over column tiles (and t_i = sum_k dL_ik D_ik for
the argmin term), one accumulates dO over row tiles; the argmin and nn terms are sparse, O((N+M) C).

D tiles come from ``tl.dot`` at ``PRECISION``: "tf32x3" (the default on a GPU: each operand split into
two TF32 parts, three tensor-core products summed in fp32, as accurate as IEEE fp32 for D, see
benchmarks/cobi_precision.py) or "ieee" (fp32 FMAs on the CUDA cores; ``RAWZOOM_COBI_PRECISION=ieee``).
One TF32 product would corrupt d / (min d + eps). Cosine: D = (1 - <t, o>) / 2 on normalised vectors;
l2: D = |t|^2 + |o|^2 - 2 <t, o>, clamped at 0, on vectors centred by the output mean; the spatial
"distance" term w_s |p_i - p_k| is computed in registers from the positions. Per element the logits
cost one FMA: with a_i = 1 / (h (m_i + eps)) and b_i = 1 / h, L_ik = b_i - D_ik a_i, and exponentials
are ``exp2`` with log2(e) folded into the per-row factors. Tiles are masked for ragged N, M and any C
(the dot's K dimension is at least 16, zero-padded). Images run on the grid's last axis.
"""
from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from .options import interpreting


@triton.jit
def _distance_tile(t_ptr, o_ptr, tn_ptr, on_ptr, pt_ptr, po_ptr, rows, cols, M, N, C, spatial_weight,
                   COSINE: tl.constexpr, SPATIAL: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                   BLOCK_C: tl.constexpr, PRECISION: tl.constexpr):
    """D for rows x cols, +inf in columns beyond N."""
    row_mask = rows < M
    col_mask = cols < N
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    for c0 in range(0, C, BLOCK_C):
        cs = c0 + tl.arange(0, BLOCK_C)
        c_mask = cs < C
        t = tl.load(t_ptr + rows[:, None] * C + cs[None, :], mask=row_mask[:, None] & c_mask[None, :], other=0.0)
        o = tl.load(o_ptr + cols[:, None] * C + cs[None, :], mask=col_mask[:, None] & c_mask[None, :], other=0.0)
        acc = tl.dot(t, tl.trans(o), acc, input_precision=PRECISION)
    if COSINE:
        d = 0.5 - 0.5 * acc
    else:
        tn = tl.load(tn_ptr + rows, mask=row_mask, other=0.0)
        on = tl.load(on_ptr + cols, mask=col_mask, other=0.0)
        d = tl.maximum(tn[:, None] + on[None, :] - 2.0 * acc, 0.0)
    if SPATIAL:
        ty = tl.load(pt_ptr + rows * 2, mask=row_mask, other=0.0)
        tx = tl.load(pt_ptr + rows * 2 + 1, mask=row_mask, other=0.0)
        oy = tl.load(po_ptr + cols * 2, mask=col_mask, other=0.0)
        ox = tl.load(po_ptr + cols * 2 + 1, mask=col_mask, other=0.0)
        dy = ty[:, None] - oy[None, :]
        dx = tx[:, None] - ox[None, :]
        d = d + spatial_weight * tl.sqrt(dy * dy + dx * dx)
    return tl.where(col_mask[None, :], d, float("inf"))


@triton.jit
def _image_operands(t_ptr, o_ptr, tn_ptr, on_ptr, M, N, C, AXIS: tl.constexpr):
    """The image this program works on (grid axis ``AXIS``) and its operand pointers."""
    image = tl.program_id(AXIS).to(tl.int64)
    return image, t_ptr + image * M * C, o_ptr + image * N * C, tn_ptr + image * M, on_ptr + image * N


@triton.jit
def _keep_better(best, arg, tile_best, tile_arg, offset, LOWER: tl.constexpr):
    """Running arg-reduction over tiles: keep the tile's value where it is lower (or higher), with its
    global index; ties keep the earlier tile, as torch does."""
    if LOWER:
        better = tile_best < best
    else:
        better = tile_best > best
    return tl.where(better, tile_best, best), tl.where(better, tile_arg + offset, arg)


@triton.jit
def _row_min_kernel(t_ptr, o_ptr, tn_ptr, on_ptr, pt_ptr, po_ptr, min_ptr, argmin_ptr, M, N, C, spatial_weight,
                    COSINE: tl.constexpr, SPATIAL: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                    BLOCK_C: tl.constexpr, PRECISION: tl.constexpr):
    image, t_ptr, o_ptr, tn_ptr, on_ptr = _image_operands(t_ptr, o_ptr, tn_ptr, on_ptr, M, N, C, 1)
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    best = tl.full([BLOCK_M], float("inf"), dtype=tl.float32)
    arg = tl.zeros([BLOCK_M], dtype=tl.int32)
    for n0 in range(0, N, BLOCK_N):
        cols = n0 + tl.arange(0, BLOCK_N)
        d = _distance_tile(t_ptr, o_ptr, tn_ptr, on_ptr, pt_ptr, po_ptr, rows, cols, M, N, C, spatial_weight,
                           COSINE, SPATIAL, BLOCK_M, BLOCK_N, BLOCK_C, PRECISION)
        tile_min, tile_arg = tl.min(d, axis=1, return_indices=True)
        best, arg = _keep_better(best, arg, tile_min, tile_arg, n0, True)
    mask = rows < M
    tl.store(min_ptr + image * M + rows, best, mask=mask)
    tl.store(argmin_ptr + image * M + rows, arg.to(tl.int64), mask=mask)


@triton.jit
def _row_logsum_kernel(t_ptr, o_ptr, tn_ptr, on_ptr, pt_ptr, po_ptr, min_ptr, logsum_ptr, M, N, C, spatial_weight,
                       h, eps, COSINE: tl.constexpr, SPATIAL: tl.constexpr, BLOCK_M: tl.constexpr,
                       BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr, PRECISION: tl.constexpr):
    image, t_ptr, o_ptr, tn_ptr, on_ptr = _image_operands(t_ptr, o_ptr, tn_ptr, on_ptr, M, N, C, 1)
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    mask = rows < M
    m = tl.load(min_ptr + image * M + rows, mask=mask, other=0.0)
    scale = 1.0 / ((m + eps) * h)  # L = 1/h - D * scale
    top = 1.0 / h - m * scale  # the row's largest logit, at its argmin
    scale2 = scale * 1.4426950408889634  # exp(L - top) = exp2((m - D) * scale2)
    total = tl.zeros([BLOCK_M], dtype=tl.float32)
    for n0 in range(0, N, BLOCK_N):
        cols = n0 + tl.arange(0, BLOCK_N)
        d = _distance_tile(t_ptr, o_ptr, tn_ptr, on_ptr, pt_ptr, po_ptr, rows, cols, M, N, C, spatial_weight,
                           COSINE, SPATIAL, BLOCK_M, BLOCK_N, BLOCK_C, PRECISION)
        total += tl.sum(tl.exp2((m[:, None] - d) * scale2[:, None]), axis=1)
    tl.store(logsum_ptr + image * M + rows, top + tl.log(tl.where(mask, total, 1.0)), mask=mask)


@triton.jit
def _col_max_kernel(t_ptr, o_ptr, tn_ptr, on_ptr, pt_ptr, po_ptr, min_ptr, logsum_ptr, best_ptr, arg_ptr, M, N, C,
                    spatial_weight, h, eps, COSINE: tl.constexpr, SPATIAL: tl.constexpr, BLOCK_M: tl.constexpr,
                    BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr, PRECISION: tl.constexpr):
    image, t_ptr, o_ptr, tn_ptr, on_ptr = _image_operands(t_ptr, o_ptr, tn_ptr, on_ptr, M, N, C, 1)
    cols = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    best = tl.full([BLOCK_N], float("-inf"), dtype=tl.float32)
    arg = tl.zeros([BLOCK_N], dtype=tl.int32)
    for m0 in range(0, M, BLOCK_M):
        rows = m0 + tl.arange(0, BLOCK_M)
        row_mask = rows < M
        d = _distance_tile(t_ptr, o_ptr, tn_ptr, on_ptr, pt_ptr, po_ptr, rows, cols, M, N, C, spatial_weight,
                           COSINE, SPATIAL, BLOCK_M, BLOCK_N, BLOCK_C, PRECISION)
        m = tl.load(min_ptr + image * M + rows, mask=row_mask, other=0.0)
        logsum = tl.load(logsum_ptr + image * M + rows, mask=row_mask, other=0.0)
        slope = 1.0 / (h * (m + eps))  # log CX = (1/h - logsum) - D * slope: one FMA per element
        log_cx = (1.0 / h - logsum)[:, None] - d * slope[:, None]
        log_cx = tl.where(row_mask[:, None], log_cx, float("-inf"))
        tile_max, tile_arg = tl.max(log_cx, axis=0, return_indices=True)
        best, arg = _keep_better(best, arg, tile_max, tile_arg, m0, False)
    mask = cols < N
    tl.store(best_ptr + image * N + cols, best, mask=mask)
    tl.store(arg_ptr + image * N + cols, arg.to(tl.int64), mask=mask)


@triton.jit
def _col_min_kernel(t_ptr, o_ptr, tn_ptr, on_ptr, pt_ptr, po_ptr, best_ptr, arg_ptr, M, N, C, spatial_weight,
                    COSINE: tl.constexpr, SPATIAL: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                    BLOCK_C: tl.constexpr, PRECISION: tl.constexpr):
    image, t_ptr, o_ptr, tn_ptr, on_ptr = _image_operands(t_ptr, o_ptr, tn_ptr, on_ptr, M, N, C, 1)
    cols = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    best = tl.full([BLOCK_N], float("inf"), dtype=tl.float32)
    arg = tl.zeros([BLOCK_N], dtype=tl.int32)
    for m0 in range(0, M, BLOCK_M):
        rows = m0 + tl.arange(0, BLOCK_M)
        d = _distance_tile(t_ptr, o_ptr, tn_ptr, on_ptr, pt_ptr, po_ptr, rows, cols, M, N, C, spatial_weight,
                           COSINE, SPATIAL, BLOCK_M, BLOCK_N, BLOCK_C, PRECISION)
        d = tl.where((rows < M)[:, None], d, float("inf"))
        tile_min, tile_arg = tl.min(d, axis=0, return_indices=True)
        best, arg = _keep_better(best, arg, tile_min, tile_arg, m0, True)
    mask = cols < N
    tl.store(best_ptr + image * N + cols, best, mask=mask)
    tl.store(arg_ptr + image * N + cols, arg.to(tl.int64), mask=mask)


@triton.jit
def _dense_grad_tile(d, rows, cols, M, N, m, logsum, r, owner, coef, h, eps):
    """dD (dense part) and dL for a tile: dL = [a(k) = i] c_k - CX_ik r_i, dD = -dL / (h (m_i + eps)),
    CX = exp2(log2(e) (1/h - logsum_i) - D log2(e) / (h (m_i + eps))): per-row factors, one FMA and
    one exp2 per element."""
    valid = (rows < M)[:, None] & (cols < N)[None, :]
    slope = 1.0 / (h * (m + eps))
    offset2 = (1.0 / h - logsum) * 1.4426950408889634
    cx = tl.exp2(offset2[:, None] - d * (slope * 1.4426950408889634)[:, None])
    own = owner[None, :] == rows[:, None]
    d_logits = tl.where(own, coef[None, :], 0.0) - cx * r[:, None]
    d_logits = tl.where(valid, d_logits, 0.0)
    d_dist = -d_logits * slope[:, None]
    return d_dist, d_logits


@triton.jit
def _grad_rows_kernel(t_ptr, o_ptr, tn_ptr, on_ptr, pt_ptr, po_ptr, min_ptr, logsum_ptr, r_ptr, owner_ptr, coef_ptr,
                      dt_ptr, through_min_ptr, M, N, C, spatial_weight, h, eps, COSINE: tl.constexpr,
                      SPATIAL: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr,
                      BLOCK_CO: tl.constexpr, PRECISION: tl.constexpr):
    image, t_ptr, o_ptr, tn_ptr, on_ptr = _image_operands(t_ptr, o_ptr, tn_ptr, on_ptr, M, N, C, 2)
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_mask = rows < M
    co = tl.program_id(1) * BLOCK_CO + tl.arange(0, BLOCK_CO)
    co_mask = co < C
    m = tl.load(min_ptr + image * M + rows, mask=row_mask, other=0.0)
    logsum = tl.load(logsum_ptr + image * M + rows, mask=row_mask, other=0.0)
    r = tl.load(r_ptr + image * M + rows, mask=row_mask, other=0.0)
    acc = tl.zeros([BLOCK_M, BLOCK_CO], dtype=tl.float32)
    row_sum = tl.zeros([BLOCK_M], dtype=tl.float32)
    through = tl.zeros([BLOCK_M], dtype=tl.float32)
    for n0 in range(0, N, BLOCK_N):
        cols = n0 + tl.arange(0, BLOCK_N)
        col_mask = cols < N
        d = _distance_tile(t_ptr, o_ptr, tn_ptr, on_ptr, pt_ptr, po_ptr, rows, cols, M, N, C, spatial_weight,
                           COSINE, SPATIAL, BLOCK_M, BLOCK_N, BLOCK_C, PRECISION)
        owner = tl.load(owner_ptr + image * N + cols, mask=col_mask, other=-1)
        coef = tl.load(coef_ptr + image * N + cols, mask=col_mask, other=0.0)
        d_dist, d_logits = _dense_grad_tile(d, rows, cols, M, N, m, logsum, r, owner, coef, h, eps)
        through += tl.sum(d_logits * tl.where(col_mask[None, :], d, 0.0), axis=1)
        row_sum += tl.sum(d_dist, axis=1)
        o = tl.load(o_ptr + cols[:, None] * C + co[None, :], mask=col_mask[:, None] & co_mask[None, :], other=0.0)
        acc = tl.dot(d_dist, o, acc, input_precision=PRECISION)
    if COSINE:
        grad = -0.5 * acc
    else:
        t = tl.load(t_ptr + rows[:, None] * C + co[None, :], mask=row_mask[:, None] & co_mask[None, :], other=0.0)
        grad = 2.0 * (t * row_sum[:, None] - acc)
    tl.store(dt_ptr + image * M * C + rows[:, None] * C + co[None, :], grad, mask=row_mask[:, None] & co_mask[None, :])
    if tl.program_id(1) == 0:
        tl.store(through_min_ptr + image * M + rows, through / (h * (m + eps) * (m + eps)), mask=row_mask)


@triton.jit
def _grad_cols_kernel(t_ptr, o_ptr, tn_ptr, on_ptr, pt_ptr, po_ptr, min_ptr, logsum_ptr, r_ptr, owner_ptr, coef_ptr,
                      do_ptr, M, N, C, spatial_weight, h, eps, COSINE: tl.constexpr, SPATIAL: tl.constexpr,
                      BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_CO: tl.constexpr,
                      PRECISION: tl.constexpr):
    image, t_ptr, o_ptr, tn_ptr, on_ptr = _image_operands(t_ptr, o_ptr, tn_ptr, on_ptr, M, N, C, 2)
    cols = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    col_mask = cols < N
    co = tl.program_id(1) * BLOCK_CO + tl.arange(0, BLOCK_CO)
    co_mask = co < C
    owner = tl.load(owner_ptr + image * N + cols, mask=col_mask, other=-1)
    coef = tl.load(coef_ptr + image * N + cols, mask=col_mask, other=0.0)
    acc = tl.zeros([BLOCK_N, BLOCK_CO], dtype=tl.float32)
    col_sum = tl.zeros([BLOCK_N], dtype=tl.float32)
    for m0 in range(0, M, BLOCK_M):
        rows = m0 + tl.arange(0, BLOCK_M)
        row_mask = rows < M
        d = _distance_tile(t_ptr, o_ptr, tn_ptr, on_ptr, pt_ptr, po_ptr, rows, cols, M, N, C, spatial_weight,
                           COSINE, SPATIAL, BLOCK_M, BLOCK_N, BLOCK_C, PRECISION)
        m = tl.load(min_ptr + image * M + rows, mask=row_mask, other=0.0)
        logsum = tl.load(logsum_ptr + image * M + rows, mask=row_mask, other=0.0)
        r = tl.load(r_ptr + image * M + rows, mask=row_mask, other=0.0)
        d_dist, d_logits = _dense_grad_tile(d, rows, cols, M, N, m, logsum, r, owner, coef, h, eps)
        col_sum += tl.sum(d_dist, axis=0)
        t = tl.load(t_ptr + rows[:, None] * C + co[None, :], mask=row_mask[:, None] & co_mask[None, :], other=0.0)
        acc = tl.dot(tl.trans(d_dist), t, acc, input_precision=PRECISION)
    if COSINE:
        grad = -0.5 * acc
    else:
        o = tl.load(o_ptr + cols[:, None] * C + co[None, :], mask=col_mask[:, None] & co_mask[None, :], other=0.0)
        grad = 2.0 * (o * col_sum[:, None] - acc)
    tl.store(do_ptr + image * N * C + cols[:, None] * C + co[None, :], grad, mask=col_mask[:, None] & co_mask[None, :])


# Block configurations. On a GPU: tensor-core tiles that fit the register file without spilling
# (ptxas for sm_90, checked in tests/test_cobi_kernels.py; with BLOCK_C = 32 and 4 warps the backward
# spilled 440-460 bytes per thread). The backward computes BLOCK_CO channels of dT / dO per program and
# each program recomputes D for its tile pairs, so BLOCK_CO spans all of C up to MAX_BLOCK_CO: 8 warps
# hold its 64 x 128 accumulator, without software pipelining (2 stages spilled 40 bytes in the l2
# column kernel). Under the interpreter (CPU tests): large tiles, since it runs one program at a time.
GPU_CONFIG = dict(BLOCK_M=64, BLOCK_N=64, BLOCK_C=16, num_warps=4, num_stages=2)
GPU_BACKWARD_CONFIG = dict(BLOCK_M=64, BLOCK_N=64, BLOCK_C=16, num_warps=8, num_stages=1)
INTERPRETER_CONFIG = dict(BLOCK_M=64, BLOCK_N=64, BLOCK_C=64)
MAX_BLOCK_CO = 128
PRECISIONS = ("tf32x3", "ieee")
PRECISION = os.environ.get("RAWZOOM_COBI_PRECISION", "tf32x3")
if PRECISION not in PRECISIONS:
    raise ValueError(f"RAWZOOM_COBI_PRECISION must be one of {', '.join(PRECISIONS)}, got {PRECISION!r}")

KERNELS = {
    "row_min": _row_min_kernel,
    "row_logsum": _row_logsum_kernel,
    "col_max": _col_max_kernel,
    "col_min": _col_min_kernel,
    "grad_rows": _grad_rows_kernel,
    "grad_cols": _grad_cols_kernel,
}


def block_config(channels: int | None = None) -> dict:
    """The forward's blocks, or with ``channels`` the backward's: BLOCK_CO the power of two that
    holds them, from 16 (the least dot dimension) to MAX_BLOCK_CO."""
    if channels is None:
        return dict(INTERPRETER_CONFIG if interpreting() else GPU_CONFIG)
    config = dict(INTERPRETER_CONFIG if interpreting() else GPU_BACKWARD_CONFIG)
    config["BLOCK_CO"] = min(MAX_BLOCK_CO, max(16, triton.next_power_of_2(channels)))
    return config


def _common(targets, outputs, pos_tgt, pos_out, distance):
    """Contiguous fp32 operands plus squared norms (l2) for the kernels."""
    t = targets.float().contiguous()
    o = outputs.float().contiguous()
    cosine = distance == "cosine"
    tn = t.new_zeros(t.shape[:2]) if cosine else (t * t).sum(-1)
    on = o.new_zeros(o.shape[:2]) if cosine else (o * o).sum(-1)
    return t, o, tn, on, pos_tgt.float().contiguous(), pos_out.float().contiguous()


def triton_forward(targets, outputs, pos_tgt, pos_out, kind, distance, h, eps, spatial_weight, spatial):
    """The fused forward: (losses (B,), row_min (B, M), row_argmin, row_logsum, best (B, N), arg) in the
    chunked backend's layout; spatial must be None or "distance"."""
    t, o, tn, on, pt, po = _common(targets, outputs, pos_tgt, pos_out, distance)
    batch, n_tgt, channels = t.shape
    n_out = o.shape[1]
    flags = dict(COSINE=distance == "cosine", SPATIAL=spatial == "distance", PRECISION=PRECISION)
    config = block_config()
    args = (t, o, tn, on, pt, po)
    best = t.new_empty(batch, n_out)
    arg = torch.empty(batch, n_out, dtype=torch.long, device=t.device)
    col_grid = (triton.cdiv(n_out, config["BLOCK_N"]), batch)
    row_grid = (triton.cdiv(n_tgt, config["BLOCK_M"]), batch)
    row_min = t.new_zeros(batch, n_tgt)
    row_argmin = torch.zeros(batch, n_tgt, dtype=torch.long, device=t.device)
    row_logsum = t.new_zeros(batch, n_tgt)
    if kind == "nearest":
        _col_min_kernel[col_grid](*args, best, arg, n_tgt, n_out, channels, spatial_weight, **flags, **config)
        return best.mean(1), row_min, row_argmin, row_logsum, best, arg
    _row_min_kernel[row_grid](*args, row_min, row_argmin, n_tgt, n_out, channels, spatial_weight, **flags, **config)
    _row_logsum_kernel[row_grid](*args, row_min, row_logsum, n_tgt, n_out, channels, spatial_weight, h, eps,
                                 **flags, **config)
    _col_max_kernel[col_grid](*args, row_min, row_logsum, best, arg, n_tgt, n_out, channels, spatial_weight, h, eps,
                              **flags, **config)
    losses = -(torch.logsumexp(best, dim=1) - torch.log(torch.tensor(float(n_out), device=t.device)))
    return losses, row_min, row_argmin, row_logsum, best, arg


def triton_dense_backward(coef, targets, outputs, pos_tgt, pos_out, row_min, row_logsum, arg, distance, h, eps,
                          spatial_weight, spatial):
    """Dense gradient parts (dT, dO) and the per-row factor of the argmin term, for contextual kind."""
    t, o, tn, on, pt, po = _common(targets, outputs, pos_tgt, pos_out, distance)
    batch, n_tgt, channels = t.shape
    n_out = o.shape[1]
    coef = coef.float().contiguous()
    r = t.new_zeros(batch, n_tgt).scatter_add_(1, arg, coef)
    flags = dict(COSINE=distance == "cosine", SPATIAL=spatial == "distance", PRECISION=PRECISION)
    config = block_config(channels)
    d_t = torch.empty_like(t)
    d_o = torch.empty_like(o)
    through_min = t.new_empty(batch, n_tgt)
    c_blocks = triton.cdiv(channels, config["BLOCK_CO"])
    common = (
        t,
        o,
        tn,
        on,
        pt,
        po,
        row_min.float().contiguous(),
        row_logsum.float().contiguous(),
        r,
        arg.contiguous(),
        coef,
    )
    _grad_rows_kernel[(triton.cdiv(n_tgt, config["BLOCK_M"]), c_blocks, batch)](
        *common, d_t, through_min, n_tgt, n_out, channels, spatial_weight, h, eps, **flags, **config)
    _grad_cols_kernel[(triton.cdiv(n_out, config["BLOCK_N"]), c_blocks, batch)](
        *common, d_o, n_tgt, n_out, channels, spatial_weight, h, eps, **flags, **config)
    return d_t, d_o, through_min
