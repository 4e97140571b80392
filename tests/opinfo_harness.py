"""Run PyTorch's own operator database (OpInfo) against descent.

PyTorch's test suite describes each of its operators once, in
``torch.testing._internal.common_methods_invocations.op_db``: the function, the dtypes it
takes, and a generator of sample inputs (edge shapes, 0-d and empty tensors, broadcasting,
keyword arguments, the cases its authors found worth testing). This module feeds those samples,
unchanged, to descent's function of the same name and compares the result with PyTorch's:
dtype, shape, values and, for differentiable float inputs, the gradients of a random linear
function of the outputs. Nobody on descent's team wrote these samples.

``check_op(op, dtype)`` returns a list of findings (empty when descent agrees).
``tests/test_opinfo.py`` runs it over the database; ``python tests/opinfo_harness.py`` prints a
summary (``--op NAME`` for one operator, ``-v`` for every finding).
"""

from __future__ import annotations

import argparse
import math
import sys
import types
import warnings

import numpy as np
import torch
from torch.testing._internal.common_methods_invocations import op_db

import descent
from harness_report import report, run_case, short


def _extract_test_fn():
    """PyTorch's `extract_test_fn` (torch/testing/_internal/common_utils.py), the same search
    without `inspect.stack()`: the nearest frame whose `self` is a unittest.TestCase running a
    `test*` method gives that method's function, else None. torch calls it for every
    `sample_inputs`/`error_inputs` (the samples' seed and error context); inspect.stack() reads
    each frame's source lines and scans sys.modules for it, which was 54% of test_opinfo's time
    (115 of 213 s in a profile of 93 tests). Here no TestCase is on the stack, so both return
    None and the samples (seeded with torch's fixed SEED) are the same."""
    import unittest

    try:
        frame = sys._getframe(1)
        while frame is not None:
            self_val = frame.f_locals.get("self")
            if isinstance(self_val, unittest.TestCase):
                *_, cls_name, test_name = self_val.id().rsplit(".", 2)
                if cls_name == type(self_val).__name__ and test_name.startswith("test"):
                    return getattr(self_val, test_name).__func__
            frame = frame.f_back
    except Exception:  # noqa: BLE001 - as torch's: any failure means "no test function"
        pass
    return None


def _use_fast_extract_test_fn():
    import torch.testing._internal.common_utils as common_utils
    import torch.testing._internal.opinfo.core as opinfo_core

    for module in (common_utils, opinfo_core):
        if hasattr(module, "extract_test_fn"):
            module.extract_test_fn = _extract_test_fn


_use_fast_extract_test_fn()

# Operators whose outputs are random or uninitialised: only the shape and dtype are compared.
RANDOM = {
    "bernoulli", "multinomial", "normal", "uniform", "cauchy", "exponential", "geometric",
    "log_normal", "rand_like", "randint_like", "randn_like", "randint", "randn", "rand",
    "nn.functional.dropout", "nn.functional.dropout2d", "nn.functional.dropout3d",
    "nn.functional.alpha_dropout", "nn.functional.feature_alpha_dropout", "nn.functional.rrelu",
    "empty", "empty_like", "new_empty", "new_empty_strided", "empty_strided", "empty_permuted",
    "nn.functional.gumbel_softmax", "randperm",
    # random pooling regions (drawn inside the op, from each library's own generator)
    "nn.functional.fractional_max_pool2d", "nn.functional.fractional_max_pool3d",
    # randomised algorithms: op_db's wrapper seeds torch's generator, not descent's
    "svd_lowrank", "pca_lowrank",
}

# Random operators whose draw cannot matter on some samples: dropout off (training=False or
# p = 0) or certain (p = 1), rrelu outside training (the fixed slope (lower + upper) / 2).
# Those samples are compared in full; the value is each function's default for `training`.
_TRAINING_DEFAULT = {
    "nn.functional.dropout": True, "nn.functional.dropout2d": True,
    "nn.functional.dropout3d": True, "nn.functional.alpha_dropout": False,
    "nn.functional.feature_alpha_dropout": False, "nn.functional.rrelu": False,
}  # fmt: skip


def is_random(op, sample):
    """Whether ``sample``'s result for ``op`` is random: only its shape and dtype compare."""
    if _random_sample(sample):
        return True
    if op.name not in RANDOM:
        return False
    if op.name not in _TRAINING_DEFAULT or sample.args:
        return True
    training = sample.kwargs.get("training", _TRAINING_DEFAULT[op.name])
    if op.name == "nn.functional.rrelu":
        return bool(training)
    p = sample.kwargs.get("p", 0.5)
    return bool(training) and 0 < p < 1


# Differences examined and kept, with the reason (tests/opinfo_known.py takes these words).
EXPLAINED = {
    "chalf": "descent has no complex32 (NumPy has no complex half): a RuntimeError naming "
             "cfloat() instead",
    "complex": "float16: descent has no complex32 (NumPy has no complex half): a RuntimeError "
               "naming .float() instead",
    "view_as_complex": "float16: descent has no complex32 (NumPy has no complex half): a "
                       "RuntimeError naming .float() instead",
    "hash_tensor": "not in descent (PyTorch 2.13's new hashing reduction)",
    "max_pool2d_with_indices_backward": "a private ATen backward kernel, not a public function",
    "istft": "the sample's window is a no-grad view of a base that requires grad: torch's "
             "gradient is None there; as an ordinary leaf descent's matches torch's to 2e-6",
    "renorm": "p = inf on complex64: torch's gradient is nan everywhere; its complex128 one is "
              "finite and passes gradcheck, and descent's matches it to 1e-4",
    "addbmm": "in place on a (1,) tensor torch resizes it to the product's (5, 10) shape; "
              "descent raises PyTorch's in-place broadcast error instead",
    "as_strided": "Tensor.as_strided_ (changing a tensor's own strides in place) is not in "
                  "descent",
    "trapz": "uint8: torch adds the y pairs in uint8 and wraps (213); descent gives the value "
             "torch gives for y.float() (2645)",
    "trapezoid": "uint8: torch adds the y pairs in uint8 and wraps (213); descent gives the "
                 "value torch gives for y.float() (2645)",
    "cumulative_trapezoid": "uint8: torch adds the y pairs in uint8 and wraps; descent gives "
                            "the value torch gives for y.float()",
    "nn.functional.interpolate.bilinear": "uint8: PyTorch's fixed-point kernel (CPU-dependent) "
                                          "is not reproduced; descent raises, naming .float()",
    "nn.functional.interpolate.bicubic": "uint8: PyTorch's fixed-point kernel (CPU-dependent) "
                                         "is not reproduced; descent raises, naming .float()",
    "nn.functional.upsample_bilinear": "uint8: PyTorch's fixed-point kernel (CPU-dependent) is "
                                       "not reproduced; descent raises, naming .float()",
    "as_strided.partial_views": "the sample is a slice whose as_strided reads the base's "
                                "storage; the harness hands descent a copy, so the base is "
                                "gone (on a real descent view: a clear RuntimeError)",
    "as_strided_scatter": "torch's gradient is wrong (gradcheck fails; PyTorch's own OpInfo "
                          "marks its gradient test an expected failure); descent's is the true "
                          "one (docs/torch_gaps_tensor.md)",
    "nn.functional.layer_norm": "a one-element row: the true gradient is 0 (descent's); "
                                "torch's is float32 rounding noise growing with |x| (8e-5 at "
                                "x = 3.3)",
    "native_layer_norm": "a one-element row: the true gradient is 0 (descent's); torch's is "
                         "float32 rounding noise growing with |x| (8e-5 at x = 3.3)",
    "gather": "out= a (1,) view of the index's storage, resized to the result's (2,): torch "
              "resizes the view in place (its storage has room), so it overlaps the index "
              "and raises; descent gives out new memory and writes the result",
    "special.bessel_j0": "torch is off: float64 values up to 7.4e-6 relative from mpmath's, "
                         "descent's within 8e-15 (docs/special.md)",
    "special.bessel_j1": "torch is off: float64 values up to 7.4e-6 relative from mpmath's, "
                         "descent's within 8e-15 (docs/special.md)",
    "special.bessel_y1": "torch is off: float64 values up to 7.4e-6 relative from mpmath's, "
                         "descent's within 8e-15 (docs/special.md)",
}

# The (variant, dtype) pairs tests/test_opinfo.py runs; KNOWN's keys are "dtype" for the
# function variant and "variant-dtype" for the others.
RUNS = [("function", d) for d in ("float32", "float64", "int64", "bool", "complex64", "uint8",
                                  "float16")] + \
    [(v, d) for v in ("method", "inplace") for d in ("float32", "int64")] + \
    [("errors", "float32")]  # PyTorch's error inputs (dtype: only to pick the operators)


def run_check(op, dtype, variant):
    """Findings for one (variant, dtype) run of ``op`` (None: nothing could run)."""
    # torch on one thread: its OpenMP pool on a loaded 2-core machine made the float16 run 4x
    # slower (max_pool's 1,440 samples: 25 s, 6 s on one thread), and one thread keeps its
    # accumulation order the same on every machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if variant == "errors":
            return check_errors(op)
        return check_op(op, dtype, variant=variant)
    finally:
        torch.set_num_threads(threads)


def run_key(variant, dname):
    return dname if variant == "function" else f"{variant}-{dname}"

# The suite's time: operators whose larger samples repeat the smaller ones' cases (the same
# modes and options) at a cost of seconds each are compared on inputs up to this many
# elements. grid_sampler_3d: 12 of its 30 samples (every mode, padding and align_corners on
# (1, 1, 2, 2, 2) and (2, 3, 5, 20, 20) volumes); the others, up to (20, 21, 22, 23, 24),
# took 25 s of CPU per dtype.
MAX_NUMEL = {"grid_sampler_3d": 20_000}


# Operators that return positions: among equal values PyTorch leaves the choice unspecified
# (its sort is not stable unless asked), so index outputs are compared only without ties.
TIE_OPS = {"sort", "argsort", "topk", "kthvalue", "mode", "median", "nanmedian", "msort",
           "max.reduction_with_dim", "min.reduction_with_dim", "max", "min", "argmax", "argmin"}

DTYPES = {
    "float32": torch.float32, "float64": torch.float64, "int64": torch.int64,
    "int32": torch.int32, "bool": torch.bool, "complex64": torch.complex64,
    "uint8": torch.uint8, "float16": torch.float16,
    "bfloat16": torch.bfloat16,  # a survey dtype, not in RUNS (notes/s10/bf16_survey.txt)
}

# bfloat16: PyTorch's own (torch.testing.assert_close: rtol 1.6e-2, about two bfloat16 ulps,
# atol 1e-5); its gradients, rounded at every step of a backward pass, get BF16_GRAD_TOL.
TOL = {
    torch.float16: (1e-2, 1e-3), torch.bfloat16: (1.6e-2, 1e-5),
    torch.float32: (1e-4, 1e-5), torch.complex64: (1e-4, 1e-5),
    torch.float64: (1e-7, 1e-9), torch.complex128: (1e-7, 1e-9),
}


BF16_GRAD_TOL = (5e-2, 1e-2)
# The dtypes whose differences are judged against PyTorch's float64 result (``compare``).
HALVES = (torch.float16, torch.bfloat16)
# ... and the single-precision ones: where descent's float32/complex64 value differs from
# PyTorch's beyond the tolerance, it is accepted if it is at least as close to the float64
# (complex128) result as PyTorch's own (summation orders differ between BLAS kernels: on an AMD
# EPYC host complex64 householder_product's gradient differed from torch's by 6e-4 relative).
LOW = HALVES + (torch.float32, torch.complex64)
_WIDE = {torch.float16: torch.float64, torch.bfloat16: torch.float64,
         torch.float32: torch.float64, torch.complex64: torch.complex128}


class Unsupported(Exception):
    """The sample holds something the harness cannot translate (not a descent finding)."""


def _descent_module(mod):
    """descent's counterpart of a torch module (``torch.nn.functional`` -> descent's), or None."""
    parts = mod.__name__.split(".")
    if parts[0] != "torch":
        return None
    obj = descent
    for part in parts[1:]:
        obj = getattr(obj, part, None)
        if not isinstance(obj, types.ModuleType):
            return None
    return obj


def _retarget(fn, _memo=None):
    """``fn`` (a Python function from PyTorch's test code) with its torch globals -> descent's.

    Functions it closes over are retargeted too (``uniformize`` inside svd's output function).
    """
    memo = {} if _memo is None else _memo
    if id(fn) in memo:
        return memo[id(fn)]
    g = dict(fn.__globals__)
    g.update(_descent_globals(fn.__globals__))
    cells = None
    if fn.__closure__:
        cells = []
        for c in fn.__closure__:
            try:
                v = c.cell_contents
            except ValueError:  # an empty cell
                cells.append(c)
                continue
            if isinstance(v, types.FunctionType) and v is not fn:
                v = _retarget(v, memo)
            cells.append(types.CellType(v))
        cells = tuple(cells)
    new = types.FunctionType(fn.__code__, g, fn.__name__, fn.__defaults__, cells)
    new.__kwdefaults__ = fn.__kwdefaults__
    memo[id(fn)] = new
    return new


_DESCENT_GLOBALS = {}  # id(a module's globals) -> (the globals, their size, the replacements)


def _descent_globals(globs):
    """{name: descent module} for the torch modules among a module's globals ``globs``, found
    once per module (5% of a profile of test_opinfo: each sample's output_process_fn_grad is
    a new function, and common_methods_invocations has 700 globals to scan); found again if
    the module has gained or lost names since."""
    hit = _DESCENT_GLOBALS.get(id(globs))
    if hit is not None and hit[0] is globs and hit[1] == len(globs):
        return hit[2]
    repl = {}
    for k, v in globs.items():
        if isinstance(v, types.ModuleType) and v.__name__.startswith("torch"):
            d = _descent_module(v)
            if d is not None:
                repl[k] = d
    _DESCENT_GLOBALS[id(globs)] = (globs, len(globs), repl)
    return repl


def _is_test_code(fn):
    return isinstance(fn, types.FunctionType) and fn.__module__.startswith("torch.testing")


def _walk(root, name):
    obj = root
    for part in name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def resolve(op):
    """descent's function for the OpInfo ``op`` (function form), or None."""
    name = op.name
    if isinstance(op.op, types.FunctionType) and op.op.__module__.startswith("torch.testing"):
        # A wrapper written in PyTorch's test code (argument order, keyword defaults): run the
        # same code with ``torch`` meaning descent.
        return _retarget(op.op)
    if name.startswith("__") and name.endswith("__"):
        return lambda x, *a, **k: getattr(x, name)(*a, **k)
    obj = _walk(descent, name)
    if obj is not None and callable(obj):
        return obj
    # An entry named after an ATen op whose function is a public torch one under another
    # name ("_segment_reduce.lengths" runs torch.segment_reduce): descent's of that name.
    tname = getattr(op.op, "__name__", None)
    if tname and getattr(torch, tname, None) is op.op:
        obj = getattr(descent, tname, None)
        if obj is not None and callable(obj):
            return obj
    method = op.method_variant
    if method is not None and hasattr(descent.Tensor, getattr(method, "__name__", "")):
        mname = method.__name__
        return lambda x, *a, **k: getattr(x, mname)(*a, **k)
    return None


def _dtype_to_descent(dt):
    name = str(dt).split(".")[-1]
    got = getattr(descent, name, None)
    if got is None:
        raise Unsupported(f"dtype {dt}")
    return got


def to_descent(obj, leaves):
    """Translate a sample's argument; tensors that require grad are collected in ``leaves``."""
    if isinstance(obj, torch.Tensor):
        for t, d in leaves:
            if t is obj:  # the same tensor passed twice (input and target): one descent tensor
                return d
        if obj.layout == torch.sparse_csr:
            return _csr_to_descent(obj, leaves)
        if obj.layout != torch.strided:
            raise Unsupported(f"layout {obj.layout}")
        if obj.device.type != "cpu":
            raise Unsupported(f"device {obj.device}")
        if obj.dtype == torch.bfloat16:
            arr = obj.detach().float().numpy().astype(descent.bfloat16.numpy_dtype
                                                     if hasattr(descent.bfloat16, "numpy_dtype")
                                                     else np.float32)
            t = descent.tensor(arr, dtype=descent.bfloat16)
        else:
            t = descent.tensor(obj.detach().resolve_conj().resolve_neg().numpy().copy())
        if obj.requires_grad:
            t.requires_grad_(True)
            if obj.grad_fn is not None:
                t = t.clone()  # torch's sample is not a leaf: neither is descent's
            leaves.append((obj, t))
        return t
    if isinstance(obj, torch.dtype):
        return _dtype_to_descent(obj)
    if isinstance(obj, torch.Size):
        return tuple(obj)
    if isinstance(obj, torch.device):
        return obj.type
    if isinstance(obj, torch.memory_format):
        got = getattr(descent, str(obj).split(".")[-1], None)
        if got is None:
            raise Unsupported(f"memory format {obj}")
        return got
    if isinstance(obj, torch.Generator):
        raise Unsupported("generator argument")
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(to_descent(o, leaves) for o in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_descent(o, leaves) for o in obj)
    if isinstance(obj, dict):
        return {k: to_descent(v, leaves) for k, v in obj.items()}
    if isinstance(obj, torch.nn.Module):
        return _module_to_descent(obj)
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType)):
        raise Unsupported("callable argument")
    return obj


def _csr_to_descent(obj, leaves):
    """A 2-d sparse CSR tensor (no batch or dense dims) as descent's, a leaf if torch's is."""
    if obj.dim() != 2 or obj.dense_dim() != 0 or obj.device.type != "cpu":
        raise Unsupported(f"layout {obj.layout} of {obj.dim()} dims")
    if obj.requires_grad and obj.grad_fn is not None:
        raise Unsupported("a sparse CSR tensor that is not a leaf")
    for t, d in leaves:
        if t is obj:
            return d
    d = descent.sparse_csr_tensor(
        to_descent(obj.crow_indices(), []), to_descent(obj.col_indices(), []),
        to_descent(obj.values().detach(), []), tuple(obj.shape),
        requires_grad=obj.requires_grad)  # fmt: skip
    if obj.requires_grad:
        leaves.append((obj, d))
    return d


def _module_to_descent(mod):
    """A torch module without parameters or buffers (PairwiseDistance() as a loss's
    distance_function) as descent.nn's module of the same class name and settings."""
    cls = getattr(descent.nn, type(mod).__name__, None)
    if cls is None or type(mod).__module__.split(".")[:2] != ["torch", "nn"] or \
            any(True for _ in mod.parameters()) or any(True for _ in mod.buffers()):
        raise Unsupported("module argument")
    new = cls()
    for key, value in vars(mod).items():
        if key.startswith("_") or key == "training":
            continue
        if key not in vars(new):
            raise Unsupported(f"module argument: descent's {cls.__name__} has no {key}")
        setattr(new, key, to_descent(value, []))
    new.train(mod.training)
    return new


def _flat(out):
    if isinstance(out, (list, tuple)):
        res = []
        for o in out:
            res.extend(_flat(o))
        return res
    return [out]


def _np(x):
    if isinstance(x, (torch.Tensor, descent.Tensor)) and (x.is_sparse or x.is_sparse_csr):
        x = x.detach().to_dense()  # a sparse gradient (Embedding(sparse=True)): its values
    if isinstance(x, torch.Tensor):
        if x._is_zerotensor():
            x = torch.zeros(x.shape, dtype=x.dtype)
        x = x.detach().resolve_conj().resolve_neg()
        if x.dtype == torch.bfloat16:
            x = x.float()
        return x.numpy()
    if isinstance(x, descent.Tensor):
        if str(x.dtype).endswith("bfloat16"):
            x = x.float()
        return np.asarray(x.detach().numpy())
    return x


_DTYPE_NAMES = {}  # a torch or descent dtype -> its name ("float32")


def _dtype_name(x):
    dt = x.dtype
    name = _DTYPE_NAMES.get(dt)
    if name is None:
        name = _DTYPE_NAMES[dt] = str(dt).split(".")[-1]
    return name


# Where the float16 run relies on this (2026-12-05; without it these differ from torch's float16,
# and descent is the closer to float64 each time): matrix_exp (torch nan on all 25 entries of
# sample 0, descent 2454 for 2454.48), normalize (p=-1 gradient: torch inf for 178.15, descent
# 178.1; p=0.5: torch +-0.0039 for a true 0, descent 0), soft_margin_loss (torch's loss inf for
# 4.12 and gradient nan/inf at 40 of 125; descent in float32), scaled_dot_product_attention
# (4-d sample 12's query gradient: torch 0.019 from float64, descent 0.0026), grid_sample and
# grid_sampler_2d (bicubic grid gradient: torch up to 2.0 off at |g| 80, descent 0.027).
def _closer_to_truth(an, bn, ref, rtol, atol, half=torch.float16):
    """Where descent's float16 value ``bn`` is as good as torch's ``an``: no further from the
    float64 truth ``ref`` (rounded to float16, the best a float16 result can be) than torch's,
    or within the float16 tolerance of it. Elementwise; nan/inf count as infinitely far unless
    the rounded truth is the same non-finite value; where torch's is nan or inf (infinitely
    far), descent's must be within the tolerance."""
    with np.errstate(over="ignore", invalid="ignore"):
        wide = _WIDE.get(half, torch.float64)
        r = torch.from_numpy(ref).to(half).to(wide).numpy()  # the truth rounded to ``half``
        a, b = an.astype(r.dtype), bn.astype(r.dtype)

        def err(v):
            e = np.abs(v - r)
            same = (v == r) | (np.isnan(v) & np.isnan(r))
            return np.where(same, 0.0, np.where(np.isnan(e), np.inf, e))

        finite = np.abs(r[np.isfinite(r)])
        scale = max(1.0, float(finite.max()) if finite.size else 1.0)
        bound = np.where(np.isfinite(r), rtol * np.abs(r) + atol * scale, 0.0)
        ea = err(a)
        return err(b) <= np.maximum(np.where(np.isfinite(ea), ea, 0.0), bound)


def compare(tout, dout, tol, skip_int=False, reference=None):
    """A list of differences between PyTorch's output and descent's.

    ``reference`` (float16 runs): a callable giving PyTorch's float64 result on the same
    inputs (a flat list of arrays, None where unavailable). PyTorch's own float16 CPU result
    is not always the accurate one (half arithmetic in places, overflow to inf): where descent
    differs from it, descent's value is accepted if it is at least as close to the float64
    result as PyTorch's (``_closer_to_truth``). It is only called when values differ.
    """
    tf, df = _flat(tout), _flat(dout)
    if len(tf) != len(df):
        return [f"{len(tf)} outputs in torch, {len(df)} in descent"]
    bad = []
    refs = []  # the float64 reference, computed at the first difference
    for i, (a, b) in enumerate(zip(tf, df)):
        where = f"output {i}" if len(tf) > 1 else "output"
        if isinstance(a, torch.Tensor):
            if not isinstance(b, descent.Tensor):
                bad.append(f"{where}: torch gives a tensor, descent {type(b).__name__}")
                continue
            if _dtype_name(a) != _dtype_name(b):
                bad.append(f"{where}: dtype torch {_dtype_name(a)}, descent {_dtype_name(b)}")
                continue
            if tuple(a.shape) != tuple(b.shape):
                bad.append(f"{where}: shape torch {tuple(a.shape)}, descent {tuple(b.shape)}")
                continue
            if tol is None:
                continue
            an, bn = _np(a), _np(b)
            tol = tol if tol is BF16_GRAD_TOL else TOL.get(a.dtype, tol)
            if an.dtype == bool or np.issubdtype(an.dtype, np.integer):
                if skip_int and an.dtype == np.int64:
                    continue  # positions among equal values: unspecified in PyTorch
                if not np.array_equal(an, bn):
                    bad.append(f"{where}: values differ ({np.sum(an != bn)} of {an.size})")
                continue
            if an.dtype == bn.dtype and an.shape == bn.shape and an.tobytes() == bn.tobytes():
                continue  # the same bits: within any tolerance (nan, inf and all)
            rtol, atol = tol
            finite = np.abs(an[np.isfinite(an)])
            atol = atol * max(1.0, float(finite.max()) if finite.size else 1.0)
            ok = np.isclose(bn, an, rtol=rtol, atol=atol, equal_nan=True)
            if not ok.all() and reference is not None and a.dtype in LOW:
                if not refs:
                    refs.append(reference())
                ref = refs[0][i] if refs[0] is not None and i < len(refs[0]) else None
                if ref is not None and ref.shape == an.shape:
                    ok |= _closer_to_truth(an, bn, ref, *tol, half=a.dtype)
            if not ok.all():
                idx = np.argwhere(~ok)[0] if an.ndim else ()
                bad.append(f"{where}: values differ at {len(np.argwhere(~ok))} of {an.size} "
                           f"(e.g. {tuple(int(j) for j in idx)}: torch {an[tuple(idx)]!r}, "
                           f"descent {bn[tuple(idx)]!r})")
        elif isinstance(a, (bool, int, float, complex)):
            if isinstance(b, descent.Tensor) and b.ndim == 0:
                b = b.item()
            if isinstance(a, float) and isinstance(b, (int, float)) and math.isnan(a):
                if not math.isnan(b):
                    bad.append(f"{where}: torch nan, descent {b!r}")
            elif not isinstance(b, (bool, int, float, complex)) or (
                    a != b and not (tol and abs(a - b) <= tol[1] + tol[0] * abs(a))):
                bad.append(f"{where}: torch {a!r}, descent {b!r}")
        elif a is None:
            if b is not None:
                bad.append(f"{where}: torch None, descent {type(b).__name__}")
    return bad


_short = short  # the name the other harnesses import


def variant_fns(op, variant):
    """(torch's callable, descent's callable or None) for ``variant`` of ``op``, or None.

    ``variant``: "function" (``torch.add``), "method" (``x.add(...)``) or "inplace"
    (``x.clone().add_(...)``, which must return the tensor it changed).
    """
    if variant == "function":
        return op.op, resolve(op)
    v = op.method_variant if variant == "method" else op.inplace_variant
    name = getattr(v, "__name__", None)
    if v is None or name is None or isinstance(v, types.FunctionType):
        return None
    if variant == "method":
        dfn = (lambda x, *a, **k: getattr(x, name)(*a, **k)) if hasattr(descent.Tensor, name) \
            else _missing(name)
        return v, dfn

    def tfn(x, *a, **k):
        return v(x.clone(), *a, **k)

    def dfn(x, *a, **k):
        if not hasattr(descent.Tensor, name):
            raise AttributeError(f"descent.Tensor has no method {name}")
        y = x.clone()
        out = getattr(y, name)(*a, **k)
        if out is not y:
            raise AssertionError(f"{name} returned a new tensor, not the one it changed")
        return out
    return tfn, dfn


def _missing(name):
    def fn(*a, **k):
        raise AttributeError(f"descent.Tensor has no method {name}")
    return fn


def check_sample(op, fn, sample, dtype, grad, tfn=None):
    leaves = []
    try:
        dinput = to_descent(sample.input, leaves)
        dargs = to_descent(tuple(sample.args), leaves)
        dkwargs = to_descent(dict(sample.kwargs), leaves)
    except Unsupported:
        return None
    tol = None if is_random(op, sample) else TOL.get(dtype, (0, 0))
    ties = op.name in TIE_OPS and _has_ties(sample.input)
    twrap = op.gradcheck_wrapper if grad else (lambda f, *a, **k: f(*a, **k))
    dwrap = _retarget(twrap) if _is_test_code(twrap) else twrap
    tpost = sample.output_process_fn_grad
    dpost = _retarget(tpost) if _is_test_code(tpost) else tpost
    torch.manual_seed(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tout = tpost(twrap(tfn or op.op, sample.input, *sample.args, **sample.kwargs))
    except Exception as e:  # noqa: BLE001 - torch refusing the sample is a case too
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dpost(dwrap(fn, dinput, *dargs, **dkwargs))
        except Exception:  # noqa: BLE001
            return []
        return [f"torch raises ({_short(e)}), descent does not"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dout = dpost(dwrap(fn, dinput, *dargs, **dkwargs))
    except Exception as e:  # noqa: BLE001
        return [f"descent raises {_short(e)}"]
    half = dtype in LOW
    f64 = _Float64Reference(tfn or op.op, sample, twrap, tpost) if half else None
    bad = compare(tout, dout, tol, skip_int=ties, reference=f64 and f64.outputs)
    if bad or not grad or tol is None or ties:  # (ties: which equal value gets it, unspecified)
        return bad
    # Gradients of sum(out_i * w_i) over the floating outputs that require grad.
    tf = [o for o in _flat(tout) if isinstance(o, torch.Tensor) and o.requires_grad
          and (o.is_floating_point() or o.is_complex())]
    df = [d for t, d in zip(_flat(tout), _flat(dout)) if isinstance(t, torch.Tensor)
          and t.requires_grad and (t.is_floating_point() or t.is_complex())]
    tleaves = [t for t, _ in leaves]
    dleaves = [d for _, d in leaves]
    if not tf or not tleaves:
        return bad
    # A sparse CSR output is weighted through to_dense() (as a program reads it): a dense
    # weight fed to torch's backward for a CSR output reaches a CSR input unmasked
    # (sampled_addmm's beta * w at every position), which no program's loss does.
    tf = [o.to_dense() if o.layout == torch.sparse_csr else o for o in tf]
    df = [d.to_dense() if d.is_sparse_csr else d for d in df]
    gen = torch.Generator().manual_seed(1)
    ws = [torch.randn(o.shape, generator=gen, dtype=torch.float64).to(o.dtype) for o in tf]
    try:
        tg = torch.autograd.grad(tf, tleaves, ws, allow_unused=True)
    except Exception:  # noqa: BLE001 - not differentiable in torch: nothing to compare
        return bad
    if any(not d.requires_grad for d in df):
        return bad + ["an output that requires grad in torch does not in descent"]
    try:
        dws = [descent.tensor(_np(w)).to(d.dtype) for w, d in zip(ws, df)]
        dg = descent.autograd.grad(df, dleaves, dws, allow_unused=True)
    except Exception as e:  # noqa: BLE001
        return bad + [f"descent backward raises {_short(e)}"]
    for i, (a, b) in enumerate(zip(tg, dg)):
        if a is None and b is None:
            continue
        if a is None:
            a = torch.zeros_like(tleaves[i])
        if b is None:
            b = descent.zeros_like(dleaves[i])
        gtol = BF16_GRAD_TOL if dtype == torch.bfloat16 else tol
        gb = compare(a, b, gtol, reference=f64 and (lambda i=i: f64.grads(ws)[i:i + 1]))
        bad += [f"grad of input {i}: {m}" for m in gb]
    return bad


def _upcast(obj, memo):
    """A float16 sample's argument in float64 (the same tensor twice: one float64 tensor)."""
    if isinstance(obj, torch.Tensor):
        if obj.layout != torch.strided:
            raise Unsupported(f"layout {obj.layout}")  # (no float64 reference: torch's decides)
        if obj._base is not None or obj.untyped_storage().nbytes() != obj.numel() * \
                obj.element_size():
            # a view, or a tensor with storage beyond its elements (as_strided reads it): the
            # float64 copy would not hold what torch's op reads
            raise Unsupported("a view of a larger storage")
        if id(obj) not in memo:
            t = obj.detach()
            t = t.to(_WIDE[t.dtype]) if t.dtype in _WIDE else t.clone()
            memo[id(obj)] = (obj, t.requires_grad_(obj.requires_grad))
        return memo[id(obj)][1]
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_upcast(o, memo) for o in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_upcast(o, memo) for o in obj)
    if isinstance(obj, dict):
        return {k: _upcast(v, memo) for k, v in obj.items()}
    return obj


class _Float64Reference:
    """PyTorch's result and gradients on a float16 sample's inputs taken exactly to float64:
    the truth that float16 results are rounded from (see ``compare``). Computed once, when
    first asked for; None where PyTorch refuses float64 there."""

    def __init__(self, fn, sample, wrap, post):
        self.fn, self.sample, self.wrap, self.post = fn, sample, wrap, post
        self._run = None
        self._grads = None

    def _forward(self):
        if self._run is None:
            memo = {}
            s = self.sample
            try:
                args = (_upcast(s.input, memo), _upcast(tuple(s.args), memo),
                        _upcast(dict(s.kwargs), memo))
            except Unsupported:
                self._run = (None, [])
                return self._run
            leaves = [t for o, t in memo.values() if o.requires_grad]
            torch.manual_seed(0)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    out = self.post(self.wrap(self.fn, args[0], *args[1], **args[2]))
            except Exception:  # noqa: BLE001 - no float64 reference: torch's value decides
                out = None
            self._run = (out, leaves)
        return self._run

    def outputs(self):
        out, _ = self._forward()
        if out is None:
            return None
        return [_wide_np(o) if isinstance(o, torch.Tensor) else None for o in _flat(out)]

    def grads(self, ws):
        """The gradients of sum(out_i * w_i) (float16 weights, taken exactly)."""
        if self._grads is None:
            out, leaves = self._forward()
            self._grads = [None] * len(leaves)
            outs = [o for o in _flat(out) if isinstance(o, torch.Tensor) and o.requires_grad
                    and (o.is_floating_point() or o.is_complex())] if out is not None else []
            if outs and len(outs) == len(ws):
                try:
                    g = torch.autograd.grad(outs, leaves, [w.to(o.dtype) for w, o in
                                                           zip(ws, outs)], allow_unused=True)
                    self._grads = [None if x is None else _wide_np(x) for x in g]
                except Exception:  # noqa: BLE001
                    pass
        return self._grads


def _wide_np(t):
    """A reference tensor as a float64 (complex128 when complex) array."""
    a = _np(t)
    return a.astype(np.complex128 if np.iscomplexobj(a) else np.float64)


def _has_ties(x):
    if not isinstance(x, torch.Tensor) or x.numel() < 2:
        return False
    flat = x.detach().reshape(-1)
    return torch.unique(flat).numel() < flat.numel()


def _random_sample(sample):
    """A sample whose result is random (attention or a functional with dropout on)."""
    for key in ("dropout_p", "dropout"):
        v = sample.kwargs.get(key)
        if isinstance(v, (int, float)) and v > 0:
            return True
    # multi_head_attention_forward: dropout_p is positional, applied when training=True
    if sample.kwargs.get("training") is True and any(
            isinstance(a, float) and 0 < a < 1 for a in sample.args):
        return True
    return False


def check_op(op, dtype, max_samples=None, variant="function"):
    """Findings for ``op`` at ``dtype``: a list of strings, or None if nothing could run."""
    fns = variant_fns(op, variant)
    if fns is None or fns[1] is None:
        return None
    tfn, fn = fns
    grad = op.supports_autograd and (dtype.is_floating_point or dtype.is_complex)
    torch.manual_seed(0)
    try:
        samples = list(op.sample_inputs("cpu", dtype, requires_grad=grad))
    except Exception:  # noqa: BLE001
        return None
    found, ran = [], 0
    for k, s in enumerate(samples[:max_samples]):
        if op.name in MAX_NUMEL and s.input.numel() > MAX_NUMEL[op.name]:
            continue
        res = check_sample(op, fn, s, dtype, grad, tfn)
        if res is None:
            continue
        ran += 1
        found += [f"sample {k} ({_describe(s)}): {m}" for m in res]
    return found if ran else None


def _aliased_out(sample):
    outs = sample.kwargs.get("out")
    if outs is None:
        return False
    outs = [o for o in _flat(outs) if isinstance(o, torch.Tensor)]
    ins = [t for t in _flat([sample.input, *sample.args]) if isinstance(t, torch.Tensor)]
    for o in outs:
        if o.numel() > 1 and 0 in o.stride():
            return True
        ptr = o.untyped_storage().data_ptr()
        if any(t.untyped_storage().data_ptr() == ptr for t in ins):
            return True
    return False


_ERROR_INPUTS = {}  # id(op) -> its error inputs, made once (collection asks, the test runs)


def error_inputs(op):
    """PyTorch's error inputs for ``op`` on the CPU (a list, empty when it has none)."""
    if id(op) not in _ERROR_INPUTS:
        errs = []
        if op.error_inputs_func is not None:
            try:
                errs = list(op.error_inputs("cpu"))
            except Exception:  # noqa: BLE001 - none for this device
                pass
        _ERROR_INPUTS[id(op)] = errs
    return _ERROR_INPUTS[id(op)]


def _specific(err):
    """Whether an error input names its error: PyTorch's generic "this op takes no Python
    scalar here" inputs (torch.maximum(t, 2), torch.pow(2, 3), error type Exception, no
    message) are left out: descent accepting the scalar is a superset no program relies on."""
    return not (err.error_type is Exception and not err.error_regex)


def has_error_inputs(op):
    """Whether ``op`` has error inputs that check_errors compares (tests/test_opinfo.py
    collects its "errors" run only then: 68 operators have none on the CPU, or only generic
    ones)."""
    return op.error_inputs_func is not None and any(_specific(e) for e in error_inputs(op))


def check_errors(op):
    """PyTorch's error inputs for ``op``: descent must raise the same error type (or a subclass).

    Returns a list of findings, or None when the operator has none (or descent lacks it).
    """
    fn = resolve(op)
    if fn is None:
        return None
    found, ran = [], 0
    for k, err in enumerate(error_inputs(op)):
        s = err.sample_input
        if not _specific(err):
            continue
        try:
            if _aliased_out(s):
                # out= overlapping an input or expanded (stride 0): the aliasing the error is
                # about is rebuilt as views of one descent tensor per torch storage
                views = {}
                dinput, dargs, dkwargs = (_aliased_to_descent(x, views) for x in
                                          (s.input, tuple(s.args), dict(s.kwargs)))  # fmt: skip
            else:
                dinput = to_descent(s.input, [])
                dargs = to_descent(tuple(s.args), [])
                dkwargs = to_descent(dict(s.kwargs), [])
        except Exception:  # noqa: BLE001 - other devices (meta), >64-dim tensors: not translatable
            continue
        ran += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fn(dinput, *dargs, **dkwargs)
        except err.error_type:
            continue
        except Exception as e:  # noqa: BLE001
            found.append(f"error input {k} ({_describe(s)}): descent raises {_short(e)}, "
                         f"torch {err.error_type.__name__} ({err.error_regex[:80]})")
            continue
        found.append(f"error input {k} ({_describe(s)}): descent does not raise; torch: "
                     f"{err.error_type.__name__} ({err.error_regex[:100]})")
    return found if ran else None


def _aliased_to_descent(obj, views):
    """``obj`` with each strided tensor as a view (as_strided, the same sizes, strides and
    offset) of one descent tensor holding its whole torch storage, so tensors that share
    memory in torch share it in descent. ``views``: storage pointer -> descent base."""
    if isinstance(obj, torch.Tensor):
        if obj.layout != torch.strided or obj.device.type != "cpu":
            raise Unsupported(f"layout {obj.layout} on {obj.device}")
        storage = obj.untyped_storage()
        key = storage.data_ptr() if storage.nbytes() else id(obj)  # (empty: all at address 0)
        if key not in views:
            flat = torch.empty(0, dtype=obj.dtype).set_(storage)  # (nbytes / itemsize,)
            views[key] = to_descent(flat.clone(), [])
        if ("tensor", id(obj)) not in views:  # the same tensor twice: one descent tensor
            views["tensor", id(obj)] = views[key].as_strided(tuple(obj.shape), obj.stride(),
                                                             obj.storage_offset())  # fmt: skip
        return views["tensor", id(obj)]
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        return type(obj)(_aliased_to_descent(o, views) for o in obj)
    if isinstance(obj, dict):
        return {k: _aliased_to_descent(v, views) for k, v in obj.items()}
    return to_descent(obj, [])


def _describe(s):
    def d(x):
        if isinstance(x, torch.Tensor):
            return f"T{tuple(x.shape)}"
        if isinstance(x, (list, tuple)):
            return "[" + ",".join(d(y) for y in x) + "]"
        return repr(x)[:30]
    parts = [d(s.input)] + [d(a) for a in s.args] + [f"{k}={d(v)}" for k, v in s.kwargs.items()]
    return ", ".join(parts)


def ops():
    return list(op_db)


def label(op):
    return op.name + (f".{op.variant_test_name}" if op.variant_test_name else "")


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--op", action="append")
    p.add_argument("--dtype", default="float32")
    p.add_argument("-v", action="store_true")
    p.add_argument("--variant", default="function",
                   choices=("function", "method", "inplace", "errors"))
    p.add_argument("--write-known", action="store_true",
                   help="rewrite tests/opinfo_known.py from this run (all test dtypes)")
    a = p.parse_args(argv)
    if a.write_known:
        write_known()
        return
    dtype = DTYPES[a.dtype]

    def cases():
        for op in ops():
            if (a.op and op.name not in a.op) or dtype not in op.supported_dtypes("cpu"):
                continue
            yield label(op), (lambda op=op: run_check(op, dtype, a.variant))

    report(cases(), a.dtype, a.v)

def write_known(path=None):
    """Rewrite tests/opinfo_known.py: each (dtype, operator) that differs, with one finding."""
    import pathlib
    import pprint

    known = {}
    for variant, dname in RUNS:
        dtype = DTYPES[dname]
        for op in ops():
            if dtype not in op.supported_dtypes("cpu"):
                continue
            res = run_case(lambda op=op, dt=dtype, v=variant: run_check(op, dt, v))
            if res:
                key = run_key(variant, dname)
                why = EXPLAINED.get(label(op))
                known.setdefault(key, {})[label(op)] = (
                    f"{why}; {len(res)} differences" if why else
                    f"{len(res)} differences; {res[0]}")[:300]
    path = pathlib.Path(path or pathlib.Path(__file__).with_name("opinfo_known.py"))
    body = pprint.pformat(known, width=98, sort_dicts=True)
    path.write_text(
        '"""Where descent still differs from PyTorch on its OpInfo samples '
        '(tests/test_opinfo.py).\n\n'
        "Generated by `python tests/opinfo_harness.py --write-known`; each entry is the number "
        "of\ndiffering samples and the first one. Fixing an operator turns its entry into an "
        'XPASS."""\n\n'
        "# ruff: noqa: E501 (generated: pprint's nested entries may pass 100 columns)\n"
        f"# fmt: off\nKNOWN = {body}\n"
    )
    print(f"wrote {path}: {sum(len(v) for v in known.values())} entries")


if __name__ == "__main__":
    main()
