"""SIGTERM to a Python script that calls ``ebmlab.train``: the run stops at a step boundary with its checkpoint, and
then the signal is delivered again, so the script ends (before: ``train`` returned "interrupted" and a sweep went on
to its next run — a ``kill`` of the session-18 probe left it training and scoring the next seed). A script with its
own SIGTERM handler gets it called and ``train`` returns as before. Ctrl-C (SIGINT) keeps returning "interrupted"
(test_resume.py covers its checkpoint and resume)."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers_runs import subprocess_env, tiny_data

SWEEP = """
import signal, sys
import ebmlab
data, out, own = sys.argv[1], sys.argv[2], sys.argv[3] == "own"
if own:
    signal.signal(signal.SIGTERM, lambda s, f: print("own handler", flush=True))
for i in range(2):
    run = ebmlab.train("mlp", data, f"{out}/run{i}", steps=100000, checkpoint_every=5, log_every=5, progress=False,
                       net_width=8, mcmc_steps=2, batch_size=32)
    print(f"run{i} {run.status}", flush=True)
    if own:         # this script's handler chose to carry on; stop here so the test does not wait for run1
        break
print("sweep done", flush=True)
"""


def _sweep(tmp_path: Path, own: str) -> subprocess.CompletedProcess:
    data = tiny_data(tmp_path / "x.npy")
    script = tmp_path / "sweep.py"
    script.write_text(SWEEP)
    proc = subprocess.Popen([sys.executable, str(script), str(data), str(tmp_path), own], env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    latest = tmp_path / "run0" / "checkpoints" / "LATEST"
    t_end = time.time() + 120
    while proc.poll() is None and not latest.exists() and time.time() < t_end:
        time.sleep(0.01)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_sigterm_ends_a_script_that_trains_in_a_loop_after_the_checkpoint(tmp_path):
    res = _sweep(tmp_path, "default")
    assert res.returncode == -signal.SIGTERM, (res.returncode, res.stdout, res.stderr[-2000:])
    assert "run0" not in res.stdout and "sweep done" not in res.stdout       # train never returned
    assert not (tmp_path / "run1").exists()                                 # the next run never started
    step = (tmp_path / "run0" / "checkpoints" / "LATEST").read_text().strip()
    assert step.startswith("step-") and int(step[5:]) > 0


def test_a_script_s_own_sigterm_handler_is_called_and_train_returns(tmp_path):
    res = _sweep(tmp_path, "own")
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split("\n")[:3] == ["own handler", "run0 interrupted", "sweep done"], res.stdout
