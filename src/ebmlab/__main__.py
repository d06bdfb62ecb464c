"""``python -m ebmlab``: the same command line as ``ebmlab`` (and the entry point torchrun needs)."""
import sys

from ebmlab.cli import main

sys.exit(main())
