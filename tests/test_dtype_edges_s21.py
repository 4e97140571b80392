"""Dtype edges against PyTorch 2.13, session 21 (helper-151): the items session 20's sweep left
open (docs/fuzz_long_run.md, "Session 21") and a sweep of common Tensor ops over 0-d, empty,
integer, bool, float16, bfloat16 and float64 inputs with nan, inf and -0.0.

Each case runs the same function with `m` bound to torch and to descent: the dtype, shape and
values must agree (bitwise unless a tolerance is given, nan and the sign of zero included), or
both must raise (descent's error an instance of torch's class: RuntimeError for torch's
RuntimeError and NotImplementedError). `warns=True` also compares the UserWarnings raised."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import descent as ds


def _run(m, fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = fn(m), None
        except Exception as e:  # noqa: BLE001 - which error is raised is compared
            out = None, e
    users = sorted({str(w.message)[:40] for w in caught if w.category is UserWarning})
    return (*out, users)


def _np(x):
    if "bfloat16" in str(x.dtype):
        x = x.float()
    return np.asarray(x.detach().numpy())


def _same(fn, rtol=None, warns=False):
    t, te, tw = _run(torch, fn)
    d, de, dw = _run(ds, fn)
    if te is not None or de is not None:
        assert te is not None and de is not None, (te, de)
        base = RuntimeError if isinstance(te, (NotImplementedError, RuntimeError)) else type(te)
        assert isinstance(de, base), (type(te), type(de), de)
        return
    if warns:
        assert dw == tw, (tw, dw)
    for tv, dv in zip(t, d, strict=True) if isinstance(t, tuple) else [(t, d)]:
        assert str(dv.dtype).split(".")[-1] == str(tv.dtype).split(".")[-1], (tv.dtype, dv.dtype)
        assert tuple(dv.shape) == tuple(tv.shape)
        a, b = _np(tv), _np(dv)
        if rtol is not None:
            np.testing.assert_allclose(b, a, rtol=rtol, atol=0, equal_nan=True)
        else:
            np.testing.assert_array_equal(b, a)
            if a.dtype.kind == "f":  # (the sign of a zero too; a nan's is unspecified)
                keep = ~np.isnan(a)
                np.testing.assert_array_equal(np.signbit(b)[keep], np.signbit(a)[keep])


def _u8(m, v):
    return m.tensor(v, dtype=m.uint8)


# ---------------------------------------------------------------------------------------------
# 1. uint8 index tensors: PyTorch's legacy masks. Reads and writes with a value of several
# elements take the mask with a deprecation warning; a lone uint8 mask with one value is
# index_put_'s masked_fill_ dispatch, which refuses uint8 (descent wrote the fill).


def _write(index, value, shape=(4, 2)):
    def fn(m):
        x = m.zeros(*shape)
        x[index(m)] = value(m)
        return x

    return fn


def _index_put(index, value, accumulate, inplace=True):
    def fn(m):
        x = m.zeros(4, 2)
        if inplace:
            return x.index_put_(index(m), value(m), accumulate=accumulate)
        return m.index_put(x, index(m), value(m), accumulate=accumulate)

    return fn


ROWS = [1, 0, 1, 0]
UINT8_INDEXING = {
    "read": lambda m: m.arange(4.0)[_u8(m, [1, 0, 1, 0])],
    "read_nonbinary": lambda m: m.arange(4.0)[_u8(m, [2, 0, 1, 0])],
    "read_2d_mask": lambda m: m.arange(6.0).reshape(2, 3)[_u8(m, [[1, 0, 1], [0, 1, 0]])],
    "read_with_int": lambda m: m.arange(6.0).reshape(2, 3)[_u8(m, [1, 0]), 1],
    "read_with_index": lambda m: m.arange(6.0).reshape(2, 3)[_u8(m, [1, 0]), m.tensor([2])],
    "read_0d": lambda m: m.arange(4.0)[_u8(m, 1)],
    "read_wrong_length": lambda m: m.arange(4.0)[_u8(m, [1, 0, 1])],
    "write_number": _write(lambda m: _u8(m, ROWS), lambda m: 5.0),
    "write_int": _write(lambda m: _u8(m, ROWS), lambda m: 5),
    "write_0d": _write(lambda m: _u8(m, ROWS), lambda m: m.tensor(5.0)),
    "write_one_element": _write(lambda m: _u8(m, ROWS), lambda m: m.tensor([5.0])),
    "write_0d_float64": _write(lambda m: _u8(m, ROWS), lambda m: m.tensor(5.0, dtype=m.float64)),
    "write_after_slice": _write(lambda m: (slice(None), _u8(m, [1, 0])), lambda m: 5.0),
    "write_after_ellipsis": _write(lambda m: (Ellipsis, _u8(m, [1, 0])), lambda m: 5.0),
    "write_after_none": _write(lambda m: (None, _u8(m, ROWS)), lambda m: 5.0),
    "write_with_int": _write(lambda m: (_u8(m, ROWS), 1), lambda m: 5.0),
    "write_2d_mask": _write(lambda m: _u8(m, [[1, 0], [0, 1], [0, 0], [1, 1]]), lambda m: 5.0),
    "write_1d": _write(lambda m: _u8(m, ROWS), lambda m: 5.0, shape=(4,)),
    "write_wrong_length": _write(lambda m: _u8(m, [1, 0, 1]), lambda m: 5.0),
    "write_0d_mask": _write(lambda m: _u8(m, 1), lambda m: m.tensor(5.0)),
    "write_row": _write(lambda m: _u8(m, ROWS), lambda m: m.tensor([5.0, 6.0])),
    "write_rows": _write(lambda m: _u8(m, ROWS), lambda m: m.tensor([[5.0, 6.0], [7.0, 8.0]])),
    "write_row_float64": _write(lambda m: _u8(m, ROWS),
                                lambda m: m.tensor([5.0, 6.0], dtype=m.float64)),
    "write_two_masks": _write(lambda m: (_u8(m, ROWS), _u8(m, [1, 0])), lambda m: 5.0),
    "write_mask_and_index": _write(lambda m: (_u8(m, ROWS), m.tensor([1, 0])), lambda m: 5.0),
    "write_2d_mask_values": _write(lambda m: _u8(m, [[1, 0], [0, 1], [0, 0], [1, 1]]),
                                   lambda m: m.tensor([1.0, 2.0, 3.0, 4.0])),
    "write_empty_values": _write(lambda m: _u8(m, [0, 0, 0, 0]), lambda m: m.zeros(0, 2)),
    "index_put__0d": _index_put(lambda m: (_u8(m, ROWS),), lambda m: m.tensor(5.0), False),
    "index_put__row": _index_put(lambda m: (_u8(m, ROWS),), lambda m: m.tensor([5.0, 6.0]), False),
    "index_put__accumulate_0d": _index_put(lambda m: (_u8(m, ROWS),), lambda m: m.tensor(5.0),
                                           True),
    "index_put__accumulate_row": _index_put(lambda m: (_u8(m, ROWS),),
                                            lambda m: m.tensor([5.0, 6.0]), True),
    "index_put__with_index": _index_put(lambda m: (_u8(m, ROWS), m.tensor([1])),
                                        lambda m: m.tensor(5.0), False),
    "index_put_0d": _index_put(lambda m: (_u8(m, ROWS),), lambda m: m.tensor(5.0), False,
                               inplace=False),
    "index_put_row": _index_put(lambda m: (_u8(m, ROWS),), lambda m: m.tensor([5.0, 6.0]), False,
                                inplace=False),
    "index_put_accumulate": _index_put(lambda m: (_u8(m, ROWS),), lambda m: m.tensor(5.0), True,
                                       inplace=False),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(UINT8_INDEXING))
def test_uint8_index_tensors_are_masks(name):
    _same(UINT8_INDEXING[name], warns=True)


def test_uint8_mask_warning_names_the_callers_line():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds.arange(4.0)[_u8(ds, ROWS)]
    assert [w.filename for w in caught] == [__file__]


def test_uint8_mask_write_with_a_gradient():
    """The same refusal and the same masked write when the graph records the write."""
    for m in (torch, ds):
        w = m.ones(2, requires_grad=True)
        x = m.zeros(4, 2) + 0 * w
        with pytest.raises(RuntimeError, match="masked_fill_ only supports boolean masks"):
            x[_u8(m, ROWS)] = 5.0
    got = []
    for m in (torch, ds):
        w = m.ones(2, requires_grad=True)
        x = m.zeros(4, 2) * w
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x[_u8(m, ROWS)] = w * 3
        x.sum().backward()
        got.append((_np(x), _np(w.grad)))
    np.testing.assert_array_equal(got[1][0], got[0][0])
    np.testing.assert_array_equal(got[1][1], got[0][1])


# ---------------------------------------------------------------------------------------------
# 2. Fill values out of a dtype's range: new_full as full; a Python float beyond float32's or
# bfloat16's range is PyTorch's overflow error (it became inf) in full, fill_, masked_fill,
# x[i] = v, clamp and where; x[i] = int beyond int64 is setitem's ValueError; full(bool, 2**63)
# is True (NumPy's OverflowError).

FILLS = [2**64, 2**63, -(2**63) - 1, 256, -1, -129, 2**31, 1e40, -1e39, 3.5e38, float("inf"),
         float("nan"), 65520.0]  # fmt: skip
FILL_DTYPES = ["uint8", "int8", "int32", "int64", "float16", "bfloat16", "float32", "float64",
               "bool"]  # fmt: skip


@pytest.mark.parametrize("dt", FILL_DTYPES)
@pytest.mark.parametrize("value", FILLS, ids=repr)
def test_new_full_checks_the_value_as_full(dt, value):
    _same(lambda m: m.zeros(2, dtype=getattr(m, dt)).new_full((2,), value))
    _same(lambda m: m.full((2,), value, dtype=getattr(m, dt)))


FILL_FORMS = {
    "fill_": lambda m, x, v: x.fill_(v),
    "masked_fill": lambda m, x, v: x.masked_fill(m.tensor([True, False]), v),
    "setitem": lambda m, x, v: (x.__setitem__(0, v), x)[1],
    "setitem_mask": lambda m, x, v: (x.__setitem__(m.tensor([True, False]), v), x)[1],
    "clamp_max": lambda m, x, v: x.clamp(max=v),
    "where": lambda m, x, v: m.where(x > 0, x, v),
    "index_fill": lambda m, x, v: x.index_fill(0, m.tensor([0]), v),
}


@pytest.mark.parametrize("dt", ["float32", "bfloat16", "float64", "bool", "int64"])
@pytest.mark.parametrize("value", [1e40, -3.5e38, 3.4e38, 2**63, 2**64 - 1, -(2**63) - 1],
                         ids=repr)  # fmt: skip
@pytest.mark.parametrize("form", sorted(FILL_FORMS))
def test_fill_forms_check_float_range_and_setitem_ints(form, value, dt):
    if form in ("clamp_max", "where") and (dt == "bool" or not isinstance(value, float)):
        return  # (bool clamp; ints there are the session 20 sweep's)
    _same(lambda m: FILL_FORMS[form](m, m.zeros(2, dtype=getattr(m, dt)), value))


# ---------------------------------------------------------------------------------------------
# 3. A bool tensor with a Python int in [2**63, 2**64): a uint64 number, which PyTorch does not
# promote with bool (descent wrapped it into int64, or NumPy raised OverflowError in place).

BIG = [2**63, 2**64 - 1, 2**63 - 1, -(2**63)]
BOOL_BIG = {
    "add": lambda m, x, c: x + c,
    "radd": lambda m, x, c: c + x,
    "mul": lambda m, x, c: x * c,
    "iadd": lambda m, x, c: x.__iadd__(c),
    "imul": lambda m, x, c: x.__imul__(c),
    "add_fn": lambda m, x, c: m.add(x, c),
    "int_add": lambda m, x, c: x.long() + c,
    "uint8_add": lambda m, x, c: x.to(m.uint8) + c,
    "float_add": lambda m, x, c: x.float() + c,
    "0d": lambda m, x, c: x[0] + c,
}


@pytest.mark.parametrize("c", BIG, ids=repr)
@pytest.mark.parametrize("form", sorted(BOOL_BIG))
def test_bool_tensor_with_uint64_number(form, c):
    _same(lambda m: BOOL_BIG[form](m, m.tensor([True, False]), c))


# ---------------------------------------------------------------------------------------------
# 4. Reductions with out=: any/all fill a bool or uint8 out whatever the input (other dtypes:
# "any only supports bool tensor for result"); mean, nanmean, std, var and logsumexp compute in
# out's dtype (std/var over all elements into a float/double/complex out: at the input's
# precision, PyTorch's std_var_all path, which refuses float16 and bfloat16 inputs).

X23 = [[1.1234567, 2.7654321, 3.333333], [1e-3, 5.5, 300.0]]


@pytest.mark.parametrize("out", ["bool", "uint8", "int64", "float32"])
@pytest.mark.parametrize("dt", ["bool", "uint8", "float32", "int64"])
@pytest.mark.parametrize("name", ["any", "all"])
def test_any_all_out_bool_or_uint8(name, dt, out):
    x = [[1.0, 0.0, 3.0], [0.0, 0.0, 2.0]]
    for kw in ({}, {"dim": 1}, {"dim": (0, 1)}, {"dim": 0, "keepdim": True}):
        _same(lambda m, kw=kw: getattr(m, name)(m.tensor(x).to(getattr(m, dt)), **kw,
                                                out=m.empty(0, dtype=getattr(m, out))))  # fmt: skip


@pytest.mark.parametrize("dims", [None, 1, (0, 1), 0], ids=repr)
@pytest.mark.parametrize("shape", [(2, 3), (6,), (1, 3)], ids=str)
@pytest.mark.parametrize("out", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("dt", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("name", ["mean", "nanmean", "std", "var", "logsumexp"])
def test_reductions_compute_in_out_dtype(name, dt, out, shape, dims):
    if (dims is None and name == "logsumexp") or (len(shape) == 1 and dims in (1, (0, 1))):
        return
    args = () if dims is None else (dims,)

    def fn(m):
        x = m.tensor(X23).reshape(shape).to(getattr(m, dt))
        return getattr(m, name)(x, *args, out=m.empty(0, dtype=getattr(m, out)))

    # (float64 results: the last bits follow the summation order, Welford's for var)
    _same(fn, rtol=1e-12 if out == "float64" else None)


def test_reductions_into_a_complex_out():
    """std/var/nanmean have no complex kernel (NotImplementedError) but over all elements of a
    float32 input (std_var_all); mean and logsumexp compute in it."""
    x = X23
    for name in ("std", "var", "nanmean"):
        _same(lambda m, n=name: getattr(m, n)(m.tensor(x), 1, out=m.empty(0, dtype=m.complex64)))
        _same(lambda m, n=name: getattr(m, n)(m.tensor(x), out=m.empty(0, dtype=m.complex64)))
    _same(lambda m: m.logsumexp(m.tensor(x).half(), 1, out=m.empty(0, dtype=m.complex64)),
          rtol=1e-6)  # fmt: skip


def test_logsumexp_out_of_integers_and_inf():
    """Integer and bool inputs go through the default float dtype; an infinite maximum is
    replaced by 0 before the exp (PyTorch's logsumexp_out)."""
    for dt in ("bool", "int64", "uint8"):
        _same(lambda m, dt=dt: m.logsumexp(m.tensor([[1, 0, 1], [0, 0, 2]]).to(getattr(m, dt)),
                                           1, out=m.empty(0, dtype=m.float64)),
              rtol=1e-7)  # fmt: skip
    inf = float("inf")
    for row in ([inf, 1.0], [-inf, -inf], [inf, -inf], [float("nan"), 1.0]):
        _same(lambda m, r=row: m.logsumexp(m.tensor([r]).half(), 1,
                                           out=m.empty(0, dtype=m.float64)))  # fmt: skip
    _same(lambda m: m.logsumexp(m.empty(2, 0).half(), 1, out=m.empty(0, dtype=m.float64)))


@pytest.mark.parametrize("dtype", [None, "float32", "float64", "int64", "bool"])
@pytest.mark.parametrize("dt", ["bool", "uint8", "int64", "float16", "float32"])
def test_nanmean_refuses_integer_inputs_whatever_the_dtype(dt, dtype):
    _same(lambda m: m.nanmean(m.tensor([1, 0, 1]).to(getattr(m, dt)),
                              dtype=None if dtype is None else getattr(m, dtype)))  # fmt: skip


@pytest.mark.parametrize("dims", [(0, -1), (0, 0), (-1, 0), (0, 1), (1,), (1, 0)], ids=str)
@pytest.mark.parametrize("shape", [(0,), (2,), (), (0, 3), (2, 0)], ids=str)
@pytest.mark.parametrize("name", ["amax", "amin"])
def test_amax_empty_dim_error_comes_first(name, shape, dims):
    _same(lambda m: getattr(m, name)(m.zeros(shape), dims))


# ---------------------------------------------------------------------------------------------
# 5. xlogy/xlog1py of bfloat16: PyTorch's kernel rounds log(y) to bfloat16 before the product
# (descent rounded once); ldexp with a complex operand: input * pow(2 of input's dtype, other)
# (descent made pow(2.0, other) in float32 first: inf at 2**255, complex64 for a 0-d complex128).

XS = [0.3, 1.7, 2.5, 0.0, 7.1, -1.5, 1e-3]
YS = [1.3, 0.2, 3.7, 2.0, 0.9, 4.4, 250.0]


@pytest.mark.parametrize("out", [None, "float32", "float64"])
@pytest.mark.parametrize("name", ["xlogy", "special.xlog1py"])
def test_bfloat16_xlogy_rounds_the_log(name, out):
    def fn(m):
        f = m.xlogy if name == "xlogy" else m.special.xlog1py
        x, y = m.tensor(XS).bfloat16(), m.tensor(YS).bfloat16()
        return f(x, y) if out is None else f(x, y, out=m.empty(0, dtype=getattr(m, out)))

    _same(fn)


def test_bfloat16_xlogy_gradients():
    got = []
    for m in (torch, ds):
        x = m.tensor(XS).bfloat16().requires_grad_()
        y = m.tensor(YS).bfloat16().requires_grad_()
        m.xlogy(x, y).sum().backward()
        got.append([_np(x.grad), _np(y.grad)])
    for a, b in zip(*got, strict=True):
        np.testing.assert_array_equal(b, a)


LDEXP_DTYPES = ["bool", "uint8", "int32", "int64", "float32", "float64", "complex64",
                "complex128"]  # fmt: skip


@pytest.mark.parametrize("e0d", [False, True])
@pytest.mark.parametrize("x0d", [False, True])
@pytest.mark.parametrize("edt", LDEXP_DTYPES)
@pytest.mark.parametrize("xdt", LDEXP_DTYPES)
def test_ldexp_with_a_complex_operand(xdt, edt, x0d, e0d):
    if "complex" not in xdt + edt:
        return

    def fn(m):
        xv = [1.5 - 2j, 3 + 0.5j, 1j, 2] if "complex" in xdt else [1, 3, 0, 2]
        ev = [True, False, True, True] if edt == "bool" else [3, 255, 1, 0]
        x = m.tensor(xv[1] if x0d else xv).to(getattr(m, xdt))
        e = m.tensor(ev[1] if e0d else ev).to(getattr(m, edt))
        return m.ldexp(x, e)

    # (the values: C's cpow in torch, NumPy's in descent: 4e-16 apart, KNOWN in test_edges_s13)
    _same(fn, rtol=2e-6)


# ---------------------------------------------------------------------------------------------
# 6. bfloat16 SGD with foreach=True: PyTorch's _foreach_mul_(bufs, momentum) multiplies by the
# momentum rounded to bfloat16 (0.9 -> 0.8984375), its single-tensor mul_ by the float32 number
# (descent did the latter for both: 1 ulp off on ~15% of the elements). In a step where some
# parameter's buffer is new, PyTorch's foreach rule runs mul_ per tensor: the float32 number.
# (Sizes are multiples of 64 elements: PyTorch's vectorized bfloat16 loop and its scalar tail
# round a + alpha * b differently.)

SGD_OPTIONS = [
    dict(momentum=0.9),
    dict(momentum=0.9, weight_decay=0.01),
    dict(momentum=0.9, nesterov=True),
    dict(momentum=0.9, nesterov=True, weight_decay=0.01),
    dict(momentum=0.9, dampening=0.1),
    dict(momentum=0.9, maximize=True, weight_decay=0.01),
    dict(weight_decay=0.01),
]


def _sgd_run(m, foreach, options, grads_missing=False):
    rng = np.random.default_rng(21)
    w = rng.standard_normal((64, 33)).astype(np.float32)
    gs = [rng.standard_normal((64, 33)).astype(np.float32) for _ in range(4)]
    parameter = torch.nn.Parameter if m is torch else ds.nn.Parameter
    a = parameter(m.tensor(w[:32]).to(m.bfloat16))
    b = parameter(m.tensor(w[32:]).to(m.bfloat16))
    opt = m.optim.SGD([a, b], lr=0.05, foreach=foreach, **options)
    for s, g in enumerate(gs):
        a.grad = m.tensor(g[:32]).to(m.bfloat16)
        b.grad = None if grads_missing and s == 0 else m.tensor(g[32:]).to(m.bfloat16)
        opt.step()
    return [_np(t.detach()) for t in (a, b, *opt.state[a].values(), *opt.state[b].values())]


@pytest.mark.parametrize("missing", [False, True], ids=["all_grads", "b_without_grad_first"])
@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("options", SGD_OPTIONS, ids=str)
def test_bfloat16_sgd_foreach_rounds_the_momentum(options, foreach, missing):
    want = _sgd_run(torch, foreach, options, missing)
    got = _sgd_run(ds, foreach, options, missing)
    assert len(got) == len(want)
    for w, g in zip(want, got, strict=True):
        np.testing.assert_array_equal(g, w)


# ---------------------------------------------------------------------------------------------
# 7. The sweep (section 2 of the brief): sum/prod/mean/amax/max/argmax/cumsum/cumprod/sort/
# argsort/topk/where/clamp/index_add/scatter_reduce/gather/median/nansum/logsumexp/var/
# count_nonzero/aminmax/cummax over bool, int64, uint8, float16, bfloat16, float32, float64,
# shapes (), (0,), (2, 4), (0, 3), (2, 0) with nan, inf and -0.0 (1 120 cases,
# /work/notes/s21/h151/sweep.py): one class differed, var/std with no degrees of freedom left
# (PyTorch's UserWarning, which descent did not give; NumPy's "Mean of empty slice" leaked).


@pytest.mark.parametrize("shape", [(), (0,), (1,), (2, 0), (0, 3), (1, 3)], ids=str)
@pytest.mark.parametrize("form", ["var", "std", "var0", "std_correction2", "var_mean"])
def test_var_std_without_degrees_of_freedom_warn(form, shape):
    def fn(m):
        x = m.zeros(shape)
        if form == "var0":
            return x.var(0) if x.ndim else x.var()
        if form == "std_correction2":
            return x.std(correction=2)
        if form == "var_mean":
            return m.var_mean(x)[0]
        return getattr(x, form)()

    _same(fn, warns=True)


# ---------------------------------------------------------------------------------------------
# 8. A list index holding tensors, lists, slices, None or Ellipsis (fewer than 32 entries) is
# PyTorch's tuple of its entries, with its deprecation warning (treatSequenceAsTuple); descent
# read it as NumPy does, one array index: x[[t]] had a leading 1, x[[[1, 0], [2, 1]]] raised.

LIST_INDEXES = {
    "tensor": lambda m: [m.tensor([1, 0])],
    "two_tensors": lambda m: [m.tensor([1, 0]), m.tensor([2, 1])],
    "lists": lambda m: [[1, 0], [2, 1]],
    "int_and_slice": lambda m: [1, slice(None)],
    "none": lambda m: [None, 1],
    "ellipsis": lambda m: [Ellipsis, 0],
    "ints": lambda m: [1, 0],
    "bools": lambda m: [True, False],
    "uint8_mask": lambda m: [_u8(m, [1, 0])],
}


@pytest.mark.parametrize("write", [False, True])
@pytest.mark.parametrize("name", sorted(LIST_INDEXES))
def test_list_index_with_sequences_is_a_tuple(name, write):
    def fn(m):
        x = m.arange(6.0).reshape(2, 3)
        if write:
            x[LIST_INDEXES[name](m)] = 7.0 if name != "uint8_mask" else m.tensor([7.0, 8.0, 9.0])
            return x
        return x[LIST_INDEXES[name](m)]

    _same(fn, warns=True)
