"""Every numeric flag out of range, and devices that do not exist: a one-line error and a non-zero exit,
before any work and without an output."""
import contextlib
import io

import pytest
from conftest import SAMPLE

from rawzoom_isp.cli import main

OUT = "{TMP}/out.png"
CASES = [
    ["eval", "--raws", "{SAMPLE}", "--crops", "-3", "-o", "{TMP}/ev"],
    ["eval", "--raws", "{SAMPLE}", "--crops", "0", "-o", "{TMP}/ev"],
    ["eval", "--raws", "{SAMPLE}", "--size", "0", "-o", "{TMP}/ev"],
    ["eval", "--raws", "{SAMPLE}", "--tolerance", "-1", "-o", "{TMP}/ev"],
    ["eval", "--raws", "{SAMPLE}", "--seed", "-1", "-o", "{TMP}/ev"],
    ["zoom", "{SAMPLE}", "-o", OUT, "--threads", "-1"],
    ["zoom", "{SAMPLE}", "-o", OUT, "--tile", "-5"],
    ["zoom", "{SAMPLE}", "-o", OUT, "--max-pixels", "nan"],
    ["zoom", "{SAMPLE}", "-o", OUT, "--max-pixels", "inf"],
    ["zoom", "{SAMPLE}", "-o", OUT, "--centre", "0"],
    ["zoom", "{SAMPLE}", "-o", OUT, "--centre", "1"],
    ["zoom", "{SAMPLE}", "-o", OUT, "--centre", "-4"],
    ["zoom", "{SAMPLE}", "-o", OUT, "--region", "0", "0", "-2", "8"],
    ["zoom", "{SAMPLE}", "-o", OUT, "--device", "cuda:7"],
    ["zoom", "{SAMPLE}", "-o", OUT, "--device", "foo"],
    ["zoom", "{SAMPLE}", "-o", OUT, "--device", "meta"],
    ["zoom", "{SAMPLE}", "-o", OUT, "--scale", "3"],
    ["info", "{SAMPLE}", "--shape", "0", "10"],
    ["info", "{SAMPLE}", "--shape", "8", "8", "--cfa", "RGGB", "--black", "nan", "--white", "1"],
    ["synth", "{SAMPLE}", "-o", "{TMP}/s.dng", "--seed", "-2"],
    ["export", "--onnx", "-o", "{TMP}/e.onnx", "--size", "0", "8"],
]


@pytest.mark.parametrize("argv", CASES, ids=[" ".join(c[:1] + c[-2:]) for c in CASES])
def test_out_of_range_flags_give_one_line(tmp_path, argv):
    argv = [a.replace("{SAMPLE}", str(SAMPLE)).replace("{TMP}", str(tmp_path)) for a in argv]
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exit_info:  # argparse's usage errors
            code = exit_info.code
    assert code in (1, 2), stderr.getvalue()
    assert stderr.getvalue().count("\n") == 1 and "Traceback" not in stderr.getvalue(), stderr.getvalue()
    assert not list(tmp_path.iterdir())
