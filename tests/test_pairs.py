"""Pair sources: the shared crop policy, synthetic pairs, pairs emulated from real raws, SR-RAW."""
import os

import numpy as np
import pytest
import torch

import rawzoom_isp as rz
from rawzoom_isp.data import EmulatedRawPairs, PairDataset, SRRawDataset, SyntheticPairs, ZoomPair, bayer_downscale
from rawzoom_isp.imageio import write_image
from rawzoom_isp.isp import functional as F
from rawzoom_isp.raw.cfa import PACK_INDEX, PATTERNS

from conftest import SAMPLE, shared_file


def _is_window(image, patch, flips=True):
    """Whether ``patch`` (C, h, w), or a flip of it, is a window of ``image`` (C, H, W)."""
    h, w = patch.shape[-2:]
    candidates = [patch, patch.flip(-1), patch.flip(-2), patch.flip(-1, -2)] if flips else [patch]
    for candidate in candidates:
        hits = (image[:, : image.shape[1] - h + 1, : image.shape[2] - w + 1] - candidate[:, :1, :1]).abs().amax(0) < 1e-6
        for y, x in hits.nonzero().tolist():
            if torch.allclose(image[:, y:y + h, x:x + w], candidate, atol=1e-6):
                return True
    return False


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
def test_crops_and_flips_keep_cfa_phase_and_alignment(cfa):
    dataset = CodedPairs(cfa, scale=4, patch=8, flips=True)
    flipped = set()
    for epoch in range(6):
        dataset.set_epoch(epoch)
        for index in range(len(dataset)):
            sample = dataset[index]
            packed, target = sample["input"], sample["target"]
            assert packed.shape == (4, 8, 8) and target.shape == (3, 64, 64)
            lr_view = target[:, ::4, ::4]  # the LR colours the crop saw, in the crop's orientation
            torch.testing.assert_close(packed, F.pack_bayer(F.mosaic(lr_view, cfa), cfa))
            flipped.add(bool((lr_view != dataset.lr[:, :16, :16]).any()))
    assert flipped == {True}  # crops move; flips happen (checked above to keep the phase)


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
    assert -0.2 <= float(sample["input"].min()) and float(sample["input"].max()) <= 1.3
    # The target is a window of the image itself.
    assert _is_window(rz.imageio.read_image(image_folder / "view1.png"), sample["target"])


def test_synthetic_full_image_and_rgb_arm(image_folder):
    whole = SyntheticPairs(str(image_folder), scale=4, patch=None, noise=False)[0]
    assert whole["input"].shape == (4, 32, 32) and whole["target"].shape == (3, 256, 256)
    rgb = SyntheticPairs(str(image_folder), scale=4, patch=16, input_format="rgb")[0]
    assert rgb["input"].shape == (3, 32, 32)


def _real_raw_folder(tmp_path):
    """The bundled HERO7 crop plus, when present, the real crops in ../shared."""
    paths = [str(SAMPLE)]
    try:
        paths.append(str(shared_file("dng/gopro_hero6_gopr0024_crop1024x768_y1116_x1488.dng")))
    except pytest.skip.Exception:
        pass
    return paths


def test_emulated_pairs_from_real_raws(tmp_path):
    paths = _real_raw_folder(tmp_path)
    clean = EmulatedRawPairs(paths, scale=4, reference="libraw", noise_match=False, patch=32)
    sample = clean[0]
    assert sample["input"].shape == (4, 32, 32) and sample["target"].shape == (3, 256, 256)
    assert sample["pairs"] == "emulated"
    raw = rz.read_raw(SAMPLE)
    low = bayer_downscale(F.subtract_black_level(raw.bayer[None, None], raw.black_level, raw.white_level), raw.cfa, 4)
    packed = F.pack_bayer(low, raw.cfa)[0]
    # The input is a crop of the Bayer-reduced real mosaic, flipped or not (a flipped packed crop is a
    # window of the flipped mosaic's packing, which for these flips is the flipped packed plane).
    unflipped = EmulatedRawPairs(paths, scale=4, reference="libraw", noise_match=False, patch=32, flips=False)[0]
    assert _is_window(packed, unflipped["input"], flips=False)
    noisy = EmulatedRawPairs(paths[:1], scale=4, reference="classical", noise_match=True, patch=None)
    full = noisy[0]
    added = full["input"] - packed
    noise = rz.synth.estimate_noise(raw)
    expected = (1 - 1 / 4) * (noise[:, 0, None, None] * packed + noise[:, 1, None, None])
    assert float(added.var()) == pytest.approx(float(expected.mean()), rel=0.15)


# --- SR-RAW ------------------------------------------------------------------------------------


def _write_jpeg(path, rgb, focal):
    from PIL import Image

    array = (rgb.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    exif = Image.Exif()
    exif.get_ifd(0x8769)[37386] = float(focal)
    Image.fromarray(array).save(path, quality=97, exif=exif)


def _affine(angle_deg, scale, tx, ty):
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty], [0, 0, 1.0]])


@pytest.fixture(scope="module")
def srraw_root(tmp_path_factory):
    """One sequence: 00001 at 96 mm (target), 00005 at 24 mm (input), the scene being the bundled
    HERO7 render; the target JPEG is misaligned by a known affine A (target px): jpeg(q) = clean(A q)."""
    from rawzoom_isp.data.align import warp_affine

    root = tmp_path_factory.mktemp("srraw")
    sequence = root / "train" / "00042"
    sequence.mkdir(parents=True)
    scene = rz.Pipeline.classical(demosaic="bilinear")(rz.read_raw(SAMPLE))[:, :, 128:896]  # 768 x 768, real texture
    # Input: the whole scene at 256 x 256 (3 x smaller), a Bayer raw of it and its JPEG.
    small = F.resize(scene[None], 1 / 3)[0]
    mosaic = F.mosaic(F.srgb_degamma(small), "RGGB")[0]
    raw = rz.RawImage(bayer=(mosaic * 4000 + 100).round(), cfa="RGGB", black_level=100, white_level=4100,
                      wb_gains=[1.8, 1.0, 1.6], cam_to_srgb=torch.eye(3), focal_length_mm=24.0, make="Sony", model="test")
    rz.write_dng(sequence / "00005.dng", raw)
    _write_jpeg(sequence / "00005.JPG", small, 24)
    # Target: the central quarter of the field of view (64 x 64 input px) at 4 x = 256 x 256, misaligned.
    centre = scene[:, 288:480, 288:480]  # the same field of view at 192 x 192
    clean = F.resize(centre[None], 256 / 192)[0]
    known = _affine(0.6, 1.01, 2.5, -1.5)
    rz.write_dng(sequence / "00001.dng", rz.RawImage(bayer=(mosaic[:64, :64] * 4000 + 100).round(), cfa="RGGB",
                                                     black_level=100, white_level=4100, wb_gains=[2.0, 1.0, 1.5]))
    _write_jpeg(sequence / "00001.JPG", warp_affine(clean, known[:2], (256, 256)), 96)
    return root, known


def test_srraw_pairing_fov_crop_and_alignment(srraw_root):
    root, known = srraw_root
    dataset = SRRawDataset(str(root), scale=4, split="train", patch=None, target_margin=0, align_downscale=1)
    assert len(dataset) == 1 and dataset.pairs[0]["ids"] == (5, 1)
    sample = dataset[0]
    assert sample["input"].shape == (4, 32, 32)  # the 64 x 64 central field of view of the 256 x 256 input
    assert sample["target"].shape == (3, 256, 256)
    assert sample["pairs"] == "SR-RAW"
    # The estimated warp W (crop grid: template(p) = moving(W p)) against the known one:
    # W = S^-1 A^-1 S, S the pixel-centre scaling of the crop grid to the target grid.
    n = 4
    lift = np.array([[n, 0, (n - 1) / 2], [0, n, (n - 1) / 2], [0, 0, 1.0]])
    expected = np.linalg.inv(lift) @ np.linalg.inv(known) @ lift
    warp = np.vstack([sample["warp"].double().numpy(), [0, 0, 1]])
    corners = np.array([[0, 0, 1], [63, 0, 1], [0, 63, 1], [63, 63, 1], [32, 32, 1]], dtype=float).T
    error_target_px = n * np.abs((warp @ corners - expected @ corners)[:2]).max()
    assert error_target_px < 0.5, error_target_px
    assert os.path.isfile(root / "train" / ".rawzoom_align" / "00042.json")  # cached per sequence
    again = SRRawDataset(str(root), scale=4, split="train", patch=None, target_margin=0, align_downscale=1)[0]
    torch.testing.assert_close(again["target"], sample["target"])


def test_srraw_target_margin_and_crops(srraw_root):
    root, _ = srraw_root
    dataset = SRRawDataset(str(root), scale=4, split="train", patch=8, target_margin=16, align_downscale=1)
    sample = dataset[0]
    assert sample["input"].shape == (4, 8, 8) and sample["target"].shape == (3, 64 + 32, 64 + 32)
    with pytest.raises(FileNotFoundError):
        SRRawDataset(str(root / "missing"))


def test_dataloader_workers_give_the_same_samples(image_folder):
    dataset = SyntheticPairs(str(image_folder), scale=2, patch=8)
    direct = torch.stack([dataset[i]["input"] for i in range(len(dataset))])
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=2)
    batch = next(iter(loader))
    torch.testing.assert_close(batch["input"], direct)
    assert batch["target"].shape == (2, 3, 32, 32) and batch["cfa"] == ["RGGB", "RGGB"]
