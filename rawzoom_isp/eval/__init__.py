"""Evaluation: held-out cases (LR raw + target), the classical baselines, scores with standard errors
over windows and paired win rates, the held-out protocol of every condition, the period measure,
reports."""
from .cases import Case, case_from_pair, emulated_cases, textured_windows
from .evaluate import BASELINES, baseline, evaluate, markdown_table, score
from .metrics import lpips_distance, lpips_model, psnr, ssim
from .stats import mean_se, paired

__all__ = ["BASELINES", "Case", "baseline", "case_from_pair", "emulated_cases", "evaluate", "lpips_distance",
           "lpips_model", "markdown_table", "mean_se", "paired", "psnr", "score", "ssim", "textured_windows"]
