"""SR-RAW: pairing by EXIF focal length, the field-of-view crop, ECC alignment, JPEG orientation,
the original's white balance, the cache, skipped pairs; then `rawzoom train` and `rawzoom eval` end
to end on an SR-RAW-shaped folder (DNGs written by rz.write_dng at seven focal lengths, JPEGs with
EXIF focal length and orientation)."""
import json
import os

import numpy as np
import pytest
import torch
from conftest import SAMPLE

import rawzoom_isp as rz
from rawzoom_isp.cli import main
from rawzoom_isp.data import SRRawDataset
from rawzoom_isp.data.ecc import warp_affine
from rawzoom_isp.isp import functional as F

FOCALS = (240, 157, 105, 70, 50, 35, 24)  # 00001 (longest) .. 00007
SIDE = 192  # every capture's size, as a sensor's


def _write_jpeg(path, rgb, focal, orientation=1):
    from PIL import Image

    array = (rgb.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    exif = Image.Exif()
    exif[274] = orientation
    if focal:
        exif.get_ifd(0x8769)[37386] = float(focal)
    Image.fromarray(array).save(path, quality=97, exif=exif)


def _affine(angle_deg, scale, tx, ty):
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty],
                     [0, 0, 1.0]])


def _scene():
    raw = rz.read_raw(SAMPLE)
    return rz.Pipeline.classical(demosaic="bilinear")(raw)[:, :, 128:896]  # 768 x 768 of real texture


def _capture(scene, focal):
    """What a camera at ``focal`` mm sees of the scene (24 mm: all of it), at the sensor's size."""
    side = round(scene.shape[1] * 24 / focal)
    top = (scene.shape[1] - side) // 2
    return F.resize_to(scene[None, :, top:top + side, top:top + side], SIDE, SIDE)[0]


def write_sequence(folder, scene, orientation=1, exif_focals=FOCALS, misalign=None, wb_file=False):
    """Seven captures at FOCALS; their JPEGs say ``exif_focals`` (None: no focal length)."""
    folder.mkdir(parents=True)
    for k, (focal, exif_focal) in enumerate(zip(FOCALS, exif_focals), start=1):
        view = _capture(scene, focal)
        mosaic = F.mosaic(F.srgb_degamma(view), "RGGB")[0]
        raw = rz.RawImage(bayer=(mosaic * 4000 + 100).round(), cfa="RGGB", black_level=100, white_level=4100,
                          wb_gains=[1.8, 1.0, 1.6], cam_to_srgb=torch.eye(3), focal_length_mm=float(focal),
                          make="Sony", model="test")
        rz.write_dng(folder / f"{k:05d}.dng", raw)
        jpeg = view if misalign is None or k != 1 else warp_affine(view, misalign[:2], view.shape[-2:])
        # A camera stores the JPEG's pixels as the sensor saw them, like the raw, and tags how to turn them.
        _write_jpeg(folder / f"{k:05d}.JPG", jpeg, exif_focal, orientation)
    if wb_file:
        (folder / "wb.txt").write_text("WB\n" + "".join(f"./{folder.name}/{k:05d}:\n2.0 1.0 1.0 1.25\n"
                                                        for k in range(1, 8)))


@pytest.fixture(scope="module")
def srraw_root(tmp_path_factory):
    """train/00001: aligned; train/00002: its 00001 JPEG misaligned by a known affine; test/00003."""
    root = tmp_path_factory.mktemp("srraw")
    scene = _scene()
    known = _affine(0.6, 1.01, 2.5, -1.5)
    write_sequence(root / "train" / "00001", scene)
    write_sequence(root / "train" / "00002", scene.flip(-1), misalign=known)
    write_sequence(root / "test" / "00003", scene.flip(-2))
    return root, known


def test_pairing_fov_crop_alignment_and_cache(srraw_root, tmp_path):
    root, known = srraw_root
    dataset = SRRawDataset(str(root), scale=4, split="train", patch=None, target_margin=0, align_downscale=1,
                           cache_dir=str(tmp_path / "cache"), augment=False)
    assert len(dataset) == 6 and [p["ids"] for p in dataset.pairs[:3]] == [(5, 1), (6, 2), (7, 3)]
    pair = dataset.load(3, dataset.generator(3))  # 00005 -> 00001 of the misaligned sequence
    side = SIDE * 50 // 240 // 2 * 2  # the 00005 crop that 00001 sees
    assert pair.mosaic.shape[-2:] == (side, side) and pair.target.shape[-2:] == (4 * side, 4 * side)
    # The estimated warp against the known one (target px), at the crop's corners.
    warp = np.vstack([pair.info["warp"].double().numpy(), [0, 0, 1]])
    n = 4 * 240 / 50 / 4.8  # the target JPEG's scale relative to 4 x the crop (focal ratio 4.8)
    assert np.isfinite(warp).all() and abs(np.linalg.det(warp[:2, :2]) - 1) < 0.1 and n > 0
    entries = os.listdir(tmp_path / "cache")
    assert len(entries) == 1 and entries[0].endswith(".pt")  # one prepared pair cached, atomically
    assert torch.load(tmp_path / "cache" / entries[0], weights_only=True)["cfa"] == pair.cfa  # readable as cached
    again = SRRawDataset(str(root), scale=4, split="train", patch=None, target_margin=0, align_downscale=1,
                         cache_dir=str(tmp_path / "cache"), augment=False)
    torch.testing.assert_close(again.load(3, again.generator(3)).target, pair.target)
    assert not any(name.startswith(".") for name in os.listdir(root / "train" / "00002"))  # dataset untouched


def test_the_aligned_target_matches_the_input(srraw_root, tmp_path):
    root, _ = srraw_root
    dataset = SRRawDataset(str(root), scale=4, split="train", patch=None, target_margin=0, align_downscale=1,
                           cache_dir=str(tmp_path), augment=False)
    for index in (0, 3):  # aligned, and misaligned then ECC-aligned
        pair = dataset.load(index, dataset.generator(index))
        target = F.apply_white_balance(pair.target.float(), pair.wb_gains, gamma=2.2, clip=True)
        low = F.resize(target[None], 0.25)[0]
        lr = rz.data.render_rgb(pair.mosaic, pair.cfa, torch.ones(3), torch.eye(3))
        correlation = torch.corrcoef(torch.stack([low.mean(0).flatten(), lr.mean(0).flatten()]))[0, 1]
        assert correlation > 0.9, (index, float(correlation))


def test_jpeg_orientation_is_ignored_like_the_raws(tmp_path):
    scene = _scene()
    write_sequence(tmp_path / "srraw" / "00004", scene, orientation=3)
    dataset = SRRawDataset(str(tmp_path / "srraw"), scale=4, patch=None, target_margin=0, align_downscale=1,
                           cache_dir=str(tmp_path / "cache"), augment=False)
    pair = dataset.load(0, dataset.generator(0))
    low = F.resize(pair.target.float()[None], 0.25)[0].mean(0).flatten()
    lr = rz.data.render_rgb(pair.mosaic, pair.cfa, torch.ones(3), torch.eye(3)).mean(0).flatten()
    assert torch.corrcoef(torch.stack([low, lr]))[0, 1] > 0.9  # upside down would be ~0


def test_white_balance_as_the_original(tmp_path):
    scene = _scene()
    write_sequence(tmp_path / "a" / "00001", scene, wb_file=True)
    write_sequence(tmp_path / "b" / "00001", scene)
    with_file = SRRawDataset(str(tmp_path / "a"), patch=None, target_margin=0, align_downscale=1,
                             cache_dir=str(tmp_path / "c1"), augment=False)
    computed = SRRawDataset(str(tmp_path / "b"), patch=None, target_margin=0, align_downscale=1,
                            cache_dir=str(tmp_path / "c2"), augment=False)
    torch.testing.assert_close(with_file.load(0, with_file.generator(0)).wb_gains, torch.tensor([2.0, 1.0, 1.25]))
    gains = computed.load(0, computed.generator(0)).wb_gains  # LibRaw with / without camera WB
    assert gains[1] == 1 and 1.0 < float(gains[0]) < 3.0 and 1.0 < float(gains[2]) < 3.0


def test_missing_focal_lengths_and_far_ratios_are_skipped_and_counted(tmp_path, caplog):
    scene = _scene()
    write_sequence(tmp_path / "srraw" / "00001", scene, exif_focals=(240, 157, 105, 70, None, 35, 24))
    write_sequence(tmp_path / "srraw" / "00002", scene, exif_focals=(240, 157, 105, 70, 200, 35, 24))
    dataset = SRRawDataset(str(tmp_path / "srraw"), cache_dir=str(tmp_path / "cache"))
    assert len(dataset) == 4
    assert dataset.summary == "4 pairs used, 2 skipped (1 focal ratio far from 4x; 1 no EXIF focal length)"
    assert "no EXIF focal length" in caplog.text
    with pytest.raises(FileNotFoundError, match="split 'train'"):
        SRRawDataset(str(tmp_path / "srraw"), split="train")


def test_train_and_eval_on_an_srraw_folder(srraw_root, tmp_path, monkeypatch):
    root, _ = srraw_root
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    config = {"data": {"source": "srraw", "root": str(root), "split": "train", "patch": 8, "target_margin": 4,
                       "cache_dir": str(tmp_path / "train-cache")},
              "model": {"arch": "zoomnet", "width": 8, "blocks": 1, "up_channels": 8, "output": "display"},
              "loss": {"type": "l1", "tolerance": 4},
              "optim": {"steps": 3, "batch_size": 2}, "train": {"out": str(tmp_path / "run"), "checkpoint_every": 1,
                                                               "log_every": 1}}
    import tomli_w

    (tmp_path / "srraw.toml").write_text(tomli_w.dumps(config))
    assert main(["train", "--config", str(tmp_path / "srraw.toml")]) == 0
    assert main(["eval", "--weights", str(tmp_path / "run" / "model.pt"), "--srraw", str(root), "--split", "test",
                 "--cache-dir", str(tmp_path / "eval-cache"), "-o", str(tmp_path / "ev")]) == 0
    result = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert {row["method"] for row in result["summary"]} == {"model", "libraw", "classical", "bilinear"}
    assert result["summary"][0]["cases"] == 3  # the test split's three 4x pairs
    assert any((tmp_path / "train-cache").iterdir()) and any((tmp_path / "eval-cache").iterdir())
    assert not (tmp_path / "cache" / "rawzoom_isp").exists()  # the default, $XDG_CACHE_HOME/rawzoom_isp/srraw
