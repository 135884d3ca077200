"""What ``make demo`` shows: the shipped 4x zoom against LibRaw + bicubic on the bundled HERO7 raw (a
camera the shipped model never saw), on LR captures in the centred geometry of a native sensor with
a native capture's noise."""
from __future__ import annotations

import os
from importlib import resources

from ..imageio import write_image
from ..models import default_weights
from .cases import emulated_cases
from .evaluate import ModelMethod, baseline, lr_preview, save_gallery, score

SAMPLE_RAW = "gopro_hero7_crop.dng"
METHODS = ("LibRaw AHD + bicubic", "learned zoom")


def run_demo(output: str, windows: int = 2, size: int = 384) -> dict[str, list[dict]]:
    """Zoom ``windows`` emulated 4x-smaller captures of the bundled raw with both methods; write the
    first one's zooms and a figure (LR | LibRaw + bicubic | learned | target) into ``output``;
    return each method's scores (``score``) per window."""
    with resources.as_file(resources.files("rawzoom_isp") / "samples" / SAMPLE_RAW) as sample:
        cases = list(emulated_cases([str(sample)], scale=4, size=size, crops=windows, phases=((0, 0),),
                                    geometry="centred", noise=True))
    learned = ModelMethod(default_weights(4))
    scores: dict[str, list[dict]] = {name: [] for name in METHODS}
    os.makedirs(output, exist_ok=True)
    for number, case in enumerate(cases):
        images = dict(zip(METHODS, (baseline("libraw", case.low, 4), learned(case.low))))
        for name, image in images.items():
            scores[name].append(score(image, case.target, 2))
        if number == 0:
            write_image(os.path.join(output, "hero7_zoom4x_libraw.png"), images[METHODS[0]])
            write_image(os.path.join(output, "hero7_zoom4x_learned.png"), images[METHODS[1]])
            panels = [("LR input, 4x nearest", lr_preview(case, 4)), *images.items(), ("target", case.target)]
            save_gallery([panels], os.path.join(output, "hero7_zoom4x_figure.png"), size=size)
    return scores
