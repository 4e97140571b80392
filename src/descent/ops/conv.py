"""Convolution and pooling: im2col with stride tricks, one matrix product, col2im for backward.

Layout. `im2col` turns the padded input (N, C, H, W) into the matrix of patches in the layout
(C, kh, kw, N, Ho, Wo): one strided view copied once, after which a convolution of every image
with every filter is ONE matrix product (G, O/G, K) @ (G, K, N*Ho*Wo), K = C/G * kh * kw. Its
adjoint `col2im` adds each kernel offset's slab back into a zero image (kh*kw strided adds).

Higher-order gradients: the fused ops' backward passes are written so that under
`create_graph=True` they run through `Im2Col`/`Col2Im`, two linear ops that are each other's
adjoint (each one's backward is the other), so convolution and pooling are differentiable to any
order.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import backend, blas
from ..autograd import Function
from ..grad_mode import is_grad_enabled
from ..opmath import HALF, in_float32
from ..tensor import Tensor
from .shape import broadcast_to, permute


# geom, used throughout, is the tuple (kh, kw, sh, sw, dh, dw, ph, pw): kernel size, stride,
# dilation and padding per spatial dimension.
def out_size(n: int, k: int, s: int, d: int, p: int) -> int:
    """Output length of a window of size k, stride s, dilation d over n + 2p positions."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def lowest(dtype):
    """The value that never wins a maximum: -inf, or the integer dtype's minimum (integer
    max-pooling has no infinity; PyTorch pads integers with their minimum too)."""
    dtype = np.dtype(dtype)
    return int(np.iinfo(dtype).min) if dtype.kind in "iu" else -np.inf


def _padded(xp, x, ph: int, pw: int, value=0.0):
    """x (N, C, H, W) padded by ph rows and pw columns of `value` on each side (x itself when
    both are 0). A filled array and one copy: np.pad's per-call cost was ~10x theirs on small
    images. (np.pad's memory order: F for an F-only-contiguous x.)"""
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    order = "F" if x.flags.f_contiguous and not x.flags.c_contiguous else "C"
    out = xp.full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype, order=order)
    out[:, :, ph : ph + h, pw : pw + w] = x
    return out


def im2col_array(xp, x, geom):
    """(N, C, H, W) -> patches (C, kh, kw, N, Ho, Wo) (contiguous), zero padding."""
    kh, kw, sh, sw, dh, dw, ph, pw = geom
    n, c, h, w = x.shape
    ho, wo = out_size(h, kh, sh, dh, ph), out_size(w, kw, sw, dw, pw)
    xp_ = _padded(xp, x, ph, pw)
    s_n, s_c, s_h, s_w = xp_.strides
    # A strided view over the padded input: no data moves until the one copy below.
    view = xp.lib.stride_tricks.as_strided(
        xp_, (c, kh, kw, n, ho, wo), (s_c, s_h * dh, s_w * dw, s_n, s_h * sh, s_w * sw)
    )
    return xp.ascontiguousarray(view)


def col2im_array(xp, cols, x_shape, geom):
    """Adjoint of im2col_array: patches (C, kh, kw, N, Ho, Wo) summed back into (N, C, H, W)."""
    # Overlapping windows read some pixels several times, so their gradients must be added, not
    # assigned: kh*kw strided in-place adds, each over the whole batch at once.
    kh, kw, sh, sw, dh, dw, ph, pw = geom
    n, c, h, w = x_shape
    ho, wo = cols.shape[-2], cols.shape[-1]
    gx = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        r0 = i * dh
        for j in range(kw):
            c0 = j * dw
            # (N, C, Ho, Wo) slab of kernel offset (i, j), added where that offset read from.
            gx[:, :, r0 : r0 + sh * (ho - 1) + 1 : sh, c0 : c0 + sw * (wo - 1) + 1 : sw] += cols[
                :, i, j
            ].transpose(1, 0, 2, 3)
    # The padding received gradient too (it was read); the input's gradient is the inner part.
    if ph or pw:
        gx = gx[:, :, ph : ph + h, pw : pw + w]
    return gx


def im2col_nlast(xp, x, geom):
    """(N, C, H, W) -> patches (C, kh, kw, Ho, Wo, N): the batch-last layout.

    The input is first turned batch-last, (C, H, W, N), so every patch row read is a run of
    N (or, with stride 1, Wo * N) contiguous values: much faster to gather and to scatter back
    than Wo-long rows when the images are small (see Conv2d).
    """
    kh, kw, sh, sw, dh, dw, ph, pw = geom
    n, c, h, w = x.shape
    ho, wo = out_size(h, kh, sh, dh, ph), out_size(w, kw, sw, dw, pw)
    # Padding the batch-last view makes the one copy that turns it contiguous, so the strided
    # view below reads runs of N values.
    xl = x.transpose(1, 2, 3, 0)  # (C, H, W, N) view
    if ph or pw:
        xl = xp.pad(xl, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    else:
        xl = xp.ascontiguousarray(xl)
    s_c, s_h, s_w, s_n = xl.strides
    view = xp.lib.stride_tricks.as_strided(
        xl, (c, kh, kw, ho, wo, n), (s_c, s_h * dh, s_w * dw, s_h * sh, s_w * sw, s_n)
    )
    return xp.ascontiguousarray(view)


def col2im_nlast(xp, cols, x_shape, geom):
    """Adjoint of im2col_nlast: patches (C, kh, kw, Ho, Wo, N) summed into (N, C, H, W)."""
    kh, kw, sh, sw, dh, dw, ph, pw = geom
    n, c, h, w = x_shape
    ho, wo = cols.shape[3], cols.shape[4]
    gx = xp.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=cols.dtype)
    k = _window_kernels(cols)
    if k is not None:  # one numba pass instead of kh*kw strided slab adds (the same bits)
        k.col2im_nlast_2d(np.ascontiguousarray(cols), sh, sw, dh, dw, gx)
        return np.ascontiguousarray(gx[:, ph : ph + h, pw : pw + w].transpose(3, 0, 1, 2))
    for i in range(kh):
        r0 = i * dh
        for j in range(kw):
            c0 = j * dw
            gx[:, r0 : r0 + sh * (ho - 1) + 1 : sh, c0 : c0 + sw * (wo - 1) + 1 : sw] += cols[
                :, i, j
            ]
    gx = gx[:, ph : ph + h, pw : pw + w]
    return xp.ascontiguousarray(gx.transpose(3, 0, 1, 2))


class Im2Col(Function):
    """Patches of x: (N, C, H, W) -> (C, kh, kw, N, Ho, Wo); linear, its adjoint is Col2Im."""

    __slots__ = ("geom",)

    def forward(self, x):
        return im2col_array(backend.get_array_module(x), x, self.geom)

    # Im2Col is linear, so its backward is its adjoint, Col2Im, as an op under create_graph
    # (differentiable again) or as the array function on a plain pass.
    def backward(self, gy, ops):
        if ops.is_graph:
            return Col2Im.apply(gy, geom=self.geom, x_shape=self.in_shapes[0])
        return col2im_array(backend.get_array_module(gy), gy, self.in_shapes[0], self.geom)


class Col2Im(Function):
    """Sum of patches back into an image: the adjoint of Im2Col (its backward is Im2Col)."""

    __slots__ = ("geom", "x_shape")

    def forward(self, cols):
        return col2im_array(backend.get_array_module(cols), cols, self.x_shape, self.geom)

    def backward(self, gy, ops):
        # And Col2Im's adjoint is Im2Col: the pair closes, to any order.
        if ops.is_graph:
            return Im2Col.apply(gy, geom=self.geom)
        return im2col_array(backend.get_array_module(gy), gy, self.geom)


# Output widths below this use the batch-last column layout (see Conv2d).
NLAST_BELOW_WIDTH = 16


def col2im_nfirst(xp, gcols, x_shape, geom):
    """Adjoint of im2col for patches in the image-major layout (N, C, kh, kw, Ho, Wo)."""
    kh, kw, sh, sw, dh, dw, ph, pw = geom
    n, c, h, w = x_shape
    ho, wo = gcols.shape[-2], gcols.shape[-1]
    gx = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=gcols.dtype)
    k = _window_kernels(gcols)
    if k is not None:  # one numba pass instead of kh*kw strided slab adds
        k.col2im_2d(np.ascontiguousarray(gcols), sh, sw, dh, dw, gx)
        return gx[:, :, ph : ph + h, pw : pw + w] if ph or pw else gx
    for i in range(kh):
        r0 = i * dh
        for j in range(kw):
            c0 = j * dw
            gx[:, :, r0 : r0 + sh * (ho - 1) + 1 : sh, c0 : c0 + sw * (wo - 1) + 1 : sw] += gcols[
                :, :, i, j
            ]
    if ph or pw:
        gx = gx[:, :, ph : ph + h, pw : pw + w]
    return gx


_DIRECT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _window_kernels(a):
    """kernels._cpu_extra for col2im_nfirst / col2im_nlast on NumPy float32/float64 arrays
    with the kernels on, else None. Their NumPy form (kh*kw strided slab adds) took 28-45 ms
    of a ResNet 3x3 convolution's ~300 (conv2d 64->64 on 32x32, batch 32, forward and
    backward, under load); the loops take half that and add in the same order (the same
    bits). A numba im2col was measured slower than NumPy's strided copy: not used."""
    if type(a) is not np.ndarray or a.dtype not in _DIRECT_DTYPES:
        return None
    if not _kernels_on():
        return None
    return _conv_modules()[2]


def prefer_conv_nd(x, w, geom, groups: int) -> bool:
    """Whether conv2d is faster as ops/conv_nd.py's ConvNd (channels-last patches made 512
    rows at a time, the input gradient as a convolution of gy with the reversed kernel and
    the weight gradient from its patches) than as Conv2d: NumPy float32/float64, numba
    kernels on, output rows >= 16 wide, and with a one-thread BLAS stride 1, at least 4
    kernel taps and 16 channels per group (with more threads, any stride, kernel and
    channels, groups = 1 or >= 16 channels per group). Measured fwd+bwd, one thread,
    taskset -c 0, load ~11, ConvNd / Conv2d: 3x3 64->64 on 32x32 b32 0.77, 128->128 16x16
    0.81, dilation 2 0.82, groups 2 (32 per group) 0.79; slower where it is excluded: stride
    2 1.12, 1x1 1.4-3, 3 input channels 3.1, LeNet's 1 and 6 channels, a 1x3 kernel on 256
    channels 1.07 (short patch runs; no im2col needed for 1x1), and output rows narrower than
    NLAST_BELOW_WIDTH, where Conv2d's batch-last layout runs (load 5-8: 256->256 8x8 1.00,
    512->512 4x4 1.19)."""
    kh, kw, sh, sw = geom[:4]
    if type(x) is not np.ndarray or type(w) is not np.ndarray:
        return False
    if x.dtype not in _DIRECT_DTYPES or w.dtype != x.dtype or not x.size or not w.size:
        return False
    if _winograd_geometry(x, w, geom, groups):
        # 3x3 stride 1, >= 16 channels: with a BLAS of <= 2 threads ConvNd runs Winograd F(2x2,
        # 3x3) (ops/conv_winograd.py) at any output width (16 products per 2x2 outputs, not 36)
        conv_nd, conv_winograd, _ = _conv_modules()
        if conv_nd._blas_threads() <= conv_winograd.MAX_BLAS_THREADS:
            return _kernels_on()
    if out_size(x.shape[3], kw, sw, geom[5], geom[7]) < NLAST_BELOW_WIDTH:
        return False  # Conv2d's batch-last layout: as fast or faster (see the docstring)
    cg = x.shape[1] // groups
    if cg == 1 or not (cg >= 16 or groups == 1):
        return False  # depthwise (its own loops), or thin groups: not measured
    if not _kernels_on():
        return False
    threads = _conv_modules()[0]._blas_threads()
    if threads > 1 and not (threads == 2 and PREFER_SPLIT_CONV2D and _split(x.shape[0])):
        # Conv2d's wide layout makes one product per image, and each wakes and joins the
        # BLAS threads: at 2 threads (load 6) ConvNd / Conv2d was 0.44 with stride 2, 0.32
        # for 1x1, 0.72 for the 3-channel stem, 0.69 for 8 channels, 0.18-0.62 on 3x3 s1.
        # Where the batch splits over two threads (_halves), each half's products run at
        # one BLAS thread, and the one-thread choice below holds.
        return True
    return (sh, sw) == (1, 1) and kh * kw >= 4 and cg >= 16


#: At two BLAS threads with the batch split over two cores, conv2d chooses between Conv2d
#: and ConvNd as with one thread (prefer_conv_nd; both split their batch then).
PREFER_SPLIT_CONV2D = True


def _split(n: int) -> bool:
    """The batch of n images splits over two threads (conv_winograd._parts)."""
    return len(_conv_modules()[1]._parts(n, 2)) == 2


def _halves(n: int, fn):
    """[fn(0, h), fn(h, n)] for the halves of n >= 2 images (h = ceil(n / 2)): Conv2d's wide
    layout runs its loops by halves at any thread count, so that its weight gradient adds the
    same two partial sums whether the halves ran one after the other or at once (two BLAS
    threads on two cores: conv_winograd's split, each half with a one-thread BLAS)."""
    conv_nd, cw, _ = _conv_modules()
    parts = cw._parts(n, 2) if conv_nd._blas_threads() == 2 else [(0, n)]
    if len(parts) == 2:
        with cw._OneBlasThread(parts):
            return cw._run(parts, fn)
    h = (n + 1) // 2
    return [fn(0, h), fn(h, n)]


def _winograd_geometry(x, w, geom, groups: int) -> bool:
    """conv2d's geometry is one ops/conv_winograd.py takes (3x3, stride 1, dilation 1)."""
    kh, kw, sh, sw, dh, dw = geom[:6]
    return _conv_modules()[1].winograd_ok(x, w, ((kh, kw), (sh, sw), (dh, dw), geom[6:]), groups, 2)


def _depthwise_kernels(x, w, groups: int):
    """kernels._cpu_convdw when Conv2d can run as a direct depthwise loop: NumPy float32/64
    arrays (not meta), groups = C = O (w (C, 1, kh, kw)), numba kernels on; else None."""
    if type(x) is not np.ndarray or type(w) is not np.ndarray:
        return None
    if x.dtype not in _DIRECT_DTYPES or w.dtype != x.dtype:
        return None
    if groups == 1 or groups != x.shape[1] or w.shape[0] != groups or w.shape[1] != 1:
        return None
    from ..kernels import cpu as _kcpu

    if not _kcpu.enabled():
        return None
    from ..kernels import _cpu_convdw

    return _cpu_convdw


def _mm(a, b):
    """a @ b: descent.blas.matmul for NumPy arrays (the BLAS descent.backends.set_blas chose),
    the array library's own product for CuPy's."""
    if type(a) is np.ndarray:
        return blas.matmul(a, b)
    return a @ b


class Conv2d(Function):
    """y[n, o] = sum_{c, i, j} w[o, c, i, j] x[n, c, s*h + d*i - p, s*w + d*j - p] + b[o].

    As matrices per group g: Y_g = W_g @ cols_g with cols = im2col(x) (G, K, columns).
    Backward: gW_g = gY_g @ cols_g^T, gcols_g = W_g^T @ gY_g, gx = col2im(gcols),
    gb = sum of gy over (N, Ho, Wo). Saves cols (the patch matrix) and w.

    Two layouts of the columns, chosen by the output width (both measured on LeNet's shapes):
      * wide images (Wo >= 16): per image, cols (C, kh, kw, N, Ho*Wo) read as (N, G, K, P);
        the products are batched over N, (O/G, K) @ (K, P) each: OpenBLAS is several times
        faster on these than on one (O, K) @ (K, N*P) product with a tiny O and K (conv1 of
        LeNet: dW 1.1 -> 0.16 ms), and the output comes out in (N, O, Ho, Wo) order directly;
      * small images (Wo < 16): batch-last, cols (C, kh, kw, Ho, Wo, N) and one product over
        all N*P columns; im2col/col2im then move runs of N values instead of Wo-long rows.

    Depthwise (groups = C = O, one filter per channel, as MobileNet's): direct numba loops
    (kernels._cpu_convdw) instead: im2col's columns and G products of one row each cost 10x
    PyTorch; nothing but the inputs is saved. Stride-1 convolutions with many channels do not
    come here (nn.functional.conv2d sends them to ops/conv_nd.py: see prefer_conv_nd).
    """

    __slots__ = ("geom", "groups", "has_b", "nlast", "cols", "direct")
    save_inputs = True
    saved_slots = ("cols",)

    def forward(self, x, w, *b):
        if x.dtype == HALF and type(x) is np.ndarray:
            # float16 on the CPU: products and bias in float32, rounded once, as PyTorch's
            # (NumPy's float16 matmul and the bias added after rounding were 2x further from
            # float64 on 144-term dot products); the columns are kept in float32 for backward
            return in_float32(self.forward, x, w, *b)
        xp = backend.get_array_module(x)
        n = x.shape[0]
        o, g = w.shape[0], self.groups
        geom = self.geom
        ho = out_size(x.shape[2], geom[0], geom[2], geom[4], geom[6])
        wo = out_size(x.shape[3], geom[1], geom[3], geom[5], geom[7])
        p = ho * wo
        self.direct = _depthwise_kernels(x, w, g)
        if self.direct is not None:
            kh, kw = geom[0], geom[1]
            out = np.empty((n, o, ho, wo), dtype=x.dtype)
            w3 = np.ascontiguousarray(w.reshape(o, kh, kw))
            bias = b[0] if self.has_b else np.empty(0, dtype=x.dtype)
            self.direct.depthwise_forward(np.ascontiguousarray(x), w3, bias, *geom[2:], out)
            self.cols = None  # backward pads the saved input again, a plane at a time
            return out
        # The layout choice is saved: backward must read cols in the layout forward wrote.
        self.nlast = wo < NLAST_BELOW_WIDTH
        if self.nlast:
            cols = im2col_nlast(xp, x, geom)  # (C, kh, kw, Ho, Wo, N)
            k = int(np.prod(w.shape[1:]))  # C/G * kh * kw (from w: N or P may be 0)
            y = _mm(w.reshape(g, o // g, k), cols.reshape(g, k, p * n))  # (G, O/G, P*N)
            y = y.reshape(o, ho, wo, n).transpose(3, 0, 1, 2)  # (N, O, Ho, Wo) view
            out = xp.empty((n, o, ho, wo), dtype=y.dtype)
            if self.has_b:
                xp.add(y, b[0].reshape(1, o, 1, 1), out=out)  # bias and layout in one pass
            else:
                out[...] = y
        elif type(x) is np.ndarray and n >= 2:
            cols, out = self._wide_forward(x, w, b, ho, wo)
        else:
            cols = im2col_array(xp, x, geom)  # (C, kh, kw, N, Ho, Wo)
            k = int(np.prod(w.shape[1:]))
            per_image = cols.reshape(g, k, n, p).transpose(2, 0, 1, 3)  # (N, G, K, P) view
            out = _mm(w.reshape(g, o // g, k), per_image).reshape(n, o, ho, wo)  # fresh
            if self.has_b:
                out += b[0].reshape(1, o, 1, 1)
        # cols is the one large array kept for backward (it gives dW without a second im2col); it
        # is a saved slot, so the engine frees it after backward.
        self.cols = cols
        return out

    def _wide_forward(self, x, w, b, ho: int, wo: int):
        """(cols, y) of the wide layout on NumPy arrays, by image halves (_halves): each
        half's patches (its columns of cols) and per-image products, the bias added."""
        kh, kw, sh, sw, dh, dw, ph, pw = self.geom
        n, c = x.shape[:2]
        o, g = w.shape[0], self.groups
        k, p = int(np.prod(w.shape[1:])), ho * wo
        cols = np.empty((c, kh, kw, n, ho, wo), dtype=x.dtype)
        out = np.empty((n, o, ho, wo), dtype=np.result_type(x, w))
        wg = w.reshape(g, o // g, k)

        def part(i0, i1):
            xh = _padded(np, x[i0:i1], ph, pw)
            s_n, s_c, s_h, s_w = xh.strides
            cols[:, :, :, i0:i1] = np.lib.stride_tricks.as_strided(
                xh, (c, kh, kw, i1 - i0, ho, wo), (s_c, s_h * dh, s_w * dw, s_n, s_h * sh, s_w * sw)
            )
            per_image = cols[:, :, :, i0:i1].reshape(g, k, i1 - i0, p).transpose(2, 0, 1, 3)
            oh = out[i0:i1]
            blas.matmul(wg, per_image, out=oh.reshape(i1 - i0, g, o // g, p))
            if self.has_b:
                oh += b[0].reshape(1, o, 1, 1)

        _halves(n, part)
        return cols, out

    def backward(self, gy, ops):
        if ops.is_graph:
            return self._graph_backward(gy, ops)
        ins = self.inputs(ops)
        x, w = ins[0], ins[1]
        if gy.dtype == HALF and type(gy) is np.ndarray:
            # float16 on the CPU in float32, rounded once, as PyTorch's (col2im's overlapping
            # patches and the per-image weight products were summed in float16: the input
            # gradient 3x further from float64 than PyTorch's); cols is float32 already
            return in_float32(self._array_backward, gy, x, w, self.cols)
        return self._array_backward(gy, x, w, self.cols)

    def _array_backward(self, gy, x, w, cols):
        """The gradients from arrays: gy (N, O, Ho, Wo), the input, weight and saved columns."""
        xp = backend.get_array_module(gy)
        n, o, ho, wo = gy.shape
        p = ho * wo
        g = self.groups
        og, kg = o // g, int(np.prod(w.shape)) // o  # kg = C/G * kh * kw
        c, kh, kw = x.shape[1], self.geom[0], self.geom[1]
        need_x, need_w = self.parents[0] is not None, self.parents[1] is not None
        # Per group: gW = gY @ cols^T and gcols = W^T @ gY, then col2im sums gcols into gx.
        w3 = w.reshape(g, og, kg)
        gx = gw = gb = None
        if getattr(self, "direct", None) is not None:  # depthwise: numba loops per plane
            gxd = np.empty(x.shape if need_x else (0,) * 4, dtype=gy.dtype)
            gw64 = np.zeros((o, kh, kw) if need_w else (0,) * 3, dtype=np.float64)
            need_b = self.has_b and self.parents[2] is not None
            gb64 = np.zeros(o if need_b else 0, dtype=np.float64)
            self.direct.depthwise_backward(
                np.ascontiguousarray(x), np.ascontiguousarray(w.reshape(o, kh, kw)),
                np.ascontiguousarray(gy), *self.geom[2:], gxd, gw64, gb64,
            )  # fmt: skip
            gx = gxd if need_x else None
            gw = gw64.astype(gy.dtype).reshape(w.shape) if need_w else None
            if need_b:  # summed in the loops above
                return gx, gw, gb64.astype(gy.dtype)
        elif self.nlast:
            # gy (N, O, Ho, Wo) in the batch-last column order (O, Ho, Wo, N): one copy, then one
            # product.
            gy2 = xp.ascontiguousarray(gy.transpose(1, 2, 3, 0)).reshape(g, og, p * n)
            if need_w:
                gw = _mm(gy2, cols.reshape(g, kg, p * n).swapaxes(-1, -2)).reshape(w.shape)
            if need_x:
                gcols = _mm(w3.swapaxes(-1, -2), gy2).reshape(c, kh, kw, ho, wo, n)
                gx = col2im_nlast(xp, gcols, x.shape, self.geom)
        elif type(gy) is np.ndarray and n >= 2 and cols.shape[3] == n:
            gy4 = gy.reshape(n, g, og, p)
            gx = np.empty(x.shape, dtype=gy.dtype) if need_x else None

            def part(i0, i1):
                gwh = None
                if need_w:  # the per-image products summed over the half's images
                    ct = cols[:, :, :, i0:i1].reshape(g, kg, i1 - i0, p).transpose(2, 0, 3, 1)
                    gwh = blas.matmul(gy4[i0:i1], ct).sum(axis=0)
                if need_x:
                    gcols = blas.matmul(w3.swapaxes(-1, -2), gy4[i0:i1])  # (n, G, K, P)
                    gcols = gcols.reshape(i1 - i0, c, kh, kw, ho, wo)
                    gx[i0:i1] = col2im_nfirst(np, gcols, (i1 - i0, *x.shape[1:]), self.geom)
                return gwh

            gws = _halves(n, part)
            if need_w:  # the halves' sums added, first half first: one thread's bits too
                gw = (gws[0] + gws[1]).reshape(w.shape)
        else:
            gy4 = gy.reshape(n, g, og, p)  # a view: the per-image products need no transpose
            if need_w:
                per_image_t = cols.reshape(g, kg, n, p).transpose(2, 0, 3, 1)  # (N, G, P, K)
                gw = _mm(gy4, per_image_t).sum(axis=0).reshape(w.shape)
            if need_x:
                gcols = _mm(w3.swapaxes(-1, -2), gy4)  # (N, G, K, P)
                gx = col2im_nfirst(xp, gcols.reshape(n, c, kh, kw, ho, wo), x.shape, self.geom)
        # The bias was added at every output position: its gradient sums gy over all but channels.
        if self.has_b and self.parents[2] is not None:
            gb = gy.sum(axis=(0, 2, 3))
        return (gx, gw, gb) if self.has_b else (gx, gw)

    def _graph_backward(self, gy, ops):
        """Differentiable form: products of recorded ops, patches through Im2Col/Col2Im."""
        ins = self.inputs(ops)
        x, w = ins[0], ins[1]
        n, o, ho, wo = gy.shape
        g = self.groups
        og, kg = o // g, int(np.prod(w.shape)) // o
        # The same products as the array path, in the image-major (C, kh, kw, N, Ho, Wo) layout of
        # Im2Col, with every step a recorded op.
        gy2 = permute(gy, 1, 0, 2, 3).reshape(g, og, n * ho * wo)  # (G, O/G, N*P)
        gx = gw = gb = None
        if self.parents[1] is not None:
            cols2 = Im2Col.apply(x, geom=self.geom).reshape(g, kg, n * ho * wo)
            gw = (gy2 @ cols2.swapaxes(-1, -2)).reshape(w.shape)
        if self.parents[0] is not None:
            gcols = w.reshape(g, og, kg).swapaxes(-1, -2) @ gy2  # (G, K, N*P)
            gcols = gcols.reshape(x.shape[1], self.geom[0], self.geom[1], n, ho, wo)
            gx = Col2Im.apply(gcols, geom=self.geom, x_shape=tuple(x.shape))
        if self.has_b and self.parents[2] is not None:
            gb = gy.sum(axis=(0, 2, 3))
        return (gx, gw, gb) if self.has_b else (gx, gw)


def _offsets(geom, ho, wo):
    """(i, j, slices) for every kernel offset: the strided block of the padded input it reads.
    Remembered per (geometry, output size): a tuple (the pooling loops over small images
    spent ~1 us per offset rebuilding the slices)."""
    return _offset_table(tuple(geom[:6]), ho, wo)


@functools.lru_cache(maxsize=256)
def _offset_table(geom, ho, wo):
    kh, kw, sh, sw, dh, dw = geom
    offs = []
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dh, j * dw
            rows = slice(r0, r0 + sh * (ho - 1) + 1, sh)
            cols = slice(c0, c0 + sw * (wo - 1) + 1, sw)
            offs.append((i, j, (slice(None), slice(None), rows, cols)))
    return tuple(offs)


def _last_nan_offset(xp, xpad, y, geom):
    """Per output: the number of the window's last NaN offset, or None when y holds no NaN.

    PyTorch's max-pool kernels keep `if (val > maxval || isnan(val))`, so each NaN replaces
    the running maximum and the window's LAST NaN (in row-major kernel order) is the winner.
    """
    if y.dtype.kind not in "fc" or not xp.isnan(y).any():
        return None  # the common case: one pass over the (small) output
    last = xp.full(y.shape, -1, dtype=np.int64)
    for i, j, sl in _offsets(geom, y.shape[2], y.shape[3]):
        last[xp.isnan(xpad[sl])] = i * geom[1] + j
    return last


def max_pool_winners(xp, xpad, y, geom):
    """Yield (offset number, slices, bool mask of the outputs whose winner is at that offset).

    The winner is the first maximum of the window (ties) or, when the window holds a NaN, its
    last NaN: PyTorch's index and gradient. xpad is the (-inf) padded input, y the output.
    """
    nan_at = _last_nan_offset(xp, xpad, y, geom)
    taken = None
    for i, j, sl in _offsets(geom, y.shape[2], y.shape[3]):
        k = i * geom[1] + j
        # A position wins where it equals the window's maximum; `taken` keeps a tie from being
        # counted twice, so exactly one input per window gets the gradient (the first, as
        # PyTorch). NaN equals nothing, so a NaN window never hits here.
        hit = xpad[sl] == y
        if nan_at is not None:
            hit |= nan_at == k
        if taken is None:
            taken = hit.copy()
        else:
            hit &= ~taken  # a tie: the earlier offset already won
            taken |= hit
        yield k, sl, hit


def pool_kernel_ok(x, geom) -> bool:
    """MaxPool2d may take kernels/_cpu_bnpool.py: a NumPy float32/float64 (N, C, H, W) x, no
    empty dimension, no dilation, at most 127 values per window, kernels on; padding only for
    small inputs (the kernel runs on a -inf padded copy, the numpy path's input)."""
    if type(x) is not np.ndarray or x.dtype not in _KERNEL_DTYPES or x.ndim != 4 or not x.size:
        return False
    kh, kw, sh, sw, dh, dw, ph, pw = geom
    if dh != 1 or dw != 1 or kh * kw > 127:
        return False
    if (ph or pw) and x.size >= _PADDED_KERNEL_MAX_VALUES:
        return False
    if out_size(x.shape[2], kh, sh, 1, ph) < 1 or out_size(x.shape[3], kw, sw, 1, pw) < 1:
        return False
    return _kernels_on()


def _avg_kernel_ok(a, geom, size=None) -> bool:
    """AvgPool2d's window loops may take kernels/_cpu_bnpool.py's avgpool_*_offsets: a NumPy
    float32/float64 (N, C, *, *) array (x, or backward's g), no dilation, the input below
    _PADDED_KERNEL_MAX_VALUES values (`size`, else a's: there the NumPy path's kh * kw calls
    each way are most of the time; above it the scalar loop costs more than NumPy's strided
    adds), kernels on."""
    if type(a) is not np.ndarray or a.dtype not in _KERNEL_DTYPES or not a.size:
        return False
    if geom[4] != 1 or geom[5] != 1:
        return False
    if (a.size if size is None else size) >= _PADDED_KERNEL_MAX_VALUES:
        return False
    return _kernels_on()


def _kernels_on() -> bool:
    """kernels.cpu.enabled(), its module found once (an import statement per call costs a few
    microseconds of the pooling ops' per-call overhead)."""
    if not _KCPU:
        from ..kernels import cpu as _kcpu  # noqa: PLC0415 - lazily: kernels import numba

        _KCPU.append(_kcpu)
    return _KCPU[0].enabled()


def _conv_modules():
    """(ops/conv_nd.py, ops/conv_winograd.py, kernels/_cpu_extra.py), imported on first use
    (they import this module; _cpu_extra imports numba: asked for only with the kernels on).
    Looked up once: the import statements these helpers made cost ~1.5 us each, ten per
    small Conv1d step (session 28). Attributes are read at each call, so a test's monkeypatch
    of conv_nd._blas_threads or conv_winograd.MAX_BLAS_THREADS still takes effect."""
    if not _CONV_MODULES:
        from . import conv_nd, conv_winograd  # noqa: PLC0415

        _CONV_MODULES[:] = [conv_nd, conv_winograd, None]
    if _CONV_MODULES[2] is None and _kernels_on():
        from ..kernels import _cpu_extra  # noqa: PLC0415 - numba

        _CONV_MODULES[2] = _cpu_extra
    return _CONV_MODULES


_CONV_MODULES: list = []  # [conv_nd, conv_winograd, kernels._cpu_extra], on first use


def _bnpool():
    """kernels/_cpu_bnpool.py and conv_winograd.split_run, imported on first use (numba)."""
    if len(_KCPU) < 3:
        from ..kernels import _cpu_bnpool  # noqa: PLC0415
        from .conv_winograd import split_run  # noqa: PLC0415

        _KCPU[1:] = [_cpu_bnpool, split_run]
    return _KCPU[1], _KCPU[2]


#: Padded inputs take the kernel below this many values only: there the numpy path's per-call
#: cost (the pad, kh*kw slices each way) is most of the time; above it the kernel's scalar
#: window loop (forward ~10x numpy's running maximum at 16x16x32x32 here) costs about what its
#: backward saves.
_PADDED_KERNEL_MAX_VALUES = 1 << 15

_KCPU: list = []  # [kernels.cpu, kernels._cpu_bnpool, conv_winograd.split_run], on first use


_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def pool_kernel_winners(x, geom):
    """(y, idx): the maximum of each window of x (N, C, H, W) and its offset i * kw + j in the
    window (int8), by kernels/_cpu_bnpool.py's loops (`pool_kernel_ok(x, geom)` holds). A
    padded x is copied into a (lowest-valued) padded array first, as the numpy path pads."""
    k, split_run = _bnpool()
    kh, kw, sh, sw, _, _, ph, pw = geom
    n, c, h, w = x.shape
    if ph or pw:
        xc = np.empty((n, c, h + 2 * ph, w + 2 * pw), x.dtype)
        xc[...] = lowest(x.dtype)
        xc[:, :, ph : ph + h, pw : pw + w] = x
    else:
        xc = np.ascontiguousarray(x)
    y = np.empty((n, c, out_size(h, kh, sh, 1, ph), out_size(w, kw, sw, 1, pw)), x.dtype)
    idx = np.empty(y.shape, np.int8)

    def part(n0, n1):
        k.maxpool_forward(xc, kh, kw, sh, sw, n0, n1, y, idx)

    split_run(n, xc.size, part)
    return y, idx


class MaxPool2d(Function):
    """y = max over each window; the gradient goes to the first maximal element (as PyTorch),
    or to the window's last NaN (np.maximum propagates NaN, and PyTorch picks the last one).

    Forward: a running np.maximum over the kh*kw strided slices (no patch copy, nothing but the
    output allocated). Backward finds the winners by comparing each slice with the saved output,
    first offset first, and adds gy * mask into the strided view of each offset.

    NumPy float32/float64 inputs without dilation (windows of at most 127 values), with the
    numba kernels on, take kernels/_cpu_bnpool.py's loops instead (padded ones below 32,768
    values, on a -inf padded copy: pool_kernel_ok): forward writes the output and each
    window's winner (its offset, int8), backward puts gy there (padded overlapping windows:
    numpy adds in the offset order of the path above, whose bits they keep). Images are split
    in two halves run at once with two BLAS threads on two cores
    (conv_winograd.split_run); no arithmetic but the adds of overlapping windows, which run
    per image in the same order either way: the bits of one thread.
    """

    # ymax: a private copy of the output. PyTorch's max-pool saves the winners' indices, not
    # the output, so the output may change in place before backward (MaxPool2d followed by
    # ReLU(inplace=True), as in PyTorch's spatial-transformer tutorial) and backward must not
    # read it: the winners are found against this copy (made only in grad mode).
    # idx: the kernel path's winners (offset in the window per output), instead of ymax
    __slots__ = ("geom", "xpad", "ymax", "idx")
    save_inputs = True
    saved_slots = ("xpad", "ymax", "idx")

    def forward(self, x):
        self.idx = None
        if pool_kernel_ok(x, self.geom):
            return self._kernel_forward(x)
        xp = backend.get_array_module(x)
        kh, kw, sh, sw, dh, dw, ph, pw = self.geom
        h, w = x.shape[2], x.shape[3]
        ho, wo = out_size(h, kh, sh, dh, ph), out_size(w, kw, sw, dw, pw)
        # Padding with -inf: a padded position never wins a maximum (PyTorch's max-pool semantics).
        xpad = _padded(xp, x, ph, pw, lowest(x.dtype))
        self.xpad = xpad if xpad is not x else None  # the padded copy, kept only if made
        out = None
        for _i, _j, sl in _offsets(self.geom, ho, wo):
            out = xpad[sl].copy() if out is None else xp.maximum(out, xpad[sl], out=out)
        # the copy only where a graph may record this op (no backward under no_grad/inference)
        self.ymax = out.copy() if is_grad_enabled() else None
        return out

    def _kernel_forward(self, x):
        y, idx = pool_kernel_winners(x, self.geom)
        self.xpad = self.ymax = None
        self.idx = idx if is_grad_enabled() else None  # (no backward without grad mode)
        return y

    def _kernel_backward(self, gy):
        k, split_run = _bnpool()
        kh, kw, sh, sw, _, _, ph, pw = self.geom
        idx = self.idx
        n, c, h, w = self.in_shapes[0]
        if (ph or pw) and (kh > sh or kw > sw):
            # Padded overlapping windows: the numpy path's adds, offset by offset (a pixel
            # that wins several windows sums their gradients in that order: the same bits),
            # `gx[sl] += gy * (idx == k)` for each offset k, in one kernel call
            gx = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=gy.dtype)
            one, zero = gy.dtype.type(1), gy.dtype.type(0)
            k.maxpool_backward_offsets(gy, idx, kh, kw, sh, sw, one, zero, gx)
            return gx[:, :, ph : ph + h, pw : pw + w]
        gx = np.empty((n, c, h + 2 * ph, w + 2 * pw), gy.dtype)
        g = np.ascontiguousarray(gy)

        def part(n0, n1):
            k.maxpool_backward(g, idx, kh, kw, sh, sw, n0, n1, gx)

        split_run(n, gx.size, part)
        return gx[:, :, ph : ph + h, pw : pw + w] if ph or pw else gx

    def _winners(self, xp, x, y):
        """Yield (offset number, slices, bool mask of outputs whose winner is there)."""
        xpad = self.xpad if self.xpad is not None else x
        if xpad is None:
            xpad = _padded(xp, x, self.geom[6], self.geom[7], lowest(x.dtype))
        yield from max_pool_winners(xp, xpad, y, self.geom)

    def backward(self, gy, ops):
        x = self.inputs(ops)[0]
        y = self.ymax
        if y is None and self.idx is None:
            raise RuntimeError(self._freed_message())
        kh, kw, _, _, _, _, ph, pw = self.geom
        n, c, h, w = self.in_shapes[0]
        if self.idx is not None and not ops.is_graph:
            return self._kernel_backward(gy)
        if ops.is_graph:
            # Patches layout (C, kh, kw, N, Ho, Wo): gy at the winning offset, zero elsewhere.
            if self.idx is not None:  # the kernel path's winners
                sel = np.stack([self.idx == k for k in range(kh * kw)]).astype(gy._data.dtype)
            else:
                xp = backend.get_array_module(y)
                sel = xp.zeros((kh * kw,) + tuple(y.shape), dtype=gy._data.dtype)
                for k, _sl, hit in self._winners(xp, x._data, y):
                    sel[k] = hit
            cols = gy.reshape((1,) + tuple(gy.shape)) * Tensor._wrap(sel)
            cols = permute(cols.reshape((kh, kw) + tuple(gy.shape)), 3, 0, 1, 2, 4, 5)
            return Col2Im.apply(cols, geom=self.geom, x_shape=self.in_shapes[0])
        xp = backend.get_array_module(gy)
        gx = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=gy.dtype)
        # Windows may overlap (stride < kernel): the adds accumulate into the shared pixels.
        for _k, sl, hit in self._winners(xp, x, y):
            gx[sl] += gy * hit  # (ufunc where= on strided views is several times slower)
        if ph or pw:
            gx = gx[:, :, ph : ph + h, pw : pw + w]
        return gx


class AvgPool2d(Function):
    """y = sum over each window / divisor; the gradient spreads gy / divisor over the window.

    The divisor is kh*kw (count_include_pad=True, PyTorch's default), the count of real
    (unpadded) elements, or a user's override; `div` is a scalar or an (Ho, Wo) array.
    """

    # tiled: windows of 9 or more values tile x exactly (no padding, stride = kernel: a
    # global average), summed as one reduction of the (N, C, Ho, kh, Wo, kw) view instead of
    # kh * kw strided adds, and backward one broadcast copy (8 x 8 windows: 64 adds each way)
    __slots__ = ("geom", "div", "out_hw", "tiled")
    saves_params = True  # PyTorch's AvgPool2DBackward0 saves self: a second backward raises

    def forward(self, x):
        xp = backend.get_array_module(x)
        kh, kw, sh, sw, dh, dw, ph, pw = self.geom
        n, c, h, w = x.shape
        ho, wo = out_size(h, kh, sh, dh, ph), out_size(w, kw, sw, dw, pw)
        # Only the output size is kept: the backward of an average needs no input values.
        self.out_hw = (ho, wo)
        self.tiled = (x.dtype.itemsize >= 4 and kh * kw >= 9 and (sh, sw) == (kh, kw)
                      and not (ph or pw) and (h, w) == (ho * kh, wo * kw))  # fmt: skip
        if self.tiled:
            out = x.reshape(n, c, ho, kh, wo, kw).sum(axis=(3, 5))
            out /= self.div if np.isscalar(self.div) else xp.asarray(self.div, dtype=out.dtype)
            return out
        if _avg_kernel_ok(x, self.geom):
            # Small inputs: the loop below's statements in one kernel call (the same bits)
            out = np.empty((n, c, ho, wo), x.dtype)
            _bnpool()[0].avgpool_forward_offsets(
                np.ascontiguousarray(x), kh, kw, sh, sw, ph, pw, x.dtype.type(0), out
            )
            out /= self.div if np.isscalar(self.div) else np.asarray(self.div, dtype=out.dtype)
            return out
        # Half precision sums in float32, as PyTorch (a float16 window sum stalls at 2,048,
        # and a divisor above 65,504 is inf: a 300 x 300 global average came out 0)
        half = x.dtype.itemsize == 2
        xpad = _padded(xp, x.astype(np.float32) if half else x, ph, pw)
        out = None
        for _i, _j, sl in _offsets(self.geom, ho, wo):
            out = xpad[sl].copy() if out is None else xp.add(out, xpad[sl], out=out)
        out /= self.div if np.isscalar(self.div) else xp.asarray(self.div, dtype=out.dtype)
        return out.astype(x.dtype) if half else out

    def backward(self, gy, ops):
        kh, kw = self.geom[0], self.geom[1]
        ho, wo = self.out_hw
        x_shape = self.in_shapes[0]
        if ops.is_graph:
            g = gy / (self.div if np.isscalar(self.div) else Tensor._wrap(self.div))
            g = permute(g, 1, 0, 2, 3).reshape((x_shape[1], 1, 1, x_shape[0], ho, wo))
            cols = broadcast_to(g, (x_shape[1], kh, kw, x_shape[0], ho, wo))
            return Col2Im.apply(cols, geom=self.geom, x_shape=x_shape)
        xp = backend.get_array_module(gy)
        ph, pw = self.geom[6], self.geom[7]
        n, c, h, w = x_shape
        # Every element of a window gets gy / divisor; overlapping windows add up.
        wide = np.dtype(np.float32) if gy.dtype.itemsize == 2 else gy.dtype  # as forward
        g = gy.astype(wide) / (self.div if np.isscalar(self.div) else xp.asarray(self.div, wide))
        g = g.astype(gy.dtype, copy=False)
        if self.tiled:  # every value of a window gets its gy / divisor: one broadcast copy
            g6 = g.reshape(n, c, ho, 1, wo, 1)
            return xp.broadcast_to(g6, (n, c, ho, kh, wo, kw)).reshape(n, c, h, w)
        gx = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=gy.dtype)
        if _avg_kernel_ok(g, self.geom, n * c * h * w):
            # the loop below's adds in one kernel call, in its order (the same bits)
            sh, sw = self.geom[2], self.geom[3]
            _bnpool()[0].avgpool_backward_offsets(np.ascontiguousarray(g), kh, kw, sh, sw, gx)
        else:
            for _i, _j, sl in _offsets(self.geom, ho, wo):
                gx[sl] += g
        if ph or pw:
            gx = gx[:, :, ph : ph + h, pw : pw + w]
        return gx
