"""LearnedZoom: the network as an ISP stage, run in overlapping tiles with bounded memory."""
from __future__ import annotations

import math

import torch

from ..models.checkpoint import default_weights, load_model
from .kinds import DataKind
from .registry import register_stage
from .stage import Stage


def receptive_radius(config: dict) -> int:
    """An upper bound, in input pixels, of how far an output pixel sees: head 9x9 (4), each block
    4x4 [pads 2 after] + 3x3 (3), body conv (1), each up stage's conv and transposed conv (at most
    2), the tail 9x9 at the output scale (at most 1), plus 1 for rounding."""
    stages = int(math.log2(2 * config["scale"] if config["in_channels"] == 4 else config["scale"]))
    return 4 + 3 * config["blocks"] + 1 + 2 * stages + 2


def run_tiled(net: torch.nn.Module, x: torch.Tensor, zoom: int, tile: int, overlap: int, progress: bool = False):
    """net(x) computed on tiles of ``tile`` x ``tile`` input pixels that overlap by ``overlap`` on each
    side; each tile contributes the output of its core. Equals net(x) (in eval mode) whenever
    ``overlap`` covers the network's receptive radius. Memory: one tile at a time."""
    height, width = x.shape[-2:]
    core = tile - 2 * overlap
    if core <= 0:
        raise ValueError(f"tile {tile} must exceed twice the overlap {overlap}")
    if height <= tile and width <= tile:
        return net(x)
    out = x.new_empty(x.shape[0], 3, zoom * height, zoom * width)
    starts = [(y, xx) for y in range(0, height, core) for xx in range(0, width, core)]
    from tqdm.auto import tqdm

    for y, xx in tqdm(starts, desc="zoom tiles", disable=not progress, leave=False):
        y0, x0 = max(0, y - overlap), max(0, xx - overlap)
        y1, x1 = min(height, y + core + overlap), min(width, xx + core + overlap)
        result = net(x[..., y0:y1, x0:x1])
        cy, cx = (y - y0) * zoom, (xx - x0) * zoom
        ch, cw = (min(height, y + core) - y) * zoom, (min(width, xx + core) - xx) * zoom
        out[..., y * zoom:y * zoom + ch, xx * zoom:xx * zoom + cw] = result[..., cy:cy + ch, cx:cx + cw]
    return out


@register_stage("learned_zoom")
class LearnedZoom(Stage):
    """Packed raw (or, for an RGB-trained network, display RGB) -> RGB zoomed N x the mosaic: display
    RGB before white balance, or linear camera RGB before white balance for a network trained with
    linear output (see ``ZoomNet``). ``weights``: a checkpoint path, or "default" for the shipped
    weights of ``scale``.
    Large inputs run in ``tile``-pixel tiles (input pixels) overlapping by ``overlap`` (default: the
    network's receptive radius, so tiled output equals untiled output)."""

    gives = DataKind.DISPLAY_RGB

    def __init__(self, weights: str = "default", scale: int = 4, tile: int = 192, overlap: int | None = None,
                 progress: bool = False):
        super().__init__()
        self.weights, self.scale, self.tile, self.overlap, self.progress = weights, int(scale), int(tile), overlap, progress
        self.net = load_model(default_weights(self.scale) if weights == "default" else weights)
        if self.net.config["scale"] != self.scale:
            raise ValueError(f"{weights}: the network zooms {self.net.config['scale']}x, not {self.scale}x")
        self.takes = frozenset({DataKind.PACKED if self.net.in_channels == 4 else DataKind.DISPLAY_RGB})
        self.gives = DataKind.LINEAR_RGB if self.net.config["output"] == "linear" else DataKind.DISPLAY_RGB

    def forward(self, x, meta=None):
        """Inference (no autograd graph) unless the input needs gradients or the network is in training
        mode (``pipe.train()``)."""
        overlap = receptive_radius(self.net.config) if self.overlap is None else self.overlap
        with torch.set_grad_enabled(torch.is_grad_enabled() and (x.requires_grad or self.net.training)):
            return run_tiled(self.net, x, self.net.zoom, max(self.tile, 2 * overlap + 16), overlap, self.progress)
