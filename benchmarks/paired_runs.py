"""Two models, each scored by its own `rawzoom eval` run on the same held-out cases (the same raws,
crops, phases and seed give the same windows, noise and targets): their paired differences per
condition and camera, over windows (``rz.eval.stats.paired_rows``), in every metric.

    python benchmarks/paired_runs.py NEW_EVAL_DIR NEW_NAME OLD_EVAL_DIR OLD_NAME
"""
from __future__ import annotations

import argparse
import csv
import os

from rawzoom_isp.eval.protocol import CONDITIONS
from rawzoom_isp.eval.stats import paired_rows

METRICS = {"psnr_cm": "colour-matched PSNR (dB)", "psnr": "PSNR (dB)", "ssim": "SSIM"}


def rows_of(folder: str, method: str) -> list[dict]:
    """The scored rows of ``method`` in one condition's results.csv, metrics as numbers."""
    with open(os.path.join(folder, "results.csv"), newline="") as fh:
        rows = [row for row in csv.DictReader(fh) if row["method"] == method]
    for row in rows:
        for metric in METRICS:
            row[metric] = float(row[metric])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("new")
    parser.add_argument("new_name")
    parser.add_argument("old")
    parser.add_argument("old_name")
    args = parser.parse_args()
    print(f"{args.new_name} ({args.new}) - {args.old_name} ({args.old}), paired over windows\n")
    print("| condition | camera | " + " | ".join(f"d {label} | windows won" for label in METRICS.values()) + " |")
    print("|---|---|" + "---|---|" * len(METRICS))
    for condition in CONDITIONS:
        if not os.path.isdir(os.path.join(args.new, condition)):
            continue
        new, old = rows_of(os.path.join(args.new, condition), args.new_name), \
            rows_of(os.path.join(args.old, condition), args.old_name)
        for camera in [None] + sorted({row["source"] for row in new}):
            mine = [row for row in new if camera in (None, row["source"])]
            theirs = [row for row in old if camera in (None, row["source"])]
            cells = []
            for metric in METRICS:
                stat = paired_rows(mine, theirs, metric)
                digits = 4 if metric == "ssim" else 3
                cells.append(f"{stat['mean']:+.{digits}f} +- {stat['se']:.{digits}f} | "
                             f"{stat['wins']}/{stat['n']}")
            print(f"| {condition} | {camera or 'all'} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
