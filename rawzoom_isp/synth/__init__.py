"""Synthetic raw: unprocessing (Brooks et al. 2019), the paper's syn-raw, their forward renders, the
sensor noise model."""
from .noise import add_mosaic_noise, add_noise, estimate_noise, random_noise_levels, with_noise_profile
from .unprocess import (
    RENDERS,
    SynthMeta,
    process,
    process_pipeline,
    random_cam_to_srgb,
    random_gains,
    render_linear,
    render_stages,
    synthetic_raw,
    unprocess,
    unprocess_linear,
)

__all__ = ["RENDERS", "SynthMeta", "add_mosaic_noise", "add_noise", "estimate_noise", "process", "process_pipeline",
           "random_cam_to_srgb", "random_gains", "random_noise_levels", "render_linear", "render_stages",
           "synthetic_raw", "unprocess", "unprocess_linear", "with_noise_profile"]
