"""The `rawzoom` command: real files in, real images out, one-line errors, no partial outputs."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import rawzoom_isp as rz
from rawzoom_isp.cli import main
from rawzoom_isp.imageio import read_image

from conftest import SAMPLE, shared_file


def test_info_table_and_json(capsys):
    assert main(["info", str(SAMPLE)]) == 0
    table = capsys.readouterr().out
    assert "HERO7 Black" in table and "RGGB" in table
    assert main(["info", str(SAMPLE), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["height"] == 768 and facts["width"] == 1024 and facts["orientation"] == 2


def test_info_headerless(capsys):
    path = shared_file("headerless/fastopenisp_chart_rggb_1920x1080_10bit_u16le.raw")
    assert main(["info", str(path), "--shape", "1080", "1920", "--cfa", "RGGB", "--black", "0", "--white", "1023", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["white_level"] == 1023


@pytest.mark.parametrize("output, bits, dtype", [("out.png", 8, np.uint8), ("out16.png", 16, np.uint16), ("out.tif", 16, np.uint16)])
def test_render_writes_the_classical_image(tmp_path, output, bits, dtype):
    import cv2

    target = tmp_path / output
    assert main(["render", str(SAMPLE), "-o", str(target), "--bits", str(bits), "--demosaic", "half"]) == 0
    written = cv2.imread(str(target), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR)
    assert written.dtype == dtype and written.shape == (384, 512, 3)
    raw = rz.read_raw(SAMPLE)
    expected = rz.isp.functional.apply_orientation(rz.Pipeline.classical(demosaic="half")(raw), raw.orientation)
    torch.testing.assert_close(read_image(target), expected, atol=1.0 / (2 ** bits - 1), rtol=0)


def test_render_with_config(tmp_path):
    config = tmp_path / "isp.toml"
    rz.Pipeline.classical(demosaic="half", gamma="power").save_config(config)
    assert main(["render", str(SAMPLE), "-o", str(tmp_path / "c.png"), "--config", str(config), "--no-orient"]) == 0
    raw = rz.read_raw(SAMPLE)
    expected = rz.Pipeline.classical(demosaic="half", gamma="power")(raw)
    torch.testing.assert_close(read_image(tmp_path / "c.png"), expected, atol=1 / 255, rtol=0)


def test_errors_are_one_line_and_leave_no_output(tmp_path):
    gpr = shared_file("unsupported/gopro_hero6_gopr0024.gpr")
    target = tmp_path / "never.png"
    result = subprocess.run([sys.executable, "-m", "rawzoom_isp.cli", "render", str(gpr), "-o", str(target)],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "GPR" in result.stderr and "Traceback" not in result.stderr
    assert os.listdir(tmp_path) == []
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[[stages]]\ntype = 'sharpen'\n")
    assert main(["render", str(SAMPLE), "-o", str(target), "--config", str(bad_config)]) == 1
    assert main(["render", str(SAMPLE), "-o", str(tmp_path / "x.bmp")]) == 1
    assert sorted(os.listdir(tmp_path)) == ["bad.toml"]


def test_demo_zooms_the_bundled_sample_with_the_shipped_model(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path)]) == 0
    assert sorted(os.listdir(tmp_path)) == ["hero7_zoom4x_figure.png", "hero7_zoom4x_learned.png",
                                            "hero7_zoom4x_libraw.png"]
    learned = read_image(tmp_path / "hero7_zoom4x_learned.png")
    libraw = read_image(tmp_path / "hero7_zoom4x_libraw.png")
    assert learned.shape == libraw.shape == (3, 384, 384)
    assert float((learned - libraw).abs().mean()) < 0.1  # the same scene, zoomed two ways
    printed = capsys.readouterr().out
    assert "LibRaw AHD + bicubic" in printed and "learned zoom" in printed and "PSNR" in printed