"""Pipeline: an ordered graph of named stages, checked when built, runnable in part."""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from ..color import SPACE_CURVES
from ..errors import ConfigError, PipelineError, ShapeError
from ..raw.image import RawImage, RawMeta
from ..tomlfile import read_toml
from .base import Stage
from .classical import BayerPack, BlackLevel, ColorMatrix, Demosaic, Exposure, Gamma, Resize, WhiteBalance
from .kinds import DataKind
from .registry import stage_class

_CONFIG_KEYS = {"input", "stages"}
_LOOK = ("space", "exposure", "auto_bright", "highlights")
_STAGE_KEYS = {"name", "type", "params"}


class Pipeline(nn.Module):
    """Ordered, named ISP stages. ``pipe(raw)`` runs them all; ``start=``/``stop=`` run a part (from the
    named stage, through the named stage); ``return_intermediates=True`` also returns every stage's
    output by name. Takes a RawImage, a list of RawImages (one CFA), or a tensor plus ``meta``
    (RawMeta, batched or not), batched (B, C, H, W) or unbatched; follows the input's device and dtype.
    """

    def __init__(
        self, stages: Iterable[tuple[str, Stage]] | Mapping[str, Stage], input_kind: DataKind | str = DataKind.BAYER_DN
    ):
        super().__init__()
        items = list(stages.items() if isinstance(stages, Mapping) else stages)
        if not items:
            raise PipelineError("a pipeline needs at least one stage")
        self.input_kind = DataKind(input_kind)
        self.stages = nn.ModuleDict()
        kinds = [self.input_kind]
        for name, stage in items:
            if not isinstance(stage, Stage):
                raise PipelineError(f"stage {name!r} is a {type(stage).__name__}, not a rawzoom_isp Stage")
            if not name.isidentifier() or name in self.stages:
                raise PipelineError(f"stage name {name!r} must be a unique Python identifier")
            try:
                gives = stage.output_kind(kinds[-1])
            except PipelineError as exc:
                before = (
                    f"stage {items[len(kinds) - 2][0]!r} before it gives" if len(kinds) > 1 else "the pipeline input is"
                )
                raise PipelineError(f"stage {name!r}: {exc}; {before} {kinds[-1].label}") from None
            self.stages[name] = stage
            kinds.append(gives)
        self._kinds = kinds

    # -- structure -------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self.stages.keys())

    @property
    def output_kind(self) -> DataKind:
        return self._kinds[-1]

    def __getitem__(self, name: str) -> Stage:
        return self.stages[name]

    def _index(self, name: str) -> int:
        if name not in self.stages:
            raise PipelineError(f"no stage named {name!r}; stages are {', '.join(self.names)}")
        return self.names.index(name)

    # -- running ---------------------------------------------------------------------------
    def forward(self, x, meta: RawMeta | None = None, *, start: str | None = None, stop: str | None = None,
                return_intermediates: bool = False):
        first = self._index(start) if start else 0
        last = self._index(stop) if stop else len(self.stages) - 1
        if last < first:
            raise PipelineError(f"stop stage {stop!r} comes before start stage {start!r}")
        x, meta, batched = _prepare_input(x, meta, self._kinds[first], self.names[first])
        intermediates = {}
        for name in self.names[first : last + 1]:
            x = self.stages[name](x, meta)
            if return_intermediates:
                intermediates[name] = x if batched else x[0]
        out = x if batched else x[0]
        return (out, intermediates) if return_intermediates else out

    # -- configuration ---------------------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        """{"input": kind, "stages": [{"name", "type", "params"}, ...]}; from_config inverts it."""
        return {
            "input": self.input_kind.value,
            "stages": [{"name": n, "type": s.type_name, "params": s.params()} for n, s in self.stages.items()],
        }

    def save_config(self, path: str | os.PathLike) -> None:
        """Write the config as TOML (atomically)."""
        import tomli_w

        from ..atomic import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            tomli_w.dump(self.to_config(), fh)

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | str | os.PathLike) -> Pipeline:
        """Build from a dict or a TOML file; unknown keys, stage types or parameters raise ConfigError."""
        if not isinstance(config, Mapping):
            config = read_toml(config, "pipeline config")
        unknown = sorted(set(config) - _CONFIG_KEYS)
        if unknown:
            raise ConfigError(
                f"unknown pipeline config key(s) {', '.join(unknown)}; expected {', '.join(sorted(_CONFIG_KEYS))}"
            )
        entries = config.get("stages")
        if not entries or not isinstance(entries, list):
            raise ConfigError("pipeline config needs a non-empty 'stages' list of tables")
        stages = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, Mapping) or not all(isinstance(k, str) for k in entry):
                raise ConfigError(f"stage #{i + 1} must be a table (name, type, params), got {str(entry)[:80]}")
            if not isinstance(entry.get("type", ""), str) or not isinstance(entry.get("name", ""), str):
                raise ConfigError(f"stage #{i + 1}: its type and name must be text")
            bad = sorted(set(entry) - _STAGE_KEYS)
            if bad:
                raise ConfigError(f"stage #{i + 1}: unknown key(s) {', '.join(bad)}; expected name, type, params")
            if "type" not in entry:
                raise ConfigError(f"stage #{i + 1} ({entry.get('name', '?')}) has no 'type'")
            params = entry.get("params", {})
            if not isinstance(params, Mapping):
                raise ConfigError(f"stage #{i + 1} ({entry['type']}): params must be a table, got {str(params)[:80]}")
            stage = stage_class(entry["type"]).from_params(dict(params))
            stages.append((entry.get("name", entry["type"]), stage))
        try:
            input_kind = DataKind(config.get("input", DataKind.BAYER_DN.value))
        except ValueError:
            raise ConfigError(
                f"unknown input kind {config['input']!r}; expected one of {[k.value for k in DataKind]}"
            ) from None
        try:
            return cls(stages, input_kind=input_kind)
        except PipelineError as exc:
            raise ConfigError(str(exc)) from None

    # -- ready-made graphs ---------------------------------------------------------------
    @classmethod
    def classical(cls, demosaic: str = "bilinear", gamma: str = "srgb", color_matrix: bool = True,
                  **look) -> Pipeline:
        """black -> pack -> demosaic -> white balance -> colour matrix -> exposure -> gamma, from the
        raw's metadata. ``demosaic="half"`` renders at half size like LibRaw's half_size;
        ``color_matrix=False`` leaves the colours in camera RGB (for raws that carry no colour matrix);
        ``gamma`` names the curve when no output space is given. ``look``: ``rendering_stages``'s."""
        stages = [("black", BlackLevel()), ("pack", BayerPack()), ("demosaic", Demosaic(demosaic))]
        return cls(stages + rendering_stages(color_matrix=color_matrix, curve=gamma, **look))


    @classmethod
    def default(cls, scale: int | None = None, weights: str = "default", **zoom_options) -> Pipeline:
        """The shipped learned zoom of ``scale`` (default 4; at 8x the 4x network, then bicubic 2x), or
        a checkpoint's (its own factor, or a ``scale`` it divides): see ``learned``. ``zoom_options``
        go to the ``learned_zoom`` stage (tile, progress), except ``rendering_stages``'s (space,
        exposure, auto_bright, highlights)."""
        look = {k: zoom_options.pop(k) for k in _LOOK if k in zoom_options}
        zoom = stage_class("learned_zoom")(weights=weights, scale=scale, **zoom_options)
        return cls.learned(zoom, scale=scale, **look)

    @classmethod
    def learned(cls, zoom: Stage, scale: int | None = None, **look) -> Pipeline:
        """black -> pack -> the learned zoom stage (its network zooms N x); then, for a network with
        linear output, white balance, colour matrix, exposure and gamma (``rendering_stages``, with
        ``look``); for a display-output network (the paper's), white balance in gamma space. Output:
        display RGB, ``scale`` (default N) x the mosaic: a ``scale`` that is a multiple of N is the
        network's zoom, then a bicubic resample of the display image for the rest ("resample")."""
        stages = [("black", BlackLevel()), ("pack", BayerPack()), ("zoom", zoom)]
        if zoom.gives == DataKind.LINEAR_RGB:
            stages += rendering_stages(**look)
        elif look:
            raise ConfigError(f"a network with display output renders as it was trained; {', '.join(look)} "
                              "do not apply")
        else:
            stages.append(("wb", WhiteBalance(space="display")))
        rest = resample_factor(zoom.scale, scale)
        if rest != 1:
            stages.append(("resample", Resize(rest)))
        return cls(stages)


def resample_factor(network: int, scale: int | None) -> int:
    """What a ``network`` x zoom leaves to a bicubic resample to zoom ``scale`` x (1 for None): scale /
    network; ConfigError unless ``scale`` is a multiple of ``network``."""
    if scale is None:
        return 1
    if int(scale) < network or int(scale) % network:
        raise ConfigError(f"a {network}x network cannot zoom {scale}x: the scale must be a multiple of its factor")
    return int(scale) // network


def rendering_stages(*, color_matrix: bool = True, space: str = "srgb", exposure: float = 0.0,
                     auto_bright: bool = False, highlights: str = "clip", curve: str | None = None) -> list:
    """The stages that render linear camera RGB as a photographer asks: white balance (the raw's gains;
    ``highlights`` "clip" or "blend"), colour matrix into the output ``space`` (sRGB, Adobe RGB,
    ProPhoto, linear; none with ``color_matrix=False``), ``exposure`` EV (plus LibRaw's auto-brightness
    with ``auto_bright``), then the space's encoding (``curve`` overrides it: "srgb", "power",
    "linear")."""
    if space not in SPACE_CURVES:
        raise ConfigError(f"colour space must be one of {', '.join(SPACE_CURVES)}, got {space!r}")
    encoding, gamma = SPACE_CURVES[space]
    if curve is not None and curve != "srgb":
        encoding = curve
    stages = [("wb", WhiteBalance(highlights=highlights))]
    if color_matrix:
        stages.append(("ccm", ColorMatrix(space=space)))
    if exposure or auto_bright:
        stages.append(("exposure", Exposure(ev=exposure, auto=auto_bright)))
    return stages + [("gamma", Gamma(encoding, gamma))]


def _prepare_input(x, meta, kind: DataKind, stage: str):
    """Turn the caller's input into a batched (B, C, H, W) float tensor plus metadata."""
    if isinstance(x, RawImage):
        meta = meta if meta is not None else x.meta
        x = x.bayer
    elif isinstance(x, (list, tuple)) and x and all(isinstance(r, RawImage) for r in x):
        shapes = {r.shape for r in x}
        if len(shapes) != 1:
            raise ShapeError(f"cannot batch raws of different sizes {sorted(shapes)}; crop them to one size")
        meta = meta if meta is not None else RawMeta.stack([r.meta for r in x])
        x = torch.stack([r.bayer for r in x]).unsqueeze(1)
    x = torch.as_tensor(x)
    if not x.is_floating_point():
        x = x.float()
    channels = kind.channels
    batched = x.ndim == 4
    if channels == 1 and x.ndim == 2:
        x = x.unsqueeze(0)
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4 or x.shape[1] != channels:
        raise ShapeError(
            f"stage {stage!r} takes {kind.label}: (B, {channels}, H, W) or ({channels}, H, W)"
            f"{' or (H, W)' if channels == 1 else ''}, got {tuple(x.shape)}"
        )
    return x, meta, batched
