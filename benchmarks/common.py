"""Small helpers shared by the benchmark scripts: timing, a description of the machine, and fresh
processes measured for wall time and peak memory (against rawpy's render of the same raw)."""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time

import torch


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)"
    if torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name()}"
    return text


def timeit(fn, repeat: int = 5, warmup: int = 1, cuda: bool = False) -> dict:
    """Run ``fn`` warmup + repeat times; seconds as {"best", "median"}."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return {"best": min(times), "median": statistics.median(times)}


RAWPY_TO_PNG = """
import sys, cv2, rawpy
with rawpy.imread(sys.argv[1]) as raw:
    rgb = raw.postprocess(use_camera_wb=True, output_bps=16)
cv2.imwrite(sys.argv[2], rgb[..., ::-1])
"""


# Forks and measures a command from a small process: a child forked from this one (torch loaded) would
# count this process's resident pages in its own peak before it execs.
MEASURE = """
import os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - start, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status))
"""


def run_measured(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak resident MiB) of one fresh process running ``command``; raises if it fails."""
    result = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, check=True)
    wall, peak, code = result.stdout.split()
    if int(code):
        raise RuntimeError(f"{' '.join(command)} failed (exit {code}): {result.stderr[-2000:]}")
    return float(wall), float(peak)
