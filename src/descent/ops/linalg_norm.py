"""The vector norm as one node (torch.linalg.vector_norm), with PyTorch's gradient conventions,
including its subgradients where the norm is not differentiable (descent.linalg builds the
matrix norms from it, amax/amin and svdvals, as PyTorch does)."""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..autograd import Function
from ..errors import DescentError
from ..tensor import Tensor, as_dtype
from ._common import as_tensor
from .elementwise import cast
from .linalg_decomp import check_float
from .shape import reshape


class VectorNorm(Function):
    """||x||_p over `axis`, and PyTorch's norm_backward (linalg_vector_norm_backward):

    * p = 2: gx = gy (x / ||x||), x / ||x|| taken as 0 where the norm is 0;
    * p = 1: gx = gy sign(x) (0 at 0);
    * p = +-inf: gy sign(x) shared evenly by the entries whose |x| is the norm (or nan);
    * p = 0 (the count of nonzeros): no gradient (x.grad stays None, as PyTorch's);
    * other p: gy sign(x) |x|^(p-1) / ||x||^(p-1), 0 where the norm is 0; for p < 1 the form
      sign(x) |x|^(p-1) ||x||^(1-p) with 0 where x = 0.

    Saves the input and the output (the norm).
    """

    __slots__ = ("ord", "axis", "keepdims", "bfloat16")
    save_inputs = True
    save_output = True
    # bfloat16 inputs (ops/bfloat16.py): the dispatch sets `bfloat16` to the dtype
    bfloat16_param = "bfloat16"

    def forward(self, x):
        if x.dtype.itemsize == 2 and self.ord != 0:  # half precision: in float32 and rounded
            # once, as PyTorch (in float16 a sum of squares above 65,504 is inf)
            return self._norm(x.astype(np.float32)).astype(x.dtype)
        return self._norm(x)

    def _norm(self, x):
        xp = backend.get_array_module(x)
        ax, kd, p = self.axis, self.keepdims, self.ord
        if p != 0 and x.ndim and x.size and all(x.shape[a] == 1 for a in ax):
            # One element per norm: |x| exactly, as PyTorch (|x|^p underflows or overflows
            # first: 0 for a float32 1e-30 at p = 3, where PyTorch's gradient is 0 * inf = nan).
            # Not for a 0-d x, whose norm over a named dim PyTorch computes (vector_norm
            # reshapes it when no dim is named).
            return xp.abs(x).sum(axis=ax, keepdims=kd)
        if p == 2:
            return xp.sqrt((x * x).sum(axis=ax, keepdims=kd))
        if p == 0:
            return (x != 0).sum(axis=ax, keepdims=kd).astype(x.dtype)
        a = xp.abs(x)
        if p == math.inf:
            return a.max(axis=ax, keepdims=kd)
        if p == -math.inf:
            return a.min(axis=ax, keepdims=kd)
        if p == 1:
            return a.sum(axis=ax, keepdims=kd)
        return (a**p).sum(axis=ax, keepdims=kd) ** (1.0 / p)

    def backward(self, gy, ops):
        p = self.ord
        if p == 0:
            return None  # piecewise constant
        (x,) = self.inputs(ops)
        nrm = self.output(ops)
        kept = self._kept_shape()
        g, nrm = gy.reshape(kept), nrm.reshape(kept)
        # Masks are constants of the graph: computed on the arrays in both namespaces.
        xd = x._data if ops.is_graph else x
        nd = nrm._data if ops.is_graph else nrm
        xp = backend.get_array_module(xd)
        if p == 1:
            return ops.sign(x) * g
        if p in (math.inf, -math.inf):
            ad = xp.abs(xd)
            mask = (ad == nd) | xp.isnan(ad)
            share = mask / mask.sum(axis=self.axis, keepdims=True)  # evenly among the ties
            return ops.sign(x) * (g * share.astype(xd.dtype))
        zero_norm = nd == 0
        low = np.float16 if xd.dtype == np.float16 else getattr(self, "bfloat16", None)
        if low is not None and not ops.is_graph:  # float16, or bfloat16 as float32 arrays
            f32 = np.float32
            out = _low_norm_backward(x.astype(f32), g.astype(f32), nrm.astype(f32),
                                     zero_norm, p, low)  # fmt: skip
            return out.astype(low) if low is np.float16 else out
        if p == 2:  # PyTorch's grad * (x / ||x||).masked_fill_(norm == 0, 0): in that order,
            # and a nan or inf gy stays nan at a zero norm (0 * nan)
            return g * ops.where(zero_norm, 0.0, x / ops.where(zero_norm, 1.0, nrm))
        scale = ops.where(zero_norm, 0.0, g / ops.where(zero_norm, 1.0, nrm) ** (p - 1))
        ax = abs(x)
        if p < 1:
            # |x|^(p-1) is infinite at x = 0: PyTorch masks it to 0 (and the base to 1 first,
            # so that no inf reaches a second derivative).
            x0 = xd == 0
            xs = ops.where(x0, 0.0, ops.where(x0, 1.0, ax) ** (p - 1))
            return ops.sign(x) * xs * (g * nrm ** (1 - p))
        if p < 2:
            return ops.sign(x) * ax ** (p - 1) * scale
        return x * ax ** (p - 2) * scale

    def _kept_shape(self):
        """The input's shape with the reduced axes as 1 (gy and the norm broadcast over x)."""
        return tuple(1 if i in self.axis else n for i, n in enumerate(self.in_shapes[0]))


def _low_norm_backward(x, g, nrm, zero_norm, p, low):
    """PyTorch's norm_backward for finite p other than 0 and 1 as its float16 or bfloat16 ops
    run it (on float32 arrays holding their values): each op rounded to `low`, the last by the
    caller (bfloat16: the cast's backward). The float32 formula above rounds once (bfloat16:
    up to a unit apart in most elements), and for p < 1 it multiplies in another order."""
    def r(a):
        return a.astype(low).astype(a.dtype)

    xp = backend.get_array_module(x)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if p == 2:  # grad * (self / norm).masked_fill_(norm == 0, 0)
            return g * xp.where(zero_norm, 0, r(x / nrm)).astype(x.dtype)
        ax = xp.abs(x)
        if p < 1:  # sgn(x) * |x|^(p-1) (0 at 0) * grad * norm^(1-p)
            xs = r(xp.sign(x) * xp.where(x == 0, 0, r(ax ** (p - 1))).astype(x.dtype))
            return r(xs * g) * r(nrm ** (1 - p))
        scale = xp.where(zero_norm, 0, r(g / r(nrm ** (p - 1)))).astype(x.dtype)
        xs = r(xp.sign(x) * r(ax ** (p - 1))) if p < 2 else r(x * r(ax ** (p - 2)))
        return xs * scale


def vector_norm(x, ord=2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """The vector ord-norm of x over `dim` (all entries when None; torch.linalg.vector_norm):
    ord 2 (default), 1, inf (max |x|), -inf (min |x|), 0 (the number of nonzeros) or any real p
    (sum |x|^p)^(1/p). `dtype` casts x first. Floating inputs only, as PyTorch."""
    x = as_tensor(x)
    if dtype is not None and x._data.dtype.kind == "c":
        # PyTorch: a complex input takes a complex dtype (cast to it, then the norm of the
        # moduli, real: complex64 -> float32); a real dtype raises
        dt = as_dtype(dtype)
        if dt.kind != "c":
            raise DescentError(f"linalg.vector_norm: dtype should be complex for complex "
                               f"inputs, but got {dt}")  # fmt: skip
        x, dtype = cast(x, dt), None
    elif dtype is not None and as_dtype(dtype).kind == "c":
        raise DescentError(f"linalg.vector_norm: dtype should be real for real inputs, but got "
                           f"{as_dtype(dtype)}")  # fmt: skip
    if x._data.dtype.kind == "c" and dtype is None:  # the norm of the moduli (real), as PyTorch
        x = x.abs()
    check_float("linalg.vector_norm", x, low_precision=True)
    if dtype is not None and not _widens(x._data.dtype, as_dtype(dtype)):
        raise DescentError(
            f"linalg.vector_norm: the dtype of the input ({x._data.dtype}) should be "
            f"convertible without narrowing to the specified dtype ({as_dtype(dtype)}), as in "
            "PyTorch; pass a dtype at least as wide as the input's"
        )
    if dtype is not None:
        x = cast(x, dtype)
        check_float("linalg.vector_norm", x, low_precision=True)
    if isinstance(ord, str) or isinstance(ord, bool) or not isinstance(ord, (int, float)):
        try:
            ord = float(ord)
        except (TypeError, ValueError):
            raise TypeError(
                f"linalg.vector_norm: ord must be a number (2, 1, inf, -inf, 0 or any p), got "
                f"{ord!r}; use linalg.matrix_norm for 'fro' and 'nuc'"
            ) from None
    ord = float(ord)
    if x.ndim == 0 and dim in (None, (), []):  # |x| exactly, as PyTorch's (see forward)
        return vector_norm(reshape(x, (1,)), ord)  # (0-d already: no reshape node)
    axis = _axes("linalg.vector_norm", dim, x.ndim)
    if (ord < 0 or math.isinf(ord)) and any(x.shape[i] == 0 for i in axis):
        # a negative p is a power mean of 1/|x|^p: no identity either (PyTorch's error)
        raise DescentError(
            f"linalg.vector_norm cannot compute the {ord} norm on an empty tensor (shape "
            f"{tuple(x.shape)}) because the operation does not have an identity"
        )
    return VectorNorm.apply(x, ord=ord, axis=axis, keepdims=bool(keepdim))


def _widens(src, dst) -> bool:
    """src converts to dst without narrowing (PyTorch's promote(src, dst) == dst among the
    floating dtypes: float16 and bfloat16 only to themselves or a wider one)."""
    same_family = src.kind == dst.kind or src.kind == "V"  # (bfloat16's NumPy kind is "V")
    return src == dst or (same_family and dst.itemsize > src.itemsize)


def _axes(op, dim, ndim) -> tuple:
    """`dim` (None, an int or a sequence; None and () mean all) as a sorted tuple of
    non-negative axes."""
    dims = (dim,) if isinstance(dim, int) or dim is None else tuple(dim)
    if dim is None or not dims:  # None and () both reduce every dimension, as PyTorch
        return tuple(range(ndim))
    out = []
    for d in dims:
        lo = -max(ndim, 1)
        if not lo <= d < max(ndim, 1):
            raise IndexError(
                f"{op}: Dimension out of range (expected to be in range of [{lo}, "
                f"{max(ndim, 1) - 1}], but got {d})"
            )
        out.append(d % max(ndim, 1) if ndim else 0)
    if len(set(out)) != len(out):
        raise DescentError(f"{op}: dim {dims} names a dimension twice")
    if ndim == 0:
        return ()
    return tuple(sorted(out))
