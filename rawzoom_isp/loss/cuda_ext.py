"""The csrc CUDA extension: found prebuilt (``RAWZOOM_BUILD_CUDA=1 pip install
--no-build-isolation -e .``) or JIT-built at first use with ``torch.utils.cpp_extension.load``
(cached in torch's extension directory) from its sources: ``csrc/`` at the top of a checkout (an
editable install), or ``rawzoom_isp/csrc`` in a wheel (setup.py copies them there). Its ops live
under ``torch.ops.rawzoom_cuda``. When it cannot be had, the reason is logged once."""
from __future__ import annotations

import functools
import glob
import importlib.util
import logging
import os

import torch

log = logging.getLogger(__name__)


def csrc_folder() -> str | None:
    """Where the extension's sources are: in the installed package (a wheel), else ``csrc/`` beside
    the package in its checkout (an editable install); None when neither has them."""
    from importlib import resources

    packaged = str(resources.files("rawzoom_isp") / "csrc")
    checkout = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "csrc")
    for folder in (packaged, checkout):
        if glob.glob(os.path.join(folder, "*.cu")):
            return folder
    return None


def csrc_sources() -> list[str]:
    """The extension's sources (``csrc_folder``), or [] when this installation has none."""
    folder = csrc_folder()
    if folder is None:
        return []
    return sorted(glob.glob(os.path.join(folder, "*.cu")) + glob.glob(os.path.join(folder, "*.cpp")))


def build_extension(verbose: bool = False, build_directory: str | None = None):
    """JIT-compile csrc/ (nvcc needed; no GPU needed) and load it; returns the module."""
    from torch.utils.cpp_extension import load

    if build_directory:
        os.makedirs(build_directory, exist_ok=True)
    return load(name="rawzoom_cobi_cuda", sources=csrc_sources(), extra_cuda_cflags=["-O3", "-Xptxas", "-v"],
                extra_cflags=["-O3"], verbose=verbose, build_directory=build_directory, is_python_module=False)


@functools.cache
def cuda_extension_available() -> bool:
    """Load the extension (prebuilt, else JIT) once; False, with the reason logged, when impossible."""
    if not torch.cuda.is_available():
        return False
    prebuilt = importlib.util.find_spec("rawzoom_isp._cobi_cuda")
    if prebuilt is not None and prebuilt.origin:
        torch.ops.load_library(prebuilt.origin)  # built by setup.py; registers torch.ops.rawzoom_cuda
        return True
    if not csrc_sources():
        log.warning("cobi: the csrc CUDA sources are not in this installation; using other backends")
        return False
    try:
        build_extension()
        return True
    except Exception as exc:  # noqa: BLE001 - any build failure means "not available", said once
        log.warning("cobi: the csrc CUDA extension could not be built (%s); using other backends", exc)
        return False


def cuda_forward(targets, outputs, pos_tgt, pos_out, kind, distance, h, eps, spatial_weight, spatial):
    """The csrc forward, same outputs as ``triton_forward``."""
    t, o = targets.float().contiguous(), outputs.float().contiguous()
    best, arg, row_min, row_argmin, row_logsum = torch.ops.rawzoom_cuda.cobi_forward(
        t, o, pos_tgt.float().contiguous(), pos_out.float().contiguous(), kind == "nearest", distance == "cosine",
        spatial == "distance", h, eps, spatial_weight)
    if kind == "nearest":
        losses = best.mean(1)
    else:
        losses = -(torch.logsumexp(best, dim=1) - torch.log(torch.tensor(float(o.shape[1]), device=o.device)))
    return losses, row_min, row_argmin, row_logsum, best, arg


def cuda_dense_backward(coef, targets, outputs, pos_tgt, pos_out, row_min, row_logsum, arg, distance, h, eps,
                        spatial_weight, spatial):
    """The csrc dense backward, same outputs as ``triton_dense_backward``."""
    t, o = targets.float().contiguous(), outputs.float().contiguous()
    coef = coef.float().contiguous()
    r = t.new_zeros(t.shape[:2]).scatter_add_(1, arg, coef)
    return torch.ops.rawzoom_cuda.cobi_dense_backward(
        t, o, pos_tgt.float().contiguous(), pos_out.float().contiguous(), row_min.float().contiguous(),
        row_logsum.float().contiguous(), r, arg.contiguous(), coef, distance == "cosine", spatial == "distance",
        h, eps, spatial_weight)
