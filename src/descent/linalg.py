"""descent.linalg: PyTorch's torch.linalg namespace, with gradients (see docs/linalg.md).

    >>> import descent as ds
    >>> A = ds.tensor([[2.0, 1.0], [1.0, 3.0]], requires_grad=True)
    >>> ds.linalg.det(A).backward()
    >>> A.grad  # the cofactor matrix, det(A) A^{-T}
    tensor([[ 3., -1.],
            [-1.,  2.]])

Real float32/float64 inputs (complex64/complex128 where docs/linalg.md says so), batched over
the leading dimensions. The op classes live in `descent.ops.linalg_decomp` (det, slogdet, inv,
solve, cholesky, qr), `linalg_spectral` (eigh, eigvalsh, svd, svdvals, pinv), `linalg_eig`
(eig, eigvals) and `linalg_norm` (vector_norm); this module adds the
compositions (matrix_norm, norm, matrix_power, multi_dot, vecdot, cross, diagonal, lstsq,
matrix_rank, cond, ...) and PyTorch's named-tuple results.
"""

from __future__ import annotations

import math as _math
import warnings as _warnings

from . import amp as _amp
from . import backend as _backend
from .errors import DescentError as _DescentError
from .linalg_ex import cholesky_ex, inv_ex, solve_ex  # info instead of errors
from .linalg_householder import householder_product  # Householder reflectors: geqrf's Q
from .linalg_ldl import ldl_factor, ldl_factor_ex, ldl_solve  # Bunch-Kaufman LDL^T
from .linalg_lu import lu, lu_factor, lu_factor_ex, lu_solve  # LU: docs/linalg.md
from .ops._common import as_tensor as _as_tensor
from .ops._common import return_type as _return_type
from .ops.arithmetic import scale as _scale
from .ops.elementwise import where as _where
from .ops.linalg import matmul
from .ops.linalg_decomp import (
    LinAlgError,
    cholesky,
    det,
    inv,
    solve,
)
from .ops.linalg_decomp import check_float as _check_float
from .ops.linalg_decomp import prepare as _prepare
from .ops.linalg_decomp import qr as _qr
from .ops.linalg_decomp import slogdet as _slogdet
from .ops.linalg_decomp import solve_checked as _solve_checked
from .ops.linalg_eig import eig as _eig
from .ops.linalg_eig import eigvals
from .ops.linalg_norm import vector_norm
from .ops.linalg_spectral import eigh as _eigh
from .ops.linalg_spectral import eigvalsh, pinv
from .ops.linalg_spectral import largest as _largest
from .ops.linalg_spectral import svd as _svd
from .ops.linalg_spectral import svdvals as _svdvals
from .ops.linalg_spectral import tolerances as _tolerances
from .ops.reduce import amax as _amax
from .ops.reduce import amin as _amin
from .ops.reduce import sum as _sum
from .ops.scan import cumprod as _cumprod
from .ops.shape import cat as _cat
from .ops.shape import expand as _expand
from .ops.shape import tril as _tril
from .ops.shape import triu as _triu
from .ops.shape import unsqueeze as _unsqueeze
from .ops.shape_index import _axis
from .ops.shape_index import diagonal as _diagonal
from .ops.shape_index import movedim as _movedim
from .ops.torch_extra import cross as _cross
from .ops.untracked import computed as _computed
from .ops.untracked import guarded as _guarded
from .tensor import Tensor as _Tensor

__all__ = [
    "LinAlgError", "cholesky", "cholesky_ex", "cond", "cross", "det", "diagonal", "eig",
    "eigh", "eigvals", "eigvalsh", "householder_product", "inv", "inv_ex", "ldl_factor",
    "ldl_factor_ex", "ldl_solve", "lstsq", "lu", "lu_factor", "lu_factor_ex",
    "lu_solve", "matmul", "matrix_exp", "matrix_norm", "matrix_power", "matrix_rank", "multi_dot",
    "norm", "pinv", "qr", "slogdet", "solve", "solve_ex", "solve_triangular", "svd", "svdvals",
    "tensorinv", "tensorsolve", "vander", "vecdot", "vector_norm",
]  # fmt: skip


# PyTorch's named tuples (torch.return_types.linalg_*): fields by name and tuple unpacking,
# printed as torch prints them; private names (torch.linalg has no result classes)
_SlogdetResult = _return_type("linalg_slogdet", ["sign", "logabsdet"])
_EigResult = _return_type("linalg_eig", ["eigenvalues", "eigenvectors"])
_EighResult = _return_type("linalg_eigh", ["eigenvalues", "eigenvectors"])
_QRResult = _return_type("linalg_qr", ["Q", "R"])
_SVDResult = _return_type("linalg_svd", ["U", "S", "Vh"])
_LstsqResult = _return_type("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])


def slogdet(A) -> _SlogdetResult:
    """(sign, logabsdet) of a (batch of) square matrix: det(A) = sign * exp(logabsdet).
    d logabsdet / dA = A^{-T}; the sign has no gradient."""
    return _SlogdetResult(*_slogdet(A))


def eigh(A, UPLO: str = "L") -> _EighResult:
    """(eigenvalues ascending, eigenvectors as columns) of a symmetric (batch of) matrix; only
    the UPLO triangle is read. The eigenvector gradient divides by eigenvalue gaps: infinite
    at repeated eigenvalues, as PyTorch's (docs/linalg.md)."""
    return _EighResult(*_eigh(A, UPLO))


def eig(A) -> _EigResult:
    """(eigenvalues, eigenvectors as columns) of a square (batch of) matrix, both complex
    (complex64 for float32 / complex64 A); eigenvectors of norm 1 as LAPACK's geev returns
    them. The gradient refuses a loss that depends on the eigenvectors' phases, as PyTorch's
    (docs/linalg.md)."""
    return _EigResult(*_eig(A))


def qr(A, mode: str = "reduced") -> _QRResult:
    """(Q, R) with A = Q R: mode 'reduced', 'complete' or 'r' (Q empty, not differentiable)."""
    return _QRResult(*_qr(A, mode))


def svdvals(A, *, driver=None):
    """Singular values, descending (torch.linalg.svdvals); `driver=` is accepted as PyTorch's
    (None; a named cuSOLVER driver raises, as PyTorch's CPU kernel does)."""
    if driver is not None:
        raise _DescentError(
            "linalg.svdvals: driver= is a cuSOLVER option (PyTorch takes it for CUDA inputs "
            "only); descent has one driver: leave it None"
        )
    return _svdvals(A)


def svd(A, full_matrices: bool = True, *, driver=None) -> _SVDResult:
    """(U, S, Vh) with A = U diag(S) Vh, S descending. The singular-vector gradient divides by
    gaps between squared singular values (infinite at repeated ones, as PyTorch's); with
    full_matrices=True the extra columns of U / rows of Vh get no gradient."""
    if driver is not None:
        raise _DescentError("linalg.svd: driver= is a cuSOLVER option; descent has one driver")
    return _SVDResult(*_svd(A, full_matrices))


# ---------------------------------------------------------------------------------------------
# Norms


def _fix_matrix_dims(op, A, dim):
    if isinstance(dim, int) or len(dim) != 2:
        raise _DescentError(f"{op}: dim must be a 2-tuple. Got {dim}")
    if A.ndim < 2:
        raise _DescentError(
            f"{op}: The input tensor A must have at least 2 dimensions, got shape "
            f"{tuple(A.shape)}"
        )
    d0, d1 = (d % A.ndim if -A.ndim <= d < A.ndim else None for d in dim)
    if d0 is None or d1 is None:
        raise IndexError(f"{op}: Dimension out of range (dims {dim} for shape {tuple(A.shape)})")
    if d0 == d1:
        raise _DescentError(f"{op}: dims must be different. Got ({dim[0]}, {dim[1]})")
    return d0, d1


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None) -> _Tensor:
    """The matrix ord-norm over the two dimensions `dim` (torch.linalg.matrix_norm): 'fro'
    (default), 'nuc' (sum of singular values), 2 / -2 (largest / smallest singular value),
    1 / -1 (max / min column sum of |A|), inf / -inf (max / min row sum of |A|)."""
    A = _as_tensor(A)
    # complex: moduli or singular values; float16 / bfloat16 as PyTorch (not for the SVD norms)
    _check_float("linalg.matrix_norm", A, low_precision=True, complex_ok=True)
    if dtype is not None:
        from .ops.elementwise import cast

        A = cast(A, dtype)
    d0, d1 = _fix_matrix_dims("linalg.matrix_norm", A, dim)
    if ord not in ("fro", "nuc", 1, -1, 2, -2, _math.inf, -_math.inf):
        raise _DescentError(
            f"linalg.matrix_norm: Order {ord!r} not supported; use 'fro', 'nuc', 1, -1, 2, -2, "
            "inf or -inf"
        )
    if ord in ("nuc", 2, -2):  # an SVD: float16 / bfloat16 raise, empty matrices too (PyTorch)
        _check_float("linalg.matrix_norm", A, complex_ok=True)
    if ord in ("fro", "nuc", 2, 1, _math.inf) and (A.shape[d0] == 0 or A.shape[d1] == 0):
        # An empty matrix: 0 for the norms that are maxima or sums, as PyTorch (the minima,
        # -2, -1, -inf, raise where they reduce over nothing, as PyTorch's amin).
        return vector_norm(A, 2, (d0, d1), keepdim)
    if ord == "fro":
        return vector_norm(A, 2, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2):
        s = svdvals(_movedim(A, (d0, d1), (-2, -1)))
        out = _sum(s, -1) if ord == "nuc" else (_amax(s, -1) if ord == 2 else _amin(s, -1))
        if keepdim:
            for d in sorted((d0, d1)):
                out = _unsqueeze(out, d)
        return out
    if ord in (1, -1, _math.inf, -_math.inf):
        # 1: the largest column sum (sum over rows d0, then max over columns d1); inf: rows.
        inner, outer = (d0, d1) if abs(ord) == 1 else (d1, d0)
        sums = vector_norm(A, 1, inner, keepdim=True)
        out = _amax(sums, outer, keepdims=True) if ord > 0 else _amin(sums, outer, keepdims=True)
        if not keepdim:
            out = out.reshape(tuple(n for i, n in enumerate(out.shape) if i not in (d0, d1)))
    return out


def norm(A, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> _Tensor:
    """torch.linalg.norm's dispatch: a string ord or a 2-tuple dim is a matrix norm; an int or
    1-tuple dim is a vector norm; with dim None, ord None is the 2-norm of all entries, and
    another ord needs a 1-D (vector norm) or 2-D (matrix norm) input."""
    A = _as_tensor(A)
    if A._data.dtype.kind == "c" and dtype is None:
        # complex input: every norm but the spectral ones (singular values) is that of the
        # moduli |a_ij|, a real result with abs's gradient z/|z| (docs/complex.md)
        two = dim is not None and not isinstance(dim, int) and len(tuple(dim)) == 2
        matrix = two or (dim is None and ord is not None and (isinstance(ord, str) or A.ndim == 2))
        if not (matrix and ord in ("nuc", 2, -2)):
            A = A.abs()
    _check_float("linalg.norm", A, low_precision=True, complex_ok=True)
    if dim is not None:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        if len(dims) == 2:
            return matrix_norm(A, "fro" if ord is None else ord, dims, keepdim, dtype=dtype)
        if len(dims) != 1:
            raise _DescentError(f"linalg.norm: If dim is specified, it must be of length 1 or 2. "
                               f"Got {dim}")  # fmt: skip
        if isinstance(ord, str):
            raise _DescentError(f"linalg.norm: ord={ord!r} is a matrix norm: pass two dims")
        return vector_norm(A, 2 if ord is None else ord, dims, keepdim, dtype=dtype)
    if ord is None:
        return vector_norm(A, 2, None, keepdim, dtype=dtype)
    if isinstance(ord, str) or A.ndim == 2:
        if A.ndim != 2:
            raise _DescentError(
                f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. "
                f"Got {A.ndim}D (shape {tuple(A.shape)})"
            )
        return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)
    if A.ndim != 1:
        raise _DescentError(
            f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. "
            f"Got {A.ndim}D (shape {tuple(A.shape)})"
        )
    return vector_norm(A, ord, None, keepdim, dtype=dtype)


def cond(A, p=None) -> _Tensor:
    """The condition number ||A||_p ||A^{-1}||_p (torch.linalg.cond); p None or 2: the ratio of
    the extreme singular values (any shape), -2 the inverse ratio; other p need square A."""
    A = _as_tensor(A)
    _check_float("linalg.cond", A, complex_ok=True)
    if A.ndim >= 2 and A.numel() == 0:
        # PyTorch (as NumPy leaves it undefined): 0 for each empty matrix, real; a string p
        # checks for square matrices first
        if isinstance(p, str) and A.shape[-1] != A.shape[-2]:
            _prepare("linalg.cond", A, complex_ok=True)  # raises its square-matrix error
        xp = _backend.get_array_module(A._data)
        real = xp.zeros((), A._data.dtype).real.dtype
        return _Tensor._wrap(xp.zeros(tuple(A.shape[:-2]), dtype=real))
    if p in (None, 2, -2):
        s = svdvals(A)
        return s[..., 0] / s[..., -1] if p != -2 else s[..., -1] / s[..., 0]
    A = _prepare("linalg.cond", A, complex_ok=True)  # complex: inv checks its own support
    return matrix_norm(A, p) * matrix_norm(inv(A), p)


# ---------------------------------------------------------------------------------------------
# Products and compositions


def matrix_power(A, n: int) -> _Tensor:
    """A^n for an integer n (torch.linalg.matrix_power): repeated squaring (a product of
    matmuls, differentiable as such); n < 0 is inv(A)^|n|; n = 0 the identity (its gradient is
    zero)."""
    if not isinstance(n, int) or isinstance(n, bool):
        raise _DescentError(f"linalg.matrix_power: n must be an integer, got {n!r}")
    A = _as_tensor(A)
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise _DescentError(
            f"linalg.matrix_power: A must be batches of square matrices, got shape "
            f"{tuple(A.shape)}"
        )
    if n == 0:
        xp = _backend.get_array_module(A._data)
        eye = xp.broadcast_to(xp.eye(A.shape[-1], dtype=A._data.dtype), A.shape)
        # The identity, connected to A with a zero gradient (PyTorch's result requires grad).
        # (a scaling that frees nothing: PyTorch's CopyBackwards runs again on a 2nd backward)
        return _scale(A, 0) + eye if A.requires_grad else _Tensor._wrap(eye.copy())
    if n < 0:
        A = inv(A)
        n = -n
    result, base = None, A
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result


def multi_dot(tensors) -> _Tensor:
    """The product of a chain of matrices (torch.linalg.multi_dot); the first may be a 1-D row
    vector and the last a 1-D column vector. The order of products is chosen by the classic
    dynamic programme on the shapes (fewest scalar multiplications)."""
    ts = [_as_tensor(t) for t in tensors]
    if len(ts) < 2:
        raise _DescentError(f"multi_dot(): expected at least 2 tensors but got {len(ts)}")
    for i, t in enumerate(ts):
        ok = t.ndim == 2 or (t.ndim == 1 and i in (0, len(ts) - 1))
        if not ok:
            raise _DescentError(
                f"multi_dot(): tensor {i} must be 2D{' or 1D' if i in (0, len(ts) - 1) else ''}"
                f" but got {t.ndim}D (shape {tuple(t.shape)})"
            )
    first_vec, last_vec = ts[0].ndim == 1, ts[-1].ndim == 1
    if first_vec:
        ts[0] = ts[0].reshape(1, -1)
    if last_vec:
        ts[-1] = ts[-1].reshape(-1, 1)
    for i in range(len(ts) - 1):
        if ts[i].shape[1] != ts[i + 1].shape[0]:
            raise _DescentError(
                f"multi_dot(): tensors {i} and {i + 1} with shapes {tuple(ts[i].shape)} and "
                f"{tuple(ts[i + 1].shape)} cannot be multiplied"
            )
    out = _chain(ts)
    if first_vec and last_vec:
        return out.reshape(())
    if first_vec:
        return out.reshape(-1)
    if last_vec:
        return out.reshape(-1)
    return out


def _chain(ts):
    """The matrix chain product in the cheapest order (Cormen et al., ch. 15.2)."""
    dims = [ts[0].shape[0]] + [t.shape[1] for t in ts]
    k = len(ts)
    cost = [[0] * k for _ in range(k)]
    split = [[0] * k for _ in range(k)]
    for length in range(1, k):
        for i in range(k - length):
            j = i + length
            cost[i][j] = _math.inf
            for s in range(i, j):
                c = cost[i][s] + cost[s + 1][j] + dims[i] * dims[s + 1] * dims[j + 1]
                if c < cost[i][j]:
                    cost[i][j], split[i][j] = c, s
    # Evaluate with an explicit stack (no recursion): post-order over the split tree.
    results: dict = {}
    stack = [(0, k - 1, False)]
    while stack:
        i, j, ready = stack.pop()
        if i == j:
            results[(i, j)] = ts[i]
        elif ready:
            s = split[i][j]
            results[(i, j)] = matmul(results.pop((i, s)), results.pop((s + 1, j)))
        else:
            s = split[i][j]
            stack += [(i, j, True), (i, s, False), (s + 1, j, False)]
    return results[(0, k - 1)]


def vecdot(x, y, *, dim: int = -1) -> _Tensor:
    """The dot product of x and y along `dim` (torch.linalg.vecdot): sum(conj(x) * y), which is
    sum(x * y) for real x."""
    x = _as_tensor(x)
    y = _as_tensor(y, x)
    if _amp._depth:  # on PyTorch's autocast list (linalg_vecdot): the low dtype
        x, y = _amp._lower(x, y)
    if x._data.dtype != y._data.dtype:
        raise _DescentError(
            f"linalg.vecdot: Expected x and y to have the same dtype, but found x of type "
            f"{x._data.dtype} and y of type {y._data.dtype} instead"
        )
    if x._data.dtype.kind not in "fcV":
        raise _DescentError(
            f"linalg.vecdot: Expected a floating point or complex tensor as input. Got "
            f"{x._data.dtype} (shapes {tuple(x.shape)} and {tuple(y.shape)})"
        )
    if x._data.dtype.kind == "c":
        x = x.conj()
    return _sum(x * y, dim)


def cross(input, other, *, dim: int = -1) -> _Tensor:
    """The 3-D cross product along `dim` (torch.linalg.cross: default the last dimension;
    broadcasting)."""
    a, b = _as_tensor(input), _as_tensor(other)
    if a.ndim != b.ndim:
        raise _DescentError(
            f"linalg.cross: inputs must have the same number of dimensions, got shapes "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    d = _axis(a, dim, "linalg.cross")
    if a.shape[d] != 3 or b.shape[d] != 3:
        raise _DescentError(
            f"linalg.cross: inputs dimension {dim} must have length 3, got shapes "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    return _cross(a, b, dim)


def diagonal(A, *, offset: int = 0, dim1: int = -2, dim2: int = -1) -> _Tensor:
    """The diagonals of A over (dim1, dim2) (torch.linalg.diagonal: the last two by default)."""
    return _diagonal(_as_tensor(A), offset, dim1, dim2)


def matrix_rank(A, tol=None, hermitian: bool = False, *, atol=None, rtol=None) -> _Tensor:
    """The number of singular values above max(atol, rtol * sigma_max) (int64; no gradient);
    rtol defaults to eps * max(m, n), or 0 where an atol > 0 is given, as PyTorch. atol and
    rtol may be Tensors that broadcast against A's batch dimensions. `tol` (PyTorch's older
    overload, `matrix_rank(A, tol, hermitian)`) is atol with rtol 0."""
    A = _prepare("linalg.matrix_rank", _as_tensor(A), square=hermitian, complex_ok=True)
    if tol is not None:
        if atol is not None or rtol is not None:
            raise TypeError("linalg.matrix_rank: give tol, or atol/rtol, not both")
        atol, rtol = tol, 0.0
    _tolerances("linalg.matrix_rank", A, atol, rtol)  # (the checks, on this call's values)
    # Through untracked.computed: descent.compile replays the count on each call's A and
    # tolerance tensors (both were frozen when the first two calls agreed: the tolerances as
    # arrays converted outside the kernel). A Tensor tolerance is an input, a number an argument.
    tols = tuple(t for t in (atol, rtol) if isinstance(t, _Tensor))
    spec = tuple(_TOL_INPUT if isinstance(t, _Tensor) else t for t in (atol, rtol))
    return _computed(_rank_kernel, (A, *tols), (spec, hermitian))


_TOL_INPUT = "<a tolerance tensor>"  # matrix_rank's kernel: this tolerance is an input


def _rank_kernel(a, *rest):
    """matrix_rank's count of singular values above the tolerance (untracked.computed): the
    arrays of A and of the Tensor tolerances, then (atol, rtol) with `_TOL_INPUT` in the
    place of each Tensor, and hermitian."""
    *given, spec, hermitian = rest
    xp = _backend.get_array_module(a)
    given = iter(given)
    atol, rtol = (_Tensor._wrap(next(given)) if isinstance(t, str) else t for t in spec)
    atol, rtol = _tolerances("linalg.matrix_rank", _Tensor._wrap(a), atol, rtol)
    if hermitian:
        s = xp.abs(xp.linalg.eigvalsh(a))
    else:
        s = xp.linalg.svd(a, compute_uv=False)
    tol = xp.maximum(atol, rtol * _largest(s))  # (batch,), broadcast with the tolerances'
    return (s > tol[..., None]).sum(axis=-1).astype(xp.int64)


@_amp._float32_op  # on PyTorch's autocast float32 list
def lstsq(A, B, rcond=None, *, driver=None) -> _LstsqResult:
    """The least-squares solution of A X = B (torch.linalg.lstsq): X = pinv(A) B with
    singular values below rcond * sigma_max cut (rcond default eps * max(m, n)). The solution
    has PyTorch's gradient for full-rank A (through pinv). As PyTorch's CPU default driver
    'gelsy': rank is returned, residuals and singular_values are empty; with driver 'gelsd'
    or 'gelss' the singular values too, and residuals (the squared residual norm of each
    column) when m > n and every matrix has full rank. Complex A and B (one dtype, as
    PyTorch requires): a complex solution, real residuals (sum of |r|^2) and singular values."""
    A = _prepare("linalg.lstsq", A, square=False, complex_ok=True)
    B = _as_tensor(B)
    _check_float("linalg.lstsq", B, complex_ok=True)
    if A._data.dtype != B._data.dtype:
        raise _DescentError(
            f"linalg.lstsq: Expected input and other to have the same dtype, but got input's "
            f"dtype {A._data.dtype} and other's dtype {B._data.dtype}"
        )
    drivers = ("gels", "gelsy", "gelsd", "gelss")
    driver = driver or "gelsy"
    if driver not in drivers:
        raise _DescentError(f"linalg.lstsq: parameter `driver` should be one of {drivers}")
    m, n = A.shape[-2:]
    vector = B.ndim == A.ndim - 1
    Bm = B.reshape(tuple(B.shape) + (1,)) if vector else B
    if Bm.shape[-2] != m:
        raise _DescentError(
            f"linalg.lstsq: input.size(-2) should match other.size(-2) (shapes "
            f"{tuple(A.shape)} and {tuple(B.shape)})"
        )
    xp = _backend.get_array_module(A._data)
    dt = A._data.dtype
    eps = float(xp.finfo(dt).eps)
    rtol = eps * max(m, n) if rcond is None or rcond < 0 else float(rcond)
    x = matmul(pinv(A, rtol=rtol), Bm)
    # The singular values and the rank through untracked.computed: descent.compile replays
    # them on each call's A (made on the arrays, they were constants frozen when two calls
    # agreed), and the branch on the rank below reads a Tensor (its read guard sees it)
    s = _computed(_lstsq_svals, (A,), ())
    rank = _computed(_lstsq_rank, (s,), (rtol,))
    empty = _Tensor._wrap(xp.zeros((0,), dtype=s._data.dtype))  # real, as the residuals
    # No residuals: still an output of the graph (PyTorch's requires grad), with a zero
    # gradient: an empty slice of the solution (its real part for complex input)
    residuals = x.reshape(-1)[:0]
    residuals = residuals.real if residuals.is_complex() else residuals
    if driver != "gelsy" and m > n and bool((rank == n).all()):
        r = matmul(A, x) - Bm
        r2 = (r.conj() * r).real if r.is_complex() else r * r  # |r|^2
        residuals = _sum(r2, -2)
    if vector:  # the residuals keep their one column: (..., 1), as PyTorch's
        x = x.reshape(tuple(x.shape[:-1]))
    svals = s if driver in ("gelsd", "gelss") else empty
    rank_t = rank if driver != "gels" else _Tensor._wrap(xp.zeros((0,), xp.int64))
    return _LstsqResult(x, residuals, rank_t, svals)


def _lstsq_svals(a):
    """lstsq's singular values of a (untracked.computed's kernel)."""
    return _backend.get_array_module(a).linalg.svd(a, compute_uv=False)


def _lstsq_rank(s, rtol):
    """lstsq's rank: the singular values above rtol times the largest (computed's kernel)."""
    return (s > rtol * _largest(s)[..., None]).sum(axis=-1).astype("int64")


# ---------------------------------------------------------------------------------------------
# Compositions of the solvers: triangular and tensor systems, the matrix exponential, vander


@_amp._float32_op  # on PyTorch's autocast float32 list
def solve_triangular(A, B, *, upper: bool, left: bool = True,
                     unitriangular: bool = False) -> _Tensor:  # fmt: skip
    """The solution of the triangular system A X = B (X A = B with left=False)
    (torch.linalg.solve_triangular): only A's `upper` (or lower) triangle is read, and with
    unitriangular=True its diagonal is taken as ones. Composite (a general solve of the
    masked matrix), so A's gradient is the masked triangle, as PyTorch's. B is computed in A's
    dtype, as PyTorch's (a complex B with a real A loses its imaginary part, with PyTorch's
    warning)."""
    A = _prepare("linalg.solve_triangular", A, complex_ok=True)
    B = _as_tensor(B)
    _check_float("linalg.solve_triangular", B, complex_ok=True)
    if B._data.dtype != A._data.dtype:
        if B._data.dtype.kind == "c" and A._data.dtype.kind != "c":
            _warnings.warn("linalg.solve_triangular: casting complex values to real discards the "
                          "imaginary part (B to A's dtype, as PyTorch)", UserWarning,
                          stacklevel=2)  # fmt: skip
        B = B.to(A.dtype)
    if B.ndim < 2:
        raise _DescentError(
            f"linalg.solve_triangular: The input tensor B must have at least 2 dimensions, got "
            f"shape {tuple(B.shape)}"
        )
    T = _triu(A) if upper else _tril(A)
    if unitriangular:
        xp = _backend.get_array_module(A._data)
        eye = xp.eye(A.shape[-1], dtype=bool)
        T = _where(eye, 1.0, T)  # the diagonal read as ones, with no gradient
    # a singular triangle gives infinities and nans (PyTorch's trsm), not LinAlgError
    return _solve_checked(T, B, left, bool(upper))


def tensorinv(A, ind: int = 2) -> _Tensor:
    """The inverse of A seen as a linear map from its last dims to its first `ind` dims
    (torch.linalg.tensorinv): inv of the (prod(shape[:ind]), prod(shape[ind:])) matrix,
    reshaped to shape[ind:] + shape[:ind]."""
    A = _as_tensor(A)
    if ind <= 0:
        raise _DescentError(f"linalg.tensorinv: Expected a strictly positive integer for 'ind', "
                           f"but got {ind}")  # fmt: skip
    rows, cols = A.shape[:ind], A.shape[ind:]
    if _math.prod(rows) != _math.prod(cols):
        raise _DescentError(
            f"linalg.tensorinv: Expected self to satisfy the requirement "
            f"prod(self.shape[ind:]) == prod(self.shape[:ind]), but got {_math.prod(cols)} != "
            f"{_math.prod(rows)} (shape {tuple(A.shape)}, ind={ind})"
        )
    n = _math.prod(rows)
    return inv(A.reshape(n, n)).reshape(tuple(cols) + tuple(rows))


def tensorsolve(A, B, dims=None) -> _Tensor:
    """X with tensordot(A, X, X.ndim) = B (torch.linalg.tensorsolve); `dims` are moved to the
    end of A first. As PyTorch, only the sizes' products must agree: A's leading dims
    (B.ndim of them) are read as one axis of prod(B.shape), its trailing dims (X's shape) as
    the other, and X = solve(A as that square matrix, B flattened)."""
    A, B = _as_tensor(A), _as_tensor(B)
    if dims is not None:
        dims = tuple(d % A.ndim for d in dims)
        A = _movedim(A, dims, tuple(range(A.ndim - len(dims), A.ndim)))
    rest = tuple(A.shape[B.ndim:])
    n = _math.prod(rest)
    if _math.prod(B.shape) != n:
        raise _DescentError(
            f"linalg.tensorsolve: Expected self to satisfy the requirement "
            f"prod(self.shape[other.ndim:]) == prod(self.shape[:other.ndim]), but got {n} != "
            f"{_math.prod(B.shape)} (A {tuple(A.shape)} after dims, B {tuple(B.shape)})"
        )
    if _math.prod(A.shape[: B.ndim]) != n:
        raise _DescentError(
            f"linalg.tensorsolve: shape '[{n}, {n}]' is invalid for A of size "
            f"{_math.prod(A.shape)} (A {tuple(A.shape)} after dims, B {tuple(B.shape)}): A's "
            f"leading {B.ndim} dims must hold prod(B.shape) = {n} entries"
        )
    return solve(A.reshape(n, n), B.reshape(n)).reshape(rest)


# Pade coefficients of degree 13 and the norm bound that needs no more scaling (Higham, "The
# scaling and squaring method for the matrix exponential revisited", SIAM J. Matrix Anal. Appl.
# 26(4), 2005, table 2.3 and eq. 2.3).
_PADE13 = (64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0,
           129060195264000.0, 10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0,
           40840800.0, 960960.0, 16380.0, 182.0, 1.0)  # fmt: skip
_THETA13 = 5.371920351148152


def _matrix_exp_squarings(a) -> tuple:
    """(an empty array of length s,): s the squarings matrix_exp needs for the largest 1-norm
    of the matrices in `a`."""
    xp = _backend.get_array_module(a)
    norms = xp.abs(a).sum(axis=-2).max(axis=-1)
    # The finite matrices' norms: one with an inf or nan entry comes out nan whatever the
    # scaling, as PyTorch's (log2(inf) raised OverflowError, and a nan norm skipped the scaling
    # of the whole batch)
    norms = norms[xp.isfinite(norms)]
    norm1 = float(norms.max()) if norms.size else 0.0
    s = max(0, _math.ceil(_math.log2(norm1 / _THETA13))) if norm1 > _THETA13 else 0
    return (xp.empty(s, "int8"),)


@_amp._kernel_op  # one kernel in PyTorch: its products stay out of autocast
def matrix_exp(A) -> _Tensor:
    """exp(A) = sum_k A^k / k! (torch.linalg.matrix_exp), by scaling and squaring with the
    degree-13 Pade approximant (Higham 2005): a composition of matmuls and one solve, so its
    gradient is that of the approximant (equal to the exact one to rounding) and create_graph
    works. One scaling for the whole batch (the largest 1-norm's). float16/bfloat16 compute
    in float32 and round once (PyTorch's half kernel gives nan where a Pade term passes 65504;
    recorded casts, so the gradient comes back in the input's dtype)."""
    if isinstance(A, _Tensor) and A._data.dtype.kind in "fV" and A._data.dtype.itemsize == 2:
        return matrix_exp(A.float()).to(A.dtype)
    A = _prepare("linalg.matrix_exp", A, complex_ok=True)
    xp = _backend.get_array_module(A._data)
    n = A.shape[-1]
    if A._data.size == 0:
        return A * 1.0
    # The count of squarings depends on A's values: Python control flow. It is the length of a
    # guarded op's result, so descent.compile keeps a program per count and replays each (a
    # float() of the array was invisible to it, so a replay kept the first recording's count:
    # wrong values once a call's norm needed another, session 19's fuzzer; then a read through
    # a Tensor, which made the call run eagerly, until session 24).
    (squarings,) = _guarded(_matrix_exp_squarings, (A,), (), "matrix_exp")
    s = squarings.shape[0]
    if s:
        A = A * (0.5**s)
    b = _PADE13
    eye = _Tensor._wrap(xp.eye(n, dtype=A._data.dtype))
    A2 = matmul(A, A)
    A4 = matmul(A2, A2)
    A6 = matmul(A4, A2)
    U = matmul(A, matmul(A6, b[13] * A6 + b[11] * A4 + b[9] * A2)
               + b[7] * A6 + b[5] * A4 + b[3] * A2 + b[1] * eye)  # fmt: skip
    V = matmul(A6, b[12] * A6 + b[10] * A4 + b[8] * A2) + b[6] * A6 + b[4] * A4 + b[2] * A2 \
        + b[0] * eye  # fmt: skip
    R = solve(V - U, V + U)
    for _ in range(s):
        R = matmul(R, R)
    return R


def vander(x, *, N=None) -> _Tensor:
    """The Vandermonde matrix of increasing powers [1, x, x^2, ..., x^(N-1)] along a new last
    dimension (torch.linalg.vander; N defaults to x's last size). Built as PyTorch's: ones, then
    the cumulative product of copies of x (a gradient without 0 * x^-1 at x = 0)."""
    x = _as_tensor(x)
    dt = x._data.dtype
    if dt.kind not in "fiuc" or (dt.kind == "f" and dt.itemsize == 2):
        # (float16 and bfloat16 too: PyTorch's check lists float32, float64, complex and ints)
        raise _DescentError(f"linalg.vander supports floating point, complex, and integer tensors, "
                           f"but got {x._data.dtype}")  # fmt: skip
    if x.ndim == 0:
        x = x.reshape(1)
    n = x.shape[-1] if N is None else int(N)
    if n <= 1:
        raise _DescentError(f"linalg.vander: N must be greater than 1, got {n}")
    powers = _cumprod(_expand(_unsqueeze(x, -1), *(tuple(x.shape) + (n - 1,))), -1)
    xp = _backend.get_array_module(x._data)
    ones = _Tensor._wrap(xp.ones(tuple(x.shape) + (1,), dtype=x._data.dtype))
    return _cat([ones, powers], -1)


# PyTorch's out= on torch.linalg's functions (out_functions.py: one wrapper each; rarely hot).
from .out_functions import install as _install_out  # noqa: E402

_install_out(globals(), "linalg")

# PyTorch's keyword names (torch_keywords.torch_names: the same code under PyTorch's parameter
# names, no wrapper): `linalg.inv(A=m)`, `linalg.solve(A=a, B=b)`, `linalg.matmul(input=,
# other=)`, `linalg.cholesky(input=m)` (PyTorch's parser takes `input` there, not its docs'
# A)
from .torch_keywords import torch_names as _torch_names  # noqa: E402

_TORCH_NAMES = {
    **dict.fromkeys(("det", "inv"), {"a": "A"}),
    "solve": {"a": "A", "b": "B"},
    "matmul": {"a": "input", "b": "other"},
    **dict.fromkeys(("cholesky", "eigvals", "eigvalsh", "pinv"), {"a": "input"}),
    # (PyTorch's parser refuses A= for these; its schema names the matrix `self`, read `input`)
    **dict.fromkeys(
        ("cholesky_ex", "cond", "eig", "eigh", "ldl_factor", "ldl_factor_ex", "matrix_exp",
         "matrix_norm", "matrix_rank", "norm"),
        {"A": "input"},
    ),  # fmt: skip
}
for _name, _renames in _TORCH_NAMES.items():
    globals()[_name] = _torch_names(globals()[_name], _renames, __name__, _name)
del _name, _renames
