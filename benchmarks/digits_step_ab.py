"""Where a `digits`-preset training step spends its CPU, and an interleaved A/B/C of what session 9 changed.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/digits_step_ab.py --rounds 12 --chunk 50
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/digits_step_ab.py --profile 200

Each variant is the benchmark row's run (``benchmarks/digits.py`` ``EbmlabRow``: ``start_run`` on
``--data digits --preset digits``, seed 0, trained by ``Trainer.fit``), all in ONE process, trained in
alternating chunks of ``--chunk`` steps (order rotated each round, the first round a warm-up), process CPU
time per chunk:

  A  before session 9: Adam's per-tensor loop, ``clip_grad_norm_(params, inf)`` for the guard's gradient norm,
     the first convolution's input gradient by oneDNN (``conv_grad.one_channel_conv`` replaced by the module);
  B  the exact cuts: Adam ``foreach``, ``get_total_norm`` — A's weights bit for bit (the hashes must match);
  C  B + the one-input-channel convolution's input gradient by matmul + fold (nets/conv_grad.py): what the
     trainer does now; its weights differ from A's by rounding.

``--profile N``: cProfile and torch.profiler tables of N steps of the current code (C), after 50 warm-up steps.
"""
from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import pstats
import statistics
import time
from pathlib import Path

import torch

from ebmlab.nets import conv_grad
from ebmlab.training.api import start_run


class _StopAt:
    """A Trainer callback: request_stop once the step reaches ``at`` (checked at each metrics row)."""

    def __init__(self) -> None:
        self.at = 0

    def on_log(self, trainer, row) -> None:
        if trainer.step >= self.at:
            trainer.request_stop()


def _plain(conv, x):
    return conv(x)


def weights_hash(trainer) -> str:
    h = hashlib.sha256()
    for state in (trainer.model.state_dict(), trainer.ema.state_dict() if trainer.ema is not None else {}):
        for k, v in sorted(state.items()):
            h.update(k.encode())
            h.update(v.detach().numpy().tobytes())
    return h.hexdigest()[:16]


def build(variant: str, workdir: Path):
    trainer, _ = start_run("digits", workdir / variant, force=True, preset="digits", seed=0, steps=10 ** 8)
    if variant == "A":          # Adam as torch picks it on the CPU by itself: the per-tensor loop
        c = trainer.config
        trainer.optimizer = torch.optim.Adam(trainer.model.parameters(), lr=c.lr, betas=(c.adam_beta1, c.adam_beta2))
        trainer.scheduler = torch.optim.lr_scheduler.LambdaLR(trainer.optimizer, lambda s: 1.0)  # constant lr
    return trainer


def ab(rounds: int, chunk: int, workdir: Path) -> dict:
    orig_conv, orig_norm = conv_grad.one_channel_conv, torch.nn.utils.get_total_norm
    variants = ["A", "B", "C"]
    trainers = {v: build(v, workdir) for v in variants}
    stops = {v: _StopAt() for v in variants}
    for v in variants:
        trainers[v].callbacks.append(stops[v])

    def mode(v: str) -> None:
        conv_grad.one_channel_conv = orig_conv if v == "C" else _plain
        params = list(trainers["A"].model.parameters())
        torch.nn.utils.get_total_norm = ((lambda grads: torch.nn.utils.clip_grad_norm_(params, float("inf")))
                                         if v == "A" else orig_norm)

    ms = {v: [] for v in variants}
    try:
        for r in range(rounds + 1):
            order = variants[r % 3:] + variants[:r % 3]
            for v in order:
                mode(v)
                stops[v].at = trainers[v].step + chunk
                t0 = time.process_time()
                trainers[v].fit()
                if r > 0:                                   # round 0: warm-up (imports, first allocations)
                    ms[v].append((time.process_time() - t0) / chunk * 1e3)
    finally:
        conv_grad.one_channel_conv, torch.nn.utils.get_total_norm = orig_conv, orig_norm
    out = {"rounds": rounds, "chunk": chunk, "steps_each": trainers["A"].step, "load_avg_end": os.getloadavg()}
    for v in variants:
        out[v] = {"ms_per_step_median": round(statistics.median(ms[v]), 2),
                  "steps_per_cpu_s": round(1e3 / statistics.median(ms[v]), 2), "weights_hash": weights_hash(trainers[v])}
    for v in ("B", "C"):
        out[f"{v}/A"] = round(statistics.median(b / a for a, b in zip(ms["A"], ms[v])), 3)
    return out


def profile(n: int, workdir: Path) -> str:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile
    trainer = build("P", workdir)
    stop = _StopAt()
    trainer.callbacks.append(stop)
    stop.at = 50
    trainer.fit()
    stop.at += n
    pr = cProfile.Profile()
    t0 = time.process_time()
    pr.enable()
    trainer.fit()
    pr.disable()
    lines = [f"cProfile, {n} steps: {1e3 * (time.process_time() - t0) / n:.1f} CPU ms/step with the profiler on"]
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("cumtime").print_stats(30)
    lines.append(s.getvalue())
    stop.at += 50
    with torch_profile(activities=[ProfilerActivity.CPU]) as p:
        trainer.fit()
    lines.append(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--chunk", type=int, default=50, help="steps per chunk (a multiple of log_every = 25)")
    ap.add_argument("--profile", type=int, default=0, help="profile N steps of the current code instead")
    ap.add_argument("--workdir", default="/tmp/ebmlab-digits-step-ab")
    args = ap.parse_args()
    torch.set_num_threads(1)
    workdir = Path(args.workdir)
    if args.profile:
        print(profile(args.profile, workdir))
    else:
        print(json.dumps(ab(args.rounds, args.chunk, workdir), indent=1))


if __name__ == "__main__":
    main()
