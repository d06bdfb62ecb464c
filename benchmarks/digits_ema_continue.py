"""Continue the benchmark's cd row (the digits preset, EMA 0.995) past its 600 CPU-s stop, evaluating the FD
ratio of the EMA and of the raw weights at every checkpoint (every 1000 steps) up to STOP steps: the steps a
less loaded machine reaches in 600 CPU-s (session 7's cd row: 17 125).

    PYTHONPATH=src .venv-bench/bin/python benchmarks/digits_ema_continue.py COPY_OF_RUN_DIR 17000 OUT.json

(session 8: a copy of /tmp/s8ema/bench/runs/ebmlab_digits, results/objectives_digits_ema.md's notes)."""
import json, sys, time
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).resolve().parent))
import digits as bench
from ebmlab.metrics.frechet import fd_ratio
from ebmlab.tasks.open import Run
from ebmlab.tasks.sample import draw_samples
from ebmlab.training.api import resume_run, release_run


def main() -> None:
    run_dir, stop, out = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    torch.set_num_threads(1)
    x_train, x_test = bench.digits()
    n = len(x_train)
    fd_ratio(x_train[:64], x_train, x_test)
    rows = []

    class Eval:
        def on_checkpoint(self, tr, step):
            was = tr.model.training
            r = {"step": step, "cpu_s_total": round(time.process_time(), 1)}
            for name, m in (("ema", tr.sampling_model()), ("raw", tr.model)):
                x, _, _ = draw_samples(Run(Path("."), m, tr.config, tr.data_desc), n, n_steps=10, seed=1000)
                r[name] = fd_ratio(x, x_train, x_test)["ratio"]
            tr.model.train(was)
            rows.append(r)
            out.write_text(json.dumps(rows, indent=2))
            print(r, flush=True)
            if step >= stop:
                tr.request_stop()

    tr = resume_run(run_dir, callbacks=[Eval()])
    print("resumed at", tr.step, flush=True)
    Eval().on_checkpoint(tr, tr.step)
    tr.fit()
    release_run(tr)


if __name__ == "__main__":
    main()
