"""Fused CUDA kernels (CuPy) for the memory-bound chains of a transformer.

Each public function here takes and returns CuPy arrays and does in one or two kernel launches
what the generic `xp` code does in five to fifteen (each a full pass over device memory):

    gelu_forward / gelu_backward            exact (erf) GELU, elementwise
    softmax_forward / softmax_backward      softmax or log-softmax over the last axis, with an
                                            optional scale and causal mask (attention)
    cross_entropy_forward / _backward       softmax cross-entropy from logits and class indices
                                            (ignore_index, label smoothing); never stores the
                                            (M, C) probabilities: backward recomputes them from
                                            the logits and the saved per-row logsumexp
    layer_norm_forward / layer_norm_backward
                                            one row per block; the weight/bias gradients are
                                            column sums over row chunks, then one small sum
    adam_update                             the Adam/AdamW rule over a whole flat parameter
                                            buffer (all parameters of a group) in one launch

Only float32 and float16 arrays come here (`backend.fused` checks); arithmetic is float32
inside every kernel whatever the storage dtype, reductions accumulate in float32, and every
softmax subtracts the row maximum before exp. The ops reach these functions only through
`backend.fused(name, *arrays)`, which returns None for NumPy arrays, so the CPU path never
touches this module. CuPy comes from `backend.cupy_module()` (STYLE.md: only backend.py imports
it). Each kernel has a NumPy reference of the same math in tests/test_gpu.py, which the GPU test
compares against.

Row kernels launch one block of `_THREADS` threads per row; each thread strides over the row's
columns, so any row length works (65 classes or 50257).
"""

from __future__ import annotations

import functools

import numpy as np

from .. import backend

_THREADS = 128  # threads per row block: 4 warps (a multiple of 32, as block_sum needs)
_LN_CHUNK = 256  # rows per block in the layer-norm weight/bias column sums

_ROW_SRC = r"""
// No #include at all: NVRTC then needs no CUDA header path (cuda_fp16.h under NVRTC depends on
// the toolkit's layout). float16 is a raw 16-bit type converted with the PTX instructions that
// __half2float / __float2half use; infinity and nan come from their bit patterns.
#define DESCENT_INF __int_as_float(0x7f800000)
#define DESCENT_NAN __int_as_float(0x7fc00000)

struct half16 {
    unsigned short bits;
};

// Loads and stores in float32 whatever the storage type.
__device__ __forceinline__ float ld(const float* p, long long i) { return p[i]; }
__device__ __forceinline__ void st(float* p, long long i, float v) { p[i] = v; }
#ifdef DESCENT_HOST_EMULATION  // tests/cuda_emulator compiles this for the CPU: no PTX there
__device__ __forceinline__ float ld(const half16* p, long long i) { return emu_h2f(p[i].bits); }
__device__ __forceinline__ void st(half16* p, long long i, float v) { p[i].bits = emu_f2h(v); }
#else
__device__ __forceinline__ float ld(const half16* p, long long i) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(p[i].bits));
    return f;
}
__device__ __forceinline__ void st(half16* p, long long i, float v) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v));  // round to nearest even
    p[i].bits = h;
}
#endif

// Block-wide reductions (blockDim.x a multiple of 32, at most 1024; sh holds 32 floats).
// The leading barrier lets a second call reuse sh after every thread read the first result.
__device__ float block_sum(float v, float* sh) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    if (wid == 0) {
        v = (lane < nw) ? sh[lane] : 0.0f;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0) sh[0] = v;
    }
    __syncthreads();
    return sh[0];
}

__device__ float block_max(float v, float* sh) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    if (wid == 0) {
        v = (lane < nw) ? sh[lane] : -DESCENT_INF;
        for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
        if (lane == 0) sh[0] = v;
    }
    __syncthreads();
    return sh[0];
}

// Softmax (or log-softmax) of scale * x over each row of n_cols. With causal != 0, row r is
// query i = r % n_q and only columns j <= i count (top-left aligned, PyTorch's is_causal); the
// others get probability 0 (log-probability -inf). y may alias x: each thread writes only the
// columns it read, after the reductions' barriers.
template <typename T>
__global__ void softmax_fwd(const T* x, T* y, int n_cols, int n_q, float scale, int causal,
                            int log_out) {
    __shared__ float sh[32];
    const long long base = (long long)blockIdx.x * n_cols;
    int lim = n_cols;
    if (causal) {
        const int q1 = (int)(blockIdx.x % (unsigned)n_q) + 1;  // keys 0..i of query i
        lim = q1 < n_cols ? q1 : n_cols;
    }
    float m = -DESCENT_INF;
    for (int j = threadIdx.x; j < lim; j += blockDim.x) m = fmaxf(m, scale * ld(x, base + j));
    m = block_max(m, sh);
    float s = 0.0f;
    for (int j = threadIdx.x; j < lim; j += blockDim.x) s += expf(scale * ld(x, base + j) - m);
    s = block_sum(s, sh);
    if (log_out) {
        // (z - m) - log s, not z - (m + log s): m + log s rounds away log s when |m| is large.
        const float ls = logf(s);
        for (int j = threadIdx.x; j < n_cols; j += blockDim.x)
            st(y, base + j, j < lim ? (scale * ld(x, base + j) - m) - ls : -DESCENT_INF);
    } else {
        const float inv = 1.0f / s;
        for (int j = threadIdx.x; j < n_cols; j += blockDim.x)
            st(y, base + j, j < lim ? expf(scale * ld(x, base + j) - m) * inv : 0.0f);
    }
}

// Backward of softmax_fwd given its output y: softmax gx = scale * y (gy - sum(gy y)) (masked
// columns have y = 0, so they get none); log-softmax gx = scale * (gy - exp(y) sum(gy)), which
// assumes no causal mask (no caller combines the two). gx may alias gy.
template <typename T>
__global__ void softmax_bwd(const T* y, const T* gy, T* gx, int n_cols, float scale,
                            int log_out) {
    __shared__ float sh[32];
    const long long base = (long long)blockIdx.x * n_cols;
    float acc = 0.0f;
    for (int j = threadIdx.x; j < n_cols; j += blockDim.x) {
        const float g = ld(gy, base + j);
        acc += log_out ? g : g * ld(y, base + j);
    }
    acc = block_sum(acc, sh);
    for (int j = threadIdx.x; j < n_cols; j += blockDim.x) {
        const float g = ld(gy, base + j), yv = ld(y, base + j);
        const float d = log_out ? g - expf(yv) * acc : yv * (g - acc);
        st(gx, base + j, scale * d);
    }
}

// Cross-entropy per row: loss = (1 - e)(lse - x_t) + e (lse - mean_c x_c) for counted rows,
// 0 for rows whose target is ignore_index, nan for a target outside [0, n_cls).
// Everything is computed relative to the row maximum m (z = x - m is exact), with
// lse = m + ls, ls = log sum exp(z); stats[row] = (m, ls) for the backward. Keeping m and ls
// apart matters at large logits: m + ls in float32 rounds ls by up to ulp(m) (1e-3 at 1e4).
template <typename T>
__global__ void ce_fwd(const T* x, const long long* tgt, float* loss, float* stats,
                       int n_cls, long long ignore_index, float smoothing) {
    __shared__ float sh[32];
    const long long row = blockIdx.x;
    const long long base = row * n_cls;
    float m = -DESCENT_INF;
    for (int j = threadIdx.x; j < n_cls; j += blockDim.x) m = fmaxf(m, ld(x, base + j));
    m = block_max(m, sh);
    float s = 0.0f, sz = 0.0f;
    for (int j = threadIdx.x; j < n_cls; j += blockDim.x) {
        const float z = ld(x, base + j) - m;
        s += expf(z);
        sz += z;
    }
    s = block_sum(s, sh);
    if (smoothing != 0.0f) sz = block_sum(sz, sh);
    if (threadIdx.x == 0) {
        const float ls = logf(s);
        stats[2 * row] = m;
        stats[2 * row + 1] = ls;
        const long long t = tgt[row];
        float l = 0.0f;
        if (t != ignore_index) {
            if (t < 0 || t >= n_cls) {
                l = DESCENT_NAN;
            } else {
                l = (1.0f - smoothing) * (ls - (ld(x, base + t) - m));
                if (smoothing != 0.0f) l += smoothing * (ls - sz / (float)n_cls);
            }
        }
        loss[row] = l;
    }
}

// d loss_row / d x_j = p_j - (1 - e)[j = t] - e / C, times the row's upstream gradient
// g[row * g_stride] (stride 0: one value for all rows). Ignored rows get 0.
template <typename T>
__global__ void ce_bwd(const T* x, const long long* tgt, const float* stats, const float* g,
                       long long g_stride, T* gx, int n_cls, long long ignore_index,
                       float smoothing) {
    const long long row = blockIdx.x;
    const long long base = row * n_cls;
    const long long t = tgt[row];
    if (t == ignore_index) {
        for (int j = threadIdx.x; j < n_cls; j += blockDim.x) st(gx, base + j, 0.0f);
        return;
    }
    const float gi = g[row * g_stride], off = smoothing / (float)n_cls;
    const float m = stats[2 * row], ls = stats[2 * row + 1];
    for (int j = threadIdx.x; j < n_cls; j += blockDim.x) {
        const float p = expf((ld(x, base + j) - m) - ls);
        const float d = p - off - (j == t ? 1.0f - smoothing : 0.0f);
        st(gx, base + j, gi * d);
    }
}

// Layer norm of each row of d: y = (x - mean) rstd w + b, rstd = 1 / sqrt(var + eps) with the
// biased variance (two passes over the row: no cancellation from E[x^2] - E[x]^2).
template <typename T>
__global__ void ln_fwd(const T* x, const T* w, const T* b, T* y, float* mean_out,
                       float* rstd_out, int d, float eps, int has_w, int has_b) {
    __shared__ float sh[32];
    const long long row = blockIdx.x;
    const long long base = row * d;
    float s = 0.0f;
    for (int j = threadIdx.x; j < d; j += blockDim.x) s += ld(x, base + j);
    const float mean = block_sum(s, sh) / (float)d;
    float v = 0.0f;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        const float c = ld(x, base + j) - mean;
        v += c * c;
    }
    const float rstd = 1.0f / sqrtf(block_sum(v, sh) / (float)d + eps);
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        float o = (ld(x, base + j) - mean) * rstd;
        if (has_w) o *= ld(w, j);
        if (has_b) o += ld(b, j);
        st(y, base + j, o);
    }
    if (threadIdx.x == 0) {
        mean_out[row] = mean;
        rstd_out[row] = rstd;
    }
}

// dx = rstd (gh - mean(gh) - xhat mean(gh xhat)), gh = gy w, xhat rebuilt from mean and rstd.
template <typename T>
__global__ void ln_bwd_x(const T* x, const T* w, const T* gy, const float* mean,
                         const float* rstd, T* gx, int d, int has_w) {
    __shared__ float sh[32];
    const long long row = blockIdx.x;
    const long long base = row * d;
    const float mu = mean[row], rs = rstd[row];
    float a = 0.0f, c = 0.0f;
    // gh rounded once (__fmul_rn is never contracted into an FMA): both loops must see the same
    // gh, or gh - m1 keeps the product's rounding residual (nonzero dx for one-element rows).
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        float gh = ld(gy, base + j);
        if (has_w) gh = __fmul_rn(gh, ld(w, j));
        a += gh;
        c += gh * (ld(x, base + j) - mu) * rs;
    }
    const float m1 = block_sum(a, sh) / (float)d;
    const float m2 = block_sum(c, sh) / (float)d;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        float gh = ld(gy, base + j);
        if (has_w) gh = __fmul_rn(gh, ld(w, j));
        const float xh = (ld(x, base + j) - mu) * rs;
        st(gx, base + j, rs * (gh - m1 - xh * m2));
    }
}

// Partial column sums for the affine gradients: block (bx, by) covers columns
// bx * blockDim.x + threadIdx.x and rows [by * chunk, (by + 1) * chunk). Adjacent threads read
// adjacent columns (coalesced). pw[by, j] = sum gy xhat, pb[by, j] = sum gy.
template <typename T>
__global__ void ln_bwd_wb(const T* x, const T* gy, const float* mean, const float* rstd,
                          float* pw, float* pb, long long n_rows, int d, int chunk) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;
    const long long r0 = (long long)blockIdx.y * chunk;
    const long long r1 = r0 + chunk < n_rows ? r0 + chunk : n_rows;
    float sw = 0.0f, sb = 0.0f;
    for (long long r = r0; r < r1; ++r) {
        const float g = ld(gy, r * d + j);
        sw += g * (ld(x, r * d + j) - mean[r]) * rstd[r];
        sb += g;
    }
    pw[(long long)blockIdx.y * d + j] = sw;
    pb[(long long)blockIdx.y * d + j] = sb;
}
"""

_TEMPLATES = ("softmax_fwd", "softmax_bwd", "ce_fwd", "ce_bwd", "ln_fwd", "ln_bwd_x", "ln_bwd_wb")
_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float16): "half16"}


def _cp():
    cp = backend.cupy_module()
    if cp is None:
        raise RuntimeError("descent.kernels.cuda needs CuPy and a CUDA GPU")
    return cp


@functools.cache
def _module():
    """The compiled RawModule holding every row kernel for float and half16 (compiled once)."""
    cp = _cp()
    names = [f"{k}<{c}>" for k in _TEMPLATES for c in _CTYPES.values()]
    return cp.RawModule(code=_ROW_SRC, name_expressions=names)


def _fn(name: str, dtype):
    return _module().get_function(f"{name}<{_CTYPES[np.dtype(dtype)]}>")


def _rows(n_rows: int):
    return (max(int(n_rows), 1),), (_THREADS,)


def _contig(a):
    return a if a.flags.c_contiguous else _cp().ascontiguousarray(a)


def _out(out, like):
    """`out` when the kernel may write it through a flat pointer, else a fresh array."""
    if out is not None and out.flags.c_contiguous and out.shape == like.shape:
        if out.dtype == like.dtype:
            return out
    return _cp().empty_like(like)


# ---------------------------------------------------------------------------------------------
# GELU (exact erf form), elementwise


@functools.cache
def _gelu_kernels():
    cp = _cp()
    fwd = cp.ElementwiseKernel(
        "T x",
        "T y",
        (
            "const float xf = (float)x;"
            "y = (T)(0.5f * xf * (1.0f + erff(xf * 0.70710678118654752f)));"
        ),
        "descent_gelu_fwd",
    )
    bwd = cp.ElementwiseKernel(
        "T x, T gy",
        "T gx",
        "const float xf = (float)x;"
        "const float cdf = 0.5f * (1.0f + erff(xf * 0.70710678118654752f));"
        "const float pdf = expf(-0.5f * xf * xf) * 0.39894228040143268f;"
        "gx = (T)((float)gy * (cdf + xf * pdf));",
        "descent_gelu_bwd",
    )
    return fwd, bwd


def gelu_forward(x):
    """y = x Phi(x) = x/2 (1 + erf(x / sqrt 2)), one launch."""
    return _gelu_kernels()[0](x)


def gelu_backward(x, gy):
    """gx = gy (Phi(x) + x phi(x)), one launch (x is the saved input)."""
    if gy.dtype != x.dtype:
        gy = gy.astype(x.dtype)
    return _gelu_kernels()[1](x, gy)


# ---------------------------------------------------------------------------------------------
# Softmax / log-softmax over the last axis (attention's masked softmax is the causal case)


def softmax_forward(x, *, scale: float = 1.0, causal: bool = False, log: bool = False, out=None):
    """softmax(scale * x) (or log-softmax) over the last axis; `out=x` works in place.

    causal: x is (..., L, S) attention scores; key j > query i is masked (probability 0).
    """
    x = _contig(x)
    n_cols = x.shape[-1]
    n_rows = x.size // max(n_cols, 1)
    n_q = x.shape[-2] if (causal and x.ndim >= 2) else 1
    y = _out(out, x)
    if x.size:
        grid, block = _rows(n_rows)
        _fn("softmax_fwd", x.dtype)(
            grid, block,
            (x, y, np.int32(n_cols), np.int32(n_q), np.float32(scale), np.int32(causal),
             np.int32(log)),
        )  # fmt: skip
    return y


def softmax_backward(y, gy, *, scale: float = 1.0, log: bool = False, out=None):
    """Gradient of softmax_forward from its output y; `out=gy` works in place."""
    y = _contig(y)
    gy = _contig(gy.astype(y.dtype, copy=False))
    n_cols = y.shape[-1]
    gx = _out(out, y)
    if y.size:
        grid, block = _rows(y.size // max(n_cols, 1))
        _fn("softmax_bwd", y.dtype)(
            grid, block, (y, gy, gx, np.int32(n_cols), np.float32(scale), np.int32(log))
        )
    return gx


# ---------------------------------------------------------------------------------------------
# Softmax cross-entropy


def cross_entropy_forward(x, target, *, ignore_index: int = -100, smoothing: float = 0.0):
    """Per-row losses (M,) float32 and row statistics (M, 2) float32 of logits x (M, C).

    stats[i] = (max_c x_ic, log sum_c exp(x_ic - max)): the row's logsumexp is their sum; the
    backward takes them as they are.
    """
    cp = _cp()
    x = _contig(x)
    m_rows, n_cls = x.shape
    tgt = _contig(target.astype(cp.int64, copy=False).reshape(-1))
    loss = cp.empty(m_rows, dtype=cp.float32)
    stats = cp.empty((m_rows, 2), dtype=cp.float32)
    if m_rows:
        grid, block = _rows(m_rows)
        _fn("ce_fwd", x.dtype)(
            grid, block,
            (x, tgt, loss, stats, np.int32(n_cls), np.int64(ignore_index), np.float32(smoothing)),
        )  # fmt: skip
    return loss, stats


def cross_entropy_backward(x, target, stats, g, *, ignore_index: int = -100, smoothing=0.0):
    """gx (M, C) in x's dtype; g is a float32 device scalar (mean/sum) or (M,) ('none')."""
    cp = _cp()
    x = _contig(x)
    m_rows, n_cls = x.shape
    tgt = _contig(target.astype(cp.int64, copy=False).reshape(-1))
    g = _contig(cp.asarray(g, dtype=cp.float32).reshape(-1))
    stride = 0 if g.size == 1 else 1
    gx = cp.empty_like(x)
    if m_rows:
        grid, block = _rows(m_rows)
        _fn("ce_bwd", x.dtype)(
            grid, block,
            (x, tgt, stats, g, np.int64(stride), gx, np.int32(n_cls), np.int64(ignore_index),
             np.float32(smoothing)),
        )  # fmt: skip
    return gx


# ---------------------------------------------------------------------------------------------
# Layer norm over the last axis of a (M, D) row view


def layer_norm_forward(x2, w, b, eps: float):
    """y (M, D), mean (M,) float32, rstd (M,) float32; w/b (D,) or None, x2's dtype."""
    cp = _cp()
    x2 = _contig(x2)
    m_rows, d = x2.shape
    y = cp.empty_like(x2)
    mean = cp.empty(m_rows, dtype=cp.float32)
    rstd = cp.empty(m_rows, dtype=cp.float32)
    wa = x2 if w is None else _contig(w.reshape(-1))  # a valid pointer when absent (unread)
    ba = x2 if b is None else _contig(b.reshape(-1))
    if m_rows:
        grid, block = _rows(m_rows)
        _fn("ln_fwd", x2.dtype)(
            grid, block,
            (x2, wa, ba, y, mean, rstd, np.int32(d), np.float32(eps), np.int32(w is not None),
             np.int32(b is not None)),
        )  # fmt: skip
    return y, mean, rstd


def layer_norm_backward(x2, w, gy2, mean, rstd, *, need_x=True, need_wb=True):
    """(gx (M, D) or None, gw (D,) or None, gb (D,) or None) in x2's dtype."""
    cp = _cp()
    x2 = _contig(x2)
    gy2 = _contig(gy2.astype(x2.dtype, copy=False))
    m_rows, d = x2.shape
    gx = gw = gb = None
    if need_x:
        gx = cp.empty_like(x2)
        wa = x2 if w is None else _contig(w.reshape(-1))
        if m_rows:
            grid, block = _rows(m_rows)
            _fn("ln_bwd_x", x2.dtype)(
                grid, block, (x2, wa, gy2, mean, rstd, gx, np.int32(d), np.int32(w is not None))
            )
    if need_wb:
        n_chunks = max((m_rows + _LN_CHUNK - 1) // _LN_CHUNK, 1)
        pw = cp.zeros((n_chunks, d), dtype=cp.float32)
        pb = cp.zeros((n_chunks, d), dtype=cp.float32)
        if m_rows:
            grid = ((d + _THREADS - 1) // _THREADS, n_chunks)
            _fn("ln_bwd_wb", x2.dtype)(
                grid, (_THREADS,),
                (x2, gy2, mean, rstd, pw, pb, np.int64(m_rows), np.int32(d),
                 np.int32(_LN_CHUNK)),
            )  # fmt: skip
        gw = pw.sum(axis=0).astype(x2.dtype)
        gb = pb.sum(axis=0).astype(x2.dtype)
    return gx, gw, gb


# ---------------------------------------------------------------------------------------------
# Adam / AdamW over a flat buffer


@functools.cache
def _adam_kernel():
    return _cp().ElementwiseKernel(
        "T g, float32 sign, float32 l2, float32 decay, float32 omb1, float32 beta2, "
        "float32 omb2, float32 step_size, float32 bc2_sqrt, float32 eps",
        "T p, T m, T v",
        # The same order of operations as Adam._update's NumPy rule (PyTorch's).
        "float gf = sign * (float)g;"
        "float pf = (float)p;"
        "gf += l2 * pf;"  # Adam: L2 penalty in the gradient (0 for AdamW)
        "pf *= decay;"  # AdamW: decoupled decay 1 - lr wd (1 for Adam)
        "float mf = (float)m; mf += omb1 * (gf - mf);"  # omb = one minus beta, from float64
        "const float vf = beta2 * (float)v + omb2 * (gf * gf);"
        "const float denom = sqrtf(vf) / bc2_sqrt + eps;"
        "pf -= step_size * (mf / denom);"
        "p = (T)pf; m = (T)mf; v = (T)vf;",
        "descent_adam_update",
    )


def adam_update(p, g, m, v, *, lr, beta1, beta2, eps, weight_decay, decoupled, maximize, step):
    """One Adam (AdamW when `decoupled`) step on flat arrays p, m, v in place; g is read only."""
    step_size = lr / (1 - beta1**step)
    bc2_sqrt = (1 - beta2**step) ** 0.5
    l2 = 0.0 if decoupled else weight_decay
    decay = 1.0 - lr * weight_decay if decoupled else 1.0
    f = np.float32
    _adam_kernel()(
        g, f(-1.0 if maximize else 1.0), f(l2), f(decay), f(1.0 - beta1), f(beta2),
        f(1.0 - beta2), f(step_size), f(bc2_sqrt), f(eps), p, m, v,
    )  # fmt: skip


_ROW_KERNELS = {
    "softmax_forward": ("softmax_fwd",),
    "softmax_backward": ("softmax_bwd",),
    "cross_entropy_forward": ("ce_fwd",),
    "cross_entropy_backward": ("ce_bwd",),
    "layer_norm_forward": ("ln_fwd",),
    "layer_norm_backward": ("ln_bwd_x", "ln_bwd_wb"),
}


def prepare(name: str, dtype) -> None:
    """Compile (and load) what kernel `name` needs for `dtype` now, so that a compiler error
    surfaces here, where `backend.fused` can catch it, instead of inside an op."""
    cp = _cp()
    dtype = np.dtype(dtype)
    if name in _ROW_KERNELS:
        for k in _ROW_KERNELS[name]:
            _fn(k, dtype)
        return
    one = cp.ones(2, dtype=dtype)
    if name.startswith("gelu"):
        gelu_backward(one, gelu_forward(one))
    elif name == "adam_update":
        adam_update(one.copy(), one, one.copy(), one.copy(), lr=1e-3, beta1=0.9, beta2=0.999,
                    eps=1e-8, weight_decay=0.0, decoupled=True, maximize=False, step=1)  # fmt: skip
    cp.cuda.Device().synchronize()


def relu_backward(y, gy):
    """where(y <= 0, 0, gy): CuPy's own elementwise where (the name exists so that the op can
    ask `backend.fused` on either device; the CPU has a numba pass)."""
    return _cp().where(y <= 0, 0, gy)


def rms_norm_forward(x, eps: float):
    """None: the op's generic CuPy path runs (the name exists for `backend.fused`)."""
    return None


def rms_norm_backward(x, rstd, gy):
    return None


KERNELS = {
    "relu_backward": relu_backward,
    "rms_norm_forward": rms_norm_forward,
    "rms_norm_backward": rms_norm_backward,
    "gelu_forward": gelu_forward,
    "gelu_backward": gelu_backward,
    "softmax_forward": softmax_forward,
    "softmax_backward": softmax_backward,
    "cross_entropy_forward": cross_entropy_forward,
    "cross_entropy_backward": cross_entropy_backward,
    "layer_norm_forward": layer_norm_forward,
    "layer_norm_backward": layer_norm_backward,
    "adam_update": adam_update,
}
