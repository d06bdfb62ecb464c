"""Composition is exact in 2-D: quadrature of a composed model vs the renormalised product/mixture,
and samples drawn from the composed model by ebmlab's own sampler vs the composed density.

For two trained 2-D run directories A and B (default: two of the lead's 3000-step runs):
  * AND: log p_AND = f_A + f_B - log Z_AND (Z_AND by quadrature over the intersection of supports);
    compared on the grid with log(p_A * p_B) renormalised — the two must agree to float32 precision.
  * OR (normalised mixture, log_z given): integrates to 1.
  * samples: 4000 chains of MH with uniform jumps over the composed support, 400 steps; the mean
    exact NLL of the samples must match the composed density's entropy H = -E_p[log p] (by
    quadrature) within 0.05 nats (and within 5 standard errors of the sample mean).

usage: python benchmarks/compose2d.py [--runs A B] [--out benchmarks/results/compose2d.md]
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

import ebmlab
from ebmlab.models.compose import Mixture, Product
from ebmlab.estimate.partition import quadrature_grid
from ebmlab.samplers.mh import MetropolisHastings
from ebmlab.samplers.proposals import UniformJumpProposal
from ebmlab.samplers.run import run_chains


def grid_log_p(model, bounds, n=400):
    pts, vol = quadrature_grid(bounds, n)
    with torch.no_grad():
        f = model.log_density(pts.float()).double()
    log_z = torch.logsumexp(f[torch.isfinite(f)], 0) + math.log(vol)
    return pts, f - log_z, vol


def ensure_run(path: str, steps: int) -> str:
    """Use the run directory if it exists; else train the built-in set named by its last part there."""
    if Path(path, "checkpoints", "LATEST").exists():
        return path
    from ebmlab.training.api import train
    name = Path(path).name
    out = Path("runs") / f"compose2d-{name}-{steps}"
    if not Path(out, "checkpoints", "LATEST").exists():
        train("auto", name, out, force=True, steps=steps, progress=False, threads=None)
    return str(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", nargs=2, default=["/tmp/rec/moons", "/tmp/rec/eight-gaussians"])
    ap.add_argument("--out", default=None, help="default benchmarks/results/compose2d.md "
                                                "(compose2d_quick.md with --quick, so a quick run never overwrites the full one)")
    ap.add_argument("--chains", type=int, default=4000)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--quick", action="store_true", help="1000 chains; 300-step models if --runs are missing")
    args = ap.parse_args()
    if args.out is None:
        args.out = "benchmarks/results/compose2d_quick.md" if args.quick else "benchmarks/results/compose2d.md"
    torch.set_num_threads(1)
    t0 = time.time()
    if args.quick:
        args.chains = 1000
    runs = [ensure_run(r, 300 if args.quick else 3000) for r in args.runs]
    a, b = (ebmlab.load(r) for r in runs)
    rows = []
    prod = Product([a, b], [1.0, 1.0])
    box = prod.bounds.tolist()
    pts, log_p_and, vol = grid_log_p(prod, box)
    # the same product built by hand from A's and B's own normalised densities on the grid
    _, la, _ = grid_log_p(a, box)
    _, lb, _ = grid_log_p(b, box)
    hand = la + lb
    hand = hand - (torch.logsumexp(hand[torch.isfinite(hand)], 0) + math.log(vol))
    ok = torch.isfinite(log_p_and)
    max_err = float((log_p_and[ok] - hand[ok]).abs().max())
    rows.append(("AND: max abs(log p_AND - renormalised log(p_A p_B)) on the grid (f is float32)", f"{max_err:.2e}"))
    za = ebmlab.log_z(a, bounds=a.bounds.tolist()).value
    zb = ebmlab.log_z(b, bounds=b.bounds.tolist()).value
    mix = Mixture([a, b], [0.3, 0.7], log_z=[za, zb])
    mix_mass = float(ebmlab.log_z(mix, bounds=mix.bounds.tolist()).value)
    rows.append(("OR (normalised mixture 0.3/0.7): log of its total mass by quadrature", f"{mix_mass:+.2e}"))
    # samples from AND by ebmlab's sampler, checked against the composed density's entropy
    p = log_p_and.exp()
    fin = torch.isfinite(log_p_and)
    entropy = float(-(p[fin] * log_p_and[fin]).sum() * vol)
    g = torch.Generator().manual_seed(0)
    lo, hi = prod.bounds[:, 0], prod.bounds[:, 1]
    x0 = lo + (hi - lo) * torch.rand(args.chains, 2, generator=g)
    width = float((hi - lo).mean())
    kernel = MetropolisHastings(prod, UniformJumpProposal(box, jump_prob=0.2, local_scale=0.05 * width))
    x, diag = run_chains(kernel, x0, args.steps, g)
    log_z_and = float(ebmlab.log_z(prod, bounds=box).value)
    with torch.no_grad():
        nll = -(prod.log_density(x).double() - log_z_and)
    se = float(nll.std() / math.sqrt(nll.numel()))
    gap = float(nll.mean()) - entropy
    rows.append(("AND samples: mean exact NLL of samples", f"{float(nll.mean()):.4f} ± {se:.4f}"))
    rows.append(("AND density entropy H (quadrature)", f"{entropy:.4f}"))
    rows.append(("difference (target: within 0.05 nats and 5 se)", f"{gap:+.4f} ({gap / se:+.1f} se)"))
    rows.append(("sampler acceptance", f"{float(diag.acceptance_rate.mean()):.2f}"))
    cmd = "python " + " ".join(sys.argv)
    md = [f"# Composition in 2-D is exact\n\nCommand: `{cmd}`; components {args.runs[0]} AND {args.runs[1]} "
          f"(3000-step default-recipe runs); {args.chains} chains x {args.steps} MH steps; {time.time() - t0:.0f} s.\n",
          "| check | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    text = "\n".join(md) + "\n"
    print(text)
    Path(args.out).write_text(text)
    return 0 if abs(gap) < 0.05 and max_err < 1e-4 else 1   # 1e-4: float32 network outputs


if __name__ == "__main__":
    sys.exit(main())
