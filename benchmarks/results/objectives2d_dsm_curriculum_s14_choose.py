"""Apply the rule written at the head of objectives2d_dsm_curriculum_s14.log; print the chosen variant's probe JSON."""
import json, re, statistics, sys
log = sys.argv[1]
cand = {  # recorded k 3 / F 0.5 cells (see objectives2d_dsm_curriculum_s14_stats.py for their files)
    (3.0, 0.5): {"eight-gaussians": [.041, .058, .043, .0834, .0973, .0715, .1005, .0605, .1415],
                 "pinwheel": [.113, .117, .117, .1077, .1261, .1336, .1096, .1114, .1326]}}
pat = re.compile(r"^(\S+)\s+dsm (\{.*\}) u=\S+ seed (\d+) ([+-][0-9.]+)")
for line in open(log):
    m = pat.match(line)
    if m:
        kw = json.loads(m[2])
        key = (kw.get("dsm_anneal_factor", 1.0), kw.get("dsm_anneal_until", 0.7))
        if key == (3.0, 0.5) or key[0] == 1.0:
            continue
        cand.setdefault(key, {}).setdefault(m[1], {})
        cand[key][m[1]][int(m[3])] = float(m[4])
rows = []
for key, c in cand.items():
    eg, pw = c.get("eight-gaussians", []), c.get("pinwheel", [])
    eg = list(eg.values()) if isinstance(eg, dict) else eg
    pw = list(pw.values()) if isinstance(pw, dict) else pw
    ok = max(eg) <= 0.3
    complete = len(eg) == 9 and len(pw) == 9
    print(f"# rule: k {key[0]:g} / F {key[1]:g}: eight-gaussians n={len(eg)} max {max(eg):+.4f} median "
          f"{statistics.median(eg):.4f}; pinwheel n={len(pw)} median {statistics.median(pw):.4f}; "
          f"{'eligible' if ok and complete else 'out: collapse' if not ok else 'out: incomplete'}", file=sys.stderr)
    if ok and complete:
        rows.append((round(statistics.median(pw), 3), statistics.median(eg), key))
rows.sort()
k, F = rows[0][2]
print(f"# rule: chosen k {k:g} / F {F:g}", file=sys.stderr)
print(json.dumps({"objective": "dsm", "dsm_anneal_factor": k, "dsm_anneal_until": F}))
