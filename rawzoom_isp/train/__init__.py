"""Training: configuration, the loop (checkpoints, resume, metrics, DDP under torchrun)."""
from .config import DEFAULTS, load_config
from .trainer import (
    build_dataset,
    build_loss,
    lr_at,
    remove_white_balance,
    restore_white_balance,
    train,
    training_seconds,
    white_balanced_output,
)

__all__ = ["DEFAULTS", "build_dataset", "build_loss", "load_config", "lr_at", "remove_white_balance",
           "restore_white_balance", "train", "training_seconds", "white_balanced_output"]
