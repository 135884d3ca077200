"""Writing and reading display images (PNG, TIFF, JPEG), atomically, 8 or 16 bits per channel."""
from __future__ import annotations

import os

import numpy as np
import torch

from .atomic import atomic_path
from .errors import RawZoomError

_EXTENSIONS = {".png": (8, 16), ".tif": (8, 16), ".tiff": (8, 16), ".jpg": (8,), ".jpeg": (8,)}


def check_image_path(path: str | os.PathLike, bits: int = 8) -> str:
    """The lower-case extension of an image path we can write with ``bits`` per channel, or a
    RawZoomError naming the path (checked before any work, so nothing is computed in vain)."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in _EXTENSIONS:
        raise RawZoomError(f"{path}: unsupported output format {ext or '(none)'}; use .png, .tif or .jpg")
    if bits not in _EXTENSIONS[ext]:
        raise RawZoomError(f"{path}: {ext} cannot hold {bits}-bit data; choose bits from {_EXTENSIONS[ext]}")
    return ext


def write_image(path: str | os.PathLike, rgb: torch.Tensor, bits: int = 8) -> None:
    """Write (3, H, W) RGB in [0, 1] as PNG/TIFF (8 or 16 bit) or JPEG (8 bit). Values outside
    [0, 1] are clipped. The file appears only when complete."""
    path = os.fspath(path)
    ext = check_image_path(path, bits)
    if rgb.ndim != 3 or rgb.shape[0] != 3:
        raise RawZoomError(f"{path}: expected an RGB image (3, H, W), got {tuple(rgb.shape)}")
    peak = 255 if bits == 8 else 65535
    array = (rgb.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * peak + 0.5).astype(
        np.uint8 if bits == 8 else np.uint16
    )
    with atomic_path(path) as tmp:
        if ext in (".tif", ".tiff"):
            import tifffile

            tifffile.imwrite(tmp, array, photometric="rgb")
        else:
            import cv2

            if not cv2.imwrite(tmp, np.ascontiguousarray(array[..., ::-1])):
                raise RawZoomError(f"{path}: OpenCV could not write the image")


def read_image(path: str | os.PathLike, apply_orientation: bool = True) -> torch.Tensor:
    """Read an 8/16-bit RGB image as (3, H, W) float32 in [0, 1], turned as its EXIF orientation says
    unless ``apply_orientation=False`` (the pixels as stored: what pairs with a camera's raw mosaic)."""
    import cv2

    path = os.fspath(path)
    flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR | (0 if apply_orientation else cv2.IMREAD_IGNORE_ORIENTATION)
    array = cv2.imread(path, flags) if os.path.isfile(path) else None
    if array is None:
        raise RawZoomError(f"{path}: cannot be read as an image")
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    peak = 65535.0 if array.dtype == np.uint16 else 255.0
    return torch.from_numpy(np.ascontiguousarray(array[..., 2::-1]).astype(np.float32) / peak).permute(2, 0, 1)
