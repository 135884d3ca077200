"""Raw I/O against real files (rawpy/LibRaw), headerless dumps, DNG round trips and bad input."""
import json
import os

import numpy as np
import pytest
import torch
from conftest import SAMPLE, shared_file

import rawzoom_isp as rz
from rawzoom_isp.errors import (
    ConfigError,
    CorruptRawError,
    RawFileError,
    RawShapeError,
    RawZoomError,
    UnsupportedRawError,
)

# The table of ../shared/data/raw/MANIFEST.md: file, CFA, visible (H, W), black per position,
# white, WB (R, G, B normalised to G), focal length (mm), make, model.
MANIFEST = [
    ("dng/gopro_hero7_gopr9231_full.dng", "RGGB", (3000, 4000), [[0, 0], [0, 0]], 16383, (1.770, 1, 1.895), 3.0, "GoPro", "HERO7 Black"),  # noqa: E501
    ("dng/gopro_hero6_gopr0024_full.dng", "RGGB", (3000, 4000), [[0, 0], [0, 0]], 16383, (1.914, 1, 1.750), 3.0, "GoPro", "HERO6 Black"),  # noqa: E501
    ("dng/gopro_hero7_gopr9231_crop1024x768_y1116_x1488.dng", "RGGB", (768, 1024), [[0, 0], [0, 0]], 16383, (1.770, 1, 1.895), 3.0, "GoPro", "HERO7 Black"),  # noqa: E501
    ("dng/gopro_hero6_gopr0024_crop1024x768_y1116_x1488.dng", "RGGB", (768, 1024), [[0, 0], [0, 0]], 16383, (1.914, 1, 1.750), 3.0, "GoPro", "HERO6 Black"),  # noqa: E501
    ("dng/gopro_fusion_gpfr7066_crop1024x768_y1116_x1040.dng", "RGGB", (768, 1024), [[0, 0], [0, 0]], 16383, (2.026, 1, 1.648), 3.0, "GoPro", "FUSION"),  # noqa: E501
    ("dng/gopro_fusion_gpbk7066_crop1024x768_y1116_x1040.dng", "RGGB", (768, 1024), [[0, 0], [0, 0]], 16383, (2.026, 1, 1.648), 3.0, "GoPro", "FUSION"),  # noqa: E501
    # BL by colour (R, G, B, G2) = 128, 128, 128, 127 -> by position [[R, G], [G2, B]]; WB 2226/1024, 1485/1024.
    ("cr2/canon_eos30d_IMG_5952.cr2", "RGGB", (2348, 3522), [[128, 128], [127, 128]], 4095, (2226 / 1024, 1, 1485 / 1024), 22.0, "Canon", "Canon EOS 30D"),  # noqa: E501
]


@pytest.mark.parametrize("entry", MANIFEST, ids=[m[0].split("/")[-1] for m in MANIFEST])
def test_metadata_matches_manifest(entry):
    name, cfa, shape, black, white, wb, focal, make, model = entry
    raw = rz.read_raw(shared_file(name))
    assert raw.cfa == cfa
    assert raw.shape == shape
    assert raw.bayer.dtype == torch.float32
    assert raw.black_level.tolist() == black
    assert raw.white_level == white
    assert raw.wb_source == "camera"
    np.testing.assert_allclose(raw.wb_gains.numpy(), wb, atol=1e-3)
    assert raw.focal_length_mm == focal
    assert (raw.make, raw.model) == (make, model)
    assert raw.cam_to_srgb is not None
    # cam_to_srgb maps camera white to sRGB white (rows of a WB'd camera matrix sum to 1).
    np.testing.assert_allclose(raw.cam_to_srgb.sum(1).numpy(), 1.0, atol=2e-3)
    assert float(raw.bayer.max()) <= white


def test_gopro_orientation_and_noise_profile():
    raw = rz.read_raw(shared_file("dng/gopro_hero7_gopr9231_crop1024x768_y1116_x1488.dng"))
    assert raw.orientation == 2  # rawpy flip 1: mirrored left-right
    np.testing.assert_allclose(raw.noise_profile.numpy(), [[0.000393625, 1.22976e-07]], rtol=1e-5)


def test_crop_file_equals_window_of_full_frame():
    full = rz.read_raw(shared_file("dng/gopro_hero7_gopr9231_full.dng"))
    crop = rz.read_raw(shared_file("dng/gopro_hero7_gopr9231_crop1024x768_y1116_x1488.dng"))
    assert torch.equal(full.bayer[1116:1884, 1488:2512], crop.bayer)
    assert torch.equal(full.crop(1116, 1488, 768, 1024).bayer, crop.bayer)


def test_canon_visible_area_excludes_margins():
    import rawpy

    path = shared_file("cr2/canon_eos30d_IMG_5952.cr2")
    raw = rz.read_raw(path)
    with rawpy.imread(str(path)) as r:
        full = r.raw_image.copy()
    assert torch.equal(raw.bayer, torch.from_numpy(full[12:12 + 2348, 74:74 + 3522].astype(np.float32)))
    assert float(raw.bayer.max()) == 1487


@pytest.mark.parametrize("offset", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_crop_follows_cfa_phase(sample_raw, offset):
    dy, dx = offset
    raw = rz.RawImage(bayer=sample_raw.bayer, cfa="RGGB", black_level=[[1, 2], [3, 4]], white_level=16383)
    crop = raw.crop(dy, dx, 8, 8)
    expected = {(0, 0): "RGGB", (0, 1): "GRBG", (1, 0): "GBRG", (1, 1): "BGGR"}[offset]
    assert crop.cfa == expected
    assert crop.black_level[0, 0] == raw.black_level[dy, dx]


HEADERLESS = [
    ("headerless/rawpipe_colorchecker_rggb_1424x968_u16le.raw", (968, 1424), 256, 4095, (240, 2020)),
    ("headerless/fastopenisp_chart_rggb_1920x1080_10bit_u16le.raw", (1080, 1920), 0, 1023, (0, 1020)),
]


@pytest.mark.parametrize("entry", HEADERLESS, ids=["rawpipe", "fastopenisp"])
def test_headerless_dump(entry):
    name, shape, black, white, (lo, hi) = entry
    path = shared_file(name)
    raw = rz.read_raw(path, shape=shape, cfa="RGGB", black_level=black, white_level=white)
    assert raw.shape == shape and raw.cfa == "RGGB"
    assert raw.black_level.tolist() == [[black] * 2] * 2
    assert raw.wb_source == "none" and raw.cam_to_srgb is None
    assert lo - 20 <= float(raw.bayer.min()) and float(raw.bayer.max()) <= hi
    assert torch.equal(raw.bayer, torch.from_numpy(np.fromfile(path, "<u2").reshape(shape).astype(np.float32)))


def test_headerless_wrong_size_is_named():
    path = shared_file("headerless/rawpipe_colorchecker_rggb_1424x968_u16le.raw")
    with pytest.raises(RawShapeError, match=r"1000x1424.*needs 2848000 bytes.*has 2756864.*968 rows"):
        rz.read_raw(path, shape=(1000, 1424), cfa="RGGB", black_level=256, white_level=4095)
    with pytest.raises(RawShapeError, match="even"):
        rz.read_raw(path, shape=(967, 1424), cfa="RGGB", black_level=256, white_level=4095)
    with pytest.raises(ConfigError, match="above the white level"):
        rz.read_raw(path, shape=(968, 1424), cfa="RGGB", black_level=256, white_level=1023)
    with pytest.raises(ConfigError, match="not below the white level"):
        rz.read_raw(path, shape=(968, 1424), cfa="RGGB", black_level=5000, white_level=4095)
    with pytest.raises(ConfigError, match="finite"):
        rz.read_raw(path, shape=(968, 1424), cfa="RGGB", black_level=256, white_level=float("nan"))
    with pytest.raises(ConfigError, match="one value or 4"):
        rz.read_raw(path, shape=(968, 1424), cfa="RGGB", black_level=[1, 2, 3], white_level=4095)
    with pytest.raises(ConfigError, match="not a numpy dtype"):
        rz.read_raw(path, shape=(968, 1424), cfa="RGGB", black_level=256, white_level=4095, dtype="foo")
    with pytest.raises(ValueError, match="needs shape, cfa"):
        rz.read_raw(path, shape=(968, 1424))
    with pytest.raises(ValueError, match="unknown CFA"):
        rz.read_raw(path, shape=(968, 1424), cfa="RGBG", black_level=0, white_level=4095)


@pytest.mark.parametrize(
    "name, error, reason",
    [
        ("unsupported/gopro_hero6_gopr0024.gpr", UnsupportedRawError, "GPR"),
        ("truncated/nikon_d1_truncated.nef", CorruptRawError, "truncated"),
        ("truncated/canon_powershot_s90_truncated.cr2", CorruptRawError, "truncated"),
        ("truncated/canon_powershot_sd450_truncated.dng", CorruptRawError, "truncated"),
        ("truncated/exiftool_canon350d_stripped.dng", CorruptRawError, "pixel data is missing"),
    ],
)
def test_bad_files_get_clear_errors(name, error, reason):
    path = shared_file(name)
    with pytest.raises(error, match=reason) as info:
        rz.read_raw(path)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)


def test_not_a_raw_and_missing_file(tmp_path):
    text = tmp_path / "notes.dng"
    text.write_text("this is not a raw file\n" * 100)
    with pytest.raises(UnsupportedRawError, match="notes.dng"):
        rz.read_raw(text)
    with pytest.raises(RawFileError, match="no such file"):
        rz.read_raw(tmp_path / "absent.cr2")


def _write_cfa_dng(path, data, cfa_dim, cfa_codes, photometric=32803, samples=1):
    import tifffile

    tags = [(50706, "B", 4, (1, 4, 0, 0), True), (50717, "I", 1, 4095, True)]
    if cfa_dim:
        tags += [(33421, "H", 2, cfa_dim, True), (33422, "B", len(cfa_codes), bytes(cfa_codes), True)]
    tifffile.imwrite(path, data, photometric=photometric, subfiletype=0, extratags=tags,
                     planarconfig="contig" if samples > 1 else None)


def test_xtrans_dng_is_unsupported(tmp_path):
    xtrans = [1, 1, 0, 1, 1, 2, 1, 1, 2, 1, 1, 0, 2, 0, 1, 0, 2, 1,
              1, 1, 2, 1, 1, 0, 1, 1, 0, 1, 1, 2, 0, 2, 1, 2, 0, 1]
    path = tmp_path / "xtrans.dng"
    _write_cfa_dng(path, np.random.randint(0, 4000, (96, 96), dtype=np.uint16), (6, 6), xtrans)
    with pytest.raises(UnsupportedRawError, match="not a 2x2 RGB Bayer"):
        rz.read_raw(path)


def test_linear_dng_is_not_bayer(tmp_path):
    path = tmp_path / "linear.dng"
    _write_cfa_dng(path, np.random.randint(0, 4000, (64, 64, 3), dtype=np.uint16), None, None,
                   photometric=34892, samples=3)
    with pytest.raises(UnsupportedRawError):
        rz.read_raw(path)


@pytest.mark.parametrize("cfa", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_dng_round_trip(tmp_path, cfa):
    import rawpy

    generator = torch.Generator().manual_seed(1)
    bayer = torch.randint(60, 4000, (48, 64), generator=generator).float()
    raw = rz.RawImage(
        bayer=bayer, cfa=cfa, black_level=[[60, 61], [62, 63]], white_level=4000,
        wb_gains=[2.1, 1.0, 1.6], cam_to_srgb=[[1.7, -0.5, -0.2], [-0.3, 1.5, -0.2], [0.0, -0.4, 1.4]],
        make="Acme", model="Zoom 1", orientation=6, focal_length_mm=35.5,
        noise_profile=[[1e-4, 2e-6]], wb_source="camera",
    )
    path = tmp_path / f"{cfa}.dng"
    rz.write_dng(path, raw)
    back = rz.read_raw(path)
    assert torch.equal(back.bayer, raw.bayer)
    assert back.cfa == cfa
    assert torch.equal(back.black_level, raw.black_level)
    assert back.white_level == raw.white_level
    torch.testing.assert_close(back.wb_gains, raw.wb_gains, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(back.cam_to_srgb, raw.cam_to_srgb, rtol=0, atol=2e-3)
    assert (back.make, back.model, back.orientation, back.focal_length_mm) == ("Acme", "Zoom 1", 6, 35.5)
    torch.testing.assert_close(back.noise_profile, raw.noise_profile)
    torch.testing.assert_close(back.meta.noise, torch.tensor([[1e-4, 2e-6]] * 3))  # one pair for every colour
    # LibRaw itself sees the same mosaic, pattern and levels.
    with rawpy.imread(str(path)) as r:
        assert np.array_equal(r.raw_image_visible, bayer.numpy().astype(np.uint16))
        assert np.array_equal(np.asarray(r.black_level_per_channel)[r.raw_pattern], raw.black_level.numpy())


def test_noise_profiles_of_every_form_become_one_pair_per_colour():
    from rawzoom_isp.raw.image import colour_noise

    per_colour = torch.tensor([[1e-4, 1e-6], [2e-4, 2e-6], [3e-4, 3e-6]])
    torch.testing.assert_close(colour_noise(per_colour), per_colour)  # a DNG NoiseProfile of 3 planes
    torch.testing.assert_close(colour_noise([[1e-4, 1e-6]]), per_colour[:1].expand(3, 2))
    packed = torch.tensor([[1e-4, 1e-6], [2e-4, 2e-6], [4e-4, 4e-6], [3e-4, 3e-6]])  # [R, Gr, Gb, B]
    torch.testing.assert_close(colour_noise(packed), torch.tensor([[1e-4, 1e-6], [3e-4, 3e-6], [3e-4, 3e-6]]))
    for unusable in (None, [[1e-4, -1e-6]], [[float("nan"), 0.0]], torch.ones(2, 2)):
        assert colour_noise(unusable) is None
    raw = rz.RawImage(bayer=torch.zeros(4, 4), cfa="RGGB", black_level=0, white_level=1023)
    assert raw.meta.noise is None


def test_real_file_round_trips_through_dng(tmp_path):
    raw = rz.read_raw(SAMPLE)
    rz.write_dng(tmp_path / "copy.dng", raw)
    back = rz.read_raw(tmp_path / "copy.dng")
    assert torch.equal(back.bayer, raw.bayer)
    torch.testing.assert_close(back.wb_gains, raw.wb_gains, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(back.cam_to_srgb, raw.cam_to_srgb, atol=2e-3, rtol=0)


def test_write_dng_refuses_bad_data_and_leaves_nothing(tmp_path):
    raw = rz.RawImage(bayer=torch.arange(1024.0).reshape(32, 32) + 0.4, cfa="RGGB", black_level=0, white_level=1023)
    with pytest.raises(ValueError, match="integers"):
        rz.write_dng(tmp_path / "bad.dng", raw)
    assert os.listdir(tmp_path) == []
    rz.write_dng(tmp_path / "rounded.dng", raw, quantize=True)
    assert torch.equal(rz.read_raw(tmp_path / "rounded.dng").bayer, torch.arange(1024.0).reshape(32, 32))
    odd = rz.RawImage(bayer=torch.ones(31, 32), cfa="RGGB", black_level=0, white_level=255)
    with pytest.raises(RawShapeError):
        rz.write_dng(tmp_path / "odd.dng", odd)
    assert sorted(os.listdir(tmp_path)) == ["rounded.dng"]


def test_describe_is_json_ready(sample_raw):
    facts = json.loads(json.dumps(sample_raw.describe()))
    assert facts["cfa"] == "RGGB" and facts["model"] == "HERO7 Black"


def test_errors_share_one_root():
    for cls in (UnsupportedRawError, CorruptRawError, RawShapeError, rz.errors.ConfigError,
                rz.errors.PipelineError, rz.errors.WeightsUnavailableError, rz.errors.ShapeError):
        assert issubclass(cls, RawZoomError)


def test_plain_tiff_renamed_dng_is_not_a_raw(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "grey.dng", (np.random.default_rng(0).random((64, 96)) * 60000).astype(np.uint16))
    with pytest.raises(UnsupportedRawError, match="plain TIFF"):
        rz.read_raw(tmp_path / "grey.dng")


def test_missing_pixel_data_is_refused_unless_accepted(tmp_path, sample_raw):
    damaged = sample_raw.crop(0, 0, 256, 256)
    damaged.bayer[64:] = 0  # 75 % of the frame lost
    rz.write_dng(tmp_path / "damaged.dng", damaged)
    with pytest.raises(CorruptRawError, match="75% of the rows"):
        rz.read_raw(tmp_path / "damaged.dng")
    assert rz.read_raw(tmp_path / "damaged.dng", check_data=False).shape == (256, 256)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_oriented_raw_renders_as_the_displayed_image(sample_raw, orientation):
    """raw.oriented(): the mosaic turned as displayed, with its CFA and black tile; rendering it equals
    turning the render of the stored mosaic."""
    from dataclasses import replace

    raw = replace(sample_raw.crop(1, 0, 64, 96), orientation=orientation)
    turned = raw.oriented()
    assert turned.orientation == 1 and turned.shape == raw.display_shape
    expected = rz.isp.functional.apply_orientation(rz.Pipeline.classical()(raw), orientation)
    torch.testing.assert_close(rz.Pipeline.classical()(turned), expected, atol=1e-6, rtol=0)


def test_raw_files_expands_folders_and_names_what_is_missing(tmp_path):
    from rawzoom_isp.errors import MissingDataError
    from rawzoom_isp.raw import raw_files

    (tmp_path / "b.DNG").write_bytes(b"x")
    (tmp_path / "a.cr2").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    assert raw_files([tmp_path, tmp_path / "notes.txt"]) == [str(tmp_path / "a.cr2"), str(tmp_path / "b.DNG"),
                                                             str(tmp_path / "notes.txt")]
    with pytest.raises(MissingDataError, match="no raw files"):
        raw_files([tmp_path / "empty"])
    with pytest.raises(MissingDataError, match="no such file or folder"):
        raw_files([tmp_path / "absent.dng"])


def test_centre_crop_is_the_display_centred_fraction_in_whole_tiles():
    raw = rz.RawImage(bayer=torch.arange(60 * 80).reshape(60, 80).float(), cfa="RGGB", black_level=0,
                      white_level=1e4, orientation=6)  # displayed 80 x 60
    centre = raw.crop_centre(4)
    assert centre.display_shape == (20, 16)  # 80 / 4 = 20 rows; 60 / 4 = 15 columns, rounded to 16
    assert torch.equal(centre.bayer, raw.crop_displayed(30, 22, 20, 16).bayer)
    assert raw.crop_centre(2.5).display_shape == (32, 24)
    for bad in (1, 0.5, float("nan")):
        with pytest.raises(ConfigError, match="more than 1x"):
            raw.crop_centre(bad)


def test_normalised_mosaic_subtracts_the_black_tile_and_scales_to_white():
    raw = rz.RawImage(bayer=torch.tensor([[110.0, 1000.0], [70.0, 2000.0]]).repeat(2, 2), cfa="RGGB",
                      black_level=[[100, 60], [60, 100]], white_level=1100)
    expected = torch.tensor([[10 / 1000, 940 / 1040], [10 / 1040, 1.0]]).repeat(2, 2)[None]
    torch.testing.assert_close(raw.normalised(), expected)
    assert float(raw.normalised(clip=False)[0, 1, 1]) == pytest.approx(1900 / 1000)
    assert raw.normalised(dtype=torch.float64).dtype == torch.float64
