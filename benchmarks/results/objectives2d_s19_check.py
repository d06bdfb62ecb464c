"""Pool the per-seed cells of objectives2d.py result files and read issue 15's 2-D target (session 19).

    python benchmarks/results/objectives2d_s19_check.py FILE [FILE ...] [--against OLD]

Each FILE is an objectives2d.py output run with --seeds: its header names the seeds, each row's cell lists one
value per seed. Cells of the same (library, objective, set, seed) found in two files must agree (else the script
says so and stops). Prints, per objective and set, ebmlab's and each peer's median and mean +- SE over the seeds,
and whether ebmlab's median is <= the best peer's at 3 decimals (the reading fixed in objectives2d_s19.log).
--against OLD: also list the cells of OLD (same seeds) that differ from FILE's (the reproduction check).
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

VALUE = re.compile(r"([+-]\d+\.\d+)(?: \(log Z [^)]*\))?")


def median(v: list[float]) -> float:
    s = sorted(v)
    k = len(s) // 2
    return s[k] if len(s) % 2 else 0.5 * (s[k - 1] + s[k])


def mean_se(v: list[float]) -> tuple[float, float]:
    m = sum(v) / len(v)
    if len(v) < 2:
        return m, float("nan")
    var = sum((x - m) ** 2 for x in v) / (len(v) - 1)
    return m, math.sqrt(var / len(v))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--against", type=Path, action="append", default=[])
    args = ap.parse_args()
    pooled: dict[tuple[str, str, str, int], float] = {}
    for f in args.files:
        text = f.read_text()
        cells = parse_table_part(f, text)
        for k, v in cells.items():
            if k in pooled and pooled[k] != v:
                sys.exit(f"{f}: {k} is {v} here and {pooled[k]} in an earlier file")
            pooled[k] = v
    for old in args.against:
        prev = parse_table_part(old, old.read_text())
        same = [k for k in prev if k in pooled and prev[k] == pooled[k]]
        diff = [k for k in prev if k in pooled and prev[k] != pooled[k]]
        print(f"against {old.name}: {len(same)} shared cells repeat, {len(diff)} differ")
        for k in sorted(diff):
            print(f"  {k[0]} {k[1]} {k[2]} seed {k[3]}: {prev[k]:+.3f} then, {pooled[k]:+.3f} now")
    objectives = ["dsm", "ssm", "nce"]
    sets = list(dict.fromkeys(k[2] for k in pooled))        # in the order the files list them
    print("\n| objective | set | seeds | ebmlab median / mean ± SE | best peer: median / mean ± SE | "
          "ebmlab - best peer (means, Welch SE) | target (medians) |")
    print("|---|---|---:|---|---|---|---|")
    met_all = True
    for obj in objectives:
        for name in sets:
            libs = sorted({k[0] for k in pooled if k[1] == obj and k[2] == name})
            if "ebmlab" not in libs or len(libs) < 2:
                continue
            seeds = sorted({k[3] for k in pooled if k[1] == obj and k[2] == name and k[0] == "ebmlab"})
            for lib in libs:        # the same seeds for everyone, or the comparison is not like for like
                have = sorted({k[3] for k in pooled if k[:3] == (lib, obj, name)})
                seeds = [s for s in seeds if s in have]
            vals = {lib: [pooled[(lib, obj, name, s)] for s in seeds] for lib in libs}
            peers = [lib for lib in libs if lib != "ebmlab"]
            best = min(peers, key=lambda lib: (round(median(vals[lib]), 3), lib))
            e_med, b_med = round(median(vals["ebmlab"]), 3), round(median(vals[best]), 3)
            (em, es), (bm, bs) = mean_se(vals["ebmlab"]), mean_se(vals[best])
            met = e_med <= b_med
            met_all &= met
            print(f"| {obj} | {name} | {len(seeds)} | {median(vals['ebmlab']):.3f} / {em:.3f} ± {es:.3f} | "
                  f"{best} {median(vals[best]):.3f} / {bm:.3f} ± {bs:.3f} | {em - bm:+.3f} ± "
                  f"{math.sqrt(es ** 2 + bs ** 2):.3f} | {'met' if met else '**behind**'} |")
    print(f"\nevery cell met: {met_all}")
    return 0


def parse_table_part(path: Path, text: str) -> dict[tuple[str, str, str, int], float]:
    """The NLL cells of an objectives2d.py output: (library, objective, set, seed) -> NLL above the truth. Only the
    text before the CPU-seconds table is read (its rows have the same shape as the NLL rows)."""
    cut = text.find("CPU seconds")
    text = text if cut < 0 else text[:cut]
    m = re.search(r"training seeds? ([\d, ]+);", text)
    if not m:
        sys.exit(f"{path}: no 'training seeds' line in the header")
    seeds = [int(s) for s in m.group(1).replace(" ", "").split(",") if s]
    cells: dict[tuple[str, str, str, int], float] = {}
    sets: list[str] = []
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        parts = [p.strip() for p in line.strip().strip("|").split("|")]
        if parts[:2] == ["library", "objective"]:
            sets = parts[2:]
            continue
        if not sets or len(parts) != len(sets) + 2 or parts[0] == "true density" or parts[0].startswith("---"):
            continue
        lib, obj = parts[0], parts[1]
        for name, cell in zip(sets, parts[2:]):
            body = cell.split(" (med ")[0]
            values = [VALUE.fullmatch(v.strip()) for v in body.split(" / ")]
            if len(values) != len(seeds) or not all(values):
                continue            # an error or diverged cell: left out (the seed count in the output shows it)
            for seed, v in zip(seeds, values):
                cells[(lib, obj, name, seed)] = float(v.group(1))
    return cells


if __name__ == "__main__":
    sys.exit(main())
