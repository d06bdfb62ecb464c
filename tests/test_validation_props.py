"""Property-based validation (issue 5, "What it must show" #4).

Random configuration dicts (known and unknown keys, values of every JSON/TOML type, huge ints,
NaN/Inf), random configuration *files*, and random data arrays (every dtype and shape, NaN/Inf,
empty, object/complex/timedelta, torch tensors incl. bfloat16 and requires_grad, ragged lists):
each input either succeeds with a valid result or raises ``EBMError`` with a clear one-line
message — never any other exception.

The number of inputs tried is printed; see it with::

    pytest -s tests/test_validation_props.py          # or: -rP, or --hypothesis-show-statistics
"""
from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ebmlab.rundir.config import RunConfig, load_config_file
from ebmlab.data.sources import validate_array
from ebmlab.errors import EBMError

MAX_EXAMPLES = 200
KNOWN = [f.name for f in fields(RunConfig)]
CHOICES = ["cosine", "constant", "persistent", "short-run", "cd", "mh-jump", "mh", "langevin", "mala",
           "hmc", "auto", "mlp", "conv", "resnet", "uniform", "data", "gaussian", "stop", "rollback", "2d", ""]

scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(-5, 5), st.integers(-10**6, 10**6), st.integers(2**60, 2**80), st.just(10**400),
    st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 1), st.floats(1e-6, 10),
    st.text(max_size=12), st.sampled_from(CHOICES),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3),
                   st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))
keys = st.one_of(st.sampled_from(KNOWN), st.text(max_size=12))
config_dicts = st.one_of(
    st.dictionaries(keys, values, max_size=8),                        # many random keys
    st.dictionaries(st.sampled_from(KNOWN), values, min_size=1, max_size=2),   # one or two bad values
    st.dictionaries(st.sampled_from(KNOWN), scalars, max_size=4),
)
not_dicts = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=3))


def _clear(e: EBMError) -> None:
    msg = str(e)
    assert msg and "\n" not in msg and len(msg) < 2000, repr(msg)


def test_run_config_from_dict_only_succeeds_or_raises_ebmerror():
    seen = {"n": 0, "ok": 0, "error": 0}

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None)
    @given(st.one_of(config_dicts, not_dicts))
    @example({"lr": 10**400})                      # once an OverflowError
    @example({"seed": 2**64})                      # once valid here, then a crash in torch.manual_seed
    @example({"steps": True})
    @example({"extra": {"a": 1}, "noise_scale": None})
    def prop(d):
        seen["n"] += 1
        try:
            c = RunConfig.from_dict(d)
        except EBMError as e:
            seen["error"] += 1
            _clear(e)
            return
        seen["ok"] += 1
        # a valid config survives its own JSON round trip (what config.json and --resume rely on)
        again = RunConfig.from_dict(json.loads(json.dumps(c.to_dict())))
        assert again == c
        assert math.isfinite(c.lr) and c.lr > 0 and c.steps > 0 and 0 <= c.seed < 2**63

    prop()
    msg = f"RunConfig.from_dict: {seen['n']} inputs tried ({seen['ok']} valid, {seen['error']} clear errors)"
    print("\n" + msg)
    assert seen["n"] >= MAX_EXAMPLES // 2, msg


def test_config_files_only_load_or_raise_ebmerror(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cfgfiles")
    seen = {"n": 0, "ok": 0, "error": 0}
    toml_lines = st.builds(lambda k, v: f"{k} = {v}", st.sampled_from(KNOWN + ["bogus"]),
                           st.sampled_from(["1", "-1", "0.5", "nan", "inf", "1e999", "true", '"langevin"',
                                            "[1, 2]", "{a = 1}", '"', "", "99999999999999999999"]))
    contents = st.one_of(
        st.lists(toml_lines, max_size=5).map("\n".join),
        st.text(max_size=40),
        st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
        st.builds(json.dumps, st.one_of(config_dicts, not_dicts)),
    )

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(contents, st.sampled_from([".toml", ".json", ".yaml"]))
    def prop(text, suffix):
        seen["n"] += 1
        p = tmp / f"c{suffix}"
        p.write_bytes(text.encode("utf-8", "surrogatepass"))
        try:
            RunConfig.from_dict(load_config_file(p))
            seen["ok"] += 1
        except EBMError as e:
            seen["error"] += 1
            _clear(e)

    prop()
    msg = f"config files: {seen['n']} inputs tried ({seen['ok']} valid, {seen['error']} clear errors)"
    print("\n" + msg)
    assert seen["n"] >= MAX_EXAMPLES // 2, msg


# ---------------------------------------------------------------------------- data arrays
shapes = hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4)
numpy_arrays = st.one_of(
    hnp.arrays(st.one_of(hnp.floating_dtypes(), hnp.integer_dtypes(), hnp.boolean_dtypes(),
                         hnp.complex_number_dtypes(), hnp.timedelta64_dtypes(), hnp.datetime64_dtypes(),
                         hnp.byte_string_dtypes(), hnp.unicode_string_dtypes()), shapes),
    # mostly well-shaped float data with the odd NaN/Inf/huge value
    hnp.arrays(st.sampled_from([np.float32, np.float64, np.float16]),
               st.tuples(st.integers(0, 6), st.integers(0, 3)),
               elements=st.one_of(st.floats(-10, 10, width=16), st.sampled_from([np.nan, np.inf, -np.inf]))),
    hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 3)),
               elements=st.sampled_from([0.0, 1.0, 1e300, -1e39])),
    st.lists(st.one_of(st.none(), st.text(max_size=2), st.integers()), min_size=0, max_size=4).map(
        lambda xs: np.array(xs + [None], dtype=object).reshape(-1, 1)),
)
torch_tensors = st.builds(
    lambda a, dt, grad: (lambda t: t.requires_grad_(True) if grad and t.is_floating_point() else t)(
        torch.from_numpy(a).to(dt)),
    hnp.arrays(np.float32, st.one_of(st.tuples(st.integers(0, 4), st.integers(0, 3)),
                                     st.tuples(st.integers(1, 3), st.integers(1, 2), st.integers(1, 3),
                                               st.integers(1, 3))),
               elements=st.one_of(st.floats(-3, 3, width=32), st.just(np.nan))),
    st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.bool]),
    st.booleans(),
)
ragged = st.lists(st.lists(st.floats(-1, 1), max_size=3), max_size=4)


def test_validate_array_only_succeeds_or_raises_ebmerror():
    seen = {"n": 0, "ok": 0, "error": 0}

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None)
    @given(st.one_of(numpy_arrays, torch_tensors, ragged))
    @example([[0.0, 1.0], [2.0]])                                  # ragged: once a numpy ValueError
    @example(torch.zeros(3, 2, dtype=torch.bfloat16))               # once a TypeError
    @example(torch.zeros(3, 2, requires_grad=True))                 # once a RuntimeError
    @example(np.array([[1 + 1j, 0], [0, 1]]))                       # once silently cast to real
    @example(np.array([[1, 2], [3, 4]], dtype="m8[s]"))            # timedelta: once accepted
    def prop(x):
        seen["n"] += 1
        try:
            out = validate_array(x, "data.npy")
        except EBMError as e:
            seen["error"] += 1
            _clear(e)
            assert str(e).startswith("data.npy:")
            return
        seen["ok"] += 1
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and not out.requires_grad
        assert out.ndim in (2, 4) and out.shape[0] >= 2 and all(s > 0 for s in out.shape)
        assert torch.isfinite(out).all()

    prop()
    msg = f"validate_array: {seen['n']} inputs tried ({seen['ok']} valid, {seen['error']} clear errors)"
    print("\n" + msg)
    assert seen["n"] >= MAX_EXAMPLES // 2, msg


@pytest.mark.parametrize("bad, why", [
    (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN or Inf"),
    (np.zeros((0, 2)), "empty"),
    (np.zeros((5,)), "shape"),
    (np.zeros((2, 2, 2)), "shape"),
    (np.array([[1, "a"], [2, "b"]], dtype=object), "numeric"),
    (np.array([[1 + 2j, 0], [0, 1]]), "numeric"),
    (np.array([[1e39, 0.0], [0.0, 1.0]]), "float32"),
])
def test_validate_array_named_cases(bad, why):
    with pytest.raises(EBMError, match=why):
        validate_array(bad, "x.npy")


def test_seed_out_of_range_is_a_config_error():
    with pytest.raises(EBMError, match="seed"):
        RunConfig(seed=2**64)
    with pytest.raises(EBMError, match="lr"):
        RunConfig.from_dict({"lr": 10**400})
