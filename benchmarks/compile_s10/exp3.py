aten = torch.ops.aten
def silu_xs(x):
    return x * torch.sigmoid(x)
SD = {**ORIG_D, aten.silu.default: silu_xs}
VARS["silu = x*sigmoid(x)"] = Variant(SD)
VARS["silu decomp + cpp_wrapper"] = Variant(SD, dict(cpp_wrapper=True))
VARS["score-only + silu decomp + cpp_wrapper"] = Variant(SD, dict(cpp_wrapper=True), score_only=True)
