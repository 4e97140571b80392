"""Parameter initialisation (PyTorch's `torch.nn.init` names, formulas and defaults).

Every function fills its tensor IN PLACE without recording a graph (as under `no_grad`),
returns it, draws its random numbers directly in the tensor's dtype and on its device, and
takes an optional `generator=` (a `descent.Generator`; the default generator otherwise, which
`descent.manual_seed` seeds).

    >>> w = descent.empty(128, 64)
    >>> nn.init.kaiming_uniform_(w, a=math.sqrt(5))   # what Linear does

Formulas (Glorot & Bengio 2010; He et al. 2015), with fan_in = size(1) * receptive field and
fan_out = size(0) * receptive field:

    xavier_uniform_:  U(-a, a),      a = gain * sqrt(6 / (fan_in + fan_out))
    xavier_normal_:   N(0, std^2),   std = gain * sqrt(2 / (fan_in + fan_out))
    kaiming_uniform_: U(-b, b),      b = gain * sqrt(3 / fan)
    kaiming_normal_:  N(0, std^2),   std = gain / sqrt(fan)
    orthogonal_:      Q of the QR of a Gaussian (rows, numel / rows) matrix, sign-fixed, * gain
                      (Saxe et al. 2014, "Exact solutions to the nonlinear dynamics of learning")
    dirac_:           the identity convolution (one 1 per output channel, at the kernel centre)
    sparse_:          N(0, std^2) with ceil(sparsity * rows) zeros per column (Martens 2010)

PyTorch's deprecated spellings without the underscore (`nn.init.uniform`, `normal`, ...) warn
(FutureWarning) and call the new ones.
"""

from __future__ import annotations

import math
import warnings

import numpy as _np

from .. import backend as _backend
from ..creation import _rng
from ..creation_random import _replayable
from ..creation_random import draws_through_ops as _draws_through_ops
from ..ops import view_write as _view_write
from ..tensor import Tensor

__all__ = [
    "calculate_gain",
    "uniform_",
    "normal_",
    "trunc_normal_",
    "constant_",
    "ones_",
    "zeros_",
    "eye_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "dirac_",
    "sparse_",
    # PyTorch's deprecated spellings (they warn, then call the functions above).
    "uniform",
    "normal",
    "constant",
    "eye",
    "dirac",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "orthogonal",
    "sparse",
]

_LINEAR_FNS = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table).

    linear/conv/sigmoid: 1 (the int, as PyTorch returns); tanh: 5/3; relu: sqrt(2);
    leaky_relu: sqrt(2 / (1 + slope^2)) (slope = `param`, default 0.01); selu: 3/4.

    Raises:
        ValueError: an unknown nonlinearity or a non-numeric slope.
    """
    if nonlinearity in _LINEAR_FNS or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            slope = param
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel): in/out times the kernel size.

    Raises:
        ValueError: tensors with fewer than 2 dimensions have no fans.
    """
    if tensor.ndim < 2:
        raise ValueError(
            f"fan in and fan out cannot be computed for a tensor with fewer than 2 dimensions "
            f"(shape {tuple(tensor.shape)})"
        )
    receptive_field = 1
    for s in tensor.shape[2:]:
        receptive_field *= s
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode {mode!r} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


# ---------------------------------------------------------------------------------------------
# Drawing and filling


def _check(tensor, fn: str) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"nn.init.{fn} expects a descent Tensor, got {type(tensor).__name__}")


def _fill(tensor: Tensor, arr) -> Tensor:
    """Write `arr` into `tensor` in place (no graph is recorded: this is initialisation)."""
    tensor._data[...] = arr
    tensor._version += 1  # anything saved for backward from the old values is now stale
    for fn in _view_write.write_observers:  # (descent.compile: a write of these values, which
        fn(tensor, (_view_write.redo_assign, arr))  # its replay repeats from their slot)
    return tensor


# The random fills draw their values in `_replayable` functions of the tensor's shape, dtype
# and device and the fill's numbers (not of the tensor: its values play no part), so that
# descent.compile keeps each draw as an op, replayed on the same generator in eager's order,
# and the fill as a write of its result (creation_random's fills do the same).


def _draw(kind: str, tensor: Tensor, generator):
    """Uniform [0, 1) or standard-normal samples of the tensor's shape, dtype and device."""
    return _draw_array(kind, tuple(tensor.shape), tensor.dtype, tensor.device, generator)


def _draw_array(kind: str, shape: tuple, dt, device, generator):
    rng = _rng(generator, device)
    if dt.kind not in "fV":
        raise TypeError(f"nn.init: random initialisation needs a floating tensor, got dtype {dt}")
    # NumPy's Generator draws float32 or float64 only: half precision is drawn in float32 and
    # rounded once.
    draw_dt = dt if dt in (_np.float32, _np.float64) else _np.dtype(_np.float32)
    if kind == "uniform":
        arr = rng.random(shape, dtype=draw_dt)
    else:
        arr = rng.standard_normal(shape, dtype=draw_dt)
    if draw_dt == dt:
        return arr
    arr = arr.astype(dt)
    if kind == "uniform":  # a float32 draw can round up to 1.0: 0 instead, as creation.rand
        arr[arr == 1] = 0
    return arr


@_replayable
def _uniform_values(shape, dtype, device, a, b, generator) -> Tensor:
    if dtype.kind == "c":  # PyTorch: the real and imaginary parts each U(a, b)
        u = _draw_array("uniform", shape + (2,), _complex_part(dtype), device, generator)
        return Tensor._wrap(_as_complex(u * (b - a) + a, dtype))
    u = _draw_array("uniform", shape, dtype, device, generator)
    return Tensor._wrap(u * (b - a) + a)


@_replayable
def _normal_values(shape, dtype, device, mean, std, generator) -> Tensor:
    if dtype.kind == "c":  # PyTorch: each part N(mean, std^2 / 2), so E|z - mean|^2 = std^2
        z = _draw_array("normal", shape + (2,), _complex_part(dtype), device, generator)
        return Tensor._wrap(_as_complex(z * (std / math.sqrt(2)) + mean, dtype))
    z = _draw_array("normal", shape, dtype, device, generator)
    return Tensor._wrap(z * std + mean)


def _complex_part(dtype):
    """The real dtype of a complex dtype's parts (complex64 -> float32)."""
    return _np.dtype(_np.float32 if dtype.itemsize == 8 else _np.float64)


def _as_complex(parts, dtype):
    """(..., 2) real and imaginary parts as one complex array of `dtype` (view_as_complex)."""
    parts = parts.astype(_complex_part(dtype), copy=False)
    return parts.view(dtype).reshape(parts.shape[:-1])


@_draws_through_ops
def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    """Fill with samples from U(a, b)."""
    _check(tensor, "uniform_")
    u = _uniform_values(tuple(tensor.shape), tensor.dtype, tensor.device, a, b, generator)
    return _fill(tensor, u._data)


@_draws_through_ops
def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    """Fill with samples from N(mean, std^2)."""
    _check(tensor, "normal_")
    z = _normal_values(tuple(tensor.shape), tensor.dtype, tensor.device, mean, std, generator)
    return _fill(tensor, z._data)


@_draws_through_ops
def trunc_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator=None,
) -> Tensor:
    """Fill with samples from N(mean, std^2) truncated to [a, b] (a and b are absolute values).

    Exact rejection sampling: normal draws outside [a, b] are redrawn. This is the same
    distribution PyTorch samples by inverting the CDF.

    Raises:
        ValueError: when [a, b] holds so little of the distribution (< 1e-6) that sampling it
            this way is impractical.
    """
    _check(tensor, "trunc_normal_")
    if not a < b:
        raise ValueError(f"trunc_normal_: need a < b, got a={a}, b={b}")
    if std <= 0:
        raise ValueError(f"trunc_normal_: std must be positive, got {std}")

    def cdf(x: float) -> float:  # standard normal CDF
        return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))

    mass = cdf((b - mean) / std) - cdf((a - mean) / std)
    if mass < 1e-6:
        raise ValueError(
            f"trunc_normal_: [a, b] = [{a}, {b}] holds only {mass:.2e} of N({mean}, {std}^2); "
            "choose bounds closer to the mean"
        )
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn(
            "trunc_normal_: mean is more than 2 std from [a, b]; the values will not be "
            "distributed like a normal",
            stacklevel=2,
        )
    if tensor.is_meta:  # nothing to draw (the rejection loop below reads values)
        return tensor
    values = _trunc_normal_values(tuple(tensor.shape), tensor.dtype, tensor.device, mean, std,
                                  a, b, mass, generator)  # fmt: skip
    return _fill(tensor, values._data)


@_replayable
def _trunc_normal_values(shape, dt, device, mean, std, a, b, mass, generator) -> Tensor:
    rng = _rng(generator, device)
    xp = _backend.xp_for_device(str(device))
    draw_dt = dt if dt in (_np.float32, _np.float64) else _np.dtype(_np.float32)
    n = math.prod(shape)
    out = xp.empty(n, dtype=draw_dt)
    filled = 0
    while filled < n:
        need = n - filled
        # Oversample by the expected acceptance rate so one round nearly always suffices.
        m = min(int(need / mass * 1.1) + 16, 1 << 24)
        z = rng.standard_normal(m, dtype=draw_dt) * std + mean
        keep = z[(z >= a) & (z <= b)][:need]
        out[filled : filled + keep.shape[0]] = keep
        filled += int(keep.shape[0])
    return Tensor._wrap(out.reshape(shape).astype(dt, copy=False))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with the value `val`."""
    _check(tensor, "constant_")
    return _fill(tensor, val)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1."""
    return constant_(tensor, 1)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0."""
    return constant_(tensor, 0)


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity matrix (ones on the diagonal)."""
    _check(tensor, "eye_")
    if tensor.ndim != 2:
        raise ValueError(f"eye_: only 2-D tensors are supported, got shape {tuple(tensor.shape)}")
    xp = _backend.get_array_module(tensor._data)
    return _fill(tensor, xp.eye(*tensor.shape, dtype=tensor.dtype))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Glorot uniform: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std  # a uniform of half-width sqrt(3)*std has that std
    return uniform_(tensor, -bound, bound, generator=generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Glorot normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator=generator)


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float | None:
    if 0 in tensor.shape:
        warnings.warn("initializing a zero-element tensor is a no-op", stacklevel=3)
        return None
    fan = _calculate_correct_fan(tensor, mode)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator=None,
) -> Tensor:
    """He uniform: U(-b, b) with b = gain * sqrt(3 / fan).

    Args:
        tensor: the weight, shape (out, in, *kernel).
        a: negative slope of the rectifier after this layer (leaky_relu only).
        mode: 'fan_in' keeps the forward variance, 'fan_out' the backward variance.
        nonlinearity: passed to `calculate_gain` ('relu' or 'leaky_relu' recommended).
        generator: optional `descent.Generator`.
    """
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator=generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator=None,
) -> Tensor:
    """He normal: N(0, std^2) with std = gain / sqrt(fan). Arguments as `kaiming_uniform_`."""
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    return normal_(tensor, 0.0, std, generator=generator)


@_draws_through_ops
def orthogonal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Fill with a (semi-)orthogonal matrix: the tensor viewed as (rows, numel / rows) gets the
    Q factor of the QR decomposition of a standard-normal matrix, each column of Q multiplied
    by the sign of R's diagonal (so that Q is Haar-distributed; Mezzadri 2007), times `gain`.
    Rows < columns decomposes the transpose (orthonormal rows instead of columns).

    Raises:
        ValueError: tensors with fewer than 2 dimensions.
    """
    _check(tensor, "orthogonal_")
    if tensor.ndim < 2:
        raise ValueError(
            f"orthogonal_: Only tensors with 2 or more dimensions are supported, got shape "
            f"{tuple(tensor.shape)}"
        )
    if tensor.numel() == 0:
        return tensor  # no-op, as PyTorch
    dt = tensor.dtype
    if dt.kind not in "fV":
        raise TypeError(f"orthogonal_: needs a floating tensor, got dtype {dt}")
    q = _orthogonal_values(tuple(tensor.shape), dt, tensor.device, gain, generator)
    return _fill(tensor, q._data)


@_replayable
def _orthogonal_values(shape, dt, device, gain, generator) -> Tensor:
    rows = shape[0]
    cols = math.prod(shape) // rows
    rng = _rng(generator, device)
    draw_dt = dt if dt in (_np.float32, _np.float64) else _np.dtype(_np.float32)
    flat = rng.standard_normal((rows, cols), dtype=draw_dt)  # (rows, cols)
    if rows < cols:
        flat = flat.T
    xp = _backend.get_array_module(flat)
    q, r = xp.linalg.qr(flat)  # q (max, min), r (min, min)
    q = q * xp.sign(xp.diagonal(r))  # column j times sign(r_jj)
    if rows < cols:
        q = q.T
    return Tensor._wrap((q * gain).reshape(shape).astype(dt))


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """Fill a (out, in, *kernel) convolution weight with the Dirac delta: output channel d of
    each group copies input channel d (a 1 at the kernel's centre), so the convolution is the
    identity on the first min(out / groups, in) channels.

    Raises:
        ValueError: a tensor that is not 3-, 4- or 5-D, or out not divisible by groups.
    """
    _check(tensor, "dirac_")
    if tensor.ndim not in (3, 4, 5):
        raise ValueError(
            f"dirac_: Only tensors with 3, 4, or 5 dimensions are supported, got shape "
            f"{tuple(tensor.shape)}"
        )
    out_ch, in_ch, *kernel = tensor.shape
    if groups <= 0 or out_ch % groups:
        raise ValueError(f"dirac_: dim 0 ({out_ch}) must be divisible by groups ({groups})")
    per_group = out_ch // groups
    xp = _backend.get_array_module(tensor._data)
    arr = xp.zeros(tensor.shape, dtype=tensor.dtype)
    centre = tuple(k // 2 for k in kernel)
    for g in range(groups):
        for d in range(min(per_group, in_ch)):
            arr[(g * per_group + d, d) + centre] = 1
    return _fill(tensor, arr)


@_draws_through_ops
def sparse_(tensor: Tensor, sparsity: float, std: float = 0.01, generator=None) -> Tensor:
    """Fill a 2-D tensor with N(0, std^2) samples, then zero ceil(sparsity * rows) randomly
    chosen rows in every column (Martens 2010, "Deep learning via Hessian-free optimization").

    Raises:
        ValueError: a tensor that is not 2-D.
    """
    _check(tensor, "sparse_")
    if tensor.ndim != 2:
        raise ValueError(
            f"sparse_: Only tensors with 2 dimensions are supported, got shape "
            f"{tuple(tensor.shape)}"
        )
    z = _sparse_values(tuple(tensor.shape), tensor.dtype, tensor.device, sparsity, std,
                       generator)  # fmt: skip
    return _fill(tensor, z._data)


@_replayable
def _sparse_values(shape, dt, device, sparsity, std, generator) -> Tensor:
    rows, cols = shape
    num_zeros = int(math.ceil(sparsity * rows))
    z = _draw_array("normal", shape, dt, device, generator) * dt.type(std)
    rng = _rng(generator, device)
    for col in range(cols):
        z[rng.permutation(rows)[:num_zeros], col] = 0
    return Tensor._wrap(z)


def _deprecated(new):
    old = new.__name__[:-1]

    def fn(*args, **kwargs):
        warnings.warn(
            f"`nn.init.{old}` is now deprecated in favor of `nn.init.{new.__name__}`.",
            FutureWarning,
            stacklevel=2,
        )
        return new(*args, **kwargs)

    fn.__name__ = fn.__qualname__ = old
    fn.__doc__ = f"Deprecated spelling of `{new.__name__}` (warns, then calls it)."
    return fn


# PyTorch's deprecated spellings.
uniform = _deprecated(uniform_)
normal = _deprecated(normal_)
constant = _deprecated(constant_)
eye = _deprecated(eye_)
dirac = _deprecated(dirac_)
xavier_uniform = _deprecated(xavier_uniform_)
xavier_normal = _deprecated(xavier_normal_)
kaiming_uniform = _deprecated(kaiming_uniform_)
kaiming_normal = _deprecated(kaiming_normal_)
orthogonal = _deprecated(orthogonal_)
sparse = _deprecated(sparse_)
