"""Usage: python objectives2d_ssm_antithetic_s18_probe.py SETS SEEDS MODE (from benchmarks/results).

objectives2d's ebmlab.train call (objective ssm, the 2-D preset) + exact NLL above the truth, with the preset's
data blur (data_noise 0.05) drawn per MODE (monkeypatched into training.objectives.SSM.loss):
  plain  the library as it is (the trainer blurs each point once, then the floor replaces 2 % of the batch);
  anti   the trainer's blur off (data_noise 0); the loss blurs each point twice, x + 0.05 ε and x - 0.05 ε (an
         antithetic pair: the same blurred data, the terms odd in ε cancelled), then the floor as before on the
         2B points (so 2 % of rows lose their partner), then the preset's directions; 2 x the forwards.
Session-18 probe of issue 15's ssm pinwheel cell (after the dsm pairs, objectives2d_dsm_antithetic_s18.md)."""
import sys, time
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))      # benchmarks/
import ebmlab
from ebmlab.training import objectives as obj_mod
from density2d import data, exact_nll, true_nll
import density2d_unseen as U
sets, seeds, mode = sys.argv[1].split(","), [int(s) for s in sys.argv[2].split(",")], sys.argv[3]
assert mode in ("plain", "anti"), mode
BLUR = 0.05                              # the ssm 2-D preset's data_noise
_loss = obj_mod.SSM.loss


def _paired(self, model, batch, net):
    x = batch.x_pos
    eps = torch.randn(x.shape, generator=batch.gen, device=x.device, dtype=x.dtype)
    pairs = torch.cat([x + BLUR * eps, x - BLUR * eps])
    return _loss(self, model, obj_mod.Batch(x_pos=pairs, y_pos=None, x_neg=None, gen=batch.gen,
                                            lr_factor=batch.lr_factor, phase=batch.phase), net)


kw = {}
if mode == "anti":
    obj_mod.SSM.loss = _paired
    kw = {"data_noise": 0.0}
torch.set_num_threads(1)
for name in sets:
    if name in U.SETS:
        train, test = torch.from_numpy(U.draw(name, 20000, 1)), torch.from_numpy(U.draw(name, 5000, 2))
        true = U.true_nll(name, test.numpy())
    else:
        train, test = data(name)
        true = true_nll(name, test)
    gaps = []
    for seed in seeds:
        c0 = time.process_time()
        run = ebmlab.train("auto", train.numpy(), None, steps=3000, seed=seed, objective="ssm", progress=False,
                           threads=None, **kw)
        gaps.append(exact_nll(run.model.log_density, test, run.model.bounds.double()) - true)
        print(f"{name:16s} ssm {mode} seed {seed} {gaps[-1]:+.4f} ({time.process_time() - c0:.0f} CPU-s)", flush=True)
    print(f"{name:16s} ssm {mode} median {sorted(gaps)[len(gaps) // 2]:+.4f}", flush=True)
