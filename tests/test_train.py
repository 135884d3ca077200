"""Training: configs checked before anything runs, the loop (metrics, atomic checkpoints), exact
resume after a kill, fine-tuning, DDP; the target renders networks with linear output train through."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import SAMPLE

import rawzoom_isp as rz
from rawzoom_isp.errors import CheckpointError, ConfigError
from rawzoom_isp.models import build_model, load_model, save_checkpoint
from rawzoom_isp.train import load_config, lr_at, train, training_seconds
from rawzoom_isp.train.trainer import read_metrics

TINY = dict(arch="packed", width=8, blocks=2)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    torch.manual_seed(1)
    save_checkpoint(path, build_model(dict(TINY, scale=4)).eval())
    return str(path)


def test_linear_output_pipeline_renders_with_the_raws_colour(tiny_checkpoint):
    pipe = rz.Pipeline.default(weights=tiny_checkpoint)
    raw = rz.read_raw(SAMPLE).crop(0, 0, 32, 32)
    linear = pipe(raw, stop="zoom")
    expected = rz.synth.render_linear(linear[None], raw.wb_gains[None], raw.cam_to_srgb[None], "srgb")[0]
    torch.testing.assert_close(pipe(raw), expected)


def test_srgb_target_render_matches_the_classical_pipeline():
    raw = rz.read_raw(SAMPLE).crop(64, 64, 64, 96)
    classical = rz.Pipeline.classical(demosaic="malvar2004")
    linear = classical(raw, stop="demosaic")
    rendered = rz.synth.render_linear(linear[None], raw.wb_gains[None], raw.cam_to_srgb[None], "srgb")[0]
    torch.testing.assert_close(rendered, classical(raw))


def test_lr_schedule_is_the_originals():
    assert lr_at(0, 1e-4, 0.05, 20000) == pytest.approx(1e-4)
    assert lr_at(20000, 1e-4, 0.05, 20000) == pytest.approx(5e-6)
    assert lr_at(10000, 1e-4, 0.05, 20000) == pytest.approx(1e-4 * 0.05 ** 0.5)


def _config(tmp_path, steps=12, **sections):
    config = {
        "data": {"source": "emulated", "files": [str(SAMPLE)], "patch": 8, "reference": "classical",
                 "noise_range": [0.5, 2.0]},
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


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"\[optim\] has no key.*momentum"):
        load_config({"data": {"root": "x"}, "optim": {"momentum": 0.9}})
    with pytest.raises(ConfigError, match="unknown config section"):
        load_config({"data": {"root": "x"}, "schedule": {}})
    with pytest.raises(ConfigError, match="root.*or files"):
        load_config({"data": {}})
    assert load_config({"data": {"source": "rgb", "files": [str(SAMPLE)]}})["data"]["input"] == "rgb"
    bad = {
        ("optim", "batch_size"): [0, -1, 1e6, 2.5, "4"],
        ("optim", "steps"): [0, 2.5],
        ("optim", "lr"): [0, -1e-3, float("nan"), 1e30],
        ("optim", "decay_steps"): [0],
        ("train", "checkpoint_every"): [0],
        ("train", "log_every"): [0],
        ("data", "patch"): [0, 7.5],
        ("data", "files"): [[], "a.dng", [1]],
        ("model", "width"): [0, 100000, "8"],
        ("model", "blocks"): [10**7],
        ("data", "noise_range"): [[2.0, 1.0], [0, 1], 3],
        ("loss", "type"): ["l2"],
        ("data", "augment"): ["yes"],
    }
    for (section, key), values in bad.items():
        for value in values:
            config = {"data": {"files": [str(SAMPLE)]}, section: {key: value}}
            if section == "data":
                config["data"] = {"files": [str(SAMPLE)], key: value}
            with pytest.raises(ConfigError, match=key):
                load_config(config)
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="regular file"):
        load_config(str(fifo))


def test_relative_paths_in_a_toml_config_are_relative_to_the_file(tmp_path):
    folder = tmp_path / "configs"
    folder.mkdir()
    (tmp_path / "raws").mkdir()
    (tmp_path / "raws" / "a.dng").write_bytes(SAMPLE.read_bytes())
    path = _write_toml(folder / "c.toml", {"data": {"files": ["../raws/a.dng"]}, "train": {"out": "../runs/x"}})
    config = load_config(path)
    assert config["data"]["files"] == [str(tmp_path / "raws" / "a.dng")]
    assert config["train"]["out"] == "../runs/x"  # outputs: relative to the current folder
    with pytest.raises(ConfigError, match="no such file"):
        load_config({"data": {"files": [str(tmp_path / "absent.dng")]}})


@pytest.mark.parametrize("model", [TINY, dict(arch="zoomnet", width=8, blocks=2, up_channels=8, output="display"),
                                   dict(arch="zoomnet", width=8, blocks=2, up_channels=8, output="linear",
                                        skip="bicubic")])
def test_training_writes_metrics_checkpoints_and_learns(tmp_path, model):
    final = train(_config(tmp_path, steps=30, model=model), progress=False)
    run = tmp_path / "run"
    lines = (run / "metrics.csv").read_text().splitlines()
    assert lines[0] == "step,loss,lr,seconds,val_loss" and len(lines) == 11
    losses = [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert losses[-1] < losses[0]
    trained = load_model(final)
    assert trained.config["width"] == 8 and trained.config["arch"] == model["arch"] and (run / "last.pt").exists()
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


def test_a_run_folder_trains_in_one_process_at_a_time(tmp_path):
    from rawzoom_isp.train.trainer import run_folder_held

    config = _write_toml(tmp_path / "train.toml", _config(tmp_path, steps=10**6))
    process = subprocess.Popen([sys.executable, "-m", "rawzoom_isp.cli", "train", "--config", config],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run, deadline = tmp_path / "run", time.time() + 120
    try:
        while not (run / "last.pt").exists() and time.time() < deadline and process.poll() is None:
            time.sleep(0.02)
        assert process.poll() is None, "the first run ended before the second could meet it"
        written = sorted(os.listdir(run))
        with pytest.raises(rz.errors.TrainingError, match="another process is training"):
            train(config, resume=True, progress=False)
        with pytest.raises(rz.errors.TrainingError, match="another process is training"):
            train(config, force=True, progress=False)  # not even --force takes a run from under its trainer
        assert {"last.pt", "metrics.jsonl"} <= set(os.listdir(run)) and set(written) <= set(os.listdir(run))
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    with run_folder_held(str(run)):  # the holder's death released the folder
        pass


def test_training_goes_on_unguarded_where_the_file_system_cannot_lock(tmp_path, monkeypatch, caplog):
    import errno
    import fcntl

    def no_locks(handle, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    assert os.path.isfile(train(_config(tmp_path, steps=2), progress=False))
    assert "cannot lock the run folder" in caplog.text


def test_fine_tuning_starts_from_init(tmp_path, tiny_checkpoint):
    final = train(_config(tmp_path, steps=1, optim={"lr": 1e-12}), init=tiny_checkpoint, progress=False)
    start, after = load_model(tiny_checkpoint).state_dict(), load_model(final).state_dict()
    for name in start:
        if "running" not in name and "num_batches" not in name:
            torch.testing.assert_close(after[name], start[name], atol=1e-8, rtol=0, msg=name)
    with pytest.raises(ConfigError, match="differs"):
        train(_config(tmp_path, steps=1, model={"width": 16}), init=tiny_checkpoint, progress=False, force=True)
    # Without [model], the network is the checkpoint's.
    bare = {k: v for k, v in _config(tmp_path / "bare", steps=1).items() if k != "model"}
    assert load_model(train(bare, init=tiny_checkpoint, progress=False)).config == load_model(tiny_checkpoint).config


def test_a_run_folder_is_never_replaced_without_force_and_resumes_from_its_own_config(tmp_path):
    from rawzoom_isp.cli import main

    config = _write_toml(tmp_path / "train.toml", _config(tmp_path, steps=6))
    assert main(["train", "--config", config, "-q"]) == 0
    run = tmp_path / "run"
    before = (run / "model.pt").read_bytes()
    assert main(["train", "--config", config, "-q", "--set", "optim.steps=3"]) == 1  # a finished run is kept
    assert (run / "model.pt").read_bytes() == before
    with pytest.raises(rz.errors.OutputExistsError, match="--resume"):
        train(config, progress=False)
    # --resume RUN_DIR: the config comes from last.pt; --set may raise the steps.
    assert main(["train", "--resume", str(run), "-q", "--set", "optim.steps=9"]) == 0
    assert torch.load(run / "model.pt", weights_only=True)["step"] == 9
    assert main(["train", "--resume", str(tmp_path / "elsewhere"), "-q"]) == 1
    assert main(["train", "-q"]) == 1
    with pytest.raises(rz.errors.TrainingError, match="no last.pt"):
        train(_config(tmp_path / "fresh", steps=3), resume=True, progress=False)
    assert main(["train", "--config", config, "-q", "--force", "--set", "optim.steps=3"]) == 0
    assert torch.load(run / "model.pt", weights_only=True)["step"] == 3


@pytest.mark.parametrize("step, message", [(10**12, "step count"), (7, "beyond"), (True, "step count"),
                                           (-1000, "step count"), ("3", "step count")])
def test_a_tampered_training_checkpoint_is_refused(tmp_path, step, message):
    train(_config(tmp_path, steps=3), progress=False)
    last = tmp_path / "run" / "last.pt"
    checkpoint = torch.load(last, weights_only=True)
    checkpoint["step"] = step
    torch.save(checkpoint, last)
    (tmp_path / "run" / "model.pt").unlink()
    with pytest.raises((rz.errors.CheckpointError, rz.errors.TrainingError), match=message):
        train(_config(tmp_path, steps=6), resume=True, progress=False)
    assert not (tmp_path / "run" / "model.pt").exists()


def test_resume_refuses_a_checkpoint_of_another_network_or_a_damaged_one(tmp_path):
    train(_config(tmp_path, steps=3), progress=False)
    with pytest.raises(ConfigError, match="cannot resume"):
        train(_config(tmp_path, steps=6, model={"width": 16}), resume=True, progress=False)
    last = tmp_path / "run" / "last.pt"
    last.write_bytes(last.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="last.pt"):
        train(_config(tmp_path, steps=6), resume=True, progress=False)


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


def test_resume_survives_a_cut_metrics_line_and_stale_temporaries(tmp_path):
    train(_config(tmp_path, steps=3), progress=False)
    run = tmp_path / "run"
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 4, "lo')  # killed while writing
    stale = run / ".last.rawzoom-999999999-abcd1234.part.pt"  # a writer that is gone
    users = run / ".last.999999999.abc.part.pt"  # not ours: a user's file of a similar name
    stale.write_bytes(b"half a checkpoint")
    users.write_bytes(b"keep me")
    train(_config(tmp_path, steps=6), resume=True, progress=False)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [3, 6] and not stale.exists() and users.exists()
    assert rows[1]["seconds"] > rows[0]["seconds"]  # training time counts on across the resume
    assert training_seconds(str(run)) == rows[1]["seconds"]
    # A log written before the counter went on across resumes restarts at each resume: segments add up.
    old = tmp_path / "old"
    old.mkdir()
    (old / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": 1.0, "lr": 1e-4, "seconds": t}) + "\n"
                                               for s, t in ((50, 40.0), (100, 80.0), (150, 9.0), (200, 50.0))))
    assert training_seconds(str(old)) == 130.0
    good = '{"step": 3, "loss": 0.1, "lr": 0.001, "seconds": 1.0}'
    (run / "metrics.jsonl").write_text(f'{good}\nnonsense\n{good}\n')
    with pytest.raises(rz.errors.TrainingError, match="metrics.jsonl: line 2"):
        train(_config(tmp_path, steps=9), resume=True, progress=False)
    (run / "metrics.jsonl").write_text('{"step": 3, "loss": 0.1}\n' + good + "\n")  # a row without seconds
    with pytest.raises(rz.errors.TrainingError, match="line 1 is not a metrics row"):
        train(_config(tmp_path, steps=9), resume=True, progress=False)
    assert (run / "metrics.jsonl").read_text().startswith('{"step": 3, "loss": 0.1}')  # nothing lost on failure


def test_init_across_zoom_factors_keeps_the_shared_layers(tmp_path, tiny_checkpoint):
    final = train(_config(tmp_path, steps=1, data={"scale": 8}, optim={"lr": 1e-12}), init=tiny_checkpoint,
                  progress=False)
    start, after = load_model(tiny_checkpoint).state_dict(), load_model(final).state_dict()
    for name in ("head.weight", "body.0.conv1.weight", "body_out.weight"):
        torch.testing.assert_close(after[name], start[name], atol=1e-8, rtol=0)
    assert after["tail.weight"].shape[0] == 3 * 16 ** 2 != start["tail.weight"].shape[0]


def test_a_network_told_the_noise_fine_tunes_from_a_blind_one(tmp_path, tiny_checkpoint):
    """The head's new noise channels start at zero, so the told network starts as the blind one; the
    emulated pairs tell it the LR's noise (the file's NoiseProfile times what the capture holds)."""
    final = train(_config(tmp_path, steps=1, model={"noise_input": True}, optim={"lr": 1e-12}),
                  init=tiny_checkpoint, progress=False)
    blind, told = load_model(tiny_checkpoint), load_model(final)
    assert told.config["noise_input"] and told.head.weight.shape[1] == 8
    x, gains = torch.rand(1, 4, 12, 12) * 0.5, torch.tensor([[1.8, 1.0, 1.5]])
    with torch.no_grad():
        torch.testing.assert_close(told(x, gains, torch.tensor([[1e-3, 1e-5]] * 3)), blind(x, gains),
                                   atol=1e-6, rtol=0)
    with pytest.raises(ConfigError, match="carry none"):
        train(_config(tmp_path / "unknown", steps=1, model={"noise_input": True}, data={"noise_match": False}),
              progress=False)


def test_the_held_out_loss_is_logged_and_a_flat_run_stops_and_stays_stopped(tmp_path):
    # lr 1e-12: the weights stay put, so the held-out loss (fixed batches, fixed sampling) is flat.
    config = _config(tmp_path, steps=30, optim={"lr": 1e-12},
                     train={"val_every": 2, "val_batches": 2, "patience": 2, "min_delta": 0.01})
    final = train(config, progress=False)
    rows = read_metrics(str(tmp_path / "run"))
    held = [r for r in rows if "val_loss" in r]
    assert [r["step"] for r in held] == [2, 4, 6] and held[0]["val_loss"] == held[1]["val_loss"] == held[2]["val_loss"]
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["step"] == 6
    assert "val_loss" in (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0]
    assert train(config, resume=True, progress=False) == final  # stopped flat: resuming does not train on
    assert read_metrics(str(tmp_path / "run")) == rows
    # Learning, it runs its steps; without patience it never stops early.
    learning = _config(tmp_path / "learning", steps=8, train={"val_every": 4, "val_batches": 1})
    train(learning, progress=False)
    assert [r["step"] for r in read_metrics(str(tmp_path / "learning" / "run")) if "val_loss" in r] == [4, 8]
    with pytest.raises(ConfigError, match="give val_every"):
        load_config(_config(tmp_path, train={"patience": 3}))


def test_flattened_needs_patience_values_that_fail_to_beat_the_best_before_them():
    from rawzoom_isp.train.trainer import flattened

    assert not flattened([1.0, 0.9, 0.95, 0.96], patience=0, min_delta=0.01)
    assert not flattened([1.0, 0.9], patience=2, min_delta=0.01)
    assert flattened([1.0, 0.9, 0.895, 0.91], patience=2, min_delta=0.01)
    assert not flattened([1.0, 0.9, 0.85, 0.91], patience=2, min_delta=0.01)


def test_an_rgb_network_learns_the_white_balanced_target_and_is_not_balanced_again(tmp_path):
    """An 8-bit RGB input is a camera render, white balanced, and nothing in it tells the gains: its
    network learns the target with the white balance and its output is not balanced again. A raw
    network with display output learns the target without it (the paper's); checkpoints say which,
    and one from before they did keeps its old reading."""
    from rawzoom_isp.eval.evaluate import ModelMethod
    from rawzoom_isp.isp import functional as F
    from rawzoom_isp.train import remove_white_balance, restore_white_balance
    from rawzoom_isp.train.trainer import batch_loss

    target, gains = torch.rand(2, 3, 16, 16) * 0.5, torch.tensor([[2.0, 1.0, 1.5], [1.8, 1.0, 2.2]])
    removed = remove_white_balance(target, gains, [True, False])
    assert torch.equal(removed[1], target[1]) and not torch.allclose(removed[0], target[0])
    assert torch.allclose(restore_white_balance(removed, gains, [False, True]), target, atol=1e-6)
    seen = []

    def loss(output, wanted):
        seen.append(wanted)
        return (output - wanted).abs().mean()

    batch = {"target": target, "wb_gains": gains, "target_white_balanced": [True, True]}
    rgb = build_model(dict(TINY, scale=2, in_channels=3))
    raw = build_model({"arch": "zoomnet", "scale": 2, "width": 8, "blocks": 1, "up_channels": 8})
    batch_loss(rgb, loss, {**batch, "input": torch.rand(2, 3, 8, 8)}, torch.device("cpu"), False)
    batch_loss(raw, loss, {**batch, "input": torch.rand(2, 4, 4, 4)}, torch.device("cpu"), False)
    assert torch.equal(seen[0], target) and torch.allclose(seen[1], remove_white_balance(target, gains, [True, True]))

    final = train(_config(tmp_path, steps=3, data={"input": "rgb"}), progress=False)
    assert torch.load(final, weights_only=True)["white_balanced_output"] is True
    low = rz.read_raw(SAMPLE).crop(0, 0, 32, 32)
    method = ModelMethod(final)
    rgb8 = rz.data.render_rgb8(low.normalised(), low.cfa, low.wb_gains, low.cam_to_srgb, method.rgb_render,
                               method.jpeg_quality)
    learned = method.zoom(rgb8[None])[0]
    assert torch.allclose(method(low), learned.clamp(0, 1))
    old = torch.load(final, weights_only=True)
    del old["white_balanced_output"]
    torch.save(old, tmp_path / "old.pt")
    balanced = F.apply_white_balance(learned, low.wb_gains, gamma=F.WB_GAMMA).clamp(0, 1)
    assert torch.allclose(ModelMethod(str(tmp_path / "old.pt"))(low), balanced)

    last = tmp_path / "run" / "last.pt"
    old = torch.load(last, weights_only=True)
    del old["white_balanced_output"]
    torch.save(old, last)
    os.remove(final)
    with pytest.raises(CheckpointError, match="white balance"):
        train(_config(tmp_path, steps=6, data={"input": "rgb"}), resume=True, progress=False)
