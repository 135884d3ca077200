"""The experiments (`rawzoom compare`): every arm trains (resumably), is scored with the baselines on
held-out cases, and the report gives paired differences, standard errors, win rates and a verdict."""
import os

import pytest
import torch
from conftest import SAMPLE

import rawzoom_isp as rz
from rawzoom_isp.eval import compare
from rawzoom_isp.models import build_model, save_checkpoint

TINY = {"data": {"patch": 8, "noise_range": [0.5, 2.0]}, "model": {"arch": "packed", "width": 8, "blocks": 1},
        "optim": {"steps": 2, "batch_size": 2}, "train": {"log_every": 1, "checkpoint_every": 1}}


@pytest.fixture(scope="module")
def halves(tmp_path_factory):
    """The bundled raw cut in two: the left half to train on, the right half held out."""
    folder = tmp_path_factory.mktemp("halves")
    raw = rz.read_raw(SAMPLE)
    paths = []
    for name, left in (("left", 0), ("right", 512)):
        paths.append(str(folder / f"{name}.dng"))
        rz.write_dng(paths[-1], raw.crop(0, left, 768, 512))
    return paths


def _config(tmp_path, halves, **compare_options):
    config = {key: dict(value) for key, value in TINY.items()}
    config["compare"] = {"train": [halves[0]], "test": [halves[1]], "out": str(tmp_path / "cmp"), "crops": 1,
                         "size": 128, **compare_options}
    return config


def test_data_type_experiment_reports_paired_statistics_and_resumes(tmp_path, halves):
    config = _config(tmp_path, halves, experiment="data-type", seeds=[0, 1], jpeg_quality=90)
    result = compare(config, progress=False)
    arms = ["real-raw", "synthetic-raw", "synthetic-raw-paper", "rgb"]
    assert set(result["arms"]["summary"]) == {*arms, "libraw", "classical", "bilinear"}
    assert "real-raw vs synthetic-raw" in result["arms"]["pairs"] and "rgb vs libraw" in result["arms"]["pairs"]
    assert result["arms"]["cases"] == 4 and set(result["arms"]["seed_spread_psnr"]) == set(arms)
    report = (tmp_path / "cmp" / "REPORT.md").read_text()
    assert "real > synthetic > RGB" in report and "+-" in report and "Machine" in report and "emulated" in report
    for line in report.split("## What it shows")[1].split("##")[0].strip().splitlines()[:-1]:  # last: seeds
        strengths = ("(clearly: ", "(in the mean, not robustly: ", "cases would settle it)", "(not significantly)")
        assert any(strength in line for strength in strengths), line  # each verdict says how strong
    assert (tmp_path / "cmp" / "arms.png").exists() and (tmp_path / "cmp" / "figure.png").exists()
    model = tmp_path / "cmp" / "rgb-seed1" / "model.pt"
    assert torch.load(model, weights_only=True)["train_config"]["data"]["rgb_render"] == "libraw"
    before = os.path.getmtime(model)
    again = compare(config, progress=False)  # finished arms are not trained again
    assert os.path.getmtime(model) == before
    assert again["arms"]["pairs"]["real-raw vs rgb"] == result["arms"]["pairs"]["real-raw vs rgb"]


def test_loss_experiment_on_misaligned_pairs(tmp_path, halves):
    config = _config(tmp_path, halves, experiment="loss", arms=["l1-aligned", "l1", "cobi"], misalign=1.0,
                     misalign_affine=0.005)
    config["loss"] = {"sample": 64, "patch_size": 3}
    result = compare(config, progress=False)
    assert {"l1-aligned vs l1", "l1 vs cobi"} <= set(result["arms"]["pairs"])
    trained = torch.load(tmp_path / "cmp" / "cobi-seed0" / "model.pt", weights_only=True)["train_config"]
    assert trained["loss"]["type"] == "cobi" and trained["data"]["misalign"] == 1.0
    aligned = torch.load(tmp_path / "cmp" / "l1-aligned-seed0" / "model.pt", weights_only=True)["train_config"]
    assert aligned["data"]["misalign"] == 0.0
    report = (tmp_path / "cmp" / "REPORT.md").read_text()
    assert "cobi vs L1" in report and "shifted by up to 1.0 LR px" in report and "64 sampled positions" in report


def test_fine_tune_experiment_before_and_after(tmp_path):
    init = tmp_path / "init.pt"
    network = {"arch": "packed", "width": 8, "blocks": 1, "scale": 4, "blend_kernel": 3}
    save_checkpoint(init, build_model(network))
    config = {key: dict(value) for key, value in TINY.items() if key != "model"}
    config["compare"] = {"experiment": "fine-tune", "init": str(init), "camera": str(SAMPLE), "finetune_steps": 2,
                         "out": str(tmp_path / "ft"), "crops": 1, "size": 128, "phases": "native"}
    with pytest.raises(rz.errors.ConfigError, match="init checkpoint's network"):
        compare({**config, "model": {"arch": "packed"}}, progress=False)
    result = compare(config, progress=False)
    assert "after vs before" in result["arms"]["pairs"]
    tuned = torch.load(tmp_path / "ft" / "after-seed0" / "model.pt", weights_only=True)["config"]
    assert build_model(tuned).config == build_model(network).config  # the init's network, blend layer included
    assert sorted(p for p in os.listdir(tmp_path / "ft") if p.endswith(".dng")) == [
        "gopro_hero7_crop-finetune-top.dng", "gopro_hero7_crop-test-bottom.dng"]
    assert "Fine-tuning on the new camera" in (tmp_path / "ft" / "REPORT.md").read_text()


def test_compare_config_errors(tmp_path, halves):
    with pytest.raises(rz.errors.ConfigError, match="experiment"):
        compare(_config(tmp_path, halves, experiment="ablation"), progress=False)
    with pytest.raises(rz.errors.ConfigError, match="arms"):
        compare(_config(tmp_path, halves, experiment="loss", arms=["rgb"]), progress=False)
    with pytest.raises(rz.errors.ConfigError, match="compare"):
        compare({"data": {}}, progress=False)
    with pytest.raises(rz.errors.DataError, match="do not fit"):  # the held-out windows, before training
        compare(_config(tmp_path, halves, experiment="loss", crops=40), progress=False)
    assert not (tmp_path / "cmp").exists()
