"""Property tests (hypothesis, derandomised so that CI runs the same examples every time) for CoBi
and the ISP stages over shapes, dtypes and values."""
import math

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rawzoom_isp as rz
from rawzoom_isp.errors import RawZoomError
from rawzoom_isp.isp import functional as F
from rawzoom_isp.raw.cfa import PATTERNS

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
PATTERN = st.sampled_from(PATTERNS)
DTYPE = st.sampled_from([torch.float32, torch.float64])


@st.composite
def feature_pairs(draw):
    batch, channels = draw(st.integers(1, 2)), draw(st.integers(1, 8))
    shape_x = (batch, channels, draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    shape_y = (batch, channels, draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    seed = draw(st.integers(0, 2**31 - 1))
    generator = torch.Generator().manual_seed(seed)
    dtype = draw(DTYPE)
    x = (torch.randn(shape_x, generator=generator, dtype=torch.float64) * scale).to(dtype)
    y = (torch.randn(shape_y, generator=generator, dtype=torch.float64) * scale).to(dtype)
    if draw(st.booleans()):
        x = torch.zeros_like(x) + draw(st.floats(-10, 10))  # constant output features
    return x, y


@SETTINGS
@given(feature_pairs(), st.sampled_from(["contextual", "nearest"]), st.sampled_from(["cosine", "l2"]),
       st.sampled_from(["distance", None]))
def test_cobi_is_finite_with_finite_gradients_and_backends_agree(pair, kind, distance, spatial):
    x, y = pair
    x = x.clone().requires_grad_()
    options = dict(kind=kind, distance=distance, spatial=spatial)
    value = rz.loss.cobi(x, y, backend="chunked", **options)
    (grad,) = torch.autograd.grad(value, x)
    assert torch.isfinite(value) and torch.isfinite(grad).all()
    reference = rz.loss.cobi(x.detach().double(), y.double(), backend="naive", **options)
    assert math.isclose(float(value.detach()), float(reference), rel_tol=1e-3, abs_tol=1e-4)


@SETTINGS
@given(st.floats(allow_nan=True, allow_infinity=True, width=32), st.integers(0, 24))
def test_cobi_refuses_any_bad_value_instead_of_computing_nan(bad, position):
    x = torch.randn(1, 3, 3, 3)
    x.view(-1)[position % x.numel()] = bad
    try:
        value = rz.loss.cobi(x, torch.randn(1, 3, 3, 3))
    except RawZoomError:
        assert not math.isfinite(bad) or abs(bad) > 1e15
    else:
        assert torch.isfinite(value)


@SETTINGS
@given(st.integers(1, 6), st.integers(1, 6), PATTERN, DTYPE, st.integers(1, 3))
def test_pack_unpack_round_trip_and_demosaic_keeps_flat_images_flat(half_height, half_width, cfa, dtype, batch):
    mosaic = torch.rand(batch, 1, 2 * half_height, 2 * half_width, dtype=dtype)
    assert torch.equal(F.unpack_bayer(F.pack_bayer(mosaic, cfa), cfa), mosaic)
    flat = torch.full_like(mosaic, 0.37)
    rgb = F.demosaic_bilinear(flat, cfa)
    assert rgb.dtype == dtype and torch.allclose(rgb, torch.full_like(rgb, 0.37))


@SETTINGS
@given(st.floats(0, 1000), st.floats(1, 65535), st.integers(0, 2**31 - 1))
def test_black_level_normalises_into_the_unit_interval(black, span, seed):
    white = black + span
    x = torch.rand(1, 1, 4, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * (white + 100)
    out = F.subtract_black_level(x, black, white)
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    inside = (x >= black) & (x <= white)
    torch.testing.assert_close(out[inside], ((x - black) / (white - black))[inside])


@SETTINGS
@given(st.lists(st.floats(0.1, 10), min_size=3, max_size=3), st.integers(0, 2**31 - 1))
def test_white_balance_is_linear_and_gamma_round_trips(gains, seed):
    x = torch.rand(3, 5, 5, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    balanced = F.apply_white_balance(x, gains)
    torch.testing.assert_close(F.apply_white_balance(balanced, [1 / g for g in gains]), x)
    torch.testing.assert_close(F.srgb_degamma(F.srgb_gamma(x)), x)
    encoded = F.encode_gamma(x * 3 - 1)
    assert float(encoded.min()) >= 0 and float(encoded.max()) <= 1


@SETTINGS
@given(st.integers(1, 8), st.integers(1, 4), st.integers(1, 4))
def test_orientation_codes_are_invertible_and_boxes_map_back(orientation, height, width):
    stored = torch.arange(2 * height * 3 * width, dtype=torch.float32).reshape(2 * height, 3 * width)
    shown = F.apply_orientation(stored, orientation)
    box = (0, 0, shown.shape[0] // 2 or 1, shown.shape[1] // 2 or 1)
    top, left, h, w = F.display_box_to_stored(box, orientation, tuple(stored.shape))
    seen = stored[top:top + h, left:left + w]
    assert set(shown[: box[2], : box[3]].flatten().tolist()) == set(seen.flatten().tolist())
