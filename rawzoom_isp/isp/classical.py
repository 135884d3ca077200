"""The classical ISP stages. Each is an nn.Module twin of a function in ``functional``; metadata
(CFA, black/white level, WB gains, colour matrix) comes from the raw unless given as a parameter."""
from __future__ import annotations

import numpy as np
import torch

from ..color import OUTPUT_SPACES, srgb_to_space
from ..errors import ConfigError
from ..raw.cfa import Cfa
from ..raw.facts import check_levels
from . import functional as F
from .base import Stage, needs_meta
from .kinds import HIGHLIGHT_MODES, DataKind
from .registry import register_stage

_RGB = frozenset({DataKind.LINEAR_RGB, DataKind.DISPLAY_RGB})


def _choice(name: str, value: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ConfigError(f"{name} must be one of {', '.join(options)}, got {value!r}")
    return value


@register_stage("black_level")
class BlackLevel(Stage):
    """Raw DN -> [0, 1]: (x - black) / (white - black) per CFA position, clipped when ``clip``."""

    takes = frozenset({DataKind.BAYER_DN})
    gives = DataKind.BAYER

    def __init__(self, clip: bool = True, black_level: list | None = None, white_level: float | None = None):
        super().__init__()
        self.clip = bool(clip)
        self.black_level = (
            None if black_level is None else torch.as_tensor(black_level, dtype=torch.float32).expand(2, 2)
        )
        self.white_level = None if white_level is None else float(white_level)
        if self.white_level is not None or self.black_level is not None:
            black = np.zeros((2, 2)) if self.black_level is None else self.black_level.numpy()
            white = float(black.max()) + 1 if self.white_level is None else self.white_level
            check_levels(black, white, None, lambda reason: ConfigError(f"black_level stage: {reason}"))

    def forward(self, x, meta=None):
        black = self.black_level if self.black_level is not None else needs_meta("black_level", meta, "black_level")
        white = self.white_level if self.white_level is not None else needs_meta("black_level", meta, "white_level")
        return F.subtract_black_level(x, black, white, clip=self.clip)


class _CfaStage(Stage):
    def __init__(self, cfa: str | None = None):
        super().__init__()
        self.cfa = None if cfa is None else Cfa(cfa)

    def pattern(self, meta) -> str:
        return self.cfa or needs_meta(self.type_name, meta, "cfa")


@register_stage("bayer_pack")
class BayerPack(_CfaStage):
    """Mosaic (B, 1, H, W) -> packed (B, 4, H/2, W/2) in canonical [R, Gr, Gb, B] order."""

    takes = frozenset({DataKind.BAYER})
    gives = DataKind.PACKED

    def forward(self, x, meta=None):
        return F.pack_bayer(x, self.pattern(meta))


@register_stage("bayer_unpack")
class BayerUnpack(_CfaStage):
    """Packed [R, Gr, Gb, B] -> mosaic in the raw's CFA (exact inverse of BayerPack)."""

    takes = frozenset({DataKind.PACKED})
    gives = DataKind.BAYER

    def forward(self, x, meta=None):
        return F.unpack_bayer(x, self.pattern(meta))


@register_stage("demosaic")
class Demosaic(_CfaStage):
    """Mosaic or packed raw -> linear camera RGB: ``F.demosaic`` (methods ``F.DEMOSAIC_METHODS``;
    colour-demosaicing's bilinear repeats the edge pixel when padding, so its outermost ring mixes CFA
    colours; ours does not)."""

    takes = frozenset({DataKind.BAYER, DataKind.PACKED})
    gives = DataKind.LINEAR_RGB

    HALOS = {"bilinear": 1, "colour_bilinear": 1, "malvar2004": 2, "half": 0, "menon2007": 12}

    @property
    def halo(self) -> int:
        return self.HALOS[self.method]

    def __init__(self, method: str = "bilinear", cfa: str | None = None):
        super().__init__(cfa)
        self.method = _choice("demosaic method", method, F.DEMOSAIC_METHODS)

    def forward(self, x, meta=None):
        return F.demosaic(x, self.pattern(meta), self.method)


WB_SPACES = ("linear", "display")


@register_stage("white_balance")
class WhiteBalance(Stage):
    """Multiply by WB gains (R, G, B), from the raw's metadata or given: ``F.apply_white_balance``.

    ``space="linear"``: on packed raw or linear RGB, the gains as they are. ``space="display"``: on
    display RGB (after a network that outputs it, as the paper does), gains ** (1 / ``gamma``)."""

    def __init__(self, gains: list | None = None, space: str = "linear", gamma: float = F.WB_GAMMA, clip: bool = True,
                 highlights: str = "clip"):
        super().__init__()
        self.gains = None if gains is None else torch.as_tensor(gains, dtype=torch.float32).reshape(3)
        if self.gains is not None and not bool((torch.isfinite(self.gains) & (self.gains > 0)).all()):
            raise ConfigError(f"white_balance gains must be three positive finite numbers, got {self.gains.tolist()}")
        self.space = _choice("white balance space", space, WB_SPACES)
        self.gamma = float(gamma)
        self.clip = bool(clip)
        self.highlights = _choice("highlights", highlights, HIGHLIGHT_MODES)
        self.takes = frozenset({DataKind.DISPLAY_RGB} if space == "display" else {DataKind.PACKED, DataKind.LINEAR_RGB})

    def forward(self, x, meta=None):
        """``highlights="blend"`` (linear RGB): ``F.blend_highlights`` instead of clipping at 1."""
        gains = self.gains if self.gains is not None else needs_meta("white_balance", meta, "wb_gains")
        blend = self.highlights == "blend" and self.space == "linear" and x.shape[-3] == 3
        out = F.apply_white_balance(x, gains, gamma=self.gamma if self.space == "display" else None,
                                    clip=self.clip and not blend)
        return F.blend_highlights(out) if blend else out


@register_stage("exposure")
class Exposure(Stage):
    """Linear RGB times 2^``ev``; with ``auto``, plus LibRaw's auto-brightness of the image itself
    (``F.auto_exposure_ev``: the value that 1% of each channel exceeds goes to 1), which makes the stage
    depend on the whole image."""

    takes = frozenset({DataKind.LINEAR_RGB})

    def __init__(self, ev: float = 0.0, auto: bool = False):
        super().__init__()
        if not -16 <= float(ev) <= 16:
            raise ConfigError(f"exposure ev must be in [-16, 16], got {ev}")
        self.ev, self.auto = float(ev), bool(auto)

    @property
    def halo(self) -> int | None:
        return None if self.auto else 0

    def forward(self, x, meta=None):
        ev = self.ev + (F.auto_exposure_ev(x) if self.auto else 0.0)
        return x * 2.0 ** ev


@register_stage("color_matrix")
class ColorMatrix(Stage):
    """Camera RGB -> linear RGB of the output ``space`` (``rz.color.OUTPUT_SPACES``: sRGB, Adobe RGB,
    ProPhoto, or "linear", sRGB primaries) with the raw's cam_to_srgb matrix, or a given 3x3 matrix to
    sRGB: ``F.apply_color_matrix``."""

    takes = frozenset({DataKind.LINEAR_RGB})

    def __init__(self, matrix: list | None = None, clip: bool = True, space: str = "srgb"):
        super().__init__()
        self.matrix = None if matrix is None else torch.as_tensor(matrix, dtype=torch.float32).reshape(3, 3)
        if self.matrix is not None and not bool(torch.isfinite(self.matrix).all()):
            raise ConfigError("color_matrix matrix must hold finite numbers")
        self.clip = bool(clip)
        self.space = _choice("colour space", space, OUTPUT_SPACES)
        self.register_buffer("to_space", torch.from_numpy(srgb_to_space(self.space)).float(), persistent=False)

    def forward(self, x, meta=None):
        matrix = self.matrix if self.matrix is not None else needs_meta("color_matrix", meta, "cam_to_srgb")
        if self.space not in ("srgb", "linear"):
            matrix = self.to_space.to(matrix) @ matrix
        return F.apply_color_matrix(x, matrix, clip=self.clip)


@register_stage("gamma")
class Gamma(Stage):
    """Linear -> display: ``F.encode_gamma`` (piecewise sRGB, or x^(1/gamma) for ``curve="power"``),
    input clipped to [0, 1] first; gradients are finite at 0."""

    takes = frozenset({DataKind.LINEAR_RGB})
    gives = DataKind.DISPLAY_RGB

    def __init__(self, curve: str = "srgb", gamma: float = 2.2):
        super().__init__()
        self.curve = _choice("gamma curve", curve, F.GAMMA_CURVES)
        self.gamma = float(gamma)

    def forward(self, x, meta=None):
        return F.encode_gamma(x, self.curve, self.gamma)


@register_stage("tone_map")
class ToneMap(Stage):
    """Global tone curve on display RGB: smoothstep 3x^2 - 2x^3 (Brooks et al.)."""

    takes = frozenset({DataKind.DISPLAY_RGB})

    def __init__(self, curve: str = "smoothstep"):
        super().__init__()
        self.curve = _choice("tone curve", curve, ("smoothstep",))

    def forward(self, x, meta=None):
        return F.smoothstep(x)


MAX_RESIZE = 64  # beyond this a resize is a mistake, and an allocation the machine cannot make


@register_stage("resize")
class Resize(Stage):
    """Resample RGB by ``scale`` (bicubic by default): the classical zoom the learned zoom must beat."""

    takes = _RGB

    halo = None  # a resampling changes the grid: not rendered in strips

    def __init__(self, scale: float = 4.0, mode: str = "bicubic", clip: bool = True):
        super().__init__()
        if not 0 < scale <= MAX_RESIZE:
            raise ConfigError(f"resize scale must be in (0, {MAX_RESIZE}], got {scale}")
        self.scale = float(scale)
        self.mode = _choice("resize mode", mode, ("bicubic", "bilinear", "nearest", "area"))
        self.clip = bool(clip)

    def forward(self, x, meta=None):
        return F.resize(x, self.scale, mode=self.mode, clip=self.clip)
