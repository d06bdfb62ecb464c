"""The contrastive-divergence training loop, with checkpoints that resume exactly.

One optimiser step (maximum likelihood by contrastive divergence, Hinton 2002):
  1. x+ : a batch of training data (epoch-wise shuffles drawn from the run's data generator);
  2. x- : MCMC chains started from the replay buffer (persistent), from noise (short-run) or at the
     data (CD-k), advanced ``mcmc_steps`` steps of the configured kernel — detached;
  3. θ  <- θ + η ∇θ (f(x+) - f(x-))  (Adam on the objective's loss).

What the chains sample and what the loss is belong to the run's objective (``config.objective``,
``training.objectives``): plain CD, CD per class, JEM's hybrid; the loop never asks which. Labelled
objectives train a ``ConditionalEnergyModel`` (logits [B, K]); their labels are drawn with the
images (same permutation, same data generator), so the data order, and hence resume, stays exact.
An objective that needs no negatives skips step 2. The logs' file formats are ``rundir.logs``'s.

Reproducibility: all randomness of the loop comes from two ``torch.Generator`` s (data order on the
CPU, chains on the model's device) whose states are checkpointed with the model, optimiser,
scheduler, buffer and data position, so a resumed run continues bit-for-bit. Nothing uses the
global RNG after the network's initialisation.

Many processes (``training.distributed``, started by torchrun): the loss runs through
DistributedDataParallel (``_LossModule``), which averages the gradients — equal to the full
batch's since every loss is a mean over equal shards — and keeps module buffers (spectral norm)
in rank 0's values; the chains sample the unwrapped model, so DDP never sees their forward
passes. Rank r takes slice r of each global batch of the one epoch permutation (the data
generator is seeded alike on all ranks), runs its own chains with a generator seeded from
(seed, rank) on its own ``buffer_size / N`` shard of the replay buffer. The divergence verdict and
a Ctrl-C are agreed on by one all-reduce per step, so all ranks roll back or stop together;
metrics rows are means over ranks; rank 0 alone writes the run directory, and its checkpoints
hold every rank's shard and generator (``other_ranks``), so a resume with the same number of
processes continues bit-for-bit. A different number is refused. A single process has none of this.

EMA of the weights (``config.ema_decay``, ``training.ema``): after each step that passed the guard the
trainer moves its average towards the new weights, on the device; the training chains keep sampling the
raw weights (as Gao et al. 2021 and the score-model codes do), generation and evaluation use the average
(``sampling_model``; the run directory's ``ema.safetensors``). It is checkpointed, restored on resume and on
a rollback with the weights, and identical on every rank (the weights are).
"""
from __future__ import annotations

import copy
import signal
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from ebmlab.rundir.build import warn_dtype_conversions
from ebmlab.rundir.checkpoint import latest_checkpoint, load_checkpoint, load_ema, save_checkpoint
from ebmlab.models.conditional import ConditionalEnergyModel
from ebmlab.rundir.config import RunConfig
from ebmlab.rundir.logs import append_event, append_metrics, truncate_metrics
from ebmlab.rundir.tensorboard import open_tensorboard
from ebmlab.data.sources import DataSet
from ebmlab.errors import EBMError
from ebmlab.models.energy import EnergyModel
from ebmlab.samplers.compiled import compile_sampler, compile_seconds
from ebmlab.samplers.run import run_chains
from ebmlab.training.buffer import ReplayBuffer
from ebmlab.training.distributed import SINGLE, Group, polling, polling_allreduce_hook, rank_seed
from ebmlab.training.ema import WeightEMA
# check_step is called as a module global (not bound at import): tests/helpers_runs.py patches it here
from ebmlab.training.guard import (REMEDIES, ChainScale, DivergenceError, chain_quantities, check_step,
                                  param_norm, param_quantities)
from ebmlab.training.negatives import make_init_fn, sampler_from_config
from ebmlab.training.objectives import Batch, make_objective
from ebmlab.training.precision import AutocastDensity, autocast
from ebmlab.training.schedule import lr_factor, phase


# the stats the divergence guard watches, where the objective and the chains report them; the
# weights' and the chains' own quantities (training.guard) are checked with them, in one sync
_GUARDED = ("f_pos", "f_neg", "loss", "grad_norm", "mcmc_grad_norm")
# the parts of the training state that differ between ranks (the rest is the same on all of them)
RANK_STATE = ("buffer", "gen_mcmc", "metric_sums")


class Callback(Protocol):
    """Hooks the trainer calls; implement any subset (missing methods are skipped)."""

    def on_train_start(self, trainer: "Trainer") -> None: ...
    def on_log(self, trainer: "Trainer", row: dict[str, float]) -> None: ...
    def on_checkpoint(self, trainer: "Trainer", step: int) -> None: ...
    def on_train_end(self, trainer: "Trainer", result: "TrainResult") -> None: ...


@dataclass
class TrainResult:
    step: int
    status: str            # "finished", "interrupted"
    seconds: float
    last_row: dict[str, float]
    start_step: int = 0    # the step this call of fit() started at (a resumed run's checkpoint)

    @property
    def trained(self) -> int:
        """Steps trained by this call of fit() (not counting the steps before a resume)."""
        return self.step - self.start_step


class Trainer:
    """Trains ``model`` (built from ``config`` and ``data_desc``) on ``dataset`` into ``run_dir``.

    Args:
        config: the run's hyper-parameters.
        dataset: train/test tensors.
        data_desc: the JSON description stored as data.json (support box, scaling...).
        model: the EnergyModel to train (freshly built or loaded); a ConditionalEnergyModel for
            objectives that need labels ("conditional", "jem"), with ``dataset.y_train`` holding them.
        run_dir: where checkpoints and logs go; None trains in memory only.
        callbacks: objects with any of the ``Callback`` methods (called on rank 0 only).
        group: this process's place among the run's processes (``training.distributed.init``);
            the default is a single process.
        device: the device to train on (default ``config.device``; rank r of a CUDA run: cuda:r).
    """

    def __init__(self, config: RunConfig, dataset: DataSet, data_desc: dict[str, Any], model: EnergyModel,
                 run_dir: Path | None = None, callbacks: list[Any] | tuple = (), group: Group = SINGLE,
                 device: torch.device | None = None) -> None:
        self.config, self.dataset, self.data_desc = config, dataset, data_desc
        self.group = group
        self.device = torch.device(config.device) if device is None else device
        self.model = model.to(self.device)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        # what rank 0 writes (logs, events); the other ranks write nothing
        self._log_dir = self.run_dir if group.is_main else None
        # TensorBoard's copy of the metrics rows and pictures (rundir/tensorboard.py), or None
        self.tensorboard = open_tensorboard(self._log_dir, config.tensorboard)
        self.callbacks = list(callbacks)
        check_shards(config, dataset, group.world_size)
        # the stored training set (uint8 for image folders and digits) stays in host memory; each
        # step moves one batch to the device and converts it there (``_next_batch``)
        self.x_train = dataset.train
        self.objective = make_objective(config)
        self.y_train = self._check_labels(dataset, self.model)
        # the objective's own state (NCE: its noise and log Z), before the optimiser that trains it
        self.objective.setup(self.model, self.x_train, dataset.to_model, self.device, config.seed)
        self.step = 0
        self.rollbacks = 0
        self.lr_scale = 1.0
        self._stop_requested = False
        self.stop_signal: int | None = None    # the signal that asked for the stop (SIGINT / SIGTERM), if one did
        self._stop_agreed = False          # several processes: a stop every rank has heard of
        # running sums for the next metrics row: checkpointed, so a run resumed between two log
        # rows writes the same rows as an uninterrupted one
        self._sums: dict[str, torch.Tensor] = {}
        self._count = 0
        self._saved_step: int | None = None     # step of the checkpoint on disk that matches memory
        self._seed_generators(config.seed)
        self._params = [*self.model.parameters(), *self.objective.parameters()]
        # foreach on the CPU too (torch picks it by itself only on CUDA): the same arithmetic, bit for bit, in a
        # few fused calls instead of ~10 ops per tensor (digits preset: 0.56 -> 0.36 ms a step, 1 thread)
        self.optimizer = torch.optim.Adam(self._params, lr=config.lr, betas=(config.adam_beta1, config.adam_beta2),
                                          foreach=True if self.device.type == "cpu" else None)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        # mixed precision (config.precision): the network under autocast, chains and weights float32
        self.scaler = torch.amp.GradScaler(self.device.type) if config.precision == "fp16" else None
        self.kernel = self.init_fn = self.buffer = None
        if self.objective.needs_negatives:
            target = self.objective.chain_target(self.model)     # what the negative chains sample
            if config.precision != "fp32":
                target = AutocastDensity(target, config.precision, self.device)
            self.kernel = sampler_from_config(config, target, data_desc)
            if config.compile:                       # the chains' density through torch.compile
                self.kernel = compile_sampler(self.kernel)
            self.init_fn = make_init_fn(data_desc, config.init, self.x_train, self.device, dataset.to_model)
            if config.negatives == "persistent":     # this rank's shard of the buffer
                self.buffer = ReplayBuffer(config.buffer_size // group.world_size, self.init_fn,
                                           config.reinit_prob, self.gen_mcmc)
        self._perm = torch.randperm(self.x_train.shape[0], generator=self.gen_data)
        self._pos = 0
        self._chain_scale = ChainScale(data_desc, self.device)
        self._limits = {"f_pos": config.max_abs_f, "f_neg": config.max_abs_f, "grad_norm": config.max_grad_norm,
                        "mcmc_grad_norm": config.max_grad_norm, "chain_range": config.max_chain_scale,
                        "chain_step": config.max_chain_scale, "param_max_abs": config.max_abs_param,
                        "param_update": config.max_param_update}
        # the EMA of the weights generation uses (None: config.ema_decay unset), started at the initial weights
        self.ema = self._make_ema()
        # rollback target for a divergence before the first checkpoint: the state at step 0
        self._initial: tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, torch.Tensor] | None] | None = None
        self._ddp = None
        if group.active:
            import inspect
            from torch.nn.parallel import DistributedDataParallel as DDP
            # rank 0's module buffers (spectral norm's u, v) to every rank at each loss pass; newer
            # torch renamed broadcast_buffers to forward_sync_buffers
            sync = ("forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DDP).parameters
                    else "broadcast_buffers")
            # score matching sees f only through its gradient in x: a constant offset of f (the last layer's
            # bias) gets no gradient, and DDP would wait for it forever unless told to look for such parameters
            self._ddp = DDP(_LossModule(self.model, self.objective, self._net), **{sync: True},
                            device_ids=[self.device.index] if self.device.type == "cuda" else None,
                            find_unused_parameters=self.objective.score_only)
            if polling():       # (EBMLAB_POLL_WAITS) the gradient all-reduce waited for by polling
                self._ddp.register_comm_hook(None, polling_allreduce_hook())

    def _check_labels(self, dataset: DataSet, model: Any) -> torch.Tensor | None:
        """The training labels on the device if the objective needs them, checked once here (never per step)."""
        name = self.objective.name
        if not self.objective.needs_labels:
            return None
        if dataset.y_train is None:
            raise EBMError(f"objective {name!r} needs labelled data (labels = 'builtin' or a .npy)")
        if not isinstance(model, ConditionalEnergyModel):
            raise EBMError(f"objective {name!r} needs a ConditionalEnergyModel, got {type(model).__name__}")
        y = dataset.y_train
        if y.shape != (dataset.train.shape[0],) or y.dtype != torch.int64:
            raise EBMError(f"training labels must be int64 [N={dataset.train.shape[0]}], got {y.dtype} {tuple(y.shape)}")
        model.check_class(y)
        return y.to(self.device)

    # ----------------------------------------------------------------- randomness and schedule
    def _seed_generators(self, seed: int) -> None:
        # the data order is the same on every rank (one permutation, sliced); the chains are the rank's own
        self.gen_data = torch.Generator().manual_seed(seed)
        self.gen_mcmc = torch.Generator(device=self.device).manual_seed(rank_seed(seed + 1, self.group.rank))

    def _lr_factor(self, step: int) -> float:
        # lr_scale < 1 after a divergence rollback; LambdaLR reads it live at every step
        return lr_factor(self.config, step, self.lr_scale)

    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(x [b, *event], labels [b] or None): the next slice of the epoch's permutation.

        With N processes the slice is the global batch and this rank takes its b / N rows of it:
        each epoch every example is used once, by one rank.

        The rows are gathered from the stored set in host memory, only the batch goes to the device
        (uint8 images: a quarter of the float32 bytes), and it becomes float32 in the model scale
        there — elementwise, so exactly the values a whole-set conversion would give.
        """
        n, b = self.x_train.shape[0], min(self.config.batch_size, self.x_train.shape[0])
        if self._pos + b > n:
            self._perm = torch.randperm(n, generator=self.gen_data)
            self._pos = 0
        idx = self._perm[self._pos:self._pos + b]
        self._pos += b
        if self.group.active:
            share = b // self.group.world_size
            idx = idx[self.group.rank * share:(self.group.rank + 1) * share]
        x = self.dataset.to_model(self.x_train[idx.to(self.x_train.device)].to(self.device))
        return x, (self.y_train[idx.to(self.device)] if self.y_train is not None else None)

    # ----------------------------------------------------------------- one step
    def train_step(self) -> dict[str, torch.Tensor]:
        """One step of the objective; returns detached on-device stats.

        Raises DivergenceError after the optimiser step if anything of the step — f, the loss, the
        gradients, the chains, or the weights the update produced — is non-finite or out of range.
        The weights in memory then hold the bad update: the caller must not count, log or
        checkpoint the step (``fit`` stops or rolls back), so no checkpoint ever holds it.
        """
        c = self.config
        x_pos, y_pos = self._next_batch()
        if c.data_noise:
            x_pos = x_pos + c.data_noise * torch.randn(x_pos.shape, generator=self.gen_mcmc, device=self.device)
        x_neg, diag = self._negatives(x_pos, y_pos) if self.objective.needs_negatives else (None, None)
        # the schedule's factor this step (a rollback's lower lr counts too): what the score-matching
        # floor's "lr" schedule scales by (training/objectives.py UniformFloor)
        # and where the step is in the run (dsm's noise curriculum follows it)
        batch = Batch(x_pos, y_pos, x_neg, self.gen_mcmc, self.optimizer.param_groups[0]["lr"] / c.lr,
                      phase(c, self.step))
        if self._ddp is None:
            loss, stats = self.objective.loss(self.model, batch, self._net)
        else:                               # through DDP: the backward averages the ranks' gradients
            loss, stats = self._ddp(batch)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        # the gradients' total norm only: clip_grad_norm_(params, inf) computed the same norm and then
        # multiplied every gradient by 1.0 (one more pass over them, changing nothing the guard lets through)
        grad_norm = torch.nn.utils.get_total_norm([q.grad for q in self._params if q.grad is not None])
        if self.scaler is not None:
            # fp16: an overflowing scaled gradient is the scaler's business (it skips this update and
            # lowers its scale), not a divergence; f, the loss and the chains are still guarded
            overflow = ~torch.isfinite(grad_norm)
            stats["amp_skipped"] = overflow.float()
            grad_norm = torch.where(overflow, torch.zeros_like(grad_norm), grad_norm)
        stats["loss"] = loss.detach()
        stats["grad_norm"] = grad_norm.detach()
        if diag is not None:
            stats["accept"] = diag.acceptance_rate.mean()
            if diag.mean_grad_norm is not None:
                stats["mcmc_grad_norm"] = diag.mean_grad_norm.mean()
        guarded = {k: stats[k] for k in _GUARDED if k in stats}
        if x_neg is not None:
            guarded.update(chain_quantities(x_neg, self._chain_scale, c, stats.get("mcmc_grad_norm")))
        with torch.no_grad():
            norm_before = param_norm(self._params)
        if self.scaler is None:
            self.optimizer.step()
            self.scheduler.step()
        else:
            self.scaler.step(self.optimizer)
            self.scaler.update()
            with warnings.catch_warnings():   # a skipped update makes torch warn about the order
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler")
                self.scheduler.step()         # the schedule counts training steps, skipped or not
        with torch.no_grad():
            norm_after = param_norm(self._params)
            guarded.update(param_quantities(self._params, norm_before, norm_after))
        check_step(self.step + 1, guarded, self._limits)
        self._update_ema()                  # only an update that passed the guard enters the average
        return stats

    def _negatives(self, x_pos: torch.Tensor, y_pos: torch.Tensor | None) -> tuple[torch.Tensor, Any]:
        """(x_neg [B, *event] detached, chain diagnostics): one run of the negative chains, B = len(x_pos)."""
        c = self.config
        n_neg = x_pos.shape[0]
        if self.buffer is not None:
            idx, x0 = self.buffer.sample(n_neg, self.gen_mcmc)
        elif c.negatives == "cd":
            x0 = x_pos
        else:
            x0 = self.init_fn(n_neg, self.gen_mcmc)
        self.objective.before_chains(y_pos)
        x_neg, diag = run_chains(self.kernel, x0, c.mcmc_steps, self.gen_mcmc)
        if self.buffer is not None:
            self.buffer.update(idx, x_neg)
        return x_neg.detach(), diag

    def _net(self, fn: Any, *args: Any) -> torch.Tensor:
        """A forward pass of the network, under autocast for bf16/fp16, returned as float32.

        fp32: a plain call (``nullcontext``, and ``.float()`` of a float32 tensor is itself)."""
        with autocast(self.config.precision, self.device):
            out = fn(*args)
        return out.float()

    # ----------------------------------------------------------------- the loop
    def request_stop(self) -> None:
        """Ask ``fit`` to stop as Ctrl-C does: it finishes the current step, checkpoints and returns
        status "interrupted". Callable from a callback or before ``fit``; honoured once (``fit``
        clears it on return, so a later ``fit`` trains on). With several processes, a request on
        any rank stops every rank at the same step."""
        self._stop_requested = True

    def fit(self) -> TrainResult:
        """Train until ``config.steps``; Ctrl-C, SIGTERM (or ``request_stop``) finishes the current step,
        checkpoints and returns."""
        t0 = time.time()
        start_step = self.step
        self._call("on_train_start")
        last_row: dict[str, float] = {}
        status = "finished"
        if self.config.on_divergence == "rollback" and self.step == 0 and self._initial is None:
            # what a rollback restores when training diverges before its first checkpoint; copied
            # once (the buffer at most), so a poisoned step 1 never becomes anything to restore
            self._initial = ({k: v.detach().clone() for k, v in self.model.state_dict().items()},
                             copy.deepcopy(self.train_state()), self._ema_state())
        with _DeferStopSignals(self):
            while self.step < self.config.steps:
                if self._stop_agreed if self.group.active else self._stop_requested:
                    status = "interrupted"
                    break
                try:
                    stats, err = self.train_step(), None
                except DivergenceError as e:
                    err = e
                if self.group.active:
                    err = self._agree(err)
                if err is not None:
                    self._handle_divergence(err)
                    continue
                self.step += 1
                self._saved_step = None
                sums = self._sums
                for k, v in stats.items():
                    sums[k] = sums[k] + v if k in sums else v.clone()
                self._count += 1
                c = self.config
                if self.step % c.log_every == 0 or self.step == c.steps:
                    sums = self.group.mean(sums)    # every row is a mean over steps and over ranks
                    last_row = {"step": self.step, **{k: float(v) / self._count for k, v in sums.items()},
                                "lr": self.optimizer.param_groups[0]["lr"], "seconds": time.time() - t0}
                    if c.compile:     # the part of "seconds" spent compiling, reported apart
                        last_row["compile_seconds"] = compile_seconds(self.kernel)
                    self._sums, self._count = {}, 0
                    if self._log_dir is not None:
                        self._append_metrics(last_row)
                    self._call("on_log", last_row)
                if self.step % c.checkpoint_every == 0 or self.step == c.steps:
                    self.save()
        if status == "interrupted" and self.run_dir is not None and self._saved_step != self.step:
            self.save()
        self._stop_requested = self._stop_agreed = False     # honoured: a later fit() trains on
        if self.tensorboard is not None:
            self.tensorboard.flush()
        result = TrainResult(self.step, status, time.time() - t0, last_row, start_step)
        self._call("on_train_end", result)
        return result

    def _agree(self, err: DivergenceError | None) -> DivergenceError | None:
        """Several processes: one all-reduce of (diverged here, Ctrl-C here). If any rank diverged,
        every rank gets the same DivergenceError (the lowest such rank's) and all roll back or stop
        together; a Ctrl-C on any rank stops all of them at this step boundary."""
        diverged, stop = self.group.any([err is not None, self._stop_requested], self.device)
        self._stop_agreed = self._stop_agreed or stop
        if not diverged:
            return None
        seen = self.group.all_objects(None if err is None else (err.quantity, err.step, err.value))
        quantity, step, value = next(s for s in seen if s is not None)
        return DivergenceError(quantity, step, value, self._limits.get(quantity))

    def _handle_divergence(self, err: DivergenceError) -> None:
        """Stop, or roll back to the last state that passed the guard: the newest checkpoint (every
        checkpoint on disk passed it), else the state at step 0; halve the lr, new seed, bounded retries."""
        c = self.config
        # the knobs this objective has (an objective of one's own without ``remedies`` gets CD's)
        err = err.with_remedies(getattr(self.objective, "remedies", REMEDIES))
        ck = latest_checkpoint(self.run_dir) if self.run_dir is not None else None
        if c.on_divergence != "rollback" or self.rollbacks >= c.max_rollbacks or (ck is None and self._initial is None):
            append_event(self._log_dir, {"event": "diverged", "step": err.step, "quantity": err.quantity,
                             "value": err.value, "message": str(err)})
            raise err
        # restore() reloads rollbacks/lr_scale as they were at the checkpoint; the retry count and
        # the learning-rate cut must survive it, or a run that keeps diverging retries forever
        rollbacks, lr_scale = self.rollbacks + 1, self.lr_scale * 0.5
        if ck is not None:
            self.restore(ck)
        else:
            model_state, st, ema_state = self._initial
            self._load_state(0, model_state, copy.deepcopy(st), ema_state)
        self.rollbacks, self.lr_scale = rollbacks, lr_scale
        self._saved_step = None
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = base * self._lr_factor(self.scheduler.last_epoch)   # new scale now
        new_seed = c.seed + 7919 * self.rollbacks
        self._seed_generators(new_seed)
        append_event(self._log_dir, {"event": "rollback", "diverged_at": err.step, "quantity": err.quantity,
                         "restored_step": self.step, "new_seed": new_seed, "lr_scale": self.lr_scale,
                         "retry": self.rollbacks, "max_retries": c.max_rollbacks})

    # ----------------------------------------------------------------- persistence
    def train_state(self) -> dict[str, Any]:
        state = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "buffer": self.buffer.state_dict() if self.buffer is not None else None,
            "gen_data": self.gen_data.get_state(),
            "gen_mcmc": self.gen_mcmc.get_state(),
            "perm": self._perm, "pos": self._pos,
            "rollbacks": self.rollbacks, "lr_scale": self.lr_scale,
            "metric_sums": dict(self._sums), "metric_count": self._count,
            "objective": self.objective.state_dict(),
        }
        if self.scaler is not None:          # fp16: the loss scale is part of the exact state
            state["grad_scaler"] = self.scaler.state_dict()
        return state

    def save(self) -> None:
        """Write a checkpoint (rank 0; with several processes every rank's own state is gathered into it)."""
        if self.run_dir is None:
            return
        state = self.train_state()
        if self.group.active:
            mine = {k: _to_cpu(state[k]) for k in RANK_STATE}
            shards = self.group.gather_to_main(mine)
            if shards is not None:
                state["world_size"] = self.group.world_size
                state["other_ranks"] = shards[1:]
        if self.group.is_main:
            save_checkpoint(self.run_dir, self.step, self.model.state_dict(), state,
                            keep=self.config.keep_checkpoints, ema_state=self._ema_state())
            if self.tensorboard is not None:     # what a checkpoint holds, TensorBoard's files hold too
                self.tensorboard.flush()
        self._saved_step = self.step
        self._call("on_checkpoint", self.step)

    def restore(self, ck: Path) -> None:
        step, model_state, st = load_checkpoint(ck)
        warn_dtype_conversions(self.model, model_state, ck)
        n = st.get("world_size", 1)
        if n != self.group.world_size:
            raise EBMError(f"{self.run_dir} was trained with {n} process(es); resume it with --nproc {n} "
                           f"(not {self.group.world_size}): its chains and buffer are split into {n} shards")
        if self.group.rank > 0:               # this rank's chains, buffer shard and metric sums
            st = {**st, **st["other_ranks"][self.group.rank - 1]}
        st.pop("other_ranks", None)
        st.pop("world_size", None)
        self._load_state(step, model_state, st, load_ema(ck))

    def _load_state(self, step: int, model_state: dict[str, torch.Tensor], st: dict[str, Any],
                    ema_state: dict[str, torch.Tensor] | None = None) -> None:
        """Put model, EMA, optimiser, schedule, buffer, generators and metric sums as they were at ``step``."""
        self.model.load_state_dict(model_state)
        self._load_ema(ema_state)
        self.optimizer.load_state_dict(st["optimizer"])
        self.scheduler.load_state_dict(st["scheduler"])
        if self.buffer is not None and st["buffer"] is not None:
            self.buffer.load_state_dict(st["buffer"])
        self.gen_data.set_state(st["gen_data"])
        self.gen_mcmc.set_state(st["gen_mcmc"].to(self.gen_mcmc.get_state().device))
        self._perm, self._pos = st["perm"], int(st["pos"])
        self.rollbacks, self.lr_scale = int(st["rollbacks"]), float(st["lr_scale"])
        self._sums = {k: v.to(self.device) for k, v in (st.get("metric_sums") or {}).items()}
        self._count = int(st.get("metric_count", 0))
        self.objective.load_state_dict(st.get("objective"))
        if self.scaler is not None and st.get("grad_scaler"):
            self.scaler.load_state_dict(st["grad_scaler"])
        self.step = step
        self._saved_step = step
        truncate_metrics(self._log_dir, step)
        if self.tensorboard is not None:
            self.tensorboard.restart_at(step)

    # ----------------------------------------------------------------- EMA of the weights
    def _make_ema(self) -> WeightEMA | None:
        decay = self.config.ema_decay
        return WeightEMA(self.model, decay) if decay is not None else None

    def _update_ema(self) -> None:
        if self.ema is not None:
            self.ema.update()

    def _ema_state(self) -> dict[str, torch.Tensor] | None:
        """A copy of the EMA's tensors (a checkpoint or the step-0 rollback target), None without EMA."""
        if self.ema is None:
            return None
        return {k: v.detach().clone() for k, v in self.ema.state_dict().items()}

    def _load_ema(self, ema_state: dict[str, torch.Tensor] | None) -> None:
        if self.ema is None:
            return
        if ema_state is None:
            raise EBMError(f"the checkpoint of {self.run_dir} holds no EMA of the weights (ema.safetensors), which "
                           f"this run (ema_decay {self.config.ema_decay}) keeps; the run directory is damaged")
        self.ema.load_state_dict(ema_state)

    def sampling_model(self) -> EnergyModel:
        """The model generation and evaluation use: a copy holding the EMA of the weights when the run keeps
        one (``ema_decay``), else the trained model itself (not a copy). Training is untouched either way."""
        return self.ema.averaged_model() if self.ema is not None else self.model

    def resume(self) -> None:
        """Continue from the newest checkpoint in ``run_dir`` (exactly where it stopped)."""
        ck = latest_checkpoint(self.run_dir)
        if ck is None:
            # killed before its first checkpoint: this freshly built trainer *is* the run's state
            # at step 0 (network initialised from the seed, generators seeded), so start over
            if self.step != 0:
                raise EBMError(f"{self.run_dir} has no checkpoint to resume from; start it again with --force")
            truncate_metrics(self._log_dir, 0)
            if self.tensorboard is not None:
                self.tensorboard.restart_at(0)
            append_event(self._log_dir, {"event": "restart", "reason": "no checkpoint yet; training again from step 0"})
            return
        self.restore(ck)

    def _append_metrics(self, row: dict[str, float]) -> None:
        # a method, not a direct call, so tests/helpers_runs.py can tear a row mid-write here
        append_metrics(self.run_dir, row)
        if self.tensorboard is not None:
            self.tensorboard.scalars(row)

    def _call(self, hook: str, *args: Any) -> None:
        if not self.group.is_main:
            return
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(self, *args)


def check_shards(config: RunConfig, dataset: DataSet, world_size: int) -> None:
    """Several processes: the global batch and the buffer must split into equal shards (equal
    shards make DDP's average of the ranks' mean gradients the full batch's mean gradient)."""
    n = world_size
    if n == 1:
        return
    batch = min(config.batch_size, dataset.train.shape[0])
    if batch % n:
        raise EBMError(f"the global batch ({batch}) must be a multiple of the number of processes ({n}); "
                       f"set --batch-size to a multiple of {n}")
    if config.negatives == "persistent" and config.buffer_size % n:
        raise EBMError(f"the replay buffer ({config.buffer_size}) must be a multiple of the number of "
                       f"processes ({n}): each holds an equal shard; set --buffer-size to a multiple of {n}")


class _LossModule(torch.nn.Module):
    """The objective's loss as a module's forward, so DistributedDataParallel can wrap it: DDP
    hooks ``forward``, while objectives call ``model.log_density`` / ``model.logits``."""

    def __init__(self, model: EnergyModel, objective: Any, net: Any) -> None:
        super().__init__()
        self.model, self.objective, self.net = model, objective, net
        # the objective's own parameters (NCE's log Z), so DDP averages their gradients too
        self.objective_params = torch.nn.ParameterList(objective.parameters())

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.objective.loss(self.model, batch, self.net)


def _to_cpu(obj: Any) -> Any:
    """A state with its tensors moved to the CPU (to be pickled to rank 0)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    return obj


class _DeferStopSignals:
    """Ctrl-C (SIGINT) or SIGTERM during a step only sets a flag; the loop stops at the next step boundary.

    That keeps model, optimiser, buffer and RNG states consistent for the final checkpoint. SIGTERM is what
    cluster schedulers (Slurm at a time limit or preemption, Kubernetes) and ``kill`` send before they kill:
    without a handler the process died at once, with no checkpoint since the last periodic one. A second
    signal stops at once.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, trainer: Trainer) -> None:
        self.trainer, self.previous = trainer, {}

    def __enter__(self) -> "_DeferStopSignals":
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handler) for s in self.SIGNALS}
        return self

    def _handler(self, signum, frame) -> None:
        if self.trainer._stop_requested:
            raise KeyboardInterrupt
        self.trainer._stop_requested = True
        self.trainer.stop_signal = signum

    def __exit__(self, *exc: Any) -> None:
        for s, previous in self.previous.items():
            if previous is not None:          # None: a handler not set from Python, which cannot be restored
                signal.signal(s, previous)

