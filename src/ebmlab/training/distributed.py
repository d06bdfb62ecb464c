"""Many training processes on PyTorch's own engine: torchrun's environment, the process group,
the few collectives the trainer needs, and ``ebmlab train --nproc N``'s launcher.

A run with N processes is started by torch's elastic launcher — ``torchrun --standalone
--nproc-per-node N -m ebmlab train ...`` or ``ebmlab train --nproc N ...``, which calls the same
launcher (``torch.distributed.launcher.api.elastic_launch``). Each process reads RANK, WORLD_SIZE
and LOCAL_RANK from the environment the launcher sets; without them (or with WORLD_SIZE=1) a run is
the plain single process, and nothing here touches it.

The backend follows the device: gloo for CPU tensors, NCCL for CUDA (one GPU per local rank).
What the trainer does with the group (``training.trainer``): DistributedDataParallel averages the
gradients of the loss; rank r draws slice r of every global batch from one epoch permutation;
each rank runs its own chains on its own shard of the replay buffer, with a chain generator seeded
from (seed, rank); the divergence verdict and Ctrl-C are agreed on with one all-reduce per step;
metrics are all-reduced means; rank 0 alone writes the run directory, gathering every rank's
buffer shard and generator state into each checkpoint.
"""
from __future__ import annotations

import ctypes
import datetime
import os
import signal
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from ebmlab.errors import EBMError, RankError

T = TypeVar("T")
_ENV_MARKERS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
# How long a process waits for the others to join before it gives up (EBMLAB_JOIN_TIMEOUT, seconds):
# torch's own default is 30 minutes of silence for a rank whose peer never started. Collectives
# keep torch's 30 minutes once joined: rank 0 alone writes checkpoints and plots while the others wait.
JOIN_TIMEOUT_S = 300.0
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class Group:
    """This process's place in the run: ``rank`` of ``world_size`` (``local_rank`` on its machine).

    ``active`` is False for a single process: then every collective below is the identity.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes the run directory, prints and calls callbacks."""
        return self.rank == 0

    # ------------------------------------------------------------------ collectives
    def any(self, flags: Sequence[bool], device: torch.device) -> list[bool]:
        """Per flag: True if it is True on any rank (one all-reduce for all flags)."""
        if not self.active:
            return [bool(f) for f in flags]
        t = torch.tensor([float(f) for f in flags], device=_coll_device(device))
        wait(dist.all_reduce(t, op=dist.ReduceOp.MAX, async_op=True))
        return [bool(v) for v in t.tolist()]

    def mean(self, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each 0-d tensor averaged over ranks (one all-reduce for the whole dict; same keys on all ranks)."""
        if not self.active or not values:
            return values
        names = list(values)
        t = torch.stack([values[k].detach().float().reshape(()) for k in names])
        t = t.to(_coll_device(t.device))
        wait(dist.all_reduce(t, op=dist.ReduceOp.SUM, async_op=True))
        t = t / self.world_size
        return {k: t[i] for i, k in enumerate(names)}

    def all_objects(self, obj: Any) -> list[Any]:
        """Every rank's (small, picklable) ``obj``, in rank order, on every rank."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def gather_to_main(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` (CPU tensors inside) in rank order on rank 0; None on the others."""
        if not self.active:
            return [obj]
        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def together(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` here and learn whether it failed on any rank: a rank whose ``fn`` raised
        re-raises it, the others raise EBMError with the first failing rank's message — so no rank
        waits forever in a collective for a peer that has given up (e.g. rank 0 could not lock or
        create the run directory)."""
        if not self.active:
            return fn()
        try:
            result, failure = fn(), None
        except Exception as e:                      # noqa: BLE001 — re-raised below, on every rank
            result, failure = None, e
        reports = self.all_objects(None if failure is None else str(failure).splitlines()[0][:300])
        if failure is not None:
            raise failure
        for r, message in enumerate(reports):
            if message is not None:
                raise EBMError(f"rank {r} stopped: {message}")
        return result

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


SINGLE = Group()


def _coll_device(device: torch.device) -> torch.device:
    """Where a collective's tensor must live: NCCL takes CUDA tensors, gloo CPU ones."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu") if device.type != "cuda" else device


def launched() -> bool:
    """True in a process started by torchrun / the elastic launcher with more than one process."""
    return all(k in os.environ for k in _ENV_MARKERS) and int(os.environ["WORLD_SIZE"]) > 1


def current() -> Group:
    """This process's group, from torchrun's variables (SINGLE when not launched)."""
    if not launched():
        return SINGLE
    try:
        return Group(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))
    except ValueError:
        raise EBMError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (set by torchrun)") from None


def backend_for(device: torch.device) -> str:
    """gloo for CPU, nccl for CUDA (EBMError in one line if this PyTorch has no such backend)."""
    if device.type == "cuda":
        if not dist.is_nccl_available():
            raise EBMError("device cuda with several processes needs NCCL, which this PyTorch build lacks")
        return "nccl"
    if device.type != "cpu":
        raise EBMError(f"training with several processes supports cpu (gloo) and cuda (nccl), not {device.type}")
    if not dist.is_gloo_available():
        raise EBMError("training with several CPU processes needs gloo, which this PyTorch build lacks")
    return "gloo"


def init(device: torch.device) -> tuple[Group, torch.device]:
    """Join the process group of a launched run (once per process); (group, this rank's device).

    A single process returns (SINGLE, device) untouched. With CUDA, rank r trains on
    ``cuda:LOCAL_RANK``: one GPU per process."""
    group = current()
    if not group.active:
        return SINGLE, device
    if device.type == "cuda":
        if group.local_rank >= torch.cuda.device_count():
            raise RankError(f"local rank {group.local_rank} has no GPU: this machine has "
                           f"{torch.cuda.device_count()}; start at most that many processes")
        device = torch.device("cuda", group.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        _die_with_launcher()
        if device.type == "cpu":           # before the process group starts gloo's threads: they inherit it
            pin_to_core(group)
        global _poll_waits
        _poll_waits = device.type == "cpu" and poll_waits_setting(group)
        wait = join_timeout()
        try:
            dist.init_process_group(backend_for(device), timeout=datetime.timedelta(seconds=wait))
        except EBMError:
            raise
        except Exception as e:           # a rank that cannot reach the others: torch's long message, shortened
            raise RankError(f"rank {group.rank} could not join the other {group.world_size - 1} process(es) "
                           f"within {wait:g} s (EBMLAB_JOIN_TIMEOUT): "
                           f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}") from None
        from torch.distributed.distributed_c10d import _set_pg_timeout
        _set_pg_timeout(COLLECTIVE_TIMEOUT)
    return group, device


def pin_to_core(group: Group) -> int | None:
    """Linux, CPU, with EBMLAB_PIN_CORES=1: when this machine's processes of the run are as many as
    the cores the launcher may use, bind local rank r (all of its threads) to the r-th of those
    cores; the core, or None.

    Why it exists: ranks meet twice a step (the gradient all-reduce, the agreement), and a rank
    woken from that wait may be put on its waker's core — where the other rank is computing —
    until the scheduler moves it back; in lock-step every such stall stops both ranks. Why it is
    off by default: on the shared 2-core machine it measured -5.7 % ms/step in one set of
    interleaved rounds and +19 % in another (benchmarks/results/distributed_overhead.md) — a bound
    rank cannot leave a core another program is using. A run with fewer processes than cores is
    never bound (it does not own the cores)."""
    setting = os.environ.get("EBMLAB_PIN_CORES", "0")
    if setting not in ("0", "1"):
        raise EBMError(f"EBMLAB_PIN_CORES={setting!r} must be 0 (ranks free to move, the default) or 1 "
                       f"(bind each rank to a core when the run uses every core)")
    if setting == "0" or not group.active or not hasattr(os, "sched_setaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    local = int(os.environ.get("LOCAL_WORLD_SIZE", group.world_size))
    if len(cores) != local or not 0 <= group.local_rank < local:
        return None
    core = cores[group.local_rank]
    try:
        os.sched_setaffinity(0, {core})
    except OSError:                        # e.g. a container that forbids it: run unpinned
        return None
    for tid in os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ():
        try:                               # the threads started before this one (torch's, the launcher's)
            os.sched_setaffinity(int(tid), {core})
        except (OSError, ValueError):      # a thread that has ended meanwhile
            pass
    return core


# whether this process waits for collectives by polling (``wait``): EBMLAB_POLL_WAITS, read once by ``init``
_poll_waits = False


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one, else all of them)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def poll_waits_setting(group: Group | None = None) -> bool:
    """EBMLAB_POLL_WAITS: "1" waits in a collective by polling, "0" asleep; unset (or "auto", the default):
    poll when this machine runs no more of the run's processes than it has usable cores, else sleep.

    Why polling: in lock-step training each rank waits for the others twice a step (the gradient
    all-reduce, the agreement). A sleeping rank leaves its core idle, and on a virtual machine an idle
    vCPU is halted and slow to wake; a polling rank stays on its core, yielding it between polls to its
    own gloo threads. On the 2-core VM it was faster in every quiet-machine run at global batch 256
    (2 processes vs 1 process x 1 thread 2.04x / 1.63x / 1.52x / 1.50x polling against 1.86x / 1.44x /
    1.35x / 1.46x asleep: results/distributed_speed.md, distributed_speed_b256_r5.md,
    distributed_speed_s10_b256_r5.md, distributed_speed_s11_b256_r5.md; batch 128 1.29x vs 1.27x), and
    within 3 % at load 3-6 (distributed_overhead.md, table 4: 272 vs 266 ms a step). Why only then: with
    more processes than cores a poller takes turns from a rank that has work, which is why MPI libraries,
    which also poll by default, stop polling when oversubscribed.
    Its cost is the waiting time spent on a core (shown as CPU use), so "0" is there for a shared
    machine whose other programs need those cycles. CPU (gloo) only: a CUDA collective's wait is on the
    GPU stream, not the host.

    Args:
        group: this run's processes (``LOCAL_WORLD_SIZE`` of the launcher counts this machine's share);
            None: the setting alone (``auto`` then means polling).
    """
    setting = os.environ.get("EBMLAB_POLL_WAITS", "auto")
    if setting not in ("0", "1", "auto", ""):
        raise EBMError(f"EBMLAB_POLL_WAITS={setting!r} must be 0 (sleep while waiting for the other processes), "
                       f"1 (poll: faster on an otherwise idle machine, burns the cores) or auto (the default: "
                       f"poll unless the run has more processes on this machine than cores)")
    if setting in ("0", "1"):
        return setting == "1"
    if group is None:
        return True
    local = int(os.environ.get("LOCAL_WORLD_SIZE", group.world_size))
    return local <= usable_cores()


def polling() -> bool:
    """Whether this process polls in collectives (on the CPU, as ``init`` decided from EBMLAB_POLL_WAITS)."""
    return _poll_waits


def wait(work: Any) -> None:
    """Wait for an async collective (``dist.*(..., async_op=True)``): by polling it when ``init``
    chose to (``poll_waits_setting``; yielding the core between polls), else asleep."""
    if _poll_waits:
        while not work.is_completed():
            os.sched_yield()
    work.wait()                             # re-raises a failed collective's error


def polling_allreduce_hook() -> Callable[..., torch.futures.Future]:
    """A DDP comm hook (``ddp.register_comm_hook(None, hook)``) for polling waits: each gradient
    bucket averaged as DDP's default does (divided by the world size, then summed: exact for 2^k ranks,
    so the weights equal the default's), every bucket's all-reduce started as soon as it is ready
    (communication still overlaps the rest of the backward), and all of them waited for by polling
    when the last bucket is ready, so DDP's own wait at the end of the backward finds them done."""
    pending: list[Any] = []

    # a plain function without annotations: DDP reads the hook's __name__, and accepts its annotations
    # only as the very objects dist.GradBucket / Future[Tensor], which postponed (string) ones are not
    def polling_allreduce(state, bucket):  # type: ignore[no-untyped-def]
        t = bucket.buffer()
        t.div_(dist.get_world_size())
        work = dist.all_reduce(t, async_op=True)
        pending.append(work)
        if bucket.is_last():
            for w in pending:
                wait(w)
            pending.clear()
        return work.get_future().then(lambda fut: fut.value()[0])

    return polling_allreduce


def join_timeout() -> float:
    """Seconds to wait for the other processes at start-up: EBMLAB_JOIN_TIMEOUT, else JOIN_TIMEOUT_S."""
    text = os.environ.get("EBMLAB_JOIN_TIMEOUT", "")
    if not text:
        return JOIN_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1e6:
        raise EBMError(f"EBMLAB_JOIN_TIMEOUT={text!r} is not a number of seconds between 0 and 1e6")
    return value


def shutdown() -> None:
    """Leave the process group (at the end of a command)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _die_with_launcher() -> None:
    """Linux: this worker gets SIGKILL when its launcher dies. torch's launcher starts workers in
    sessions of their own, so killing the launcher (or its process group) would otherwise leave
    them training; with this, killing the launcher ends the whole run, which ``--resume`` then
    continues from the last complete checkpoint."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)        # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:              # the launcher died before the call: nothing will send the signal
        os._exit(1)


def rank_seed(seed: int, rank: int) -> int:
    """The chain generator's seed of ``rank``: ``seed`` itself on rank 0 (so rank 0 starts its chains
    as a single process would), a SeedSequence mix of (seed, rank) on the others, which decorrelates
    the ranks' chains and reproduces them run after run."""
    if rank == 0:
        return seed
    return int(np.random.SeedSequence([seed & (2**63 - 1), rank]).generate_state(1, np.uint64)[0] >> 1)


# ---------------------------------------------------------------------------- the launcher
def max_processes(device: torch.device) -> int:
    """How many processes ``--nproc`` may start: one per GPU on CUDA, one per CPU core on the CPU
    (more processes than cores only time-share the cores, and each holds a copy of the model)."""
    if device.type == "cuda":
        return torch.cuda.device_count()
    return os.cpu_count() or 1


def check_nproc(nproc: int, device: torch.device) -> None:
    """EBMError in one line when ``nproc`` processes cannot run on ``device`` here."""
    limit = max_processes(device)
    if nproc > limit:
        what = f"{limit} GPU(s)" if device.type == "cuda" else f"{limit} CPU core(s)"
        raise EBMError(f"--nproc {nproc} is more processes than this machine has {what}; "
                       f"use --nproc {limit} or fewer")
    if nproc > 1 and device.type not in ("cpu", "cuda"):
        raise EBMError(f"--nproc > 1 supports --device cpu (gloo) or cuda (nccl), not {device.type}")


def launch(argv: Sequence[str], nproc: int) -> int:
    """Run ``python -m ebmlab *argv`` as ``nproc`` processes on this machine through torch's elastic
    launcher (what ``torchrun --standalone --nproc-per-node nproc`` does); the workers' exit status.

    Ctrl-C reaches the launcher, which passes SIGINT on to every worker: they agree to stop at the
    next step boundary, write a checkpoint and exit. The launcher's own log lines are silenced: each
    worker prints what it has to say (rank 0 prints errors and the summary)."""
    import logging
    import uuid

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    # torch's elastic loggers set their own levels: quiet each of them (workers speak for themselves)
    for name in [*logging.root.manager.loggerDict, "torch.distributed.elastic", "torch.distributed.launcher"]:
        if name.startswith(("torch.distributed.elastic", "torch.distributed.launcher")):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0,
                          monitor_interval=0.1)
    try:
        elastic_launch(config, sys.executable)("-m", "ebmlab", *argv)
    except ChildFailedError as e:
        codes = [f.exitcode for f in e.failures.values()]
        if any(c and c > 0 for c in codes):       # a worker's own error: rank 0 has printed its line
            return next(c for c in codes if c and c > 0)
        # killed by a signal: nothing printed why, so the launcher says which rank died of what
        dead = ", ".join(f"rank {f.local_rank} ({f.signal_name()})" for f in e.failures.values())
        print(f"ebmlab: error: a training process died: {dead}; continue from the last complete "
              f"checkpoint with --resume", file=sys.stderr)
        return 1
    except SignalException:
        return 130
    return 0
