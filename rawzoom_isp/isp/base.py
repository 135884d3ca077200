"""Stage: the unit of the ISP graph, an nn.Module that declares the kind of data it takes and gives."""
from __future__ import annotations

import inspect
import math
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, PipelineError
from .kinds import DataKind


class Stage(nn.Module):
    """Base class. Subclasses set ``takes`` (kinds accepted) and ``gives`` (output kind, or None for
    "same as input"), implement ``forward(x, meta=None)`` by calling the functional twin, and store
    their constructor arguments as attributes of the same name so that ``params()`` round-trips.
    A stage whose accepted kinds depend on its arguments sets ``takes`` on the instance."""

    type_name: str = ""
    takes: frozenset[DataKind] = frozenset()
    gives: DataKind | None = None

    def output_kind(self, kind: DataKind) -> DataKind:
        if kind not in self.takes:
            raise PipelineError(
                f"{self.type_name} takes {' or '.join(sorted(k.label for k in self.takes))}, not {kind.label}"
            )
        return self.gives or kind

    @property
    def halo(self) -> int | None:
        """How many input pixels around an output pixel it depends on, in each direction; None when the
        stage is not local (a resampling, a network that tiles itself). Pointwise stages: 0."""
        return 0

    def params(self) -> dict[str, Any]:
        """Constructor arguments, for configs: None values left out, tensors as lists."""
        out = {}
        for name in inspect.signature(type(self).__init__).parameters:
            if name == "self":
                continue
            value = getattr(self, name, None)
            if value is None:
                continue
            if isinstance(value, torch.Tensor):
                value = value.tolist()
            out[name] = value
        return out

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Stage:
        """The stage a config's parameters describe: known names only, every number in them finite."""
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            raise ConfigError(f"stage type {cls.type_name!r}: params must be a table of named values")
        for name, value in params.items():
            _check_finite(f"stage type {cls.type_name!r} parameter {name}", value)
        accepted = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
        unknown = sorted(set(params) - set(accepted))
        if unknown:
            raise ConfigError(
                f"stage type {cls.type_name!r} has no parameter(s) {', '.join(unknown)}; "
                f"it takes {', '.join(accepted) or 'none'}"
            )
        try:
            return cls(**params)
        except ConfigError:
            raise
        except (TypeError, ValueError, RuntimeError) as exc:  # torch reports wrong shapes as RuntimeError
            raise ConfigError(f"stage type {cls.type_name!r}: bad parameters {str(params)[:200]} "
                              f"({str(exc)[:200]})") from None

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.params().items() if not isinstance(v, list))


def _check_finite(where: str, value, depth: int = 0) -> None:
    """ConfigError unless ``value`` is a bool, string, finite number or a (nested, short) list of them."""
    if depth > 3 or isinstance(value, (list, tuple)) and len(value) > 64:
        raise ConfigError(f"{where}: nested too deep or too long")
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_finite(where, item, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: {value} is not a finite number")
    elif value is not None and not isinstance(value, (bool, int, float, str)):
        raise ConfigError(f"{where}: a {type(value).__name__}, not a number, text or list")


def needs_meta(stage: str, meta, field: str):
    """The metadata field a stage needs, or a clear error when no metadata was given."""
    value = None if meta is None else getattr(meta, field, None)
    if value is None:
        raise PipelineError(f"stage {stage!r} needs {field} from the raw's metadata (pass a RawImage or meta=...) "
                            "or as a parameter")
    return value
