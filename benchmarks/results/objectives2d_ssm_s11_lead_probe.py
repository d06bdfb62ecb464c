"""objectives2d's ebmlab.train call + exact NLL, with extra settings (JSON), for one objective."""
import json, sys, time
import torch
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))   # benchmarks/
import ebmlab
from density2d import data, exact_nll, true_nll
obj, sets, seeds, kw = sys.argv[1], sys.argv[2].split(","), [int(s) for s in sys.argv[3].split(",")], json.loads(sys.argv[4])
torch.set_num_threads(1)
for name in sets:
    train, test = data(name)
    true = true_nll(name, test)
    gaps = []
    for seed in seeds:
        c0 = time.process_time()
        run = ebmlab.train("auto", train.numpy(), None, steps=3000, seed=seed, objective=obj, progress=False,
                           threads=None, **kw)
        gaps.append(exact_nll(run.model.log_density, test, run.model.bounds.double()) - true)
        print(f"{name:16s} {obj} {json.dumps(kw)} seed {seed} {gaps[-1]:+.4f} ({time.process_time() - c0:.0f} CPU-s)", flush=True)
    print(f"{name:16s} {obj} {json.dumps(kw)} median {sorted(gaps)[len(gaps) // 2]:+.4f}", flush=True)
