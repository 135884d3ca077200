"""The chunked CoBi backend: target rows in chunks, a custom autograd Function that keeps only
O(N + M) statistics and recomputes each chunk in backward.

Per image, with D the (M, N) distance matrix (rows i = targets, columns k = outputs), the forward
keeps m_i = min_k D_ik and its argmin, logS_i = logsumexp_k L_ik with L_ik = (1 - D_ik/(m_i+eps))/h,
and per column the best value over i of log CX_ik = L_ik - logS_i (or of the blended CX) with its
argmax a(k). Backward, with c_k = dloss/dlogCX_{a(k)k} and r_i = sum over {k: a(k) = i} of c_k:
    dL_ik = [i = a(k)] c_k - CX_ik r_i
    dD_ik = -dL_ik / (h (m_i + eps)) + [k = argmin_i] sum_j dL_ij D_ij / (h (m_i + eps)^2)
and the features get dD through the distance (cosine: d = (1 - t.o)/2; l2: ||t - o||^2).
"""
from __future__ import annotations

import math

import torch

from .options import BLEND_GRID_SCALE

# (rows x N) float buffers alive at once per chunk, as measured (peak RSS) with allocator overheads.
_BUFFERS = {"plain": 8, "blend": 12}


def rows_per_chunk(n_cols: int, budget_bytes: int, itemsize: int, blend: bool) -> int:
    """Rows whose working set of (rows, N) buffers fits in ``budget_bytes`` (at least 1)."""
    per_row = n_cols * itemsize * _BUFFERS["blend" if blend else "plain"]
    return max(1, budget_bytes // per_row)


def _distance_rows(tgt, out, out_sq, pos_tgt, pos_out, distance, spatial_weight, spatial):
    """D for a chunk of target rows (rows, N), the spatial "distance" term included."""
    d = tgt @ out.T
    if distance == "cosine":
        d.mul_(-0.5).add_(0.5)
    else:
        d.mul_(-2.0).add_(out_sq[None, :]).add_((tgt * tgt).sum(1, keepdim=True)).clamp_(min=0.0)
    if spatial == "distance":
        d.add_(torch.cdist(pos_tgt, pos_out, compute_mode="donot_use_mm_for_euclid_dist"), alpha=spatial_weight)
    return d


def _grid_similarity_rows(pos_tgt, pos_out, h, eps):
    """CXsp for a chunk of target rows: steps 3-4 on the squared distances of the 255-scaled grid."""
    grid = (
        torch.cdist(BLEND_GRID_SCALE * pos_tgt, BLEND_GRID_SCALE * pos_out, compute_mode="donot_use_mm_for_euclid_dist")
        ** 2
    )
    grid = grid / (grid.min(dim=1, keepdim=True).values + eps)
    return torch.softmax((1 - grid) / h, dim=1)


def _forward_image(tgt, out, pos_tgt, pos_out, opts, chunk):
    n_tgt, n_out = tgt.shape[0], out.shape[0]
    out_sq = (out * out).sum(1)
    kind, h, eps, w, spatial = opts["kind"], opts["h"], opts["eps"], opts["spatial_weight"], opts["spatial"]
    best = torch.full((n_out,), math.inf if kind == "nearest" else -math.inf, dtype=out.dtype, device=out.device)
    arg = torch.zeros(n_out, dtype=torch.long, device=out.device)
    row_min = torch.zeros(n_tgt, dtype=out.dtype, device=out.device)
    row_argmin = torch.zeros(n_tgt, dtype=torch.long, device=out.device)
    row_logsum = torch.zeros(n_tgt, dtype=out.dtype, device=out.device)
    feature_cx = torch.zeros(n_out, dtype=out.dtype, device=out.device) if spatial == "blend" else None
    for i0 in range(0, n_tgt, chunk):
        i1 = min(n_tgt, i0 + chunk)
        d = _distance_rows(tgt[i0:i1], out, out_sq, pos_tgt[i0:i1], pos_out, opts["distance"], w, spatial)
        if kind == "nearest":
            value, index = d.min(dim=0)
            better = value < best
        else:
            m, jmin = d.min(dim=1)
            row_min[i0:i1], row_argmin[i0:i1] = m, jmin
            logits = d.div_((m + eps)[:, None]).neg_().add_(1.0).div_(h)
            logsum = torch.logsumexp(logits, dim=1)
            row_logsum[i0:i1] = logsum
            log_cx = logits.sub_(logsum[:, None])
            if spatial == "blend":
                combined = (
                    log_cx.exp().mul_(1 - w).add_(_grid_similarity_rows(pos_tgt[i0:i1], pos_out, h, eps), alpha=w)
                )
                value, index = combined.max(dim=0)
                feature_cx = torch.where(value > best, log_cx.gather(0, index[None])[0].exp(), feature_cx)
            else:
                value, index = log_cx.max(dim=0)
            better = value > best
        best = torch.where(better, value, best)
        arg = torch.where(better, index + i0, arg)
    if kind == "nearest":
        loss = best.mean()
    elif spatial == "blend":
        loss = -torch.log(best.mean())
    else:
        loss = -(torch.logsumexp(best, dim=0) - math.log(n_out))
    return loss, (row_min, row_argmin, row_logsum, best, arg, feature_cx)


def nearest_backward(grad, targets, outputs, arg, distance, need_tgt):
    """kind="nearest": dloss/dD_{a(k) k} = grad / N, only at the column minima (sparse, O((N + M) C))."""
    coef = (grad / outputs.shape[1])[:, None, None]
    picked = torch.gather(targets, 1, arg[..., None].expand(-1, -1, targets.shape[2]))
    d_tgt = torch.zeros_like(targets) if need_tgt else None
    if distance == "cosine":
        d_out = -0.5 * coef * picked
        if need_tgt:
            d_tgt.scatter_add_(1, arg[..., None].expand_as(outputs), -0.5 * coef * outputs)
    else:
        diff = picked - outputs
        d_out = -2.0 * coef * diff
        if need_tgt:
            d_tgt.scatter_add_(1, arg[..., None].expand_as(outputs), 2.0 * coef * diff)
    return d_tgt, d_out


def column_coefficients(grad, best, feature_cx, spatial, spatial_weight):
    """c_k = dloss/dlogCX_{a(k) k} for kind="contextual", (B, N)."""
    if spatial == "blend":
        return -grad[:, None] * (1 - spatial_weight) * feature_cx / best.sum(1, keepdim=True)
    return -grad[:, None] * torch.softmax(best, dim=1)


def add_argmin_term(d_tgt, d_out, targets, outputs, row_argmin, through_min, distance):
    """Add the gradient through m_i = D_{i, argmin_i}: dD_{i argmin_i} += through_min_i (in place)."""
    index = row_argmin[..., None].expand_as(targets)
    matched = torch.gather(outputs, 1, index)
    weight = through_min[..., None]
    if distance == "cosine":
        if d_tgt is not None:
            d_tgt.add_(-0.5 * weight * matched)
        d_out.scatter_add_(1, index, -0.5 * weight * targets)
    else:
        if d_tgt is not None:
            d_tgt.add_(2.0 * weight * (targets - matched))
        d_out.scatter_add_(1, index, 2.0 * weight * (matched - targets))


def _dense_backward_image(coef, tgt, out, pos_tgt, pos_out, row_min, row_logsum, arg, opts, chunk, need_tgt):
    """Dense parts of (dT, dO) and through_min_i = sum_k dL_ik D_ik / (h (m_i + eps)^2) for one image."""
    h, eps, w, spatial, distance = (opts[k] for k in ("h", "eps", "spatial_weight", "spatial", "distance"))
    d_tgt = torch.zeros_like(tgt) if need_tgt else None
    d_out = torch.zeros_like(out)
    through_min = torch.zeros_like(row_min)
    out_sq = (out * out).sum(1)
    for i0 in range(0, tgt.shape[0], chunk):
        i1 = min(tgt.shape[0], i0 + chunk)
        rows = tgt[i0:i1]
        d = _distance_rows(rows, out, out_sq, pos_tgt[i0:i1], pos_out, distance, w, spatial)
        m = row_min[i0:i1]
        inv = 1.0 / (h * (m + eps))
        # CX = exp((1 - d / (m + eps)) / h - logS), built in a fresh buffer, then turned into dL.
        d_logits = (d * (-inv)[:, None]).add_((1.0 / h - row_logsum[i0:i1])[:, None]).exp_()
        columns = ((arg >= i0) & (arg < i1)).nonzero().squeeze(1)
        owners = arg[columns] - i0
        r = torch.zeros(i1 - i0, dtype=d.dtype, device=d.device).index_add_(0, owners, coef[columns])
        d_logits.mul_(-r[:, None])
        d_logits.index_put_((owners, columns), coef[columns], accumulate=True)
        through_min[i0:i1] = d.mul_(d_logits).sum(1) * inv / (m + eps)
        d_dist = d_logits.mul_(-inv[:, None])
        if distance == "cosine":
            if need_tgt:
                d_tgt[i0:i1] = -0.5 * (d_dist @ out)
            d_out.addmm_(d_dist.T, rows, alpha=-0.5)
        else:
            row_sums, col_sums = d_dist.sum(1), d_dist.sum(0)
            if need_tgt:
                d_tgt[i0:i1] = 2.0 * (rows * row_sums[:, None] - d_dist @ out)
            d_out.add_(2.0 * (out * col_sums[:, None] - d_dist.T @ rows))
    return d_tgt, d_out, through_min


def chunked_forward(targets, outputs, pos_tgt, pos_out, *, memory_budget, **opts):
    """(B, M, C) targets, (B, N, C) outputs -> (losses (B,), row_min (B, M), row_argmin (B, M),
    row_logsum (B, M), best (B, N), arg (B, N), feature_cx (B, N)); the statistics are what the
    backward needs (feature_cx only for spatial="blend", zeros otherwise)."""
    chunk = rows_per_chunk(outputs.shape[1], memory_budget, outputs.element_size(), opts["spatial"] == "blend")
    losses, stats = [], []
    for tgt, out in zip(targets, outputs):
        loss, image_stats = _forward_image(tgt, out, pos_tgt, pos_out, opts, chunk)
        losses.append(loss)
        stats.append(image_stats)
    row_min, row_argmin, row_logsum, best, arg, feature_cx = (torch.stack(list(s)) if s[0] is not None else None
                                                              for s in zip(*stats))
    if feature_cx is None:
        feature_cx = torch.zeros_like(best)
    return torch.stack(losses), row_min, row_argmin, row_logsum, best, arg, feature_cx


def chunked_backward(grad, targets, outputs, pos_tgt, pos_out, row_min, row_argmin, row_logsum, best, arg, feature_cx,
                     *, memory_budget, need_tgt, **opts):
    """Gradients (d_targets or None, d_outputs) from the forward's statistics, chunks recomputed."""
    if opts["kind"] == "nearest":
        return nearest_backward(grad, targets, outputs, arg, opts["distance"], need_tgt)
    chunk = rows_per_chunk(outputs.shape[1], memory_budget, outputs.element_size(), opts["spatial"] == "blend")
    coef = column_coefficients(grad, best, feature_cx, opts["spatial"], opts["spatial_weight"])
    d_tgts, d_outs, throughs = [], [], []
    for b in range(targets.shape[0]):
        d_tgt, d_out, through = _dense_backward_image(coef[b], targets[b], outputs[b], pos_tgt, pos_out, row_min[b],
                                                      row_logsum[b], arg[b], opts, chunk, need_tgt)
        d_tgts.append(d_tgt)
        d_outs.append(d_out)
        throughs.append(through)
    d_tgt = torch.stack(d_tgts) if need_tgt else None
    d_out = torch.stack(d_outs)
    add_argmin_term(d_tgt, d_out, targets, outputs, row_argmin, torch.stack(throughs), opts["distance"])
    return d_tgt, d_out
