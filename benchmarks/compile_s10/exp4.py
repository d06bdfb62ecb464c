import d1
aten = torch.ops.aten
VARS["conv1 fwd mm NHWC, bwd bmm"] = Variant(d1.FWD_NHWC)
VARS["conv1 fwd bmm, bwd one mm"] = Variant(d1.BWD_ONLY_MM)
VARS["conv1 fwd mm NHWC, bwd one mm"] = Variant({aten.convolution.default: d1.conv1_mm_nhwc, aten.convolution_backward.default: d1.conv1_mm_grad})
