"""``python -m benchmarks run [--quick] [--only ...]`` and ``python -m benchmarks assemble``: see run_all.py."""
from benchmarks.run_all import main

raise SystemExit(main())
