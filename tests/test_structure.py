"""The house: the floors of docs/ARCHITECTURE.md (no module imports one above it), no import cycles
(statically, between the package's modules at import time, and in fresh interpreters importing each
subpackage first), lazy exports, the public contract, and the registries a plugin extends."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

PACKAGE = REPO / "rawzoom_isp"
SUBPACKAGES = ["data", "errors", "eval", "experiments", "export", "imageio", "isp", "loss", "models", "raw", "synth",
               "train", "cli"]


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_time_edges() -> dict[str, set[str]]:
    """module -> the package modules it imports at import time (module-level statements only,
    not inside functions or ``if TYPE_CHECKING``)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                stem = f"{base}.{node.module}" if node.module else base
                for alias in node.names:
                    targets.add(f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in modules else stem)
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith("rawzoom_isp")}
        edges[name] = {t for t in targets if t in modules and t != name and not name.startswith(t + ".")}
    return edges


# docs/ARCHITECTURE.md: a module may import its own floor and the floors below, never one above.
FLOORS = {"errors": 0, "atomic": 0, "tomlfile": 0, "_lazy": 0, "color": 0, "imageio": 0, "raw": 1, "isp": 2,
          "synth": 3, "loss": 3, "models": 3, "data": 4, "eval": 5, "train": 5, "export": 5, "experiments": 6,
          "cli": 7, "__init__": 7, "shift_tolerant": 0, "__main__": 7}


def _floor(module: str) -> int:
    parts = module.split(".")
    return FLOORS[parts[1] if len(parts) > 1 else "__init__"]


def test_every_module_imports_only_its_floor_and_below():
    upward = [(m, t) for m, targets in _import_time_edges().items() for t in targets if _floor(t) > _floor(m)]
    assert not upward, upward
    across = [(m, t) for m, targets in _import_time_edges().items() for t in targets
              if m.split(".")[1:2] == ["eval"] and t.split(".")[1:2] == ["train"]]
    assert not across, "eval must not import train"


def test_no_import_cycle_between_modules():
    edges = _import_time_edges()
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in edges[node]:
            if state.get(target) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(target):] + [target]))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for module in edges:
        if module not in state:
            visit(module)
    assert "rawzoom_isp.models.learned_zoom" not in {t for m, ts in edges.items() if m.startswith("rawzoom_isp.isp")
                                             for t in ts}, "isp must not import models"


@pytest.mark.parametrize("first", SUBPACKAGES)
def test_each_subpackage_imports_alone_and_before_the_others(first):
    others = [s for s in SUBPACKAGES if s != first]
    code = (f"import rawzoom_isp.{first}\n" + "".join(f"import rawzoom_isp.{s}\n" for s in others)
            + "import rawzoom_isp as rz\nimport torch\n"
            + "import sys\nassert 'rawzoom_isp.loss' not in sys.modules or hasattr(torch.ops.rawzoom, 'cobi_forward')\n"
            + "rz.Pipeline.classical(); rz.models.PackedZoomNet(width=4, blocks=1)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]


def test_public_contract_of_the_design_card(sample_raw, tmp_path):
    import torch

    import rawzoom_isp as rz

    raw = sample_raw
    assert raw.bayer.dtype == torch.float32 and raw.bayer.ndim == 2 and raw.cfa in ("RGGB", "BGGR", "GRBG", "GBRG")
    assert raw.black_level.shape == (2, 2) and isinstance(raw.white_level, float)
    assert raw.wb_gains.shape == (3,) and float(raw.wb_gains[1]) == 1.0 and raw.cam_to_srgb.shape == (3, 3)
    assert raw.focal_length_mm is None or isinstance(raw.focal_length_mm, float)
    assert isinstance(raw.make, str) and isinstance(raw.model, str)
    rz.write_dng(tmp_path / "x.dng", raw.crop(0, 0, 64, 64))
    assert torch.equal(rz.read_raw(tmp_path / "x.dng").bayer, raw.bayer[:64, :64])
    small = raw.crop(0, 0, 64, 96)
    assert rz.Pipeline.classical()(small).shape == (3, 64, 96)
    assert rz.Pipeline.default(scale=4)(small).shape == (3, 256, 384)
    assert rz.Pipeline.from_config(rz.Pipeline.classical().to_config()).names == rz.Pipeline.classical().names
    assert rz.loss.cobi(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4)).ndim == 0
    assert isinstance(rz.loss.CoBiLoss(scale=4, vgg_weight=0.0), torch.nn.Module)
    for name in ("RawZoomError", "UnsupportedRawError", "CorruptRawError", "ConfigError", "WeightsUnavailableError"):
        assert issubclass(getattr(rz.errors, name), rz.errors.RawZoomError)


def test_renamed_public_names_still_work_with_a_deprecation_warning():
    """The names the redesign changed (closing note of the layout issue) keep working for old code."""
    import torch

    import rawzoom_isp as rz
    from rawzoom_isp.train.config import load_config

    linear, gains, matrix = torch.rand(1, 3, 8, 8), torch.tensor([[2.0, 1.0, 1.5]]), torch.eye(3)[None]
    with pytest.warns(DeprecationWarning, match="render_linear"):
        old = rz.data.render_camera_rgb(linear, gains, matrix, "srgb")
    torch.testing.assert_close(old, rz.synth.render_linear(linear, gains, matrix, "srgb"), rtol=0, atol=0)
    x, y = torch.rand(1, 4, 6, 6), torch.rand(1, 4, 6, 6)
    with pytest.warns(DeprecationWarning, match="nearest"):
        old_kind = float(rz.loss.cobi(x, y, kind="nn"))
    assert old_kind == float(rz.loss.cobi(x, y, kind="nearest"))
    sample = str(REPO / "rawzoom_isp" / "samples" / "gopro_hero7_crop.dng")
    with pytest.warns(DeprecationWarning, match="augment"):
        pairs = rz.data.EmulatedRawPairs([sample], flips=False)
    assert pairs.augment is False
    with pytest.warns(DeprecationWarning, match="augment"):
        config = load_config({"data": {"flips": False, "files": [sample]}})
    assert config["data"]["augment"] is False and "flips" not in config["data"]
    with pytest.warns(DeprecationWarning, match="input = 'rgb'"):
        config = load_config({"data": {"source": "rgb", "files": [sample]}})
    assert config["data"]["source"] == "emulated" and config["data"]["input"] == "rgb"


def test_csrc_at_the_top_level_reaches_the_wheel_and_the_editable_install(tmp_path):
    """csrc/ sits at the top of the checkout (the design card's layout); setup.py copies it into the
    wheel as rawzoom_isp/csrc, and the JIT build finds it in both kinds of installation."""
    import shutil
    import zipfile

    from rawzoom_isp.loss.cuda_ext import csrc_sources

    assert (REPO / "csrc" / "cobi_cuda.cu").exists() and not (PACKAGE / "csrc").exists()
    assert csrc_sources() == [str(REPO / "csrc" / "cobi_cuda.cu")]  # this editable install
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".venv", ".git", "runs", "build", "docs", "demo_output",
                                                                "*.egg-info", "__pycache__", "tests"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(tmp_path / "wheel"), str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "wheel").glob("rawzoom_isp-*.whl"))
    assert "rawzoom_isp/csrc/cobi_cuda.cu" in zipfile.ZipFile(wheel).namelist()
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    found = subprocess.run([sys.executable, "-c", "from rawzoom_isp.loss.cuda_ext import csrc_sources; "
                            "print(csrc_sources())"], capture_output=True, text=True, cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(site)})
    assert found.returncode == 0, found.stderr[-2000:]
    assert str(site / "rawzoom_isp" / "csrc" / "cobi_cuda.cu") in found.stdout


def test_the_learned_zoom_stage_needs_no_installed_entry_point(monkeypatch):
    """A checkout on sys.path (no installed metadata) still builds Pipeline.default: the registry lists
    the built-in stages by import path."""
    import rawzoom_isp.isp.registry as registry

    monkeypatch.setattr(registry, "entry_points", lambda group: [])
    monkeypatch.setattr(registry, "_STAGES", {})
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    assert registry.stage_class("learned_zoom").__name__ == "LearnedZoom"
    assert registry.stage_class("demosaic").__name__ == "Demosaic"


def test_a_network_a_pair_source_and_a_cobi_backend_from_a_plugin(tmp_path):
    """tests/plugin_example adds each with one file and one entry-point line (make test installs it):
    a config names them, training runs on them, CoBi computes with the plugin backend."""
    import torch

    import rawzoom_isp as rz
    from rawzoom_isp.models import available_models, build_model
    from rawzoom_isp.train import train

    if "gain_zoom" not in available_models():
        pytest.fail("the example plugin is not installed: run `pip install -e tests/plugin_example` (make test does)")
    x, y = torch.rand(1, 4, 6, 6), torch.rand(1, 4, 6, 6)
    torch.testing.assert_close(rz.loss.cobi(x, y, backend="reference"), rz.loss.cobi(x, y, backend="naive"))
    config = {"data": {"source": "flat", "options": {"count": 3}, "patch": 8, "root": str(tmp_path)},
              "model": {"arch": "gain_zoom"}, "loss": {"backend": "reference"},
              "optim": {"steps": 3, "batch_size": 2, "lr": 1e-2},
              "train": {"out": str(tmp_path / "run"), "log_every": 1, "checkpoint_every": 3}}
    final = train(config, progress=False)
    trained = rz.models.load_model(final)
    assert type(trained).__name__ == "GainZoom" and build_model(trained.config).config == trained.config
