"""Networks and checkpoints: the ZLLZ zoom network, shipped default weights."""
from .checkpoint import default_weights, load_model, read_checkpoint, save_checkpoint
from .zoomnet import ZoomNet

__all__ = ["ZoomNet", "default_weights", "load_model", "read_checkpoint", "save_checkpoint"]
