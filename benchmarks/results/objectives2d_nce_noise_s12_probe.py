"""Usage: python objectives2d_nce_noise_s12_probe.py SETS SEEDS JSON [UNIFORM] [8+1] [WIDEN] (from benchmarks/results).

objectives2d's ebmlab.train call + exact NLL above the truth, with extra settings (JSON), the noise's uniform share
(argv[4], monkeypatched into NCENoise.fit; 0.1 is the library's) and "8+1" (argv[5]: half the noise an 8-component
mixture, half one Gaussian, both fitted to the data) — session-12 probe of the nce noise (issue 15). Since session 13
the JSON's "objective" key picks the objective (default nce; UNIFORM and 8+1 only change nce's noise). Session 14:
WIDEN (argv[6], default 1) multiplies every mixture component's covariance (its Cholesky factor by sqrt(WIDEN)), a
broader noise around the same fitted modes; "-" as argv[5] leaves the mixture plain."""
import json, sys, time
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))      # benchmarks/
import ebmlab
from ebmlab.training import nce as nce_mod
from density2d import data, exact_nll, true_nll
import density2d_unseen as U
sets, seeds, kw = sys.argv[1].split(","), [int(s) for s in sys.argv[2].split(",")], json.loads(sys.argv[3])
OBJ = kw.pop("objective", "nce")
uniform = float(sys.argv[4]) if len(sys.argv) > 4 else 0.1
_fit = nce_mod.NCENoise.fit.__func__
mix = sys.argv[5] if len(sys.argv) > 5 else ""   # "8+1": half an 8-component fit, half a single Gaussian
widen = float(sys.argv[6]) if len(sys.argv) > 6 else 1.0


def _widened(cls, q):
    return q if widen == 1.0 else cls(q.weights, q.means, q.chol * widen ** 0.5, q.event_shape, q.box, q.uniform)


def _patched(cls, x, components, seed, device, box=None, uniform_=None):
    if mix != "8+1":
        return _widened(cls, _fit(cls, x, components, seed, device, box=box, uniform=uniform))
    a = _fit(cls, x, 8, seed, device, box=box, uniform=uniform)
    b = _fit(cls, x, 1, seed, device, box=box, uniform=uniform)
    return cls(torch.cat([a.weights * 0.5, b.weights * 0.5]), torch.cat([a.means, b.means]),
               torch.cat([a.chol, b.chol]), a.event_shape, box, uniform)


nce_mod.NCENoise.fit = classmethod(lambda cls, *a, **k: _patched(cls, *a, **k))
torch.set_num_threads(1)
for name in sets:
    if name in U.SETS:          # a held-out shape, drawn as density2d_unseen.py draws it
        train, test = torch.from_numpy(U.draw(name, 20000, 1)), torch.from_numpy(U.draw(name, 5000, 2))
        true = U.true_nll(name, test.numpy())
    else:
        train, test = data(name)
        true = true_nll(name, test)
    gaps = []
    for seed in seeds:
        c0 = time.process_time()
        run = ebmlab.train("auto", train.numpy(), None, steps=3000, seed=seed, objective=OBJ, progress=False,
                           threads=None, **kw)
        gaps.append(exact_nll(run.model.log_density, test, run.model.bounds.double()) - true)
        print(f"{name:16s} {OBJ} {json.dumps(kw)} u={uniform}{mix} w={widen} seed {seed} {gaps[-1]:+.4f} ({time.process_time() - c0:.0f} CPU-s)", flush=True)
    print(f"{name:16s} {OBJ} {json.dumps(kw)} u={uniform}{mix} w={widen} median {sorted(gaps)[len(gaps) // 2]:+.4f}", flush=True)
