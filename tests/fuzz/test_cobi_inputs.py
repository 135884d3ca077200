"""CoBi on inputs users hand it: half precision, non-contiguous views, arguments of the wrong type or
range, tensors without values. Same loss as float32 where the input means the same; a ConfigError or
ShapeError otherwise, never a traceback from inside."""
import pytest
import torch

import rawzoom_isp as rz


@pytest.fixture
def maps():
    generator = torch.Generator().manual_seed(0)
    return torch.rand(2, 8, 12, 10, generator=generator), torch.rand(2, 8, 12, 10, generator=generator)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_gives_the_float32_loss_of_the_rounded_inputs(maps, dtype):
    x, y = (m.to(dtype) for m in maps)
    torch.testing.assert_close(rz.loss.cobi(x, y), rz.loss.cobi(x.float(), y.float()), rtol=1e-5, atol=1e-6)
    x.requires_grad_()
    rz.loss.cobi(x, y).backward()
    assert x.grad.dtype == dtype and bool(torch.isfinite(x.grad.float()).all())


def test_non_contiguous_views_give_the_contiguous_loss(maps):
    x, y = maps
    xt, yt = x.transpose(2, 3), y.transpose(2, 3)  # views, not copies
    assert not xt.is_contiguous()
    torch.testing.assert_close(rz.loss.cobi(xt, yt), rz.loss.cobi(xt.contiguous(), yt.contiguous()))
    strided = torch.rand(2, 16, 12, 10)[:, ::2]
    torch.testing.assert_close(rz.loss.cobi(strided, y), rz.loss.cobi(strided.contiguous(), y))


@pytest.mark.parametrize("options", [dict(sample=2.5), dict(sample=0), dict(sample=True), dict(kind=[]),
                                     dict(kind="nn2"), dict(distance=None), dict(h="0.5"), dict(h=float("nan")),
                                     dict(eps=1e-300), dict(eps=0.0), dict(spatial_weight=-1.0), dict(backend=3),
                                     dict(reduction="max")])
def test_bad_arguments_are_config_errors(maps, options):
    with pytest.raises(rz.errors.ConfigError):
        rz.loss.cobi(*maps, **options)


def test_tensors_without_values_are_refused(maps):
    x, y = maps
    with pytest.raises(rz.errors.ShapeError):
        rz.loss.cobi(x.to("meta"), y.to("meta"))
    with pytest.raises(rz.errors.ShapeError):
        rz.loss.cobi(x.long(), y.long())
