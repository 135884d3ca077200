"""Writing and reading display images (PNG, TIFF, JPEG), atomically, 8 or 16 bits per channel.

Written images carry what viewers need: an sRGB ICC profile (PNG iCCP chunk, TIFF tag 34675, JPEG
APP2) and basic EXIF (Make, Model, Orientation, Software; PNG eXIf chunk, TIFF tags, JPEG APP1).
"""
from __future__ import annotations

import functools
import os
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from .atomic import atomic_path
from .errors import RawZoomError

_EXTENSIONS = {".png": (8, 16), ".tif": (8, 16), ".tiff": (8, 16), ".jpg": (8,), ".jpeg": (8,)}
SOFTWARE = "rawzoom_isp"


@dataclass
class ImageInfo:
    """EXIF facts written with an image: the source camera and the orientation the pixels are in
    (1 once the raw's orientation has been applied; the raw's code when the pixels keep the sensor's)."""

    make: str | None = None
    model: str | None = None
    orientation: int = 1

    def exif(self) -> bytes:
        """The EXIF block as TIFF-structured bytes (no "Exif\\0\\0" prefix)."""
        from PIL import Image

        exif = Image.Exif()
        for tag, value in ((271, self.make), (272, self.model), (274, int(self.orientation)), (305, SOFTWARE)):
            if value:
                exif[tag] = value
        return exif.tobytes()[6:]


@functools.lru_cache(maxsize=1)
def srgb_icc_profile() -> bytes:
    """An sRGB ICC profile (LittleCMS's built-in, through Pillow)."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


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


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _write_png_with_metadata(fh, png, info: ImageInfo) -> None:
    """Write PNG bytes with iCCP (sRGB) and eXIf chunks inserted after IHDR (without copying the image)."""
    png = memoryview(png)
    ihdr_end = 8 + 8 + 13 + 4  # signature, IHDR length/type, IHDR data, CRC
    fh.write(png[:ihdr_end])
    fh.write(_png_chunk(b"iCCP", b"sRGB\x00\x00" + zlib.compress(srgb_icc_profile())))
    fh.write(_png_chunk(b"eXIf", info.exif()))
    fh.write(png[ihdr_end:])


def write_image(path: str | os.PathLike, rgb: torch.Tensor, bits: int = 8, info: ImageInfo | None = None,
                overwrite: bool = True) -> None:
    """Write (3, H, W) RGB in [0, 1] as PNG/TIFF (8 or 16 bit) or JPEG (8 bit, quality 95), with an
    sRGB ICC profile and ``info`` as EXIF. Values outside [0, 1] are clipped. The file appears only
    when complete; without ``overwrite``, an existing file is an OutputExistsError (``atomic_path``)."""
    path = os.fspath(path)
    check_image_path(path, bits)
    if rgb.ndim != 3 or rgb.shape[0] != 3:
        raise RawZoomError(f"{path}: expected an RGB image (3, H, W), got {tuple(rgb.shape)}")
    write_image_array(path, to_integers(rgb, bits), info, overwrite)


def to_integers(rgb: torch.Tensor, bits: int) -> np.ndarray:
    """(3, H, W) RGB in [0, 1] (clipped) -> (H, W, 3) uint8 or uint16, rounded."""
    peak = 255 if bits == 8 else 65535
    return (rgb.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * peak + 0.5).astype(
        np.uint8 if bits == 8 else np.uint16
    )


def write_image_array(path: str | os.PathLike, array: np.ndarray, info: ImageInfo | None = None,
                      overwrite: bool = True) -> None:
    """``write_image`` of an (H, W, 3) uint8 or uint16 array (its bits from its dtype), as it is."""
    path = os.fspath(path)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype not in (np.uint8, np.uint16):
        raise RawZoomError(f"{path}: expected an (H, W, 3) uint8 or uint16 image, got {array.shape} {array.dtype}")
    ext = check_image_path(path, 8 if array.dtype == np.uint8 else 16)
    info = info or ImageInfo()
    with atomic_path(path, overwrite) as tmp:
        if ext in (".tif", ".tiff"):
            import tifffile

            tags = [(271, "s", 0, info.make, True), (272, "s", 0, info.model, True)]
            tifffile.imwrite(tmp, array, photometric="rgb", software=SOFTWARE, iccprofile=srgb_icc_profile(),
                             extratags=[(274, "H", 1, int(info.orientation), True)] + [t for t in tags if t[3]])
        elif ext == ".png":
            import cv2

            ok, encoded = cv2.imencode(".png", np.ascontiguousarray(array[..., ::-1]))
            if not ok:
                raise RawZoomError(f"{path}: OpenCV could not encode the image")
            with open(tmp, "wb") as fh:
                _write_png_with_metadata(fh, encoded.data, info)
        else:
            from PIL import Image

            Image.fromarray(array).save(tmp, format="JPEG", quality=95, icc_profile=srgb_icc_profile(),
                                        exif=b"Exif\x00\x00" + info.exif())


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
