"""PackedZoomNet: the project's default zoom network, built for CPUs and small data.

Every convolution runs at the packed resolution (half the mosaic; one position per 2x2 CFA tile),
where a 4x zoom is 8x per side and an 8x zoom 16x: a 3x3 head, ``blocks`` residual blocks (conv 3x3,
ReLU, conv 3x3, + input), a 3x3 body convolution with a long skip, and a 3x3 tail that predicts
every output pixel of a packed position at once, rearranged by pixel shuffle (Shi et al. 2016), then
(with ``blend_kernel`` k > 0) a k x k convolution at the output resolution over that learned detail,
which lets neighbouring blocks blend across their edges; it starts as the identity. The network is
residual over ``classical_zoom`` of its input (bilinear demosaic, then bicubic), and its tail starts
at zero, so training starts from that baseline and learns what improves on it. With ``degrid``
= s > 0 the output passes ``remove_grid``: whatever its high-pass repeats from block to block over s x s
blocks (a grid at the input's pixel or CFA-tile period, plainest in flat regions) is removed.

Raw input: packed [R, Gr, Gb, B] in RGGB geometry (``LearnedZoom`` unifies other CFAs by flips),
linear and not white balanced. Given the camera's white-balance gains, the network works on the
balanced signal (colours alike across cameras and scenes) and returns linear camera RGB before
white balance (``output="linear"``), which the ISP renders with the raw's own WB, colour matrix and
gamma. RGB input (3, H, W) (the 8-bit arm) is folded 2x2 into 12 channels and gives display RGB.

With ``noise_input`` (raw input only) the network is told the capture's noise, as FFDNet is (Zhang
et al. 2018): ``forward`` takes ``noise`` (B, 3, 2), (S, O) per colour R, G, B in normalised units
(a DNG NoiseProfile's form, ``rz.raw.colour_noise``), and the head sees, beside each packed site x, the
model's standard deviation there, sqrt(S x + O), white balanced like x. A blind network cannot tell
faint real texture from noise at the same brightness and smooths both; told the noise, it can keep
the texture of a clean capture and still denoise a noisy one.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..synth.noise import noise_std
from .registry import register_model, told_noise
from .residual import balance, classical_zoom, unbalance


class _ResidualBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(x)))


def phase_pattern(grid: torch.Tensor, phases: int, size: int) -> torch.Tensor:
    """What repeats from block to block in ``grid`` (B, C x phases, h, w), the ``phases`` values of
    each block for each of C channels (pixel shuffle's layout): the mean of each phase over the
    ``size`` x ``size`` blocks around, less that mean's average over the phases."""
    batch, channels, height, width = grid.shape
    local = F.avg_pool2d(grid, (size, 1), 1, (size // 2, 0), count_include_pad=False)
    local = F.avg_pool2d(local, (1, size), 1, (0, size // 2), count_include_pad=False)
    local = local.reshape(batch, channels // phases, phases, height, width)
    return (local - local.mean(2, keepdim=True)).reshape(batch, channels, height, width)


def remove_grid(image: torch.Tensor, period: int, size: int) -> torch.Tensor:
    """The comb that keeps a block-wise upsampler from printing a grid: ``image`` (B, C, H, W) less
    the ``phase_pattern`` of its high-pass at the block ``period`` over ``size`` x ``size`` blocks.
    The high-pass is the image less its separable box mean of ``period`` + 1 taps with half-weight
    ends: that mean nulls every harmonic of 1 / ``period`` and keeps straight ramps, so the grid
    passes whole while smooth shading (whose phase means differ by its slope) does not read as one.
    What repeats identically from block to block goes, content loses about std / size of its
    detail; H and W must be multiples of ``period``."""
    channels = image.shape[1]
    taps = torch.ones(period + 1, dtype=image.dtype, device=image.device)
    taps[0] = taps[-1] = 0.5
    taps = (taps / period).repeat(channels, 1)
    mean = F.pad(image, (period // 2,) * 4, mode="replicate")
    mean = F.conv2d(mean, taps.reshape(channels, 1, 1, -1), groups=channels)
    mean = F.conv2d(mean, taps.reshape(channels, 1, -1, 1), groups=channels)
    pattern = phase_pattern(F.pixel_unshuffle(image - mean, period), period ** 2, size)
    return image - F.pixel_shuffle(pattern, period)


def site_noise(packed: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
    """The noise standard deviation at each site of packed raw (B, 4, h, w) [R, Gr, Gb, B] whose
    capture has ``noise`` (B, 3, 2) or (3, 2), (S, O) per colour R, G, B: sqrt(S x + O)."""
    if noise is None:
        raise ConfigError("this network is told the capture's noise (noise_input): give noise, (S, O) per colour "
                          "R, G, B, shape (B, 3, 2)")
    noise = torch.as_tensor(noise, dtype=packed.dtype, device=packed.device)
    noise = noise.expand(packed.shape[0], 3, 2) if noise.ndim == 2 else noise
    if noise.shape != (packed.shape[0], 3, 2):
        raise ConfigError(f"noise must be (S, O) per colour R, G, B, shape (B, 3, 2), got {tuple(noise.shape)} "
                          f"for a batch of {packed.shape[0]}")
    per_site = noise[:, [0, 1, 1, 2]]
    return noise_std(packed, per_site[..., 0], per_site[..., 1])


@register_model("packed")
class PackedZoomNet(nn.Module):
    """``forward(x, wb_gains=None, noise=None)``: (B, 4, h, w) packed raw -> (B, 3, 2 scale h,
    2 scale w) linear camera RGB; or (B, 3, H, W) display RGB -> (B, 3, scale H, scale W) display RGB.
    ``noise`` (B, 3, 2): the capture's noise, required with ``noise_input``, ignored without."""


    def __init__(self, scale: int = 4, in_channels: int = 4, width: int = 64, blocks: int = 10,
                 output: str | None = None, blend_kernel: int = 0, degrid: int = 0, noise_input: bool = False):
        super().__init__()
        if in_channels not in (3, 4):
            raise ConfigError(f"in_channels must be 4 (packed raw) or 3 (RGB), got {in_channels}")
        expected = "linear" if in_channels == 4 else "display"
        output = expected if output is None else output
        if output != expected:
            raise ConfigError(f"PackedZoomNet with {in_channels} input channels gives {expected!r} output, "
                             f"not {output!r}")
        if blend_kernel < 0 or blend_kernel % 2 == 0 and blend_kernel:
            raise ConfigError(f"blend_kernel must be 0 (none) or an odd size, got {blend_kernel}")
        if degrid < 0 or degrid % 2 == 0 and degrid:
            raise ConfigError(f"degrid must be 0 (none) or an odd number of grid positions, got {degrid}")
        if type(noise_input) is not bool or noise_input and in_channels != 4:
            raise ConfigError(f"noise_input must be true or false, and true only for raw input (4 channels), got "
                              f"{noise_input!r} with {in_channels}")
        self.config = dict(arch=self.arch, scale=scale, in_channels=in_channels, width=width, blocks=blocks,
                           output=output)
        if blend_kernel:  # only when used, so that configs written before it stay valid
            self.config["blend_kernel"] = blend_kernel
        if degrid:
            self.config["degrid"] = degrid
        if noise_input:
            self.config["noise_input"] = True
        self.zoom = 2 * scale if in_channels == 4 else scale
        self.grid_zoom = 2 * scale  # output pixels per side of one position of the working grid
        grid_channels = (8 if noise_input else 4) if in_channels == 4 else 12
        self.head = nn.Conv2d(grid_channels, width, 3, padding=1)
        self.body = nn.Sequential(*[_ResidualBlock(width) for _ in range(blocks)])
        self.body_out = nn.Conv2d(width, width, 3, padding=1)
        self.tail = nn.Conv2d(width, 3 * self.grid_zoom ** 2, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)
        self.blend = None
        if blend_kernel:
            self.blend = nn.Conv2d(3, 3, blend_kernel, padding=blend_kernel // 2, bias=False)
            with torch.no_grad():
                self.blend.weight.zero_()
                self.blend.weight[range(3), range(3), blend_kernel // 2, blend_kernel // 2] = 1.0

    @property
    def in_channels(self) -> int:
        return self.config["in_channels"]

    @property
    def receptive_radius(self) -> int:
        """How far, in input pixels, an output pixel sees: 1 working-grid position per 3x3 convolution
        there, ceil((k // 2) / grid_zoom) positions for the k x k blend convolution at the output
        resolution, degrid // 2 + 1 for the comb's neighbourhood and its high-pass (x 2 for RGB input,
        folded 2x2), plus 2 for the bicubic base."""
        blend = 0 if self.blend is None else -(-(self.blend.kernel_size[0] // 2) // self.grid_zoom)
        degrid = self.config.get("degrid", 0)
        positions = 3 + 2 * self.config["blocks"] + blend + (degrid // 2 + 1 if degrid else 0)
        return positions * (1 if self.in_channels == 4 else 2) + 2

    def forward(self, x: torch.Tensor, wb_gains: torch.Tensor | None = None,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        raw = self.in_channels == 4
        sigma = site_noise(x, noise) if told_noise(self) else None
        if raw:
            x = balance(x, wb_gains)
        grid = x if raw else F.pixel_unshuffle(x, 2)
        if sigma is not None:
            grid = torch.cat([grid, balance(sigma, wb_gains)], 1)
        features = self.head(grid)
        features = features + self.body_out(self.body(features))
        detail = F.pixel_shuffle(self.tail(features), self.grid_zoom)
        if self.blend is not None:
            detail = self.blend(detail)
        out = detail + classical_zoom(x, self.config["scale"])
        if self.config.get("degrid"):
            out = remove_grid(out, self.grid_zoom, self.config["degrid"])
        return unbalance(out, wb_gains) if raw else out
