"""Tensor methods of `descent.ops.gaps_math` and `descent.ops.gaps_math_inplace`
(docs/torch_gaps_math.md), one line each through Tensor's ops table `_ops` (see
`tensor_methods.py`). A mixin of `Tensor`; no name here is defined by an earlier group."""

from __future__ import annotations

from .tensor_methods import _ops


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

    def addmv(self, mat, vec, *, beta=1, alpha=1):
        return _ops.addmv(self, mat, vec, beta=beta, alpha=alpha)

    def addr(self, vec1, vec2, *, beta=1, alpha=1):
        return _ops.addr(self, vec1, vec2, beta=beta, alpha=alpha)

    def unique_consecutive(self, return_inverse=False, return_counts=False, dim=None):
        return _ops.unique_consecutive(self, return_inverse, return_counts, dim)

    def addcdiv(self, tensor1, tensor2, *, value=1):
        return _ops.addcdiv(self, tensor1, tensor2, value=value)

    def addcmul(self, tensor1, tensor2, *, value=1):
        return _ops.addcmul(self, tensor1, tensor2, value=value)

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

    def acos_(self, *args, **kwargs):
        return _ops.acos_(self, *args, **kwargs)

    def acosh_(self, *args, **kwargs):
        return _ops.acosh_(self, *args, **kwargs)

    def arccos_(self, *args, **kwargs):
        return _ops.arccos_(self, *args, **kwargs)

    def arccosh_(self, *args, **kwargs):
        return _ops.arccosh_(self, *args, **kwargs)

    def arcsin_(self, *args, **kwargs):
        return _ops.arcsin_(self, *args, **kwargs)

    def arcsinh_(self, *args, **kwargs):
        return _ops.arcsinh_(self, *args, **kwargs)

    def arctan_(self, *args, **kwargs):
        return _ops.arctan_(self, *args, **kwargs)

    def arctanh_(self, *args, **kwargs):
        return _ops.arctanh_(self, *args, **kwargs)

    def asin_(self, *args, **kwargs):
        return _ops.asin_(self, *args, **kwargs)

    def asinh_(self, *args, **kwargs):
        return _ops.asinh_(self, *args, **kwargs)

    def atan_(self, *args, **kwargs):
        return _ops.atan_(self, *args, **kwargs)

    def atanh_(self, *args, **kwargs):
        return _ops.atanh_(self, *args, **kwargs)

    def cosh_(self, *args, **kwargs):
        return _ops.cosh_(self, *args, **kwargs)

    def sinh_(self, *args, **kwargs):
        return _ops.sinh_(self, *args, **kwargs)

    def tan_(self, *args, **kwargs):
        return _ops.tan_(self, *args, **kwargs)

    def log10_(self, *args, **kwargs):
        return _ops.log10_(self, *args, **kwargs)

    def log2_(self, *args, **kwargs):
        return _ops.log2_(self, *args, **kwargs)

    def frac_(self, *args, **kwargs):
        return _ops.frac_(self, *args, **kwargs)

    def fix_(self, *args, **kwargs):
        return _ops.fix_(self, *args, **kwargs)

    def deg2rad_(self, *args, **kwargs):
        return _ops.deg2rad_(self, *args, **kwargs)

    def rad2deg_(self, *args, **kwargs):
        return _ops.rad2deg_(self, *args, **kwargs)

    def absolute_(self, *args, **kwargs):
        return _ops.absolute_(self, *args, **kwargs)

    def logical_not_(self, *args, **kwargs):
        return _ops.logical_not_(self, *args, **kwargs)

    def bitwise_not_(self, *args, **kwargs):
        return _ops.bitwise_not_(self, *args, **kwargs)

    def arctan2_(self, *args, **kwargs):
        return _ops.arctan2_(self, *args, **kwargs)

    def atan2_(self, *args, **kwargs):
        return _ops.atan2_(self, *args, **kwargs)

    def pow_(self, *args, **kwargs):
        return _ops.pow_(self, *args, **kwargs)

    def remainder_(self, *args, **kwargs):
        return _ops.remainder_(self, *args, **kwargs)

    def fmod_(self, *args, **kwargs):
        return _ops.fmod_(self, *args, **kwargs)

    def hypot_(self, *args, **kwargs):
        return _ops.hypot_(self, *args, **kwargs)

    def copysign_(self, *args, **kwargs):
        return _ops.copysign_(self, *args, **kwargs)

    def floor_divide_(self, *args, **kwargs):
        return _ops.floor_divide_(self, *args, **kwargs)

    def multiply_(self, *args, **kwargs):
        return _ops.multiply_(self, *args, **kwargs)

    def true_divide_(self, *args, **kwargs):
        return _ops.true_divide_(self, *args, **kwargs)

    def nan_to_num_(self, *args, **kwargs):
        return _ops.nan_to_num_(self, *args, **kwargs)

    def clip_(self, *args, **kwargs):
        return _ops.clip_(self, *args, **kwargs)

    def lerp_(self, *args, **kwargs):
        return _ops.lerp_(self, *args, **kwargs)

    def ldexp_(self, *args, **kwargs):
        return _ops.ldexp_(self, *args, **kwargs)

    def gcd_(self, *args, **kwargs):
        return _ops.gcd_(self, *args, **kwargs)

    def lcm_(self, *args, **kwargs):
        return _ops.lcm_(self, *args, **kwargs)

    def nextafter_(self, *args, **kwargs):
        return _ops.nextafter_(self, *args, **kwargs)

    def logical_and_(self, *args, **kwargs):
        return _ops.logical_and_(self, *args, **kwargs)

    def logical_or_(self, *args, **kwargs):
        return _ops.logical_or_(self, *args, **kwargs)

    def logical_xor_(self, *args, **kwargs):
        return _ops.logical_xor_(self, *args, **kwargs)

    def bitwise_and_(self, *args, **kwargs):
        return _ops.bitwise_and_(self, *args, **kwargs)

    def bitwise_or_(self, *args, **kwargs):
        return _ops.bitwise_or_(self, *args, **kwargs)

    def bitwise_xor_(self, *args, **kwargs):
        return _ops.bitwise_xor_(self, *args, **kwargs)

    def bitwise_left_shift_(self, *args, **kwargs):
        return _ops.bitwise_left_shift_(self, *args, **kwargs)

    def bitwise_right_shift_(self, *args, **kwargs):
        return _ops.bitwise_right_shift_(self, *args, **kwargs)

    def eq_(self, *args, **kwargs):
        return _ops.eq_(self, *args, **kwargs)

    def ne_(self, *args, **kwargs):
        return _ops.ne_(self, *args, **kwargs)

    def lt_(self, *args, **kwargs):
        return _ops.lt_(self, *args, **kwargs)

    def le_(self, *args, **kwargs):
        return _ops.le_(self, *args, **kwargs)

    def gt_(self, *args, **kwargs):
        return _ops.gt_(self, *args, **kwargs)

    def ge_(self, *args, **kwargs):
        return _ops.ge_(self, *args, **kwargs)

    def greater_(self, *args, **kwargs):
        return _ops.greater_(self, *args, **kwargs)

    def greater_equal_(self, *args, **kwargs):
        return _ops.greater_equal_(self, *args, **kwargs)

    def less_(self, *args, **kwargs):
        return _ops.less_(self, *args, **kwargs)

    def less_equal_(self, *args, **kwargs):
        return _ops.less_equal_(self, *args, **kwargs)

    def not_equal_(self, *args, **kwargs):
        return _ops.not_equal_(self, *args, **kwargs)

    def addcdiv_(self, *args, **kwargs):
        return _ops.addcdiv_(self, *args, **kwargs)

    def addcmul_(self, *args, **kwargs):
        return _ops.addcmul_(self, *args, **kwargs)

    def addmv_(self, *args, **kwargs):
        return _ops.addmv_(self, *args, **kwargs)

    def addr_(self, *args, **kwargs):
        return _ops.addr_(self, *args, **kwargs)

    def baddbmm_(self, *args, **kwargs):
        return _ops.baddbmm_(self, *args, **kwargs)

    def addbmm_(self, *args, **kwargs):
        return _ops.addbmm_(self, *args, **kwargs)

    def addmm_(self, *args, **kwargs):
        return _ops.addmm_(self, *args, **kwargs)

    def divide_(self, other, *, rounding_mode=None):
        return _ops.divide_(self, other, rounding_mode=rounding_mode)

    def subtract_(self, other, *, alpha=1):
        return _ops.subtract_(self, other, alpha=alpha)

    def float_power_(self, exponent):
        return _ops.float_power_(self, exponent)

    def cumsum_(self, dim, *, dtype=None):
        return _ops.cumsum_(self, dim, dtype=dtype)

    def cumprod_(self, dim, *, dtype=None):
        return _ops.cumprod_(self, dim, dtype=dtype)
