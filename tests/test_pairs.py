"""Pair sources: the shared crop policy, synthetic pairs, pairs emulated from real raws, SR-RAW."""

import numpy as np
import pytest
import torch
from conftest import RAW_DIR, SAMPLE

import rawzoom_isp as rz
from rawzoom_isp.data import EmulatedRawPairs, PairDataset, SyntheticPairs, ZoomPair, bayer_downscale
from rawzoom_isp.data.emulated import linear_demosaic, noise_model
from rawzoom_isp.imageio import write_image
from rawzoom_isp.isp import functional as F
from rawzoom_isp.raw.cfa import PACK_INDEX, PATTERNS
from rawzoom_isp.raw.image import colour_noise
from rawzoom_isp.synth.sensor import centred_sites

DIHEDRAL = [(t, v, h) for t in (False, True) for v in (False, True) for h in (False, True)]


def _transformed(image, transpose, flip_v, flip_h):
    image = image.transpose(-1, -2) if transpose else image
    dims = [d for d, flag in ((-2, flip_v), (-1, flip_h)) if flag]
    return image.flip(dims) if dims else image


def _locate(image, patch):
    """(transpose, flip_v, flip_h, top, left): ``patch`` so transformed is the window (top, left) of
    ``image`` (C, H, W); None if no flip or transpose of ``patch`` is a window of ``image``."""
    h, w = patch.shape[-2:]
    for transpose, flip_v, flip_h in DIHEDRAL:
        candidate = _transformed(patch, transpose, flip_v, flip_h)  # the 8 run through the whole group
        ch, cw = candidate.shape[-2:]
        hits = (image[:, : image.shape[1] - ch + 1, : image.shape[2] - cw + 1] - candidate[:, :1, :1]).abs().amax(
            0
        ) < 1e-6
        for y, x in hits.nonzero().tolist():
            if torch.allclose(image[:, y:y + ch, x:x + cw], candidate, atol=1e-6):
                return transpose, flip_v, flip_h, y, x
    return None


class CodedPairs(PairDataset):
    """LR RGB with distinct random colours; mosaic = its CFA samples; target = its N x nearest copy."""

    def __init__(self, cfa, **options):
        super().__init__(**options)
        self.cfa = cfa
        self.lr = torch.rand(3, 40, 48, generator=torch.Generator().manual_seed(0))

    def __len__(self):
        return 3

    def load(self, index, generator):
        n = self.scale
        target = self.lr.repeat_interleave(n, -2).repeat_interleave(n, -1)
        return ZoomPair(F.mosaic(self.lr, self.cfa), self.cfa, target, torch.ones(3))


@pytest.mark.parametrize("cfa", PATTERNS)
def test_windows_at_any_phase_augmented_and_unified_to_rggb(cfa):
    dataset = CodedPairs(cfa, scale=4, patch=8, augment=True)
    seen = set()
    for epoch in range(8):
        dataset.set_epoch(epoch)
        for index in range(len(dataset)):
            sample = dataset[index]
            packed, target = sample["input"], sample["target"]
            assert packed.shape == (4, 8, 8) and target.shape == (3, 64, 64) and sample["cfa"] == "RGGB"
            lr_view = target[:, ::4, ::4]  # the LR colours the window saw, as the network sees them
            torch.testing.assert_close(packed, F.pack_bayer(F.mosaic(lr_view, "RGGB"), "RGGB"))
            found = _locate(dataset.lr, lr_view)
            assert found is not None
            transpose, flip_v, flip_h, top, left = found
            seen.add((top % 2, left % 2, transpose))
    assert {(p, q) for p, q, _ in seen} == {(0, 0), (0, 1), (1, 0), (1, 1)}  # every phase
    assert {t for _, _, t in seen} == {False, True}  # transposes too

def test_samples_are_deterministic_per_seed_epoch_index():
    dataset = CodedPairs("RGGB", scale=2, patch=6)
    first = [dataset[i]["input"] for i in range(3)]
    again = [dataset[i]["input"] for i in reversed(range(3))][::-1]  # any order, any worker
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    dataset.set_epoch(1)
    assert not all(torch.equal(a, dataset[i]["input"]) for i, a in enumerate(first))
    other_seed = CodedPairs("RGGB", scale=2, patch=6, seed=5)
    assert not all(torch.equal(a, other_seed[i]["input"]) for i, a in enumerate(first))
    with pytest.raises(IndexError):
        dataset[3]


def test_rgb_arm_input_is_8_bit_srgb():
    dataset = CodedPairs("BGGR", scale=2, patch=6, input_format="rgb")
    sample = dataset[0]
    assert sample["input"].shape == (3, 12, 12)
    levels = sample["input"] * 255
    torch.testing.assert_close(levels, levels.round(), atol=1e-4, rtol=0)


@pytest.mark.parametrize("cfa", PATTERNS)
def test_bayer_downscale_averages_each_site_footprint(cfa):
    height, width, n = 16, 24, 4
    rows = torch.arange(height, dtype=torch.float64)[:, None].expand(height, width)
    low = bayer_downscale(rows[None, None].clone(), cfa, n)[0, 0]
    assert low.shape == (4, 6)
    packed = F.pack_bayer(low[None, None], cfa)[0]
    for k, position in enumerate(PACK_INDEX[cfa]):
        dy = position // 2
        # LR site (2i + dy) covers HR rows [n (2i + dy), n (2i + dy) + n); its colour sits at rows of parity dy.
        for i in range(packed.shape[1]):
            start = n * (2 * i + dy)
            expected = np.mean([r for r in range(start, start + n) if r % 2 == dy])
            assert float(packed[k, i, 0]) == pytest.approx(expected)
    flat = torch.full((1, 1, 16, 16), 0.25)
    torch.testing.assert_close(bayer_downscale(flat, cfa, 2), torch.full((1, 1, 8, 8), 0.25))
    with pytest.raises(ValueError):
        bayer_downscale(flat, cfa, 3)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    raw = rz.read_raw(SAMPLE)
    for i, (top, left) in enumerate([(0, 0), (256, 400)]):
        write_image(folder / f"view{i}.png", rz.Pipeline.classical(demosaic="half")(raw.crop(top, left, 512, 512)))
    return folder


@pytest.mark.parametrize("method", ["brooks", "paper"])
def test_synthetic_pairs(image_folder, method):
    dataset = SyntheticPairs(str(image_folder), scale=4, method=method, patch=16, blur_sigma=0.5, misalign=0.5)
    assert len(dataset) == 2
    sample = dataset[1]
    assert sample["input"].shape == (4, 16, 16) and sample["target"].shape == (3, 128, 128)
    assert sample["pairs"] == "synthetic" and sample["source"] == "view1.png"
    assert float(sample["input"].min()) >= -0.2 and float(sample["input"].max()) <= 1.3
    # The noise it was given, told per colour: one (S, O) for all three, O > 0 for both methods.
    assert sample["noise"].shape == (3, 2) and float(sample["noise"][0, 1]) > 0
    assert torch.equal(sample["noise"], sample["noise"][:1].expand(3, 2))
    # The target is a window of the image itself.
    assert _locate(rz.imageio.read_image(image_folder / "view1.png"), sample["target"]) is not None


def test_synthetic_full_image_and_rgb_arm(image_folder):
    whole = SyntheticPairs(str(image_folder), scale=4, patch=None, noise=False)[0]
    assert whole["input"].shape == (4, 32, 32) and whole["target"].shape == (3, 256, 256)
    assert not whole["noise"].any()  # none added, none told
    rgb = SyntheticPairs(str(image_folder), scale=4, patch=16, input_format="rgb")[0]
    assert rgb["input"].shape == (3, 32, 32)


def _real_raw_folder(tmp_path):
    """The bundled HERO7 crop plus, when present, the real crops in ../shared."""
    second = RAW_DIR / "dng" / "gopro_hero6_gopr0024_crop1024x768_y1116_x1488.dng"
    return [str(SAMPLE)] + ([str(second)] if second.exists() else [])


def test_emulated_pairs_from_real_raws(tmp_path):
    paths = _real_raw_folder(tmp_path)
    clean = EmulatedRawPairs(paths, scale=4, reference="libraw", noise_match=False, patch=32, degradation="footprint")
    sample = clean[0]
    assert sample["input"].shape == (4, 32, 32) and sample["target"].shape == (3, 256, 256)
    assert "noise" not in sample  # without noise_match the LR's noise is not known
    assert sample["pairs"] == "emulated" and sample["cfa"] == "RGGB"
    raw = rz.read_raw(SAMPLE)
    normalised = F.subtract_black_level(raw.bayer[None], raw.black_level, raw.white_level)
    render = rz.raw.reader.libraw_render(SAMPLE)
    phases = set()
    for epoch in range(12):
        pair = clean.load(0, clean.generator(0, epoch))
        top, left = pair.info["window"]
        phases.add((top % 2, left % 2))
        assert pair.cfa == raw.cfa.shifted(top, left)
        window = normalised[:, top:top + 256, left:left + 256]
        torch.testing.assert_close(pair.mosaic, bayer_downscale(window[None], pair.cfa, 4)[0])
        torch.testing.assert_close(pair.target, render[:, top:top + 256, left:left + 256], atol=1e-3, rtol=0)
    assert len(phases) > 1
    whole = EmulatedRawPairs(paths[:1], scale=4, reference="classical", patch=None, augment=False,
                             degradation="footprint")
    clean_low = bayer_downscale(normalised[None], raw.cfa, 4)[0]
    expected_variance = None
    for factor in (1.0, 4.0):
        noisy = EmulatedRawPairs(paths[:1], scale=4, reference="classical", patch=None, augment=False,
                                 noise_range=(factor, factor), degradation="footprint"
                                 ).load(0, torch.Generator().manual_seed(1))
        added = F.pack_bayer(noisy.mosaic - clean_low, raw.cfa)
        signal = F.pack_bayer(clean_low, raw.cfa)
        noise = noise_model(raw)  # the file's NoiseProfile
        expected = (factor - 1 / 4) * (noise[:, 0, None, None] * signal + noise[:, 1, None, None])
        inside = (signal > 0.02) & (signal < 0.9)  # unclipped
        assert float(added[inside].var()) == pytest.approx(float(expected[inside].mean()), rel=0.1)
        expected_variance = expected
        # What the LR states: the noise that was added, not what it kept of the HR's (the target has that).
        torch.testing.assert_close(noisy.noise, colour_noise(noise) * (factor - 1 / 4))
    assert whole[0]["input"].shape[-2:] == (96, 128) and expected_variance is not None
    with pytest.raises(ValueError, match="noise_range"):
        EmulatedRawPairs(paths, noise_range=(2.0, 1.0))


def test_centred_pairs_are_block_means_of_the_linear_demosaic():
    raw = rz.read_raw(SAMPLE)
    linear = linear_demosaic(raw, "libraw").half().float()  # the dataset keeps it in half precision
    pairs = EmulatedRawPairs([str(SAMPLE)], scale=4, noise_match=False, patch=16, augment=False, clean_share=1.0)
    for epoch in range(4):
        pair = pairs.load(0, pairs.generator(0, epoch))
        top, left = pair.info["window"]
        assert pair.info["geometry"] == "centred" and pair.cfa == raw.cfa.shifted(top, left)
        window = linear[:, max(top - 1, 0):top + 129, max(left - 1, 0):left + 129]
        if top and left and top + 129 <= raw.shape[0] and left + 129 <= raw.shape[1]:
            expected = F.mosaic(centred_sites(window, 4)[None], pair.cfa)[0]
            torch.testing.assert_close(pair.mosaic, expected.clamp(0, 1), atol=1e-6, rtol=0)
    # The LR site is the mean of its 4 x 4 block: LibRaw's linear AHD keeps each site's own sample.
    normalised = F.subtract_black_level(raw.bayer[None], raw.black_level, raw.white_level)[0]
    sites = F.pack_bayer(normalised[None, None], raw.cfa)[0, 0]
    torch.testing.assert_close(F.pack_bayer(linear[:1, None], raw.cfa)[0, 0], sites, atol=5e-5, rtol=1e-3)


def test_headerless_training_file_with_grey_world_balance(tmp_path):
    raw = rz.read_raw(SAMPLE)
    dump = tmp_path / "dump.raw"
    raw.bayer.numpy().astype("<u2").tofile(dump)
    entry = {"path": str(dump), "shape": list(raw.shape), "cfa": raw.cfa, "black_level": 0,
             "white_level": raw.white_level, "wb_gains": "grey-world"}
    pairs = EmulatedRawPairs([entry], scale=4, patch=16, reference="libraw")
    sample = pairs[0]
    assert sample["source"] == "dump.raw" and sample["input"].shape == (4, 16, 16)
    packed = F.pack_bayer(F.subtract_black_level(raw.bayer[None], 0, raw.white_level)[None], raw.cfa)[0].mean((1, 2))
    green = (packed[1] + packed[2]) / 2
    torch.testing.assert_close(sample["wb_gains"], torch.stack([green / packed[0], torch.tensor(1.0),
                                                                green / packed[3]]), rtol=1e-4, atol=0)
    with pytest.raises(ValueError, match="wb_gains"):
        EmulatedRawPairs([{**entry, "wb_gains": [0, 1, 1]}], scale=4, patch=16)[0]
    with pytest.raises(ValueError, match="wb_gains"):
        EmulatedRawPairs([{k: v for k, v in entry.items() if k != "wb_gains"}], scale=4, patch=16)[0]


def test_dataloader_workers_give_the_same_samples(image_folder):
    dataset = SyntheticPairs(str(image_folder), scale=2, patch=8)
    direct = torch.stack([dataset[i]["input"] for i in range(len(dataset))])
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=2)
    batch = next(iter(loader))
    torch.testing.assert_close(batch["input"], direct)
    assert batch["target"].shape == (2, 3, 32, 32) and batch["cfa"] == ["RGGB", "RGGB"]
