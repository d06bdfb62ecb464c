"""AIS validation: log Z with the default budget on targets whose log Z is known exactly.

Gaussians of dimension 2, 10, 50, 100 (variances 0.1..10, random rotation, mean offset) and a
well-separated two-mode mixture; x_ref are exact samples of each target. Prints the table and
writes benchmarks/results/ais_validation.md with the command and the machine.

    python benchmarks/ais_validation.py [--seed S] [--threads T]
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

from ebmlab.estimate.ais import DEFAULT_N_CHAINS, DEFAULT_N_TEMPS, DEFAULT_STEPS_PER_TEMP, ais_log_z
from ebmlab.estimate.curse import gaussian_target

# the acceptance thresholds (nats)
TOLERANCE = {2: 0.1, 10: 0.1, 50: 1.0, 100: 1.0, "mixture": 0.1, "hard": 1.0}


def mixture_target(d: int = 2, seed: int = 0, n_samples: int = 2000, sep: float = 4.0,
                   weight: float = 0.3, offset: float = 2.0):
    """0.3 N(-4 e1, I) + 0.7 N(+4 e1, 0.49 I), unnormalised by ``offset`` (so log Z = offset):
    8 standard deviations apart, unequal weights, so the chains cannot cross between modes."""
    g = torch.Generator().manual_seed(seed)
    m1, m2 = torch.zeros(d), torch.zeros(d)
    m1[0], m2[0] = -sep, sep
    s1, s2 = 1.0, 0.7
    n1 = torch.distributions.Normal(m1, s1)
    n2 = torch.distributions.Normal(m2, s2)

    def f(x):
        return torch.logaddexp(math.log(weight) + n1.log_prob(x).sum(1),
                               math.log(1 - weight) + n2.log_prob(x).sum(1)) + offset

    pick = torch.rand(n_samples, generator=g) < weight
    z = torch.randn(n_samples, d, generator=g)
    return f, offset, torch.where(pick[:, None], m1 + s1 * z, m2 + s2 * z)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (1: the batches are small, extra threads only contend)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "ais_validation.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    targets = [(f"Gaussian d={d}", d, *_gauss(d, args.seed)) for d in (2, 10, 50, 100)]
    targets.append(("two-mode mixture d=2", "mixture", *mixture_target(2, args.seed)))
    # a harder, supplementary case outside the set: 150 points are too few for a full
    # covariance in d = 100, so the base is diagonal and misses the rotation; AIS must do the work
    t100 = gaussian_target(100, args.seed)
    targets.append(("Gaussian d=100, 150 x_ref (diagonal base)", "hard", t100.f, t100.log_z, t100.samples[:150]))
    rows = []
    for name, key, f, log_z, x_ref in targets:
        t0 = time.perf_counter()
        est = ais_log_z(f, x_ref, generator=torch.Generator().manual_seed(args.seed))
        sec = time.perf_counter() - t0
        err = est.value - log_z
        rows.append((name, log_z, est.value, est.stderr, err, est.extras["upper"], est.extras["upper_stderr"],
                     est.extras["ess"], est.extras["acceptance"], sec, abs(err) <= TOLERANCE[key]))
        print(f"{name:22s} true {log_z:9.4f}  est {est.value:9.4f} ± {est.stderr:.4f}  err {err:+.4f}  "
              f"upper {est.extras['upper']:9.4f} ± {est.extras['upper_stderr']:.4f}  {sec:5.1f} s", flush=True)

    head = ("| target | true log Z | AIS estimate | stderr | error | error/stderr | upper (reverse) | "
            "upper stderr | ESS | acceptance | time (s) | within tolerance |")
    lines = [head, "|" + "---|" * 12]
    for name, lz, v, se, err, up, use, ess, acc, sec, ok in rows:
        lines.append(f"| {name} | {lz:.4f} | {v:.4f} | {se:.4f} | {err:+.4f} | {err / se:+.1f} | {up:.4f} | "
                     f"{use:.4f} | {ess:.0f} | {acc:.2f} | {sec:.1f} | {'yes' if ok else 'NO'} (±{TOLERANCE[_key(name)]}) |")
    machine = (f"{platform.processor() or platform.machine()}, nproc = {os.cpu_count()}, "
               f"torch {torch.__version__}, torch threads = {torch.get_num_threads()}, "
               f"Python {platform.python_version()}, load average at start {os.getloadavg()[0]:.1f}")
    text = "\n".join([
        "# AIS validation",
        "",
        "Command: `" + " ".join(["python benchmarks/ais_validation.py", *(argv if argv is not None else sys.argv[1:])]) + "`",
        f"Machine: {machine}",
        "",
        f"Default budget: {DEFAULT_N_CHAINS} chains, {DEFAULT_N_TEMPS} intermediate temperatures, "
        f"{DEFAULT_STEPS_PER_TEMP} MALA step each (step adapted toward 0.574 acceptance), "
        "forward + reverse; Gaussian base fitted to x_ref (2000 exact samples of each target; "
        "the reverse chains start from a held-out half of them).",
        "",
        "Targets: Gaussians with variances log-spaced in [0.1, 10], a random rotation, mean ≈ 2 per "
        "axis and f offset by 1.5 nats (`ebmlab.estimate.curse.gaussian_target`); the mixture is "
        "0.3 N(-4 e1, I) + 0.7 N(4 e1, 0.49 I) offset by 2 nats. The forward estimate is a stochastic "
        "lower bound and the reverse one a stochastic upper bound, so together they bracket log Z.",
        "Tolerances are the issue's: 0.1 nats for d ≤ 10 and the mixture, 1 nat at d = 50 and 100.",
        "The last row is a harder supplementary case (not in the issue's set): only 150 x_ref points in "
        "d = 100, so the base is diagonal and misses the target's rotation; watch its ESS.",
        "",
        *lines,
        "",
    ])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")


def _gauss(d: int, seed: int):
    t = gaussian_target(d, seed)
    return t.f, t.log_z, t.samples


def _key(name: str):
    if "diagonal" in name:
        return "hard"
    return "mixture" if "mixture" in name else int(name.split("=")[1])


if __name__ == "__main__":
    main()
