"""Specs of the math ops of issue 13 (descent.ops.math, rounded division, remainder): inverse
trigonometric and hyperbolic functions, base 2/10, rounding, atan2, hypot, copysign, logaddexp,
xlogy, fmod, remainder, lerp, nan_to_num (see tests/specs/__init__.py for the format)."""

from __future__ import annotations

import numpy as np
import torch

import descent as ds

from . import Spec

SPECS: list[Spec] = []


def add(**kw) -> None:
    SPECS.append(Spec(**kw))


P = (-2.0, 2.0)
POS = (0.5, 2.0)
S34 = (3, 4)


def away_from_grid(step, offset=0.0, lo=-3.0, hi=3.0, gap=0.1, n_inputs=1):
    """Inputs kept `gap` away from offset + k * step (the jumps of a rounding function), so
    finite differences never straddle one."""

    def sampler(rng, dtype):
        out = []
        for _ in range(n_inputs):
            x = rng.uniform(lo, hi, S34)
            r = (x - offset) / step
            near = np.abs(r - np.round(r)) * step < gap
            x = np.where(near, x + 2 * gap, x)
            out.append(x)
        return out

    return sampler


# ---------------------------------------------------------------------------------------------
# Unary: inverse trigonometric, hyperbolic, base 2 and 10

for nm, f, r, tf, dom, cov in [
    ("asin", ds.asin, np.arcsin, torch.asin, (-0.9, 0.9), "Asin"),
    ("acos", ds.acos, np.arccos, torch.acos, (-0.9, 0.9), "Acos"),
    ("atan", ds.atan, np.arctan, torch.atan, (-3.0, 3.0), "Atan"),
    ("arcsin_method", lambda x: x.arcsin(), np.arcsin, torch.arcsin, (-0.9, 0.9), "Asin"),
    ("sinh", ds.sinh, np.sinh, torch.sinh, P, "Sinh"),
    ("cosh", ds.cosh, np.cosh, torch.cosh, P, "Cosh"),
    ("asinh", ds.asinh, np.arcsinh, torch.asinh, (-3.0, 3.0), "Asinh"),
    ("acosh", ds.acosh, np.arccosh, torch.acosh, (1.2, 3.0), "Acosh"),
    ("atanh", ds.atanh, np.arctanh, torch.atanh, (-0.9, 0.9), "Atanh"),
    ("exp2", ds.exp2, np.exp2, torch.exp2, P, "Exp2"),
    ("log2", ds.log2, np.log2, torch.log2, POS, "Log2"),
    ("log10", lambda x: x.log10(), np.log10, torch.log10, POS, "Log10"),
]:  # fmt: skip
    add(name=nm, fn=f, ref=r, torch_fn=tf, shapes=[S34], domain=dom, covers=(cov,))

# ---------------------------------------------------------------------------------------------
# Rounding (gradient zero; inputs kept away from the jumps)

for nm, f, r, tf, smp in [
    ("floor", ds.floor, np.floor, torch.floor, away_from_grid(1.0)),
    ("ceil", lambda x: x.ceil(), np.ceil, torch.ceil, away_from_grid(1.0)),
    ("trunc", ds.trunc, np.trunc, torch.trunc, away_from_grid(1.0)),
    ("round", ds.round, np.round, torch.round, away_from_grid(1.0, 0.5)),
    ("round_decimals", lambda x: x.round(decimals=1), lambda x: np.round(x, 1),
     lambda x: torch.round(x, decimals=1), away_from_grid(0.1, 0.05, gap=0.01)),
]:  # fmt: skip
    add(name=nm, fn=lambda x, _f=f: _f(x) * x, ref=lambda x, _r=r: _r(x) * x,
        torch_fn=lambda x, _t=tf: _t(x) * x, shapes=[S34], inputs=smp,
        covers=("Round",))  # fmt: skip
add(name="frac", fn=ds.frac, ref=lambda x: x - np.trunc(x), torch_fn=torch.frac, shapes=[S34],
    inputs=away_from_grid(1.0), covers=("Sub",))  # fmt: skip
add(name="div_floor", fn=lambda a, b: ds.div(a, b, rounding_mode="floor") * a,
    ref=lambda a, b: np.floor_divide(a, b) * a,
    torch_fn=lambda a, b: torch.div(a, b, rounding_mode="floor") * a, shapes=[S34, (4,)],
    inputs=lambda rng, dt: [away_from_grid(1.0)(rng, dt)[0] * 1.5, np.full(4, 1.5)],
    covers=("RoundedDiv",))  # fmt: skip
add(name="div_trunc_method", fn=lambda a, b: a.div(b, rounding_mode="trunc") * b,
    ref=lambda a, b: np.trunc(a / b) * b,
    torch_fn=lambda a, b: a.div(b, rounding_mode="trunc") * b, shapes=[S34, S34],
    inputs=lambda rng, dt: [away_from_grid(1.0)(rng, dt)[0] * 0.75, np.full(S34, 0.75)],
    covers=("RoundedDiv",))  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Binary (broadcasting grid)


def _signed(lo, hi, shape):
    def sampler(rng, dtype):
        return [rng.uniform(lo, hi, shape) * rng.choice([-1, 1], shape)]

    return sampler


add(name="atan2", fn=ds.atan2, ref=np.arctan2, torch_fn=torch.atan2, shapes=[S34, S34],
    domain=[P, POS], covers=("Atan2",), broadcast=True)  # fmt: skip
add(name="atan2_method_signs", fn=lambda a, b: a.atan2(b), ref=np.arctan2,
    torch_fn=lambda a, b: a.atan2(b), shapes=[S34, S34],
    inputs=lambda rng, dt: [rng.uniform(0.3, 2, S34) * rng.choice([-1, 1], S34),
                            rng.uniform(-2, 2, S34)],
    covers=("Atan2",))  # fmt: skip
add(name="hypot", fn=ds.hypot, ref=np.hypot, torch_fn=torch.hypot, shapes=[S34, S34],
    domain=[POS, P], covers=("Hypot",), broadcast=True)  # fmt: skip
add(name="copysign", fn=ds.copysign, ref=np.copysign, torch_fn=torch.copysign,
    shapes=[S34, S34], domain=[P, POS], covers=("Copysign",), broadcast=True)  # fmt: skip
add(name="copysign_signs", fn=lambda a, b: a.copysign(b), ref=np.copysign,
    torch_fn=lambda a, b: a.copysign(b), shapes=[S34, S34],
    inputs=lambda rng, dt: [rng.uniform(0.2, 2, S34) * rng.choice([-1, 1], S34),
                            rng.uniform(0.2, 2, S34) * rng.choice([-1, 1], S34)],
    covers=("Copysign",))  # fmt: skip
add(name="logaddexp", fn=ds.logaddexp, ref=np.logaddexp, torch_fn=torch.logaddexp,
    shapes=[S34, S34], domain=(-4.0, 4.0), covers=("LogAddExp",), broadcast=True)  # fmt: skip
add(name="logaddexp2", fn=lambda a, b: a.logaddexp2(b), ref=np.logaddexp2,
    torch_fn=torch.logaddexp2, shapes=[S34, S34], domain=(-4.0, 4.0), covers=("LogAddExp",),
    broadcast=True)  # fmt: skip
add(name="xlogy", fn=ds.xlogy, ref=lambda x, y: x * np.log(y), torch_fn=torch.xlogy,
    shapes=[S34, S34], domain=[P, POS], covers=("Xlogy",), broadcast=True)  # fmt: skip


def _quotient_inputs(rng, dtype):
    # |a / b| in (2.09, 2.76): the quotient's integer part is 2 (or -2/-3), never at a jump.
    a = rng.uniform(2.3, 2.9, S34) * rng.choice([-1, 1], S34)
    b = rng.uniform(1.05, 1.1, S34) * rng.choice([-1, 1], S34)
    return [a, b]


add(name="fmod", fn=ds.fmod, ref=np.fmod, torch_fn=torch.fmod, shapes=[S34, S34],
    inputs=_quotient_inputs, covers=("Fmod",))  # fmt: skip
add(name="fmod_scalar_method", fn=lambda a: a.fmod(1.5), ref=lambda a: np.fmod(a, 1.5),
    torch_fn=lambda a: a.fmod(1.5), shapes=[S34], inputs=away_from_grid(1.5),
    covers=("Fmod",))  # fmt: skip
add(name="remainder_tensors", fn=ds.remainder, ref=np.remainder, torch_fn=torch.remainder,
    shapes=[S34, S34], inputs=_quotient_inputs, covers=("Remainder",))  # fmt: skip
# floor_divide and number % tensor have no derivative (backward raises, as PyTorch's): the
# first is tagged no_derivative (test_ops_table checks that both libraries raise); the second
# enters as a constant (detached; 2.5 % a depends on a, so only its value enters, times 0).
add(name="floor_divide", fn=lambda a, b: a // b, ref=np.floor_divide,
    torch_fn=lambda a, b: a // b, shapes=[S34, S34], inputs=_quotient_inputs,
    second_order=False, tags=("no_derivative",), covers=("FloorDivide",))  # fmt: skip
add(name="rremainder_detached", fn=lambda a: a + (2.5 % a).detach() * 0.0,
    ref=lambda a: a + np.remainder(2.5, a) * 0.0,
    torch_fn=lambda a: a + (2.5 % a).detach() * 0.0,
    shapes=[S34], inputs=lambda rng, dt: [_quotient_inputs(rng, dt)[1]],
    covers=("Add",))  # fmt: skip
add(name="lerp_scalar", fn=lambda a, b: ds.lerp(a, b, 0.3), ref=lambda a, b: a + 0.3 * (b - a),
    torch_fn=lambda a, b: torch.lerp(a, b, 0.3), shapes=[S34, (4,)],
    covers=("LerpScalar",))  # fmt: skip
add(name="lerp_scalar_far_end", fn=lambda a, b: ds.lerp(a, b, 0.7),
    ref=lambda a, b: a + 0.7 * (b - a), torch_fn=lambda a, b: torch.lerp(a, b, 0.7),
    shapes=[S34, (4,)], covers=("LerpScalar",))  # fmt: skip
add(name="lerp_tensor_weight", fn=lambda a, b, w: a.lerp(b, w),
    ref=lambda a, b, w: a + w * (b - a), torch_fn=lambda a, b, w: torch.lerp(a, b, w),
    shapes=[S34, S34, (3, 1)], domain=[P, P, (0.0, 1.0)], covers=("Add", "Sub", "Mul"))  # fmt: skip

_SPECIALS = np.array([[np.nan, 1.5, -np.inf, 0.3], [np.inf, -0.7, 2.0, np.nan],
                      [0.1, -np.inf, 1.1, -1.9]])  # fmt: skip


def _np_nan_to_num(x, **kw):
    return np.nan_to_num(x, **kw)


add(name="nan_to_num", fn=lambda x: ds.nan_to_num(x) * 0.5,
    ref=lambda x: np.nan_to_num(x) * 0.5, torch_fn=lambda x: torch.nan_to_num(x) * 0.5,
    shapes=[S34], inputs=lambda rng, dt: [_SPECIALS], covers=("NanToNum",),
    torch_fwd_rtol=1e-6)  # fmt: skip
add(name="nan_to_num_values", fn=lambda x: x.nan_to_num(nan=0.5, posinf=3.0, neginf=-4.0) * x,
    ref=lambda x: np.nan_to_num(x, nan=0.5, posinf=3.0, neginf=-4.0) * np.nan_to_num(x),
    torch_fn=lambda x: torch.nan_to_num(x, nan=0.5, posinf=3.0, neginf=-4.0) * x,
    shapes=[S34], covers=("NanToNum",))  # fmt: skip
