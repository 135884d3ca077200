"""Evaluation: held-out cases at every CFA phase, the LibRaw and classical baselines, paired
statistics, reports, the metrics; the zoom and eval commands."""
import math
import os

import pytest
import torch
from conftest import SAMPLE

import rawzoom_isp as rz
from rawzoom_isp.data import bayer_downscale
from rawzoom_isp.data.emulated import linear_demosaic
from rawzoom_isp.errors import ConfigError
from rawzoom_isp.eval import emulated_cases, evaluate, paired, psnr, ssim, textured_windows
from rawzoom_isp.eval.evaluate import ModelMethod, baseline, color_matched_psnr, score
from rawzoom_isp.eval.metrics import lpips_model
from rawzoom_isp.eval.stats import by_window, mean_se, paired_rows, t_test_p, units_needed
from rawzoom_isp.isp import functional as F
from rawzoom_isp.models import build_model, save_checkpoint
from rawzoom_isp.raw.reader import libraw_render
from rawzoom_isp.synth.sensor import centred_sites


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    torch.manual_seed(1)
    net = build_model(dict(arch="packed", width=8, blocks=1, scale=4))
    with torch.no_grad():
        net.tail.weight.normal_(0, 1e-3)
    save_checkpoint(path, net.eval())
    return str(path)


@pytest.mark.parametrize("geometry", ["centred", "footprint"])
def test_cases_cover_every_phase_with_the_reduced_window_and_its_target(geometry):
    cases = list(emulated_cases([str(SAMPLE)], scale=4, size=128, crops=3, noise=False, geometry=geometry))
    assert len(cases) == 12 and {c.info["cfa"] for c in cases} == {"RGGB", "GRBG", "GBRG", "BGGR"}
    raw, render = rz.read_raw(SAMPLE), libraw_render(SAMPLE)
    menon = linear_demosaic(raw, "menon2007").half().float()  # kept in half precision
    for case in cases:
        top, left = case.info["top"], case.info["left"]
        window = raw.crop(top, left, 128, 128)
        assert case.low.cfa == window.cfa and case.low.bayer.shape == (32, 32) and case.info["geometry"] == geometry
        if geometry == "footprint":
            normalised = F.subtract_black_level(window.bayer[None, None], window.black_level, window.white_level)
            expected = bayer_downscale(normalised, window.cfa, 4)[0, 0]
        else:  # every site the mean of its 4 x 4 block of the Menon demosaic (one more px read for context)
            sites = centred_sites(menon[:, top - 1:top + 129, left - 1:left + 129], 4)
            expected = F.mosaic(sites[None], window.cfa)[0, 0].clamp(0, 1)
        torch.testing.assert_close(case.low.bayer, torch.round(expected * raw.white_level))  # black 0 here
        torch.testing.assert_close(case.target, render[:, top:top + 128, left:left + 128])
    noisy = next(iter(emulated_cases([str(SAMPLE)], scale=4, size=128, crops=1, geometry=geometry)))
    again = next(iter(emulated_cases([str(SAMPLE)], scale=4, size=128, crops=1, geometry=geometry)))
    assert torch.equal(noisy.low.bayer, again.low.bayer)  # seeded: the same noise every run
    assert not torch.equal(noisy.low.bayer, cases[0].low.bayer)


def test_each_lr_raw_states_the_noise_its_capture_added(tmp_path):
    """The file states a NoiseProfile: every noisy LR window states it (a native capture's noise, added
    at full strength in the centred geometry), every clean one states none; the noise its sites keep of
    the HR's own is in the target too, and is not stated."""
    scene = torch.linspace(0.05, 0.8, 256)[None].expand(256, 256)
    profile = torch.tensor([[1e-3, 2e-5]])
    path = tmp_path / "ramp.dng"
    rz.write_dng(path, rz.RawImage(bayer=(scene * 16000 + 200).round(), cfa="RGGB", black_level=200,
                                   white_level=16200, wb_gains=[1.8, 1.0, 1.5], cam_to_srgb=torch.eye(3),
                                   noise_profile=profile))
    for noise, expected in ((True, profile.expand(3, 2)), (False, torch.zeros(3, 2))):
        cases = list(emulated_cases([str(path)], scale=4, size=64, crops=2, noise=noise))
        for case in cases:
            torch.testing.assert_close(case.low.noise_profile, expected)


def test_textured_windows_prefer_texture_and_do_not_overlap():
    image = torch.zeros(3, 100, 100)  # a 3 x 3 grid of 32 px windows from (2, 2)
    image[:, 40:60, 40:60] = torch.rand(3, 20, 20)
    image[:, 8:20, 40:60] = 0.5 * torch.rand(3, 12, 20)
    assert textured_windows(image, 32, 2) == [(34, 34), (2, 34)]
    with pytest.raises(ValueError, match="do not fit"):
        textured_windows(image, 32, 10)


def test_baselines_render_the_lr_raw_and_zoom_it():
    case = next(iter(emulated_cases([str(SAMPLE)], scale=4, size=128, crops=1, noise=False)))
    outputs = {name: baseline(name, case.low, 4) for name in ("libraw", "classical", "bilinear")}
    for name, image in outputs.items():
        assert image.shape == (3, 128, 128)
        assert 17 < psnr(image, case.target) < 45, name  # a 4x zoom of the most textured window: close, not equal
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline("lanczos", case.low, 4)


def test_paired_statistics_by_hand():
    assert mean_se([1.0, 2.0, 3.0]) == pytest.approx((2.0, math.sqrt(1.0 / 3)))
    result = paired([3.0, 2.0, 5.0, 1.0], [1.0, 2.5, 4.0, 0.0])
    differences = [2.0, -0.5, 1.0, 1.0]
    mean = sum(differences) / 4
    se = math.sqrt(sum((d - mean) ** 2 for d in differences) / 3 / 4)
    from scipy.stats import ttest_1samp

    assert result == pytest.approx({"mean": mean, "se": se, "p": ttest_1samp(differences, 0).pvalue, "win_rate": 0.75,
                                    "wins": 3, "n": 4})


def test_statistics_count_windows_not_phases():
    """Four phases of two windows: the phases are averaged inside each window, so n = 2 and the SE is
    that of two window means."""
    rows = []
    for window, base in ((0, 1.0), (1, 3.0)):
        for phase, jitter in zip("ABCD", (0.0, 0.1, -0.1, 0.2)):
            rows.append({"source": "a.dng", "window": window, "cfa": phase, "m": base + jitter})
    means = by_window(rows, "m")
    assert list(means.values()) == pytest.approx([1.05, 3.05])
    theirs = [{**row, "m": row["m"] - 1.0 - 0.5 * row["window"]} for row in rows]
    result = paired_rows(rows, theirs, "m")
    assert result["n"] == 2 and result["mean"] == pytest.approx(1.25) and result["se"] == pytest.approx(0.25)
    # sd 0.1 * sqrt(2): p < 0.05 first at 11 units (t with 10 degrees of freedom: 2.23 * 0.141 / sqrt(11) < 0.1)
    assert units_needed(0.1, 0.1, 2) == 11
    assert units_needed(1.0, 0.1, 10) == 10  # already significant
    assert units_needed(1.0, 0.0, 1) is None  # one unit: no spread to extrapolate
    sd = 0.3 * math.sqrt(24)
    needed = units_needed(0.5, 0.3, 24)
    assert t_test_p(0.5, sd / math.sqrt(needed), needed) < 0.05 <= t_test_p(0.5, sd / math.sqrt(needed - 1), needed - 1)


def test_color_matched_psnr_forgives_an_affine_colour_change_only():
    target = torch.rand(3, 32, 32)
    mixed = (
        torch.einsum("ij,jhw->ihw", torch.tensor([[0.8, 0.1, 0.0], [0.0, 0.9, 0.05], [0.1, 0.0, 0.7]]), target) + 0.02
    )
    assert color_matched_psnr(mixed, target) > 80 and psnr(mixed, target) < 30
    blurred = F.resize(F.resize(target[None], 0.5), 2.0)[0]
    assert color_matched_psnr(blurred, target) < 25


def test_score_searches_the_shift():
    target = torch.rand(3, 40, 40)
    shifted = target.roll((1, -2), (-2, -1))
    assert score(shifted, target, 2)["psnr"] > 80 and score(shifted, target, 0)["psnr"] < 20


def test_metrics():
    x = torch.rand(3, 40, 40)
    assert psnr(x, x) == float("inf") and ssim(x, x) == pytest.approx(1.0)
    noisy = (x + 0.01 * torch.randn_like(x)).double()
    assert psnr(noisy, x) == pytest.approx(10 * torch.log10(1 / ((noisy - x.double()) ** 2).mean()).item())
    assert ssim(noisy, x) < 1 and ssim(noisy, x) == pytest.approx(ssim(x, noisy))
    assert ssim(x.roll(3, -1), x) < ssim(noisy, x)


def test_lpips_says_why_it_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    lpips_model.cache_clear()
    try:
        model, reason = lpips_model()
        assert model is None and "alexnet-owt-7be5be79.pth" in reason
    finally:
        lpips_model.cache_clear()


def test_evaluate_writes_tables_with_paired_comparisons_and_figure(tmp_path, tiny_checkpoint):
    cases = list(emulated_cases([str(SAMPLE)], scale=4, size=128, crops=2))
    result = evaluate({"tiny": tiny_checkpoint}, cases, scale=4, out=str(tmp_path))
    assert [row["method"] for row in result["summary"]] == ["libraw", "classical", "bilinear", "tiny"]
    assert all(row["cases"] == 8 and row["windows"] == 2 for row in result["summary"])
    assert all(c["psnr"]["n"] == 2 for c in result["comparisons"] if c["cfa"] == "all")
    overall = [c for c in result["comparisons"] if c["cfa"] == "all"]
    assert [(c["model"], c["baseline"]) for c in overall] == [("tiny", "libraw"), ("tiny", "classical"),
                                                              ("tiny", "bilinear")]
    assert {c["cfa"] for c in result["comparisons"]} == {"all", "RGGB", "GRBG", "GBRG", "BGGR"}
    assert sorted(os.listdir(tmp_path)) == ["figure.png", "results.csv", "results.json", "results.md"]
    gallery = rz.imageio.read_image(tmp_path / "figure.png")  # one row per window: LR, 4 methods, target
    assert gallery.shape[-2:] == (2 * (256 + 24 + 6) - 6, 6 * (256 + 6) - 6)
    table = (tmp_path / "results.md").read_text()
    assert "| tiny vs libraw | all |" in table and ("unavailable" in table) == (lpips_model()[0] is None)


def test_a_model_scored_at_a_multiple_of_its_factor_is_its_zoom_then_bicubic(tiny_checkpoint):
    low = next(emulated_cases([str(SAMPLE)], scale=8, size=128, crops=1, phases=[(0, 0)])).low
    own = ModelMethod(tiny_checkpoint)(low)
    at_eight = ModelMethod(tiny_checkpoint, scale=8)(low)
    assert own.shape[-2:] == (64, 64) and at_eight.shape[-2:] == (128, 128)
    torch.testing.assert_close(at_eight, F.resize(own, 2))
    with pytest.raises(ConfigError, match="cannot zoom 6x"):
        ModelMethod(tiny_checkpoint, scale=6)


def test_a_pipeline_at_a_multiple_of_its_networks_factor_resamples_the_rest(tiny_checkpoint):
    low = next(emulated_cases([str(SAMPLE)], scale=8, size=128, crops=1, phases=[(0, 0)])).low
    own = rz.Pipeline.default(weights=tiny_checkpoint)
    at_eight = rz.Pipeline.default(scale=8, weights=tiny_checkpoint)
    assert own.names[-1] == "gamma" and at_eight.names[-1] == "resample"
    with torch.no_grad():
        torch.testing.assert_close(at_eight(low), F.resize(own(low), 2))
    for bad in (2, 6):
        with pytest.raises(ConfigError, match=f"cannot zoom {bad}x: the scale must be a multiple"):
            rz.Pipeline.default(scale=bad, weights=tiny_checkpoint)
    with pytest.raises(ConfigError, match="cannot zoom 6x"):
        rz.Pipeline.learned(own["zoom"], scale=6)


def test_zoom_and_eval_commands(tmp_path, tiny_checkpoint):
    from rawzoom_isp.cli import main

    raw = rz.read_raw(SAMPLE)
    rz.write_dng(tmp_path / "small.dng", raw.crop(0, 0, 64, 96))
    out = tmp_path / "z.png"
    assert main(["zoom", str(tmp_path / "small.dng"), "-o", str(out), "--weights", tiny_checkpoint, "--compare"]) == 0
    assert rz.imageio.read_image(out).shape == (3, 256, 384)
    assert rz.imageio.read_image(tmp_path / "z_libraw.png").shape == (3, 256, 384)
    # A digital zoom: the centre quarter at 4x is the input's size; a region, in display coordinates.
    rz.write_dng(tmp_path / "frame.dng", raw.crop(0, 0, 128, 160))
    assert main(["zoom", str(tmp_path / "frame.dng"), "-o", str(tmp_path / "c.png"), "--weights", tiny_checkpoint,
                 "--centre", "4"]) == 0
    assert rz.imageio.read_image(tmp_path / "c.png").shape == (3, 128, 160)
    # Any factor above 1: the model's 4x, then a resample to the input's size.
    assert main(["zoom", str(tmp_path / "frame.dng"), "-o", str(tmp_path / "c25.png"), "--weights", tiny_checkpoint,
                 "--centre", "2.5"]) == 0
    assert rz.imageio.read_image(tmp_path / "c25.png").shape == (3, 128, 160)
    for bad in ("1", "0.5", "nan", "x"):
        with pytest.raises(SystemExit):
            main(["zoom", str(tmp_path / "frame.dng"), "-o", str(tmp_path / "bad.png"), "--centre", bad])
    assert main(["zoom", str(tmp_path / "frame.dng"), "-o", str(tmp_path / "r.png"), "--weights", tiny_checkpoint,
                 "--region", "10", "20", "30", "40"]) == 0
    assert rz.imageio.read_image(tmp_path / "r.png").shape == (3, 120, 160)
    assert main(["zoom", str(tmp_path / "frame.dng"), "-o", str(tmp_path / "x.png"), "--weights", tiny_checkpoint,
                 "--region", "100", "20", "30", "40"]) == 1
    assert main(["zoom", str(tmp_path / "frame.dng"), "-o", str(tmp_path / "big.png"), "--weights", tiny_checkpoint,
                 "--max-pixels", "1000"]) == 1
    assert not (tmp_path / "big.png").exists()
    assert main(["eval", "--weights", tiny_checkpoint, "--raws", str(SAMPLE), "--crops", "1", "--size", "128",
                 "--phases", "native", "--no-period", "-o", str(tmp_path / "ev")]) == 0
    conditions = ["centred-noisy", "centred-clean", "footprint-noisy", "footprint-clean"]
    assert sorted(os.listdir(tmp_path / "ev")) == sorted(["results.json", "results.md", *conditions])
    summary = (tmp_path / "ev" / "results.md").read_text()
    assert all(f"| {condition} | tiny | all |" in summary for condition in conditions)
    # At 8x a 4x checkpoint is scored as its zoom, then bicubic 2x; --scale 2 is not a multiple of 4.
    assert main(["eval", "--weights", tiny_checkpoint, "--raws", str(SAMPLE), "--scale", "8", "--crops", "1",
                 "--size", "128", "--phases", "native", "--no-period", "--geometry", "centred", "--noise", "none",
                 "-o", str(tmp_path / "ev8")]) == 0
    assert "| centred-clean | tiny | all |" in (tmp_path / "ev8" / "results.md").read_text()
    assert main(["eval", "--weights", tiny_checkpoint, "--raws", str(SAMPLE), "--scale", "2", "--crops", "1",
                 "-o", str(tmp_path / "ev2")]) == 1
    assert not (tmp_path / "ev2").exists()
    # --scale: a multiple of the checkpoint's factor, the rest bicubic; 6x is not one of 4x.
    assert main(["zoom", str(tmp_path / "small.dng"), "-o", str(tmp_path / "z8.png"), "--weights", tiny_checkpoint,
                 "--scale", "8"]) == 0
    assert rz.imageio.read_image(tmp_path / "z8.png").shape == (3, 512, 768)
    assert main(["zoom", str(tmp_path / "small.dng"), "-o", str(tmp_path / "z6.png"), "--weights", tiny_checkpoint,
                 "--scale", "6"]) == 1
    assert not (tmp_path / "z6.png").exists()
    assert main(["zoom", str(tmp_path / "small.dng"), "-o", str(tmp_path / "bad.png"), "--weights",
                 str(tmp_path / "absent.pt")]) == 1
    assert not (tmp_path / "bad.png").exists()
    assert main(["train", "--config", str(tmp_path / "absent.toml")]) == 1
