"""PyTorch's names for descent's graph nodes: what `grad_fn.name()` and `repr(grad_fn)` show.

descent names a node after its op class ("MulScalarBackward"); PyTorch names it after the
ATen function's derivative entry, with an overload digit ("MulBackward0"). Programs and
tutorials print these names, so `name()` answers PyTorch's. The name is computed when asked
for (a table lookup, sometimes a look at the node's parameters or input shapes), never when a
node is recorded: the hot path does not change. `node.name` (an attribute, descent's own name)
stays what error messages, anomaly mode and the explain tools print.

Where descent's graph has another structure than PyTorch's (one fused node where PyTorch has
two: `F.linear` is one Linear node, PyTorch's an AddmmBackward0 over a TBackward0; cross_entropy
one node, PyTorch's NllLossBackward0 over LogSoftmaxBackward0), the node keeps its place and
takes the name of PyTorch's OUTER node. Ops descent composes from others (stack, addmm,
group_norm) show the name of their last primitive. docs/engine.md lists the differences.

This module sits below the engine and imports nothing from descent.
"""

from __future__ import annotations

import weakref

import numpy as np

# descent op class -> PyTorch's node name, where it is not just the class name + "Backward0"
# (Exp -> ExpBackward0 needs no entry). A callable computes it from the node.
_FIXED = {
    "AddScalar": "AddBackward0",  # x + 1
    "SubScalar": "SubBackward0",  # x - 1 (computed as x + (-1))
    "MulScalar": "MulBackward0",  # x * 2
    "MaskRead": "IndexBackward0",  # x[mask] while descent.compile records (compiler.mask_read)
    "Scale": "MulBackward1",  # a composite op's x * c (trapezoid's dx: mul.Scalar)
    "ExactDivScale": "DivBackward1",  # a composite op's x / 2 (div.Scalar)
    "DivScale": "DivBackward1",
    "Reciprocal": "ReciprocalBackward0",  # x.reciprocal() (1 / x: RDivScalar, MulBackward0)
    "ExactDivScalar": "DivBackward0",  # x / 2 (computed as x * 0.5)
    "DivScalar": "DivBackward0",
    "RSubScalar": "RsubBackward1",
    "PowScalar": "PowBackward0",
    "Pow": "PowBackward1",
    "RPowScalar": "PowBackward2",
    "Concatenate": "CatBackward0",
    "MaxDim": "MaxBackward0",  # max(x, dim)
    "MinDim": "MinBackward0",
    "MedianDim": "MedianBackward1",  # median(x, dim) (Kthvalue, Mode, Sort, Topk: their names)
    "NanmedianDim": "NanmedianBackward1",
    "Cast": "ToCopyBackward0",
    "BroadcastTo": "ExpandBackward0",
    "MatrixT": "TBackward0",  # x.t()
    "_MakeDual": "ViewBackward0",  # forward_ad.make_dual (a view of the primal, as PyTorch's)
    "Reshape": "ViewBackward0",  # view, reshape, flatten, view_as (a copying reshape: below)
    "Squeeze": "SqueezeBackward1",  # squeeze(dim); unsqueeze is Unsqueeze -> UnsqueezeBackward0
    "SqueezeAll": "SqueezeBackward0",  # squeeze()
    "SqueezeDims": "SqueezeBackward2",  # squeeze((d0, d1))
    "Tile": "RepeatBackward0",
    "TakeAlongAxis": "GatherBackward0",
    "SetItem": "torch::autograd::CopySlices",
    "VectorNorm": "LinalgVectorNormBackward0",
    "Norm2": "LinalgVectorNormBackward0",
    "CumSum": "CumsumBackward0",
    "CumProd": "CumprodBackward0",
    "LogCumSumExp": "LogcumsumexpBackward0",
    "LogSumExp": "LogsumexpBackward0",
    "Log1p": "Log1PBackward0",
    "EvenlyShared": "MedianBackward0",
    "Clamp": "ClampBackward1",  # Python-number bounds
    "Remainder": "RemainderBackward1",
    "Fmod": "FmodBackward1",
    "RoundedDiv": "DivBackward2",  # div(a, b, rounding_mode=...)
    "LerpScalar": "LerpBackward0",
    "Lerp": "LerpBackward1",
    "SoftmaxCrossEntropy": "NllLossBackward0",  # fused: PyTorch's has a LogSoftmaxBackward0
    "LayerNorm": "NativeLayerNormBackward0",
    "BatchNorm": "NativeBatchNormBackward0",
    "Conv2d": "ConvolutionBackward0",
    "ConvNd": "ConvolutionBackward0",  # conv1d / conv3d (and integer inputs)
    "ConvTransposeNd": "ConvolutionBackward0",  # PyTorch's convolution(transposed=True)
    "GroupNorm": "NativeGroupNormBackward0",
    "MaxPool2d": "MaxPool2DWithIndicesBackward0",
    "AvgPool2d": "AvgPool2DBackward0",
    "AvgPool3d": "AvgPool3DBackward0",
    "BCEWithLogits": "BinaryCrossEntropyWithLogitsBackward0",
    "ScatterReduce": "ScatterReduceBackward0",
    "FFTC2C": "FftC2CBackward0",
    "FFTR2C": "FftR2CBackward0",
    "FFTC2R": "FftC2RBackward0",
    "Inv": "LinalgInvExBackward0",
    "Pinv": "LinalgPinvBackward0",
    "Det": "LinalgDetBackward0",
    "Cholesky": "LinalgCholeskyExBackward0",
    "LUFactor": "LinalgLuFactorExBackward0",
    "Solve": "LinalgSolveExBackward0",
    "Eigvalsh": "LinalgEighBackward0",
    "Svdvals": "LinalgSvdBackward0",
    "Ndtri": "SpecialNdtriBackward0",
    "LogNdtr": "SpecialLogNdtrBackward0",
    "Erfcx": "SpecialErfcxBackward0",
    "Entr": "SpecialEntrBackward0",
    "I0e": "SpecialI0EBackward0",
    "I1": "SpecialI1Backward0",
    "I1e": "SpecialI1EBackward0",
    "Xlog1py": "SpecialXlog1PyBackward0",
    "AngleReal": "AngleBackward0",  # angle of a real tensor (zero gradient, saves self)
}


def _ndims(node) -> tuple:
    return tuple(len(s) for s in getattr(node, "in_shapes", ()) or ())


def _all_axes(node) -> bool:
    """A reduction over every axis without keepdims (PyTorch's overload 0: x.sum())."""
    # x.sum((0, 1)) names a dim list (overload 1), even one that covers every dim
    return getattr(node, "axis", None) is None and not getattr(node, "keepdims", False)


def _sum(node) -> str:
    return "SumBackward0" if _all_axes(node) else "SumBackward1"


def _mean(node) -> str:
    return "MeanBackward0" if _all_axes(node) else "MeanBackward1"


def _max(node) -> str:
    kind = "Min" if getattr(node, "is_min", False) else "Max"
    # x.max() shares ties evenly (MaxBackward1); amax/amin (and max(dim)'s values) otherwise
    return f"{kind}Backward1" if getattr(node, "evenly", False) else f"A{kind.lower()}Backward0"


def _var(node) -> str:
    return "StdBackward0" if getattr(node, "root", False) else "VarBackward0"


def _round(node) -> str:
    mode = str(getattr(node, "mode", "round"))
    if mode == "round":
        return "RoundBackward1" if getattr(node, "decimals", 0) else "RoundBackward0"
    return mode.capitalize() + "Backward0"  # floor, ceil, trunc


def _tri(node) -> str:
    return "TriuBackward0" if getattr(node, "upper", False) else "TrilBackward0"


def _matmul(node) -> str:
    return {(2, 2): "MmBackward0", (1, 1): "DotBackward0", (2, 1): "MvBackward0",
            (1, 2): "SqueezeBackward4"}.get(_ndims(node), "UnsafeViewBackward0")  # fmt: skip


def _linear(node) -> str:
    nd = _ndims(node)
    if nd and nd[0] == 2:  # PyTorch: addmm(bias, x, w.t()) or mm(x, w.t())
        return "AddmmBackward0" if len(nd) == 3 else "MmBackward0"
    return "ViewBackward0"  # batched input: PyTorch's matmul ends with a view


def _rdiv(node) -> str:
    # c / x, 1 / x too: PyTorch's reciprocal(x) * c (one fused node here); x.reciprocal() is
    # its own op, Reciprocal
    return "MulBackward0"


def _transpose(node) -> str:
    # transpose(d0, d1) and swapaxes; descent's own reversals of more axes are permutes
    # (x.t() is MatrixT, permute, movedim and x.T are Permute: their classes give the name)
    axes = tuple(getattr(node, "axes", None) or ())
    moved = [i for i, a in enumerate(axes) if i != a]
    return "TransposeBackward0" if len(moved) <= 2 else "PermuteBackward0"


def _full_slice(p: slice, length: int) -> bool:
    """Whether PyTorch's applySlice skips `p` on a dim of `length` (it returns self for start
    0, step 1 and a stop at or past the end: `x[0:5, 0]` of a (2, 3) x records no slice)."""
    return p.start in (None, 0) and p.step in (None, 1) and (p.stop is None or p.stop >= length)


def getitem_steps(node):
    """PyTorch's nodes for x[idx], in the order its applySlicing makes them: one per int
    (SelectBackward0), per slice that is not the whole dim (SliceBackward0) and per None
    (UnsqueezeBackward0), then IndexBackward0 for an advanced index; None for an index this
    reading does not cover (a bool scalar entry)."""
    idx = getattr(node, "idx", None)
    parts = idx if isinstance(idx, tuple) else (idx,)
    basic = getattr(node, "basic", True)
    shape = (getattr(node, "in_shapes", None) or ((),))[0]
    fill = len(shape) - sum(1 for p in parts if p is not None and p is not Ellipsis)
    steps = []
    dim = 0
    for p in parts:
        if p is None:
            steps.append("UnsqueezeBackward0")
        elif p is Ellipsis:
            dim += fill
        elif isinstance(p, slice):
            if dim >= len(shape) or not _full_slice(p, shape[dim]):
                steps.append("SliceBackward0")
            dim += 1
        elif isinstance(p, (bool, np.bool_)):
            return None
        elif isinstance(p, (int, np.integer)):
            steps.append("SelectBackward0")
            dim += 1
        elif hasattr(p, "ndim"):  # an index array (a mask's are one per dim it covers)
            dim += 1
        else:
            return None
    if not basic:
        steps.append("IndexBackward0")
    return steps


def _getitem(node) -> str:
    """PyTorch indexes one component at a time, so its node is the last effective one."""
    if not getattr(node, "basic", True):
        return "IndexBackward0"
    parts = node.idx if isinstance(node.idx, tuple) else (node.idx,)
    if len(parts) == 1 and isinstance(parts[0], slice):
        return "SliceBackward0"  # x[:]: PyTorch's one-slice path slices (x[:, :] is an alias)
    steps = getitem_steps(node)
    if steps is None:
        return "SelectBackward0"
    return steps[-1] if steps else "AliasBackward0"


def _pad(node) -> str:
    mode = getattr(node, "mode", "constant")
    if mode == "constant":
        return "ConstantPadNdBackward0"
    n = max(1, sum(1 for w in (getattr(node, "pad_width", ()) or ()) if tuple(w) != (0, 0)))
    kind = {"reflect": "Reflection", "edge": "Replication", "replicate": "Replication",
            "wrap": "Circular", "circular": "Circular"}.get(str(mode), "ConstantPadNd")  # fmt: skip
    return f"{kind}Pad{n}DBackward0"


def _logaddexp(node) -> str:
    return "Logaddexp2Backward0" if getattr(node, "base2", False) else "LogaddexpBackward0"


def _clamp_tensor(node) -> str:
    lo, hi = getattr(node, "has_lo", True), getattr(node, "has_hi", True)
    if lo and hi:
        return "ClampBackward0"  # tensor bounds
    return "ClampMinBackward1" if lo else "ClampMaxBackward1"


_RULES = {
    "SavedClone": lambda node: node.torch_name,
    "FixedWhere": lambda node: node.torch_name,
    "ScatterCopy": lambda node: node.torch_name,
    "EmptyScatter": lambda node: node.torch_name,
    # fft.fft / fft.ifft of a real tensor: PyTorch's r2c transform (ifft: conjugated after)
    "FFTR2CFull": lambda node: "ConjBackward0" if node.inverse else "FftR2CBackward0",
    "ClampTensor": _clamp_tensor,
    # nll_loss: PyTorch's nll_loss2d for (N, C, d...) inputs
    "PoolGather": lambda node: node.kind,
    "NllLoss": lambda node: (
        "NllLossBackward0" if len(node.in_shapes[0]) <= 2 else "NllLoss2DBackward0"
    ),
    "LogAddExp": _logaddexp,
    "Sum": _sum,
    "Mean": _mean,
    "Max": _max,
    "Var": _var,
    "Round": _round,
    "Tri": _tri,
    "MatMul": _matmul,
    "Linear": _linear,
    "RDivScalar": _rdiv,
    "Transpose": _transpose,
    "GetItem": _getitem,
    "IndexGetItem": _getitem,
    "Pad": _pad,
    "ConstantPad": _pad,
}

# Ops whose Python-number operand PyTorch wraps into a tensor input: their next_functions end
# with (None, 0) for it (x * 2: ((AccumulateGrad, 0), (None, 0))).
SCALAR_INPUT = frozenset({"AddScalar", "SubScalar", "MulScalar", "ExactDivScalar", "DivScalar"})


# The nodes of masked_select's reads: its x[mask] node (IndexGetItem, or compiler.mask_read's
# MaskRead while descent.compile records) is PyTorch's MaskedSelectBackward0, where a user's
# x[mask] is IndexBackward0; the op marks its node (nothing is added to the hot path)
_MASKED_SELECT: weakref.WeakSet = weakref.WeakSet()


def mark_masked_select(node) -> None:
    """Name `node` MaskedSelectBackward0 (masked_select's read of its flattened input)."""
    _MASKED_SELECT.add(node)


# Nodes an op names itself where its class's name is not PyTorch's: `x[:] = x` records
# copy_'s node, which PyTorch's setitem names CopyBackwards (ops/indexing.setitem)
_MARKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def mark_name(node, name: str) -> None:
    """Name `node` `name` (PyTorch's name for what the op that made it computed)."""
    _MARKED[node] = name


def torch_name(node) -> str:
    """PyTorch's name for `node` (a descent graph node): "SumBackward0", "MmBackward0"."""
    if node in _MASKED_SELECT:
        return "MaskedSelectBackward0"
    if _MARKED:
        marked = _MARKED.get(node)
        if marked is not None:  # a name, or (name, the inputs shown: grad_fn.show_as)
            return marked if type(marked) is str else marked[0]
    key = node.op_class.__name__  # (the op's class, also after grad_fn.torch_class renamed it)
    fixed = _FIXED.get(key)
    if fixed is not None:
        return fixed
    rule = _RULES.get(key)
    if rule is not None:
        try:
            return rule(node)
        except Exception:  # noqa: BLE001 - a node missing a field: the plain name
            pass
    return key + "Backward0"
