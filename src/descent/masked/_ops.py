"""The torch.masked functions on strided tensors (see the package docstring).

Every function is `op(where(mask, input, identity), ...)`, as torch/masked/_ops.py for the
strided layout: masked-out elements become the identity of the reduction and so drop out of
its value and gradient. Argument names, defaults and output dtypes are PyTorch's.
"""

from __future__ import annotations

import math

import descent as _d

_SMALL_INTS = ("uint8", "bool", "int8", "int16", "int32")  # sum/prod accumulate them in int64


def _name(dtype) -> str:
    return str(dtype).rpartition(".")[2]


def _canonical_dim(dim, ndim: int) -> tuple:
    """dim as a sorted tuple of non-negative dims; None and () mean every dim (PyTorch's)."""
    if dim is None or dim == ():
        return tuple(range(ndim))
    n = max(ndim, 1)
    dims = []
    for d in (dim,) if isinstance(dim, int) else dim:
        if d in dims:
            raise RuntimeError(f"dim={d} appears multiple times in the list of dims")
        if d >= n or d < -n:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, "
                             f"{n - 1}], but got {d})")  # fmt: skip
        dims.append(d % n)
    return tuple(sorted(dims))


def _mask_of(input, mask):
    """mask as a bool tensor of input's shape (broadcast; a higher rank raises, as torch)."""
    if tuple(mask.shape) != tuple(input.shape):
        if mask.ndim > input.ndim:
            raise IndexError("_input_mask expected broadcastable mask (got mask dimensionality "
                             "higher than of the input)")  # fmt: skip
        mask = _d.broadcast_to(mask, tuple(input.shape))
    return mask if mask.dtype == _d.bool else mask.to(_d.bool)


def _input_mask(input, *args, **kwargs):
    """torch.masked._input_mask: the `mask=` keyword as a bool tensor of input's shape (the
    other arguments are ignored). PyTorch's tests call it, as user code may."""
    mask = kwargs.get("mask")
    if mask is None:
        raise ValueError("_input_mask requires explicit mask")
    return _mask_of(input, mask)


_REDUCTIONS = {"sum", "prod", "amax", "amin", "argmax", "argmin", "mean", "median", "norm",
               "var", "std", "logsumexp"}  # fmt: skip
_NORMALIZATIONS = {"softmax", "log_softmax", "softmin", "normalize", "cumsum", "cumprod"}


def _output_mask(op, input, *args, **kwargs):
    """torch.masked._output_mask: where `op(input, *args, **kwargs)` has a masked-in value
    (a reduction: any masked-in element reduced there; a normalisation: the input mask)."""
    name = getattr(op, "__name__", None)
    if name in _REDUCTIONS:
        if name == "norm" and args:
            args = args[1:]  # ord comes first
        dim = args[0] if args else kwargs.get("dim")
        out = _input_mask(input, *args, **kwargs)
        keepdim = bool(kwargs.get("keepdim", False))
        for d in reversed(_canonical_dim(dim, input.ndim)):
            out = out.any(dim=d, keepdim=keepdim)
        return out
    if name in _NORMALIZATIONS:
        return _input_mask(input, *args, **kwargs)
    raise ValueError(f"_output_mask expected masked operation (got {op!r})")


def _identity(op: str, input, ord=None):
    """The value that leaves `op` unchanged, as a 0-d tensor of input's dtype (torch's
    _reduction_identity), or None where torch has none."""
    dt, name = input.dtype, _name(input.dtype)
    floating = dt.is_floating_point
    if op in ("sum", "cumsum"):
        value = 0
    elif op in ("prod", "cumprod"):
        value = 1
    elif op in ("amax", "argmax", "logaddexp", "logsumexp"):
        if floating or (op == "logsumexp" and dt.is_complex):
            value = -math.inf
        elif name != "bool" and not dt.is_complex:
            value = _d.iinfo(dt).min
        else:
            return None
    elif op in ("amin", "argmin"):
        if floating:
            value = math.inf
        elif name != "bool" and not dt.is_complex:
            value = _d.iinfo(dt).max
        else:
            return None
    elif op == "norm":
        if ord == -math.inf and not floating:
            return None  # inf is not a complex or integer identity (torch asserts floating)
        value = math.inf if ord == -math.inf else 0
    elif op == "median":
        return _d.tensor(math.nan, dtype=dt if floating else _d.float32, device=input.device)
    else:
        raise NotImplementedError(f"identity of {op} on {name} input")
    return _d.tensor(value, dtype=dt, device=input.device)


def _combine(op: str, input, mask, ord=None):
    """input with its masked-out elements replaced by op's identity."""
    if mask is None:
        return input
    mask = _mask_of(input, mask)
    fill = _identity(op, input, ord)
    if fill is None:
        raise TypeError(f"masked.{op}: no identity for {_name(input.dtype)} input (as torch)")
    return _d.where(mask, input, fill)


def _sum_dtype(input, dtype):
    """sum and prod accumulate bool and small integers in int64, as torch.sum."""
    if dtype is not None:
        return dtype
    return _d.int64 if _name(input.dtype) in _SMALL_INTS else input.dtype


# -- reductions ---------------------------------------------------------------------------------
def sum(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    """The sum of the masked-in elements over `dim` (all dims when None); 0 where none is."""
    dtype = _sum_dtype(input, dtype)
    dims = _canonical_dim(dim, input.ndim)
    return _d.sum(_combine("sum", input, mask), dims, bool(keepdim), dtype=dtype)


def prod(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    """The product of the masked-in elements over `dim`; 1 where none is."""
    dtype = _sum_dtype(input, dtype)
    dims = _canonical_dim(dim, input.ndim)
    result = _combine("prod", input, mask).to(dtype)
    for d in reversed(dims):  # last dim first, so the earlier dims keep their numbers
        result = result.prod(dim=d, keepdim=bool(keepdim))
    return result


def cumsum(input, dim, *, dtype=None, mask=None):
    """Cumulative sum along `dim`, masked-out elements counting as 0."""
    dtype = input.dtype if dtype is None else dtype
    d = _canonical_dim(dim, input.ndim)[0]
    return _d.cumsum(_combine("sum", input, mask), d, dtype=dtype).to(dtype)


def cumprod(input, dim, *, dtype=None, mask=None):
    """Cumulative product along `dim`, masked-out elements counting as 1."""
    dtype = input.dtype if dtype is None else dtype
    d = _canonical_dim(dim, input.ndim)[0]
    return _d.cumprod(_combine("prod", input, mask), d, dtype=dtype).to(dtype)


def amax(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    """The largest masked-in element over `dim`; -inf (an integer dtype's min) where none is."""
    dtype = input.dtype if dtype is None else dtype
    x = _combine("amax", input, mask)
    return _d.amax(x, _canonical_dim(dim, x.ndim), bool(keepdim)).to(dtype)


def amin(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    """The smallest masked-in element over `dim`; +inf (an integer dtype's max) where none is."""
    dtype = input.dtype if dtype is None else dtype
    x = _combine("amin", input, mask)
    return _d.amin(x, _canonical_dim(dim, x.ndim), bool(keepdim)).to(dtype)


def argmax(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    """The position of the largest masked-in element (torch.argmax's ties: the first), in
    `dtype` (input's by default, as torch.masked)."""
    dtype = input.dtype if dtype is None else dtype
    return _d.argmax(_combine("argmax", input, mask), dim, bool(keepdim)).to(dtype)


def argmin(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    """The position of the smallest masked-in element, in `dtype` (input's by default)."""
    dtype = input.dtype if dtype is None else dtype
    return _d.argmin(_combine("argmin", input, mask), dim, bool(keepdim)).to(dtype)


def mean(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    """sum / count of the masked-in elements; nan (0 / 0) where none is.

    Raises:
        ValueError: the dtype (input's, or `dtype`) is not floating or complex.
    """
    source = "Optional"
    if dtype is None:
        dtype, source = input.dtype, "Input"
    if not (dtype.is_floating_point or dtype.is_complex):
        raise ValueError(f"mean(): Could not infer output dtype. {source} dtype must be either "
                         f"a floating point or complex dtype. Got: {dtype}")  # fmt: skip
    if mask is None:
        count = sum(_d.ones(tuple(input.shape), dtype=_d.int64, device=input.device), dim,
                    keepdim=keepdim)  # fmt: skip
        total = sum(input, dim, keepdim=keepdim, dtype=dtype)
    else:
        inmask = _mask_of(input, mask)
        count = sum(inmask, dim, keepdim=keepdim)
        total = sum(input, dim, keepdim=keepdim, dtype=dtype, mask=inmask)
    return total / count


def median(input, dim=-1, *, keepdim=False, dtype=None, mask=None):
    """The median of the masked-in elements along `dim` (the lower of the two middle ones, as
    torch.nanmedian); nan where none is.

    Raises:
        ValueError: an integer input with a fully masked row (nan has no integer value).
    """
    dtype = input.dtype if dtype is None else dtype
    d = _canonical_dim(dim, input.ndim)[0]
    is_float = input.dtype.is_floating_point
    if not is_float:
        input = input.to(_d.float32)
    out = _d.nanmedian(_combine("median", input, mask), d, bool(keepdim)).values
    if is_float:
        return out
    if _d.isnan(out).any():
        raise ValueError("masked median expects no fully masked out rows if dtype is not "
                         "floating point")  # fmt: skip
    return out.to(dtype)


def logsumexp(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    """log(sum(exp)) of the masked-in elements over `dim`; -inf where none is."""
    dtype = input.dtype if dtype is None else dtype
    dims = _canonical_dim(dim, input.ndim)
    return _d.logsumexp(_combine("logsumexp", input, mask), dims, keepdim=keepdim).to(dtype)


def logaddexp(input, other, *, dtype=None, input_mask=None, other_mask=None):
    """log(exp(input) + exp(other)), each side's masked-out elements counting as -inf."""
    dtype = input.dtype if dtype is None else dtype
    a = _combine("logaddexp", input, input_mask)
    b = _combine("logaddexp", other, other_mask)
    return _d.logaddexp(a, b).to(dtype)


def norm(input, ord=2.0, dim=None, *, keepdim=False, dtype=None, mask=None):
    """The vector `ord`-norm of the masked-in elements over `dim` (torch.linalg.vector_norm;
    masked-out elements count as 0, as +inf for ord=-inf)."""
    dtype = input.dtype if dtype is None else dtype
    x = _combine("norm", input, mask, ord)
    dims = _canonical_dim(dim, input.ndim)
    return _d.linalg.vector_norm(x, ord, dims, bool(keepdim), dtype=dtype)


def _std_var(input, dim, unbiased, correction_opt, keepdim, dtype, mask, take_sqrt):
    """sum |x - mean|^2 / max(count - correction, 0) over the masked-in elements (torch's
    _std_var: the mean, the squares and the count all skip the masked-out elements)."""
    if unbiased is not None and correction_opt is not None:
        raise ValueError("Only one of unbiased and correction may be given")
    correction = 1.0
    if unbiased is not None:
        correction = 1.0 if unbiased else 0.0
    if correction_opt is not None:
        correction = float(correction_opt)
    if dtype is None:
        dtype = input.dtype
        if not (dtype.is_floating_point or dtype.is_complex):
            dtype = _d.float32
    compute = dtype if (dtype.is_floating_point or dtype.is_complex) else _d.float32
    if mask is None:
        inmask = None
        count = sum(_d.ones(tuple(input.shape), dtype=_d.int64, device=input.device), dim,
                    keepdim=True)  # fmt: skip
    else:
        inmask = _mask_of(input, mask)
        count = sum(inmask, dim, keepdim=True)
    sample_mean = sum(input, dim, keepdim=True, dtype=dtype, mask=inmask) / count
    x = input - sample_mean
    total = sum(x * x.conj(), dim, keepdim=keepdim, dtype=compute, mask=inmask)
    if not keepdim:
        count = count.reshape(tuple(total.shape))
    if correction != 0:
        real = _d.float64 if _name(compute) == "complex128" else (
            _d.float32 if compute.is_complex else compute)  # fmt: skip
        count = _d.clamp(count.to(real) - correction, min=0)
    output = (total / count).to(dtype)
    return output.sqrt() if take_sqrt else output


def var(input, dim=None, unbiased=None, *, correction=None, keepdim=False, dtype=None,
        mask=None):  # fmt: skip
    """The variance of the masked-in elements over `dim` (correction 1 by default); nan
    where fewer than correction + 1 elements are masked in."""
    return _std_var(input, dim, unbiased, correction, keepdim, dtype, mask, take_sqrt=False)


def std(input, dim=None, unbiased=None, *, correction=None, keepdim=False, dtype=None,
        mask=None):  # fmt: skip
    """The standard deviation: sqrt of `var`."""
    return _std_var(input, dim, unbiased, correction, keepdim, dtype, mask, take_sqrt=True)


# -- normalisations ------------------------------------------------------------------------------
def softmax(input, dim, *, dtype=None, mask=None):
    """softmax along `dim` over the masked-in elements (masked-out ones get 0; a fully
    masked slice is nan, as torch)."""
    dtype = input.dtype if dtype is None else dtype
    d = _canonical_dim(dim, input.ndim)[0]
    return _d.nn.functional.softmax(_combine("amax", input, mask), d, dtype=dtype)


def log_softmax(input, dim, *, dtype=None, mask=None):
    """log_softmax along `dim` over the masked-in elements (masked-out ones get -inf)."""
    dtype = input.dtype if dtype is None else dtype
    d = _canonical_dim(dim, input.ndim)[0]
    return _d.nn.functional.log_softmax(_combine("amax", input, mask), d, dtype=dtype)


def softmin(input, dim, *, dtype=None, mask=None):
    """softmax(-input) along `dim` over the masked-in elements."""
    dtype = input.dtype if dtype is None else dtype
    d = _canonical_dim(dim, input.ndim)[0]
    return _d.nn.functional.softmin(_combine("amin", input, mask), d, dtype=dtype)


def normalize(input, ord, dim, *, eps=1e-12, dtype=None, mask=None):
    """input / max(norm(input, ord, dim), eps), the norm over the masked-in elements;
    masked-out elements become 0."""
    dtype = input.dtype if dtype is None else dtype
    x = _combine("sum", input, mask)
    nrm = norm(input, ord, dim, keepdim=True, dtype=dtype, mask=mask)
    return x / _d.maximum(nrm, _d.full((), eps, dtype=nrm.dtype, device=nrm.device))

