"""Rendering a raw in strips of rows: the memory of a strip, the image of the whole frame.

A pipeline whose stages are all local (each output pixel depends on input pixels at most ``halo``
away: pointwise stages, demosaicking) renders a strip of rows with that many rows of context on each
side as the whole frame renders them (up to the float32 rounding of a convolution run at another
size: one level in 16 bits). So a 12 MP frame never has a full-frame float32 image
in memory: each strip goes straight into the (H, W, 3) integer image that is written.
"""
from __future__ import annotations

import numpy as np
import torch

from ..imageio import to_integers
from ..raw.image import RawImage

DEFAULT_ROWS = 128


def pipeline_halo(pipeline) -> int | None:
    """The rows of context a strip needs (the sum of the stages' halos), or None when a stage is not
    local."""
    total = 0
    for stage in pipeline.stages.values():
        halo = stage.halo
        if halo is None:
            return None
        total += halo
    return total


def render_array(pipeline, raw: RawImage, bits: int = 8, rows: int = DEFAULT_ROWS) -> np.ndarray:
    """``pipeline(raw)`` as an (H', W', 3) uint8 or uint16 image (``to_integers``), in stored
    orientation: strip by strip of ``rows`` mosaic rows when the pipeline is local, else whole."""
    halo = pipeline_halo(pipeline)
    height = raw.shape[0]
    with torch.no_grad():
        if halo is None or height <= 2 * rows:
            return to_integers(pipeline(raw), bits)
        context = -(-halo // 2) * 2 + 2  # even, so that every strip keeps the CFA phase
        rows = max(2, rows // 2 * 2)
        out = None
        for top in range(0, height, rows):
            bottom = min(height, top + rows)
            start, stop = max(0, top - context), min(height, bottom + context)
            rgb = pipeline(raw.crop(start, 0, stop - start, raw.shape[1]))
            factor = rgb.shape[-2] / (stop - start)  # 1, or 1/2 for a half-size render
            if out is None:
                out = np.empty((round(height * factor), rgb.shape[-1], 3), np.uint8 if bits == 8 else np.uint16)
            keep = slice(round((top - start) * factor), round((bottom - start) * factor))
            out[round(top * factor):round(bottom * factor)] = to_integers(rgb[:, keep], bits)
        return out
