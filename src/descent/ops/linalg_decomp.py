"""Matrix functions with gradients: det, slogdet, inv, solve, cholesky, qr (this module) and the
spectral ones, eigh and svd (`linalg_spectral.py`). `descent.linalg` is the public namespace
(PyTorch's torch.linalg); this module holds the op classes and the helpers their backward
passes share.

Conventions:

* float32 or float64 inputs, and complex64 / complex128 where the op passes `complex_ok` (all
  of this module's: see "Complex input" below); float32 in, float32 out. The forward passes
  are NumPy's (CuPy's on a GPU) LAPACK-backed `xp.linalg` functions, which batch over the
  leading dimensions as PyTorch does.
* An op with several outputs (slogdet, qr, eigh, svd) is one node whose forward returns the
  outputs packed along one last axis (`pack`); the public function slices them apart
  (`unpack`: recorded views, so each output's gradient lands in its part of the packed
  gradient, zeros where an output was not used).
* Backward passes are written once for arrays and Tensors, as every op's (see autograd.py):
  matmul, `ops.swapaxes`, `ops.einsum`, `ops.where`, `ops.tril`. Solves and inverses go through
  `_solve` / `_inv`, which are the array module's LAPACK calls on arrays and this module's
  `solve` / `inv` ops on Tensors, so under create_graph=True the backward is itself recorded and
  second derivatives come out right.
* LAPACK failures (a singular matrix, a matrix that is not positive-definite) raise
  `LinAlgError` (PyTorch's torch.linalg.LinAlgError: a RuntimeError, here also descent's
  DescentError) naming the op, the shape, the batch element and the fix.

Complex input. PyTorch's convention (docs/complex.md): for a real loss L of complex Z, the
gradient is dL/dRe Z + i dL/dIm Z. det, inv, solve (and lu in linalg_lu.py) are holomorphic
functions of A's entries, so their backward is the real formula with the derivative conjugated,
which the `@holomorphic` decorator applies (conj(backward(conj(gy)))): det's gA = gy conj(det)
A^{-H}, inv's -Y^H gY Y^H, solve's gB = A^{-H} gX. slogdet, cholesky and qr are not holomorphic
(a modulus, a real diagonal); their backward passes are written with `mH`, the conjugate
transpose (mT for real input), as PyTorch's FunctionsManual.cpp.

Gradient formulas: M. Giles, "An extended collection of matrix derivative results for forward
and reverse mode algorithmic differentiation" (2008) for det, inv, solve, cholesky; H.-J. Liao
et al., "Differentiable programming tensor networks" (2019) for qr; PyTorch's
FunctionsManual.cpp is the reference for the conventions where a formula has choices.
"""

from __future__ import annotations

import math

import numpy as np

from .. import amp, backend
from ..autograd import Function
from ..errors import DescentError
from ..tensor import Tensor
from ._common import as_tensor, check_devices, conj_if_complex, holomorphic
from .shape import cat as _cat


class LinAlgError(DescentError):
    """A linear-algebra routine failed on its input (a singular matrix, a matrix that is not
    positive-definite): PyTorch's torch.linalg.LinAlgError. A RuntimeError (as PyTorch's) and
    descent's DescentError."""


class _LowPrecisionError(DescentError, NotImplementedError):
    """A float16/bfloat16 matrix for a LAPACK-backed op: PyTorch raises a RuntimeError
    ("Low precision dtypes not supported": inv, slogdet, pinv) or, where its CPU kernel is
    missing, a NotImplementedError ('"lu_cpu" not implemented for 'Half'': det, solve, lu,
    eigh, svd, qr, cholesky); this class is both (and descent's DescentError). Also an integer
    matrix for the ops whose PyTorch kernel is missing for it (_NO_INT_KERNEL: eigh, lu,
    solve_triangular, cholesky_solve, cholesky_inverse)."""


# PyTorch's ops whose integer input reaches a missing CPU kernel ('"lu_cpu" not implemented for
# 'Long'', a NotImplementedError) rather than its "Expected a floating point" RuntimeError
_NO_INT_KERNEL = frozenset((
    "linalg.eigh", "linalg.eigvalsh", "linalg.lu_factor", "linalg.lu", "linalg.solve_triangular",
    "cholesky_solve", "cholesky_inverse",
))  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Input checks


def check_float(
    op: str, *tensors: Tensor, low_precision: bool = False, complex_ok: bool = False
) -> None:
    """PyTorch's dtype rule for linalg: floating inputs only (float32 or float64 here; also
    float16 and bfloat16 with `low_precision`, as PyTorch's vector_norm; complex64 and
    complex128 where the op passes `complex_ok`, i.e. where its backward handles them)."""
    for t in tensors:
        dt = t._data.dtype
        if dt.kind == "c":
            if complex_ok:
                continue
            raise DescentError(
                f"{op}: complex input (shape {tuple(t.shape)}, {dt}) is not supported yet by "
                "this op; use the real and imaginary parts (torch.view_as_real) or a real "
                "formulation"
            )
        if dt.kind not in "fV":
            raise (_LowPrecisionError if op in _NO_INT_KERNEL else DescentError)(
                f"{op}: Expected a floating point tensor as input. Got {dt} (shape "
                f"{tuple(t.shape)}); convert first with .float() or .double()"
            )
        if dt.itemsize < 4 and not low_precision:
            raise _LowPrecisionError(
                f"{op}: Low precision dtypes not supported. Got {dt} (shape {tuple(t.shape)}); "
                "convert first with .float()"
            )


def check_matrix(op: str, a: Tensor, square: bool = True) -> None:
    """A (batch of) matrix: at least 2 dimensions, square where the op needs it."""
    if a.ndim < 2:
        raise DescentError(
            f"{op}: The input tensor A must have at least 2 dimensions, got shape "
            f"{tuple(a.shape)}"
        )
    if square and a.shape[-1] != a.shape[-2]:
        raise DescentError(
            f"{op}: A must be batches of square matrices, but they are {a.shape[-2]} by "
            f"{a.shape[-1]} matrices (shape {tuple(a.shape)})"
        )


def prepare(op: str, a, square: bool = True, complex_ok: bool = False) -> Tensor:
    """The input as a floating Tensor holding a (batch of) matrix, or an error naming `op`.
    Inside autocast a float16/bfloat16 input is cast up to float32 first: PyTorch's autocast
    runs the linalg decompositions and solves in float32 (its float32 op list)."""
    a = as_tensor(a)
    if amp._depth:
        a = amp._upper(a)
    check_float(op, a, complex_ok=complex_ok)
    check_matrix(op, a, square)
    return a


def lapack_call(op: str, fn, a, *args, fix: str = "", **kwargs):
    """fn(a, *args) with NumPy's LinAlgError turned into ours: the op, the shape, the first
    failing batch element (found by retrying element by element, only on failure), the fix."""
    try:
        return fn(a, *args, **kwargs)
    except np.linalg.LinAlgError as e:
        reason = str(e)
        where = ""
        if a.ndim > 2:
            for idx in np.ndindex(a.shape[:-2]):
                try:
                    fn(a[idx], *[b[idx] if _batched(b, a) else b for b in args], **kwargs)
                except np.linalg.LinAlgError as e1:
                    where, reason = f" (batch element {idx if len(idx) > 1 else idx[0]})", str(e1)
                    break
        raise LinAlgError(
            f"{op}{where}: {reason} for the input of shape {tuple(a.shape)}. {fix}"
        ) from None


def _batched(b, a) -> bool:
    return hasattr(b, "ndim") and b.ndim == a.ndim and b.shape[:-2] == a.shape[:-2]


_SINGULAR_FIX = ("The matrix is singular (not invertible). Check the input, regularise it "
                 "(A + eps * I), or use descent.linalg.pinv / lstsq for a least-squares "
                 "answer.")  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Helpers shared by the backward passes: the same code on arrays and on Tensors


def array_module(x):
    """NumPy or CuPy for an array or a Tensor."""
    return backend.get_array_module(x._data if isinstance(x, Tensor) else x)


def mT(ops, x):
    """The last two dimensions swapped (the matrix transpose of every batch element)."""
    return ops.swapaxes(x, -1, -2)


def mH(ops, x):
    """The conjugate transpose of every batch element (mT for a real x): the adjoint that
    complex backward formulas use where the real ones use the transpose."""
    return conj_if_complex(ops, ops.swapaxes(x, -1, -2))


def diag_embed(v):
    """(..., n) -> (..., n, n) with v on the diagonal: v times the identity (arrays or Tensors)."""
    n = v.shape[-1]
    eye = array_module(v).eye(n, dtype=v.dtype)
    return v.reshape(tuple(v.shape) + (1,)) * eye


def diag_part(ops, x):
    """(..., n, n) -> (..., n): the diagonals."""
    return ops.einsum("...ii->...i", x)


def _solve(ops, a, b, upper=None):
    """a^{-1} b for (..., n, n) and (..., n, k): LAPACK on arrays, the Solve op on Tensors.
    With `upper` (True / False) a is an upper / lower triangular factor: a singular one gives
    the infinities and nans of a substitution, as PyTorch's triangular solves (no error)."""
    if ops.is_graph:
        return Solve.apply(a, b, upper=upper) if upper is not None else solve_matrix(a, b)
    if upper is not None:
        return solve_triangular_arrays(a, b, upper)
    return lapack_call("solve (in a backward pass)", array_module(a).linalg.solve, a, b,
                       fix=_SINGULAR_FIX)  # fmt: skip


def solve_triangular_arrays(a, b, upper: bool):
    """a^{-1} b for a triangular (..., n, n) a (only its `upper` or lower triangle nonzero)
    and (..., n, k) b. LAPACK's general solve, which raises on an exactly singular a; then
    back (forward) substitution, whose divisions by the zero diagonal give the infinities and
    nans PyTorch's BLAS triangular solve (trsm) returns there: PyTorch never raises for a
    singular triangle (linalg.solve_triangular, and the QR / LU / Cholesky backward passes)."""
    xp = backend.get_array_module(a, b)
    try:
        return xp.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        pass
    batch = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    n = a.shape[-1]
    a = xp.broadcast_to(a, batch + a.shape[-2:])
    x = xp.array(xp.broadcast_to(b, batch + b.shape[-2:]), dtype=xp.result_type(a, b))
    with np.errstate(all="ignore"):
        # row i from the rows already solved: x_i = (b_i - a[i, done] x[done]) / a_ii
        for i in range(n - 1, -1, -1) if upper else range(n):
            done = slice(i + 1, n) if upper else slice(0, i)
            s = x[..., i, :] - (a[..., i : i + 1, done] @ x[..., done, :])[..., 0, :]
            x[..., i, :] = s / a[..., i, i : i + 1]
    return x


def _inv(ops, a):
    """a^{-1}: LAPACK on arrays, the Inv op on Tensors."""
    if ops.is_graph:
        return inv(a)
    return lapack_call("inv (in a backward pass)", array_module(a).linalg.inv, a,
                       fix=_SINGULAR_FIX)  # fmt: skip


def concat(ops, xs, axis):
    """Concatenation along `axis` of arrays or Tensors."""
    if ops.is_graph:
        return _cat(list(xs), axis)
    return array_module(xs[0]).concatenate(xs, axis=axis)


def is_zero(g) -> bool:
    """True when a gradient holds only zeros (an output that the loss did not use)."""
    data = g._data if isinstance(g, Tensor) else g
    return not bool(array_module(data).any(data))


# ---------------------------------------------------------------------------------------------
# Several outputs as one node: packed along one last axis


def pack(xp, arrays, batch):
    """Concatenate arrays of shapes batch + core_i along one last axis."""
    flat = [a.reshape(tuple(batch) + (math.prod(a.shape[len(batch):]),)) for a in arrays]
    return xp.concatenate(flat, axis=-1)


def unpack(y, batch, cores):
    """The inverse of `pack` (arrays or Tensors): views of y reshaped to batch + core_i."""
    out, start = [], 0
    for core in cores:
        size = math.prod(core)
        out.append(y[..., start : start + size].reshape(tuple(batch) + tuple(core)))
        start += size
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# det, slogdet


@holomorphic  # complex: gA = gy conj(det(A)) A^{-H}
class Det(Function):
    """d det(A)/dA = det(A) A^{-T}, the cofactor matrix. Where det(A) = 0 the cofactor matrix
    comes from the SVD, A = U S Vh: det(U) det(Vh) U diag(prod_{j != i} s_j) Vh, finite at
    singular A as PyTorch's (saves the input and the output)."""

    save_inputs = True
    save_output = True

    def forward(self, a):
        return backend.get_array_module(a).linalg.det(a)

    def backward(self, gy, ops):
        (a,) = self.inputs(ops)
        d = self.output(ops)
        if ops.is_graph and d._data.dtype.kind == "f":
            # PyTorch's create_graph path takes the SVD's cofactor matrix where |det| < 100 eps
            # of the dtype, not only at det = 0: det (A^{-T}) of a rounding-level det (x x^T of
            # a 3 x 2 x, det 1e-17) has second derivatives of O(1) noise where the SVD's are
            # the true 0 (grad2 fuzz 30525462; the switch measured between det 2e-14 and 6e-14)
            singular = abs(d._data) < 100 * np.finfo(d._data.dtype).eps
        else:
            singular = d._data == 0 if ops.is_graph else d == 0
        if not bool(singular.any()):
            cof = d.reshape(tuple(d.shape) + (1, 1)) * mT(ops, _inv(ops, a))
        elif ops.is_graph:
            if a._data.dtype.kind == "c":
                raise RuntimeError(
                    "det: create_graph=True (second derivatives) at a singular complex matrix "
                    "(det = 0) is not supported; the first derivative (the cofactor matrix) "
                    "is, and real matrices have second derivatives there"
                )
            cof = _svd_cofactor_graph(ops, a)
        else:
            cof = _svd_cofactor(a)
        return gy.reshape(tuple(gy.shape) + (1, 1)) * cof


def _svd_cofactor(a):
    """The cofactor matrix of a (arrays): det(A) A^{-T} for invertible A, and its continuous
    extension at singular A, from the SVD (no division): A^{-T} = conj(U) S^{-1} conj(Vh) and
    det(A) = det(U) prod(s) det(Vh) (conj does nothing to real input)."""
    xp = array_module(a)
    u, s, vh = xp.linalg.svd(a)
    n = s.shape[-1]
    eye = xp.eye(n, dtype=bool)
    # prod_{j != i} s_j: each row of the (n, n) matrix has s with its own entry replaced by 1.
    others = xp.where(eye, 1.0, s[..., None, :]).prod(axis=-1).astype(a.dtype)
    # +-1 (U, Vh orthogonal) or a unit-modulus number (unitary)
    sign = xp.linalg.det(u) * xp.linalg.det(vh)
    return sign[..., None, None] * ((xp.conj(u) * others[..., None, :]) @ xp.conj(vh))


def _svd_cofactor_graph(ops, a):
    """_svd_cofactor on Tensors, differentiable again (PyTorch's create_graph formula at a
    singular matrix: a differentiable SVD, U diag(prod_{j != i} s_j) Vh times det(U) det(Vh),
    the sign taken as a constant: +-1, locally constant). Real matrices; where two singular
    values are equal the SVD's backward divides by 0, as PyTorch's."""
    from .linalg_spectral import svd  # (linalg_spectral imports this module)

    u, s, vh = svd(a, full_matrices=False)
    xp = array_module(a._data)
    n = s.shape[-1]
    row = s.reshape(tuple(s.shape[:-1]) + (1, n))
    others = ops.where(xp.eye(n, dtype=bool), 1.0, row).prod(-1)
    sign = Tensor._wrap(xp.linalg.det(u._data) * xp.linalg.det(vh._data))
    return sign.reshape(tuple(sign.shape) + (1, 1)) * (
        (u * others.reshape(tuple(others.shape[:-1]) + (1, n))) @ vh
    )


def det(a) -> Tensor:
    """det(A) of a (batch of) square matrix (torch.linalg.det)."""
    a = prepare("linalg.det", a, complex_ok=True)
    return Det.apply(a)


class Slogdet(Function):
    """(sign, log|det A|) packed; d log|det A|/dA = A^{-T}; a real sign has no gradient. For
    complex A, d log det A = tr(A^{-1} dA) = d log|det A| + i d arg(det A), and the complex sign
    e^{i arg} moves: gA = (g_log + i Im(g_sign conj(sign))) A^{-H} (PyTorch's slogdet_backward).
    At a singular matrix (sign 0, log|det| = -inf) the gradient is nan (PyTorch's LU solve
    gives inf / nan there too) instead of an error. Saves the input and the output."""

    save_inputs = True
    save_output = True

    def forward(self, a):
        xp = backend.get_array_module(a)
        sign, logabs = xp.linalg.slogdet(a)
        # complex A: the real logabs is packed as complex with the complex sign (slogdet
        # takes its real part back out)
        return pack(xp, [sign, logabs.astype(sign.dtype)], a.shape[:-2])

    def backward(self, gy, ops):
        (a,) = self.inputs(ops)
        batch = tuple(a.shape[:-2])
        gsign, glog = unpack(gy, batch, [(), ()])
        sign, _ = unpack(self.output(ops), batch, [(), ()])
        if a.dtype.kind == "c":
            # g = Re(g_log) + i Im(g_sign conj(sign)), with Re w = (w + conj w) / 2 and
            # i Im w = (w - conj w) / 2 (g_log is real-valued: it comes through real())
            w = gsign * conj_if_complex(ops, sign)
            glog = 0.5 * (glog + conj_if_complex(ops, glog)) + 0.5 * (w - conj_if_complex(ops, w))
        # A real sign is piecewise constant: its part of gy is ignored.
        glog = glog.reshape(batch + (1, 1))
        singular = (sign._data if ops.is_graph else sign) == 0
        if not bool(singular.any()):
            return glog * mH(ops, _inv(ops, a))
        # Invert the identity in place of the singular matrices, then mark them nan.
        xp = array_module(a)
        mask = singular.reshape(batch + (1, 1))
        safe = ops.where(mask, xp.eye(a.shape[-1], dtype=a.dtype), a)
        return ops.where(mask, float("nan"), glog * mH(ops, _inv(ops, safe)))


def slogdet(a):
    """(sign, logabsdet) of a (batch of) square matrix (torch.linalg.slogdet): for complex A
    the sign is a unit-modulus complex number (with a gradient) and logabsdet is real; a real
    sign is piecewise constant: it requires grad (as PyTorch's) with a zero gradient."""
    a = prepare("linalg.slogdet", a, complex_ok=True)
    sign, logabs = unpack(Slogdet.apply(a), a.shape[:-2], [(), ()])
    if a._data.dtype.kind == "c":
        from .complex import real  # noqa: PLC0415 - complex.py imports ops that import this

        return sign, real(logabs)
    return sign, logabs  # a real sign requires grad as PyTorch's; its gradient is zero


# ---------------------------------------------------------------------------------------------
# inv, solve


@holomorphic  # complex: gA = -Y^H gY Y^H
class Inv(Function):
    """d A^{-1} = -A^{-1} dA A^{-1}, so gA = -Y^T gY Y^T with Y = A^{-1} (saves the output)."""

    save_output = True

    def forward(self, a):
        xp = backend.get_array_module(a)
        return lapack_call("linalg.inv", xp.linalg.inv, a, fix=_SINGULAR_FIX)

    def backward(self, gy, ops):
        yt = mT(ops, self.output(ops))
        return -(yt @ gy @ yt)


def inv(a) -> Tensor:
    """The inverse of a (batch of) square matrix (torch.linalg.inv)."""
    a = prepare("linalg.inv", a, complex_ok=True)
    return Inv.apply(a)


@holomorphic  # complex: gB = A^{-H} gX, gA = -gB X^H
class Solve(Function):
    """X = A^{-1} B for (..., n, n) and (..., n, k): gB = A^{-T} gX, gA = -gB X^T (batch
    dimensions broadcast; the engine sums the gradients back). Saves A and the output X.
    `upper` (True / False; unset: a general A) marks a triangular A, solved without an error
    when singular (solve_triangular_arrays), in the forward and the backward pass."""

    __slots__ = ("upper",)
    save_inputs = True
    save_output = True

    def forward(self, a, b):
        upper = getattr(self, "upper", None)
        if upper is not None:
            return solve_triangular_arrays(a, b, upper)
        xp = backend.get_array_module(a, b)
        return lapack_call("linalg.solve", xp.linalg.solve, a, b, fix=_SINGULAR_FIX)

    def backward(self, gy, ops):
        a, _ = self.inputs(ops)
        x = self.output(ops)
        upper = getattr(self, "upper", None)
        # A^T is triangular the other way round
        gb = _solve(ops, mT(ops, a), gy, None if upper is None else not upper)
        ga = -(gb @ mT(ops, x)) if self.parents[0] is not None else None
        return ga, gb if self.parents[1] is not None else None


def solve_matrix(a: Tensor, b: Tensor, upper=None) -> Tensor:
    """A^{-1} B with B a (batch of) matrix (..., n, k); checked by the caller. `upper`: A is
    triangular (see Solve)."""
    return Solve.apply(a, b) if upper is None else Solve.apply(a, b, upper=upper)


@amp._float32_op  # on PyTorch's autocast float32 list
def solve(a, b, *, left: bool = True) -> Tensor:
    """The solution X of A X = B (left=True) or X A = B (left=False), for square A
    (torch.linalg.solve). B is a vector (..., n) when it has one dimension, or when its shape
    is A's without the last dimension (PyTorch's rule; left=True only); else a (batch of)
    matrix (..., n, k). Batch dimensions broadcast."""
    return solve_checked(a, b, left)


def solve_checked(a, b, left: bool, upper=None) -> Tensor:
    """`solve`'s checks and solve; `upper` (True / False) for a triangular A
    (linalg.solve_triangular: no error when it is singular, as PyTorch's)."""
    a = prepare("linalg.solve", a, complex_ok=True)
    b = as_tensor(b)
    check_float("linalg.solve", b, complex_ok=True)
    check_devices("linalg.solve", a, b)
    if a._data.dtype != b._data.dtype:
        raise DescentError(
            f"linalg.solve: Expected A and B to have the same dtype, but found A of type "
            f"{a._data.dtype} and B of type {b._data.dtype} instead"
        )
    n = a.shape[-1]
    vector = b.ndim == 1 or (b.ndim == a.ndim - 1 and tuple(b.shape) == tuple(a.shape[:-1]))
    if vector:
        if not left:  # PyTorch: a vector is an (n, 1) column, which X A = B cannot take
            raise DescentError(
                f"linalg.solve: Incompatible shapes of A and B for the equation XA = B "
                f"({n}x{n} and {b.shape[-1]}x1; shapes {tuple(a.shape)} and {tuple(b.shape)}); "
                "for a row vector b, solve A^T x = b (left=True with A.mT)"
            )
        if b.shape[-1] != n:
            raise DescentError(
                f"linalg.solve: incompatible shapes of A and B for the equation AX = B "
                f"({n}x{n} and {b.shape[-1]}x1; shapes {tuple(a.shape)} and {tuple(b.shape)})"
            )
        # A vector is the one-column matrix.
        bm = b.reshape(tuple(b.shape) + (1,))
        return solve_matrix(a, bm, upper).reshape(_broadcast_batch(a, b.shape[:-1]) + (n,))
    if b.ndim < 2:
        raise DescentError(f"linalg.solve: B must have at least 1 dimension, got {tuple(b.shape)}")
    k_dim = -2 if left else -1
    if b.shape[k_dim] != n:
        raise DescentError(
            f"linalg.solve: incompatible shapes of A and B for the equation "
            f"{'AX = B' if left else 'XA = B'} (shapes {tuple(a.shape)} and {tuple(b.shape)}); "
            f"B needs {n} {'rows' if left else 'columns'}"
        )
    _broadcast_batch(a, b.shape[:-2])
    if left:
        return solve_matrix(a, b, upper)
    # X A = B  <=>  A^T X^T = B^T (A^T triangular the other way round)
    return solve_matrix(a.mT, b.mT, None if upper is None else not upper).mT


def _broadcast_batch(a, batch) -> tuple:
    try:
        return tuple(np.broadcast_shapes(tuple(a.shape[:-2]), tuple(batch)))
    except ValueError:
        raise DescentError(
            f"linalg.solve: the batch dimensions of A {tuple(a.shape)} and B (batch "
            f"{tuple(batch)}) cannot be broadcast"
        ) from None


# ---------------------------------------------------------------------------------------------
# cholesky


def potf2(a: np.ndarray) -> tuple[np.ndarray, int]:
    """LAPACK's unblocked Cholesky (potf2) of one matrix's lower triangle: (the factor as far
    as it got, info). On failure at column j the diagonal entry keeps the pivot a_jj - |l_j|^2
    (not positive, or nan) and the columns after j keep A's values. Complex (zpotf2): the
    pivot is Re(a_jj) - l_j l_j^H, real, and the column subtracts L conj(l_j)."""
    low = np.tril(a).copy()
    with np.errstate(invalid="ignore", over="ignore"):
        for j in range(a.shape[-1]):
            lj = low[j, :j]
            ajj = (low[j, j] - lj @ np.conj(lj)).real
            if not ajj > 0:  # also catches nan
                low[j, j] = ajj
                return low, j + 1
            low[j, j] = ajj = np.sqrt(ajj)
            low[j + 1 :, j] = (low[j + 1 :, j] - low[j + 1 :, :j] @ np.conj(lj)) / ajj
    return low, 0


def cholesky_lapack(a):
    """xp.linalg.cholesky of a (batch of) matrix, refusing a nan pivot as LAPACK's potrf does
    (`ajj <= 0 or isnan(ajj)`: PyTorch's MKL raises; OpenBLAS's blocked potrf, which NumPy
    calls, lets the nan through and returns nan factors). A matrix holding an inf: potf2's own
    steps decide (an infinite pivot makes the next column inf / inf = nan, so the next pivot is
    nan: PyTorch raises at that order; OpenBLAS returned an inf diagonal and zeros, grad2 fuzz
    30544416); the check is O(n^2) beside the O(n^3) factorisation."""
    xp = backend.get_array_module(a)
    low = xp.linalg.cholesky(a)
    if low.size and bool(xp.isnan(xp.diagonal(low, axis1=-2, axis2=-1)).any()):
        raise np.linalg.LinAlgError("Matrix is not positive definite (a nan pivot)")
    if low.size and not bool(xp.isfinite(low).all()):
        host = backend.as_numpy(a)
        for idx in np.ndindex(host.shape[:-2]):
            if potf2(host[idx])[1]:
                raise np.linalg.LinAlgError("Matrix is not positive definite (a nan pivot)")
    return low


class Cholesky(Function):
    """A = L L^H: gA = L^{-H} Phi(L^H gL) L^{-1}, made Hermitian (Phi: the lower triangle with
    the diagonal halved), as PyTorch's cholesky_backward (L^H = L^T for real A). With `upper`,
    U = L^H where L is the factor of A^H (LAPACK's potrf('U') reads A's upper triangle), and
    the same formula takes L = U^H, gL = gU^H, as PyTorch's. Saves the output."""

    __slots__ = ("upper",)
    save_output = True

    def forward(self, a):
        xp = backend.get_array_module(a)
        if self.upper:
            a = xp.conj(xp.swapaxes(a, -1, -2))
        low = lapack_call(
            "linalg.cholesky", cholesky_lapack, a,
            fix="The input is not positive-definite (leading minor not positive); Cholesky "
                "needs a symmetric positive-definite matrix (add eps * I, or check its "
                "symmetry).",
        )  # fmt: skip
        return xp.conj(xp.swapaxes(low, -1, -2)) if self.upper else low

    def backward(self, gy, ops):
        low = self.output(ops)
        if self.upper:  # the lower factor and its gradient
            low, gy = mH(ops, low), mH(ops, gy)
        # tril(L^H gL): only the lower triangle of gL matters (L^H triu(gL, 1) is upper).
        lh = mH(ops, low)
        p = ops.tril(lh @ gy)
        # The Hermitian matrix with P's strict lower triangle mirrored and its diagonal halved
        # (the diagonal keeps its imaginary part, as PyTorch's).
        m = 0.5 * (p + mH(ops, ops.tril(p, -1)))
        # L^{-H} M L^{-1} = (L^{-H} (L^{-H} M)^H)^H: two solves (general ones: NumPy has no
        # triangular solver).
        x = _solve(ops, lh, m)
        return mH(ops, _solve(ops, lh, mH(ops, x)))


def cholesky(a, *, upper: bool = False) -> Tensor:
    """The Cholesky factor L (A = L L^H) of a symmetric (Hermitian) positive-definite (batch of)
    matrix, or U = L^H (A = U^H U) with upper=True (torch.linalg.cholesky). Only the lower
    triangle of A is read (the upper one with upper=True), and the real part of its diagonal,
    as LAPACK's potrf with uplo 'L' ('U')."""
    a = prepare("linalg.cholesky", a, complex_ok=True)
    return Cholesky.apply(a, upper=bool(upper))


# ---------------------------------------------------------------------------------------------
# qr


class QR(Function):
    """A = Q R (Householder, LAPACK's geqrf). For m >= n (reduced): gA = (gQ + Q copyltu(M))
    R^{-H} with M = R gR^H - gQ^H Q and copyltu(M) the Hermitian matrix of M's lower triangle
    with the real part of M's diagonal (Liao et al. 2019; the complex form is PyTorch's
    linalg_qr_backward: geqrf's R has a real diagonal); for m < n the square part A = [X | Y]
    takes the same formula with gQ + Y gR_Y^H and Y's gradient is Q gR_Y. (^H is ^T for real
    input.) Saves the packed output (Q, R)."""

    __slots__ = ("mode",)
    save_output = True

    def forward(self, a):
        xp = backend.get_array_module(a)
        if self.mode == "r":
            return xp.linalg.qr(a, mode="r")
        q, r = xp.linalg.qr(a, mode=self.mode)
        return pack(xp, [q, r], a.shape[:-2])

    def backward(self, gy, ops):
        m, n = self.in_shapes[0][-2:]
        batch = self.in_shapes[0][:-2]
        if self.mode == "r":
            raise RuntimeError(
                "linalg.qr: The derivative of linalg.qr depends on Q, which is not computed "
                "when mode='r'. Please use linalg.qr(A, mode='reduced') if you are going to "
                "differentiate through linalg.qr."
            )
        if self.mode == "complete" and m > n:
            raise RuntimeError(
                "linalg.qr: The QR decomposition is not differentiable when mode='complete' and "
                f"nrows > ncols (input {batch + (m, n)}); use mode='reduced'"
            )
        q, r = unpack(self.output(ops), batch, _qr_cores(self.mode, m, n))
        gq, gr = unpack(gy, batch, _qr_cores(self.mode, m, n))
        if m >= n:
            return _qr_square_grad(ops, q, r, gq, gr)
        # A = [X | Y] = Q [R_X | R_Y]: Y's part is V = Q R_Y, which also moves Q.
        rx, ry = r[..., :, :m], r[..., :, m:]
        gx, gy_ = gr[..., :, :m], gr[..., :, m:]
        gq = gq + (q @ ry) @ mH(ops, gy_)
        return concat(ops, [_qr_square_grad(ops, q, rx, gq, gx), q @ gy_], -1)


def _qr_cores(mode, m, n):
    """The shapes of Q and R."""
    k = min(m, n) if mode == "reduced" else m
    return [(m, k), (k, n)]


def _qr_square_grad(ops, q, r, gq, gr):
    """gA for A = Q R with R square (n, n) and Q (m, n), m >= n."""
    mm = r @ mH(ops, gr) - mH(ops, gq) @ q
    # copyltu(M) = tril(M, -1) + tril(M, -1)^H + Re diag(M), written without a real part:
    # (X + X^H + T + T^H) / 2 with X = tril(M), T = tril(M, -1) (X + X^H has 2 Re M_ii on the
    # diagonal; for real M it is tril(M) + tril(M, -1)^T)
    x, t = ops.tril(mm), ops.tril(mm, -1)
    copyltu = 0.5 * (x + mH(ops, x) + t + mH(ops, t))
    b = gq + q @ copyltu
    # b R^{-H} = (R^{-1} b^H)^H (R upper triangular: a singular R gives PyTorch's infs / nans)
    return mH(ops, _solve(ops, r, mH(ops, b), upper=True))


def qr(a, mode: str = "reduced"):
    """(Q, R) with A = Q R (torch.linalg.qr): mode 'reduced' (Q (m, k), R (k, n), k = min(m,
    n)), 'complete' (Q (m, m), R (m, n)) or 'r' (R only; Q is an empty tensor, as PyTorch)."""
    a = prepare("linalg.qr", a, square=False, complex_ok=True)
    if mode not in ("reduced", "complete", "r"):
        raise DescentError(
            f"linalg.qr: qr received unrecognized mode {mode!r} but expected one of 'reduced' "
            "(default), 'r', or 'complete'"
        )
    m, n = a.shape[-2:]
    if mode == "r":
        r = QR.apply(a, mode="r")
        xp = backend.get_array_module(a._data)
        return Tensor._wrap(xp.zeros((0,), dtype=a._data.dtype)), r
    return unpack(QR.apply(a, mode=mode), a.shape[:-2], _qr_cores(mode, m, n))
