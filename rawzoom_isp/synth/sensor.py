"""A lower-resolution sensor emulated from a higher-resolution raw: zoom pairs without optics.

An LR capture N x coarser than a real HR raw is made in one of two geometries:

- ``"centred"``, a native sensor's: the HR raw, demosaiced to linear camera RGB, is integrated over
  each LR site's whole N x N block, the site centred on its block (HR pixel p covers [p - 1/2, p + 1/2];
  LR site k covers [N k - 1/2, N k + N - 1/2] + s), optionally seen through a Gaussian optical blur of
  ``blur`` LR px and displaced by a sub-pixel ``shift`` s (HR px, |s| <= 1/2: the site grid is not
  exactly on the target's), then sampled through the LR CFA. The block mean of N^2 HR pixels keeps
  about 1/N^2 of the HR noise, so a native capture's noise is added at full strength: variance
  f (S x + O).
- ``"footprint"``, the project's first emulation: each LR site averages the (N/2)^2 same-colour HR
  sites of its N x N footprint. Colour sites then sit at the centroids of their footprints (R and B
  half an HR px off the block centre, in opposite directions), which no native sensor does. The
  average keeps 1/k of the HR noise, k = (N/2)^2, so (f - 1/k)(S x + O) is added back.

(S, O) per packed channel [R, Gr, Gb, B] is the camera's noise model (NoiseProfile form, normalised
units), f the noise factor (0: no added noise, 1: a native capture's). ``SensorFamily`` draws one
``Degradation`` per sample, for training on a family of captures.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as TF

from ..errors import ConfigError, ShapeError
from ..isp import functional as F
from ..raw.cfa import Cfa
from .noise import add_noise

GEOMETRIES = ("centred", "footprint")
MAX_SHIFT = 0.5  # HR px: a larger displacement is another window, not a sub-pixel shift
MAX_BLUR = 4.0  # LR px


@dataclass(frozen=True)
class Degradation:
    """One emulated LR capture: ``geometry`` (see the module docstring), Gaussian ``blur`` sigma in LR
    px and sub-pixel ``shift`` (dy, dx) in HR px (centred geometry only), ``noise`` factor f."""

    geometry: str = "centred"
    blur: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)
    noise: float = 1.0

    def __post_init__(self):
        if self.geometry not in GEOMETRIES:
            raise ConfigError(f"geometry must be one of {', '.join(GEOMETRIES)}, got {self.geometry!r}")
        shift = tuple(float(s) for s in self.shift)
        if not (len(shift) == 2 and 0 <= self.blur <= MAX_BLUR and all(abs(s) <= MAX_SHIFT for s in shift)
                and math.isfinite(self.noise) and self.noise >= 0):
            raise ConfigError(f"blur must be in [0, {MAX_BLUR}] LR px, shift two values in [-{MAX_SHIFT}, {MAX_SHIFT}] "
                              f"HR px and noise >= 0, got {self.blur!r}, {self.shift!r}, {self.noise!r}")
        if self.geometry == "footprint" and (self.blur or any(shift)):
            raise ConfigError("the footprint geometry has no blur or shift (it averages the raw's own sites)")
        object.__setattr__(self, "shift", shift)

    def margin(self, scale: int) -> int:
        """HR px of context on each side of a window that the capture reads."""
        return blur_radius(self.blur, scale) + 1 if self.geometry == "centred" else 0

    def describe(self) -> str:
        if self.geometry == "footprint":
            return f"footprint, noise x{self.noise:g}"
        return (f"centred, blur {self.blur:g} LR px, shift ({self.shift[0]:+.2f}, {self.shift[1]:+.2f}) HR px, "
                f"noise x{self.noise:g}")


def blur_radius(blur: float, scale: int) -> int:
    """Taps on each side of a Gaussian of ``blur`` LR px sampled on the HR grid (3 sigma)."""
    return int(math.ceil(3 * blur * scale)) if blur > 0 else 0


def site_weights(scale: int, shift: float = 0.0, blur: float = 0.0) -> torch.Tensor:
    """The 1-D weights (float64, sum 1) with which a centred LR site k integrates HR pixels
    N k - 1 - r .. N k + N + r (r = ``blur_radius``): each pixel's overlap with the site's box
    [N k - 1/2 + s, N k + N - 1/2 + s], divided by N, convolved with a Gaussian of ``blur`` N HR px."""
    positions = torch.arange(-1, scale + 1, dtype=torch.float64)
    low, high = -0.5 + shift, scale - 0.5 + shift
    box = ((positions + 0.5).clamp(max=high) - (positions - 0.5).clamp(min=low)).clamp(min=0) / scale
    radius = blur_radius(blur, scale)
    if not radius:
        return box
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
    gauss = torch.exp(-0.5 * (taps / (blur * scale)) ** 2)
    gauss = gauss / gauss.sum()
    return TF.conv1d(box[None, None], gauss.flip(0)[None, None], padding=2 * radius)[0, 0]


def centred_sites(linear: torch.Tensor, scale: int, blur: float = 0.0,
                  shift: tuple[float, float] = (0.0, 0.0)) -> torch.Tensor:
    """Linear RGB (C, S + 2 m, S + 2 m) around an S x S window, m = ``Degradation.margin`` -> the LR
    sites' RGB (C, S / N, S / N): each the ``site_weights`` integral over its block, separably."""
    margin = blur_radius(blur, scale) + 1
    size_y, size_x = linear.shape[-2] - 2 * margin, linear.shape[-1] - 2 * margin
    if size_y % scale or size_x % scale or min(size_y, size_x) <= 0:
        raise ShapeError(f"centred sites need a window that is a multiple of {scale} plus {margin} px each side, "
                         f"got {tuple(linear.shape[-2:])}")
    x = linear[None].float() if linear.ndim == 3 else linear.float()
    channels = x.shape[1]
    rows = site_weights(scale, shift[0], blur).to(x)
    cols = site_weights(scale, shift[1], blur).to(x)
    x = TF.conv2d(x, rows.reshape(1, 1, -1, 1).expand(channels, 1, -1, 1), stride=(scale, 1), groups=channels)
    x = TF.conv2d(x, cols.reshape(1, 1, 1, -1).expand(channels, 1, 1, -1), stride=(1, scale), groups=channels)
    return x[0] if linear.ndim == 3 else x


def _check_reducible(size: tuple[int, int], scale: int) -> None:
    if scale < 2 or scale % 2:
        raise ConfigError(f"an LR sensor needs an even zoom factor, got {scale}")
    if size[0] % (2 * scale) or size[1] % (2 * scale):
        raise ShapeError(f"window {size[0]}x{size[1]} must be a multiple of {2 * scale} in both sizes")


def footprint_packed(packed: torch.Tensor, cfa: str, scale: int) -> torch.Tensor:
    """(B, 4, h, w) [R, Gr, Gb, B] of a mosaic in ``cfa`` -> (B, 4, h / N, w / N) of the reduced
    mosaic (same CFA): an LR site at tile position (dy, dx) averages its colour's (N/2)^2 sites in its
    N x N footprint, which start N/2 packed positions further for dy or dx = 1."""
    half = scale // 2
    height, width = packed.shape[-2] // scale, packed.shape[-1] // scale
    planes = []
    for k, position in enumerate(Cfa(cfa).pack_index):
        dy, dx = divmod(position, 2)
        plane = packed[:, k:k + 1, half * dy:, half * dx:]
        planes.append(TF.avg_pool2d(plane, half, stride=scale)[..., :height, :width])
    return torch.cat(planes, 1)


def bayer_downscale(mosaic: torch.Tensor, cfa: str, scale: int) -> torch.Tensor:
    """The footprint geometry without noise: (..., 1, H, W) -> (..., 1, H / N, W / N), each LR site the
    mean of the same-colour sites in its N x N footprint. N even; H, W multiples of 2N."""
    _check_reducible(mosaic.shape[-2:], scale)
    lead = mosaic.shape[:-3]
    packed = F.pack_bayer(mosaic.reshape(-1, 1, *mosaic.shape[-2:]), cfa)
    low = F.unpack_bayer(footprint_packed(packed, cfa, scale), cfa)
    return low.reshape(*lead, *low.shape[-3:])


@dataclass
class HighRes:
    """A normalised HR raw ready for emulation: ``mosaic`` (1, H, W) in ``cfa``, and (for the centred
    geometry) ``linear``, its demosaic to linear camera RGB (3, H, W), not white balanced;
    ``noisy``: whether it carries a capture's noise (a real raw) or none (a synthetic one, whose
    footprint sites then get the whole of the noise)."""

    mosaic: torch.Tensor
    cfa: Cfa
    linear: torch.Tensor | None = None
    noisy: bool = True

    def __post_init__(self):
        self.cfa = Cfa(self.cfa)

    def capture(self, top: int, left: int, size: tuple[int, int], scale: int, degradation: Degradation,
                noise_model: torch.Tensor | None = None, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, str]:
        """The LR capture of the HR window at (top, left) of ``size`` (multiples of 2N): a normalised
        LR mosaic (1, h, w) clipped to [0, 1] and its CFA (the window's pattern). Noise (when
        ``noise_model`` (4, 2) is given) as the module docstring says; context outside the raw repeats
        its edge."""
        _check_reducible(size, scale)
        cfa = self.cfa.shifted(top, left)
        if degradation.geometry == "footprint":
            window = self.mosaic[None, :, top:top + size[0], left:left + size[1]].float()
            low = footprint_packed(F.pack_bayer(window, cfa), cfa, scale)
        else:
            if self.linear is None:
                raise ConfigError("the centred geometry needs the HR raw's linear demosaic (HighRes.linear)")
            margin = degradation.margin(scale)
            window = crop_clamped(self.linear, top - margin, left - margin, size[0] + 2 * margin,
                                   size[1] + 2 * margin)
            rgb = centred_sites(window, scale, degradation.blur, degradation.shift)
            low = F.pack_bayer(F.mosaic(rgb[None], cfa), cfa)
        kept = self.added_noise(scale, degradation)
        if noise_model is not None and kept > 0:
            model = noise_model.to(low)
            low = add_noise(low, (kept * model[:, 0])[None], (kept * model[:, 1])[None], generator)
        return F.unpack_bayer(low, cfa)[0].clamp(0, 1), cfa

    def added_noise(self, scale: int, degradation: Degradation) -> float:
        """The noise ``capture`` adds, as a multiple of a native capture's: the noise of the LR that its
        target does not share, which is what a network told the noise is told. The centred geometry
        adds ``degradation.noise``; the footprint adds what brings the HR's own noise its sites keep,
        1 / k of it with k = (N/2)^2 (a real raw's; none for a synthetic one), up to it. What an LR site
        keeps of the HR's own noise is in the target too: removing it would take the target's noise
        away, not the capture's."""
        if degradation.geometry == "centred" or not self.noisy:
            return degradation.noise
        return max(degradation.noise - 1.0 / (scale // 2) ** 2, 0.0)


def crop_clamped(image: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """image[..., top:top + height, left:left + width] as float32, rows and columns outside it repeating
    its edge."""
    if min(top, left) >= 0 and top + height <= image.shape[-2] and left + width <= image.shape[-1]:
        return image[..., top:top + height, left:left + width].float()
    rows = torch.arange(top, top + height).clamp(0, image.shape[-2] - 1)
    cols = torch.arange(left, left + width).clamp(0, image.shape[-1] - 1)
    return image.index_select(-2, rows).index_select(-1, cols).float()


@dataclass(frozen=True)
class SensorFamily:
    """The captures a training set draws from, one ``Degradation`` per sample:
    ``footprint_share`` of them in the footprint geometry, the rest centred with a blur drawn uniformly
    from ``blur`` (LR px) and a shift uniformly within +-``shift`` HR px in each direction;
    ``clean_share`` of them without added noise, the rest with a factor drawn log-uniformly from
    ``noise_range``."""

    footprint_share: float = 0.0
    blur: tuple[float, float] = (0.0, 0.0)
    shift: float = 0.0
    clean_share: float = 0.0
    noise_range: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self):
        low, high = (float(v) for v in self.noise_range)
        blur_low, blur_high = (float(v) for v in self.blur)
        if not (0 <= self.footprint_share <= 1 and 0 <= self.clean_share <= 1):
            raise ConfigError(f"footprint_share and clean_share must be in [0, 1], got {self.footprint_share!r}, "
                              f"{self.clean_share!r}")
        if not (0 < low <= high and math.isfinite(high)):
            raise ConfigError(f"noise_range must be two factors 0 < low <= high, got {self.noise_range!r}")
        if not (0 <= blur_low <= blur_high <= MAX_BLUR and 0 <= self.shift <= MAX_SHIFT):
            raise ConfigError(f"blur must be [low, high] within [0, {MAX_BLUR}] LR px and shift in [0, {MAX_SHIFT}] "
                              f"HR px, got {self.blur!r}, {self.shift!r}")

    @staticmethod
    def of(degradation: str, **options) -> SensorFamily:
        """The family a config names: "footprint" (all footprint), "centred" (all centred) or "mixed"
        (``footprint_share`` of them footprint)."""
        shares = {"footprint": 1.0, "centred": 0.0}
        if degradation == "mixed":
            return SensorFamily(**options)
        if degradation not in shares:
            raise ConfigError(f"degradation must be one of centred, footprint, mixed; got {degradation!r}")
        return SensorFamily(**{**options, "footprint_share": shares[degradation]})

    @property
    def needs_linear(self) -> bool:
        return self.footprint_share < 1

    def sample(self, generator: torch.Generator) -> Degradation:
        u = torch.rand(6, generator=generator, dtype=torch.float64).tolist()
        if u[0] < self.clean_share:
            noise = 0.0
        else:
            low, high = (math.log(float(v)) for v in self.noise_range)
            noise = math.exp(low + (high - low) * u[1])
        if u[2] < self.footprint_share:
            return Degradation("footprint", noise=noise)
        blur = self.blur[0] + (self.blur[1] - self.blur[0]) * u[3]
        shift = ((2 * u[4] - 1) * self.shift, (2 * u[5] - 1) * self.shift)
        return Degradation("centred", blur=blur, shift=shift, noise=noise)
