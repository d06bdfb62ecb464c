"""Shared helpers for the run-directory tests (resume, safety, guard, CLI errors).

Everything is tiny on purpose: the suite runs on 2 shared CPU cores.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ebmlab.rundir.checkpoint import latest_checkpoint, load_checkpoint

# a tiny recipe: persistent chains, small buffer, tiny MLP; checkpoint_every is not a multiple of
# log_every on purpose, so resuming mid-way between log rows is exercised too
TINY: dict[str, Any] = dict(steps=40, batch_size=64, buffer_size=256, mcmc_steps=5, hidden=16, depth=2,
                            checkpoint_every=3, log_every=2, plot_every=1000, keep_checkpoints=2)

TINY_TOML = "hidden = 16\ndepth = 2\nkeep_checkpoints = 2\n"


def tiny_data(path: Path, n: int = 200, seed: int = 0) -> Path:
    """A small 2-D .npy (two blobs): ~180 training points, so 64-point batches reshuffle every 2 steps."""
    g = np.random.default_rng(seed)
    x = np.concatenate([g.normal([-1.0, 0.0], 0.3, (n // 2, 2)), g.normal([1.0, 0.5], 0.3, (n - n // 2, 2))])
    np.save(path, x.astype(np.float32))
    return path.resolve()


def flatten_state(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Nested train state -> {dotted path: leaf} for exact comparison."""
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten_state(v, f"{prefix}.{k}"))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(flatten_state(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = obj
    return out


def assert_same_state(a: dict[str, Any], b: dict[str, Any], what: str) -> None:
    """Bit-identical: same keys, same dtypes, same bytes (NaN-safe via torch.equal on bit views)."""
    fa, fb = flatten_state(a), flatten_state(b)
    assert fa.keys() == fb.keys(), f"{what}: keys differ: {sorted(set(fa) ^ set(fb))[:10]}"
    for k in fa:
        va, vb = fa[k], fb[k]
        if isinstance(va, torch.Tensor):
            assert isinstance(vb, torch.Tensor) and va.dtype == vb.dtype and va.shape == vb.shape, f"{what}{k}"
            assert torch.equal(va, vb), f"{what}{k}: tensors differ (max |diff| " \
                f"{(va.double() - vb.double()).abs().max().item():.3g})"
        else:
            assert va == vb, f"{what}{k}: {va!r} != {vb!r}"


def final_checkpoint(run_dir: Path) -> tuple[int, dict, dict]:
    ck = latest_checkpoint(run_dir)
    assert ck is not None, f"{run_dir} has no checkpoint"
    return load_checkpoint(ck)


def assert_runs_identical(ref: Path, other: Path, metrics: bool = True) -> None:
    """Final weights, optimiser, scheduler, buffer, RNG states and data position are bit-identical."""
    s1, m1, t1 = final_checkpoint(ref)
    s2, m2, t2 = final_checkpoint(other)
    assert s1 == s2, f"final steps differ: {s1} vs {s2}"
    assert_same_state(m1, m2, "model")
    assert_same_state(t1, t2, "train_state")
    from ebmlab.rundir.checkpoint import load_ema      # runs with ema_decay: the averaged weights too
    assert_same_state(load_ema(latest_checkpoint(ref)) or {}, load_ema(latest_checkpoint(other)) or {}, "ema")
    if metrics:
        assert metric_rows(ref) == metric_rows(other)


def metric_rows(run_dir: Path) -> list[dict[str, Any]]:
    """metrics.jsonl without the wall-clock column."""
    rows = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("seconds", None)
    return rows


def events(run_dir: Path) -> list[dict[str, Any]]:
    p = run_dir / "events.jsonl"
    return [json.loads(l) for l in p.read_text().splitlines()] if p.exists() else []


def all_checkpoint_tensors_finite(run_dir: Path) -> bool:
    from safetensors.torch import load_file
    for f in (run_dir / "checkpoints").glob("step-*/*.safetensors"):
        for t in load_file(str(f)).values():
            if t.is_floating_point() and not torch.isfinite(t).all():
                return False
    return True


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    return env


def ebmlab_cmd(*args: str) -> list[str]:
    """`ebmlab ...` run with this interpreter (works without the venv's bin on PATH)."""
    return [sys.executable, "-c", "import sys, torch; torch.set_num_threads(1); from ebmlab.cli import main; "
            "sys.exit(main(sys.argv[1:]))", *args]


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(ebmlab_cmd(*args), capture_output=True, text=True, cwd=cwd, env=subprocess_env(),
                          timeout=timeout)


# ---------------------------------------------------------------------------- kill points
# A child process (forked, or a `python -c` subprocess) can be told to stop dead at a chosen point
# of the training loop or of a checkpoint write: it touches ``<marker_dir>/paused`` and sleeps, and
# the test SIGKILLs it. These patches live only in the child; ebmlab itself has no test hooks.
PHASES = ("step", "tmpdir", "renamed", "latest", "prune", "metrics")


def _pause(marker_dir: Path, what: str) -> None:
    import time
    (Path(marker_dir) / "paused").write_text(what)
    while True:
        time.sleep(1000)


def install_pause_hook(phase: str, k: int, marker_dir: str | Path) -> None:
    """Pause at the ``k``-th occurrence (1-based) of ``phase`` in this process."""
    import ebmlab.rundir.checkpoint as ckpt
    import ebmlab.training.trainer as tr
    marker_dir = Path(marker_dir)
    seen = {"n": 0}

    def hit() -> bool:
        seen["n"] += 1
        return seen["n"] == k

    if phase == "step":          # mid-step: chains run, buffer updated, generators advanced, update not yet checked or counted
        real_check = tr.check_step

        def check_step(*a, **kw):
            if hit():
                _pause(marker_dir, "step")
            return real_check(*a, **kw)
        tr.check_step = check_step
    elif phase in ("tmpdir", "renamed", "latest"):
        real_replace = os.replace

        def replace(src, dst, *a, **kw):
            s, d = Path(src).name, Path(dst).name
            if phase == "tmpdir" and s.startswith(".step-") and hit():
                _pause(marker_dir, f"tmpdir {s}")              # checkpoint files written, not renamed
            if phase == "latest" and d == "LATEST" and hit():
                _pause(marker_dir, "latest")                   # new folder in place, LATEST not yet
            real_replace(src, dst, *a, **kw)
            if phase == "renamed" and s.startswith(".step-") and hit():
                _pause(marker_dir, f"renamed {d}")
        os.replace = replace
    elif phase == "prune":       # LATEST written, old checkpoints not yet pruned
        real_prune = ckpt._prune

        def prune(*a, **kw):
            if hit():
                _pause(marker_dir, "prune")
            return real_prune(*a, **kw)
        ckpt._prune = prune
    elif phase == "metrics":     # a torn metrics.jsonl line
        real_append = tr.Trainer._append_metrics

        def append(self, row):
            if hit() and self.run_dir is not None:
                line = json.dumps(row)
                with open(self.run_dir / "metrics.jsonl", "a") as fh:
                    fh.write(line[: len(line) // 2])
                _pause(marker_dir, "metrics")
            return real_append(self, row)
        tr.Trainer._append_metrics = append
    elif phase != "time":
        raise ValueError(phase)


def subprocess_child_main() -> None:
    """Entry of a `python -c` child: optional pause hook from the environment, then `ebmlab ...`."""
    torch.set_num_threads(1)
    spec = os.environ.get("EBMLAB_TEST_PAUSE")
    marker = os.environ["EBMLAB_TEST_MARKER"]
    import ebmlab.training.trainer as tr
    real_fit = tr.Trainer.fit

    def fit(self):                      # tell the parent when training (not importing) has begun
        Path(marker, "started").write_text("1")
        return real_fit(self)
    tr.Trainer.fit = fit
    if spec:
        phase, k = spec.split(":")
        install_pause_hook(phase, int(k), marker)
    from ebmlab.cli import main
    sys.exit(main(sys.argv[1:]))


def child_cmd(*args: str) -> list[str]:
    here = str(Path(__file__).resolve().parent)
    return [sys.executable, "-c", f"import sys; sys.path.insert(0, {here!r}); import helpers_runs; "
            "helpers_runs.subprocess_child_main()", *args]


# ---------------------------------------------------------------------------- shared fixtures' bodies
TINY6 = {**TINY, "steps": 6, "checkpoint_every": 3}


def train_tiny_run(tmp: Path) -> Path:
    """A finished 6-step tiny run in ``tmp/run`` (its lock released), for tests that damage copies of it."""
    from ebmlab.training.api import start_run
    trainer, _ = start_run(str(tiny_data(tmp / "x.npy")), tmp / "run", **TINY6)
    trainer.fit()
    trainer.run_lock.release()
    return tmp / "run"


def copy_run(run: Path, tmp: Path) -> Path:
    """A private copy of a run directory, without its lock file."""
    import shutil
    shutil.copytree(run, tmp / "run", ignore=shutil.ignore_patterns(".ebmlab-lock"))
    return tmp / "run"


def fails_cleanly(argv: list[str], capsys, contains: str | None = None) -> str:
    """Run the CLI in-process: exit 2 and exactly one line ``ebmlab: error: ...``; returns that line."""
    from ebmlab.cli import main as cli_main
    code = cli_main(argv)
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert code == 2, (argv, cap.err)
    assert len(lines) == 1 and lines[0].startswith("ebmlab: error: "), (argv, cap.err)
    assert "Traceback" not in cap.err + cap.out
    if contains is not None:
        assert contains in lines[0], lines[0]
    return lines[0]


# ---------------------------------------------------------------------------- forked ranks (DDP tests)
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the ranks' rendezvous)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fork_ranks(body: Callable[[int], None], marker: Path, world_size: int = 2) -> list[int]:
    """Fork ``world_size`` ranks set up as torchrun would (RANK / WORLD_SIZE / MASTER_* on a free port, one
    torch thread) without re-importing torch, each running ``body(rank)``; a rank's exception is written
    to ``marker/error{rank}`` and the rank exits 1. Returns the pids, for ``join_ranks`` or a kill."""
    port = free_port()
    pids = []
    for rank in range(world_size):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)   # "multi-threaded process ... fork()"
            pid = os.fork()
        if pid:
            pids.append(pid)
            continue
        code = 1
        try:
            os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                              MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
            torch.set_num_threads(1)
            body(rank)
            code = 0
        except BaseException:
            (marker / f"error{rank}").write_text(traceback.format_exc())
        finally:
            os._exit(code)
    return pids


def join_ranks(pids: list[int], marker: Path, timeout: float = 120) -> None:
    """Wait for every forked rank (SIGKILL all of them past ``timeout``); fail with the first rank's traceback."""
    t_end = time.time() + timeout
    for pid in pids:
        while not os.waitpid(pid, os.WNOHANG)[0]:
            if time.time() > t_end:
                for p in pids:
                    os.kill(p, signal.SIGKILL)
                raise AssertionError("forked ranks did not finish in time")
            time.sleep(0.05)
    errors = [f.read_text() for f in marker.glob("error*")]
    assert not errors, errors[0]
