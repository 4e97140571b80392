"""a @ b^T as an NN product on a transposed copy of b, where that gives the NT product's bits.

q k^T (attention's scores) and go v^T (its backward) are NT products: NumPy hands BLAS the
second operand transposed. On the baby-gpt step's (48, 64, 32) heads OpenBLAS 0.3.31 (SkylakeX
kernels on a Zen 4 host, its small-matrix path) takes ~195 us a layer for NT against ~117 for NN
on a C-contiguous transposed copy, and the copy ~20-30 us. Whether the NN product gives the NT
product's bits depends on the kernels OpenBLAS picks for the shape (the same K-order dot
products for these shapes with its SkylakeX and Haswell kernels, but not for every shape: 8 x 64
x 32 differs with SkylakeX's), so it is checked once per shape pair on random values, and the NT
product runs where they differ. Eager attention (ops/attention.py) and descent.compile's replay
(compiler/replay_kernels.py) both use it, so the two keep giving the same bits.
"""

from __future__ import annotations

import numpy as np

from .. import blas

_F32 = np.dtype(np.float32)
_NN_SAME: dict = {}  # (a's shape, b's shape, dtype) -> NN on b^T gives a @ b^T's bits
_TRANSPOSE4: list = []


def nn_same(a, b) -> bool:
    """Whether a @ C-contiguous(b^T) gives a @ b^T's bits for these shapes (cached)."""
    key = (a.shape, b.shape, a.dtype)
    ok = _NN_SAME.get(key)
    if ok is None:
        # one matrix of the batch: NumPy makes the same BLAS call for each
        rng = np.random.default_rng(17)
        ra = rng.standard_normal(a.shape[-2:]).astype(a.dtype)
        rb = rng.standard_normal(b.shape[-2:]).astype(b.dtype)
        nt = ra @ rb.swapaxes(-1, -2)
        nn = ra @ np.ascontiguousarray(rb.swapaxes(-1, -2))
        if len(_NN_SAME) > 256:
            _NN_SAME.clear()
        ok = _NN_SAME[key] = bool(np.array_equal(nt.view(np.int32), nn.view(np.int32)))
    return ok


def usable(a, b) -> bool:
    """float32 NumPy operands of the same batch shape whose NN form gives the NT bits."""
    # (MKL reads the transposed operand as fast: the NT product itself, no copy)
    return (type(a) is np.ndarray and type(b) is np.ndarray and a.dtype == _F32
            and b.dtype == _F32 and blas._ACTIVE[0] is None and a.ndim == b.ndim >= 2
            and a.shape[:-2] == b.shape[:-2] and nn_same(a, b))  # fmt: skip


def transpose_last2(b, out) -> None:
    """out = b with its last two axes swapped (out C-contiguous)."""
    if b.ndim == 4:
        _transpose4()(b, out)
    else:
        np.copyto(out, b.swapaxes(-1, -2))


def matmul_nt(a, b, out=None):
    """a @ b^T: the NN product on a transposed copy of b where `usable`, else NumPy's NT.
    `out`, if given, receives the product (any strides NumPy's matmul takes)."""
    if not usable(a, b):
        return blas.matmul(a, b.swapaxes(-1, -2), out=out)
    bt = np.empty(b.shape[:-2] + (b.shape[-1], b.shape[-2]), b.dtype)
    transpose_last2(b, bt)
    return np.matmul(a, bt, out=out)


def _transpose4_py(src, out):  # pragma: no cover - compiled
    n0, n1, n2, n3 = src.shape
    for i in range(n0):
        for j in range(n1):
            for d in range(n3):  # contiguous writes, strided reads: the faster order here
                for t in range(n2):
                    out[i, j, d, t] = src[i, j, t, d]


def _transpose4():
    if not _TRANSPOSE4:
        import numba  # noqa: PLC0415 - loaded on first use

        _TRANSPOSE4.append(numba.njit(nogil=True, error_model="numpy", cache=True)(_transpose4_py))
    return _TRANSPOSE4[0]
