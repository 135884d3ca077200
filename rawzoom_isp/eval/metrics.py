"""Image quality metrics on sRGB in [0, 1]: PSNR, SSIM (Wang et al. 2004), LPIPS when its AlexNet
backbone is available offline (otherwise it says why, and gives no number)."""
from __future__ import annotations

import functools
import os

import torch
import torch.nn.functional as F

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """10 log10(1 / MSE) over all pixels and channels (data range 1)."""
    mse = float(((x.double() - y.double()) ** 2).mean())
    return float("inf") if mse == 0 else 10.0 * torch.log10(torch.tensor(1.0 / mse)).item()


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> float:
    """Mean SSIM over channels with an 11 x 11 Gaussian window (sigma 1.5, applied as two separable
    passes), K1 = 0.01, K2 = 0.03, data range 1, valid positions only."""
    x, y = x.double()[None] if x.ndim == 3 else x.double(), y.double()[None] if y.ndim == 3 else y.double()
    taps = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    g = torch.exp(-(taps ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    channels = x.shape[1]
    rows, cols = (
        g.reshape(1, 1, 1, -1).expand(channels, 1, 1, window),
        g.reshape(1, 1, -1, 1).expand(channels, 1, window, 1),
    )

    def blur(t):
        return F.conv2d(F.conv2d(t, rows, groups=channels), cols, groups=channels)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    value = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return float(value.mean())


@functools.lru_cache(maxsize=1)
def lpips_model():
    """(model, None) when LPIPS (AlexNet) can run offline, else (None, the reason)."""
    path = os.path.join(torch.hub.get_dir(), "checkpoints", ALEXNET_FILE)
    if not os.path.isfile(path):
        return None, f"LPIPS unavailable: its AlexNet backbone ({ALEXNET_FILE}) is not in {os.path.dirname(path)}"
    try:
        import lpips

        return lpips.LPIPS(net="alex", version="0.1", verbose=False).eval(), None
    except Exception as exc:  # noqa: BLE001 - any failure means "unavailable", with the reason
        return None, f"LPIPS unavailable: {exc}"


def lpips_distance(x: torch.Tensor, y: torch.Tensor) -> float | None:
    """LPIPS (AlexNet, v0.1) between two RGB images in [0, 1], or None when it is unavailable."""
    model, _ = lpips_model()
    if model is None:
        return None
    with torch.no_grad():
        return float(model(x[None].float(), y[None].float(), normalize=True).mean())
