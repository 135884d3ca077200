"""Build hooks: the CUDA sources of csrc/ (top level) go into the wheel as package data
(rawzoom_isp/csrc), where the JIT build finds them; the optional CUDA extension is built from them.

A plain `pip install .` builds a pure-Python package. The extension is built only when
asked (RAWZOOM_BUILD_CUDA=1) and possible (a CUDA build of torch and nvcc); install then with
`pip install --no-build-isolation .` so that the torch already in the environment is used.
An editable install (or a checkout on sys.path) finds csrc/ where it is.
"""
import glob
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

CSRC = "csrc"


class BuildPyWithCsrc(build_py):
    """build_py, plus csrc/'s sources copied into the built package as rawzoom_isp/csrc."""

    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "rawzoom_isp", "csrc")
        os.makedirs(target, exist_ok=True)
        for path in sorted(glob.glob(os.path.join(CSRC, "*"))):
            if os.path.isfile(path):
                shutil.copy(path, target)


def _extensions():
    if os.environ.get("RAWZOOM_BUILD_CUDA") != "1":
        return [], {}
    sources = sorted(glob.glob(os.path.join(CSRC, "*.cu")) + glob.glob(os.path.join(CSRC, "*.cpp")))
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
setup(ext_modules=ext_modules, cmdclass={"build_py": BuildPyWithCsrc, **cmdclass})
