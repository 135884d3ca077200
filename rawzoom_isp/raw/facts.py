"""What a raw's facts must satisfy, and how they are described: numpy only (``rawzoom info`` never
imports torch), imported by the reader and by RawImage alike."""
from __future__ import annotations

import numpy as np


def check_levels(black: np.ndarray, white: float, data: np.ndarray | None, error) -> None:
    """Levels that make an image: finite, black at least 0 and below white; samples finite and not
    above white. ``error(reason)`` builds the exception (the file's fault, or the caller's)."""
    black = np.asarray(black, dtype=np.float64)
    if not (np.isfinite(white) and np.isfinite(black).all()):
        raise error(f"black level {black.ravel().tolist()} and white level {white} must be finite numbers")
    if black.min() < 0 or black.max() >= white:
        raise error(f"the black level {black.max():g} is not below the white level {white:g} (or is negative): "
                    "every pixel would be black or white")
    if data is not None:
        if not np.isfinite(data).all():
            raise error("the samples hold NaN or infinite values")
        if data.size and float(data.max()) > white:
            raise error(f"samples reach {float(data.max()):g}, above the white level {white:g}: wrong white level "
                        "or dtype?")


def _plain(value):
    """A value as JSON-able Python: arrays and tensors as (nested) lists, non-finite numbers as None."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    array = np.asarray(value, dtype=np.float64)
    return _plain(float(array)) if array.ndim == 0 else [_plain(v) for v in array.tolist()]


def describe_raw(facts) -> dict:
    """A raw's metadata as plain, JSON-safe Python values (``rawzoom info``): ``facts`` from
    ``read_raw_facts`` or the fields of a RawImage; non-finite values become None."""
    bayer = np.asarray(facts["bayer"])
    described = {key: _plain(facts.get(key)) for key in ("path", "make", "model")}
    described.update(height=int(bayer.shape[0]), width=int(bayer.shape[1]), cfa=facts["cfa"])
    for key in ("black_level", "white_level", "wb_gains", "wb_source", "daylight_wb_gains", "cam_to_srgb",
                "focal_length_mm",
                "orientation", "iso", "exposure_time_s", "noise_profile"):
        described[key] = _plain(facts.get(key))
    described.update(bayer_min=_plain(float(bayer.min())), bayer_max=_plain(float(bayer.max())))
    return described
