"""Zoom networks, checkpoints, shipped weights, and the ``learned_zoom`` ISP stage.

``PackedZoomNet`` (the default: all work at the packed resolution, pixel shuffle, residual over the
classical zoom) and ``ZoomNet`` (the paper's layout) share one call, ``net(x, wb_gains)``.
"""
from .checkpoint import (
    build_model,
    checkpoint_scale,
    default_weights,
    load_model,
    read_checkpoint,
    save_checkpoint,
)
from .learned_zoom import LearnedZoom, run_tiled, zoom_input
from .packed import PackedZoomNet
from .registry import ZoomNetwork, available_models, model_class, register_model
from .zoomnet import ZoomNet

__all__ = ["LearnedZoom", "PackedZoomNet", "ZoomNet", "build_model", "checkpoint_scale",
           "default_weights", "load_model", "ZoomNetwork", "available_models", "model_class", "register_model",
           "read_checkpoint", "run_tiled", "save_checkpoint", "zoom_input"]
