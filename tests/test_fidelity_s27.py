"""Session 27's fidelity fixes (helper-194; the probe is /work/notes/s27/h194/probe.py):
indexing, index reductions, tensor creation and in-place dtype rules where descent differed
from PyTorch 2.13 (the oracle), each case compared with torch computed here."""

from __future__ import annotations

import numpy as np
import pytest

import descent
from fidelity_helpers import results_or_same_error

torch = pytest.importorskip("torch")


def _check_same(t, d, strides):
    if isinstance(t, (tuple, list)):
        assert len(d) == len(t)
        for a, b in zip(t, d, strict=True):
            _check_same(a, b, strides)
        return
    assert str(d.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], (t.dtype, d.dtype)
    assert tuple(d.shape) == tuple(t.shape)
    assert d.requires_grad == t.requires_grad
    if strides:  # (the strides of dims of size 1 do not matter)
        want = [s for s, n in zip(t.stride(), t.shape, strict=True) if n > 1]
        got = [s for s, n in zip(d.stride(), d.shape, strict=True) if n > 1]
        assert got == want, (t.stride(), d.stride())
    tn = t.detach().float() if t.dtype == torch.bfloat16 else t.detach()
    dn = d.detach().float() if str(d.dtype).endswith("bfloat16") else d.detach()
    tn, dn = tn.resolve_conj().numpy(), dn.numpy()
    np.testing.assert_allclose(dn, tn, rtol=1e-6)


def _same(fn, strides=False):
    """fn(torch) raises X => fn(descent) raises an X; fn(torch) computes => fn(descent)
    computes the same dtype, shape, requires_grad, values (and strides)."""
    pair = results_or_same_error(fn, torch, descent)
    if pair is None:
        return
    tr, dr = pair
    _check_same(tr, dr, strides)


def _x(m, dtype="float32"):
    return m.arange(24, dtype=getattr(m, dtype)).reshape(2, 3, 4)


def _set(x, index, value):
    x[index] = value
    return x


# -- indexing -----------------------------------------------------------------------------------
INDEX = {
    # a tuple inside the index is a sequence (advanced) index: it was read as basic, so
    # x[:, (0, 0)]'s gradient gave the repeated row 1, not 2
    "tuple_in_tuple": lambda m: _x(m)[:, (0, 1)],
    "tuple_in_tuple_dup": lambda m: _x(m)[:, (0, 0)],
    "tuple_ell": lambda m: _x(m)[..., (3, 0)],
    # PyTorch's placement of the advanced dims after an int is a contiguous result
    "int_slice_tensor": lambda m: _x(m)[1, :, m.tensor([1, 0])],
    "int_slice_2d": lambda m: _x(m)[1, :, m.tensor([[0, 1], [1, 0]])],
    "int_ell_list": lambda m: _x(m)[0, ..., [0, 2, 1]],
    "t0d_step_tensor": lambda m: _x(m)[m.tensor(1), 0:3:2, m.tensor([-2, -1])],
    "view_after": lambda m: _x(m)[1, :, m.tensor([1, 0])].view(-1),
    # a bool scalar beside a mask: a new dim of size 1 that the mask's positions broadcast with
    "true_mask": lambda m: _x(m)[True, m.tensor([True, False])],
    "false_mask": lambda m: _x(m)[False, m.tensor([True, False])],
    "true_boollist": lambda m: _x(m)[True, [True, False]],
    # x[False] = v writes nothing and reads nothing of v (PyTorch returns at once)
    "set_false_col": lambda m: _set(_x(m), False, m.tensor([[-1.0], [-2.0]])),
    "set_false_bad": lambda m: _set(_x(m, "int64"), False, m.tensor([1.0, 2.0, 3.0])),
}


@pytest.mark.parametrize("name", list(INDEX))
def test_indexing_as_torch(name):
    _same(INDEX[name], strides=True)


@pytest.mark.parametrize(
    "index",
    [
        lambda m: (slice(None), (0, 0)),
        lambda m: ((1, 1, 0),),
        lambda m: (0, slice(None), [2, 2]),
    ],  # fmt: skip (the list: a control)
)
def test_sequence_index_gradients_accumulate_as_torch(index):
    def grads(m):
        x = m.arange(24.0, dtype=m.float64).reshape(2, 3, 4).requires_grad_()
        y = x[index(m)]
        (y * m.arange(float(y.numel()), dtype=m.float64).reshape(y.shape).cos()).sum().backward()
        return y.detach().numpy(), x.grad.numpy(), y.grad_fn.name()

    (ty, tg, tname), (dy, dg, dname) = grads(torch), grads(descent)
    np.testing.assert_allclose(dy, ty)
    np.testing.assert_allclose(dg, tg)
    if not isinstance(index(torch)[0], int):  # (after an int: descent's PyTorch placement of
        assert dname == tname  # the dims is a recorded copy, CloneBackward0)


# -- index reductions ---------------------------------------------------------------------------
def _ir(m, mode, include_self, ix, dtype="bool"):
    x = m.ones(3, 4, dtype=getattr(m, dtype))
    src = m.ones(len(ix), 4, dtype=getattr(m, dtype))
    return x.index_reduce(0, m.tensor(ix, dtype=m.int64), src, mode, include_self=include_self)


def _sr(m, include_self, ix):
    x = m.ones(3, 4, dtype=m.bool)
    src = m.ones(2, 4, dtype=m.bool)
    index = m.tensor(ix, dtype=m.int64).reshape(-1, 4)
    return x.scatter_reduce(0, index, src, "mean", include_self=include_self)


REDUCE = {
    # bool index_reduce without include_self: PyTorch's NotImplementedError, before the index
    # checks (descent computed, or raised IndexError for a bad index)
    **{
        f"index_reduce_bool_{mode}_{k}": (lambda m, mode=mode, ix=ix: _ir(m, mode, False, ix))
        for mode in ("prod", "mean", "amax", "amin")
        for k, ix in (("dup", [0, 2, 0]), ("empty", []), ("oob", [0, 3]), ("neg", [-1]))
        if (mode, k) != ("mean", "dup")
    },  # (that one raised before too)
    "index_reduce_bool_mean_empty_self": lambda m: _ir(m, "mean", True, []),  # (computes)
    "index_reduce_bool_prod_self": lambda m: _ir(m, "prod", True, [0, 2, 0]),  # (computes)
    # scatter_reduce 'mean' of bools raises before the index check with include_self, and
    # for an empty index (descent returned x's copy, or raised its index error)
    "scatter_mean_bool_oob_self": lambda m: _sr(m, True, [3, 0, 0, 0]),
    "scatter_mean_bool_neg_self": lambda m: _sr(m, True, [-1, 0, -1, 0]),
    "scatter_mean_bool_empty": lambda m: _sr(m, False, []),
    "scatter_mean_bool_empty_self": lambda m: _sr(m, True, []),
    "scatter_mean_bool_oob": lambda m: _sr(m, False, [3, 0, 0, 0]),  # (index error first)
    # take_along_dim with indices of another rank: PyTorch's RuntimeError (an IndexError)
    "take_along_dim_rank": lambda m: m.take_along_dim(_x(m), m.tensor([[0, 1]]), 2),
}


@pytest.mark.parametrize("name", list(REDUCE))
def test_index_reductions_as_torch(name):
    _same(REDUCE[name])


@pytest.mark.parametrize("mode", ["prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_index_reduce_of_an_empty_index_gives_source_a_zero_gradient(mode, include_self):
    # PyTorch's source.grad is zeros (descent's was None: the empty index cut source off)
    def grads(m):
        x = m.arange(12.0, dtype=m.float64).reshape(3, 4).requires_grad_()
        s = m.ones(3, 4, dtype=m.float64, requires_grad=True)
        y = x.index_reduce(0, m.zeros(0, dtype=m.int64), s[:0], mode, include_self=include_self)
        (y * m.arange(12.0, dtype=m.float64).reshape(3, 4).cos()).sum().backward()
        return y.detach().numpy(), x.grad.numpy(), s.grad

    (ty, tx, ts), (dy, dx, ds) = grads(torch), grads(descent)
    np.testing.assert_array_equal(dy, ty)
    np.testing.assert_allclose(dx, tx, rtol=1e-15)  # (PyTorch's prod: grad * out / x)
    assert ds is not None and ts is not None
    np.testing.assert_array_equal(ds.numpy(), ts.numpy())


# -- creation ----------------------------------------------------------------------------------
def _np(dtype, view=None):
    a = np.array([[0, 1, 2], [3, 1, 0]]).astype(dtype)
    return a.T if view == "T" else a[0, 1] if view == "0d" else a


CREATE = {
    # a tensor inside a list is read as its one number, with its dtype in the inference
    "list_of_1elem_tensors": lambda m: m.tensor([m.tensor([1.0]), m.tensor([2.0])]),
    "list_of_2elem_tensors": lambda m: m.tensor([m.ones(2), m.ones(2)]),
    "list_of_f64_0d": lambda m: m.tensor([m.tensor(1.0, dtype=m.float64)]),
    "number_then_f64_0d": lambda m: m.tensor([1.5, m.tensor(2.0, dtype=m.float64)]),
    "f16_0d_and_int": lambda m: m.tensor([m.tensor(1.5, dtype=m.float16), 1]),
    "as_tensor_list_f64_0d": lambda m: m.as_tensor([m.tensor(3.0, dtype=m.float64), 1]),
    # a 0-d bool with an integer dtype raised NumPy's IndexError
    "bool_as_uint8": lambda m: m.tensor(True, dtype=m.uint8),
    "bool_as_int32": lambda m: m.tensor(False, dtype=m.int32),
    # PyTorch's error classes for data that is not numbers
    "ragged_number_beside_list": lambda m: m.tensor([[1, 2], 3]),
    "ragged_number_beside_list_f32": lambda m: m.tensor([[1, 2], 3], dtype=m.float32),
    "ragged_lengths": lambda m: m.tensor([[1, 2], [3]]),
    "str_list": lambda m: m.tensor(["a"]),
    "str_list_bool": lambda m: m.tensor(["a"], dtype=m.bool),
    "none": lambda m: m.tensor([None]),
    "none_f32": lambda m: m.tensor([None], dtype=m.float32),
    "none_bool": lambda m: m.tensor([None], dtype=m.bool),
    "complex_second_f32": lambda m: m.tensor([1, 2j], dtype=m.float32),
    "complex_second_int64": lambda m: m.tensor([1, 2j], dtype=m.int64),
    # NumPy dtypes no tensor holds: PyTorch's TypeError (descent made float128 tensors, and
    # from_numpy took any array)
    **{
        f"{how}_np_longdouble": (lambda m, how=how: getattr(m, how)(_np("longdouble")))
        for how in ("tensor", "as_tensor", "from_numpy", "asarray")
    },
    **{
        f"from_numpy_{dt}": (lambda m, dt=dt: m.from_numpy(_np(dt)))
        for dt in ("object", "U1", "datetime64[s]")
    },
    "tensor_np_longdouble_f32": lambda m: m.tensor(_np("longdouble"), dtype=m.float32),
    "tensor_np_object_f32": lambda m: m.tensor(_np("object"), dtype=m.float32),
    "tensor_np_longdouble_0d": lambda m: m.tensor(_np("longdouble", "0d")),
    # arange has no complex kernel; linspace takes complex bounds
    "arange_complex": lambda m: m.arange(3, dtype=m.complex64),
    "linspace_complex": lambda m: m.linspace(0, 1j, 3),
    "linspace_complex_start": lambda m: m.linspace(1 + 1j, 2, 5),
    "linspace_complex128": lambda m: m.linspace(0, 1j, 3, dtype=m.complex128),
    "linspace_complex_to_real": lambda m: m.linspace(0, 1j, 3, dtype=m.float32),
}


@pytest.mark.parametrize("name", list(CREATE))
def test_creation_as_torch(name):
    _same(CREATE[name])


@pytest.mark.parametrize("dt", ["float32", "float64", "int8", "uint16", "bool", "complex64"])
@pytest.mark.parametrize("view", ["T", "sliced_T"])
def test_tensor_of_a_strided_array_keeps_its_layout_as_torch(dt, view):
    # PyTorch's copy keeps the array's memory order (descent's copy was C-ordered)
    def make(m):
        a = np.arange(12).reshape(3, 4).astype(dt)
        return m.tensor(a.T if view == "T" else a.T[::2])

    _same(make, strides=True)


# -- in-place and fill values -------------------------------------------------------------------
INPLACE = {
    # lerp takes a tensor end only (PyTorch's TypeError; descent computed)
    **{
        f"lerp{s}_end_{e!r}": (lambda m, s=s, e=e: getattr(m.ones(3), "lerp" + s)(e, 0.5))
        for s in ("", "_")
        for e in (1.5, 2, True)
    },
    "torch_lerp_end_number": lambda m: m.lerp(m.ones(3), 2.0, 0.5),
    "lerp_end_tensor": lambda m: m.ones(3).lerp_(m.full((3,), 2.0), 0.5),  # (control)
    # a 0-d tensor fill value gets the checked conversion of its number (descent cast it)
    **{
        f"masked_fill{s}_{dt}_{v}": (
            lambda m, s=s, dt=dt, v=v: getattr(m.zeros(3, dtype=getattr(m, dt)), "masked_fill" + s)(
                m.tensor([True, False, True]),
                m.tensor(v, dtype=m.float64 if isinstance(v, float) else m.int64),
            )
        )  # fmt: skip
        for s in ("", "_")
        for dt, v in (
            ("uint8", -1.5),
            ("uint8", 300),
            ("uint8", 1e10),
            ("uint8", float("nan")),
            ("uint8", -1),
            ("int8", 300),
            ("int8", 1e10),
            ("int8", float("nan")),
            ("int8", -1.5),
            ("int64", float("nan")),
            ("int64", 1e300),
            ("float16", 1e10),
            ("float32", 1e300),
            ("float32", 1e10),
        )
    },  # (-1 into uint8, -1.5 into int8 and
    # 1e10 into float32 compute: controls)
    # clamp_ of a uint8 tensor with a 0-d int64 bound casts the bound first, as clamp (254)
    "clamp__uint8_0d_min": lambda m: m.tensor([2, 1, 0, 3], dtype=m.uint8).clamp_(min=m.tensor(-2)),
    "clamp__uint8_0d_max": lambda m: m.tensor([2, 1, 0, 3], dtype=m.uint8).clamp_(max=m.tensor(-3)),
    "clamp_uint8_0d_min": lambda m: m.clamp(m.tensor([2, 1], dtype=m.uint8), min=m.tensor(-2)),
    "clamp__int8_1d_min": lambda m: m.tensor([-100], dtype=m.int8).clamp_(min=m.tensor([-300])),
}


@pytest.mark.parametrize("name", list(INPLACE))
def test_inplace_and_fill_values_as_torch(name):
    _same(INPLACE[name])


# -- results' layout: C-ordered where PyTorch's are (x.t().cumsum(1).view(-1) works there) ------
def _t(m, dtype="float32"):
    return (m.arange(6, dtype=getattr(m, dtype)).reshape(3, 2) - 2).T


LAYOUT = {
    "cumsum_int": lambda m: _t(m, "int64").cumsum(1),
    "cumsum_bool": lambda m: (_t(m) > 0).cumsum(0),
    "cumprod_f16": lambda m: _t(m, "float16").cumprod(0),
    "logcumsumexp": lambda m: _t(m).logcumsumexp(1),
    "roll": lambda m: _t(m).roll(1, 1),
    "roll_flat": lambda m: _t(m, "int64").roll(2),
    "pad": lambda m: m.nn.functional.pad(_t(m), (1, 1), value=1.5),
    "pad_2d": lambda m: m.nn.functional.pad(_t(m)[None], (1, 0, 0, 1)),
    "cumsum_view": lambda m: _t(m).cumsum(1).view(-1),
    "pad_view": lambda m: m.nn.functional.pad(_t(m), (1, 1)).view(-1),
    # (controls: 0-d results stay 0-d, NumPy's ascontiguousarray would make them 1-d)
    "cumsum_0d": lambda m: m.tensor(2.0).cumsum(0),
    "cumprod_0d": lambda m: m.tensor(2, dtype=m.int64).cumprod(0),
    "logcumsumexp_0d": lambda m: m.tensor(2.0).logcumsumexp(0),
    "roll_0d": lambda m: m.tensor(2.0).roll(1),
}


@pytest.mark.parametrize("name", list(LAYOUT))
def test_result_layout_as_torch(name):
    _same(LAYOUT[name], strides=True)


OTHER = {
    # index_fill keeps x's dtype with a 0-d value of another (where() promoted: a bool x
    # filled from a uint8 value was uint8); a complex value into a real x raises
    **{
        f"index_fill_{a}_{b}": (
            lambda m, a=a, b=b: m.zeros(2, 3, dtype=getattr(m, a)).index_fill(
                1, m.tensor([0, 2]), m.tensor(1, dtype=getattr(m, b))
            )
        )  # fmt: skip
        for a, b in (
            ("bool", "uint8"),
            ("bool", "int64"),
            ("float32", "int64"),
            ("int64", "complex64"),
            ("float32", "complex64"),
        )
    },
    "index_fill_float_int_value": lambda m: m.tensor([1, 2]).index_fill(
        0, m.tensor([0]), m.tensor(5.7)
    ),
    # torch.can_cast: complex to a real dtype is False
    **{
        f"can_cast_complex64_{d}": (lambda m, d=d: m.tensor(m.can_cast(m.complex64, getattr(m, d))))
        for d in ("int8", "float32", "float64")
    },
    "can_cast_complex_complex": lambda m: m.tensor(m.can_cast(m.complex128, m.complex64)),
    # meshgrid (and cartesian_prod) want one dtype
    "meshgrid_mixed": lambda m: m.meshgrid(m.ones(2), m.ones(3, dtype=m.int64), indexing="ij"),
    "cartesian_prod_mixed": lambda m: m.cartesian_prod(m.ones(2, dtype=m.bool), m.ones(2)),
    "cartesian_prod_same": lambda m: m.cartesian_prod(m.arange(2), m.arange(3)),  # (control)
    # cdist: each input floating, and one dtype
    "cdist_bool": lambda m: m.cdist(m.ones(2, 3, dtype=m.bool), m.ones(2, 3)),
    "cdist_int_second": lambda m: m.cdist(m.ones(2, 3), m.ones(2, 3, dtype=m.int64)),
    "cdist_f32_f64": lambda m: m.cdist(m.ones(2, 3), m.ones(2, 3, dtype=m.float64)),
    "cdist_f64_f32": lambda m: m.cdist(m.ones(2, 3, dtype=m.float64), m.ones(2, 3)),
    # a bool tensor as a Python index (__index__): 0 or 1
    "bool_as_index": lambda m: m.tensor([10, 20, 30][m.tensor(True)]),
    "bool_as_range": lambda m: m.tensor(list(range(m.tensor(True)))),
}


@pytest.mark.parametrize("name", list(OTHER))
def test_other_dtype_rules_as_torch(name):
    _same(OTHER[name])


# a bool first operand of bmm / cross / einsum beside another dtype: PyTorch's missing bool
# kernel is found before its dtype check (NotImplementedError; descent's RuntimeError)
BOOL_FIRST = {
    "bmm": lambda m, a, b: m.bmm(a[None], b.T[None]),
    "cross": lambda m, a, b: m.linalg.cross(a, b),
    "torch_cross": lambda m, a, b: m.cross(a, b, dim=1),
    "einsum": lambda m, a, b: m.einsum("ij,kj->ik", a, b),
    "bmm_float_first": lambda m, a, b: m.bmm(b[None], a.T[None]),  # (a RuntimeError: control)
    "mm": lambda m, a, b: m.mm(a, b.T),  # (a RuntimeError: control)
}


@pytest.mark.parametrize("dt", ["float32", "int64", "uint8"])
@pytest.mark.parametrize("name", list(BOOL_FIRST))
def test_bool_first_operand_error_class_as_torch(name, dt):
    _same(
        lambda m: BOOL_FIRST[name](
            m, m.ones(2, 3, dtype=m.bool), m.ones(2, 3, dtype=getattr(m, dt))
        )
    )
