"""Losses: CoBi / contextual loss (one definition, several backends), VGG-19 features, the paper's CoBiLoss."""
from . import op  # noqa: F401 - registers rawzoom::cobi_forward / cobi_backward on import
from .cobi import cobi, contextual
from .cobi_loss import CoBiLoss, rgb_patches
from .vgg import VGG19Features

__all__ = ["CoBiLoss", "VGG19Features", "cobi", "contextual", "rgb_patches"]
