"""Tables of objectives2d_gain_sm_s16.md from its raw log and the recorded cells (issue 15, session 16).

Usage (from benchmarks/results/): python objectives2d_gain_sm_s16_stats.py objectives2d_gain_sm_s16.log

Cells: exact test NLL above the truth (nats). dsm: D = the 2-D preset (final level 0.1, k 3, F 0.5, input_gain 1),
its recorded cells exactly as objectives2d_dsm_sigma_s15_stats.py collects them (session 14's log, 4 decimals, and
the session-10/13 cells for eight-gaussians / pinwheel), with the peers' cells at the fixed level 0.1 from the same
script (PEERS_01, seeds 0-5); G = input_gain 1.4. ssm: D = the 2-D preset's recorded cells (objectives2d_ssm_s11.md,
the orth2 rows, 3 decimals, seeds 0-2). Per set: each variant's cells, median, mean +- SE, and G - D per seed with
the paired and Welch standard errors; then the rule's lines (written at the head of the log before any run).
"""
import json, math, re, statistics, sys
import objectives2d_dsm_sigma_s15_stats as S15

TUNE = S15.TUNE
CHECK = S15.CHECK
SSM_SETS = ("two-spirals", "moons", "pinwheel", "checkerboard", "eight-gaussians", "rings", "swiss-roll")
SSM_D = {  # objectives2d_ssm_s11.md, "orth2" rows (the preset since session 11), seeds 0 / 1 / 2
    "two-spirals": [.044, .031, .055], "moons": [.027, .020, .027], "pinwheel": [.035, .028, .028],
    "checkerboard": [.115, .109, .115], "eight-gaussians": [.046, .036, .034], "rings": [.037, .039, .058],
    "swiss-roll": [.023, .024, .026],
}
SSM_D_3TO5 = {  # objectives2d_ssm_seeds3to8_s13.md (objectives2d.py's ebmlab row, the same train call), seeds 3 / 4 / 5
    "two-spirals": [.045, .049, .045], "moons": [.024, .025, .025], "pinwheel": [.035, .043, .031],
}
PEERS_SSM = {  # the peers' ssm cells for reference: seeds 0-2 objectives2d_s12_full.md, 3-5 objectives2d_ssm_seeds3to8_s13.md
    "two-spirals": {"ebmkit": [.037, .067, .024, .037, .037, .066], "torchebm": [.050, .062, .044, .066, .051, .069]},
    "moons": {"ebmkit": [.057, .066, .021, .016, .041, .026], "torchebm": [.019, .021, .059, .011, .067, .034]},
    "pinwheel": {"ebmkit": [.082, .034, .077, .061, .022, .054], "torchebm": [.012, .018, .031, .062, .027, .029]},
    "checkerboard": {"ebmkit": [.111, .187, .245], "torchebm": [.169, .306, .288]},
    "eight-gaussians": {"ebmkit": [.392, .042, .157], "torchebm": [.724, .101, .133]},
    "rings": {"ebmkit": [2.304, 3.320, 1.369], "torchebm": [1.662, 1.615, .662]},
    "swiss-roll": {"ebmkit": [.109, .172, .057], "torchebm": [.205, .052, .045]},
}
LINE = re.compile(r"^(\S+)\s+(dsm|ssm) (\{.*\}) u=\S+(?: w=\S+)? seed (\d+) ([+-][0-9.]+|[+-]?inf|nan)")
med = statistics.median


def load(path: str):
    dcells, peers, _ = S15.load("/dev/null")
    dsm = {"D": {s: dict(dcells[(s, S15.D)]) for s in TUNE + CHECK}, "G": {}}
    # beyond the rule: the preset's eight-gaussians seeds 6-8 (objectives2d_dsm_curriculum_seeds3to8_s13.log)
    dsm["D"]["eight-gaussians"].update({6: .1005, 7: .0605, 8: .1415})
    dsm["D"]["pinwheel"].update({6: .1096, 7: .1114, 8: .1326})     # the same log
    # and the peers' seeds 6-8 at 0.1 (objectives2d_dsm_eightg_seeds3to8_s13.md, objectives2d_dsm_pinwheel_seeds3to8_s13.md;
    # two-spirals / swiss-roll: objectives2d_dsm_gap_s11.md table B, ebmkit = torchebm there)
    for (s, p), v in {("eight-gaussians", "ebmkit"): [.120, .122, .069], ("eight-gaussians", "torchebm"): [.120, .122, .070],
                      ("pinwheel", "ebmkit"): [.114, .116, .125], ("pinwheel", "torchebm"): [.113, .116, .125],
                      ("two-spirals", "ebmkit"): [.074, .081, .078], ("swiss-roll", "ebmkit"): [.066, .039, .065]}.items():
        peers[(s, p, 0.1)].update({6 + i: x for i, x in enumerate(v)})
    ssm = {"D": {s: dict(enumerate(v)) for s, v in SSM_D.items()}, "G": {}}
    for s, v in SSM_D_3TO5.items():
        ssm["D"][s].update({3 + i: x for i, x in enumerate(v)})
    checks = []
    for line in open(path):
        m = LINE.match(line)
        if not m:
            continue
        name, obj, kw, seed, val = m[1], m[2], json.loads(m[3]), int(m[4]), float(m[5])
        table = dsm if obj == "dsm" else ssm
        if kw == {}:
            rec = table["D"].get(name, {}).get(seed)
            if rec is None:      # no recorded cell: D run here beside G (extra3: two-spirals / swiss-roll seeds 6-8)
                table["D"].setdefault(name, {})[seed] = val
                continue
            checks.append(f"reproduction: {obj} {name} D seed {seed}: recorded {rec} -> rerun {val:+.4f}")
        elif kw == {"input_gain": 1.4}:
            table["G"].setdefault(name, {})[seed] = val
        else:
            checks.append(f"unexpected line: {line.strip()}")
    return dsm, ssm, peers, checks


summary, paired = S15.summary, S15.paired    # the same per-set summary and paired / Welch errors as session 15


def block(title, table, sets, peers=None):
    print(f"\n=== {title}")
    for s in sets:
        g, d = table["G"].get(s, {}), table["D"].get(s, {})
        if not g:
            print(f"\n{s}: G not run")
            continue
        common = sorted(set(g) & set(d))
        print(f"\n{s}:")
        print(f"  D preset (G's seeds)     {summary({k: d[k] for k in common})}")
        print(f"  G input_gain 1.4         {summary(g)}")
        p = paired(g, d)
        if p:
            md, pse, wse, common, ma, mb = p
            print(f"  G - D on seeds {','.join(map(str, common))} (n={len(common)}): mean {md:+.4f}, paired SE {pse:.4f} "
                  f"({md / pse:+.1f} SE), Welch SE {wse:.4f} ({md / wse:+.1f} SE); medians {ma:.4f} vs {mb:.4f}")
        for key in sorted(k for k in (peers or {}) if k[0] == s and k[2] == 0.1):
            pc = {k: v for k, v in peers[key].items() if k in g}
            print(f"  peer {key[1]:9s} {'sigma 0.1' if title == 'dsm' else '         '}  {summary(pc)}")


def main() -> None:
    dsm, ssm, peers, checks = load(sys.argv[1])
    for c in checks:
        print(c)
    block("dsm", dsm, TUNE + CHECK, peers)
    block("ssm", ssm, SSM_SETS, {(s, p, 0.1): dict(enumerate(v)) for s, d in PEERS_SSM.items() for p, v in d.items()})
    print("\n# dsm stage 1 rule")
    g8 = {k: v for k, v in dsm["G"].get("eight-gaussians", {}).items() if k < 6}
    worst = max(g8.values()) if g8 else float("nan")
    wins, complete = 0, True
    for s in TUNE:   # the rule's seeds 0-5 only (seeds 6-8 of eight-gaussians are beyond it)
        g, d = {k: v for k, v in dsm["G"].get(s, {}).items() if k < 6}, dsm["D"][s]
        complete &= sorted(g) == list(range(6))
        if g:
            gm, dm = med(list(g.values())), med([d[k] for k in range(6)])
            wins += gm < dm
            print(f"# rule: {s}: G median {gm:.4f} vs D {dm:.4f} -> {'below' if gm < dm else 'not below'}")
    s1 = complete and worst <= 0.3 and wins >= 3
    print(f"# rule: seeds complete {complete}; eight-gaussians worst G {worst:+.4f}; G below D on {wins} of 4 -> "
          f"stage 1 {'passes' if s1 else 'fails'}")
    print("\n# dsm stage 2 rule (check sets)" + ("" if s1 else ": information only, stage 1 failed (run beyond the rule)"))
    s2 = True
    for s in CHECK:
        p = paired(dsm["G"].get(s, {}), dsm["D"].get(s, {}))
        if p:
            ok = p[0] <= p[1]
            s2 &= ok
            print(f"# (2) {s}: mean diff {p[0]:+.4f} = {p[0] / p[1]:+.1f} paired SE (n={len(p[3])}) -> {'ok' if ok else 'fails'}")
        else:
            s2 = False
            print(f"# (2) {s}: not run")
    print("\n# peers (recommendation's third condition): G median vs the best peer's median, seeds 0-5")
    s3 = True
    for s in TUNE:
        g = {k: v for k, v in dsm["G"].get(s, {}).items() if k < 6}
        pm = {p: med([v for k, v in peers[(s, p, 0.1)].items() if k in g]) for p in ("ebmkit", "torchebm")
              if peers.get((s, p, 0.1)) and g}
        if not g or not pm:
            s3 = False
            continue
        gm, best = med(list(g.values())), min(pm.values())
        s3 &= gm <= best
        print(f"# (3) {s}: G median {gm:.4f} vs best peer {best:.4f} ({', '.join(f'{p} {v:.4f}' for p, v in pm.items())}) "
              f"-> {'ok' if gm <= best else 'fails'}")
    print(f"# recommendation: stage 1 {s1}, stage 2 {s2}, peers {s3} -> {'adopt' if s1 and s2 and s3 else 'not adopted'}")
    print("\n# dsm beyond the rule: nine seeds (0-8) where run, medians of D, G and the best peer (information only)")
    for s in TUNE:
        g, d = dsm["G"].get(s, {}), dsm["D"][s]
        if len(g) == 9 and all(k in d for k in g):
            pm = {p: med(list(peers[(s, p, 0.1)].values())) for p in ("ebmkit", "torchebm")
                  if len(peers.get((s, p, 0.1), {})) == 9}
            pr = paired(g, d)
            print(f"# nine {s}: D {med(list(d.values())):.4f}, G {med(list(g.values())):.4f}, best peer "
                  f"{min(pm.values()):.4f} ({', '.join(f'{p} {v:.4f}' for p, v in pm.items())}); G - D {pr[0]:+.4f} +- "
                  f"{pr[1]:.4f} ({pr[0] / pr[1]:+.1f} SE)")
    print("\n# ssm check: G - D mean per-seed difference, paired SE (seeds 0-2)")
    for s in SSM_SETS:
        p = paired({k: v for k, v in ssm["G"].get(s, {}).items() if k < 3}, ssm["D"][s])
        if p:
            print(f"# ssm {s}: {p[0]:+.4f} +- {p[1]:.4f} ({p[0] / p[1]:+.1f} SE) -> "
                  + ("worse by more than 1 SE" if p[0] > p[1] else "not worse by more than 1 SE"))
        else:
            print(f"# ssm {s}: not run")
    print("\n# ssm beyond the rule: seeds 0-5 where seeds 3-5 were run (information only)")
    for s in SSM_SETS:
        g = ssm["G"].get(s, {})
        if len(g) > 3:
            p = paired(g, ssm["D"][s])
            print(f"# ssm {s} seeds {','.join(map(str, p[3]))}: {p[0]:+.4f} +- {p[1]:.4f} ({p[0] / p[1]:+.1f} SE); "
                  f"medians {p[4]:.4f} vs {p[5]:.4f}")


if __name__ == "__main__":
    main()
