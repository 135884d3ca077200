"""Run an exported ONNX pipeline in onnxruntime on a real raw of any CFA, and check it against eager.

    rawzoom export --onnx -o zoom.onnx                 # the learned 4x zoom, for RGGB mosaics
    python examples/onnx_zoom.py zoom.onnx photo.dng --region 0 0 128 128 --out zoomed.png

The model takes a mosaic in the CFA recorded in its metadata. A raw of another pattern is flipped into
it (a flip maps 2x2 tiles onto tiles, so no sample moves to another neighbourhood), run, and the
output flipped back: exact. The black level tile follows the same flips. A model told the capture's
noise (its metadata lists a ``noise`` input) gets (S, O) per colour R, G, B: the raw's NoiseProfile,
or what ``rz.synth.with_noise_profile`` reads from the whole frame before the region is cut.
"""
import argparse

import numpy as np
import onnxruntime
import torch

import rawzoom_isp as rz
from rawzoom_isp.export import read_metadata
from rawzoom_isp.raw.cfa import Cfa


def flips_between(cfa: str, wanted: str) -> tuple[int, ...]:
    """The dims (-2, -1) to flip a mosaic in ``cfa`` so that it is in ``wanted``."""
    for flip_v in (False, True):
        for flip_h in (False, True):
            if Cfa(cfa).transformed(flip_v, flip_h) == wanted:
                return tuple(d for d, f in ((-2, flip_v), (-1, flip_h)) if f)
    raise SystemExit(f"a {cfa} mosaic cannot be flipped into {wanted}")


def run(model_path: str, raw: rz.RawImage) -> torch.Tensor:
    """The ONNX model's output (3, N H, N W) for ``raw``, in the raw's stored orientation."""
    wanted = read_metadata(model_path)["rawzoom_isp.cfa"]
    dims = flips_between(raw.cfa, wanted)
    bayer = raw.bayer.flip(dims) if dims else raw.bayer
    black = raw.black_level.flip(dims) if dims else raw.black_level
    session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    inputs = {"bayer": bayer[None, None].numpy(), "black_level": black.numpy(),
              "white_level": np.array(raw.white_level, dtype=np.float32), "wb_gains": raw.wb_gains.numpy(),
              "cam_to_srgb": (raw.cam_to_srgb if raw.cam_to_srgb is not None else torch.eye(3)).numpy()}
    if "noise" in {i.name for i in session.get_inputs()}:
        inputs["noise"] = raw.meta.noise.numpy()
    out = torch.from_numpy(session.run(["srgb"], inputs)[0])[0]
    return out.flip(dims) if dims else out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("raw")
    parser.add_argument("--region", type=int, nargs=4, metavar=("Y", "X", "H", "W"), default=(0, 0, 128, 128),
                        help="a box of the displayed image to zoom")
    parser.add_argument("--out", help="write the zoom here (.png)")
    args = parser.parse_args()
    raw = rz.synth.with_noise_profile(rz.read_raw(args.raw)).crop_displayed(*args.region)
    meta = read_metadata(args.model)
    ours = run(args.model, raw)
    eager = rz.Pipeline.default(scale=int(meta["rawzoom_isp.scale"]), tile=0)(raw) \
        if meta["rawzoom_isp.pipeline"] == "learned" else rz.Pipeline.classical(demosaic="malvar2004")(raw)
    difference = float((ours - eager).abs().max())
    print(f"{args.raw}: a {raw.cfa} mosaic through a model for {meta['rawzoom_isp.cfa']}, "
          f"{meta['rawzoom_isp.scale']}x: {tuple(ours.shape)}, max difference to eager {difference:.2e}")
    if args.out:
        rz.imageio.write_image(args.out, rz.isp.functional.apply_orientation(ours, raw.orientation))


if __name__ == "__main__":
    main()
