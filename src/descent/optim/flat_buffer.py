"""Flat buffers of an optimizer's parameter group (the layout `Optimizer.step` runs on).

The parameters of one group (of one dtype and device) lie end to end in one flat buffer and
each parameter's `.data` is a view into it; so is each state tensor's `.data` (module docstring
of `optimizer.py`: how a step uses them). `_Arrays` is what an update rule sees: a whole buffer
or one parameter's slice; `_GroupLayout` checks whether the layout still matches the group
(a replaced `.data` or state tensor makes the next step lay the buffers out again).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend, memory_layout
from ..dtypes import get_default_dtype
from ..tensor import Tensor


class _Arrays:
    """The raw arrays that `_update` works on: a whole flat buffer or one parameter's slice.

    Attributes:
        xp: the array module (numpy or cupy) of the arrays.
        param: the parameter values, updated in place.
        grad: a private copy of the gradient: the rule may overwrite it (maximize, weight decay).
        tmp: scratch space of the same size.
        state: state name -> array of the same size (e.g. "exp_avg"), updated in place.
        scalars: state name -> number, for state that is one number per parameter (NAdam's
            "mu_product"); the rule replaces the values, the step writes them back.
        scalar_type: the NumPy type that state lives in (PyTorch keeps it in 0-d tensors of
            float32, float64 when the default dtype is): a rule rounds a new value with it
            where PyTorch's in-place op on the 0-d tensor would.
    """

    __slots__ = ("xp", "param", "grad", "tmp", "state", "scalars", "scalar_type", "round")

    def __init__(self, param, grad, tmp, state: dict[str, Any], round=None) -> None:
        self.xp = backend.get_array_module(param)
        self.param = param
        self.grad = grad
        self.tmp = tmp
        self.state = state
        self.scalars: dict[str, Any] = {}
        self.scalar_type = np.float32
        # bfloat16 parameters: rounds a float32 array in place to bfloat16's values (see the
        # module docstring); None otherwise
        self.round = round


class _FlatBuffer:
    """Parameters of one group, one dtype and one device laid end to end in flat arrays.

    Building it copies each parameter's values (and any state it already has) into the flat
    arrays and re-points `p._data` (and each state tensor's `.data`) at views into them.

    State that is one number per parameter ("step", NAdam's "mu_product", ASGD's "eta" and
    "mu") lives the same way: one small host array per name with an entry per parameter, of
    PyTorch's scalar dtype (float32; float64 when the default dtype is), and each parameter's
    state holds a 0-d Tensor that is a view of its entry. So `state[p]["step"]` is a 0-d
    float32 Tensor as in PyTorch, and advancing every step of the buffer is one `+= 1`.
    """

    __slots__ = (
        "params",
        "bounds",
        "views",
        "grad_views",
        "state_views",
        "whole",
        "state_dicts",
        "scalars",
        "scalar_views",
        "checked_views",
        "fast",
    )

    def __init__(
        self, params: list, opt_state, state_init: dict, scalar_init: dict, sdt: np.dtype
    ) -> None:
        self.params = params  # the Parameters, in group order
        first = params[0]._data
        # meta parameters get meta buffers (shapes only): a step on a meta model keeps it meta
        xp = backend.creation_module(first)
        dtype = first.dtype
        # Complex parameters are stepped as their real (re, im) pairs, as PyTorch's optimizers
        # step torch.view_as_real(param): the flat arrays are real, with two entries per
        # element, and the parameter, gradient and state views are complex views of them.
        cdtype = None
        if dtype.kind == "c":
            cdtype, dtype = dtype, first.real.dtype
        per = 2 if cdtype is not None else 1
        bounds, total = [], 0
        for p in params:
            bounds.append((total, total + per * p._data.size))
            total += per * p._data.size
        self.bounds = bounds
        flat = xp.empty(total, dtype)
        grad = xp.zeros(total, dtype)
        state = {name: xp.full(total, fill, dtype) for name, fill in state_init.items()}
        self.whole = _Arrays(flat, grad, xp.empty(total, dtype), state)
        # One number per parameter: host arrays (PyTorch keeps these 0-d tensors on the CPU)
        self.whole.scalar_type = sdt.type
        self.scalars = {name: np.full(len(params), fill, sdt) for name, fill in scalar_init.items()}
        self.views, self.grad_views, self.state_views, self.state_dicts = [], [], [], []
        self.scalar_views, self.checked_views = [], []
        #: a rule's constants of this layout, computed at its first step (adam._step_from_grads)
        self.fast = None
        for i, (p, (lo, hi)) in enumerate(zip(params, bounds, strict=True)):
            shape = p._data.shape
            # a channels-last parameter (Module.to(memory_format=)) keeps its layout; its
            # gradient and state views share it, so the flat buffers line up element by element
            layout = memory_layout.layout_of(p._data)
            view = _shaped(flat[lo:hi], cdtype, shape, layout)
            view[...] = p._data
            p._data = view
            self.views.append(view)
            self.grad_views.append(_shaped(grad[lo:hi], cdtype, shape, layout))
            sviews = {
                name: _shaped(arr[lo:hi], cdtype, shape, layout) for name, arr in state.items()
            }
            self.state_views.append(sviews)
            # 0-d views of entry i (a basic index of a 1-d array with [i] would be a copy)
            nviews = {name: arr[i : i + 1].reshape(()) for name, arr in self.scalars.items()}
            self.scalar_views.append(nviews)
            self.checked_views.append({**nviews, **sviews})
            st = opt_state.get(p)
            if st:  # carry existing state into the new layout, as views
                for name, sview in self.checked_views[-1].items():
                    old = st.get(name)
                    if old is None and name == "step":
                        old = 1  # state without a count (e.g. PyTorch's SGD's): at least one step
                    if isinstance(old, Tensor):
                        sview[...] = _like(old._data, sview)
                        old._data = sview
                    else:
                        if old is not None:
                            sview[...] = _like(old, sview)
                        st[name] = Tensor._wrap(sview)
                _reorder(st, self.checked_views[-1])
            self.state_dicts.append(st)

    def part(self, i: int) -> _Arrays:
        """The arrays of parameter i alone (1-D slices of the flat buffers)."""
        lo, hi = self.bounds[i]
        w = self.whole
        state = {name: arr[lo:hi] for name, arr in w.state.items()}
        a = _Arrays(w.param[lo:hi], w.grad[lo:hi], w.tmp[lo:hi], state)
        a.scalar_type = w.scalar_type
        return a

    def is_current(self, opt_state, state_init: dict, scalar_init: dict) -> bool:
        """False when a parameter's data or a state tensor no longer is a view of this buffer."""
        if state_init.keys() != self.whole.state.keys():
            return False
        if scalar_init.keys() != self.scalars.keys():
            return False
        get = opt_state.get
        for p, view, sd, checked in zip(
            self.params, self.views, self.state_dicts, self.checked_views, strict=True
        ):
            if p._data is not view:
                return False
            st = get(p)
            if st is not sd:
                return False
            if st:
                for name, sview in checked.items():
                    t = st.get(name)
                    if t is None or t._data is not sview:
                        return False
        return True


def _scalar_dtype(group: dict | None = None) -> np.dtype:
    """PyTorch's `_get_scalar_dtype(is_fused)` for a group: float64 when the default dtype is
    (and the group is not `fused`: PyTorch's fused kernels count in float32), else float32."""
    if get_default_dtype() == np.float64 and not (group and group.get("fused") is True):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def _reorder(st: dict, first: dict) -> None:
    """Put the keys of `first` at the front of `st`, in that order (PyTorch's: "step", then
    the per-parameter numbers, then the arrays), keeping the same dict object."""
    if list(st)[: len(first)] == list(first):
        return
    items = {k: st[k] for k in first if k in st}
    items.update((k, v) for k, v in st.items() if k not in items)
    st.clear()
    st.update(items)


def _shaped(flat, cdtype, shape, layout="contiguous_format"):
    """A slice of a flat buffer in a parameter's shape (a complex view for complex ones), in the
    parameter's memory layout (memory_layout.py)."""
    return memory_layout.shaped_as(flat if cdtype is None else flat.view(cdtype), shape, layout)


def _like(arr, ref):
    """`arr` moved to `ref`'s device and cast to its dtype (state loaded from a checkpoint)."""
    if isinstance(arr, Tensor):
        arr = arr._data
    elif not (isinstance(arr, np.ndarray) or backend.is_cupy_array(arr)):
        arr = np.asarray(arr)  # anything with __array__ (e.g. another library's tensor)
    arr = backend.to_device(arr, backend.device_of(ref))
    xp = backend.get_array_module(ref)
    return xp.asarray(arr, dtype=ref.dtype)


class _GroupLayout:
    """The flat buffers of one parameter group: one per (dtype, device) among its parameters."""

    __slots__ = ("params", "buffers")

    def __init__(
        self, params: list, opt_state, state_init: dict, scalar_init: dict, sdt: np.dtype
    ) -> None:
        self.params = list(params)
        by_kind: dict[tuple, list] = {}
        for p in self.params:
            by_kind.setdefault((p._data.dtype, backend.device_of(p._data)), []).append(p)
        self.buffers = [
            _FlatBuffer(ps, opt_state, state_init, scalar_init, sdt) for ps in by_kind.values()
        ]

    def is_current(self, params: list, opt_state, state_init: dict, scalar_init: dict) -> bool:
        if len(params) != len(self.params):
            return False
        for p, q in zip(params, self.params, strict=True):
            if p is not q:
                return False
        return all(b.is_current(opt_state, state_init, scalar_init) for b in self.buffers)
