import d1
aten = torch.ops.aten
def silu_xs(x):
    return x * torch.sigmoid(x)
BOTH = {aten.convolution.default: d1.conv1_mm_nhwc, aten.convolution_backward.default: d1.conv1_mm_grad}
SILU = {aten.silu.default: silu_xs}
VARS["thin mm"] = Variant({**ORIG_D, **d1.THIN})
VARS["conv1 both mm + silu"] = Variant({**BOTH, **SILU})
VARS["conv1 both mm + silu + thin mm"] = Variant({**BOTH, **SILU, **d1.THIN})
