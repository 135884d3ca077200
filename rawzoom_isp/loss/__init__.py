"""Losses: CoBi / contextual loss (one definition, several backends), VGG-19 features, the paper's CoBiLoss."""
from .cobi import cobi, contextual

__all__ = ["cobi", "contextual"]
