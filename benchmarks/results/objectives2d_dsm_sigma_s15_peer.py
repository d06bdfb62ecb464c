"""Usage: python objectives2d_dsm_sigma_s15_peer.py SETS SEEDS PEERS SIGMA (from benchmarks/results).

The peers' dsm cell of objectives2d.py (its run_peer: objective_runners.train with ebmlab's resolved 2-D dsm recipe,
exact NLL on the shared box, minus the truth) with only the noise level replaced by SIGMA: objectives2d.py gives
the peers ``recipe("dsm")["sigma"]`` = ebmlab's ``dsm_sigmas[0]``, the final level of ebmlab's curriculum, so a
candidate final level must be compared with the peers at that same fixed level (session 15, issue 15).
PEERS: comma list of ebmkit, torchebm. Needs /work/main/.venv-bench/bin/python (ebmkit = package ``ebm``)."""
import sys, time
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))      # benchmarks/
from density2d import data, exact_nll, shared_box, true_nll
from objectives2d import recipe
from peers import objective_runners

sets, seeds, peers = sys.argv[1].split(","), [int(s) for s in sys.argv[2].split(",")], sys.argv[3].split(",")
sigma = float(sys.argv[4])
torch.set_num_threads(1)
r = dict(recipe("dsm"), sigma=sigma)
for name in sets:
    train, test = data(name)
    true = true_nll(name, test)
    for peer in peers:
        for seed in seeds:
            c0 = time.process_time()
            f, _, _ = objective_runners.train(peer, "dsm", train, 3000, seed, **r)
            gap = exact_nll(f, test, shared_box(train)) - true
            print(f"{name:16s} peer {peer} sigma {sigma:g} seed {seed} {gap:+.4f} ({time.process_time() - c0:.0f} CPU-s)",
                  flush=True)
