import os, tempfile, sys, time, statistics, argparse, functools
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="s10c-"))
HERE = os.path.dirname(os.path.abspath(__file__)); sys.path.insert(0, os.path.dirname(os.path.dirname(HERE))); sys.path.insert(0, HERE)
import torch
from benchmarks.sampler_speed import EPS, conv_net
import ebmlab.samplers.compile_decomp as cd
import ebmlab.samplers.compiled as comp
from ebmlab.samplers.malloc import keep_freed_memory
from ebmlab.samplers.registry import make_sampler
from ebmlab.samplers.run import run_chains
ap = argparse.ArgumentParser(); ap.add_argument("--rounds", type=int, default=20); ap.add_argument("--exp", required=True); ap.add_argument("--steps", type=int, default=10)
args = ap.parse_args()
keep_freed_memory(); torch.set_num_threads(1); torch.manual_seed(0)
net = conv_net(); x0 = torch.rand(256,1,8,8)*2-1
for p in net.parameters(): p.requires_grad_(True)
ORIG_D = dict(cd.DECOMPOSITIONS); ORIG_B = comp._score_backend; ORIG_T = comp._langevin_transition
def backend_with(decomp=None, **patches):
    def sb(mode):
        from torch._inductor.compile_fx import compile_fx
        from torch._inductor.decomposition import select_decomp_table
        return functools.partial(compile_fx, decompositions={**select_decomp_table(), **(ORIG_D if decomp is None else decomp)},
                                 config_patches={"layout_optimization": False, **patches})
    return sb
VARS = {"current": ORIG_B}
exec(open(os.path.join(HERE, args.exp) if not os.path.exists(args.exp) else args.exp).read())     # fills VARS: name -> _score_backend replacement
kern = {"eager": make_sampler(net, "langevin", EPS)}
run_chains(kern["eager"], x0, 1, torch.Generator().manual_seed(0))
a = run_chains(kern["eager"], x0, 5, torch.Generator().manual_seed(1))[0]
for name, sb in VARS.items():
    comp._score_backend = sb
    if hasattr(sb, 'sb'): comp._langevin_transition = score_only_transition
    s = comp.compile_sampler(make_sampler(net, "langevin", EPS))
    t0 = time.perf_counter(); run_chains(s, x0, 2, torch.Generator().manual_seed(0)); ct = time.perf_counter() - t0
    b = run_chains(s, x0, 5, torch.Generator().manual_seed(1))[0]
    print(f"{name}: compile {ct:.1f}s, max diff {(a-b).abs().max().item():.1e}", flush=True)
    kern[name] = s
    comp._langevin_transition = ORIG_T
comp._score_backend = ORIG_B
N = args.steps; t = {k: [] for k in kern}; order = list(kern)
for r in range(args.rounds):
    for k in order[r % len(order):] + order[:r % len(order)]:
        c = time.process_time(); run_chains(kern[k], x0, N, torch.Generator().manual_seed(r)); t[k].append((time.process_time()-c)/N*1e3)
print(f"rounds {args.rounds} x {N} steps; load {os.getloadavg()}")
for k in order:
    rc = sorted(y/x for x,y in zip(t['current'], t[k]))
    q = statistics.quantiles(rc, n=4)
    print(f"| {k} | {statistics.median(t[k]):.2f} | {min(t[k]):.2f} | {statistics.median(y/x for x,y in zip(t['eager'], t[k])):.3f} | {statistics.median(rc):.3f} | {q[0]:.3f}-{q[2]:.3f} | {sum(r < 1 for r in rc)}/{len(rc)} |")
