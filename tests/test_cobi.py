"""CoBi / contextual loss: backends against the naive reference, gradcheck, hand-computed cases,
properties, memory bounds."""
import itertools
import json
import math
import subprocess
import sys
import textwrap

import pytest
import torch

from rawzoom_isp.errors import ConfigError, RawZoomError, ShapeError
from rawzoom_isp.loss import cobi, contextual

OPTIONS = [
    dict(kind=kind, distance=distance, spatial=spatial, spatial_weight=0.0 if spatial is None else 0.2)
    for kind, distance, spatial in itertools.product(
        ("contextual", "nearest"), ("cosine", "l2"), ("distance", "blend", None)
    )
    if not (kind == "nearest" and spatial == "blend")
]
SHAPES = [  # (B, C, output H, W, target H, W)
    (2, 3, 5, 7, 6, 4),
    (1, 64, 8, 8, 8, 8),
    (3, 17, 4, 9, 7, 5),
    (2, 256, 6, 5, 5, 6),
]


def _ids(options):
    return f"{options['kind']}-{options['distance']}-{options['spatial']}"


@pytest.mark.parametrize("options", OPTIONS, ids=_ids)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_chunked_matches_naive(options, shape):
    b, c, hx, wx, hy, wy = shape
    x = torch.randn(b, c, hx, wx, requires_grad=True)
    y = torch.randn(b, c, hy, wy, requires_grad=True)
    # The reference runs in float64; the chunked backend in float32 with chunks of a few rows.
    x64, y64 = (t.detach().double().requires_grad_() for t in (x, y))
    expected = cobi(x64, y64, backend="naive", reduction="none", **options)
    got = cobi(x, y, backend="chunked", reduction="none", memory_budget=3 * hx * wx * 4 * 4, **options)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-7)
    grads_expected = torch.autograd.grad(expected.sum(), (x64, y64))
    grads_got = torch.autograd.grad(got.sum(), (x, y))
    for g, e in zip(grads_got, grads_expected):
        torch.testing.assert_close(g.double(), e, rtol=1e-4, atol=1e-4 * float(e.abs().max()))


@pytest.mark.parametrize("options", OPTIONS, ids=_ids)
@pytest.mark.parametrize("backend", ["naive", "chunked"])
def test_gradcheck_float64(options, backend):
    x = torch.randn(2, 4, 3, 4, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 4, 4, 3, dtype=torch.float64, requires_grad=True)
    budget = 2 * 12 * 8 * 4  # a couple of rows per chunk
    assert torch.autograd.gradcheck(
        lambda a, b: cobi(a, b, backend=backend, reduction="none", memory_budget=budget, **options), (x, y)
    )


def _hand_case():
    # Outputs x_1 = (0, 0), x_2 = (1, 0) on a 1 x 2 map; targets y_1 = (0, 0), y_2 = (0, 1),
    # y_3 = (2, 0) on a 1 x 3 map. Squared L2 distances d_ik (rows i = targets):
    #   y_1: 0, 1    y_2: 1, 2    y_3: 4, 1
    x = torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=torch.float64).reshape(1, 2, 1, 2)
    y = torch.tensor([[0.0, 0.0, 2.0], [0.0, 1.0, 0.0]], dtype=torch.float64).reshape(1, 2, 1, 3)
    return x, y


@pytest.mark.parametrize("backend", ["naive", "chunked"])
def test_hand_computed_nn(backend):
    x, y = _hand_case()
    # mean over k of min over i: k=1: min(0, 1, 4) = 0; k=2: min(1, 2, 1) = 1.
    assert float(cobi(x, y, kind="nearest", distance="l2", spatial=None, backend=backend)) == pytest.approx(
        0.5, abs=1e-12
    )
    # With the spatial distance (w_s = 0.1): columns sit at c = 1/4, 3/4 and rows at 1/6, 1/2, 5/6.
    # k=1: min(0 + 0.1/12, ...) = 1/120; k=2: min(1 + 0.1*7/12, 2 + 0.1/4, 1 + 0.1/12) = 1 + 1/120.
    value = cobi(x, y, kind="nearest", distance="l2", spatial_weight=0.1, backend=backend)
    assert float(value) == pytest.approx((1 / 120 + 1 + 1 / 120) / 2, abs=1e-12)


@pytest.mark.parametrize("backend", ["naive", "chunked"])
def test_hand_computed_contextual(backend):
    x, y = _hand_case()
    h, eps = 0.5, 1e-3
    # Row y_1: min 0, d~ = (0, 1/eps): CX = (1, ~0). Rows y_2, y_3: min 1.
    row2 = [(1 - 1 / (1 + eps)) / h, (1 - 2 / (1 + eps)) / h]
    row3 = [(1 - 4 / (1 + eps)) / h, (1 - 1 / (1 + eps)) / h]
    cx2 = [math.exp(v) / sum(math.exp(u) for u in row2) for v in row2]
    cx3 = [math.exp(v) / sum(math.exp(u) for u in row3) for v in row3]
    column_max = [max(1.0, cx2[0], cx3[0]), max(math.exp(-2 / (h * eps)), cx2[1], cx3[1])]
    expected = -math.log(sum(column_max) / 2)
    got = cobi(x, y, kind="contextual", distance="l2", spatial=None, h=h, eps=eps, backend=backend)
    assert float(got) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(-math.log((1 + 0.99750) / 2), abs=1e-5)


@pytest.mark.parametrize("kind", ["contextual", "nearest"])
@pytest.mark.parametrize("distance", ["cosine", "l2"])
def test_identity_is_the_minimum(kind, distance):
    x = torch.randn(1, 8, 6, 6)
    at_identity = float(cobi(x, x.clone(), kind=kind, distance=distance))
    for scale in (0.01, 0.1, 1.0):
        perturbed = x + scale * torch.randn_like(x)
        assert at_identity <= float(cobi(perturbed, x, kind=kind, distance=distance)) + 1e-6
    assert at_identity <= float(cobi(x.flip(-1), x, kind=kind, distance=distance)) + 1e-6


@pytest.mark.parametrize("backend", ["naive", "chunked"])
@pytest.mark.parametrize(
    "case",
    ["identical", "zeros", "constant", "fp16", "tiny_eps"],
)
def test_no_nan_or_inf(backend, case):
    x = torch.randn(2, 16, 5, 5)
    y = x.clone()
    eps = 1e-3
    if case == "zeros":
        x, y = torch.zeros_like(x), torch.zeros_like(y)
    elif case == "constant":
        x, y = torch.ones_like(x), torch.full_like(y, 2.0)
    elif case == "fp16":
        x, y = x.half(), (x + 0.1 * torch.randn_like(x)).half()
    elif case == "tiny_eps":
        y = x + 1e-4 * torch.randn_like(x)
        eps = 1e-12
    x.requires_grad_()
    for options in OPTIONS:
        value = cobi(x, y, backend=backend, eps=eps, **options)
        (grad,) = torch.autograd.grad(value, x)
        assert torch.isfinite(value) and torch.isfinite(grad).all(), (case, options)
        assert value.dtype == torch.float32


def test_reductions_and_contextual():
    x, y = torch.randn(3, 8, 4, 4), torch.randn(3, 8, 5, 5)
    per_image = cobi(x, y, reduction="none")
    assert per_image.shape == (3,)
    torch.testing.assert_close(cobi(x, y), per_image.mean())
    torch.testing.assert_close(cobi(x, y, reduction="sum"), per_image.sum())
    torch.testing.assert_close(contextual(x, y), cobi(x, y, spatial_weight=0.0))
    assert float(contextual(x, y)) != float(cobi(x, y))
    with pytest.raises(ConfigError):
        contextual(x, y, spatial="blend")


def test_sampling_is_deterministic_and_matches_the_reference():
    x, y = torch.randn(2, 8, 12, 12), torch.randn(2, 8, 12, 12)
    a = cobi(x, y, sample=49, generator=torch.Generator().manual_seed(5))
    b = cobi(x, y, sample=49, generator=torch.Generator().manual_seed(5))
    c = cobi(x, y, sample=49, generator=torch.Generator().manual_seed(6))
    assert float(a) == float(b) != float(c)
    naive = cobi(x, y, sample=49, generator=torch.Generator().manual_seed(5), backend="naive")
    torch.testing.assert_close(a, naive)
    assert float(cobi(x, y, sample=10_000)) == pytest.approx(float(cobi(x, y)))


def test_bad_arguments():
    x = torch.randn(1, 4, 4, 4)
    with pytest.raises(ShapeError, match=r"\(B, C, H, W\)"):
        cobi(x[0], x[0])
    with pytest.raises(ShapeError, match="channels"):
        cobi(x, torch.randn(1, 5, 4, 4))
    with pytest.raises(ConfigError, match="kind"):
        cobi(x, x, kind="max")
    with pytest.raises(ConfigError, match="blend"):
        cobi(x, x, kind="nearest", spatial="blend")
    with pytest.raises(ConfigError, match="backend"):
        cobi(x, x, backend="fortran")


# --- memory ----------------------------------------------------------------------------------

_PEAK_SCRIPT = textwrap.dedent("""
    import json, sys, torch
    from rawzoom_isp.loss import cobi
    backend, side, channels, budget = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.manual_seed(0)
    x = torch.randn(1, channels, side, side, requires_grad=True)
    y = torch.randn(1, channels, side, side)
    warm = cobi(x[..., :8, :8], y[..., :8, :8], backend=backend)  # load kernels outside the measurement
    warm.backward()
    x.grad = None
    def status(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field))
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak-RSS mark (VmHWM) to the current RSS
    before = status("VmRSS:")
    cobi(x, y, backend=backend, memory_budget=budget).backward()
    print(json.dumps({"extra": status("VmHWM:") - before, "finite": bool(torch.isfinite(x.grad).all())}))
""")


def _peak_extra_bytes(backend: str, side: int, channels: int, budget: int) -> int:
    result = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, backend, str(side), str(channels), str(budget)],
                            capture_output=True, text=True, check=True)
    report = json.loads(result.stdout)
    assert report["finite"]
    return report["extra"]


@pytest.mark.slow
def test_chunked_memory_stays_under_budget_at_16k():
    n, channels, budget = 128 * 128, 64, 64 * 2**20
    extra = _peak_extra_bytes("chunked", 128, channels, budget)
    # The budget covers the (rows x N) work; the O((N + M) C) vectors (inputs, normalised copies,
    # gradients) come on top: allow 16 such copies.
    allowance = 16 * 2 * n * channels * 4
    assert extra < budget + allowance, f"peak extra {extra / 2**20:.0f} MiB"
    # One N x M float32 matrix alone would be 1 GiB.
    assert extra < n * n * 4 / 8


@pytest.mark.slow
def test_chunked_uses_8x_less_memory_than_naive_at_4k():
    chunked = _peak_extra_bytes("chunked", 64, 64, 16 * 2**20)
    naive = _peak_extra_bytes("naive", 64, 64, 16 * 2**20)
    assert naive >= 8 * chunked, f"naive {naive / 2**20:.0f} MiB, chunked {chunked / 2**20:.0f} MiB"


def test_nn_is_an_alias_of_nearest():
    x, y = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 5, 4)
    assert float(cobi(x, y, kind="nn")) == float(cobi(x, y, kind="nearest"))


@pytest.mark.parametrize("case", ["nan_x", "inf_y", "huge_l2", "huge_cosine", "empty", "h", "spatial_nan",
                                  "spatial_inf"])
def test_bad_inputs_raise_instead_of_returning_nan(case):
    x, y = torch.randn(1, 4, 5, 5), torch.randn(1, 4, 5, 5)
    options = {}
    if case == "nan_x":
        x[0, 0, 0, 0] = float("nan")
    elif case == "inf_y":
        y[0, 1, 2, 3] = float("inf")
    elif case == "huge_l2":
        x, options = x * 1e20, {"distance": "l2"}
    elif case == "huge_cosine":
        x = x * 1e38
    elif case == "empty":
        x, y = x[:, :, :0], y[:, :, :0]
    elif case == "h":
        options = {"h": 1e-30}
    else:
        options = {"spatial_weight": float("nan" if case == "spatial_nan" else "inf")}
    with pytest.raises(RawZoomError):
        cobi(x, y, **options)


def test_a_constant_output_gets_bounded_gradients():
    output = torch.zeros(1, 16, 6, 6, requires_grad=True)
    (grad,) = torch.autograd.grad(cobi(output, torch.rand(1, 16, 6, 6)), output)
    assert torch.isfinite(grad).all() and float(grad.abs().max()) < 1e5


def test_check_finite_can_be_skipped():
    x, y = torch.randn(1, 4, 5, 5), torch.randn(1, 4, 5, 5)
    assert float(cobi(x, y, check_finite=False)) == float(cobi(x, y))
