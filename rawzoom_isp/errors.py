"""One exception hierarchy: everything the library raises on purpose derives from RawZoomError.

Messages name the file or setting at fault and say what to do about it.
"""
from __future__ import annotations

import os


class RawZoomError(Exception):
    """Base class of every error raised on purpose by rawzoom_isp."""


class RawFileError(RawZoomError):
    """A raw file cannot be used. ``path`` names it; the message says why."""

    def __init__(self, path: str | os.PathLike | None, reason: str):
        self.path = None if path is None else os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path else reason)


class UnsupportedRawError(RawFileError):
    """A readable file whose kind we do not handle: GoPro GPR (VC-5), X-Trans, non-Bayer, not a raw."""


class CorruptRawError(RawFileError):
    """A raw file that is truncated, or whose pixel data is missing or damaged."""


class RawShapeError(RawZoomError, ValueError):
    """Raw data of the wrong shape: odd Bayer sizes, headerless sizes that do not match the file."""


class ShapeError(RawZoomError, ValueError):
    """A tensor whose shape does not fit the operation; the message names the expected shape."""


class ConfigError(RawZoomError, ValueError):
    """A pipeline or training configuration names an unknown stage, parameter or value."""


class InvalidArgumentError(RawZoomError, ValueError):
    """An argument of a function or a command-line flag out of its range or of the wrong type."""


class OutputExistsError(RawZoomError, FileExistsError):
    """An output (file, run folder, report) exists and would be replaced; pass --force (force=True)."""


class MissingDependencyError(RawZoomError, ImportError):
    """An optional package a feature needs is not installed; the message names it."""


class DataError(RawZoomError, ValueError):
    """Data that cannot serve what was asked: too small for a window, too few flat tiles to estimate
    noise from, values a DNG cannot hold, no test cases."""


class MissingDataError(RawZoomError, FileNotFoundError):
    """A folder of training or test data that is absent or holds nothing usable."""


class PipelineError(RawZoomError):
    """Stages chained so that one gives a kind of data the next cannot take."""


class WeightsUnavailableError(RawZoomError):
    """Pretrained weights that are needed cannot be found offline; the message says how to provide them."""


class CheckpointError(RawZoomError, ValueError):
    """A checkpoint that exists but cannot be trusted: not ours, damaged (its zip CRC or content hash
    fails), of another network, or holding values no trained network has."""


class AlignmentError(RawZoomError, RuntimeError):
    """Two images could not be registered (ECC did not converge); the message names the pair."""


class TrainingError(RawZoomError, FloatingPointError):
    """Training cannot go on: the loss became NaN or infinite (lower the learning rate)."""
