"""read_raw: any LibRaw-readable Bayer raw (through rawpy), or a headerless Bayer dump.

The reading itself (``read_raw_facts``; ``describe_raw`` in ``facts``) uses numpy only, so that commands
that only report metadata never import torch; ``read_raw`` wraps the facts in a RawImage."""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..color import cam_to_srgb_from_xyz_to_cam
from ..errors import (
    ConfigError,
    CorruptRawError,
    InvalidArgumentError,
    MissingDataError,
    RawFileError,
    RawShapeError,
    UnsupportedRawError,
)
from .cfa import Cfa
from .facts import check_levels, describe_raw  # noqa: F401 - describe_raw: part of the reader's API

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)
# File extensions of the raw formats LibRaw reads (for picking raws out of a folder).
RAW_EXTENSIONS = (".dng", ".cr2", ".cr3", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".rw2", ".orf", ".raf", ".pef",
                  ".kdc", ".dcr", ".mos", ".3fr", ".erf", ".mrw", ".x3f", ".srw", ".iiq", ".rwl")
# LibRaw's flip code -> EXIF orientation (dcraw maps EXIF to flip with "50132467"[orientation & 7]).
_FLIP_TO_EXIF = {0: 1, 1: 2, 3: 3, 2: 4, 4: 5, 6: 6, 7: 7, 5: 8}
# No raw codec stores a real frame in less than this many bytes per pixel (lossy GPR is ~0.25).
_MIN_BYTES_PER_PIXEL = 0.02
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"IIRO", b"IIU\x00")
_VC5_COMPRESSION = 9  # GoPro GPR
MAX_BLANK_ROWS = 0.25  # more rows than this holding one value each: pixel data missing


def raw_files(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Files as given; folders expanded to the raw files in them (``RAW_EXTENSIONS``, sorted). A path
    that does not exist, or a folder with no raw file, is a MissingDataError."""
    files = []
    for path in map(os.fspath, paths):
        if os.path.isdir(path):
            found = sorted(os.path.join(path, f) for f in os.listdir(path) if f.lower().endswith(RAW_EXTENSIONS))
            if not found:
                raise MissingDataError(f"{path}: a folder with no raw files ({', '.join(RAW_EXTENSIONS[:6])}, ...)")
            files += found
        elif os.path.exists(path):
            files.append(path)
        else:
            raise MissingDataError(f"{path}: no such file or folder")
    return files


def read_raw(path: str | os.PathLike, **options):
    """Read a raw file into a :class:`RawImage`: ``read_raw_facts`` (see it for the options and errors)
    as tensors."""
    from .image import RawImage

    return RawImage(**read_raw_facts(path, **options))


def read_raw_facts(
    path: str | os.PathLike,
    *,
    shape: Sequence[int] | None = None,
    dtype: str | np.dtype = "<u2",
    cfa: str | None = None,
    black_level: float | Sequence[float] | None = None,
    white_level: float | None = None,
    offset: int = 0,
    check_data: bool = True,
) -> dict:
    """Read a raw file: its mosaic (``bayer``, float32 numpy) and metadata under RawImage's field names.

    Container files (DNG, CR2, NEF, ARW, RW2, ...) are decoded by LibRaw; the metadata comes from the
    file. A headerless Bayer dump is read when ``shape=(H, W)`` is given, together with ``cfa``,
    ``black_level`` (scalar, 4 values row-major over the 2x2 tile, or 2x2) and ``white_level``;
    ``dtype`` (default little-endian uint16) and ``offset`` (bytes to skip) describe the layout.

    Raises UnsupportedRawError (X-Trans, non-Bayer, GoPro GPR, not a raw file: a plain TIFF renamed
    .dng), CorruptRawError (truncated, impossible levels, pixel data missing: more than
    ``MAX_BLANK_ROWS`` of the rows hold one value each) or RawShapeError (headerless size mismatch),
    naming the file. ``check_data=False`` accepts files that only fail the blank-rows rule.
    """
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise InvalidArgumentError(f"read_raw takes a file path, got {type(path).__name__}")
    path = os.fsdecode(path)
    if not os.path.isfile(path):
        raise RawFileError(path, "no such file")
    if not isinstance(check_data, bool):
        raise InvalidArgumentError(f"{path}: check_data must be True or False, got {check_data!r}")
    if shape is not None:
        _check_headerless_arguments(path, shape, black_level, white_level, offset)
        return _read_headerless(path, shape, dtype, cfa, black_level, white_level, offset)
    missing = [
        n for n, v in (("cfa", cfa), ("black_level", black_level), ("white_level", white_level)) if v is not None
    ]
    if missing:
        raise ConfigError(f"{path}: {', '.join(missing)} only apply to headerless files; pass shape=(H, W) too")
    return _read_container(path, check_data)


def _check_headerless_arguments(path, shape, black_level, white_level, offset) -> None:
    """InvalidArgumentError for a headerless description of the wrong type: shape two whole numbers,
    levels numbers, offset a whole number of bytes >= 0."""
    def whole(value) -> bool:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

    def number(value) -> bool:
        return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)

    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or not all(whole(v) for v in shape):
        raise InvalidArgumentError(f"{path}: shape must be two whole numbers (height, width), got {shape!r}")
    blacks = black_level if isinstance(black_level, (list, tuple, np.ndarray)) else [black_level]
    if black_level is not None and not all(number(v) for v in np.ravel(np.asarray(blacks, dtype=object))):
        raise InvalidArgumentError(f"{path}: black_level must be a number or 4 numbers, got {black_level!r}")
    if white_level is not None and not number(white_level):
        raise InvalidArgumentError(f"{path}: white_level must be a number, got {white_level!r}")
    if not whole(offset) or offset < 0:
        raise InvalidArgumentError(f"{path}: offset must be a whole number of bytes >= 0, got {offset!r}")


def _read_headerless(path, shape, dtype, cfa, black_level, white_level, offset) -> dict:
    if cfa is None or black_level is None or white_level is None:
        raise ConfigError(f"{path}: a headerless dump needs shape, cfa, black_level and white_level")
    if len(shape) != 2:
        raise RawShapeError(f"{path}: shape must be (height, width), got {tuple(shape)}")
    height, width = (int(s) for s in shape)
    if height % 2 or width % 2 or height <= 0 or width <= 0:
        raise RawShapeError(f"{path}: a Bayer mosaic needs even positive height and width, got {height}x{width}")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ConfigError(f"{path}: dtype {dtype!r} is not a numpy dtype (e.g. <u2, >u2, u1, <f4)") from None
    if dt.kind not in "uif":
        raise ConfigError(f"{path}: dtype {dtype!r} does not hold samples (use an integer or float type)")
    expected = height * width * dt.itemsize
    size = os.path.getsize(path) - offset
    if size != expected:
        hint = ""
        if size > 0 and size % (dt.itemsize * width) == 0:
            hint = f" (it would hold {size // (dt.itemsize * width)} rows of {width})"
        raise RawShapeError(
            f"{path}: {height}x{width} {dt.name} needs {expected} bytes after offset {offset}, "
            f"the file has {size}{hint}; check shape and dtype"
        )
    data = np.fromfile(path, dtype=dt, count=height * width, offset=offset).reshape(height, width).astype(np.float32)
    black, white = _black_tile(path, black_level), float(white_level)
    check_levels(black, white, data, lambda reason: ConfigError(f"{path}: {reason} (is --dtype {dt.str} right?)"))
    check_pixels(path, data)
    if float(data.max()) - float(black.min()) < 1e-3 * (white - float(black.min())):
        raise CorruptRawError(path, f"the samples ({float(data.min()):.3g}..{float(data.max()):.3g}) use less than "
                                    f"0.1% of the range from black {float(black.min()):g} to white {white:g}: wrong "
                                    "--dtype, --black or --white?")
    return {"bayer": data, "cfa": Cfa(cfa), "black_level": black, "white_level": white,
            "wb_source": "none", "path": path}


def check_pixels(path: str, bayer: np.ndarray, check_rows: bool = True) -> None:
    """CorruptRawError when the pixel data is not there: one value everywhere, or (``check_rows``) more
    than MAX_BLANK_ROWS of the rows holding one value each."""
    if bayer.min() == bayer.max():
        raise CorruptRawError(path, f"every pixel reads {float(bayer.min()):g}: the pixel data is missing or blank")
    blank = float((bayer.min(axis=1) == bayer.max(axis=1)).mean())
    if check_rows and blank > MAX_BLANK_ROWS:
        raise CorruptRawError(path, f"{100 * blank:.0f}% of the rows hold a single value each: pixel data is missing "
                                    "(accept it anyway with check_data=False, --no-data-checks)")


@contextlib.contextmanager
def _opened(path: str):
    """rawpy's handle of a container raw, after the checks LibRaw does not make (GPR, truncated
    strips); LibRaw's own errors become UnsupportedRawError / CorruptRawError naming the file."""
    import rawpy

    tiff = _tiff_facts(path)
    if tiff.get("compression") == _VC5_COMPRESSION:
        raise UnsupportedRawError(
            path, "GoPro GPR (VC-5 compressed DNG) cannot be decoded by LibRaw; convert it to a plain DNG "
            "with GoPro's gpr_tools (gpr_tools -i in.gpr -o out.dng)"
        )
    if tiff.get("truncated"):
        raise CorruptRawError(path, tiff["truncated"])
    try:
        with rawpy.imread(path) as raw:
            yield raw, tiff
    except rawpy.LibRawFileUnsupportedError as exc:
        raise UnsupportedRawError(path, f"LibRaw does not recognise this file as a supported raw ({exc})") from None
    except rawpy.LibRawError as exc:
        raise CorruptRawError(
            path, f"LibRaw could not decode it, the file is damaged or truncated ({type(exc).__name__}: {exc})"
        ) from None


def _read_container(path: str, check_data: bool = True) -> dict:
    with _opened(path) as (raw, tiff):
        return _from_rawpy(path, raw, tiff, check_data)


def libraw_render(path: str | os.PathLike, linear: bool = False) -> torch.Tensor:
    """LibRaw's AHD render of a raw file that ``read_raw`` accepts: camera WB, sRGB primaries and
    sRGB gamma, sensor orientation; (3, H, W) in [0, 1] on the visible area. No auto-brightening,
    and the file's white level as it is (``adjust_maximum_thr=0``: LibRaw's default lowers it to the
    data maximum of each image above 75 % of it, so a crop and its frame would render differently).
    ``linear=True``: the AHD demosaic alone, linear camera RGB without white balance, (x - black) /
    (white - black) (each site keeps its own sample)."""
    import rawpy

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise RawFileError(path, "no such file")
    if linear:
        options = dict(use_camera_wb=False, user_wb=[1.0, 1.0, 1.0, 1.0], gamma=(1, 1),
                       output_color=rawpy.ColorSpace.raw)
    else:
        options = dict(use_camera_wb=True, gamma=(2.4, 12.92), output_color=rawpy.ColorSpace.sRGB)
    with _opened(path) as (raw, tiff):
        _from_rawpy(path, raw, tiff)  # the same checks as read_raw (Bayer, pixel data present)
        rgb = raw.postprocess(no_auto_bright=True, output_bps=16, user_flip=0, adjust_maximum_thr=0.0, **options)
    import torch

    return torch.from_numpy(rgb.astype(np.float32) / 65535.0).permute(2, 0, 1)


def libraw_linear_means(path: str | os.PathLike, camera_wb: bool) -> torch.Tensor:
    """Per-channel means (R, G, B) of LibRaw's linear half-size render, with the camera's white
    balance or without it (LibRaw's default multipliers): what the SR-RAW scripts' WB is made of."""

    path = os.fspath(path)
    with _opened(path) as (raw, tiff):
        _from_rawpy(path, raw, tiff)
        rgb = raw.postprocess(use_camera_wb=camera_wb, no_auto_bright=True, output_bps=16, gamma=(1, 1),
                              half_size=True, adjust_maximum_thr=0.0)
    import torch

    return torch.from_numpy(rgb.reshape(-1, 3).astype(np.float64).mean(0)).float()


def _from_rawpy(path: str, raw, tiff: dict, check_data: bool = True) -> dict:
    import rawpy

    if tiff.get("tiff") and not tiff.get("dng") and not tiff.get("make") and tiff.get("photometric") != 32803:
        raise UnsupportedRawError(path, "a plain TIFF image, not a camera raw (no DNGVersion, no camera make, no "
                                        "CFA data)")
    if raw.raw_type != rawpy.RawType.Flat:
        raise UnsupportedRawError(path, "the raw data is not a single-plane colour mosaic (linear/demosaiced raw)")
    cfa = Cfa.from_rawpy(raw.raw_pattern, raw.color_desc)
    if cfa is None or raw.num_colors != 3:
        desc = raw.color_desc.decode(errors="replace")
        raise UnsupportedRawError(
            path, f"the colour filter array is not a 2x2 RGB Bayer tile (pattern {raw.raw_pattern.tolist()}, "
            f"colours {desc!r}); X-Trans and other non-Bayer sensors are not supported"
        )
    bayer = raw.raw_image_visible  # a view into LibRaw's buffer: converted (copied) below, before close
    height, width = bayer.shape
    if height < 2 or width < 2:
        raise CorruptRawError(path, f"the visible area is {height}x{width}, too small to hold a Bayer tile")
    if os.path.getsize(path) < _MIN_BYTES_PER_PIXEL * height * width:
        raise CorruptRawError(
            path, f"the file has {os.path.getsize(path)} bytes for a {height}x{width} mosaic: its pixel data is missing"
        )
    check_pixels(path, bayer, check_data)
    # An odd visible size would leave a partial 2x2 tile: trim the last row/column.
    bayer = bayer[: height - height % 2, : width - width % 2]

    black = np.asarray(raw.black_level_per_channel, dtype=np.float32)[raw.raw_pattern]
    check_levels(black, float(raw.white_level), bayer, lambda reason: CorruptRawError(path, reason))
    warned = check_level_tags(path, tiff.get("tags", {}), float(bayer.max()))
    for text in warned:
        log.warning("%s: %s", path, text)
    camera_wb = raw.camera_whitebalance
    if any("AsShotNeutral" in text for text in warned):
        camera_wb = (0.0, 0.0, 0.0, 0.0)  # LibRaw's reading of it is not a white balance either
    gains, wb_source = _wb_gains(camera_wb, raw.daylight_whitebalance)
    daylight, daylight_source = _wb_gains((0.0, 0.0, 0.0, 0.0), raw.daylight_whitebalance)
    orientation = 1 if any("Orientation" in text for text in warned) else _FLIP_TO_EXIF.get(int(raw.sizes.flip), 1)
    focal = float(raw.other.focal_length) if raw.other.focal_length > 0 else None
    iso = float(raw.other.iso_speed) if raw.other.iso_speed > 0 else None
    shutter = float(raw.other.shutter_speed) if raw.other.shutter_speed > 0 else None
    return {"bayer": bayer.astype(np.float32), "cfa": cfa, "black_level": black, "white_level": float(raw.white_level),
            "wb_gains": gains, "wb_source": wb_source, "daylight_wb_gains": daylight if daylight_source == "daylight"
            else None, "cam_to_srgb": _cam_to_srgb(raw), "focal_length_mm": focal,
            "make": tiff.get("make"), "model": tiff.get("model"),
            "orientation": orientation, "iso": iso, "exposure_time_s": shutter,
            "noise_profile": tiff.get("noise_profile"), "path": path,
            "exif": tiff.get("exif") or _exif_from_libraw(raw), "gps": tiff.get("gps") or {}}


def _exif_from_libraw(raw) -> dict:
    """The EXIF facts LibRaw decodes from a raw that is not TIFF-based (tag number -> value)."""
    import datetime

    other, facts = raw.other, {}
    if other.shutter_speed > 0:
        facts[33434] = float(other.shutter_speed)
    if other.aperture > 0:
        facts[33437] = float(other.aperture)
    if other.iso_speed > 0:
        facts[34855] = int(other.iso_speed)
    if other.focal_length > 0:
        facts[37386] = float(other.focal_length)
    stamp = other.timestamp
    if isinstance(stamp, (int, float)) and stamp > 0:
        stamp = datetime.datetime.fromtimestamp(stamp)
    if isinstance(stamp, datetime.datetime) and stamp.year > 1970:
        facts[36867] = stamp.strftime("%Y:%m:%d %H:%M:%S")
    return facts


def _wb_gains(camera_wb: Sequence[float], daylight_wb: Sequence[float]) -> tuple[np.ndarray, str]:
    """Gains R, G, B normalised to G from LibRaw's (R, G, B, G2) multipliers; G2 == 0 means "as G".

    Falls back to the daylight multipliers, then to unity, when the camera's are missing."""
    for values, source in ((camera_wb, "camera"), (daylight_wb, "daylight")):
        r, g, b, g2 = (float(v) for v in values)
        green = g if g > 0 else g2
        if green > 0 and r > 0 and b > 0:
            return np.array([r / green, 1.0, b / green], dtype=np.float32), source
    return np.ones(3, dtype=np.float32), "none"


def _cam_to_srgb(raw) -> np.ndarray | None:
    """White-balanced camera RGB -> linear sRGB: from the XYZ->camera matrix when the file has one,
    else LibRaw's own camera->sRGB matrix (DNGs store ColorMatrix there), else None."""
    xyz_to_cam = np.asarray(raw.rgb_xyz_matrix, dtype=np.float64)[:3]
    if np.abs(xyz_to_cam).sum() > 0:
        matrix = cam_to_srgb_from_xyz_to_cam(xyz_to_cam)
    else:
        rgb_cam = np.asarray(raw.color_matrix, dtype=np.float64)[:, :3]
        if np.abs(rgb_cam).sum() == 0:
            return None
        matrix = rgb_cam
    if not np.isfinite(matrix).all():
        return None
    return matrix.astype(np.float32)


def _tiff_facts(path: str) -> dict:
    """What the TIFF structure of a TIFF-based raw says: make, model, NoiseProfile, the raw IFD's
    compression, and whether any image data lies beyond the end of the file (truncation).
    Files that are not TIFF-based (or that tifffile cannot parse) give {}."""
    with open(path, "rb") as fh:
        if fh.read(4) not in _TIFF_MAGIC:
            return {}
    import tifffile

    facts: dict = {"tiff": True}
    size = os.path.getsize(path)
    try:
        with tifffile.TiffFile(path) as tf:
            pages = list(tf.pages)
            for page in list(pages):
                for sub in getattr(page, "pages", None) or []:
                    pages.append(sub)
            first = tf.pages[0].tags
            facts["dng"] = 50706 in first
            if 262 in first:
                facts["photometric"] = int(first[262].value)
            for code, key in ((271, "make"), (272, "model")):
                if code in first and str(first[code].value).strip():
                    facts[key] = str(first[code].value).strip("\x00 ")
            if "model" not in facts and 50708 in first:
                facts["model"] = str(first[50708].value).strip("\x00 ")
            if 51041 in first:
                profile = np.asarray(first[51041].value, dtype=np.float64).reshape(-1, 2)
                if np.isfinite(profile).all() and (profile >= 0).all():
                    facts["noise_profile"] = profile.astype(np.float32)
                else:
                    log.warning("%s: its NoiseProfile %s is not finite and non-negative; ignored", path,
                                profile.ravel().tolist())
            if facts["dng"]:
                facts["tags"] = _level_tags(first, pages)
            facts["exif"], facts["gps"] = _capture_tags(first)
            for page in pages:
                tags = page.tags
                if 254 in tags and int(tags[254].value) & 1:
                    continue  # reduced-resolution preview
                if 259 in tags and int(tags[259].value) == _VC5_COMPRESSION:
                    facts["compression"] = _VC5_COMPRESSION
                offsets, counts = page.dataoffsets, page.databytecounts
                if offsets and counts:
                    end = max(o + c for o, c in zip(offsets, counts))
                    if end > size:
                        facts["truncated"] = (
                            f"the file ends at byte {size} but its image data runs to byte {end}: it is truncated"
                        )
    except Exception:  # noqa: BLE001 - not parseable as TIFF; LibRaw decides
        return facts
    return facts


# The EXIF and GPS tags a rendered image carries over from its raw (name as tifffile reads it -> tag).
EXIF_KEPT = {"ExposureTime": 33434, "FNumber": 33437, "ExposureProgram": 34850, "ISOSpeedRatings": 34855,
             "DateTimeOriginal": 36867, "DateTimeDigitized": 36868, "ExposureBiasValue": 37380, "MeteringMode": 37383,
             "Flash": 37385, "FocalLength": 37386, "FocalLengthIn35mmFilm": 41989, "BodySerialNumber": 42033,
             "LensSpecification": 42034, "LensMake": 42035, "LensModel": 42036}
GPS_KEPT = {"GPSVersionID": 0, "GPSLatitudeRef": 1, "GPSLatitude": 2, "GPSLongitudeRef": 3, "GPSLongitude": 4,
            "GPSAltitudeRef": 5, "GPSAltitude": 6, "GPSTimeStamp": 7, "GPSSatellites": 8, "GPSMapDatum": 18,
            "GPSDateStamp": 29}


def _plain_tag(value):
    """A tag value as plain Python (text, int, float, (numerator, denominator), or tuples of them)."""
    if isinstance(value, bytes):
        return value.decode("latin-1").rstrip("\x00")
    if isinstance(value, (tuple, list)):
        items = tuple(_plain_tag(v) for v in value)
        return items if len(items) != 2 or not all(isinstance(v, int) for v in items) else (items[0], items[1])
    return value.item() if hasattr(value, "item") else value


def _capture_tags(first) -> tuple[dict, dict]:
    """The EXIF and GPS tags of IFD 0's sub-IFDs that ``EXIF_KEPT`` and ``GPS_KEPT`` name, by number."""
    found = []
    for code, kept in ((34665, EXIF_KEPT), (34853, GPS_KEPT)):
        block = first[code].value if code in first else None
        found.append({kept[name]: _plain_tag(value) for name, value in block.items() if name in kept}
                     if isinstance(block, dict) else {})
    return found[0], found[1]


_LEVEL_TAGS = {258: "BitsPerSample", 50714: "BlackLevel", 50717: "WhiteLevel"}


def _level_tags(first, pages) -> dict:
    """The DNG tags that say how to read the samples, as stored: the CFA IFD's BitsPerSample,
    BlackLevel, WhiteLevel (the levels from IFD 0 when the CFA IFD has none), and IFD 0's AsShotNeutral
    and Orientation; each value as a list of floats (empty when the tag is present but holds nothing)."""
    cfa = next((p for p in pages if 262 in p.tags and int(p.tags[262].value) == 32803), None)
    found = {}
    for code, name in _LEVEL_TAGS.items():
        for tags in ((cfa.tags,) if cfa is not None else ()) + ((first,) if code != 258 else ()):
            if code in tags:
                found[name] = _tag_numbers(tags[code])
                break
    for code, name in ((50728, "AsShotNeutral"), (274, "Orientation")):
        if code in first:
            found[name] = _tag_numbers(first[code])
    if cfa is not None and 259 in cfa.tags and int(cfa.tags[259].value) == 1:  # uncompressed: its size is known
        found["StoredBytes"] = float(sum(cfa.databytecounts or ()))
        found["Pixels"] = float(cfa.imagewidth * cfa.imagelength)
    return found


def _tag_numbers(tag) -> list[float]:
    """A tag's value as floats (rationals divided; a zero denominator gives NaN)."""
    value = tag.value
    values = list(value) if isinstance(value, (tuple, list, np.ndarray)) else [value]
    if tag.dtype_name in ("RATIONAL", "SRATIONAL") or str(getattr(tag, "dtype", "")) in ("2I", "2i"):
        pairs = values if values and isinstance(values[0], (tuple, list)) else list(zip(values[::2], values[1::2]))
        return [float(a) / float(b) if b else float("nan") for a, b in pairs]
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        return [float("nan")]


def check_level_tags(path: str, tags: dict, data_max: float) -> list[str]:
    """CorruptRawError for stored levels LibRaw would replace by guesses (a BitsPerSample that cannot
    hold the samples, a BlackLevel or WhiteLevel that is empty, not finite, 0 for white, or not below
    white); the fallbacks taken for a white balance or orientation that cannot be used, as warnings."""
    bits = tags.get("BitsPerSample")
    if bits is not None and (not bits or not all(np.isfinite(bits)) or min(bits) < 8 or max(bits) > 32
                             or data_max > 2 ** min(bits) - 1):
        raise CorruptRawError(path, f"its BitsPerSample {bits[:4]} cannot hold samples up to {data_max:g}")
    stored, pixels = tags.get("StoredBytes"), tags.get("Pixels")
    if bits and stored and pixels and abs(stored * 8 / pixels - bits[0]) >= 1:
        raise CorruptRawError(path, f"its BitsPerSample says {bits[0]:g} but its uncompressed data holds "
                                    f"{stored * 8 / pixels:.3g} bits per sample")
    white = tags.get("WhiteLevel")
    if white is not None and (not white or not all(np.isfinite(white)) or min(white) <= 0):
        raise CorruptRawError(path, f"its WhiteLevel {white[:4]} is not a positive number")
    black = tags.get("BlackLevel")
    if black is not None and (not black or not all(np.isfinite(black)) or min(black) < 0
                              or (white and max(black) >= min(white))):
        raise CorruptRawError(path, f"its BlackLevel {black[:4]} is not a number between 0 and the white level")
    warnings = []
    neutral = tags.get("AsShotNeutral")
    if neutral is not None and (len(neutral) < 3 or not all(np.isfinite(neutral)) or min(neutral) <= 0):
        warnings.append(f"its AsShotNeutral {neutral[:3]} is not a white balance; the daylight or unity gains "
                        "are used instead (wb_source says which)")
    orientation = tags.get("Orientation")
    if orientation is not None and (len(orientation) != 1 or orientation[0] not in range(1, 9)):
        warnings.append(f"its Orientation {orientation[:2]} is not an EXIF code 1..8; the image is kept as stored")
    return warnings


def _black_tile(path: str, black_level) -> np.ndarray:
    """A headerless dump's black level as its 2x2 tile: one value, 4 row-major values, or 2x2."""
    black = np.asarray(black_level, dtype=np.float32)
    if black.size == 1:
        return np.full((2, 2), float(black.reshape(-1)[0]), dtype=np.float32)
    if black.size != 4:
        raise ConfigError(f"{path}: black_level takes one value or 4 (the 2x2 tile, row-major), got {black.size}")
    return black.reshape(2, 2)
