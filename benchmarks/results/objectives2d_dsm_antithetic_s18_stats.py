"""Reads objectives2d_dsm_antithetic_s18.log and applies the rule written at its top (session 18, issue 15)."""
import collections, math, re, statistics, sys
from pathlib import Path

LOG = Path(__file__).with_name("objectives2d_dsm_antithetic_s18.log")
cells = collections.defaultdict(dict)           # (set, mode) -> {seed: gap}
for line in LOG.read_text().splitlines():
    m = re.match(r"^(\S+)\s+dsm \{\} (plain|anti|two) seed (\d+) ([+-]\d+\.\d+)", line)
    if m:
        cells[(m.group(1), m.group(2))][int(m.group(3))] = float(m.group(4))


def paired(s, mode="anti"):
    a, d = cells[(s, mode)], cells[(s, "plain")]
    seeds = sorted(set(a) & set(d))
    diff = [a[k] - d[k] for k in seeds]
    if len(diff) < 2:
        return seeds, float("nan"), float("nan")
    return seeds, statistics.mean(diff), statistics.stdev(diff) / math.sqrt(len(diff))


def med(s, mode, seeds):
    return statistics.median(cells[(s, mode)][k] for k in seeds)


PEERS = {"eight-gaussians": .069, "swiss-roll": .043, "pinwheel": .116, "two-spirals": .079}
print("stage 1 (tuning sets): A - D paired")
better, worse, high = 0, [], []
for s in ["eight-gaussians", "swiss-roll", "pinwheel", "two-spirals"]:
    seeds, m, se = paired(s)
    if not seeds:
        continue
    better += m <= 0
    if m > se:
        worse.append(s)
    if s == "eight-gaussians":
        high = [k for k in seeds if cells[(s, "anti")][k] > 0.3]
    print(f"  {s:16s} seeds {seeds[0]}-{seeds[-1]} (n={len(seeds)}): {m:+.4f} +- {se:.4f} ({m / se:+.1f} SE); "
          f"medians A {med(s, 'anti', seeds):.4f} D {med(s, 'plain', seeds):.4f}; best peer (nine seeds) {PEERS[s]:.3f}")
print(f"  A - D <= 0 on {better} of 4; worse by > 1 SE: {worse or 'none'}; eight-gaussians A cells > 0.3: {high or 'none'}")
stage1 = better >= 3 and not worse and not high
print(f"  stage 1 {'PASS' if stage1 else 'FAIL'}")
print("stage 2 (check sets, not tuned): A - D paired")
worse2 = []
for s in ["moons", "checkerboard", "rings", "ring12w", "spiral10"]:
    seeds, m, se = paired(s)
    if not seeds:
        print(f"  {s:16s} not run")
        worse2.append(s + " (not run)")
        continue
    if m > se:
        worse2.append(s)
    print(f"  {s:16s} seeds {seeds[0]}-{seeds[-1]} (n={len(seeds)}): {m:+.4f} +- {se:.4f} ({m / se:+.1f} SE); "
          f"medians A {med(s, 'anti', seeds):.4f} D {med(s, 'plain', seeds):.4f}")
print(f"  stage 2 {'PASS' if not worse2 else 'FAIL: ' + ', '.join(worse2)}")
print("attribution (information): T (two independent noise draws) - D paired")
for s in ["eight-gaussians", "swiss-roll", "pinwheel", "two-spirals"]:
    seeds, m, se = paired(s, "two")
    if seeds:
        print(f"  {s:16s} n={len(seeds)}: {m:+.4f} +- {se:.4f}; medians T {med(s, 'two', seeds):.4f} "
              f"D {med(s, 'plain', seeds):.4f} A {med(s, 'anti', seeds):.4f}")
print(f"adopt: {stage1 and not worse2}")
