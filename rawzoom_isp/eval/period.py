"""Does a zoom leave a pattern at the LR pixel period on native captures?

A zoom that works block by block (pixel shuffle, a residual over bicubic) can print a faint texture
with the period of the input's pixels, N output px at N x, or of its 2x2 CFA tiles, 2N px. It shows
in flat regions pushed brighter. The measure zooms the flattest windows of a real capture (the raw
itself is the LR input: no emulation), pushes them +1.5 EV in linear light, and compares the power
spectrum of their luminance (mean removed, Hann window, averaged over windows) at the period with
its neighbourhood:

    peak(T) = (P(f = 1/T) + Q) / (mean P(f = 1/T +- d / W, d = 3, 4, 5) + Q),

each power summed over the three frequency rows (or columns) nearest the axis, for the horizontal
and the vertical axis, the larger reported. Q is the power an 8-bit display's quantisation adds
(variance (1/255)^2 / 12 per pixel, white): a pattern far below one display level cannot be seen,
however clean the rest of the spectrum, and without Q a network that denoises flat regions well
would read a grid of 0.1 display levels as a strong peak (``peak_ratio(..., floor=False)`` gives the
raw ratio too). No pattern reads about 1 (LibRaw + bicubic about 0.9: bicubic damps that
frequency); a visible grid reads 2 and more.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import DataError
from ..isp import functional as F
from ..raw.image import RawImage

PUSH_EV = 1.5
WINDOW = 128  # output px: at 4x the LR period is 32 frequency bins, at 8x 16
NEIGHBOURS = (3, 4, 5)  # bins away from the peak (outside the Hann window's main lobe)
CONTEXT = 48  # LR px of context around each window (the network's reach, AHD's borders)
LUMA = (0.2126, 0.7152, 0.0722)
DISPLAY_LEVEL = 1 / 255


def flat_windows(raw: RawImage, size: int, count: int, margin: int = CONTEXT) -> list[tuple[int, int]]:
    """The ``count`` flattest ``size`` x ``size`` windows (even top, left) of a raw, ``margin`` px from
    its edges, on a grid: least mean absolute gradient of the half-size grey image relative to its
    level, among windows neither dark nor close to clipping after the push (linear mean in
    [0.02, 0.25])."""
    normalised = raw.normalised()
    grey = F.pack_bayer(normalised[None], raw.cfa)[0].mean(0)  # (H / 2, W / 2)
    half, edge = size // 2, margin // 2
    candidates = []
    for y in range(edge, grey.shape[0] - half - edge + 1, half):
        for x in range(edge, grey.shape[1] - half - edge + 1, half):
            tile = grey[y:y + half, x:x + half]
            level = float(tile.mean())
            if not 0.02 <= level <= 0.25:
                continue
            gradient = float((tile[1:] - tile[:-1]).abs().mean() + (tile[:, 1:] - tile[:, :-1]).abs().mean())
            candidates.append((gradient / level, 2 * y, 2 * x))
    if len(candidates) < count:
        raise DataError(f"{raw.path}: only {len(candidates)} windows of {size} px are bright and unclipped enough for "
                        f"the period measure, {count} asked")
    return [(y, x) for _, y, x in sorted(candidates)[:count]]


def _spectrum(image: torch.Tensor, push_ev: float) -> torch.Tensor:
    """Power spectrum (W, W) of the pushed luminance of a display image (3, W, W)."""
    linear = F.srgb_degamma(image.double().clamp(0, 1)) * 2.0 ** push_ev
    luma = sum(w * c for w, c in zip(LUMA, F.srgb_gamma(linear.clamp(0, 1))))
    luma = luma - luma.mean()
    hann = torch.hann_window(luma.shape[0], periodic=True, dtype=luma.dtype)
    return torch.fft.fft2(luma * hann[:, None] * hann[None, :]).abs() ** 2


def display_floor(size: int, windows: int) -> float:
    """Q of the module docstring for ``windows`` summed spectra of ``size`` px: the quantisation noise
    power per frequency bin after the Hann window."""
    hann = torch.hann_window(size, periodic=True, dtype=torch.float64)
    return windows * DISPLAY_LEVEL ** 2 / 12 * float((hann ** 2).sum()) ** 2


def peak_ratio(power: torch.Tensor, period: float, floor: float = 0.0) -> float:
    """peak(T) of a (summed) power spectrum (W, W) with the display floor Q = ``floor`` per bin (see
    the module docstring)."""
    size = power.shape[-1]
    k = round(size / period)
    near = (-1, 0, 1)
    power = power + floor

    def along(p: torch.Tensor, frequency: int) -> float:  # power at column ``frequency``, rows near 0
        return float(sum(p[row % size, frequency % size] for row in near))

    ratios = []
    for p in (power, power.T):
        neighbours = [along(p, k + s * d) for d in NEIGHBOURS for s in (-1, 1)]
        ratios.append(along(p, k) / (sum(neighbours) / len(neighbours)))
    return max(ratios)


def period_measure(methods: dict[str, Callable[[RawImage], torch.Tensor]], raw: RawImage, scale: int,
                   count: int = 48, push_ev: float = PUSH_EV) -> dict:
    """peak(N) and peak(2N) of each method (a RawImage -> display RGB zoom N x) on the ``count``
    flattest windows of the native capture ``raw`` (their power spectra summed: over 16 windows a
    peak still moves by 0.1-0.3 with the windows taken); the windows' positions."""
    size = WINDOW // scale
    windows = flat_windows(raw, size, count)
    spectra: dict[str, torch.Tensor] = {}
    for top, left in windows:
        region = raw.crop(top - CONTEXT, left - CONTEXT, size + 2 * CONTEXT, size + 2 * CONTEXT)
        core = slice(CONTEXT * scale, (CONTEXT + size) * scale)
        for name, method in methods.items():
            spectra[name] = spectra.get(name, 0) + _spectrum(method(region)[:, core, core], push_ev)
    floor = display_floor(WINDOW, len(windows))
    return {"windows": windows, "push_ev": push_ev, "window_px": WINDOW,
            "methods": {name: {"lr_period": peak_ratio(power, scale, floor),
                               "tile_period": peak_ratio(power, 2 * scale, floor),
                               "lr_period_unfloored": peak_ratio(power, scale)}
                        for name, power in spectra.items()}}
