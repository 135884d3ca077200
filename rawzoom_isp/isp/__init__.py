"""The ISP graph: stages (nn.Modules with functional twins in ``functional``), the Pipeline, the
registry. Imported on first use."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "functional": ".functional",
    "DataKind": ".kinds",
    "Pipeline": ".pipeline",
    "Stage": ".base",
    **dict.fromkeys(("available_stages", "register_stage", "stage_class"), ".registry"),
    "with_white_balance": ".white_balance",
    **dict.fromkeys(
        (
            "BayerPack",
            "BayerUnpack",
            "BlackLevel",
            "ColorMatrix",
            "Demosaic",
            "Exposure",
            "Gamma",
            "Resize",
            "ToneMap",
            "WhiteBalance",
        ),
        ".classical",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from . import functional  # noqa: F401
    from .base import Stage  # noqa: F401
    from .classical import (  # noqa: F401
        BayerPack,
        BayerUnpack,
        BlackLevel,
        ColorMatrix,
        Demosaic,
        Exposure,
        Gamma,
        Resize,
        ToneMap,
        WhiteBalance,
    )
    from .kinds import DataKind  # noqa: F401
    from .pipeline import Pipeline  # noqa: F401
    from .registry import available_stages, register_stage, stage_class  # noqa: F401
    from .white_balance import with_white_balance  # noqa: F401
