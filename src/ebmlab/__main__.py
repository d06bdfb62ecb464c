"""``python -m ebmlab``: the same command line as ``ebmlab`` (and the entry point torchrun needs)."""
import os
import sys

try:
    from ebmlab.cli import main
except KeyboardInterrupt:         # Ctrl-C before main could catch it: one line, as main says it
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
