"""Synthetic raw: unprocessing (Brooks et al. 2019), the paper's syn-raw, the sensor noise model."""
from .noise import add_mosaic_noise, add_noise, estimate_noise, random_noise_levels
from .unprocess import SynthMeta, process, process_pipeline, random_cam_to_srgb, random_gains, unprocess

__all__ = ["SynthMeta", "add_mosaic_noise", "add_noise", "estimate_noise", "process", "process_pipeline",
           "random_cam_to_srgb", "random_gains", "random_noise_levels", "unprocess"]
