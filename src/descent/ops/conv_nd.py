"""conv3d and the transposed convolutions (1-, 2- and 3-D) as one op each on the CPU.

The composite form (nn/functional/_conv_extra.py: Im2ColNd, matmuls, swapaxes, Col2ImNd)
records five or six nodes per call and moves the patch matrix through generic ops several
times: conv3d 3x3x3 32->32 on (4, 32, 16, 16, 16) took 150-180 ms forward + backward, of
which im2col's strided copy was 16 ms and col2im's 27 strided adds 30 ms. Here one Function
per call, with numba im2col/col2im in a channels-last layout (kernels/_cpu_convnd.py), and
the products arranged so that every BLAS call has unit-stride operands.

Layout (R = N * prod(windows), K_g = kvol * C/G, kvol = kd * kh * kw):
  * ConvNd: cols (R, G, kvol, C/G) = im2col(x); y^T_g (R, O/G) = cols_g @ W_g^T, with the
    weight reordered to W_g (O/G, kvol * C/G). Backward: gW_g = gy^T_g^T @ cols_g,
    gcols_g = gy^T_g @ W_g, gx = col2im(gcols).
  * ConvTransposeNd (the adjoint of ConvNd in its input): cols_g (R, K_g) = x^T_g @ W_g with
    W_g (C_in/G, kvol * C_out/G), y = col2im(cols) over the output. Backward:
    gcols = im2col(gy), gx^T_g = gcols_g @ W_g^T, gW_g = x^T_g^T @ gcols_g.
1-D and 2-D inputs run as 3-D ones with unit leading spatial dimensions.

Used for NumPy float32/float64 inputs with the numba kernels on (`fast_conv_ok`);
create_graph differentiates the composite form instead (`composite`), which also remains the
path for CuPy, half, integer and complex inputs and with DESCENT_KERNELS=numpy.
"""

from __future__ import annotations

import math

import numpy as np

from .. import autograd
from ..autograd import Function
from ..grad_mode import enable_grad

_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def fast_conv_ok(x, w) -> bool:
    """The one-op path applies: NumPy float32/float64 input and weight of one dtype (not
    meta, not CuPy), no empty dimension, and the numba kernels on."""
    a, b = x._data, w._data
    if type(a) is not np.ndarray or type(b) is not np.ndarray:
        return False
    if a.dtype not in _FAST_DTYPES or b.dtype != a.dtype or not a.size or not b.size:
        return False
    from ..kernels import cpu as _kcpu

    return _kcpu.enabled()


def _geom3(geom, wins, nd: int) -> np.ndarray:
    """The kernels' int64 geometry (kernel, stride, dilation, padding, windows; 3 each) of an
    nd-dimensional (k, s, d, p) with `wins` windows, unit dimensions in front."""
    lead = 3 - nd
    k, s, d, p = geom
    parts = [(1,) * lead + tuple(k), (1,) * lead + tuple(s), (1,) * lead + tuple(d),
             (0,) * lead + tuple(p), (1,) * lead + tuple(wins)]  # fmt: skip
    return np.array([v for part in parts for v in part], dtype=np.int64)


def _channels_last(a, nd: int):
    """(N, C, *S) -> contiguous (N, D, H, W, C), unit spatial dimensions in front."""
    n, c = a.shape[:2]
    spatial = (1,) * (3 - nd) + tuple(a.shape[2:])
    return np.ascontiguousarray(np.moveaxis(a.reshape(n, c, *spatial), 1, -1))


def _rows_last(a):
    """(N, C, *S) -> contiguous (N * prod(S), C): one row per position."""
    n, c = a.shape[:2]
    return np.ascontiguousarray(a.reshape(n, c, -1).transpose(0, 2, 1)).reshape(-1, c)


def _channels_first(rows, n: int, shape):
    """(N * P, C) rows (or (N, *S3, C)) -> contiguous (N, C, *S) of shape `shape`."""
    c = shape[1]
    return np.ascontiguousarray(rows.reshape(n, -1, c).transpose(0, 2, 1)).reshape(shape)


def _per_group(a, g: int):
    """(R, G * m) -> (G, R, m) view: the group's block of each row."""
    return a.reshape(a.shape[0], g, -1).transpose(1, 0, 2)


def _graph_backward(fn, gy, ins):
    """create_graph: the composite form's gradients, recorded (differentiable again)."""
    with enable_grad():
        y = fn.composite(*ins)
        wanted = [t for t, p in zip(ins, fn.parents) if p is not None]
        seed = autograd._seed(y, gy, True, type(fn).__name__)
        gs = iter(autograd.run_backward([y], [seed], True, True, capture=wanted,
                                        accumulate=False))  # fmt: skip
    return tuple(next(gs) if p is not None else None for p in fn.parents)


class ConvNd(Function):
    """y[n, o] = sum_{c, k} w[o, c, k] x[n, g(o) C/G + c, s*pos + d*k - p] + b[o], in nd = 1-3
    spatial dimensions (cross-correlation, as PyTorch).

    Backward: gW = gy^T @ cols, gcols = gy^T @ W, gx = col2im(gcols), gb = sum of gy over all
    but the channel axis. Saves cols (the patch matrix, for gW) and the inputs (w for gx).
    """

    __slots__ = ("geom", "nd", "groups", "has_b", "wins", "cols", "composite")
    save_inputs = True
    saved_slots = ("cols",)

    def _weight_rows(self, w):
        """(O, C/G, *k) -> (G, O/G, kvol * C/G): each filter's row in the cols order."""
        o, cg = w.shape[:2]
        kv = w.size // (o * cg)
        wr = np.ascontiguousarray(w.reshape(o, cg, kv).transpose(0, 2, 1))
        return wr.reshape(self.groups, o // self.groups, kv * cg)

    def forward(self, x, w, *b):
        from ..kernels import _cpu_convnd

        n, c = x.shape[:2]
        o, g = w.shape[0], self.groups
        rows, kv = n * math.prod(self.wins), w[0, 0].size
        cols = np.empty((rows, g, kv, c // g), dtype=x.dtype)  # (R, G, kvol, C/G)
        _cpu_convnd.im2col_cl(_channels_last(x, self.nd), _geom3(self.geom, self.wins, self.nd),
                              cols)  # fmt: skip
        wr = self._weight_rows(w)
        if g == 1:
            yt = cols.reshape(rows, -1) @ wr[0].T  # (R, O)
        else:  # (G, R, O/G) -> (R, O), each group's output channels side by side
            yt = _per_group(cols.reshape(rows, -1), g) @ wr.transpose(0, 2, 1)
            yt = yt.transpose(1, 0, 2).reshape(rows, o)
        p = rows // n
        y = np.empty((n, o, p), dtype=x.dtype)
        yv = yt.reshape(n, p, o).transpose(0, 2, 1)  # (N, O, P) view
        if self.has_b:
            np.add(yv, b[0].reshape(1, o, 1), out=y)  # bias and layout in one pass
        else:
            y[...] = yv
        self.cols = cols
        return y.reshape(n, o, *self.wins)

    def backward(self, gy, ops):
        ins = self.inputs(ops)
        if ops.is_graph:
            return _graph_backward(self, gy, ins)
        from ..kernels import _cpu_convnd

        x, w = ins[0], ins[1]
        g, n = self.groups, x.shape[0]
        need_x, need_w = self.parents[0] is not None, self.parents[1] is not None
        cols = self.cols.reshape(self.cols.shape[0], -1)  # (R, G * K_g)
        gyt = _rows_last(gy)  # (R, O)
        wr = self._weight_rows(w)
        gx = gw = None
        if need_w:
            if g == 1:
                gwr = gyt.T @ cols  # (O, K)
            else:
                gwr = _per_group(gyt, g).transpose(0, 2, 1) @ _per_group(cols, g)
            o, cg = w.shape[:2]
            gw = np.ascontiguousarray(gwr.reshape(o, -1, cg).transpose(0, 2, 1))
            gw = gw.reshape(w.shape)
        if need_x:
            gcols = np.empty(self.cols.shape, dtype=gy.dtype)  # (R, G, kvol, C/G)
            if g == 1:
                np.matmul(gyt, wr[0], out=gcols.reshape(cols.shape))
            else:
                np.matmul(_per_group(gyt, g), wr, out=_per_group(gcols.reshape(cols.shape), g))
            spatial = (1,) * (3 - self.nd) + tuple(x.shape[2:])
            gxl = np.zeros((n, *spatial, x.shape[1]), dtype=gy.dtype)  # (N, D, H, W, C)
            _cpu_convnd.col2im_cl(gcols, _geom3(self.geom, self.wins, self.nd), gxl)
            gx = _channels_first(gxl, n, x.shape)
        grads = (gx, gw)
        if self.has_b:
            gb = gy.sum(axis=(0, *range(2, gy.ndim))) if self.parents[2] is not None else None
            grads += (gb,)
        return grads


class ConvTransposeNd(Function):
    """The adjoint of ConvNd in its input: x (N, C_in, *S) and w (C_in, C_out/G, *k) give
    y (N, C_out, *out) = col2im(W^T x) + b, the windows of `geom` over out being S.

    Backward: gcols = im2col(gy), gx^T = gcols @ W^T, gW = x^T^T @ gcols, gb = sum of gy.
    Saves the inputs (x for gW, w for gx); nothing else.
    """

    __slots__ = ("geom", "nd", "groups", "has_b", "out", "composite")
    save_inputs = True

    def _weight_rows(self, w):
        """(C_in, C_out/G, *k) -> (G, C_in/G, kvol * C_out/G), in the cols order."""
        cin, og = w.shape[:2]
        kv = w.size // (cin * og)
        wr = np.ascontiguousarray(w.reshape(cin, og, kv).transpose(0, 2, 1))
        return wr.reshape(self.groups, cin // self.groups, kv * og)

    def forward(self, x, w, *b):
        from ..kernels import _cpu_convnd

        n, cin = x.shape[:2]
        g, og = self.groups, w.shape[1]
        cout, kv = og * g, w[0, 0].size
        xt = _rows_last(x)  # (R, C_in)
        rows = xt.shape[0]
        wr = self._weight_rows(w)
        cols = np.empty((rows, g, kv, og), dtype=x.dtype)  # (R, G, kvol, C_out/G)
        if g == 1:
            np.matmul(xt, wr[0], out=cols.reshape(rows, -1))
        else:
            np.matmul(_per_group(xt, g), wr, out=_per_group(cols.reshape(rows, -1), g))
        spatial = (1,) * (3 - self.nd) + tuple(self.out)
        yl = np.zeros((n, *spatial, cout), dtype=x.dtype)  # (N, D, H, W, C_out)
        _cpu_convnd.col2im_cl(cols, _geom3(self.geom, x.shape[2:], self.nd), yl)
        y = yl.reshape(n, -1, cout).transpose(0, 2, 1)  # (N, C_out, P) view
        out = np.empty((n, cout, y.shape[2]), dtype=x.dtype)
        if self.has_b:
            np.add(y, b[0].reshape(1, cout, 1), out=out)
        else:
            out[...] = y
        return out.reshape(n, cout, *self.out)

    def backward(self, gy, ops):
        ins = self.inputs(ops)
        if ops.is_graph:
            return _graph_backward(self, gy, ins)
        from ..kernels import _cpu_convnd

        x, w = ins[0], ins[1]
        g, n = self.groups, x.shape[0]
        need_x, need_w = self.parents[0] is not None, self.parents[1] is not None
        og = w.shape[1]
        rows = n * math.prod(x.shape[2:])
        gcols = np.empty((rows, g, w[0, 0].size, og), dtype=gy.dtype)
        _cpu_convnd.im2col_cl(_channels_last(gy, self.nd), _geom3(self.geom, x.shape[2:],
                              self.nd), gcols)  # fmt: skip
        gcols = gcols.reshape(rows, -1)  # (R, G * K_g)
        wr = self._weight_rows(w)
        gx = gw = None
        if need_x:
            if g == 1:
                gxt = gcols @ wr[0].T  # (R, C_in)
            else:
                gxt = _per_group(gcols, g) @ wr.transpose(0, 2, 1)  # (G, R, C_in/G)
                gxt = gxt.transpose(1, 0, 2).reshape(rows, -1)
            gx = _channels_first(gxt, n, x.shape)
        if need_w:
            xt = _rows_last(x)
            if g == 1:
                gwr = xt.T @ gcols  # (C_in, K)
            else:
                gwr = _per_group(xt, g).transpose(0, 2, 1) @ _per_group(gcols, g)
            cin = w.shape[0]
            gw = np.ascontiguousarray(gwr.reshape(cin, -1, og).transpose(0, 2, 1))
            gw = gw.reshape(w.shape)
        grads = (gx, gw)
        if self.has_b:
            gb = gy.sum(axis=(0, *range(2, gy.ndim))) if self.parents[2] is not None else None
            grads += (gb,)
        return grads
