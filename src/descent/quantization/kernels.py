"""NumPy kernels of affine quantization, written to give PyTorch's (fbgemm's) bits exactly.

Affine quantization maps a float x to an integer q = clamp(round(x / scale) + zero_point)
and back to x' = (q - zero_point) * scale. PyTorch's CPU kernels differ in WHERE each step
rounds, and a last-bit difference there moves a value that sits on a rounding midpoint to the
other integer. What each kernel does (probed against torch 2.13 on AVX2, see docs/quantization.md):

- `inv = fl32(1 / fl32(scale))`: every kernel multiplies by the float32 reciprocal of the
  float32 scale instead of dividing (fbgemm pre-computes it).
- per-tensor quint8/qint8 (fbgemm's QuantizeAvx2, "legacy" form): q = rint(fma(x, inv, zp)),
  ONE rounding of x * inv + zp (a fused multiply-add), then round half to even.
- per-tensor qint32 and every per-channel kernel (ATen's scalar loop):
  q = rint(fl32(fl32(x * inv) + zp)), two float32 roundings before the integer one.
- dequantize, per tensor: fl32(fl32(scale) * fl32(q - zp)); per channel:
  fl32((q - zp) * scale), the product in float64 (the scales are a float64 tensor there).
- the dynamic qparams (`choose_qparams`, ATen's quant_utils::ChooseQuantizationParams) are
  computed in float64, and the scale stays a float64 (q_scale() returns it unrounded).

NumPy has no fused multiply-add, so `fma_f32` computes one exactly: the float32 product is
exact in float64 (24 + 24 bits < 53), the sum's rounding error comes from TwoSum, and only a
sum that lands exactly on a float32 midpoint (where rounding twice could differ from rounding
once) needs the error's sign to pick the neighbour.
"""

from __future__ import annotations

import numpy as np

# The integer range of each quantized dtype's storage (PyTorch's quint8 / qint8 / qint32).
QRANGES = {"quint8": (0, 255), "qint8": (-128, 127), "qint32": (-(2**31), 2**31 - 1)}
# fbgemm/ATen: a scale below this (the smallest normal float16) is raised to it
SMALL_SCALE_THRESHOLD = float(np.float32(6.1e-5))


def fma_f32(a: np.ndarray, b, c) -> np.ndarray:
    """float32(a * b + c) rounded once, as a fused multiply-add (a, b, c float32, broadcast)."""
    p = np.asarray(a, np.float32).astype(np.float64)
    p *= np.float64(b) if np.ndim(b) == 0 else np.asarray(b, np.float32).astype(np.float64)
    c64 = np.float64(c) if np.ndim(c) == 0 else np.asarray(c, np.float32).astype(np.float64)
    s = p + c64  # p is exact (48 significant bits); s rounds once, to float64
    f = s.astype(np.float32)
    # Rounding s to float32 equals rounding p + c once unless s sits exactly on a float32
    # midpoint: its low 29 mantissa bits read 1 then 28 zeros. Subnormal float32 results have
    # other midpoints: those are screened too. Both are rare; only they take the exact path.
    low = s.view(np.uint64) & np.uint64(0x1FFFFFFF)
    mag = np.abs(s)
    check = (low == np.uint64(0x10000000)) | ((mag < 2.0**-126) & (mag > 0))  # 0 is exact
    if check.any():
        idx = np.nonzero(check)
        pb, cb = np.broadcast_to(p, s.shape)[idx], np.broadcast_to(c64, s.shape)[idx]
        f[idx] = _fma_exact(pb, cb, s[idx])
    return f


def _fma_exact(p: np.ndarray, c: np.ndarray, s: np.ndarray) -> np.ndarray:
    """float32(p + c) rounded once, given s = fl64(p + c): TwoSum's error decides a tie."""
    bb = s - p
    err = (p - (s - bb)) + (c - bb)  # TwoSum (Knuth): s + err == p + c exactly
    f = s.astype(np.float32)
    f64 = f.astype(np.float64)
    # the float32 on the other side of s from f; a midpoint s is equally far from both
    toward = np.where(f64 > s, np.float32(-np.inf), np.float32(np.inf)).astype(np.float32)
    other = np.nextafter(f, toward)
    o64 = other.astype(np.float64)
    tie = (np.abs(s - f64) == np.abs(s - o64)) & (err != 0)
    # past the midpoint on err's side: the neighbour
    return np.where(tie & ((err > 0) == (o64 > f64)), other, f)


def _clamp_to(t: np.ndarray, qname: str, np_dtype, nan_to: int) -> np.ndarray:
    """Round half to even, clamp to the dtype's range (in float64: exact for int32), cast; a
    NaN becomes `nan_to` (what each PyTorch kernel's conversion makes of it)."""
    lo, hi = QRANGES[qname]
    out = np.clip(np.rint(t.astype(np.float64)), lo, hi)
    nan = np.isnan(out)
    if nan.any():
        out[nan] = nan_to
    return out.astype(np_dtype)


def quantize_per_tensor(x: np.ndarray, scale: float, zero_point: int, qname: str, np_dtype):
    """The integer representation of float32 `x` (see the module docstring for the rounding).
    NaN: the dtype's maximum for quint8/qint8 (fbgemm's min(NaN, int32 max) keeps the max),
    the minimum for qint32."""
    inv = np.float32(1.0) / np.float32(scale)
    lo, hi = QRANGES[qname]
    if qname == "qint32":
        t = (x * inv).astype(np.float32) + np.float32(zero_point)
        return _clamp_to(t, qname, np_dtype, lo)
    return _clamp_to(fma_f32(x, inv, np.float32(zero_point)), qname, np_dtype, hi)


def quantize_per_channel(x: np.ndarray, scales: np.ndarray, zero_points: np.ndarray,
                         axis: int, qname: str, np_dtype):  # fmt: skip
    """Per-channel integer representation: channel c of `axis` uses scales[c], zero_points[c].
    NaN: 0 for quint8/qint8, the minimum for qint32 (as PyTorch's per-channel kernel)."""
    shape = [1] * x.ndim
    shape[axis] = -1
    s32 = scales.astype(np.float32).reshape(shape)
    inv = (np.float32(1.0) / s32).astype(np.float32)
    t = (x * inv).astype(np.float32) + zero_points.astype(np.float32).reshape(shape)
    return _clamp_to(t, qname, np_dtype, QRANGES["qint32"][0] if qname == "qint32" else 0)


def dequantize_per_tensor(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """float32 values: fl32(scale) * fl32(q - zero_point)."""
    diff = (q.astype(np.int64) - zero_point).astype(np.float32)
    return np.float32(scale) * diff


def dequantize_per_channel(q: np.ndarray, scales: np.ndarray, zero_points: np.ndarray,
                           axis: int) -> np.ndarray:  # fmt: skip
    """float32 values: (q - zp[c]) * scales[c], the product in float64 (ATen's per-channel)."""
    shape = [1] * q.ndim
    shape[axis] = -1
    diff = q.astype(np.int64) - zero_points.astype(np.int64).reshape(shape)
    return (diff * scales.astype(np.float64).reshape(shape)).astype(np.float32)


def choose_qparams(x_min: float, x_max: float, qmin: int, qmax: int,
                   reduce_range: bool = False) -> tuple[float, int]:  # fmt: skip
    """(scale, zero_point) covering [x_min, x_max] and 0: ATen's ChooseQuantizationParams
    (preserve_sparsity and power-of-two scales off), in float64 as there.

    The zero point comes from the end (qmin, min) or (qmax, max) whose terms are smaller (the
    smaller rounding error), then rounds half to even into [qmin, qmax].
    """
    if reduce_range:  # one bit less, so that fbgemm's u8 x s8 pair sums cannot saturate int16
        qmin, qmax = qmin // 2, qmax // 2
    lo = float(min(np.float32(x_min), np.float32(0.0)))
    hi = float(max(np.float32(x_max), np.float32(0.0)))
    scale = (hi - lo) / (qmax - qmin)
    if np.float32(scale) == 0 or np.isinf(np.float32(1.0) / np.float32(scale)):
        scale = 0.1  # fbgemm keeps a reciprocal of the scale: never infinite
    if scale < SMALL_SCALE_THRESHOLD:
        org = scale
        scale = SMALL_SCALE_THRESHOLD
        if lo == 0:
            hi = float(np.float32(SMALL_SCALE_THRESHOLD * (qmax - qmin)))
        elif hi == 0:
            lo = float(np.float32(-SMALL_SCALE_THRESHOLD * (qmax - qmin)))
        else:  # ATen scales min and max by a float32 amplifier
            amp = np.float32(np.float32(SMALL_SCALE_THRESHOLD) / np.float32(org))
            lo, hi = float(np.float32(lo) * amp), float(np.float32(hi) * amp)
    zp_from_min = qmin - lo / scale
    zp_from_max = qmax - hi / scale
    err_min = abs(qmin) - abs(lo / scale)
    err_max = abs(qmax) - abs(hi / scale)
    zp = zp_from_min if err_min < err_max else zp_from_max
    if zp < qmin:
        return scale, qmin
    if zp > qmax:
        return scale, qmax
    return scale, int(np.rint(zp))


class PackedLinearWeight:
    """A quantized Linear weight made ready for `linear_dynamic_int8` once (PyTorch packs it
    for fbgemm at prepack time): the zero-point-centred integers (qw - w_zp) transposed to
    (K, M) in float32, their largest magnitude, and the float32 scales.

    NumPy's integer matmul has no BLAS kernel (~35x slower than sgemm here), so the integers
    go through a floating matmul that is exact: every product and partial sum of integers is
    representable when |sum| < 2**24 (float32) or 2**53 (float64), whatever the summation
    order. Each call checks max|qx - x_zp| * max|qw - w_zp| * K < 2**24 for sgemm (K <= 1032
    with the reduce_range activations, |qx - x_zp| <= 127, and int8 weights); past it the
    float64 copy (made on first need) serves.
    """

    def __init__(self, ints: np.ndarray, scale, zero_point) -> None:
        m, k = ints.shape
        zp = np.asarray(zero_point, np.int64).reshape(-1, 1)  # (1, 1) or (M, 1)
        centred = ints.astype(np.int64) - zp  # (M, K), |.| <= 255
        self.w_max = int(np.abs(centred).max(initial=0))
        self.wt = np.ascontiguousarray(centred.T.astype(np.float32))  # (K, M), exact
        self._wt64 = None
        self.scale = np.asarray(scale, np.float64).astype(np.float32)  # () or (M,)
        self.in_features, self.out_features = k, m

    def matmul(self, a: np.ndarray) -> np.ndarray:
        """a (N, K) float32 of integers @ the weight: exact integers (float32 or float64)."""
        a_max = float(np.abs(a).max(initial=0))
        if a_max * self.w_max * self.in_features < 2**24:
            return a @ self.wt
        if self._wt64 is None:
            self._wt64 = self.wt.astype(np.float64)
        return a.astype(np.float64) @ self._wt64


def linear_dynamic_int8(x: np.ndarray, packed: PackedLinearWeight, bias,
                        reduce_range: bool = True) -> np.ndarray:  # fmt: skip
    """fbgemm's dynamic quantized linear on float32 `x` (N, K) with a packed int8 weight:

    1. the input's min and max give uint8 qparams (choose_qparams, reduce_range: 0..127 on
       x86, where fbgemm's VPMADDUBSW sums pairs of u8 * s8 products into int16);
    2. the input is quantized as the per-tensor quint8 kernel (one fused multiply-add);
    3. the int32 accumulation of (qx - x_zp) (qw - w_zp), an exact integer matmul (fbgemm
       subtracts the zero points' row and column offsets afterwards: the same integers);
    4. out = fma(float32(acc), fl32(x_scale * w_scale), bias): fbgemm's ReQuantizeForFloat
       multiplies then adds the bias, which the compiler fuses into one FMA.

    Returns float32 (N, M).
    """
    scale, zp = choose_qparams(x.min(), x.max(), 0, 255, reduce_range) if x.size else (1.0, 0)
    inv = np.float32(1.0) / np.float32(scale)
    t = fma_f32(x, inv, np.float32(zp))  # (N, K): the quint8 kernel's pre-rounding values
    np.rint(t, out=t)
    np.clip(t, 0, 255, out=t)
    t -= np.float32(zp)  # qx - x_zp, exact small integers in float32
    acc = packed.matmul(t)  # (N, M), exact integers
    acc32 = acc.astype(np.float32)  # as fbgemm's int32 -> float32 (half to even past 2**24)
    mult = np.float32(scale) * packed.scale  # float32, per tensor () or per channel (M,)
    if bias is None:
        return acc32 * mult
    return fma_f32(acc32, mult, np.asarray(bias, np.float32))
