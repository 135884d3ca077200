"""Checkpoints: written atomically; a model checkpoint holds the network's config and weights,
a training checkpoint also the optimizer, the step and the random state."""
from __future__ import annotations

import os
from importlib import resources

import torch

from ..atomic import atomic_path
from ..errors import WeightsUnavailableError
from .zoomnet import ZoomNet

DEFAULT_WEIGHTS = {4: "zoom4x.pt"}


def save_checkpoint(path: str | os.PathLike, model: ZoomNet, **extra) -> None:
    """torch.save({"config", "model", **extra}) to a temporary file, then renamed into place."""
    with atomic_path(path) as tmp:
        torch.save({"config": model.config, "model": model.state_dict(), **extra}, tmp)


def read_checkpoint(path: str | os.PathLike) -> dict:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise WeightsUnavailableError(f"{path}: no such checkpoint")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unreadable means unavailable, said plainly
        raise WeightsUnavailableError(f"{path}: not a rawzoom checkpoint ({exc})") from None
    if not isinstance(checkpoint, dict) or "config" not in checkpoint or "model" not in checkpoint:
        raise WeightsUnavailableError(f"{path}: not a rawzoom checkpoint (no config/model entries)")
    return checkpoint


def load_model(path: str | os.PathLike) -> ZoomNet:
    """The network stored in a checkpoint, in eval mode."""
    checkpoint = read_checkpoint(path)
    model = ZoomNet(**checkpoint["config"])
    model.load_state_dict(checkpoint["model"])
    return model.eval()


def default_weights(scale: int = 4) -> str:
    """Path of the shipped weights for ``scale``; WeightsUnavailableError when none are shipped."""
    name = DEFAULT_WEIGHTS.get(scale)
    path = str(resources.files("rawzoom_isp") / "models" / "weights" / name) if name else None
    if path is None or not os.path.isfile(path):
        shipped = ", ".join(f"{s}x" for s, n in DEFAULT_WEIGHTS.items()
                            if os.path.isfile(str(resources.files("rawzoom_isp") / "models" / "weights" / n)))
        raise WeightsUnavailableError(
            f"no shipped {scale}x weights (shipped: {shipped or 'none'}); train some with `rawzoom train` and pass "
            "weights=PATH"
        )
    return path
