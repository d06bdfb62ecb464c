import d1
aten = torch.ops.aten
VARS["conv1 fwd mm NHWC, bwd one mm"] = Variant({aten.convolution.default: d1.conv1_mm_nhwc, aten.convolution_backward.default: d1.conv1_mm_grad})
VARS["conv1 fwd mm NHWC, bwd bmm"] = Variant(d1.FWD_NHWC)
