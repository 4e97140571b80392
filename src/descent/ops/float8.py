"""float8 ops: what PyTorch's CPU computes with float8 tensors, and its refusal of the rest.

PyTorch's float8 dtypes are storage formats (docs/dtypes.md). On the CPU (2.13) its kernels
move them (cat, stack, reshape, indexing, clone, copy_, where, roll, repeat: descent's ops with
`native_bfloat16`, which run on the float8 arrays as they are), convert them (`Cast`, by
float8.py's rules) and compute only a handful of ops; every other op raises
`NotImplementedError: "add_stub" not implemented for 'Float8_e4m3fn'`. descent does the same:
the engine's low-precision dispatch (ops/bfloat16.py, which every `Function` entry point
consults for an input of NumPy kind "V") sends an op with a float8 input here, and

* an op in `COMPUTES` runs as bfloat16's do, on float32 values rounded once to the float8
  dtype (PyTorch's `mul_cpu_reduced_float` and its float8 matmul compute in float32 too;
  the tests compare bitwise);
* any other op raises PyTorch's NotImplementedError, with its kernel name where `KERNELS`
  knows it (else descent's op name).

A Python scalar meeting a float8 tensor (`x * 2.0`) is refused too, as PyTorch's
`mul_cpu_reduced_float` refuses it; mixing float8 with another dtype is refused earlier, by the
promotion rule (ops/_common.py: "Promotion for Float8 Types is not supported").
"""

from __future__ import annotations

import numpy as np

from ..dtypes import as_dtype, scalar_type
from ..float8 import astype
from ..hooks import composite
from ..tensor import Tensor
from .untracked import computed

# Ops PyTorch 2.13's CPU computes on float8 (probed op by op), by descent class name, with
# the formats each refuses. Comparisons (eq, ne, isnan) are not recorded ops in descent: they
# run on the arrays directly (ml_dtypes' NumPy loops), as PyTorch's do.
# abs follows PyTorch's scalar loop (std::abs in float32: -0.0 and nan lose their sign bit);
# its vectorised loop, which PyTorch runs over whole blocks of 64 elements, keeps them
# (x < 0 ? -x : x): a PyTorch inconsistency descent does not copy. matmul's nan results may
# differ in sign (the accumulation order decides which nan propagates).
COMPUTES = {
    "Mul": (),
    "MatMul": ("float8_e8m0fnu",),
    "Linear": ("float8_e8m0fnu",),  # addmm: x @ w.T + b, one rounding
    "Abs": ("float8_e8m0fnu",),
}

# descent op -> PyTorch's kernel name in its "not implemented" message
KERNELS = {
    "Add": "add_stub", "Sub": "add_stub", "AddScalar": "add_stub", "SubScalar": "add_stub",
    "RSubScalar": "add_stub", "Neg": "neg_cpu", "Div": "div_cpu", "DivScalar": "div_cpu",
    "RDivScalar": "reciprocal_cpu", "Reciprocal": "reciprocal_cpu",
    "MulScalar": "mul_cpu_reduced_float", "Sum": "sum_cpu",
    "Exp": "exp_vml_cpu", "Log": "log_vml_cpu", "Sqrt": "sqrt_vml_cpu", "Tanh": "tanh_cpu",
    "Sigmoid": "sigmoid_cpu", "Relu": "clamp_min_scalar_cpu", "Pow": "pow",
    "PowScalar": "pow", "Max": "max_all", "Min": "min_all", "Flip": "flip_cpu",
    "Maximum": "maximum_cpu", "Minimum": "minimum_cpu",
}  # fmt: skip


# Ops that only move values but are not native to bfloat16 (which they would round through
# float32): they run on the float8 arrays as they are.
MOVES = {
    "Concatenate", "Stack", "GetItem", "IndexGetItem", "Tile", "BroadcastTo", "Where", "Roll",
    "Pad", "ConstantPad",
}  # fmt: skip


def dispatch(cls, tensors, dtype):
    """The low-precision dispatch's float8 branch (ops/bfloat16.py) for op `cls` on an input
    of float8 `dtype`: (True, None) for an op that moves values (run it on the float8 arrays as
    they are), (False, None) for one that runs as bfloat16's do (float32, rounded once);
    PyTorch's NotImplementedError for any other op. (`tensors` is kept for ops that PyTorch
    would compute on the bits: none so far.)"""
    name = cls.__name__
    if name in MOVES:
        return True, None
    formats = COMPUTES.get(name)
    if formats is None or dtype.name in formats:
        raise NotImplementedError(
            f"\"{KERNELS.get(name, name.lower())}\" not implemented for '{scalar_type(dtype)}' "
            "(float8 tensors are storage: convert with .float() to compute, as PyTorch's CPU "
            "requires)"
        )
    return False, None


@composite("aten._scaled_mm")  # one op for descent.utils.flop_counter
def scaled_mm(self, mat2, scale_a, scale_b, bias=None, scale_result=None, out_dtype=None,
              use_fast_accum=False):  # fmt: skip
    """torch._scaled_mm on the CPU: the product of two float8 matrices, each scaled back to
    its real range, `(float(self) * scale_a) @ (float(mat2) * scale_b) + bias`, computed in
    float32 and converted once to `out_dtype` (self's dtype when None).

    Not recorded for autograd (PyTorch's has no derivative either). Scales are float32 tensors
    of one element (per tensor) or of shapes (M, 1) and (1, N) (per row of self and per column
    of mat2). `scale_result` and `use_fast_accum` are accepted and ignored, as by PyTorch's CPU
    kernel. PyTorch computes with oneDNN: per-row scales agree bitwise, a per-tensor scale to a
    float32 rounding or so (oneDNN applies it after its own accumulation order).

    Raises:
        RuntimeError: an input is not a float8 matrix (e4m3fn or e5m2), or the shapes do not
            multiply.
        ValueError: scales of other shapes ("Invalid scaling configuration.", PyTorch's words).
    """
    for name, m in (("mat1", self), ("mat2", mat2)):
        if m.ndim != 2:
            raise RuntimeError(f"{name} must be a matrix")
        if m._data.dtype.name not in ("float8_e4m3fn", "float8_e5m2"):
            raise RuntimeError(
                f"Expected {name} to be Float8 matrix got {scalar_type(m._data.dtype)} "
                "(_scaled_mm multiplies float8_e4m3fn / float8_e5m2 matrices)"
            )
    (m, k), (k2, n) = self.shape, mat2.shape
    if k != k2:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({m}x{k} and {k2}x{n})")
    sa, sb = (np.asarray(s._data if isinstance(s, Tensor) else s) for s in (scale_a, scale_b))
    tensorwise = sa.size == 1 and sb.size == 1
    rowwise = sa.shape == (m, 1) and sb.shape == (1, n)
    if not (tensorwise or rowwise) or sa.dtype.kind != "f" or sb.dtype.kind != "f":
        raise ValueError(
            "Invalid scaling configuration. (_scaled_mm takes float32 scales of one element, "
            f"or of shapes ({m}, 1) and (1, {n}); got {sa.shape} and {sb.shape})"
        )
    dtype = self._data.dtype if out_dtype is None else as_dtype(out_dtype)
    # Through untracked.computed: descent.compile replays the product on each call's data
    # (made on the arrays, it was a constant frozen when the first two calls agreed)
    scales = tuple(s if isinstance(s, Tensor) else Tensor._wrap(np.asarray(s))
                   for s in (scale_a, scale_b))  # fmt: skip
    if isinstance(bias, Tensor):
        return computed(_scaled_mm_kernel, (self, mat2, *scales, bias),
                        (None, tensorwise, dtype))  # fmt: skip
    return computed(_scaled_mm_kernel, (self, mat2, *scales), (bias, tensorwise, dtype))


def _scaled_mm_kernel(a, b, sa, sb, *rest):
    """scaled_mm's kernel: `(a, b, scale_a, scale_b, [bias array,] bias number or None,
    tensorwise, out dtype)`, in float32, converted once."""
    *bias_arr, bias, tensorwise, dtype = rest
    f32 = np.float32
    sa = sa.astype(f32).reshape(()) if tensorwise else sa.astype(f32)
    sb = sb.astype(f32).reshape(()) if tensorwise else sb.astype(f32)
    out = (astype(a, f32) * sa) @ (astype(b, f32) * sb)  # (M, N) float32, exact float8 values
    if bias_arr:
        out = out + astype(bias_arr[0], f32)
    elif bias is not None:
        out = out + bias
    return astype(out.astype(f32, copy=False), dtype)
