"""The paper's experiments, reproduced with statistical power (``rawzoom compare``): one network
trained in several arms that differ only in what is tested, every arm scored with the classical
baselines on the same held-out windows, reported as paired differences with standard errors over
windows and verdicts that need the metrics to agree."""
from .config import EXPERIMENTS, read_compare_config
from .run import compare

__all__ = ["EXPERIMENTS", "compare", "read_compare_config"]
