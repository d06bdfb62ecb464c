"""Tables of objectives2d_dsm_sigma_s15.md from its raw log, session 14's log and the recorded cells (issue 15).

Usage (from benchmarks/results/): python objectives2d_dsm_sigma_s15_stats.py objectives2d_dsm_sigma_s15.log

Cells: exact test NLL above the truth (nats), seeds 0-5. D = the 2-D dsm preset (final level 0.1, k 3, F 0.5):
its cells are session 14's (objectives2d_dsm_curriculum_s14.log, 4 decimals) and, for eight-gaussians / pinwheel,
the recorded cells below (sessions 10 / 13). Per set: each variant's cells, median, mean +- SE, and against D the
mean per-seed difference with the paired and Welch standard errors; the peers at each fixed level; then the rule
(stage 1: written at the head of the log before any run) and the preset decision (stage 2).
"""
import json, math, re, statistics, sys
from collections import defaultdict

TUNE = ("eight-gaussians", "pinwheel", "two-spirals", "swiss-roll")
CHECK = ("moons", "checkerboard", "rings", "ring12w", "spiral10")
SEEDS = range(6)
D = "D: final 0.1 (preset)"
S14 = "objectives2d_dsm_curriculum_s14.log"
D_RECORDED = {  # k 3 / F 0.5 cells not in session 14's log (objectives2d_dsm_curriculum_s14.md names the files)
    "eight-gaussians": [.041, .058, .043, .0834, .0973, .0715],   # s10 run4 (0-2), s13 seeds3to8 log (3-5)
    "pinwheel": [.113, .117, .117, .1077, .1261, .1336],          # s10 run6/run9 (0-2), s13 seeds3to8 log (3-5)
}
PEERS_01 = {  # the peers at the fixed level 0.1, seeds 0-5 (objectives2d_s12_full.md 0-2; 3-5 from the s13 / s11 files)
    "eight-gaussians": {"ebmkit": [.047, .055, .100, .043, .134, .040], "torchebm": [.047, .055, .100, .043, .135, .040]},
    "pinwheel": {"ebmkit": [.116, .109, .126, .106, .152, .123], "torchebm": [.115, .108, .126, .106, .153, .123]},
    "two-spirals": {"ebmkit": [.079, .070, .074, .080, .081, .079]},
    "swiss-roll": {"ebmkit": [.043, .043, .069, .045, .034, .042]},
    "moons": {"ebmkit": [.069, .076, .068], "torchebm": [.069, .076, .068]},
    "checkerboard": {"ebmkit": [.161, .119, .175], "torchebm": [.154, .120, .178]},
    "rings": {"ebmkit": [.102, .113, .109], "torchebm": [.102, .113, .109]},
}
LAB = re.compile(r"^(\S+)\s+dsm (\{.*\}) u=\S+(?: w=\S+)? seed (\d+) ([+-][0-9.]+|[+-]?inf|nan)")
PEER = re.compile(r"^(\S+)\s+peer (\S+) sigma (\S+) seed (\d+) ([+-][0-9.]+|[+-]?inf|nan)")


def label(kw: dict) -> str:
    if "dsm_sigmas" not in kw:
        return D if kw.get("dsm_anneal_factor", 3.0) == 3.0 and kw.get("dsm_anneal_until", 0.5) == 0.5 else "other"
    return f"final {kw['dsm_sigmas'][0]:g}"


def med(xs):
    return statistics.median(xs)


def load(path: str):
    cells: dict = defaultdict(dict)      # (set, variant) -> {seed: value}
    peers: dict = defaultdict(dict)      # (set, peer, sigma) -> {seed: value}
    checks = []
    for line in open(S14):
        m = LAB.match(line)
        if m and json.loads(m[2]) == {"dsm_anneal_factor": 3.0, "dsm_anneal_until": 0.5} and int(m[3]) in SEEDS:
            cells[(m[1], D)][int(m[3])] = float(m[4])
    for s, vals in D_RECORDED.items():
        cells[(s, D)].update(enumerate(vals))
    for s, d in PEERS_01.items():
        for p, vals in d.items():
            peers[(s, p, 0.1)].update(enumerate(vals))
    for line in open(path):
        m = LAB.match(line)
        if m:
            key, seed, val = (m[1], label(json.loads(m[2]))), int(m[3]), float(m[4])
            if key[1] == D:
                checks.append(f"reproduction: {key[0]} D seed {seed}: recorded {cells[key].get(seed)} -> rerun {val:+.4f}")
                continue
            cells[key][seed] = val
            continue
        m = PEER.match(line)
        if m:
            key, seed, val = (m[1], m[2], float(m[3])), int(m[4]), float(m[5])
            if key in peers and seed in peers[key]:
                checks.append(f"reproduction: {key[0]} {key[1]} sigma {key[2]:g} seed {seed}: recorded "
                              f"{peers[key][seed]} -> rerun {val:+.4f}")
                continue
            peers[key][seed] = val
    return cells, peers, checks


def summary(c: dict) -> str:
    xs = [c[k] for k in sorted(c)]
    se = statistics.stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else float("nan")
    return (f"n={len(xs)} median {med(xs):.4f} mean {statistics.mean(xs):.4f} +- {se:.4f}   seeds "
            f"{','.join(map(str, sorted(c)))}: {' '.join(f'{x:.4f}' for x in xs)}")


def paired(c: dict, base: dict):
    common = sorted(set(c) & set(base))
    if len(common) < 2:
        return None
    d = [c[k] - base[k] for k in common]
    a, b = [c[k] for k in common], [base[k] for k in common]
    pse = statistics.stdev(d) / math.sqrt(len(d))
    wse = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
    return statistics.mean(d), pse, wse, common, med(a), med(b)


def main() -> None:
    cells, peers, checks = load(sys.argv[1])
    for c in checks:
        print(c)
    variants = [D] + sorted({v for _, v in cells if v != D}, reverse=True)
    for s in TUNE + CHECK:
        print(f"\n{s}:")
        base = cells.get((s, D), {})
        for v in variants:
            c = cells.get((s, v))
            if not c:
                continue
            print(f"  {v:24s} {summary(c)}")
            p = paired(c, base) if v != D else None
            if p:
                md, pse, wse, common, ma, mb = p
                print(f"  {'':24s} - D on seeds {','.join(map(str, common))} (n={len(common)}): mean {md:+.4f}, paired "
                      f"SE {pse:.4f} ({md / pse:+.1f} SE), Welch SE {wse:.4f} ({md / wse:+.1f} SE); medians {ma:.4f} vs {mb:.4f}")
        for key in sorted(k for k in peers if k[0] == s):
            print(f"  peer {key[1]:9s} sigma {key[2]:<5g}    {summary(peers[key])}")
    # stage 1: the rule as written in the log
    print("\n# stage 1 rule")
    eligible = {}
    for v in variants[1:]:
        c8 = cells.get(("eight-gaussians", v), {})
        meds = {s: med([cells[(s, v)][k] for k in sorted(cells[(s, v)])]) for s in TUNE if cells.get((s, v))}
        full = all(len(cells.get((s, v), {})) == 6 for s in TUNE)
        worst = max(c8.values()) if c8 else float("nan")
        out = worst > 0.3
        mean_of_meds = statistics.mean(meds.values()) if meds else float("nan")
        wins = sum(meds[s] < med(list(cells[(s, D)].values())) for s in meds)
        print(f"# rule: {v}: seeds complete {full}; eight-gaussians worst {worst:+.4f}; medians "
              + ", ".join(f"{s} {meds[s]:.4f}" for s in meds) + f"; mean of medians {mean_of_meds:.4f}; "
              f"below D's median on {wins} of {len(meds)}; " + ("out: collapse" if out else "eligible"))
        if not out:
            eligible[v] = (round(mean_of_meds, 4), meds.get("eight-gaussians"), wins)
    dm = {s: med(list(cells[(s, D)].values())) for s in TUNE}
    print("# rule: D medians " + ", ".join(f"{s} {dm[s]:.4f}" for s in TUNE) + f"; mean {statistics.mean(dm.values()):.4f}")
    if not eligible:
        print("# rule: no candidate eligible")
        return
    best = min(eligible, key=lambda v: eligible[v][:2])
    ok = eligible[best][2] >= 3
    print(f"# rule: lowest mean of medians: {best}; below D on {eligible[best][2]} of 4 -> "
          + ("chosen" if ok else "not chosen: the preset stays"))
    if not ok:
        return
    # stage 2: the decision
    sig = float(best.split()[1])
    print("\n# decision")
    for s in TUNE:
        m = med(list(cells[(s, best)].values()))
        pm = {p: med(list(peers[(s, p, sig)].values())) for p in ("ebmkit", "torchebm") if peers.get((s, p, sig))}
        n = {p: len(peers[(s, p, sig)]) for p in pm}
        print(f"# (b) {s}: {best} median {m:.4f} vs peers at {sig:g}: "
              + ", ".join(f"{p} {pm[p]:.4f} (n={n[p]})" for p in pm) + (f" -> {'ok' if pm and m <= min(pm.values()) else 'fails'}"))
    for s in CHECK:
        p = paired(cells.get((s, best), {}), cells.get((s, D), {}))
        if p:
            md, pse, wse, common, ma, mb = p
            print(f"# (c) {s}: mean diff {md:+.4f} = {md / pse:+.1f} paired SE (n={len(common)}) -> "
                  + ("ok" if md <= pse else "fails"))
        else:
            print(f"# (c) {s}: not run")


def check_table(path: str, best: str = "final 0.07", sig: float = 0.07) -> None:
    """Markdown rows for the check sets: D and the candidate on the same seeds, (c), and the peers."""
    cells, peers, _ = load(path)
    print("| set | D: cells / median (seeds) | " + best + ": cells / median | " + best + " - D: mean ± paired SE "
          "(Welch) | (c) | ebmkit at fixed " + f"{sig:g}" + ": cells / median | peers at 0.1 (recorded): median |")
    print("|---|---|---|---|---|---|---|")
    for s in CHECK:
        a, b = cells.get((s, D), {}), cells.get((s, best), {})
        common = sorted(set(a) & set(b))
        if not common:
            print(f"| {s} | not run | | | | | |")
            continue
        fmt = lambda c: " ".join(f"{c[k]:.3f}" for k in common) + f" / {med([c[k] for k in common]):.4f}"
        p = paired(b, a)
        pc = (f"{p[0]:+.4f} ± {p[1]:.4f} ({p[0] / p[1]:+.1f} SE; Welch {p[2]:.4f})", "ok" if p[0] <= p[1] else "**fails**") \
            if p else ("n=1: " + f"{b[common[0]] - a[common[0]]:+.4f}", "(one seed)")
        pk = peers.get((s, "ebmkit", sig), {})
        pks = " ".join(f"{pk[k]:.3f}" for k in sorted(pk)) + f" / {med(list(pk.values())):.4f} ({min(pk)}-{max(pk)})" if pk else "not run"
        p01 = peers.get((s, "ebmkit", 0.1), {})
        p01s = f"{med(list(p01.values())):.3f} ({min(p01)}-{max(p01)})" if p01 else "—"
        print(f"| {s} | {fmt(a)} ({common[0]}-{common[-1]}) | {fmt(b)} | {pc[0]} | {pc[1]} | {pks} | {p01s} |")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[2] == "--md":
        check_table(sys.argv[1])
    else:
        main()
