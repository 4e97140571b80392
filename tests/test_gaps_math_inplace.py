"""The in-place forms of docs/torch_gaps_math.md (descent/ops/gaps_math_inplace.py) against
torch 2.13: every method in float32/float64/int64/int32 (values, dtype kept, identity, the same
exception class), gradients through non-leaves against torch, leaf errors, the version
counter, views, float64 finite differences, torch's top-level in-place functions, Python
scalars and torch's keyword names."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import descent as ds
from descent.autograd_gradcheck import gradcheck
from gaps_math_helpers import _both, _check, _name, _raises_like  # noqa: F401

RNG = np.random.default_rng(0)
NAN, INF = math.nan, math.inf


def test_inplace_names_exist():
    assert [s[0] for s in INPLACE if not hasattr(ds.Tensor, s[0])] == []
    torch_inplace = {n for n in dir(torch) if n.endswith("_") and not n.startswith("_")}
    mine = set(ds.ops.gaps_math_inplace.TOPLEVEL_INPLACE)
    assert mine <= torch_inplace and all(hasattr(ds, n) for n in mine)


# ---------------------------------------------------------------------------------------------
# In-place forms. A spec: (method, x's shape, arguments); an argument ("t", shape) is a tensor
# (of x's kind: floats in (0.2, 0.9), or integers 1..5), ("i", shape) an integer tensor,
# anything else passes as it is.

T23, T3 = ("t", (2, 3)), ("t", (3,))
INPLACE = [
    *[
        (n, (2, 3), ())
        for n in (
            "acos_",
            "acosh_",
            "arccos_",
            "arccosh_",
            "arcsin_",
            "arcsinh_",
            "arctan_",
            "arctanh_",
            "asin_",
            "asinh_",
            "atan_",
            "atanh_",
            "cosh_",
            "sinh_",
            "tan_",
            "log10_",
            "log2_",
            "frac_",
            "fix_",
            "deg2rad_",
            "rad2deg_",
            "absolute_",
            "logical_not_",
            "bitwise_not_",
            "nan_to_num_",
        )
    ],  # fmt: skip
    *[
        (n, (2, 3), (T3,))
        for n in (
            "arctan2_",
            "atan2_",
            "pow_",
            "remainder_",
            "fmod_",
            "hypot_",
            "copysign_",
            "floor_divide_",
            "multiply_",
            "true_divide_",
            "nextafter_",
            "logical_and_",
            "logical_or_",
            "logical_xor_",
            "eq_",
            "ne_",
            "lt_",
            "le_",
            "gt_",
            "ge_",
            "greater_",
            "greater_equal_",
            "less_",
            "less_equal_",
            "not_equal_",
            "divide_",
            "subtract_",
            "gcd_",
            "lcm_",
            "bitwise_and_",
            "bitwise_or_",
            "bitwise_xor_",
            "bitwise_left_shift_",
            "bitwise_right_shift_",
        )
    ],  # fmt: skip
    ("pow_", (2, 3), (2,)),
    ("remainder_", (2, 3), (0.3,)),
    ("eq_", (2, 3), (0.5,)),
    ("ldexp_", (2, 3), (("i", (3,)),)),
    ("clip_", (2, 3), (0.3, 0.6)),
    ("lerp_", (2, 3), (T23, 0.3)),
    ("lerp_", (2, 3), (T3, T23)),
    ("cumsum_", (2, 3), (0,)),
    ("cumprod_", (2, 3), (1,)),
    ("float_power_", (2, 3), (2,)),
    ("float_power_", (2, 3), (T3,)),
    ("addcdiv_", (2, 3), (T23, T3)),
    ("addcmul_", (2, 3), (T3, T23)),
    ("addmv_", (2,), (("t", (2, 3)), T3)),
    ("addr_", (2, 3), (("t", (2,)), T3)),
    ("baddbmm_", (4, 2, 3), (("t", (4, 2, 5)), ("t", (4, 5, 3)))),
    ("addbmm_", (2, 3), (("t", (4, 2, 5)), ("t", (4, 5, 3)))),
    ("addmm_", (2, 3), (("t", (2, 5)), ("t", (5, 3)))),
    ("pow_", (3,), (T23,)),  # broadcasts x: refused
]
KWARGS = {
    "divide_": [{}, {"rounding_mode": "floor"}, {"rounding_mode": "trunc"}],
    "subtract_": [{}, {"alpha": 2}],
    "addcdiv_": [{}, {"value": 0.5}],
    "addcmul_": [{"value": 2}],
    "addmv_": [{}, {"beta": 0.5, "alpha": 2}],
    "addr_": [{"beta": 2, "alpha": 0.5}],
    "baddbmm_": [{}, {"beta": 0.5}],
    "addbmm_": [{"alpha": 2}],
    "addmm_": [{}, {"beta": 0}],
    "nan_to_num_": [{}, {"nan": 1.0, "posinf": 2.0}],
    "cumsum_": [{}, {"dtype": ds.float64}],
}


OUT_OF_PLACE_DIFF = {
    **{(n, "flo"): TypeError for n in ("bitwise_not_", "bitwise_and_", "bitwise_or_",
                                        "bitwise_xor_", "bitwise_left_shift_",
                                        "bitwise_right_shift_")},
    **{(n, "int"): RuntimeError for n in ("frac_", "hypot_", "lerp_")},
}  # fmt: skip
OUT_OF_PLACE_DIFF["lerp_", "int"] = None  # descent lerps integers (weight 0.3: refused)


def _inplace_args(args, dtype, seed):
    rng = np.random.default_rng(seed)
    d, t = [], []
    for a in args:
        if isinstance(a, tuple):
            kind, shape = a
            if kind == "i" or dtype.startswith("int"):
                arr = rng.integers(1, 6, shape).astype("int64" if kind == "i" else dtype)
            else:
                arr = rng.uniform(0.2, 0.9, shape).astype(dtype)
            d.append(ds.tensor(arr.copy()))
            t.append(torch.tensor(arr.copy()))
        else:
            d.append(a)
            t.append(a)
    return d, t


def _torch_kwargs(kw):
    return {k: (torch.float64 if v is ds.float64 else v) for k, v in kw.items()}


def _ids(spec):
    return f"{spec[0]}{spec[1]}{len(spec[2])}"


@pytest.mark.parametrize("spec", INPLACE, ids=[_ids(s) for s in INPLACE])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32"])
def test_inplace_values_dtype_identity(spec, dtype):
    name, shape, args = spec
    for kw in KWARGS.get(name, [{}]):
        rng = np.random.default_rng(1)
        if dtype.startswith("int"):
            x = rng.integers(1, 6, shape).astype(dtype)
        else:
            x = rng.uniform(0.2, 0.9, shape).astype(dtype)
        dx, tx = ds.tensor(x.copy()), torch.tensor(x.copy())
        dargs, targs = _inplace_args(args, dtype, 2)
        if dtype.startswith("int") and any(isinstance(v, float) for v in kw.values()):
            continue  # PyTorch truncates a float beta/alpha for integers; descent computes
        try:
            want = getattr(tx, name)(*targs, **_torch_kwargs(kw))
        except Exception as e:  # noqa: BLE001 - the class descent must raise too
            # Where descent's out-of-place op refuses with another class (bitwise ops on floats:
            # TypeError) or computes in float (frac, hypot of integers) and the in-place form
            # refuses to store it (RuntimeError), PyTorch's NotImplementedError is matched by
            # descent's error; lerp of integer tensors computes in descent (OUT_OF_PLACE_DIFF).
            if (name, dtype[:3]) in OUT_OF_PLACE_DIFF:
                if OUT_OF_PLACE_DIFF[name, dtype[:3]] is None:
                    continue
                with pytest.raises(OUT_OF_PLACE_DIFF[name, dtype[:3]]):
                    getattr(dx, name)(*dargs, **kw)
                continue
            with pytest.raises(type(e)):
                getattr(dx, name)(*dargs, **kw)
            continue
        got = getattr(dx, name)(*dargs, **kw)
        assert got is dx and want is tx
        tol = 1e-6 if dtype == "float32" else 1e-12
        _check(got, want, rtol=tol, atol=tol)


# Not here: the integer-only ops, float_power_ (float64 only), floor_divide_ (no derivative, in
# PyTorch either) and the refused broadcast.
DIFFERENTIABLE = [s for s in INPLACE if s[0] not in (
    "logical_not_", "bitwise_not_", "gcd_", "lcm_", "bitwise_and_", "bitwise_or_",
    "bitwise_xor_", "bitwise_left_shift_", "bitwise_right_shift_", "logical_and_",
    "logical_or_", "logical_xor_", "float_power_", "floor_divide_",
) and s[1:] != ((3,), (T23,))]  # fmt: skip
# PyTorch has no derivative for these in-place forms (NotImplementedError at backward);
# descent records them like any op: compared with the out-of-place form's gradient instead.
NO_TORCH_DERIVATIVE = {"acosh_", "arccosh_", "asinh_", "arcsinh_", "atanh_", "arctanh_"}


@pytest.mark.parametrize("spec", DIFFERENTIABLE, ids=[_ids(s) for s in DIFFERENTIABLE])
def test_inplace_gradients_through_non_leaf(spec):
    """y = leaf * 1; y.op_(args); the gradients of leaf and args match torch's (float32), and
    the in-place op on the leaf itself raises in both."""
    name, shape, args = spec
    x = np.random.default_rng(1).uniform(0.2, 0.9, shape).astype("float32")
    w = np.random.default_rng(3).standard_normal(shape).astype("float32")
    for kw in KWARGS.get(name, [{}]):
        if kw.get("dtype") is not None or kw.get("beta") == 0:
            continue  # beta=0: descent gives input no gradient at all, PyTorch zeros
        leaf, tleaf = ds.tensor(x.copy(), requires_grad=True), torch.tensor(x, requires_grad=True)
        dargs, targs = _inplace_args(args, "float32", 2)
        for a, ta in zip(dargs, targs):
            if isinstance(a, ds.Tensor) and a.dtype.kind == "f":
                a.requires_grad_(True)
                ta.requires_grad_(True)
        y, ty = leaf * 1, tleaf * 1
        out = getattr(y, name)(*dargs, **kw)
        if name in NO_TORCH_DERIVATIVE:
            with pytest.raises(NotImplementedError):  # at backward
                getattr(tleaf * 1, name)(*targs, **kw).sum().backward()
            tout = getattr(ty, name[:-1])(*targs, **kw)
        else:
            tout = getattr(ty, name)(*targs, **kw)
        assert out is y
        _check(out, tout, rtol=1e-6, atol=1e-6)
        (out * ds.tensor(w)).sum().backward()
        (tout * torch.tensor(w)).sum().backward()
        _check(leaf.grad, tleaf.grad, rtol=1e-5, atol=1e-5)
        for a, ta in zip(dargs, targs):
            if isinstance(a, ds.Tensor) and a.requires_grad and ta.grad is not None:
                _check(a.grad, ta.grad, rtol=1e-5, atol=1e-5)
        with pytest.raises(RuntimeError):
            getattr(tleaf, name)(*targs, **kw)
        with pytest.raises(RuntimeError):
            getattr(leaf, name)(*dargs, **kw)
        with ds.no_grad():  # under no_grad a leaf may change (an optimizer's step)
            assert getattr(leaf, name)(*[a.detach() if isinstance(a, ds.Tensor) else a
                                         for a in dargs], **kw) is leaf  # fmt: skip


def test_inplace_float64_gradcheck():
    def f(x, a, b):
        y = x * 1
        y.atan2_(a).addcmul_(a, b, value=0.5).hypot_(b)
        # hypot saved its output for backward (PyTorch's too): changing it in place would make
        # backward raise, in both libraries; the next in-place ops work on a copy
        y = y * 1
        y.lerp_(a, 0.25).cosh_().subtract_(b, alpha=2)
        return y

    args = [ds.tensor(RNG.uniform(0.2, 0.9, (2, 3)), requires_grad=True) for _ in range(3)]
    assert gradcheck(f, tuple(args))
    assert gradcheck(lambda x, m, v: (x * 1).addmv_(m, v, beta=0.5, alpha=2),
                     (args[0][:, 0], args[1], args[2][0]))  # fmt: skip


def test_inplace_version_counter_and_views():
    # A node that saved x (Mul saves both inputs) raises after x changes in place, as torch.
    for lib in (ds, torch):
        leaf = lib.tensor([0.5, 0.25], requires_grad=True)
        x = leaf * 1
        y = x * x
        x.acos_()
        with pytest.raises(RuntimeError):
            y.sum().backward()
    # Unrecorded writes go into the array: a view sees them.
    for lib in (ds, torch):
        base = lib.tensor([[4.0, 9.0], [16.0, 25.0]])
        row = base[0]
        row.pow_(0.5)
        assert base.tolist() == [[2.0, 3.0], [16.0, 25.0]]
        base[1].eq_(16.0)
        assert base.tolist() == [[2.0, 3.0], [1.0, 0.0]]


def test_inplace_comparison_keeps_graph_with_zero_gradient():
    leaf, tleaf = _both([0.5, 2.0, 3.0], "float32", rg=True)
    y, ty = leaf * 2, tleaf * 2
    y.gt_(2.0)
    ty.gt_(2.0)
    assert y.requires_grad and ty.requires_grad
    _check(y, ty)
    (y * leaf).sum().backward()
    (ty * tleaf).sum().backward()
    _check(leaf.grad, tleaf.grad)


@pytest.mark.parametrize("name", sorted(
    n for n in dir(torch) if n.endswith("_") and not n.startswith("_")
    and n in ds.ops.gaps_math_inplace.TOPLEVEL_INPLACE
))  # fmt: skip
def test_toplevel_inplace_functions(name):
    x = np.array([0.25, 0.5, 0.75], "float32")
    args = {
        "clamp_": (0.3, 0.6),
        "clip_": (0.3, 0.6),
        "clamp_max_": (0.6,),
        "clamp_min_": (0.3,),
        "ldexp_": (torch.tensor([1, 2, 3]),),
    }.get(name, ())
    if name in ("gcd_", "lcm_"):
        (dx, tx), (dy, ty) = _both([4, 6, 9]), _both([6, 4, 3])
        assert getattr(ds, name)(dx, dy) is dx
        _check(dx, getattr(torch, name)(tx, ty))
        return
    if name == "addmv_":
        (dx, tx), (m, tm), (v, tv) = _both(x), _both(np.ones((3, 2), "float32")), _both([1.0, 2.0])
        v, tv = v.float(), tv.float()
        assert ds.addmv_(dx, m, v, alpha=2) is dx
        _check(dx, torch.addmv_(tx, tm, tv, alpha=2), rtol=1e-6)
        return
    dx, tx = ds.tensor(x.copy()), torch.tensor(x.copy())
    dargs = tuple(ds.tensor(a.numpy()) if isinstance(a, torch.Tensor) else a for a in args)
    assert getattr(ds, name)(dx, *dargs) is dx
    _check(dx, getattr(torch, name)(tx, *args), rtol=1e-6)


def test_inplace_python_scalar_rules():
    (i, ti) = _both([1, 2, 3])
    _raises_like(lambda: i.pow_(2.5), lambda: ti.pow_(2.5))
    _raises_like(lambda: i.true_divide_(2), lambda: ti.true_divide_(2))
    _raises_like(lambda: i.deg2rad_(), lambda: ti.deg2rad_())
    _check(i.floor_divide_(2), ti.floor_divide_(2))
    _check(i.multiply_(3), ti.multiply_(3))
    (b, tb) = _both([True, False])
    _raises_like(lambda: b.multiply_(3), lambda: tb.multiply_(3))
    _check(b.logical_xor_(ds.tensor(True)), tb.logical_xor_(torch.tensor(True)))
    (f, tf) = _both([1.5, -2.5], "float32")
    _check(f.floor_divide_(2), tf.floor_divide_(2))
    _check(f.subtract_(1, alpha=2), tf.subtract_(1, alpha=2))
    _raises_like(lambda: f.float_power_(2), lambda: tf.float_power_(2))
    _raises_like(lambda: f.cumsum_(0, dtype=ds.float64), lambda: tf.cumsum_(0, dtype=torch.float64))


def test_inplace_methods_take_torch_keyword_names():
    calls = [
        ("clip_", (), {"min": 0.6}),
        ("clip_", (), {"max": 0.6}),
        ("lerp_", (), {"end": "y", "weight": 0.5}),
        ("pow_", (), {"exponent": 2}),
        ("float_power_", (), {"exponent": 2}),
        ("atan2_", (), {"other": "y"}),
        ("remainder_", (), {"other": 0.3}),
        ("nan_to_num_", (), {"nan": 0.0, "posinf": 1.0}),
        ("eq_", (), {"other": "y"}),
        ("logical_and_", (), {"other": "y"}),
        ("multiply_", (), {"other": "y"}),
        ("floor_divide_", (), {"other": "y"}),
        ("divide_", (), {"other": "y", "rounding_mode": "trunc"}),
        ("addcmul_", (), {"tensor1": "y", "tensor2": "y", "value": 2}),
        ("cumsum_", (), {"dim": 0}),
        ("cumprod_", (), {"dim": 0}),
    ]
    for name, args, kw in calls:
        x, y = np.array([0.5, 0.7]), np.array([0.2, 0.3])
        dx, tx = ds.tensor(x), torch.tensor(x)
        dkw = {k: ds.tensor(y) if v == "y" else v for k, v in kw.items()}
        tkw = {k: torch.tensor(y) if v == "y" else v for k, v in kw.items()}
        _check(getattr(dx, name)(*args, **dkw), getattr(tx, name)(*args, **tkw), rtol=1e-12)
