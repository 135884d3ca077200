"""The kinds of data that flow between ISP stages, with their tensor layouts, and the named choices
of the stages (torch-free, so that the command line can offer them without importing torch)."""
from __future__ import annotations

import enum


class DataKind(str, enum.Enum):
    """What a tensor between two stages holds. Layouts (batched / unbatched):

    BAYER_DN     (B, 1, H, W) / (H, W) or (1, H, W)   raw digital numbers, before black level
    BAYER        (B, 1, H, W) / (H, W) or (1, H, W)   mosaic normalised to [0, 1]
    PACKED       (B, 4, H/2, W/2) / (4, H/2, W/2)     canonical [R, Gr, Gb, B], normalised, linear
    LINEAR_RGB   (B, 3, H, W) / (3, H, W)             linear RGB (camera or sRGB primaries)
    DISPLAY_RGB  (B, 3, H, W) / (3, H, W)             gamma-encoded RGB in [0, 1]
    """

    BAYER_DN = "bayer_dn"
    BAYER = "bayer"
    PACKED = "packed"
    LINEAR_RGB = "linear_rgb"
    DISPLAY_RGB = "display_rgb"

    @property
    def channels(self) -> int:
        return {"bayer_dn": 1, "bayer": 1, "packed": 4}.get(self.value, 3)

    @property
    def label(self) -> str:
        return {
            "bayer_dn": "Bayer mosaic in raw DN",
            "bayer": "normalised Bayer mosaic",
            "packed": "packed raw [R, Gr, Gb, B]",
            "linear_rgb": "linear RGB",
            "display_rgb": "display (gamma-encoded) RGB",
        }[self.value]


DEMOSAIC_METHODS = ("bilinear", "half", "colour_bilinear", "malvar2004", "menon2007")
GAMMA_CURVES = ("srgb", "power", "linear")
HIGHLIGHT_MODES = ("clip", "blend")
