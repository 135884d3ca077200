"""rawzoom_isp: a differentiable PyTorch camera ISP with a learned raw zoom.

    import rawzoom_isp as rz
    raw = rz.read_raw("photo.dng")
    rgb = rz.Pipeline.classical()(raw)      # (3, H, W) sRGB in [0, 1]

Names are imported on first use (so ``import rawzoom_isp`` is instant and torch-free until needed).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

__version__ = "0.2.0"

_EXPORTS = {
    **{
        name: f".{name}"
        for name in ("data", "errors", "eval", "experiments", "export", "imageio", "isp", "loss", "models", "raw",
                     "synth", "train")
    },
    **dict.fromkeys(
        (
            "BayerPack",
            "BayerUnpack",
            "BlackLevel",
            "ColorMatrix",
            "DataKind",
            "Demosaic",
            "Gamma",
            "Pipeline",
            "Resize",
            "Stage",
            "ToneMap",
            "WhiteBalance",
            "register_stage",
        ),
        ".isp",
    ),
    **dict.fromkeys(("RawImage", "RawMeta", "read_raw", "write_dng"), ".raw"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from . import data, errors, eval, experiments, export, imageio, isp, loss, models, raw, synth, train  # noqa: F401
    from .isp import (  # noqa: F401
        BayerPack,
        BayerUnpack,
        BlackLevel,
        ColorMatrix,
        DataKind,
        Demosaic,
        Gamma,
        Pipeline,
        Resize,
        Stage,
        ToneMap,
        WhiteBalance,
        register_stage,
    )
    from .raw import RawImage, RawMeta, read_raw, write_dng  # noqa: F401
