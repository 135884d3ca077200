"""rawzoom_isp: a differentiable PyTorch camera ISP with a learned raw zoom.

    import rawzoom_isp as rz
    raw = rz.read_raw("photo.dng")
    rgb = rz.Pipeline.classical()(raw)      # (3, H, W) sRGB in [0, 1]
"""
from . import data, errors, loss, models, synth
from .isp import (
    BayerPack, BayerUnpack, BlackLevel, ColorMatrix, DataKind, Demosaic, Gamma, Pipeline, Resize, Stage, ToneMap,
    WhiteBalance, register_stage,
)
from .raw import RawImage, RawMeta, read_raw, write_dng

__version__ = "0.1.0"

__all__ = [
    "BayerPack", "BayerUnpack", "BlackLevel", "ColorMatrix", "DataKind", "Demosaic", "Gamma", "Pipeline", "RawImage",
    "RawMeta", "Resize", "Stage", "ToneMap", "WhiteBalance", "data", "errors", "loss", "models", "read_raw", "register_stage",
    "synth", "write_dng",
]
