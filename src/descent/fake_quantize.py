"""torch.fake_quantize_per_tensor_affine / fake_quantize_per_channel_affine: quantization-aware
training's "quantize then dequantize" in floating point, with the straight-through gradient.

PyTorch's CPU kernels (aten/src/ATen/native/quantized/cpu/kernels), followed operation for
operation so the values are the same bits: `inv_scale = 1.0f / scale` in float32,
`q = zero_point + nearbyint(x * inv_scale)` (round half to even), and the output
`(min(max(q, quant_min), quant_max) - zero_point) * scale` stored as the input's dtype (a
float32 product per tensor, a float64 one per channel: what PyTorch's float64 results show).
The gradient reaching `input` is the incoming one where `quant_min <= q <= quant_max` and 0
elsewhere (the cached mask); scale and zero_point get none, as in PyTorch.
"""

from __future__ import annotations

import numpy as np

from . import backend
from .grad_mode import is_grad_enabled
from .ops.untracked import computed
from .tensor import Tensor

__all__ = ["fake_quantize_per_channel_affine", "fake_quantize_per_tensor_affine"]


def _scalar(v, name: str, op: str):
    if isinstance(v, Tensor):
        if v.numel() != 1:
            raise RuntimeError(f"{op}: {name} must be a one-element tensor, got shape "
                               f"{tuple(v.shape)}")
        return v.item()
    return v


def _name(dtype) -> str:
    """PyTorch's scalar-type name in its messages: Double, Long, ..."""
    names = {"float64": "Double", "float32": "Float", "float16": "Half", "bfloat16": "BFloat16",
             "int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
             "bool": "Bool"}
    key = str(dtype).split(".")[-1]
    return names.get(key, key)


def _check_range(quant_min: int, quant_max: int, op: str) -> None:
    if quant_min > quant_max:
        raise RuntimeError(f"{op}: `quant_min` should be less than or equal to `quant_max`.")


def _finish(input: Tensor, kernel, inputs: tuple, args: tuple) -> Tensor:
    """kernel(*arrays of inputs, *args, part): part 0 the rounded values, part 1 the mask (in
    their dtype) where the input was in range. Through untracked.computed, so descent.compile
    replays both on each call's data (made on the arrays, they were constants frozen when the
    first two calls agreed)."""
    q = computed(kernel, inputs, (*args, 0))
    if not (input.requires_grad and is_grad_enabled()):
        return q
    # straight-through: q's value, the gradient of `input * mask` (x - x.detach() is exactly 0)
    m = computed(kernel, inputs, (*args, 1))
    return q + (input - input.detach()) * m


def _on_device(like, arr):
    return backend.get_array_module(like).asarray(arr)


def _fq_tensor(x, sc, zp, quant_min, quant_max, part):
    """fake_quantize_per_tensor_affine's kernel: the values (part 0) or the mask (part 1)."""
    xa = backend.as_numpy(x)
    dt = xa.dtype
    inv_scale = np.float32(1.0) / np.float32(sc)
    q = np.rint(xa * inv_scale.astype(dt)).astype(np.float64) + zp
    if part:
        return _on_device(x, ((q >= quant_min) & (q <= quant_max)).astype(dt))
    # the grid value in float32 whatever the input's dtype (measured: PyTorch's float64
    # results are float32 products, 8.6e-8 from the float64 ones at scale 0.0086)
    grid = (np.clip(q, quant_min, quant_max) - zp).astype(np.float32)
    return _on_device(x, (grid * np.float32(sc)).astype(dt))


def _fq_channel(x, sc, zpa, shape, quant_min, quant_max, part):
    """fake_quantize_per_channel_affine's kernel: the values (part 0) or the mask (part 1)."""
    xa = backend.as_numpy(x)
    dt = xa.dtype
    sc = np.asarray(backend.as_numpy(sc), dtype=np.float32).reshape(-1)
    zpa = np.asarray(backend.as_numpy(zpa)).reshape(-1)
    inv_scale = (np.float32(1.0) / sc).astype(dt).reshape(shape)
    if np.issubdtype(zpa.dtype, np.integer):
        zp = zpa.astype(np.float64).reshape(shape)
        q = np.rint(xa * inv_scale).astype(np.float64) + zp
        out = ((np.clip(q, quant_min, quant_max) - zp) * sc.astype(np.float64).reshape(shape))
    else:  # float zero points (PyTorch's float-qparams path): in the input's dtype
        zp = zpa.astype(dt).reshape(shape)
        q = np.rint(xa * inv_scale + zp)
        out = (np.clip(q, quant_min, quant_max) - zp) * sc.astype(dt).reshape(shape)
    if part:
        return _on_device(x, ((q >= quant_min) & (q <= quant_max)).astype(dt))
    return _on_device(x, out.astype(dt))


def fake_quantize_per_tensor_affine(input: Tensor, scale, zero_point, quant_min: int,
                                    quant_max: int) -> Tensor:
    """Round `input` to the grid `scale * (k - zero_point)`, k in [quant_min, quant_max]."""
    op = "fake_quantize_per_tensor_affine"
    if not input.is_floating_point():
        raise RuntimeError(f"{op}: expected a floating-point input, got {input.dtype}")
    _check_range(quant_min, quant_max, op)
    sc = _scalar(scale, "scale", op)
    zp = int(_scalar(zero_point, "zero_point", op))
    if not quant_min <= zp <= quant_max:
        raise RuntimeError(f"{op}: `zero_point` must be between `quant_min` and `quant_max`.")
    return _finish(input, _fq_tensor, (input,), (float(sc), zp, quant_min, quant_max))


def fake_quantize_per_channel_affine(input: Tensor, scale: Tensor, zero_point: Tensor,
                                     axis: int, quant_min: int, quant_max: int) -> Tensor:
    """Per-channel fake quantization along `axis`: one (scale, zero_point) per slice."""
    op = "fake_quantize_per_channel_affine"
    if not input.is_floating_point():
        raise RuntimeError(f"{op}: expected a floating-point input, got {input.dtype}")
    _check_range(quant_min, quant_max, op)
    if not 0 <= axis < input.ndim:  # PyTorch refuses a negative axis too
        raise RuntimeError(f"{op}: `axis` must be between 0 and number of dimensions of input "
                           f"(got {axis} for a {input.ndim}-d input)")
    if isinstance(scale, Tensor) and str(scale.dtype).split(".")[-1] not in ("float32",
                                                                           "bfloat16"):
        raise RuntimeError(f"Scale must be Float or BFloat16, found {_name(scale.dtype)}")
    if isinstance(zero_point, Tensor) and str(zero_point.dtype).split(".")[-1] not in (
            "int32", "float32", "float16"):
        raise RuntimeError(f"Zero-point must be Int32, Float or Half, found "
                           f"{_name(zero_point.dtype)}")
    sc = np.asarray(backend.as_numpy(scale._data if isinstance(scale, Tensor) else scale),
                    dtype=np.float32).reshape(-1)
    zpa = np.asarray(backend.as_numpy(zero_point._data if isinstance(zero_point, Tensor)
                                      else zero_point)).reshape(-1)
    n = input.shape[axis]
    if sc.shape[0] != n or zpa.shape[0] != n:
        raise RuntimeError(f"{op}: dimensions of scale and zero_point are not consistent with "
                           f"input size along axis {axis} ({sc.shape[0]}, {zpa.shape[0]} vs {n})")
    shape = [1] * input.ndim
    shape[axis] = n
    if np.issubdtype(zpa.dtype, np.integer) and ((zpa < quant_min) | (zpa > quant_max)).any():
        raise RuntimeError(f"{op}: `zero_point` must be between `quant_min` and `quant_max`.")
    st = scale if isinstance(scale, Tensor) else Tensor._wrap(sc)
    zt = zero_point if isinstance(zero_point, Tensor) else Tensor._wrap(zpa)
    return _finish(input, _fq_channel, (input, st, zt), (tuple(shape), quant_min, quant_max))
