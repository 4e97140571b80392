"""linear: y = x W^T + b, the layer behind nn.Linear, as one fused op (`descent.ops.linear`);
bilinear: y = x1^T A x2 + b (nn.Bilinear)."""

from __future__ import annotations

import numpy as np

from ... import amp
from ...errors import DescentError, DtypeError
from ...hooks import composite
from ...ops._common import as_tensor
from ...ops.linalg import einsum
from ...ops.linear import Linear
from ...tensor import Tensor

__all__ = ["linear", "bilinear"]


def linear(input, weight, bias=None) -> Tensor:
    """y = x W^T + b with W of shape (out_features, in_features); one fused op."""
    # The common call (nn.Linear's: a floating input and weight of one dtype whose features
    # match, outside autocast, a bias None or of shape (out_features,)) goes to the op without
    # the checks below, which it passes (~1 us a call less): the same op call.
    if type(input) is Tensor and isinstance(weight, Tensor) and not amp._depth:
        a, wa = input._data, weight._data
        if (a.ndim and wa.ndim == 2 and a.shape[-1] == wa.shape[1] and a.dtype is wa.dtype
                and a.dtype.kind == "f"):  # fmt: skip
            if bias is None:
                return Linear.apply(input, weight, has_b=False)
            if isinstance(bias, Tensor) and bias._data.shape == (wa.shape[0],):
                return Linear.apply(input, weight, bias, has_b=True)
    x = as_tensor(input)
    w = as_tensor(weight)
    if x._nested_layout:  # a jagged nested tensor: on its packed values (descent.nested)
        from ...nested import functional as _nf  # noqa: PLC0415 - descent.nested is lazy

        return _nf.linear(x, w, bias)
    if w.ndim != 2 or x.ndim == 0 or x.shape[-1] != w.shape[-1]:
        raise DescentError(
            f"linear: input of shape {tuple(x.shape)} has {x.shape[-1] if x.ndim else 0} "
            f"features but the weight {tuple(w.shape)} expects {w.shape[-1]} (weight is "
            "(out_features, in_features))"
        )
    if amp._depth:  # inside descent.autocast: the product in the low dtype
        x, w, bias = amp._lower(x, w, None if bias is None else as_tensor(bias))
    if x._data.dtype != w._data.dtype:  # PyTorch refuses (it promoted silently here)
        raise DescentError(
            f"linear: input of dtype {x.dtype} and shape {tuple(x.shape)} but weight of dtype "
            f"{w.dtype} and shape {tuple(w.shape)}; convert the input (x.to(weight.dtype)) or "
            "the module (module.to(x.dtype))"
        )
    if x._data.dtype == np.bool_:  # PyTorch: "addmm_impl_cpu_" not implemented for 'Bool'
        raise DtypeError(
            f"linear: not implemented for bool tensors (input {tuple(x.shape)}, weight "
            f"{tuple(w.shape)}), as in PyTorch; convert both first with .float()"
        )
    if bias is None:
        return Linear.apply(x, w, has_b=False)
    b = as_tensor(bias)
    if tuple(b.shape) != (w.shape[0],):
        return Linear.apply(x, w, has_b=False) + b  # an unusual bias shape: broadcast add
    return Linear.apply(x, w, b, has_b=True)


@composite("aten._trilinear")  # one op (torch counts no FLOPs for it): flop_counter
def bilinear(input1, input2, weight, bias=None) -> Tensor:
    """y_o = x1^T A_o x2 + b_o with weight A (out, in1, in2); leading dims broadcast as
    nn.Bilinear (one einsum over the flattened batch)."""
    a, b, w = as_tensor(input1), as_tensor(input2), as_tensor(weight)
    if w.ndim != 3 or a.shape[-1] != w.shape[1] or b.shape[-1] != w.shape[2]:
        raise RuntimeError(
            f"bilinear: input1 {tuple(a.shape)} and input2 {tuple(b.shape)} do not match the "
            f"weight {tuple(w.shape)} (out_features, in1_features, in2_features)"
        )
    if tuple(a.shape[:-1]) != tuple(b.shape[:-1]):
        raise RuntimeError(
            f"bilinear: input1 {tuple(a.shape)} and input2 {tuple(b.shape)} must have the same "
            "leading dimensions"
        )
    lead = a.shape[:-1]
    a2, b2 = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    if amp._depth:  # not on PyTorch's autocast list (its _trilinear keeps the input dtype)
        with amp.autocast("cpu", enabled=False):
            y = einsum("ni,oij,nj->no", a2, w, b2)
    else:
        y = einsum("ni,oij,nj->no", a2, w, b2)
    y = y.reshape(*lead, w.shape[0])
    return y if bias is None else y + as_tensor(bias)
