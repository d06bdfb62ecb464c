"""Issue 12: a user's own network trained through ``ebmlab.train`` against the built-in network, and the
per-step cost of feeding data through a Dataset / DataLoader instead of an in-memory tensor.

Part 1 (quality): on built-in 2-D sets, the default 2-D recipe (same steps, seed, sampler) trains
  * ``built-in``: ebmlab's own network (standardising layer + 3x128 SiLU MLP), and
  * ``ResidualMLP``: tests/user_networks.py's residual MLP (width 128, 2 blocks), passed as ``model=``,
and reports each one's exact test NLL (quadrature over the support box) minus the true density's NLL.
Part 2 (data pipeline): seconds per step of the same short run fed (a) the training tensor, (b) a
TensorDataset, (c) a DataLoader over a plain map-style Dataset whose __getitem__ returns one row;
median of ``--repeats`` runs, one thread, and the ratio to (a).

usage: python benchmarks/user_network.py [--quick] [--out benchmarks/results/user_network.md]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

import ebmlab
from ebmlab.data import toy2d
from ebmlab.estimate.nll import exact_nll

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from user_networks import ResidualMLP  # noqa: E402


class Rows(Dataset):
    """A plain map-style Dataset: one row per __getitem__ call (the slow path of the stream)."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def quality(sets: list[str], steps: int) -> list[str]:
    rows = []
    for name in sets:
        test = toy2d.make(name, 5000, torch.Generator().manual_seed(12345))
        true = float(-toy2d.true_log_density(name, test).double().mean())
        gaps = {}
        for label, model in (("built-in", "auto"), ("ResidualMLP", None)):
            torch.manual_seed(0)
            net = model if model is not None else ResidualMLP(dim=2, width=128, blocks=2)
            t0 = time.time()
            run = ebmlab.train(net, name, steps=steps, seed=0, progress=False)
            gaps[label] = (exact_nll(run.model, test)["nll"] - true, time.time() - t0)
        rows.append(f"| {name} | {gaps['built-in'][0]:+.4f} | {gaps['ResidualMLP'][0]:+.4f} | "
                    f"{gaps['built-in'][1]:.0f} / {gaps['ResidualMLP'][1]:.0f} |")
        print(rows[-1], flush=True)
    return rows


def pipeline(steps: int, repeats: int) -> list[str]:
    x = toy2d.make("moons", 20000, torch.Generator().manual_seed(0))
    feeds = {"tensor": lambda: x, "TensorDataset": lambda: TensorDataset(x),
             "DataLoader(Dataset)": lambda: DataLoader(Rows(x), batch_size=256)}
    times: dict[str, list[float]] = {k: [] for k in feeds}
    for _ in range(repeats):               # interleaved, so a slow spell of the machine hits every feed
        for name, make in feeds.items():
            t0 = time.perf_counter()
            ebmlab.train("auto", make(), steps=steps, seed=0, progress=False, batch_size=256)
            times[name].append((time.perf_counter() - t0) / steps)
    base = statistics.median(times["tensor"])
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        rows.append(f"| {name} | {1000 * med:.2f} | {med / base:.3f} | {', '.join(f'{1000 * t:.2f}' for t in ts)} |")
        print(rows[-1], flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one set, 300 steps; pipeline 100 steps x 3")
    ap.add_argument("--out", default=None)
    ap.add_argument("--parts", default="quality,pipeline", help="comma-separated: quality, pipeline")
    ap.add_argument("--sets", default=None, help="comma-separated 2-D sets for the quality part")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    torch.set_num_threads(1)
    sets = args.sets.split(",") if args.sets else (["moons"] if args.quick else ["moons", "eight-gaussians", "rings"])
    steps = 300 if args.quick else 3000
    out = Path(args.out or f"benchmarks/results/user_network{'_quick' if args.quick else ''}.md")
    q = quality(sets, steps) if "quality" in parts else ["| (not run) | | | |"]
    p = pipeline(100 if args.quick else 300, 3 if args.quick else 5) if "pipeline" in parts else ["| (not run) | | | |"]
    cmd = "python " + " ".join(["benchmarks/user_network.py", *sys.argv[1:]])
    out.write_text("\n".join([
        f"# A user's network through ebmlab.train; Dataset/DataLoader feeding{' (quick)' if args.quick else ''}",
        "", f"Command: `{cmd}` (one process, one thread, {time.strftime('%Y-%m-%d')}).", "",
        f"## Exact test NLL minus the true NLL (nats), default 2-D recipe, {steps} steps, seed 0",
        "", "| set | built-in network | ResidualMLP (user's, via `ebmlab.train(model, ...)`) | seconds built-in / user |",
        "|---|---:|---:|---|", *q, "",
        "ResidualMLP: tests/user_networks.py, width 128, 2 residual blocks, no standardising layer; the built-in "
        "network is Standardize + 3x128 SiLU MLP. Both get the data's support box and the same recipe.", "",
        "## Seconds per training step by data feed (same recipe, batch 256)", "",
        "| feed | ms / step (median) | ratio to tensor | all runs (ms) |", "|---|---:|---:|---|", *p, "",
        "The DataLoader feed reads 256 items per step through `Dataset.__getitem__` (ebmlab draws the indices); "
        "a TensorDataset is indexed as one tensor.", ""]))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
