"""A convolution with ONE input channel whose input gradient is a matmul and a fold (col2im).

Why: Langevin chains ask the network for ∇x f at every step, and on a CPU oneDNN's input gradient of a
convolution with a single input channel (the first layer of a grey-scale image network) is slow.
Measured (torch 2.13, 1 thread, 128 images 1x8x8, 16 filters 4x4 stride 2 padding 1, the ``digits``
preset's first layer): forward 0.13 ms, forward + input gradient 1.25-1.30 ms through aten
(``convolution_backward``), 0.57 ms with the input gradient as Wᵀg folded back onto the image; the same
gradient as a transposed convolution (oneDNN too) took 1.41 ms. In the ``digits`` preset's training step
(10 chain gradients) that is ~7 of ~38 ms.

Used only where a gradient with respect to the INPUT alone is wanted: x requires grad and the layer's
weight and bias do not (``run_chains`` freezes the network's parameters while chains move), float32 on the
CPU, no autocast, not while ``torch.compile`` traces (the compiled sampler decomposes such convolutions
itself, samplers/compile_decomp.py). Every other call, a training loss's included, is the module's own
forward, so weight gradients are untouched. What stays bit for bit: the forward is ``F.conv2d`` itself (the
same kernel, the same f). What changes: the input gradient's float rounding (its sums run in another
order; ~1e-6 relative), so chains, and a run trained with them, differ from the plain ``nn.Conv2d`` path
by rounding, not in law.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


class _OneChannelConv(torch.autograd.Function):
    """conv2d(x [B, 1, H, W], weight [C, 1, kh, kw], bias [C] or None) -> [B, C, H', W'], for a weight and bias
    that need no gradient (``one_channel_conv`` checks): its backward gives the input gradient only."""

    @staticmethod
    def forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: tuple[int, ...],
                padding: tuple[int, ...], dilation: tuple[int, ...]) -> torch.Tensor:
        return F.conv2d(x, weight, bias, stride, padding, dilation)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: torch.Tensor) -> None:
        x, weight, _, stride, padding, dilation = inputs
        ctx.save_for_backward(weight)
        ctx.conf = (x.shape[-2:], stride, padding, dilation)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple:
        (weight,) = ctx.saved_tensors
        size, stride, padding, dilation = ctx.conf
        b, c = g.shape[:2]
        # every output position's gradient spread over the kernel's taps: [B, kh*kw, L], then summed back
        # onto the pixels those taps read (fold is unfold's adjoint); differentiable, so create_graph works
        cols = weight.reshape(c, -1).t().matmul(g.reshape(b, c, -1))
        gx = F.fold(cols, size, weight.shape[-2:], dilation=dilation, padding=padding, stride=stride)
        return gx, None, None, None, None, None


def applies(conv: nn.Module) -> bool:
    """Whether ``conv`` is a layer this file can run: an ``nn.Conv2d`` with one input channel, groups 1,
    zero padding given as numbers (spectral-normed layers included: their weight is read as usual)."""
    return (isinstance(conv, nn.Conv2d) and conv.in_channels == 1 and conv.groups == 1
            and conv.padding_mode == "zeros" and not isinstance(conv.padding, str))


def one_channel_conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for x [B, 1, H, W]; the input gradient by matmul + fold where that applies (module doc),
    else the module's own forward. ``conv`` must pass ``applies``."""
    w, b = conv.weight, conv.bias
    if (x.requires_grad and not w.requires_grad and (b is None or not b.requires_grad) and x.device.type == "cpu"
            and x.dtype == w.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
            and not torch.compiler.is_compiling()):
        return _OneChannelConv.apply(x, w, b, conv.stride, conv.padding, conv.dilation)
    return conv(x)
