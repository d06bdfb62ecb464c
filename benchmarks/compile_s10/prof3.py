import os, tempfile, sys, collections
os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="s10p-")
HERE = os.path.dirname(os.path.abspath(__file__)); sys.path.insert(0, os.path.dirname(os.path.dirname(HERE))); sys.path.insert(0, HERE)
import torch
import torch._inductor.config as ic
ic.cpp.enable_kernel_profile = True
from torch.profiler import profile, ProfilerActivity
from benchmarks.sampler_speed import EPS, conv_net
import ebmlab.samplers.compile_decomp as cd
from ebmlab.samplers.compiled import compile_sampler
from ebmlab.samplers.malloc import keep_freed_memory
from ebmlab.samplers.registry import make_sampler
from ebmlab.samplers.run import run_chains
import gdecomp
keep_freed_memory(); torch.set_num_threads(1); torch.manual_seed(0)
net = conv_net(); x0 = torch.rand(256,1,8,8)*2-1
SHIPPED = dict(cd.DECOMPOSITIONS)
import d1
ORIG = d1.OLD      # "current": the --compile default at the start of session 10
VARS = {"current": ORIG, "general": gdecomp.GENERAL}
extra = sys.argv[1:] 
for e in extra:
    exec(open(os.path.join(HERE, e) if not os.path.exists(e) else e).read())   # may replace VARS
S = {"eager": make_sampler(net, "langevin", EPS)}
for k, d in VARS.items():
    cd.DECOMPOSITIONS.clear(); cd.DECOMPOSITIONS.update(d)
    S[k] = compile_sampler(make_sampler(net, "langevin", EPS)); run_chains(S[k], x0, 3, torch.Generator().manual_seed(0))
run_chains(S["eager"], x0, 3, torch.Generator().manual_seed(0))
tot = {k: collections.Counter() for k in S}; tt = collections.Counter()
R = 8; N = 5
for r in range(R):
    for k in S:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            run_chains(S[k], x0, N, torch.Generator().manual_seed(r))
        for ev in prof.key_averages():
            tot[k][ev.key] += ev.self_cpu_time_total
        tt[k] += sum(ev.self_cpu_time_total for ev in prof.key_averages())
for k in S:
    print(f"== {k}: total {tt[k]/R/N/1e3:.2f} ms/step")
    for key, v in tot[k].most_common(12):
        print(f"   {v/R/N/1e3:7.3f}  {key[:90]}")
print("load", os.getloadavg())
