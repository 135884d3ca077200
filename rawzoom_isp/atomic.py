"""Atomic output files: written to a temporary sibling, moved into place only when complete.

The temporary name is ``.<stem>.rawzoom-<pid>-<random>.part<ext>``; a writer that was killed leaves
it behind, and the next write of the same file removes it once its process is gone. Nothing else is
ever removed: a file is recognised as a leftover only by that exact pattern. A write that fails
(a full disk, no permission) raises an OSError that names the output, not the temporary.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator

_PART = re.compile(r"\.(?P<stem>.*)\.rawzoom-(?P<pid>\d+)-[a-z0-9_]{8}\.part(?P<ext>.*)")
LOW_SPACE = 64 << 20  # bytes: below this, a failed write is taken for a full disk


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = True) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it becomes ``path`` (replacing an existing
    file only with ``overwrite``: otherwise a file that appeared meanwhile, from another writer, is an
    OutputExistsError), on error it is removed, so a failed or interrupted write never leaves a
    half-written ``path``."""
    from .errors import OutputExistsError

    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    stem, ext = os.path.splitext(os.path.basename(path))
    remove_stale_parts(directory, stem, ext)
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.rawzoom-{os.getpid()}-", suffix=f".part{ext}", dir=directory)
    os.close(fd)
    try:
        try:
            yield tmp
        except OSError as exc:
            raise _named(exc, path, directory) from None
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp made it private; give it the usual permissions
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if another writer got there first
            except FileExistsError:
                raise OutputExistsError(f"{path}: appeared while it was being written (another writer?); pass "
                                        "--force to overwrite it") from None
            except OSError:  # a file system without hard links: check, then move
                if os.path.exists(path):
                    raise OutputExistsError(f"{path}: appeared while it was being written (another writer?); pass "
                                            "--force to overwrite it") from None
                os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _named(exc: OSError, path: str, directory: str) -> OSError:
    """The error of a failed write, naming the output instead of its temporary."""
    if exc.errno == errno.ENOSPC or shutil.disk_usage(directory).free < LOW_SPACE:
        return OSError(errno.ENOSPC, f"{path}: could not be written: no space left on the device")
    return OSError(exc.errno, f"{path}: could not be written: {exc.strerror or exc}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_parts(directory: str, stem: str, ext: str) -> list[str]:
    """Remove the temporaries of ``stem + ext`` in ``directory`` whose writers no longer run (files of
    exactly ``atomic_path``'s pattern only); returns their paths."""
    removed = []
    for name in os.listdir(directory):
        match = _PART.fullmatch(name)
        if match and match["stem"] == stem and match["ext"] == ext and not _alive(int(match["pid"])):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(directory, name))
                removed.append(os.path.join(directory, name))
    return removed
