"""Training objectives on vector data (d = 8, 16): test NLL by AIS of cd, dsm, ssm and nce (issue 15).

    .venv-bench/bin/python benchmarks/objectives_vector.py        # d 8,16; seeds 0,1,2; 3000 steps: results/objectives_vector.md
    .venv-bench/bin/python benchmarks/objectives_vector.py --dims 32 --ais-temps 2000 --out benchmarks/results/objectives_vector_d32.md
    .venv-bench/bin/python benchmarks/objectives_vector.py --quick                 # d 8, 200 steps, seed 0

Data: a mixture of four Gaussians in d dimensions with unequal weights (0.45 / 0.30 / 0.15 / 0.10),
means on four orthonormal directions times 3 (pairwise distance 4.24), each with its own random
rotation and standard deviations log-uniform in [0.35, 0.9] (so the modes are separated by >= 2.3
sd from the midpoint, not absurdly far apart, and the weights matter). Drawn here from fixed seeds
(the mixture: seed 100 + d; 20 000 training points, seed 1; 5 000 test points, seed 2), so the
true test NLL is analytic.

Rows: ``ebmlab.train("auto", train, None, steps=3000, seed=s, objective=...)`` — what a user gets by
default on vector data (the ``vector`` preset for d > 3 and the objective's own settings on it).

Peer rows (``--objectives ebmkit:dsm,torchebm:dsm,ebmkit:ssm,torchebm:ssm,ebmkit:nce``; results/objectives_vector_peers.md):
the peers' own losses (``peers/objective_runners.py``, as in objectives2d.py) on the shared raw 3x128 SiLU MLP (no
standardisation, no support box) with ebmlab's vector-preset batch, Adam lr, cosine schedule, noise level and noise
ratio for that objective; ebmkit's nce gets one Gaussian fitted to the training data as noise.

Metrics, per run:
- **test NLL minus the true density's**, nats: -mean f(test) + log Z, log Z by ebmlab's AIS
  (``ebmlab.log_z(model, method="ais", x_ref=2000 test points)``, 256 chains x 2000 temperatures: ebmlab's
  default of 500 (benchmarks/results/ais_validation.md) left the two runs further apart on these models,
  results/objectives_vector_ais500_partial.log; ``--ais-temps``). AIS runs twice with
  independent seeds; the cell uses the first forward value, and the table shows the spread of the two and
  the reverse ("upper") value. The forward value is a stochastic lower bound of log Z, so an NLL from it is a
  stochastic lower bound too; the reverse value starts from test data, which are only approximately
  samples of the model (a guide, not a guaranteed bound).
- **mode weights**: the model's probability of each component's region (the points the true mixture
  assigns to that component), estimated by importance sampling from that component widened 1.5x in
  covariance: M_k = E_q[exp f(x) 1{x in region k} / q_k(x)] (``--is-samples`` draws per component). The
  model's weights are M_k / sum M; the cells give KL(true weights || model's weights), the part of the NLL
  gap that the mode weights alone explain (the gap is KL(p || model), at least the KL of the regions'
  weights), and the total-variation distance (0 = the truth, 1 = disjoint); log sum M is a second, independent estimate of log Z that misses the
  mass far from every component (so it should sit at or below AIS's).
- nce: its learned log Z (the last log row's) against AIS's.
Writes benchmarks/results/objectives_vector.md (objectives_vector_quick.md with --quick), rewritten after
every run (runs not yet done read "not run"), and the raw numbers next to it (.json).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import shlex
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ebmlab  # noqa: E402

OBJECTIVES = ("cd", "dsm", "ssm", "nce")
# peers' own losses (peers/objective_runners.py) on the shared raw MLP, ebmlab's vector-preset batch / lr / schedule /
# noise level / noise ratio for that objective: rows "<peer>:<objective>" (--objectives)
PEER_ROWS = ("ebmkit:dsm", "torchebm:dsm", "ebmkit:ssm", "torchebm:ssm", "ebmkit:nce")
WEIGHTS = (0.45, 0.30, 0.15, 0.10)
RADIUS = 3.0                      # distance of each mean from the origin (means on orthonormal directions)
SD_RANGE = (0.35, 0.9)            # per-axis standard deviations, log-uniform
N_TRAIN, N_TEST = 20000, 5000
IS_WIDEN = 1.5                    # importance proposal: the component's covariance x this


def mixture(d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(means [K, d], covariances [K, d, d], weights [K]) of the d-dimensional set."""
    g = np.random.default_rng(100 + d)
    k = len(WEIGHTS)
    q, _ = np.linalg.qr(g.normal(size=(d, k)))          # d x K, orthonormal columns
    means = RADIUS * q.T
    covs = []
    for _ in range(k):
        rot, _ = np.linalg.qr(g.normal(size=(d, d)))
        sd = np.exp(g.uniform(math.log(SD_RANGE[0]), math.log(SD_RANGE[1]), d))
        covs.append(rot @ np.diag(sd ** 2) @ rot.T)
    return means, np.array(covs), np.array(WEIGHTS, dtype=float)


def draw(d: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(points [n, d] float32, their component [n]) drawn from the mixture with ``seed``."""
    m, c, w = mixture(d)
    g = np.random.default_rng(seed)
    k = g.choice(len(w), n, p=w)
    x = m[k] + np.einsum("nij,nj->ni", np.linalg.cholesky(c)[k], g.normal(size=(n, d)))
    return x.astype(np.float32), k


def components(d: int) -> torch.distributions.MultivariateNormal:
    m, c, _ = mixture(d)
    return torch.distributions.MultivariateNormal(torch.tensor(m), torch.tensor(c))


def true_log_density(d: int, x: torch.Tensor) -> torch.Tensor:
    """log p(x) of the mixture, float64, [n]."""
    _, _, w = mixture(d)
    comp = components(d).log_prob(x.double()[:, None, :])            # [n, K]
    return torch.logsumexp(comp + torch.tensor(w).log(), dim=1)


def region(d: int, x: torch.Tensor) -> torch.Tensor:
    """The component the true mixture gives the highest posterior to, [n] (the regions partition R^d)."""
    _, _, w = mixture(d)
    return (components(d).log_prob(x.double()[:, None, :]) + torch.tensor(w).log()).argmax(1)


def true_nll(d: int, x: np.ndarray) -> float:
    return float(-true_log_density(d, torch.from_numpy(x)).mean())


@torch.no_grad()
def f_of(model, x: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """The model's log unnormalised density of x (float64 out), in chunks."""
    return torch.cat([model.log_density(x[i:i + chunk].float()).double() for i in range(0, x.shape[0], chunk)])


def mode_masses(model, d: int, n: int, seed: int) -> dict:
    """Importance-sampling estimate of the model's mass in each true component's region (module docstring)."""
    m, c, _ = mixture(d)
    g = torch.Generator().manual_seed(seed)
    log_m, ess = [], []
    for k in range(len(WEIGHTS)):
        chol = torch.linalg.cholesky(torch.tensor(c[k]) * IS_WIDEN)
        z = torch.randn(n, d, generator=g, dtype=torch.float64)
        x = torch.tensor(m[k]) + z @ chol.T
        q = torch.distributions.MultivariateNormal(torch.tensor(m[k]), scale_tril=chol)
        lw = f_of(model, x) - q.log_prob(x)
        lw = torch.where(region(d, x) == k, lw, torch.full_like(lw, -math.inf))
        lw = torch.where(torch.isnan(lw), torch.full_like(lw, -math.inf), lw)
        log_m.append(float(torch.logsumexp(lw, 0) - math.log(n)))
        wn = torch.softmax(lw, 0)
        ess.append(float(1.0 / (wn ** 2).sum()) if torch.isfinite(lw).any() else 0.0)
    log_m_t = torch.tensor(log_m, dtype=torch.float64)
    weights = torch.softmax(log_m_t, 0).tolist()
    return {"log_mass": log_m, "weights": weights, "log_z_is": float(torch.logsumexp(log_m_t, 0)), "ess": ess,
            "tv": 0.5 * sum(abs(a - b) for a, b in zip(weights, WEIGHTS)),
            "kl": sum(w * math.log(w / max(v, 1e-300)) for w, v in zip(WEIGHTS, weights))}


def ais(model, x_ref: torch.Tensor, seed: int, n_temps: int | None) -> dict:
    kw = {} if n_temps is None else {"n_temps": n_temps}
    t0 = time.process_time()
    est = ebmlab.log_z(model, method="ais", x_ref=x_ref, generator=torch.Generator().manual_seed(seed), **kw)
    return {"value": est.value, "stderr": est.stderr, "upper": est.extras.get("upper", math.nan),
            "ess": est.extras["ess"], "warning": est.extras.get("warning"), "cpu": time.process_time() - t0}


def run_cell(d: int, objective: str, steps: int, seed: int, n_temps: int | None, is_samples: int) -> dict:
    """One run: train, then AIS twice and the mode masses. A failing run gives {"error": ...}."""
    torch.set_num_threads(1)
    try:
        train, _ = draw(d, N_TRAIN, 1)
        test, _ = draw(d, N_TEST, 2)
        cpu0 = time.process_time()
        if ":" in objective:        # a peer row
            from ebmlab.training.presets import resolve_config
            from peers import objective_runners
            peer, obj = objective.split(":")
            c = resolve_config("<array>", {"preset": "vector", "objective": obj})
            net, _, extra = objective_runners.train(
                peer, obj, torch.from_numpy(train), steps, seed, batch_size=c.batch_size, lr=c.lr,
                lr_min_factor=c.lr_min_factor, sigma=c.dsm_sigmas[0], ratio=c.nce_ratio, features=c.net_features)
            res = {"cpu": time.process_time() - cpu0, "status": "finished", "step": steps}
            model = type("PeerModel", (), {"log_density": staticmethod(lambda x: net(x))})()
            model_for_ais = net
            if "log_z" in extra:
                res["log_z_learned"] = extra["log_z"]
        else:
            run = ebmlab.train("auto", train, None, steps=steps, seed=seed, objective=objective, progress=False,
                               threads=None)
            res = {"cpu": time.process_time() - cpu0, "status": run.status, "step": run.step}
            model = model_for_ais = run.model
            if objective == "nce":
                res["log_z_learned"] = run.metrics.get("log_z", math.nan)
        xt = torch.from_numpy(test)
        ft = f_of(model, xt)
        res["mean_f"] = float(ft.mean())
        if not bool(torch.isfinite(ft).all()):
            res["nonfinite"] = int((~torch.isfinite(ft)).sum())
            return res
        ref = xt[torch.randperm(N_TEST, generator=torch.Generator().manual_seed(3))[:2000]]
        cpu1 = time.process_time()
        res["ais"] = [ais(model_for_ais, ref, 10 + seed, n_temps), ais(model_for_ais, ref, 20 + seed, n_temps)]
        res["modes"] = mode_masses(model, d, is_samples, 30 + seed)
        res["eval_cpu"] = time.process_time() - cpu1
        res["nll"] = -res["mean_f"] + res["ais"][0]["value"]
        return res
    except Exception as e:  # noqa: BLE001 - one failing run must not sink the table
        traceback.print_exc()
        return {"error": f"{type(e).__name__}: {e}"[:120]}


def median(values: list[float]) -> float:
    v = sorted(values)
    k = len(v) // 2
    return v[k] if len(v) % 2 else 0.5 * (v[k - 1] + v[k])


def gap(res: dict, true: float) -> float:
    return res["nll"] - true if "nll" in res else math.inf


def cell(res: dict, true: float) -> str:
    if "error" in res:
        return f"error: {res['error']}"
    if "nll" not in res:
        return f"f not finite on {res.get('nonfinite', '?')} test points ({res.get('status')}, step {res.get('step')})"
    a, b = res["ais"]
    s = f"{gap(res, true):+.3f} (AIS runs differ {abs(a['value'] - b['value']):.3f}"
    if res.get("status") != "finished":
        s += f", training {res.get('status')} at step {res.get('step')}"
    if a.get("warning") or b.get("warning"):
        s += ", degenerate AIS weights"
    return s + ")"


def versions() -> str:
    out = [f"torch {torch.__version__}", f"python {platform.python_version()}", f"numpy {np.__version__}"]
    out.append(f"ebmlab {ebmlab.__version__}")
    return ", ".join(out)


def report(results: dict, dims: list[int], seeds: list[int], trues: dict, args, command: str, total: float,
           load: str) -> str:
    head = ["| objective | " + " | ".join(f"d = {d}: NLL gap, median (per seed)" for d in dims) + " | "
            + " | ".join(f"d = {d}: KL of the mode weights, median (per seed)" for d in dims) + " |",
            "|---|" + "---|" * (2 * len(dims))]
    head.append("| true density | " + " | ".join(f"NLL {trues[d]:.4f}" for d in dims) + " | "
                + " | ".join("0" for _ in dims) + " |")
    for obj in args.objectives:
        cells, tvs = [], []
        for d in dims:
            rs = [results.get((d, obj, s), {"error": "not run"}) for s in seeds]
            gaps = [gap(r, trues[d]) for r in rs]
            cells.append(f"**{median(gaps):+.3f}** (" + " / ".join(f"{g:+.3f}" for g in gaps) + ")")
            t = [r["modes"]["kl"] if "modes" in r else math.inf for r in rs]
            tvs.append(f"**{median(t):.3f}** (" + " / ".join(f"{x:.3f}" for x in t) + ")")
        head.append(f"| {obj} | " + " | ".join(cells) + " | " + " | ".join(tvs) + " |")
    detail = ["| d | objective | seed | NLL gap (AIS 1) | AIS 1 log Z ± se | AIS 2 log Z ± se | reverse (upper) | "
              "AIS ESS | IS log Z (log sum M) | model's mode weights (IS; truth "
              + " / ".join(f"{w:.2f}" for w in WEIGHTS) + ") | TV / KL of the weights | IS ESS per mode | nce learned log Z | train CPU-s | eval CPU-s |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in dims:
        for obj in args.objectives:
            for s in seeds:
                r = results.get((d, obj, s), {"error": "not run"})
                if "nll" not in r:
                    detail.append(f"| {d} | {obj} | {s} | {cell(r, trues[d])} |" + " |" * 11
                                  + f" {r.get('cpu', math.nan):.0f} | |")
                    continue
                a, b = r["ais"]
                mo = r["modes"]
                detail.append(
                    f"| {d} | {obj} | {s} | {gap(r, trues[d]):+.3f} | {a['value']:.3f} ± {a['stderr']:.3f} | "
                    f"{b['value']:.3f} ± {b['stderr']:.3f} | {a['upper']:.3f} | {a['ess']:.0f} / {b['ess']:.0f} | "
                    f"{mo['log_z_is']:.3f} | " + " / ".join(f"{w:.3f}" for w in mo["weights"]) + " | "
                    f"{mo['tv']:.3f} / {mo['kl']:.3f} | "
                    + " / ".join(f"{e:.0f}" for e in mo["ess"]) + " | "
                    + (f"{r['log_z_learned']:.3f}" if "log_z_learned" in r else "") + " | "
                    f"{r['cpu']:.0f} | {r['eval_cpu']:.0f} |")
    return f"""# Training objectives on vector data (d = {', '.join(map(str, dims))}){' (quick)' if args.quick else ''}

- command: `{command}` (with `.venv-bench/bin/python`, one torch thread, `OMP_NUM_THREADS=1 nice -n 5`)
- date: {_dt.datetime.now().isoformat(timespec='seconds')}; nproc {os.cpu_count()} (shared: {load}); total wall time {total / 60:.1f} min
- versions: {versions()}
- data: a mixture of 4 Gaussians (weights {' / '.join(map(str, WEIGHTS))}, means at distance {RADIUS} from the origin on
  orthonormal directions, random rotations, sd log-uniform in {list(SD_RANGE)}), {N_TRAIN} training / {N_TEST} test points
  (seeds 1 / 2; the mixture from seed 100 + d): `benchmarks/objectives_vector.py` `mixture` / `draw`
- runs: `ebmlab.train("auto", train, None, steps={args.steps}, seed=s, objective=...)`, seeds {', '.join(map(str, seeds))}: the
  `vector` preset (d > 3) with each objective's defaults on it
- AIS: `ebmlab.log_z(model, method="ais", x_ref=2000 test points, generator=seed)`, 256 chains x {args.ais_temps} temperatures,
  twice (generator seeds 10 + s and 20 + s); mode masses: {args.is_samples} importance draws per component

Gap cells: **test NLL minus the true density's, in nats** (0 = the truth, lower is better; the NLL uses the
first AIS run's forward log Z, a stochastic lower bound, so the gap is one too). Mode-weight cells:
KL(true weights || the model's weights of the four components' regions, by importance sampling), in nats:
the part of the NLL gap that the mode weights alone account for (0 = the truth). Both are estimates; the per-run table says how well each is resolved.

{chr(10).join(head)}

Per run:

{chr(10).join(detail)}

{NOTES}"""


NOTES = """Notes
- The NLL gap estimates KL(p || model) (a mean over the test points); the KL of the mode weights is the KL between the two
  distributions over the four regions, which by the data-processing inequality is at most the full KL: the
  rest of a gap is the modes' shapes (positions, covariances, tails).
- AIS columns: the forward value (a stochastic lower bound) ± its delta-method stderr, for two runs with
  independent generators; "reverse" starts from 256 of the 2000 test points (the rest fit the base), which are not exact samples of a trained
  model, so it is a guide and can fall below the forward value. "IS log Z" is a third estimate from the
  mode-mass draws (misses mass far from every component): where the three agree, log Z is known to about
  their spread.
- IS ESS per mode: effective sample size of the importance weights out of the draws per component; a low one
  (a model's mode shifted or shaped unlike the true one) makes that mode's weight the least certain number.
- Each run trains in this process with one torch thread; CPU-s are process time on a shared 2-core
  machine (the lead's probes ran alongside), so they compare objectives only roughly.
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dims", default="8,16", help="comma list of dimensions (> 3), default 8,16")
    ap.add_argument("--seeds", default="0,1,2", help="comma list of training seeds")
    ap.add_argument("--objectives", default=",".join(OBJECTIVES))
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--ais-temps", type=int, default=2000,
                    help="AIS temperatures (default 2000; ebmlab's own default is 500)")
    ap.add_argument("--is-samples", type=int, default=20000, help="importance draws per component")
    ap.add_argument("--quick", action="store_true", help="d 8, 200 steps, seed 0, 100 AIS temperatures (unless given)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.dims, args.seeds, args.steps = "8", "0", 200
        if "--ais-temps" not in (argv if argv is not None else sys.argv[1:]):
            args.ais_temps = 100
        args.is_samples = min(args.is_samples, 4000)
    try:
        dims = [int(x) for x in args.dims.split(",")]
        seeds = [int(x) for x in args.seeds.split(",")]
    except ValueError:
        ap.error("--dims and --seeds want comma lists of integers")
    if any(d <= 3 for d in dims):
        ap.error("--dims: vector data here means d > 3 (2-D: benchmarks/objectives2d.py)")
    if len(set(seeds)) != len(seeds):
        ap.error(f"--seeds has a repeated seed: {args.seeds!r}")
    args.objectives = [o.strip() for o in args.objectives.split(",")]
    for o in args.objectives:
        if o not in OBJECTIVES + PEER_ROWS:
            ap.error(f"unknown objective {o!r}; choose from {', '.join(OBJECTIVES + PEER_ROWS)}")
    torch.set_num_threads(1)
    out = Path(args.out) if args.out else HERE / "results" / (
        "objectives_vector_quick.md" if args.quick else "objectives_vector.md")
    command = "python benchmarks/objectives_vector.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    print(f"# {command}", flush=True)
    load = "load average at start " + " / ".join(f"{x:.1f}" for x in os.getloadavg())
    t_start = time.perf_counter()
    trues = {d: true_nll(d, draw(d, N_TEST, 2)[0]) for d in dims}
    results: dict[tuple, dict] = {}
    for d in dims:
        for s in seeds:
            for obj in args.objectives:
                r = run_cell(d, obj, args.steps, s, args.ais_temps, args.is_samples)
                results[(d, obj, s)] = r
                extra = ""
                if "modes" in r:
                    extra = (f" TV {r['modes']['tv']:.3f} w " + "/".join(f"{w:.2f}" for w in r["modes"]["weights"])
                             + f" logZ ais {r['ais'][0]['value']:.3f} {r['ais'][1]['value']:.3f}"
                             f" is {r['modes']['log_z_is']:.3f}")
                    if "log_z_learned" in r:
                        extra += f" learned {r['log_z_learned']:.3f}"
                print(f"d {d:3d} {obj:4s} seed {s} {cell(r, trues[d])}{extra} "
                      f"({r.get('cpu', math.nan):.0f} + {r.get('eval_cpu', math.nan):.0f} CPU-s)", flush=True)
                # the report so far after every run (cells not yet run read "not run"), and the raw numbers
                md = report(results, dims, seeds, trues, args, command, time.perf_counter() - t_start, load)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(md)
                out.with_suffix(".json").write_text(json.dumps(
                    {"command": command, "true_nll": trues,
                     "runs": [{"d": k[0], "objective": k[1], "seed": k[2], **v} for k, v in results.items()]},
                    indent=1, default=str))
    print(md)
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
