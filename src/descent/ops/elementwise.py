"""Elementwise math: exp, log, sqrt, trig, abs; maximum/minimum, clamp, where, masked_fill;
dtype casts and clone.

Each op's forward (on arrays) and backward (on `ops`, see autograd.py) sit side by side.
Broadcasting in backward is handled centrally by the engine: a backward returns the gradient at
the output's shape and the engine sums it back to each input's shape. The arithmetic operators
live in `arithmetic.py`, comparisons in `comparison.py`, in-place updates in `inplace.py`.
"""

from __future__ import annotations

import numpy as np

from .. import backend, memory_layout
from ..autograd import Function
from ..dtypes import as_dtype
from ..errors import DescentError, DtypeError
from ..float8 import astype as float8_astype
from ..float8 import is_float8
from ..opmath import HALF, in_float32
from ..tensor import Tensor, get_default_dtype
from ._common import (
    apply_binary,
    as_tensor,
    check_broadcast,
    check_float_fits,
    check_int_range,
    conj_if_complex,
    fill_int,
    input_ordered,
    promote,
    python_number,
    refuse_kinds,
    result_type,
)
from .out_arg import write_out
from .untracked import computed, guarded, seen

# ---------------------------------------------------------------------------------------------
# Unary math


# What each op saves is the cheapest thing its derivative can be computed from: the output
# when the derivative is a function of it (exp, sqrt, tan: one array, no recomputation), else
# the input. Saving both would double the memory a graph holds until backward.
class Exp(Function):
    """d/dx exp(x) = exp(x) (reuses the output)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_output = True

    def forward(self, x):
        return backend.get_array_module(x).exp(x)

    # y = exp(x) is its own derivative: reuse it instead of a second exp.
    def backward(self, gy, ops):
        return gy * conj_if_complex(ops, self.output(ops))  # complex: gy conj(exp(z))


class Log(Function):
    """d/dx log(x) = 1/x."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_inputs = True

    def forward(self, x):
        return backend.get_array_module(x).log(x)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        # 1/x is infinite at 0, like the derivative; anomaly mode reports where such a value began.
        return gy / conj_if_complex(ops, x)


class Log1p(Function):
    """d/dx log(1 + x) = 1/(1 + x)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_inputs = True

    def forward(self, x):
        return backend.get_array_module(x).log1p(x)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        # x + 1 may round to 1 for tiny x, which is exactly the derivative there (1/(1+x) -> 1).
        return gy / (conj_if_complex(ops, x) + 1)


class Expm1(Function):
    """d/dx (exp(x) - 1) = exp(x) = y + 1 (reuses the output)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_output = True

    def forward(self, x):
        return backend.get_array_module(x).expm1(x)

    def backward(self, gy, ops):
        return gy * (conj_if_complex(ops, self.output(ops)) + 1)


class Sqrt(Function):
    """d/dx sqrt(x) = 1/(2 sqrt(x)) (reuses the output)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_output = True

    def forward(self, x):
        return backend.get_array_module(x).sqrt(x)

    def backward(self, gy, ops):
        # At x = 0 the output is 0 and the gradient inf, as the true derivative and PyTorch's.
        return gy / (conj_if_complex(ops, self.output(ops)) * 2)


class Rsqrt(Function):
    """d/dx x^(-1/2) = -x^(-3/2)/2 = -y^3/2 (reuses the output)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_output = True

    def forward(self, x):
        if x.dtype == HALF:  # PyTorch's rsqrt kernel: float32, rounded once (NumPy's float16
            return in_float32(self.forward, x)  # sqrt, then 1 / it, rounded twice)
        return 1 / backend.get_array_module(x).sqrt(x)

    def backward(self, gy, ops):
        y = conj_if_complex(ops, self.output(ops))
        if not ops.is_graph and y.dtype == HALF:
            # PyTorch's formula as float16 ops: (-0.5 gy) y.pow(3), the power in float32 and
            # rounded once (float16's y * y * y rounded twice: 1.5x the error)
            return (gy * -0.5) * in_float32(_cube, y)
        # -1/2 x^(-3/2) = -y^3 / 2 with y = x^(-1/2): three multiplies instead of a power.
        return gy * (y * y * y) * -0.5


def _cube(y):
    return y * y * y


class Abs(Function):
    """d/dx |x| = sign(x) (0 at 0, as PyTorch); complex z: gy z/|z| (PyTorch's convention)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_inputs = True

    def forward(self, x):
        return backend.get_array_module(x).abs(x)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        # sign(0) = 0: the subgradient PyTorch picks at the kink, so both libraries agree there;
        # and sign(nan) = 0 in both namespaces, as PyTorch's sgn (NumPy's sign(nan) is nan).
        # Complex z: sign is z/|z| (NumPy 2's), PyTorch's gy * sgn(z); under create_graph it is
        # written out, as sign's own derivative is 0 but z/|z|'s is not.
        if ops.is_graph and x._data.dtype.kind == "c":
            a = abs(x)
            return gy * (x / ops.where(a == 0, 1, a))
        return gy * ops.sign(x)


class Sign(Function):
    """d/dx sign(x) = 0 (almost everywhere)."""

    def forward(self, x):
        xp = backend.get_array_module(x)
        s = xp.sign(x)
        return xp.where(s == s, s, 0) if x.dtype.kind in "fV" else s  # sign(nan) = 0 (PyTorch)

    def backward(self, gy, ops):
        # Zeros, not None: the input stays connected, so a gradient of shape x arrives; zeros
        # also where gy is inf or nan (PyTorch's zeros_like(grad), not gy * 0).
        return ops.where(True, 0, gy)


class Sin(Function):
    """d/dx sin(x) = cos(x)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_inputs = True

    def forward(self, x):
        return backend.get_array_module(x).sin(x)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        return gy * ops.cos(conj_if_complex(ops, x))  # cos(conj z) = conj(cos z)


class Cos(Function):
    """d/dx cos(x) = -sin(x)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_inputs = True

    def forward(self, x):
        return backend.get_array_module(x).cos(x)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        return -gy * ops.sin(conj_if_complex(ops, x))


class Tan(Function):
    """d/dx tan(x) = 1 + tan(x)^2 (reuses the output)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_output = True

    def forward(self, x):
        return backend.get_array_module(x).tan(x)

    def backward(self, gy, ops):
        y = conj_if_complex(ops, self.output(ops))
        # 1 + tan^2 from the saved output: no cos is evaluated (sec^2 would need one).
        return gy * (y * y + 1)


# The public functions of the unary ops: convert the operand, compute in the default dtype for
# integer inputs (PyTorch's promotion for exp, log, ...), then record. Made by one factory so the
# nine functions cannot drift apart; `type(x) is not Tensor` is the cheap test for the common case.
def _unary(op):
    def fn(x, *, out=None) -> Tensor:
        if out is not None:  # PyTorch's out= (ops/out_arg.py)
            return write_out(fn(x), out, fn.__name__, inputs=(x,))
        if type(x) is not Tensor:
            x = as_tensor(x)
        if x._data.dtype.kind not in "fcV":  # complex: holomorphic, conjugated in backward
            x = cast(x, get_default_dtype())
        return op.apply(x)

    fn.__name__ = op.__name__.lower()
    fn.__doc__ = op.__doc__
    return fn


exp = _unary(Exp)
log = _unary(Log)
log1p = _unary(Log1p)
expm1 = _unary(Expm1)
sqrt = _unary(Sqrt)
rsqrt = _unary(Rsqrt)
sin = _unary(Sin)
cos = _unary(Cos)
tan = _unary(Tan)


def abs(x, *, out=None) -> Tensor:
    """|x|; d/dx = sign(x). `out=` as PyTorch's (out's dtype must be the result's)."""
    if out is not None:
        return write_out(abs(x), out, "abs", same_dtype=True, inputs=(x,))
    x = as_tensor(x)
    refuse_kinds("abs", x, "b", "a bool tensor is its own absolute value")
    return Abs.apply(x)


def _as_bool(a):
    """A uint8 condition as bool (where's kernel, untracked.computed)."""
    return a.astype(bool)


def _array_copy(a):
    """A copy of the array: an op that is the identity on these values (untracked.computed's
    kernel, so descent.compile replays it on each call's values; session 19's fuzzer). In a's
    memory order, as PyTorch's elementwise results (sign of a transposed bool x)."""
    return input_ordered(a, a, copy=True)


def sign(x) -> Tensor:
    """sign(x) (0 for nan, a bool stays bool, as PyTorch's); its gradient is zero."""
    x = as_tensor(x)
    if x._data.dtype.kind == "b":  # (untracked.computed: a copy on arrays was frozen)
        return computed(_array_copy, (x,), ())
    refuse_kinds("sign", x, "c", "torch.sgn is z / |z| for complex numbers")
    return Sign.apply(x)


# ---------------------------------------------------------------------------------------------
# Binary selections


class Maximum(Function):
    """d max(a, b): 1 to the larger input; ties split the gradient in half (as PyTorch)."""

    save_inputs = True

    def forward(self, a, b):
        return backend.get_array_module(a).maximum(a, b)

    def backward(self, gy, ops):
        a, b = self.inputs(ops)
        # a's share: 1 where a wins, 0.5 on a tie (PyTorch splits ties evenly, which keeps
        # max(x, x) = x with gradient 1), 0 where b wins; b's the mirror image. With a nan (no
        # order, no tie) both get gy, as PyTorch's where(a == b, g / 2, g).masked_fill(a < b, 0).
        return _shares(gy, a, b, ops)


def _shares(gy, a, b, ops):
    """(a's, b's) gradient of max(a, b): PyTorch's where(a == b, gy / 2, gy), zeroed (exactly,
    not gy * 0) where the other input wins; with a nan neither wins and both get gy."""
    half = ops.where(a == b, gy * 0.5, gy)
    return ops.where(a < b, 0, half), ops.where(a > b, 0, half)


class Minimum(Function):
    """d min(a, b): 1 to the smaller input; ties split the gradient in half (as PyTorch)."""

    save_inputs = True

    def forward(self, a, b):
        return backend.get_array_module(a).minimum(a, b)

    def backward(self, gy, ops):
        a, b = self.inputs(ops)
        # The mirror image of Maximum: a's share where it is the smaller one.
        return _shares(gy, b, a, ops)  # a's share of min(a, b) is b's of max(b, a)... mirrored


def _refuse_complex_order(name: str, *operands) -> None:
    """PyTorch has no order on complex numbers: maximum, minimum and clamp refuse them (a
    complex tensor, a complex bound, or a Python complex number) instead of NumPy's
    lexicographic comparison."""
    for v in operands:
        if isinstance(v, Tensor):
            refuse_kinds(name, v, "c", "compare .abs() or .real instead")
        elif isinstance(v, complex):
            raise DtypeError(f"{name}: not implemented for complex numbers (got {v!r}), as in "
                             "PyTorch; compare .abs() or .real instead")  # fmt: skip


def maximum(a, b, *, out=None) -> Tensor:
    _refuse_complex_order("maximum", a, b)
    if out is not None:  # PyTorch's out= (ops/out_arg.py)
        return write_out(apply_binary(Maximum, a, b), out, "maximum", inputs=(a, b))
    return apply_binary(Maximum, a, b)


def minimum(a, b, *, out=None) -> Tensor:
    _refuse_complex_order("minimum", a, b)
    if out is not None:
        return write_out(apply_binary(Minimum, a, b), out, "minimum", inputs=(a, b))
    return apply_binary(Minimum, a, b)


class Clamp(Function):
    """d/dx clamp(x, lo, hi) = 1 where lo <= x <= hi, else 0 (as PyTorch)."""

    __slots__ = ("lo", "hi")
    save_inputs = True

    def forward(self, x):
        return clip_array(x, self.lo, self.hi)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        # Pass the gradient where x is inside [lo, hi] (bounds included, as PyTorch): the input is
        # saved, not the output, because the output cannot tell "clamped" from "exactly at the
        # bound".
        mask = None
        if self.lo is not None:
            mask = x >= self.lo
        if self.hi is not None:
            m2 = x <= self.hi
            mask = m2 if mask is None else mask & m2
        return ops.where(mask, gy, 0)


class ClampTensor(Function):
    """clamp(x, lo, hi) with tensor bounds, PyTorch's clamp_backward_min_max: x gets gy where
    lo <= x <= hi (ties included, not split as maximum's), lo where x < lo and lo < hi, hi
    where x > hi or hi < lo (where the result is hi)."""

    __slots__ = ("has_lo", "has_hi")
    save_inputs = True

    def forward(self, x, *bounds):
        xp = backend.get_array_module(x)
        y = xp.maximum(x, bounds[0]) if self.has_lo else x
        if self.has_hi:
            y = xp.minimum(y, bounds[-1])
        return xp.where(y == x, x, y)  # a tie keeps x (the sign of a zero), as PyTorch

    def backward(self, gy, ops):
        x, *bounds = self.inputs(ops)
        lo = bounds[0] if self.has_lo else None
        hi = bounds[-1] if self.has_hi else None
        if lo is not None and hi is not None:
            gx = ops.where((x >= lo) & (x <= hi), gy, 0)
            glo = ops.where((x < lo) & (lo < hi), gy, 0)
            ghi = ops.where((x > hi) | (hi < lo), gy, 0)
            return gx, glo, ghi
        if lo is not None:
            return ops.where(x >= lo, gy, 0), ops.where(x < lo, gy, 0)
        return ops.where(x <= hi, gy, 0), ops.where(x > hi, gy, 0)


def clip_array(x, lo, hi):
    """The array clamp, PyTorch's min(max(x, lo), hi): a tie keeps x, so a zero bound leaves the
    sign of a zero x (clamp(-0.0, min=0.0) is -0.0, where NumPy's clip returns the bound)."""
    xp = backend.get_array_module(x)
    y = xp.clip(x, lo, hi)
    # (a bound's own ndim: np.ndim would dispatch on a nested tensor's storage, which refuses)
    if y.dtype.kind in "fV" and any(getattr(b, "ndim", 0) == 0 and b == 0 for b in (lo, hi)):
        y = xp.where(y == x, x, y)  # only a zero has two equal values of different bits
    return y


def check_clamp_bounds(name: str, x: Tensor, min, max) -> None:
    """PyTorch's refusals of clamp (and clamp_): complex tensors or bounds (no order), and a
    bool tensor with bool bounds (the result would stay bool, for which PyTorch has no clamp
    kernel; an int bound computes in int64)."""
    bounds = [b for b in (min, max) if b is not None]
    for b in bounds:
        if type(b) is int:
            check_int_range(b)  # (PyTorch's argument parser: OverflowError beyond 64 bits)
    _refuse_complex_order(name, x, min, max)
    if x._data.dtype.kind == "b" and all(
            isinstance(b, bool) or (isinstance(b, Tensor) and b._data.dtype.kind == "b")
            for b in bounds) and (len(bounds) == 2 or isinstance(bounds[0], bool)):  # fmt: skip
        # (one bool tensor bound is PyTorch's clamp_min/clamp_max: maximum/minimum, which
        # take bool; two bounds, or a number, are its clamp kernels, which do not)
        refuse_kinds(name, x, "b", "convert it first, e.g. .int()")


def clamp(x, min=None, max=None, *, out=None) -> Tensor:
    """Limit values to [min, max]; either bound may be None; `out=` as PyTorch's."""
    if out is not None:
        # PyTorch's clamp.out with number bounds wants out of the result's dtype exactly;
        # with a tensor bound (clamp.Tensor_out) it casts as any binary op (torch.can_cast)
        exact = not any(isinstance(b, Tensor) for b in (min, max))
        return write_out(clamp(x, min, max), out, "clamp", same_dtype=exact,
                         inputs=(x, min, max))  # fmt: skip
    x = as_tensor(x)
    min, max = python_number(min), python_number(max)  # np.float64 bounds must not upcast x
    if min is None and max is None:
        raise DescentError("clamp: give at least one of min= and max=")
    check_clamp_bounds("clamp", x, min, max)
    # Tensor bounds get gradients too (ClampTensor); the three operands promote together.
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        bounds = [as_tensor(b, x) for b in (min, max) if b is not None]
        dt = result_type(x, *bounds)
        x, *bounds = (t if t._data.dtype == dt else cast(t, dt) for t in (x, *bounds))
        for b in bounds:
            if b._data.shape != x._data.shape:
                check_broadcast(ClampTensor, x, b)  # PyTorch's RuntimeError, not NumPy's
        return ClampTensor.apply(x, *bounds, has_lo=min is not None, has_hi=max is not None)
    # An integer tensor clamped to a float bound computes in the default dtype, as in PyTorch.
    if x._data.dtype.kind not in "fV" and (isinstance(min, float) or isinstance(max, float)):
        x = cast(x, get_default_dtype())
    elif (x._data.dtype.kind in "iu" or x._data.dtype.itemsize == 2) and not (
        _is_nan(min) or _is_nan(max)
    ):
        # int bounds take x's dtype: PyTorch's check, uint8 wraps; float16 refuses |c| > 65504
        # (not beside a nan bound: PyTorch's clamp gives nan then, unchecked)
        min, max = fill_int(min, x._data.dtype), fill_int(max, x._data.dtype)
    if x._data.dtype is _F32:  # float32 (an integer x too, cast above): a float bound beyond
        for b in (min, max):  # its range raises (PyTorch's checked conversion; NumPy: inf)
            if type(b) is float:
                check_float_fits(b, _F32)
    return Clamp.apply(x, lo=min, hi=max)


clip = clamp


_F32 = np.dtype(np.float32)


def _check_where_float(c: float, t: Tensor) -> None:
    """where's Python float beside a float32 tensor, or an integer or bool one (a float32
    result): beyond float32's range it is PyTorch's overflow error (float16 and bfloat16
    tensors take it as inf there, as PyTorch's where does)."""
    dt = t._data.dtype
    if dt is _F32 or dt.kind in "biu":
        check_float_fits(c, _F32 if dt is _F32 else get_default_dtype())


def _is_nan(b) -> bool:
    """A Python float nan bound."""
    return isinstance(b, float) and b != b


class Where(Function):
    """where(c, a, b): gradient to a where c holds, to b elsewhere; none to c."""

    save_inputs = True
    read_inputs = (0,)  # (a and b are saved with c, not read: their versions are not checked)

    def forward(self, c, a, b):
        return backend.get_array_module(a).where(c, a, b)

    def backward(self, gy, ops):
        # Only the condition is read (it is saved with a and b because inputs are saved together);
        # each branch gets gy where it was chosen and 0 elsewhere, the condition gets nothing.
        c = self.inputs(ops)[0]
        p = self.parents
        ga = ops.where(c, gy, 0) if p[1] is not None else None
        gb = ops.where(c, 0, gy) if p[2] is not None else None
        return None, ga, gb


class FixedWhere(Function):
    """where(cond, a, b) for a condition that is a constant of a composite op (diag_embed's
    eye, fill's all-True), not a user's tensor: gradient to a where cond holds, to b elsewhere.
    PyTorch's node for such a composite (DiagEmbedBackward0, FillBackward0) saves nothing, so
    cond is an op parameter that does not count as saving: a second backward runs again.
    `torch_name` is that node's name."""

    __slots__ = ("cond", "torch_name")

    def forward(self, a, b):
        return backend.get_array_module(a, b).where(self.cond, a, b)

    def backward(self, gy, ops):
        c = Tensor._wrap(self.cond) if ops.is_graph else self.cond  # (a constant of the graph)
        p = self.parents
        ga = ops.where(c, gy, 0) if p[0] is not None else None
        gb = ops.where(c, 0, gy) if p[1] is not None else None
        return ga, gb


def nonzero_positions(a) -> tuple:
    """The int64 positions of a's nonzero elements, one 1-D array per dimension (one for a 0-d
    a): where(condition)'s and nonzero(as_tuple=True)'s kernel (untracked.guarded)."""
    xp = backend.get_array_module(a)
    return tuple(i.astype(np.int64) for i in xp.nonzero(a if a.ndim else a.reshape(1)))


def where(condition, a=None, b=None, *, out=None):
    """Elementwise choice: a where `condition` is true, b elsewhere (broadcasting; the two
    promote as torch.where). `where(condition)` alone is `nonzero(condition, as_tuple=True)`:
    a tuple of index tensors, as in PyTorch. `out=` as PyTorch's."""
    if out is not None:
        for name, v in (("input", a), ("other", b)):  # torch.where's out= overload: tensors
            if isinstance(v, (bool, int, float, complex)):
                raise TypeError(
                    f"where(): argument '{name}' must be Tensor, not {type(v).__name__} (with "
                    "out=, as in PyTorch); wrap the number with tensor(), or drop out="
                )
        return write_out(where(condition, a, b), out, "where", same_dtype=True,
                         inputs=(condition, a, b))  # fmt: skip
    condition = as_tensor(condition)
    if a is None and b is None:
        # (their shapes depend on the values: guarded for descent.compile, ops/untracked.py)
        return guarded(nonzero_positions, (condition,), (), "where(condition)")
    if condition._data.dtype != np.bool_:
        if condition._data.dtype != np.uint8:  # PyTorch takes bool and (deprecated) uint8 only
            raise DescentError(
                f"where: expected condition to be a bool tensor, got dtype {condition.dtype} "
                f"(shape {tuple(condition.shape)}); compare first, e.g. where(c != 0, x, y)"
            )
        condition = computed(_as_bool, (condition,), ())  # (replayed by descent.compile)
    # Python scalars take the other operand's dtype (no silent upcast); with two scalars the first
    # one decides. The broadcast check here gives an error naming all three shapes.
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        a = as_tensor(a)
    # an int meeting an integer tensor takes PyTorch's range check (uint8 -1 is 255); any int
    # beyond [-2**63, 2**64) its argument parser's OverflowError
    for v in (a, b):
        if type(v) is int:
            check_int_range(v)
    if type(a) is int and isinstance(b, Tensor) and b._data.dtype.kind in "iu":
        a = fill_int(a, b._data.dtype)
    elif type(b) is int and isinstance(a, Tensor) and a._data.dtype.kind in "iu":
        b = fill_int(b, a._data.dtype)
    elif type(a) is float and isinstance(b, Tensor):
        _check_where_float(a, b)
    elif type(b) is float and isinstance(a, Tensor):
        _check_where_float(b, a)
    a = as_tensor(a, b if isinstance(b, Tensor) else None)
    b = as_tensor(b, a)
    if a._data.dtype != b._data.dtype:
        a, b = promote(a, b)
    try:
        np.broadcast_shapes(condition.shape, a.shape, b.shape)
    except RuntimeError:  # a nested tensor's ragged size is not an int: its storage checks
        if not (condition._nested_layout or a._nested_layout or b._nested_layout):
            raise
    except ValueError:
        raise DescentError(
            f"where: condition {tuple(condition.shape)}, x {tuple(a.shape)} and y "
            f"{tuple(b.shape)} cannot be "
            "broadcast together"
        ) from None
    return Where.apply(condition, a, b)


class MaskedFill(Function):
    """masked_fill(x, mask, v): gradient flows to x where the mask is false."""

    __slots__ = ("value",)
    save_inputs = True
    read_inputs = (1,)  # (the mask alone is read: x may change in place, as in PyTorch)

    def forward(self, x, mask):
        # The fill value in x's dtype: a Python float must not turn a float32 tensor into float64.
        # (an int into an unsigned tensor wraps as in PyTorch: masked_fill(uint8, m, -1) is 255)
        v = x.dtype.type(fill_int(self.value, x.dtype))
        return backend.get_array_module(x).where(mask, v, x)

    def backward(self, gy, ops):
        mask = self.inputs(ops)[1]
        return ops.where(mask, 0, gy), None


def check_bool_mask(x: Tensor, mask: Tensor, op: str) -> None:
    """masked_fill's mask: bool (PyTorch refuses uint8 and other dtypes), and broadcastable
    with x."""
    if mask._data.dtype != np.bool_:
        raise DescentError(
            f"{op}: only supports bool masks, got a mask of dtype {mask.dtype} (shape "
            f"{tuple(mask.shape)}); compare first, e.g. mask != 0"
        )
    if mask._data.shape != x._data.shape:
        try:
            np.broadcast_shapes(mask._data.shape, x._data.shape)
        except ValueError:
            raise DescentError(
                f"{op}: the mask's shape {tuple(mask.shape)} cannot be broadcast with the "
                f"tensor's shape {tuple(x.shape)}"
            ) from None


def masked_fill(x, mask, value) -> Tensor:
    """Replace the entries of x where `mask` is true by `value` (mask broadcasts to x)."""
    mask = as_tensor(mask)
    x = as_tensor(x)
    check_bool_mask(x, mask, "masked_fill")
    # A tensor value may need a gradient of its own: `where` gives it one. It takes x's dtype
    # (PyTorch: masked_fill(int64, m, float 0-d tensor) stays int64); the cast is differentiable.
    if isinstance(value, Tensor):
        if value._data.dtype != x._data.dtype:
            check_fill_value(x, value, "masked_fill")
            value = cast(value, x._data.dtype)
        elif value.ndim:
            check_fill_value(x, value, "masked_fill")
        return where(mask, value, x)
    if isinstance(value, complex):
        check_fill_value(x, value, "masked_fill")
    elif type(value) is float and x._data.dtype.num >= 256:  # bfloat16: its own range (the
        check_float_fits(value, x._data.dtype)  # forward sees float32 arrays)
    return MaskedFill.apply(x, mask, value=value)


def check_fill_value(x: Tensor, value, op: str) -> None:
    """PyTorch's rules for a fill value: a 0-d tensor, and no complex value into a real
    tensor (called only on the unusual paths: a tensor value of another dtype, a complex)."""
    if isinstance(value, Tensor) and value.ndim:
        raise DescentError(
            f"{op}: only supports a 0-dimensional value tensor, but got tensor with "
            f"{value.ndim} dimension(s) {tuple(value.shape)}; pass value.squeeze() or a number"
        )
    # a complex value with a nonzero imaginary part (PyTorch's checked conversion: 1+0j fills
    # 1, and a bool tensor takes any value as nonzero-is-True)
    if isinstance(value, Tensor):
        is_complex = value._data.dtype.kind == "c" and bool(value._data.imag != 0)
    else:
        is_complex = isinstance(value, complex) and value.imag != 0
    if is_complex and x._data.dtype.kind not in "cb":
        raise DescentError(
            f"{op}: value {value!r} cannot be converted to type {x.dtype} without overflow; "
            f"fill a complex tensor, or pass the real part"
        )
    if isinstance(value, Tensor) and value._data.dtype != x._data.dtype and not is_complex:
        # PyTorch reads a 0-d value tensor as its number (item()) with the checked conversion
        # of a Python number: -1.5 into uint8, 300 into int8, nan into an integer tensor raise
        # (descent cast them: 254, 44, ...)
        fill_int(value._data.item(), x._data.dtype)


class Cast(Function):
    """d/dx cast(x) = 1, cast back to the input's dtype."""

    __slots__ = ("dtype", "in_dtype")
    native_bfloat16 = True  # ml_dtypes' casts round to nearest even, as PyTorch's

    def forward(self, x):
        # The input dtype is kept (a dtype object, not an array) to cast the gradient back: a
        # float16 -> float32 cast hands a float16 gradient to its float16 input (mixed precision).
        self.in_dtype = x.dtype
        # (num >= 256: a dtype registered outside NumPy, ml_dtypes' bfloat16 and float8)
        if (x.dtype.num >= 256 or self.dtype.num >= 256) and (
            is_float8(x.dtype) or is_float8(self.dtype)
        ):
            return float8_astype(x, self.dtype)  # PyTorch's rules (float8.py), not ml_dtypes'
        if x.dtype.kind == "c" and self.dtype.kind != "c":
            x = x.real  # complex -> real keeps the real part, as PyTorch (NumPy would warn)
        out = x.astype(self.dtype)  # (order K; PyTorch's strides: memory_layout.preserved)
        return out if x.flags.c_contiguous else memory_layout.preserved(x, out)

    def backward(self, gy, ops):
        # From an integer input nothing flows back: integers cannot require grad. A real input
        # cast to complex gets the real part of its gradient (ops.cast drops the imaginary).
        if self.in_dtype.kind not in "fcV":  # "V": bfloat16
            return None
        return ops.cast(gy, self.in_dtype)


def cast(x, dtype) -> Tensor:
    """x converted to `dtype` (differentiable between floating dtypes)."""
    x = as_tensor(x)
    dtype = as_dtype(dtype)
    if x._data.dtype == dtype:
        return x
    # To an integer or bool dtype: piecewise constant, so no node is recorded (as PyTorch);
    # nan and inf convert silently, as there (NumPy would warn "invalid value in cast").
    if dtype.kind not in "fcV":  # (seen by op hooks: descent.compile records it)
        return seen(_exact_cast, (x,), (dtype,), Tensor._wrap(_exact_cast(x._data, dtype)))
    return Cast.apply(x, dtype=dtype)


def _exact_cast(a, dtype):
    """An array converted to an integer or bool dtype, as PyTorch converts (see cast)."""
    if is_float8(a.dtype):  # through float32, as PyTorch (float8.py)
        return float8_astype(a, dtype)
    with np.errstate(invalid="ignore"):
        if a.dtype.kind == "c":  # to bool: nonzero (-1j is True); else the real part
            return a != 0 if dtype.kind == "b" else a.real.astype(dtype)
        if a.dtype.kind == "V" and dtype.kind in "iu":  # bfloat16: through float32, as
            a = a.astype(np.float32)  # PyTorch (ml_dtypes saturates: -2.5 -> uint8 0)
        return memory_layout.preserved(a, a.astype(dtype))


class Clone(Function):
    """d/dx clone(x) = 1."""

    native_bfloat16 = True
    zero_passes = True  # the gradient passes as it is (a zero tensor too, as PyTorch's)
    layout = None  # a memory format's name ("channels_last"): the copy's layout

    def forward(self, x):
        if self.layout is None:
            return x.copy()
        if self.layout == "preserve_format":  # PyTorch's strides (memory_layout.preserved)
            return memory_layout.preserved(x, x.copy(order="K"))
        return memory_layout.copy_as(x, self.layout)

    def backward(self, gy, ops):
        return gy


class SavedClone(Clone):
    """d/dx = 1, as Clone: the value of a 0-d tensor that an op selecting by index returns as
    it is (sort, topk, max/min/median/kthvalue/mode over dim 0, cummax/cummin,
    logcumsumexp). PyTorch's node for the op saves its indices or input even then (a 0-d
    index 0), so this node counts as saving: a second backward without retain_graph raises.
    `torch_name` is PyTorch's node name ("SortBackward0")."""

    __slots__ = ("torch_name",)
    saves_params = True
    zero_passes = False  # (a known-zero gradient still meets the freed check)


def saved_clone(x: Tensor, torch_name: str) -> Tensor:
    """x copied by a SavedClone node (see there)."""
    return SavedClone.apply(x, torch_name=torch_name)


def clone(x, layout: str | None = None) -> Tensor:
    """A C-contiguous copy; `layout` ("channels_last", memory_layout.py) lays it out in that
    memory format, "preserve_format" in the input's (PyTorch's clone())."""
    if layout is None:
        return Clone.apply(as_tensor(x))
    return Clone.apply(as_tensor(x), layout=layout)
