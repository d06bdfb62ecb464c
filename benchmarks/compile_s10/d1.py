"""Variants of the one-input-channel conv decomposition (session 10). OLD is the --compile default at the
start of session 10 (commit dee677f, a broadcast bmm per direction), copied here so that the runs'
baseline stays reproducible; conv1_mm_nhwc + conv1_mm_grad is what src/ebmlab/samplers/compile_decomp.py
ships since."""
import torch, torch.nn.functional as F
from ebmlab.samplers.compile_decomp import one_channel_conv, one_channel_input_grad
aten = torch.ops.aten


def _ok(weight, stride, dilation, transposed, groups):
    return (not transposed and groups == 1 and weight.dim() == 4 and weight.shape[1] == 1
            and all(s == 1 for s in stride) and all(d == 1 for d in dilation))


def old_conv(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups):
    """dee677f's one_channel_conv: [B, k, Ho*Wo] shifted views, a broadcast matmul (bmm) with the weight."""
    if not _ok(weight, stride, dilation, transposed, groups):
        return NotImplemented
    ph, pw = padding
    x = F.pad(input, (pw, pw, ph, ph)) if ph or pw else input
    b, o = x.shape[0], weight.shape[0]
    kh, kw = weight.shape[2], weight.shape[3]
    ho, wo = x.shape[2] - kh + 1, x.shape[3] - kw + 1
    cols = torch.stack([x[:, 0, i:i + ho, j:j + wo] for i in range(kh) for j in range(kw)], dim=1)
    out = torch.matmul(weight.reshape(o, kh * kw), cols.reshape(b, kh * kw, ho * wo)).reshape(b, o, ho, wo)
    return out if bias is None else out + bias.reshape(1, o, 1, 1)


def old_input_grad(grad_output, input, weight, bias_sizes, stride, padding, dilation, transposed,
                   output_padding, groups, output_mask):
    """dee677f's one_channel_input_grad: broadcast matmul, then the k maps shifted and summed."""
    if output_mask[1] or output_mask[2] or not _ok(weight, stride, dilation, transposed, groups):
        return NotImplemented
    b, o, ho, wo = grad_output.shape
    kh, kw = weight.shape[2], weight.shape[3]
    h, w = input.shape[2], input.shape[3]
    ph, pw = padding
    t = torch.matmul(weight.reshape(o, kh * kw).t(), grad_output.reshape(b, o, ho * wo)).reshape(b, kh * kw, ho, wo)
    gx = None
    for i in range(kh):
        for j in range(kw):
            part = F.pad(t[:, i * kw + j], (j, w + 2 * pw - wo - j, i, h + 2 * ph - ho - i))
            gx = part if gx is None else gx + part
    return gx[:, ph:ph + h, pw:pw + w].unsqueeze(1), None, None


OLD = {aten.convolution.default: old_conv, aten.convolution_backward.default: old_input_grad}

def conv1_mm(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups):
    if not _ok(weight, stride, dilation, transposed, groups):
        return NotImplemented
    ph, pw = padding
    x = F.pad(input, (pw, pw, ph, ph)) if ph or pw else input
    b, o = x.shape[0], weight.shape[0]
    kh, kw = weight.shape[2], weight.shape[3]
    ho, wo = x.shape[2] - kh + 1, x.shape[3] - kw + 1
    cols = torch.stack([x[:, 0, i:i + ho, j:j + wo] for i in range(kh) for j in range(kw)], dim=0)  # [k, B, ho, wo]
    out = torch.mm(weight.reshape(o, kh * kw), cols.reshape(kh * kw, b * ho * wo)).reshape(o, b, ho, wo)
    out = out.permute(1, 0, 2, 3)
    return out if bias is None else out + bias.reshape(1, o, 1, 1)

# what compile_decomp ships since (the session's kept variant): the input gradient as one mm
conv1_mm_grad = one_channel_input_grad

ONE_MM = {aten.convolution.default: conv1_mm, aten.convolution_backward.default: conv1_mm_grad}


# ... and the forward as [B*Ho*Wo, k] cols x [k, O], an NHWC-strided output
conv1_mm_nhwc = one_channel_conv

FWD_NHWC = {aten.convolution.default: conv1_mm_nhwc, aten.convolution_backward.default: old_input_grad}
BWD_ONLY_MM = {aten.convolution.default: old_conv, aten.convolution_backward.default: conv1_mm_grad}


def mm_thin(a, b):
    """mm with one output column (an EBM's scalar head: matrix-vector) or K == 1 (its gradient: an outer
    product) as a broadcast multiply (+ sum) that Inductor fuses with the pointwise work around it."""
    if a.dim() != 2 or b.dim() != 2:
        return NotImplemented
    if b.shape[1] == 1:
        return (a * b.t()).sum(1, keepdim=True)
    if a.shape[1] == 1:
        return a * b
    return NotImplemented


def addmm_thin(bias, a, b, beta=1, alpha=1):
    if beta != 1 or alpha != 1 or a.dim() != 2 or b.dim() != 2 or b.shape[1] != 1:
        return NotImplemented
    return bias + (a * b.t()).sum(1, keepdim=True)

THIN = {aten.mm.default: mm_thin, aten.addmm.default: addmm_thin}
