"""Usage: python objectives2d_dsm_antithetic_s18_probe.py SETS SEEDS JSON MODE (from benchmarks/results).

objectives2d's ebmlab.train call + exact NLL above the truth (as objectives2d_nce_noise_s12_probe.py), objective dsm,
with dsm's noise drawn per MODE (monkeypatched into training.objectives.dsm_loss, nothing else changed):
  plain  the library's loss: one ε per point;
  anti   antithetic pairs: each point's loss is the mean over ε and -ε (2 forwards per point, the same points);
  two    two independent ε per point (the same cost as anti: is a gain antithetic, or just more noise draws?).
Session-18 probe of issue 15's dsm cells."""
import json, sys, time
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))      # benchmarks/
import ebmlab
from ebmlab.training import objectives as obj_mod
from density2d import data, exact_nll, true_nll
import density2d_unseen as U
sets, seeds, kw, mode = sys.argv[1].split(","), [int(s) for s in sys.argv[2].split(",")], json.loads(sys.argv[3]), sys.argv[4]
_loss = obj_mod.dsm_loss


def _paired(f, x, eps, sigma, antithetic=False):
    # (the library's own antithetic argument came with the adoption; "plain" passes it on: since then it runs the
    # library as it is, pairs included unless the JSON sets "dsm_antithetic": false)
    if mode == "plain":
        return _loss(f, x, eps, sigma, antithetic)
    other = -eps if mode == "anti" else torch.randn_like(eps)   # "two": torch's global generator, seeded by train
    return _loss(f, torch.cat([x, x]), torch.cat([eps, other]), torch.cat([sigma, sigma]))


assert mode in ("plain", "anti", "two"), mode
obj_mod.dsm_loss = _paired
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
        run = ebmlab.train("auto", train.numpy(), None, steps=3000, seed=seed, objective="dsm", progress=False,
                           threads=None, **kw)
        gaps.append(exact_nll(run.model.log_density, test, run.model.bounds.double()) - true)
        print(f"{name:16s} dsm {json.dumps(kw)} {mode} seed {seed} {gaps[-1]:+.4f} ({time.process_time() - c0:.0f} CPU-s)", flush=True)
    print(f"{name:16s} dsm {json.dumps(kw)} {mode} median {sorted(gaps)[len(gaps) // 2]:+.4f}", flush=True)
