"""PyTorch's `out=` keyword: the result written into a given tensor, which is returned.

`torch.add(a, b, out=c)` computes a + b and writes it into c's memory (so every view of c, and
the tensor c is a view of, sees it), resizing c when its shape is not the result's. One
implementation here, called by every function that takes `out=`; the functions test
`if out is not None:` once, so the common call without `out=` costs nothing more.

PyTorch's rules, followed here:
  * the result is written and `out` itself is returned; a function with several results takes a
    tuple `out=(values, indices)` and returns the named tuple of those same tensors;
  * an `out` of another shape is resized; a non-empty one with a UserWarning (PyTorch's
    "An output with one or more elements was resized ...");
  * dtypes: most ops (elementwise, reductions, cat, creation) cast the result into out's dtype
    when PyTorch's `can_cast` allows it (not float into integer, not complex into real, not
    into bool), else RuntimeError "result type Float can't be cast to the desired output type
    Long"; others (matmul, gather, sort, linalg) need out's dtype to be the result's
    (`same_dtype=True`);
  * not differentiable: with grad mode on, a result or an `out` that requires grad raises
    RuntimeError "...: functions with out=... arguments don't support automatic
    differentiation, but one of the arguments requires grad." Under `no_grad` it works.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from .. import backend
from ..autograd import _is_grad_enabled as is_grad_enabled
from ..dtypes import SCALAR_TYPES
from ..tensor import Tensor
from .view_rules import overlaps
from .view_write import redo_assign

# PyTorch's ScalarType names (its error messages use them: the one table, dtypes.SCALAR_TYPES)
# and the C type names of its "Expected out tensor to have dtype ..." check.
_SCALAR_NAMES = SCALAR_TYPES
_C_NAMES = {
    "float32": "float", "float64": "double", "float16": "c10::Half", "int64": "long int",
    "int32": "int", "int16": "short int", "int8": "signed char", "uint8": "unsigned char",
    "bool": "bool", "complex64": "c10::complex<float>", "complex128": "c10::complex<double>",
}  # fmt: skip


def _name(dt, table) -> str:
    key = str(np.dtype(dt)) if not hasattr(dt, "name") else dt.name
    return table.get(key, key)


def can_cast(src, dst) -> bool:
    """torch.can_cast: within a kind or upwards any size; never float -> integer, complex ->
    real, or anything but bool -> bool."""
    order = "biufc"
    ks, kd = src.kind, dst.kind
    ks = "f" if ks == "V" else ks  # bfloat16 (a void-kind NumPy dtype in descent) is a float
    kd = "f" if kd == "V" else kd
    if kd == "b":
        return ks == "b"
    if ks == "u":
        ks = "i"
    if kd == "u":
        kd = "i"
    return order.index(ks) <= order.index(kd)


def scalar_name(dt) -> str:
    """PyTorch's ScalarType name of a dtype (Float, Long, ...), as its errors print it."""
    return _name(dt, _SCALAR_NAMES)


def _check_grad(op: str, results, outs) -> None:
    if not is_grad_enabled():
        return
    if any(r._rg for r in results) or any(o._rg for o in outs):
        raise RuntimeError(
            f"{op}(): functions with out=... arguments don't support automatic "
            "differentiation, but one of the arguments requires grad. Call it under "
            "descent.no_grad(), or drop out= and assign the result."
        )


def _write(result: Tensor, out: Tensor, op: str, same_dtype: bool) -> None:
    """Write one result into one out tensor: dtype check, resize, then the copy into out's
    memory (the copy goes through when out is a view: its array is a view of the base's)."""
    src = result._data
    dst = out._data
    if src.dtype != dst.dtype and same_dtype != "any":
        # same_dtype: True (exact), "kind" (within float/complex/int: PyTorch's fft c2r),
        # "any" (no check: bernoulli), False (torch.can_cast).
        if same_dtype is True or (same_dtype == "kind" and src.dtype.kind != dst.dtype.kind):
            raise RuntimeError(
                f"{op}(): Expected out tensor to have dtype {_name(src.dtype, _C_NAMES)}, but "
                f"got {_name(dst.dtype, _C_NAMES)} instead"
            )
        if not can_cast(src.dtype, dst.dtype):
            raise RuntimeError(
                f"{op}(): result type {_name(src.dtype, _SCALAR_NAMES)} can't be cast to the "
                f"desired output type {_name(dst.dtype, _SCALAR_NAMES)}"
            )
    if dst.size > 1 and 0 in dst.strides and any(
            st == 0 and n > 1 for st, n in zip(dst.strides, dst.shape)):  # fmt: skip
        raise RuntimeError(  # (an expanded out: PyTorch's check comes before the resize)
            "unsupported operation: more than one element of the written-to tensor refers to a "
            "single memory location. Please clone() the tensor before performing the operation."
        )
    resized = dst.shape != src.shape
    old = dst
    if resized:
        if dst.size != 0:
            warnings.warn(_resize_message(dst.shape, src.shape), UserWarning, stacklevel=4)
        resize_out(out, tuple(src.shape))
        dst = out._data
    same = type(src) is type(dst)
    if not same:  # a NumPy result into a CuPy out, or the reverse
        src = backend.to_device(src, out.device)
    try:
        dst[...] = src
    except ValueError:  # NumPy's read-only refusal: an expanded out is PyTorch's RuntimeError
        from .inplace import _NothingToWrite, _unwritable  # noqa: PLC0415 - the error path only

        try:
            _unwritable(out, op)
        except _NothingToWrite:  # (an empty one: nothing to write)
            _mark_written(out)
            return
        raise
    # descent.compile repeats the copy (the same assignment, casting included) on each call's
    # result (view_write.written); a resized out is a new array (the recorder gets the old one
    # last, and decides: compiler/recorder.py `_resized`), whose replay warns as this call did
    redo = (redo_resized_assign, src, tuple(old.shape), old) if resized else (redo_assign, src)
    _mark_written(out, redo if same else None)


def resize_out(out: Tensor, shape: tuple) -> None:
    """out= of another shape: `out` resized to `shape` (no warning; its caller warns). Also
    descent.compile's replay of a call that resized an out= argument (compiler/__init__)."""
    dst = out._data
    if type(dst) is np.ndarray:  # Tensor.resize_: the contiguous elements at out's storage
        from ..storage import resize_tensor, tensor_storage  # noqa: PLC0415 - offset, in the

        # same memory (a tensor sharing it sees the write); the write alone bumps versions
        kept = [(t, t._version) for t in (r() for r, _ in
                                          tensor_storage(out)._tensors.values())
                if t is not None] + [(t, t._version) for t in _family(out)]  # fmt: skip
        resize_tensor(out, shape)
        for t, v in kept:
            t._version = v
    else:  # (CuPy, meta: a new array)
        out._data = backend.get_array_module(dst).empty(shape, dtype=dst.dtype)


def redo_resized_assign(dst, values, old_shape: tuple) -> None:
    """A replayed out= that resized its out (a tensor the call made, of another shape): eager's
    warning again when that out had elements, then the copy into the new array (`dst`)."""
    if 0 not in old_shape:
        warnings.warn(_resize_message(old_shape, values.shape), UserWarning, stacklevel=2)
    dst[...] = values


def _resize_message(old_shape, new_shape) -> str:
    return (
        f"An output with one or more elements was resized since it had shape {list(old_shape)}, "
        f"which does not match the required output shape {list(new_shape)}. This behavior is "
        "deprecated, and in a future PyTorch release outputs will not be resized unless they have "
        "zero elements. You can explicitly reuse an out tensor t by resizing it, inplace, to zero "
        "elements with t.resize_(0)."
    )


def _family(t: Tensor) -> list:
    """The tensors sharing t's version counter (autograd_views.bump_family's walk)."""
    from ..autograd_views import view_source  # noqa: PLC0415

    top = t
    while (up := view_source(top)) is not None and up is not top:
        top = up
    found, stack, seen = [], [top], set()
    while stack:
        u = stack.pop()
        if id(u) not in seen:
            seen.add(id(u))
            found.append(u)
            stack.extend(w for w in (r() for r in (getattr(u, "_views", None) or {}).values())
                         if w is not None)  # fmt: skip
    return found


def _mark_written(out: Tensor, redo: tuple | None = None) -> None:
    # The engine's in-place bookkeeping (version counter, saved outputs, the viewed tensor's
    # version): the same as an unrecorded copy_.
    from .inplace import _written  # noqa: PLC0415 - inplace imports most of ops

    _written(out, redo)


def check_overlap(out, inputs) -> None:
    """PyTorch's memory-overlap checks for ops that read their inputs while writing (cat,
    gather, take, ...): an out that shares memory with an input, or whose elements share
    memory with each other (an expanded tensor), raises RuntimeError."""
    outs = out if isinstance(out, (tuple, list)) else (out,)
    flat = []
    for x in inputs:
        if isinstance(x, (tuple, list)):
            flat.extend(x)
        else:
            flat.append(x)
    for o in outs:
        if not isinstance(o, Tensor):
            continue
        a = o._data
        if a.size > 1 and any(s == 0 and n > 1 for s, n in zip(a.strides, a.shape, strict=True)):
            raise RuntimeError(
                "unsupported operation: more than one element of the written-to tensor refers "
                "to a single memory location. Please clone() the tensor before performing the "
                "operation."
            )
        for x in flat:
            # the very same tensor counts even when empty (no memory to share): PyTorch's
            # overlap check compares the tensors before their elements
            if isinstance(x, Tensor) and (
                x is o or backend.get_array_module(a).may_share_memory(a, x._data)
            ):
                raise RuntimeError(
                    "unsupported operation: some elements of the input tensor and the "
                    "written-to tensor refer to a single memory location. Please clone() the "
                    "tensor before performing the operation."
                )


def write_out(result: Tensor, out, op: str, same_dtype: bool = False, inputs=()) -> Tensor:
    """Write `result` into `out` and return `out` (PyTorch's out= semantics; see the module
    docstring). `op` names the function in errors; `same_dtype` asks for out's dtype to be the
    result's (PyTorch's structured kernels such as mm, gather, sort) instead of a cast.
    `inputs`: an elementwise op's operands, which may not overlap out in part (PyTorch's
    TensorIterator check; the very same memory and strides is fine)."""
    if not isinstance(out, Tensor):
        raise TypeError(f"{op}(): argument 'out' must be Tensor, not {type(out).__name__}")
    for x in inputs:
        if isinstance(x, Tensor) and overlaps(out._data, x._data):
            raise RuntimeError(
                "unsupported operation: some elements of the input tensor and the written-to "
                "tensor refer to a single memory location. Please clone() the tensor before "
                "performing the operation."
            )
    if not isinstance(result, Tensor):
        result = Tensor._wrap(backend.get_array_module(result).asarray(result))
    _check_grad(op, (result,), (out,))
    _write(result, out, op, same_dtype)
    return out


def creation_out(fn, args, kwargs, out, op: str) -> Tensor:
    """A factory's out= (zeros, randn, arange, ...): with no dtype= the result is made in out's
    dtype; a dtype= that is not out's raises RuntimeError, as PyTorch's."""
    dtype = kwargs.get("dtype")
    out_dtype = getattr(out, "dtype", None)
    if dtype is not None and out_dtype is not None and dtype != out_dtype:
        raise RuntimeError(
            f"{op}(): dtype {scalar_name(np.dtype(getattr(dtype, 'numpy_dtype', dtype)))} does "
            f"not match dtype of out parameter ({scalar_name(out._data.dtype)})"
        )
    if out_dtype is not None:
        kwargs["dtype"] = out_dtype
    return write_out(fn(*args, **kwargs), out, op)


def write_outs(results, out, op: str, same_dtype: bool = True):
    """The tuple form: `out=(a, b)` for a function returning a named tuple (max(x, dim),
    sort, topk, ...). Returns the same named tuple type holding the out tensors."""
    if not isinstance(out, (tuple, list)) or len(out) != len(results):
        raise TypeError(
            f"{op}(): argument 'out' must be a tuple of {len(results)} Tensors, got "
            f"{type(out).__name__}"
        )
    for o in out:
        if not isinstance(o, Tensor):
            raise TypeError(f"{op}(): argument 'out' must hold Tensors, not {type(o).__name__}")
    _check_grad(op, results, out)
    for r, o in zip(results, out, strict=True):
        _write(r, o, op, same_dtype)
    kind = type(results)
    return kind(*out) if hasattr(kind, "_fields") else tuple(out)


def with_out(fn, op: str | None = None, same_dtype: bool = False, no_alias: bool = False):
    """`fn` with an `out=` keyword, for functions called rarely (linalg, sorting, selection):
    a wrapper costs one Python call, so the hot functions take `out=None` in their own
    definition instead. A named-tuple result takes a tuple `out`."""
    name = op or fn.__name__

    @functools.wraps(fn)
    def wrapper(*args, out=None, **kwargs):
        if out is None:
            return fn(*args, **kwargs)
        if no_alias:
            check_overlap(out, (*args, *kwargs.values()))
        result = fn(*args, **kwargs)
        if isinstance(result, tuple):
            return write_outs(result, out, name, same_dtype)
        return write_out(result, out, name, same_dtype, inputs=(*args, *kwargs.values()))

    # torch_keywords.torch_names renames the parameters of the function inside and wraps again
    wrapper.__wrapped_for_out__ = fn
    wrapper.__out_rewrap__ = lambda f: with_out(f, op, same_dtype, no_alias)
    return wrapper


def reduce_in_out_dtype(fn, op: str, args: tuple, kwargs: dict, out) -> Tensor:
    """std/var/nanmean/logsumexp(x, ..., out=o) computed in o's dtype, as PyTorch's out=
    kernels make the reduction in the result's dtype (std_var_out, nansum_out): the input is
    cast to out's dtype first, so a float32 input into a float64 out is not rounded to float32
    (nor float16 values whose variance passes 65504 to inf). logsumexp follows PyTorch's
    logsumexp_out: max and exp in the input's precision (an integer or bool input in the
    default float dtype), then the sum, log and the max added back in out's dtype.

    A complex out for std/var/nanmean raises (PyTorch has no complex kernel for them); inputs
    that are not real floating, and outs that are not floating, go to `fn` unchanged (its own
    dtype rules and errors).
    """
    import inspect  # noqa: PLC0415 - an out= of these four reductions only

    from ..errors import DescentError, DtypeError  # noqa: PLC0415

    bound = inspect.signature(fn).bind(*args, **kwargs)
    first = next(iter(bound.signature.parameters))
    x = bound.arguments.get(first)
    if not isinstance(x, Tensor) or not isinstance(out, Tensor):
        return fn(*args, **kwargs)
    xdt, odt = x._data.dtype, out._data.dtype
    if odt.kind not in "fVc" or xdt.kind == "c":
        return fn(*args, **kwargs)
    if op == "logsumexp":
        a = bound.arguments
        dim = a.get("dim", a.get("axis"))
        keepdim = bool(a.get("keepdim") or a.get("keepdims"))
        return _logsumexp_into(x, dim, keepdim, odt)
    if odt == xdt or xdt.kind not in "fV":
        return fn(*args, **kwargs)
    low = (odt == np.float16 or odt.kind == "V", xdt == np.float16 or xdt.kind == "V")
    if op in ("std", "var") and not low[0] and _one_output(x, bound.arguments):
        # PyTorch's std_var_out takes its all-elements path for a single output in a float,
        # double or complex out: computed at the input's precision (float and double inputs
        # only: a float16/bfloat16 one raises there), then written
        if low[1]:
            raise DescentError(
                f"std_var_all: Unsupported dtype {_name(xdt, _SCALAR_NAMES)} ({op} of a "
                f"{x.dtype} tensor over all its elements into a {out.dtype} out), as in "
                f"PyTorch; convert the input with .float() first"
            )
        return fn(*args, **kwargs)
    if odt.kind == "c":
        raise DtypeError(
            f"{op}(): not implemented for a complex out (dtype {out.dtype}) of a real input "
            f'(dtype {x.dtype}), as in PyTorch ("{op}_cpu" not implemented for '
            f"'{_name(odt, _SCALAR_NAMES)}'); pass a real floating out"
        )
    from .elementwise import cast  # noqa: PLC0415 - ops that import this module

    bound.arguments[first] = cast(x, odt)
    return fn(*bound.args, **bound.kwargs)


def _one_output(x: Tensor, arguments: dict) -> bool:
    """Whether std/var over the bound arguments' dims gives one element (all dims, a 0-d or
    one-element x, or dims whose complement has size 1)."""
    dim = arguments.get("dim")
    dim = arguments.get("axis") if dim is None else dim
    if dim is None or isinstance(dim, bool) or dim in ((), []):  # (std(x, True): unbiased)
        return True
    dims = {d % max(x.ndim, 1) for d in ((dim,) if isinstance(dim, int) else dim)}
    n = 1
    for k, size in enumerate(x.shape):
        n *= 1 if k in dims else size
    return n == 1


def _logsumexp_into(x: Tensor, dim, keepdim: bool, odt) -> Tensor:
    """PyTorch's logsumexp_out: m = amax(x) (inf replaced by 0), then
    log(sum(exp(x - m), in out's dtype)) + m, exp in x's precision."""
    from ..dtypes import get_default_dtype  # noqa: PLC0415 - see reduce_in_out_dtype
    from .elementwise import cast, exp, log, where  # noqa: PLC0415
    from .reduce import amax  # noqa: PLC0415
    from .reduce import sum as reduce_sum  # noqa: PLC0415

    if x._data.dtype.kind in "iub":  # (PyTorch: self.to(default dtype) first)
        x = cast(x, get_default_dtype())
    dims = tuple(range(x.ndim)) if dim is None else (dim,) if isinstance(dim, int) else tuple(dim)
    if x._data.size == 0:  # (PyTorch's empty case: log of the sum of nothing, -inf)
        return log(reduce_sum(exp(x), dims, keepdim, dtype=odt))
    m = amax(x, dims, True)  # (x's dtype, the reduced dims kept)
    m = where(abs(m) == float("inf"), 0.0, m)
    s = reduce_sum(exp(x - m), dims, keepdim, dtype=odt)
    # (PyTorch's result.add_(m): in the two dtypes' promotion, rounded to out's by the write)
    return log(s) + m.reshape(tuple(s.shape))
