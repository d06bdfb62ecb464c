"""nets/conv_grad.py: a one-input-channel convolution whose input gradient is a matmul + fold.

The forward must be the plain convolution bit for bit, the input gradient autograd's within float32
rounding, weight gradients (training losses) untouched, and the fast path must be the one the chains take.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from ebmlab.models.energy import EnergyModel
from ebmlab.nets import conv_grad
from ebmlab.nets.image import SmallConvNet
from ebmlab.samplers.base import frozen_parameters, log_density_and_score


def _plain(net: SmallConvNet, x: torch.Tensor) -> torch.Tensor:
    """The network as nn.Sequential runs it (the path before conv_grad)."""
    return net.head(net.body(x).flatten(1)).squeeze(-1)


@pytest.mark.parametrize("kernel,stride,padding,dilation,bias", [
    (4, 2, 1, 1, True), (3, 1, 1, 1, True), (3, 2, 0, 1, False), (5, 3, 2, 1, True), (3, 1, 2, 2, True),
    ((3, 2), (2, 1), (1, 0), 1, True)])
def test_forward_is_bit_exact_and_input_gradient_matches_autograd(kernel, stride, padding, dilation, bias):
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 6, kernel, stride=stride, padding=padding, dilation=dilation, bias=bias).requires_grad_(False)
    x = torch.randn(5, 1, 11, 9)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ya, yb = conv_grad.one_channel_conv(conv, xa), conv(xb)
    assert type(ya.grad_fn).__name__ == "_OneChannelConvBackward"        # the fast path ran
    assert torch.equal(ya, yb)                                            # same kernel forward
    w = torch.randn_like(yb)
    (ga,) = torch.autograd.grad((ya * w).sum(), xa)
    (gb,) = torch.autograd.grad((yb * w).sum(), xb)
    # float32: sums of at most C * kh * kw terms of size |g| |w| in another order
    tol = 8 * torch.finfo(torch.float32).eps * (w.abs().max() * conv.weight.abs().max() * 6 * conv.weight[0].numel())
    assert (ga - gb).abs().max() <= tol


def test_gradcheck_in_float64():
    torch.manual_seed(1)
    w, b = torch.randn(4, 1, 3, 3, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    x = torch.randn(2, 1, 7, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: conv_grad._OneChannelConv.apply(t, w, b, (2, 2), (1, 1), (1, 1)), x)
    assert torch.autograd.gradgradcheck(lambda t: conv_grad._OneChannelConv.apply(t, w, b, (2, 2), (1, 1), (1, 1)) ** 2, x)


def test_the_chains_take_the_fast_path_and_get_autograds_score():
    torch.manual_seed(2)
    model = EnergyModel(SmallConvNet(1, 8))
    x = torch.rand(16, 1, 8, 8) * 2 - 1
    seen = []
    hook = model.net.body[1].register_forward_hook(lambda m, i, o: seen.append(type(i[0].grad_fn).__name__))
    with frozen_parameters(model):
        f, score = log_density_and_score(model.log_density, x)
    hook.remove()
    assert seen == ["_OneChannelConvBackward"]
    xg = x.clone().requires_grad_(True)
    with frozen_parameters(model):
        f_ref = _plain(model.net, xg)
        (score_ref,) = torch.autograd.grad(f_ref.sum(), xg)
    assert torch.equal(f, f_ref.detach())
    torch.testing.assert_close(score, score_ref, rtol=1e-5, atol=1e-7)


def test_training_losses_keep_the_plain_path_and_its_weight_gradients_bit_for_bit():
    # weights that need a gradient (a loss's backward) never take the fast path, also when x needs one
    # too (score matching's create_graph): weight gradients are exactly the plain network's
    torch.manual_seed(3)
    net = SmallConvNet(1, 8)
    x = torch.rand(8, 1, 8, 8) * 2 - 1
    for needs_x in (False, True):
        xa, xb = x.clone().requires_grad_(needs_x), x.clone().requires_grad_(needs_x)
        ga = torch.autograd.grad(net(xa).pow(2).sum(), list(net.parameters()))
        gb = torch.autograd.grad(_plain(net, xb).pow(2).sum(), list(net.parameters()))
        assert all(torch.equal(a, b) for a, b in zip(ga, gb))


def test_other_layers_and_dtypes_take_the_module_itself():
    conv3 = nn.Conv2d(3, 4, 3, padding=1)
    assert not conv_grad.applies(conv3)
    assert not conv_grad.applies(nn.Conv2d(1, 4, 3, padding="same"))
    assert not conv_grad.applies(nn.Conv2d(1, 4, 3, padding=1, padding_mode="reflect"))
    conv = nn.Conv2d(1, 4, 3, padding=1).double().requires_grad_(False)
    y = conv_grad.one_channel_conv(conv, torch.randn(2, 1, 5, 5, dtype=torch.float64, requires_grad=True))
    assert type(y.grad_fn).__name__ == "ConvolutionBackward0"            # float64: the module's own
