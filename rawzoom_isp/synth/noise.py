"""Sensor noise: the heteroscedastic shot + read model, its sampling (Brooks et al. 2019), and its
estimation from a single real raw.

Model: y = x + n, n ~ N(0, S x + O), x the normalised signal in [0, 1]; (S, O) per CFA channel is
the DNG NoiseProfile form, so real cameras' profiles plug in directly.
"""
from __future__ import annotations

import math
from dataclasses import replace

import torch

from ..errors import DataError
from ..isp import functional as F
from ..raw.image import RawImage, colour_noise


def random_noise_levels(batch: int = 1, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(shot, read) variance coefficients, (batch,) each: log S ~ U(log 1e-4, log 0.012),
    log O ~ N(2.18 log S + 1.20, 0.26)."""
    log_min, log_max = math.log(1e-4), math.log(0.012)
    log_shot = log_min + (log_max - log_min) * torch.rand(batch, generator=generator)
    log_read = 2.18 * log_shot + 1.20 + 0.26 * torch.randn(batch, generator=generator)
    return log_shot.exp(), log_read.exp()


def _per_channel(value, x: torch.Tensor) -> torch.Tensor:
    """Broadcast a scalar, a per-image (B,) or a per-image-and-channel (B, C) value to x (B, C, h, w)."""
    v = torch.as_tensor(value, dtype=x.dtype, device=x.device)
    if v.ndim == 1:
        v = v[:, None]
    return v[..., None, None] if v.ndim == 2 else v


def noise_std(packed: torch.Tensor, shot, read) -> torch.Tensor:
    """The model's noise standard deviation at each site of packed (B, C, h, w): sqrt(shot * x + read),
    x clipped at 0; shot/read: scalars, per image (B,), or per image and channel (B, C) (use (1, C)
    for all images)."""
    variance = _per_channel(shot, packed) * packed.clamp(min=0) + _per_channel(read, packed)
    return variance.clamp(min=0).sqrt()


def add_noise(packed: torch.Tensor, shot, read, generator: torch.Generator | None = None) -> torch.Tensor:
    """packed (B, C, h, w) + N(0, shot * x + read), variance from the clean signal (``noise_std``)."""
    noise = torch.randn(packed.shape, generator=generator, dtype=packed.dtype, device="cpu").to(packed.device)
    return packed + noise * noise_std(packed, shot, read)


def add_mosaic_noise(
    mosaic: torch.Tensor, cfa: str, shot, read, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The same on a mosaic (B, 1, H, W), (S, O) per image or per packed channel [R, Gr, Gb, B]."""
    return F.unpack_bayer(add_noise(F.pack_bayer(mosaic, cfa), shot, read, generator), cfa)


def _chi2_quantile_ratio(dof: int, q: float) -> float:
    """q-quantile of chi^2_dof / dof (Wilson-Hilferty): what a q-quantile of sample variances of pure
    noise reads, relative to the true variance."""
    z = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(q)).item()
    c = 2.0 / (9.0 * dof)
    return (1.0 - c + z * math.sqrt(c)) ** 3


MIN_BINS = 2  # the fewest signal levels that fit a line S x + O


def estimate_noise(raw: RawImage, block: int = 8, bins: int = 24, quantile: float = 0.25) -> torch.Tensor:
    """(S, O) per packed channel [R, Gr, Gb, B], (4, 2), in normalised units, from one raw
    (``estimate_packed_noise`` of its normalised packed planes)."""
    packed = F.pack_bayer(raw.normalised(clip=False, dtype=torch.float64)[None], raw.cfa)[0]
    # A flat tile of a clean or synthetic capture can read zero: no less than the ADC's 1/12 LSB^2.
    quantum = 1.0 / 12.0 / float((raw.white_level - raw.black_level.min()) ** 2)
    try:
        return estimate_packed_noise(packed, quantum, block, bins, quantile)
    except DataError as exc:
        raise DataError(f"{raw.path}: {exc}") from None


def with_noise_profile(raw: RawImage) -> RawImage:
    """``raw`` with its noise stated: as it is when its NoiseProfile is usable (``colour_noise``), else
    with the profile ``estimate_noise`` reads from the whole raw (before any crop: a window is too
    small to read it from)."""
    if colour_noise(raw.noise_profile) is not None:
        return raw
    return replace(raw, noise_profile=estimate_noise(raw))


def estimate_packed_noise(packed: torch.Tensor, quantum: float = 0.0, block: int = 8, bins: int = 24,
                          quantile: float = 0.25) -> torch.Tensor:
    """(S, O) per plane of normalised packed raw (C, h, w), (C, 2).

    Each plane is cut into block x block tiles; a tile's noise variance is measured on the
    differences of vertically adjacent same-colour sites, (x_2r - x_2r+1) / sqrt(2): independent
    samples whose variance is the noise variance where the signal is smooth. Tiles are binned by mean
    signal; in each bin the ``quantile`` of tile variances, divided by what that quantile reads for
    pure noise (chi-square, Wilson-Hilferty), rejects textured tiles while staying unbiased on flat
    ones, and is no less than ``quantum`` (the ADC's 1/12 LSB^2). S * mean + O is fitted to the bins
    by least squares weighted by count / variance^2. Clipped tiles are left out; a scene without flat
    areas still reads high. A frame with fewer than 8 unclipped tiles per bin gets fewer bins, down to
    ``MIN_BINS`` (DataError below: too small to read its noise from)."""
    pairs = block * block // 2
    correction = _chi2_quantile_ratio(pairs - 1, quantile)
    results = []
    for plane in packed.double():
        h, w = (plane.shape[0] // block) * block, (plane.shape[1] // block) * block
        plane = plane[:h, :w]

        def tiles(t, h=h, w=w):  # (rows, w) -> one row of values per tile (tiles of h // block row groups)
            return (
                t.reshape(h // block, -1, w // block, block)
                .permute(0, 2, 1, 3)
                .reshape((h // block) * (w // block), -1)
            )

        difference = (plane[0::2] - plane[1::2]) / math.sqrt(2.0)
        means = tiles(plane).mean(1)
        variances = tiles(difference).var(1)
        keep = (means > 0.002) & (means < 0.9) & (tiles(plane).max(1).values < 0.98)
        means, variances = means[keep], variances[keep]
        used = min(bins, means.numel() // 8)  # a small frame: fewer, wider bins
        if used < MIN_BINS:
            raise DataError(f"too few unclipped tiles to estimate noise ({means.numel()} tiles of {block} x {block} "
                            f"sites, {8 * MIN_BINS} needed)")
        edges = torch.quantile(means, torch.linspace(0, 1, used + 1, dtype=means.dtype))
        xs, ys, ws = [], [], []
        for lo, hi in zip(edges[:-1], edges[1:]):
            inside = (means >= lo) & (means <= hi)
            if inside.sum() >= 8:
                level = (torch.quantile(variances[inside], quantile) / correction).clamp(min=quantum)
                xs.append(means[inside].median())
                ys.append(level)
                ws.append(float(inside.sum()) / float(level) ** 2)
        x, y, weight = torch.stack(xs), torch.stack(ys), torch.tensor(ws, dtype=means.dtype)
        design = torch.stack([x, torch.ones_like(x)], 1) * weight.sqrt()[:, None]
        solution = torch.linalg.lstsq(design, (y * weight.sqrt())[:, None]).solution[:, 0]
        results.append(solution.clamp(min=0))
    return torch.stack(results).float()
