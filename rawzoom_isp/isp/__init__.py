"""The ISP graph: stages (nn.Modules with functional twins in ``functional``), the Pipeline, the registry."""
from . import functional
from .kinds import DataKind
from .pipeline import Pipeline
from .registry import available_stages, register_stage, stage_class
from .stage import Stage
from .stages import BayerPack, BayerUnpack, BlackLevel, ColorMatrix, Demosaic, Gamma, Resize, ToneMap, WhiteBalance

__all__ = [
    "BayerPack", "BayerUnpack", "BlackLevel", "ColorMatrix", "DataKind", "Demosaic", "Gamma", "Pipeline",
    "Resize", "Stage", "ToneMap", "WhiteBalance", "available_stages", "functional", "register_stage", "stage_class",
]
