"""Specs of the special functions (descent.ops.special: erfc, erfinv, lgamma, digamma,
polygamma) and of a few compositions of descent.ops.special / descent.ops.torch_extra whose
gradients follow PyTorch's conventions (fmax, nansum, sinc, cross, cdist, renorm); see
tests/specs/__init__.py for the format. The float64 references are PyTorch's own float64
kernels (NumPy has no special functions; SciPy is not a test dependency)."""

from __future__ import annotations

import math

import numpy as np
import torch

import descent as ds

from . import Spec

SPECS: list[Spec] = []
S34 = (3, 4)


def add(**kw) -> None:
    SPECS.append(Spec(**kw))


def mp_polygamma(n):
    """A float64 reference from mpmath (installed with PyTorch): PyTorch's float64 trigamma is
    only 4e-10 accurate (six recurrence steps and three Bernoulli terms)."""
    import mpmath

    return np.vectorize(lambda x: float(mpmath.polygamma(n, x)))


def torch64(fn):
    """A NumPy reference from a PyTorch function run in float64."""
    return lambda *arrays: fn(*(torch.from_numpy(np.asarray(a)) for a in arrays)).numpy()


for nm, f, tf, dom, cov, ref in [
    ("erfc", ds.erfc, torch.erfc, (-3.0, 3.0), "Erfc", None),
    ("erfc_tail", ds.erfc, torch.erfc, (3.0, 8.0), "Erfc", None),
    ("erfinv", ds.erfinv, torch.erfinv, (-0.95, 0.95), "Erfinv", None),
    ("lgamma", ds.lgamma, torch.lgamma, (0.2, 6.0), "Lgamma", None),
    ("lgamma_negative", lambda x: x.lgamma(), torch.lgamma, (-2.9, -2.1), "Lgamma", None),
    ("digamma", ds.digamma, torch.digamma, (0.2, 6.0), "Digamma", None),
    ("digamma_negative", lambda x: x.digamma(), torch.digamma, (-1.9, -1.1), "Digamma", None),
    ("polygamma1", lambda x: ds.polygamma(1, x), lambda x: torch.polygamma(1, x), (0.3, 5.0),
     "Polygamma", mp_polygamma(1)),
    ("polygamma2_method", lambda x: x.polygamma(2), lambda x: x.polygamma(2), (0.5, 5.0),
     "Polygamma", mp_polygamma(2)),
]:  # fmt: skip
    add(name=nm, fn=f, ref=ref or torch64(tf), torch_fn=tf, shapes=[S34], domain=dom, covers=(cov,),
        fwd_rtol=1e-12, fwd_atol=1e-14, grad_rtol=1e-4)  # fmt: skip

# erfc far in the tail: values down to 1e-40, compared relatively (float64 only: float32
# underflows there).
add(name="erfc_far_tail", fn=ds.erfc, ref=np.vectorize(math.erfc), shapes=[S34],
    domain=(9.0, 13.0), covers=("Erfc",), fwd_rtol=1e-13, fwd_atol=0.0, grad_atol=1e-300,
    torch_fn=None, torch_reason="float32 underflows to 0 past x = 9.2")  # fmt: skip


def distinct_pairs(rng, dtype):
    """Two inputs whose entries differ by at least 0.05 (fmax/fmin are smooth there)."""
    a = rng.uniform(-2, 2, S34)
    b = a + rng.choice([-1, 1], S34) * rng.uniform(0.05, 1.0, S34)
    return [a, b]


def with_nans(rng, dtype):
    x = rng.uniform(-2, 2, S34)
    x[0, 1] = x[2, 3] = np.nan
    return [x]


# Compositions (covers: the primitives they are made of).
for nm, f, r, tf, cov in [
    ("fmax", ds.fmax, np.fmax, torch.fmax, ("Where",)),
    ("fmin", lambda a, b: a.fmin(b), np.fmin, torch.fmin, ("Where",)),
]:  # fmt: skip
    add(name=nm, fn=f, ref=r, torch_fn=tf, shapes=[S34, S34], inputs=distinct_pairs, covers=cov)
add(name="nansum_dim", fn=lambda x: ds.nansum(x, 1), ref=lambda x: np.nansum(x, 1),
    torch_fn=lambda x: torch.nansum(x, 1), shapes=[S34], inputs=with_nans,
    covers=("NanToZero", "Sum"))  # fmt: skip
add(name="nanmean_keepdim", fn=lambda x: x.nanmean(0, keepdim=True),
    ref=lambda x: np.nanmean(x, 0, keepdims=True),
    torch_fn=lambda x: x.nanmean(0, keepdim=True), shapes=[S34], inputs=with_nans,
    covers=("NanToZero", "Sum", "Div"))  # fmt: skip
# ldexp with an integer exponent tensor (a closure: the listed input is the float one). The
# exponents are >= 0: PyTorch's gradient forms 2^e in the integer dtype (0 for e < 0).
_LDEXP_E = np.arange(12).reshape(S34) % 4
add(name="ldexp_int_exponent", fn=lambda x: ds.ldexp(x, ds.tensor(_LDEXP_E)),
    ref=lambda x: np.ldexp(x, _LDEXP_E), torch_fn=lambda x: torch.ldexp(x, torch.tensor(_LDEXP_E)),
    shapes=[S34], covers=("LdexpInt",))  # fmt: skip
add(name="ldexp_float_exponent", fn=ds.ldexp, ref=lambda x, e: x * 2.0**e, torch_fn=torch.ldexp,
    shapes=[S34, (1, 4)], broadcast=True, covers=("Ldexp",))  # fmt: skip
add(name="sinc", fn=ds.sinc, ref=np.sinc, torch_fn=torch.sinc, shapes=[S34], domain=(-3.0, 3.0),
    covers=("Sinc",))  # fmt: skip
add(name="sinc_method_near_zero", fn=lambda x: x.sinc(), ref=np.sinc, torch_fn=torch.sinc,
    shapes=[S34], domain=(-1e-3, 1e-3), covers=("Sinc",))  # fmt: skip
add(name="cross", fn=lambda a, b: ds.cross(a, b, dim=1), ref=lambda a, b: np.cross(a, b, axis=1),
    torch_fn=lambda a, b: torch.cross(a, b, dim=1), shapes=[(4, 3), (1, 3)],
    covers=("GetItem", "Mul", "Sub"))  # fmt: skip
add(name="cdist_p2", fn=lambda a, b: ds.cdist(a, b),
    ref=lambda a, b: np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1)),
    torch_fn=lambda a, b: torch.cdist(a, b), shapes=[(4, 3), (5, 3)],
    covers=("Sub", "Sum", "Where"))  # fmt: skip
add(name="cdist_p3", fn=lambda a, b: ds.cdist(a, b, p=3.0),
    ref=lambda a, b: (np.abs(a[:, None] - b[None]) ** 3).sum(-1) ** (1 / 3),
    torch_fn=lambda a, b: torch.cdist(a, b, p=3.0), shapes=[(4, 3), (5, 3)],
    covers=("Sub", "Abs", "Sum"))  # fmt: skip


def _np_renorm(x, p, dim, maxnorm):
    others = tuple(i for i in range(x.ndim) if i != dim)
    n = (np.abs(x) ** p).sum(others, keepdims=True) ** (1 / p)
    return x * np.where(n > maxnorm, maxnorm / (n + 1e-7), 1.0)


add(name="renorm", fn=lambda x: x.renorm(2, 0, 1.5), ref=lambda x: _np_renorm(x, 2, 0, 1.5),
    torch_fn=lambda x: x.renorm(2, 0, 1.5), shapes=[S34],
    covers=("Norm2", "Where", "Mul"))  # fmt: skip


# heaviside: PyTorch's result requires grad but has no derivative (both raise in backward).
add(name="heaviside", fn=lambda x, v: ds.heaviside(x, v), ref=np.heaviside,
    torch_fn=torch.heaviside, shapes=[S34, (4,)], covers=("Heaviside",),
    tags=("no_derivative",))  # fmt: skip
add(name="logit", fn=ds.logit, ref=lambda x: np.log(x / (1 - x)), torch_fn=torch.logit,
    shapes=[S34], domain=(0.05, 0.95), covers=("Logit",))  # fmt: skip
add(name="logit_eps_method", fn=lambda x: x.logit(eps=0.2),
    ref=lambda x: np.log(np.clip(x, 0.2, 0.8) / (1 - np.clip(x, 0.2, 0.8))),
    torch_fn=lambda x: x.logit(eps=0.2), shapes=[S34], covers=("Logit",),
    inputs=lambda rng, dt: [np.where(np.abs(np.abs(v - 0.5) - 0.3) < 0.02, 0.5, v)
                            for v in [rng.uniform(0.02, 0.98, S34)]])  # fmt: skip
add(
    name="sgn_times_x",
    fn=lambda x: ds.sgn(x) * x,
    ref=lambda x: np.sign(x) * x,
    torch_fn=lambda x: torch.sgn(x) * x,
    shapes=[S34],
    domain=(0.1, 2.0),
    covers=("Sgn", "Mul"),
)


# torch.special's kernels (descent.ops.special_functions, descent.ops.bessel): float64
# references from PyTorch's float64 kernels (ndtr's from erfc); second order through the ops.
for nm, f, tf, dom, cov in [
    ("special_erfcx", ds.special.erfcx, torch.special.erfcx, (-2.0, 6.0), "Erfcx"),
    ("special_log_ndtr", ds.special.log_ndtr, torch.special.log_ndtr, (-8.0, 4.0), "LogNdtr"),
    ("special_ndtri", ds.special.ndtri, torch.special.ndtri, (0.02, 0.98), "Ndtri"),
    ("special_entr", ds.special.entr, torch.special.entr, (0.05, 3.0), "Entr"),
    ("special_i0", ds.special.i0, torch.special.i0, (-4.0, 4.0), "I0"),
    ("special_i0e", ds.special.i0e, torch.special.i0e, (0.1, 4.0), "I0e"),
    ("special_i1", ds.special.i1, torch.special.i1, (-4.0, 4.0), "I1"),
    ("special_i1e", ds.special.i1e, torch.special.i1e, (0.1, 4.0), "I1e"),
]:  # fmt: skip
    add(name=nm, fn=f, ref=torch64(tf), torch_fn=tf, shapes=[S34], domain=dom, covers=(cov,),
        fwd_rtol=1e-12, fwd_atol=1e-14, grad_rtol=1e-4)  # fmt: skip
add(name="special_xlog1py", fn=ds.special.xlog1py, ref=torch64(torch.special.xlog1py),
    torch_fn=torch.special.xlog1py, shapes=[S34, S34], domain=[(-2.0, 2.0), (-0.5, 2.0)],
    covers=("Xlog1py",), fwd_rtol=1e-12, broadcast=True)  # fmt: skip
# The incomplete gamma and zeta functions: differentiable in their second argument only.
for nm, f, tf, dom, cov in [
    ("special_gammainc", ds.special.gammainc, torch.special.gammainc,
     [(0.5, 4.0), (0.2, 5.0)], "Igamma"),
    ("special_gammaincc", ds.special.gammaincc, torch.special.gammaincc,
     [(0.5, 4.0), (0.2, 5.0)], "Igamma"),
    ("special_zeta", ds.special.zeta, torch.special.zeta, [(1.5, 4.0), (0.3, 3.0)], "Zeta"),
]:  # fmt: skip
    add(name=nm, fn=f, ref=torch64(tf), torch_fn=tf, shapes=[S34, S34], domain=dom,
        covers=(cov,), grad_inputs=[1], fwd_rtol=1e-9, grad_rtol=1e-4)  # fmt: skip
