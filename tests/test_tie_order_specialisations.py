"""The selection ops' numba kernels (kernels/_cpu_tie_order.py) compile one specialisation per
value dtype: bool / int8 / uint8 / int16 / uint16 rows reach them widened to int32 (exact: the
same comparisons, the same indices, tests/test_op_speed_s14.py checks them against PyTorch), and
the sort helpers' own constants are no Python literals, which numba types as Literal types and
compiles the callee again for (and down the chain). The value kernels of kthvalue, median, mode
and topk take every dtype as int64 keys (floats through float64_keys): one copy each."""

from __future__ import annotations

import numpy as np
import pytest

import descent as ds
from descent.kernels import cpu as kcpu

_SMALL = (np.bool_, np.int8, np.uint8, np.int16, np.uint16)
# helpers' arguments that their callers inside the kernels pass as constants (a heap's root hole
# 0, an insertion sort's 0 and 16): NumPy scalars there, so not compiled again as Literal types.
# (The entry points' literal 0 / False stay: they fold branches, mode_torch_rows was 13-23%
# slower on float64 without them.)
_OWN_CONSTANTS = {"_adjust_heap": (3,), "_p_adjust_heap": (2,), "_p_insertion_sort": (1, 2),
                  "_p_linear_insert": (2,)}  # fmt: skip


def test_selection_kernels_take_small_integers_as_int32_and_no_literals():
    if not kcpu.enabled():
        pytest.skip("numba kernels off")
    from numba import from_dtype, types
    from numba.core.registry import CPUDispatcher

    from descent.kernels import _cpu_tie_order as kt

    rng = np.random.default_rng(0)
    base = rng.integers(0, 3, (3, 40))
    for dt in (*_SMALL, np.int32):
        t = ds.tensor(base.astype(dt))
        ds.sort(t, 1)  # torch_sort_order: packed int32 keys
        if dt is np.bool_:  # (the others refuse bool, as PyTorch)
            continue
        ds.kthvalue(t, 7, 1)
        ds.median(t, 1)
        ds.mode(t, 1)
        ds.topk(t, 20, 1)  # k > n / 8: the replay on every row
    for dt in (np.float32, np.float64):  # the value kernels (_sort and its helpers)
        t = ds.tensor(base.astype(dt))
        ds.kthvalue(t, 7, 1)
        ds.median(t, 1)
        ds.mode(t, 1)
        ds.topk(t, 20, 1)
        ds.sort(t, 1)
    # kthvalue / median / mode / topk on rows take every dtype as int64 keys (tie_order's
    # _wide_keys): one compiled copy each
    for f in (kt.kthvalue_torch_rows, kt.median_stable_rows, kt.mode_torch_rows,
              kt.topk_torch_rows):  # fmt: skip
        assert {sig[0].dtype for sig in f.signatures} <= {types.int64}, f.signatures
    small = {from_dtype(np.dtype(d)) for d in _SMALL}
    for name, f in vars(kt).items():
        if not isinstance(f, CPUDispatcher):
            continue
        for sig in f.signatures:
            assert getattr(sig[0], "dtype", None) not in small, (name, sig)  # the values / keys
            for i in _OWN_CONSTANTS.get(name, ()):
                assert not isinstance(sig[i], types.Literal), (name, sig)
