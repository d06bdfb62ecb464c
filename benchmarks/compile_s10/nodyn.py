import os, tempfile, sys, time, statistics, math, functools
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="s10c-"))
HERE = os.path.dirname(os.path.abspath(__file__)); sys.path.insert(0, os.path.dirname(os.path.dirname(HERE))); sys.path.insert(0, HERE)
import torch
from torch.func import functional_call
from torch.fx.experimental.proxy_tensor import make_fx
from torch._inductor.compile_fx import compile_fx
from torch._inductor.decomposition import select_decomp_table
from benchmarks.sampler_speed import EPS, conv_net
import ebmlab.samplers.compiled as comp
import d1
import ebmlab.samplers.compile_decomp as cd
from ebmlab.samplers.malloc import keep_freed_memory
from ebmlab.samplers.registry import make_sampler
from ebmlab.samplers.run import run_chains
keep_freed_memory(); torch.set_num_threads(1); torch.manual_seed(0)
net = conv_net(); x0 = torch.rand(256,1,8,8)*2-1
for p in net.parameters(): p.requires_grad_(False)
NOISE = math.sqrt(2*EPS)
names = [n for n, _ in net.named_parameters()]
def trans(*args):
    p = dict(zip(names, args[:len(names)])); x, score, z = args[len(names):]
    f = lambda y: functional_call(net, p, (y,))
    # Langevin's transition as compiled.py's step graph has it (no clip, no box), written out here
    x_new = x + EPS * score + NOISE * z
    score_new, f_new = torch.func.grad(lambda y: (lambda v: (v.sum(), v))(f(y)), has_aux=True)(x_new)
    return x_new, f_new, score_new
cd.DECOMPOSITIONS.clear(); cd.DECOMPOSITIONS.update(d1.OLD)
s = make_sampler(net, "langevin", EPS); cs = comp.compile_sampler(make_sampler(net, "langevin", EPS))
st = s.init(x0); z0 = torch.randn_like(x0)
params = [p for p in net.parameters()]
t0 = time.perf_counter()
with torch.no_grad():
    gm = make_fx(trans)(*params, x0, st.score, z0)
    direct = compile_fx(gm, [*params, x0, st.score, z0], decompositions={**select_decomp_table(), **d1.OLD},
                        config_patches={"layout_optimization": False})
print("make_fx+compile_fx", time.perf_counter() - t0)
with torch.no_grad():
    ref = cs.f.langevin_step(x0, st.score, z0, EPS, NOISE, None, None, None)
    out = direct(*params, x0, st.score, z0)
print("diff", max((a-b).abs().max().item() for a, b in zip(ref, out)))
zs = [torch.randn_like(x0) for _ in range(10)]
def loop_dynamo():
    x, sc = x0, st.score
    for z in zs:
        x, fx, sc = cs.f.langevin_step(x, sc, z, EPS, NOISE, None, None, None)
def loop_direct():
    x, sc = x0, st.score
    with torch.no_grad():
        for z in zs:
            x, fx, sc = direct(*params, x, sc, z)
def eager_rc():
    run_chains(s, x0, 10, torch.Generator().manual_seed(0))
def comp_rc():
    run_chains(cs, x0, 10, torch.Generator().manual_seed(0))
fns = {"eager run_chains": eager_rc, "--compile run_chains": comp_rc, "step graph via Dynamo, own loop": loop_dynamo, "same graph without Dynamo (make_fx + compile_fx), own loop": loop_direct}
for f in fns.values(): f()
t = {k: [] for k in fns}; order = list(fns)
for r in range(30):
    for k in order[r % len(order):] + order[:r % len(order)]:
        c = time.process_time(); fns[k](); t[k].append((time.process_time()-c)/10*1e3)
print("load", os.getloadavg())
b = order[0]
for k in order:
    print(f"| {k} | {statistics.median(t[k]):.2f} | {min(t[k]):.2f} | {statistics.median(y/x for x,y in zip(t[b], t[k])):.3f} |")
