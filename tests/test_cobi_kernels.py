"""The fused CoBi kernels and the registered op: Triton (interpreted here) against the naive
reference, ahead-of-time compilation for Hopper, opcheck, torch.compile, and GPU-only checks."""
import itertools
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import gpu

from rawzoom_isp.errors import ConfigError
from rawzoom_isp.loss import cobi
from rawzoom_isp.loss.backends import resolve_backend

FUSED_OPTIONS = [
    dict(kind=kind, distance=distance, spatial=spatial, spatial_weight=0.0 if spatial is None else 0.2)
    for kind, distance, spatial in itertools.product(("contextual", "nearest"), ("cosine", "l2"), ("distance", None))
]
# (B, C, Hx, Wx, Hy, Wy); C = 130: the backward's channels in two blocks of 128.
RAGGED = [(2, 3, 5, 7, 6, 4), (3, 20, 9, 11, 7, 10), (1, 70, 8, 9, 9, 8), (1, 130, 6, 7, 5, 6)]


def _ids(options):
    return f"{options['kind']}-{options['distance']}-{options['spatial']}"


@pytest.mark.parametrize("options", FUSED_OPTIONS, ids=_ids)
@pytest.mark.parametrize("shape", RAGGED, ids=lambda s: "x".join(map(str, s)))
def test_triton_matches_naive(options, shape):
    assert os.environ.get("TRITON_INTERPRET") == "1"
    b, c, hx, wx, hy, wy = shape
    x = torch.randn(b, c, hx, wx, requires_grad=True)
    y = torch.randn(b, c, hy, wy, requires_grad=True)
    x64, y64 = (t.detach().double().requires_grad_() for t in (x, y))
    expected = cobi(x64, y64, backend="naive", reduction="none", **options)
    got = cobi(x, y, backend="triton", reduction="none", **options)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-7)
    for g, e in zip(torch.autograd.grad(got.sum(), (x, y)), torch.autograd.grad(expected.sum(), (x64, y64))):
        torch.testing.assert_close(g.double(), e, rtol=1e-4, atol=1e-4 * float(e.abs().max()))


def test_triton_blend_falls_back_to_the_same_function():
    x, y = torch.randn(1, 8, 4, 4), torch.randn(1, 8, 4, 4)
    torch.testing.assert_close(
        cobi(x, y, spatial="blend", backend="triton"), cobi(x, y, spatial="blend", backend="naive")
    )


def test_backend_resolution(monkeypatch):
    cpu = torch.device("cpu")
    assert resolve_backend("auto", cpu) == "chunked"
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ConfigError, match="triton.*CUDA"):
        resolve_backend("triton", cpu)
    with pytest.raises(ConfigError, match="csrc extension"):
        resolve_backend("cuda", cpu)


def _op_args(dtype=torch.float64, spatial="distance", kind="contextual"):
    from rawzoom_isp.loss.cobi import prepare

    x = torch.randn(2, 6, 3, 4, dtype=dtype)
    y = torch.randn(2, 6, 4, 3, dtype=dtype)
    targets, outputs, pos_tgt, pos_out = prepare(x, y, "cosine")
    targets, outputs = targets.detach().requires_grad_(), outputs.detach().requires_grad_()
    return (targets, outputs, pos_tgt, pos_out, kind, "cosine", 0.5, 1e-3, 0.1, spatial, "chunked", 2**20)


@pytest.mark.parametrize("spatial, kind", [("distance", "contextual"), ("blend", "contextual"), ("none", "nearest")])
def test_opcheck(spatial, kind):
    torch.library.opcheck(torch.ops.rawzoom.cobi_forward.default, _op_args(spatial=spatial, kind=kind))


def test_torch_compile_fullgraph_on_cpu():
    x = torch.randn(2, 8, 6, 6, requires_grad=True)
    y = torch.randn(2, 8, 5, 7)

    def loss(a, b):
        return cobi(a * 2.0, b, backend="chunked") + cobi(a, b, kind="nearest", distance="l2", backend="chunked")

    compiled = torch.compile(loss, fullgraph=True)
    got = compiled(x, y)
    torch.testing.assert_close(got, loss(x, y))
    (g_compiled,) = torch.autograd.grad(got, x)
    (g_eager,) = torch.autograd.grad(loss(x, y), x)
    torch.testing.assert_close(g_compiled, g_eager)


# --- ahead-of-time compilation for an H100 (sm_90), no GPU needed --------------------------

H100_SHARED_BYTES = 228 * 1024
_AOT_SCRIPT = textwrap.dedent("""
    import inspect, itertools, json, os, re, subprocess, tempfile
    os.environ["TRITON_INTERPRET"] = "0"
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.backends.nvidia.compiler import get_ptxas
    from rawzoom_isp.loss import triton_kernels as K

    INT64 = {"argmin_ptr", "arg_ptr", "owner_ptr"}
    BACKWARD = ("grad_rows", "grad_cols")
    # The forward's blocks, and the backward's for C = 64 and for C >= 128 (BLOCK_CO 64 and 128).
    runs = [(name, K.block_config()) for name in K.KERNELS if name not in BACKWARD]
    runs += [(name, K.block_config(channels)) for name in BACKWARD for channels in (64, 300)]
    report = []
    for (name, blocks), cosine, spatial in itertools.product(runs, (True, False), (True, False)):
        kernel, config = K.KERNELS[name], dict(blocks)
        options = dict(num_warps=config.pop("num_warps"), num_stages=config.pop("num_stages"))
        params = inspect.signature(kernel.fn).parameters
        constexprs = {k: v for k, v in config.items() if k in params}
        constexprs.update(COSINE=cosine, SPATIAL=spatial, PRECISION=K.PRECISION)
        signature = {}
        for p in params:
            if p in constexprs:
                signature[p] = "constexpr"
            elif p.endswith("_ptr"):
                signature[p] = "*i64" if p in INT64 else "*fp32"
            else:
                signature[p] = "i32" if p in ("M", "N", "C") else "fp32"
        compiled = triton.compile(triton.compiler.ASTSource(fn=kernel, signature=signature, constexprs=constexprs),
                                  target=GPUTarget("cuda", 90, 32), options=options)
        ptx = compiled.asm["ptx"]
        # IEEE: FMAs, no TF32 at all; tf32x3: Hopper tensor-core MMAs (wgmma ... .tf32) of operands split
        # by cvt.rna.tf32 (one TF32 product alone has no split).
        if K.PRECISION == "ieee":
            exact = "tf32" not in ptx and "mma" not in ptx
        else:
            exact = "cvt.rna.tf32" in ptx and re.search(r"wgmma\\.mma_async\\S*\\.tf32\\.tf32", ptx) is not None
        # Registers and spills as ptxas reports them for this PTX (sm_90a: wgmma).
        with tempfile.TemporaryDirectory() as folder:
            source = os.path.join(folder, "kernel.ptx")
            with open(source, "w") as fh:
                fh.write(ptx)
            printed = subprocess.run([get_ptxas(90).path, "-arch=sm_90a", "-v", source, "-o", source + ".cubin"],
                                     capture_output=True, text=True, check=True).stderr
        spilled = sum(int(n) for n in re.findall(r"(\\d+) bytes spill stores", printed))
        report.append({"kernel": name, "blocks": blocks, "cosine": cosine, "spatial": spatial,
                       "shared": compiled.metadata.shared, "cubin": len(compiled.asm["cubin"]), "exact": exact,
                       "registers": int(re.search(r"Used (\\d+) registers", printed).group(1)),
                       "spilled": spilled, "precision": K.PRECISION})
    print(json.dumps(report))
""")


@pytest.mark.slow
def test_every_triton_kernel_compiles_for_h100_within_its_registers():
    env = dict(os.environ, TRITON_INTERPRET="0")
    result = subprocess.run([sys.executable, "-c", _AOT_SCRIPT], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    from rawzoom_isp.loss.triton_kernels import KERNELS

    assert len(report) == 4 * (len(KERNELS) + 2)
    for entry in report:
        assert entry["cubin"] > 0, entry
        assert entry["shared"] <= H100_SHARED_BYTES, entry
        assert entry["exact"], f"{entry['kernel']} uses single TF32 tensor-core products"
        if entry["precision"] == "tf32x3":  # the default blocks are sized for it (IEEE may spill a little)
            assert entry["spilled"] == 0, entry


# --- on a GPU only --------------------------------------------------------------------------

def _noisy_copies(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Targets (B, C, height, width) that copy every output feature at least once, in random order, with
    noise as strong as the signal. Each nearest neighbour and best match is then clear: with unrelated
    random maps at N = 16k some are ties within fp32 rounding, where any two exact backends may pick
    different members (a different subgradient, the same loss; fp32 and fp64 chunked differ there too)."""
    b, c, n = x.shape[0], x.shape[1], x.shape[2] * x.shape[3]
    order = torch.cat([torch.randperm(n, device=x.device), torch.randint(n, (height * width - n,), device=x.device)])
    copies = x.detach().flatten(2)[:, :, order]
    return (copies + torch.randn_like(copies)).reshape(b, c, height, width)


@gpu
@pytest.mark.parametrize("backend", ["triton", "cuda"])
@pytest.mark.parametrize("options", FUSED_OPTIONS, ids=_ids)
@pytest.mark.parametrize("side, channels", [(64, 64), (128, 128), (45, 300)])
def test_fused_matches_chunked_on_gpu(backend, options, side, channels):
    from rawzoom_isp.loss.backends import available_backends

    if backend not in available_backends(torch.device("cuda")):
        pytest.skip(f"{backend} backend not available on this GPU machine")
    x = torch.randn(2, channels, side, side, device="cuda", requires_grad=True)
    y = _noisy_copies(x, side + 3, side - 2)
    expected = cobi(x, y, backend="chunked", reduction="none", **options)
    got = cobi(x, y, backend=backend, reduction="none", **options)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    (g_got,) = torch.autograd.grad(got.sum(), x)
    (g_exp,) = torch.autograd.grad(expected.sum(), x)
    torch.testing.assert_close(g_got, g_exp, rtol=1e-4, atol=1e-4 * float(g_exp.abs().max()))


@gpu
@pytest.mark.parametrize("backend", ["triton", "cuda"])
def test_fused_memory_is_linear_on_gpu(backend):
    """Extra peak memory of forward + backward grows as N x C (a few feature-sized buffers: the
    prepared copies, their gradients), never as the N x M matrix (16 GiB at N = M = 65536)."""
    from rawzoom_isp.loss.backends import available_backends

    if backend not in available_backends(torch.device("cuda")):
        pytest.skip(f"{backend} backend not available on this GPU machine")
    extra = {}
    for side in (128, 256):
        x = torch.randn(1, 64, side, side, device="cuda", requires_grad=True)
        y = torch.randn(1, 64, side, side, device="cuda")
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        cobi(x, y, backend=backend).backward()
        torch.cuda.synchronize()
        extra[side] = torch.cuda.max_memory_allocated() - before
        assert extra[side] < 12 * x.nbytes, f"N = {side ** 2}: {extra[side] / 2**20:.0f} MiB"
    assert extra[256] < 5 * extra[128], f"4x the positions took {extra[256] / extra[128]:.1f}x the memory"


# --- the csrc CUDA extension: compiled here, run on a GPU only --------------------------------


_BUILD_SCRIPT = textwrap.dedent("""
    import sys, torch
    from rawzoom_isp.loss.cuda_ext import build_extension
    build_extension(build_directory=sys.argv[1])
    print(torch.ops.rawzoom_cuda.cobi_forward.default._schema)
    print(torch.ops.rawzoom_cuda.cobi_dense_backward.default._schema)
""")


def _cuda_home():
    home = os.environ.get("CUDA_HOME") or "/usr/local/cuda"
    return home if os.path.isfile(os.path.join(home, "bin", "nvcc")) else None


@pytest.mark.slow
def test_csrc_extension_compiles(tmp_path):
    """Compiles csrc/ for sm_90 with nvcc (about 100 s on 2 cores) and loads it; no GPU needed."""
    home = _cuda_home()
    if home is None:
        pytest.skip("no CUDA toolkit here (set CUDA_HOME to a folder with bin/nvcc): csrc cannot be compiled")
    if torch.version.cuda is None:
        pytest.skip("torch is a CPU build: CUDA extensions cannot be built against it")
    env = dict(os.environ, CUDA_HOME=home, TORCH_CUDA_ARCH_LIST=os.environ.get("TORCH_CUDA_ARCH_LIST", "9.0"))
    result = subprocess.run([sys.executable, "-c", _BUILD_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                            env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "bool nn, bool cosine, bool spatial" in result.stdout
    assert "rawzoom_cuda::cobi_dense_backward" in result.stdout
