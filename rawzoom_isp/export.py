"""Pipelines for deployment: ``torch.export`` programs (.pt2) and ONNX models.

An exported pipeline is ``PipelineProgram``: the raw mosaic (1, 1, H, W) in digital numbers plus the
shot's metadata as tensors (black level (2, 2), white level (), WB gains (3,), camera -> sRGB (3, 3),
and, for a network told the capture's noise, ``noise`` (3, 2): (S, O) per colour R, G, B) in,
display sRGB out. The CFA pattern is fixed when exporting (``cfa``, one per sensor) and recorded
in the file with the zoom factor, the input layout and the library version (``metadata``; ONNX
metadata_props, or ``rawzoom.json`` in a .pt2 archive): a mosaic of another pattern must be flipped
into it first and the output flipped back (``examples/onnx_zoom.py``). Height and width stay dynamic
(even). The learned pipeline is exported untiled: tiling is the caller's loop, not part of the graph
(``rz.models.run_tiled`` shows how). Classical pipelines export with the differentiable demosaics
(bilinear, malvar2004, half) only.
"""
from __future__ import annotations

import json
import os

import torch
from torch import nn

from .atomic import atomic_path
from .errors import ConfigError, MissingDependencyError, OutputExistsError
from .isp.pipeline import Pipeline
from .raw.cfa import Cfa
from .raw.image import RawMeta

FORMATS = ("pt2", "onnx")


class PipelineProgram(nn.Module):
    """``forward(bayer, black_level, white_level, wb_gains, cam_to_srgb[, noise])`` =
    ``pipeline(bayer, meta)`` with a fixed ``cfa``: every per-shot fact is an input tensor, so one
    export serves every shot; ``noise`` (3, 2) only for a network told the capture's noise."""

    def __init__(self, pipeline: Pipeline, cfa: str):
        super().__init__()
        self.pipeline, self.cfa = pipeline, cfa
        zoom = pipeline["zoom"] if "zoom" in pipeline.names else None
        self.takes_noise = zoom is not None and zoom.told_noise

    def forward(self, bayer, black_level, white_level, wb_gains, cam_to_srgb, noise=None):
        meta = RawMeta(cfa=self.cfa, black_level=black_level, white_level=white_level, wb_gains=wb_gains,
                       cam_to_srgb=cam_to_srgb, noise=noise)
        return self.pipeline(bayer, meta)

    @property
    def input_names(self) -> list[str]:
        return INPUT_NAMES + (["noise"] if self.takes_noise else [])


EXPORTABLE_DEMOSAICS = ("bilinear", "malvar2004", "half")
INPUT_NAMES = ["bayer", "black_level", "white_level", "wb_gains", "cam_to_srgb"]
INPUT_LAYOUT = ("bayer (1, 1, H, W) raw digital numbers, H and W even, in the recorded CFA; black_level (2, 2) "
                "per CFA position; white_level (); wb_gains (3,) R, G, B with G = 1; cam_to_srgb (3, 3)")
NOISE_LAYOUT = "; noise (3, 2) (S, O) per colour R, G, B, variance S x + O of the normalised signal x"


def build_program(kind: str = "learned", scale: int | None = None, weights: str = "default", cfa: str = "RGGB",
                  demosaic: str = "malvar2004") -> PipelineProgram:
    """The program of the learned pipeline (``Pipeline.default``, untiled: the shipped zoom of
    ``scale`` or a checkpoint, which knows its factor) or the classical one, for mosaics in ``cfa``."""
    if kind == "learned":
        pipeline = Pipeline.default(scale=scale, weights=weights, tile=0)
    elif kind == "classical":
        if demosaic not in EXPORTABLE_DEMOSAICS:
            raise ConfigError(f"demosaic {demosaic!r} runs outside torch and cannot be exported; use one of "
                              f"{', '.join(EXPORTABLE_DEMOSAICS)}")
        pipeline = Pipeline.classical(demosaic=demosaic)
    else:
        raise ConfigError(f"pipeline must be 'learned' or 'classical', got {kind!r}")
    return PipelineProgram(pipeline.eval(), str(Cfa(cfa))).eval()


def metadata(program: PipelineProgram) -> dict[str, str]:
    """What an exported file records about itself (all values text): the library and format
    version, the pipeline kind, its zoom factor, the CFA it expects, the input layout and output."""
    from . import __version__

    names = program.pipeline.names
    zoom = program.pipeline["zoom"].scale if "zoom" in names else 1
    scale = zoom * (int(program.pipeline["resample"].scale) if "resample" in names else 1)
    return {"rawzoom_isp.version": __version__, "rawzoom_isp.format": "1",
            "rawzoom_isp.pipeline": "learned" if "zoom" in names else "classical",
            "rawzoom_isp.scale": str(scale), "rawzoom_isp.cfa": program.cfa,
            "rawzoom_isp.inputs": INPUT_LAYOUT + (NOISE_LAYOUT if program.takes_noise else ""),
            "rawzoom_isp.output": "srgb (1, 3, scale H, scale W) display sRGB in [0, 1], stored orientation"}


def example_inputs(height: int = 256, width: int = 256, white: float = 16383.0,
                   noise: bool = False) -> tuple[torch.Tensor, ...]:
    """Inputs of the program's shape: a random mosaic and plausible metadata (with ``noise``, a
    native capture's noise)."""
    generator = torch.Generator().manual_seed(0)
    bayer = torch.rand(1, 1, height, width, generator=generator) * white
    told = (torch.tensor([[4e-4, 1e-6]]).expand(3, 2).clone(),) if noise else ()
    return (bayer, torch.zeros(2, 2), torch.tensor(white), torch.tensor([2.0, 1.0, 1.5]), torch.eye(3), *told)


def _dynamic_shapes(inputs: int):
    half_height, half_width = torch.export.Dim("half_height", min=8, max=8192), torch.export.Dim("half_width", min=8,
                                                                                                  max=8192)
    return ({2: 2 * half_height, 3: 2 * half_width},) + (None,) * (inputs - 1)


def export_program(program: PipelineProgram, path: str | os.PathLike, fmt: str = "pt2",
                   size: tuple[int, int] = (256, 256), force: bool = False) -> str:
    """Export ``program`` to ``path`` (.pt2 torch.export program or .onnx), height and width dynamic;
    written atomically; an existing file only with ``force``."""
    path = os.fspath(path)
    if fmt not in FORMATS:
        raise ConfigError(f"export format must be one of {FORMATS}, got {fmt!r}")
    if os.path.splitext(path)[1].lower() != f".{fmt}":
        raise ConfigError(f"{path}: a {fmt} export is named .{fmt}")
    if os.path.exists(path) and not force:
        raise OutputExistsError(f"{path}: exists; pass --force to overwrite it")
    if size[0] % 2 or size[1] % 2 or min(size) < 16:
        raise ConfigError(f"example size {size} must be even and at least 16")
    example = example_inputs(*size, noise=program.takes_noise)
    with torch.no_grad(), atomic_path(path) as tmp:
        if fmt == "pt2":
            exported = torch.export.export(program, example, dynamic_shapes=_dynamic_shapes(len(example)))
            torch.export.save(exported, tmp, extra_files={"rawzoom.json": json.dumps(metadata(program))})
        else:
            try:
                import onnxscript  # noqa: F401 - torch's ONNX exporter needs it
            except ImportError:
                raise MissingDependencyError("ONNX export needs the onnx and onnxscript packages (pip install onnx "
                                             "onnxscript)") from None
            torch.onnx.export(program, example, tmp, dynamo=True, dynamic_shapes=_dynamic_shapes(len(example)),
                              input_names=program.input_names,
                              output_names=["srgb"], external_data=False)
            import onnx

            model = onnx.load(tmp)
            for key, value in metadata(program).items():
                entry = model.metadata_props.add()
                entry.key, entry.value = key, value
            onnx.save(model, tmp)
    return path


def export_pipeline(kind: str, path: str | os.PathLike, fmt: str = "pt2", scale: int | None = None,
                    weights: str = "default", size: tuple[int, int] = (256, 256), cfa: str = "RGGB",
                    force: bool = False, demosaic: str = "malvar2004") -> str:
    """``build_program`` then ``export_program`` (what ``rawzoom export`` runs)."""
    return export_program(build_program(kind, scale, weights, cfa, demosaic), path, fmt, size, force)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``metadata`` an exported .onnx or .pt2 file records."""
    path = os.fspath(path)
    if path.lower().endswith(".onnx"):
        import onnx

        return {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
    extra = {"rawzoom.json": ""}
    torch.export.load(path, extra_files=extra)
    return json.loads(extra["rawzoom.json"] or "{}")
