import d1
aten = torch.ops.aten
def silu_xs(x):
    return x * torch.sigmoid(x)
BOTH = {aten.convolution.default: d1.conv1_mm_nhwc, aten.convolution_backward.default: d1.conv1_mm_grad}
VARS["conv1 fwd mm NHWC, bwd bmm"] = Variant(d1.FWD_NHWC)
VARS["conv1 fwd mm NHWC, bwd one mm"] = Variant(BOTH)
VARS["conv1 both mm + silu=x*sigmoid(x)"] = Variant({**BOTH, aten.silu.default: silu_xs})
VARS["conv1 both mm + silu + cpp_wrapper"] = Variant({**BOTH, aten.silu.default: silu_xs}, dict(cpp_wrapper=True))
