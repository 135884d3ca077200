"""Build hook for the optional CUDA extension in rawzoom_isp/csrc/.

A plain `pip install .` builds a pure-Python package. The extension is built only when
asked (RAWZOOM_BUILD_CUDA=1) and possible (a CUDA build of torch and nvcc); install then with
`pip install --no-build-isolation .` so that the torch already in the environment is used.
"""
import glob
import os

from setuptools import setup


def _extensions():
    if os.environ.get("RAWZOOM_BUILD_CUDA") != "1":
        return [], {}
    folder = os.path.join("rawzoom_isp", "csrc")
    sources = sorted(glob.glob(os.path.join(folder, "*.cu")) + glob.glob(os.path.join(folder, "*.cpp")))
    if not sources:
        return [], {}
    from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CUDAExtension

    if CUDA_HOME is None:
        raise SystemExit("RAWZOOM_BUILD_CUDA=1 but no CUDA toolkit was found: set CUDA_HOME")
    ext = CUDAExtension(
        "rawzoom_isp._cobi_cuda",
        sources,
        extra_compile_args={"cxx": ["-O3"], "nvcc": ["-O3", "-Xptxas", "-v"]},
    )
    return [ext], {"build_ext": BuildExtension}


ext_modules, cmdclass = _extensions()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
