"""Evaluation: PSNR / SSIM / LPIPS after shift-tolerant alignment, the bicubic baseline, reports."""
from .compare import compare
from .evaluate import bicubic, evaluate, markdown_table, predict, score
from .metrics import lpips_distance, lpips_model, psnr, ssim

__all__ = ["bicubic", "compare", "evaluate", "lpips_distance", "lpips_model", "markdown_table", "predict", "psnr", "score", "ssim"]
