"""Files at risk: an output that is an input, a user's file that looks like our temporary, two writers
of one output, a full disk. Nothing of the user's is lost and every failure is one line."""
import os
import resource
import signal
import subprocess
import sys

import pytest
import torch
from conftest import SAMPLE

import rawzoom_isp as rz
from rawzoom_isp.atomic import atomic_path
from rawzoom_isp.cli import main


@pytest.fixture
def small_dng(tmp_path):
    path = tmp_path / "x.dng"
    rz.write_dng(path, rz.read_raw(SAMPLE).crop(0, 0, 128, 128))
    return path


def test_an_output_that_is_an_input_is_refused_even_with_force(small_dng, tmp_path):
    before = small_dng.read_bytes()
    assert main(["render", str(small_dng), "-o", str(small_dng), "--force"]) == 1
    link = tmp_path / "link.dng"
    link.symlink_to(small_dng)
    assert main(["render", str(small_dng), "-o", str(link), "--force", "--format", "dng"]) == 1
    assert small_dng.read_bytes() == before


def test_a_users_file_that_looks_like_a_temporary_is_kept(small_dng, tmp_path):
    users = tmp_path / ".out.999999.x.part.png"
    users.write_bytes(b"mine")
    ours = tmp_path / ".out.rawzoom-999999-abcd1234.part.png"  # a writer of ours that is gone
    ours.write_bytes(b"half")
    assert main(["render", str(small_dng), "-o", str(tmp_path / "out.png")]) == 0
    assert users.read_bytes() == b"mine" and not ours.exists()


def test_a_second_writer_does_not_replace_the_first_without_force(tmp_path):
    path = tmp_path / "out.txt"
    with pytest.raises(rz.errors.OutputExistsError, match="appeared while"), atomic_path(path, overwrite=False) as tmp:
        with open(tmp, "w") as fh:
            fh.write("second")
        path.write_text("first")  # another writer finished meanwhile
    assert path.read_text() == "first" and os.listdir(tmp_path) == ["out.txt"]
    with atomic_path(path) as tmp, open(tmp, "w") as fh:  # overwrite=True: as --force
        fh.write("forced")
    assert path.read_text() == "forced"


def _limited(size):
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    return limit


@pytest.mark.parametrize("argv, name", [
    (["render", "{DNG}", "-o", "{TMP}/out.png", "--bits", "16"], "out.png"),
    (["synth", "{PNG}", "-o", "{TMP}/syn.dng"], "syn.dng"),
])
def test_a_full_disk_gives_one_line_naming_the_output(small_dng, tmp_path, argv, name):
    """The file-size limit of a child process stands in for a full disk (EFBIG rather than ENOSPC)."""
    png = tmp_path / "in.png"
    rz.imageio.write_image(png, torch.rand(3, 256, 256))
    argv = [a.replace("{DNG}", str(small_dng)).replace("{TMP}", str(tmp_path)).replace("{PNG}", str(png))
            for a in argv]
    result = subprocess.run([sys.executable, "-m", "rawzoom_isp.cli", *argv], capture_output=True, text=True,
                            preexec_fn=_limited(20_000), cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert f"{name}: could not be written" in result.stderr and ".part" not in result.stderr, result.stderr
    assert not (tmp_path / name).exists() and not [p for p in os.listdir(tmp_path) if ".part" in p]


def test_a_full_disk_while_saving_a_checkpoint_keeps_the_last_one(tmp_path):
    from rawzoom_isp.models import build_model, save_checkpoint

    code = ("import sys; from rawzoom_isp.models import build_model, save_checkpoint\n"
            "try:\n    save_checkpoint(sys.argv[1], build_model(dict(arch='packed', width=64, blocks=8, scale=4)))\n"
            "except OSError as exc:\n    print(exc); sys.exit(3)\n")
    last = tmp_path / "last.pt"
    save_checkpoint(last, build_model(dict(arch="packed", width=4, blocks=1, scale=4)))
    before = last.read_bytes()
    result = subprocess.run([sys.executable, "-c", code, str(last)], capture_output=True, text=True,
                            preexec_fn=_limited(200_000))
    assert result.returncode == 3 and "last.pt: could not be written" in result.stdout, result.stdout + result.stderr
    assert last.read_bytes() == before and os.listdir(tmp_path) == ["last.pt"]
