"""Shared fixtures. Real raw files come from ../shared/data/raw (relative to the repo root); tests
that need them skip, saying so, when that folder is absent (a user's clone has none).
``RAWZOOM_SHARED=none`` hides it (CI runs the suite that way too, as a clone would), and
``RAWZOOM_SHARED=/path`` points at another shared folder."""
import os
import tempfile  # noqa: E402

# The Triton interpreter must be chosen before any @triton.jit decorator runs.
os.environ.setdefault("TRITON_INTERPRET", "1")
# A fresh torch.compile cache per run: a cache left by older code could hide a changed fake kernel.
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="rawzoom-inductor-"))

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
_SHARED = os.environ.get("RAWZOOM_SHARED", "")
SHARED_DIR = None if _SHARED.lower() == "none" else Path(_SHARED) if _SHARED else REPO.parent / "shared"
RAW_DIR = SHARED_DIR / "data" / "raw" if SHARED_DIR else Path("/nonexistent/RAWZOOM_SHARED=none/data/raw")
SAMPLE = REPO / "rawzoom_isp" / "samples" / "gopro_hero7_crop.dng"


def gpu(test):
    """Mark a test as needing a CUDA GPU (``pytest -m gpu`` runs these; ``make gpu-check`` does)."""
    return pytest.mark.gpu(pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")(test))


def shared_file(relative: str) -> Path:
    """Path of a file under ../shared/data/raw, or skip the test with the reason."""
    path = RAW_DIR / relative
    if not path.exists():
        pytest.skip(f"real raw data not available: {path} is absent (it ships only with the project's shared folder)")
    return path


@pytest.fixture(scope="session")
def sample_raw():
    import rawzoom_isp as rz

    return rz.read_raw(SAMPLE)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
