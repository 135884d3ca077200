"""The experiments (`rawzoom compare`): every arm trains (resumably), the arms differ only in what they
test, all are scored with the baselines on held-out windows, and the report gives each arm's
pipeline, paired differences with standard errors over windows, and verdicts that need the metrics
to agree."""
import os

import pytest
import torch
from conftest import SAMPLE

import rawzoom_isp as rz
from rawzoom_isp.eval.stats import t_test_p, units_needed
from rawzoom_isp.experiments import compare
from rawzoom_isp.experiments.report import claim, judge
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
    config = _config(tmp_path, halves, experiment="data-type", seeds=[0, 1], jpeg_quality=90,
                     conditions=["centred-noisy", "centred-clean"])
    result = compare(config, progress=False, command="rawzoom compare --config test")
    arms = ["real-raw", "synthetic-raw", "synthetic-raw-paper", "rgb"]
    assert set(result["arms"]["summary"]) == {*arms, "libraw", "classical", "bilinear"}
    assert "real-raw vs synthetic-raw" in result["arms"]["pairs"] and "rgb vs libraw" in result["arms"]["pairs"]
    assert result["arms"]["windows"] == 1 and set(result["arms"]["seed_spread_psnr_cm"]) == set(arms)
    assert all(stat["psnr"]["n"] == 1 for stat in result["arms"]["pairs"].values())  # 4 phases, one window
    report = (tmp_path / "cmp" / "REPORT.md").read_text()
    assert "| network input |" in report and "Brooks unprocessing" in report  # each arm's pipeline
    assert "+-" in report and "Machine" in report and "emulated" in report and "rawzoom compare --config test" in report
    section = report.split("## What it shows")[1].split("##")[0]
    claims = [line for line in section.splitlines() if line.startswith("- ")][:-1]  # the last: seed spread
    assert claims and all(any(w in line for w in ("clearly", "disagree", "not established")) for line in claims)
    assert (tmp_path / "cmp" / "arms.png").exists() and (tmp_path / "cmp" / "curves.png").exists()
    # The same windows without added noise: their own report, whose verdicts the first one repeats.
    clean = result["other_conditions"]["centred-clean"]
    assert {row["noise"] for row in clean["per_case"]} == {"none"} and {row["noise"] for row in result["per_case"]} == {
        "native"}
    assert clean["arms"]["summary"]["libraw"] != result["arms"]["summary"]["libraw"]
    clean_report = (tmp_path / "cmp" / "centred-clean" / "REPORT.md").read_text()
    assert "Test condition `centred-clean`" in clean_report and "no added noise" in clean_report
    assert "Test condition `centred-noisy`" in report and "[`centred-clean`](centred-clean/REPORT.md)" in report
    clean_claims = clean_report.split("## What it shows")[1].split("##")[0]
    repeated = report.split("## The same windows in the other test conditions")[1].split("\n## ")[0]
    assert [line for line in clean_claims.splitlines() if line.startswith("- ")] == [
        line for line in repeated.splitlines() if line.startswith("- ")]
    # The arms trained on the same windows through the same sensor; only the input differs.
    configs = {arm: torch.load(tmp_path / "cmp" / f"{arm}-seed1" / "model.pt", weights_only=True)["train_config"]
               for arm in arms}
    assert configs["rgb"]["data"]["rgb_render"] == "libraw" and configs["rgb"]["data"]["input"] == "rgb"
    assert [configs[a]["data"]["input_source"] for a in arms] == ["real", "brooks", "paper", "real"]
    for arm in arms:
        differing = {k for k, v in configs[arm]["data"].items() if configs["real-raw"]["data"][k] != v}
        assert differing <= {"input_source", "input", "rgb_render", "jpeg_quality"}, (arm, differing)
    model = tmp_path / "cmp" / "rgb-seed1" / "model.pt"
    before = os.path.getmtime(model)
    os.remove(tmp_path / "cmp" / "rgb-seed1" / "last.pt")  # as in a clone: a finished arm's optimizer state is ignored
    again = compare(config, progress=False)  # finished arms are not trained again
    assert os.path.getmtime(model) == before
    assert again["arms"]["pairs"]["real-raw vs rgb"] == result["arms"]["pairs"]["real-raw vs rgb"]


def test_the_verdict_needs_every_metric_significant_and_agreeing():
    def stat(**means):
        return {m: {"mean": v, "se": 0.01, "p": 0.001 if abs(v) > 0.05 else 0.5, "wins": 20, "n": 24, "win_rate": 0.8}
                for m, v in means.items()}

    assert judge(stat(psnr_cm=0.5, psnr=0.4, ssim=0.1))[0] == "clear"
    assert judge(stat(psnr_cm=-0.5, psnr=-0.4, ssim=-0.1))[0] == "reversed"
    assert judge(stat(psnr_cm=-0.3, psnr=0.3, ssim=-0.1))[0] == "mixed"  # Brooks vs RGB in the audit
    assert judge(stat(psnr_cm=0.5, psnr=0.01, ssim=0.1))[0] == "none"  # PSNR not significant


def test_an_open_verdict_says_how_many_windows_each_open_metric_needs():
    """Colour-matched PSNR significant, plain PSNR not: the windows needed are PSNR's, not the headline's."""
    def metric(mean, se, n=24):
        return {"mean": mean, "se": se, "p": t_test_p(mean, se, n), "wins": 14, "n": n, "win_rate": 14 / n}

    pairs = {"a vs b": {"psnr_cm": metric(0.5, 0.1), "psnr": metric(0.2, 0.15), "ssim": metric(0.01, 0.002)}}
    line = claim(pairs, "a", "b")
    needed = units_needed(0.2, 0.15, 24)
    assert needed > 24 and f"PSNR about {needed}" in line
    assert line.startswith("a vs b: not established (PSNR not significant") and "colour-matched PSNR about" not in line
    assert claim(pairs, "b", "a").startswith("b vs a: not established (PSNR")


def test_loss_experiment_on_misaligned_pairs(tmp_path, halves):
    config = _config(tmp_path, halves, experiment="loss", arms=["l1-aligned", "l1", "cobi"], misalign=1.0,
                     misalign_affine=0.005)
    config["loss"] = {"sample": 64, "patch_size": 3}
    # One call trains only the CoBi arm, without scoring (as a second process would share the work) ...
    import tomli_w

    from rawzoom_isp.cli import main

    path = tmp_path / "loss.toml"
    path.write_bytes(tomli_w.dumps(config).encode())
    assert main(["compare", "--config", str(path), "--train-only", "--set", 'compare.arms=["cobi"]', "--set",
                 "train.threads=1", "-q"]) == 0
    assert sorted(os.listdir(tmp_path / "cmp")) == ["cobi-seed0"]  # no other arm, no scores, no report
    cobi_model = tmp_path / "cmp" / "cobi-seed0" / "model.pt"
    before = cobi_model.read_bytes()
    # A finished arm is not retrained, so one trained otherwise than the experiment now says is refused.
    with pytest.raises(rz.errors.ConfigError, match=r"cobi-seed0: trained with other settings.*data\.misalign = 1\.0"):
        compare({**config, "compare": {**config["compare"], "misalign": 2.0}}, progress=False)
    # ... and the full call trains the rest, scores every arm and reports.
    result = compare(config, progress=False)
    assert cobi_model.read_bytes() == before
    assert {"l1-aligned vs l1", "l1 vs cobi"} <= set(result["arms"]["pairs"])
    trained = torch.load(tmp_path / "cmp" / "cobi-seed0" / "model.pt", weights_only=True)["train_config"]
    assert trained["loss"]["type"] == "cobi" and trained["data"]["misalign"] == 1.0
    aligned = torch.load(tmp_path / "cmp" / "l1-aligned-seed0" / "model.pt", weights_only=True)["train_config"]
    assert aligned["data"]["misalign"] == 0.0
    report = (tmp_path / "cmp" / "REPORT.md").read_text()
    assert "cobi vs l1:" in report and "shifted by up to 1.0 LR px" in report and "64 sampled positions" in report
    assert "other run settings (they do not change what an arm learns): cobi-seed0 threads 1\n" in report


def test_fine_tune_experiment_recipes_before_and_after(tmp_path):
    init = tmp_path / "init.pt"
    network = {"arch": "packed", "width": 8, "blocks": 1, "scale": 4, "blend_kernel": 3}
    save_checkpoint(init, build_model(network))
    config = {key: dict(value) for key, value in TINY.items() if key != "model"}
    config["compare"] = {"experiment": "fine-tune", "init": str(init), "camera": str(SAMPLE), "guard": 64,
                         "recipes": {"full": {"steps": 2, "lr": 1e-4}, "head": {"steps": 2, "freeze_body": True}},
                         "out": str(tmp_path / "ft"), "crops": 1, "size": 128, "phases": "native"}
    with pytest.raises(rz.errors.ConfigError, match="init checkpoint's network"):
        compare({**config, "model": {"arch": "packed"}}, progress=False)
    result = compare(config, progress=False)
    assert {"after-full vs before", "after-head vs before"} <= set(result["arms"]["pairs"])
    tuned = torch.load(tmp_path / "ft" / "after-full-seed0" / "model.pt", weights_only=True)
    assert build_model(tuned["config"]).config == build_model(network).config  # the init's network and blend
    head = torch.load(tmp_path / "ft" / "after-head-seed0" / "model.pt", weights_only=True)["model"]
    start = torch.load(init, weights_only=True)["model"]
    assert all(torch.equal(head[n], start[n]) for n in start if n.startswith("body"))  # frozen
    assert not torch.equal(head["head.weight"], start["head.weight"])
    parts = sorted(p for p in os.listdir(tmp_path / "ft") if p.endswith(".dng"))
    assert parts == ["gopro_hero7_crop-finetune-top.dng", "gopro_hero7_crop-test-bottom.dng"]
    top, bottom = (rz.read_raw(tmp_path / "ft" / p) for p in parts)
    assert top.shape[0] + bottom.shape[0] + 64 <= 768  # the guard band lies between them
    assert "after-full vs before:" in (tmp_path / "ft" / "REPORT.md").read_text()


def test_compare_config_errors(tmp_path, halves):
    with pytest.raises(rz.errors.ConfigError, match="experiment"):
        compare(_config(tmp_path, halves, experiment="ablation"), progress=False)
    with pytest.raises(rz.errors.ConfigError, match="arms"):
        compare(_config(tmp_path, halves, experiment="loss", arms=["rgb"]), progress=False)
    with pytest.raises(rz.errors.ConfigError, match="compare"):
        compare({"data": {}}, progress=False)
    for conditions in (["centred-clean", "centred-clean"], ["clean"], "centred-clean", []):
        with pytest.raises(rz.errors.ConfigError, match="conditions"):
            compare(_config(tmp_path, halves, experiment="loss", conditions=conditions), progress=False)
    with pytest.raises(rz.errors.DataError, match="do not fit"):  # the held-out windows, before training
        compare(_config(tmp_path, halves, experiment="loss", crops=40), progress=False)
    assert not (tmp_path / "cmp").exists()
