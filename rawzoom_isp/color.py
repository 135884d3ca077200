"""Colour-space conversions shared by the raw reader, the DNG writer and the synthetic-raw generator.

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
