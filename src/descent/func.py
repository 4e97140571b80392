"""torch.func: grad, grad_and_value, vjp, jvp, jacrev, jacfwd, hessian, vmap, functional_call.

PyTorch's composable function transforms, with their signatures, pytrees and errors, over
descent's reverse-mode engine:

* Arguments may be pytrees (tuples, lists, dicts) of Tensors: `grad(loss)(params_dict, x)`
  returns a dict of gradients shaped like `params_dict`. `argnums` picks the differentiated
  positional arguments (an int, or a tuple giving a tuple of results).
* Transforms nest (`jacrev(jacrev(f))`, `grad(grad(f))`, `vmap(grad(f))`). Like functorch's
  levels, a counter says when a transform runs inside another one; then the inner backward
  pass is recorded (create_graph) so the outer transform can differentiate it. At the top
  level results are detached, unless they depend on tensors that require grad outside the
  transform (an argument that requires grad, or a tensor the function captures, such as a
  model's parameters): then they keep that graph, so `torch.func.grad(D)(x)` can feed a
  gradient penalty whose `backward()` reaches D's parameters, as in PyTorch.
* An output that does not depend on an input gives zeros for it.
* Forward mode (`jvp`, `jacfwd`) is computed by the double-backward trick (as descent's dual
  tensors, descent.autograd.forward_ad): u -> u^T J is linear in u, so d<u^T J, v>/du = J v.
  Every op on the path needs a differentiable backward; a fused kernel without one raises
  under create_graph naming the op.
* `hessian` is computed as jacrev(jacrev(f)) (PyTorch: jacfwd(jacrev(f)); the same values).
* `vmap` is a loop over the mapped dimension (see descent.func_vmap): PyTorch's semantics,
  not its speed.

Input stand-ins come from descent.functional (`_enter`), gradients from descent.autograd.grad
through the helpers of descent.autograd_functional.
"""

from __future__ import annotations

import contextlib as _contextlib
import functools as _functools
from collections.abc import Callable as _Callable

from . import autograd as _autograd
from .autograd_custom_jvp import forward_mode_pass as _forward_mode_pass
from .autograd_functional import _autograd_grad, _jacobian_rows
from .creation import ones_like as _ones_like
from .creation import zeros as _zeros
from .creation import zeros_like as _zeros_like
from .func_vmap import (
    functional_call,
    replace_all_batch_norm_modules_,
    stack_module_state,
    vmap,
)
from .func_vmap import (
    tree_flatten as _tree_flatten,
)
from .func_vmap import (
    tree_unflatten as _tree_unflatten,
)
from .functional import _enter
from .ops.shape import stack as _stack
from .tensor import Tensor as _Tensor

__all__ = [
    "functional_call",
    "functionalize",
    "grad",
    "grad_and_value",
    "hessian",
    "jacfwd",
    "jacrev",
    "jvp",
    "linearize",
    "replace_all_batch_norm_modules_",
    "stack_module_state",
    "vjp",
    "vmap",
]

# How many differentiating transforms are running their function right now (functorch's
# "levels"): inside one, every transform records its backward pass for the outer one.
_depth = [0]


@_contextlib.contextmanager
def _level():
    _depth[0] += 1
    try:
        yield
    finally:
        _depth[0] -= 1


# ---------------------------------------------------------------------------------------------
# argnums and the forward run


def _wrap_argnum(i, n: int) -> int:
    if not isinstance(i, int) or isinstance(i, bool):
        raise RuntimeError(f"argnum must be int, got: {type(i)}")
    if -n <= i < n:
        return i % n
    raise RuntimeError(f"Got argnum={i}, but only {n} positional inputs")


def _argnums(argnums, n: int):
    """PyTorch's argnums rules: an int or a non-empty tuple of distinct ints, negatives wrap."""
    if isinstance(argnums, int) and not isinstance(argnums, bool):
        return _wrap_argnum(argnums, n)
    if not isinstance(argnums, tuple):
        raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(argnums)}")
    nums = tuple(_wrap_argnum(i, n) for i in argnums)
    if not nums:
        raise RuntimeError("argnums must be non-empty")
    if len(set(nums)) != len(nums):
        raise RuntimeError(f"argnums elements must be unique, got {argnums}")
    return nums


class _Run:
    """One call of the function with differentiable stand-ins for the chosen arguments' leaves:
    the outputs, the aux, the stand-ins and whether results keep a graph (`graph`)."""

    def __init__(self, func, args, kwargs, argnums, has_aux, api, check=None):
        args = tuple(args)
        if argnums is None:  # vjp, jvp: every positional argument
            diff, nums = args, None
        else:
            nums = _argnums(argnums, len(args))
            diff = args[nums] if isinstance(nums, int) else tuple(args[i] for i in nums)
        leaves, self.in_spec = _tree_flatten(diff)
        outer = _depth[0] > 0
        own = []
        for x in leaves:
            if not isinstance(x, _Tensor):
                raise ValueError(f"Thing passed to transform API must be Tensor, got {type(x)}")
            if not x.is_floating_point():
                raise RuntimeError(
                    f"{api}: only Tensors of floating point dtype can require gradients, got an "
                    f"input of dtype {x.dtype}; convert it (x.float()) or leave it out of argnums"
                )
            t, nested = _enter(x)
            outer |= nested
            own.append(t)
        self.own = own
        stand_ins = _tree_unflatten(own, self.in_spec)
        if nums is None:
            new_args = stand_ins
        elif isinstance(nums, int):
            new_args = args[:nums] + (stand_ins,) + args[nums + 1 :]
        else:
            new_args = list(args)
            for i, s in zip(nums, stand_ins):
                new_args[i] = s
        grad_mode = _autograd._is_grad_enabled()
        with _level(), _autograd.enable_grad():
            out = func(*new_args, **kwargs)
        self.aux = None
        if has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise RuntimeError(
                    f"{api}: output of function f should be a tuple: (output, aux) if has_aux "
                    "is True"
                )
            out, self.aux = out
        if check is not None:
            check(out)
        self.flat_out, self.out_spec = _tree_flatten(out)
        for o in self.flat_out:
            if not isinstance(o, _Tensor):
                raise RuntimeError(
                    f"{api}: expected f(*primals) to return only tensors, got unsupported type "
                    f"{type(o)}"
                )
        if not self.flat_out:
            raise RuntimeError(
                f"{api}: Expected f to be a function that has non-empty output (got output = {out})"
            )
        # Keep a graph when an outer transform or an outer tensor needs it (module docstring).
        self.graph = grad_mode and (outer or _reaches_outside(self.flat_out, own))
        if has_aux:  # PyTorch: aux is a pytree of Tensors, detached at the top level
            flat_aux, aux_spec = _tree_flatten(self.aux)
            for a in flat_aux:
                if not isinstance(a, _Tensor):
                    raise RuntimeError(f"Expected tensors, got unsupported type {type(a)}")
            if not self.graph:
                self.aux = _tree_unflatten([a.detach() for a in flat_aux], aux_spec)

    def outputs(self):
        """The function's output, detached unless results keep a graph."""
        flat = self.flat_out if self.graph else [o.detach() for o in self.flat_out]
        return _tree_unflatten(flat, self.out_spec)

    def vjp(self, cotangents, create_graph: bool, retain_graph: bool = True) -> list:
        """One gradient per stand-in (zeros where the outputs do not depend on it)."""
        got = _autograd_grad(self.flat_out, self.own, cotangents, create_graph=create_graph,
                             retain_graph=retain_graph)  # fmt: skip
        return [_zeros_like(t) if g is None else g for g, t in zip(got, self.own)]


def _reaches_outside(outputs, own) -> bool:
    """Whether the graph of `outputs` reaches a tensor that requires grad other than the
    stand-ins (one the function captured): then results keep their graph. An explicit stack
    (never recursion) over the recorded nodes, each visited once."""
    own_ids = {id(t) for t in own}
    _stack, seen = [], set()
    for o in outputs:
        if o._node is not None:
            _stack.append(o._node)
        elif o.requires_grad and id(o) not in own_ids:
            return True
    while _stack:
        node = _stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for p in node.parents:
            if p is None:
                continue
            if isinstance(p, _autograd.Function):
                _stack.append(p)
            elif id(p) not in own_ids:
                return True
    return False


def _maybe_detach(tensors: list, graph: bool) -> list:
    return tensors if graph else [t.detach() for t in tensors]


# ---------------------------------------------------------------------------------------------
# grad, grad_and_value, vjp


def grad_and_value(func: _Callable, argnums=0, has_aux: bool = False) -> _Callable:
    """func -> (args -> (gradient, value)); with has_aux, (gradient, (value, aux)).

    func must return a 0-d Tensor (or (0-d Tensor, aux) with has_aux). The gradient has the
    structure of the argument at `argnums` (a tuple of such for a tuple of argnums).
    """

    def check(out):
        where = "grad_and_value(f)(*args): Expected f(*args) to return"
        if not isinstance(out, _Tensor):
            raise RuntimeError(f"{where} a Tensor, got {type(out)}")
        if out.ndim != 0:
            raise RuntimeError(
                f"{where} a scalar Tensor, got tensor with {out.ndim} dims. Maybe you wanted to "
                "use the vjp or jacrev APIs instead?"
            )

    def wrapper(*args, **kwargs):
        run = _Run(func, args, kwargs, argnums, has_aux, "grad_and_value(f)(*args)", check)
        # One backward: the saved values can go, unless an outer transform differentiates it.
        grads = _maybe_detach(run.vjp(None, run.graph, retain_graph=run.graph), run.graph)
        g = _tree_unflatten(grads, run.in_spec)
        value = run.outputs()
        return (g, (value, run.aux)) if has_aux else (g, value)

    return wrapper


def grad(func: _Callable, argnums=0, has_aux: bool = False) -> _Callable:
    """func -> (args -> d func / d args[argnums]) (torch.func.grad); with has_aux,
    (gradient, aux). func must return a 0-d Tensor: others raise PyTorch's RuntimeError."""
    gv = grad_and_value(func, argnums, has_aux)

    def wrapper(*args, **kwargs):
        g, value = gv(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return wrapper


def vjp(func: _Callable, *primals, has_aux: bool = False):
    """(func(*primals), vjp_fn[, aux]) where vjp_fn(cotangents) = cotangents^T J, a tuple with
    one entry per primal (each shaped like it). The cotangents have the structure of the
    output. vjp_fn(ct, retain_graph=True, create_graph=None) may be called several times."""
    run = _Run(func, primals, {}, None, has_aux, "vjp(f, *primals)")
    for o in run.flat_out:
        if not o.is_floating_point():
            raise RuntimeError(
                "vjp(f, ...): All outputs of f must be floating-point or complex Tensors, got "
                f"Tensor with dtype {o.dtype}"
            )

    def vjp_fn(cotangents, retain_graph: bool = True, create_graph: bool | None = None):
        flat, spec = _tree_flatten(cotangents)
        if spec != run.out_spec:
            raise RuntimeError(
                "Expected pytree structure of cotangents to be the same as pytree structure of "
                f"outputs to the function. cotangents: {spec}, primal output: {run.out_spec}"
            )
        cg = run.graph if create_graph is None else create_graph
        grads = _maybe_detach(run.vjp(flat, cg, retain_graph), cg)
        return _tree_unflatten(grads, run.in_spec)

    return (run.outputs(), vjp_fn, run.aux) if has_aux else (run.outputs(), vjp_fn)


# ---------------------------------------------------------------------------------------------
# jvp (forward mode by the double-backward trick)


class _Linearized:
    """After one run: J v for any tangent v, by differentiating u -> u^T J with respect to u."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        with _autograd.enable_grad():
            # u's value does not matter (the vjp is linear in it): ones, never inf or nan, and
            # not zeros: some backward formulas branch on a zero gradient (xlogy's
            # PyTorch rule; eigh, svd skip an unused output), which would cut the dependence.
            # An integer output (sort's indices) has no u: its tangent is zeros, as PyTorch's.
            self.us = [_ones_like(o, requires_grad=True) if o.dtype.is_floating_point
                       or o.dtype.is_complex else None for o in run.flat_out]  # fmt: skip
            # a custom Function's jvp staticmethod gives its tangent (autograd_custom_jvp)
            with _forward_mode_pass():
                self.gs = _autograd_grad(run.flat_out, run.own, self.us, create_graph=True)

    def jvp(self, tangents: list, only: int | None = None) -> list:
        """J v per output (zeros where an output does not depend on the inputs); `only`: the
        tangent is zero except for stand-in `only` (jacfwd's basis vectors)."""
        gs, vs = self.gs, tangents
        if only is not None:
            gs, vs = (self.gs[only],), (tangents[only],)
        us = [u for u in self.us if u is not None]
        got = iter(_autograd_grad(gs, us, vs, create_graph=self.run.graph, retain_graph=True))
        got = [None if u is None else next(got) for u in self.us]
        res = [_zeros_like(o) if g is None else g for g, o in zip(got, self.run.flat_out)]
        return _maybe_detach(res, self.run.graph)


def jvp(func: _Callable, primals: tuple, tangents: tuple, *, strict: bool = False,
        has_aux: bool = False):  # fmt: skip
    """(func(*primals), J tangents[, aux]) (torch.func.jvp): primals is a tuple of arguments
    (pytrees of Tensors), tangents has the same structure and shapes; the output tangent has
    the structure of the output."""
    api = "jvp(f, primals, tangents)"
    if not isinstance(primals, tuple):
        raise RuntimeError(
            f"{api}: Expected primals to be a tuple. E.g. it should be valid to call f(*primals)."
        )
    flat_p, p_spec = _tree_flatten(primals)
    flat_t, t_spec = _tree_flatten(tangents)
    if p_spec != t_spec:
        raise RuntimeError(
            f"{api}: Expected primals and tangents to have the same python structure. For "
            "example, if primals is a tuple of 3 tensors, tangents also must be. Got primals "
            f"with structure {p_spec} and tangents with structure {t_spec}"
        )
    for what, flat in (("primals", flat_p), ("tangents", flat_t)):
        if not flat:
            raise RuntimeError(f"{api}: Expected {what} to contain at least one Tensor.")
        for x in flat:
            if not isinstance(x, _Tensor):
                raise RuntimeError(f"{api}: Expected {what} to only contain Tensors, got {type(x)}")
    for p, t in zip(flat_p, flat_t):
        if tuple(p.shape) != tuple(t.shape):
            raise RuntimeError(
                f"{api}: a tangent has shape {tuple(t.shape)} but its primal has shape "
                f"{tuple(p.shape)}; every tangent must have its primal's shape"
            )
    run = _Run(func, primals, {}, None, has_aux, api)
    out_tangents = _Linearized(run).jvp(flat_t)
    res = (run.outputs(), _tree_unflatten(out_tangents, run.out_spec))
    return res + (run.aux,) if has_aux else res


def linearize(func: _Callable, *primals):
    """(func(*primals), jvp_fn) with jvp_fn(*tangents) = J tangents (torch.func.linearize):
    func runs once, and every jvp_fn call is one more backward pass (the double-backward
    trick), so evaluating J v for many v reuses the forward work."""
    run = _Run(func, primals, {}, None, False, "linearize")
    lin = _Linearized(run)
    flat_p, _ = _tree_flatten(primals)

    def jvp_fn(*tangents):
        flat_t, spec = _tree_flatten(tangents)
        if spec != run.in_spec:
            raise RuntimeError(
                f"Expected the tangents {spec} to have the same argspec as the primals "
                f"{run.in_spec}"
            )
        for i, (t, p) in enumerate(zip(flat_t, flat_p)):
            if tuple(t.shape) != tuple(p.shape) or t.dtype != p.dtype:
                raise RuntimeError(
                    f"tangent:{i} with shape {tuple(t.shape)} and dtype {t.dtype} in flattened "
                    f"pytree doesn't match the shape {tuple(p.shape)} and dtype {p.dtype} of "
                    "the corresponding primal."
                )
        return _tree_unflatten(lin.jvp(flat_t), run.out_spec)

    return run.outputs(), jvp_fn


# ---------------------------------------------------------------------------------------------
# Jacobians and the Hessian


def _jacobian_tree(run: _Run, per_output: list):
    """Arrange J[output leaf][input leaf] as PyTorch does: the output's structure, each leaf
    holding the differentiated arguments' structure (unwrapped for an int argnums)."""
    per = [_tree_unflatten(list(js), run.in_spec) for js in per_output]
    return _tree_unflatten(per, run.out_spec)


def jacrev(func: _Callable, argnums=0, *, has_aux: bool = False, chunk_size: int | None = None,
           _preallocate_and_copy: bool = False) -> _Callable:  # fmt: skip
    """func -> (args -> Jacobian) by reverse mode: one backward pass per output element.
    J[o][i] has shape output_o.shape + input_i.shape, arranged as `_jacobian_tree` says."""
    if not (chunk_size is None or chunk_size > 0):
        raise ValueError("jacrev: `chunk_size` should be greater than 0.")

    def wrapper(*args):
        run = _Run(func, args, {}, argnums, has_aux, "jacrev")
        per_output = [
            _maybe_detach(list(_jacobian_rows(o, i, run.own, run.graph, False)), run.graph)
            for i, o in enumerate(run.flat_out)
        ]
        jac = _jacobian_tree(run, per_output)
        return (jac, run.aux) if has_aux else jac

    return wrapper


def jacfwd(func: _Callable, argnums=0, has_aux: bool = False, *,
           randomness: str = "error") -> _Callable:  # fmt: skip
    """func -> (args -> Jacobian) column by column: one J v per input element (forward mode by
    the double-backward trick; the function itself runs once, so `randomness` is only
    validated: no draw repeats). Same layout as `jacrev`."""
    if randomness not in ("error", "different", "same"):
        raise RuntimeError(
            "Only allowed values for randomness are 'error', 'different', or 'same'. Got "
            f"{randomness}"
        )

    def wrapper(*args):
        run = _Run(func, args, {}, argnums, has_aux, "jacfwd")
        lin = _Linearized(run)
        cols: list[list[list]] = [[[] for _ in run.own] for _ in run.flat_out]  # [out][in][k]
        for j, p in enumerate(run.own):
            basis = _zeros_like(p).reshape(-1)
            for k in range(p.numel()):
                e = basis.clone()
                e._data[k] = 1  # a fresh array
                tangents = [None] * len(run.own)
                tangents[j] = e.reshape(p.shape)
                for o, jv in enumerate(lin.jvp(tangents, only=j)):
                    cols[o][j].append(jv)
        per_output = []
        for o, out in enumerate(run.flat_out):
            row = []
            for j, p in enumerate(run.own):
                shape = tuple(out.shape) + tuple(p.shape)
                if p.numel() == 0:
                    row.append(_zeros(shape, dtype=out.dtype))
                    continue
                stacked = _stack(cols[o][j], 0)  # (p.numel(), *out.shape)
                row.append(stacked.movedim(0, -1).reshape(shape))
            per_output.append(row)
        jac = _jacobian_tree(run, per_output)
        return (jac, run.aux) if has_aux else jac

    return wrapper


def hessian(func: _Callable, argnums=0) -> _Callable:
    """func -> (args -> d^2 func / d args^2) of a scalar func: H has shape x.shape + x.shape
    (nested per argument for a tuple of argnums). Computed as jacrev(jacrev(func))."""
    return jacrev(jacrev(func, argnums), argnums)


_FUNCTIONALIZE_MODES = ("mutations", "mutations_and_views")


def functionalize(func: _Callable, *, remove: str = "mutations") -> _Callable:
    """torch.func.functionalize: `func` with the same semantics and no aliasing of its inputs
    by its outputs. PyTorch rewrites the program without in-place ops for its compilers;
    descent runs eagerly, so the in-place ops run as written (their effect on the inputs is
    the semantics PyTorch keeps, by copying back at the end) and every output that shares
    memory with an input is returned as a copy, as PyTorch's are (with either `remove`)."""
    if remove not in _FUNCTIONALIZE_MODES:
        raise RuntimeError(
            f"functionalize(f, remove='mutations'): received invalid argument for remove="
            f"{remove}. Valid options are:\n     remove='mutations': all inplace and out= "
            "operators will be removed from the program, and replaced with their out-of-place "
            "equivalents.\n     remove='mutations_and_views': In addition to the above, all "
            "aliasing operators {view} will be replaced with their non-aliasing counterparts, "
            "{view}_copy.\n"
        )
    import numpy as np  # noqa: PLC0415

    from .ops.elementwise import clone  # noqa: PLC0415
    from .utils._pytree import tree_flatten, tree_map  # noqa: PLC0415

    def inner(*args, **kwargs):
        inputs = [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, _Tensor)]
        out = func(*args, **kwargs)

        def fresh(o):
            if isinstance(o, _Tensor) and any(np.shares_memory(o._data, i._data)
                                             for i in inputs):  # fmt: skip
                return clone(o)
            return o

        return tree_map(fresh, out)

    _functools.update_wrapper(inner, func)
    return inner
