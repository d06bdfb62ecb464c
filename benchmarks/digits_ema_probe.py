"""Probe (session 8): several EMAs of the weights kept beside the raw weights in ONE training run of a
benchmarks/digits.py row; FD ratio (1437 samples from uniform noise, the run's default sampling, seed 1000)
for the raw weights and each EMA at several CPU budgets. The EMA updates' CPU counts in the budget.

    PYTHONPATH=src .venv-bench/bin/python benchmarks/digits_ema_probe.py ebmlab:digits+ema_decay=0 \
        150,300,450,600 0.995,0.999,0.9995,0.9998 /tmp/cd_ema.json

(results/objectives_digits_ema_probes.md; the session-8 run used the row ``ebmlab:digits`` before the preset
had an EMA, the same training.) Rollbacks restore the raw weights only, not these extra averages."""
import copy, json, sys, time
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).resolve().parent))
import digits as bench
from ebmlab.metrics.frechet import fd_ratio
from ebmlab.tasks.open import Run
from ebmlab.tasks.sample import draw_samples


def main() -> None:
    spec, targets, decays, out = sys.argv[1], [float(t) for t in sys.argv[2].split(",")], \
        [float(d) for d in sys.argv[3].split(",")], Path(sys.argv[4])
    torch.set_num_threads(1)
    x_train, x_test = bench.digits()
    n = len(x_train)
    fd_ratio(x_train[:64], x_train, x_test)
    workdir = out.parent / (out.stem + "_work")
    row = bench.make_row(spec, 0, workdir) if not hasattr(bench, "EbmlabRow") else bench.EbmlabRow(spec, 0, workdir)
    if row.trainer.config.objective != "cd":
        row.train_k = row.sample_steps
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
    clock = bench.CpuClock()
    res = {"spec": spec, "decays": decays, "checkpoints": []}
    wall0 = time.time()
    for t in targets:
        clock.start(); row.train_until(clock, t); clock.stop()
        ck = {"cpu_s": round(clock.used, 1), "steps": tr.step, "wall_s": round(time.time() - wall0)}
        was = tr.model.training
        x = row.sample_noise(n, row.sample_steps, seed=1000)
        ck["raw"] = fd_ratio(x, x_train, x_test)["ratio"]
        for d, e in emas.items():
            m = copy.deepcopy(tr.model)
            sd = m.state_dict(keep_vars=True)
            with torch.no_grad():
                for k, v in zip(keys, e):
                    sd[k].copy_(v)
            run = Run(Path("."), m, tr.config, tr.data_desc)
            xe, _, _ = draw_samples(run, n, n_steps=row.sample_steps, seed=1000)
            ck[f"ema{d}"] = fd_ratio(xe, x_train, x_test)["ratio"]
            torch.save(xe[:64], out.parent / f"{out.stem}_ema{d}_{int(t)}.pt")
        tr.model.train(was)
        res["checkpoints"].append(ck)
        out.write_text(json.dumps(res, indent=2))
        print(ck, flush=True)
        if tr.step >= tr.config.steps:
            break


if __name__ == "__main__":
    main()
