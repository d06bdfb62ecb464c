"""Digits sample quality at an equal CPU budget: ebmlab presets vs ebmkit vs a hand-written UvA loop.

    .venv-bench/bin/python benchmarks/digits.py                      # 600 s of CPU per row (the issue's 10 min)
    .venv-bench/bin/python benchmarks/digits.py --quick              # 60 s per row, results/digits_quick.*
    .venv-bench/bin/python benchmarks/digits.py --report-only DIR    # rebuild table/PNG from finished rows

Measure: FD ratio = FD(samples, test) / FD(train, test) in the penultimate-layer features of the
project's digits classifier (``ebmlab.metrics.frechet.fd_ratio``); 1.0 = as good as real data.
Samples: as many as train images (1437; FD is biased by set size), drawn from FRESH uniform noise in
[-1, 1] with each method's own sampling recipe (ebmlab: ``ebmlab sample``'s default, the training
kernel for 100 steps; UvA tutorial and ebmkit: the tutorial's generation, the training kernel for
256 steps). Persistent methods also report samples taken from their replay buffer.

Budget: every row trains for the same PROCESS CPU time (``time.process_time``, 1 torch thread).
The machine is shared, so wall-clock is not a fair budget; CPU time is. Evaluation (sampling and FD)
is excluded from the budget. Each row runs in its own process (rows run in parallel, ``--jobs``);
checkpoints at 1/4, 1/2 and all of the budget are evaluated so the table shows progress too.

Rows (all use ``ebmlab.nets.image.SmallConvNet(1, 8)`` width 16, same initial weights, seed 0):
  ebmlab:digits / ebmlab:short-run / ebmlab:persistent   ebmlab's presets through ``start_run``;
  ebmkit:uva    ebmkit's own API (LangevinDynamics + ReplayBuffer + ContrastiveDivergence + Trainer)
                with the UvA recipe;  energy E = -f (ebmkit's sign);
  hand:uva      a hand-written loop of the UvA deep-energy tutorial (P. Lippe, UvA DL course,
                tutorial 8): 60 steps, step 10, noise 0.005, grad clamp 0.03, L2 alpha 0.1,
                FIFO buffer 8192 with 5 % uniform re-init, Adam 1e-4 betas (0, 0.999), batch 128,
                real images + N(0, 0.005) noise. Its per-MNIST-epoch StepLR(0.97) is left out
                (over this budget it would change lr by a few percent at most).
Extra rows: ``ebmlab:PRESET+key=value+key=value`` (e.g. ``ebmlab:digits+mcmc_steps=60``).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import random
import shlex
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent
DEFAULT_ROWS = ["ebmlab:digits", "ebmlab:short-run", "ebmlab:persistent", "ebmkit:uva", "hand:uva"]
FRACTIONS = (0.25, 0.5, 1.0)
UVA = dict(steps=60, step_size=10.0, noise=0.005, grad_clamp=0.03, alpha=0.1, buffer=8192, reinit=0.05,
           lr=1e-4, betas=(0.0, 0.999), batch=128, data_noise=0.005, sample_steps=256)


# ----------------------------------------------------------------------------- shared pieces
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) in the model scale [-1, 1], float32: ``--data digits`` as the trainer sees it."""
    from ebmlab.data.sources import load_data
    ds = load_data("digits")                  # stored as uint8 0..16
    return ds.to_model(ds.train), ds.to_model(ds.test)


def make_net(seed: int) -> torch.nn.Module:
    from ebmlab.nets.image import SmallConvNet
    torch.manual_seed(seed)
    return SmallConvNet(1, 8)


def uniform(n: int, g: torch.Generator | None = None) -> torch.Tensor:
    return 2 * torch.rand((n, 1, 8, 8), generator=g) - 1


class CpuClock:
    """CPU seconds of this process spent training (paused while evaluating)."""

    def __init__(self) -> None:
        self.used, self._t = 0.0, None

    def start(self) -> None:
        self._t = time.process_time()

    def stop(self) -> None:
        self.used += time.process_time() - self._t
        self._t = None

    def now(self) -> float:
        return self.used + (time.process_time() - self._t if self._t is not None else 0.0)


# ----------------------------------------------------------------------------- the rows
class EbmlabRow:
    def __init__(self, spec: str, seed: int, workdir: Path) -> None:
        from ebmlab.tasks.sample import default_sample_steps
        from ebmlab.training.api import start_run
        from ebmlab.training.presets import resolve_config
        preset, *kv = spec.split(":", 1)[1].split("+")
        overrides = {}
        for item in kv:
            k, v = item.split("=", 1)
            overrides[k] = json.loads(v) if v[:1].isdigit() or v[:1] in "-[{tfn" else v
        torch.manual_seed(seed)
        # a run with a constant lr trains the same whatever its length: it runs until the budget is spent;
        # a schedule over the steps (cosine) keeps the preset's length, as `ebmlab train` would run it
        if "steps" not in overrides and resolve_config("digits", {**overrides, "preset": preset}).lr_schedule == "constant":
            overrides["steps"] = 10 ** 8
        # a real run directory (checkpointed as `ebmlab train` does, and at every evaluation), reusable by
        # `ebmlab sample/eval`
        self.trainer, self.model = start_run("digits", workdir / "runs" / safe(spec), force=True, preset=preset,
                                             seed=seed, **overrides)
        # start_run seeds the init: same weights as make_net(seed) (drl rows have their own level-conditioned net)
        if not self.trainer.config.spectral_norm and type(self.model.net).__name__ == "SmallConvNet":
            ref = make_net(seed).state_dict()
            assert all(torch.equal(v, ref[k]) for k, v in self.model.net.state_dict().items())
        cfg = self.trainer.config
        self.recipe = (f"{cfg.negatives}, {cfg.mcmc_steps} steps, step {cfg.step_size:g}, noise {cfg.noise_scale}, "
                       f"clip {cfg.grad_clip}, lr {cfg.lr:g} b1 {cfg.adam_beta1:g}, batch {cfg.batch_size}, "
                       f"l2 {cfg.l2:g}, data noise {cfg.data_noise:g}, SN {cfg.spectral_norm}")
        self.persistent = self.trainer.buffer is not None
        self.sample_steps = default_sample_steps(cfg, is_vector=False)  # `ebmlab sample`'s default
        self.train_k = cfg.mcmc_steps

    def train_until(self, clock: "CpuClock", target: float) -> None:
        """Train through ``Trainer.fit``, the loop `ebmlab train` runs (its divergence guard and rollback,
        checkpoints every ``checkpoint_every`` steps), until ``clock`` reaches ``target`` CPU-s or the run's
        steps are done. The stop is checked at every metrics row (``log_every`` = 25 steps)."""
        stop = _StopAt(clock, target)
        self.trainer.callbacks.append(stop)
        try:
            self.trainer.fit()      # the stop request is honoured once: the next train_until trains on
        finally:
            self.trainer.callbacks.remove(stop)

    @property
    def rollbacks(self) -> int:
        return self.trainer.rollbacks

    @property
    def done(self) -> bool:
        return self.trainer.step >= self.trainer.config.steps

    def save(self) -> None:
        self.trainer.save()

    @property
    def steps(self) -> int:
        return self.trainer.step

    def sample_noise(self, n: int, n_steps: int, seed: int) -> torch.Tensor:
        from ebmlab.tasks.open import Run
        from ebmlab.tasks.sample import draw_samples
        # the weights `ebmlab sample` uses: the EMA of the weights for a run with ema_decay, else the model
        run = Run(Path("."), self.trainer.sampling_model(), self.trainer.config, self.trainer.data_desc)
        x, _, _ = draw_samples(run, n, n_steps=n_steps, seed=seed)
        return x

    def buffer_states(self, n: int, seed: int) -> torch.Tensor:
        s = self.trainer.buffer.states
        return s[torch.randint(0, s.shape[0], (n,), generator=torch.Generator().manual_seed(seed))]


class _StopAt:
    """A ``Trainer`` callback: ``request_stop`` once ``clock`` has reached ``target`` CPU-s (``fit``
    finishes the step and returns, as after Ctrl-C)."""

    def __init__(self, clock: CpuClock, target: float) -> None:
        self.clock, self.target = clock, target

    def on_log(self, trainer, row: dict[str, float]) -> None:
        if self.clock.now() >= self.target:
            trainer.request_stop()


class EbmkitRow:
    """ebmkit through its public API, knobs set by its update rule x' = x - eps*clamp(dE/dx) + sigma*z."""

    def __init__(self, spec: str, seed: int) -> None:
        import ebm
        u = UVA
        self.net = make_net(seed)
        self.energy = _NegF(self.net)
        torch.manual_seed(seed)            # ebmkit draws batches, buffer slots and noise from the global RNG
        self.sampler = ebm.LangevinDynamics(step_size=u["step_size"], steps=u["steps"], noise_scale=u["noise"],
                                            grad_clip=u["grad_clamp"], clamp=(-1.0, 1.0))
        self.buffer = ebm.ReplayBuffer(u["buffer"], (1, 8, 8), reinit_prob=u["reinit"],
                                       init_fn=lambda shape: 2 * torch.rand(shape) - 1)
        loss = ebm.ContrastiveDivergence(self.sampler, buffer=self.buffer, energy_reg=u["alpha"])
        opt = torch.optim.Adam(self.net.parameters(), lr=u["lr"], betas=u["betas"])
        self.trainer = ebm.Trainer(self.energy, loss, optimizer=opt, device="cpu")
        self.x_train = digits()[0]
        self.recipe = ("ebmkit 0.16 LangevinDynamics(step 10, 60 steps, noise 0.005, grad_clip 0.03, clamp [-1,1]), "
                       "ReplayBuffer(8192, reinit 0.05, uniform), ContrastiveDivergence(energy_reg 0.1), "
                       "Adam 1e-4 betas (0, 0.999), batch 128")
        self.persistent, self.sample_steps, self.train_k = True, u["sample_steps"], u["steps"]

    def step(self) -> None:
        self.trainer.fit(self.x_train, steps=1, batch_size=UVA["batch"], verbose=False)

    @property
    def steps(self) -> int:
        return self.trainer.step_count

    def sample_noise(self, n: int, n_steps: int, seed: int) -> torch.Tensor:
        with torch.random.fork_rng(devices=[]):   # do not disturb the training stream
            torch.manual_seed(seed)
            self.net.eval()
            x = self.sampler.sample(self.energy, uniform(n), steps=n_steps).detach()
            self.net.train()
        return x

    def buffer_states(self, n: int, seed: int) -> torch.Tensor:
        d = self.buffer.data
        return d[torch.randint(0, d.shape[0], (n,), generator=torch.Generator().manual_seed(seed))]


class _NegF(torch.nn.Module):
    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -self.net(x)


class HandUvaRow:
    """The UvA deep-energy tutorial's loop, written out (model output = f = -E, its 'score')."""

    def __init__(self, spec: str, seed: int) -> None:
        u = UVA
        self.net = make_net(seed)
        self.g = torch.Generator().manual_seed(seed + 1)
        self.rng = random.Random(seed + 2)
        self.nprng = np.random.default_rng(seed + 3)
        self.examples = list(uniform(u["buffer"], self.g).chunk(u["buffer"]))
        self.opt = torch.optim.Adam(self.net.parameters(), lr=u["lr"], betas=u["betas"])
        self.x_train = digits()[0]
        self._perm, self._pos, self._steps = torch.randperm(len(self.x_train), generator=self.g), 0, 0
        self.recipe = ("hand-written: 60 steps, step 10, noise 0.005, grad clamp 0.03, L2 0.1, FIFO buffer 8192, "
                       "5 % re-init, Adam 1e-4 betas (0, 0.999), batch 128")
        self.persistent, self.sample_steps, self.train_k = True, u["sample_steps"], u["steps"]

    def langevin(self, x: torch.Tensor, steps: int, g: torch.Generator) -> torch.Tensor:
        u = UVA
        was = self.net.training
        self.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        x = x.clone().requires_grad_(True)
        with torch.enable_grad():
            for _ in range(steps):
                x.data.add_(u["noise"] * torch.randn(x.shape, generator=g)).clamp_(-1.0, 1.0)
                (-self.net(x)).sum().backward()
                x.grad.data.clamp_(-u["grad_clamp"], u["grad_clamp"])
                x.data.add_(-u["step_size"] * x.grad.data)
                x.grad.zero_()
                x.data.clamp_(-1.0, 1.0)
        for p in self.net.parameters():
            p.requires_grad_(True)
        self.net.train(was)
        return x.detach()

    def step(self) -> None:
        u = UVA
        b = u["batch"]
        if self._pos + b > len(self.x_train):
            self._perm, self._pos = torch.randperm(len(self.x_train), generator=self.g), 0
        real = self.x_train[self._perm[self._pos:self._pos + b]]
        self._pos += b
        real = (real + u["data_noise"] * torch.randn(real.shape, generator=self.g)).clamp(-1.0, 1.0)
        n_new = int(self.nprng.binomial(b, u["reinit"]))
        start = torch.cat([uniform(n_new, self.g), torch.cat(self.rng.choices(self.examples, k=b - n_new))])
        fake = self.langevin(start, u["steps"], self.g)
        self.examples = (list(fake.chunk(b)) + self.examples)[: u["buffer"]]
        real_out, fake_out = self.net(torch.cat([real, fake])).chunk(2)
        loss = u["alpha"] * (real_out ** 2 + fake_out ** 2).mean() + fake_out.mean() - real_out.mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self._steps += 1

    @property
    def steps(self) -> int:
        return self._steps

    def sample_noise(self, n: int, n_steps: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return self.langevin(uniform(n, g), n_steps, g)

    def buffer_states(self, n: int, seed: int) -> torch.Tensor:
        idx = torch.randint(0, len(self.examples), (n,), generator=torch.Generator().manual_seed(seed))
        return torch.cat([self.examples[i] for i in idx.tolist()])


def make_row(spec: str, seed: int, workdir: Path):
    kind = spec.split(":", 1)[0]
    if kind == "ebmlab":
        return EbmlabRow(spec, seed, workdir)
    return {"ebmkit": EbmkitRow, "hand": HandUvaRow}[kind](spec, seed)


# ----------------------------------------------------------------------------- one row (worker process)
def run_worker(spec: str, budget: float, seed: int, workdir: Path) -> None:
    torch.set_num_threads(1)
    from ebmlab.metrics.frechet import fd_ratio
    x_train, x_test = digits()
    n = len(x_train)
    fd_ratio(x_train[:64], x_train, x_test)            # train the feature net now, outside the budget
    tag = safe(spec)
    row = make_row(spec, seed, workdir)
    out = {"row": spec, "recipe": row.recipe, "budget_cpu_s": budget, "checkpoints": [], "status": "running"}
    clock = CpuClock()
    wall0 = time.time()
    targets = [f * budget for f in FRACTIONS]
    try:
        for target in targets:
            clock.start()
            if hasattr(row, "train_until"):
                row.train_until(clock, target)
            else:
                while clock.now() < target:
                    row.step()
            clock.stop()
            ck = {"cpu_s": round(clock.used, 1), "steps": row.steps, "wall_s": round(time.time() - wall0, 1)}
            if getattr(row, "rollbacks", 0):        # divergences the run's guard rolled back (lr halved each)
                ck["rollbacks"] = row.rollbacks
            if hasattr(row, "save"):
                row.save()
            t_eval = time.process_time()
            x = row.sample_noise(n, row.sample_steps, seed=1000)
            ck["noise_steps"] = row.sample_steps
            ck["fd_noise"] = fd_ratio(x, x_train, x_test)["ratio"]
            if row.train_k != row.sample_steps:
                ck["fd_noise_k"] = fd_ratio(row.sample_noise(n, row.train_k, seed=1000), x_train, x_test)["ratio"]
                ck["k"] = row.train_k
            if row.persistent:
                xb = row.buffer_states(n, seed=1001)
                ck["fd_buffer"] = fd_ratio(xb, x_train, x_test)["ratio"]
            ck["eval_cpu_s"] = round(time.process_time() - t_eval, 1)
            out["checkpoints"].append(ck)
            torch.save({"noise": x[:64].clone(), "buffer": xb[:64].clone() if row.persistent else None},
                       workdir / f"{tag}.pt")
            _write_json(workdir / f"{tag}.json", out)
            print(f"[{spec}] {ck}", flush=True)
            if getattr(row, "done", False):   # a run with its own length (a cosine lr) ended before the budget
                break
        out["status"] = "finished"
    except Exception as e:       # a diverged or crashed row is a result too
        out["status"] = f"failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        traceback.print_exc()
    _write_json(workdir / f"{tag}.json", out)


def safe(spec: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in spec)


def _write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- the report
def machine() -> str:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    try:
        import ebm
        ebmkit = getattr(ebm, "__version__", "?")
    except ImportError:
        ebmkit = "not installed"
    return (f"{cpu}, {os.cpu_count()} cores (shared; load average {os.getloadavg()[0]:.1f} at start), "
            f"torch {torch.__version__}, 1 thread per row, Python {platform.python_version()}, ebmkit {ebmkit}")


def report(workdir: Path, rows: list[str], prefix: Path, command: str, started: str, mach: str) -> None:
    results = []
    for spec in rows:
        p = workdir / f"{safe(spec)}.json"
        results.append(json.loads(p.read_text()) if p.exists() else {"row": spec, "status": "not run", "checkpoints": []})
    budget = max((r.get("budget_cpu_s", 0) for r in results), default=0)
    fmt = lambda v: "—" if v is None else f"{v:.2f}"
    lines = [f"# Digits sample quality at equal CPU budget ({budget:.0f} s of process CPU time per row)", "",
             f"Command: `{command}`  ", f"Date: {started}  ", f"Machine: {mach}", "",
             "FD ratio = FD(samples, test) / FD(train, test) in the digits-classifier features (1.0 = real data; "
             "lower is better); 1437 samples (= train set size) vs the 360 test images. "
             "**Noise**: fresh uniform noise in [-1, 1] + the method's own sampling recipe "
             "(ebmlab: `ebmlab sample`'s default, the training kernel for K steps on short-run presets and 100 on persistent ones; UvA/ebmkit: 256 steps, the "
             "tutorial's generation). **Noise @K**: the same but only the training chain length K. "
             "**Buffer**: states from the replay buffer (persistent methods). "
             "Budget = `time.process_time()` of the row's own process spent in training (evaluation excluded), "
             "1 torch thread; wall-clock on this shared machine is not a fair budget.", "",
             "| row | status | steps done | FD ratio noise (sampling steps) | noise @K | buffer | "
             f"noise at {FRACTIONS[0]:g} / {FRACTIONS[1]:g} budget | wall s |",
             "|---|---|---:|---:|---:|---:|---|---:|"]
    for r in results:
        cks = r["checkpoints"]
        last = cks[-1] if cks else {}
        prog = " / ".join(fmt(c.get("fd_noise")) for c in cks[:-1]) or "—"
        noise = f"{fmt(last.get('fd_noise'))} ({last.get('noise_steps', '—')})" if last else "—"
        k = f"{fmt(last.get('fd_noise_k'))} (K={last['k']})" if "k" in last else "—"
        status = r["status"] if r["status"] in ("finished", "not run") else (
            f"at {last.get('cpu_s', 0):.0f} s" if r["status"] == "running" else r["status"])
        lines.append(f"| {r['row']} | {status} | {last.get('steps', '—')} | {noise} | {k} | "
                     f"{fmt(last.get('fd_buffer'))} | {prog} | {last.get('wall_s', '—')} |")
    if any(r["status"] != "finished" for r in results):
        lines += ["", "**PARTIAL**: some rows had not finished when this table was written; their numbers are from "
                  "the last checkpoint reached (CPU seconds in the status column). The run writes the final "
                  "table over this file when every row is done."]
    lines += ["", "Recipes:", ""] + [f"- `{r['row']}`: {r.get('recipe', '')}" for r in results]
    lines += ["", f"Sample grids (64 each, the first of the FD samples): `{prefix.name}.png`.", ""]
    prefix.parent.mkdir(parents=True, exist_ok=True)
    prefix.with_suffix(".md").write_text("\n".join(lines))
    _grids(workdir, results, prefix.with_suffix(".png"))
    print("\n".join(lines))


def tile_digits(x: torch.Tensor, rows: int) -> torch.Tensor:
    """[rows * 8, 1, 8, 8] digits in [-1, 1] -> one [rows * 10, 80] image, 8 per row, grey 1-px frames."""
    t = torch.nn.functional.pad(x[:, 0].clamp(-1, 1), (1, 1, 1, 1), value=0.0)
    return t.reshape(rows, 8, 10, 10).permute(0, 2, 1, 3).reshape(10 * rows, 80)


def _grids(workdir: Path, results: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = []
    for r in results:
        p = workdir / f"{safe(r['row'])}.pt"
        if not p.exists():
            continue
        d = torch.load(p)
        last = r["checkpoints"][-1] if r["checkpoints"] else {}
        panels.append((f"{r['row']}\nnoise, {last.get('noise_steps')} steps: {last.get('fd_noise', float('nan')):.2f}",
                       d["noise"]))
        if d.get("buffer") is not None:
            panels.append((f"{r['row']}\nbuffer: {last.get('fd_buffer', float('nan')):.2f}", d["buffer"]))
    if not panels:
        return
    cols = min(len(panels), 4)
    nrows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(2.8 * cols, 3.2 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (title, x) in zip(axes.flat, panels):
        ax.imshow(tile_digits(x[:64], 8).numpy(), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_rows(script: str, rows: list[str], workdir: Path, budget: float, seed: int, jobs: int = 0,
             extra: tuple[str, ...] = ()) -> None:
    """Run ``script --worker ROW`` for every row, ``jobs`` at a time (0: all at once), one torch thread
    each; every row logs to ``workdir/<row>.log``. Shared by the digits and JEM benchmarks."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    pending, running = list(rows), []
    while pending or running:
        while pending and len(running) < (jobs or len(rows)):
            row = pending.pop(0)
            log = open(workdir / f"{safe(row)}.log", "w")
            cmd = [sys.executable, script, "--worker", row, "--budget-seconds", str(budget),
                   "--seed", str(seed), "--workdir", str(workdir), *extra]
            running.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env))
        time.sleep(2)
        running = [p for p in running if p.poll() is None]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-seconds", type=float, default=600.0, help="process CPU seconds of training per row")
    ap.add_argument("--quick", action="store_true", help="60 s per row, written to results/digits_quick.*")
    ap.add_argument("--rows", default=",".join(DEFAULT_ROWS))
    ap.add_argument("--extra-rows", default="", help="comma-separated extra rows, e.g. ebmlab:digits+mcmc_steps=60")
    ap.add_argument("--jobs", type=int, default=0, help="rows run at once (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="results prefix (default results/digits or results/digits_quick)")
    ap.add_argument("--workdir", default=None, help="where rows write JSON/samples (default /tmp/ebmlab-digits-<prefix>)")
    ap.add_argument("--report-only", action="store_true", help="only rebuild the table/PNG from --workdir")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    budget = 60.0 if args.quick and args.budget_seconds == 600.0 else args.budget_seconds
    prefix = Path(args.out) if args.out else ROOT / "results" / ("digits_quick" if args.quick else "digits")
    workdir = Path(args.workdir or f"/tmp/ebmlab-digits-{prefix.name}")
    workdir.mkdir(parents=True, exist_ok=True)
    if args.worker:
        run_worker(args.worker, budget, args.seed, workdir)
        return
    rows = [r for r in args.rows.split(",") + args.extra_rows.split(",") if r]
    command = "python benchmarks/digits.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    meta_p = workdir / "meta.json"
    if args.report_only and meta_p.exists():
        meta = json.loads(meta_p.read_text())
    else:
        meta = {"command": command, "started": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "machine": machine()}
        _write_json(meta_p, meta)
    if not args.report_only:
        run_rows(__file__, rows, workdir, budget, args.seed, args.jobs)
    report(workdir, rows, prefix, meta["command"], meta["started"], meta["machine"])


if __name__ == "__main__":
    main()
