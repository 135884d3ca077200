"""Writing and reading display images (PNG, TIFF, JPEG), atomically, 8 or 16 bits per channel.

Written images carry what viewers need: the ICC profile of their colour space (sRGB, Adobe RGB,
ProPhoto or linear sRGB primaries: PNG iCCP chunk, TIFF tag 34675, JPEG APP2) and the capture's EXIF
(Make, Model, Orientation, Software, and what the raw tells: date, exposure, aperture, ISO, focal
length, lens, GPS; PNG eXIf chunk, TIFF tags, JPEG APP1).
"""
from __future__ import annotations

import functools
import os
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np
import torch

from .atomic import atomic_path
from .errors import RawZoomError

_EXTENSIONS = {".png": (8, 16), ".tif": (8, 16), ".tiff": (8, 16), ".jpg": (8,), ".jpeg": (8,)}
SOFTWARE = "rawzoom_isp"


EXIF_IFD, GPS_IFD = 0x8769, 0x8825


@dataclass
class ImageInfo:
    """What is written with an image: the source camera, the orientation the pixels are in (1 once the
    raw's orientation has been applied; the raw's code when the pixels keep the sensor's), the colour
    space of the pixels (``rz.color.OUTPUT_SPACES``), and the capture's EXIF tags (``exif``: tag number
    -> value of the EXIF IFD; ``gps``: of the GPS IFD), as ``rz.raw.reader`` finds them."""

    make: str | None = None
    model: str | None = None
    orientation: int = 1
    colorspace: str = "srgb"
    exif_tags: dict = field(default_factory=dict)
    gps: dict = field(default_factory=dict)

    def exif(self) -> bytes:
        """The EXIF block as TIFF-structured bytes (no "Exif\\0\\0" prefix)."""
        from PIL import Image

        exif = Image.Exif()
        for tag, value in ((271, self.make), (272, self.model), (274, int(self.orientation)), (305, SOFTWARE)):
            if value:
                exif[tag] = value
        for ifd, tags in ((EXIF_IFD, self.exif_tags), (GPS_IFD, self.gps)):
            if tags:
                block = exif.get_ifd(ifd)
                for tag, value in tags.items():
                    block[int(tag)] = _exif_value(value)
        return exif.tobytes()[6:]


def _exif_value(value):
    """A plain tag value as Pillow writes it: (numerator, denominator) pairs as rationals."""
    from PIL.TiffImagePlugin import IFDRational

    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value) and value[1]:
        return IFDRational(*value)
    if isinstance(value, tuple):
        return tuple(_exif_value(v) for v in value)
    return value


@functools.lru_cache(maxsize=4)
def icc_profile(space: str) -> bytes:
    """The ICC profile of an output colour space: LittleCMS's sRGB; for Adobe RGB, ProPhoto and linear
    (sRGB primaries, no curve), a v2 matrix/TRC display profile written here (D50 colorants,
    ``rz.color.space_to_xyz_d50``, and the space's tone curve)."""
    if space == "srgb":
        from PIL import ImageCms

        return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    from .color import SPACE_CURVES, space_to_xyz_d50

    colorants = space_to_xyz_d50(space)
    curve, gamma = SPACE_CURVES[space]
    names = {"adobe": "Adobe RGB (1998) compatible, rawzoom_isp", "prophoto": "ProPhoto RGB compatible, rawzoom_isp",
             "linear": "Linear sRGB primaries, rawzoom_isp"}
    return _matrix_trc_profile(names[space], colorants, 1.0 if curve == "linear" else gamma)


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _matrix_trc_profile(name: str, colorants, gamma: float) -> bytes:
    """A minimal ICC v2 RGB display profile: description, copyright, D50 white point, the three
    colorants (columns of ``colorants``), one power-law tone curve for all channels."""
    def text(ascii_text: str) -> bytes:
        return b"text" + bytes(4) + ascii_text.encode() + b"\x00"

    def description(ascii_text: str) -> bytes:
        data = ascii_text.encode() + b"\x00"
        # ASCII count and text, then empty Unicode (language, count) and ScriptCode (code, count, 67 bytes).
        return b"desc" + bytes(4) + struct.pack(">I", len(data)) + data + bytes(8) + bytes(3) + bytes(67)

    def xyz(values) -> bytes:
        return b"XYZ " + bytes(4) + b"".join(_s15(v) for v in values)

    curve = b"curv" + bytes(4) + (struct.pack(">I", 0) if gamma == 1.0 else
                                  struct.pack(">IH", 1, round(gamma * 256)))
    white = (0.9642, 1.0, 0.8249)
    tags = [(b"desc", description(name)), (b"cprt", text("No copyright, use freely")), (b"wtpt", xyz(white)),
            (b"rXYZ", xyz(colorants[:, 0])), (b"gXYZ", xyz(colorants[:, 1])), (b"bXYZ", xyz(colorants[:, 2])),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset = 128 + 4 + 12 * len(tags)
    table, body = [], b""
    for signature, data in tags:
        while (offset + len(body)) % 4:
            body += b"\x00"
        table.append(struct.pack(">4sII", signature, offset + len(body), len(data)))
        body += data
    size = offset + len(body)
    header = (struct.pack(">I", size) + bytes(4) + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ " + bytes(12) + b"acsp"
              + bytes(4) + bytes(4) + bytes(4) + bytes(4) + bytes(8) + bytes(4) + b"".join(_s15(v) for v in white)
              + bytes(4) + bytes(16) + bytes(28))
    return header + struct.pack(">I", len(tags)) + b"".join(table) + body


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
    name = info.colorspace.encode()[:79]
    fh.write(_png_chunk(b"iCCP", name + b"\x00\x00" + zlib.compress(icc_profile(info.colorspace))))
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
            tifffile.imwrite(tmp, array, photometric="rgb", software=SOFTWARE, iccprofile=icc_profile(info.colorspace),
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

            Image.fromarray(array).save(tmp, format="JPEG", quality=95, icc_profile=icc_profile(info.colorspace),
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
