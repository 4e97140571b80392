"""Tensor methods of `descent.ops.gaps_math` and `descent.ops.gaps_math_inplace`
(docs/torch_gaps_math.md), one line each through Tensor's ops table `_ops` (see
`tensor_methods.py`). A mixin of `Tensor`; no name here is defined by an earlier group."""

from __future__ import annotations

from .tensor_methods import _ops, beta_alpha_first, legacy_scalar_first


class MathGapMethods2:
    """PyTorch's math Tensor methods added 2026-12-04."""

    __slots__ = ()

    def gcd(self, other):
        return _ops.gcd(self, other)

    def lcm(self, other):
        return _ops.lcm(self, other)

    def greater(self, other):
        return _ops.gt(self, other)

    def greater_equal(self, other):
        return _ops.ge(self, other)

    def less(self, other):
        return _ops.lt(self, other)

    def less_equal(self, other):
        return _ops.le(self, other)

    def not_equal(self, other):
        return _ops.ne(self, other)

    def nextafter(self, other):
        return _ops.nextafter(self, other)

    def frexp(self):
        return _ops.frexp(self)

    def angle(self):
        return _ops.angle(self)

    def isreal(self):
        return _ops.isreal(self)

    def nanmedian(self, dim=None, keepdim=False):
        return _ops.nanmedian(self, dim, keepdim)

    def vdot(self, other):
        return _ops.vdot(self, other)

    @beta_alpha_first(method=True)
    def addmv(self, mat, vec, *, beta=1, alpha=1):
        return _ops.addmv(self, mat, vec, beta=beta, alpha=alpha)

    @beta_alpha_first(method=True)
    def addr(self, vec1, vec2, *, beta=1, alpha=1):
        return _ops.addr(self, vec1, vec2, beta=beta, alpha=alpha)

    def unique_consecutive(self, return_inverse=False, return_counts=False, dim=None):
        return _ops.unique_consecutive(self, return_inverse, return_counts, dim)

    def addcdiv(self, tensor1, tensor2=None, *args, value=1):
        if args:  # x.addcdiv(value, tensor1, tensor2), deprecated
            value, (tensor1, tensor2) = legacy_scalar_first("addcdiv", tensor1,
                                                            (tensor2, *args), 2)
        return _ops.addcdiv(self, tensor1, tensor2, value=value)

    def addcmul(self, tensor1, tensor2=None, *args, value=1):
        if args:  # x.addcmul(value, tensor1, tensor2), deprecated
            value, (tensor1, tensor2) = legacy_scalar_first("addcmul", tensor1,
                                                            (tensor2, *args), 2)
        return _ops.addcmul(self, tensor1, tensor2, value=value)

    @beta_alpha_first(method=True)
    def baddbmm(self, batch1, batch2, *, beta=1, alpha=1):
        return _ops.baddbmm(self, batch1, batch2, beta=beta, alpha=alpha)

    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return bool(_ops.isclose(self, other, rtol, atol, equal_nan).all())

    def diff(self, n=1, dim=-1, prepend=None, append=None):
        return _ops.diff(self, n, dim, prepend, append)

    def dist(self, other, p=2):
        return _ops.dist(self, other, p)

    def ger(self, vec2):
        return _ops.ger(self, vec2)

    def inner(self, other):
        return _ops.inner(self, other)

    def kron(self, other):
        return _ops.kron(self, other)

    def mv(self, vec):
        return _ops.mv(self, vec)

    def outer(self, vec2):
        return _ops.outer(self, vec2)

    def deg2rad(self):
        return _ops.deg2rad(self)

    def rad2deg(self):
        return _ops.rad2deg(self)

    def true_divide(self, other):
        return _ops.div(self, other)

    def absolute(self):
        return _ops.abs(self)

    # In-place forms (descent.ops.gaps_math_inplace), with torch's parameter names.

    def acos_(self):
        return _ops.acos_(self)

    def acosh_(self):
        return _ops.acosh_(self)

    def arccos_(self):
        return _ops.arccos_(self)

    def arccosh_(self):
        return _ops.arccosh_(self)

    def arcsin_(self):
        return _ops.arcsin_(self)

    def arcsinh_(self):
        return _ops.arcsinh_(self)

    def arctan_(self):
        return _ops.arctan_(self)

    def arctanh_(self):
        return _ops.arctanh_(self)

    def asin_(self):
        return _ops.asin_(self)

    def asinh_(self):
        return _ops.asinh_(self)

    def atan_(self):
        return _ops.atan_(self)

    def atanh_(self):
        return _ops.atanh_(self)

    def cosh_(self):
        return _ops.cosh_(self)

    def sinh_(self):
        return _ops.sinh_(self)

    def tan_(self):
        return _ops.tan_(self)

    def log10_(self):
        return _ops.log10_(self)

    def log2_(self):
        return _ops.log2_(self)

    def frac_(self):
        return _ops.frac_(self)

    def fix_(self):
        return _ops.fix_(self)

    def deg2rad_(self):
        return _ops.deg2rad_(self)

    def rad2deg_(self):
        return _ops.rad2deg_(self)

    def absolute_(self):
        return _ops.absolute_(self)

    def logical_not_(self):
        return _ops.logical_not_(self)

    def bitwise_not_(self):
        return _ops.bitwise_not_(self)

    def arctan2_(self, other):
        return _ops.arctan2_(self, other)

    def atan2_(self, other):
        return _ops.atan2_(self, other)

    def remainder_(self, other):
        return _ops.remainder_(self, other)

    def fmod_(self, other):
        return _ops.fmod_(self, other)

    def hypot_(self, other):
        return _ops.hypot_(self, other)

    def copysign_(self, other):
        return _ops.copysign_(self, other)

    def floor_divide_(self, other):
        return _ops.floor_divide_(self, other)

    def multiply_(self, other):
        return _ops.multiply_(self, other)

    def true_divide_(self, other):
        return _ops.true_divide_(self, other)

    def ldexp_(self, other):
        return _ops.ldexp_(self, other)

    def gcd_(self, other):
        return _ops.gcd_(self, other)

    def lcm_(self, other):
        return _ops.lcm_(self, other)

    def nextafter_(self, other):
        return _ops.nextafter_(self, other)

    def logical_and_(self, other):
        return _ops.logical_and_(self, other)

    def logical_or_(self, other):
        return _ops.logical_or_(self, other)

    def logical_xor_(self, other):
        return _ops.logical_xor_(self, other)

    def bitwise_and_(self, other):
        return _ops.bitwise_and_(self, other)

    def bitwise_or_(self, other):
        return _ops.bitwise_or_(self, other)

    def bitwise_xor_(self, other):
        return _ops.bitwise_xor_(self, other)

    def bitwise_left_shift_(self, other):
        return _ops.bitwise_left_shift_(self, other)

    def bitwise_right_shift_(self, other):
        return _ops.bitwise_right_shift_(self, other)

    def eq_(self, other):
        return _ops.eq_(self, other)

    def ne_(self, other):
        return _ops.ne_(self, other)

    def lt_(self, other):
        return _ops.lt_(self, other)

    def le_(self, other):
        return _ops.le_(self, other)

    def gt_(self, other):
        return _ops.gt_(self, other)

    def ge_(self, other):
        return _ops.ge_(self, other)

    def greater_(self, other):
        return _ops.greater_(self, other)

    def greater_equal_(self, other):
        return _ops.greater_equal_(self, other)

    def less_(self, other):
        return _ops.less_(self, other)

    def less_equal_(self, other):
        return _ops.less_equal_(self, other)

    def not_equal_(self, other):
        return _ops.not_equal_(self, other)

    def pow_(self, exponent):
        return _ops.pow_(self, exponent)

    def float_power_(self, exponent):
        return _ops.float_power_(self, exponent)

    def nan_to_num_(self, nan=0.0, posinf=None, neginf=None):
        return _ops.nan_to_num_(self, nan, posinf, neginf)

    def clip_(self, min=None, max=None):
        return _ops.clip_(self, min, max)

    def lerp_(self, end, weight):
        return _ops.lerp_(self, end, weight)

    def addcdiv_(self, tensor1, tensor2=None, *args, value=1):
        if args:  # x.addcdiv_(value, tensor1, tensor2), deprecated
            value, (tensor1, tensor2) = legacy_scalar_first("addcdiv_", tensor1,
                                                            (tensor2, *args), 2)
        return _ops.addcdiv_(self, tensor1, tensor2, value=value)

    def addcmul_(self, tensor1, tensor2=None, *args, value=1):
        if args:  # x.addcmul_(value, tensor1, tensor2), deprecated
            value, (tensor1, tensor2) = legacy_scalar_first("addcmul_", tensor1,
                                                            (tensor2, *args), 2)
        return _ops.addcmul_(self, tensor1, tensor2, value=value)

    @beta_alpha_first(method=True)
    def addmv_(self, mat, vec, *, beta=1, alpha=1):
        return _ops.addmv_(self, mat, vec, beta=beta, alpha=alpha)

    @beta_alpha_first(method=True)
    def addr_(self, vec1, vec2, *, beta=1, alpha=1):
        return _ops.addr_(self, vec1, vec2, beta=beta, alpha=alpha)

    @beta_alpha_first(method=True)
    def baddbmm_(self, batch1, batch2, *, beta=1, alpha=1):
        return _ops.baddbmm_(self, batch1, batch2, beta=beta, alpha=alpha)

    @beta_alpha_first(method=True)
    def addbmm_(self, batch1, batch2, *, beta=1, alpha=1):
        return _ops.addbmm_(self, batch1, batch2, beta=beta, alpha=alpha)

    @beta_alpha_first(method=True)
    def addmm_(self, mat1, mat2, *, beta=1, alpha=1):
        return _ops.addmm_(self, mat1, mat2, beta=beta, alpha=alpha)

    def divide_(self, other, *, rounding_mode=None):
        return _ops.divide_(self, other, rounding_mode=rounding_mode)

    def subtract_(self, other, *, alpha=1):
        return _ops.subtract_(self, other, alpha=alpha)

    def cumsum_(self, dim, *, dtype=None):
        return _ops.cumsum_(self, dim, dtype=dtype)

    def cumprod_(self, dim, *, dtype=None):
        return _ops.cumprod_(self, dim, dtype=dtype)
