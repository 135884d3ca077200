"""Can the fused CoBi kernels use tensor cores? A CPU emulation of split-precision dots.

The kernels compute D = 1/2 - 1/2 <t, o> (cosine) or |t|^2 + |o|^2 - 2 <t, o> (l2) and then
d / (min d + eps), which amplifies errors in the nearest distances. One TF32 product (10-bit
mantissa) is refused for that reason. Split precision keeps fp32 accuracy on tensor cores:
3xTF32 takes a = a_hi + a_lo (each rounded to TF32) and sums a_hi b_hi + a_hi b_lo + a_lo b_hi in fp32
(Triton ``input_precision="tf32x3"``); bf16x3 does the same with bfloat16 parts. This script rounds
the operands exactly as the hardware does, computes D both ways against a float64 reference, and the
CoBi loss and gradients through the chunked backend with each D, on feature maps shaped like the
loss's (VGG-like, cosine) at several N and C. What it cannot measure: speed (no GPU here).

    python benchmarks/cobi_precision.py
"""
from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import machine  # noqa: E402


def round_mantissa(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Round float32 to ``bits`` explicit mantissa bits, to nearest even (TF32: 10, bf16: 7)."""
    drop = 23 - bits
    integer = x.float().contiguous().view(torch.int32)
    half = 1 << (drop - 1)
    tie = (integer >> drop) & 1
    rounded = (integer + half - 1 + tie) & ~((1 << drop) - 1)
    return rounded.view(torch.float32)


def split_dot(a: torch.Tensor, b: torch.Tensor, bits: int | None, parts: int) -> torch.Tensor:
    """a @ b.T as the hardware would: fp32 (bits None), one rounded product, or the 3-term split."""
    if bits is None:
        return a.float() @ b.float().T
    a_hi, b_hi = round_mantissa(a, bits), round_mantissa(b, bits)
    if parts == 1:
        return a_hi @ b_hi.T
    a_lo, b_lo = round_mantissa(a.float() - a_hi, bits), round_mantissa(b.float() - b_hi, bits)
    return a_hi @ b_hi.T + a_hi @ b_lo.T + a_lo @ b_hi.T


def cobi_from_distances(d: torch.Tensor, h: float = 0.5, eps: float = 1e-3) -> torch.Tensor:
    """The contextual loss of one image from its (M, N) distance matrix (the definition's steps 3-5)."""
    relative = d / (d.min(dim=1, keepdim=True).values + eps)
    cx = torch.softmax((1 - relative) / h, dim=1)
    return -torch.log(cx.max(dim=0).values.mean())


def main() -> None:
    generator = torch.Generator().manual_seed(0)
    print(f"Machine: {machine()}\n")
    print("| N = M | C | precision | max abs error of D | relative error of the loss | gradient error / max |")
    print("|---|---|---|---|---|---|")
    for n, channels in ((1024, 64), (4096, 64), (4096, 128), (4096, 256)):
        base = torch.randn(n, channels, generator=generator).relu()  # ReLU features, like VGG's
        targets = base + 0.3 * torch.randn(n, channels, generator=generator).relu()
        outputs = base + 0.3 * torch.randn(n, channels, generator=generator).relu()
        mean = outputs.mean(0, keepdim=True)
        t = torch.nn.functional.normalize(targets - mean, dim=1)
        o = torch.nn.functional.normalize(outputs - mean, dim=1)
        exact_d = 0.5 - 0.5 * (t.double() @ o.double().T)
        o64 = o.double().requires_grad_()
        exact = cobi_from_distances(0.5 - 0.5 * (t.double() @ o64.T))
        (exact_grad,) = torch.autograd.grad(exact, o64)
        for name, bits, parts in (("ieee fp32", None, 1), ("tf32", 10, 1), ("tf32x3", 10, 3), ("bf16x3", 7, 3)):
            d = 0.5 - 0.5 * split_dot(t, o, bits, parts)
            o32 = o.clone().requires_grad_()
            # The gradient through the same rounding of the products (the kernels' backward uses it too).
            loss = cobi_from_distances(0.5 - 0.5 * (split_dot(t, o32, bits, parts) if bits is None else
                                                     (t @ o32.T + (split_dot(t, o, bits, parts) - t @ o.T))))
            (grad,) = torch.autograd.grad(loss, o32)
            print(f"| {n} | {channels} | {name} | {float((d.double() - exact_d).abs().max()):.2e} | "
                  f"{abs(loss.item() - exact.item()) / abs(exact.item()):.2e} | "
                  f"{float((grad.double() - exact_grad).abs().max() / exact_grad.abs().max()):.2e} |")


if __name__ == "__main__":
    main()
