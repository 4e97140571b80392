"""torch.nn.utils.parametrizations: weight_norm, spectral_norm and orthogonal, built on
`parametrize.register_parametrization` (PyTorch's classes, buffers and state_dict keys).

    weight_norm:    w = g v / ||v||, the norm over every dim but `dim` (Salimans & Kingma 2016);
                    originals g = original0, v = original1
    spectral_norm:  w = W / sigma(W), sigma from power iteration with buffers _u, _v (Miyato
                    et al. 2018); one iteration per training-mode access
    orthogonal:     w = base @ map(X), map = matrix_exp or cayley of the skew part of X, or a
                    product of Householder reflections (Lezcano-Casado & Martinez-Rubio 2019)
"""

from __future__ import annotations

import numpy as _np

from ... import backend as _backend
from ... import creation as _creation
from ...grad_mode import no_grad as _no_grad
from ...ops import shape as _shape
from ...ops.linalg import matmul as _matmul
from ...tensor import Tensor
from ..module import Module
from . import parametrize

__all__ = ["orthogonal", "spectral_norm", "weight_norm"]


def _norm_except_dim(v: Tensor, dim: int) -> Tensor:
    """||v||_2 over every dim but `dim` (kept as size-1 dims); dim -1: over all (0-d)."""
    if dim == -1:
        return ((v * v).sum()) ** 0.5
    axes = tuple(i for i in range(v.ndim) if i != dim)
    return ((v * v).sum(axis=axes, keepdims=True)) ** 0.5


class _WeightNorm(Module):
    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        return weight_v * (weight_g / _norm_except_dim(weight_v, self.dim))

    def right_inverse(self, weight: Tensor):
        return _norm_except_dim(weight, self.dim), weight


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Reparametrize `module.<name>` as g v / ||v|| (the norm over every dim but `dim`; over
    the whole tensor when dim is None), learning the magnitude g and direction v separately.

    Returns:
        The module, with `parametrizations.<name>.original0` (g) and `original1` (v). A
        state_dict saved with the older `nn.utils.weight_norm` (`<name>_g`, `<name>_v`) loads
        into it: a load pre-hook renames those keys, as PyTorch's does.
    """
    _weight_norm = _WeightNorm(dim)
    parametrize.register_parametrization(module, name, _weight_norm, unsafe=True)

    def _weight_norm_compat_hook(
        mod, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, errors
    ) -> None:
        g_key, v_key = f"{prefix}{name}_g", f"{prefix}{name}_v"
        if g_key in state_dict and v_key in state_dict:
            state_dict[f"{prefix}parametrizations.{name}.original0"] = state_dict.pop(g_key)
            state_dict[f"{prefix}parametrizations.{name}.original1"] = state_dict.pop(v_key)

    module.register_load_state_dict_pre_hook(_weight_norm_compat_hook)
    return module


def _normalize(a, eps: float):
    """a / max(||a||, eps) on arrays (F.normalize's formula)."""
    xp = _backend.get_array_module(a)
    return a / max(float(xp.linalg.norm(a)), eps)


class _SpectralNorm(Module):
    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12) -> None:  # fmt: skip
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(
                "Dimension out of range (expected to be in range of "
                f"[-{ndim}, {ndim - 1}] but got {dim})"
            )
        if n_power_iterations <= 0:
            raise ValueError(
                "Expected n_power_iterations to be positive, but got "
                f"n_power_iterations={n_power_iterations}"
            )
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            weight_mat = self._reshape_weight_to_matrix(weight)
            h, w = weight_mat.shape
            dt = weight.dtype
            u = _creation.randn(h, dtype=dt, device=weight.device)._data
            v = _creation.randn(w, dtype=dt, device=weight.device)._data
            self.register_buffer("_u", Tensor._wrap(_normalize(u, eps)))
            self.register_buffer("_v", Tensor._wrap(_normalize(v, eps)))
            self._power_method(weight_mat, 15)  # start u, v near the singular vectors

    def _reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        """`dim` first, the rest flattened: (weight.shape[dim], -1)."""
        if self.dim != 0:
            order = [self.dim] + [d for d in range(weight.ndim) if d != self.dim]
            weight = _shape.permute(weight, *order)
        return weight.reshape(weight.shape[0], -1)

    def _power_method(self, weight_mat: Tensor, n_power_iterations: int) -> None:
        """u <- normalize(W v), v <- normalize(W^T u), in place on the buffers (no graph)."""
        w = weight_mat._data
        u, v = self._u._data, self._v._data
        for _ in range(n_power_iterations):
            u = _normalize(w @ v, self.eps)
            v = _normalize(w.T @ u, self.eps)
        for buf, new in ((self._u, u), (self._v, v)):
            buf._data[...] = new
            buf._version += 1

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:
            # A vector's spectral norm is its 2-norm (F.normalize).
            return weight / (_norm_except_dim(weight, -1).clamp(min=self.eps))
        weight_mat = self._reshape_weight_to_matrix(weight)
        if self.training:
            with _no_grad():
                self._power_method(weight_mat, self.n_power_iterations)
        # u and v are constants: sigma = u^T W v is differentiated through W only.
        u = Tensor._wrap(self._u._data.copy())
        v = Tensor._wrap(self._v._data.copy())
        sigma = (u * _matmul(weight_mat, v)).sum()
        return weight / sigma

    def right_inverse(self, value: Tensor) -> Tensor:
        return value


def spectral_norm(
    module: Module,
    name: str = "weight",
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    dim: int | None = None,
) -> Module:
    """Reparametrize `module.<name>` as W / sigma(W), sigma the largest singular value of W
    seen as a (W.shape[dim], -1) matrix, estimated by power iteration (`n_power_iterations`
    per training-mode access; evaluation reuses the last u, v). dim defaults to 1 for
    ConvTranspose layers, else 0. u and v start from descent's generator, then 15 iterations.

    Raises:
        ValueError: no tensor of that name, or n_power_iterations <= 0.
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        dim = 1 if type(module).__name__.startswith("ConvTranspose") else 0
    parametrize.register_parametrization(
        module, name, _SpectralNorm(weight, n_power_iterations, dim, eps)
    )
    return module


# -- orthogonal --------------------------------------------------------------------------------
_MAPS = ("matrix_exp", "cayley", "householder")


def _householder_product(a: Tensor, tau: Tensor) -> Tensor:
    """H_1 ... H_k (first k columns), H_i = I - tau_i w_i w_i^T, w_i = column i of `a` below
    the diagonal with a 1 on it (LAPACK's orgqr / torch.linalg.householder_product); a
    product of matmuls, so it is differentiable."""
    n, k = a.shape[-2], a.shape[-1]
    xp = _backend.get_array_module(a._data)
    eye = Tensor._wrap(xp.eye(n, dtype=a._data.dtype))
    below = Tensor._wrap(xp.tril(xp.ones((n, k), dtype=a._data.dtype), -1))
    diag = Tensor._wrap(xp.eye(n, k, dtype=a._data.dtype))
    w = a * below + diag  # (n, k): the reflection vectors
    q = eye
    for i in range(k):
        wi = w[:, i : i + 1]  # (n, 1)
        q = _matmul(q, eye - tau[i] * _matmul(wi, wi.T))
    return q[:, :k]


def _make_orthogonal(a: _np.ndarray) -> _np.ndarray:
    """Q of A = QR (tall A) with diag(R) >= 0, on arrays."""
    xp = _backend.get_array_module(a)
    q, r = xp.linalg.qr(a)
    signs = xp.sign(xp.diagonal(r))
    signs = xp.where(signs == 0, 1, signs)
    return q * signs


def _is_orthogonal(q: _np.ndarray) -> bool:
    n, k = q.shape[-2], q.shape[-1]
    eps = 10.0 * n * _np.finfo(q.dtype).eps
    return bool(_np.allclose(q.T @ q, _np.eye(k), atol=eps, rtol=0))


class _Orthogonal(Module):
    def __init__(self, weight: Tensor, orthogonal_map: str, *, use_trivialization=True):
        super().__init__()
        if weight.ndim != 2:
            raise NotImplementedError(
                f"orthogonal: descent supports a single matrix, got shape {tuple(weight.shape)}"
            )
        self.shape = tuple(weight.shape)
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, x: Tensor) -> Tensor:
        n, k = x.shape
        transposed = n < k
        if transposed:
            x = x.T
            n, k = k, n
        if self.orthogonal_map in ("matrix_exp", "cayley"):
            from ... import linalg  # the matrix exponential and solve (torch.linalg's)

            x = _shape.tril(x)
            if n != k:  # embed the tall matrix into a square one
                x = _shape.cat([x, _zeros_like_cols(x, n - k)], axis=-1)
            a = x - x.T  # skew-symmetric
            if self.orthogonal_map == "matrix_exp":
                q = linalg.matrix_exp(a)
            else:  # the Cayley retraction (I + A/2)(I - A/2)^{-1}
                xp = _backend.get_array_module(a._data)
                eye = Tensor._wrap(xp.eye(n, dtype=a._data.dtype))
                q = linalg.solve(eye - 0.5 * a, eye + 0.5 * a)
            if n != k:
                q = q[:, :k]
        else:
            a = _shape.tril(x, -1)
            tau = 2.0 / (1.0 + (a * a).sum(axis=-2))
            q = _householder_product(a, tau)
            # The sign of each column comes from X's diagonal (+-1, not differentiated).
            signs = _np.diagonal(_backend.as_numpy(x._data)).astype(_np.int64).astype(x.dtype)
            q = q * Tensor._wrap(_backend.get_array_module(x._data).asarray(signs[None, :]))
        if self.base is not None:
            q = _matmul(self.base, q)
        return q.T if transposed else q

    def right_inverse(self, q: Tensor) -> Tensor:
        if tuple(q.shape) != self.shape:
            raise ValueError(
                f"Expected a matrix or batch of matrices of shape {tuple(self.shape)}. Got "
                "a tensor "
                f"of shape {tuple(q.shape)}."
            )
        q_init = q
        qd = _backend.as_numpy(q._data)
        n, k = qd.shape
        transpose = n < k
        if transpose:
            qd = qd.T
            n, k = k, n
        if "base" not in self._buffers:
            if self.orthogonal_map != "householder":
                raise NotImplementedError(
                    "It is not possible to assign to the matrix exponential or the Cayley "
                    "parametrizations when use_trivialization=False."
                )
            raise NotImplementedError(
                "orthogonal: assigning with use_trivialization=False (householder) is not "
                "supported by descent"
            )
        if n == k:
            qd = qd.copy() if _is_orthogonal(qd) else _make_orthogonal(qd)
        else:  # complete Q to an n x n orthogonal matrix with random columns
            extra = _creation.randn(n, n - k, dtype=q.dtype)._data
            qd = _make_orthogonal(_np.concatenate([qd, _backend.as_numpy(extra)], axis=-1))
        xp = _backend.get_array_module(q._data)
        self.base = Tensor._wrap(xp.asarray(qd.astype(q.dtype)))
        # -Id: the Householder map sends it to the identity (and so do the others).
        neg_id = _np.zeros(tuple(q_init.shape), dtype=q.dtype)
        _np.fill_diagonal(neg_id, -1.0)
        return Tensor._wrap(xp.asarray(neg_id))


def _zeros_like_cols(x: Tensor, cols: int) -> Tensor:
    xp = _backend.get_array_module(x._data)
    return Tensor._wrap(xp.zeros((x.shape[0], cols), dtype=x._data.dtype))


def orthogonal(
    module: Module,
    name: str = "weight",
    orthogonal_map: str | None = None,
    *,
    use_trivialization: bool = True,
) -> Module:
    """Constrain the matrix `module.<name>` to be orthogonal (orthonormal columns, or rows
    when it is wide): w = base @ map(X), with the trivialization `base` (a buffer) set to the
    orthogonalised initial weight and X starting at -I. orthogonal_map: "matrix_exp" (default
    for square), "cayley" or "householder" (default for rectangular).

    Raises:
        ValueError: no matrix of that name, or an unknown map.
        NotImplementedError: batches of matrices, or use_trivialization=False.
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError(
            f"Expected a matrix or batch of matrices. Got a tensor of {weight.ndim} dimensions."
        )
    if orthogonal_map is None:
        orthogonal_map = "matrix_exp" if weight.shape[-2] == weight.shape[-1] else "householder"
    if orthogonal_map not in _MAPS:
        raise ValueError(
            'orthogonal_map has to be one of "matrix_exp", "cayley", "householder". '
            f"Got: {orthogonal_map}"
        )
    if not use_trivialization:
        raise NotImplementedError("orthogonal: descent supports use_trivialization=True only")
    orth = _Orthogonal(weight, orthogonal_map, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, orth, unsafe=True)
    return module
