"""The shipped learned zoom on the bundled HERO7 raw (a camera it never saw): the same scene at all
four CFA phases gives the same image, no grid at the packed or mosaic period beyond what LibRaw +
bicubic shows, and it beats LibRaw + bicubic on an emulated 4x-smaller capture. (The full protocol,
24 windows x 4 phases with standard errors, is `rawzoom eval`; its results are in the model card.)"""
import pytest
import torch
from conftest import SAMPLE

import rawzoom_isp as rz
from rawzoom_isp.data.emulated import emulate_low, noise_model
from rawzoom_isp.eval.evaluate import baseline, score
from rawzoom_isp.eval.metrics import psnr
from rawzoom_isp.isp import functional as F
from rawzoom_isp.raw.reader import libraw_render

PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))


@pytest.fixture(scope="module")
def scene():
    """A 512 px window of the bundled raw, its 4x-smaller emulated capture (noise matched), target."""
    raw = rz.read_raw(SAMPLE)
    window = raw.crop(128, 256, 512, 512)
    normalised = F.subtract_black_level(window.bayer[None], window.black_level, window.white_level)
    low = emulate_low(normalised, window.cfa, 4, noise_model(raw), 1.0, torch.Generator().manual_seed(0))
    return window.with_mosaic(low), libraw_render(SAMPLE)[:, 128:640, 256:768]


def block_ratio(image: torch.Tensor, period: int) -> float:
    """How much the mean absolute gradient varies with the position inside a period (max / min over
    the positions, rows and columns): 1 for no periodic structure."""
    grey = image.mean(0)
    ratios = []
    for gradient in ((grey[:, 1:] - grey[:, :-1]).abs().mean(0), (grey[1:] - grey[:-1]).abs().mean(1)):
        usable = gradient.shape[0] // period * period
        profile = gradient[:usable].reshape(-1, period).mean(0)
        ratios.append(float(profile.max() / profile.min()))
    return max(ratios)


def test_the_same_scene_at_every_cfa_phase_gives_the_same_image(scene):
    low, _ = scene
    pipe = rz.Pipeline.default(scale=4)
    outputs = {phase: pipe(low.crop(*phase, 124, 124)) for phase in PHASES}
    reference = outputs[(0, 0)]
    for (dy, dx), image in outputs.items():
        inner = image[:, 8:-8, 8:-8]
        same_place = reference[:, 4 * dy + 8:4 * dy + 8 + inner.shape[1], 4 * dx + 8:4 * dx + 8 + inner.shape[2]]
        assert psnr(inner, same_place) > 38, (dy, dx)  # the noise of the input is at about 30 dB


def test_no_grid_at_the_packed_or_mosaic_period(scene):
    low, _ = scene
    pipe = rz.Pipeline.default(scale=4)
    for phase in PHASES:
        crop = low.crop(*phase, 124, 124)
        ours, theirs = pipe(crop), baseline("libraw", crop, 4)
        assert block_ratio(ours, 8) < 1.1 * block_ratio(theirs, 8), phase  # packed period (2 LR px)
        assert block_ratio(ours, 2) < 1.1, phase  # mosaic period


def test_beats_libraw_and_bicubic_on_a_held_out_camera(scene):
    low, target = scene
    ours = rz.Pipeline.default(scale=4)(low)
    theirs = baseline("libraw", low, 4)
    mine, other = score(ours, target, 2), score(theirs, target, 2)
    assert mine["psnr"] > other["psnr"] + 0.5 and mine["ssim"] > other["ssim"]
    assert mine["psnr_cm"] > other["psnr_cm"]
