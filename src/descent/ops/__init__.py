"""The differentiable operations, one module per family; forward and derivative side by side.

Importing this package plugs the ops layer into the two layers below it, explicitly and once:

* `tensor_methods.register_ops` fills Tensor's ops table with every public function of the op
  modules, so `x + y`, `x.exp()` and `x[i]` reach `arithmetic.add`, `elementwise.exp` and
  `indexing.getitem` without `tensor.py` importing an op module;
* `autograd._register_graph_namespace` hands the engine `graph_backward`, the differentiable
  namespace that op backward code runs against under `create_graph=True`.
"""

from __future__ import annotations

import sys

from .. import autograd, autograd_backward, tensor_methods
from . import (
    activation,
    arithmetic,
    bfloat16,  # noqa: F401 - registers the bfloat16 dispatch with the engine (ops/bfloat16.py)
    comparison,
    complex,
    division,
    elementwise,
    gaps_math,
    gaps_math_inplace,
    gaps_nn_ops,
    gaps_tensor,
    gaps_tensor_inplace,
    gaps_tensor_strided,
    graph_backward,
    indexing,
    inplace,
    linalg,
    math,
    op_names,
    order,
    reduce,
    scan,
    selection,
    shape,
    shape_copy,
    shape_index,
    softmax,
    special,
    torch_extra,
    torch_gaps,
    untracked,
    variance,
)
from ._common import check_inplace_alpha


def _public_functions(*modules) -> dict:
    """name -> function for the functions each module defines under a public name (an alias
    such as `clip = clamp` counts; names imported from elsewhere do not)."""
    out = {}
    for m in modules:
        for name, fn in vars(m).items():
            if name.startswith("_") or isinstance(fn, type) or not callable(fn):
                continue
            if getattr(fn, "__module__", None) == m.__name__:
                out[name] = fn
    return out


# The families whose functions Tensor methods call (the fused-kernel modules attention, conv,
# loss, norm, linear and embedding are reached through descent.nn.functional instead, and are
# imported on first use like any module).
_TENSOR_FAMILIES = (activation, arithmetic, division, comparison, elementwise, indexing, inplace,
                    linalg, math, order, reduce, variance, scan, selection, shape, shape_copy,
                    shape_index, softmax, special, torch_extra, torch_gaps, gaps_math,
                    gaps_math_inplace, gaps_tensor, gaps_tensor_inplace, gaps_tensor_strided,
                    gaps_nn_ops, complex)  # fmt: skip
tensor_methods.register_ops(_public_functions(*_TENSOR_FAMILIES))
autograd._register_graph_namespace(graph_backward)
autograd_backward.register_slice_types(indexing.GetItem, shape.Reshape)
tensor_methods.register_ops(
    {
        "_untracked_computed": untracked.computed,
        "_scaled_int": arithmetic.scaled_int,
        "_inplace_alpha": check_inplace_alpha,
    }
)


def __getattr__(name: str):
    """`torch.ops.<namespace>.<op>`: the custom operators made with `descent.library.custom_op`
    (docs/pytorch.md). Looked up in sys.modules, not imported: before `descent.library` is
    loaded no custom op exists."""
    library = sys.modules.get("descent.library")
    space = library._namespace(name) if library is not None else None
    if space is None and name in op_names.NAMESPACES:  # torch.ops.aten & co. (ops/op_names.py)
        return op_names.namespace(name)
    if space is None:
        raise AttributeError(f"module 'descent.ops' has no attribute {name!r}")
    return space
