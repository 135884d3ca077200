"""A plugin stage as a third party would write one: exposure compensation in stops on linear RGB.

It is found through the ``rawzoom_isp.stages`` entry point, not by importing this module."""
from rawzoom_isp.isp import DataKind, Stage


class Exposure(Stage):
    """Multiply linear data by 2 ** stops."""

    takes = frozenset({DataKind.LINEAR_RGB, DataKind.PACKED})

    def __init__(self, stops: float = 0.0):
        super().__init__()
        self.stops = float(stops)

    def forward(self, x, meta=None):
        return x * 2.0 ** self.stops
