"""Pipeline configs (TOML, or dicts from Python) that cannot describe a pipeline: each a clean
ConfigError before any image is made; the render command writes nothing."""
import pytest
import tomli_w
from conftest import SAMPLE

import rawzoom_isp as rz
from rawzoom_isp.cli import main

NAN = float("nan")
BAD = {
    "stages-ints": {"stages": [1, 2]},
    "stages-text": {"stages": "black_level"},
    "params-number": {"stages": [{"type": "white_balance", "params": 5}]},
    "type-list": {"stages": [{"type": ["white_balance"]}]},
    "name-number": {"stages": [{"type": "white_balance", "name": 5}]},
    "gains-nan": {"stages": [{"type": "white_balance", "params": {"gains": [NAN, 1, 1]}}]},
    "gains-zero": {"stages": [{"type": "white_balance", "params": {"gains": [0, 1, 1]}}]},
    "gains-negative": {"stages": [{"type": "white_balance", "params": {"gains": [-2, 1, 1]}}]},
    "matrix-nan": {"stages": [{"type": "color_matrix", "params": {"matrix": [[NAN] * 3] * 3}}]},
    "matrix-inf": {"stages": [{"type": "color_matrix", "params": {"matrix": [[float("inf")] * 3] * 3}}]},
    "white-nan": {"stages": [{"type": "black_level", "params": {"white_level": NAN}}]},
    "nested-params": {"stages": [{"type": "white_balance", "params": {"gains": [[[[[1]]]]]}}]},
    "unknown-type": {"stages": [{"type": "sharpen"}]},
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_pipeline_configs_are_config_errors(name):
    with pytest.raises(rz.errors.ConfigError):
        rz.Pipeline.from_config(BAD[name])


@pytest.mark.parametrize("name", ["gains-nan", "gains-zero", "matrix-inf", "params-number"])
def test_render_with_a_bad_pipeline_file_writes_nothing(tmp_path, name):
    path = tmp_path / "pipe.toml"
    path.write_text(tomli_w.dumps(BAD[name]))  # TOML writes nan and inf as such
    assert main(["render", str(SAMPLE), "-o", str(tmp_path / "out.png"), "--config", str(path)]) == 1
    assert not (tmp_path / "out.png").exists()
