"""Reading TOML config files, in one place: regular files only (a FIFO or a device would block or
never end), errors that name the file."""
from __future__ import annotations

import os
import stat

from .errors import ConfigError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def read_toml(path: str | os.PathLike, what: str = "config") -> dict:
    """The parsed TOML file; ConfigError if it is missing, not a regular file, or not valid TOML."""
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except OSError:
        raise ConfigError(f"{path}: no such {what} file") from None
    if not stat.S_ISREG(mode):
        raise ConfigError(f"{path}: a {what} must be a regular file")
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read this {what} ({exc})") from None
