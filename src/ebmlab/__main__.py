"""``python -m ebmlab`` and the ``ebmlab`` console script: the same command line (and the entry point torchrun
needs). Kept light: importing ``ebmlab`` pulls in no torch, so a Ctrl-C during the seconds torch takes to load
lands in ``run``'s handler below (one line, exit 130) rather than as a traceback from inside an import.
``run`` is called from the main thread (a console script, ``-m``), where Python lets it set a signal handler."""
import os
import signal
import sys


def run() -> None:
    # A Ctrl-C while torch loads must not raise: a KeyboardInterrupt inside torch's C++ initialisation aborts
    # the process (pybind11's "terminate called ..."). It is noted, and acted on once the import is done.
    interrupted: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
    try:
        from ebmlab.cli import main
    except KeyboardInterrupt:         # a Ctrl-C that still got through: one line, as main says it
        interrupted.append(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted:
        print("ebmlab: interrupted", file=sys.stderr)
        sys.exit(130)
    code = main()
    if os.environ.get("WORLD_SIZE", "1") not in ("", "1"):
        # A worker of a multi-process run leaves without interpreter finalisation: the DDP wrapper
        # still holds gloo's process group, whose C++ threads, torn down during finalisation, could
        # abort the process ("terminate called without an active exception") after a run that had
        # finished and written everything — and the launcher would then kill rank 0 before its
        # summary. Every file ebmlab writes is closed and fsynced by now; only stdio needs flushing.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
