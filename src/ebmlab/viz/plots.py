"""Diagnostic pictures: 2-D density panels, training curves, chain traces, energy histograms.

Sign convention as everywhere in ebmlab: ``f = log_density`` (log unnormalised density), the
energy is ``-f``, and the model density is ``exp(f) / Z``.

Matplotlib only, through the object-oriented ``Figure`` + Agg canvas — never ``pyplot`` — so
the functions hold no global state, run headless and are safe to call from worker threads.
Inputs may be torch tensors or numpy arrays. Every function writes one PNG *atomically*
(``ebmlab.atomic``: a temporary file in the same folder, then a rename), so a crash or a reader polling the
run directory never sees a half-written picture, and returns the written ``Path``.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from ebmlab.atomic import atomic_write_with
from ebmlab.box import Box, BoundsLike
from ebmlab.errors import EBMError

ArrayLike = Any  # torch.Tensor | np.ndarray | nested sequences of numbers

# metrics shown first, in this order; any other numeric key follows in first-seen order
_PREFERRED_KEYS = ("gap", "loss", "f_pos", "f_neg", "nll", "accept", "grad_norm", "lr")
_STEP_KEY = "step"


# ----------------------------------------------------------------------------- helpers

def _np(x: ArrayLike) -> np.ndarray:
    """Tensor / array / sequence -> float64 numpy array on the host (detached)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def new_figure(figsize: tuple[float, float]):
    """A matplotlib ``Figure`` of ``figsize`` inches bound to its own Agg canvas.

    No pyplot and no global figure manager, so it is safe in worker threads and leaks nothing;
    draw on it with ``fig.subplots()`` / ``fig.add_subplot()`` and write it with ``save_figure``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically (parent folders created); returns the path.

    A reader polling the folder sees the previous picture or the new one, never half a file.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_with(out, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))


def _points_2d(x: ArrayLike, name: str) -> np.ndarray:
    a = _np(x)
    if a.ndim != 2 or a.shape[1] != 2:
        raise EBMError(f"{name} must have shape [N, 2], got {tuple(a.shape)}")
    return a


@torch.no_grad()
def grid_log_density(log_density_fn: Callable[[torch.Tensor], torch.Tensor] | torch.nn.Module,
                     bounds: BoundsLike | Box, grid: int = 200,
                     batch_size: int = 16384) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate f on a ``grid x grid`` midpoint grid over a 2-D box.

    Returns ``(xs [grid], ys [grid], F [grid(y), grid(x)])`` as float64 numpy arrays; ``F[i, j]``
    is f at ``(xs[j], ys[i])`` (image layout for ``imshow(origin="lower")``). f may be -inf
    (outside a support box); NaN is kept as NaN.
    """
    (x0, x1), (y0, y1) = Box(bounds, dim=2).pairs()
    fn = getattr(log_density_fn, "log_density", None)
    fn = fn if callable(fn) else log_density_fn
    # evaluate in the model's own dtype/device when it has parameters, else float32 on the CPU
    dtype, device = torch.float32, torch.device("cpu")
    if isinstance(log_density_fn, torch.nn.Module):
        p = next(log_density_fn.parameters(), None)
        if p is not None and p.is_floating_point():
            dtype, device = p.dtype, p.device
    xs = x0 + (x1 - x0) * (np.arange(grid) + 0.5) / grid
    ys = y0 + (y1 - y0) * (np.arange(grid) + 0.5) / grid
    gx, gy = np.meshgrid(xs, ys, indexing="xy")                  # [grid(y), grid(x)]
    pts = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1))
    out = []
    for chunk in pts.split(batch_size):
        f = fn(chunk.to(device=device, dtype=dtype))
        f = f.reshape(-1)
        if f.shape[0] != chunk.shape[0]:
            raise EBMError(f"log_density_fn must map [B, 2] -> [B]; got {tuple(f.shape)} for B={chunk.shape[0]}")
        out.append(f.detach().to("cpu", torch.float64))
    return xs, ys, torch.cat(out).numpy().reshape(grid, grid)


def _scatter(ax, pts: np.ndarray, colour: str, label: str, bounds: list[tuple[float, float]]) -> None:
    finite = np.isfinite(pts).all(1)
    p = pts[finite]
    (x0, x1), (y0, y1) = bounds
    inside = (p[:, 0] >= x0) & (p[:, 0] <= x1) & (p[:, 1] >= y0) & (p[:, 1] <= y1)
    n = len(p)
    # many points: smaller, more transparent dots so dense regions still read as dense
    alpha = float(np.clip(30.0 / math.sqrt(max(n, 1)), 0.05, 0.6))
    size = 2.0 if n > 2000 else 4.0
    ax.scatter(p[:, 0], p[:, 1], s=size, alpha=alpha, c=colour, linewidths=0, rasterized=True)
    note = f"{label} (n={len(pts)}"
    if (~finite).any():
        note += f", {int((~finite).sum())} non-finite"
    if n and (~inside).any():
        note += f", {int((~inside).sum())} outside view"
    ax.set_title(note + ")")


def _frame(ax, bounds: list[tuple[float, float]]) -> None:
    ax.set_xlim(*bounds[0])
    ax.set_ylim(*bounds[1])
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")


def plot_samples_2d(samples: ArrayLike, bounds: BoundsLike | Box, path: str | os.PathLike,
                    title: str | None = None) -> Path:
    """The samples [M, 2] alone, as a scatter over the view box (what ``ebmlab sample --out x.png`` writes).

    Returns the written path."""
    b = Box(bounds, dim=2).pairs()
    fig = new_figure((5.0, 5.0))
    ax = fig.subplots()
    _scatter(ax, _points_2d(samples, "samples"), "tab:red", "samples", b)
    _frame(ax, b)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


# ----------------------------------------------------------------------------- 2-D panel

def plot_2d_panel(log_density_fn: Callable[[torch.Tensor], torch.Tensor] | torch.nn.Module,
                  data: ArrayLike, samples: ArrayLike, bounds: BoundsLike | Box,
                  path: str | os.PathLike, log_z: float | None = None, title: str | None = None,
                  grid: int = 200, energy_clip_percentile: float = 99.0) -> Path:
    """Four panels side by side: data, learned density exp(f)/Z, energy -f, model samples.

    Args:
        log_density_fn: a model (anything with ``.log_density``) or a callable f: [B, 2] -> [B].
            f = -inf (outside a support box) is fine: zero density, blank energy.
        data: training points [N, 2], or None (a composite model has no data of its own): three panels.
        samples: model samples [M, 2].
        bounds: the view box ``[(x_lo, x_hi), (y_lo, y_hi)]``, shared by all four panels.
        path: where the PNG goes.
        log_z: log Z of the model; when None it is computed from the plotted grid itself
            (midpoint rule over ``bounds``, so exact only when the mass lies inside the box).
        title: optional figure title.
        grid: points per axis of the density / energy images.
        energy_clip_percentile: energies above this percentile (of the finite ones on the grid)
            are drawn in the top colour, so a few huge energies do not wash out the picture.

    Returns:
        the written path.
    """
    b = Box(bounds, dim=2).pairs()
    data_np = _points_2d(data, "data") if data is not None else None
    samples_np = _points_2d(samples, "samples")
    xs, ys, F = grid_log_density(log_density_fn, b, grid)
    extent = (b[0][0], b[0][1], b[1][0], b[1][1])
    finite = np.isfinite(F)
    cell = (b[0][1] - b[0][0]) * (b[1][1] - b[1][0]) / grid**2

    log_z_note = "given"
    if log_z is None:
        log_z_note = "grid"
        log_z = (float(np.logaddexp.reduce(F[finite])) + math.log(cell)) if finite.any() else float("nan")

    import matplotlib

    if data_np is not None:
        fig = new_figure((17.0, 4.4))
        axes = fig.subplots(1, 4)
        _scatter(axes[0], data_np, "tab:blue", "data", b)
    else:
        fig = new_figure((13.0, 4.4))
        axes = [None, *fig.subplots(1, 3)]

    # learned density; -inf -> 0, NaN / +inf stay masked (blank)
    with np.errstate(over="ignore", invalid="ignore"):
        dens = np.where(np.isneginf(F), 0.0, np.exp(F - log_z))
    dens = np.ma.masked_invalid(dens)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="white")
    im = axes[1].imshow(dens, origin="lower", extent=extent, cmap=cmap, interpolation="nearest", aspect="equal")
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.04)
    axes[1].set_title(f"density exp(f)/Z  (log Z={log_z:.3g}, {log_z_note})")

    # energy -f: outside the support (f = -inf -> E = +inf) is blank; clip very high energies
    E = np.ma.masked_invalid(-F)
    e_fin = E.compressed()
    cmap_e = matplotlib.colormaps["magma_r"].with_extremes(bad="white")
    if e_fin.size:
        lo = float(e_fin.min())
        hi = float(np.percentile(e_fin, energy_clip_percentile))
        hi = hi if hi > lo else lo + 1.0
    else:
        lo, hi = 0.0, 1.0
    im = axes[2].imshow(np.ma.clip(E, lo, hi), origin="lower", extent=extent, cmap=cmap_e,
                        vmin=lo, vmax=hi, interpolation="nearest", aspect="equal")
    fig.colorbar(im, ax=axes[2], fraction=0.046, pad=0.04, extend="max")
    note = "" if finite.all() else f", blank: f=-inf ({int(np.isneginf(F).sum())} cells)"
    axes[2].set_title(f"energy -f (clipped at p{energy_clip_percentile:g}{note})", fontsize=9)

    _scatter(axes[3], samples_np, "tab:red", "samples", b)
    for ax in axes:
        if ax is not None:
            _frame(ax, b)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


# ----------------------------------------------------------------------------- training curves

def _number(v: Any) -> float | None:
    """A scalar metric value as float, or None when it is not a number (str, list, bool, None)."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, torch.Tensor):
        return float(v) if v.numel() == 1 else None
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    return None


def _cumulative_seconds(y: np.ndarray) -> np.ndarray:
    """Wall seconds that restart at 0 at each resume made cumulative: each drop adds the value before it."""
    out, offset = y.copy(), 0.0
    for i in range(1, len(y)):
        if y[i] < y[i - 1]:
            offset += y[i - 1]
        out[i] = y[i] + offset
    return out


def _ema(y: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's smoothing: an exponential moving average with its start-up bias removed (NaNs skipped)."""
    out = np.full_like(y, np.nan)
    acc, norm = 0.0, 0.0
    for i, v in enumerate(y):
        if np.isfinite(v):
            acc, norm = weight * acc + (1 - weight) * v, weight * norm + (1 - weight)
        if norm > 0:
            out[i] = acc / norm
    return out


def _informative(series: dict[str, tuple[np.ndarray, np.ndarray]], order: list[str]) -> tuple[list[str], dict[str, str], list[str]]:
    """(keys to draw, key -> note for its title, footnotes): a series equal to an earlier one (or to its
    negative: loss = -gap when l2 = 0) is named in that one's title; a constant one goes to a footnote."""
    kept: list[str] = []
    notes: dict[str, list[str]] = {}
    foot: list[str] = []
    for k in order:
        x, y = series[k]
        fin = y[np.isfinite(y)]
        if fin.size > 1 and np.all(fin == fin[0]):
            foot.append(f"{k} = {fin[0]:.4g} (constant)")
            continue
        twin = next(((o, sign) for o in kept for sign in (1.0, -1.0)
                     if np.array_equal(series[o][0], x) and np.array_equal(series[o][1], sign * y, equal_nan=True)), None)
        if twin is not None:
            notes.setdefault(twin[0], []).append(f"{k} = {'-' if twin[1] < 0 else ''}{twin[0]}")
            continue
        kept.append(k)
    return kept, {k: ", ".join(v) for k, v in notes.items()}, foot


def plot_training_curves(metrics: Sequence[Mapping[str, Any]], path: str | os.PathLike,
                         keys: Sequence[str] | None = None, smooth: float | None = None) -> Path:
    """A grid of line plots, one per *informative* numeric metric in the log rows.

    Args:
        metrics: metrics-log rows, e.g. ``{"step": 10, "loss": ..., "f_pos": ..., "f_neg": ...,
            "gap": ..., "accept": ..., "grad_norm": ..., "lr": ..., "nll": ...}``. Keys may be
            missing from some or all rows (``nll`` is logged only now and then); non-numeric
            values are ignored. The x axis is ``step`` where a row has it, else the row index.
        path: where the PNG goes.
        keys: which metrics to plot (default: every numeric key except ``step``).
        smooth: the EMA weight of the smoothed curve drawn over the faint raw one (TensorBoard's
            slider); default: from the number of points, so about the last 1/30 of the run is averaged.

    What is left out: a series equal to one drawn already, or to its negative (``loss = -gap``
    when l2 = 0), is named in that panel's title; a constant one (a constant learning rate) is
    listed under the figure instead of drawn on a meaningless axis. ``seconds`` restarts at 0 when
    a run is resumed; it is drawn cumulative, so it stays monotone.

    Returns:
        the written path.
    """
    raw: dict[str, tuple[list[float], list[float]]] = {}
    for i, row in enumerate(metrics):
        step = _number(row.get(_STEP_KEY))
        x = float(i) if step is None else step
        for k, v in row.items():
            if k == _STEP_KEY or (keys is not None and k not in keys):
                continue
            y = _number(v)
            if y is None:
                continue
            xs, ys = raw.setdefault(k, ([], []))
            xs.append(x)
            ys.append(y if math.isfinite(y) else float("nan"))
    series = {k: (np.asarray(xs), np.asarray(ys)) for k, (xs, ys) in raw.items()}
    if "seconds" in series:
        series["seconds"] = (series["seconds"][0], _cumulative_seconds(series["seconds"][1]))
    order = [k for k in (keys if keys is not None else _PREFERRED_KEYS) if k in series]
    order += [k for k in series if k not in order]
    order, notes, foot = _informative(series, order)

    n = max(len(order), 1)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig = new_figure((4.6 * ncols, 3.0 * nrows + (0.35 if foot else 0.0)))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    if not order:
        axes[0].text(0.5, 0.5, "no numeric metrics logged yet", ha="center", va="center")
        axes[0].set_axis_off()
    for ax, k in zip(axes, order):
        x, y = series[k]
        many = len(y) >= 10
        ax.plot(x, y, lw=0.8, alpha=0.25 if many else 1.0, color="tab:blue",
                marker="o" if len(y) < 30 else None, ms=3, label="raw" if many else None)
        if many:
            w = smooth if smooth is not None else 1.0 - 1.0 / max(2.0, len(y) / 30.0)
            ax.plot(x, _ema(y, w), lw=1.6, color="tab:blue", label=f"EMA {w:.2f}")
            ax.legend(fontsize=7, loc="best")
        fin = y[np.isfinite(y)]
        # learning rates and gradient norms span decades: log scale when positive and wide
        if fin.size and fin.min() > 0 and fin.max() / fin.min() > 100:
            ax.set_yscale("log")
        if k == "gap":
            ax.axhline(0.0, color="grey", lw=0.8, ls="--")
        title = "seconds (cumulative over resumes)" if k == "seconds" else k
        ax.set_title(title + (f"   [{notes[k]}]" if k in notes else ""), fontsize=10)
        ax.set_xlabel(_STEP_KEY)
        ax.grid(alpha=0.3)
    for ax in axes[len(order):] if order else axes[1:]:
        ax.set_axis_off()
    if foot:
        fig.text(0.01, 0.005, "not drawn: " + "; ".join(foot), fontsize=8, color="dimgrey")
        fig.tight_layout(rect=(0, 0.35 / fig.get_figheight(), 1, 1))
    else:
        fig.tight_layout()
    return save_figure(fig, path)


# ----------------------------------------------------------------------------- chain traces

def plot_traces(traces: Mapping[str, ArrayLike], path: str | os.PathLike, max_chains: int = 4,
                title: str | None = None) -> Path:
    """Per-step chain diagnostics, one row per trace (e.g. energy, acceptance, grad norm).

    Args:
        traces: name -> values ``[T, C]`` (T steps, C chains) or ``[T]`` (one chain / a summary).
            The first ``max_chains`` chains are drawn thin; when C > 1 the mean over *all*
            C chains is drawn thick in black (for 0/1 acceptance that is the acceptance rate).
            Non-finite values show as gaps.
        path: where the PNG goes.
        max_chains: how many individual chains to draw per trace.
        title: optional figure title.

    Returns:
        the written path.
    """
    names = list(traces)
    fig = new_figure((8.0, 2.4 * max(len(names), 1)))
    axes = np.atleast_1d(fig.subplots(max(len(names), 1), 1, squeeze=False, sharex=True)).ravel()
    if not names:
        axes[0].text(0.5, 0.5, "no traces", ha="center", va="center")
        axes[0].set_axis_off()
    for ax, name in zip(axes, names):
        a = _np(traces[name])
        if a.ndim == 1:
            a = a[:, None]
        if a.ndim != 2:
            raise EBMError(f"trace {name!r} must have shape [T, C] or [T], got {tuple(a.shape)}")
        a = np.where(np.isfinite(a), a, np.nan)
        t = np.arange(a.shape[0])
        for c in range(min(max_chains, a.shape[1])):
            ax.plot(t, a[:, c], lw=0.8, alpha=0.7, label=f"chain {c}")
        if a.shape[1] > 1:
            with np.errstate(invalid="ignore"), _quiet():
                ax.plot(t, np.nanmean(a, 1), lw=1.8, color="black", label=f"mean of {a.shape[1]}")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right", ncols=2)
    axes[-1].set_xlabel("step")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


class _quiet:
    """Silence numpy's 'Mean of empty slice' warning for all-NaN steps."""

    def __enter__(self):
        import warnings
        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


# ----------------------------------------------------------------------------- energy histograms

def plot_energy_histograms(f_data: ArrayLike, f_model: ArrayLike, path: str | os.PathLike,
                           bins: int = 60, title: str | None = None,
                           clip_percentiles: tuple[float, float] = (0.5, 99.5)) -> Path:
    """Overlaid histograms of the energy -f on data [N] and on model samples [M].

    A well-trained model puts its samples at the same energies as the data; model samples at
    much higher energy mean the sampler has not mixed, much lower energy means the model
    has collapsed onto a few modes.

    Args:
        f_data: f (log density) at data points, shape [N].
        f_model: f at model samples, shape [M].
        path: where the PNG goes.
        bins: number of bins, shared by both histograms.
        title: optional axes title.
        clip_percentiles: the bin range covers these percentiles of the pooled finite energies plus
            a margin of a quarter of their spread, so a few diverged samples do not squash the
            plot; counts outside the range are given in the legend.

    Returns:
        the written path.
    """
    ed, em = -_np(f_data).reshape(-1), -_np(f_model).reshape(-1)
    fig = new_figure((6.5, 4.0))
    ax = fig.subplots()
    pooled = np.concatenate([ed[np.isfinite(ed)], em[np.isfinite(em)]])
    if pooled.size == 0:
        ax.text(0.5, 0.5, "no finite energies", ha="center", va="center")
        ax.set_axis_off()
    else:
        p_lo, p_hi = np.percentile(pooled, clip_percentiles)
        # a margin past the percentiles keeps ordinary tails in view; only far outliers drop out
        margin = 0.25 * (p_hi - p_lo)
        lo, hi = max(pooled.min(), p_lo - margin), min(pooled.max(), p_hi + margin)
        if not hi > lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)
        for e, colour, label in ((ed, "tab:blue", "data"), (em, "tab:red", "model samples")):
            fin = e[np.isfinite(e)]
            shown = fin[(fin >= lo) & (fin <= hi)]
            # the median, not the mean: one diverged sample must not move the marker off the plot
            note = f"{label} (n={e.size}, median {np.median(fin):.3g}" if fin.size else f"{label} (n={e.size}"
            if fin.size - shown.size:
                note += f", {fin.size - shown.size} off-range"
            if e.size - fin.size:
                note += f", {e.size - fin.size} non-finite"
            if shown.size:
                ax.hist(shown, bins=edges, density=True, alpha=0.45, color=colour, label=note + ")")
                ax.axvline(float(np.median(fin)), color=colour, lw=1.2, ls="--")
            else:
                ax.plot([], [], color=colour, label=note + ")")
        ax.set_xlim(lo, hi)
        ax.set_xlabel("energy  -f(x)")
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)


__all__ = ["plot_2d_panel", "plot_samples_2d", "plot_training_curves", "plot_traces", "plot_energy_histograms",
           "grid_log_density"]
