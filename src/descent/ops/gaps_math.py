"""PyTorch's math functions that descent lacked until 2026-12-04 (docs/torch_gaps_math.md).

Every public function defined here is a top-level `descent.<name>` (through `__all__`) and an
entry of Tensor's ops table (descent/ops/__init__.py), which the methods of
`descent.tensor_gap_methods_math.MathGapMethods2` call. The in-place forms (`x.acos_()`,
`x.eq_(y)`, ...) live in `gaps_math_inplace.py`; torch's top-level in-place functions
(`torch.exp_(x)`) are re-exported from there.

Most functions are compositions of descent's ops, so their gradients come from the ops they
are made of. Three small ops have their own derivative, each PyTorch's: `Frexp` (the mantissa,
d/dx = 2^-e), `Nextafter` (d/dx = 1 where x != other, d/dother = 0) and `ZeroGradient` (a value
whose derivative is 0: the angle of a real tensor, an input that beta=0 ignores).
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..autograd import Function
from ..grad_fn import show_as
from ..tensor import Tensor, get_default_dtype
from ..tensor_methods import beta_alpha_first
from ._common import as_tensor, check_devices, refuse_kinds, result_type, return_type
from .comparison import ge, gt, le, lt, ne
from .complex import angle_complex, conj
from .elementwise import cast
from .gaps_math_inplace import TOPLEVEL_INPLACE as _TOPLEVEL_INPLACE
from .gaps_math_inplace import ZeroGradient
from .gaps_math_samples import cumulative_trapezoid, gradient, histogramdd, trapezoid, trapz
from .half import rounds_once
from .linalg import integer_coefficients, matmul, outer, product
from .linalg_norm import vector_norm
from .linalg_spectral import svdvals
from .order import EvenlyShared, _select, median, refuse_no_kernel
from .reduce import sum
from .selection import _dim
from .shape import unsqueeze
from .shape_index import movedim
from .tie_order import all_nan_nanmedian_index
from .untracked import computed, guarded

__all__ = [
    "greater", "greater_equal", "less", "less_equal", "not_equal", "gcd", "lcm", "nextafter",
    "frexp", "angle", "isreal", "nanmedian", "vdot", "addmv", "addr", "unique_consecutive",
    "unravel_index", "chain_matmul", "frobenius_norm", "nuclear_norm", "matrix_rank",
    # from gaps_math_samples (top-level functions only, no Tensor methods):
    "trapezoid", "trapz", "cumulative_trapezoid", "gradient", "histogramdd",
]  # fmt: skip

# torch's aliases of the comparisons (torch.greater is torch.gt). Assigned, not defined, so the
# ops table keeps one function per comparison; the methods call `_ops.gt` and friends.
greater = gt
greater_equal = ge
less = lt
less_equal = le
not_equal = ne

FrexpResult = return_type("frexp", ["mantissa", "exponent"])
NanmedianResult = return_type("nanmedian", ["values", "indices"])


class Nextafter(Function):
    """d/dx nextafter(x, other) = 1 where x != other and 0 where they are equal (the result is
    then other itself); d/dother = 0. PyTorch's gradients, measured (torch 2.13)."""

    __slots__ = ("equal", "none")  # bool arrays: x == other, and all False of other's shape
    # (computed by forward from the values: saved slots, so that descent.compile does not
    # compare them between two recordings, which then never agreed in a training step)
    saved_slots = ("equal", "none")
    # PyTorch's NextafterBackward0 saves self and other (for either input's gradient): a
    # second backward raises, a constant other too
    saves_params = True
    native_bfloat16 = True  # one step of bfloat16's ulp (forward), not float32's rounded back

    def forward(self, x, other):
        xp = backend.get_array_module(x, other)
        self.equal = x == other
        self.none = xp.zeros(other.shape, bool)
        if x.dtype.kind == "V":  # bfloat16: NumPy's nextafter steps float32's ulp, rounded away
            return _nextafter_bits(x, other, xp)
        return xp.where(self.equal, other, xp.nextafter(x, other))  # (-0.0 to 0.0 is 0.0)

    def backward(self, gy, ops):
        # The engine sums each gradient back to its input's shape.
        return ops.where(self.equal, 0, gy), ops.where(self.none, gy, 0)


class Frexp(Function):
    """mantissa = x * 2^-e with e the (constant) exponent: d/dx = 2^-e (PyTorch's
    `grad / exponent.exp2()`)."""

    __slots__ = ("scale",)  # 2^-e in x's dtype, the whole of what backward needs
    # freed after backward, as PyTorch's FrexpBackward0 frees its saved exponent
    saved_slots = ("scale",)

    def forward(self, x):
        xp = backend.get_array_module(x)
        mantissa, exponent = xp.frexp(x)
        with np.errstate(over="ignore"):  # a subnormal's 2^-e overflows, as in PyTorch
            self.scale = xp.ldexp(xp.ones((), x.dtype), -exponent).astype(x.dtype)
        return mantissa

    def backward(self, gy, ops):
        return gy * self.scale


# ---------------------------------------------------------------------------------------------
# Elementwise functions


def _integer_operands(op: str, input, other):
    """Both operands as arrays of their promoted integer dtype (gcd and lcm are integer-only:
    PyTorch raises NotImplementedError for floating and bool dtypes)."""
    a = as_tensor(input)
    b = as_tensor(other, a)
    check_devices(op, a, b)
    dt = result_type(a, b)
    if dt.kind not in "iu":
        raise NotImplementedError(
            f'"{op}_cpu" not implemented for {dt} (shapes {tuple(a.shape)} and '
            f"{tuple(b.shape)}); {op} takes integer tensors: convert with .long()"
        )
    return a._data.astype(dt, copy=False), b._data.astype(dt, copy=False)


def _gcd_arrays(a, b):
    """PyTorch's Euclid (calc_gcd): |a| and |b|, then b % a with C's truncating remainder
    until a is 0. Vectorized: every lane steps until all are done (~log2 steps). |min int| is
    min int, as in C, so gcd(-2^63, 6) is -2 there, like PyTorch's (NumPy's gcd gives 2)."""
    xp = backend.get_array_module(a, b)
    with np.errstate(all="ignore"):
        a, b = xp.broadcast_arrays(xp.abs(a), xp.abs(b))
        while True:
            live = a != 0
            if not live.any():
                return b
            rem = xp.fmod(b, xp.where(live, a, 1))  # fmod on integers is C's %
            a, b = xp.where(live, rem, 0), xp.where(live, a, b)


def gcd(input, other) -> Tensor:
    """The greatest common divisor, elementwise (integers only; no gradient).

    Raises:
        NotImplementedError: a floating or bool dtype, as PyTorch.
    """
    a, b = _integer_operands("gcd", input, other)
    # (through untracked.computed: descent.compile replays it; it was frozen as a constant)
    ta = as_tensor(input)
    return computed(_gcd_kernel, (ta, as_tensor(other, ta)), (a.dtype,))


def _gcd_kernel(a, b, dt):
    return _gcd_arrays(a.astype(dt, copy=False), b.astype(dt, copy=False))


def lcm(input, other) -> Tensor:
    """The least common multiple, elementwise: |a / gcd(a, b) * b| with the dtype's wraparound
    (PyTorch's formula; 0 where gcd is 0). Integers only; no gradient."""
    a, b = _integer_operands("lcm", input, other)
    ta = as_tensor(input)  # (untracked.computed, as gcd)
    return computed(_lcm_kernel, (ta, as_tensor(other, ta)), (a.dtype,))


def _lcm_kernel(a, b, dt):
    a, b = a.astype(dt, copy=False), b.astype(dt, copy=False)
    xp = backend.get_array_module(a, b)
    g = _gcd_arrays(a, b)
    # C++ computes a / g * b of 8- and 16-bit integers in int (32 bits) and wraps only when the
    # result is stored; int32 and int64 wrap in the product.
    wide = np.int32 if g.dtype.itemsize < 4 else g.dtype
    with np.errstate(all="ignore"):
        q = a.astype(wide) // xp.where(g == 0, 1, g).astype(wide)  # exact: g divides a
        out = xp.abs(q * b.astype(wide))
    return xp.where(g == 0, 0, out).astype(g.dtype)


def _nextafter_bits(x, other, xp):
    """nextafter on a 16-bit float's bit pattern (bfloat16): one step of its own ulp, toward
    other; other itself where equal, nan where either is nan, the smallest subnormal (with
    other's sign) from zero."""
    x, other = xp.broadcast_arrays(x, other)
    bits = x.view(np.uint16).astype(np.int32)
    up = (x < other) == (x > 0)  # away from zero when moving outward
    step = xp.where(up, bits + 1, bits - 1)
    tiny = xp.where(other.view(np.uint16) >> 15, 0x8001, 0x0001)
    out = xp.where(x == 0, tiny, step).astype(np.uint16).view(x.dtype)
    out = xp.where(x == other, other, out)
    return xp.where((x != x) | (other != other), x + other, out)


def nextafter(input, other) -> Tensor:
    """The next floating-point value after input towards other (floating dtypes only).

    Raises:
        NotImplementedError: an integer or bool dtype, as PyTorch.
    """
    a = as_tensor(input)
    b = as_tensor(other, a)
    check_devices("nextafter", a, b)
    dt = result_type(a, b)
    if dt.kind not in "fV":
        raise NotImplementedError(
            f'"nextafter_cpu" not implemented for {dt} (shapes {tuple(a.shape)} and '
            f"{tuple(b.shape)}); nextafter takes floating tensors: convert with .float()"
        )
    return Nextafter.apply(cast(a, dt), cast(b, dt))


def frexp(input) -> tuple:
    """(mantissa, exponent) with input = mantissa * 2^exponent, |mantissa| in [0.5, 1)
    (exponent int32, as PyTorch). The mantissa is differentiable.

    Raises:
        RuntimeError: an integer or bool input, as PyTorch.
    """
    x = as_tensor(input)
    if x.dtype.kind not in "fV":
        raise RuntimeError(
            f"torch.frexp() only supports floating-point dtypes, got {x.dtype} (shape "
            f"{tuple(x.shape)}); convert with .float()"
        )
    exponent = computed(_frexp_exponent, (x,), ())  # (replayed by descent.compile)
    return FrexpResult(Frexp.apply(x), exponent)


def _frexp_exponent(a):
    return backend.get_array_module(a).frexp(a)[1].astype(np.int32)


def angle(input) -> Tensor:
    """The argument of a complex number (atan2(imag, real), ops/complex.py); of a real number: pi
    for negatives (-inf too), 0 for the rest (-0.0 too), nan for nan; integers give the default
    float dtype. Its derivative is 0 for real inputs (PyTorch's)."""
    x = as_tensor(input)
    if x._data.dtype.kind == "c":  # arg(z), with its gradient (ops/complex.py)
        return angle_complex(x)
    xp = backend.get_array_module(x._data)
    dt = x.dtype if x.dtype.kind in "fV" else get_default_dtype()
    a = x._data
    out = xp.where(a < 0, math.pi, 0.0).astype(dt)
    if a.dtype.kind in "fV":
        out = xp.where(xp.isnan(a), a, out)
    return AngleReal.apply(x, value=out)


class AngleReal(ZeroGradient):
    """angle of a real x: d/dx = 0 (ZeroGradient's zeros). PyTorch's AngleBackward0 saves
    self (its formula serves complex inputs too): the node counts as saving, so a second
    backward raises there."""

    saves_params = True


def _imag_is_zero(a):
    """isreal's kernel for a complex array (untracked.computed)."""
    return a.imag == 0


def isreal(input) -> Tensor:
    """True where the imaginary part is 0 (torch.isreal): everywhere for a real tensor."""
    x = as_tensor(input)
    if x._data.dtype.kind == "c":
        return computed(_imag_is_zero, (x,), ())  # (replayed by descent.compile)
    return Tensor._wrap(backend.get_array_module(x._data).ones(x.shape, bool))


# ---------------------------------------------------------------------------------------------
# Reductions


def nanmedian(input, dim=None, keepdim: bool = False):
    """The lower median of the non-nan values (torch.nanmedian); nan where all are nan.

    Without `dim` a 0-d tensor whose gradient is shared by the elements equal to it; with
    `dim` a `(values, indices)` namedtuple whose gradient goes to the selected element.
    """
    x = as_tensor(input)
    refuse_no_kernel("nanmedian", x, dim, "bc")
    xp = backend.get_array_module(x._data)
    if x.dtype.kind not in "fV":  # no nan: the median itself
        out = median(x, dim, keepdim)
        return out if dim is None else NanmedianResult(*out)
    if dim is None:
        # value and mask are data computed from x's values: `computed` shows descent.compile
        # how (ops/untracked.py), and EvenlyShared's parameters follow them at a replay
        value = computed(_nanmedian_value, (x,), ())
        mask = computed(_nanmedian_mask, (x, value), ())
        return show_as(EvenlyShared.apply(x, value=value._data, mask=mask._data),
                       "NanmedianBackward0", (x,))  # fmt: skip
    if x.ndim == 0:
        _dim(x, dim, "nanmedian")
        return NanmedianResult(x * 1, Tensor._wrap(xp.zeros((), np.int64)))
    d = _dim(x, dim, "nanmedian")
    n = x.shape[d]
    if n == 0:
        raise IndexError(f"nanmedian(): expected reduction dim {d} to have non-zero size")
    return _select(x, computed(_nanmedian_index, (x,), (d,)), d, keepdim, NanmedianResult)


def _nanmedian_index(a, d: int):
    """nanmedian's int64 index (..., 1, ...) along d of an array."""
    xp = backend.get_array_module(a)
    # A stable argsort puts the nans last; the lower median of the k non-nan values sits at
    # sorted position (k - 1) // 2. A row of nans only gets the index PyTorch's introselect
    # leaves at position 0 (tie_order.all_nan_nanmedian_index), not the first nan.
    order = xp.argsort(a, axis=d, kind="stable")
    k = (~xp.isnan(a)).sum(axis=d, keepdims=True)
    pos = xp.maximum(k - 1, 0) // 2
    index = xp.take_along_axis(order, pos, axis=d).astype(np.int64)
    return xp.where(k == 0, all_nan_nanmedian_index(a.shape[d]), index)


def _nanmedian_value(a):
    """nanmedian() of an array: the lower median of its non-nan values (nan when none)."""
    xp = backend.get_array_module(a)
    finite = a[~xp.isnan(a)]
    if finite.size == 0:  # empty or all nan: nan, its gradient shared by the nans
        return xp.asarray(np.nan, dtype=a.dtype)
    return xp.asarray(xp.sort(finite)[(finite.size - 1) // 2], dtype=a.dtype)


def _nanmedian_mask(a, value):
    """The elements that share nanmedian()'s gradient: those equal to it, or the nans."""
    return backend.get_array_module(a).isnan(a) if value != value else a == value


# ---------------------------------------------------------------------------------------------
# Products


def vdot(input, other) -> Tensor:
    """The dot product of two 1-D tensors of one dtype, the first conjugated (torch.vdot).

    Raises:
        RuntimeError: not both 1-D with the same size and dtype, as PyTorch.
    """
    a, b = as_tensor(input), as_tensor(other)
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(
            f"1D tensors expected, but got {a.ndim}D and {b.ndim}D tensors (shapes "
            f"{tuple(a.shape)} and {tuple(b.shape)}); flatten them first"
        )
    if a.dtype != b.dtype:
        raise RuntimeError(
            f"vdot : expected both vectors to have same dtype, but found {a.dtype} and "
            f"{b.dtype}; convert one with .to(dtype)"
        )
    if a.shape[0] != b.shape[0]:
        raise RuntimeError(
            f"inconsistent tensor size, expected tensor [{a.shape[0]}] and src [{b.shape[0]}] "
            "to have the same number of elements, but got different"
        )
    # (not on PyTorch's autocast list: keeps its dtype there); conj(a) . b for complex vectors
    out = product(conj(a) if a._data.dtype.kind == "c" else a, b, "vdot")
    return show_as(out, "VdotBackward0", (a, b))


def _shape(v) -> tuple:
    return tuple(v.shape) if isinstance(v, Tensor) else np.shape(v)


def _scaled_sum(input, prod, beta, alpha) -> Tensor:
    """beta * input + alpha * prod. beta == 0 ignores input's values, nans included, and gives
    it a zero gradient (PyTorch's)."""
    if alpha != 1:
        prod = prod * alpha
    if beta != 0:
        input = as_tensor(input, prod)
        return (input if beta == 1 else input * beta) + prod
    shape = np.broadcast_shapes(tuple(prod.shape), _shape(input))
    out = prod if tuple(prod.shape) == shape else prod.broadcast_to(shape)
    if isinstance(input, Tensor) and input.requires_grad:
        zeros = backend.get_array_module(input._data).zeros(input.shape, input._data.dtype)
        out = out + ZeroGradient.apply(input, value=zeros)
    return out


@beta_alpha_first(method=False)
@rounds_once  # one kernel in PyTorch: float16/bfloat16 rounds the result once
def addmv(input, mat, vec, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * (mat @ vec) (torch.addmv).

    Raises:
        RuntimeError: mat is not 2-D or vec not 1-D.
    """
    if mat.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(
            f"vector + matrix @ vector expected, got {len(_shape(input))}, {mat.ndim}, "
            f"{vec.ndim} (shapes {tuple(mat.shape)} and {tuple(vec.shape)})"
        )
    prod = product(mat, vec, "mv")  # (addmv is not on PyTorch's autocast list)
    if prod._data.dtype.kind in "iub":
        beta, alpha = integer_coefficients("addmv", prod, beta, alpha)
    # PyTorch's one node over (input, mat, vec)
    return show_as(_scaled_sum(input, prod, beta, alpha), "AddmvBackward0", (input, mat, vec))


@beta_alpha_first(method=False)
@rounds_once  # float16/bfloat16 in float32: the outer product's gradients are sums
def addr(input, vec1, vec2, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * outer(vec1, vec2) (torch.addr).

    Raises:
        RuntimeError: vec1 or vec2 is not 1-D.
    """
    for name, v in (("vec1", vec1), ("vec2", vec2)):
        if v.ndim != 1:
            raise RuntimeError(
                f"addr: Expected 1-D argument {name}, but got {v.ndim}-D (shape "
                f"{tuple(v.shape)}); flatten it first"
            )
    prod = outer(vec1, vec2)
    if prod._data.dtype.kind in "iub":
        return _integer_addr(input, prod, beta, alpha)
    return show_as(_scaled_sum(input, prod, beta, alpha), "AddrBackward0", (input, vec1, vec2))


def _integer_addr(input, prod: Tensor, beta, alpha) -> Tensor:
    """addr on integer or bool vectors, as PyTorch: float coefficients are refused; on bools
    beta * input + alpha * outer is (beta and input) or (alpha and outer), still bool."""
    for name, c in (("beta", beta), ("alpha", alpha)):
        if not isinstance(c, (bool, int, np.integer, np.bool_)):
            raise RuntimeError(
                f"addr: for integral input tensors, argument {name} must not be a floating "
                f"point number (got {c!r}), as in PyTorch"
            )
    if prod._data.dtype != np.bool_:
        return _scaled_sum(input, prod, beta, alpha)
    x = as_tensor(input, prod)
    # (through untracked.computed: descent.compile replays it; made on the arrays, it was a
    # constant frozen when the first two calls agreed)
    return computed(_bool_addr, (prod, x), (bool(alpha), bool(beta)))


def _bool_addr(prod, x, alpha, beta):
    """(alpha and prod) or (beta and x), broadcast to prod's shape: bool addr's kernel."""
    xp = backend.get_array_module(prod)
    out = prod.copy() if alpha else xp.zeros_like(prod)
    if beta:
        out = xp.logical_or(out, x.astype(bool))
    return out


def chain_matmul(*matrices) -> Tensor:
    """The product of 2-D matrices, left to right (torch.chain_matmul, deprecated there in
    favour of linalg.multi_dot).

    Raises:
        RuntimeError: no matrix, or one that is not 2-D.
    """
    if len(matrices) == 1 and isinstance(matrices[0], (list, tuple)):
        matrices = tuple(matrices[0])
    if not matrices:
        raise RuntimeError("chain_matmul(): Expected one or more matrices")
    for m in matrices:
        if m.ndim != 2:
            raise RuntimeError(
                f"chain_matmul(): Expected 2D tensors, got a {m.ndim}D tensor (shape "
                f"{tuple(m.shape)})"
            )
    out = matrices[0] * 1 if len(matrices) == 1 else matrices[0]  # one matrix: a copy
    for m in matrices[1:]:
        out = matmul(out, m)
    return out


def frobenius_norm(input, dim, keepdim: bool = False) -> Tensor:
    """sqrt of the sum of squares over `dim` (torch.frobenius_norm; dim is required)."""
    return vector_norm(as_tensor(input), 2, dim, keepdim)


def nuclear_norm(input, dim=None, keepdim: bool = False) -> Tensor:
    """The sum of singular values of the matrices over `dim` (the last two without it)
    (torch.nuclear_norm; `nuclear_norm(x, True)` is keepdim, as in PyTorch)."""
    x = as_tensor(input)
    if isinstance(dim, bool):
        dim, keepdim = None, dim
    d0, d1 = (x.ndim - 2, x.ndim - 1) if dim is None else (int(i) % x.ndim for i in dim)
    if x.ndim < 2:
        raise RuntimeError(
            f"nuclear_norm: Expected a tensor with 2 or more dimensions, got {x.ndim} (shape "
            f"{tuple(x.shape)})"
        )
    out = sum(svdvals(movedim(x, (d0, d1), (-2, -1))), -1)
    if keepdim:
        for d in sorted((d0, d1)):
            out = unsqueeze(out, d)
    return out


def matrix_rank(input, *args, **kwargs):
    """Removed in PyTorch 1.9+; raises as torch.matrix_rank does (use linalg.matrix_rank)."""
    raise RuntimeError(
        "This function was deprecated since version 1.9 and is now removed.\nPlease use the "
        "`torch.linalg.matrix_rank` function instead. The parameter 'symmetric' was renamed in "
        "`torch.linalg.matrix_rank()` to 'hermitian'."
    )


# ---------------------------------------------------------------------------------------------
# Consecutive runs, indices


def unique_consecutive(input, return_inverse: bool = False, return_counts: bool = False,
                       dim=None):  # fmt: skip
    """The first element of each run of equal consecutive values (of the flattened input, or
    of slices along `dim`), with each element's run number and the run lengths on request
    (torch.unique_consecutive). Data only: no gradient. nan != nan, so nans never merge."""
    x = as_tensor(input)
    refuse_kinds("unique", x, "c")  # no PyTorch kernel
    a = x._data
    d = None
    if dim is not None:
        d = _dim(x, dim, "unique_consecutive")
        if 0 in a.shape and a.shape[d] != 0:
            raise RuntimeError(
                "There are 0 sized dimensions, and they aren't selected, so unique cannot be "
                f"applied (shape {tuple(a.shape)}, dim {d}); select a dim of size 0 or reshape"
            )
        if a.shape.count(0) > 1:  # (PyTorch's _unique_dim_cpu_impl, as unique's)
            raise RuntimeError(
                "Number of zero sized dimensions is more than one, so unique cannot be applied "
                f"(unique_consecutive: shape {tuple(a.shape)}, dim {d}); reshape to one 0-size "
                "dimension"
            )
    # (their shapes depend on x's values: guarded for descent.compile, ops/untracked.py)
    out = guarded(_unique_consecutive_kernel, (x,),
                  (bool(return_inverse), bool(return_counts), d), "unique_consecutive")  # fmt: skip
    return out[0] if len(out) == 1 else out


def _unique_consecutive_kernel(a, return_inverse: bool, return_counts: bool, d) -> tuple:
    """unique_consecutive's results as arrays (untracked.guarded's kernel)."""
    xp = backend.get_array_module(a)
    if d is None:
        rows = a.reshape(-1, 1)
    else:
        rest = int(np.prod([s for i, s in enumerate(a.shape) if i != d], dtype=np.int64))
        rows = xp.moveaxis(a, d, 0).reshape(a.shape[d] if a.ndim else 1, rest)
    n = rows.shape[0]
    start = xp.ones(n, bool)
    if n > 1:
        start[1:] = (rows[1:] != rows[:-1]).any(axis=1)
    if d is None:
        values = a.reshape(-1)[start]
    else:
        moved = xp.moveaxis(a, d, 0)[start]
        values = xp.moveaxis(moved, 0, d)
    out = [xp.ascontiguousarray(values)]
    if return_inverse:
        inverse = xp.cumsum(start).astype(np.int64) - 1
        out.append(inverse.reshape(a.shape) if d is None else inverse)
    if return_counts:
        first = xp.flatnonzero(start)
        out.append(xp.diff(xp.concatenate([first, xp.asarray([n])])).astype(np.int64))
    return tuple(out)


def unravel_index(indices, shape) -> tuple:
    """The coordinates of flat indices in an array of `shape`, one int64 tensor per dimension
    (torch.unravel_index).

    Raises:
        TypeError: floating indices. RuntimeError: an index out of bounds.
    """
    t = as_tensor(indices)
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    if t.dtype.kind not in "iu":
        raise TypeError(f"expected 'indices' to be integer dtype, but got {t.dtype}")
    if any(s < 0 for s in shape):
        raise RuntimeError(f"'shape' cannot have negative values, but got {shape}")
    size = int(np.prod(shape, dtype=np.int64))
    a = backend.as_numpy(t._data).astype(np.int64)
    if a.size and (a.min() < -size or a.max() >= size):
        raise RuntimeError(f"'indices' must be in range [-{size}, {size - 1}] for shape {shape}")
    # Each coordinate through untracked.computed: descent.compile replays it on each call's
    # indices (made on the arrays, they were constants frozen when two calls agreed)
    return tuple(computed(_unravel_coord, (t,), (shape, k)) for k in range(len(shape)))


def _unravel_coord(indices, shape, k):
    """Coordinate k of the flat `indices` in an array of `shape` (unravel_index's kernel)."""
    size = int(np.prod(shape, dtype=np.int64))
    a = backend.as_numpy(indices).astype(np.int64)
    a = np.where(a < 0, a + size, a)
    c = np.unravel_index(a, shape)[k]
    return backend.get_array_module(indices).asarray(c, dtype=np.int64)


__all__ += sorted(_TOPLEVEL_INPLACE)
globals().update(_TOPLEVEL_INPLACE)
