"""Smoke tests of the one benchmark command: its CLI answers, and the assembler builds RESULTS.md
from results files (fixtures in a tmp dir; nothing is trained or run)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import run_all  # noqa: E402


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_run_help_and_dry_run():
    r = _cli("run", "--help")
    assert r.returncode == 0, r.stderr
    assert "--quick" in r.stdout and "--only" in r.stdout
    r = _cli("run", "--quick", "--only", "ais,curse", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "benchmarks/ais_validation.py" in r.stdout and "benchmarks/curse.py --quick" in r.stdout
    assert "density2d" not in r.stdout


def test_training_speed_is_a_part():
    r = _cli("run", "--quick", "--only", "training-speed", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "benchmarks/training_speed.py --quick" in r.stdout


def test_objectives_vector_is_a_part():
    r = _cli("run", "--quick", "--only", "objectives-vector", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "benchmarks/objectives_vector.py --quick" in r.stdout


def test_unknown_part_is_a_clear_error():
    r = _cli("run", "--only", "density,nonsense", "--dry-run")
    assert r.returncode != 0
    assert "nonsense" in r.stderr and "Traceback" not in r.stderr


def _write(path: Path, text: str, mtime: float) -> None:
    path.write_text(text)
    os.utime(path, (mtime, mtime))


def test_assemble_from_fixture_results(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    t = 1_700_000_000
    _write(res / "density2d_quick.md", "# 2-D density benchmark (quick)\n\n- command: `python benchmarks/density2d.py "
           "--quick`\n\n| method | moons |\n|---|---|\n| quick-row | +0.5 |\n", t + 30)
    _write(res / "density2d_part1.md", "# 2-D density benchmark\n\n- command: `python benchmarks/density2d.py "
           "--steps 3000 --sets moons`\n\n| method | moons |\n|---|---|\n| old-full-row | +0.01 |\n", t)
    _write(res / "density2d_part2.md", "# 2-D density benchmark\n\n- command: `python benchmarks/density2d.py "
           "--steps 3000 --sets rings`\n\n| method | rings |\n|---|---|\n| new-full-row | +0.02 |\n", t + 10)
    _write(res / "sampler_speed.md", "# Langevin sampler speed\n\nCommand: `python benchmarks/sampler_speed.py "
           "--quick`\n\n| workload | ratio |\n|---|---|\n| mlp | 0.97 |\n", t)
    _write(res / "curse.md", "# Curse\n\n- command: `python benchmarks/curse.py`\n\n```\n# not a heading\n```\n", t)
    (res / "curse.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (res / run_all.TIMINGS).write_text(json.dumps({
        "command": "python -m benchmarks run --quick", "quick": True, "started": "2026-01-01T00:00:00",
        "total_seconds": 300.0, "parts_run": ["density", "speed"],
        "parts": {"density": {"command": "python benchmarks/density2d.py --quick", "seconds": 200.0, "rc": 0,
                              "quick": True, "finished": "2026-01-01T00:03:20"},
                  "speed": {"command": "python benchmarks/sampler_speed.py --quick", "seconds": 100.0, "rc": 0,
                            "quick": True, "finished": "2026-01-01T00:05:00"}}}))
    out = run_all.assemble(res, tmp_path / "RESULTS.md", invocation="python -m benchmarks assemble")
    text = out.read_text()
    # header: date, machine, command
    assert text.startswith("# ebmlab benchmark results")
    assert "nproc" in text and "python -m benchmarks assemble" in text and "torch" in text
    # every density file, full runs newest first, then the quick one, labelled
    i_new, i_old, i_quick = (text.index(s) for s in ("new-full-row", "old-full-row", "quick-row"))
    assert i_new < i_old < i_quick
    assert text.count("**Quick run**") == 2            # density2d_quick.md and the --quick sampler_speed.md
    # verbatim tables with their own command lines; headings nested two levels down, code untouched
    assert "--steps 3000 --sets rings" in text and "| mlp | 0.97 |" in text
    assert "\n## 2-D density benchmark (quick)" not in text and "\n### 2-D density benchmark (quick)" in text
    assert "\n# not a heading\n" in text
    assert "![curse.png](results/curse.png)" in text
    # parts with no results say how to make them; the timings of the last run are stated
    assert "_Not run yet_" in text and "benchmarks/ais_trained.py" in text
    assert "| density | `python benchmarks/density2d.py --quick` | 3.3 min | 0 |" in text
    assert "took 5.0 min in all" in text


def test_a_committed_results_file_is_dated_by_its_commit_not_by_the_checkout(tmp_path):
    """A clone stamps every file with the moment it was made: RESULTS.md said "written" today of runs days old
    (and ordered a part's files by checkout order). A committed, unchanged file now carries its commit's time;
    a file changed since, or not in git, its own mtime."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    f = tmp_path / "speed.md"
    f.write_text("# old run\n")
    env = {**os.environ, "GIT_COMMITTER_DATE": "2026-11-20T10:00:00+00:00", "GIT_AUTHOR_DATE": "2026-11-20T10:00:00+00:00"}
    subprocess.run([*git, "add", "speed.md"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "run"], cwd=tmp_path, check=True, env=env)
    os.utime(f, (2_000_000_000, 2_000_000_000))           # a checkout's stamp, years later
    committed = 1_795_168_800.0                             # 2026-11-20T10:00:00Z
    assert run_all.written_at(f) == committed
    f.write_text("# a new run\n")                           # changed since the commit: its own time
    os.utime(f, (2_000_000_100, 2_000_000_100))
    assert run_all.written_at(f) == 2_000_000_100
    g = tmp_path / "new.md"                                 # never committed
    g.write_text("x\n")
    os.utime(g, (1_900_000_000, 1_900_000_000))
    assert run_all.written_at(g) == 1_900_000_000
