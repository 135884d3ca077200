"""Lazy package exports (PEP 562): a package names what it offers and from which module, and imports
that module on first use. ``import rawzoom_isp`` then costs nothing, and commands that need no tensors
(``rawzoom info``) never import torch."""
from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable, Callable]:
    """(__getattr__, __dir__) for ``package``: ``exports`` maps a public name to the module (relative
    to the package, e.g. ".pipeline") that defines it; a name mapped to itself (".data" for "data")
    is a subpackage. Any other submodule is imported when first named (``rz.raw.reader``), as the
    eager packages did."""

    def __getattr__(name: str):
        if name not in exports:
            if name.startswith("__") or importlib.util.find_spec(f"{package}.{name}") is None:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            return importlib.import_module(f".{name}", package)
        module = importlib.import_module(exports[name], package)
        value = module if exports[name] == f".{name}" else getattr(module, name)
        setattr(importlib.import_module(package), name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(importlib.import_module(package).__dict__) | set(exports))

    return __getattr__, __dir__
