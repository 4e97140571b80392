"""The last small top-level torch names (descent/torch_misc.py) against torch 2.13."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import descent as ds


def _both(f):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(ds), f(torch)


def _vals(x):
    if isinstance(x, tuple):
        return tuple(_vals(v) for v in x)
    return x.tolist() if hasattr(x, "tolist") else x


@pytest.mark.parametrize("f", [
    lambda L: L.rsub(L.tensor([1.0, 2.0]), 5, alpha=2),
    lambda L: L.rsub(L.tensor([1, 2]), L.tensor([4, 4])),
    lambda L: tuple(L.triangular_solve(L.tensor([[1.0], [2.0]]),
                                       L.tensor([[2.0, 1.0], [0.0, 4.0]]))),
    lambda L: tuple(L.triangular_solve(L.tensor([[1.0], [2.0]]), L.tensor([[2.0, 0.0], [1.0, 4.0]]),
                                       upper=False, transpose=True)),
    lambda L: L.frombuffer(bytearray(np.arange(4, dtype=np.float32).tobytes()), dtype=L.float32,
                           count=2, offset=4),
    lambda L: L.cond(L.tensor(False), lambda x: x + 1, lambda x: x - 1, (L.tensor(1.0),)),
    lambda L: L.while_loop(lambda i, x: i < 3, lambda i, x: (i + 1, x * 2),
                           (L.tensor(0), L.tensor(1.0))),
    lambda L: (L.get_deterministic_debug_mode(), L.is_vulkan_available(), L.is_storage(1)),
])  # fmt: skip
def test_values_match_torch(f):
    d, t = _both(f)
    assert _vals(d) == _vals(t)


@pytest.mark.parametrize("name", ["solve", "lstsq", "symeig", "eig"])
def test_removed_functions_raise_as_torch(name):
    for lib in (ds, torch):
        with pytest.raises(RuntimeError, match="deprecated since version 1.9 and is now removed"):
            getattr(lib, name)(lib.eye(2), lib.eye(2)) if name in ("solve", "lstsq") else getattr(
                lib, name
            )(lib.eye(2))


def test_binomial_statistics_and_dtype():
    ds.manual_seed(0)
    s = ds.binomial(ds.full((20000,), 10.0), ds.full((20000,), 0.3))
    assert s.dtype == ds.float32 and abs(s.mean().item() - 3.0) < 0.05
    assert 0 <= s.min().item() and s.max().item() <= 10


def test_debug_mode_round_trip_and_dlpack():
    ds.set_deterministic_debug_mode("warn")
    assert ds.get_deterministic_debug_mode() == 1
    ds.set_deterministic_debug_mode(0)
    with pytest.raises(RuntimeError):
        ds.set_deterministic_debug_mode(5)
    assert np.from_dlpack(ds.tensor([1.0, 2.0])).tolist() == [1.0, 2.0]
    assert ds.wait(ds.fork(lambda x: x + 1, 1)) == 2
