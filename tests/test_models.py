"""Zoom networks: both architectures, the paper layout's exact TF semantics, CFA unification, tiled
inference, the learned_zoom stage, checkpoints that are validated before anything is built."""
import pickle

import pytest
import torch
import torch.nn.functional as TF
from conftest import SAMPLE, gpu

import rawzoom_isp as rz
from rawzoom_isp.errors import CheckpointError, ConfigError, WeightsUnavailableError
from rawzoom_isp.isp import functional as F
from rawzoom_isp.models import PackedZoomNet, ZoomNet, build_model, load_model, run_tiled, save_checkpoint, zoom_input
from rawzoom_isp.models.packed import remove_grid, site_noise
from rawzoom_isp.models.residual import classical_zoom
from rawzoom_isp.models.zoomnet import CenteredBatchNorm, _TransposedConvSame
from rawzoom_isp.raw.cfa import PATTERNS, Cfa

TINY_ZOOMNET = dict(arch="zoomnet", width=8, blocks=2, up_channels=8)
TINY_PACKED = dict(arch="packed", width=8, blocks=2)


def _randomised(net):
    """Non-zero weights everywhere (the packed network's tail starts at zero)."""
    torch.manual_seed(3)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net.eval()


@pytest.mark.parametrize("options, shape_in, shape_out", [
    (dict(TINY_PACKED, scale=4), (2, 4, 6, 5), (2, 3, 48, 40)),
    (dict(TINY_PACKED, scale=8), (1, 4, 3, 4), (1, 3, 48, 64)),
    (dict(TINY_PACKED, scale=4, in_channels=3), (1, 3, 6, 8), (1, 3, 24, 32)),
    (dict(TINY_ZOOMNET, scale=4), (2, 4, 6, 5), (2, 3, 48, 40)),
    (dict(TINY_ZOOMNET, scale=8), (1, 4, 3, 4), (1, 3, 48, 64)),
    (dict(TINY_ZOOMNET, scale=4, in_channels=3), (1, 3, 6, 5), (1, 3, 24, 20)),
])
def test_networks_zoom_packed_raw_2n_and_rgb_n(options, shape_in, shape_out):
    net = build_model(options)
    assert net(torch.rand(shape_in), torch.tensor([[2.0, 1.0, 1.5]])).shape == shape_out


@pytest.mark.parametrize("blend_kernel", [0, 5])
def test_packed_network_starts_at_the_classical_zoom_of_the_balanced_raw(blend_kernel):
    net = PackedZoomNet(scale=4, width=8, blocks=1, blend_kernel=blend_kernel)
    packed, gains = torch.rand(2, 4, 6, 7), torch.tensor([[2.0, 1.0, 1.6], [1.5, 1.0, 2.2]])
    expected = classical_zoom(packed, 4)  # WB is linear, so balancing, zooming, unbalancing cancels
    torch.testing.assert_close(net(packed, gains), expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="linear"):
        PackedZoomNet(in_channels=4, output="display")


def test_zoomnet_matches_the_paper_layout():
    net = ZoomNet(scale=4)
    assert len(net.body) == 16 and net.head[0].kernel_size == (9, 9) and net.tail.kernel_size == (9, 9)
    assert net.body[0].conv1.kernel_size == (4, 4) and net.body[0].norm1.affine is False
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in net.up) == 3  # log2(4) + 1 stages
    assert sum(p.numel() for p in net.parameters()) == 4_860_355  # the original's count


def test_transposed_convolution_is_tf_same():
    """TF conv2d_transpose(k=3, s=2, SAME) by hand: output i gathers inputs j with 2j <= i <= 2j + 2,
    weight index i - 2j; the output has exactly 2n positions."""
    conv = _TransposedConvSame(1)
    weight = torch.tensor([1.0, 10.0, 100.0])
    with torch.no_grad():
        conv.weight.copy_((weight[:, None] * weight[None, :] / 100).reshape(1, 1, 3, 3))  # separable, for 1-D reading
        conv.bias.zero_()
    x = torch.tensor([1.0, 2.0, 3.0])
    out = conv(
        x.reshape(1, 1, 1, 3).expand(1, 1, 3, 3).contiguous() * torch.tensor([0.0, 1.0, 0.0]).reshape(1, 1, 3, 1)
    )
    row = out[0, 0, 2]  # row 2 receives input row 1 through weight row 0 (value 1 / 100)
    expected = torch.zeros(6)
    for i in range(6):
        for j in range(3):
            if 0 <= i - 2 * j <= 2:
                expected[i] += x[j] * weight[i - 2 * j] / 100
    torch.testing.assert_close(row, expected)
    assert out.shape[-2:] == (6, 6)


def test_batch_norm_shift_is_added_once():
    norm = CenteredBatchNorm(2).eval()
    with torch.no_grad():
        norm.bias.copy_(torch.tensor([0.5, -1.0]))
    x = torch.randn(1, 2, 3, 3)
    expected = x / (1 + 1e-3) ** 0.5 + torch.tensor([0.5, -1.0]).reshape(1, 2, 1, 1)  # running mean 0, var 1
    torch.testing.assert_close(norm(x), expected)


def test_batch_norm_trains_like_torch_batch_norm_with_a_shift():
    norm, reference = CenteredBatchNorm(3).train(), torch.nn.BatchNorm2d(3, eps=1e-3, momentum=0.1)
    with torch.no_grad():
        norm.bias.copy_(torch.tensor([0.5, -1.0, 2.0]))
        reference.bias.copy_(norm.bias)
    x = torch.randn(4, 3, 5, 5, requires_grad=True)
    out, expected = norm(x), reference(x)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(norm.running_mean, reference.running_mean)
    torch.testing.assert_close(norm.running_var, reference.running_var)
    grads = torch.autograd.grad((out * expected.detach()).sum(), (x, norm.bias))
    expected_grads = torch.autograd.grad((expected * expected.detach()).sum(), (x, reference.bias))
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("options", [TINY_PACKED, TINY_ZOOMNET, dict(TINY_PACKED, in_channels=3),
                                     dict(TINY_PACKED, blend_kernel=5), dict(TINY_PACKED, blend_kernel=15),
                                     dict(TINY_PACKED, blend_kernel=5, degrid=7)])
def test_tiled_inference_equals_untiled(options):
    net = _randomised(build_model(dict(options, scale=2)))
    if options["arch"] == "zoomnet":
        net.train()
        net(torch.rand(4, 4, 16, 16))  # non-trivial running statistics
        net.eval()
    x = torch.rand(1, net.in_channels, 46, 58)
    gains = torch.tensor([[1.8, 1.0, 1.4]])
    with torch.no_grad():
        whole = net(x, gains)
        tiled = run_tiled(lambda t: net(t, gains), x, net.zoom, tile=2 * net.receptive_radius + 10,
                          overlap=net.receptive_radius)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=1e-5)


def test_a_network_told_the_noise_sees_each_sites_standard_deviation():
    net = _randomised(build_model(dict(TINY_PACKED, scale=2, noise_input=True)))
    assert net.head.in_channels == 8 and net.config["noise_input"] is True
    x, gains = torch.rand(2, 4, 20, 22) * 0.6, torch.tensor([[1.8, 1.0, 1.4]] * 2)
    noise = torch.tensor([[2e-3, 1e-5], [1e-3, 2e-5], [3e-3, 4e-5]])  # (S, O) for R, G, B
    sigma = site_noise(x, noise)
    expected = (noise[[0, 1, 1, 2], 0, None, None] * x + noise[[0, 1, 1, 2], 1, None, None]).sqrt()
    torch.testing.assert_close(sigma, expected)
    with torch.no_grad():
        told = net(x, gains, noise)
        torch.testing.assert_close(net(x, gains, noise.expand(2, 3, 2)), told)  # per image or for all
        assert (net(x, gains, 4 * noise) - told).abs().max() > 1e-3  # the noise it is told matters
        tiled = run_tiled(lambda t: net(t, gains, noise), x, net.zoom, tile=2 * net.receptive_radius + 10,
                          overlap=net.receptive_radius)
    torch.testing.assert_close(tiled, told, atol=1e-5, rtol=1e-5)  # a per-site map: tiling stays exact
    with pytest.raises(ConfigError, match="give noise"):
        net(x, gains)
    with pytest.raises(ConfigError, match=r"\(B, 3, 2\)"):
        net(x, gains, torch.ones(3, 3, 2))
    with pytest.raises(ConfigError, match="only for raw input"):
        build_model(dict(TINY_PACKED, in_channels=3, noise_input=True))


def test_the_learned_zoom_stage_tells_the_network_the_stated_or_estimated_noise(tmp_path):
    from rawzoom_isp.synth import add_mosaic_noise, estimate_noise

    path = tmp_path / "told.pt"
    save_checkpoint(path, _randomised(build_model(dict(TINY_PACKED, scale=2, noise_input=True))))
    pipe = rz.Pipeline.default(weights=str(path), tile=0)
    y, x = torch.meshgrid(torch.linspace(0, 1, 512), torch.linspace(0, 1, 640), indexing="ij")
    clean = (0.02 + 0.7 * x * (0.5 + 0.5 * y))[None, None]
    noisy = add_mosaic_noise(clean, "GBRG", 1e-3, 2e-5, torch.Generator().manual_seed(0))
    raw = rz.RawImage(bayer=(noisy[0, 0].clamp(0, 1) * 4000 + 64).round(), cfa="GBRG", black_level=64,
                      white_level=4064, wb_gains=[1.9, 1.0, 1.6], cam_to_srgb=torch.eye(3))
    stated = raw.meta
    stated.noise = torch.tensor([[1e-3, 2e-5]] * 3)
    with torch.no_grad():
        told = pipe(raw.bayer, stated)
        estimated = pipe(raw)  # no NoiseProfile: read from the frame itself
        assert (told - estimated).abs().max() > 0  # not silently the stated value
        by_hand = raw.meta
        by_hand.noise = rz.raw.colour_noise(estimate_noise(raw))
        torch.testing.assert_close(estimated, pipe(raw.bayer, by_hand), atol=1e-5, rtol=0)
    with pytest.raises(rz.errors.DataError, match="give RawMeta.noise"):
        pipe(raw.crop(0, 0, 32, 32))  # a window too small to read the noise from


def test_degrid_removes_a_coherent_grid_and_keeps_content():
    """remove_grid: a pattern repeated in every block goes, smooth shading under it stays exactly,
    block-wise random detail stays (less about 1 / size of it); a network with it turns a flat raw
    into a flat image whatever its weights (no grid: tests/test_shipped_model.py measures it on
    captures)."""
    generator = torch.Generator().manual_seed(0)
    period, size = 8, 5
    grid = torch.randn(1, 3, period, period, generator=generator).repeat(1, 1, 12, 12)
    rows, cols = torch.meshgrid(torch.arange(96.0), torch.arange(96.0), indexing="ij")
    shading = (0.3 + 0.002 * rows - 0.001 * cols + 1e-5 * rows * cols).expand(1, 3, 96, 96).double()
    grid = grid.double()
    removed = remove_grid(shading + grid, period, size)
    inner = slice(period * (size // 2 + 1), -period * (size // 2 + 1))
    expected = shading + grid.mean((-2, -1), keepdim=True)
    torch.testing.assert_close(removed[..., inner, inner], expected[..., inner, inner])
    content = torch.randn(1, 3, 240, 240, generator=generator)
    kept = remove_grid(content, period, 15)
    assert float((kept - content).std()) < 0.1 * float(content.std())
    net = _randomised(PackedZoomNet(scale=4, width=8, blocks=1, blend_kernel=5, degrid=7))
    flat = torch.tensor([0.2, 0.3, 0.3, 0.15])[None, :, None, None].expand(1, 4, 32, 32)
    core = slice(12 * 8, 20 * 8)  # output px farther from the borders' zero padding than the network sees
    with torch.no_grad():
        out = net(flat, torch.tensor([[1.9, 1.0, 1.6]]))[..., core, core]
    assert float(out.std((-2, -1)).max()) < 1e-6
    undegridded = _randomised(PackedZoomNet(scale=4, width=8, blocks=1, blend_kernel=5))
    with torch.no_grad():
        assert float(undegridded(flat, torch.tensor([[1.9, 1.0, 1.6]]))[..., core, core].std((-2, -1)).max()) > 1e-3


def test_the_cfa_value_moves_with_the_mosaic():
    for name in PATTERNS:
        cfa = Cfa(name.lower())
        assert cfa == name and Cfa(cfa) is cfa and pickle.loads(pickle.dumps(cfa)) == cfa
        flips = cfa.unify_flips()
        assert cfa.transformed(-2 in flips, -1 in flips) == "RGGB"
        mosaic = F.mosaic(torch.rand(3, 4, 6), cfa)
        coded = F.mosaic(torch.tensor([1.0, 2.0, 3.0]).reshape(3, 1, 1).expand(3, 4, 6), cfa)
        for transpose in (False, True):
            for flip_v in (False, True):
                moved = coded.transpose(-1, -2) if transpose else coded
                moved = moved.flip(-2) if flip_v else moved
                assert torch.equal(moved, F.mosaic(torch.tensor([1.0, 2.0, 3.0]).reshape(3, 1, 1).expand(
                    3, *moved.shape[-2:]), cfa.transformed(flip_v, False, transpose)))
        assert cfa.shifted(1, 0) == cfa.transformed(True)  # for a 2x2 tile, both swap rows
        assert cfa.shifted(2, 4) == cfa and type(cfa.shifted(1, 1)) is Cfa
        packed = F.pack_bayer(coded[None], cfa)[0]
        assert [int(packed[k, 0, 0]) for k in range(4)] == [1, 2, 2, 3]  # [R, Gr, Gb, B] by pack_index
        assert mosaic.shape == (1, 4, 6)
    for bad in ("RGBG", "XTRANS", "", None):
        with pytest.raises(ConfigError, match="unknown CFA pattern"):
            Cfa(bad)


@pytest.mark.parametrize("cfa", PATTERNS)
def test_unified_zoom_of_packed_planes_equals_the_flipped_mosaics(cfa):
    """Flipping the packed planes (what zoom_input does) is the same as flipping the mosaic to RGGB,
    packing it, zooming, and flipping back: no sample moves to another neighbourhood."""
    net = _randomised(PackedZoomNet(scale=2, width=8, blocks=1))
    mosaic = torch.rand(1, 1, 12, 16)
    gains = torch.tensor([[2.0, 1.0, 1.5]])
    flips = Cfa(cfa).unify_flips()
    with torch.no_grad():
        ours = zoom_input(net, F.pack_bayer(mosaic, cfa), cfa, gains)
        reference = net(F.pack_bayer(mosaic.flip(flips), "RGGB"), gains).flip(flips) if flips else \
            net(F.pack_bayer(mosaic, "RGGB"), gains)
    torch.testing.assert_close(ours, reference)


def test_learned_zoom_stage_any_cfa_dtype_and_config_round_trip(tmp_path):
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, _randomised(build_model(dict(TINY_PACKED, scale=4))))
    pipe = rz.Pipeline.default(scale=4, weights=str(path), tile=16)
    assert pipe.names == ["black", "pack", "zoom", "wb", "ccm", "gamma"]
    raw = rz.read_raw(SAMPLE)
    for top, left in ((100, 200), (101, 200), (100, 201), (101, 201)):  # all four phases
        crop = raw.crop(top, left, 40, 48)
        out = pipe(crop)
        assert out.shape == (3, 160, 192) and float(out.min()) >= 0 and float(out.max()) <= 1
    again = rz.Pipeline.from_config(pipe.to_config())
    torch.testing.assert_close(again(crop), out)
    for dtype in (torch.float64, torch.bfloat16, torch.float16):
        result = pipe(crop.bayer.to(dtype), crop.meta)
        assert result.dtype == dtype
        torch.testing.assert_close(result.float(), out, atol=2e-2 if dtype != torch.float64 else 1e-5, rtol=0)
    with pytest.raises(WeightsUnavailableError, match="no such checkpoint"):
        rz.Pipeline.default(weights=str(tmp_path / "absent.pt"))


def test_model_configs_are_checked_before_anything_is_built(tmp_path):
    with pytest.raises(ConfigError, match="blocks"):
        build_model(dict(arch="packed", blocks=10**7))
    with pytest.raises(ConfigError, match="width"):
        build_model(dict(arch="zoomnet", width=100000))
    with pytest.raises(ConfigError, match="parameters, over the limit"):
        build_model(dict(arch="zoomnet", width=1024, up_channels=1024, blocks=256))
    with pytest.raises(ConfigError, match="arch"):
        build_model(dict(arch="unet"))
    with pytest.raises(ConfigError, match="no option"):
        build_model(dict(arch="packed", up_channels=8))
    with pytest.raises(ConfigError, match="scale"):
        build_model(dict(arch="packed", scale=3))
    with pytest.raises(ConfigError, match="width"):
        build_model(dict(arch="packed", width="64"))
    with pytest.raises(ConfigError, match="blend_kernel"):
        build_model(dict(arch="packed", blend_kernel=4))
    with pytest.raises(ConfigError, match="degrid"):
        build_model(dict(arch="packed", degrid=8))
    assert isinstance(build_model({"width": 8, "blocks": 1}), PackedZoomNet)  # no arch: the default, as in training


def test_damaged_and_hostile_checkpoints_name_the_file(tmp_path):
    net = build_model(dict(TINY_PACKED, scale=4))
    cases = {}
    huge = {"config": dict(TINY_PACKED, scale=4, blocks=10**7), "model": {}}
    nan = {"config": net.config, "model": {k: torch.full_like(v, float("nan")) for k, v in net.state_dict().items()}}
    shapes = {"config": dict(net.config, width=16), "model": net.state_dict()}
    for name, content in (("huge", huge), ("nan", nan), ("shapes", shapes), ("foreign", {"weights": 1})):
        cases[name] = tmp_path / f"{name}.pt"
        torch.save(content, cases[name])
    cases["text"] = tmp_path / "text.pt"
    cases["text"].write_text("not a checkpoint")

    class Evil:
        def __reduce__(self):
            return (print, ("pickle ran",))

    cases["pickle"] = tmp_path / "pickle.pt"
    torch.save({"config": Evil(), "model": {}}, cases["pickle"])
    for name, path in cases.items():
        with pytest.raises(CheckpointError) as info:
            load_model(path)
        message = str(info.value)
        assert str(path) in message and "weights_only" not in message and "Re-running" not in message, name
    assert "NaN" in str(pytest.raises(CheckpointError, load_model, cases["nan"]).value)


def test_residual_base_is_bilinear_demosaic_then_bicubic():
    packed = torch.rand(1, 4, 5, 6)
    rgb = F.demosaic_bilinear(F.unpack_bayer(packed, "RGGB"), "RGGB")
    torch.testing.assert_close(classical_zoom(packed, 4), TF.interpolate(rgb, scale_factor=4, mode="bicubic"))


@gpu
@pytest.mark.parametrize("options", [dict(arch="zoomnet"), dict(arch="packed", blend_kernel=5)],
                         ids=lambda o: o["arch"])
def test_training_step_on_the_gpu_matches_the_cpu(options, monkeypatch):
    """Every parameter gets the CPU's gradient on the GPU, channels-last as the trainer runs it (cuDNN
    batch norm once returned an empty gradient here). In IEEE fp32: with cuDNN's TF32 convolutions the
    paper network's first-layer gradient differed by 3% on an H200 (rounding through 20 layers and
    small-batch norms), and a tolerance that loose would also pass a real error."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    net = _randomised(build_model(dict(options, scale=4))).train().to(memory_format=torch.channels_last)
    x = torch.rand(2, 4, 24, 24).contiguous(memory_format=torch.channels_last)
    gains = torch.tensor([[2.0, 1.0, 1.5]]).expand(2, 3)
    on_cpu = torch.autograd.grad(net(x, gains).square().mean(), list(net.parameters()))
    net.cuda()
    on_gpu = torch.autograd.grad(net(x.cuda(), gains.cuda()).square().mean(), list(net.parameters()))
    for (name, _), cpu, cuda in zip(net.named_parameters(), on_cpu, on_gpu):
        error = float((cuda.cpu() - cpu).norm() / cpu.norm().clamp_min(1e-12))
        assert error < 1e-2, f"{name}: gradient differs by {error:.1e} (relative norm)"


@gpu
def test_learned_zoom_on_the_gpu_matches_the_cpu():
    raw = rz.read_raw(SAMPLE).crop(101, 200, 128, 160)
    pipe = rz.Pipeline.default(scale=4)
    on_gpu = pipe(raw.bayer.cuda(), raw.meta)
    assert on_gpu.is_cuda
    torch.testing.assert_close(on_gpu.cpu(), rz.Pipeline.default(scale=4)(raw), atol=2e-3, rtol=0)
