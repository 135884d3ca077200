"""The `rawzoom` command: real files in, real images out, one-line errors, no partial outputs."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import SAMPLE, shared_file

import rawzoom_isp as rz
from rawzoom_isp.cli import idle_cores, main
from rawzoom_isp.imageio import read_image


def test_info_table_and_json(capsys):
    assert main(["info", str(SAMPLE)]) == 0
    table = capsys.readouterr().out
    assert "HERO7 Black" in table and "RGGB" in table
    assert main(["info", str(SAMPLE), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["height"] == 768 and facts["width"] == 1024 and facts["orientation"] == 2


def test_info_headerless(capsys):
    path = shared_file("headerless/fastopenisp_chart_rggb_1920x1080_10bit_u16le.raw")
    assert (
        main(
            ["info", str(path), "--shape", "1080", "1920", "--cfa", "RGGB", "--black", "0", "--white", "1023", "--json"]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["white_level"] == 1023


@pytest.mark.parametrize(
    "output, bits, dtype", [("out.png", 8, np.uint8), ("out16.png", 16, np.uint16), ("out.tif", 16, np.uint16)]
)
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
    # --no-orient keeps the stored pixels and says in EXIF how to turn them: read them as stored.
    torch.testing.assert_close(read_image(tmp_path / "c.png", apply_orientation=False), expected, atol=1 / 255, rtol=0)


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

def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and rz.__version__ in capsys.readouterr().out


def test_info_reads_metadata_without_torch(tmp_path):
    code = ("import sys; from rawzoom_isp.cli import main; assert main(['info', sys.argv[1], '--json']) == 0; "
            "assert 'torch' not in sys.modules, 'info imported torch'")
    result = subprocess.run([sys.executable, "-c", code, str(SAMPLE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["cfa"] == "RGGB"


def test_info_several_files_and_strict_json(tmp_path, capsys, caplog):
    raw = rz.read_raw(SAMPLE)
    noisy = rz.RawImage(bayer=raw.bayer[:64, :64], cfa="RGGB", black_level=0, white_level=16383,
                        noise_profile=[[float("nan"), 1e-6]])
    rz.write_dng(tmp_path / "a.dng", noisy)
    rz.write_dng(tmp_path / "b.dng", raw.crop(0, 0, 64, 64))
    assert main(["info", str(tmp_path), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)  # strict JSON: no NaN
    assert [os.path.basename(f["path"]) for f in facts] == ["a.dng", "b.dng"]
    assert facts[0]["noise_profile"] is None and "NoiseProfile" in caplog.text  # a NaN profile: ignored, said


def _png_chunks(path):
    data = path.read_bytes()
    chunks, offset = {}, 8
    while offset < len(data):
        length = int.from_bytes(data[offset:offset + 4], "big")
        chunks[data[offset + 4:offset + 8]] = data[offset + 8:offset + 8 + length]
        offset += 12 + length
    return chunks


def test_batch_render_into_a_folder_with_icc_exif_and_no_clobber(tmp_path, capsys):
    import tifffile
    from PIL import Image

    raws = tmp_path / "raws"
    raws.mkdir()
    raw = rz.read_raw(SAMPLE)
    for name, top in (("one", 0), ("two", 1)):  # the second at another CFA phase
        rz.write_dng(raws / f"{name}.dng", raw.crop(top, 0, 96, 128))
    out = tmp_path / "out"
    assert main(["render", str(raws), "-o", str(out) + "/"]) == 0
    assert sorted(os.listdir(out)) == ["one.png", "two.png"]
    chunks = _png_chunks(out / "one.png")
    assert b"iCCP" in chunks and b"eXIf" in chunks
    exif = Image.open(out / "one.png").getexif()
    assert exif[271] == "GoPro" and exif[272] == "HERO7 Black" and exif[274] == 1 and exif[305] == "rawzoom_isp"
    assert main(["render", str(raws / "one.dng"), "-o", str(out / "one.png")]) == 1  # no clobber
    assert "exists" in capsys.readouterr().err
    assert main(["render", str(raws / "one.dng"), "-o", str(out / "one.png"), "--force"]) == 0
    assert main(["render", str(raws), "-o", str(out), "--format", "tif", "--bits", "16"]) == 0
    with tifffile.TiffFile(out / "one.tif") as tif:
        tags = tif.pages[0].tags
        assert 34675 in tags and tags[271].value == "GoPro" and tags[305].value == "rawzoom_isp"
        assert tif.pages[0].dtype == np.uint16
    assert main(["render", str(raws / "one.dng"), "-o", str(out / "x.png"), "--format", "tif"]) == 1


def _libraw_render_of(path):
    import rawpy

    with rawpy.imread(str(path)) as raw:
        rgb = raw.postprocess(use_camera_wb=True, no_auto_bright=True, output_bps=16, user_flip=0, gamma=(2.4, 12.92),
                              output_color=rawpy.ColorSpace.sRGB, adjust_maximum_thr=0.0)
    return torch.from_numpy(rgb.astype(np.float32) / 65535).permute(2, 0, 1)


def test_linear_dng_out_renders_in_libraw_like_our_image(tmp_path):
    raw = rz.read_raw(SAMPLE).crop(200, 300, 96, 128)
    rz.write_dng(tmp_path / "in.dng", raw)
    assert main(["render", str(tmp_path / "in.dng"), "-o", str(tmp_path / "lin.dng"), "--no-orient"]) == 0
    assert main(["render", str(tmp_path / "in.dng"), "-o", str(tmp_path / "ours.png"), "--no-orient",
                 "--bits", "16"]) == 0
    ours = read_image(tmp_path / "ours.png", apply_orientation=False)
    assert rz.eval.psnr(_libraw_render_of(tmp_path / "lin.dng"), ours) > 45
    with pytest.raises(rz.errors.UnsupportedRawError):
        rz.read_raw(tmp_path / "lin.dng")  # a linear DNG is not a mosaic


def test_synth_quantises_noisy_mosaics_and_names_dng(tmp_path):
    image = tmp_path / "image.png"
    rz.imageio.write_image(image, rz.Pipeline.classical(demosaic="half")(rz.read_raw(SAMPLE).crop(0, 0, 128, 128)))
    assert main(["synth", str(image), "-o", str(tmp_path / "syn.dng")]) == 0  # with noise (the default)
    synthetic = rz.read_raw(tmp_path / "syn.dng")
    assert float(synthetic.bayer.min()) >= 0 and float(synthetic.bayer.max()) <= synthetic.white_level
    assert main(["synth", str(image), "-o", str(tmp_path / "syn.png")]) == 1
    assert not (tmp_path / "syn.png").exists()


@pytest.mark.parametrize("argv, message", [
    (["info", "{SAMPLE}", "--cfa", "RGGB"], "need --shape"),
    (["info", "{RAW}", "--shape", "968", "1424", "--cfa", "RGGB", "--black", "1", "2", "3", "--white", "4095"],
     "black_level"),
    (["info", "{RAW}", "--shape", "968", "1424", "--cfa", "RGGB", "--black", "256", "--white", "4095",
      "--dtype", "foo"], "dtype"),
    (["info", "{RAW}", "--shape", "968", "1424", "--cfa", "RGGB", "--black", "5000", "--white", "4095"], "black"),
    (["render", "{TMP}/missing.dng", "-o", "{TMP}/x.png"], "no such file"),
    (["zoom", "{SAMPLE}", "-o", "{TMP}/x.png", "--weights", "{TMP}/missing.pt"], "no such checkpoint"),
    (["zoom", "{SAMPLE}", "-o", "{TMP}/x.png", "--scale", "2"], "--weights"),
    (["train", "--config", "{TMP}/missing.toml"], "config file"),
    (["train", "--config", "default-4x", "--set", "optim.steps=0"], "steps"),
    (["train", "--config", "default-4x", "--set", "nonsense"], "section.key=value"),
    (["eval", "--weights", "{TMP}/missing.pt", "--raws", "{SAMPLE}", "-o", "{TMP}/ev"], "no such checkpoint"),
    (["compare", "--config", "{TMP}/missing.toml"], "config file"),
    (["export", "--pt2", "--pipeline", "learned", "--weights", "{TMP}/missing.pt", "-o", "{TMP}/x.pt2"],
     "no such checkpoint"),
])
def test_failures_are_one_line(tmp_path, argv, message):
    raw = shared_file("headerless/rawpipe_colorchecker_rggb_1424x968_u16le.raw") if "{RAW}" in argv else None
    argv = [a.replace("{SAMPLE}", str(SAMPLE)).replace("{TMP}", str(tmp_path)).replace("{RAW}", str(raw)) for a in argv]
    result = subprocess.run([sys.executable, "-m", "rawzoom_isp.cli", *argv], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert message in result.stderr, result.stderr
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.pt2").exists()


def test_ctrl_c_stops_cleanly(tmp_path):
    import signal
    import time

    import tomli_w

    config = tmp_path / "long.toml"
    config.write_text(tomli_w.dumps({
        "data": {"files": [str(SAMPLE)], "patch": 8, "reference": "classical"},
        "model": {"width": 8, "blocks": 1}, "optim": {"steps": 100000, "batch_size": 1},
        "train": {"out": str(tmp_path / "run"), "checkpoint_every": 1, "log_every": 1}}))
    # SIGINT's default action in the child, even where pytest itself runs with it ignored (started in
    # the background by a shell), so that Python turns it into KeyboardInterrupt as in a terminal.
    process = subprocess.Popen([sys.executable, "-m", "rawzoom_isp.cli", "train", "--config", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not (tmp_path / "run" / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr
    assert not [p for p in os.listdir(tmp_path / "run") if ".part" in p]
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["step"] >= 1


def test_export_commands_match_eager(tmp_path):
    from rawzoom_isp.export import build_program, example_inputs

    assert (
        main(["export", "--pt2", "--pipeline", "classical", "-o", str(tmp_path / "c.pt2"), "--size", "32", "32"]) == 0
    )
    program = torch.export.load(tmp_path / "c.pt2").module()
    inputs = example_inputs(48, 64)  # another size: height and width are dynamic
    torch.testing.assert_close(program(*inputs), build_program("classical")(*inputs))


def test_a_network_told_the_noise_exports_with_a_noise_input_and_zooms_a_raw_without_a_profile(tmp_path):
    import dataclasses

    from rawzoom_isp.export import build_program, example_inputs, export_program, read_metadata
    from rawzoom_isp.models import build_model, save_checkpoint

    weights = tmp_path / "told.pt"
    torch.manual_seed(0)
    net = build_model(dict(arch="packed", width=8, blocks=1, scale=2, noise_input=True))
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    save_checkpoint(weights, net.eval())
    program = build_program(weights=str(weights))
    assert program.input_names[-1] == "noise"
    export_program(program, tmp_path / "told.pt2", size=(32, 32))
    assert "noise (3, 2)" in read_metadata(tmp_path / "told.pt2")["rawzoom_isp.inputs"]
    inputs = example_inputs(48, 64, noise=True)
    torch.testing.assert_close(torch.export.load(tmp_path / "told.pt2").module()(*inputs), program(*inputs))
    at_four = build_program(scale=4, weights=str(weights))  # its 2x, then bicubic 2x
    export_program(at_four, tmp_path / "told4.pt2", size=(32, 32))
    assert read_metadata(tmp_path / "told4.pt2")["rawzoom_isp.scale"] == "4"
    assert read_metadata(tmp_path / "told.pt2")["rawzoom_isp.scale"] == "2"
    torch.testing.assert_close(torch.export.load(tmp_path / "told4.pt2").module()(*inputs), at_four(*inputs))
    # A raw without a NoiseProfile: the noise is read from the whole frame, not from the small centre zoomed.
    bare = tmp_path / "bare.dng"
    rz.write_dng(bare, dataclasses.replace(rz.read_raw(SAMPLE), noise_profile=None))
    assert rz.read_raw(bare).noise_profile is None
    assert main(["zoom", str(bare), "--weights", str(weights), "--centre", "16", "-o", str(tmp_path / "z.png")]) == 0
    assert rz.imageio.read_image(tmp_path / "z.png").shape[-2:] == rz.read_raw(bare).display_shape


def test_batches_skip_what_exists_and_go_on_past_a_bad_file(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    raw = rz.read_raw(SAMPLE)
    for name in ("a", "c"):
        rz.write_dng(folder / f"{name}.dng", raw.crop(0, 0, 64, 64))
    (folder / "b.dng").write_text("not a raw")
    out = tmp_path / "out"
    assert main(["render", str(folder), "-o", f"{out}/"]) == 1  # the first bad file stops a plain batch
    assert main(["render", str(folder), "-o", f"{out}/", "--continue-on-error", "--skip-existing"]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]
    captured = capsys.readouterr()
    assert "1 written, 1 skipped" in captured.out and "1 of 3 inputs failed" in captured.err
    before = (out / "a.png").stat().st_mtime_ns
    (folder / "b.dng").unlink()
    assert main(["render", str(folder), "-o", f"{out}/", "--skip-existing"]) == 0
    assert (out / "a.png").stat().st_mtime_ns == before
    assert main(["render", str(folder), "-o", str(tmp_path / "two.png")]) == 1  # several inputs need a folder
    assert not (tmp_path / "two.png").exists()


def test_zoom_of_a_raw_without_colour_matrix_stays_in_camera_rgb(tmp_path, capsys):
    data = (rz.read_raw(SAMPLE).crop(0, 0, 64, 64).bayer.numpy()).astype("<u2")
    data.tofile(tmp_path / "dump.raw")
    assert main(["zoom", str(tmp_path / "dump.raw"), "--shape", "64", "64", "--cfa", "RGGB", "--black", "0",
                 "--white", "16383", "-o", str(tmp_path / "z.png")]) == 0
    assert "no colour matrix" in capsys.readouterr().out
    assert rz.imageio.read_image(tmp_path / "z.png").shape == (3, 256, 256)


def test_exposure_colour_and_exif_options(tmp_path):
    import numpy as np
    from PIL import Image

    from rawzoom_isp.imageio import icc_profile

    canon = shared_file("cr2/canon_eos30d_IMG_5952.cr2")
    means = {}
    cases = {"plain": [], "bright": ["--exposure", "1"], "auto": ["--auto-bright"], "adobe": ["--colorspace", "adobe"],
             "wb": ["--wb", "auto"], "day": ["--wb", "daylight"]}
    for name, options in cases.items():
        out = tmp_path / f"{name}.jpg"
        assert main(["render", str(canon), "-o", str(out), "--demosaic", "half", "-q", *options]) == 0
        image = Image.open(out)
        means[name] = float(np.asarray(image).mean())
        assert image.info["icc_profile"] == icc_profile("adobe" if name == "adobe" else "srgb")
        exif = image.getexif().get_ifd(0x8769)
        assert exif[36867] == "2009:07:21 13:03:20" and exif[34855] == 640 and float(exif[33437]) == 22.0
    assert means["bright"] > 1.3 * means["plain"] and means["auto"] > 1.8 * means["plain"]  # the Canon is dark
    assert main(["render", str(canon), "-o", str(tmp_path / "x.jpg"), "--wb", "1,2"]) == 1


def test_the_default_threads_leave_the_busy_cores_alone(monkeypatch):
    """``zoom`` without --threads runs on the cores the load average leaves idle, never fewer than 1."""
    cores = len(os.sched_getaffinity(0))
    for load, expected in ((0.2, cores), (1.0, max(1, cores - 1)), (100.0, 1)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, load, load))
        assert idle_cores() == expected
