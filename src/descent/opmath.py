"""float16 on arrays as PyTorch's CPU kernels: compute in float32, round once ("opmath").

PyTorch's CPU kernels load float16 and bfloat16 values, compute in float32 (the op's "opmath
type"; sums in its "acc_type") and round the result to the input dtype once. NumPy's float16
loops round every step, and its matmul and `add.at` accumulate in float16: the ops measured
were 2-50x further from the float64 result than PyTorch's (docs/pytorch.md, "float16").

descent follows PyTorch at three levels, with one piece each:

* bfloat16, every op: `ops/bfloat16.py`'s dispatch runs each op on float32 between recorded
  casts (NumPy has no bfloat16 arithmetic at all).
* float16 primitives, whose `forward` and `backward` see arrays: `in_float32` below, behind one
  dtype test, so that float32 and float64 pay that test and nothing else::

      def forward(self, x):
          if x.dtype == HALF:  # PyTorch's opmath: in float32, rounded once
              return in_float32(self.forward, x)
          ...

  A backward does the same with its formula on the saved arrays (the graph's create_graph
  backward runs on Tensors and rounds as the float16 ops it records).
* float16 and bfloat16 composites, functions of Tensors that PyTorch computes as one kernel:
  `ops/half.py` (`rounds_once`, `in_float32`), with recorded casts so that a float16 input
  gets a float16 gradient.

The primitive level keeps the op's own node (PyTorch's grad_fn name, float16 saved values);
the composite level records casts around float32 ops.
"""

from __future__ import annotations

import numpy as np

HALF = np.dtype(np.float16)  # the reduced-precision dtype that NumPy computes in (bfloat16 is
FLOAT = np.dtype(np.float32)  # ml_dtypes' and goes through ops/bfloat16.py); its opmath type


def is_reduced(dt) -> bool:
    """float16, or bfloat16 (ml_dtypes' dtype, NumPy kind "V"): the dtypes PyTorch's CPU kernels
    compute in float32 and round once. A function that tests this before its float32 path pays
    one comparison and one attribute read for float32."""
    return dt == HALF or dt.kind == "V"


def _dtype(a):
    """An array's (NumPy's or CuPy's) dtype; None for anything else (an array module, whose
    `dtype` is a class, a shape, an index tuple, None)."""
    dt = getattr(a, "dtype", None)
    return dt if isinstance(dt, np.dtype) else None


def _up(a):
    """A float16 array (NumPy or CuPy) as float32; anything else (an array module, a shape, an
    index) as it is."""
    return a.astype(FLOAT) if _dtype(a) == HALF else a


def _down(out):
    """fn's float32 result(s) rounded to float16 once (a tuple of gradients may hold None)."""
    if isinstance(out, tuple):
        return tuple([_down(o) for o in out])
    return out.astype(HALF) if _dtype(out) == FLOAT else out


def in_float32(fn, *args, **kwargs):
    """fn(*args, **kwargs) with every float16 positional array taken to float32 and every float32
    array it returns rounded to float16 once: PyTorch's opmath for a float16 kernel. Callers
    test the dtype first (float32 and float64 never come here)."""
    return _down(fn(*[_up(a) for a in args], **kwargs))
