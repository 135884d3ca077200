"""Synthetic raw: unprocessing round trips, the paper's syn-raw, noise statistics and estimation,
the `rawzoom synth` command."""

import pytest
import torch
from conftest import RAW_DIR, SAMPLE

import rawzoom_isp as rz
from rawzoom_isp.cli import main
from rawzoom_isp.isp import functional as F
from rawzoom_isp.synth import add_mosaic_noise, add_noise, estimate_noise, process, random_noise_levels, unprocess


def _smooth_image(height=64, width=96):
    y, x = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    return torch.stack([0.1 + 0.6 * x, 0.2 + 0.5 * y, 0.15 + 0.15 * (x + y)])


@pytest.mark.parametrize("cfa", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_process_inverts_unprocess(cfa):
    image = _smooth_image()
    mosaic, meta = unprocess(image, cfa=cfa, noise=False, generator=torch.Generator().manual_seed(1))
    assert mosaic.shape == (1, 64, 96) and meta.cfa == cfa
    assert float(mosaic.min()) >= 0 and float(mosaic.max()) <= 1
    back = process(mosaic[None], meta)[0]
    # Bilinear demosaicking is exact on linear ramps away from the border.
    torch.testing.assert_close(back[:, 2:-2, 2:-2], image[:, 2:-2, 2:-2], atol=2e-4, rtol=0)


def test_unprocess_is_batched_deterministic_and_follows_given_parameters():
    images = torch.stack([_smooth_image(), _smooth_image().flip(-1)])
    a, meta_a = unprocess(images, generator=torch.Generator().manual_seed(3))
    b, _ = unprocess(images, generator=torch.Generator().manual_seed(3))
    c, _ = unprocess(images, generator=torch.Generator().manual_seed(4))
    assert a.shape == (2, 1, 64, 96) and torch.equal(a, b) and not torch.equal(a, c)
    assert meta_a.cam_to_srgb.shape == (2, 3, 3) and not torch.equal(meta_a.cam_to_srgb[0], meta_a.cam_to_srgb[1])
    assert ((meta_a.wb_gains[:, 0] >= 1.9) & (meta_a.wb_gains[:, 0] <= 2.4)).all()
    torch.testing.assert_close(meta_a.cam_to_srgb.sum(-1), torch.ones(2, 3), atol=1e-5, rtol=0)  # white stays white
    fixed, meta = unprocess(images[0], cam_to_srgb=torch.eye(3), wb_gains=[2.0, 1.0, 1.5], brightness=1.25,
                            noise=False)
    linear = (
        F.power_gamma(F.inverse_smoothstep(images[0]), 1 / 2.2) / (torch.tensor([2.0, 1.0, 1.5]) * 1.25)[:, None, None]
    )
    torch.testing.assert_close(fixed, F.mosaic(linear, "RGGB"), atol=1e-6, rtol=0)
    assert torch.equal(meta.cam_to_srgb[0], torch.eye(3))


def test_paper_method():
    image = _smooth_image()
    clean, meta = unprocess(image, method="paper", noise=False)
    torch.testing.assert_close(clean, F.mosaic(image ** 2.22, "RGGB"), atol=1e-6, rtol=0)
    sigmas = []
    for seed in range(40):
        noisy, meta = unprocess(image, method="paper", generator=torch.Generator().manual_seed(seed))
        sigmas.append(float((noisy - clean).std()))
        assert float(meta.read[0]) == pytest.approx(sigmas[-1] ** 2, rel=0.1, abs=1e-6)
    assert min(sigmas) >= 0 and max(sigmas) <= 20 / 255 * 1.05 and max(sigmas) > 10 / 255


def test_noise_variance_matches_the_model_over_a_million_samples():
    for level in (0.05, 0.3, 0.8):
        clean = torch.full((1, 4, 500, 500), level, dtype=torch.float64)  # 10^6 samples
        shot, read = 2e-3, 5e-5
        noisy = add_noise(clean, shot, read, torch.Generator().manual_seed(0))
        assert float((noisy - clean).var()) == pytest.approx(shot * level + read, rel=0.05)
    per_channel = add_noise(
        torch.full((2, 4, 300, 300), 0.5), torch.tensor([[1e-3, 2e-3, 3e-3, 4e-3]]).expand(2, 4), 0.0
    )
    variances = (per_channel - 0.5).var(dim=(0, 2, 3))
    torch.testing.assert_close(variances, torch.tensor([0.5e-3, 1e-3, 1.5e-3, 2e-3]), rtol=0.05, atol=0)


def test_brooks_noise_level_sampling():
    shot, read = random_noise_levels(20000, torch.Generator().manual_seed(0))
    assert float(shot.min()) >= 1e-4 and float(shot.max()) <= 0.012
    residual = read.log() - (2.18 * shot.log() + 1.20)
    assert float(residual.mean()) == pytest.approx(0.0, abs=0.01)
    assert float(residual.std()) == pytest.approx(0.26, rel=0.03)


@pytest.mark.parametrize("shot, read", [(1e-3, 1e-5), (2e-3, 2e-4), (5e-4, 5e-5)])
def test_estimate_noise_recovers_known_parameters(shot, read):
    y, x = torch.meshgrid(torch.linspace(0, 1, 768), torch.linspace(0, 1, 1024), indexing="ij")
    clean = (0.005 + 0.85 * x ** 2)[None, None].double()
    noisy = add_mosaic_noise(clean, "GRBG", shot, read, torch.Generator().manual_seed(2))
    raw = rz.RawImage(bayer=(noisy[0, 0] * 16000 + 200).round(), cfa="GRBG", black_level=200, white_level=16200)
    estimate = estimate_noise(raw)
    torch.testing.assert_close(estimate[:, 0], torch.full((4,), shot), rtol=0.1, atol=0)
    torch.testing.assert_close(estimate[:, 1], torch.full((4,), read), rtol=0.1, atol=0)


def test_estimate_noise_on_real_files():
    files = sorted(RAW_DIR.glob("dng/*crop*.dng")) + sorted(RAW_DIR.glob("cr2/*.cr2"))
    if not files:
        pytest.skip(f"real raw data not available: {RAW_DIR} is absent")
    for path in files:
        raw = rz.read_raw(path)
        estimate = estimate_noise(raw)
        assert estimate.shape == (4, 2) and torch.isfinite(estimate).all()
        assert (estimate[:, 0] > 1e-6).all() and (estimate[:, 0] < 1e-2).all(), (path.name, estimate)
        if raw.noise_profile is not None and "hero6" in path.name:
            # The camera's own NoiseProfile (one (S, O) for all planes) agrees on the green planes
            # within a factor 1.5 (measured: 0.97-1.02).
            ratio = estimate[1:3, 0] / raw.noise_profile[0, 0]
            assert ((ratio > 1 / 1.5) & (ratio < 1.5)).all(), ratio


def test_synth_command_writes_a_dng_raw_tools_open(tmp_path):
    import rawpy

    from rawzoom_isp.imageio import write_image

    image = tmp_path / "in.png"
    write_image(image, rz.Pipeline.classical(demosaic="half")(rz.read_raw(SAMPLE).crop(0, 0, 256, 320)))
    out = tmp_path / "synthetic.dng"
    assert main(["synth", str(image), "-o", str(out), "--cfa", "GBRG", "--seed", "7"]) == 0
    raw = rz.read_raw(out)
    assert raw.cfa == "GBRG" and raw.shape == (128, 160) and raw.white_level == 16383
    assert raw.cam_to_srgb is not None and raw.noise_profile is not None and raw.wb_source == "camera"
    with rawpy.imread(str(out)) as r:
        rgb = r.postprocess(use_camera_wb=True, output_bps=8, user_flip=0)
    assert rgb.shape == (128, 160, 3) and rgb.std() > 5
    assert main(["synth", str(image), "-o", str(tmp_path / "paper.dng"), "--method", "paper", "--no-noise"]) == 0
    assert main(["synth", str(tmp_path / "absent.png"), "-o", str(tmp_path / "x.dng")]) == 1
    assert not (tmp_path / "x.dng").exists()


def test_synthetic_raw_without_noise_is_the_quantised_unprocessed_mosaic():
    """synthetic_raw: odd sides trimmed, the mosaic quantised to the white level, the drawn metadata
    (and no noise profile without noise), the baseline exposure log2 of the drawn brightness."""
    from rawzoom_isp.synth import synthetic_raw

    image = torch.rand(3, 65, 81, generator=torch.Generator().manual_seed(0))
    raw, exposure = synthetic_raw(image, cfa="GRBG", noise=False, bits=12, generator=torch.Generator().manual_seed(3))
    mosaic, meta = unprocess(image[:, :64, :80], cfa="GRBG", noise=False, generator=torch.Generator().manual_seed(3))
    assert raw.shape == (64, 80) and raw.cfa == "GRBG" and raw.white_level == 4095 and raw.noise_profile is None
    torch.testing.assert_close(raw.bayer, torch.round(mosaic[0] * 4095).clamp(0, 4095))
    torch.testing.assert_close(raw.wb_gains, meta.wb_gains[0])
    assert exposure == pytest.approx(float(torch.log2(meta.brightness[0])))
