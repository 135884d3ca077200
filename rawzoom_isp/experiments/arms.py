"""Each arm's training config, and the files an experiment prepares for its arms."""
from __future__ import annotations

import copy
import os

from ..raw.dng import write_dng
from ..raw.reader import read_raw
from .config import MISALIGN, MISALIGN_AFFINE

SYNTHETIC_METHODS = {"synthetic-raw": "brooks", "synthetic-raw-paper": "paper"}


def arm_config(base: dict, arm: str, seed: int, compare: dict, work: str) -> dict:
    """The training config of one arm and seed of the data-type or loss experiment: the shared options
    plus that arm's pair source. Emulated arms share windows, targets, sensor family and noise factors;
    only the kind of input differs (``rz.data.EmulatedRawPairs`` ``input_source`` and ``input``)."""
    config = copy.deepcopy(base)
    data, loss, train_section = (config.setdefault(s, {}) for s in ("data", "loss", "train"))
    if "srraw" in compare:
        data.update(seed=seed, source="srraw", root=compare["srraw"], split="train", input="raw", files=None)
    else:
        data.update(seed=seed, source="emulated", input="raw", files=compare.get("train"))
        data.pop("root", None)
    train_section.update(out=os.path.join(compare["out"], f"{arm}-seed{seed}"), seed=seed)
    if arm in SYNTHETIC_METHODS:
        if "srraw" in compare:  # SR-RAW's target JPEGs unprocessed (rz.data.SyntheticPairs)
            data.update(source="synthetic", root=os.path.join(work, "synthetic-targets"),
                        method=SYNTHETIC_METHODS[arm])
        else:
            data.update(input_source=SYNTHETIC_METHODS[arm])
    elif arm == "rgb":
        data.update(input="rgb", rgb_render="libraw", jpeg_quality=int(compare.get("jpeg_quality", 0)))
    elif compare["experiment"] == "loss":
        misaligned = arm != "l1-aligned"
        data.update(misalign=float(compare.get("misalign", MISALIGN)) if misaligned else 0.0,
                    misalign_affine=float(compare.get("misalign_affine", MISALIGN_AFFINE)) if misaligned else 0.0)
        loss["type"] = "l1" if arm.startswith("l1") else arm
    return config


def srraw_synthetic_targets(srraw: str, folder: str) -> None:
    """The synthetic arms' images for an SR-RAW comparison: its training target JPEGs, linked."""
    from ..data import SRRawDataset

    os.makedirs(folder, exist_ok=True)
    for pair in SRRawDataset(srraw, split="train").pairs:
        jpeg = pair["target"][1]
        link = os.path.join(folder, f"{pair['sequence']}_{os.path.basename(jpeg)}")
        if not os.path.exists(link):
            os.symlink(os.path.abspath(jpeg), link)


def camera_parts(camera: str, folder: str, guard: int) -> tuple[str, str]:
    """The new camera's raw cut into a top part (to fine-tune on) and a bottom part (to test on),
    ``guard`` rows apart, each as a DNG with its metadata; the bottom part keeps the frame's CFA phase."""
    raw = read_raw(camera)
    height = (raw.shape[0] - guard) // 4 * 2
    os.makedirs(folder, exist_ok=True)
    parts = []
    stem = os.path.splitext(os.path.basename(camera))[0]
    for name, top in (("finetune-top", 0), ("test-bottom", (raw.shape[0] - height) // 2 * 2)):
        path = os.path.join(folder, f"{stem}-{name}.dng")
        if not os.path.exists(path):
            write_dng(path, raw.crop(top, 0, height, raw.shape[1] // 2 * 2))
        parts.append(path)
    return parts[0], parts[1]
