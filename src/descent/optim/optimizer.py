"""The optimizer base class: parameter groups, per-parameter state, flat buffers, state_dict.

An optimizer turns gradients into parameter updates. Each optimizer in descent subclasses
`Optimizer` and supplies three things:

* `_check(group)`: validate one group's hyperparameters (a ValueError that names the option);
* `_state_init(group)`: the per-parameter state arrays it keeps and their initial value, e.g.
  `{"exp_avg": 0.0, "exp_avg_sq": 0.0}` (PyTorch's state keys);
* `_update(group, a, step)`: the update rule, written ONCE on raw arrays with in-place NumPy/CuPy
  calls (`out=` arguments, no temporaries beyond one scratch buffer, no float64 for float32).

How a step runs (an implementation detail; the API is PyTorch's). The parameters of one group
(of one dtype and device) lie end to end in one flat buffer and each parameter's `.data` is a
view into it; so is each state tensor's `.data`. `step()` copies the gradients into a flat
gradient buffer, which the rule may overwrite, and calls `_update` once on the whole buffers: a
handful of whole-array calls per group instead of a handful per parameter. When only some
parameters have a gradient (or their step counts differ), the same `_update` runs on each such
parameter's slice of the buffers, which gives the same numbers because every rule is
elementwise. When a parameter's `.data` is replaced (`Module.to()`, a module's
`load_state_dict`, a user's `p.data = ...`) or a state tensor is swapped, the next step notices
and lays the buffers out again, carrying the values (cast to the parameter's dtype and device).

bfloat16 parameters (docs/bfloat16.md): the rule runs on float32 copies of the buffers and the
results are rounded back to bfloat16. `a.round` (None for every other dtype) rounds an array in
place to bfloat16's values; a rule calls it where PyTorch's single-tensor implementation ends
an op (`mul_`, `lerp_`, `addcmul_`, ...), so each rounding happens where PyTorch's does (Adam,
AdamW and SGD do; another rule rounds once, at the end of its step).
"""

from __future__ import annotations

import functools
import math
import numbers
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, TypeAlias

import numpy as np

from .. import backend
from ..autograd import enable_grad, no_grad
from ..grad_mode import set_grad_enabled
from ..tensor import Tensor
from .flat_buffer import (  # noqa: F401 - the optimizers import these names from here
    _Arrays,
    _FlatBuffer,
    _GroupLayout,
    _like,
    _reorder,
    _scalar_dtype,
    _shaped,
)
from .optimizer_hooks import (  # noqa: F401 - torch.optim.optimizer's names
    OptimizerHooks,
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
    wrap_class,
)

__all__ = ["Optimizer"]


class _RequiredParameter:
    """PyTorch's sentinel for a hyperparameter without a default: a user's optimizer writes
    `lr=required` (`from torch.optim.optimizer import Optimizer, required`), and a group that
    does not set it is refused (`add_param_group`)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()

#: PyTorch's type of the `params` argument (type hints of users' optimizers).
ParamsT: TypeAlias = Iterable[Tensor] | Iterable[dict[str, Any]] | Iterable[tuple[str, Tensor]]


def _use_grad_for_differentiable(func: Callable) -> Callable:
    """PyTorch's decorator of `step` (in copies of PyTorch's optimizers): run it with grad
    mode set to the optimizer's `defaults["differentiable"]` (off unless given)."""

    @functools.wraps(func)
    def _use_grad(self, *args, **kwargs):
        with set_grad_enabled(bool(self.defaults.get("differentiable", False))):
            return func(self, *args, **kwargs)

    return _use_grad


def _get_value(x):
    """PyTorch's helper: a Tensor's number (`.item()`), anything else as it is."""
    return x.item() if isinstance(x, Tensor) else x


class Optimizer(OptimizerHooks):
    """Base class of all optimizers (PyTorch's interface).

    Args:
        params: an iterable of Parameters (or of (name, Parameter) pairs, PyTorch's named
            parameters: `model.named_parameters()`), or of dicts that define parameter groups:
            each dict has a "params" entry and may override any hyperparameter of `defaults`.
        defaults: the hyperparameters of the optimizer, used where a group does not set them.

    Attributes:
        param_groups: list of dicts, one per group: "params" (list of Parameters) plus every
            hyperparameter (defaults filled in), and "param_names" when the parameters came
            with names. Change `group["lr"]` between steps freely (a number, or a 1-element
            Tensor as PyTorch's tensor lr).
        state: Parameter -> dict of its state, in PyTorch's layout: "step" (updates applied so
            far, a 0-d float32 Tensor as PyTorch's; float64 when the default dtype is), other
            per-parameter numbers as 0-d Tensors too (NAdam's "mu_product"), and the
            optimizer's arrays as Tensors of the parameter's shape ("exp_avg", ...). Keyed by
            the Parameter object itself. SGD and Muon keep no "step" (PyTorch's do not), and
            SGD without momentum keeps no state at all.
        defaults: the default hyperparameters.
    """

    #: Whether the state keeps a "step" count (PyTorch's SGD and Muon keep none: their state is
    #: the momentum buffer alone, and only once there is one).
    _counts_steps = True

    #: PyTorch's order of the hyperparameters in `defaults` (so in each group and in
    #: `state_dict()["param_groups"]`); keys it does not name follow, in their own order.
    _group_keys: tuple[str, ...] = ()

    #: Whether complex parameters are accepted: elementwise rules step them as (re, im) pairs,
    #: PyTorch's view_as_real (docs/complex.md); rules over whole tensors set this False.
    _complex_params = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        wrap_class(cls)  # step / state_dict / load_state_dict run the hooks (optimizer_hooks.py)

    def __init__(self, params: Iterable, defaults: dict[str, Any]) -> None:
        self.defaults = {k: defaults[k] for k in self._group_keys if k in defaults}
        self.defaults.update((k, v) for k, v in defaults.items() if k not in self.defaults)
        self._check(self.defaults)
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        self._layouts: list[_GroupLayout | None] = []
        #: Parameter -> how often its group lists it, where more than once (`add_param_group`)
        self._repeats: dict[Tensor, int] = {}
        if isinstance(params, Tensor):
            raise TypeError(
                f"{type(self).__name__}: params must be an iterable of Tensors or dicts, got a "
                "single Tensor; pass [tensor] or model.parameters()"
            )
        groups = list(params)
        if len(groups) == 0:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # -- what each optimizer supplies ------------------------------------------------------
    def _check(self, group: dict[str, Any]) -> None:
        """Raise ValueError when a hyperparameter of `group` is out of range."""

    def _state_init(self, group: dict[str, Any]) -> dict[str, float]:
        """State arrays kept per parameter under this group's options -> their initial value."""
        return {}

    def _scalar_state_init(self, group: dict[str, Any]) -> dict[str, float]:
        """State kept as ONE number per parameter (not an array) -> its initial value."""
        return {}

    def _state_shape_ok(self, key: str, shape: tuple, param_shape: tuple) -> bool:
        """Whether a loaded state array of `shape` fits a parameter (its shape, by default)."""
        return shape == param_shape

    def _update(self, group: dict[str, Any], a: _Arrays, step: int) -> None:
        """Apply the update rule in place to `a.param` (step: an int counting from 1; for an
        optimizer that keeps no count (`_counts_steps` False), 1 on a parameter's first update
        and 2 on any later one)."""
        raise NotImplementedError

    # -- groups --------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (defaults fill the rest).

        The params may be (name, Parameter) pairs (`model.named_parameters()`), as in PyTorch:
        the names go to `group["param_names"]` and the state dict. A parameter listed k times in
        the group warns (PyTorch's UserWarning), is kept once in `group["params"]` and is
        stepped k times per `step()` with the same gradient, as PyTorch's default (for-loop)
        implementation steps it.

        Raises:
            TypeError: params is a set, or an entry is not a floating-point Tensor.
            RuntimeError: a complex parameter for an optimizer whose rule is not elementwise.
            ValueError: a parameter is not a leaf or is already in another group; some params
                have names and others not (in this group or across groups); or a
                hyperparameter is out of range.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        name = type(self).__name__
        group = dict(param_group)
        params = group.get("params")
        if params is None:
            raise ValueError(f"{name}: a parameter group needs a 'params' entry")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(
                f"{name}: parameters must be an ordered collection (a list), not a set: the "
                "order of a set changes between runs"
            )
        params = list(params)
        # PyTorch's named parameters: (name, Parameter) pairs, e.g. model.named_parameters();
        # the names go to group["param_names"] (and the state dict), all or none of them
        names = [p[0] for p in params if isinstance(p, tuple)]
        if names:
            if len(names) != len(params):
                raise ValueError(
                    f"{name}: all optimizer params should be with/without names. Some param "
                    "names are missing (pass every parameter as a (name, Parameter) pair, as "
                    "model.named_parameters() gives, or none)"
                )
            params = [p[1] for p in params]
        seen: set[Tensor] = set()
        unique = []
        counts: dict[Tensor, int] = {}
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name} can only optimize Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(
                    f"{name} can't optimize a non-leaf Tensor (shape {tuple(p.shape)}): "
                    "optimize the "
                    "leaf it was computed from, or .detach().requires_grad_() a copy"
                )
            if p.dtype.kind == "c" and not self._complex_params:
                raise RuntimeError(  # PyTorch's type ("Muon does not support complex ...")
                    f"{name} does not optimize complex Tensors (its rule is not elementwise); "
                    "keep the parameter real and build the complex value from it "
                    "(descent.view_as_complex)"
                )
            if p.dtype.kind not in "fVc":
                raise TypeError(f"{name} can only optimize floating-point Tensors, got {p.dtype}")
            if p in seen:
                counts[p] = counts.get(p, 1) + 1
                continue
            seen.add(p)
            unique.append(p)
        if len(unique) != len(params):
            # PyTorch warns and steps such a parameter once per listing (its for-loop rule,
            # the CPU default); so does descent (`_step_buffer`), keeping one in the group
            warnings.warn(
                f"{name}: optimizer contains a parameter group with duplicate parameters; "
                "in future, this will cause an error; see "
                "github.com/pytorch/pytorch/issues/40967 for more information (each listing "
                "steps the parameter once, as in PyTorch: list each parameter once)",
                UserWarning,
                stacklevel=3,
            )
            if names:  # the name of each parameter's first occurrence
                first = {}
                for p, n in zip(params, names, strict=True):
                    first.setdefault(p, n)
                names = [first[p] for p in unique]
        named = bool(names) or "param_names" in group  # a group dict may carry its names
        for other in self.param_groups:
            if ("param_names" in other) != named:
                raise ValueError(
                    f"{name}: all optimizer param groups should be with/without names. cannot "
                    f"add param group {'with' if named else 'without'} names to the optimizer"
                )
            for p in other["params"]:
                if p in seen:
                    raise ValueError(
                        f"{name}: some parameters appear in more than one parameter group "
                        f"(one has shape {tuple(p.shape)})"
                    )
        group["params"] = unique
        if counts:
            if not hasattr(self, "_repeats"):  # a subclass that skipped Optimizer.__init__
                self._repeats = {}
            self._repeats.update(counts)
        if names:
            group = {"params": unique, "param_names": names, **group}
        for key, value in self.defaults.items():
            if value is required and key not in group:
                raise ValueError(  # PyTorch's message
                    f"parameter group didn't specify a value of required optimization "
                    f"parameter {key}"
                )
            group.setdefault(key, value)
        self._check(group)
        self.param_groups.append(group)
        self._layouts.append(None)

    # -- the step --------------------------------------------------------------------------------
    def _step_each(self, closure: Callable[[], Any] | None, update: Callable) -> Any:
        """`step` of an optimizer that updates one parameter at a time outside the flat
        buffers (Adafactor's factored state, SparseAdam's rows): the closure with grad mode on,
        then `update(group, p)` under no_grad for every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        repeats = getattr(self, "_repeats", None) or {}  # k listings: k updates
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        if p.grad.is_sparse and not self._sparse_grads:
                            self._sparse_grad(group, p.grad)  # PyTorch's refusal
                        for _ in range(repeats.get(p, 1)):
                            update(group, p)
        return loss

    #: Whether `step` takes sparse COO gradients (nn.Embedding(sparse=True)) itself
    #: (SparseAdam); the others call `_sparse_grad`.
    _sparse_grads = False

    def _sparse_grad(self, group: dict[str, Any], g: Tensor):
        """The dense gradient to step with for a sparse COO one, or PyTorch's RuntimeError.
        Optimizers whose rule accepts sparse gradients in PyTorch (SGD, Adagrad) override it:
        their update with the dense form is the sparse one's (the coalesced entries added)."""
        name = next(c.__name__ for c in type(self).__mro__ if c.__module__.startswith("descent."))
        hint = ", please consider SparseAdam instead" if name in ("Adam", "AdamW") else ""
        name = "Adam" if name == "AdamW" else name  # AdamW is Adam's subclass in PyTorch
        raise RuntimeError(f"{name} does not support sparse gradients{hint}")

    def step(self, closure: Callable[[], Any] | None = None):
        """Update every parameter that has a gradient; parameters without one are skipped.

        Args:
            closure: optional function that re-evaluates the model and returns the loss
                (it runs with grad mode on).

        Returns:
            The closure's loss, or None.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        if len(self._layouts) != len(self.param_groups):  # param_groups edited by hand
            self._layouts = [None] * len(self.param_groups)
        for gi, group in enumerate(self.param_groups):
            betas = group.get("betas")
            if isinstance(group.get("lr"), Tensor) or (
                type(betas) is tuple and betas and isinstance(betas[0], Tensor)
            ):  # PyTorch's tensor lr / betas: the rules (and compiled kernels) get numbers
                group = _with_numbers(group)
            state_init = self._state_init(group)
            scalar_init = self._scalars_of(group)
            layout = self._layouts[gi]
            if layout is None or not layout.is_current(
                group["params"], self.state, state_init, scalar_init
            ):
                layout = _GroupLayout(
                    group["params"], self.state, state_init, scalar_init, _scalar_dtype(group)
                )
                self._layouts[gi] = layout
            for buf in layout.buffers:
                self._step_buffer(group, buf, state_init, scalar_init)
        return loss

    def _scalars_of(self, group: dict[str, Any]) -> dict[str, float]:
        """The one-number-per-parameter state and its first value: "step" (if counted) first,
        then the optimizer's own (`_scalar_state_init`), PyTorch's key order."""
        extra = self._scalar_state_init(group)
        if not self._counts_steps:
            return extra
        return {"step": 0.0, **extra} if extra else {"step": 0.0}

    def _step_buffer(
        self, group: dict[str, Any], buf: _FlatBuffer, state_init: dict, scalar_init: dict
    ) -> None:
        live = []  # positions (in buf) of the parameters that have a gradient this step
        grads = {}  # position -> the dense gradient, for a parameter listed more than once
        repeats = getattr(self, "_repeats", None)
        for i, p in enumerate(buf.params):
            g = p.grad
            if g is None:
                continue
            # (a plain Tensor of the parameter's shape, the common case, needs neither check)
            if type(g) is not Tensor or g._data.shape != p._data.shape:
                if g.is_sparse:  # PyTorch's refusal, or its dense form (SGD, Adagrad)
                    g = self._sparse_grad(group, g)
                if g.shape != p.shape:
                    raise RuntimeError(
                        f"{type(self).__name__}.step: gradient of shape {tuple(g.shape)} for a "
                        "parameter "
                        f"of shape {tuple(p.shape)}; fix whatever assigned this .grad"
                    )
            buf.grad_views[i][...] = g._data  # our own copy: the rule may overwrite it
            live.append(i)
            if repeats and p in repeats:
                grads[i] = g
        if not live:
            return
        # True where a parameter's state was created now (its first update)
        # (`layout.is_current` has just checked buf.state_dicts[i] is self.state.get(p): one
        # that is not empty needs nothing created)
        sdicts = buf.state_dicts
        new = [
            False if sdicts[i] else self._state_of(buf, i, state_init, scalar_init) for i in live
        ]
        # (PyTorch's foreach SGD takes its list kernels only when every parameter with a
        # gradient had its state already: sgd.py reads this)
        self._all_had_state = not any(new)
        # The per-parameter numbers as Python lists (cheaper than NumPy calls on a few entries)
        values = {k: arr.tolist() for k, arr in buf.scalars.items()}
        # One call for the whole buffer needs every parameter at the same step with the same
        # scalar state; otherwise the rule runs per parameter (same numbers: it is elementwise).
        whole = len(live) == len(buf.params) and all(
            v.count(v[0]) == len(v) for v in values.values()
        )
        if not self._counts_steps:  # no count kept: 1 on a first update, 2 after (`_update`)
            whole = whole and new.count(new[0]) == len(new)
        if whole:
            a = buf.whole
            a.scalars = {k: v[0] for k, v in values.items() if k != "step"}
            step = int(values["step"][0]) + 1 if self._counts_steps else 2 - new[0]
            self._run_update(group, a, step)  # the common case: one call per group
            for k, value in a.scalars.items():
                buf.scalars[k][...] = value  # rounded to the scalar dtype, as PyTorch's copy_
            if self._counts_steps:
                buf.scalars["step"] += 1
        else:
            if self._counts_steps:
                steps = [int(values["step"][i]) + 1 for i in live]
            else:
                steps = [2 - first for first in new]
            for i, step in zip(live, steps, strict=True):
                a = buf.part(i)
                a.scalars = {k: v[i] for k, v in values.items() if k != "step"}
                self._run_update(group, a, step)
                for k, value in a.scalars.items():
                    buf.scalars[k][i] = value
                if self._counts_steps:
                    buf.scalars["step"][i] = step
        for i, g in grads.items():  # listed k times in the group: k - 1 more updates
            for _ in range(repeats[buf.params[i]] - 1):
                self._step_again(group, buf, i, g, new[live.index(i)])
        for i in live:
            buf.params[i]._version += 1  # in-place change: backward through old graphs errs

    def _step_again(self, group: dict[str, Any], buf: _FlatBuffer, i: int, g, first: bool):
        """One more update of parameter i of `buf` with the same gradient g: PyTorch's
        for-loop rule visits a parameter once per listing in its group, each visit reading
        and writing the same state ("step" counts each one; SGD's momentum buffers are read
        before the loop, so a first step starts the buffer at g at every visit)."""
        buf.grad_views[i][...] = g._data
        a = buf.part(i)
        a.scalars = {k: v.tolist()[i] for k, v in buf.scalars.items() if k != "step"}
        if self._counts_steps:
            step = int(buf.scalars["step"].tolist()[i]) + 1
        else:
            step = 2 - first
        self._run_update(group, a, step)
        for k, value in a.scalars.items():
            buf.scalars[k][i] = value
        if self._counts_steps:
            buf.scalars["step"][i] = step

    def _run_update(self, group: dict[str, Any], a: _Arrays, step: int) -> None:
        """`_update`, or for bfloat16 buffers `_update` on float32 copies with `a.round` set,
        the results written back rounded (see the module docstring)."""
        if a.param.dtype.kind != "V":
            self._update(group, a, step)
            return
        bf16, f32 = a.param.dtype, np.dtype(np.float32)

        def round_(x) -> None:
            x[...] = x.astype(bf16).astype(f32)

        # PyTorch's add(x, y, alpha) casts alpha to bfloat16 (addcdiv's value stays float32)
        round_.alpha = lambda c: float(np.asarray(c, f32).astype(bf16).astype(f32))

        up = _Arrays(a.param.astype(f32), a.grad.astype(f32), a.tmp.astype(f32),
                     {k: v.astype(f32) if getattr(v, "dtype", None) == bf16 else v
                      for k, v in a.state.items()}, round_)  # fmt: skip
        up.scalars, up.scalar_type = a.scalars, a.scalar_type
        self._update(group, up, step)
        a.param[...] = up.param.astype(bf16)
        for k, v in a.state.items():
            if getattr(v, "dtype", None) == bf16:
                v[...] = up.state[k].astype(bf16)
        a.scalars = up.scalars

    def _state_of(self, buf: _FlatBuffer, i: int, state_init: dict, scalar_init: dict) -> bool:
        """Create the state of parameter i of `buf` (as views) on its first update, in
        PyTorch's key order; True when it was created now. An optimizer with nothing to keep
        (SGD without momentum) keeps no state, as PyTorch's."""
        p = buf.params[i]
        st = self.state.get(p)
        if st:
            return False
        sviews = buf.state_views[i]
        if not sviews and not buf.scalar_views[i]:
            return True
        if st is None:
            st = self.state[p]
        for name, view in buf.scalar_views[i].items():
            view[...] = scalar_init[name]  # the start value (also after a user's state.clear())
            st[name] = Tensor._wrap(view)
        lo, hi = buf.bounds[i]
        for name, view in sviews.items():
            buf.whole.state[name][lo:hi] = state_init[name]  # the flat (re, im) entries
            st[name] = Tensor._wrap(view)
        buf.state_dicts[i] = st
        return True

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients: to None (default; frees memory) or to zeros in place (the same
        gradient object, as PyTorch's: nn.module.zero_grad_, which Module.zero_grad uses)."""
        if set_to_none:
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.grad = None
            return
        from ..nn.module import zero_grad_  # noqa: PLC0415 - nn loads after optim

        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    zero_grad_(p.grad)

    # -- state_dict ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A snapshot of the optimizer in PyTorch's layout.

        Returns:
            {"state": {index: {"step": Tensor, name: Tensor, ...}}, "param_groups": [{option:
            value, ..., "params": [index, ...]}]}, where index numbers the parameters across
            groups in order ("step" and other per-parameter numbers are 0-d Tensors, as
            PyTorch's). Each parameter's entry is the optimizer's own state dict and its
            Tensors the optimizer's own state tensors, not copies, as in PyTorch: later
            steps change them (`copy.deepcopy(opt.state_dict())` keeps a
            snapshot, as PyTorch's docs advise); the rest is plain numbers, bools, tuples
            and lists (JSON-able).
        """
        index: dict[Tensor, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: _plain(v) for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index.setdefault(p, len(index))
                packed["params"].append(index[p])
            groups.append(packed)
        state = {}
        for p, st in self.state.items():
            if p in index:  # an empty entry too (made by reading opt.state[p]), as PyTorch's
                if all(isinstance(v, Tensor) or _plain(v) is v for v in st.values()):
                    state[index[p]] = st  # the optimizer's own dict, as PyTorch's
                else:
                    state[index[p]] = {
                        k: v if isinstance(v, Tensor) else _plain(v) for k, v in st.items()
                    }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a `state_dict()` (also one whose keys and tensors went through JSON/NumPy).

        Hyperparameters come from the saved groups; state arrays are cast to each parameter's
        dtype and device. A state Tensor that already has the parameter's dtype and device (and
        a 0-d "step" of the scalar dtype) is kept, not copied, as PyTorch's `value.to(...)`
        returns it: the loaded dict's tensors then follow the optimizer's steps, as in
        PyTorch. Integer-like string keys ("0") are accepted for the state indices.
        "step" and the other per-parameter numbers may be 0-d tensors (descent's or PyTorch's),
        NumPy scalars or plain numbers (an older descent's int step, JSON); they become 0-d
        float32 Tensors (float64 when the default dtype is). An older descent's "step" for
        SGD or Muon, which PyTorch's do not keep, is dropped.

        Raises:
            ValueError: the number of groups, a group's size, or a state array's shape differs.
        """
        name = type(self).__name__
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: the state dict has {len(saved_groups)} parameter "
                f"groups, this optimizer has {len(self.param_groups)}"
            )
        by_index: dict[int, Tensor] = {}
        new_groups = []
        for gi, (saved, group) in enumerate(zip(saved_groups, self.param_groups, strict=True)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: parameter group {gi} has {len(saved['params'])} "
                    f"parameters in the state dict and {len(group['params'])} here"
                )
            for idx, p in zip(saved["params"], group["params"], strict=True):
                by_index[int(idx)] = p
            new = {k: self._restore(k, v) for k, v in saved.items() if k != "params"}
            for key, value in self.defaults.items():
                new.setdefault(key, value)
            self._check(new)
            new["params"] = group["params"]
            if "param_names" in group and "param_names" not in new:
                new["param_names"] = group["param_names"]  # PyTorch: the names stay
            new_groups.append(new)
        group_of = {p: g for g in new_groups for p in g["params"]}
        new_state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        torch_rule = not _steps_with_descents_rule(self)
        for idx, st in state_dict["state"].items():
            p = by_index.get(int(idx))
            if p is None:
                raise ValueError(f"{name}.load_state_dict: state for unknown parameter {idx}")
            if torch_rule:  # a user's optimizer (its own step()): PyTorch's policy
                new_state[p] = {k: _cast_like_torch(p, k, v) for k, v in st.items()}
                continue
            numbers = self._scalars_of(group_of[p])  # kept as 0-d Tensors, as PyTorch's
            loaded: dict[str, Any] = {}
            for k, v in st.items():
                if k == "step" and not self._counts_steps:
                    continue  # an older descent's count for SGD/Muon (PyTorch's keep none)
                if k in numbers:
                    try:
                        num = _number(v)
                    except TypeError as e:
                        raise TypeError(
                            f"{name}.load_state_dict: state {k!r} of parameter {idx}: {e}"
                        ) from None
                    sdt = _scalar_dtype(group_of[p])
                    if _keeps(v, sdt, None) and v.ndim == 0:
                        loaded[k] = v  # PyTorch keeps "step" as it is
                    else:
                        loaded[k] = Tensor._wrap(np.array(num, sdt))
                elif _is_array(v):
                    arr = _like(v, p._data)
                    if not self._state_shape_ok(k, tuple(arr.shape), tuple(p.shape)):
                        raise ValueError(
                            f"{name}.load_state_dict: state {k!r} of parameter {idx} has shape "
                            f"{tuple(arr.shape)}, the parameter has shape {tuple(p.shape)}"
                        )
                    if _keeps(v, p._data.dtype, p._data):
                        loaded[k] = v  # the same tensor, as PyTorch's value.to(dtype, device)
                    else:
                        loaded[k] = Tensor._wrap(arr.copy())
                elif hasattr(v, "item") and getattr(v, "ndim", None) == 0:
                    loaded[k] = v.item()  # another 0-d tensor: its number
                else:
                    loaded[k] = v
            if loaded and "step" in numbers and "step" not in loaded:
                # state without a count (e.g. PyTorch's SGD's, loaded into another optimizer)
                one = Tensor._wrap(np.array(1.0, _scalar_dtype(group_of[p])))
                loaded = {"step": one, **loaded}
            _reorder(loaded, numbers)
            new_state[p] = loaded  # an empty entry stays one, as in PyTorch
        self.param_groups = new_groups
        self.state = new_state
        self._layouts = [None] * len(new_groups)

    def _restore(self, key: str, value):
        """Undo what JSON does to group options: a list back to a tuple where the option is a
        tuple by default (betas, etas, step_sizes, Adafactor's eps)."""
        if isinstance(value, list) and isinstance(self.defaults.get(key), tuple):
            return tuple(value)
        return value

    def __getstate__(self) -> dict[str, Any]:
        # copy.deepcopy / pickle: the copy lays out its own buffers at its first step (copied
        # views would no longer be views of a copied buffer).
        state = dict(self.__dict__)
        state["_layouts"] = [None] * len(self.param_groups)
        return state

    def __repr__(self) -> str:
        # PyTorch's layout: each group opens with a newline, so groups are parted by a blank
        # line and an optimizer without groups prints "Name ()".
        text = f"{type(self).__name__} ("
        for i, group in enumerate(self.param_groups):
            text += f"\nParameter Group {i}\n"
            for key in sorted(group):
                if key != "params":
                    text += f"    {key}: {group[key]}\n"
        return text + ")"


wrap_class(Optimizer)


def _steps_with_descents_rule(opt) -> bool:
    """Whether `opt.step` is descent's (the flat-buffer step of Optimizer, or LBFGS's, ...),
    whose state layout load_state_dict normalises, rather than a user's own step() written
    for PyTorch's API (a custom optimizer), whose state is loaded as PyTorch loads it."""
    for cls in type(opt).__mro__:
        if "step" in cls.__dict__:
            return cls.__module__.startswith("descent.")
    return True


def _cast_like_torch(p: Tensor, key, value):
    """A loaded state value of a user's optimizer, as PyTorch's Optimizer.load_state_dict
    treats it (`_process_value_according_to_param_policy` through `_cast`): "step" as it is;
    another Tensor to the parameter's dtype (a floating parameter's; a complex one keeps its
    own) and device, the same Tensor when it has them; dicts, lists and tuples element by
    element; anything else (an int step, a float, None) as it is. No shape check and no
    added "step": the state is the user's."""
    if isinstance(value, Tensor):
        if key == "step":
            return value
        dtype = p._data.dtype if p._data.dtype.kind in "fV" else value._data.dtype
        if _keeps(value, dtype, p._data):
            return value
        arr = backend.to_device(value._data, backend.device_of(p._data))
        return Tensor._wrap(arr.astype(dtype, copy=True))
    if isinstance(value, dict):
        return {k: _cast_like_torch(p, k, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_like_torch(p, key, v) for v in value)
    return value


def _with_numbers(group: dict[str, Any]) -> dict[str, Any]:
    """A shallow copy of `group` whose "lr" and "betas", where they are 1-element Tensors
    (PyTorch's tensor hyperparameters), are Python floats; the group itself keeps the
    Tensors, so changing one in place between steps (`lr.fill_(...)`) takes effect."""
    out = dict(group)
    if isinstance(out.get("lr"), Tensor):
        out["lr"] = float(out["lr"].item())
    if isinstance(out.get("betas"), tuple):
        out["betas"] = tuple(float(b.item()) if isinstance(b, Tensor) else b for b in out["betas"])
    return out


def _keeps(value, dtype, ref) -> bool:
    """Whether load_state_dict keeps `value` itself as state (PyTorch's `value.to(dtype,
    device)` returns the same tensor): a plain descent Tensor of `dtype` on `ref`'s device
    (the CPU for the per-parameter numbers, `ref` None), outside any graph and no view of
    another tensor (the step re-points its memory into the flat buffers, flat_buffer.py)."""
    if type(value) is not Tensor or value.requires_grad or value._node is not None:
        return False
    if getattr(value, "_view_base", None) is not None or value._data.dtype != dtype:
        return False
    if ref is None:
        return isinstance(value._data, np.ndarray)
    return backend.device_of(value._data) == backend.device_of(ref)


def _is_array(value) -> bool:
    """A state array: a Tensor, a NumPy/CuPy array, or another array-like (not a number)."""
    if isinstance(value, (Tensor, np.ndarray)) or backend.is_cupy_array(value):
        return True
    return hasattr(value, "__array__") and getattr(value, "ndim", 0) > 0


def _number(value) -> float:
    """A per-parameter number ("step", "mu_product") from a 0-d tensor of any library, a
    NumPy scalar or a plain number (JSON)."""
    if isinstance(value, Tensor):
        value = value._data
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"expected a number or a 0-d tensor, got {type(value).__name__}")
    return float(value)


def _plain(value):
    """Tuples stay tuples, NumPy scalars become Python numbers (JSON-able group options)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


# -- helpers shared by the update rules -----------------------------------------------------------
def _add_alpha(a: _Arrays, alpha: float) -> float:
    """The `alpha` of PyTorch's `add_(src, alpha=...)` as it computes with it: rounded to
    bfloat16 for bfloat16 parameters (`a.round` set), unchanged otherwise."""
    return alpha if a.round is None else a.round.alpha(alpha)


def _add_scaled(xp, dst, alpha: float, src, tmp) -> None:
    """dst += alpha * src, in place (PyTorch's `dst.add_(src, alpha=alpha)`); may use tmp."""
    if alpha == 1:
        dst += src
    else:
        xp.multiply(src, alpha, out=tmp)
        dst += tmp


def _lerp(xp, start, end, weight: float, tmp) -> None:
    """start <- start + weight * (end - start), in place, rounded as PyTorch's `lerp_`."""
    xp.subtract(end, start, out=tmp)
    if abs(weight) < 0.5:
        tmp *= weight
        start += tmp
    else:  # PyTorch's second form, exact at weight = 1
        tmp *= 1 - weight
        xp.subtract(end, tmp, out=start)


def _check_range(opt: str, group: dict, key: str, low: float = 0.0, high: float = math.inf) -> None:
    """ValueError unless low <= group[key] <= high. A 1-element Tensor counts as its number
    (PyTorch's tensor lr: `lr=torch.tensor(1e-3)`)."""
    value = group[key]
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"{opt}: Tensor {key} must be 1-element, got shape {tuple(value.shape)}"
            )
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= value <= high:
        where = f"in [{low}, {high}]" if high != math.inf else f">= {low}"
        raise ValueError(f"{opt}: invalid {key} {value!r}: it must be a number {where}")


def _impl_options(
    opt: str,
    foreach: bool | None = None,
    fused: bool | None = None,
    capturable: bool = False,
    differentiable: bool = False,
    *,
    omit: tuple = (),
) -> dict[str, Any]:
    """PyTorch's implementation switches, accepted so that PyTorch code runs unchanged.

    `foreach` and `fused` choose among PyTorch's kernels for the same rule; descent always
    runs its one rule over a flat buffer per group (see the module docstring), so both are
    recorded in the group and change nothing. `capturable` concerns CUDA graphs (recorded;
    no effect). `differentiable=True` (autograd through the step itself) is not implemented
    and raises rather than silently giving a non-differentiable step.
    """
    if differentiable:
        raise NotImplementedError(
            f"{opt}: differentiable=True (backpropagating through the optimizer step) is not "
            "supported by descent; leave it False"
        )
    for key, value in (("foreach", foreach), ("fused", fused)):
        if value is not None and not isinstance(value, bool):
            raise TypeError(f"{opt}: {key} must be None, True or False, got {value!r}")
    out = dict(foreach=foreach, fused=fused, capturable=bool(capturable), differentiable=False)
    for key in omit:  # keys PyTorch's optimizer of this name does not have in its groups
        del out[key]
    return out


def _check_betas(opt: str, group: dict) -> None:
    betas = group["betas"]
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"{opt}: betas must be a pair (beta1, beta2), got {betas!r}")
    for i, b in enumerate(betas):
        if not 0.0 <= b < 1.0:
            raise ValueError(f"{opt}: invalid beta parameter at index {i}: {b!r}; need 0 <= b < 1")
