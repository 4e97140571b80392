"""bfloat16 arithmetic: every op on bfloat16 tensors computes in float32 and rounds to bfloat16.

That is how PyTorch's CPU kernels treat bfloat16 (they load bfloat16, compute in float32 and
round the result to nearest, ties to even), so descent does it once, here, instead of teaching
each op's kernel a dtype NumPy lacks (ml_dtypes' bfloat16 is a NumPy dtype of kind "V"; its
own ufuncs would accumulate sums in bfloat16 and return float32 from matmul). `install()`
hands `dispatch` to the engine (`autograd.set_cast_dispatch`) when data is first given the
bfloat16 dtype (`dtypes.on_bfloat16`); from then on every `Function` entry point that meets a
bfloat16 input calls it first:

    y = op(x_bf16, w_bf16)  runs as  cast(op(cast(x, f32), cast(w, f32)), bf16)

with the casts recorded as graph nodes (`Cast`, differentiable). So the op's forward and
backward run on float32 arrays as they always do, the output is rounded once, and in backward
the gradient reaching a bfloat16 input is rounded once by the cast's backward: a bfloat16 leaf
gets a bfloat16 `.grad`, as in PyTorch. Ops that only move values (`Cast`, `Clone`,
`ToDevice`: `native_bfloat16 = True`) run on the bfloat16 arrays as they are.

The output is rounded only when every floating input was bfloat16 (an op that meets float32
explicitly, as autocast's float32 ops do, keeps float32; normalisations, whose float32 weights
meet a bfloat16 input under autocast, follow the input: `bfloat16_follows_input`), and only a
float32 result (integer indices, bool masks pass as they are).

Where PyTorch's kernel rounds elsewhere, the op says so with a class attribute read here:
`bfloat16_scalar` (how `x + c` and `c / x` treat the Python scalar), `bfloat16_param` (the
forward is told the dtype: softmax and log_softmax keep some buffers in bfloat16),
`bfloat16_apply` (PyTorch runs the op as several: cross_entropy is log_softmax then
nll_loss). Composite functions that PyTorch fuses use `@rounds_once` (ops/half.py, shared with
float16; descent/opmath.py has the overview); other composites (mean = sum / n) round after
each primitive: within bfloat16's tolerance, not always bitwise.
"""

from __future__ import annotations

import numpy as np

from .. import autograd
from ..dtypes import on_bfloat16
from ..opmath import FLOAT as _F32
from ..tensor import Tensor
from . import float8
from .half import round_output


def dispatch(cls, entry, tensors, args, params):
    """The engine's low-precision dispatch (autograd.set_cast_dispatch): None unless a tensor
    input is bfloat16 and the op is not native to it; else the op's output, computed in float32
    and rounded (see the module docstring)."""
    native = cls.native_bfloat16
    if native is True or (native == "basic" and params is not None and params.get("basic")):
        return None  # moves values only (a basic index: a view, which in-place ops write through)
    # "V" for ml_dtypes' dtypes (NumPy numbers >= 256): bfloat16, float8 (e5m2 is of kind "f")
    kinds = [
        ("V" if t._data.dtype.num >= 256 else t._data.dtype.kind) if isinstance(t, Tensor) else ""
        for t in tensors
    ]
    if "V" not in kinds:
        return None
    from .elementwise import Cast  # noqa: PLC0415

    bf16 = tensors[kinds.index("V")]._data.dtype
    if bf16.name != "bfloat16":  # float8: PyTorch computes a few ops, refuses the rest
        done, out = float8.dispatch(cls, tensors, bf16)
        if done:
            return out  # None: the op moves values, on the float8 arrays as they are
    scalar = getattr(cls, "bfloat16_scalar", None)  # PyTorch's handling of a Python scalar
    if scalar == "round":  # x + c, c - x: c is rounded to bfloat16 first
        args = (float(np.asarray(args[0], dtype=bf16).astype(_F32)),)
    elif scalar == "reciprocal" and args[0] != 1:  # c / x is reciprocal(x) * c, rounded twice
        from .arithmetic import MulScalar  # noqa: PLC0415

        return MulScalar.apply_scalar(cls.apply_scalar(tensors[0], 1), args[0])
    # Round the output only when no floating input was of another dtype (float32 meeting
    # bfloat16 without promotion is an op that wants float32, such as autocast's).
    # Normalisations with float32 weights follow their input, as PyTorch's mixed-type kernels.
    all_low = ("f" not in kinds and "c" not in kinds) or (
        kinds[0] == "V" and getattr(cls, "bfloat16_follows_input", False)
    )
    alt = getattr(cls, "bfloat16_apply", None)  # an op that PyTorch runs as several ops
    if alt is not None and params is not None:
        out = alt(*tensors, **params)
        if out is not None:
            return out
    up = tuple(Cast.apply(t, dtype=_F32) if k == "V" else t for t, k in zip(tensors, kinds))
    name = getattr(cls, "bfloat16_param", None)  # an op whose forward follows PyTorch's
    if name is not None and params is not None:  # bfloat16 kernel: it gets the dtype
        params = {**params, name: bf16}
    out = entry(*up, *args, **(params or {}))
    return round_output(out, bf16) if all_low else out


def install() -> None:
    """Hand `dispatch` to the engine (called when data is first given the bfloat16 dtype)."""
    autograd._set_cast_dispatch(dispatch)


on_bfloat16(install)  # now if bfloat16 data exists already, else when it first does
