"""ISP stages and the Pipeline: math against references, graph checks, configs, plugins, LibRaw."""
import numpy as np
import pytest
import torch
from conftest import gpu, shared_file

import rawzoom_isp as rz
from rawzoom_isp.errors import ConfigError, PipelineError, ShapeError
from rawzoom_isp.isp import functional as F
from rawzoom_isp.isp.kinds import DataKind
from rawzoom_isp.raw.cfa import PATTERNS

# Packed channel (R, Gr, Gb, B) -> (row, col) inside the 2x2 tile, per pattern (isp.md section 4.2).
OFFSETS = {
    "RGGB": [(0, 0), (0, 1), (1, 0), (1, 1)],
    "BGGR": [(1, 1), (1, 0), (0, 1), (0, 0)],
    "GRBG": [(0, 1), (0, 0), (1, 1), (1, 0)],
    "GBRG": [(1, 0), (1, 1), (0, 0), (0, 1)],
}


def _meta(cfa="RGGB", batch=None):
    meta = rz.RawMeta(
        cfa=cfa,
        black_level=torch.tensor([[64.0, 65.0], [66.0, 67.0]]),
        white_level=torch.tensor(1023.0),
        wb_gains=torch.tensor([1.9, 1.0, 1.5]),
        cam_to_srgb=torch.tensor([[1.6, -0.4, -0.2], [-0.2, 1.4, -0.2], [0.0, -0.5, 1.5]]),
    )
    return meta if batch is None else rz.RawMeta.stack([meta] * batch)


@pytest.mark.parametrize("cfa", PATTERNS)
def test_pack_matches_table_and_round_trips(cfa):
    mosaic = torch.randn(2, 1, 6, 8)
    packed = F.pack_bayer(mosaic, cfa)
    assert packed.shape == (2, 4, 3, 4)
    for k, (dy, dx) in enumerate(OFFSETS[cfa]):
        assert torch.equal(packed[:, k], mosaic[:, 0, dy::2, dx::2])
    assert torch.equal(F.unpack_bayer(packed, cfa), mosaic)
    assert torch.equal(rz.BayerUnpack(cfa)(rz.BayerPack(cfa)(mosaic)), mosaic)


def test_pack_rejects_odd_sizes():
    with pytest.raises(ShapeError, match="even H and W"):
        F.pack_bayer(torch.zeros(1, 1, 5, 8), "RGGB")


def test_black_level_per_position_and_batch():
    meta = _meta(batch=2)
    meta.black_level[1] += 10
    x = torch.full((2, 1, 4, 4), 500.0)
    out = rz.BlackLevel()(x, meta)
    expected0 = (500 - torch.tensor([[64.0, 65], [66, 67]])) / (1023 - torch.tensor([[64.0, 65], [66, 67]]))
    torch.testing.assert_close(out[0, 0, :2, :2], expected0)
    torch.testing.assert_close(out[0, 0, 2:, 2:], expected0)
    torch.testing.assert_close(
        out[1, 0, :2, :2], (490 - torch.tensor([[64.0, 65], [66, 67]])) / (1013 - torch.tensor([[64.0, 65], [66, 67]]))
    )
    assert float(rz.BlackLevel()(torch.full((1, 1, 2, 2), 2000.0), _meta()).max()) == 1.0


@pytest.mark.parametrize("cfa", PATTERNS)
def test_torch_bilinear_equals_colour_demosaicing(cfa):
    mosaic = torch.rand(1, 1, 16, 20, dtype=torch.float64)
    ours = F.demosaic_bilinear(mosaic, cfa)
    reference = F.demosaic_colour(mosaic, cfa, "bilinear")
    # colour-demosaicing pads by repeating the edge pixel, which breaks the CFA phase on the
    # outermost ring; ours mirrors without repeating. Inside, the two agree exactly.
    torch.testing.assert_close(ours[..., 1:-1, 1:-1], reference[..., 1:-1, 1:-1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["bilinear", "half", "colour_bilinear", "malvar2004", "menon2007"])
def test_demosaic_keeps_grey_grey(method):
    grey = torch.full((1, 1, 16, 16), 0.25)
    rgb = rz.Demosaic(method)(grey, _meta("GBRG"))
    expected = (1, 3, 8, 8) if method == "half" else (1, 3, 16, 16)
    assert rgb.shape == expected
    inner = rgb[..., 1:-1, 1:-1] if method == "colour_bilinear" else rgb  # its border: see above
    torch.testing.assert_close(inner, torch.full_like(inner, 0.25), atol=1e-6, rtol=0)


def test_demosaic_from_packed_uses_the_raw_cfa():
    mosaic = torch.rand(1, 1, 8, 8)
    direct = rz.Demosaic()(mosaic, _meta("GRBG"))
    via_packed = rz.Demosaic()(F.pack_bayer(mosaic, "GRBG"), _meta("GRBG"))
    torch.testing.assert_close(direct, via_packed)


def test_srgb_gamma_round_trip_and_finite_gradients():
    x = torch.linspace(0, 1, 1001, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(F.srgb_degamma(F.srgb_gamma(x)), x, atol=1e-12, rtol=0)
    for curve in (F.srgb_gamma, F.power_gamma):
        (grad,) = torch.autograd.grad(curve(x).sum(), x)
        assert torch.isfinite(grad).all()
    assert float(F.srgb_gamma(torch.tensor(0.5, dtype=torch.float64))) == pytest.approx(0.7353569830524495, abs=1e-12)


def test_smoothstep_inverse():
    y = torch.linspace(0, 1, 101, dtype=torch.float64)
    torch.testing.assert_close(F.smoothstep(F.inverse_smoothstep(y)), y, atol=1e-12, rtol=0)


def test_white_balance_linear_packed_and_display():
    gains = torch.tensor([2.0, 1.0, 1.5])
    rgb = torch.full((3, 2, 2), 0.25)
    torch.testing.assert_close(F.apply_white_balance(rgb, gains)[:, 0, 0], torch.tensor([0.5, 0.25, 0.375]))
    packed = torch.full((4, 2, 2), 0.25)
    torch.testing.assert_close(F.apply_white_balance(packed, gains)[:, 0, 0], torch.tensor([0.5, 0.25, 0.25, 0.375]))
    display = F.apply_white_balance(rgb, gains, gamma=2.2)
    torch.testing.assert_close(display[:, 0, 0], 0.25 * gains ** (1 / 2.2))
    # In a pipeline, WB after gamma works in display space when built so; the Pipeline checks the space.
    pipe = rz.Pipeline([("gamma", rz.Gamma()), ("wb", rz.WhiteBalance(gains=[2.0, 1.0, 1.5], space="display",
                                                                      clip=False))], input_kind="linear_rgb")
    torch.testing.assert_close(pipe(rgb), F.srgb_gamma(rgb) * (gains ** (1 / 2.2))[:, None, None])
    with pytest.raises(PipelineError, match="white_balance"):
        rz.Pipeline([("gamma", rz.Gamma()), ("wb", rz.WhiteBalance())], input_kind="linear_rgb")
    with pytest.raises(PipelineError, match="white_balance"):
        rz.Pipeline([("wb", rz.WhiteBalance(space="display"))], input_kind="linear_rgb")


def test_resize_bicubic_zoom():
    x = torch.rand(2, 3, 8, 8)
    out = rz.Resize(4)(x)
    assert out.shape == (2, 3, 32, 32)
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_orientation_codes():
    x = torch.arange(6.0).reshape(1, 2, 3)
    assert F.apply_orientation(x, 6).shape == (1, 3, 2)
    assert torch.equal(F.apply_orientation(x, 6)[0, 0], torch.tensor([3.0, 0.0]))  # rotated 90 CW
    assert torch.equal(F.apply_orientation(x, 8)[0, 0], torch.tensor([2.0, 5.0]))  # rotated 90 CCW
    assert torch.equal(F.apply_orientation(F.apply_orientation(x, 2), 2), x)


# --- the Pipeline -------------------------------------------------------------------------


def test_pipeline_checks_the_chain_when_built():
    with pytest.raises(
        PipelineError, match=r"stage 'gamma'.*takes linear RGB.*stage 'black' before it gives normalised Bayer"
    ):
        rz.Pipeline([("black", rz.BlackLevel()), ("gamma", rz.Gamma())])
    with pytest.raises(PipelineError, match="the pipeline input is"):
        rz.Pipeline([("demosaic", rz.Demosaic())])
    with pytest.raises(PipelineError, match="unique"):
        rz.Pipeline([("a", rz.BlackLevel()), ("a", rz.BayerPack())])


def test_classical_runs_batched_unbatched_and_lists(sample_raw):
    pipe = rz.Pipeline.classical(demosaic="half")
    single = pipe(sample_raw)
    assert single.shape == (3, 384, 512) and single.dtype == torch.float32
    assert float(single.min()) >= 0 and float(single.max()) <= 1
    crop = sample_raw.crop(0, 0, 64, 64)
    batch = pipe([crop, crop])
    assert batch.shape == (2, 3, 32, 32)
    torch.testing.assert_close(batch[1], pipe(crop))
    torch.testing.assert_close(pipe(crop.bayer, crop.meta), pipe(crop))
    torch.testing.assert_close(pipe(crop.bayer[None, None], crop.meta)[0], pipe(crop))


def test_pipeline_follows_dtype(sample_raw):
    crop = sample_raw.crop(0, 0, 32, 32)
    out = rz.Pipeline.classical()(crop.bayer.double(), crop.meta)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out.float(), rz.Pipeline.classical()(crop), atol=1e-5, rtol=0)


@gpu
def test_pipeline_follows_device(sample_raw):
    crop = sample_raw.crop(0, 0, 64, 64)
    out = rz.Pipeline.classical()(crop.bayer.cuda(), crop.meta)
    assert out.is_cuda
    torch.testing.assert_close(out.cpu(), rz.Pipeline.classical()(crop), atol=1e-5, rtol=0)


def test_start_stop_and_intermediates(sample_raw):
    crop = sample_raw.crop(0, 0, 32, 32)
    pipe = rz.Pipeline.classical()
    out, inter = pipe(crop, return_intermediates=True)
    assert list(inter) == ["black", "pack", "demosaic", "wb", "ccm", "gamma"]
    assert inter["pack"].shape == (4, 16, 16)
    torch.testing.assert_close(inter["gamma"], out)
    packed = pipe(crop, stop="pack")
    torch.testing.assert_close(packed, inter["pack"])
    torch.testing.assert_close(pipe(packed, crop.meta, start="demosaic"), out)
    torch.testing.assert_close(pipe(inter["demosaic"], crop.meta, start="wb", stop="ccm"), inter["ccm"])
    with pytest.raises(ShapeError, match=r"stage 'demosaic' takes normalised Bayer.*\(B, 1, H, W\)"):
        rz.Pipeline([("demosaic", rz.Demosaic())], input_kind="bayer")(torch.zeros(3, 8, 8), crop.meta)
    with pytest.raises(PipelineError, match="no stage named 'nope'"):
        pipe(crop, stop="nope")


def test_missing_metadata_is_explained():
    with pytest.raises(PipelineError, match="cam_to_srgb"):
        rz.ColorMatrix()(torch.zeros(1, 3, 2, 2))


def test_classical_chain_gradcheck():
    meta = _meta()
    pipe = rz.Pipeline.classical(demosaic="bilinear").double()
    generator = torch.Generator().manual_seed(3)
    bayer = (200 + 150 * torch.rand(1, 1, 6, 8, generator=generator, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda b: pipe(b, meta), (bayer,), eps=1e-4, atol=1e-6)
    half = rz.Pipeline.classical(demosaic="half").double()
    assert torch.autograd.gradcheck(lambda b: half(b, meta), (bayer,), eps=1e-4, atol=1e-6)


def test_config_round_trip_dict_and_toml(tmp_path, sample_raw):
    pipe = rz.Pipeline(
        [
            ("black", rz.BlackLevel(clip=False)),
            ("pack", rz.BayerPack()),
            ("demosaic", rz.Demosaic("malvar2004")),
            ("wb", rz.WhiteBalance(gains=[2.0, 1.0, 1.7])),
            ("ccm", rz.ColorMatrix()),
            ("gamma", rz.Gamma("power", gamma=2.4)),
            ("tone", rz.ToneMap()),
            ("zoom", rz.Resize(2.0)),
        ]
    )
    config = pipe.to_config()
    again = rz.Pipeline.from_config(config)
    assert again.to_config() == config
    path = tmp_path / "isp.toml"
    pipe.save_config(path)
    from_file = rz.Pipeline.from_config(path)
    assert from_file.to_config() == config
    crop = sample_raw.crop(0, 0, 32, 32)
    torch.testing.assert_close(from_file(crop), pipe(crop))


@pytest.mark.parametrize(
    "config, message",
    [
        ({"stages": [{"type": "sharpen"}]}, "unknown stage type 'sharpen'"),
        ({"stages": [{"type": "gamma", "params": {"curve": "srgb", "knee": 2}}]}, "no parameter.*knee"),
        ({"stages": [{"type": "gamma", "params": {"curve": "log"}}]}, "gamma curve must be one of"),
        ({"stages": [{"type": "gamma", "colour": 1}]}, "unknown key.*colour"),
        ({"stages": [{"type": "gamma"}], "version": 2}, "unknown pipeline config key.*version"),
        ({"stages": []}, "non-empty"),
        ({"stages": [{"type": "gamma"}]}, "takes linear RGB"),
    ],
)
def test_bad_configs_raise_config_error(config, message):
    with pytest.raises(ConfigError, match=message):
        rz.Pipeline.from_config(config)


def test_bad_toml_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[[stages]\ntype = 'gamma'\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        rz.Pipeline.from_config(path)
    with pytest.raises(ConfigError, match="no such pipeline config"):
        rz.Pipeline.from_config(tmp_path / "absent.toml")


def test_registered_stage_is_usable_from_config():
    @rz.register_stage("test_halve")
    class Halve(rz.Stage):
        takes = frozenset({DataKind.LINEAR_RGB})

        def __init__(self, factor: float = 0.5):
            super().__init__()
            self.factor = factor

        def forward(self, x, meta=None):
            return x * self.factor

    pipe = rz.Pipeline.from_config(
        {"input": "linear_rgb", "stages": [{"name": "h", "type": "test_halve", "params": {"factor": 0.25}}]}
    )
    torch.testing.assert_close(pipe(torch.ones(3, 2, 2)), torch.full((3, 2, 2), 0.25))


def test_entry_point_plugin_stage():
    """tests/plugin_example is pip-installed by `make test`; its stage is found through the entry point."""
    from importlib.metadata import entry_points

    if not [ep for ep in entry_points(group="rawzoom_isp.stages") if ep.name == "example_exposure"]:
        pytest.fail("the example plugin is not installed: run `pip install -e tests/plugin_example` (make test does)")
    pipe = rz.Pipeline.from_config(
        {"input": "linear_rgb", "stages": [{"type": "example_exposure", "params": {"stops": 1.0}}, {"type": "gamma"}]}
    )
    x = torch.full((3, 2, 2), 0.1)
    torch.testing.assert_close(pipe(x), F.srgb_gamma(x * 2))
    assert pipe.to_config()["stages"][0] == {
        "name": "example_exposure",
        "type": "example_exposure",
        "params": {"stops": 1.0},
    }


# --- agreement with LibRaw ------------------------------------------------------------------

LIBRAW_FILES = [
    "dng/gopro_hero7_gopr9231_crop1024x768_y1116_x1488.dng",
    "dng/gopro_hero6_gopr0024_crop1024x768_y1116_x1488.dng",
    "dng/gopro_fusion_gpfr7066_crop1024x768_y1116_x1040.dng",
    "dng/gopro_fusion_gpbk7066_crop1024x768_y1116_x1040.dng",
    "dng/gopro_hero7_gopr9231_full.dng",
    "cr2/canon_eos30d_IMG_5952.cr2",
]


def _psnr(a, b):
    return float(10 * torch.log10(1.0 / ((a - b) ** 2).mean()))


@pytest.mark.parametrize("name", LIBRAW_FILES, ids=[n.split("/")[-1] for n in LIBRAW_FILES])
def test_classical_agrees_with_libraw_half_size(name):
    """LibRaw's linear render (camera WB, raw colour space, half size), converted by the same colour
    matrix and sRGB curve, against Pipeline.classical(demosaic="half")."""
    import rawpy

    path = shared_file(name)
    raw = rz.read_raw(path)
    with rawpy.imread(str(path)) as r:
        linear = r.postprocess(gamma=(1, 1), no_auto_bright=True, output_bps=16, use_camera_wb=True,
                               output_color=rawpy.ColorSpace.raw, user_flip=0, half_size=True)
    linear = torch.from_numpy(linear.astype(np.float32) / 65535).permute(2, 0, 1)
    reference = F.srgb_gamma(F.apply_color_matrix(linear, raw.cam_to_srgb).clamp(0, 1))
    ours = rz.Pipeline.classical(demosaic="half")(raw)
    assert ours.shape == reference.shape
    assert _psnr(ours, reference) >= 35.0


def test_orientation_matches_libraw(sample_raw):
    import rawpy
    from conftest import SAMPLE

    with rawpy.imread(str(SAMPLE)) as r:
        oriented = r.postprocess(gamma=(1, 1), no_auto_bright=True, output_bps=16, use_camera_wb=True,
                                 output_color=rawpy.ColorSpace.raw, half_size=True)
    linear = torch.from_numpy(oriented.astype(np.float32) / 65535).permute(2, 0, 1)
    reference = F.srgb_gamma(F.apply_color_matrix(linear, sample_raw.cam_to_srgb).clamp(0, 1))
    ours = F.apply_orientation(rz.Pipeline.classical(demosaic="half")(sample_raw), sample_raw.orientation)
    assert _psnr(ours, reference) >= 35.0


@pytest.mark.parametrize("params", [{"white_level": 0}, {"white_level": float("nan")}, {"black_level": 5000,
                                                                                        "white_level": 4095}])
def test_black_level_stage_refuses_levels_that_make_no_image(params):
    with pytest.raises(ConfigError, match="black_level"):
        rz.Pipeline.from_config({"stages": [{"type": "black_level", "params": params}]})


def test_resize_refuses_absurd_scales():
    with pytest.raises(ConfigError, match="resize scale"):
        rz.Pipeline.from_config({"input": "linear_rgb", "stages": [{"type": "resize", "params": {"scale": 1e6}}]})


@pytest.mark.parametrize("cfa", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_malvar_demosaic_matches_colour_demosaicing_inside_the_frame(cfa):
    import colour_demosaicing as cd

    x = torch.rand(2, 1, 40, 48, dtype=torch.float64)
    ours = F.demosaic(x, cfa, "malvar2004")[1].permute(1, 2, 0).numpy()
    reference = cd.demosaicing_CFA_Bayer_Malvar2004(x[1, 0].numpy(), pattern=cfa)
    assert abs(ours - reference)[4:-4, 4:-4].max() < 1e-12
    x.requires_grad_()
    F.demosaic(x, cfa, "malvar2004").sum().backward()
    assert x.grad is not None  # differentiable


@pytest.mark.parametrize("demosaic", ["bilinear", "malvar2004", "half", "menon2007"])
def test_rendering_in_strips_equals_the_whole_frame(sample_raw, demosaic):
    """Strips of rows with their stages' halo of context give the whole frame's image (up to the float32
    rounding of a convolution run at another size: one level in 16 bits); a pipeline with a non-local
    stage renders whole."""
    from rawzoom_isp.imageio import to_integers
    from rawzoom_isp.isp.strips import pipeline_halo, render_array

    raw = sample_raw.crop(0, 0, 256, 320)
    pipe = rz.Pipeline.classical(demosaic=demosaic)
    assert pipeline_halo(pipe) == {"bilinear": 1, "malvar2004": 2, "half": 0, "menon2007": 12}[demosaic]
    strips, whole = render_array(pipe, raw, 16, rows=32).astype(int), to_integers(pipe(raw), 16).astype(int)
    assert abs(strips - whole).max() <= 1
    zoomed = rz.Pipeline([*pipe.stages.items(), ("zoom", rz.Resize(2.0))])
    assert pipeline_halo(zoomed) is None
    assert render_array(zoomed, raw, 8, rows=32).shape[:2] == tuple(2 * s for s in pipe(raw).shape[-2:])


@pytest.mark.parametrize("space", ["adobe", "prophoto", "linear"])
def test_output_spaces_and_their_icc_profiles_agree(space):
    """Linear sRGB encoded in another space by our stages, read back to sRGB by LittleCMS through the
    ICC profile we write for that space: the same colour within two 8-bit levels."""
    import io

    import numpy as np
    from PIL import Image, ImageCms

    from rawzoom_isp.color import SPACE_CURVES, srgb_to_space
    from rawzoom_isp.imageio import icc_profile

    linear = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1
    encoded = F.encode_gamma(F.apply_color_matrix(linear, torch.from_numpy(srgb_to_space(space)).float()),
                             *SPACE_CURVES[space])
    image = Image.fromarray((encoded.permute(1, 2, 0).numpy() * 255 + 0.5).astype("uint8"))
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile(space)))
    transform = ImageCms.buildTransform(profile, ImageCms.createProfile("sRGB"), "RGB", "RGB", renderingIntent=1)
    back = np.asarray(ImageCms.applyTransform(image, transform)).astype(float)
    assert abs(back - F.srgb_gamma(linear).permute(1, 2, 0).numpy() * 255).max() <= 2.5


def test_exposure_highlights_and_auto_brightness(sample_raw):
    raw = sample_raw.crop(0, 0, 128, 128)
    plain = rz.Pipeline.classical(gamma="srgb")
    brighter = rz.Pipeline.classical(exposure=1.0)
    linear = plain(raw, stop="ccm")
    torch.testing.assert_close(brighter(raw, stop="exposure"), 2 * linear)
    auto = rz.Pipeline.classical(auto_bright=True)(raw, stop="exposure")
    assert float(torch.quantile(auto.flatten(1), 0.99, dim=1).max()) == pytest.approx(1.0, abs=1e-3)
    # A highlight clipped in one channel: clipping leaves a colour cast, blending fades it to white.
    cast = torch.tensor([1.6, 1.0, 0.7])[:, None, None].expand(3, 2, 2)
    assert float(F.blend_highlights(cast).std(0).max()) < 1e-6
    assert float(F.blend_highlights(torch.full((3, 2, 2), 0.5)).sub(0.5).abs().max()) == 0  # below the knee: as is


def test_white_balance_choices():
    from rawzoom_isp.isp import with_white_balance

    grey = (torch.rand(32, 32) * 0.5 + 0.2).repeat_interleave(2, 0).repeat_interleave(2, 1)  # grey per 2x2 tile
    cast = F.mosaic(torch.stack([grey / 2.0, grey, grey / 1.5])[None], "GRBG")[0, 0]
    cast[:8, :8] = 1.0  # clipped sites do not count
    raw = rz.RawImage(bayer=cast * 1000 + 24, cfa="GRBG", black_level=24, white_level=1024,
                      wb_gains=[1.1, 1.0, 1.2], wb_source="camera")
    auto = with_white_balance(raw, "auto")
    torch.testing.assert_close(auto.wb_gains, torch.tensor([2.0, 1.0, 1.5]), rtol=2e-3, atol=0)
    assert auto.wb_source == "auto" and with_white_balance(raw, "camera") is raw
    given = with_white_balance(raw, "4,2,3")
    assert given.wb_gains.tolist() == [2.0, 1.0, 1.5] and given.wb_source == "given"
    with pytest.raises(rz.errors.DataError, match="no daylight white balance"):
        with_white_balance(raw, "daylight")
    for bad in ("1,2", "1,0,2", "nan,1,1", "tungsten"):
        with pytest.raises(rz.errors.ConfigError, match="three positive gains"):
            with_white_balance(raw, bad)
