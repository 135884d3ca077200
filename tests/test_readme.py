"""The README cannot rot: every Python snippet and every command line in it runs here, in a folder
holding the files it names (photo.dng is the bundled raw; frame.raw a headerless dump; raws/ and
images/ folders). Commands that take hours at full scale run with the small settings of SMALL."""
import re
import shlex
import shutil

import numpy as np
import pytest
import torch
from conftest import REPO, SAMPLE

import rawzoom_isp as rz
from rawzoom_isp.cli import main
from rawzoom_isp.models import build_model, save_checkpoint

README = (REPO / "README.md").read_text()
TINY_TRAINING = ["--set", "optim.steps=2", "--set", "optim.batch_size=2", "--set", "data.patch=8",
                 "--set", "model.width=8", "--set", "model.blocks=1"]
# The README's command (as written) -> the extra arguments it runs with here.
SMALL = {
    "rawzoom train --config default-4x": TINY_TRAINING + ["--set", 'data.files=["photo.dng"]', "--set",
                                                          "train.out=run"],
    "rawzoom eval --weights zoom.pt --raws held-out.dng --crops 24 -o results/": [
        "--crops", "1", "--size", "128", "--phases", "native"],
    "rawzoom compare --config data-type": TINY_TRAINING + [
        "--set", 'compare.train=["photo.dng"]', "--set", 'compare.test=["photo.dng"]', "--set",
        'compare.arms=["real-raw"]', "--set", "compare.seeds=[0]", "--set", "compare.crops=1", "--set",
        "compare.size=128", "--set", 'compare.phases="native"', "--set", 'compare.out="cmp"'],
}


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    shutil.copy(SAMPLE, tmp_path / "photo.dng")
    shutil.copy(SAMPLE, tmp_path / "held-out.dng")
    (tmp_path / "raws").mkdir()
    shutil.copy(SAMPLE, tmp_path / "raws" / "hero7.dng")
    values = np.random.default_rng(0).integers(256, 4096, size=(968, 1424), dtype=np.uint16)
    values.astype("<u2").tofile(tmp_path / "frame.raw")
    render = rz.Pipeline.classical(demosaic="half")(rz.read_raw(SAMPLE))
    (tmp_path / "images").mkdir()
    rz.imageio.write_image(tmp_path / "images" / "view.png", render)
    rz.imageio.write_image(tmp_path / "image.png", render[:, :128, :128])
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "zoom.pt", build_model({"arch": "packed", "width": 8, "blocks": 1, "scale": 4}))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_python_snippet_runs(workspace):
    snippets = _blocks("python")
    assert snippets, "the README has Python snippets"
    for snippet in snippets:
        exec(compile(snippet, "README.md", "exec"), {})


def test_every_command_line_runs(workspace):
    lines = [line for block in _blocks("console") for line in block.splitlines() if line.startswith("rawzoom")]
    assert len(lines) >= 10
    for line in lines:
        argv = shlex.split(line)[1:] + SMALL.get(line, [])
        if argv == ["--version"]:
            with pytest.raises(SystemExit) as exit_info:
                main(argv)
            assert exit_info.value.code == 0
            continue
        assert main(argv) == 0, line
    assert set(SMALL) <= set(lines), "SMALL names a command the README no longer has"
