"""Session 20 (lead): descent.tensor(t), t.new_tensor(t) and as_tensor(t, dtype=...) inside a
compiled function copied t's values outside the ops; a replay kept the first call's values
(helper-140's audit). They now make the call run eagerly, with a warning naming them; the
copies PyTorch recommends (t.detach().clone(), t.to(dtype)) replay."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import descent


def _copy_tensor(x):
    return descent.tensor(x * 2)


def _copy_new_tensor(x):
    return x.new_tensor(x * 2)


def _copy_as_tensor(x):
    return descent.as_tensor(x * 2, dtype=descent.float64)


def _copy_tensor_list(x):
    return descent.tensor([x[0] * 2, x[1]])


def _clone(x):
    return (x * 2).detach().clone()


def _to(x):
    return (x * 2).to(descent.float64)


def _six_calls(body):
    def f(x):
        return (body(x) + 1) * 3

    compiled = descent.compile(f)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(6):
            x = descent.tensor(np.full(3, 1.0 if i < 2 else float(i), np.float32))
            got, want = compiled(x), f(x)
            np.testing.assert_array_equal(got.numpy(), want.numpy())
            assert got.dtype == want.dtype
    return compiled, [str(w.message) for w in caught]


@pytest.mark.parametrize("body", [_copy_tensor, _copy_new_tensor, _copy_as_tensor,
                                  _copy_tensor_list])  # fmt: skip
def test_a_tensor_copied_outside_the_ops_runs_eagerly(body):
    compiled, warned = _six_calls(body)
    assert compiled.stats["replays"] == 0 and compiled.stats["fallbacks"] == 1
    assert any("copies a tensor's values outside the ops" in w for w in warned), warned


@pytest.mark.parametrize("body", [_clone, _to])
def test_the_copies_through_ops_replay(body):
    compiled, _ = _six_calls(body)
    assert compiled.stats["replays"] == 4 and compiled.stats["fallbacks"] == 0


def test_a_constant_from_python_data_still_replays():
    def body(x):
        return x + descent.tensor([1.0, 2.0, 3.0])

    compiled, _ = _six_calls(body)
    assert compiled.stats["replays"] == 4
