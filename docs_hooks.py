"""MkDocs hooks (mkdocs.yml ``hooks:``): pages made at build time, so they always match the code.

- ``cli.md``: every ``ebmlab`` command's ``--help``, taken from the argparse parser itself
  (``cli_reference``; tests/test_eco_docs.py checks it names every command and option);
- ``benchmarks/RESULTS.md`` and ``benchmarks/results/*``: the benchmark tables and their pictures,
  at the same relative paths as in the repository, so RESULTS.md's own links work unchanged.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def cli_reference() -> str:
    """The command-line reference page (Markdown): the top-level help and each command's help."""
    sys.path.insert(0, str(ROOT / "src"))
    os.environ["COLUMNS"] = "100"          # argparse wraps at the terminal width: fix it
    from ebmlab.cli import _parser
    parser = _parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    lines = ["# Command line", "",
             "Generated from the argparse parser at build time (`docs_hooks.py`): what `ebmlab COMMAND --help` "
             "prints.", "", "```text", parser.format_help().rstrip(), "```", ""]
    for name, p in sub.choices.items():
        lines += [f"## ebmlab {name}", "", "```text", p.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


def results_page() -> str:
    """benchmarks/RESULTS.md, with the picture links of sections copied from results/*.md (which name
    their pictures relative to results/) pointed at results/, where the pictures are."""
    bench = ROOT / "benchmarks"

    def fix(m: re.Match) -> str:
        target = m.group(2)
        if not (bench / target).exists() and (bench / "results" / target).exists():
            target = "results/" + target
        return f"{m.group(1)}({target})"
    return re.sub(r"(!\[[^\]]*\])\(([^)\s]+)\)", fix, (bench / "RESULTS.md").read_text())


def on_files(files, config):
    from mkdocs.structure.files import File
    files.append(File.generated(config, "cli.md", content=cli_reference()))
    files.append(File.generated(config, "benchmarks/RESULTS.md", content=results_page()))
    for p in sorted((ROOT / "benchmarks" / "results").iterdir()):
        if p.suffix in (".md", ".png"):
            files.append(File.generated(config, f"benchmarks/results/{p.name}", abs_src_path=str(p)))
    return files
