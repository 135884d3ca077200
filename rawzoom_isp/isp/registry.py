"""Stage registry: ``@register_stage("name")`` plus the entry-point group ``rawzoom_isp.stages``, so
a third-party package can add a stage that configs refer to by name."""
from __future__ import annotations

from importlib.metadata import entry_points

from ..errors import ConfigError

ENTRY_POINT_GROUP = "rawzoom_isp.stages"
_STAGES: dict[str, type] = {}
_entry_points_loaded = False


def register_stage(name: str):
    """Class decorator: make a Stage subclass available to configs as ``type = name``."""

    def decorate(cls):
        existing = _STAGES.get(name)
        if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
            raise ConfigError(
                f"stage type {name!r} is already registered by {existing.__module__}.{existing.__qualname__}"
            )
        cls.type_name = name
        _STAGES[name] = cls
        return cls

    return decorate


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _STAGES:
            continue
        try:
            loaded = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the library
            raise ConfigError(f"stage plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        if isinstance(loaded, type) and ep.name not in _STAGES:
            register_stage(ep.name)(loaded)


def stage_class(name: str) -> type:
    """The Stage class registered under ``name`` (built-ins, decorated classes, then plugins)."""
    from . import stages  # noqa: F401 - the built-in stages register themselves on import

    if name not in _STAGES:
        _load_entry_points()
    if name not in _STAGES:
        raise ConfigError(f"unknown stage type {name!r}; known: {', '.join(sorted(available_stages()))}")
    return _STAGES[name]


def available_stages() -> list[str]:
    """The names configs may use: built-in, registered and plugin stages."""
    from . import stages  # noqa: F401

    _load_entry_points()
    return sorted(_STAGES)
