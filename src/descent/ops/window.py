"""Sliding windows in any number of spatial dimensions: im2col and its adjoint col2im.

`Im2ColNd` turns an input (N, C, *S) into its patches (C, *k, N, *O): for each channel and
kernel offset, the (N, *O) block of input values that offset reads at every output position
(zero padding, stride, dilation). `Col2ImNd` is its adjoint: it adds patches back into an image,
summing where windows overlap. Each op's backward is the other one, so everything built from
them (conv3d, the transposed convolutions, unfold/fold, avg_pool3d in descent.nn.functional) is
differentiable to any order.

The 2-D convolution and pooling kernels of `descent.ops.conv` keep their own faster,
layout-tuned 2-D pair; this one serves the rest with one code path for 1, 2 and 3 dimensions.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from .. import backend
from ..autograd import Function
from ..tensor import Tensor


# geom, used throughout, is (k, s, d, p): kernel size, stride, dilation and padding, each a
# tuple with one entry per spatial dimension.
def window_out_size(n: int, k: int, s: int, d: int, p: int) -> int:
    """Output length of a window of size k, stride s, dilation d over n + 2p positions."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def im2col_nd(xp, x, geom):
    """(N, C, *S) -> patches (C, *k, N, *O), contiguous, zero padding."""
    k, s, d, p = geom
    n, c, *sizes = x.shape
    geoms = zip(k, s, d, p, strict=True)
    out = [window_out_size(sz, *g) for sz, g in zip(sizes, geoms, strict=True)]
    if any(p):
        x = xp.pad(x, ((0, 0), (0, 0)) + tuple((pi, pi) for pi in p))
    st_n, st_c, *st = x.strides
    # A strided view (no copy): axis k_i steps d_i rows, axis O_i steps s_i rows.
    view = _strided(
        xp,
        x,
        (c, *k, n, *out),
        (st_c, *(a * b for a, b in zip(st, d, strict=True)), st_n,
         *(a * b for a, b in zip(st, s, strict=True))),
    )  # fmt: skip
    return xp.ascontiguousarray(view)


def _strided(xp, a, shape, strides):
    """as_strided(a, shape, strides): a view of a's memory. For a C-contiguous NumPy array the
    same view made directly as an ndarray over a's buffer (as_strided builds it through an
    __array_interface__ object: ~3 us of a small pool's forward and backward each)."""
    if type(a) is np.ndarray and a.flags.c_contiguous and a.size:
        return np.ndarray(shape, a.dtype, a, 0, strides)  # (it checks the view fits in a)
    return xp.lib.stride_tricks.as_strided(a, shape, strides)


def col2im_nd(xp, cols, x_shape, geom):
    """Adjoint of im2col_nd: patches (C, *k, N, *O) summed back into an (N, C, *S) image."""
    k, s, d, p = geom
    n, c, *sizes = x_shape
    nd = len(k)
    out = cols.shape[-nd:]
    gx = xp.zeros((n, c, *(sz + 2 * pi for sz, pi in zip(sizes, p, strict=True))), cols.dtype)
    if all(si == ki for si, ki in zip(s, k)) and all(di == 1 for di in d):
        # Windows that tile the image (avg_pool3d(x, 8) has 512 offsets): one add of all the
        # patches into the (N, C, O0, k0, O1, k1, ...) view of gx; each pixel gets one add, as
        # in the loop below (the same bits: 0 + v)
        _, _, *st = gx.strides
        view = _strided(
            xp,
            gx,
            (n, c, *(v for oi, ki in zip(out, k) for v in (oi, ki))),
            (*gx.strides[:2], *(v for a, ki in zip(st, k) for v in (a * ki, a))),
        )
        perm = (nd + 1, 0, *(v for i in range(nd) for v in (nd + 2 + i, 1 + i)))
        view += cols.transpose(perm)
        return _crop(gx, p, sizes)
    # One strided add per kernel offset; overlapping windows read some pixels several times, so
    # their gradients are added, never assigned.
    for offs in itertools.product(*(range(ki) for ki in k)):
        sl = tuple(
            slice(o * di, o * di + si * (oi - 1) + 1, si)
            for o, di, si, oi in zip(offs, d, s, out, strict=True)
        )
        # (C, N, *O) -> (N, C, *O): swapaxes is moveaxis(.., 0, 1) without its axis checks
        gx[(slice(None), slice(None), *sl)] += cols[(slice(None), *offs)].swapaxes(0, 1)
    return _crop(gx, p, sizes)


def _crop(gx, p, sizes):
    """col2im_nd's image without its padding (the padding was read too; the input's part is
    the inner block)."""
    if any(p):
        gx = gx[(slice(None), slice(None), *(slice(pi, pi + sz) for pi, sz in zip(p, sizes)))]
    return gx


class Im2ColNd(Function):
    """Patches of x, (N, C, *S) -> (C, *k, N, *O); linear, its adjoint is Col2ImNd."""

    __slots__ = ("geom",)

    def forward(self, x):
        return im2col_nd(backend.get_array_module(x), x, self.geom)

    def backward(self, gy, ops):
        if ops.is_graph:
            return Col2ImNd.apply(gy, geom=self.geom, x_shape=self.in_shapes[0])
        return col2im_nd(backend.get_array_module(gy), gy, self.in_shapes[0], self.geom)


class Col2ImNd(Function):
    """Sum of patches (C, *k, N, *O) into an (N, C, *S) image: the adjoint of Im2ColNd."""

    __slots__ = ("geom", "x_shape")

    def forward(self, cols):
        return col2im_nd(backend.get_array_module(cols), cols, self.x_shape, self.geom)

    def backward(self, gy, ops):
        # The pair closes: Col2ImNd's adjoint is Im2ColNd, to any order.
        if ops.is_graph:
            return Im2ColNd.apply(gy, geom=self.geom)
        return im2col_nd(backend.get_array_module(gy), gy, self.geom)


class AvgPool3d(Function):
    """avg_pool3d as one node (PyTorch's AvgPool3DBackward0), (N, C, *S) -> (N, C, *O):

        y = (sum of each window of x) / div;  d/dx = gy / div added over each window (col2im)

    `div` is a 0-d array (kd*kh*kw or divisor_override) or the (*O) counts of the cells each
    window covers, in x's dtype. It makes the NumPy calls of the composite it replaces in the
    same order (im2col, the sum over the kernel offsets, the (N, C) order, the division;
    backward: the division, the patches broadcast, col2im), so values and gradients are the
    composite's bits (six nodes: Im2ColNd, reshape, sum, swapaxes, contiguous, division).
    Under create_graph backward is Tensor ops ending in Col2ImNd: differentiable again.
    float32 / float64 only (avg_pool3d keeps the composite for the other dtypes).
    """

    __slots__ = ("geom", "div")
    saves_params = True  # PyTorch's AvgPool3DBackward0 saves self: a second backward raises

    def forward(self, x):
        xp = backend.get_array_module(x)
        kern = _avg3d_kernels(x, self.geom)
        if kern is not None:
            # The statements below element by element, in their order (the same bits)
            k, s, _, p = self.geom
            n, c, *sizes = x.shape
            out = [window_out_size(sz, ki, si, 1, pi) for sz, ki, si, pi in zip(sizes, k, s, p)]
            y = np.empty((n, c, *out), x.dtype)
            kern.avgpool3d_forward_offsets(np.ascontiguousarray(x), np.array(k), np.array(s),
                                           np.array(p), x.dtype.type(0), y)  # fmt: skip
            y /= self.div
            return y
        nk = len(self.geom[0])
        cols = im2col_nd(xp, x, self.geom)  # (C, *k, N, *O)
        c, n, out = cols.shape[0], cols.shape[nk + 1], cols.shape[nk + 2 :]
        total = cols.reshape(c, math.prod(self.geom[0]), n, *out).sum(axis=1)  # (C, N, *O)
        y = xp.ascontiguousarray(total.swapaxes(0, 1))  # (N, C, *O), a new array
        y /= self.div  # in place: the same bits as the composite's y / div
        return y

    def backward(self, gy, ops):
        k = self.geom[0]
        n, c = self.in_shapes[0][:2]
        out = tuple(gy.shape[2:])
        ones = (1,) * len(k)
        if ops.is_graph:
            from .shape import broadcast_to, swapaxes  # noqa: PLC0415 - shape imports Tensor ops

            g = swapaxes(gy / Tensor._wrap(self.div), 0, 1)  # (C, N, *O)
            # over one axis of k's kd*kh*kw offsets, as the composite's sum (whose second
            # derivative sums them in that order)
            kk = math.prod(k)
            cols = broadcast_to(g.reshape(c, 1, n, *out), (c, kk, n, *out))
            cols = cols.reshape(c, *k, n, *out)
            return Col2ImNd.apply(cols, geom=self.geom, x_shape=self.in_shapes[0])
        xp = backend.get_array_module(gy)
        kern = _avg3d_kernels(gy, self.geom, self.in_shapes[0])
        if kern is not None:  # col2im_nd's adds element by element, in its order
            _, s, _, p = self.geom
            n_, c_, *sizes = self.in_shapes[0]
            g = np.ascontiguousarray(gy / self.div)  # (N, C, *O)
            gx = np.zeros((n_, c_, *(sz + 2 * pi for sz, pi in zip(sizes, p))), g.dtype)
            kern.avgpool3d_backward_offsets(g, np.array(k), np.array(s), gx)
            return _crop(gx, p, sizes)
        g = (gy / self.div).swapaxes(0, 1)  # (C, N, *O)
        cols = xp.broadcast_to(g.reshape(c, *ones, n, *out), (c, *k, n, *out))
        return col2im_nd(xp, cols, self.in_shapes[0], self.geom)


def _avg3d_kernels(a, geom, x_shape=None):
    """kernels/_cpu_bnpool.py when AvgPool3d may take its avgpool3d_* loops, else None: a
    NumPy float32/float64 5-D array (x, or gy in backward), no dilation, more than one value
    per offset (NumPy's sum over im2col's offset axis then adds one offset after the other; a
    lone (N, *O) position would make that axis the inner one, summed pairwise), kernels on;
    backward (x_shape given) only for an input below _KERNEL_MAX_VALUES values."""
    if type(a) is not np.ndarray or a.dtype not in _KERNEL_DTYPES or a.ndim != 5:
        return None
    if not a.size or any(di != 1 for di in geom[2]):
        return None
    if x_shape is not None and math.prod(x_shape) >= _KERNEL_MAX_VALUES:
        return None
    if x_shape is None:
        k, s, _, p = geom
        out = [window_out_size(sz, *g) for sz, g in zip(a.shape[2:], zip(k, s, (1, 1, 1), p))]
        if a.shape[0] * math.prod(out) < 2:
            return None
    elif a.shape[0] * math.prod(a.shape[2:]) < 2:
        return None
    if not _MODULES:
        from ..kernels import cpu as _kcpu  # noqa: PLC0415 - kernels.cpu imports no numba

        _MODULES.append(_kcpu)
    if not _MODULES[0].enabled():
        return None
    if len(_MODULES) < 2:
        from ..kernels import _cpu_bnpool  # noqa: PLC0415 - numba, on first use

        _MODULES.append(_cpu_bnpool)
    return _MODULES[1]


_MODULES: list = []  # [kernels.cpu, kernels._cpu_bnpool], on first use
#: AvgPool3d's backward loop serves inputs below this many values: there col2im's NumPy calls
#: are most of the time (2x3x4^3: 2.5 -> 1.7x PyTorch with the forward's loop); at 4x8x16^3
#: its strided scalar adds gain nothing on NumPy's vectorised passes (2x2x2 windows 186-241
#: against 220-247 us, 8^3 windows 124 / 113 us, one core). The forward's loop serves every
#: size (eight chains side by side, quiet, one core: 36 us against NumPy's 344 with 8^3
#: windows, 78 / 93 us with 2x2x2 windows, 203 / 447 us with 3^3 windows, stride 2, pad 1)
_KERNEL_MAX_VALUES = 1 << 15
_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def im2col(x, geom):
    """Differentiable patches of x (a Tensor): (N, C, *S) -> (C, *k, N, *O)."""
    return Im2ColNd.apply(x, geom=tuple(tuple(int(v) for v in g) for g in geom))


def col2im(cols, x_shape, geom):
    """Differentiable adjoint of `im2col`: patches summed into an image of shape x_shape."""
    geom = tuple(tuple(int(v) for v in g) for g in geom)
    return Col2ImNd.apply(cols, geom=geom, x_shape=tuple(int(v) for v in x_shape))


def count_windows(sizes, geom, counted) -> np.ndarray:
    """How many cells each window covers among those where `counted` (a bool array over the
    padded extent) is True: the divisor of an average pool that leaves some cells out."""
    k, s, d, _ = geom
    m = counted.astype(np.float64)[None, None]
    cols = im2col_nd(np, m, (k, s, d, (0,) * len(k)))  # (1, *k, 1, *O)
    return cols.reshape(int(np.prod(k)), *cols.shape[len(k) + 2 :]).sum(axis=0)
