"""descent.compile against eager where a value computed outside the recorded ops was frozen
into the replay, or where two recordings of the same step disagreed for a reason that was no
value of the data (session 20, helper-140: fuzz seeds 20140001-, and the audit of the
`Tensor._wrap(` sites outside ops/ and nn/).

Each case runs six calls (0 and 1 with the same data, 2-5 with new data) compiled and eagerly
and compares them bitwise; each failed before its fix (a wrong value from call 2, or a fallback
where the step now replays).
"""

import warnings

import numpy as np
import pytest

import descent

T = descent
_RNG = np.random.default_rng(20)
_A0 = _RNG.standard_normal((4, 6)).astype(np.float32)
_XS = [_A0, _A0.copy()] + [_RNG.standard_normal((4, 6)).astype(np.float32) * 3 for _ in range(4)]


def _same(a, b):
    a, b = a.detach()._data, b.detach()._data
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


# ---------------------------------------------------------------------------------------------
# A NumPy ufunc descent has no op for (`np.cbrt(t)`, `np.spacing(t)`) ran on the arrays in
# Tensor.__array_ufunc__ and wrapped the result: a constant of the recording, returned by the
# replay from the third call on. Now through untracked.computed. (np.frexp, np.nextafter run
# descent's ops and replayed already.)

_UFUNCS = {
    "cbrt": lambda x: np.cbrt(x) * 2,
    "spacing": lambda x: np.spacing(x) * x,
    "modf": lambda x: np.modf(x * 3)[0] * x,
    "ldexp_kw": lambda x: np.ldexp(x, 2, dtype=np.float64) * 2,
}


@pytest.mark.parametrize("name", sorted(_UFUNCS))
def test_numpy_ufunc_without_an_op_replays(name):
    f = _UFUNCS[name]
    c = T.compile(f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, a in enumerate(_XS):
            assert _same(f(T.tensor(a)), c(T.tensor(a))), f"call {i}"
    assert c.stats["replays"] == 4, c.stats


# ---------------------------------------------------------------------------------------------
# native_dropout's kept-positions mask was `mask != 0` on the arrays: a constant that two
# recordings never shared (each draws its own mask), so the step always ran eagerly.


def test_native_dropout_mask_replays():
    def f(x):
        y, keep = T.native_dropout(x, 0.5, True)
        return y * 2, keep.float() * x, keep

    c = T.compile(f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, a in enumerate(_XS):
            T.manual_seed(10 + i)
            want = f(T.tensor(a))
            T.manual_seed(10 + i)
            got = c(T.tensor(a))
            assert all(_same(p, q) for p, q in zip(want, got, strict=True)), f"call {i}"
    assert c.stats["replays"] == 4, c.stats


# ---------------------------------------------------------------------------------------------
# A sparse tensor's indices and values have nnz rows, and nnz depends on the values of the
# dense tensor it was made from. The accessors wrapped arrays inside the storage (constants of
# the recording: a replay returned the first call's indices) or replayed fixed shapes (a
# broadcast error once nnz changed). They now read nnz through a Tensor, so such a function
# runs eagerly; products and to_dense() still replay.

_SPARSE = {
    "coo_indices": lambda x: x.relu().to_sparse().indices() * 2,
    "coo_values": lambda x: x.relu().to_sparse().values() * 2,
    "coo__values": lambda x: x.relu().to_sparse()._values() * 2,
    "coo_nnz": lambda x: x.relu().to_sparse()._nnz() * x,
    "csr_values": lambda x: x.to_sparse_csr().values() * 2,
    "csr_crow": lambda x: x.relu().to_sparse_csr().crow_indices() * 2,
    "csc_values": lambda x: x.relu().to_sparse_csc().values() * 2,
    "bsr_values": lambda x: x[:, :4].relu().to_sparse_bsr((2, 2)).values() * 2,
}


@pytest.mark.parametrize("name", sorted(_SPARSE))
def test_sparse_accessors_do_not_freeze_nnz(name):
    f = _SPARSE[name]
    c = T.compile(f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, a in enumerate(_XS):
            assert _same(f(T.tensor(a)), c(T.tensor(a))), f"call {i}"


@pytest.mark.parametrize("name", ["mm", "to_dense"])
def test_sparse_products_still_replay(name):
    f = {"mm": lambda x: (x.relu().to_sparse_csr() @ x.t()) * 2,
         "to_dense": lambda x: x.relu().to_sparse().to_dense() * 2}[name]  # fmt: skip
    c = T.compile(f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, a in enumerate(_XS):
            assert _same(f(T.tensor(a)), c(T.tensor(a))), f"call {i}"
    assert c.stats["replays"] == 4, c.stats


# ---------------------------------------------------------------------------------------------
# Arrays an autograd Function's forward computes from the values (Nextafter's `equal`,
# NanToZero's not-nan mask) were compared between the two recordings as the op's parameters:
# a training step whose data moved them (a new batch on every call; fuzz seed 20144438, where
# the optimizer moved W) ran eagerly for good. They are saved slots now (forward recomputes
# them on each replay).

_ROUNDED = [np.round(a * 2) / 2 for a in _XS[2:]]  # ties between x and other in nextafter
_ROUNDED = [_ROUNDED[0] * 1] + _ROUNDED  # five calls, each with its own data


@pytest.mark.parametrize("name", ["nextafter", "nansum", "nanmean"])
def test_forward_computed_masks_replay_on_new_data(name):
    fn = {"nextafter": lambda w, x: T.nextafter(w, x.flip(0)),
          "nansum": lambda w, x: T.nansum((w * x).log(), 1),
          "nanmean": lambda w, x: T.nanmean((w - x).sqrt(), 0)}[name]  # fmt: skip
    got = []
    for compiled in (False, True):
        w = T.tensor(_ROUNDED[0], requires_grad=True)

        def step(x, w=w):
            y = fn(w, x)
            (y * 0.5).sum().backward()
            return y * 1

        f = T.compile(step) if compiled else step
        out = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, a in enumerate(_ROUNDED):
                w._data[...] = a
                w.grad = None
                out.append((f(T.tensor(_ROUNDED[(i + 2) % 5])), w.grad.clone()))
        got.append(out)
    for i, ((y0, g0), (y1, g1)) in enumerate(zip(*got, strict=True)):
        assert _same(y0, y1) and _same(g0, g1), f"call {i}"
    assert f.stats["replays"] == 3 and f.stats["fallbacks"] == 0, f.stats
