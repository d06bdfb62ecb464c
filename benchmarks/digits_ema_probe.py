"""Probe (sessions 8, 9): several EMAs of the weights kept beside the raw weights in ONE training run of a
benchmarks/digits.py row; FD ratio (1437 samples from uniform noise, seed 1000) for the raw weights and each
EMA at several CPU budgets, and at several sampling lengths (default: the run's own, ``ebmlab sample``'s
default). The extra EMAs' updates count in the budget; the evaluations do not.

    PYTHONPATH=src .venv-bench/bin/python benchmarks/digits_ema_probe.py ebmlab:digits+ema_decay=0 \
        150,300,450,600 0.995,0.999,0.9995,0.9998 /tmp/cd_ema.json [--seed 1] [--sample-steps 10,15,20]

(results/objectives_digits_ema_probes.md; the session-8 run used the row ``ebmlab:digits`` before the preset
had an EMA, the same training, seed 0.) Rollbacks restore the raw weights only, not these extra averages.
Keys of the output: ``raw`` / ``ema<decay>`` at the run's sampling length, ``raw@<n>`` / ``ema<decay>@<n>`` at
the other lengths."""
import argparse, copy, json, sys, time
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).resolve().parent))
import digits as bench
from ebmlab.metrics.frechet import fd_ratio
from ebmlab.tasks.open import Run
from ebmlab.tasks.sample import draw_samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec")
    ap.add_argument("targets", help="comma list of CPU-s budgets")
    ap.add_argument("decays", help="comma list of EMA decays kept beside the raw weights")
    ap.add_argument("out", help="JSON written after every budget")
    ap.add_argument("--seed", type=int, default=0, help="the run's seed (the benchmark's --seed)")
    ap.add_argument("--sample-steps", default="", help="comma list of sampling lengths besides the run's own")
    args = ap.parse_args()
    targets = [float(t) for t in args.targets.split(",")]
    decays = [float(d) for d in args.decays.split(",")]
    out = Path(args.out)
    torch.set_num_threads(1)
    x_train, x_test = bench.digits()
    n = len(x_train)
    fd_ratio(x_train[:64], x_train, x_test)
    workdir = out.parent / (out.stem + "_work")
    row = bench.EbmlabRow(args.spec, args.seed, workdir)
    if row.trainer.config.objective != "cd":
        row.train_k = row.sample_steps
    lengths = [row.sample_steps] + [int(s) for s in args.sample_steps.split(",") if s and int(s) != row.sample_steps]
    tr = row.trainer
    keys = [k for k, v in tr.model.state_dict(keep_vars=True).items() if isinstance(v, torch.nn.Parameter)]
    live = [tr.model.state_dict(keep_vars=True)[k] for k in keys]
    emas = {d: [p.detach().clone() for p in live] for d in decays}
    orig = tr.train_step

    def step_with_ema():
        s = orig()
        with torch.no_grad():
            for d, e in emas.items():
                torch._foreach_lerp_(e, [p.detach() for p in live], 1.0 - d)
        return s
    tr.train_step = step_with_ema

    def evaluate(model, name: str, ck: dict) -> None:
        run = Run(Path("."), model, tr.config, tr.data_desc)
        for k in lengths:
            x, _, _ = draw_samples(run, n, n_steps=k, seed=1000)
            ck[name if k == row.sample_steps else f"{name}@{k}"] = round(fd_ratio(x, x_train, x_test)["ratio"], 3)

    clock = bench.CpuClock()
    res = {"spec": args.spec, "seed": args.seed, "decays": decays, "sample_steps": lengths, "checkpoints": []}
    wall0 = time.time()
    for t in targets:
        clock.start(); row.train_until(clock, t); clock.stop()
        ck = {"cpu_s": round(clock.used, 1), "steps": tr.step, "wall_s": round(time.time() - wall0)}
        was = tr.model.training
        evaluate(tr.model, "raw", ck)
        for d, e in emas.items():
            m = copy.deepcopy(tr.model)
            sd = m.state_dict(keep_vars=True)
            with torch.no_grad():
                for k, v in zip(keys, e):
                    sd[k].copy_(v)
            evaluate(m.eval(), f"ema{d}", ck)
        tr.model.train(was)
        res["checkpoints"].append(ck)
        out.write_text(json.dumps(res, indent=2))
        print(ck, flush=True)
        if tr.step >= tr.config.steps:
            break


if __name__ == "__main__":
    main()
