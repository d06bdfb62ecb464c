"""Decompositions the compiled sampling path hands TorchInductor: a convolution with ONE input channel.

An image EBM's first layer (1 input channel for grey images) is a tiny amount of arithmetic that
oneDNN's convolution kernels, forward and backward-data, run far below the core's peak: on the
sampler-speed conv net (256 images 1x8x8, Conv(1,32,3)) the two took 2.1 ms of an 8.0 ms eager
Langevin step, the forward at 9 GFLOP/s against 62 for the next layer (benchmarks/results/
compile_probes.md). Written as a gather of the k x k shifted views and one matmul (forward), and a
matmul and k x k shifted adds (input gradient), they become code Inductor generates and fuses with the
SiLU around them: 0.95x -> 0.77-0.80x eager per step in that probe's loop (inside ebmlab's sampler,
with its own per-step work: results/compile_speed.md).
Each direction is ONE matmul over the whole batch, not a batched matmul of one small product per image
(session 10, results/compile_probes_s10.md): the forward's columns are [B*Ho*Wo, kh*kw] (taps innermost)
times the [kh*kw, O] weight, the input gradient's the [kh*kw, O] weight times grad_output as [O, B*Ho*Wo].
Alone, 256 images 1x8x8 and 32 filters 3x3: 0.33 -> 0.13 ms (forward) and 0.22 -> 0.18 ms (input
gradient); in the compiled Langevin step 0.96-0.98x the batched form's time per step (five
interleaved runs in one process each, compile_probes_s10.md).
Everything else (strides, dilation, groups, several input channels, weight gradients) returns
NotImplemented and keeps the aten kernel.

Both are exact rewrites of the same sums, equal to the aten kernels within float rounding.
The eager path has its own form of the input gradient (nets/conv_grad.py: an autograd Function,
matmul + fold, any stride, for eager autograd); this file's forms are what Inductor was measured with.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

aten = torch.ops.aten


def _one_channel(weight: torch.Tensor, stride, dilation, transposed: bool, groups: int) -> bool:
    return (not transposed and groups == 1 and weight.dim() == 4 and weight.shape[1] == 1
            and all(s == 1 for s in stride) and all(d == 1 for d in dilation))


def one_channel_conv(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups):
    """aten.convolution for a [B, 1, H, W] input and [O, 1, kh, kw] weight, stride 1:
    [B*Ho*Wo, kh*kw] shifted views x [kh*kw, O] weight matrix -> [B, O, Ho, Wo] (+ bias), the result's
    memory in [B, Ho, Wo, O] order (a permuted view; Inductor's next pointwise kernel reads it as it is)."""
    if not _one_channel(weight, stride, dilation, transposed, groups):
        return NotImplemented
    ph, pw = padding
    x = F.pad(input, (pw, pw, ph, ph)) if ph or pw else input
    b, o = x.shape[0], weight.shape[0]
    kh, kw = weight.shape[2], weight.shape[3]
    ho, wo = x.shape[2] - kh + 1, x.shape[3] - kw + 1
    cols = torch.stack([x[:, 0, i:i + ho, j:j + wo] for i in range(kh) for j in range(kw)], dim=3)  # [B, Ho, Wo, k]
    out = torch.mm(cols.reshape(b * ho * wo, kh * kw), weight.reshape(o, kh * kw).t())
    out = out.reshape(b, ho, wo, o).permute(0, 3, 1, 2)
    return out if bias is None else out + bias.reshape(1, o, 1, 1)


def one_channel_input_grad(grad_output, input, weight, bias_sizes, stride, padding, dilation, transposed,
                           output_padding, groups, output_mask):
    """aten.convolution_backward when only the input gradient is asked for (the score: weights frozen)
    and the convolution is one_channel_conv's kind: [kh*kw, O] x grad_output as [O, B*Ho*Wo], then the
    kh*kw maps shifted to their offsets and summed -> [B, 1, H, W]."""
    if output_mask[1] or output_mask[2] or not _one_channel(weight, stride, dilation, transposed, groups):
        return NotImplemented
    b, o, ho, wo = grad_output.shape
    kh, kw = weight.shape[2], weight.shape[3]
    h, w = input.shape[2], input.shape[3]
    ph, pw = padding
    g = grad_output.permute(1, 0, 2, 3).reshape(o, b * ho * wo)
    t = torch.mm(weight.reshape(o, kh * kw).t(), g).reshape(kh * kw, b, ho, wo)
    gx = None
    for i in range(kh):
        for j in range(kw):
            part = F.pad(t[i * kw + j], (j, w + 2 * pw - wo - j, i, h + 2 * ph - ho - i))
            gx = part if gx is None else gx + part
    return gx[:, ph:ph + h, pw:pw + w].unsqueeze(1), None, None


DECOMPOSITIONS = {aten.convolution.default: one_channel_conv,
                  aten.convolution_backward.default: one_channel_input_grad}
