"""Session 17's walk through the documentation as a new user: each test failed before its fix, or checks a
class of documentation error mechanically (every command line parses, every link resolves, every page is
on the site, every Python block compiles, every dotted name imports).
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import io
import re
import shlex
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# the pages a user reads: README (up to its changelog, whose old names are history) and the hand-written site
PAGES = ["README.md"] + sorted(str(p.relative_to(ROOT)) for p in DOCS.glob("*.md"))
GENERATED = {"cli.md", "benchmarks/RESULTS.md"}          # made at build time by docs_hooks.py


def _text(page: str) -> str:
    text = (ROOT / page).read_text()
    return text.split("\n## Changelog")[0] if page == "README.md" else text


# ---------------------------------------------------------------------------- a code bug a snippet exposed
def test_a_network_whose_weights_start_at_zero_trains():
    """docs/discrete.md trains ``Potts(J0, 3, h0, learn=True)``; with couplings and fields starting at zero
    (independent sites, the natural start) the guard's relative update |‖θ‖ - ‖θ₀‖| / ‖θ₀‖ divided by 0 and
    stopped the run at step 1 ("param_update = 2.91e+36 exceeds the limit 1")."""
    import ebmlab
    from ebmlab.models.potts import Potts

    ints = torch.randint(0, 3, (200, 4), generator=torch.Generator().manual_seed(0))
    run = ebmlab.train(Potts(torch.zeros(12, 12), 3, torch.zeros(12), learn=True), ints, categories=3,
                       steps=3, batch_size=64, mcmc_steps=2, progress=False, tensorboard=False)
    assert run.status == "finished" and run.step == 3


def test_the_guard_still_catches_a_non_finite_update_from_zero_weights():
    from ebmlab.training.guard import param_quantities

    q = param_quantities([torch.tensor([float("nan"), 0.0])], torch.zeros(()))
    assert torch.isnan(q["param_max_abs"]), q
    q = param_quantities([torch.tensor([3.0, 4.0])], torch.tensor(1.0))
    assert q["param_update"].item() == pytest.approx(4.0) and q["param_max_abs"].item() == 4.0


# ---------------------------------------------------------------------------- the site and its links
def test_every_hand_written_page_is_on_the_site():
    """objectives.md, faces.md and discrete.md were built but in no menu of the site (mkdocs only says INFO),
    so a reader of the site could not find the objectives or the faces page."""
    nav = set(re.findall(r":\s*([\w\-/]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), flags=re.M))
    pages = {p.name for p in DOCS.glob("*.md")}
    assert pages - nav == set(), f"docs pages missing from mkdocs.yml's nav: {sorted(pages - nav)}"
    index = (DOCS / "index.md").read_text()
    missing = {p for p in pages - {"index.md"} if f"]({p})" not in index}
    assert not missing, f"docs/index.md does not link {sorted(missing)}"


def _links(text: str) -> list[str]:
    return [m.split("#")[0] for m in re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", text)
            if not m.startswith(("http://", "https://", "mailto:", "#"))]


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_resolves(page):
    """README's links are not checked by mkdocs (it is not a site page), docs' only when the site is built."""
    base = (ROOT / page).parent
    broken = [t for t in _links(_text(page)) if t and not (base / t).exists()
              and not (page.startswith("docs/") and t in GENERATED)]
    assert not broken, f"{page}: links to missing files {broken}"


# ---------------------------------------------------------------------------- the code a reader copies
def _command(line: str) -> list[str]:
    """The `ebmlab ...` commands of one line (comments cut, `&&` / `;` / `|` split), each as its words."""
    out = []
    for part in re.split(r"&&|;|\|", line.split(" #")[0]):
        part = part.strip()
        if part.startswith("ebmlab "):
            out.append(shlex.split(part)[1:])
    return out


def _block_commands(text: str) -> list[list[str]]:
    """Whole command lines: shell code blocks (continuations joined) and indented lines."""
    lines = []
    for lang, block in re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M):   # fences in order
        if lang in ("", "bash", "sh", "console"):
            lines += block.replace("\\\n", " ").split("\n")
    lines += [ln for ln in text.split("\n") if ln.startswith("    ebmlab ")]
    return [c for ln in lines for c in _command(ln)]


def _inline_commands(text: str) -> list[list[str]]:
    """`ebmlab CMD --flag ...` in running text: a mention, often with placeholders (N, DIR), not a whole line."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    spans = text.split("`")[1::2]                           # the insides of inline code
    return [c for s in spans if s.startswith("ebmlab ") for c in _command(s)]


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    from ebmlab.cli import _parser

    root = _parser()
    return next(a for a in root._actions if isinstance(a, argparse._SubParsersAction)).choices


@pytest.mark.parametrize("page", PAGES)
def test_every_command_line_parses_with_the_current_cli(page):
    """A renamed or removed flag leaves docs that fail on the first copy-paste; argparse alone says so."""
    from ebmlab.cli import _parser

    parser, bad = _parser(), []
    for words in _block_commands(_text(page)):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                parser.parse_args(words)
            except SystemExit as e:
                if e.code not in (0, None):
                    bad.append(f"ebmlab {' '.join(words)}  ->  {err.getvalue().strip().splitlines()[-1]}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("page", PAGES)
def test_every_inline_command_names_real_options(page):
    subs, bad = _subparsers(), []
    for words in _inline_commands(_text(page)):
        cmd, flags = words[0], [w.split("=")[0] for w in words[1:] if w.startswith("--")]
        if cmd.startswith("-") or cmd.isupper():            # `ebmlab --version`, `ebmlab COMMAND --help`
            continue
        known = {o for a in subs[cmd]._actions for o in a.option_strings} if cmd in subs else set()
        if cmd not in subs or set(flags) - known:
            bad.append(f"ebmlab {' '.join(words)}: {cmd if cmd not in subs else sorted(set(flags) - known)}")
    assert not bad, "\n".join(bad)


# flags in running text that belong to another program: a benchmark script's, tensorboard's
OTHER_PROGRAMS_FLAGS = {"--quick", "--run", "--logdir"}


@pytest.mark.parametrize("page", PAGES)
def test_every_bare_flag_in_the_text_is_an_ebmlab_option(page):
    """`--dsm-sigmas 0.1`, `--ssm-projections`, ... name options without the command; each must still exist
    in some command (a benchmark's or pip's command line, written out, is not read)."""
    subs = _subparsers()
    from ebmlab.cli import _parser

    known = {o for sub in subs.values() for a in sub._actions for o in a.option_strings}
    known |= {o for a in _parser()._actions for o in a.option_strings} | OTHER_PROGRAMS_FLAGS
    text = re.sub(r"```.*?```", "", _text(page), flags=re.S)
    spans = [s for s in text.split("`")[1::2] if s.startswith("--")]
    unknown = sorted({f for s in spans for f in re.findall(r"(?<![\w-])--[a-z][\w-]*", s)} - known)
    assert not unknown, f"{page}: {unknown}"


def test_the_command_finders_see_the_commands():
    """The checks above are only as good as their finders: README alone has dozens of command lines."""
    blocks, inline = _block_commands(_text("README.md")), _inline_commands(_text("README.md"))
    assert len(blocks) > 20 and "train --nproc 2 --data moons --out runs/moons2".split() in blocks
    assert len(inline) > 20 and ["eval", "RUN", "--ood", "uniform,shuffled,photo-patches"] in inline


def _python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", _text(page), flags=re.S)


@pytest.mark.parametrize("page", PAGES)
def test_every_python_block_compiles(page):
    broken = []
    for i, code in enumerate(_python_blocks(page)):
        try:
            ast.parse(code, filename=f"{page} python block {i + 1}")
        except SyntaxError as e:
            broken.append(f"block {i + 1}, line {e.lineno}: {e.msg}")
    assert not broken, f"{page}: {broken}"


def test_the_python_block_finder_sees_the_blocks():
    """README's Python API, own-network and Dataset examples at least: a finder that saw none would pass above."""
    blocks = _python_blocks("README.md")
    assert len(blocks) >= 3 and any("ebmlab.train(ResidualMLP()" in b for b in blocks)


def _resolves(name: str) -> bool:
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        try:
            for p in parts[i:]:
                obj = getattr(obj, p)
        except AttributeError:
            return False
        return True
    return False


@pytest.mark.parametrize("page", PAGES)
def test_every_dotted_ebmlab_name_imports(page):
    """Modules move between layers (0.2 moved every one); a page naming the old home sends a reader to an
    ImportError. The README's changelog keeps the old names on purpose and is not read."""
    names = sorted(set(re.findall(r"\bebmlab(?:\.[A-Za-z_]\w*)+", _text(page))))
    missing = [n for n in names if not _resolves(n)]
    assert not missing, f"{page}: {missing}"


# ---------------------------------------------------------------------------- output into a closed pipe
def test_output_into_a_closed_pipe_is_not_an_error_line():
    """`ebmlab train --data moons --print-config | head -5` (or `ebmlab runs | head`) printed
    "ebmlab: error: Broken pipe [EPIPE]" and exited 2 once head had what it wanted: a reader that stops
    reading is no user error. Now silent, status 141 as for a process that SIGPIPE ended (cat, git)."""
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)                                      # the reader has already gone: every write fails
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    try:
        res = subprocess.run([sys.executable, "-m", "ebmlab", "train", "--data", "moons", "--print-config"],
                             stdout=write_end, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    finally:
        os.close(write_end)
    assert res.returncode == 141 and res.stderr == "", (res.returncode, res.stderr)
