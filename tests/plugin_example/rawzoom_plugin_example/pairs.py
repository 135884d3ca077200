"""A plugin pair source (found through the ``rawzoom_isp.pair_sources`` entry point): flat colour
fields, ``count`` of them ([data] options), each with its exact target."""
import torch

from rawzoom_isp.data.pairs import PairDataset, ZoomPair
from rawzoom_isp.isp import functional as F
from rawzoom_isp.synth import render_linear


class FlatPairs(PairDataset):
    def __init__(self, count: int = 4, **common):
        super().__init__(**common)
        self.count = int(count)

    @classmethod
    def from_config(cls, data, source, **common):
        return cls(count=data["options"].get("count", 4), **common)

    def __len__(self):
        return self.count

    def load(self, index, generator):
        size = 2 * (self.patch or 16)
        colour = 0.1 + 0.6 * torch.rand(3, generator=generator)
        mosaic = F.mosaic(colour[:, None, None].expand(3, size, size)[None], "RGGB")[0]
        gains = torch.tensor([2.0, 1.0, 1.5])
        linear = colour[:, None, None].expand(3, self.scale * size, self.scale * size)[None]
        target = render_linear(linear, gains[None], torch.eye(3)[None], "srgb")[0]
        return ZoomPair(mosaic=mosaic, cfa="RGGB", target=target, wb_gains=gains, cam_to_srgb=torch.eye(3),
                        info={"source": f"flat{index}", "render": "srgb", "target_white_balanced": True})
