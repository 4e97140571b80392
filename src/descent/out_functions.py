"""`out=` on the less frequently called functions of the torch namespace (sorting, selection,
linear algebra, creation, the rarer elementwise math), by one wrapper each, made at import.

The hot functions (add/sub/mul/div, the common unary math, cat, stack, matmul/mm/bmm/addmm,
sum, mean, max, min, where, clamp) take `out=None` in their own definitions instead: a wrapper
costs one Python call per call, which a training loop would pay millions of times. The writer
itself (dtype rules, resizing, the autograd error, write-through into views) is
ops/out_arg.py, shared by both.

Three kinds, by PyTorch's dtype rule for `out`:
  * CAST: elementwise and reduction ops (PyTorch's TensorIterator) cast the result into out's
    dtype where torch.can_cast allows it;
  * SAME: structured kernels (gather, sort, linalg, ...) need out's dtype to be the result's;
  * CREATION: factories (zeros, randn, arange, ...) make the result in out's dtype when no
    dtype is given, and refuse a different explicit one, as PyTorch's.
"""

from __future__ import annotations

import functools

import numpy as np

from .errors import DescentError
from .ops.out_arg import creation_out, reduce_in_out_dtype, scalar_name, with_out, write_out
from .ops.shape import cat_out
from .tensor import as_dtype

# Elementwise math and reductions: the result is cast into out's dtype when it can be.
CAST = (
    "acos", "acosh", "addcdiv", "addcmul", "angle", "asin", "asinh", "atan", "atan2", "atanh",
    "bitwise_and", "bitwise_left_shift", "bitwise_not", "bitwise_or", "bitwise_right_shift",
    "bitwise_xor", "copysign", "cosh", "cumprod", "cumsum", "deg2rad", "digamma", "eq", "erf",
    "erfc", "erfinv", "exp2", "floor_divide", "fmax", "fmin", "fmod", "gcd", "ge", "greater",
    "greater_equal", "gt", "hypot", "i0", "igamma", "igammac", "lcm", "ldexp", "le", "lerp", "less",
    "less_equal", "lgamma", "log10", "log2", "logaddexp", "logaddexp2", "logical_and",
    "logical_not", "logical_or", "logical_xor", "logit", "logsumexp", "lt", "maximum", "minimum",
    "mvlgamma", "nanmean", "ne", "nextafter", "not_equal", "polygamma", "pow", "prod", "rad2deg",
    "reciprocal", "remainder", "sigmoid", "sinc", "sinh", "square", "std", "tanh", "var", "xlogy",
    "column_stack", "dstack", "hstack", "row_stack", "vstack", "nansum", "true_divide", "outer",
    "ger", "chain_matmul", "cholesky_inverse", "diff", "kron",
)  # fmt: skip

# Structured kernels: out's dtype must be the result's (PyTorch's "Expected out tensor to have
# dtype float, but got double instead"). Functions with several results take a tuple out.
SAME = (
    "addbmm", "addmv", "addr", "aminmax", "baddbmm", "bucketize", "cholesky", "cholesky_solve",
    "complex", "cross", "cummax", "cummin", "diag", "dot", "frexp", "gather", "geqrf", "histc",
    "abs", "tril", "triu", "histogram", "index_select", "histogramdd", "argmax", "argmin", "inner",
    "inverse", "kthvalue", "masked_select", "matrix_power", "median", "mode", "msort",
    "multinomial", "mv", "nanmedian", "nanquantile", "narrow_copy", "nonzero", "ormqr", "polar",
    "quantile", "renorm", "searchsorted", "sort", "std_mean", "svd", "take", "take_along_dim",
    "topk", "triangular_solve", "var_mean", "vdot", "index_add", "index_copy", "scatter",
    "scatter_add", "scatter_reduce", "all", "amax", "amin", "any", "ceil", "conj_physical", "fix",
    "float_power", "floor", "frac", "heaviside", "isneginf", "isposinf", "logcumsumexp",
    "nan_to_num", "neg", "negative", "norm", "round", "sgn", "sign", "signbit", "trunc",
)  # fmt: skip

# Reductions whose out dtype is their dtype= (PyTorch computes sum(x, out=long) in int64).
DTYPE_FROM_OUT = ("cumsum", "cumprod", "prod", "nansum")

# Reductions that compute in out's dtype (PyTorch's std_var_out/nansum_out/logsumexp_out make
# their reduction in the result's dtype): a float16 input with a float64 out is not rounded to
# float16 first (var of float16 values beyond 256 overflowed to inf before the cast).
IN_OUT_DTYPE = ("logsumexp", "nanmean", "std", "var")

# any/all: out may be bool or uint8 (PyTorch's legacy mask dtype), whatever the input's dtype.
LOGICAL = ("any", "all")

# Joins: cat's TypeError for an out dtype the inputs cannot be cast to.
JOINS = ("column_stack", "dstack", "hstack", "row_stack", "vstack")

# torch.linalg functions that PyTorch composes of others (a cast into out, as elementwise ops).
LINALG_CAST = ("pinv", "cond", "matrix_rank")

# Ops that refuse an out sharing memory with an input (PyTorch's assert_no_overlap).
NO_ALIAS = ("gather", "index_select", "take", "masked_select", "kthvalue", "bernoulli",
            "complex", "sort", "topk")  # fmt: skip

# torch.special: elementwise (and logsumexp), cast into out's dtype.
SPECIAL = (
    "airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "chebyshev_polynomial_t",
    "chebyshev_polynomial_u", "chebyshev_polynomial_v", "chebyshev_polynomial_w", "digamma",
    "entr", "erf", "erfc", "erfcx", "erfinv", "exp2", "expit", "gammainc", "gammaincc",
    "gammaln", "hermite_polynomial_h", "hermite_polynomial_he", "i0", "i0e", "i1", "i1e",
    "igamma", "igammac", "laguerre_polynomial_l", "legendre_polynomial_p", "log_ndtr", "logit",
    "logsumexp", "modified_bessel_i0", "modified_bessel_i1", "modified_bessel_k0",
    "modified_bessel_k1", "multigammaln", "mvlgamma", "ndtr", "ndtri", "polygamma", "psi",
    "round", "scaled_modified_bessel_k0", "scaled_modified_bessel_k1",
    "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u",
    "shifted_chebyshev_polynomial_v", "shifted_chebyshev_polynomial_w", "sinc",
    "spherical_bessel_j0", "xlog1py", "xlogy", "zeta",
)  # fmt: skip

# torch.fft: out's dtype must be the result's.
FFT = (
    "fft", "fft2", "fftn", "hfft", "hfft2", "hfftn", "ifft", "ifft2", "ifftn", "ihfft", "ihfft2",
    "ihfftn", "irfft", "irfft2", "irfftn", "rfft", "rfft2", "rfftn",
)  # fmt: skip

SPECIAL_SAME = ("round",)  # torch.special.round: out's dtype must be the result's

FFT_REAL = ("hfft", "hfft2", "hfftn", "irfft", "irfft2", "irfftn")

# torch's top-level linear algebra (descent.linalg_torch, loaded on first use).
LINALG_TORCH = (
    "cholesky", "cholesky_inverse", "cholesky_solve", "inverse", "matrix_power", "qr",
    "svd", "slogdet", "lu_unpack",
)  # fmt: skip
HOUSEHOLDER = ("geqrf", "ormqr", "orgqr")  # descent.linalg_householder

# bernoulli writes its 0/1 draws in out's dtype, whatever it is (integer and bool too).
ANY_DTYPE = ("bernoulli", "chain_matmul")  # chain_matmul: PyTorch copies into any dtype

# Factories: the result is made in out's dtype (unless dtype= says otherwise: then an error).
CREATION = (
    "arange", "empty", "eye", "full", "linspace", "logspace", "normal", "ones", "rand",
    "randint", "randn", "randperm", "range", "zeros",
)  # fmt: skip

# torch.linalg: all structured (out's dtype must be the result's).
LINALG = (
    "cholesky", "cross", "det", "eig", "eigh", "eigvals", "eigvalsh",
    "householder_product", "inv", "ldl_factor", "ldl_factor_ex", "ldl_solve",
    "matrix_norm", "matrix_power", "multi_dot", "norm", "qr", "slogdet",
    "solve", "solve_triangular", "svd", "svdvals", "tensorinv", "tensorsolve", "vecdot",
    "vector_norm", "lstsq",
)  # fmt: skip


def _creation(fn, op: str):
    """A factory with out=: no dtype given means out's dtype (PyTorch's rule)."""

    @functools.wraps(fn)
    def wrapper(*args, out=None, **kwargs):
        if out is None:
            return fn(*args, **kwargs)
        return creation_out(fn, args, kwargs, out, op)

    return _mark(wrapper, fn, _creation, op)


def _mark(wrapper, fn, make, op: str):
    # What torch_keywords.torch_names needs to rename the function inside (see with_out), and
    # how a wrapper is told from a function without out=.
    wrapper.__wrapped_for_out__ = fn
    wrapper.__out_rewrap__ = lambda f: make(f, op)
    return wrapper


def _dtype_from_out(fn, op: str):
    """A reduction with dtype=: out's dtype is the dtype it computes in, unless given."""

    @functools.wraps(fn)
    def wrapper(*args, out=None, **kwargs):
        if out is None:
            return fn(*args, **kwargs)
        if kwargs.get("dtype") is None and hasattr(out, "dtype"):
            kwargs["dtype"] = out.dtype
        else:
            check_out_dtype(op, kwargs.get("dtype"), out)
        return write_out(fn(*args, **kwargs), out, op)

    return _mark(wrapper, fn, _dtype_from_out, op)


def check_out_dtype(op: str, dtype, out) -> None:
    """dtype= and out= together must agree (PyTorch: "Expected out tensor to have dtype float,
    but got double instead"; descent cast the result into out)."""
    if dtype is None or not hasattr(out, "dtype"):
        return
    want, got = as_dtype(dtype), out._data.dtype
    if want != got:
        raise DescentError(
            f"{op}: Expected out tensor to have dtype {want}, but got {got} instead (dtype= "
            "and out= disagree), as in PyTorch; pass one of them, or make them the same"
        )


def _in_out_dtype(fn, op: str):
    """std/var/nanmean/logsumexp with out=: computed in out's dtype (see IN_OUT_DTYPE)."""

    @functools.wraps(fn)
    def wrapper(*args, out=None, **kwargs):
        if out is None:
            return fn(*args, **kwargs)
        return write_out(reduce_in_out_dtype(fn, op, args, kwargs, out), out, op)

    return _mark(wrapper, fn, _in_out_dtype, op)


def _logical(fn, op: str):
    """any/all with out=: a bool or uint8 out takes the result (PyTorch's check: "any only
    supports bool tensor for result"), any other dtype raises."""

    @functools.wraps(fn)
    def wrapper(*args, out=None, **kwargs):
        if out is None:
            return fn(*args, **kwargs)
        dt = getattr(getattr(out, "_data", None), "dtype", None)
        if dt is not None and dt not in (np.dtype(np.bool_), np.dtype(np.uint8)):
            raise RuntimeError(
                f"{op} only supports bool tensor for result, got: {scalar_name(dt)} (out has "
                f"dtype {out.dtype}; pass a bool or uint8 out), as in PyTorch"
            )
        return write_out(fn(*args, **kwargs), out, op, same_dtype="any")

    return _mark(wrapper, fn, _logical, op)


def _join(fn, op: str):
    @functools.wraps(fn)
    def wrapper(*args, out=None, **kwargs):
        if out is None:
            return fn(*args, **kwargs)
        return cat_out(fn(*args, **kwargs), out, op)

    return _mark(wrapper, fn, _join, op)


def _takes_out(fn) -> bool:
    if hasattr(fn, "__wrapped_for_out__"):
        return True
    import inspect  # noqa: PLC0415 - only at import of the package, once per function

    try:
        return "out" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True  # unknown: leave it alone


def install(namespace: dict, module: str = "descent") -> list[str]:
    """Give the functions listed above `out=` in `namespace`: descent's globals, or (called at
    the end of each module) those of descent.linalg, descent.special, descent.fft or
    descent.linalg_torch. A function that already takes `out` is left as it is. Returns the
    names wrapped."""
    if module == "linalg":
        return _install_linalg(namespace)
    if module in ("special", "fft", "linalg_torch", "linalg_householder"):
        names = {"special": SPECIAL, "fft": FFT, "linalg_torch": LINALG_TORCH,
                 "linalg_householder": HOUSEHOLDER}[module]  # fmt: skip
        done = []
        for name in names:
            fn = namespace.get(name)
            if fn is None or not callable(fn) or _takes_out(fn):
                continue
            policy = module != "special" or name in SPECIAL_SAME
            if module == "linalg_torch" and name in ("cholesky_inverse",):
                policy = False  # PyTorch's composite: a cast into out
            if module == "fft" and name in FFT_REAL:  # a real result: cast within the kind
                policy = "kind"
            namespace[name] = with_out(fn, name, same_dtype=policy)
            done.append(name)
        return done
    done = []
    for names, make in (
        (DTYPE_FROM_OUT, _dtype_from_out),
        (IN_OUT_DTYPE, _in_out_dtype),
        (LOGICAL, _logical),
        (JOINS, _join),
        (ANY_DTYPE, lambda f, n: with_out(f, n, same_dtype="any", no_alias=n in NO_ALIAS)),
        (CAST, lambda f, n: with_out(f, n, no_alias=n in NO_ALIAS)),
        (SAME, lambda f, n: with_out(f, n, same_dtype=True, no_alias=n in NO_ALIAS)),
        (CREATION, _creation),
    ):
        for name in names:
            fn = namespace.get(name)
            if name in done or fn is None or not callable(fn) or _takes_out(fn):
                continue  # (a name in two lists: the first, more specific, one wins)
            namespace[name] = make(fn, name)
            done.append(name)
    return done


def _install_linalg(namespace: dict) -> list[str]:
    done = []
    for name in LINALG + LINALG_CAST:
        fn = namespace.get(name)
        if fn is None or not callable(fn) or _takes_out(fn):
            continue
        namespace[name] = with_out(fn, f"linalg_{name}", same_dtype=name not in LINALG_CAST)
        done.append(f"linalg.{name}")
    return done
