exec(open(os.path.join(HERE, "exp2.py")).read().split("VARS[")[0])   # score_only_transition, SO
aten = torch.ops.aten
def silu_xs(x):
    return x * torch.sigmoid(x)
SD = {**ORIG_D, aten.silu.default: silu_xs}
VARS["silu = x*sigmoid(x)"] = backend_with(SD)
VARS["silu decomp + cpp_wrapper"] = backend_with(SD, cpp_wrapper=True)
VARS["score-only + silu decomp + cpp_wrapper"] = SO(backend_with(SD, cpp_wrapper=True))
