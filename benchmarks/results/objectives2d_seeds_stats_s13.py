"""Session 13 (issue 15): per (objective, set) the seeds of several objectives2d result files pooled, with
median, mean and standard error per library, and ebmlab minus the best peer by mean with its Welch SE. Usage:
    python benchmarks/results/objectives2d_seeds_stats_s13.py FILE [FILE ...]"""
import re, sys, math, statistics as st
cells = {}
for path in sys.argv[1:]:
    lines = open(path).read().splitlines()
    head = None
    for ln in lines:
        if ln.startswith("| library | objective |") and head is None:
            head = [h.strip() for h in ln.strip("|").split("|")]
            continue
        if head and ln.startswith("| ") and not ln.startswith("|---") and not ln.startswith("| true"):
            parts = [p.strip() for p in ln.strip().strip("|").split("|")]
            if len(parts) != len(head):
                continue
            lib, obj = parts[0], parts[1]
            for name, cell in zip(head[2:], parts[2:]):
                cell = re.sub(r"\(med[^)]*\)", "", cell)
                vals = [float(v) for v in re.findall(r"[+-]\d+\.\d+", cell)]
                if vals:
                    cells.setdefault((name, obj), {}).setdefault(lib, []).extend(vals)
        if head and ln.startswith("CPU seconds"):
            head = None
def mse(v):
    return st.mean(v), (st.stdev(v) / math.sqrt(len(v)) if len(v) > 1 else float("nan"))
for (name, obj), libs in sorted(cells.items()):
    if "ebmlab" not in libs or len(libs) < 2:
        continue
    print(f"{obj} {name}:")
    for lib, v in libs.items():
        m, se = mse(v)
        print(f"   {lib:9s} n={len(v)} median {st.median(v):.4f} mean {m:.4f} +- {se:.4f}   {' '.join(f'{x:.3f}' for x in v)}")
    e = libs["ebmlab"]
    peers = {k: v for k, v in libs.items() if k != "ebmlab"}
    best = min(peers, key=lambda k: st.mean(peers[k]))
    p = peers[best]
    d = st.mean(e) - st.mean(p)
    se = math.sqrt(st.variance(e) / len(e) + st.variance(p) / len(p))
    print(f"   ebmlab - {best} (best peer by mean): {d:+.4f} +- {se:.4f} ({d / se:+.1f} SE); medians {st.median(e) - st.median(p):+.4f}")
