"""Zoom-pair sources with one interface: synthetic raw, raw emulated from real captures, SR-RAW."""
from .emulated import EmulatedRawPairs, bayer_downscale
from .pairs import PairDataset, ZoomPair, render_camera_rgb, render_rgb, render_rgb8
from .srraw import SRRawDataset
from .synthetic import SyntheticPairs

__all__ = ["EmulatedRawPairs", "PairDataset", "SRRawDataset", "SyntheticPairs", "ZoomPair", "bayer_downscale",
           "render_camera_rgb", "render_rgb", "render_rgb8"]
