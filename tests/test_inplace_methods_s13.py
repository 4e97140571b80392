"""Every elementwise in-place Tensor method torch 2.13 has (`erfc_`, `lgamma_`, `igamma_`,
`pow_`, `xlogy_`, ...), against torch, on five kinds of tensor: an ordinary one, a view (a row
slice), a non-contiguous view (a transposed, strided slice), a jagged nested tensor (its values
see the write), and non-leaves that require grad (dense, a non-contiguous view of one, nested),
whose gradients must be torch's. float64, so both libraries' kernels agree to 1e-6.

Session 12 found the nested forms of erfc_, lgamma_, digamma_, i0_, igamma_, ... raising
(their kernels take dense arrays) and remainder(nt, nt) wrong (storages compared by identity)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import descent as ds

LIBS = (ds, torch)


def _m(name, *args, **kwargs):
    return lambda lib, x: getattr(x, name)(*args, **kwargs)


_UNARY = (
    "abs_ absolute_ acos_ arccos_ arcsin_ arcsinh_ arctan_ arctanh_ asin_ asinh_ atan_ atanh_ "
    "ceil_ cos_ cosh_ deg2rad_ digamma_ erf_ erfc_ erfinv_ exp2_ exp_ expm1_ fix_ floor_ frac_ "
    "i0_ lgamma_ log10_ log1p_ log2_ log_ logit_ nan_to_num_ neg_ negative_ rad2deg_ "
    "reciprocal_ relu_ round_ rsqrt_ sgn_ sigmoid_ sign_ sin_ sinc_ sinh_ sqrt_ square_ tan_ "
    "tanh_ trunc_ conj_physical_ acosh_ arccosh_ logical_not_"
).split()
CASES = {n: _m(n) for n in _UNARY}
CASES.update({
    "mvlgamma_(2)": _m("mvlgamma_", 2), "polygamma_(1)": _m("polygamma_", 1),
    "logit_(eps)": _m("logit_", 0.3), "round_(decimals)": _m("round_", decimals=1),
    "pow_(2.5)": _m("pow_", 2.5), "float_power_(2)": _m("float_power_", 2),
    "clamp_": _m("clamp_", 0.3, 0.6), "clamp_max_": _m("clamp_max_", 0.5),
    "clamp_min_": _m("clamp_min_", 0.5), "clip_": _m("clip_", 0.3, 0.6),
    "nan_to_num_(args)": _m("nan_to_num_", 0.0, 1.0, -1.0),
    "add_(s, alpha)": _m("add_", 2.0, alpha=3), "sub_(s)": _m("sub_", 0.5),
    "multiply_(s)": _m("multiply_", 3), "true_divide_(s)": _m("true_divide_", 4),
    "divide_(s, floor)": _m("divide_", 0.3, rounding_mode="floor"),
    "copysign_(s)": _m("copysign_", -1.0), "floor_divide_(s)": _m("floor_divide_", 0.3),
    "fmod_(s)": _m("fmod_", 0.3), "remainder_(s)": _m("remainder_", 0.3),
    "xlogy_(s)": _m("xlogy_", 2.0), "eq_(s)": _m("eq_", 0.5), "ge_(s)": _m("ge_", 0.5),
    "lerp_(t, s)": lambda lib, x: x.lerp_(x * 2, 0.3),
    "lerp_(t, t)": lambda lib, x: x.lerp_(x * 2, x),
    "subtract_(t, alpha)": lambda lib, x: x.subtract_(x * 0.5 + 0.1, alpha=2),
    "mul_(t)": lambda lib, x: x.mul_(x + 1), "div_(t)": lambda lib, x: x.div_(x + 1),
    "atan2_(t)": lambda lib, x: x.atan2_(x + 0.5), "arctan2_(t)": lambda lib, x: x.arctan2_(x * 2),
    "copysign_(t)": lambda lib, x: x.copysign_(x - 0.5),
    "fmod_(t)": lambda lib, x: x.fmod_(x * 0 + 0.3),
    "remainder_(t)": lambda lib, x: x.remainder_(x * 0 + 0.3),
    "heaviside_(t)": lambda lib, x: x.sub_(0.5).heaviside_(x * 0 + 0.5),
    "hypot_(t)": lambda lib, x: x.hypot_(x + 1), "igamma_(t)": lambda lib, x: x.igamma_(x + 1),
    "igammac_(t)": lambda lib, x: x.igammac_(x + 1),
    "ldexp_(t)": lambda lib, x: x.ldexp_(x * 0 + 2),
    "nextafter_(t)": lambda lib, x: x.nextafter_(x + 1),
    "xlogy_(t)": lambda lib, x: x.xlogy_(x + 1), "pow_(t)": lambda lib, x: x.pow_(x + 1),
    "float_power_(t)": lambda lib, x: x.float_power_(x + 1),
    "addcdiv_": lambda lib, x: x.addcdiv_(x + 1, x + 2, value=0.5),
    "addcmul_": lambda lib, x: x.addcmul_(x, x + 1, value=2),
    "lt_(t)": lambda lib, x: x.lt_(x * 0 + 0.5),
    "logical_and_(t)": lambda lib, x: x.logical_and_(x - 0.5),
})  # fmt: skip
_DOMAIN = {"acosh_": (1.2, 3.0), "arccosh_": (1.2, 3.0), "mvlgamma_(2)": (1.5, 3.0)}

# (case, kind) pairs where the libraries differ on purpose, with the reason; descent's result is
# then checked against descent's own out-of-place op instead of torch.
_TORCH_NO_DERIVATIVE = "torch has no derivative for the in-place form (its NotImplementedError)"
_DIFFERS = {
    **{(n, k): _TORCH_NO_DERIVATIVE
       for n in ("asinh_", "arcsinh_", "atanh_", "arctanh_", "acosh_", "arccosh_")
       for k in ("grad", "grad_view", "nested_grad")},
    # torch leaves these in-place logical ops out of the graph (grad_fn stays MulBackward0, so
    # the gradient passes as if nothing happened); descent records derivative 0, as torch's
    # own eq_/lt_ (EqBackward0)
    **{(n, k): "torch does not record logical_*_ (gradient 1); descent: 0, as for eq_"
       for n in ("logical_not_", "logical_and_(t)") for k in ("grad", "grad_view", "nested_grad")},
    ("sgn_", "nested_grad"): "torch's nested sgn_ backward fails (aten.size); descent: zeros",
    ("nextafter_(t)", "nested_grad"): "torch's nested nextafter_ backward fails (SymIntArrayRef)",
    ("lerp_(t, t)", "nested"): "torch's jagged layout lacks aten.lerp_.Tensor; descent has it",
}  # fmt: skip

# torch's jagged layout refuses these in place (test_gaps_s12_nested checks descent refuses too)
_NESTED_REFUSED = {"abs_", "absolute_", "heaviside_(t)", "copysign_(t)", "copysign_(s)",
                   "floor_divide_(s)", "eq_(s)", "ge_(s)", "lt_(t)", "addcdiv_", "addcmul_",
                   "xlogy_(s)"}  # fmt: skip

KINDS = ("plain", "view", "noncontig", "nested", "grad", "grad_view", "nested_grad")


def _make(lib, kind, lo, hi):
    a = np.linspace(lo, hi, 24).reshape(4, 6)
    if kind.startswith("nested"):
        seqs = [lib.tensor(a[:2, :3]), lib.tensor(a[2:3, 3:])]
        nt = lib.nested.nested_tensor(seqs, layout=lib.jagged)
        if kind == "nested":
            return nt, nt.values()  # a view of the values: it sees the write
        nt.requires_grad_()
        return nt * 1, nt
    t = lib.tensor(a)
    if kind == "plain":
        return t, t
    if kind == "view":
        return t[1:3], t
    if kind == "noncontig":
        return t.t()[::2], t
    t.requires_grad_()
    return (t * 1, t) if kind == "grad" else ((t * 1).t()[::2], t)


def _arrays(x):
    x = x.detach()
    if x.is_nested:
        return [np.asarray(s.tolist(), dtype=float) for s in x.unbind()]
    return [np.asarray((x + 0).tolist(), dtype=float)]  # (+ 0: torch's ZeroTensor gradients)


def _run(lib, name, kind):
    lo, hi = _DOMAIN.get(name, (0.2, 0.8))
    x, base = _make(lib, kind, lo, hi)
    out = CASES[name](lib, x)
    assert out is x
    got = {"result": _arrays(x)}
    if kind in ("view", "noncontig", "nested"):
        got["base"] = _arrays(base)  # the write reached the viewed memory
    if kind in ("grad", "grad_view", "nested_grad"):
        (x.values() if x.is_nested else x).sum().backward()
        got["grad"] = _arrays(base.grad)
    return got


def _check(got, want):
    assert set(got) == set(want)
    for key in want:
        for d, t in zip(got[key], want[key], strict=True):
            np.testing.assert_allclose(d, t, rtol=1e-6, atol=1e-12, equal_nan=True, err_msg=key)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", list(CASES))
def test_in_place_method_as_torch(name, kind):
    if kind.startswith("nested") and name in _NESTED_REFUSED:
        pytest.skip("refused by torch's jagged layout (tests/test_gaps_s12_nested.py)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if (name, kind) not in _DIFFERS:
            try:
                want = _run(torch, name, kind)
            except (RuntimeError, NotImplementedError):  # no derivative, modified input
                with pytest.raises((RuntimeError, NotImplementedError)):
                    _run(ds, name, kind)
                return
            _check(_run(ds, name, kind), want)
            return
        got = _run(ds, name, kind)
    if name == "sgn_":  # d sgn(x)/dx = 0
        assert all(not g.any() for g in got["grad"])
        return
    # descent's own out-of-place op is the reference here: x.op_() == x.op() (values and grads)
    lo, hi = _DOMAIN.get(name, (0.2, 0.8))
    x, base = _make(ds, kind, lo, hi)
    y = x.clone()
    ref = CASES[name](ds, y)  # in place on a clone: the out-of-place value, recorded
    np.testing.assert_allclose(got["result"][0], _arrays(ref)[0], rtol=1e-12)
    if "grad" in got:
        (ref.values() if ref.is_nested else ref).sum().backward()
        np.testing.assert_allclose(got["grad"][0], _arrays(base.grad)[0], rtol=1e-12)


def test_every_in_place_method_of_torch_exists():
    names = {n for n in dir(torch.Tensor)
             if n.endswith("_") and not n.startswith("_") and not n.endswith("__")}  # fmt: skip
    # torch's sparse-only resizers: descent's sparse tensors are not resized in place
    missing = {n for n in names if not hasattr(ds.Tensor, n)}
    assert missing == {"resize_as_sparse_", "sparse_resize_", "sparse_resize_and_clear_"}


def test_nested_out_of_place_math_runs_on_the_values():
    # the methods behind the in-place forms, with gradients, and remainder's values (torch's
    # nextafter backward fails on nested tensors: detached)
    got = {}
    for lib in LIBS:
        a = np.linspace(0.2, 0.8, 9).reshape(3, 3)
        nt = lib.nested.nested_tensor([lib.tensor(a[:2]), lib.tensor(a[2:])], layout=lib.jagged)
        nt.requires_grad_()
        y = nt.erfc() + nt.lgamma() + nt.detach().igamma(nt + 1) + nt.pow(nt) + nt.polygamma(1)
        y = y + nt.remainder(nt * 0 + 0.3) + nt.detach().nextafter(nt.detach() + 1) + nt.mvlgamma(1)
        y.values().sum().backward()
        got[lib] = (_arrays(y), _arrays(nt.grad))
    for d, t in zip(got[ds], got[torch], strict=True):
        _check({"x": d}, {"x": t})
    with pytest.raises(RuntimeError, match="cannot call binary pointwise function igamma"):
        n1 = ds.nested.nested_tensor([ds.ones(2, 3), ds.ones(1, 3)], layout=ds.jagged)
        n2 = ds.nested.nested_tensor([ds.ones(2, 3), ds.ones(1, 3)], layout=ds.jagged)
        n1.igamma(n2)


_SPECIAL_ONE = ("airy_ai bessel_j0 bessel_j1 bessel_y0 bessel_y1 digamma erf erfc erfcx erfinv "
                "gammaln i0 i0e i1 i1e log_ndtr modified_bessel_i0 modified_bessel_i1 "
                "modified_bessel_k0 modified_bessel_k1 ndtr ndtri psi scaled_modified_bessel_k0 "
                "scaled_modified_bessel_k1").split()  # fmt: skip


def _special(name, *args):
    return lambda lib, x: getattr(lib.special, name)(x, *args)


_FUNCTION_FORMS = {
    **{f"special.{n}": _special(n) for n in _SPECIAL_ONE},
    **{f"special.{n}(x, 3)": _special(n, 3)
       for n in ("chebyshev_polynomial_t", "hermite_polynomial_h", "laguerre_polynomial_l",
                 "legendre_polynomial_p", "shifted_chebyshev_polynomial_w")},
    "special.gammainc": lambda lib, x: lib.special.gammainc(x, x + 1),
    "special.zeta": lambda lib, x: lib.special.zeta(x + 1, x),
    "special.polygamma": lambda lib, x: lib.special.polygamma(2, x),
    "erfc": lambda lib, x: lib.erfc(x), "lgamma": lambda lib, x: lib.lgamma(x),
    "igammac": lambda lib, x: lib.igammac(x, x + 1), "i0": lambda lib, x: lib.i0(x),
    "mvlgamma": lambda lib, x: lib.mvlgamma(x + 1, 2),
}  # fmt: skip


@pytest.mark.parametrize("name", list(_FUNCTION_FORMS))
def test_nested_special_function_forms_run_on_the_values(name):
    # torch's jagged layout has them as pointwise ops; descent's kernels take dense arrays, so
    # descent.ops.nested_values runs them on the packed values
    got = {}
    for lib in LIBS:
        a = np.linspace(0.2, 0.8, 9).reshape(3, 3)
        nt = lib.nested.nested_tensor([lib.tensor(a[:2]), lib.tensor(a[2:])], layout=lib.jagged)
        y = _FUNCTION_FORMS[name](lib, nt)
        assert y.is_nested
        got[lib] = _arrays(y)
    _check({"x": got[ds]}, {"x": got[torch]})


def test_nested_special_function_gradient():
    got = {}
    for lib in LIBS:
        a = np.linspace(0.2, 0.8, 9).reshape(3, 3)
        nt = lib.nested.nested_tensor([lib.tensor(a[:2]), lib.tensor(a[2:])], layout=lib.jagged)
        nt.requires_grad_()
        y = lib.special.erfcx(nt) + lib.special.i1e(nt) + lib.erfc(nt) * lib.lgamma(nt)
        y.values().sum().backward()
        got[lib] = _arrays(nt.grad)
    _check({"g": got[ds]}, {"g": got[torch]})
