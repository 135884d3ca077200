"""Raw I/O: RawImage, read_raw (rawpy/LibRaw or headerless), write_dng (tifffile), the Cfa value and its tables.
Imported on first use: reading metadata (``read_raw_facts``) needs no torch."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {"Cfa": ".cfa", "PACK_INDEX": ".cfa", "PATTERNS": ".cfa", "write_dng": ".dng",
            "RawImage": ".image", "RawMeta": ".image", "colour_noise": ".image",
            "raw_files": ".reader", "read_raw": ".reader", "read_raw_facts": ".reader"}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .cfa import PACK_INDEX, PATTERNS, Cfa  # noqa: F401
    from .dng import write_dng  # noqa: F401
    from .image import RawImage, RawMeta, colour_noise  # noqa: F401
    from .reader import raw_files, read_raw, read_raw_facts  # noqa: F401
