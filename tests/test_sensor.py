"""The LR sensor model (rz.synth.sensor): the values and positions of its sites on scenes whose answer
is known (a flat field, a ramp, a slanted edge), its noise, and the family training draws from."""
import math

import pytest
import torch

from rawzoom_isp.isp import functional as F
from rawzoom_isp.raw.cfa import PATTERNS, Cfa
from rawzoom_isp.synth.sensor import Degradation, HighRes, SensorFamily, bayer_downscale, centred_sites, site_weights


def _source(linear: torch.Tensor, cfa: str = "RGGB") -> HighRes:
    return HighRes(F.mosaic(linear[None], cfa)[0], cfa, linear)


@pytest.mark.parametrize("blur", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("shift", [0.0, 0.5, -0.3])
def test_site_weights_integrate_the_block(blur, shift):
    weights = site_weights(4, shift, blur)
    assert float(weights.sum()) == pytest.approx(1.0, abs=1e-12)
    positions = torch.arange(len(weights), dtype=torch.float64) - 1 - (len(weights) - 6) // 2  # HR px of N k = 0
    assert float((weights * positions).sum()) == pytest.approx(1.5 + shift, abs=1e-12)  # the block centre + s


@pytest.mark.parametrize("cfa", PATTERNS)
def test_flat_field_gives_its_colour_at_every_site(cfa):
    colour = torch.tensor([0.2, 0.5, 0.3])
    source = _source(colour[:, None, None].expand(3, 64, 64).clone(), cfa)
    centred, footprint = Degradation("centred", blur=0.7, shift=(0.4, -0.2), noise=0), Degradation("footprint", noise=0)
    for degradation in (centred, footprint):
        low, low_cfa = source.capture(0, 0, (64, 64), 4, degradation)  # the edges repeat: still flat
        assert low_cfa == cfa and low.shape == (1, 16, 16)
        torch.testing.assert_close(low, F.mosaic(colour[:, None, None].expand(3, 16, 16)[None], cfa)[0])


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_ramp_puts_each_site_at_its_block_centre(scale):
    """A ramp a + b x has, at a centred site k, the value at the site's centre N k + (N - 1) / 2 + s: every
    colour alike. The footprint geometry puts R and B half an HR px off it, in opposite directions."""
    size, pad = 16 * scale, 8 * scale
    columns = torch.arange(-pad, size + pad, dtype=torch.float64)
    ramp = (0.1 + 0.002 * columns).expand(3, size + 2 * pad, size + 2 * pad).clone()
    source = _source(ramp)
    centres = scale * torch.arange(size // scale, dtype=torch.float64) + (scale - 1) / 2
    for shift in (0.0, 0.25, -0.5):
        low, _ = source.capture(pad, pad, (size, size), scale, Degradation("centred", blur=0.4, shift=(0.3, shift),
                                                                           noise=0))
        torch.testing.assert_close(low[0].double(), (0.1 + 0.002 * (centres + shift)).expand(size // scale, -1),
                                   atol=1e-6, rtol=0)
    footprint = bayer_downscale(ramp[:1, pad:pad + size, pad:pad + size][None].float(), "RGGB", scale)[0, 0]
    packed = F.pack_bayer(footprint[None, None], "RGGB")[0]
    lr_centres = 0.1 + 0.002 * centres
    assert float(packed[0, 0, 0]) == pytest.approx(float(lr_centres[0]) - 0.002 * 0.5, abs=1e-6)  # R: -1/2 px
    assert float(packed[3, 0, 0]) == pytest.approx(float(lr_centres[1]) + 0.002 * 0.5, abs=1e-6)  # B: +1/2 px


def test_slanted_edge_gives_each_site_its_area_coverage():
    """An edge at 5 degrees: each centred LR site reads the share of its N x N block on the bright side,
    computed here by supersampling the block directly."""
    scale, size, fine = 4, 64, 16
    angle, offset = math.radians(5), 31.3

    def bright(y, x):  # 1 right of the line through (0, offset) at `angle` from the vertical
        return (x - offset - y * math.tan(angle) > 0).double()

    sub = (torch.arange(fine, dtype=torch.float64) + 0.5) / fine - 0.5
    pixels = torch.arange(-1, size + 1, dtype=torch.float64)
    ys = (pixels[:, None] + sub[None]).reshape(-1)
    coverage = bright(ys[:, None], ys[None, :]).reshape(size + 2, fine, size + 2, fine).mean((1, 3))
    linear = coverage.expand(3, -1, -1).clone()
    low = centred_sites(linear, scale)[0]
    block = (torch.arange(scale * fine, dtype=torch.float64) + 0.5) / fine - 0.5
    for i in range(0, size // scale, 3):
        for j in range(size // scale):
            y, x = scale * i + block, scale * j + block
            expected = float(bright(y[:, None], x[None, :]).mean())
            assert float(low[i, j]) == pytest.approx(expected, abs=2e-3), (i, j)


@pytest.mark.parametrize("geometry", ["centred", "footprint"])
def test_noise_is_a_native_captures_times_the_factor(geometry):
    """Variance f (S x + O) at centred sites (the block mean removes the HR noise); at footprint sites
    (f - 1/k)(S x + O) is added to the HR noise the average kept (k = (N/2)^2 = 4 at 4x)."""
    level, model = 0.3, torch.tensor([[2e-3, 1e-4]] * 4)
    source = _source(torch.full((3, 512, 512), level))
    for factor in (1.0, 3.0):
        low, _ = source.capture(0, 0, (512, 512), 4, Degradation(geometry, noise=factor), model,
                                torch.Generator().manual_seed(0))
        added = factor if geometry == "centred" else factor - 1 / 4
        assert float(low.var()) == pytest.approx(added * (2e-3 * level + 1e-4), rel=0.06)
    clean, _ = source.capture(0, 0, (512, 512), 4, Degradation(geometry, noise=0.0), model)
    assert float(clean.var()) < 1e-12


def test_capture_cfa_follows_the_window():
    source = _source(torch.rand(3, 64, 64), "GBRG")
    for top, left in ((0, 0), (1, 0), (3, 5)):
        _, cfa = source.capture(top, left, (32, 32), 4, Degradation())
        assert cfa == Cfa("GBRG").shifted(top, left)


def test_sensor_family_draws_its_shares():
    family = SensorFamily(footprint_share=0.25, blur=(0.0, 0.4), shift=0.25, clean_share=0.3, noise_range=(0.5, 4))
    generator = torch.Generator().manual_seed(0)
    draws = [family.sample(generator) for _ in range(4000)]
    assert sum(d.geometry == "footprint" for d in draws) / len(draws) == pytest.approx(0.25, abs=0.03)
    assert sum(d.noise == 0 for d in draws) / len(draws) == pytest.approx(0.3, abs=0.03)
    centred = [d for d in draws if d.geometry == "centred"]
    assert max(d.blur for d in centred) <= 0.4 and max(max(abs(s) for s in d.shift) for d in centred) <= 0.25
    assert all(0.5 <= d.noise <= 4 for d in draws if d.noise)
    again = SensorFamily(footprint_share=0.25, blur=(0.0, 0.4), shift=0.25, clean_share=0.3, noise_range=(0.5, 4))
    assert again.sample(torch.Generator().manual_seed(0)) == draws[0]
    assert SensorFamily.of("centred").sample(generator).geometry == "centred"
    assert SensorFamily.of("footprint").sample(generator).geometry == "footprint"


@pytest.mark.parametrize("bad", [dict(geometry="optical"), dict(shift=(0.6, 0)), dict(blur=-1.0),
                                 dict(noise=float("nan")), dict(geometry="footprint", blur=0.5)])
def test_bad_degradations_are_refused(bad):
    with pytest.raises(ValueError):
        Degradation(**bad)


def test_bad_families_are_refused():
    for bad in (dict(clean_share=1.5), dict(noise_range=(0, 1)), dict(blur=(0.5, 0.1)), dict(shift=0.7)):
        with pytest.raises(ValueError):
            SensorFamily(**bad)
    with pytest.raises(ValueError, match="degradation"):
        SensorFamily.of("optical")


@pytest.mark.parametrize("geometry", ["centred", "footprint"])
def test_the_added_noise_leaves_out_what_the_target_shares(geometry):
    """A real HR raw (noisy) leaves 1/k of its noise in each LR site (k = (N/2)^2 = 4 at 4x), noise the
    target has too: centred sites add f on top of it, footprint sites top it up to f (adding nothing
    when it is already more); a synthetic HR has no noise of its own, so f is added."""
    real, synthetic = _source(torch.rand(3, 64, 64)), HighRes(torch.rand(1, 64, 64), "RGGB", torch.rand(3, 64, 64),
                                                                noisy=False)
    for factor in (0.0, 0.1, 2.0):
        degradation = Degradation(geometry, noise=factor)
        expected = factor if geometry == "centred" else max(factor - 1 / 4, 0.0)
        assert real.added_noise(4, degradation) == pytest.approx(expected)
        assert synthetic.added_noise(4, degradation) == pytest.approx(factor)
    expected = 0.1 if geometry == "centred" else 0.1 - 1 / 16
    assert real.added_noise(8, Degradation(geometry, noise=0.1)) == pytest.approx(expected)
