"""The array backward namespace: what op backward code calls when it runs on raw arrays.

Every op's `backward(self, gy, ops)` is written ONCE against a namespace `ops` (see autograd.py,
"Two namespaces, one backward"). In an ordinary backward pass the engine hands the op raw
NumPy/CuPy arrays and `ops = array_namespace(xp)`: the array module's own functions (`ops.where`,
`ops.exp`, ...) plus the helpers below, which NumPy lacks under a name a backward can share with
the differentiable namespace. Nothing is recorded, so the pass runs at array speed.

Under `create_graph=True` the engine hands over Tensors and `ops` is `descent.ops.graph_backward`,
which offers every public function here under the same name and signature (minus the leading
`xp`, which `ArrayNamespace` binds), recorded as differentiable ops. `tests/test_engine.py`
checks that the two namespaces agree.

This module is part of the engine layer: it imports only NumPy and `descent.backend`.
"""

from __future__ import annotations

import functools

import numpy as np

from . import backend
from .opmath import HALF, in_float32, is_reduced


class ArrayNamespace:
    """`ops` for a backward on arrays of one array module `xp` (NumPy or CuPy).

    Attribute lookup tries this module's helpers first (binding `xp` as their first argument),
    then the array module itself. The result is cached on the instance, so after the first
    backward of a kind every `ops.name` is a plain attribute read.
    """

    is_graph = False  # backward code tests this where its array and Tensor forms differ

    def __init__(self, xp) -> None:
        self.xp = xp

    # Only called for names not yet cached (normal attribute lookup failed): at most once per
    # name and array module for the life of the process.
    def __getattr__(self, name: str):
        # Helpers first: `cumsum`, `softmax` exist in NumPy with other signatures, and backward code
        # must get the twin of the differentiable namespace's function.
        fn = _HELPERS.get(name)
        if fn is None and name == "where" and self.xp is not np:
            fn = _where_any_condition  # CuPy's where refuses a Python bool condition
        bound = functools.partial(fn, self.xp) if fn is not None else getattr(self.xp, name)
        setattr(self, name, bound)  # cache: later lookups skip __getattr__
        return bound


def _where_any_condition(xp, cond, x, y):
    """`xp.where` that also takes a Python bool as the condition (backward rules write
    `ops.where(True, 0, gy)` for zeros of gy's shape and dtype; NumPy takes it, CuPy does not)."""
    if not hasattr(cond, "dtype"):
        cond = xp.asarray(cond)
    return xp.where(cond, x, y)


_namespaces: dict = {}


def array_namespace(xp) -> ArrayNamespace:
    """The (cached) array backward namespace of array module `xp`."""
    ns = _namespaces.get(xp)
    if ns is None:
        ns = _namespaces[xp] = ArrayNamespace(xp)
    return ns


# ---------------------------------------------------------------------------------------------
# The helpers. Each takes the array module first; the differentiable twin in
# descent.ops.graph_backward has the same name and the remaining parameters.


def sum_to(xp, x, shape):
    """Sum `x` over the dimensions that broadcasting added or stretched, giving `shape`.

    The engine's one unbroadcast (autograd._engine_backward calls it for every gradient whose
    shape differs from its input's): leading dimensions that broadcasting added are summed
    away, and dimensions of size 1 in `shape` that were stretched are summed with keepdims.
    Only `.sum` and `.reshape` are used, which Tensors share, so the twin reuses this code.
    """
    # Broadcasting aligns shapes at the right: `lead` dimensions were prepended to the input.
    shape = tuple(shape)
    lead = x.ndim - len(shape)
    if lead < 0:
        raise ValueError(f"cannot sum shape {tuple(x.shape)} to {shape}")
    axes = list(range(lead))
    for i, n in enumerate(shape):
        if n == 1 and x.shape[lead + i] != 1:
            axes.append(lead + i)
        elif n != x.shape[lead + i]:
            raise ValueError(f"cannot sum shape {tuple(x.shape)} to {shape}")
    # One sum over all broadcast axes (keepdims keeps the stretched size-1 axes in place), then
    # a reshape drops the prepended ones. No sum at all when nothing was broadcast.
    if not axes:
        y = x
    elif x.dtype == np.float16:  # accumulated in float32 and rounded once, as PyTorch's sum
        y = x.astype(np.float32).sum(axis=tuple(axes), keepdims=True).astype(np.float16)
    else:
        y = x.sum(axis=tuple(axes), keepdims=True)
    if lead:
        y = y.reshape(shape)
    return y


def expand_reduced(xp, g, shape, axis, keepdims):
    """Broadcast a reduction's gradient `g` back to the input `shape` (a read-only view).

    `axis` is the reduction's sorted tuple of axes (None for all); without keepdims the
    reduced axes are first put back as size-1 dimensions."""
    # A read-only broadcast view: the gradient of a sum is not copied per element.
    if not keepdims and axis is not None:
        g = xp.expand_dims(g, axis)
    return xp.broadcast_to(g, shape)


def cumsum(xp, x, axis):
    """Cumulative sum along one axis (float16 accumulated in float32 and rounded once, as
    PyTorch's scan: NumPy's float16 running sum was 30x further from the float64 one)."""
    if x.dtype == HALF:
        return in_float32(xp.cumsum, x, axis=axis)
    return xp.cumsum(x, axis=axis)


def index_grad(xp, g, shape, index, basic):
    """zeros(shape) with `g` added at `index`; repeated advanced indices accumulate.

    A basic index (slices, integers) cannot repeat an element, so plain assignment is enough
    and much faster than a scatter-add."""
    if not basic and g.dtype == HALF:
        # Accumulated in float32 and rounded once, as PyTorch's index_put: NumPy's float16
        # add.at rounds each repeat (cummax's gradient, where a running maximum collects
        # thousands of terms, was 50x further from float64 than PyTorch's)
        return in_float32(index_grad, xp, g, shape, index, basic)
    # Fresh zeros: the gradient of the elements that were not read.
    out = xp.zeros(shape, dtype=g.dtype)
    if basic:
        out[index] = g
    else:
        backend.scatter_add(out, index, g)
    return out


def pieces_grad(xp, gs, shape, indices):
    """The gradient of x from the gradients `gs` of its pieces x[indices[k]] (split / chunk /
    unbind: basic indices that cover x once), as PyTorch's SplitBackward0 / UnbindBackward0:
    a cat (stack) of them, each copied into its place, zeros where a piece got none (None). A
    piece's -0.0 stays -0.0 (a sum of zero-padded pieces would give +0.0)."""
    got = [g for g in gs if g is not None]
    dtype = got[0].dtype if len(got) == 1 else xp.result_type(*[g.dtype for g in got])
    out = (xp.empty if len(got) == len(gs) else xp.zeros)(shape, dtype=dtype)
    for g, idx in zip(gs, indices):
        if g is not None:
            out[idx] = g
    return out


def sigmoid(xp, x):
    """1 / (1 + exp(-x)), split by sign so that exp never overflows:
    sigmoid(x) = 1/(1+e^-x) = e^x/(1+e^x)."""
    e = xp.exp(-xp.abs(x))
    return _select(xp, x >= 0, 1 / (1 + e), e / (1 + e))


_BLEND_UINT = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}


def _select(xp, c, a, b):
    """xp.where(c, a, b) for a bool c and two arrays of one float dtype, all of one shape. A
    large NumPy float32/float64 pair is blended bitwise (a's bits where c holds, b's elsewhere:
    the same bits as where's copy, nan payloads too) without a branch per element: NumPy's where
    mispredicts on a mixed condition (113 us for 64x512 float32 sigmoid signs, the blend 39)."""
    u = _BLEND_UINT.get(getattr(a, "dtype", None))
    if (
        u is None
        or xp is not np
        or type(a) is not np.ndarray
        or type(b) is not np.ndarray
        or a.dtype != b.dtype
        or a.size < 4096
        or not a.shape == b.shape == c.shape
    ):
        return xp.where(c, a, b)
    m = c.astype(u)
    np.negative(m, out=m)  # all ones where c holds
    res = np.empty_like(a)  # (an array of its own, as where's: NumPy may then reuse it in place
    out = res.view(u)  # in the next product, as before; a view changed a nan's sign there)
    np.bitwise_and(a.view(u), m, out=out)
    np.invert(m, out=m)
    np.bitwise_and(b.view(u), m, out=m)
    np.bitwise_or(out, m, out=out)
    return res


def sign(xp, x):
    """sign(x) with sign(nan) = 0, as descent's sign and PyTorch's sgn (NumPy's is nan): the
    twin of the differentiable namespace's sign, so a backward such as sign(x) * gy (abs, the
    1- and inf-norms) gives the same 0 at a nan in both passes."""
    s = xp.sign(x)
    return xp.where(s == s, s, 0) if s.dtype.kind in "fV" else s


def erf(xp, x):
    """The error function (SciPy's on NumPy, CuPy's own on a GPU; see backend.erf)."""
    return backend.erf(xp, x)


def softmax(xp, x, axis):
    """exp(x) / sum(exp(x)) along `axis`, with the maximum subtracted first (no overflow)."""
    m = x.max(axis=axis, keepdims=True)
    e = xp.exp(x - m)
    return e / e.sum(axis=axis, keepdims=True)


def cast(xp, x, dtype):
    """x converted to `dtype` (no copy when it already has it); complex to real keeps the real
    part (a real input's share of a complex gradient, PyTorch's rule)."""
    if x.dtype.kind == "c" and dtype.kind != "c":
        x = x.real
    return x.astype(dtype, copy=False)


def flip(xp, x, axis):
    """x reversed along `axis` (an int, a tuple, or None for all axes)."""
    return xp.flip(x, axis)


def roll(xp, x, shift, axis):
    """x shifted cyclically by `shift` along `axis`."""
    return xp.roll(x, shift, axis)


def tile_grad(xp, g, in_shape, reps):
    """Sum the copies that np.tile made back onto the original block, in PyTorch's order
    (repeat_backward): each leading axis that tile added is summed on its own (one rounding
    each in float16/bfloat16), then the gradient (..., r*n, ...) is viewed as (..., r, n, ...)
    on the axes with r != 1 and those r axes are summed in one reduction. Uses only reshape
    and sum."""
    nd = g.ndim
    lead = nd - len(in_shape)
    reps_full = (1,) * (nd - len(reps)) + tuple(reps)
    for _ in range(lead):
        g = _sum_opmath(xp, g, 0)
    split, axes = [], []
    # (r, n) per axis with r copies (np.tile lays the copies before the block), n alone else
    for r, n in zip(reps_full[lead:], in_shape):
        if r != 1:
            axes.append(len(split))
            split.append(r)
        split.append(n)
    if axes:
        g = _sum_opmath(xp, g.reshape(split), tuple(axes))
    return g.reshape(in_shape)


def _sum_opmath(xp, g, axis):
    """g.sum(axis); a float16/bfloat16 array accumulated in float32 and rounded once, as
    PyTorch's sum (NumPy adds float16 in float16). A Tensor (xp None) sums as descent.sum."""
    if xp is not None and is_reduced(g.dtype):
        return g.astype(np.float32).sum(axis=axis).astype(g.dtype)
    return g.sum(axis=axis)


def along_axis_index(xp, index, axis):
    """The full advanced-index tuple that take_along_axis(x, index, axis) reads.

    Along `axis` the index itself; along every other axis an arange shaped to broadcast, so
    the tuple names exactly one element of x per element of `index`."""
    nd = index.ndim
    idx = []
    for d in range(nd):
        if d == axis:
            idx.append(index)
        else:
            shp = [1] * nd
            shp[d] = index.shape[d]
            idx.append(xp.arange(index.shape[d]).reshape(shp))
    return tuple(idx)


def along_axis_grad(xp, g, shape, index, axis):
    """Gradient of take_along_axis: scatter-add `g` into zeros(shape) at `index` along `axis`."""
    if g.dtype == HALF:  # accumulated in float32, rounded once (see index_grad)
        return in_float32(along_axis_grad, xp, g, shape, index, axis)
    out = xp.zeros(shape, dtype=g.dtype)
    if not backend.scatter_add_along_axis(out, index, g, axis):  # the numba loop, or add.at
        backend.scatter_add(out, along_axis_index(xp, index, axis), g)
    return out


def take_along_axis(xp, x, index, axis):
    """NumPy's take_along_axis (the adjoint of along_axis_grad)."""
    return xp.take_along_axis(x, index, axis=axis)


def pad_grad(xp, g, pad_width):
    """Gradient of constant padding: the gradient with the padding cut off (a view)."""
    # Constant padding adds values that do not depend on x: their gradient is dropped.
    sl = tuple(slice(lo, g.shape[i] - hi) for i, (lo, hi) in enumerate(pad_width))
    return g[sl]


def einsum(xp, subscripts, *operands):
    """Einstein summation; with more than two operands NumPy's path optimisation pays off.
    float16 sums in float32, rounded once (NumPy's float16 einsum accumulates in float16)."""
    if operands[0].dtype == HALF:
        return in_float32(einsum, xp, subscripts, *operands)
    return xp.einsum(subscripts, *operands, optimize=len(operands) > 2)


def tril(xp, x, k=0):
    """The lower triangle of the last two dimensions (zeros above diagonal k)."""
    return xp.tril(x, k)


def triu(xp, x, k=0):
    """The upper triangle of the last two dimensions (zeros below diagonal k)."""
    return xp.triu(x, k)


def to_device(xp, x, device):
    """x copied to `device` ('cpu' or 'cuda:N')."""
    return backend.to_device(x, device)


# The helpers `ArrayNamespace` binds: every public function defined in this module above.
# Collected, not listed by hand, so a helper added above is offered at once (and
# test_engine checks that graph_backward offers its twin).
_HELPERS = {
    name: fn
    for name, fn in list(globals().items())
    if callable(fn)
    and not name.startswith("_")
    and getattr(fn, "__module__", None) == __name__
    and name not in ("array_namespace", "ArrayNamespace")
}


# The backward namespace contract: names of the array module that op backward code uses, which
# the differentiable namespace (descent.ops.graph_backward) offers too.
# Listed by hand on purpose: this is the contract with graph_backward, checked by a test
# that also scans the op modules for any other `ops.<name>`.
ARRAY_MODULE_NAMES = (
    "broadcast_to",
    "cos",
    "exp",
    "expand_dims",
    "log",
    "maximum",
    "minimum",
    "sin",
    "swapaxes",
    "tanh",
    "transpose",
    "where",
)
