import d1
aten = torch.ops.aten
def silu_xs(x):
    return x * torch.sigmoid(x)
VARS["shipped (one-mm conv1)"] = Variant(SHIPPED)
VARS["shipped + thin mm"] = Variant({**SHIPPED, **d1.THIN})
VARS["shipped + thin mm + silu"] = Variant({**SHIPPED, **d1.THIN, aten.silu.default: silu_xs})
