"""DNG tags whose stored values cannot be right: each must be a clean error, or a documented fallback
with a warning that names the file, never a silently different image (rc 0 with lifted blacks, two
stops dark, a mirrored frame). The DNGs are written here with tifffile, tag by tag."""
import logging

import numpy as np
import pytest
import tifffile
from conftest import SAMPLE
from forked import in_child

import rawzoom_isp as rz

GOOD = {"BitsPerSample": 16, "BlackLevel": (0, 0, 0, 0), "WhiteLevel": 16383, "AsShotNeutral": (0.565, 1.0, 0.528),
        "Orientation": 1}


def _dng(path, **changes):
    """A 256 x 256 crop of the bundled raw as a DNG, its tags as GOOD says with ``changes``; a value
    None leaves the tag out; ("raw", dtype, count, value) writes it as given."""
    raw = rz.read_raw(SAMPLE).crop(0, 0, 256, 256)
    values = {**GOOD, **changes}
    tags = [(50706, "B", 4, (1, 4, 0, 0), True), (33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True),
            (50713, "H", 2, (2, 2), True), (50708, "s", 0, "fuzz", True), (271, "s", 0, "GoPro", True)]
    codes = {"BlackLevel": (50714, "d"), "WhiteLevel": (50717, "I"), "AsShotNeutral": (50728, "d"),
             "Orientation": (274, "H")}
    for name, (code, dtype) in codes.items():
        value = values[name]
        if value is None:
            continue
        if isinstance(value, tuple) and value and value[0] == "raw":
            tags.append((code, *value[1:], True))
        else:
            value = value if isinstance(value, tuple) else (value,)
            tags.append((code, dtype, len(value), value, True))
    if "LinearizationTable" in values:
        table = values["LinearizationTable"]
        tags.append((50712, "H", len(table), tuple(table), True))
    data = raw.bayer.numpy().astype(np.uint16)
    tifffile.imwrite(path, data, photometric=32803, subfiletype=0, extratags=tags, software="fuzz")
    if values["BitsPerSample"] != 16:
        with tifffile.TiffFile(path, mode="r+b") as tif:
            tif.pages[0].tags[258].overwrite(values["BitsPerSample"])
    return path


def _read(path):
    raw = rz.read_raw(path)
    return {"black": float(raw.black_level.max()), "white": raw.white_level, "wb": raw.wb_source,
            "orientation": raw.orientation, "max": float(raw.bayer.max())}


CASES = {
    "bits-1": dict(BitsPerSample=1), "bits-7": dict(BitsPerSample=7), "bits-8": dict(BitsPerSample=8),
    "bits-12": dict(BitsPerSample=12), "bits-0": dict(BitsPerSample=0),
    "black-nan": dict(BlackLevel=(float("nan"),) * 4), "black-inf": dict(BlackLevel=(float("inf"),) * 4),
    "black-huge": dict(BlackLevel=(4294967295.0,) * 4), "white-0": dict(WhiteLevel=0),
    "black-above-white": dict(BlackLevel=(20000.0,) * 4),
}
FALLBACKS = {
    "neutral-zero": (dict(AsShotNeutral=(0.0, 1.0, 0.0)), "AsShotNeutral"),
    "neutral-nan": (dict(AsShotNeutral=(float("nan"), 1.0, 0.5)), "AsShotNeutral"),
    "orientation-0": (dict(Orientation=0), "Orientation"), "orientation-9": (dict(Orientation=9), "Orientation"),
    "orientation-65535": (dict(Orientation=65535), "Orientation"),
}


def test_the_good_dng_reads_as_written(tmp_path):
    facts = _read(_dng(tmp_path / "good.dng"))
    assert facts["black"] == 0 and facts["white"] == 16383 and facts["wb"] == "camera" and facts["orientation"] == 1


@pytest.mark.parametrize("name", sorted(CASES))
def test_impossible_levels_are_clean_errors(tmp_path, name):
    outcome = in_child(_read, _dng(tmp_path / f"{name}.dng", **CASES[name]))
    assert outcome[0] == "error" and "CorruptRawError" in outcome[1][2], outcome
    assert f"{name}.dng" in outcome[1][1]


@pytest.mark.parametrize("name", sorted(FALLBACKS))
def test_unusable_white_balance_or_orientation_falls_back_with_a_warning(tmp_path, name, caplog):
    changes, tag = FALLBACKS[name]
    path = _dng(tmp_path / f"{name}.dng", **changes)
    with caplog.at_level(logging.WARNING):
        facts = _read(path)
    assert any(tag in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)
    if tag == "Orientation":
        assert facts["orientation"] == 1
    else:
        assert facts["wb"] != "camera"


def test_a_linearization_table_is_applied_or_refused(tmp_path):
    """LibRaw applies a DNG's LinearizationTable: an identity table reads as without one; a table that
    maps everything to one value leaves no image, a clean error."""
    plain = rz.read_raw(_dng(tmp_path / "plain.dng")).bayer
    identity = rz.read_raw(_dng(tmp_path / "identity.dng", LinearizationTable=list(range(16384)))).bayer
    assert bool((identity == plain).all())
    outcome = in_child(_read, _dng(tmp_path / "flat.dng", LinearizationTable=[100] * 16384))
    assert outcome[0] == "error" and "RawZoomError" in outcome[1][2], outcome


@pytest.mark.parametrize("dtype, fill", [("<f2", "ramp"), ("<f4", "ramp"), ("<u2", "zero"), ("<u2", "one-value"),
                                         ("<u2", "above-white")])
def test_headerless_dumps_read_wrongly_are_refused(tmp_path, dtype, fill):
    """A wrong --dtype or a blank dump never renders black with rc 0: the raw path's blank-data checks,
    and samples that must use some of the range up to the white level."""
    data = {"ramp": np.arange(128 * 128) % 1000 + 100, "zero": np.zeros(128 * 128),
            "one-value": np.full(128 * 128, 700), "above-white": np.arange(128 * 128) % 9000}[fill]
    path = tmp_path / "dump.raw"
    data.astype("<u2").tofile(path)
    rows = 128 if dtype != "<f4" else 64
    with pytest.raises(rz.errors.RawZoomError):
        rz.read_raw(path, shape=(rows, 128), dtype=dtype, cfa="RGGB", black_level=0, white_level=4095)


@pytest.mark.parametrize("path, options", [
    (123, {}), (None, {}), (["a.dng"], {}),
    ("{RAW}", dict(shape="ab")), ("{RAW}", dict(shape=(968.5, 1424))), ("{RAW}", dict(shape=(968, 1424), cfa=5)),
    ("{RAW}", dict(shape=(968, 1424), black_level="a")), ("{RAW}", dict(shape=(968, 1424), white_level="x")),
    ("{RAW}", dict(shape=(968, 1424), offset=-4)), ("{RAW}", dict(shape=(968, 1424), dtype=5)),
    ("{SAMPLE}", dict(check_data="no")),
])
def test_read_raw_with_arguments_of_the_wrong_type(tmp_path, path, options):
    raw = tmp_path / "dump.raw"
    (np.arange(968 * 1424) % 3000 + 300).astype("<u2").tofile(raw)
    if isinstance(path, str):
        path = path.replace("{RAW}", str(raw)).replace("{SAMPLE}", str(SAMPLE))
    defaults = dict(cfa="RGGB", black_level=256, white_level=4095) if "shape" in options else {}
    with pytest.raises(rz.errors.RawZoomError):
        rz.read_raw(path, **{**defaults, **options})
