"""What ``ebmlab plot`` does (and ``train`` at its end): a run's pictures, written beside it."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ebmlab.errors import EBMError
from ebmlab.rundir.lock import refuse_if_training
from ebmlab.tasks.evaluate import chain_traces
from ebmlab.tasks.open import Run, test_data
from ebmlab.tasks.sample import draw_samples, write_samples
from ebmlab.viz.plots import plot_energy_histograms, plot_traces, plot_training_curves


def plot_run(run: Run, seed: int = 0) -> list[Path]:
    """The run's pictures: 2-D panel (data, density, energy, samples) or a sample grid; training curves."""
    if not Path(run.path).is_dir():      # an `ebmlab export` file, which open_run takes like a run
        raise EBMError(f"plot writes a run's pictures into its run directory; {run.path} is an exported file: draw "
                       f"its samples with ebmlab sample {run.path} --out FILE.png")
    refuse_if_training(run.path, "plot (it writes the run's pictures)")
    written = []
    if run.is_vector and run.data["event_shape"][0] == 2:
        x, _, _ = draw_samples(run, 2000, seed=seed)
        written += write_samples(run, x, run.path / "plot.png", panel=True)
    elif not run.is_vector or run.data.get("image_shape"):     # binary images are trained as vectors
        x, _, _ = draw_samples(run, 64, seed=seed)
        written += write_samples(run, x, run.path / "samples.png")
    written.append(plot_traces(chain_traces(run, seed), run.path / "traces.png", title="chains from noise"))
    if "composite" not in run.data:      # a composite has no data of its own to set its energies against
        x_data = test_data(run)[:1000]
        x_model, _, _ = draw_samples(run, x_data.shape[0], seed=seed)
        with torch.no_grad():
            written.append(plot_energy_histograms(run.model.log_density(x_data), run.model.log_density(x_model),
                                                  run.path / "energy_hist.png"))
    metrics = run.path / "metrics.jsonl"
    if metrics.exists():
        rows = [json.loads(l) for l in metrics.read_text().splitlines() if l.strip()]
        written.append(plot_training_curves(rows, run.path / "curves.png"))
    return written
