"""In-process A/B of the compiled Langevin step (session 10, results/compile_probes_s10.md).

Eager and each variant are ebmlab samplers run by ``run_chains``; a variant compiles through
``compile_sampler`` with the decompositions of ``ebmlab.samplers.compile_decomp.DECOMPOSITIONS`` replaced
by its own while it compiles, and with its Inductor config patches active while it compiles. A
score-only variant replaces the density's Langevin step by a graph that skips f (measurement only: f
comes back as zeros). The --exp file fills VARS (name -> Variant) and may use ORIG_D, the decompositions
at the start of session 10 (d1.OLD).
Run:  PYTHONPATH=$PWD/src OMP_NUM_THREADS=1 python benchmarks/compile_s10/ab2.py --exp exp8.py [--rounds R] [--steps N]
"""
import os, tempfile, sys, time, statistics, argparse, math, dataclasses
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="s10c-"))
HERE = os.path.dirname(os.path.abspath(__file__)); sys.path.insert(0, os.path.dirname(os.path.dirname(HERE))); sys.path.insert(0, HERE)
import torch
import torch._inductor.config as inductor_config
from benchmarks.compile_probes import inductor_with
from benchmarks.sampler_speed import EPS, conv_net
import ebmlab.samplers.compile_decomp as cd
from ebmlab.samplers.compiled import compile_sampler
from ebmlab.samplers.malloc import keep_freed_memory
from ebmlab.samplers.registry import make_sampler
from ebmlab.samplers.run import run_chains
ap = argparse.ArgumentParser(); ap.add_argument("--rounds", type=int, default=20); ap.add_argument("--exp", required=True)
ap.add_argument("--steps", type=int, default=10)
args = ap.parse_args()
keep_freed_memory(); torch.set_num_threads(1); torch.manual_seed(0)
net = conv_net(); x0 = torch.rand(256,1,8,8)*2-1
for p in net.parameters(): p.requires_grad_(True)
SHIPPED = dict(cd.DECOMPOSITIONS)
import d1
ORIG_D = d1.OLD        # "current" in the result tables: the default at the start of session 10


@dataclasses.dataclass
class Variant:
    decomp: dict | None = None          # None: ORIG_D
    patches: dict = dataclasses.field(default_factory=dict)
    score_only: bool = False


class ScoreOnly:
    """Wraps a CompiledDensity: Langevin's step graph computes x' and the score at x' only (no f)."""
    def __init__(self, inner, patches):
        self.inner, self.patches, self.fn = inner, patches, None
    def __call__(self, x):
        return self.inner(x)
    def value_and_score(self, x):
        return self.inner.value_and_score(x)
    def langevin_step(self, x, score, z, step_size, noise_scale, grad_clip, low, high):
        if self.fn is None:
            g = torch.func.grad(lambda y: self.inner.eager(y).sum())
            def transition(x, score, z):
                drift = score if grad_clip is None else score.clamp(-grad_clip, grad_clip)
                x_new = torch.add(x, drift, alpha=step_size)
                if z is not None:
                    x_new = torch.add(x_new, z, alpha=noise_scale)
                return x_new, g(x_new)
            self.fn = torch.compile(transition, dynamic=False,
                                    backend=inductor_with(dict(cd.DECOMPOSITIONS), layout_optimization=False, **self.patches))
        assert low is None
        with torch.no_grad():
            x_new, s = self.fn(x, score, z)
        return x_new, x_new.new_zeros(x_new.shape[0]), s


VARS = {"current": Variant()}
exec(open(os.path.join(HERE, args.exp) if not os.path.exists(args.exp) else args.exp).read())     # fills VARS
kern = {"eager": make_sampler(net, "langevin", EPS)}
run_chains(kern["eager"], x0, 1, torch.Generator().manual_seed(0))
a = run_chains(kern["eager"], x0, 5, torch.Generator().manual_seed(1))[0]
for name, v in VARS.items():
    cd.DECOMPOSITIONS.clear(); cd.DECOMPOSITIONS.update(ORIG_D if v.decomp is None else v.decomp)
    s = compile_sampler(make_sampler(net, "langevin", EPS))
    if v.score_only:
        s.f = ScoreOnly(s.f, v.patches)
    with inductor_config.patch(v.patches):       # compiles happen in these first calls
        t0 = time.perf_counter(); run_chains(s, x0, 2, torch.Generator().manual_seed(0)); ct = time.perf_counter() - t0
        b = run_chains(s, x0, 5, torch.Generator().manual_seed(1))[0]
    print(f"{name}: compile {ct:.1f}s, max diff {(a-b).abs().max().item():.1e}", flush=True)
    kern[name] = s
cd.DECOMPOSITIONS.clear(); cd.DECOMPOSITIONS.update(SHIPPED)
N = args.steps; t = {k: [] for k in kern}; order = list(kern)
for r in range(args.rounds):
    for k in order[r % len(order):] + order[:r % len(order)]:
        c = time.process_time(); run_chains(kern[k], x0, N, torch.Generator().manual_seed(r)); t[k].append((time.process_time()-c)/N*1e3)
print(f"rounds {args.rounds} x {N} steps; load {os.getloadavg()}")
print("| variant | ms/step (median) | min | / eager | / current | quartiles / current | rounds faster than current |")
for k in order:
    rc = sorted(y/x for x,y in zip(t['current'], t[k]))
    q = statistics.quantiles(rc, n=4)
    print(f"| {k} | {statistics.median(t[k]):.2f} | {min(t[k]):.2f} | {statistics.median(y/x for x,y in zip(t['eager'], t[k])):.3f} | {statistics.median(rc):.3f} | {q[0]:.3f}-{q[2]:.3f} | {sum(r < 1 for r in rc)}/{len(rc)} |")
