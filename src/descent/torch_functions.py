"""PyTorch's signatures for a few `descent.*` functions whose ops take fewer arguments:
`descent.add(input, other, alpha=)`, `descent.sub(input, other, alpha=)` and `descent.t`; and
more of torch's top-level functions written as compositions of descent's ops (`hstack`,
`addcmul`, `baddbmm`, `broadcast_tensors`, `triu_indices`, ...: see the second half).

The ops (`descent.ops.arithmetic.add`/`sub`) stay the two-operand functions that the `+` and `-`
operators and Tensor methods call on the hot path; these wrappers are what `descent.add` and
`descent.sub` name, and only scale `other` first when `alpha` is not 1 (one extra node, as in
PyTorch's `add(x, y, alpha=a)` = `x + a * y`).
"""

from __future__ import annotations

import math

import numpy as np

from . import amp, backend
from .errors import DescentError, DimensionError, DtypeError
from .grad_fn import show_as as _show_as
from .hooks import composite
from .ops._common import (
    check_alpha,
    check_real_value,
    fill_int,
    half_value,
    refuse_kinds,
    result_type,
)
from .ops.arithmetic import add as _add
from .ops.arithmetic import scale, scaled_int
from .ops.arithmetic import sub as _sub
from .ops.elementwise import cast as _cast
from .ops.half import rounds_once
from .ops.linalg import integer_coefficients, product
from .ops.out_arg import write_out
from .ops.untracked import computed
from .tensor import Tensor
from .tensor_methods import _ops, beta_alpha_first, legacy_scalar_first, register_ops

__all__ = [
    "add", "addcdiv", "addcmul", "atleast_1d", "atleast_2d", "baddbmm", "broadcast_shapes",
    "broadcast_tensors", "clamp_max", "clamp_min", "column_stack", "e", "hstack", "inf", "logit",
    "nan", "pi", "ravel", "reciprocal", "relu_", "row_stack", "sigmoid_", "sub", "t",
    "take_along_dim", "tanh_", "tril_indices", "triu_indices", "vstack", "mv", "inner",
    "tensordot", "ger", "kron", "dist", "diff", "deg2rad", "rad2deg", "searchsorted", "bucketize",
    "isin",
]  # fmt: skip


def _integral(v) -> bool:
    """Whether an operand is integer-valued (an int/bool tensor or Python int/bool)."""
    if isinstance(v, Tensor):
        return v.dtype.kind in "iub"
    return np.asarray(v).dtype.kind in "iub"


def _scaled(name: str, input, other, alpha):
    """`other * alpha`, refusing a fractional alpha for integer operands as PyTorch does."""
    if type(alpha) is int and _is_bool(input) and _is_bool(other):
        alpha = bool(alpha)  # PyTorch casts alpha to the bool result: add(a, b, alpha=3) is a | b
    elif not (type(alpha) is int and alpha == 1):  # (the default: nothing to check)
        check_alpha(input, other, alpha)
    if alpha == 1:
        return other
    if isinstance(alpha, (float, np.floating)) and _integral(input) and _integral(other):
        raise RuntimeError(
            f"{name}: for integral input tensors, argument alpha must not be a floating point "
            f"number (got alpha={alpha}); convert the tensors to a float dtype first"
        )
    if name == "sub" and (_is_bool(input) or _is_bool(other)):
        return other  # (sub refuses a bool operand, as PyTorch: let it say so)
    if isinstance(other, Tensor) and other._data.dtype != (dt := result_type(input, other)):
        # PyTorch scales `other` in the result's dtype: uint8 255 * 2 with a float input is
        # 510 (not 254, wrapped in uint8), and a bool other with an alpha keeps input's dtype
        other = _cast(other, dt)
    if isinstance(other, Tensor) and other._data.dtype == _F16:
        # PyTorch converts alpha to float16 (its overflow error beyond 65504) and computes
        # input + alpha * other from that rounded alpha (not in float32 as other * 0.1 does)
        alpha = float(np.float16(half_value(alpha)))
    if type(other) is int and isinstance(input, Tensor):
        return scaled_int(input._data.dtype, other, alpha)  # (PyTorch's casts: ops/arithmetic)
    # one node that frees nothing, as PyTorch's AddBackward0 with alpha (ops/arithmetic.Scale)
    return scale(other, alpha) if isinstance(other, Tensor) else other * alpha


_F16 = np.dtype(np.float16)


def _is_bool(v) -> bool:
    return v._data.dtype.kind == "b" if isinstance(v, Tensor) else isinstance(v, bool)


def add(input, other, *args, alpha=1, out=None) -> Tensor:
    """input + alpha * other (torch.add); `alpha` scales `other` only; `out=` as PyTorch's.
    `torch.add(input, alpha, other)`, the deprecated scalar-first overload, works too."""
    if args:
        alpha, (other,) = legacy_scalar_first("add", other, args, 1)
    if out is not None:
        return write_out(_add(input, _scaled("add", input, other, alpha)), out, "add",
                         inputs=(input, other))  # fmt: skip
    return _add(input, _scaled("add", input, other, alpha))


def sub(input, other, *args, alpha=1, out=None) -> Tensor:
    """input - alpha * other (torch.sub); `out=` as PyTorch's (and `sub(input, alpha, other)`)."""
    if args:
        alpha, (other,) = legacy_scalar_first("sub", other, args, 1)
    if out is not None:
        return write_out(_sub(input, _scaled("sub", input, other, alpha)), out, "sub",
                         inputs=(input, other))  # fmt: skip
    return _sub(input, _scaled("sub", input, other, alpha))


def t(input: Tensor) -> Tensor:
    """The transpose of a matrix; a 0-d or 1-D tensor is returned as it is (torch.t).

    Raises:
        RuntimeError: input has more than 2 dimensions (use transpose or mT).
    """
    return input.t()


# ---------------------------------------------------------------------------------------------
# More of torch's top-level functions, as compositions of descent's ops (no derivative of their
# own: gradients come from the ops they are made of).

inf = float("inf")
nan = float("nan")
pi = math.pi
e = math.e


def clamp_min(input: Tensor, min) -> Tensor:
    """max(input, min) elementwise (torch.clamp_min)."""
    return _ops.clamp(input, min, None)


def clamp_max(input: Tensor, max) -> Tensor:
    """min(input, max) elementwise (torch.clamp_max)."""
    return _ops.clamp(input, None, max)


def reciprocal(input: Tensor) -> Tensor:
    """1 / input (integers give the default float dtype, as in PyTorch)."""
    return input.reciprocal()


def ravel(input: Tensor) -> Tensor:
    """input flattened to 1-D (torch.ravel): a view of a contiguous input, else a copy (never a
    strided view of a non-contiguous one, as PyTorch's contiguous().view(-1))."""
    return _ops.reshape(input.contiguous(), -1)


def relu_(input: Tensor) -> Tensor:
    return input.relu_()


def sigmoid_(input: Tensor) -> Tensor:
    return input.sigmoid_()


def tanh_(input: Tensor) -> Tensor:
    return input.tanh_()


def logit(input: Tensor, eps: float | None = None) -> Tensor:
    """log(p / (1 - p)), with p clamped to [eps, 1 - eps] when eps is given (torch.logit; one
    node, descent.ops.special.Logit, with PyTorch's gradient edges)."""
    return _ops.logit(input, eps)


def atleast_1d(*tensors):
    """Each tensor with at least one dimension (a 0-d tensor becomes shape (1,))."""
    out = [t if t.ndim >= 1 else _ops.reshape(t, 1) for t in _flat(tensors)]
    return out[0] if len(out) == 1 else tuple(out)


def atleast_2d(*tensors):
    """Each tensor with at least two dimensions (1-D (n,) becomes (1, n))."""
    # (n,) -> (1, n) by unsqueeze, as PyTorch's (UnsqueezeBackward0); () by a reshape
    out = [t if t.ndim >= 2 else _ops.unsqueeze(t, 0) if t.ndim == 1 else _ops.reshape(t, 1, 1)
           for t in _flat(tensors)]  # fmt: skip
    return out[0] if len(out) == 1 else tuple(out)


def _flat(tensors) -> list:
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        return list(tensors[0])
    return list(tensors)


def _non_empty(tensors, op: str) -> None:
    if len(tensors) == 0:
        raise DescentError(f"{op}: expects a non-empty TensorList; pass at least one tensor")


def hstack(tensors) -> Tensor:
    """Concatenate along dim 1 (dim 0 for 1-D tensors), as torch.hstack."""
    _non_empty(tensors, "hstack")
    ts = atleast_1d(*tensors) if len(tensors) > 1 else [atleast_1d(tensors[0])]
    return _ops.cat(list(ts), 0 if ts[0].ndim == 1 else 1)


def vstack(tensors) -> Tensor:
    """Concatenate along dim 0 after making every tensor at least 2-D (torch.vstack)."""
    _non_empty(tensors, "vstack")
    ts = atleast_2d(*tensors) if len(tensors) > 1 else [atleast_2d(tensors[0])]
    return _ops.cat(list(ts), 0)


row_stack = vstack


def column_stack(tensors) -> Tensor:
    """Stack 0-d/1-D tensors as columns and concatenate 2-D ones along dim 1."""
    cols = [_ops.reshape(t, -1, 1) if t.ndim < 2 else t for t in tensors]
    return _ops.cat(cols, 1)


def _pointwise_value(name: str, input, tensor1, tensor2, value):
    """`value` as PyTorch's addcmul/addcdiv use it: converted to the result's dtype first, so
    an integer result truncates a float value (value=1.9 multiplies by 1) and a real result
    refuses a complex one; PyTorch has no bool addcmul and no integer addcdiv."""
    dt = result_type(input, tensor1, tensor2)
    if name == "addcdiv" and all(isinstance(t, Tensor) and t._data.dtype.kind in "biu"
                                 for t in (tensor1, tensor2)):  # fmt: skip
        raise DescentError(
            "addcdiv: integer division with addcdiv is no longer supported (PyTorch's "
            "RuntimeError); for a true division convert tensor1 or tensor2 to float, for an "
            "integer one use input + value * torch.div(tensor1, tensor2, rounding_mode='trunc')"
        )
    if name == "addcmul" and dt.kind == "b":
        refuse_kinds("addcmul", tensor1 if isinstance(tensor1, Tensor) else input, "b")
    check_real_value(name, Tensor._wrap(np.zeros((), dt)), value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        fill_int(value, dt)  # PyTorch's checked conversion to the result's dtype (overflow)
    if dt.kind in "iu" and isinstance(value, float) and math.isfinite(value):
        value = int(value)  # C++'s conversion: toward zero
    return value


def _in_result_dtype(input, tensor1, tensor2) -> tuple:
    """tensor1 and tensor2 cast to the dtype of the whole addcmul/addcdiv, as PyTorch's one
    kernel computes the product in it (uint8 255 * 255 added to an int16 input is 65025,
    wrapped to int16, not 1 from a uint8 product)."""
    dt = result_type(input, tensor1, tensor2)
    return tuple(_cast(t, dt) if isinstance(t, Tensor) else t for t in (tensor1, tensor2))


@rounds_once  # one kernel in PyTorch: bfloat16 rounds the result once
def addcmul(input: Tensor, tensor1, tensor2=None, *args, value=1) -> Tensor:
    """input + value * tensor1 * tensor2 (torch.addcmul)."""
    if args:  # addcmul(input, value, tensor1, tensor2), deprecated
        value, (tensor1, tensor2) = legacy_scalar_first("addcmul", tensor1, (tensor2, *args), 2)
    value = _pointwise_value("addcmul", input, tensor1, tensor2, value)
    t1, t2 = _in_result_dtype(input, tensor1, tensor2)
    out = _add(input, t1 * t2 * value if value != 1 else t1 * t2)
    return _show_as(out, "AddcmulBackward0", (input, tensor1, tensor2))  # (PyTorch's one node)


@rounds_once  # one kernel in PyTorch: bfloat16 rounds the result once
def addcdiv(input: Tensor, tensor1, tensor2=None, *args, value=1) -> Tensor:
    """input + value * tensor1 / tensor2 (torch.addcdiv)."""
    if args:  # addcdiv(input, value, tensor1, tensor2), deprecated
        value, (tensor1, tensor2) = legacy_scalar_first("addcdiv", tensor1, (tensor2, *args), 2)
    value = _pointwise_value("addcdiv", input, tensor1, tensor2, value)
    t1, t2 = _in_result_dtype(input, tensor1, tensor2)
    out = _add(input, t1 / t2 * value if value != 1 else t1 / t2)
    return _show_as(out, "AddcdivBackward0", (input, tensor1, tensor2))


@beta_alpha_first(method=False)  # torch.baddbmm(beta, input, [alpha,] b1, b2), deprecated
@rounds_once  # one kernel in PyTorch: float16/bfloat16 rounds the result once
@composite("aten.baddbmm")  # one op for descent.utils.flop_counter
def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * (batch1 @ batch2), batched (torch.baddbmm; beta=0 ignores
    input, NaNs included, as PyTorch does)."""
    if batch1.ndim != 3 or batch2.ndim != 3 or batch1.shape[0] != batch2.shape[0]:
        raise DescentError(
            f"baddbmm: expects two 3-D batches with the same batch size, got shapes "
            f"{tuple(batch1.shape)} and {tuple(batch2.shape)}"
        )
    if amp._depth:  # on PyTorch's autocast list: the three inputs in the low dtype
        if isinstance(input, Tensor):
            input, batch1, batch2 = amp._lower(input, batch1, batch2)
        else:  # a number: broadcast as it is
            batch1, batch2 = amp._lower(batch1, batch2)
    prod = product(batch1, batch2, "baddbmm")
    if prod._data.dtype.kind in "iub":
        beta, alpha = integer_coefficients("baddbmm", prod, beta, alpha)
    if alpha != 1:
        prod = prod * alpha
    out = prod if beta == 0 else _add(input if beta == 1 else input * beta, prod)
    return _show_as(out, "BaddbmmBackward0", (input, batch1, batch2))


def broadcast_shapes(*shapes) -> tuple:
    """The shape the given shapes broadcast to (torch.broadcast_shapes)."""
    shapes = [(s,) if isinstance(s, int) else tuple(s) for s in shapes]
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise RuntimeError(f"broadcast_shapes: shapes {shapes} cannot be broadcast") from None


def broadcast_tensors(*tensors) -> tuple:
    """The tensors broadcast to one shape (views, differentiable)."""
    shape = broadcast_shapes(*(tuple(t.shape) for t in tensors))
    return tuple(t if tuple(t.shape) == shape else _ops.broadcast_to(t, shape) for t in tensors)


def take_along_dim(input: Tensor, indices: Tensor, dim: int | None = None) -> Tensor:
    """Values at `indices` along dim (torch.take_along_dim; dim=None: of the flattened input)."""
    # (dim=None: PyTorch flattens and gathers, and gather takes int32 indices too)
    takes = (np.int64,) if dim is not None else (np.int64, np.int32)
    if isinstance(indices, Tensor) and indices._data.dtype not in takes:
        raise DtypeError(  # PyTorch's take_along_dim takes int64 indices only (gather: int32 too)
            f"take_along_dim: dtype of indices should be int64 (Long) but got {indices.dtype} "
            f"(shape {tuple(indices.shape)}); convert with indices.long()"
        )
    if dim is None:
        return _ops.take_along_axis(_ops.reshape(input, -1), _ops.reshape(indices, -1), 0)
    nd = max(input.ndim, 1)
    if not -nd <= dim < nd:  # (the modulo below would wrap it silently)
        raise DimensionError(
            f"take_along_dim: dimension out of range (expected to be in range of [{-nd}, "
            f"{nd - 1}], but got {dim})"
        )
    if indices.ndim != input.ndim:  # (PyTorch's RuntimeError; an IndexError from the shapes)
        raise DescentError(
            f"take_along_dim: input and indices should have the same number of dimensions, "
            f"but got {input.ndim} dimensions for input (shape {tuple(input.shape)}), and "
            f"{indices.ndim} dimensions for indices (shape {tuple(indices.shape)})"
        )
    shape = broadcast_shapes(
        tuple(1 if i == dim % input.ndim else s for i, s in enumerate(input.shape)),
        tuple(1 if i == dim % input.ndim else s for i, s in enumerate(indices.shape)),
    )
    d = dim % input.ndim
    in_shape = shape[:d] + (input.shape[d],) + shape[d + 1 :]
    ix_shape = shape[:d] + (indices.shape[d],) + shape[d + 1 :]
    return _ops.take_along_axis(
        _ops.broadcast_to(input, in_shape), _ops.broadcast_to(indices, ix_shape), d
    )


def _indices(np_fn, row: int, col: int, offset: int) -> Tensor:
    r, c = np_fn(row, offset, col)
    return Tensor._wrap(np.stack([r, c]).astype(np.int64))


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None) -> Tensor:
    """The (2, N) row/column indices of the upper triangle (torch.triu_indices)."""
    out = _indices(np.triu_indices, row, col, offset)
    return out if dtype is None and device is None else out.to(device=device, dtype=dtype)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None) -> Tensor:
    """The (2, N) row/column indices of the lower triangle (torch.tril_indices)."""
    out = _indices(np.tril_indices, row, col, offset)
    return out if dtype is None and device is None else out.to(device=device, dtype=dtype)


def mv(input: Tensor, vec: Tensor) -> Tensor:
    """Matrix @ vector (torch.mv)."""
    if input.ndim != 2 or getattr(vec, "ndim", None) != 1:
        raise DescentError(
            f"mv: expects a 2-D matrix and a 1-D vector, got shapes {tuple(input.shape)} and "
            f"{tuple(getattr(vec, 'shape', ()))}; use matmul (@) for other shapes"
        )
    return product(input, vec, "mv")


def _contract(a: Tensor, b: Tensor, n: int) -> Tensor:
    """Sum over the last n dims of a and the first n of b, as one matmul."""
    left, right = tuple(a.shape[: a.ndim - n]), tuple(b.shape[n:])
    k = math.prod(a.shape[a.ndim - n :])
    if amp._depth and math.prod(left) == 1 and math.prod(right) == 1:
        # PyTorch computes a (1, k) x (k, 1) contraction as a dot product, on no autocast
        # list: float32 in a float16 region (inner(v, v), tensordot(A, A, 2); before
        # 2026-12-07 descent's matmul returned float16)
        prod = _ops.dot(_ops.reshape(a, k), _ops.reshape(b, k))
        return _ops.reshape(prod, *(left + right)) if left + right else prod
    # (explicit sizes: a -1 is ambiguous when a dimension is 0)
    prod = _ops.matmul(_ops.reshape(a, math.prod(left), k), _ops.reshape(b, k, math.prod(right)))
    return _ops.reshape(prod, *(left + right)) if left + right else _ops.reshape(prod, ())


def inner(input: Tensor, other: Tensor) -> Tensor:
    """Sum of products over the last dimension of both (torch.inner)."""
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    return _contract(input, _ops.movedim(other, -1, 0), 1)


def tensordot(a: Tensor, b: Tensor, dims=2) -> Tensor:
    """Sum over the last `dims` dimensions of a and the first of b, or over the listed pairs
    `dims=([a dims], [b dims])` (torch.tensordot)."""
    if isinstance(dims, int):
        n = dims
        if n < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={n}")
        if n > a.ndim or n > b.ndim:
            raise RuntimeError(
                f"tensordot expects dims < ndim_a or ndim_b, but got dims={n} (shapes "
                f"{tuple(a.shape)} and {tuple(b.shape)})"
            )
    else:
        da, db = ([d] if isinstance(d, int) else list(d) for d in dims)
        da = [d % a.ndim for d in da]
        db = [d % b.ndim for d in db]
        a = _ops.permute(a, *[d for d in range(a.ndim) if d not in da], *da)
        b = _ops.permute(b, *db, *[d for d in range(b.ndim) if d not in db])
        n = len(da)
    if tuple(a.shape[a.ndim - n :]) != tuple(b.shape[:n]):
        a, b = _broadcast_contracted(a, b, n)
    return _contract(a, b, n)


def _broadcast_contracted(a: Tensor, b: Tensor, n: int):
    """PyTorch's tensordot lets a contracted dimension of size 1 meet any size: the other side
    is summed over it first (sum_k a[0] b[k] = a[0] sum_k b[k]); other sizes must match."""
    for i, (sa, sb) in enumerate(zip(a.shape[a.ndim - n :], b.shape[:n])):
        if sa == sb:
            continue
        if sa == 1:
            b = _ops.sum(b, i, keepdims=True, dtype=_own_int(b))
        elif sb == 1:
            a = _ops.sum(a, a.ndim - n + i, keepdims=True, dtype=_own_int(a))
        else:
            raise RuntimeError(
                f"tensordot: contracted dimensions need to match, but a has size {sa} and b "
                f"size {sb} in contracted pair {i} (shapes {tuple(a.shape)} and "
                f"{tuple(b.shape)} after moving the contracted dims together)"
            )
    return a, b


def _own_int(t: Tensor):
    """An integer tensor's dtype (a sum inside tensordot keeps uint8, as PyTorch's product
    does; a plain sum would be int64), None otherwise."""
    return t.dtype if t._data.dtype.kind in "iu" else None


def ger(input: Tensor, vec2: Tensor) -> Tensor:
    """Outer product of two vectors (torch.ger, torch.outer)."""
    return _ops.outer(input, vec2)


def kron(input: Tensor, other: Tensor) -> Tensor:
    """Kronecker product (torch.kron), as a broadcast product reshaped."""
    nd = max(input.ndim, other.ndim)
    if nd == 0:
        return input * other
    ash = (1,) * (nd - input.ndim) + tuple(input.shape)
    bsh = (1,) * (nd - other.ndim) + tuple(other.shape)
    # (a0, 1, a1, 1, ...) * (1, b0, 1, b1, ...) -> (a0, b0, a1, b1, ...) -> (a0 * b0, a1 * b1, ...)
    a = _ops.reshape(input, *[s for d in ash for s in (d, 1)])
    b = _ops.reshape(other, *[s for d in bsh for s in (1, d)])
    return _ops.reshape(a * b, *[x * y for x, y in zip(ash, bsh)])


def dist(input: Tensor, other: Tensor, p: float = 2) -> Tensor:
    """The p-norm of input - other (torch.dist)."""
    out = _ops.norm(_ops.reshape(input - other, -1), p)
    return _show_as(out, "DistBackward0", (input, other))  # (PyTorch's one node)


def diff(input: Tensor, n: int = 1, dim: int = -1, prepend=None, append=None) -> Tensor:
    """n-th forward difference along dim (torch.diff), with optional prepend/append tensors."""
    x = input
    if x.ndim == 0:
        raise DescentError("diff expects input to be at least one-dimensional (got a 0-d tensor)")
    if n < 0:
        raise RuntimeError(f"diff: order must be non-negative but got {n}")
    if n == 0:  # a copy of the input: PyTorch ignores prepend/append then
        return _ops.clone(x)
    if prepend is not None or append is not None:
        parts = [p for p in (prepend, x, append) if p is not None]
        x = _ops.cat(parts, dim)
    for _ in range(n):
        length = max(x.shape[dim] - 1, 0)  # an empty dim stays empty, as in PyTorch
        hi, lo = _ops.narrow(x, dim, min(1, length), length), _ops.narrow(x, dim, 0, length)
        # bool tensors differ by logical xor (PyTorch's diff; `-` refuses bools)
        x = _ops.ne(hi, lo) if x._data.dtype == np.bool_ else hi - lo
    return x


def deg2rad(input: Tensor) -> Tensor:
    refuse_kinds("deg2rad", input, "c", "deg2rad is not supported for complex tensors")
    out = scale(input, math.pi / 180.0)  # mul.Scalar: nothing freed (arithmetic.Scale)
    return _show_as(out, "Deg2RadBackward0", (input,))


def rad2deg(input: Tensor) -> Tensor:
    refuse_kinds("rad2deg", input, "c", "rad2deg is not supported for complex tensors")
    return _show_as(scale(input, 180.0 / math.pi), "Rad2DegBackward0", (input,))


def searchsorted(sorted_sequence: Tensor, input, *, right: bool = False, side=None,
                 out_int32: bool = False, sorter=None) -> Tensor:  # fmt: skip
    """Indices where `input` would be inserted to keep each row sorted (torch.searchsorted;
    no gradient)."""
    side = side or ("right" if right else "left")
    if sorted_sequence.ndim == 0:
        raise DescentError("torch.searchsorted(): boundaries tensor should have positive "
                           "dimension, but got 0 dimension")  # fmt: skip
    if not isinstance(input, Tensor) and sorted_sequence.ndim != 1:
        raise DescentError(
            f"torch.searchsorted(): input value can be a scalar only when boundaries tensor "
            f"dimension is 1, but we got boundaries tensor dim({sorted_sequence.ndim})"
        )
    rows = sorted_sequence.shape[:-1]
    if isinstance(input, Tensor) and len(rows) and (input.ndim != len(rows) + 1
                                                    or input.shape[:-1] != rows):  # fmt: skip
        raise DescentError(
            f"torch.searchsorted(): boundaries tensor should be 1 dimension or the first N-1 "
            f"dimensions of boundaries tensor and input value tensor must match, but we got "
            f"boundaries tensor {list(sorted_sequence.shape)} and input value tensor "
            f"{list(input.shape)}"
        )
    values = input if isinstance(input, Tensor) else Tensor._wrap(np.asarray(input))
    # PyTorch searches in the operands' common dtype (int32 values among float16 boundaries
    # are rounded to float16 first; a Python float among integer boundaries makes it float32,
    # a float among float32 ones is rounded to float32); it has no bool or complex kernel,
    # which runs for any values but empty ones (empty boundaries included)
    dt = result_type(sorted_sequence, input)
    if dt.kind in "bc" and values._data.size:
        refuse_kinds("searchsorted", Tensor._wrap(np.empty(0, dt)), "bc")
    # The positions are data computed from the values: `computed` shows descent.compile how
    # (ops/untracked.py)
    inputs = (sorted_sequence, values) + ((sorter,) if sorter is not None else ())
    out = computed(_searchsorted, inputs, (side, np.dtype(dt), bool(out_int32)))
    return out if sorted_sequence.device == "cpu" else out.to(sorted_sequence.device)


def _searchsorted(seq, vals, *rest):
    """searchsorted's positions of arrays: (seq, vals[, sorter], side, dtype, out_int32)."""
    *sorter, side, dt, out_int32 = rest
    seq, vals = backend.as_numpy(seq), backend.as_numpy(vals)
    with np.errstate(over="ignore", invalid="ignore"):
        seq, vals = seq.astype(dt, copy=False), vals.astype(dt, copy=False)
    if seq.dtype.kind == "V":  # bfloat16: compared in float32 (ml_dtypes misorders nan)
        seq, vals = seq.astype(np.float32), vals.astype(np.float32)
    if sorter:
        seq = np.take_along_axis(seq, backend.as_numpy(sorter[0]), -1)
    if seq.dtype.kind == "f" and seq.size and np.isnan(seq).any():
        idx = _search_with_nan(seq, vals, side == "right")
    elif seq.ndim == 1:
        idx = np.searchsorted(seq, vals, side=side)
    else:
        # (explicit row counts: a -1 is ambiguous when a dimension is 0)
        nrows = math.prod(seq.shape[:-1])
        rows = seq.reshape(nrows, seq.shape[-1])
        vrows = vals.reshape(nrows, vals.shape[-1])
        idx = [np.searchsorted(r, v, side=side) for r, v in zip(rows, vrows)]
        idx = np.stack(idx).reshape(vals.shape) if nrows else np.zeros(vals.shape, np.int64)
    return np.asarray(idx, dtype=np.int32 if out_int32 else np.int64)


def _search_with_nan(seq, vals, right: bool):
    """PyTorch's binary search, step for step, for a sequence holding nan (NumPy sorts nan
    last and searches accordingly; PyTorch's kernel moves right whenever `mid >= value`
    (`mid > value` for right=True) is false, which is every comparison with a nan, so the
    answer depends on where the bisection meets the nans)."""
    n = seq.shape[-1]
    rows = seq.reshape(-1, n) if seq.ndim > 1 else seq.reshape(1, n)
    v = vals.reshape(rows.shape[0], -1) if seq.ndim > 1 else vals.reshape(1, -1)
    start = np.zeros(v.shape, np.int64)
    end = np.full(v.shape, n, np.int64)
    while True:
        active = start < end
        if not active.any():
            break
        mid = start + ((end - start) >> 1)
        at_mid = np.take_along_axis(rows, np.minimum(mid, n - 1), axis=1)
        with np.errstate(invalid="ignore"):
            right_half = ~(at_mid > v) if right else ~(at_mid >= v)
        start = np.where(active & right_half, mid + 1, start)
        end = np.where(active & ~right_half, mid, end)
    return start.reshape(vals.shape)


def bucketize(input, boundaries: Tensor, *, out_int32: bool = False, right: bool = False):
    """The bucket of each value among 1-D `boundaries` (torch.bucketize; no gradient)."""
    if isinstance(boundaries, Tensor) and boundaries.ndim != 1:
        raise DescentError(
            f"bucketize: boundaries tensor must be 1 dimension, but got shape "
            f"{tuple(boundaries.shape)}; use searchsorted for batched boundaries"
        )
    return searchsorted(boundaries, input, right=right, out_int32=out_int32)


def isin(elements, test_elements, *, assume_unique: bool = False, invert: bool = False):
    """Whether each element is among test_elements (torch.isin), a bool tensor."""
    for t in (elements, test_elements):
        if isinstance(t, Tensor):
            refuse_kinds("isin", t, "bc", "Unsupported input type encountered for isin()")
    el, te = (t if isinstance(t, Tensor) else Tensor._wrap(np.asarray(t))
              for t in (elements, test_elements))  # fmt: skip
    # (descent.compile records it: ops/untracked.py)
    return computed(_isin, (el, te), (bool(assume_unique), bool(invert)))


def _isin(el, te, assume_unique: bool, invert: bool):
    return np.isin(backend.as_numpy(el), backend.as_numpy(te), assume_unique=assume_unique,
                   invert=invert)  # fmt: skip


# Tensor methods of functions above (x.addcmul(a, b), x.kron(y), ...: docs/torch_gaps_math.md),
# reached through Tensor's ops table as the ops are.
register_ops({name: globals()[name] for name in (
    "addcdiv", "addcmul", "baddbmm", "deg2rad", "diff", "dist", "ger", "inner", "kron", "mv",
    "rad2deg", "take_along_dim",
)})  # fmt: skip
register_ops({"add_alpha": add, "sub_alpha": sub})  # Tensor.add/sub with an alpha
