"""Experimental: any stride-1 conv as im2col (channels innermost) + one mm; input grad as mm + col2im."""
import torch, torch.nn.functional as F
aten = torch.ops.aten

def _ok(weight, stride, dilation, transposed, groups):
    return (not transposed and groups == 1 and weight.dim() == 4
            and all(s == 1 for s in stride) and all(d == 1 for d in dilation))

def conv_mm(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups):
    if not _ok(weight, stride, dilation, transposed, groups):
        return NotImplemented
    ph, pw = padding
    x = F.pad(input, (pw, pw, ph, ph)) if ph or pw else input
    b, c = x.shape[:2]; o, _, kh, kw = weight.shape
    ho, wo = x.shape[2] - kh + 1, x.shape[3] - kw + 1
    xl = x.permute(0, 2, 3, 1)                                           # [B, H, W, C]
    cols = torch.stack([xl[:, i:i + ho, j:j + wo, :] for i in range(kh) for j in range(kw)], dim=3)
    wm = weight.permute(2, 3, 1, 0).reshape(kh * kw * c, o)            # [(i, j, c), O]
    out = torch.mm(cols.reshape(b * ho * wo, kh * kw * c), wm)
    if bias is not None:
        out = out + bias
    return out.reshape(b, ho, wo, o).permute(0, 3, 1, 2)

def conv_mm_input_grad(grad_output, input, weight, bias_sizes, stride, padding, dilation, transposed,
                       output_padding, groups, output_mask):
    if output_mask[1] or output_mask[2] or not _ok(weight, stride, dilation, transposed, groups):
        return NotImplemented
    b, o, ho, wo = grad_output.shape
    _, c, kh, kw = weight.shape
    h, w = input.shape[2], input.shape[3]
    ph, pw = padding
    wm = weight.permute(0, 2, 3, 1).reshape(o, kh * kw * c)            # [O, (i, j, c)]
    t = torch.mm(grad_output.permute(0, 2, 3, 1).reshape(b * ho * wo, o), wm).reshape(b, ho, wo, kh * kw, c)
    hp, wp = h + 2 * ph, w + 2 * pw
    gx = None
    for i in range(kh):
        for j in range(kw):
            part = F.pad(t[:, :, :, i * kw + j, :], (0, 0, j, wp - wo - j, i, hp - ho - i))
            gx = part if gx is None else gx + part
    return gx[:, ph:ph + h, pw:pw + w, :].permute(0, 3, 1, 2), None, None

GENERAL = {aten.convolution.default: conv_mm, aten.convolution_backward.default: conv_mm_input_grad}
