"""LearnedZoom: a zoom network as an ISP stage, for any CFA, run in overlapping tiles.

The networks are trained on RGGB geometry. ``zoom_packed`` unifies any other pattern by flipping the
packed planes (the flips that move R to the top-left of every 2x2 tile, ``Cfa.unify_flips``), runs the
network, and flips its output back: exact, and no row or column is lost or invented. Large inputs run
in tiles whose overlap covers the network's receptive radius, so the tiled output equals the untiled
one and memory is bounded by one tile.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import ConfigError, DataError
from ..isp.base import Stage, needs_meta
from ..isp.kinds import DataKind
from ..isp.pipeline import resample_factor
from ..isp.registry import register_stage
from ..raw.cfa import Cfa
from ..raw.image import colour_noise
from ..synth.noise import estimate_packed_noise
from .checkpoint import default_weights, load_model
from .registry import told_noise

# Input pixels per tile side. Tiles overlap by the receptive radius (34 packed px for the shipped
# network), so small tiles recompute much: a 12 MP digital zoom took 9.6 s with 256 and 7.7 s with 512,
# and less memory (benchmarks/RESULTS.md).
DEFAULT_TILE = 512


def run_tiled(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, zoom: int, tile: int, overlap: int,
              progress: bool = False) -> torch.Tensor:
    """fn(x) for a zoom ``fn`` ((B, C, h, w) -> (B, 3, zoom h, zoom w)), computed on tiles of ``tile`` x
    ``tile`` input pixels that overlap by ``overlap`` on each side; each tile contributes the output
    of its core. Equals fn(x) whenever ``overlap`` covers fn's receptive radius."""
    height, width = x.shape[-2:]
    tile = max(tile, 2 * overlap + 16)
    core = tile - 2 * overlap
    if height <= tile and width <= tile:
        return fn(x)
    out = None
    starts = [(y, xx) for y in range(0, height, core) for xx in range(0, width, core)]
    from tqdm.auto import tqdm

    for y, xx in tqdm(starts, desc="zoom tiles", disable=not progress, leave=False):
        y0, x0 = max(0, y - overlap), max(0, xx - overlap)
        y1, x1 = min(height, y + core + overlap), min(width, xx + core + overlap)
        result = fn(x[..., y0:y1, x0:x1])
        if out is None:
            out = result.new_empty(x.shape[0], result.shape[1], zoom * height, zoom * width)
        cy, cx = (y - y0) * zoom, (xx - x0) * zoom
        ch, cw = (min(height, y + core) - y) * zoom, (min(width, xx + core) - xx) * zoom
        out[..., y * zoom:y * zoom + ch, xx * zoom:xx * zoom + cw] = result[..., cy:cy + ch, cx:cx + cw]
    return out


def zoom_input(net: torch.nn.Module, x: torch.Tensor, cfa: str | None = None, wb_gains: torch.Tensor | None = None,
               tile: int = DEFAULT_TILE, progress: bool = False, noise: torch.Tensor | None = None) -> torch.Tensor:
    """The network's zoom of packed raw (B, 4, h, w) [R, Gr, Gb, B] in ``cfa`` (unified to RGGB by
    flips and flipped back) or of RGB (B, 3, H, W), in channels-last layout, in tiles of ``tile``
    input pixels (0: in one piece). ``noise`` (B, 3, 2) or (3, 2): the capture's noise, for a network
    told it (``config["noise_input"]``)."""
    if net.in_channels == 4 and cfa is None:
        raise ConfigError("packed raw needs its CFA pattern to be unified")
    flips = Cfa(cfa).unify_flips() if net.in_channels == 4 else ()
    gains = None if wb_gains is None else torch.as_tensor(wb_gains, dtype=x.dtype, device=x.device).reshape(-1, 3)
    told = (noise,) if told_noise(net) else ()

    def fn(t):
        out = net(t.contiguous(memory_format=torch.channels_last), gains, *told)
        return out.contiguous()

    x = x.flip(flips) if flips else x
    out = run_tiled(fn, x, net.zoom, tile, net.receptive_radius, progress) if tile else fn(x)
    return out.flip(flips) if flips else out


@register_stage("learned_zoom")
class LearnedZoom(Stage):
    """Packed raw (or, for an RGB-trained network, display RGB) -> RGB zoomed N x the mosaic: linear
    camera RGB before white balance for a network with linear output, else display RGB before white
    balance (the paper). N is the network's own factor (``scale`` after construction). ``weights``: a
    checkpoint path, or "default" for the shipped network of a ``scale`` x zoom (default 4); a
    ``scale`` given must be a multiple of the network's factor, and ``Pipeline.default`` /
    ``Pipeline.learned(zoom, scale)`` resample the rest (the shipped 8x zoom is the 4x network, then
    bicubic 2x). Any CFA (unified by flips); inputs larger than ``tile`` (input pixels) run in tiles
    (``tile=0``: never, as for export). The network follows the input's device, and its dtype
    (fp16/bf16 on a CPU compute in fp32)."""

    gives = DataKind.DISPLAY_RGB
    halo = None  # it tiles itself (run_tiled)

    def __init__(self, weights: str = "default", scale: int | None = None, tile: int = DEFAULT_TILE,
                 progress: bool = False):
        super().__init__()
        self.weights, self.tile, self.progress = weights, int(tile), progress
        self.path = default_weights(4 if scale is None else int(scale)) if weights == "default" else weights
        self.net = load_model(self.path).to(memory_format=torch.channels_last)
        self.scale = self.net.config["scale"]
        try:
            resample_factor(self.scale, scale)
        except ConfigError as exc:
            raise ConfigError(f"{self.path}: {exc} (a checkpoint knows its zoom factor: leave the scale out)") from None
        self.takes = frozenset({DataKind.PACKED if self.net.in_channels == 4 else DataKind.DISPLAY_RGB})
        self.gives = DataKind.LINEAR_RGB if self.net.config["output"] == "linear" else DataKind.DISPLAY_RGB

    @property
    def told_noise(self) -> bool:
        """Whether the network is told the capture's noise (then give the raw a NoiseProfile, or
        ``rz.synth.with_noise_profile`` before cropping: a small crop cannot show it)."""
        return told_noise(self.net)

    def forward(self, x, meta=None):
        """Inference (no autograd graph) unless the input needs gradients or the network is in training
        mode (``pipe.train()``)."""
        compute = x.dtype if x.dtype in (torch.float32, torch.float64) or x.is_cuda else torch.float32
        weight = next(self.net.parameters())
        if weight.device != x.device or weight.dtype != compute:
            self.net.to(device=x.device, dtype=compute)
        cfa = needs_meta("learned_zoom", meta, "cfa") if self.net.in_channels == 4 else None
        gains = meta.wb_gains if meta is not None and self.net.in_channels == 4 else None
        noise = capture_noise(x, meta) if self.told_noise else None
        with torch.set_grad_enabled(torch.is_grad_enabled() and (x.requires_grad or self.net.training)):
            out = zoom_input(self.net, x.to(compute), cfa, gains, self.tile, self.progress, noise)
        return out.to(x.dtype)


def capture_noise(packed: torch.Tensor, meta) -> torch.Tensor:
    """The noise of the capture whose normalised packed raw (B, 4, h, w) a stage sees, (B, 3, 2) (S, O)
    per colour: what its metadata states (``RawMeta.noise``, from the file's NoiseProfile), else
    estimated from the packed raw itself (``estimate_packed_noise``: a whole frame reads it best, and
    under 16 unclipped 8 x 8 tiles per channel, about 64 x 64 mosaic px, it cannot)."""
    stated = getattr(meta, "noise", None)
    if stated is not None:
        stated = torch.as_tensor(stated, dtype=torch.float32)
        return stated.expand(packed.shape[0], 3, 2) if stated.ndim == 2 else stated
    estimates = []
    for image in packed.detach().float().cpu():
        try:
            estimates.append(colour_noise(estimate_packed_noise(image)))
        except DataError as exc:
            raise DataError(f"the zoom network is told the capture's noise, the raw states none (no NoiseProfile) "
                            f"and it cannot be estimated here: {exc}; give RawMeta.noise") from None
    return torch.stack(estimates)
