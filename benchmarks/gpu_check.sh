#!/usr/bin/env bash
# The GPU check of issue 13, prepared to run in one go (< 10 minutes) on a machine with CUDA GPUs:
#   1. sampler statistics on CUDA: MALA and HMC keep a correlated Gaussian, unadjusted Langevin
#      has its known stationary bias (the laws of tests/test_samplers_stats.py, chains on cuda);
#   2. exact resume on CUDA: a run SIGKILLed after a checkpoint and resumed ends bit-identical
#      (weights, optimiser, buffer, generators) to an uninterrupted run — a 2-D persistent run and a
#      16x16 image short-run;
#   3. images/s of a short-run training step on 2048 generated 64x64x3 images, eager / bf16 /
#      compiled, one process and --nproc = all GPUs (steady-state steps only, from metrics.jsonl).
# Writes benchmarks/results/gpu_check.md. Run from the repository root:
#     bash benchmarks/gpu_check.sh            (PYTHON=/path/to/python to choose the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
# GPU_CHECK_DRY=1: a smoke run of this script itself on the CPU, tiny sizes, written to /tmp (never
# to the results file): it checks the script's code paths, it measures nothing about GPUs
if [ "${GPU_CHECK_DRY:-0}" = 1 ]; then
    export GPU_CHECK_DEVICE=cpu
    OUT="${TMPDIR:-/tmp}/gpu_check_dry.md"
else
    export GPU_CHECK_DEVICE=cuda
    OUT=benchmarks/results/gpu_check.md
    if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        echo "gpu_check: no CUDA device here (torch.cuda.is_available() is False): run it on a GPU machine" >&2
        exit 1
    fi
fi
WORK="$(mktemp -d -t ebmlab-gpu-check-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
START=$(date +%s)

# ---------------------------------------------------------------- 1. sampler statistics on CUDA
STATS=0
"$PY" - "$WORK/stats.md" <<'EOF' || STATS=$?
import math, os, sys, torch
from ebmlab.samplers.registry import make_sampler
from ebmlab.samplers.run import run_chains
dev, D, Z = torch.device(os.environ["GPU_CHECK_DEVICE"]), torch.float64, 5.0       # 5 standard errors, as the CPU tests
MU = torch.tensor([1.0, -2.0], dtype=D, device=dev)
SIGMA = torch.tensor([[1.0, 0.6], [0.6, 2.0]], dtype=D, device=dev)
PREC = torch.linalg.inv(SIGMA)
gauss2 = lambda x: -0.5 * (((x - MU) @ PREC) * (x - MU)).sum(1)
gen = lambda s: torch.Generator(device=dev).manual_seed(s)
rows, ok = [], True
def check(name, x, mean, var):
    global ok
    n = x.shape[0]
    dm, dv = abs(x.mean().item() - mean), abs(x.var().item() - var)
    good = dm < Z * math.sqrt(var / n) and dv < Z * var * math.sqrt(2 / n)
    ok &= good
    rows.append(f"| {name} | {x.mean().item():.4f} / {mean:.4f} | {x.var().item():.4f} / {var:.4f} | {'pass' if good else 'FAIL'} |")
for method, kw in (("mala", dict(step_size=0.5)), ("hmc", dict(step_size=0.3, n_leapfrog=5)), ("mh", dict(step_size=0.9))):
    n = 20000
    x0 = MU + torch.randn(n, 2, generator=gen(1), dtype=D, device=dev) @ torch.linalg.cholesky(SIGMA).T
    x, _ = run_chains(make_sampler(gauss2, method, **kw), x0, 8, gen(2))
    for i in range(2):
        check(f"{method}: correlated Gaussian, coordinate {i}", x[:, i], MU[i].item(), SIGMA[i, i].item())
mu, s2, eps = 2.0, 2.25, 1.125                                 # Langevin's known bias: var s2 / (1 - eps / (2 s2))
f = lambda x: -0.5 * (x[:, 0] - mu) ** 2 / s2
x, _ = run_chains(make_sampler(f, "langevin", step_size=eps), torch.full((20000, 1), -3.0, dtype=D, device=dev), 60, gen(8))
check("langevin: stationary law with the known bias", x[:, 0], mu, s2 / (1 - eps / (2 * s2)))
open(sys.argv[1], "w").write("| check (CUDA) | mean got / expected | variance got / expected | result |\n"
                             "|---|---|---|---|\n" + "\n".join(rows) + "\n")
print("\n".join(rows)); sys.exit(0 if ok else 1)
EOF

# ---------------------------------------------------------------- 2. exact resume on CUDA
RESUME=0
"$PY" - "$WORK" "$WORK/resume.md" <<'EOF' || RESUME=$?
import os, signal, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, "tests")
from helpers_runs import assert_runs_identical, tiny_data
from benchmarks.distributed_speed import make_blobs
from ebmlab.rundir.checkpoint import latest_checkpoint
work = Path(sys.argv[1]); rows, ok = [], True
tiny_data(work / "pts.npy"); make_blobs(work / "img.npy", n=512, size=16)
CASES = {
    "2-D persistent (MLP, replay buffer)": ["--data", str(work / "pts.npy"), "--steps", "200", "--batch-size", "64",
        "--buffer-size", "256", "--mcmc-steps", "5", "--checkpoint-every", "10", "--log-every", "5"],
    "16x16 image short-run (conv)": ["--data", str(work / "img.npy"), "--preset", "short-run", "--mcmc-steps", "10",
        "--steps", "200", "--batch-size", "64", "--checkpoint-every", "10", "--log-every", "5"],
}
train = [sys.executable, "-m", "ebmlab", "train", "--device", os.environ["GPU_CHECK_DEVICE"], "--quiet",
         "--plot-every", "1000000"]
if os.environ["GPU_CHECK_DEVICE"] == "cpu":                     # dry run: shorter
    CASES = {k: [a if a != "200" else "20" for a in v] for k, v in CASES.items()}
for i, (name, args) in enumerate(CASES.items()):
    ref, cut = work / f"ref{i}", work / f"cut{i}"
    subprocess.run(train + args + ["--out", str(ref)], check=True, stdout=subprocess.DEVNULL)
    p = subprocess.Popen(train + args + ["--out", str(cut)], stdout=subprocess.DEVNULL, start_new_session=True)
    while p.poll() is None and latest_checkpoint(cut) is None:  # kill it once a checkpoint exists, mid-run
        time.sleep(0.05)
    killed = p.poll() is None
    if killed:
        os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    subprocess.run([sys.executable, "-m", "ebmlab", "train", "--quiet", "--resume", str(cut)], check=True,
                   stdout=subprocess.DEVNULL)
    try:
        assert_runs_identical(ref, cut); verdict = "bit-identical"
    except AssertionError as e:
        ok = False; verdict = f"DIFFERENT: {str(e).splitlines()[0][:150]}"
    rows.append(f"| {name} | {verdict}{'' if killed else ' (the run ended before the kill: nothing was resumed)'} |")
open(sys.argv[2], "w").write("| run (CUDA, SIGKILL after the first checkpoint, then --resume) | final state vs uninterrupted |\n"
                             "|---|---|\n" + "\n".join(rows) + "\n")
print("\n".join(rows)); sys.exit(0 if ok else 1)
EOF

# ---------------------------------------------------------------- 3. images/s, 64x64x3 short-run
SPEED=0
"$PY" - "$WORK" "$WORK/speed.md" <<'EOF' || SPEED=$?
import json, os, sys, torch
from pathlib import Path
from benchmarks.distributed_speed import make_blobs, one_run
work = Path(sys.argv[1]); data = work / "faces64.npy"
dev, dry = os.environ["GPU_CHECK_DEVICE"], os.environ["GPU_CHECK_DEVICE"] == "cpu"
n_img, size = (256, 16) if dry else (2048, 64)
make_blobs(data, n=n_img, size=size, channels=3)
ngpu, batch, k, warm, timed = (1, 32, 3, 2, 2) if dry else (torch.cuda.device_count(), 128, 20, 10, 40)
batch = batch // ngpu * ngpu                                    # the global batch splits evenly over the GPUs
modes = {"eager (fp32)": (), "bf16": ("--precision", "bf16"), "compiled (fp32)": ("--compile",)}
nprocs = [1] if ngpu == 1 else [1, ngpu]
rows = []
for mode, flags in modes.items():
    for n in nprocs:
        out = work / "speed"
        extra = ("--device", dev, *flags, *(("--nproc", str(n)) if n > 1 else ()))
        try:
            s = one_run(data, out, extra, warm, timed, batch=batch, mcmc_steps=k) / timed
            last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
            comp = f"{last['compile_seconds']:.1f}" if "compile_seconds" in last else "-"
            rows.append(f"| {mode} | {n} | {batch / s:.0f} | {s * 1000:.1f} | {comp} |")
        except Exception as e:                                  # one failing mode must not hide the others
            rows.append(f"| {mode} | {n} | FAILED: {type(e).__name__} | | |")
        print(rows[-1], flush=True)
note = "" if ngpu > 1 else "\nOne GPU: --nproc = all GPUs is the single-process row.\n"
open(sys.argv[2], "w").write(
    f"Short-run preset, K = {k} Langevin steps, global batch {batch}, {n_img} generated {size}x{size}x3 images (seeded "
    f"colour blobs); steps {warm}..{warm + timed} timed from metrics.jsonl (start-up and compilation excluded).\n\n"
    "| mode | processes | images/s | ms/step | compile time (s) |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n" + note)
EOF

GPUS=$("$PY" -c 'import torch; print(", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())) or "none (a CPU dry run)")')
TV=$("$PY" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)')
{
    echo "# GPU check (issue 13)"
    echo
    echo "Command: \`bash benchmarks/gpu_check.sh\`; $(date -u +%Y-%m-%d), GPUs: $GPUS; torch $TV; $(( $(date +%s) - START )) s in all."
    echo
    echo "## Sampler statistics on CUDA (exit $STATS)"; echo; cat "$WORK/stats.md" 2>/dev/null || echo "not run"; echo
    echo "## Exact resume on CUDA (exit $RESUME)"; echo; cat "$WORK/resume.md" 2>/dev/null || echo "not run"; echo
    echo "## Training throughput, 64x64x3 (exit $SPEED)"; echo; cat "$WORK/speed.md" 2>/dev/null || echo "not run"
} > "$OUT"
echo "wrote $OUT"
exit $(( STATS || RESUME || SPEED ))
