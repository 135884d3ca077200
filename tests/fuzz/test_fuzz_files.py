"""Fuzzing the raw reader and the commands with damaged, foreign and absurd files, built at test time
from the real raws by a seeded generator. Every read must give a RawZoomError or a sane RawImage;
every command must exit non-zero with one line and no traceback, or succeed. Nothing may crash."""
import contextlib
import io
import os
import shutil
import struct

import numpy as np
import pytest
import tifffile
import torch
from conftest import RAW_DIR, SAMPLE
from forked import in_child

import rawzoom_isp as rz
from rawzoom_isp.cli import main

SEED = 1234


def _sources() -> list:
    """The bundled raw, plus the real crops and the CR2 of ../shared when present."""
    extra = ["dng/gopro_hero6_gopr0024_crop1024x768_y1116_x1488.dng", "cr2/canon_eos30d_IMG_5952.cr2"]
    return [SAMPLE] + [RAW_DIR / e for e in extra if (RAW_DIR / e).exists()]


def _mutations(source, folder, rng) -> list:
    """Damaged copies of one raw: header and data byte flips, truncations, zeroed spans."""
    data = source.read_bytes()
    cases = []

    def write(name, content):
        path = folder / f"{source.stem}-{name}{source.suffix}"
        path.write_bytes(content)
        cases.append(path)

    for number in range(12):
        mutated = bytearray(data)
        for at in rng.integers(0, min(4096, len(data)), size=int(rng.integers(1, 16))):
            mutated[at] = int(rng.integers(0, 256))
        write(f"header{number}", bytes(mutated))
    for number in range(6):
        mutated = bytearray(data)
        for at in rng.integers(len(data) // 4, len(data), size=200):
            mutated[at] ^= 0xFF
        write(f"data{number}", bytes(mutated))
    for fraction in (0.0, 0.001, 0.05, 0.3, 0.6, 0.95, 0.999):
        write(f"cut{fraction}", data[: int(len(data) * fraction)])
    start = len(data) // 3
    write("zeroed", data[:start] + bytes(len(data) - start))
    return cases


def _foreign(folder, rng) -> list:
    """Files that are not raws, under raw names."""
    cases = []
    grey, rgb = (rng.random((96, 128)) * 60000).astype(np.uint16), (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    tifffile.imwrite(folder / "grey-tiff.dng", grey)
    tifffile.imwrite(folder / "rgb-tiff.nef", rgb, photometric="rgb")
    (folder / "random.cr2").write_bytes(rng.integers(0, 256, 50000, dtype=np.uint8).tobytes())
    (folder / "empty.dng").write_bytes(b"")
    (folder / "text.arw").write_text("not a raw\n" * 100)
    rz.imageio.write_image(folder / "image.png", torch.rand(3, 32, 32))
    shutil.copy(folder / "image.png", folder / "png-named.dng")
    (folder / "tiff-magic-only.dng").write_bytes(b"II*\x00" + struct.pack("<I", 8) + bytes(64))
    cases += [folder / n for n in ("grey-tiff.dng", "rgb-tiff.nef", "random.cr2", "empty.dng", "text.arw",
                                   "png-named.dng", "tiff-magic-only.dng")]
    return cases


def _absurd_levels(folder) -> list:
    """Real mosaics in DNGs whose levels or noise profile cannot make an image."""
    raw = rz.read_raw(SAMPLE).crop(0, 0, 128, 128)
    cases = []
    for name, changes in (("black-above-white", {50714: [60000] * 4, 50717: 16383}), ("white-1", {50717: 1}),
                          ("white-0", {50717: 0}), ("nan-noise", {51041: [float("nan"), 1e-6]})):
        path = folder / f"{name}.dng"
        rz.write_dng(path, raw)
        with tifffile.TiffFile(path, mode="r+b") as tif:
            tags = tif.pages[0].tags
            for code, value in changes.items():
                if code == 50714:
                    tags[code].overwrite([v for b in value for v in (b * 1000, 1000)])
                elif code == 51041:
                    tags[code].overwrite(value)
                else:
                    tags[code].overwrite(value)
        cases.append(path)
    return cases


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(SEED)
    cases = [case for source in _sources() for case in _mutations(source, folder, rng)]
    return cases + _foreign(folder, rng) + _absurd_levels(folder)


def _read_and_check(path):
    raw = rz.read_raw(path)
    bayer = raw.bayer
    assert bayer.ndim == 2 and bayer.shape[0] % 2 == 0 and bayer.shape[1] % 2 == 0, "odd or not a mosaic"
    assert torch.isfinite(bayer).all() and float(bayer.max()) <= raw.white_level, "samples above white"
    assert float(raw.black_level.max()) < raw.white_level and float(raw.black_level.min()) >= 0, "levels"
    assert torch.isfinite(raw.wb_gains).all() and float(raw.wb_gains.min()) > 0, "white balance"
    rgb = rz.Pipeline.classical(demosaic="half")(raw.crop(0, 0, min(64, bayer.shape[0]), min(64, bayer.shape[1])))
    assert torch.isfinite(rgb).all(), "render"
    return "sane"


def test_every_damaged_or_foreign_file_gives_a_clean_error_or_a_sane_raw(corpus):
    outcomes = {path.name: in_child(_read_and_check, path) for path in corpus}
    bad = {name: outcome for name, outcome in outcomes.items()
           if not (outcome == ("ok", "sane") or outcome[0] == "error" and "RawZoomError" in outcome[1][2])}
    errors = sum(o[0] == "error" for o in outcomes.values())
    print(f"fuzz: {len(outcomes)} files, {errors} clean errors, {len(outcomes) - errors - len(bad)} sane reads, "
          f"{len(bad)} other")
    assert not bad, bad
    # 26 damaged copies of each source raw (the bundled one, and two of ../shared when present), 7 foreign
    # files and 4 absurd levels.
    assert len(outcomes) == 26 * len(_sources()) + 11
    # (A WhiteLevel of 0 reads as "no white level": LibRaw falls back to its own, a sane image.)
    for name in ("black-above-white.dng", "white-1.dng", "grey-tiff.dng", "png-named.dng"):
        assert outcomes[name][0] == "error", name


def _command(argv):
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exit_info:  # argparse's usage errors
            code = exit_info.code
    return code, stderr.getvalue()


def test_commands_on_the_corpus_exit_with_one_line(corpus, tmp_path):
    outcomes = {}
    for path in corpus[::3] + corpus[-11:]:
        for argv in (["info", str(path)], ["render", str(path), "-o", str(tmp_path / f"{path.stem}.png"),
                                           "--demosaic", "half"]):
            outcome = in_child(_command, argv)
            outcomes[f"{argv[0]} {path.name}"] = outcome
    for name, (kind, value) in outcomes.items():
        assert kind == "ok", (name, kind, value)
        code, stderr = value
        assert code in (0, 1), (name, code, stderr)
        if code:
            assert stderr.count("\n") == 1 and "Traceback" not in stderr and "rawzoom" in stderr, (name, stderr)
    assert not [p for p in os.listdir(tmp_path) if ".part" in p]


def test_damaged_files_print_one_line_in_a_real_process(corpus, tmp_path):
    """What LibRaw prints itself (C-level stderr) and the libraries log must not reach the user: a
    real child process, its whole stderr read."""
    import subprocess
    import sys

    cut = [p for p in corpus if "-cut" in p.name or "-header" in p.name][:10]
    for path in cut:
        result = subprocess.run([sys.executable, "-m", "rawzoom_isp.cli", "info", str(path)], capture_output=True,
                                text=True, cwd=tmp_path, timeout=120)
        if result.returncode:
            assert result.stderr.count("\n") == 1 and result.stderr.startswith("rawzoom info: error:"), (
                path.name, result.stderr)


@pytest.mark.parametrize("argv, fragment", [
    (["info", "{RAW}", "--shape", "968", "1424", "--cfa", "RGGB", "--black", "256", "--white", "4095",
      "--dtype", "<f4"], "needs"),
    (["info", "{RAW}", "--shape", "0", "1424", "--cfa", "RGGB", "--black", "256", "--white", "4095"],
     "--shape: 0 is not in [2, 1048576]"),
    (["info", "{RAW}", "--shape", "968", "1424", "--cfa", "XYZW", "--black", "256", "--white", "4095"], "invalid"),
    (["info", "{RAW}", "--shape", "968", "1424", "--cfa", "RGGB", "--black", "-5", "--white", "4095"],
     "--black: -5 is not in [0, 4294967296]"),
    (["info", "{SAMPLE}", "--shape", "8", "8", "--cfa", "RGGB", "--black", "0", "--white", "nan"],
     "--white: nan is not in"),
    (["render", "{SAMPLE}", "-o", "{TMP}/x.png", "--config", "{TMP}/bad.toml"], "TOML"),
    (["render", "{SAMPLE}", "-o", "{TMP}/x.png", "--config", "{TMP}/shapes.toml"], "stage"),
    (["zoom", "{SAMPLE}", "-o", "{TMP}/x.png", "--weights", "{SAMPLE}"], "not a rawzoom checkpoint"),
    (["zoom", "{SAMPLE}", "-o", "{TMP}/x.png", "--region", "-1", "0", "10", "10"], "region"),
    (["train", "--config", "{TMP}/bad.toml"], "TOML"),
    (["eval", "--raws", "{SAMPLE}", "--crops", "99", "-o", "{TMP}/ev"], "windows"),
])
def test_bad_command_lines_exit_with_one_line(argv, fragment, tmp_path):
    (tmp_path / "bad.toml").write_text("[data\nfiles = 3")
    (tmp_path / "shapes.toml").write_text("[[stages]]\ntype = 'white_balance'\nparams = {gains = [1, 2]}\n")
    headerless = RAW_DIR / "headerless" / "rawpipe_colorchecker_rggb_1424x968_u16le.raw"
    if "{RAW}" in argv and not headerless.exists():
        pytest.skip(f"real raw data not available: {headerless} is absent")
    argv = [a.replace("{SAMPLE}", str(SAMPLE)).replace("{TMP}", str(tmp_path)).replace("{RAW}", str(headerless))
            for a in argv]
    kind, value = in_child(_command, argv)
    assert kind == "ok", (kind, value)
    code, stderr = value
    assert code in (1, 2) and stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert fragment in stderr, stderr
