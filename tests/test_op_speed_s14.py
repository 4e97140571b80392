"""Session 14's eager-speed changes to single ops: each fast path gives PyTorch's (torch 2.13)
outputs, bitwise, on inputs chosen to stress it.

- torch.sort / argsort with stable=False replay std::sort on every row (ops/tie_order.py's
  torch_sort_order, kernels/_cpu_tie_order.py's packed keys) instead of a stable argsort plus
  the replay of the tied rows: the order of equal values must still be PyTorch's, on rows of
  lengths around libstdc++'s thresholds (16-element insertion sort, 32 = two of them) and
  long ones, with few distinct values, NaN, -0.0 / +0.0 and infinities, in every dtype.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds
from descent.kernels import cpu as kcpu
from descent.ops import tie_order
from descent.ops.selection import _order

_LENGTHS = (2, 3, 5, 15, 16, 17, 18, 31, 32, 33, 34, 48, 63, 64, 65, 100, 257, 1000)


def _tied(rng, shape, style: int) -> np.ndarray:
    """float64 values with ties: few distinct integers, one-decimal normals, or a mix of
    NaN / -0.0 / +0.0 / infinities / a repeated value."""
    if style == 0:
        return rng.integers(0, int(rng.integers(1, 6)), shape).astype(np.float64)
    if style == 1:
        return np.round(rng.standard_normal(shape), 1)
    pool = np.array([np.nan, -0.0, 0.0, np.inf, -np.inf, 1.5, -2.0, 1.5])
    return rng.choice(pool, shape)


_DTYPES = {
    "float32": (np.float32, torch.float32),
    "float64": (np.float64, torch.float64),
    "int8": (np.int8, torch.int8),
    "int16": (np.int16, torch.int16),
    "int32": (np.int32, torch.int32),
    "int64": (np.int64, torch.int64),
    "uint8": (np.uint8, torch.uint8),
}


def _pair(x64: np.ndarray, name: str):
    """The same values as a descent and a torch tensor of dtype `name` (NaN / inf kept in
    floats, made finite for integers)."""
    if name == "bool":
        x = np.nan_to_num(x64) > 0
        return ds.tensor(x), torch.from_numpy(x.copy())
    if name in ("float16", "bfloat16"):  # rounded by torch, then the same values in descent
        t = torch.from_numpy(x64).to(getattr(torch, name))
        return ds.tensor(t.float().numpy()).to(getattr(ds, name)), t
    npd, _ = _DTYPES[name]
    x = (
        x64
        if x64.dtype.kind == npd().dtype.kind == "f"
        else np.nan_to_num(x64, nan=3.0, posinf=7.0, neginf=-7.0)
    )
    if np.dtype(npd).kind == "u":
        x = np.abs(x)
    x = x.astype(npd)
    return ds.tensor(x), torch.from_numpy(x.copy())


@pytest.mark.parametrize("name", [*_DTYPES, "float16", "bfloat16", "bool"])
def test_unstable_sort_indices_match_torch_on_tie_heavy_rows(name):
    rng = np.random.default_rng(14)
    for trial, n in enumerate(_LENGTHS * 2):
        x64 = _tied(rng, (3, n), trial % 3)
        if trial % 5 == 4:
            x64 = np.sort(x64, axis=1)[:, :: 1 if trial % 2 else -1].copy()  # presorted / reversed
        d, t = _pair(x64, name)
        for desc in (False, True):
            got = ds.sort(d, 1, desc)
            want = torch.sort(t, 1, desc)
            np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
            got0 = ds.argsort(d.T, 0, desc).numpy()
            np.testing.assert_array_equal(got0, torch.argsort(t.T, 0, desc).numpy())


@pytest.mark.parametrize("n", [20000, 40000])
def test_unstable_sort_long_rows_match_torch(n):
    """Long rows: the introsort's partitions and depth, 1-D descending integers (the
    ascending ones from 32768 are fbgemm's radix sort in PyTorch, stable)."""
    rng = np.random.default_rng(n)
    for style in range(3):
        x = _tied(rng, n, style).astype(np.float32)
        for desc in (False, True):
            got = ds.argsort(ds.tensor(x), descending=desc).numpy()
            np.testing.assert_array_equal(got, torch.argsort(torch.from_numpy(x), 0, desc))
    ints = rng.integers(0, 7, n).astype(np.int32)
    for desc in (False, True):
        got = ds.argsort(ds.tensor(ints), descending=desc).numpy()
        np.testing.assert_array_equal(got, torch.argsort(torch.from_numpy(ints), 0, desc))


def test_unstable_sort_equals_the_stable_argsort_plus_tie_replay():
    """torch_sort_order (every row replayed) gives the indices of the path it replaces
    (a stable argsort, then fix_sort on the rows with ties), in every dtype it takes.

    The replaced path runs on the values widened to float64 (exact here: small integers,
    float16/32, NaN, +-0.0, infinities; every comparison, and so the replay, the same): one
    compiled kernels.sort_torch_rows instead of one per dtype, ~40 s of numba compilation in
    a fresh clone (the path is the oracle here; for these dtypes torch_sort_order runs)."""
    if not kcpu.enabled():
        pytest.skip("numba kernels off")
    rng = np.random.default_rng(5)
    for dt in (np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8,
               np.uint16, np.float16, np.bool_):  # fmt: skip
        for trial in range(12):
            n = _LENGTHS[trial % len(_LENGTHS)] + trial
            x64 = _tied(rng, (4, n, 2), trial % 3)
            if np.dtype(dt).kind != "f":
                x64 = np.abs(np.nan_to_num(x64, nan=3.0, posinf=9.0, neginf=-9.0))
            x = x64.astype(dt)
            wide = x.astype(np.float64)
            assert np.array_equal(wide.astype(dt), x, equal_nan=True)  # exact
            for d in (0, 1, 2):
                for desc in (False, True):
                    new = tie_order.torch_sort_order(x, d, desc)
                    old = tie_order.fix_sort(wide, _order(ds.tensor(x), d, desc), d, desc)
                    if x.shape[d] < 2:
                        assert new is None
                        continue
                    np.testing.assert_array_equal(new, old)


def test_unstable_sort_indices_have_torchs_layout():
    """Indices are laid out as the input (PyTorch allocates them empty_like(self))."""
    x = np.random.default_rng(1).integers(0, 3, (40, 50)).astype(np.float32)
    t, d = torch.from_numpy(x), ds.tensor(x)
    for tt, dd in ((t, d), (t.T, d.T)):
        for dim in (0, 1):
            want = tt.sort(dim)
            got = dd.sort(dim)
            assert got.indices.stride() == want.indices.stride()
            np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())


def _selection_cases(seed: int):
    rng = np.random.default_rng(seed)
    for trial, n in enumerate(_LENGTHS[:-1]):
        x64 = _tied(rng, (3, n), trial % 3)
        for name in ("float32", "float64", "int32", "int64", "int8", "float16"):
            yield n, _pair(x64, name)


def test_kthvalue_and_mode_match_torch_on_tie_heavy_rows():
    """kthvalue (TH's quickselect) and mode (std::sort, NaN rows in Python) replayed on every
    row by the kernels: PyTorch's indices and values."""
    rng = np.random.default_rng(3)
    for n, (d, t) in _selection_cases(3):
        for k in {1, n, int(rng.integers(1, n + 1))}:
            for dim, (dd, tt) in ((1, (d, t)), (0, (d.T, t.T))):
                got, want = ds.kthvalue(dd, k, dim), torch.kthvalue(tt, k, dim)
                np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
                np.testing.assert_array_equal(
                    got.values.float().numpy(), want.values.float().numpy()
                )
        for dim, (dd, tt) in ((1, (d, t)), (0, (d.T, t.T))):
            got, want = ds.mode(dd, dim), torch.mode(tt, dim)
            np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
            np.testing.assert_array_equal(got.values.float().numpy(), want.values.float().numpy())


@pytest.mark.parametrize("op", ["kthvalue", "mode"])
def test_kthvalue_and_mode_equal_the_python_replay(op):
    """The kernels' answers on every row equal the pure-Python path's (stable order, then the
    replay of the tied rows), which runs without numba."""
    if not kcpu.enabled():
        pytest.skip("numba kernels off")
    outs = []
    for enabled in (True, False):
        previous = kcpu.set_enabled(enabled)
        try:
            res = []
            for n, (d, _) in _selection_cases(4):
                if op == "mode":
                    res.append(ds.mode(d, 1).indices.numpy())
                else:
                    res.append(ds.kthvalue(d, (n + 1) // 2, 1).indices.numpy())
            outs.append(res)
        finally:
            kcpu.set_enabled(previous)
    for a, b in zip(*outs, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "name", ["softmax", "log_softmax", "group_norm", "instance_norm", "cumsum", "batch_norm"]
)
def test_leaf_gradients_arrive_as_owned_arrays(name, monkeypatch):
    """These ops return their input gradient as an array that owns its memory, so the engine
    stores it as the leaf's .grad without a copy (it copies views: a reshape of the kernel's
    (R, S) buffer was copied whole): softmax / log_softmax (kernels.cpu.softmax_backward),
    GroupNorm / InstanceNorm (ops/group_norm.py), cumsum (ops/reduce.py's numba scan),
    BatchNorm (ops/norm.py). The values are PyTorch's."""
    from descent import backend

    rng = np.random.default_rng(2)
    a = rng.standard_normal((4, 8, 5, 6)).astype(np.float32)
    g = rng.standard_normal(a.shape).astype(np.float32)
    fns = {
        "softmax": lambda lib, x: lib.softmax(x, -1),
        "log_softmax": lambda lib, x: lib.nn.functional.log_softmax(x, -1),
        "group_norm": lambda lib, x: lib.nn.functional.group_norm(x, 4),
        "instance_norm": lambda lib, x: lib.nn.functional.instance_norm(x),
        "cumsum": lambda lib, x: lib.cumsum(x, 1),
        "batch_norm": lambda lib, x: lib.nn.functional.batch_norm(x, None, None, training=True),
    }
    views = []
    owns = backend.owns_data
    monkeypatch.setattr(backend, "owns_data", lambda arr: owns(arr) or views.append(arr.shape))
    xd = ds.tensor(a, requires_grad=True)
    fns[name](ds, xd).backward(ds.tensor(g))
    monkeypatch.undo()
    xt = torch.tensor(a, requires_grad=True)
    fns[name](torch, xt).backward(torch.from_numpy(g))
    if kcpu.enabled():
        assert views == []
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_topk_matches_torch_and_the_stable_path_on_tie_heavy_rows():
    """topk with k > n / 8 (no partial scan): the replay of partial_sort / nth_element on every
    row gives PyTorch's indices, and those of the path it replaces (a stable argsort, its
    first k, then fix_topk)."""
    rng = np.random.default_rng(6)
    for n, (d, t) in _selection_cases(6):
        for k in sorted({1, n, max(1, n // 2), int(rng.integers(1, n + 1))}):
            for largest in (True, False):
                for sorted_ in (True, False):
                    for dim, (dd, tt) in ((1, (d, t)), (0, (d.T, t.T))):
                        got = ds.topk(dd, k, dim, largest, sorted_)
                        want = torch.topk(tt, k, dim, largest, sorted_)
                        np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
                    if not kcpu.enabled() or d.dtype == ds.float16:
                        continue
                    a = d._data
                    order = _order(d, 1, largest)[:, :k]
                    old = tie_order.fix_topk(a, order, 1, k, largest, sorted_)
                    np.testing.assert_array_equal(
                        tie_order.topk_order(a, 1, k, largest, sorted_), old
                    )


def test_median_over_a_dim_matches_torch_and_the_stable_order():
    """median(dim) from a partition and two scans per row (tie_order.median_order): the
    stable order's middle index (what PyTorch returns among ties), the first NaN's where a
    row has one, equal to the path that sorts whole rows (kernels off)."""
    for _n, (d, t) in _selection_cases(8):
        for dim, (dd, tt) in ((1, (d, t)), (0, (d.T, t.T))):
            got, want = ds.median(dd, dim), torch.median(tt, dim)
            np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
            np.testing.assert_array_equal(got.values.float().numpy(), want.values.float().numpy())
            if kcpu.enabled():
                previous = kcpu.set_enabled(False)
                try:
                    sorted_path = ds.median(dd, dim).indices.numpy()
                finally:
                    kcpu.set_enabled(previous)
                np.testing.assert_array_equal(got.indices.numpy(), sorted_path)


def test_topk_partial_sort_path_with_ties_matches_torch():
    """k * 64 <= n: std::partial_sort (heap select + sort_heap) replayed on packed keys for the
    tied rows (fix_topk after the numba scan), NaN among the values."""
    rng = np.random.default_rng(11)
    for n in (128, 257, 1000):
        for style in range(3):
            x = _tied(rng, (6, n), style).astype(np.float32)
            for k in range(1, n // 64 + 1):
                for largest in (True, False):
                    got = ds.topk(ds.tensor(x), k, 1, largest)
                    want = torch.topk(torch.from_numpy(x), k, 1, largest)
                    np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
