"""conv3d and the transposed convolutions (1-, 2- and 3-D) as one op each on the CPU.

The composite form (nn/functional/_conv_extra.py: Im2ColNd, matmuls, swapaxes, Col2ImNd)
records five or six nodes per call and moves the patch matrix through generic ops several
times: conv3d 3x3x3 32->32 on (4, 32, 16, 16, 16) took 150-180 ms forward + backward, of
which im2col's strided copy was 16 ms and col2im's 27 strided adds 30 ms. Here one Function
per call, with numba im2col/col2im in a channels-last layout (kernels/_cpu_convnd.py), and
the products arranged so that every BLAS call has unit-stride operands.

The patches are made a block of rows at a time (BLOCK_ROWS) and remade in backward
instead of kept.

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
import os

import numpy as np

from .. import autograd, blas
from ..autograd import Function
from ..grad_mode import enable_grad
from . import conv_winograd

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


def _positions_last(a):
    """(N, C, *S) -> contiguous (N, prod(S), C): the numba tiled copy (_cpu_convnd.
    channels_last) for a contiguous a of 256 positions or more, NumPy's copy of the
    transposed view otherwise ((32, 64, 1024) float32: 16.6 against 6.9 ms; (4, 32, 4096):
    1.5 against 0.57; (32, 256, 64): 0.33 against 0.45, taskset -c 0, load 10)."""
    n, c = a.shape[:2]
    a3 = a.reshape(n, c, -1)
    if not a3.flags.c_contiguous or a3.shape[2] < 256:
        return np.ascontiguousarray(a3.transpose(0, 2, 1))
    from ..kernels import _cpu_convnd

    out = np.empty((n, a3.shape[2], c), dtype=a.dtype)
    _cpu_convnd.channels_last(a3, out)
    return out


def _channels_last(a, nd: int):
    """(N, C, *S) -> contiguous (N, D, H, W, C), unit spatial dimensions in front."""
    n, c = a.shape[:2]
    spatial = (1,) * (3 - nd) + tuple(a.shape[2:])
    return _positions_last(a).reshape(n, *spatial, c)


def _rows_last(a):
    """(N, C, *S) -> contiguous (N * prod(S), C): one row per position."""
    return _positions_last(a).reshape(-1, a.shape[1])


def _channels_first(rows, n: int, shape):
    """(N * P, C) rows (or (N, *S3, C)) -> contiguous (N, C, *S) of shape `shape`."""
    c = shape[1]
    return np.ascontiguousarray(rows.reshape(n, -1, c).transpose(0, 2, 1)).reshape(shape)


def _per_group(a, g: int):
    """(R, G * m) -> (G, R, m) view: the group's block of each row."""
    return a.reshape(a.shape[0], g, -1).transpose(1, 0, 2)


# Rows per block: the patch matrix is made and used a block of rows at a time, in one buffer
# reused by every block: a whole-batch matrix (56 MB for conv3d 32 -> 32 on (4, 32, 16, 16, 16))
# went through memory four times and its fresh pages cost more than the copies (forward +
# backward, taskset -c 0, load ~6: 683 ms whole against 122 ms in 4 MB blocks; ConvTranspose2d
# (64, 64, 3) on (16, 64, 32, 32): 377 against 105 ms). Blocks of whole images were too large
# for that conv3d (one image: 4,096 rows, 14 MB): blocks of BLOCK_ROWS rows, or more where rows
# are short (BLOCK_BYTES), measured 4096 / 2048 / 1024 / 512 / 256 rows: 193 / 154 / 144 /
# 140 / 150 ms (load 10); conv2d 64 -> 64 3x3 on (32, 64, 32, 32): 332 / 305 / 316 / 301 /
# 298; 256 -> 256 on 8x8: 228 / 225 / 247 / 256 / 248 (fewer rows re-pack the weight per
# product more often: 14 rows took twice as long).
# With a multi-threaded BLAS every product wakes and joins its threads: at 2 threads, on the
# shared 2-core machine (load 7-10), rows per block 512 / 1024 / 2048 / 4096 / 8192 / 16384 /
# whole batch took conv3d 652 / 220 / 146 / 110-266 / 171 / 194 / 111-199 ms and the conv2d
# 64 -> 64 layer 1967 / 1344 / 777 / 331-439 / 287 / 224 / 246-350: blocks of
# BLOCK_ROWS_THREADED rows there.
BLOCK_ROWS = 512
BLOCK_ROWS_THREADED = 16384
BLOCK_BYTES = 1 << 20


def _blas_thread_getter():
    """A function giving the BLAS's thread count now (the controller of NumPy's BLAS that
    conv_winograd._blas picks, made once), or None without threadpoolctl."""
    lib = conv_winograd._blas()
    return None if lib is None else lib.get_num_threads


_BLAS_THREADS: list = []  # [the getter] once looked up


def _blas_threads() -> int:
    """The threads of the BLAS doing the convolutions' products: MKL's while
    descent.backends.set_blas('mkl') is on (its products go through descent.blas.matmul; NumPy's
    OpenBLAS is held at one thread then), else NumPy's (`_openblas_threads`). The two-thread
    split (conv_winograd._parts), the block sizes and conv2d's choice of op follow it."""
    if blas._ACTIVE[0] is not None:
        return blas.mkl_threads()
    return _openblas_threads()


def _openblas_threads() -> int:
    """NumPy's BLAS threads (~25 us through threadpoolctl); without it, OPENBLAS_NUM_THREADS,
    OMP_NUM_THREADS or the CPU count."""
    if not _BLAS_THREADS:
        _BLAS_THREADS.append(_blas_thread_getter())
    get = _BLAS_THREADS[0]
    n = get() if get is not None else None
    if n:
        return int(n)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        v = os.environ.get(var, "")
        if v.isdigit() and int(v) > 0:
            return int(v)
    return os.cpu_count() or 1


def _blocks(rows: int, row_bytes: int, r0: int = 0, threaded: bool | None = None):
    """(r0, r1) ranges of patch rows r0 .. rows - 1: BLOCK_ROWS rows, or BLOCK_BYTES of them
    if more, with a one-thread BLAS; BLOCK_ROWS_THREADED rows with more threads (threaded:
    None asks the BLAS)."""
    step = max(BLOCK_ROWS, BLOCK_BYTES // max(row_bytes, 1))
    if threaded is None:
        threaded = _blas_threads() > 1
    if threaded:
        step = max(step, BLOCK_ROWS_THREADED)
    return [(a, min(rows, a + step)) for a in range(r0, rows, step)]


def _image_parts(n: int):
    """(parts, ranges, threaded): image ranges for the two-thread split of conv_winograd (its
    _parts and _run: each part on its own thread with a one-thread BLAS), or [(0, n)] with
    one part; the ranges the loops run (conv_winograd._ranges: with a one-thread BLAS the
    same halves in order, for one thread's bits at two); whether the products of a part may
    use BLAS threads (one part only)."""
    threads = _blas_threads()
    parts = conv_winograd._parts(n, threads) if threads == 2 else [(0, n)]
    ranges = conv_winograd._ranges(n, threads, parts)
    return parts, ranges, len(parts) == 1 and threads > 1


def _gemm(a, wr, out, g: int) -> None:
    """out (R, G * m) = per group a_g (R, k) @ wr_g (k, m), a (R, G * k), wr (G, k, m) views."""
    if g == 1:
        blas.matmul(a, wr[0], out=out)
    else:
        blas.matmul(_per_group(a, g), wr, out=_per_group(out, g))


def _gemm_tn(a, b, g: int):
    """(G, ka, kb) = per group a_g^T @ b_g, a (R, G * ka) and b (R, G * kb)."""
    if g == 1:
        return blas.matmul(a.T, b)[None]
    return blas.matmul(_per_group(a, g).transpose(0, 2, 1), _per_group(b, g))


def _conv_rows(al, geom3, wins, wmat, tn=None):
    """The convolution of channels-last al (N, D, H, W, C) with wmat (G, kvol * C/G, O/G)
    (rows in the cols order), geometry geom3, as rows (N * prod(wins), O): im2col and one
    GEMM per block of rows. With tn (N * prod(wins), G * m) rows, also returns the sum over
    rows of cols_g^T @ tn_g, (G, kvol * C/G, m), from the same blocks of cols."""
    n, c = al.shape[0], al.shape[-1]
    g, p = wmat.shape[0], math.prod(wins)
    kv = wmat.shape[1] * g // c
    rows = np.empty((n * p, wmat.shape[2] * g), dtype=al.dtype)
    parts, ranges, threaded = _image_parts(n)
    from ..kernels import _cpu_convnd

    def part(i0, i1):
        blocks = _blocks(i1 * p, kv * c * al.itemsize, i0 * p, threaded)
        most = max(r1 - r0 for r0, r1 in blocks)
        cols = np.empty((most, g, kv, c // g), dtype=al.dtype)  # (rows, G, kvol, C/G)
        acc = None
        for r0, r1 in blocks:
            cb = cols[: r1 - r0].reshape(r1 - r0, -1)
            _cpu_convnd.im2col_cl(al, geom3, r0, cols[: r1 - r0])
            _gemm(cb, wmat, rows[r0:r1], g)
            if tn is not None:
                prod = _gemm_tn(cb, tn[r0:r1], g)
                acc = prod if acc is None else np.add(acc, prod, out=acc)
        return acc

    with conv_winograd._OneBlasThread(parts):
        accs = conv_winograd._run_ranges(parts, ranges, part)
    if tn is None:
        return rows
    return rows, (accs[0] if len(accs) == 1 else accs[0] + accs[1])


def _flipped_rows(w, groups: int):
    """w (A, B/G, *k) -> (G, kvol * A/G, B/G): the kernel reversed in every spatial dimension,
    rows (offset, a) per group. With stride 1, the adjoint of a convolution in its input is
    the convolution of the same dilation with this kernel and padding d (k - 1) - p (a
    negative padding just skips the border: the kernels test every position's bounds)."""
    a, bg = w.shape[:2]
    kv = w.size // (a * bg)
    wf = w.reshape(groups, a // groups, bg, kv)[..., ::-1]  # (G, A/G, B/G, kvol) reversed
    return np.ascontiguousarray(wf.transpose(0, 3, 1, 2)).reshape(groups, -1, bg)


def _adjoint_geom(geom, nd: int, wins):
    """The kernels' geometry of the stride-1 adjoint convolution (see _flipped_rows)."""
    k, _s, d, p = geom
    padding = tuple(di * (ki - 1) - pi for ki, di, pi in zip(k, d, p, strict=True))
    return _geom3((k, (1,) * nd, d, padding), wins, nd)


def _finish(y, b, spatial):
    """The (N, C, *spatial) output from the (N, C, P) view y, plus the bias b[0] when given:
    bias and layout in one pass."""
    n, c = y.shape[0], y.shape[1]
    out = np.empty((n, c, y.shape[2]), dtype=y.dtype)
    if b:
        np.add(y, b[0].reshape(1, c, 1), out=out)
    else:
        out[...] = y
    return out.reshape(n, c, *spatial)


def _graph_backward(fn, gy, ins):
    """create_graph: the composite form's gradients, recorded (differentiable again)."""
    with enable_grad():
        y = fn.composite(*ins)
        wanted = [t for t, p in zip(ins, fn.parents) if p is not None]
        seed = autograd._seed(y, gy, True, type(fn).__name__)
        gs = iter(autograd._engine_backward([y], [seed], True, True, capture=wanted,
                                        accumulate=False))  # fmt: skip
    return tuple(next(gs) if p is not None else None for p in fn.parents)


class ConvNd(Function):
    """y[n, o] = sum_{c, k} w[o, c, k] x[n, g(o) C/G + c, s*pos + d*k - p] + b[o], in nd = 1-3
    spatial dimensions (cross-correlation, as PyTorch).

    Backward: gW = gy^T @ cols, gcols = gy^T @ W, gx = col2im(gcols), gb = sum of gy over all
    but the channel axis. Saves the inputs only: backward remakes each block's patches (an
    in-cache copy, cheaper than keeping the whole matrix).
    """

    __slots__ = ("geom", "nd", "groups", "has_b", "wins", "composite", "xl")
    save_inputs = True
    # Winograd's path keeps the channels-last input it made (the weight gradient's tiles):
    # remaking it took 1-2 ms per layer of a ResNet step (the (32, 32, 32, 32) input); None
    # when the forward took im2col, and backward follows the forward's choice
    saved_slots = ("xl",)

    def _weight_rows(self, w):
        """(O, C/G, *k) -> (G, O/G, kvol * C/G): each filter's row in the cols order."""
        o, cg = w.shape[:2]
        kv = w.size // (o * cg)
        wr = np.ascontiguousarray(w.reshape(o, cg, kv).transpose(0, 2, 1))
        return wr.reshape(self.groups, o // self.groups, kv * cg)

    def _patches(self, x, w):
        """The pieces both passes share: channels-last x, geometry, the blocks and a cols
        buffer for the largest block (rows of G * kvol * C/G values)."""
        n, c = x.shape[:2]
        g, kv, p = self.groups, w[0, 0].size, math.prod(self.wins)
        blocks = _blocks(n * p, kv * c * x.itemsize)
        most = max(r1 - r0 for r0, r1 in blocks)
        cols = np.empty((most, g, kv, c // g), dtype=x.dtype)  # (rows, G, kvol, C/G)
        return _channels_last(x, self.nd), _geom3(self.geom, self.wins, self.nd), blocks, p, cols

    def forward(self, x, w, *b):
        n, o = x.shape[0], w.shape[0]
        p = math.prod(self.wins)
        self.xl = None
        threads = _blas_threads()
        if threads <= conv_winograd.MAX_BLAS_THREADS and conv_winograd.winograd_ok(
                x, w, self.geom, self.groups, self.nd):  # fmt: skip
            # 3x3 stride 1: Winograd F(2x2, 3x3), 16 products per 2x2 outputs instead of 36
            # (a BLAS of 1 or 2 threads: see conv_winograd's docstring for more)
            y, self.xl = conv_winograd.forward(x, w, b[0] if self.has_b else None,
                                               self.geom[3], self.wins, threads)  # fmt: skip
            return y
        wt = self._weight_rows(w).transpose(0, 2, 1)  # (G, K_g, O/G) view
        yt = _conv_rows(_channels_last(x, self.nd), _geom3(self.geom, self.wins, self.nd),
                        self.wins, wt)  # (R, O)  # fmt: skip
        yv = yt.reshape(n, p, o).transpose(0, 2, 1)  # (N, O, P) view
        return _finish(yv, b if self.has_b else (), self.wins)

    def backward(self, gy, ops):
        ins = self.inputs(ops)
        if ops.is_graph:
            return _graph_backward(self, gy, ins)
        from ..kernels import _cpu_convnd

        x, w = ins[0], ins[1]
        g, n = self.groups, x.shape[0]
        need_x, need_w = self.parents[0] is not None, self.parents[1] is not None
        if self.xl is not None:  # the forward ran Winograd's tiles
            return self._winograd_backward(x, w, gy, need_x, need_w)
        xl, geom, blocks, p, cols = self._patches(x, w)
        gyt = _rows_last(gy)  # (R, O)
        wr = self._weight_rows(w)  # (G, O/G, K_g)
        gx = gw = gwr = None
        if need_x and max(self.geom[1]) == 1:
            # Stride 1: gx is a convolution of gy (_flipped_rows): a GEMM with kvol * O/G
            # terms per output instead of the O/G-term gcols product and col2im's scatter
            # (conv3d 32 -> 32 16^3: the gcols GEMM took twice the forward's).
            # (N, D, H, W, O): the rows of gyt (the same order), not a second copy
            gyl = gyt.reshape(n, *((1,) * (3 - self.nd) + tuple(gy.shape[2:])), -1)
            adj = (gyl, _adjoint_geom(self.geom, self.nd, x.shape[2:]), x.shape[2:],
                   _flipped_rows(w, g))  # fmt: skip
            if need_w:
                # gW from the same patches of gy: cols_gy[s, (t', o)] = gy[s - d t + p, o] for
                # the reversed offset t' of t, so per group cols_gy^T @ x rows sums
                # gy[r, o] x[r + d t - p, c] over the input positions s = r + d t - p: gW
                # with the offsets reversed (one im2col of x fewer, the same product sizes)
                gxt, gwf = _conv_rows(*adj, tn=xl.reshape(-1, xl.shape[-1]))
                o, cg = w.shape[:2]
                gwf = gwf.reshape(g, -1, o // g, cg)[:, ::-1]  # (G, kvol, O/G, C/G)
                gw = np.ascontiguousarray(gwf.transpose(0, 2, 3, 1)).reshape(w.shape)
                need_w = False
            else:
                gxt = _conv_rows(*adj)  # (N * prod(S), C)
            gx = _channels_first(gxt, n, x.shape)
            need_x = False
        gxl = np.zeros(xl.shape, dtype=gy.dtype) if need_x else None  # (N, D, H, W, C)
        parts, ranges, threaded = _image_parts(n)

        def part(i0, i1):
            # one part: the blocks and cols of _patches; two (one per thread, images i0 ..
            # i1 - 1): their own blocks and buffers, col2im into disjoint images of gxl
            bl, cb_all = blocks, cols
            if len(ranges) > 1:
                bl = _blocks(i1 * p, cols[0].size * cols.itemsize, i0 * p, threaded)
                cb_all = np.empty((max(r1 - r0 for r0, r1 in bl), *cols.shape[1:]), cols.dtype)
            gwp = np.zeros(wr.shape, dtype=gy.dtype) if need_w else None
            gcols = np.empty(cb_all.shape, dtype=gy.dtype) if need_x else None
            for r0, r1 in bl:
                gb_ = gyt[r0:r1]
                m = r1 - r0
                if need_w:  # gW_g += gy_g^T @ cols_g over this block's rows
                    cb = cb_all[:m]
                    _cpu_convnd.im2col_cl(xl, geom, r0, cb)
                    gwp += _gemm_tn(gb_, cb.reshape(m, -1), g)
                if need_x:  # gcols_g = gy_g @ W_g, summed back into the block's windows
                    gcb = gcols[:m]
                    _gemm(gb_, wr, gcb.reshape(m, -1), g)
                    _cpu_convnd.col2im_cl(gcb, geom, r0, gxl)
            return gwp

        if need_x or need_w:
            with conv_winograd._OneBlasThread(parts):
                gws = conv_winograd._run_ranges(parts, ranges, part)
            gwr = gws[0] if len(gws) == 1 or not need_w else gws[0] + gws[1]
        if need_x:
            gx = _channels_first(gxl, n, x.shape)
        if need_w:
            o, cg = w.shape[:2]
            gw = np.ascontiguousarray(gwr.reshape(o, -1, cg).transpose(0, 2, 1))
            gw = gw.reshape(w.shape)
        return self._with_bias_grad(gx, gw, gy)

    def _with_bias_grad(self, gx, gw, gy):
        """(gx, gw) plus the bias gradient (gy summed over all but the channels) if any."""
        grads = (gx, gw)
        if self.has_b:
            gb = gy.sum(axis=(0, *range(2, gy.ndim))) if self.parents[2] is not None else None
            grads += (gb,)
        return grads

    def _winograd_backward(self, x, w, gy, need_x: bool, need_w: bool):
        """The gradients by the adjoint of the Winograd forward (ops/conv_winograd.py)."""
        # the channels-last x of forward for the weight gradient (its tiles)
        xl = self.xl if need_w else None
        gx, gw = conv_winograd.backward(xl, w, gy, x.shape, self.geom[3], need_x, need_w,
                                        _blas_threads())  # fmt: skip
        return self._with_bias_grad(gx, gw, gy)


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

    def _patches(self, x, w):
        """x as rows (R, C_in), the geometry, blocks and a cols buffer (rows, G, kvol, C_out/G)."""
        n = x.shape[0]
        g, og, kv, p = self.groups, w.shape[1], w[0, 0].size, math.prod(x.shape[2:])
        blocks = _blocks(n * p, kv * og * g * x.itemsize)
        most = max(r1 - r0 for r0, r1 in blocks)
        cols = np.empty((most, g, kv, og), dtype=x.dtype)
        return _rows_last(x), _geom3(self.geom, x.shape[2:], self.nd), blocks, p, cols

    def forward(self, x, w, *b):
        from ..kernels import _cpu_convnd

        n, g = x.shape[0], self.groups
        cout = w.shape[1] * g
        if max(self.geom[1]) == 1 and math.isfinite(w.sum()):
            # Stride 1: the output is a convolution of x (_flipped_rows), one GEMM of
            # kvol * C_in/G terms per output, no col2im scatter. Not with an inf / nan weight
            # (a finite sum is a sufficient check, ~1 us): the convolution's zero padding of x
            # would multiply it (0 * inf = nan) where PyTorch's col2im never forms that term
            yt = _conv_rows(_channels_last(x, self.nd), _adjoint_geom(self.geom, self.nd,
                            self.out), self.out, _flipped_rows(w, g))  # fmt: skip
            y = yt.reshape(n, -1, cout).transpose(0, 2, 1)  # (N, C_out, P_out) view
            return _finish(y, b if self.has_b else (), self.out)
        xt, geom, blocks, p, cols = self._patches(x, w)
        wr = self._weight_rows(w)  # (G, C_in/G, K_g)
        spatial = (1,) * (3 - self.nd) + tuple(self.out)
        yl = np.zeros((n, *spatial, cout), dtype=x.dtype)  # (N, D, H, W, C_out)
        for r0, r1 in blocks:
            cb = cols[: r1 - r0]
            _gemm(xt[r0:r1], wr, cb.reshape(cb.shape[0], -1), g)
            _cpu_convnd.col2im_cl(cb, geom, r0, yl)
        y = yl.reshape(n, -1, cout).transpose(0, 2, 1)  # (N, C_out, P_out) view
        return _finish(y, b if self.has_b else (), self.out)

    def backward(self, gy, ops):
        ins = self.inputs(ops)
        if ops.is_graph:
            return _graph_backward(self, gy, ins)
        from ..kernels import _cpu_convnd

        x, w = ins[0], ins[1]
        g, n = self.groups, x.shape[0]
        need_x, need_w = self.parents[0] is not None, self.parents[1] is not None
        xt, geom, blocks, p, gcols = self._patches(x, w)
        gyl = _channels_last(gy, self.nd)  # (N, D, H, W, C_out)
        wr = self._weight_rows(w)  # (G, C_in/G, K_g)
        gxt = np.empty(xt.shape, dtype=gy.dtype) if need_x else None  # (R, C_in)
        gwr = np.zeros(wr.shape, dtype=gy.dtype) if need_w else None
        for r0, r1 in blocks:
            gcb = gcols[: r1 - r0]
            _cpu_convnd.im2col_cl(gyl, geom, r0, gcb)
            gc2 = gcb.reshape(r1 - r0, -1)  # (rows, G * K_g)
            if need_x:  # gx_g^T = gcols_g @ W_g^T
                _gemm(gc2, wr.transpose(0, 2, 1), gxt[r0:r1], g)
            if need_w:  # gW_g += x_g^T^T @ gcols_g
                gwr += _gemm_tn(xt[r0:r1], gc2, g)
        gx = _channels_first(gxt, n, x.shape) if need_x else None
        gw = None
        if need_w:
            cin, og = w.shape[:2]
            gw = np.ascontiguousarray(gwr.reshape(cin, -1, og).transpose(0, 2, 1))
            gw = gw.reshape(w.shape)
        grads = (gx, gw)
        if self.has_b:
            gb = gy.sum(axis=(0, *range(2, gy.ndim))) if self.parents[2] is not None else None
            grads += (gb,)
        return grads
