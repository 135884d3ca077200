"""Synthetic raw from sRGB: Brooks et al. 2019 unprocessing, and the ZLLZ paper's own "syn-raw".

``unprocess`` inverts, in order: the smoothstep tone curve, the gamma (x^2.2), the colour matrix (a
random convex mix of real cameras' XYZ->camera matrices, or a given one), white balance and
brightness (highlight-safe), clips, and samples the result through a Bayer CFA. ``process`` is the
forward direction built from the ISP stages; process(unprocess(x)) recovers x where the mosaic and
the highlight mask lose nothing (smooth regions, grey below 0.9).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..color import cam_to_srgb_from_xyz_to_cam
from ..errors import ConfigError, ShapeError
from ..isp import functional as F
from ..isp.base import Stage
from ..isp.classical import ColorMatrix, Demosaic, Gamma, ToneMap, WhiteBalance
from ..isp.kinds import DataKind
from ..isp.pipeline import Pipeline
from ..raw.cfa import Cfa
from ..raw.image import RawImage, RawMeta
from .noise import add_mosaic_noise, random_noise_levels

# XYZ -> camera matrices of four cameras (Brooks et al. 2019, unprocess.py: random_ccm).
CAMERA_XYZ_TO_CAM = np.array([
    [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
    [[0.4913, -0.0541, -0.0202], [-0.613, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
    [[0.838, -0.263, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
    [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.097, 0.1581, 0.5181]],
])
GAMMA = 2.2
HIGHLIGHT_KNEE = 0.9
PAPER_GAMMA = 2.22
PAPER_MAX_SIGMA = 20.0 / 255.0
RENDERS = ("srgb", "brooks", "paper")


@dataclass
class SynthMeta:
    """What inverts an unprocessed image: per image (B, ...) tensors and the CFA.

    ``wb_gains`` (B, 3) are the camera white-balance gains (R, 1, B); ``brightness`` (B,) the global
    gain applied with them; ``cam_to_srgb`` (B, 3, 3); ``shot``/``read`` (B,) the noise added (0: none);
    ``method`` the unprocessing ("brooks" or "paper"), which names its forward render."""

    cfa: str
    cam_to_srgb: torch.Tensor
    wb_gains: torch.Tensor
    brightness: torch.Tensor
    shot: torch.Tensor
    read: torch.Tensor
    method: str = "brooks"

    def raw_meta(self) -> RawMeta:
        """The metadata a Pipeline needs to render the mosaic (gains include the brightness; the noise
        added, the same for every colour)."""
        return RawMeta.of_normalised(self.cfa, self.wb_gains * self.brightness[:, None], self.cam_to_srgb,
                                     noise=self.colour_noise())

    def colour_noise(self) -> torch.Tensor:
        """The noise added, (S, O) per colour R, G, B of each image (B, 3, 2)."""
        return torch.stack([self.shot, self.read], 1)[:, None].expand(-1, 3, 2).float()


def random_cam_to_srgb(batch: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, 3, 3) camera->sRGB matrices from random convex mixes of the four XYZ->camera matrices."""
    weights = 1e-8 + (1e8 - 1e-8) * torch.rand(batch, len(CAMERA_XYZ_TO_CAM), generator=generator, dtype=torch.float64)
    mixes = (weights[:, :, None, None] * torch.from_numpy(CAMERA_XYZ_TO_CAM)).sum(1) / weights.sum(1)[:, None, None]
    return torch.stack([torch.from_numpy(cam_to_srgb_from_xyz_to_cam(m.numpy())) for m in mixes]).float()


def random_gains(batch: int = 1, generator: torch.Generator | None = None):
    """(wb_gains (B, 3) = (r, 1, b), brightness (B,)): brightness = 1 / N(0.8, 0.1), r ~ U(1.9, 2.4),
    b ~ U(1.5, 1.9)."""
    brightness = 1.0 / (0.8 + 0.1 * torch.randn(batch, generator=generator))
    red = 1.9 + 0.5 * torch.rand(batch, generator=generator)
    blue = 1.5 + 0.4 * torch.rand(batch, generator=generator)
    return torch.stack([red, torch.ones(batch), blue], 1), brightness


def _batched(rgb: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if rgb.ndim == 3:
        return rgb[None], False
    if rgb.ndim != 4 or rgb.shape[1] != 3:
        raise ShapeError(f"expected sRGB (3, H, W) or (B, 3, H, W), got {tuple(rgb.shape)}")
    return rgb, True


def unprocess_linear(rgb: torch.Tensor, *, method: str = "brooks", cam_to_srgb=None, wb_gains=None, brightness=None,
                     noise: bool = True, shot=None, read=None, generator: torch.Generator | None = None):
    """sRGB in [0, 1], (3, H, W) or (B, 3, H, W) -> (linear camera RGB (.., 3, H, W) before the
    mosaic, SynthMeta): ``unprocess`` without sampling through the CFA and without adding the noise,
    whose levels (drawn unless given; none without ``noise``) the metadata carries."""
    x, batched = _batched(rgb)
    batch = x.shape[0]
    if method == "paper":
        linear = F.power_degamma(x.clamp(0, 1), PAPER_GAMMA)
        sigma = PAPER_MAX_SIGMA * torch.rand(batch, generator=generator) if noise else torch.zeros(batch)
        meta = SynthMeta("RGGB", torch.eye(3).expand(batch, 3, 3).clone(), torch.ones(batch, 3), torch.ones(batch),
                         torch.zeros(batch), sigma ** 2, "paper")
        return (linear if batched else linear[0]), meta
    if method != "brooks":
        raise ConfigError(f"method must be 'brooks' or 'paper', got {method!r}")
    ccm = (
        random_cam_to_srgb(batch, generator)
        if cam_to_srgb is None
        else torch.as_tensor(cam_to_srgb, dtype=torch.float32).expand(batch, 3, 3)
    )
    if wb_gains is None or brightness is None:
        drawn_gains, drawn_brightness = random_gains(batch, generator)
    gains = drawn_gains if wb_gains is None else torch.as_tensor(wb_gains, dtype=torch.float32).expand(batch, 3)
    bright = drawn_brightness if brightness is None else torch.as_tensor(brightness, dtype=torch.float32).expand(batch)
    linear = F.power_degamma(F.inverse_smoothstep(x), GAMMA)
    camera = F.apply_color_matrix(linear, torch.linalg.inv(ccm.double()).to(x))
    inverse = (1.0 / (gains * bright[:, None])).to(x)[:, :, None, None]
    grey = camera.mean(dim=1, keepdim=True)
    mask = ((grey - HIGHLIGHT_KNEE).clamp(min=0) / (1 - HIGHLIGHT_KNEE)) ** 2
    camera = (camera * torch.maximum(mask + (1 - mask) * inverse, inverse)).clamp(0, 1)
    shot_v, read_v = torch.zeros(batch), torch.zeros(batch)
    if noise:
        drawn_shot, drawn_read = random_noise_levels(batch, generator)
        shot_v = drawn_shot if shot is None else torch.as_tensor(shot, dtype=torch.float32).expand(batch)
        read_v = drawn_read if read is None else torch.as_tensor(read, dtype=torch.float32).expand(batch)
    meta = SynthMeta("RGGB", ccm, gains, bright, shot_v, read_v, "brooks")
    return (camera if batched else camera[0]), meta


def unprocess(rgb: torch.Tensor, *, cfa: str = "RGGB", method: str = "brooks", cam_to_srgb=None, wb_gains=None,
              brightness=None, noise: bool = True, shot=None, read=None, generator: torch.Generator | None = None):
    """sRGB in [0, 1], (3, H, W) or (B, 3, H, W), H and W even -> (mosaic (.., 1, H, W) linear in [0, 1]
    plus noise, SynthMeta).

    ``method="brooks"``: the full inversion above; parameters not given are drawn per image.
    ``method="paper"``: the ZLLZ baseline: x^2.22, mosaic, Gaussian noise sigma ~ U[0, 20/255];
    no colour matrix or white balance (identity and unity in the metadata).
    ``noise``: add noise ((shot, read) drawn as Brooks et al. unless given; "paper": the Gaussian)."""
    cfa = Cfa(cfa)
    x, batched = _batched(rgb)
    linear, meta = unprocess_linear(x, method=method, cam_to_srgb=cam_to_srgb, wb_gains=wb_gains,
                                    brightness=brightness, noise=noise, shot=shot, read=read, generator=generator)
    meta.cfa = cfa
    mosaic = F.mosaic(linear, cfa)
    if noise:
        mosaic = add_mosaic_noise(mosaic, cfa, meta.shot.to(x.device), meta.read.to(x.device), generator)
    return (mosaic if batched else mosaic[0]), meta


def synthetic_raw(rgb: torch.Tensor, *, cfa: str = "RGGB", method: str = "brooks", noise: bool = True, bits: int = 14,
                  generator: torch.Generator | None = None) -> tuple[RawImage, float]:
    """An sRGB image (3, H, W) as a camera would have recorded it: ``unprocess``, quantised to
    ``bits`` (black 0, white 2^bits - 1), with the drawn white balance, colour matrix and (with
    ``noise``) the noise profile as its metadata; odd sides lose their last row or column. Returns
    the RawImage and the baseline exposure in EV (log2 of the drawn brightness) that a DNG of it
    records."""
    rgb = rgb[:, : rgb.shape[1] // 2 * 2, : rgb.shape[2] // 2 * 2]
    mosaic, meta = unprocess(rgb, cfa=cfa, method=method, noise=noise, generator=generator)
    white = 2**bits - 1
    raw = RawImage(bayer=torch.round(mosaic[0] * white).clamp(0, white), cfa=cfa, black_level=0, white_level=white,
                   wb_gains=meta.wb_gains[0], wb_source="camera", cam_to_srgb=meta.cam_to_srgb[0],
                   noise_profile=meta.colour_noise()[0] if noise else None,
                   make="rawzoom_isp", model=f"synthetic ({method})")
    return raw, float(torch.log2(meta.brightness[0]))


def render_stages(render: str = "brooks") -> list[tuple[str, Stage]]:
    """The classical stages that render linear camera RGB (not white balanced) as a kind of target:
    "srgb", a real raw's (camera WB, colour matrix, sRGB gamma); "brooks", the forward direction of
    ``unprocess(method="brooks")`` (WB and brightness, colour matrix, x^(1/2.2), smoothstep); "paper",
    of ``method="paper"`` (x^(1/2.22), after its identity matrix and unity gains)."""
    if render not in RENDERS:
        raise ConfigError(f"unknown render {render!r}; known: {', '.join(RENDERS)}")
    gamma = {"srgb": Gamma("srgb"), "brooks": Gamma("power", GAMMA), "paper": Gamma("power", PAPER_GAMMA)}[render]
    stages = [("wb", WhiteBalance(clip=True)), ("ccm", ColorMatrix()), ("gamma", gamma)]
    return stages + [("tone", ToneMap())] if render == "brooks" else stages


def process_pipeline(demosaic: str = "bilinear", render: str = "brooks") -> Pipeline:
    """The forward direction of ``unprocess``: demosaic, then ``render_stages(render)``, on a
    normalised mosaic (input kind "bayer")."""
    return Pipeline([("demosaic", Demosaic(demosaic)), *render_stages(render)], input_kind=DataKind.BAYER)


def process(mosaic: torch.Tensor, meta: SynthMeta, demosaic: str = "bilinear") -> torch.Tensor:
    """Render an unprocessed mosaic back to sRGB with the ISP stages (the render of its method)."""
    return process_pipeline(demosaic, meta.method)(mosaic, meta.raw_meta())


def render_linear(linear: torch.Tensor, wb_gains: torch.Tensor, cam_to_srgb: torch.Tensor, render: str) -> torch.Tensor:
    """Linear camera RGB (B, 3, H, W) before white balance -> display RGB, with ``render_stages`` and
    per-image metadata (B, 3), (B, 3, 3); differentiable (how linear-output networks are trained)."""
    meta = RawMeta.of_normalised("RGGB", wb_gains, cam_to_srgb)
    return Pipeline(render_stages(render), input_kind=DataKind.LINEAR_RGB)(linear, meta)
