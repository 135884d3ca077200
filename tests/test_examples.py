"""Each example under examples/ runs on small data (the bundled raw, cut into pieces)."""
import subprocess
import sys

import pytest
from conftest import REPO, SAMPLE

import rawzoom_isp as rz


@pytest.fixture(scope="module")
def raws(tmp_path_factory):
    folder = tmp_path_factory.mktemp("raws")
    raw = rz.read_raw(SAMPLE)
    for name, left in (("left", 0), ("right", 512)):
        rz.write_dng(folder / f"{name}.dng", raw.crop(0, left, 768, 512))
    return folder


def _run(script, *args, cwd):
    result = subprocess.run([sys.executable, str(REPO / "examples" / script), *map(str, args)], capture_output=True,
                            text=True, cwd=cwd, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_render_folder(raws, tmp_path):
    printed = _run("render_folder.py", raws, tmp_path / "out", cwd=tmp_path)
    assert "left.dng" in printed and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["left.png", "right.png"]


def test_zoom_region_takes_the_command_lines_displayed_coordinates(tmp_path):
    from rawzoom_isp.cli import main

    _run("zoom_region.py", SAMPLE, 101, 200, 64, 96, tmp_path / "zoomed", cwd=tmp_path)
    ours = rz.imageio.read_image(tmp_path / "zoomed.png")
    assert ours.shape == (3, 256, 384) and (tmp_path / "zoomed.dng").stat().st_size > 0
    assert main(["zoom", str(SAMPLE), "--region", "101", "200", "64", "96", "-o", str(tmp_path / "cli.png")]) == 0
    assert float((rz.imageio.read_image(tmp_path / "cli.png") - ours).abs().max()) <= 1 / 255


def test_train_tiny(raws, tmp_path):
    printed = _run("train_tiny.py", "--train", raws / "left.dng", "--test", raws / "right.dng", "--steps", 4,
                   "--crops", 1, "--size", 128, "--out", tmp_path / "run", cwd=tmp_path)
    assert "tiny vs libraw" in printed


def test_compare(raws, tmp_path):
    printed = _run("compare.py", "--train", raws / "left.dng", "--test", raws / "right.dng", "--steps", 2,
                   "--crops", 1, "--size", 128, "--out", tmp_path / "cmp", cwd=tmp_path)
    assert "REPORT.md" in printed and (tmp_path / "cmp" / "arms.png").exists()


def test_api_reference_is_current():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_api", REPO / "docs" / "make_api.py")
    make_api = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_api)
    assert (REPO / "docs" / "API.md").read_text() == make_api.render(), "run: python docs/make_api.py"


@pytest.mark.slow
def test_onnx_zoom_runs_the_exported_model_on_every_cfa(tmp_path):
    """The learned 4x pipeline exported once (RGGB) matches eager on crops at every CFA phase, and the
    file says what it takes."""
    from rawzoom_isp.cli import main
    from rawzoom_isp.export import read_metadata

    model = tmp_path / "zoom.onnx"
    assert main(["export", "--onnx", "-o", str(model), "--size", "64", "64", "-q"]) == 0
    meta = read_metadata(model)
    assert meta["rawzoom_isp.cfa"] == "RGGB" and meta["rawzoom_isp.scale"] == "4"
    assert "bayer" in meta["rawzoom_isp.inputs"]
    for top, left in ((0, 0), (0, 1), (1, 0), (1, 1)):  # GoPro frames are mirrored: display boxes vary the CFA
        printed = _run("onnx_zoom.py", model, SAMPLE, "--region", 100 + top, 200 + left, 64, 64, cwd=tmp_path)
        difference = float(printed.rsplit("max difference to eager", 1)[1])
        assert difference < 1e-3, printed
    assert main(["export", "--pt2", "-o", str(tmp_path / "zoom.onnx"), "-q"]) == 1  # the name says ONNX
