"""Raw I/O: RawImage, read_raw (rawpy/LibRaw or headerless), write_dng (tifffile), CFA tables."""
from .cfa import PACK_INDEX, PATTERNS
from .dng import write_dng
from .image import RawImage, RawMeta
from .reader import read_raw

__all__ = ["PACK_INDEX", "PATTERNS", "RawImage", "RawMeta", "read_raw", "write_dng"]
