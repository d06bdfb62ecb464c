"""benchmarks/objectives2d.py: --seeds (per-seed cells with their median), --quick leaves the docs' pictures alone, and bad
--seeds / --jobs input (nothing trained)."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import objectives2d as bench  # noqa: E402


def test_median_odd_and_even() -> None:
    assert bench.median([3.0, 1.0, 2.0]) == 2.0
    assert bench.median([4.0, 1.0]) == 2.5
    assert bench.median([1.0, math.inf, 0.5]) == 1.0


def test_table_per_seed_cells_and_median() -> None:
    results = {("true", "", "moons", None): {"nll": 1.5},
               ("ebmlab", "ssm", "moons", 0): {"nll": 1.53, "cpu": 1.0},
               ("ebmlab", "ssm", "moons", 1): {"nll": 1.51, "cpu": 1.0},
               ("ebmlab", "ssm", "moons", 2): {"error": "boom"}}
    lines = bench.table(results, [("ebmlab", "ssm")], ["moons"], [0, 1, 2])
    # a failed seed is shown and counts as +inf: the median of (0.03, 0.01, inf) is 0.03
    assert lines[-1] == "| ebmlab | ssm | +0.030 / +0.010 / error: boom (med **+0.030**) |"
    one = bench.table(results, [("ebmlab", "ssm")], ["moons"], [1])
    assert one[-1] == "| ebmlab | ssm | +0.010 |"      # one seed: the old cell format


@pytest.mark.parametrize("args,message", [(["--seeds", "0,x"], "--seeds wants a comma list of integers"),
                                          (["--seeds", "1,1"], "--seeds has a repeated seed"),
                                          (["--sets", "moons,nope"], "unknown set 'nope'")])
def test_bad_input_exit_2(args: list[str], message: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "t.md"
    with pytest.raises(SystemExit) as e:
        bench.main([*args, "--out", str(out)])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def _fake_cell(lib: str, obj: str, name: str, steps: int, seed: int, want_grid: bool):
    """A stand-in for run_cell (nothing trained): a fixed NLL, and a picture grid when asked for one."""
    return {"nll": 2.0 + seed, "cpu": 0.0}, ((0.0, 1.0), (0.0, 1.0), [[0.0]]) if want_grid else None


def test_quick_run_leaves_the_docs_pictures_alone(tmp_path: Path, monkeypatch) -> None:
    """--quick (300 steps) must not overwrite docs/images/objectives2d, the full run's pictures (it did); the full
    run asks for ebmlab's grids of its first seed only and draws one picture per set."""
    drawn: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(bench, "run_cell", _fake_cell)
    monkeypatch.setattr(bench, "true_nll", lambda name, test: 1.0)
    monkeypatch.setattr(bench, "picture", lambda name, grids: drawn.append((name, sorted(grids))))
    assert bench.main(["--quick", "--rows", "ebmlab:ssm", "--out", str(tmp_path / "q.md")]) == 0
    assert drawn == []
    assert bench.main(["--sets", "moons", "--rows", "ebmlab:ssm,ebmkit:ssm", "--seeds", "0,1", "--steps", "1",
                       "--out", str(tmp_path / "f.md")]) == 0
    assert drawn == [("moons", ["ssm"])]
    assert "| ebmlab | ssm | +1.000 / +2.000 (med **+1.500**) |" in (tmp_path / "f.md").read_text()


def test_jobs_must_be_positive(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        bench.main(["--jobs", "0", "--out", str(tmp_path / "t.md")])
    assert e.value.code == 2
    assert "--jobs wants a positive number of processes" in capsys.readouterr().err
