"""The meta device's shape rules: what a ufunc, a reduction, matmul or a NumPy function gives
for meta inputs (a shape and a dtype), worked out without computing (see meta.py).

Split from meta.py, which imports this module at its end: load `descent.meta`, not this module
directly (the rules make MetaArrays with `meta.empty`).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple

from .meta import NO_DATA, NO_ITEM, MetaArray, empty


class _Fallback(Exception):
    """No shape rule: run the ufunc on the zero-stride data and shrink the result."""


def _plain(x):
    """A MetaArray as a plain ndarray view (same zero strides); anything else unchanged."""
    if type(x) is MetaArray:
        return x.view(np.ndarray)
    if isinstance(x, (tuple, list)) and any(type(v) is MetaArray for v in x):
        return type(x)(_plain(v) for v in x)
    return x


def _advanced_index_shape(shape: tuple, key):
    """The result shape of `a[key]` under NumPy's advanced indexing (integer arrays, with ints,
    slices, None and Ellipsis), or None for a basic index (a view: NumPy makes it for free).
    The broadcast shape of the index arrays replaces their dimensions where they are
    adjacent, and goes first where a slice or None separates them."""
    keys = key if isinstance(key, tuple) else (key,)
    if not any(isinstance(k, (np.ndarray, list)) for k in keys):
        return None
    keys = [np.asarray(k) if isinstance(k, list) else k for k in keys]
    if any(isinstance(k, np.ndarray) and k.dtype.kind not in "iu" for k in keys):
        return None  # boolean masks (handled by the caller) or a bad index: NumPy says
    n_used = sum(1 for k in keys if k is not None and k is not Ellipsis)
    if sum(1 for k in keys if k is Ellipsis) > 1 or n_used > len(shape):
        return None  # NumPy's error
    if Ellipsis in [k for k in keys if not isinstance(k, np.ndarray)]:
        at = next(i for i, k in enumerate(keys) if k is Ellipsis)
        keys = keys[:at] + [slice(None)] * (len(shape) - n_used) + keys[at + 1 :]
    else:
        keys = keys + [slice(None)] * (len(shape) - n_used)
    out, adv, positions, dim = [], [], [], 0
    for k in keys:
        if k is None:
            out.append(1)
        elif isinstance(k, slice):
            out.append(len(range(*k.indices(shape[dim]))))
            dim += 1
        else:  # an integer array or an int: an advanced index
            k = np.asanyarray(k)
            adv.append(k.shape)
            positions.append(len(out))
            out.append(None)  # a placeholder where the broadcast shape may go
            dim += 1
    b = list(np.broadcast_shapes(*adv))
    adjacent = positions == list(range(positions[0], positions[0] + len(positions)))
    rest = [n for n in out if n is not None]
    if adjacent:
        return tuple(rest[: positions[0]] + b + rest[positions[0] :])
    return tuple(b + rest)


def _has_mask(key) -> bool:
    keys = key if isinstance(key, tuple) else (key,)
    return any(type(k) is MetaArray and k.dtype == np.bool_ for k in keys)


def _plain_all(args):
    return [_plain(a) for a in args]


def _shrink(x):
    """Results of a computation on meta inputs, as meta arrays (arrays of any kind)."""
    if isinstance(x, np.ndarray):
        return x if type(x) is MetaArray and not any(x.strides) else empty(x.shape, x.dtype)
    if isinstance(x, np.generic):
        return empty((), x.dtype)
    if isinstance(x, tuple):
        return tuple(_shrink(v) for v in x)
    if isinstance(x, list):
        return [_shrink(v) for v in x]
    return x


def _stand_in(x, ndim: int = 0):
    """A tiny array (all sizes 1) with x's dtype, for working out a result dtype; Python
    numbers stay themselves (NEP 50: they are 'weak' and must not promote)."""
    if isinstance(x, np.ndarray):
        return np.zeros((1,) * ndim if ndim else (), x.dtype)
    return x


def _ufunc_result(ufunc, method, inputs, kwargs):
    with np.errstate(all="ignore"):
        if method == "__call__":
            if ufunc is np.matmul:
                return _matmul(inputs, kwargs)
            if ufunc.signature is not None:
                raise _Fallback
            where = kwargs.pop("where", None)
            shapes = [np.shape(x) for x in inputs]
            if where is not None and where is not True:
                shapes.append(np.shape(where))
            shape = np.broadcast_shapes(*shapes)  # NumPy's error for shapes that do not match
            res = ufunc(*[_stand_in(x) for x in inputs], **kwargs)
            if isinstance(res, tuple):
                return tuple(empty(shape, r.dtype) for r in res)
            return empty(shape, np.asarray(res).dtype)
        if method == "reduce":
            return _reduce(ufunc, inputs[0], kwargs)
        if method == "accumulate":
            x = inputs[0]
            kw = {k: v for k, v in kwargs.items() if k == "dtype"}
            res = ufunc.accumulate(np.zeros(1, x.dtype), **kw)
            return empty(x.shape, res.dtype)
        if method == "outer":
            a, b = inputs
            res = ufunc(_stand_in(a), _stand_in(b), **kwargs)
            return empty(np.shape(a) + np.shape(b), np.asarray(res).dtype)
        if method == "at":  # in place into a meta array: nothing to write
            if type(inputs[0]) is MetaArray:
                return None
    raise _Fallback


def _reduce(ufunc, x, kwargs):
    """`ufunc.reduce(x, axis, dtype, keepdims, initial, where)` -> a meta array."""
    x = np.asanyarray(x)
    axis = kwargs.get("axis", 0)
    keepdims = kwargs.get("keepdims", False)
    axes = tuple(range(x.ndim)) if axis is None else normalize_axis_tuple(axis, x.ndim)
    if (ufunc.identity is None and kwargs.get("initial", np._NoValue) is np._NoValue
            and any(x.shape[a] == 0 for a in axes)):  # fmt: skip
        raise ValueError(
            f"zero-size array to reduction operation {ufunc.__name__} which has no identity"
        )
    shape = tuple((1 if keepdims else None) if i in axes else n for i, n in enumerate(x.shape))
    kw = {k: v for k, v in kwargs.items() if k == "dtype"}
    res = ufunc.reduce(np.zeros(1, x.dtype), axis=0, **kw)
    out = empty(tuple(n for n in shape if n is not None), np.asarray(res).dtype)
    if ufunc is np.logical_and:  # `if not ok.all(): raise` passes too (see __bool__)
        out._truth = True
    return out


def _all_any(ufunc):
    def rule(a, axis=None, out=None, keepdims=False, *, where=True):
        res = _reduce(ufunc, a, {"axis": axis, "keepdims": keepdims})
        res = res.astype(np.bool_, copy=False)
        if ufunc is np.logical_and:
            res._truth = True
        return res

    return rule


def _matmul(inputs, kwargs):
    """np.matmul's shape rule: (..., n, k) @ (..., k, m) -> (..., n, m); a 1-d operand gets
    a 1 prepended (left) or appended (right) that the result drops."""
    a, b = (np.asanyarray(x) for x in inputs)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: Input operand does not have enough dimensions")
    sa = (1,) + a.shape if a.ndim == 1 else a.shape
    sb = b.shape + (1,) if b.ndim == 1 else b.shape
    if sa[-1] != sb[-2]:
        raise ValueError(
            "matmul: Input operand 1 has a mismatch in its core dimension 0, with gufunc "
            f"signature (n?,k),(k,m?)->(n?,m?) (size {sb[-2]} is different from {sa[-1]})"
        )
    batch = np.broadcast_shapes(sa[:-2], sb[:-2])
    shape = batch + ((sa[-2],) if a.ndim > 1 else ()) + ((sb[-1],) if b.ndim > 1 else ())
    dt = np.matmul(np.zeros((1, 1), a.dtype), np.zeros((1, 1), b.dtype), **kwargs).dtype
    return empty(shape, dt)


# NumPy functions that make an array of a given shape: answered without allocating.
def _like(fill: bool):
    def make(prototype, *args, dtype=None, order="K", subok=True, shape=None, **kwargs):
        if fill and args:  # full_like(a, value, dtype)
            if len(args) > 1 and dtype is None:
                dtype = args[1]
        elif args and dtype is None:  # zeros_like(a, dtype)
            dtype = args[0]
        return empty(np.shape(prototype) if shape is None else shape,
                     prototype.dtype if dtype is None else dtype)  # fmt: skip

    return make


_CREATION_LIKE = {
    np.empty_like: _like(False),
    np.zeros_like: _like(False),
    np.ones_like: _like(False),
    np.full_like: _like(True),
    np.copy: lambda a, *args, **kwargs: empty(a.shape, a.dtype),
    np.ascontiguousarray: lambda a, dtype=None, **kwargs: empty(
        np.shape(a) or (), a.dtype if dtype is None else dtype
    ),
}


def _equal_error():
    return NotImplementedError(
        "aten::equal: attempted to run this operator with Meta tensors, but there was no fake "
        "impl or Meta kernel registered (a meta tensor has no values to compare)"
    )


def _concatenate(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    """np.concatenate's shape rule: the sizes along `axis` add up, the others must agree."""
    arrays = [np.asanyarray(a) for a in arrays]
    if not arrays:
        raise ValueError("need at least one array to concatenate")
    dt = np.result_type(*arrays) if dtype is None else np.dtype(dtype)
    if axis is None:
        return empty((sum(a.size for a in arrays),), dt)
    nd = arrays[0].ndim
    if nd == 0:
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    (ax,) = normalize_axis_tuple(axis, nd)
    rest = arrays[0].shape[:ax] + arrays[0].shape[ax + 1 :]
    for i, a in enumerate(arrays[1:], 1):
        if a.ndim != nd or a.shape[:ax] + a.shape[ax + 1 :] != rest:
            raise ValueError(
                "all the input array dimensions except for the concatenation axis must match "
                f"exactly, but array 0 has shape {arrays[0].shape} and array {i} has shape "
                f"{a.shape}"
            )
    shape = list(arrays[0].shape)
    shape[ax] = sum(a.shape[ax] for a in arrays)
    return empty(tuple(shape), dt)


def _stack(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    """np.stack's shape rule: equal shapes, a new axis of length len(arrays) at `axis`."""
    arrays = [np.asanyarray(a) for a in arrays]
    if not arrays:
        raise ValueError("need at least one array to stack")
    if any(a.shape != arrays[0].shape for a in arrays):
        raise ValueError("all input arrays must have the same shape")
    dt = np.result_type(*arrays) if dtype is None else np.dtype(dtype)
    (ax,) = normalize_axis_tuple(axis, arrays[0].ndim + 1)
    shape = list(arrays[0].shape)
    shape.insert(ax, len(arrays))
    return empty(tuple(shape), dt)


def _where(cond, *values):
    """np.where(cond, x, y): the three shapes broadcast; x and y's dtypes promote."""
    if not values:
        raise _NoRule  # np.where(cond) is nonzero: a data-dependent shape
    shape = np.broadcast_shapes(*(np.shape(v) for v in (cond, *values)))
    res = np.where(True, *(_stand_in(v) for v in values))
    return empty(shape, np.asarray(res).dtype)


def _einsum(subscripts, *operands, out=None, dtype=None, optimize=False, **kwargs):
    """np.einsum's shape rule for the string form: each letter's size, the broadcast shape of
    the `...` dimensions, the output letters (given after '->', else the letters that appear
    once, in alphabetical order). Computing it on the zero-stride data would cost the full
    contraction (attention's backward row dots: seconds for a GPT-2-sized meta model)."""
    if not isinstance(subscripts, str):
        raise _NoRule  # the interleaved (operand, sublist) form
    arrays = [np.asanyarray(a) for a in operands]
    spec = subscripts.replace(" ", "")
    inputs, arrow, output = spec.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(arrays):
        raise ValueError("more operands provided to einstein sum function than specified")
    sizes: dict[str, int] = {}
    ellipsis = []
    for term, a in zip(terms, arrays):
        letters = term.replace("...", "")
        n_ell = a.ndim - len(letters)
        if n_ell < 0 or (n_ell and "..." not in term):
            raise ValueError(
                f"einstein sum subscripts string {term!r} does not match operand of shape {a.shape}"
            )
        head = term.split("...")[0] if "..." in term else term
        dims = list(a.shape)
        if "..." in term:
            ellipsis.append(tuple(dims[len(head) : len(head) + n_ell]))
            dims = dims[: len(head)] + dims[len(head) + n_ell :]
        for ch, n in zip(letters, dims):
            if sizes.get(ch, n) not in (n, 1) and n != 1:
                raise ValueError(
                    f"operands could not be broadcast together: dimension {ch!r} has sizes "
                    f"{sizes[ch]} and {n}"
                )
            sizes[ch] = max(sizes.get(ch, n), n)
    ell_shape = np.broadcast_shapes(*ellipsis) if ellipsis else ()
    if not arrow:
        counts = {ch: inputs.count(ch) for ch in sizes}
        output = ("..." if ellipsis else "") + "".join(
            sorted(c for c, k in counts.items() if k == 1)
        )
    shape: list[int] = []
    for part in output.split("...") if "..." in output else [output]:
        shape += [sizes[ch] for ch in part]
        shape.append(None)  # where the ellipsis dims go
    shape.pop()
    flat = []
    for n in shape:
        flat += list(ell_shape) if n is None else [n]
    dt = np.result_type(*arrays) if dtype is None else np.dtype(dtype)
    return empty(tuple(flat), dt)


def _same_shape(func):
    """Rule for functions whose result has the input's shape (or its flattening, axis=None):
    cumsum, cumprod, sort, argsort. The dtype comes from the function on a stand-in with all
    sizes 1 (int8 cumsum is int64, argsort int64)."""

    def rule(a, *args, **kwargs):
        a = np.asanyarray(a)
        res = func(np.zeros((1,) * a.ndim, a.dtype), *args, **kwargs)
        return empty(a.shape if res.ndim == a.ndim else (a.size,), res.dtype)

    return rule


def _arg_reduce(func):
    """np.argmax / np.argmin: int64 indices over `axis` (all elements when None)."""

    def rule(a, axis=None, out=None, *, keepdims=False):
        a = np.asanyarray(a)
        if a.size == 0 and (axis is None or a.shape[normalize_axis_tuple(axis, a.ndim)[0]] == 0):
            raise ValueError(f"attempt to get {func.__name__} of an empty sequence")
        axes = tuple(range(a.ndim)) if axis is None else normalize_axis_tuple(axis, a.ndim)
        shape = tuple(
            1 if i in axes else n for i, n in enumerate(a.shape) if keepdims or i not in axes
        )
        return empty(shape, np.int64)

    return rule


def _take_along_axis(arr, indices, axis=-1):
    """np.take_along_axis: the index's size along `axis`, the others broadcast."""
    arr, indices = np.asanyarray(arr), np.asanyarray(indices)
    if axis is None:
        return empty(indices.shape, arr.dtype)
    if arr.ndim != indices.ndim:
        raise ValueError("`indices` and `arr` must have the same number of dimensions")
    (ax,) = normalize_axis_tuple(axis, arr.ndim)
    rest = np.broadcast_shapes(
        arr.shape[:ax] + (1,) + arr.shape[ax + 1 :],
        indices.shape[:ax] + (1,) + indices.shape[ax + 1 :],
    )
    return empty(rest[:ax] + (indices.shape[ax],) + rest[ax + 1 :], arr.dtype)


def _take(a, indices, axis=None, out=None, mode="raise"):
    """np.take: the index's shape in place of `axis` (of the flattened array when None)."""
    a, shape = np.asanyarray(a), np.shape(indices)
    if axis is None:
        return empty(shape, a.dtype)
    (ax,) = normalize_axis_tuple(axis, a.ndim)
    return empty(a.shape[:ax] + shape + a.shape[ax + 1 :], a.dtype)


def _pad(array, pad_width, mode="constant", **kwargs):
    """np.pad: each dimension grows by its (before, after) widths."""
    array = np.asanyarray(array)
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (array.ndim, 2))
    if (widths < 0).any():
        raise ValueError("index can't contain negative values")
    return empty(tuple(int(n + b + a) for n, (b, a) in zip(array.shape, widths)), array.dtype)


def _put_along_axis(arr, indices, values, axis):
    if type(arr) is not MetaArray:  # meta values into a CPU array
        raise NotImplementedError(NO_DATA)
    return None  # nothing to write


class _NoRule(Exception):
    pass


_FUNCTION_RULES = {
    np.concatenate: _concatenate,
    np.stack: _stack,
    np.where: _where,
    np.einsum: _einsum,
    np.cumsum: _same_shape(np.cumsum),
    np.cumprod: _same_shape(np.cumprod),
    np.sort: _same_shape(np.sort),
    np.argsort: _same_shape(np.argsort),
    np.argmax: _arg_reduce(np.argmax),
    np.argmin: _arg_reduce(np.argmin),
    np.take_along_axis: _take_along_axis,
    np.take: _take,
    np.pad: _pad,
    np.put_along_axis: _put_along_axis,
    np.all: _all_any(np.logical_and),
    np.any: _all_any(np.logical_or),
}


def _data_dependent_error():
    return NotImplementedError(
        "this operation's result shape depends on the values of its input (nonzero, unique, "
        "boolean-mask selection), which a meta tensor does not have (as PyTorch's meta kernels)"
    )


_NO_DATA_FUNCTIONS = {
    np.nonzero: _data_dependent_error,
    np.argwhere: _data_dependent_error,
    np.flatnonzero: _data_dependent_error,
    np.unique: _data_dependent_error,
    np.extract: _data_dependent_error,
    np.compress: _data_dependent_error,
    np.array_equal: _equal_error,
    np.array_equiv: _equal_error,
    np.allclose: lambda: RuntimeError(NO_ITEM),
}
