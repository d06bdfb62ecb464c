"""Tables of objectives2d_dsm_curriculum_s14.md from its raw log and the recorded cells (issue 15, session 14).

Usage (from benchmarks/results/): python objectives2d_dsm_curriculum_s14_stats.py objectives2d_dsm_curriculum_s14.log

Per set and variant: the per-seed cells (exact test NLL above the truth, nats), median, mean +- standard error;
each variant against the default (fixed sigma 0.1): mean difference with the paired standard error (same seeds)
and Welch's. Cells of the default and of k 3 / F 0.5 not run in session 14 are copied below from the files named
beside them (3 decimals there; this log's cells have 4).
"""
import json, math, re, statistics, sys
from collections import defaultdict

SETS = ("eight-gaussians", "pinwheel", "moons", "swiss-roll", "two-spirals", "checkerboard", "rings", "ring12w",
        "spiral10")
DEFAULT, K3F05 = "default (sigma 0.1 fixed)", "k 3 / F 0.5"
# (set, variant) -> {seed: value}, with the file the cells come from
RECORDED = {
    ("eight-gaussians", DEFAULT): ("objectives2d_s12_full.md (0-2), objectives2d_dsm_eightg_seeds3to8_s13.md (3-8)",
                                   [.112, .064, .067, .119, .068, .083, .076, 1.093, .147]),
    ("pinwheel", DEFAULT): ("objectives2d_s12_full.md (0-2), objectives2d_dsm_pinwheel_seeds3to8_s13.md (3-8)",
                            [.106, .108, .120, .107, .137, .132, .110, .111, .118]),
    ("two-spirals", DEFAULT): ("objectives2d_s12_full.md (0-2), objectives2d_dsm_gap_s11.md p2 (3-8)",
                               [.080, .099, .087, .077176, .089709, .089864, .080840, .086995, .089111]),
    ("swiss-roll", DEFAULT): ("objectives2d_s12_full.md (0-2), objectives2d_dsm_gap_s11.md p2 (3-8)",
                              [.039, .092, .055, .037682, .056780, .057458, .051765, .042182, .057432]),
    ("checkerboard", DEFAULT): ("objectives2d_s12_full.md (0-2)", [.111, .132, .138]),
    ("moons", DEFAULT): ("objectives2d_s12_full.md (0-2)", [.077, .068, .069]),
    ("rings", DEFAULT): ("objectives2d_s12_full.md (0-2)", [.105, .101, .106]),
    ("eight-gaussians", K3F05): ("objectives2d_probes_s10.log run4 sig:0.3:0.5 (0-2), "
                                 "objectives2d_dsm_curriculum_seeds3to8_s13.log (3-8)",
                                 [.041, .058, .043, .0834, .0973, .0715, .1005, .0605, .1415]),
    ("pinwheel", K3F05): ("objectives2d_probes_s10.log run6/run9 sig:0.3:0.5 (0-2), "
                          "objectives2d_dsm_curriculum_seeds3to8_s13.log (3-8)",
                          [.113, .117, .117, .1077, .1261, .1336, .1096, .1114, .1326]),
}
LINE = re.compile(r"^(\S+)\s+dsm (\{.*\}) u=\S+ seed (\d+) ([+-][0-9.]+|[+-]?inf|nan)")


def label(kw: dict) -> str:
    if not kw.get("dsm_anneal_factor", 1.0) - 1.0:
        return DEFAULT
    return f"k {kw['dsm_anneal_factor']:g} / F {kw.get('dsm_anneal_until', 0.7):g}"


def main() -> None:
    cells: dict = defaultdict(dict)          # (set, variant) -> {seed: value}
    source: dict = {}
    fresh: dict = defaultdict(list)          # seeds of each key run in session 14 (this log)
    for key, (src, vals) in RECORDED.items():
        cells[key].update(enumerate(vals))
        source[key] = src
    for line in open(sys.argv[1]):
        m = LINE.match(line)
        if not m:
            continue
        key, seed, val = (m[1], label(json.loads(m[2]))), int(m[3]), float(m[4])
        if seed in cells[key] and key in RECORDED:    # a reproduction check of a recorded cell: compare, keep
            print(f"check {key[0]} {key[1]} seed {seed}: recorded {cells[key][seed]} -> rerun {val:+.4f}")
            continue
        cells[key][seed] = val
        fresh[key].append(seed)
    for key, seeds in fresh.items():
        here = f"objectives2d_dsm_curriculum_s14.log ({','.join(map(str, seeds))})"
        source[key] = f"{source[key]}, {here}" if key in source else here
    variants = sorted({v for _, v in cells}, key=lambda v: (v != DEFAULT, v))
    for s in SETS:
        print(f"\n{s}:")
        base = cells.get((s, DEFAULT), {})
        for v in variants:
            c = cells.get((s, v))
            if not c:
                continue
            xs = [c[k] for k in sorted(c)]
            se = statistics.stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else float("nan")
            print(f"  {v:26s} n={len(xs)} median {statistics.median(xs):.4f} mean {statistics.mean(xs):.4f} +- {se:.4f}"
                  f"   seeds {','.join(map(str, sorted(c)))}: {' '.join(f'{x:.3f}' for x in xs)}   [{source[(s, v)]}]")
            if v != DEFAULT and base:
                common = sorted(set(c) & set(base))
                if len(common) > 1:
                    d = [c[k] - base[k] for k in common]
                    pse = statistics.stdev(d) / math.sqrt(len(d))
                    a, b = [c[k] for k in common], [base[k] for k in common]
                    wse = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
                    md = statistics.mean(d)
                    print(f"  {'':26s} - default on seeds {common[0]}-{common[-1]} (n={len(d)}): mean {md:+.4f}, "
                          f"paired SE {pse:.4f} ({md / pse:+.1f} SE), Welch SE {wse:.4f} ({md / wse:+.1f} SE); "
                          f"medians {statistics.median(a):.4f} vs {statistics.median(b):.4f}")


PEERS = {  # best peer's median of the same objective (dsm at sigma 0.1), seeds, file
    "eight-gaussians": "ebmkit .069 / torchebm .070 (9 seeds, objectives2d_nine_seeds_s13.md)",
    "pinwheel": "ebmkit .116 / torchebm .116 (9, objectives2d_nine_seeds_s13.md)",
    "moons": "both .069 (3, objectives2d_s12_full.md)",
    "swiss-roll": "ebmkit .043 (9, objectives2d_dsm_gap_s11.md B)",
    "two-spirals": "ebmkit .079 (9, objectives2d_dsm_gap_s11.md B)",
    "checkerboard": "torchebm .154 / ebmkit .161 (3, objectives2d_s12_full.md)",
    "rings": "both .109 (3, objectives2d_s12_full.md)",
    "ring12w": "not run", "spiral10": "not run"}


def table(path: str, variant: str = K3F05) -> None:
    """One markdown row per set: default and variant (median, mean +- SE, n), variant - default, peers."""
    cells: dict = defaultdict(dict)
    for key, (_, vals) in RECORDED.items():
        cells[key].update(enumerate(vals))
    for line in open(path):
        m = LINE.match(line)
        if m and not (int(m[3]) in cells[(m[1], label(json.loads(m[2])))] and (m[1], label(json.loads(m[2]))) in RECORDED):
            cells[(m[1], label(json.loads(m[2])))][int(m[3])] = float(m[4])
    print("| set | default: median / mean ± SE (seeds) | " + variant + ": median / mean ± SE (seeds) | "
          "variant - default, same seeds: mean ± paired SE (Welch SE) | best peer's median |")
    print("|---|---|---|---|---|")
    for s in SETS:
        a, b = cells.get((s, DEFAULT), {}), cells.get((s, variant), {})
        if not a or not b:
            continue
        def cell(c):
            xs = [c[k] for k in sorted(c)]
            return (f"{statistics.median(xs):.3f} / {statistics.mean(xs):.3f} ± "
                    f"{statistics.stdev(xs) / math.sqrt(len(xs)):.3f} ({min(c)}-{max(c)})")
        common = sorted(set(a) & set(b))
        d = [b[k] - a[k] for k in common]
        pse = statistics.stdev(d) / math.sqrt(len(d))
        wse = math.sqrt(statistics.variance([b[k] for k in common]) / len(d)
                        + statistics.variance([a[k] for k in common]) / len(d))
        md = statistics.mean(d)
        print(f"| {s} | {cell(a)} | {cell(b)} | {md:+.4f} ± {pse:.4f} ({md / pse:+.1f} SE; Welch {wse:.4f}, "
              f"{md / wse:+.1f}), seeds {common[0]}-{common[-1]} | {PEERS[s]} |")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[2] == "--md":
        table(sys.argv[1])
    else:
        main()
