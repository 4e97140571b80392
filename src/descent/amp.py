"""Mixed precision: `autocast` (low-precision compute) and `GradScaler` (dynamic loss scaling).

PyTorch's names and semantics (`torch.autocast`, `torch.amp.GradScaler`):

    model = GPT(config).to("cuda")                 # master weights stay float32
    opt = descent.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = descent.amp.GradScaler()
    for x, y in batches:
        with descent.autocast(device_type="cuda", dtype=descent.float16):
            _, loss = model(x, y)                   # matmuls in float16, loss in float32
        scaler.scale(loss).backward()               # gradients of loss * S: no float16 underflow
        scaler.unscale_(opt)                        # optional: before clipping
        descent.optim.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(opt)                            # skipped when a gradient is inf/nan
        scaler.update()                             # S halves after a skip, doubles after
        opt.zero_grad()                             # growth_interval clean steps

Inside an autocast region, for tensors on the region's device type:

* matmul, linear, conv1d/conv2d and scaled_dot_product_attention cast their floating inputs to
  the low dtype and compute and return it (cuBLAS float16 tensor-core products on a GPU);
* softmax, log_softmax, cross_entropy, nll_loss, mse_loss, layer_norm, rms_norm, group_norm and
  batch_norm cast float16/bfloat16 inputs up to float32 and return float32 (reductions and
  exponentials need float32's range);
* everything else runs in the dtype its inputs have (NumPy promotion: float16 + float32 is
  float32, so a residual stream that starts in float32 stays float32).

The casts are the differentiable `Cast` op, so gradients flow back through them and land on the
float32 parameters in float32: the master weights never change dtype.

float16 works on the CPU too (NumPy computes float16 slowly, but exactly as specified), which is
how tests/test_amp.py checks the whole scheme without a GPU. bfloat16 runs on the CPU
(`autocast("cpu", dtype=descent.bfloat16)`, ml_dtypes' bfloat16: docs/bfloat16.md) with
PyTorch's CPU op lists: the products above in bfloat16, the losses in float32, and softmax,
log_softmax and the normalisations in their input's dtype (PyTorch's CPU autocast keeps them
out of its float32 list). bfloat16 has float32's exponent range, so it needs no GradScaler
(pass `enabled=False` or leave the scaler out).

`autocast("cuda", ...)` on a machine without a usable GPU does what PyTorch does there: it warns
(UserWarning) and the region is disabled, whatever the dtype, so `is_autocast_enabled("cuda")` is
False inside it. No tensor is on a GPU there, so nothing would be cast anyway; the answer no
longer depends on whether ml_dtypes happens to be installed (it did: bfloat16 raised without
it and was accepted with it).
"""

from __future__ import annotations

import functools as _functools
import math as _math
import threading as _threading
import warnings as _warnings
from typing import Any as _Any

import numpy as _np

from . import backend as _backend

__all__ = [
    "GradScaler",
    "autocast",
    "custom_bwd",
    "custom_fwd",
    "is_autocast_available",
]

# A global count of open autocast regions (any thread) makes the check in every hot op one
# integer test when mixed precision is not in use; the per-thread stack holds the state.
_depth = 0
_local = _threading.local()

_LOW = {"float16": _np.dtype(_np.float16), "half": _np.dtype(_np.float16)}


def _stack() -> list:
    st = getattr(_local, "stack", None)
    if st is None:
        st = _local.stack = []
    return st


def _dtype_name(dtype) -> str:
    """'float16' or 'bfloat16' for an accepted low dtype (float16 when None)."""
    if dtype is None:
        return "float16"
    name = dtype if isinstance(dtype, str) else getattr(_np.dtype(dtype), "name", str(dtype))
    name = name.lower()
    if name in _LOW:
        return "float16"
    if name in ("bfloat16", "bf16"):
        return "bfloat16"
    raise ValueError(f"autocast: dtype must be float16 or bfloat16, got {dtype!r}")


def _cpu_dtype_ok(dtype) -> bool:
    try:
        return _dtype_name(dtype) in ("float16", "bfloat16")
    except (ValueError, TypeError):
        return False


def _resolve_dtype(dtype, device_type: str):
    """The low-precision numpy dtype for `dtype` (float16 by default)."""
    if _dtype_name(dtype) == "float16":
        return _np.dtype(_np.float16)
    if device_type == "cpu":
        from .dtypes import as_dtype  # noqa: PLC0415

        return as_dtype("bfloat16")  # loads ml_dtypes (~0.5 s) and the ops' bfloat16 dispatch
    bf = _backend.bfloat16_dtype()
    if device_type != "cuda" or bf is None:
        raise RuntimeError(
            "autocast: bfloat16 is GPU-only in descent: NumPy has no bfloat16 type, and on "
            "a GPU it needs CuPy >= 14 with the ml_dtypes package installed. Use "
            "dtype=descent.float16 (with descent.amp.GradScaler) instead"
        )
    return bf


class autocast:  # PyTorch's name
    """Context manager (and decorator) that runs matrix products in a low precision.

    Args:
        device_type: 'cuda' or 'cpu': the device whose tensors the region affects.
        dtype: descent.float16 (default) or descent.bfloat16.
        enabled: False makes the region a no-op (and turns off an enclosing region).
        cache_enabled: accepted for PyTorch compatibility; ignored.

    Raises:
        ValueError: unknown device_type or dtype.
        RuntimeError: bfloat16 on a GPU without ml_dtypes (see the module docstring).

    Warns:
        UserWarning: device_type='cuda' without a usable GPU, or a CPU dtype other than
            float16 and bfloat16 (float64: PyTorch also warns for the dtypes its CPU autocast
            cannot run); the region is then disabled and computes in float32.
    """

    def __init__(
        self,
        device_type: str = "cuda",
        dtype=None,
        enabled: bool = True,
        cache_enabled: bool | None = None,
    ) -> None:
        del cache_enabled
        device_type = str(device_type).split(":")[0].lower()
        if device_type not in ("cuda", "cpu"):
            raise ValueError(f"autocast: device_type must be 'cuda' or 'cpu', got {device_type!r}")
        self.device_type = device_type
        self.enabled = bool(enabled)
        if self.enabled and device_type == "cuda" and not _backend.cuda_available():
            _dtype_name(dtype)  # still refuse a dtype autocast never accepts
            # PyTorch's behaviour: a CUDA region without CUDA warns and is disabled.
            _warnings.warn(
                "autocast(device_type='cuda'): no CUDA GPU is usable here (CuPy missing or no "
                "device), so the region is disabled, as in PyTorch",
                UserWarning,
                stacklevel=2,
            )
            self.enabled = False
        if self.enabled and device_type == "cpu" and not _cpu_dtype_ok(dtype):
            # PyTorch's behaviour for a dtype its CPU autocast cannot run: warn, disable.
            _warnings.warn(
                "In CPU autocast, but the target dtype is not supported. Disabling autocast. "
                f"descent's CPU autocast runs float16 and bfloat16 (got {dtype!r}), so this "
                "region computes in float32",
                UserWarning,
                stacklevel=2,
            )
            self.enabled = False
        self.fast_dtype = _resolve_dtype(dtype, device_type) if self.enabled else None

    def __enter__(self) -> autocast:
        global _depth
        _stack().append((self.enabled, self.device_type, self.fast_dtype))
        _depth += 1
        return self

    def __exit__(self, *exc: _Any) -> None:
        global _depth
        _stack().pop()
        _depth -= 1

    def __call__(self, fn):
        @_functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with autocast(self.device_type, self.fast_dtype, self.enabled):
                return fn(*args, **kwargs)

        return wrapper


def _current():
    """(device_type, low dtype) of the innermost enabled region in this thread, else None."""
    if not _depth:
        return None
    st = _stack()
    if not st:
        return None
    enabled, device_type, dtype = st[-1]
    return (device_type, dtype) if enabled else None


def _is_autocast_enabled(device_type: str = "cuda") -> bool:
    """True inside an enabled autocast region for `device_type`."""
    cur = _current()
    return cur is not None and cur[0] == device_type


def _get_autocast_dtype(device_type: str = "cuda"):
    """The low dtype of the enclosing region for `device_type` (float16 when none is open)."""
    cur = _current()
    if cur is not None and cur[0] == device_type:
        return cur[1]
    return _np.dtype(_np.float16)


_DEVICE_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip",
                 "ve", "fpga", "maia", "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia",
                 "privateuseone")  # fmt: skip


def is_autocast_available(device_type: str) -> bool:
    """torch.amp.is_autocast_available: whether `autocast(device_type)` can be entered (every
    real device type, as in PyTorch; not "meta"). An unknown name raises PyTorch's error."""
    if device_type not in _DEVICE_TYPES:
        raise RuntimeError(f"Expected one of {', '.join(_DEVICE_TYPES)} device type at start "
                           f"of device string: {device_type}")  # fmt: skip
    return device_type != "meta"


def _applies(cur, t) -> bool:
    dev = "cpu" if not _backend.is_cupy_array(t._data) else "cuda"
    return dev == cur[0]


def _lower(*tensors):
    """Inside autocast: the floating tensors cast to the low dtype (others unchanged).

    Used by the ops that compute in low precision (matmul, linear, conv, attention). Returns the
    tensors as given outside a region, or on another device type than the region's. float64
    tensors are left as they are: PyTorch's autocast casts float32 (and the other low dtype)
    only, so a float64 model computes in float64 inside a region.
    """
    cur = _current()
    if cur is None:
        return tensors
    from .ops.elementwise import cast  # avoids an import cycle

    low = cur[1]
    out = []
    for t in tensors:
        floating = t is not None and t._data.dtype.kind in "fV" and t._data.dtype.itemsize < 8
        if floating and t._data.dtype != low and _applies(cur, t):
            t = cast(t, low)
        out.append(t)
    return tuple(out)


def _autocast_off(fn, upcast: bool, rewrap):
    """fn run with autocast off inside a region (its low-precision Tensor arguments cast up to
    float32 first when `upcast`); outside a region fn as it is. `rewrap` is the decorator
    itself: torch_keywords.torch_names renames the parameters of the function inside, then
    wraps the renamed copy again (the wrapper's own *args/**kwargs carry no names to rename)."""

    @_functools.wraps(fn)
    def wrapper(*args, **kwargs):
        global _depth
        if not _depth or _current() is None:
            return fn(*args, **kwargs)
        if upcast:
            args = tuple(_upper(a) if hasattr(a, "_data") else a for a in args)
            kwargs = {k: _upper(v) if hasattr(v, "_data") else v for k, v in kwargs.items()}
        _stack().append((False, "cpu", None))
        _depth += 1
        try:
            return fn(*args, **kwargs)
        finally:
            _stack().pop()
            _depth -= 1

    wrapper.__float32_self__ = wrapper
    wrapper.__float32_rewrap__ = rewrap
    return wrapper


def _float32_op(fn):
    """Decorator of an op on PyTorch's autocast float32 list (l1_loss, kl_div, the margin
    losses, prod, trace, the solves, reflection padding, the 3-D pools, ...): inside a region
    its float16/bfloat16 Tensor arguments are cast up to float32 and it runs with autocast off,
    so it computes and returns float32 and its inner products stay float32, as PyTorch's
    (whose autocast excludes itself inside such an op). Outside a region: fn as it is."""
    return _autocast_off(fn, True, _float32_op)


def _kernel_op(fn):
    """Decorator of an op PyTorch computes in one kernel that descent composes from products
    (matrix_exp): inside a region it runs with autocast off and no casts, so its inner matmuls
    keep the input dtype, as PyTorch's kernel does (autocast dispatches only the op itself,
    which is on no autocast list). Before, a float32 matrix_exp in a float16 region squared
    float16 Pade terms and returned nan. Outside a region: fn as it is."""
    return _autocast_off(fn, False, _kernel_op)


def _upper(x, cpu: bool = True):
    """Inside autocast: a float16/bfloat16 tensor cast to float32 (other tensors unchanged).

    Used by the ops that need float32's range (softmax, losses, normalisation).

    Args:
        x: the op's input.
        cpu: False for the ops outside PyTorch's CPU float32 list (softmax, log_softmax,
            layer/group/batch/rms norm): in a CPU bfloat16 region they keep the input dtype.
    """
    cur = _current()
    if cur is None or x is None or not hasattr(x, "data"):
        return x
    if not cpu and cur[0] == "cpu" and cur[1].kind == "V":
        return x
    dt = x._data.dtype
    if dt.kind in "fV" and dt.itemsize < 4 and _applies(cur, x):
        from .ops.elementwise import cast

        return cast(x, _np.float32)
    return x


class GradScaler:
    """Dynamic loss scaling for float16 training (PyTorch's `torch.amp.GradScaler`).

    float16 gradients below ~6e-8 round to zero. Multiplying the loss by a large scale S moves
    every gradient up by S before it is computed; `unscale_` divides them back in float32. When
    a scaled gradient overflows (inf/nan), the step is skipped and S shrinks by backoff_factor;
    after growth_interval clean steps in a row S grows by growth_factor.

    Args:
        device: accepted for PyTorch compatibility ('cuda' or 'cpu'); the scaler works on the
            gradients wherever they live.
        init_scale: the first S.
        growth_factor: S *= growth_factor after growth_interval steps without inf/nan.
        backoff_factor: S *= backoff_factor after a step with inf/nan gradients.
        growth_interval: clean steps before growing S.
        enabled: False makes every method a pass-through (scale returns its input, step just
            calls optimizer.step()).
    """

    def __init__(
        self,
        device: str = "cuda",
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
    ) -> None:
        if growth_factor <= 1.0:
            raise ValueError(f"GradScaler: growth_factor must be > 1, got {growth_factor}")
        if not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"GradScaler: backoff_factor must be in (0, 1), got {backoff_factor}")
        if growth_interval < 1 or int(growth_interval) != growth_interval:
            raise ValueError(
                f"GradScaler: growth_interval must be a positive int, got {growth_interval}"
            )
        self.device = device
        self._enabled = bool(enabled)
        self._scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0
        # optimizer -> {"unscaled": bool, "found_inf": bool, "stepped": bool}, this iteration.
        self._per_optimizer: dict = {}

    # -- scaling -------------------------------------------------------------------------------
    def is_enabled(self) -> bool:
        return self._enabled

    def get_scale(self) -> float:
        """The current scale S (1.0 when disabled)."""
        return self._scale if self._enabled else 1.0

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_factor(self, new_factor: float) -> None:
        """The factor S grows by after growth_interval clean steps (torch's setter)."""
        self._growth_factor = float(new_factor)

    def set_backoff_factor(self, new_factor: float) -> None:
        """The factor S shrinks by after a step with an inf/nan gradient."""
        self._backoff_factor = float(new_factor)

    def set_growth_interval(self, new_interval: int) -> None:
        """The count of clean steps in a row after which S grows."""
        self._growth_interval = int(new_interval)

    def _get_growth_tracker(self) -> int:
        """The clean steps counted since S last changed (0 when disabled), as PyTorch's private
        getter that training loops log (before 2026-12-07 missing)."""
        return self._growth_tracker if self._enabled else 0

    def scale(self, outputs):
        """outputs * S (a Tensor, or a list/tuple of them); the input itself when disabled."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        return outputs * self._scale

    def _record(self, optimizer) -> dict:
        rec = self._per_optimizer.get(optimizer)
        if rec is None:
            rec = self._per_optimizer[optimizer] = {
                "unscaled": False, "found_inf": False, "stepped": False,
            }  # fmt: skip
        return rec

    def unscale_(self, optimizer) -> None:
        """Divide the gradients of `optimizer`'s parameters by S, in place, and note whether any
        is inf/nan. Call it before clipping gradients; `step` calls it when you did not.

        Raises:
            RuntimeError: unscale_ was already called for this optimizer since the last update.
        """
        if not self._enabled:
            return
        rec = self._record(optimizer)
        if rec["unscaled"]:
            raise RuntimeError(
                "GradScaler.unscale_() was already called on this optimizer since the last "
                "update(); call it once per step"
            )
        if rec["stepped"]:
            raise RuntimeError("GradScaler.unscale_() is being called after step()")
        inv = 1.0 / self._scale
        grads = []
        for group in optimizer.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if g.is_sparse and g._data.dtype == _np.float16:  # PyTorch's: sums may overflow
                    g = p.grad = g.coalesce()
                # Out of place: a gradient array may be shared or read-only.
                g._data = g._data * g._data.dtype.type(inv)
                grads.append(g._data.values if g.is_sparse else g._data)  # (sparse: its values)
        rec["found_inf"] = not _backend.all_finite(grads)  # one host synchronisation
        rec["unscaled"] = True

    def step(self, optimizer, *args, **kwargs):
        """optimizer.step() unless a gradient is inf/nan (then the step is skipped).

        Returns:
            optimizer.step()'s return value, or None when the step was skipped.
        """
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("GradScaler.step does not support a closure")
        rec = self._record(optimizer)
        if rec["stepped"]:
            raise RuntimeError("GradScaler.step() was already called for this optimizer")
        if not rec["unscaled"]:
            self.unscale_(optimizer)
        rec["stepped"] = True
        if rec["found_inf"]:
            return None
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale: float | None = None) -> None:
        """Adjust S for the next iteration: backoff after any skipped step, growth after
        growth_interval clean ones; or set it to `new_scale`."""
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale)
            self._growth_tracker = 0
        else:
            found_inf = any(r["found_inf"] for r in self._per_optimizer.values())
            if found_inf:
                self._scale *= self._backoff_factor
                self._growth_tracker = 0
            elif self._per_optimizer:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    grown = self._scale * self._growth_factor
                    if _math.isfinite(grown) and grown < 3.0e38:  # stays a finite float32
                        self._scale = grown
                    self._growth_tracker = 0
        self._per_optimizer = {}

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The scale and its schedule (PyTorch's keys); empty when disabled."""
        if not self._enabled:
            return {}
        return {
            "scale": self._scale,
            "growth_factor": self._growth_factor,
            "backoff_factor": self._backoff_factor,
            "growth_interval": self._growth_interval,
            "_growth_tracker": self._growth_tracker,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        if not self._enabled:
            return
        if not state_dict:
            raise RuntimeError("GradScaler.load_state_dict: the state_dict is empty")
        self._scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])


# ---------------------------------------------------------------------------------------------
# custom_fwd / custom_bwd: autocast for custom autograd functions (torch.amp.custom_fwd/_bwd)


def _cast_floating(value, device_type: str, dtype):
    """value with its floating tensors on `device_type` cast to dtype (containers walked)."""
    if hasattr(value, "_data") and hasattr(value, "to"):
        dev = "cuda" if _backend.is_cupy_array(value._data) else "cpu"
        if value._data.dtype.kind in "fV" and dev == device_type and value.dtype != dtype:
            return value.to(dtype)
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_floating(v, device_type, dtype) for v in value)
    if isinstance(value, dict):
        return {k: _cast_floating(v, device_type, dtype) for k, v in value.items()}
    return value


def custom_fwd(fwd=None, *, device_type: str, cast_inputs=None):
    """Decorate a custom function's `forward(ctx, ...)` for autocast (torch.amp.custom_fwd).

    Inside an autocast region for `device_type`, with `cast_inputs` (a dtype) the floating
    tensor arguments are cast to it and forward runs with autocast off; without it forward runs
    in the region as it is. Either way `custom_bwd` runs backward in the state forward had.
    """
    if not isinstance(device_type, str):
        raise ValueError(f"custom_fwd: device_type must be a str, got {type(device_type)}")
    if fwd is None:
        return _functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)

    @_functools.wraps(fwd)
    def decorate_fwd(ctx, *args, **kwargs):
        ctx._dtype = _get_autocast_dtype(device_type)
        ctx._fwd_used_autocast = _is_autocast_enabled(device_type)
        if cast_inputs is None or not ctx._fwd_used_autocast:
            return fwd(ctx, *args, **kwargs)
        ctx._fwd_used_autocast = False
        dtype = _np.dtype(cast_inputs)
        with autocast(device_type, enabled=False):
            return fwd(ctx, *_cast_floating(args, device_type, dtype),
                       **_cast_floating(kwargs, device_type, dtype))  # fmt: skip

    return decorate_fwd


def custom_bwd(bwd=None, *, device_type: str):
    """Decorate a custom function's `backward(ctx, ...)` to run in the autocast state its
    forward ran in (torch.amp.custom_bwd)."""
    if not isinstance(device_type, str):
        raise ValueError(f"custom_bwd: device_type must be a str, got {type(device_type)}")
    if bwd is None:
        return _functools.partial(custom_bwd, device_type=device_type)

    @_functools.wraps(bwd)
    def decorate_bwd(ctx, *args, **kwargs):
        used = getattr(ctx, "_fwd_used_autocast", False)
        with autocast(device_type, dtype=getattr(ctx, "_dtype", None), enabled=used):
            return bwd(ctx, *args, **kwargs)

    return decorate_bwd
