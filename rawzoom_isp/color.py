"""Colour-space conversions shared by the raw reader, the DNG writer, the synthetic-raw generator and
the output colour spaces.

Convention (LibRaw, Brooks et al. 2019): with ``xyz_to_cam`` the 3x3 matrix from XYZ (D65) to camera
RGB, ``cam_to_srgb = inv(rownorm(xyz_to_cam @ SRGB_TO_XYZ))``, where rownorm scales each row to sum 1,
so that camera white (1, 1, 1), after white balance, maps to sRGB white.
"""
from __future__ import annotations

import numpy as np

# Linear sRGB (D65) to CIE XYZ, IEC 61966-2-1.
SRGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)


def cam_to_srgb_from_xyz_to_cam(xyz_to_cam: np.ndarray) -> np.ndarray:
    """cam_to_srgb = inv(rownorm(xyz_to_cam @ SRGB_TO_XYZ))."""
    srgb_to_cam = np.asarray(xyz_to_cam, dtype=np.float64)[:3, :3] @ SRGB_TO_XYZ
    srgb_to_cam = srgb_to_cam / srgb_to_cam.sum(axis=1, keepdims=True)
    return np.linalg.inv(srgb_to_cam)


def xyz_to_cam_from_cam_to_srgb(cam_to_srgb: np.ndarray) -> np.ndarray:
    """The XYZ-to-camera matrix (DNG ColorMatrix) that ``cam_to_srgb_from_xyz_to_cam`` maps back to
    ``cam_to_srgb``, given that cam_to_srgb maps (1, 1, 1) to (1, 1, 1)."""
    return np.linalg.inv(np.asarray(cam_to_srgb, dtype=np.float64)) @ np.linalg.inv(SRGB_TO_XYZ)


# Adobe RGB (1998), D65, to XYZ; ProPhoto (ROMM) RGB, D50, to XYZ (D50).
ADOBE_TO_XYZ = np.array([[0.5767309, 0.1855540, 0.1881852], [0.2973769, 0.6273491, 0.0752741],
                         [0.0270343, 0.0706872, 0.9911085]])
PROPHOTO_TO_XYZ_D50 = np.array([[0.7976749, 0.1351917, 0.0313534], [0.2880402, 0.7118741, 0.0000857],
                                [0.0, 0.0, 0.8252100]])
# Bradford chromatic adaptation of XYZ from D65 to D50 (what ICC profiles store).
D65_TO_D50 = np.array([[1.0478112, 0.0228866, -0.0501270], [0.0295424, 0.9904844, -0.0170491],
                       [-0.0092345, 0.0150436, 0.7521316]])
OUTPUT_SPACES = ("srgb", "adobe", "prophoto", "linear")
# Each output space's encoding: (curve, gamma) as rz.isp.functional.encode_gamma takes them.
SPACE_CURVES = {"srgb": ("srgb", 2.2), "adobe": ("power", 563 / 256), "prophoto": ("power", 1.8),
                "linear": ("linear", 1.0)}


def space_to_xyz_d50(space: str) -> np.ndarray:
    """Linear RGB of an output space to XYZ adapted to D50 (an ICC profile's colorants)."""
    if space in ("srgb", "linear"):
        return D65_TO_D50 @ SRGB_TO_XYZ
    if space == "adobe":
        return D65_TO_D50 @ ADOBE_TO_XYZ
    if space == "prophoto":
        return PROPHOTO_TO_XYZ_D50
    raise ValueError(f"unknown output colour space {space!r}; known: {', '.join(OUTPUT_SPACES)}")


def srgb_to_space(space: str) -> np.ndarray:
    """Linear sRGB to the linear RGB of an output space ("linear" keeps sRGB primaries, unencoded)."""
    return np.linalg.inv(space_to_xyz_d50(space)) @ space_to_xyz_d50("srgb")
