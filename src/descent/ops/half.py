"""float16 and bfloat16 composites computed in float32 and rounded once (recorded casts).

The Tensor level of PyTorch's "opmath" (descent/opmath.py has the array level and the
overview): a function of Tensors that PyTorch computes as one kernel (a loss, a normalisation,
interpolation, attention, lerp) runs here on float32 between recorded casts,

    f(x_f16, w_f16)  runs as  cast(f(cast(x, f32), cast(w, f32)), f16)

so its result is rounded once, not after each primitive, and in backward the gradient
reaching a float16 input is rounded once by the cast's backward (a float16 leaf gets a float16
`.grad`, as in PyTorch).

* `in_float32(fn, *args, **kwargs)`: called behind the caller's own dtype test (float32 and
  float64 never come here; the callers' conditions differ: both operands float16, a CPU
  array, a mode).
* `@rounds_once`: the same as a decorator, for bfloat16 or float16 (every floating Tensor
  argument of one of them), at the cost of one global read and one dtype test otherwise.
* `round_output`: the rounding, shared with ops/bfloat16.py's dispatch.
"""

from __future__ import annotations

import functools

from .. import autograd
from ..opmath import FLOAT as _F32
from ..opmath import HALF as _F16
from ..tensor import Tensor


def round_output(out, low):
    """An op's float32 output(s) rounded to `low` (float16 or bfloat16) through the
    differentiable cast; other dtypes (integer indices, bool masks) pass as they are."""
    from .elementwise import Cast  # noqa: PLC0415 - elementwise imports this package's pieces

    if isinstance(out, Tensor):
        if out._data.dtype != _F32:
            return out
        node = out._node
        if node is not None and node.out_data is out._data:
            # An op that saved its output for backward (exp, tanh, softmax) reads it rounded,
            # as PyTorch's reduced-precision kernels read their float16/bfloat16 result.
            node.out_data = out._data.astype(low).astype(_F32)
        return Cast.apply(out, dtype=low)
    if isinstance(out, tuple):  # an op with several outputs (PyTorch's return types)
        return type(out)(*[round_output(o, low) for o in out]) if hasattr(out, "_fields") \
            else tuple(round_output(o, low) for o in out)  # fmt: skip
    return out


def _call_in_float32(fn, low, args, kwargs):
    """fn with its positional Tensor arguments of dtype `low` cast to float32 (recorded; keyword
    arguments pass as they are: an `out=` tensor must stay the caller's), rounded once."""
    from .elementwise import Cast  # noqa: PLC0415

    up = [Cast.apply(a, dtype=_F32) if isinstance(a, Tensor) and a._data.dtype == low else a
          for a in args]  # fmt: skip
    return round_output(fn(*up, **kwargs), low)


def in_float32(fn, *args, **kwargs):
    """fn(*args, **kwargs) for float16 (or bfloat16) Tensors as PyTorch's kernel: every
    positional Tensor argument of the first one's reduced-precision dtype cast to float32, the
    float32 result(s) rounded back to that dtype once, the casts recorded (the gradients come
    back float16). Tensors of other dtypes (a float32 weight) pass as they are."""
    low = next(a._data.dtype for a in args if isinstance(a, Tensor) and _is_low(a._data.dtype))
    return _call_in_float32(fn, low, args, kwargs)


def _is_low(dt) -> bool:
    """float16 or bfloat16 (ml_dtypes' dtype, of kind "V")."""
    return dt == _F16 or dt.kind == "V"


def rounds_once(fn):
    """Decorate a composite function that PyTorch computes as one kernel (lerp, addcmul,
    hardsigmoid, selu): on bfloat16 or float16 tensors (all of one of them) it runs in float32
    and its result is rounded once, not after each primitive (PyTorch's CPU "opmath": a float16
    addcmul with value=0.1 multiplies by 0.1 in float32). Other dtypes call `fn` directly (one
    global read and a dtype test of the first argument more)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        a0 = args[0] if args else None
        if autograd._cast_dispatch is None and not (
            isinstance(a0, Tensor) and a0._data.dtype is _F16
        ):  # no bfloat16 in this process, and not float16
            return fn(*args, **kwargs)
        dts = [a._data.dtype for a in args if isinstance(a, Tensor)]
        low = {d for d in dts if _is_low(d)}
        if len(low) != 1 or any(d.kind in "fc" and d != _F16 for d in dts):
            return fn(*args, **kwargs)
        return _call_in_float32(fn, low.pop(), args, kwargs)

    return wrapper
