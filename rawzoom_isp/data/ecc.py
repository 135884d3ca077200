"""Image alignment by OpenCV's ECC (enhanced correlation coefficient), as the original SR-RAW
preparation (affine, on downscaled grey images)."""
from __future__ import annotations

import numpy as np
import torch

from ..errors import AlignmentError


def centre_scaling(fx: float, fy: float) -> np.ndarray:
    """Pixel-centre coordinates of an image resized by (fx, fy): x' = (x + 0.5) f - 0.5, as a 3x3."""
    return np.array([[fx, 0, (fx - 1) / 2], [0, fy, (fy - 1) / 2], [0, 0, 1.0]])


def _grey(rgb: torch.Tensor) -> np.ndarray:
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=rgb.dtype).reshape(3, 1, 1)
    return (rgb * weights).sum(0).numpy().astype(np.float32)


def ecc_affine(template: torch.Tensor, moving: torch.Tensor, downscale: int = 1, iterations: int = 500,
               eps: float = 1e-6) -> np.ndarray:
    """The 2 x 3 affine W with template(p) ~ moving(W p) in full-resolution pixel coordinates, for two
    RGB images (3, H, W) of the same size; estimated on grey images shrunk ``downscale`` x."""
    import cv2

    a, b = _grey(template), _grey(moving)
    if downscale > 1:
        size = (a.shape[1] // downscale, a.shape[0] // downscale)
        a = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
        b = cv2.resize(b, size, interpolation=cv2.INTER_AREA)
    warp = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, eps)
    try:
        _, warp = cv2.findTransformECC(a, b, warp, cv2.MOTION_AFFINE, criteria, None, 5)
    except cv2.error as exc:
        raise AlignmentError(f"ECC alignment did not converge: {exc}") from None
    warp = warp.astype(np.float64)
    if downscale > 1:  # from the shrunk grid's pixel centres to the full one's
        lift = centre_scaling(downscale, downscale)
        warp = (lift @ np.vstack([warp, [0, 0, 1]]) @ np.linalg.inv(lift))[:2]
    return warp


def warp_affine(image: torch.Tensor, warp: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """out(p) = image(W p) for p on an (H, W) = ``size`` grid (bicubic, borders replicated)."""
    import cv2

    array = image.permute(1, 2, 0).numpy().astype(np.float32)
    out = cv2.warpAffine(array, warp.astype(np.float32), (size[1], size[0]),
                         flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    return torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1).clamp(0, 1)
