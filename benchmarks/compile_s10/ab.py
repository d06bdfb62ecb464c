import os, tempfile, sys, time, statistics, resource, argparse
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="s10c-"))
HERE = os.path.dirname(os.path.abspath(__file__)); sys.path.insert(0, os.path.dirname(os.path.dirname(HERE))); sys.path.insert(0, HERE)
import torch
from benchmarks.sampler_speed import EPS, conv_net
import ebmlab.samplers.compile_decomp as cd
from ebmlab.samplers.compiled import compile_sampler
from ebmlab.samplers.malloc import keep_freed_memory
from ebmlab.samplers.registry import make_sampler
from ebmlab.samplers.run import run_chains
import gdecomp
ap = argparse.ArgumentParser(); ap.add_argument("--rounds", type=int, default=20); ap.add_argument("--variants", default="")
args = ap.parse_args()
keep_freed_memory(); torch.set_num_threads(1); torch.manual_seed(0)
net = conv_net(); x0 = torch.rand(256,1,8,8)*2-1
for p in net.parameters(): p.requires_grad_(True)
SHIPPED = dict(cd.DECOMPOSITIONS)
import d1
ORIG = d1.OLD      # "current": the --compile default at the start of session 10
VARS = {"current": ORIG, "general mm (all convs)": gdecomp.GENERAL}
if "onech+mm" in args.variants:
    # one-channel conv keeps its own form, others general
    def fwd(*a):
        r = d1.old_conv(*a); return gdecomp.conv_mm(*a) if r is NotImplemented else r
    def bwd(*a):
        r = d1.old_input_grad(*a); return gdecomp.conv_mm_input_grad(*a) if r is NotImplemented else r
    VARS["onech own + general mm"] = {torch.ops.aten.convolution.default: fwd, torch.ops.aten.convolution_backward.default: bwd}
kern = {"eager": make_sampler(net, "langevin", EPS)}
run_chains(kern["eager"], x0, 1, torch.Generator().manual_seed(0))
a = run_chains(kern["eager"], x0, 5, torch.Generator().manual_seed(1))[0]
for name, dec in VARS.items():
    cd.DECOMPOSITIONS.clear(); cd.DECOMPOSITIONS.update(dec)
    s = compile_sampler(make_sampler(net, "langevin", EPS))
    t0 = time.perf_counter(); run_chains(s, x0, 2, torch.Generator().manual_seed(0)); ct = time.perf_counter() - t0
    b = run_chains(s, x0, 5, torch.Generator().manual_seed(1))[0]
    print(f"{name}: compile {ct:.1f}s, max diff {(a-b).abs().max().item():.1e}", flush=True)
    kern[name] = s
cd.DECOMPOSITIONS.clear(); cd.DECOMPOSITIONS.update(SHIPPED)
N = 10; t = {k: [] for k in kern}; order = list(kern)
for r in range(args.rounds):
    for k in order[r % len(order):] + order[:r % len(order)]:
        c = time.process_time(); run_chains(kern[k], x0, N, torch.Generator().manual_seed(r)); t[k].append((time.process_time()-c)/N*1e3)
for k in order:
    print(f"{k:35s} {statistics.median(t[k]):7.2f} ms  ratio {statistics.median(y/x for x,y in zip(t['eager'], t[k])):.3f}  min {min(t[k]):.2f}")
print("load", os.getloadavg())
