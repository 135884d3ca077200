"""A plugin zoom network as a third party would write one (found through the ``rawzoom_isp.models``
entry point): the classical zoom of packed raw with one learned gain."""
import torch
from torch import nn

from rawzoom_isp.models.residual import classical_zoom


class GainZoom(nn.Module):
    """``forward(x, wb_gains)``: packed raw (B, 4, h, w) -> linear RGB (B, 3, 2 N h, 2 N w)."""

    def __init__(self, scale: int = 4, in_channels: int = 4, output: str = "linear"):
        super().__init__()
        self.config = dict(arch="gain_zoom", scale=scale, in_channels=in_channels, output=output)
        self.in_channels, self.zoom, self.receptive_radius = in_channels, 2 * scale, 4
        self.gain = nn.Parameter(torch.ones(()))

    def forward(self, x, wb_gains=None):
        return self.gain * classical_zoom(x, self.config["scale"])
