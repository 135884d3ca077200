"""The ISP math, written once. Every stage module calls these; they take batched (B, C, H, W) or
unbatched (C, H, W) tensors (Bayer also (H, W)), follow the input's device and dtype, and are
differentiable unless stated otherwise. Per-image parameters may carry a leading batch dimension."""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from ..errors import ConfigError, ShapeError
from ..raw.cfa import Cfa
from ..raw.levels import check_even_mosaic, subtract_black_level  # noqa: F401 - part of the ISP math
from ..raw.orientation import apply_orientation, display_box_to_stored  # noqa: F401 - part of the ISP math
from .kinds import DEMOSAIC_METHODS, GAMMA_CURVES

SRGB_LINEAR_KNEE = 0.0031308
WB_GAMMA = 2.2  # white balance after the network, in gamma space: gains ** (1 / 2.2) (the paper)
SRGB_ENCODED_KNEE = 0.04045


def _param(value, x: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(value, dtype=x.dtype, device=x.device)


def pack_bayer(x: torch.Tensor, cfa: str) -> torch.Tensor:
    """(..., 1, H, W) mosaic -> (..., 4, H/2, W/2) in canonical [R, Gr, Gb, B] order, any CFA."""
    check_even_mosaic(x, "pack_bayer")
    if x.shape[-3] != 1:
        raise ShapeError(f"pack_bayer expects one channel (..., 1, H, W), got {tuple(x.shape)}")
    return F.pixel_unshuffle(x, 2)[..., list(Cfa(cfa).pack_index), :, :]


def unpack_bayer(packed: torch.Tensor, cfa: str) -> torch.Tensor:
    """Inverse of pack_bayer: (..., 4, h, w) [R, Gr, Gb, B] -> (..., 1, 2h, 2w) mosaic in ``cfa``."""
    if packed.ndim < 3 or packed.shape[-3] != 4:
        raise ShapeError(f"unpack_bayer expects (..., 4, h, w), got {tuple(packed.shape)}")
    index = Cfa(cfa).pack_index
    inverse = [index.index(position) for position in range(4)]
    return F.pixel_shuffle(packed[..., inverse, :, :], 2)


def _color_masks(height: int, width: int, cfa: str, like: torch.Tensor) -> torch.Tensor:
    """(3, H, W): 1 where the CFA samples R, G, B respectively."""
    selector = torch.tensor([[1.0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]], dtype=like.dtype, device=like.device)
    return unpack_bayer(selector[:, :, None, None].expand(3, 4, height // 2, width // 2), cfa)[:, 0]


def mosaic(rgb: torch.Tensor, cfa: str) -> torch.Tensor:
    """Sample RGB (..., 3, H, W) through a Bayer CFA: (..., 1, H, W), each site keeping its colour."""
    check_even_mosaic(rgb, "mosaic")
    return (rgb * _color_masks(*rgb.shape[-2:], cfa, rgb)).sum(dim=-3, keepdim=True)


def packed_to_rgb_half(packed: torch.Tensor) -> torch.Tensor:
    """Half-size demosaic: (..., 4, h, w) [R, Gr, Gb, B] -> (..., 3, h, w) [R, (Gr + Gb) / 2, B]."""
    r, gr, gb, b = packed.unbind(-3)
    return torch.stack([r, 0.5 * (gr + gb), b], dim=-3)


_BILINEAR_RB = torch.tensor([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
_BILINEAR_G = torch.tensor([[0.0, 0.25, 0.0], [0.25, 1.0, 0.25], [0.0, 0.25, 0.0]])


def demosaic_bilinear(x: torch.Tensor, cfa: str) -> torch.Tensor:
    """Differentiable bilinear demosaic: (..., 1, H, W) mosaic -> (..., 3, H, W).

    Each colour plane keeps its samples and averages its 2 or 4 nearest same-colour neighbours
    elsewhere; borders are mirrored (reflect padding keeps the CFA phase)."""
    check_even_mosaic(x, "demosaic_bilinear")
    lead = x.shape[:-3]
    height, width = x.shape[-2:]
    flat = x.reshape(-1, 1, height, width)
    # Each colour plane keeps its own samples, zero elsewhere.
    planes = F.pad(flat * _color_masks(height, width, cfa, x), (1, 1, 1, 1), mode="reflect")
    kernels = torch.stack([_BILINEAR_RB, _BILINEAR_G, _BILINEAR_RB]).to(x).unsqueeze(1)
    rgb = F.conv2d(planes, kernels, groups=3)
    return rgb.reshape(*lead, 3, height, width)


_MALVAR = torch.tensor([
    [[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1], [0, 0, 2, 0, 0], [0, 0, -1, 0, 0]],  # G at R, B
    [[0, 0, 0.5, 0, 0], [0, -1, 0, -1, 0], [-1, 4, 5, 4, -1], [0, -1, 0, -1, 0], [0, 0, 0.5, 0, 0]],  # along row
    [[0, 0, -1, 0, 0], [0, -1, 4, -1, 0], [0.5, 0, 5, 0, 0.5], [0, -1, 4, -1, 0], [0, 0, -1, 0, 0]],  # along column
    [[0, 0, -1.5, 0, 0], [0, 2, 0, 2, 0], [-1.5, 0, 6, 0, -1.5], [0, 2, 0, 2, 0], [0, 0, -1.5, 0, 0]],  # R at B
]) / 8


def _malvar_sources(cfa: str) -> list[list[int]]:
    """For each colour (R, G, B) and 2x2 tile position (row-major), what gives it: 0 the site's own
    sample, k > 0 the mosaic convolved with ``_MALVAR[k - 1]``."""
    tile = Cfa(cfa)
    table = []
    for colour in "RGB":
        row = []
        for position, site in enumerate(tile):
            dy, dx = divmod(position, 2)
            if site == colour:
                row.append(0)
            elif colour == "G":
                row.append(1)
            elif site == "G":  # R or B at a green site: interpolated along the row holding that colour, or the column
                same_row = tile[2 * dy + (1 - dx)] == colour
                row.append(2 if same_row else 3)
            else:  # R at a B site, B at an R site
                row.append(4)
        table.append(row)
    return table


@functools.lru_cache(maxsize=4)
def _malvar_packed_weights(cfa: str) -> torch.Tensor:
    """The Malvar filters as one 3 x 3 convolution of the mosaic's 2x2 tiles (its pixel_unshuffle,
    channels = tile positions row-major) into 3 colours x 4 positions: (12, 4, 3, 3)."""
    weights = torch.zeros(12, 4, 3, 3, dtype=torch.float64)
    for colour, row in enumerate(_malvar_sources(cfa)):
        for position, source in enumerate(row):
            dy, dx = divmod(position, 2)
            out = 4 * colour + position
            if source == 0:
                weights[out, position, 1, 1] = 1.0
                continue
            kernel = _MALVAR[source - 1].double()
            for u in range(5):
                for v in range(5):
                    r, c = dy + u - 2, dx + v - 2  # mosaic offset from the tile's top-left site
                    weights[out, 2 * (r % 2) + c % 2, r // 2 + 1, c // 2 + 1] += kernel[u, v]
    return weights


def demosaic_malvar(x: torch.Tensor, cfa: str) -> torch.Tensor:
    """Malvar, He and Cutler's (2004) gradient-corrected bilinear demosaic, differentiable: each missing
    colour from 5 x 5 linear filters of the mosaic, run as one 3 x 3 convolution over its 2x2 tiles
    (the same as colour-demosaicing's Malvar2004 away from the borders; at the borders the tiles are
    mirrored, which keeps the CFA phase). (..., 1, H, W) -> (..., 3, H, W)."""
    check_even_mosaic(x, "demosaic_malvar")
    lead = x.shape[:-3]
    height, width = x.shape[-2:]
    tiles = F.pad(F.pixel_unshuffle(x.reshape(-1, 1, height, width), 2), (1, 1, 1, 1), mode="reflect")
    out = F.conv2d(tiles, _malvar_packed_weights(Cfa(cfa)).to(x))  # (B, 3 x 4, H/2, W/2)
    return F.pixel_shuffle(out.reshape(-1, 4, height // 2, width // 2), 2).reshape(*lead, 3, height, width)


def demosaic_colour(x: torch.Tensor, cfa: str, method: str) -> torch.Tensor:
    """Demosaic with colour-demosaicing ("bilinear", "menon2007"). Runs in numpy on the CPU and is NOT
    differentiable: the result carries no gradient."""
    import warnings

    with warnings.catch_warnings():  # colour-science warns that matplotlib is absent; we do not plot
        warnings.simplefilter("ignore")
        import colour_demosaicing as cd

    functions = {"bilinear": cd.demosaicing_CFA_Bayer_bilinear, "menon2007": cd.demosaicing_CFA_Bayer_Menon2007}
    function = functions[method]
    lead = x.shape[:-3]
    height, width = x.shape[-2:]
    flat = x.detach().reshape(-1, height, width).cpu().double().numpy()
    out = [torch.from_numpy(function(mosaic, pattern=str(Cfa(cfa)))).permute(2, 0, 1) for mosaic in flat]
    return torch.stack(out).to(dtype=x.dtype, device=x.device).reshape(*lead, 3, height, width)


def demosaic(x: torch.Tensor, cfa: str, method: str = "bilinear") -> torch.Tensor:
    """Mosaic (..., 1, H, W) or packed raw (..., 4, h, w) -> linear camera RGB. ``bilinear``:
    ``demosaic_bilinear``, full size. ``malvar2004``: ``demosaic_malvar``. ``half``:
    ``packed_to_rgb_half``, one pixel per 2x2 tile (LibRaw's half_size). ``colour_bilinear``,
    ``menon2007``: ``demosaic_colour`` (not differentiable)."""
    if method not in DEMOSAIC_METHODS:
        raise ConfigError(f"demosaic method must be one of {', '.join(DEMOSAIC_METHODS)}, got {method!r}")
    packed = x.shape[-3] == 4
    if method == "half":
        return packed_to_rgb_half(x if packed else pack_bayer(x, cfa))
    mosaic = unpack_bayer(x, cfa) if packed else x
    if method == "bilinear":
        return demosaic_bilinear(mosaic, cfa)
    if method == "malvar2004":
        return demosaic_malvar(mosaic, cfa)
    return demosaic_colour(mosaic, cfa, method.removeprefix("colour_"))


def grey_world_gains(packed: torch.Tensor, low: float | None = None, high: float | None = None) -> torch.Tensor:
    """White-balance gains (3,) R, G, B with G = 1 that make the means of normalised packed raw
    (4, h, w) [R, Gr, Gb, B] grey: green mean / red mean, 1, green mean / blue mean. With ``low`` and
    ``high``, over the sites whose four channels all lie between them (neither dark nor near
    clipping), all sites when none do."""
    usable = torch.ones(packed.shape[-2:], dtype=torch.bool, device=packed.device)
    if low is not None:
        usable &= packed.amin(0) > low
    if high is not None:
        usable &= packed.amax(0) < high
    means = packed[:, usable].mean(1) if bool(usable.any()) else packed.reshape(4, -1).mean(1)
    green = (means[1] + means[2]) / 2
    return torch.stack([green / means[0], torch.ones_like(green), green / means[3]])


def apply_white_balance(x: torch.Tensor, gains, gamma: float | None = None, clip: bool = False) -> torch.Tensor:
    """Multiply channels by white-balance gains (R, G, B), shape (3,) or (B, 3).

    x may be RGB (..., 3, H, W) or packed raw (..., 4, h, w), where G's gain scales Gr and Gb.
    ``gamma`` set: x is gamma-encoded and the gains become gains ** (1 / gamma) (the paper's
    after-the-network WB). ``clip`` clips to [0, 1] afterwards (LibRaw's highlight clipping)."""
    g = _param(gains, x)
    if gamma is not None:
        g = g ** (1.0 / gamma)
    channels = x.shape[-3]
    if channels == 4:
        g = g[..., [0, 1, 1, 2]]
    elif channels != 3:
        raise ShapeError(f"white balance expects RGB (..., 3, H, W) or packed (..., 4, h, w), got {tuple(x.shape)}")
    out = x * g[..., :, None, None]
    return out.clamp(0.0, 1.0) if clip else out


def apply_color_matrix(x: torch.Tensor, matrix, clip: bool = False) -> torch.Tensor:
    """out_i = sum_j M_ij x_j per pixel; M (3, 3) or (B, 3, 3), x (..., 3, H, W); clipped to [0, 1]
    when ``clip``. A batched matmul over (3, H W) views (exports to ONNX as MatMul)."""
    if x.shape[-3] != 3:
        raise ShapeError(f"colour matrix expects (..., 3, H, W), got {tuple(x.shape)}")
    m = _param(matrix, x)
    if m.ndim not in (2, x.ndim - 1):
        raise ShapeError(f"colour matrix {tuple(m.shape)} does not fit images {tuple(x.shape)}: give (3, 3) or one "
                         "(3, 3) per image")
    out = torch.matmul(m, x.flatten(-2)).reshape(x.shape)
    return out.clamp(0.0, 1.0) if clip else out


def srgb_gamma(x: torch.Tensor) -> torch.Tensor:
    """IEC 61966-2-1 encoding: 12.92 x below 0.0031308, else 1.055 x^(1/2.4) - 0.055.
    The power branch is clamped so that gradients stay finite at 0."""
    powered = 1.055 * x.clamp(min=SRGB_LINEAR_KNEE) ** (1.0 / 2.4) - 0.055
    return torch.where(x <= SRGB_LINEAR_KNEE, 12.92 * x, powered)


def srgb_degamma(y: torch.Tensor) -> torch.Tensor:
    """Inverse of srgb_gamma: y / 12.92 below 0.04045, else ((y + 0.055) / 1.055)^2.4."""
    powered = ((y.clamp(min=SRGB_ENCODED_KNEE) + 0.055) / 1.055) ** 2.4
    return torch.where(y <= SRGB_ENCODED_KNEE, y / 12.92, powered)


def power_gamma(x: torch.Tensor, gamma: float = 2.2, floor: float = 1e-8) -> torch.Tensor:
    """Encode: max(x, floor)^(1/gamma) (Brooks et al., ZLLZ); the floor keeps the gradient finite at 0."""
    return x.clamp(min=floor) ** (1.0 / gamma)


def power_degamma(y: torch.Tensor, gamma: float = 2.2, floor: float = 1e-8) -> torch.Tensor:
    """Decode, the inverse of power_gamma: max(y, floor)^gamma."""
    return y.clamp(min=floor) ** gamma


def encode_gamma(x: torch.Tensor, curve: str = "srgb", gamma: float = 2.2) -> torch.Tensor:
    """Linear -> display: clip to [0, 1], then ``srgb_gamma``, ``power_gamma(x, gamma)`` or, for
    ``curve="linear"``, nothing more."""
    if curve not in GAMMA_CURVES:
        raise ConfigError(f"gamma curve must be one of {', '.join(GAMMA_CURVES)}, got {curve!r}")
    x = x.clamp(0.0, 1.0)
    if curve == "linear":
        return x
    return srgb_gamma(x) if curve == "srgb" else power_gamma(x, gamma)


HIGHLIGHT_KNEE = 0.9  # "blend" highlights: above this brightest channel, colour fades toward grey


def blend_highlights(rgb: torch.Tensor, knee: float = HIGHLIGHT_KNEE) -> torch.Tensor:
    """White-balanced linear RGB (..., 3, H, W): where the brightest channel passes ``knee``, blend
    toward the pixel's mean, fully at 1 and above, then clip to 1. Clipping alone turns a highlight
    that saturated in one channel only into a colour cast (magenta skies); this lets it fade to white."""
    brightest = rgb.amax(-3, keepdim=True)
    weight = ((brightest - knee) / (1 - knee)).clamp(0, 1)
    return (rgb * (1 - weight) + rgb.mean(-3, keepdim=True) * weight).clamp(max=1.0)


AUTO_BRIGHT_SHARE = 0.01  # LibRaw's auto_bright_thr: the share of values allowed to clip


def auto_exposure_ev(linear: torch.Tensor, share: float = AUTO_BRIGHT_SHARE) -> float:
    """LibRaw's auto-brightness as an exposure in EV: the gain that takes the value only ``share`` of
    each channel exceeds (the largest over channels) to 1, never below 1x. (..., 3, H, W) linear RGB."""
    channels = linear.detach().float().transpose(0, -3).reshape(3, -1) if linear.ndim > 3 else \
        linear.detach().float().reshape(3, -1)
    step = max(1, channels.shape[1] // 1_000_000)  # a million samples per channel settle the quantile
    top = float(torch.quantile(channels[:, ::step], 1 - share, dim=1).max())
    return max(0.0, -math.log2(max(top, 1e-6)))


def smoothstep(x: torch.Tensor) -> torch.Tensor:
    """Global tone curve 3x^2 - 2x^3 on [0, 1]."""
    x = x.clamp(0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def inverse_smoothstep(y: torch.Tensor) -> torch.Tensor:
    """Inverse of smoothstep: 0.5 - sin(asin(1 - 2y) / 3)."""
    y = y.clamp(0.0, 1.0)
    return 0.5 - torch.sin(torch.asin(1.0 - 2.0 * y) / 3.0)


def resize(x: torch.Tensor, scale: float, mode: str = "bicubic", clip: bool = True) -> torch.Tensor:
    """Resample (..., C, H, W) by ``scale`` (antialiased when shrinking); bicubic overshoot clipped
    to [0, 1] when ``clip``."""
    return _resample(x, dict(scale_factor=scale), scale < 1, mode, clip)


def resize_to(x: torch.Tensor, height: int, width: int, mode: str = "bicubic", clip: bool = True) -> torch.Tensor:
    """``resize`` to exactly ``height`` x ``width`` (antialiased when shrinking)."""
    return _resample(x, dict(size=(height, width)), height < x.shape[-2], mode, clip)


def _resample(x: torch.Tensor, target: dict, shrinking: bool, mode: str, clip: bool) -> torch.Tensor:
    lead = x.shape[:-3]
    flat = x.reshape(-1, *x.shape[-3:])
    align = None if mode in ("nearest", "area") else False
    out = F.interpolate(flat, mode=mode, align_corners=align, antialias=shrinking and mode in ("bilinear", "bicubic"),
                        **target)
    out = out.reshape(*lead, *out.shape[-3:])
    return out.clamp(0.0, 1.0) if clip else out
