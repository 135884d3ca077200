"""The learned zoom: network, tiled inference, the LearnedZoom stage, training (resume, DDP,
fine-tuning), evaluation and the comparison."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import rawzoom_isp as rz
from rawzoom_isp.errors import ConfigError, WeightsUnavailableError
from rawzoom_isp.eval import evaluate, psnr, ssim
from rawzoom_isp.eval.metrics import lpips_model
from rawzoom_isp.isp.zoom import receptive_radius, run_tiled
from rawzoom_isp.models import ZoomNet, default_weights, load_model, save_checkpoint
from rawzoom_isp.train import load_config, lr_at, train

from conftest import SAMPLE, shared_file

TINY = dict(width=8, blocks=2, up_channels=8)


@pytest.mark.parametrize("scale, in_channels, factor", [(4, 4, 8), (8, 4, 16), (4, 3, 4), (2, 4, 4)])
def test_network_zooms_packed_raw_2n_and_rgb_n(scale, in_channels, factor):
    net = ZoomNet(scale=scale, in_channels=in_channels, **TINY)
    assert net(torch.rand(2, in_channels, 6, 5)).shape == (2, 3, 6 * factor, 5 * factor)
    with pytest.raises(ValueError):
        ZoomNet(scale=3)
    with pytest.raises(ValueError):
        ZoomNet(norm="group")


def test_full_size_network_matches_the_paper_layout():
    net = ZoomNet(scale=4)
    assert len(net.body) == 16 and net.head[0].kernel_size == (9, 9) and net.tail.kernel_size == (9, 9)
    assert net.body[0].conv1.kernel_size == (4, 4) and net.body[0].norm1.affine is False
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in net.up) == 3  # log2(4) + 1 stages


def test_tiled_inference_equals_untiled():
    torch.manual_seed(0)
    net = ZoomNet(scale=2, **TINY)
    net.train()
    net(torch.rand(4, 4, 16, 16))  # give batch norm non-trivial running statistics
    net.eval()
    x = torch.rand(1, 4, 45, 58)
    overlap = receptive_radius(net.config)
    with torch.no_grad():
        whole = net(x)
        tiled = run_tiled(net, x, net.zoom, tile=2 * overlap + 10, overlap=overlap)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    torch.manual_seed(1)
    save_checkpoint(path, ZoomNet(scale=4, **TINY).eval())
    return str(path)


def test_pipeline_default_with_a_checkpoint_and_config_round_trip(tiny_checkpoint, tmp_path):
    raw = rz.read_raw(SAMPLE).crop(100, 200, 64, 96)
    pipe = rz.Pipeline.default(scale=4, weights=tiny_checkpoint, tile=48)
    out = pipe(raw)
    assert out.shape == (3, 256, 384) and 0 <= float(out.min()) and float(out.max()) <= 1
    assert pipe.names == ["black", "pack", "zoom", "wb"]
    again = rz.Pipeline.from_config(pipe.to_config())
    torch.testing.assert_close(again(raw), out)
    with pytest.raises(WeightsUnavailableError, match="8x"):
        default_weights(8)
    with pytest.raises(WeightsUnavailableError, match="no such checkpoint"):
        rz.Pipeline.default(weights=str(tmp_path / "absent.pt"))


def test_linear_output_pipeline_renders_with_the_raws_colour(tmp_path):
    path = tmp_path / "linear.pt"
    torch.manual_seed(2)
    save_checkpoint(path, ZoomNet(scale=4, output="linear", **TINY).eval())
    pipe = rz.Pipeline.default(weights=str(path))
    assert pipe.names == ["black", "pack", "zoom", "wb", "ccm", "gamma"]
    raw = rz.read_raw(SAMPLE).crop(0, 0, 32, 32)
    linear = pipe(raw, stop="zoom")
    expected = rz.data.render_camera_rgb(linear[None], raw.wb_gains[None], raw.cam_to_srgb[None], "srgb")[0]
    torch.testing.assert_close(pipe(raw), expected)


def test_srgb_target_render_matches_the_classical_pipeline():
    raw = rz.read_raw(SAMPLE).crop(64, 64, 64, 96)
    classical = rz.Pipeline.classical(demosaic="malvar2004")
    linear = classical(raw, stop="demosaic")
    rendered = rz.data.render_camera_rgb(linear[None], raw.wb_gains[None], raw.cam_to_srgb[None], "srgb")[0]
    torch.testing.assert_close(rendered, classical(raw))


def test_lr_schedule_is_the_originals():
    assert lr_at(0, 1e-4, 0.05, 20000) == pytest.approx(1e-4)
    assert lr_at(20000, 1e-4, 0.05, 20000) == pytest.approx(5e-6)
    assert lr_at(10000, 1e-4, 0.05, 20000) == pytest.approx(1e-4 * 0.05 ** 0.5)


def _config(tmp_path, steps=12, **sections):
    config = {
        "data": {"source": "emulated", "files": [str(SAMPLE)], "patch": 8, "reference": "classical"},
        "model": dict(TINY),
        "optim": {"steps": steps, "batch_size": 2, "lr": 1e-3},
        "train": {"out": str(tmp_path / "run"), "checkpoint_every": 3, "log_every": 3},
    }
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    return config


def _write_toml(path, config):
    import tomli_w

    with open(path, "wb") as fh:
        tomli_w.dump(config, fh)
    return str(path)


def test_config_errors():
    with pytest.raises(ConfigError, match=r"\[optim\] has no key.*momentum"):
        load_config({"data": {"root": "x"}, "optim": {"momentum": 0.9}})
    with pytest.raises(ConfigError, match="unknown config section"):
        load_config({"data": {"root": "x"}, "schedule": {}})
    with pytest.raises(ConfigError, match="root.*or files"):
        load_config({"data": {}})
    assert load_config({"data": {"source": "rgb", "root": "x"}})["data"]["input"] == "rgb"


@pytest.mark.parametrize("output", ["display", "linear"])
def test_training_writes_metrics_checkpoints_and_learns(tmp_path, output):
    final = train(_config(tmp_path, steps=30, model={"output": output}), progress=False)
    run = tmp_path / "run"
    lines = (run / "metrics.csv").read_text().splitlines()
    assert lines[0] == "step,loss,lr,seconds" and len(lines) == 11
    losses = [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert losses[-1] < losses[0]
    model = load_model(final)
    assert model.config["width"] == 8 and model.config["output"] == output and (run / "last.pt").exists()
    assert not [p for p in os.listdir(run) if ".part" in p]  # atomic writes leave no temporaries


def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path):
    straight = tmp_path / "straight"
    straight.mkdir()
    reference = load_model(train(_config(straight, steps=24), progress=False))
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    config = _write_toml(interrupted / "train.toml", _config(interrupted, steps=24))
    command = [sys.executable, "-m", "rawzoom_isp.cli", "train", "--config", config]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = interrupted / "run" / "last.pt"
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    step = torch.load(last, weights_only=True)["step"]
    assert 3 <= step < 24, f"the run was not interrupted mid-way (checkpoint at step {step})"
    assert subprocess.run(command + ["--resume"], capture_output=True).returncode == 0
    resumed = load_model(interrupted / "run" / "model.pt")
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)
    steps = [json.loads(line)["step"] for line in (interrupted / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 24


def test_fine_tuning_starts_from_init(tmp_path, tiny_checkpoint):
    final = train(_config(tmp_path, steps=1, optim={"lr": 1e-12}), init=tiny_checkpoint, progress=False)
    start, after = load_model(tiny_checkpoint).state_dict(), load_model(final).state_dict()
    for name in start:
        if "running" not in name and "num_batches" not in name:
            torch.testing.assert_close(after[name], start[name], atol=1e-8, rtol=0, msg=name)
    with pytest.raises(ConfigError, match="differs"):
        train(_config(tmp_path, steps=1, model={"width": 16}), init=tiny_checkpoint, progress=False)


@pytest.mark.slow
def test_distributed_training_with_two_processes(tmp_path):
    config = _write_toml(tmp_path / "ddp.toml", _config(tmp_path, steps=6))
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    result = subprocess.run(torchrun + ["-m", "rawzoom_isp.cli", "train", "--config", config],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    model = load_model(tmp_path / "run" / "model.pt")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["step"] for r in rows] == [3, 6]  # one writer (rank 0)


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


def test_evaluate_writes_tables_and_figure(tmp_path, tiny_checkpoint):
    pairs = rz.data.EmulatedRawPairs([str(SAMPLE)], patch=None, flips=False, reference="classical")
    result = evaluate({"tiny": tiny_checkpoint}, pairs, out=str(tmp_path), tolerance=4)
    assert [row["method"] for row in result["summary"]] == ["bicubic", "tiny"]
    bicubic = result["summary"][0]
    assert 15 < bicubic["psnr"] < 60 and 0.3 < bicubic["ssim"] <= 1
    assert sorted(os.listdir(tmp_path)) == ["figure.png", "results.csv", "results.json", "results.md"]
    table = (tmp_path / "results.md").read_text()
    assert "| bicubic | 1 |" in table and ("unavailable" in table) == (lpips_model()[0] is None)


@pytest.mark.slow
def test_compare_runs_three_arms_and_reports(tmp_path):
    from rawzoom_isp.eval import compare

    second = str(shared_file("dng/gopro_hero6_gopr0024_crop1024x768_y1116_x1488.dng"))
    config = {
        "compare": {"profile": "test", "train": [second], "test": [str(SAMPLE)], "out": str(tmp_path / "cmp"),
                    "tolerance": 4},
        "data": {"patch": 8},
        "model": dict(TINY),
        "optim": {"steps": 2, "batch_size": 2},
        "train": {"log_every": 1, "checkpoint_every": 1},
    }
    result = compare(config, progress=False)
    report = (tmp_path / "cmp" / "REPORT.md").read_text()
    assert [row["method"] for row in result["summary"]] == ["bicubic", "real-raw", "synthetic-raw", "rgb"]
    assert "emulated zoom pairs" in report and "Ranking by PSNR" in report and "Machine" in report
    assert (tmp_path / "cmp" / "figure.png").exists() and (tmp_path / "cmp" / "synthetic-raw" / "model.pt").exists()


def test_zoom_and_eval_commands(tmp_path, tiny_checkpoint):
    from rawzoom_isp.cli import main

    raw = rz.read_raw(SAMPLE).crop(0, 0, 64, 64)
    rz.write_dng(tmp_path / "small.dng", raw)
    out = tmp_path / "z.png"
    assert main(["zoom", str(tmp_path / "small.dng"), "-o", str(out), "--weights", tiny_checkpoint, "--compare"]) == 0
    assert rz.imageio.read_image(out).shape == (3, 256, 256)
    assert rz.imageio.read_image(tmp_path / "z_bicubic.png").shape == (3, 256, 256)
    assert main(["eval", "--weights", tiny_checkpoint, "--raws", str(tmp_path / "small.dng"), "-o",
                 str(tmp_path / "ev"), "--tolerance", "2"]) == 0
    assert (tmp_path / "ev" / "results.json").exists()
    assert main(["zoom", str(tmp_path / "small.dng"), "-o", str(tmp_path / "bad.png"), "--weights",
                 str(tmp_path / "absent.pt")]) == 1
    assert not (tmp_path / "bad.png").exists()
    assert main(["train", "--config", str(tmp_path / "absent.toml")]) == 1
