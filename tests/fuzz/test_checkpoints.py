"""Checkpoints a hostile or unlucky user could hand us: each must give a clean CheckpointError that
names the file, fast and in bounded memory, never a wrong image. Every case runs in a forked child."""
import hashlib
import zipfile

import pytest
import torch
from conftest import SAMPLE
from forked import in_child

import rawzoom_isp as rz
from rawzoom_isp.cli import main
from rawzoom_isp.models import build_model, load_model, save_checkpoint
from rawzoom_isp.models.checkpoint import SHIPPED_SHA256, default_weights

TINY = dict(arch="packed", width=8, blocks=1, scale=4)


def _nested(depth):
    value = [1]
    for _ in range(depth):
        value = [value, value]  # a few bytes pickled, 2^depth items when expanded
    return value


def _cases(folder):
    net = build_model(TINY)
    state = net.state_dict()
    plain = {"config": net.config, "model": state}
    cases = {
        "float64-1e300": {**plain, "model": {k: torch.full_like(v, 1e300, dtype=torch.float64)
                                             for k, v in state.items()}},
        "weights-1e10": {**plain, "model": {k: torch.full_like(v, 1e10) for k, v in state.items()}},
        "integer-weights": {**plain, "model": {k: torch.ones_like(v, dtype=torch.int64) for k, v in state.items()}},
        "sparse-weight": {**plain, "model": {**state, "head.bias": state["head.bias"].to_sparse()}},
        "repr-bomb": {"config": dict(net.config, width=_nested(60)), "model": state},
        "arch-list": {"config": {"arch": []}, "model": {}},
        "integer-keys": {"config": {1: 2, "arch": "packed"}, "model": state},
        "tuple-key": {"config": {("a", "b"): 1}, "model": state},
        "huge-text": {"config": dict(net.config, arch="x" * 5_000_000), "model": state},
        "train-config-bomb": {**plain, "train_config": {"data": _nested(60)}},
    }
    paths = {}
    for name, content in cases.items():
        paths[name] = folder / f"{name}.pt"
        torch.save(content, paths[name])
    save_checkpoint(folder / "good.pt", net)
    hashed = torch.load(folder / "good.pt", weights_only=True)
    hashed["model"]["head.bias"] = hashed["model"]["head.bias"] + 1e-3  # altered, hash kept
    paths["altered"] = folder / "altered.pt"
    torch.save(hashed, paths["altered"])
    data = bytearray((folder / "good.pt").read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit inside the weights
    paths["bit-flip"] = folder / "bit-flip.pt"
    paths["bit-flip"].write_bytes(bytes(data))
    return paths


def _load(path):
    load_model(path)
    return "loaded"


def test_every_hostile_checkpoint_is_a_clean_error(tmp_path):
    outcomes = {name: in_child(_load, path, timeout=30) for name, path in _cases(tmp_path).items()}
    for name, outcome in outcomes.items():
        assert outcome[0] == "error", (name, outcome)
        kind, message, mro = outcome[1]
        assert "CheckpointError" in mro and str(tmp_path) in message and len(message) < 500, (name, outcome)
    assert load_model(tmp_path / "good.pt").config == build_model(TINY).config


def test_the_command_line_says_one_line_for_a_damaged_checkpoint(tmp_path, capsys):
    path = _cases(tmp_path)["bit-flip"]
    small = tmp_path / "small.dng"
    rz.write_dng(small, rz.read_raw(SAMPLE).crop(0, 0, 64, 64))
    assert main(["zoom", str(small), "-o", str(tmp_path / "z.png"), "--weights", str(path)]) == 1
    assert capsys.readouterr().err.count("\n") == 1 and not (tmp_path / "z.png").exists()


def test_the_shipped_weights_match_their_pinned_hashes():
    for scale in (4, 8):
        path = default_weights(scale)
        with open(path, "rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == SHIPPED_SHA256[path.rsplit("/", 1)[-1]]
        assert zipfile.ZipFile(path).testzip() is None


@pytest.mark.parametrize("scale", [4])
def test_a_flipped_bit_in_shipped_weights_is_refused(tmp_path, scale, monkeypatch):
    import rawzoom_isp.models.checkpoint as checkpoint

    with open(default_weights(scale), "rb") as fh:
        data = bytearray(fh.read())
    data[len(data) // 2] ^= 0x04
    copy = tmp_path / "models" / "weights" / checkpoint.DEFAULT_WEIGHTS[scale]
    copy.parent.mkdir(parents=True)
    copy.write_bytes(bytes(data))
    monkeypatch.setattr(checkpoint.resources, "files", lambda package: tmp_path)
    with pytest.raises(rz.errors.CheckpointError, match="shipped weights differ"):
        default_weights(scale)
