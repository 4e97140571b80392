"""torch.func's vmap and functional_call, and the small pytree helpers descent.func uses.

vmap is a LOOP. PyTorch's vmap runs the function once on "batched tensors" whose ops know a
batching rule; descent has no batching rules, so `vmap(f)(x)` calls `f` once per slice
`x[i]` along the mapped dimension and stacks the results. The semantics are PyTorch's (the
same values, in_dims/out_dims, nesting, pytrees of tuples, lists and dicts, the same errors for
malformed in_dims); the speed is a Python loop's, not a vectorized kernel's. Gradients flow
through it (slicing and stacking are differentiable ops), so `vmap` composes with `grad`,
`jacrev` and `backward()`: `vmap(grad(loss), in_dims=(None, 0, 0))(params, xs, ys)` gives
per-sample gradients.

functional_call runs a module with given tensors in place of its parameters and buffers,
restoring them afterwards (also when the call raises), as `torch.func.functional_call` does.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from .creation import default_generator
from .hooks import add_op_hook
from .ops.shape import stack
from .tensor import Tensor

__all__ = ["vmap", "functional_call", "stack_module_state", "tree_flatten", "tree_unflatten"]


# ---------------------------------------------------------------------------------------------
# Pytrees: tuples (namedtuples too), lists and dicts are containers; anything else is a leaf
# (PyTorch's pytree also treats None as a leaf in vmap's outputs).

_LEAF = None  # the spec of a leaf


def tree_flatten(tree) -> tuple[list, Any]:
    """(leaves in order, spec): spec is None for a leaf, else (type, keys, child specs)."""
    leaves: list = []
    return leaves, _flatten_into(tree, leaves)


def _flatten_into(tree, leaves: list):
    if isinstance(tree, (tuple, list)):
        return (type(tree), None, [_flatten_into(x, leaves) for x in tree])
    if isinstance(tree, dict):
        keys = list(tree)
        return (type(tree), keys, [_flatten_into(tree[k], leaves) for k in keys])
    leaves.append(tree)
    return _LEAF


def tree_unflatten(leaves, spec):
    """The inverse of `tree_flatten`: rebuild the containers of `spec` around `leaves`."""
    it = iter(leaves)
    return _build(it, spec)


def _build(it, spec):
    if spec is _LEAF:
        return next(it)
    kind, keys, children = spec
    items = [_build(it, c) for c in children]
    if keys is not None:
        return kind(zip(keys, items))
    if kind is not tuple and kind is not list and hasattr(kind, "_fields"):  # a namedtuple
        return kind(*items)
    return kind(items)


def _broadcast_prefix(prefix, spec) -> list | None:
    """Flatten `prefix` (in_dims/out_dims: an int or None per leaf, or a container matching a
    prefix of the tree) to one value per leaf of `spec`; None when the structures disagree."""
    if spec is _LEAF:
        return [prefix] if not isinstance(prefix, (tuple, list, dict)) else None
    if not isinstance(prefix, (tuple, list, dict)):
        return [prefix] * _num_leaves(spec)
    kind, keys, children = spec
    if isinstance(prefix, dict):
        if keys is None or set(prefix) != set(keys):
            return None
        parts = [_broadcast_prefix(prefix[k], c) for k, c in zip(keys, children)]
    else:
        if keys is not None or len(prefix) != len(children):
            return None
        parts = [_broadcast_prefix(p, c) for p, c in zip(prefix, children)]
    if any(p is None for p in parts):
        return None
    return [x for p in parts for x in p]


def _num_leaves(spec) -> int:
    if spec is _LEAF:
        return 1
    return sum(_num_leaves(c) for c in spec[2])


def _name(func) -> str:
    if isinstance(func, functools.partial):
        return f"functools.partial({_name(func.func)}, ...)"
    return getattr(func, "__name__", repr(func))


# ---------------------------------------------------------------------------------------------
# vmap


def vmap(
    func: Callable,
    in_dims: int | tuple = 0,
    out_dims: int | tuple | None = 0,
    randomness: str = "error",
    *,
    chunk_size: int | None = None,
) -> Callable:
    """Map `func` over a dimension of its inputs (torch.func.vmap), by a loop over the slices.

    Args:
        func: takes (pytrees of) Tensors and returns (a pytree of) Tensors.
        in_dims: per positional argument, the mapped dimension of each of its Tensors: an int
            for all, None for an argument that is not mapped (passed whole to every call), or
            a tuple with one entry (int, None or a nested container) per argument.
            Keyword arguments are never mapped.
        out_dims: where the mapped dimension goes in each output (an int, None for an output
            that does not depend on the mapped inputs, or a container matching the outputs).
        randomness: "error" (raise when func draws from the default generator), "different"
            (each slice draws its own numbers: the loop's natural behaviour) or "same" (every
            slice sees the same numbers: the generator is rewound before each call).
        chunk_size: accepted for PyTorch compatibility; the loop runs one slice at a time.

    Returns:
        The mapped function. It calls func once per slice (a Python loop: the values and
        gradients are PyTorch's, the speed is not a vectorized kernel's).
    """
    if randomness not in ("error", "different", "same"):
        raise RuntimeError(
            "Only allowed values for randomness are 'error', 'different', or 'same'. Got "
            f"{randomness}"
        )
    if chunk_size is not None and chunk_size <= 0:
        raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")
    _check_out_dims(out_dims, func)

    @functools.wraps(func)
    def mapped(*args, **kwargs):
        size, flat_dims, flat_args, spec = _mapped_inputs(in_dims, args, func)
        if size == 0:
            raise ValueError(
                f"vmap({_name(func)}): the mapped dimension has size 0. descent's vmap calls "
                f"{_name(func)} once per slice (a loop) and has no slice to call it with; "
                "handle the empty batch before calling vmap"
            )
        rng = default_generator().numpy_rng.bit_generator
        start = rng.state if randomness != "different" else None
        outs = []
        # An output with out_dim None must not be computed from the mapped inputs (PyTorch's
        # BatchedTensor): with one, the ops are watched while func runs (_Batched)
        batched = _Batched() if None in tree_flatten(out_dims)[0] else None
        handle = None if batched is None else add_op_hook(forward=batched.op)
        try:
            for i in range(size):
                if randomness == "same":
                    rng.state = start
                sliced = [a if d is None else a[(slice(None),) * d + (i,)]
                          for a, d in zip(flat_args, flat_dims)]  # fmt: skip
                if batched is not None:
                    for a, d in zip(sliced, flat_dims):
                        if d is not None:
                            batched.add(a)
                outs.append(func(*tree_unflatten(sliced, spec), **kwargs))
                if randomness == "error" and rng.state != start:
                    raise RuntimeError(
                        "vmap: called random operation while in randomness error mode. Please "
                        "either use the 'same' or 'different' randomness flags on vmap or "
                        "perform the randomness operation out of vmap"
                    )
        finally:
            if handle is not None:
                handle.remove()
        return _stack_outputs(outs, out_dims, func, batched)

    return mapped


def _check_out_dims(out_dims, func) -> None:
    flat, _ = tree_flatten(out_dims)
    if not all(d is None or (isinstance(d, int) and not isinstance(d, bool)) for d in flat):
        raise ValueError(
            f"vmap({_name(func)}, ..., out_dims={out_dims}): `out_dims` must be an int, None or "
            "a python collection of ints representing where in the outputs the vmapped "
            "dimension should appear."
        )


def _mapped_inputs(in_dims, args: tuple, func):
    """Validate in_dims against args: (batch size, per-leaf dims, leaves, spec of args)."""
    where = f"vmap({_name(func)}, in_dims={in_dims}, ...)(<inputs>)"
    if not isinstance(in_dims, (int, tuple)):
        raise ValueError(
            f"{where}: expected `in_dims` to be int or a (potentially nested) tuple matching the "
            f"structure of inputs, got: {type(in_dims)}."
        )
    if len(args) == 0:
        raise ValueError(
            f"vmap({_name(func)})(<inputs>): got no inputs. Maybe you forgot to add inputs, or "
            "you are trying to vmap over a function with no inputs. The latter is unsupported."
        )
    flat_args, spec = tree_flatten(args)
    flat_dims = _broadcast_prefix(in_dims, spec)
    if flat_dims is None:
        raise ValueError(
            f"{where}: in_dims is not compatible with the structure of `inputs`. in_dims has "
            f"structure {tree_flatten(in_dims)[1]} but inputs has structure {spec}."
        )
    sizes = []
    for i, (a, d) in enumerate(zip(flat_args, flat_dims)):
        if d is None:
            continue
        if not isinstance(d, int) or isinstance(d, bool):
            raise ValueError(
                f"{where}: Got in_dim={d} for an input but in_dim must be either an integer "
                "dimension or None."
            )
        if not isinstance(a, Tensor):
            raise ValueError(
                f"{where}: Got in_dim={d} for an input but the input is of type {type(a)}. We "
                "cannot vmap over non-Tensor arguments, please use None as the respective in_dim"
            )
        if not -a.ndim <= d < a.ndim:
            raise ValueError(
                f"{where}: Got in_dim={d} for some input, but that input is a Tensor of "
                f"dimensionality {a.ndim} so expected in_dim to satisfy -{a.ndim} <= in_dim < "
                f"{a.ndim}."
            )
        flat_dims[i] = d % a.ndim
        sizes.append(a.shape[flat_dims[i]])
    if not sizes:
        raise ValueError("vmap: Expected at least one Tensor to vmap over")
    if any(s != sizes[0] for s in sizes):
        raise ValueError(
            "vmap: Expected all tensors to have the same size in the mapped dimension, got "
            f"sizes {sizes} for the mapped dimension"
        )
    return sizes[0], flat_dims, flat_args, spec


class _Batched:
    """The tensors computed from the mapped slices while func runs: the slices themselves and
    the results of every op (an op hook) that read one, or that read a tensor sharing one's
    array (`detach()` makes no op). PyTorch's BatchedTensors, as far as the ops show them: an
    output that depends on the slices only through an op the hooks do not see (zeros_like)
    escapes, and is then checked by value alone (`_unmapped`)."""

    __slots__ = ("refs",)

    def __init__(self) -> None:
        self.refs: dict = {}  # id -> weakref of a batched tensor or of its array

    def add(self, t: Tensor) -> None:
        refs = self.refs
        for obj in (t, t._data):
            key = id(obj)
            try:  # (an entry leaves with its object: the ids of the dead are reused)
                refs[key] = weakref.ref(
                    obj, lambda r, key=key: refs.get(key) is r and refs.pop(key)
                )
            except TypeError:  # an array type without weak references: the tensor alone
                pass

    def __contains__(self, t) -> bool:
        for obj in (t, t._data):
            r = self.refs.get(id(obj))
            if r is not None and r() is obj:
                return True
        return False

    def op(self, op, inputs, out) -> None:
        if any(isinstance(t, Tensor) and t in self for t in inputs):
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, Tensor):
                    self.add(t)


def _stack_outputs(outs: list, out_dims, func, batched: _Batched | None = None):
    """Stack the per-slice outputs leaf by leaf along their out_dim."""
    name = _name(func)
    flat0, spec = tree_flatten(outs[0])
    columns = [[x] for x in flat0]
    for out in outs[1:]:
        flat, s = tree_flatten(out)
        if s != spec:
            raise ValueError(
                f"vmap({name}, ...): `{name}` returned outputs of different structures for "
                f"different slices ({spec} and {s}); descent's vmap calls it once per slice, and "
                "every call must return the same structure"
            )
        for col, x in zip(columns, flat):
            col.append(x)
    if spec is _LEAF:  # a single output: out_dims may be an int, None or a 1-tuple
        if isinstance(out_dims, tuple) and len(out_dims) == 1:
            out_dims = out_dims[0]
        flat_dims = None if isinstance(out_dims, (tuple, list, dict)) else [out_dims]
    else:
        flat_dims = _broadcast_prefix(out_dims, spec)
    if flat_dims is None:
        raise ValueError(
            f"vmap({name}, ..., out_dims={out_dims})(<inputs>): out_dims is not compatible with "
            f"the structure of `outputs`. out_dims has structure {tree_flatten(out_dims)[1]} "
            f"but outputs has structure {spec}."
        )
    results = []
    for k, (col, d) in enumerate(zip(columns, flat_dims)):
        if d is None:
            if batched is not None and any(isinstance(x, Tensor) and x in batched for x in col):
                what = "the output" if spec is _LEAF else f"output {k} (in flattened order)"
                raise ValueError(
                    f"vmap({name}, ...): `{name}` can not return a BatchedTensor when out_dim is "
                    f"None: {what} is computed from the mapped inputs, as in PyTorch. Give it "
                    "an int out_dim, or compute it from unmapped inputs only"
                )
            results.append(_unmapped(col, name))
            continue
        if not all(isinstance(x, Tensor) for x in col):
            bad = next(type(x) for x in col if not isinstance(x, Tensor))
            raise ValueError(
                f"vmap({name}, ...): `{name}` must only return Tensors, got type {bad}. Did you "
                "mean to set out_dims= to None for output?"
            )
        results.append(stack(col, d))
    return tree_unflatten(results, spec)


def _unmapped(col: list, name: str):
    """An output with out_dim None. A non-Tensor is returned as the first call gave it (PyTorch
    never batches those). A Tensor must not depend on the mapped inputs in PyTorch; the loop
    cannot see dependence, so it requires every slice to have returned the same values."""
    first = col[0]
    if not isinstance(first, Tensor):
        return first
    for x in col[1:]:
        same = x is first or (
            isinstance(x, Tensor)
            and x._data.shape == first._data.shape
            and bool((x._data == first._data).all())
        )
        if not same:
            raise ValueError(
                f"vmap({name}, ...): `{name}` can not return a BatchedTensor when out_dim is "
                "None (its value differs between slices)"
            )
    return first


# ---------------------------------------------------------------------------------------------
# functional_call

_MISSING = object()


def functional_call(
    module,
    parameter_and_buffer_dicts: dict | Sequence[dict],
    args: Any = None,
    kwargs: dict | None = None,
    *,
    tie_weights: bool = True,
    strict: bool = False,
):
    """Call `module(*args, **kwargs)` with the given tensors in place of its parameters and
    buffers (torch.func.functional_call); the module's own tensors are put back afterwards,
    also when the call raises.

    Gradients flow to the given tensors (the module computes with them), never to the module's
    parameters; a buffer that the module replaces during the call (or updates in place, as
    BatchNorm's running statistics in training mode) is the given tensor, and the dict receives
    whatever the module holds under that name at the end, as in PyTorch.

    Args:
        module: a descent.nn.Module.
        parameter_and_buffer_dicts: {dotted name: Tensor}, or a sequence of such dicts with
            distinct keys (e.g. (params, buffers)).
        args: the positional argument, or a tuple of them.
        kwargs: keyword arguments for the call.
        tie_weights: a tensor given for one of several tied names (the same Parameter under two
            names) replaces it under all of them; two different tensors for tied names raise.
        strict: the dicts must name every parameter and buffer, and nothing else.

    Returns:
        What the module returns.
    """
    tensors = _merge_dicts(parameter_and_buffer_dicts)
    given = tensors
    if tie_weights:
        tensors = _untie(module, tensors)
    if strict:
        _check_keys(module, tensors)
    if kwargs is None:
        kwargs = {}
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)
    swapped: list = []  # (dotted name, submodule, attribute, original), restored in reverse
    try:
        for name, t in tensors.items():
            mod, attr = _owner(module, name)
            swapped.append((name, mod, attr, _swap(mod, attr, t)))
        return module(*args, **kwargs)
    finally:
        for name, mod, attr, orig in reversed(swapped):
            now = _swap(mod, attr, orig)
            if name in given and now is not _MISSING:
                given[name] = now  # what the module holds now (PyTorch writes it back too)


def _merge_dicts(dicts) -> dict:
    if isinstance(dicts, dict):
        return dicts
    if not isinstance(dicts, Sequence) or isinstance(dicts, str):
        raise ValueError(
            "Expected parameter_and_buffer_dicts to be a dict, or a list/tuple of dicts, but got "
            f"{type(dicts)}"
        )
    if not all(isinstance(d, dict) for d in dicts):
        raise ValueError("Expected all elements of parameter_and_buffer_dicts to be dictionaries")
    seen: dict = {}
    for d in dicts:
        for k in d:
            seen[k] = seen.get(k, 0) + 1
    repeated = [k for k, n in seen.items() if n > 1]
    if repeated:
        raise ValueError(
            f"{repeated} appeared in multiple dictionaries; behavior of functional call is "
            "ambiguous"
        )
    return {k: v for d in dicts for k, v in d.items()}


def _all_named(module) -> dict:
    named = dict(module.named_parameters(remove_duplicate=False))
    named.update(module.named_buffers(remove_duplicate=False))
    return named


def _untie(module, tensors: dict) -> dict:
    """Give each tied name (one tensor under several names) the tensor given for any of them."""
    groups: dict[int, set] = {}
    for name, t in _all_named(module).items():
        groups.setdefault(id(t), set()).add(name)
    tied = {n: names for names in groups.values() if len(names) > 1 for n in names}
    out = dict(tensors)
    for name in tensors:
        names = tied.get(name)
        if names is None:
            continue
        values = {id(tensors[n]) for n in names if n in tensors}
        if len(values) > 1:
            raise ValueError(
                f"functional_call got multiple values for keys {sorted(names)}, which are tied. "
                "Consider using tie_weights=False"
            )
        for n in names:
            out[n] = tensors[name]
    return out


def _check_keys(module, tensors: dict) -> None:
    valid = set(_all_named(module))
    missing, unexpected = sorted(valid - set(tensors)), sorted(set(tensors) - valid)
    msgs = []
    if unexpected:
        msgs.append(f"Unexpected key(s): {', '.join(map(repr, unexpected))}.")
    if missing:
        msgs.append(f"Missing key(s): {', '.join(map(repr, missing))}.")
    if msgs:
        raise RuntimeError(
            f"Error(s) in reparametrizing for {type(module).__name__}:\n\t" + "\n\t".join(msgs)
        )


def _owner(module, name: str):
    """(the submodule that holds the dotted `name`, the last part of the name)."""
    *path, attr = name.split(".")
    if attr == "":
        raise KeyError('tensor name can\'t be empty string ""')
    mod = module
    for part in path:
        sub = mod._modules.get(part) if hasattr(mod, "_modules") else None
        if sub is None:
            raise AttributeError(f"{type(mod).__name__} has no attribute `{part}`")
        mod = sub
    return mod, attr


def _swap(mod, name: str, t):
    """Put t (a Tensor, None, or _MISSING to remove) under `name` in mod; return what was
    there (_MISSING when nothing was). Parameters and buffers are swapped in their registries,
    so the module's type checks (a Parameter is expected) do not apply, as in PyTorch."""
    if t is not _MISSING and t is not None and not isinstance(t, Tensor):
        raise TypeError(f"{t} is not an instance of descent.Tensor")
    for registry in (mod._parameters, mod._buffers):
        if name in registry:
            orig = registry[name]
            if t is _MISSING:
                del registry[name]
            else:
                registry[name] = t
            return orig
    orig = getattr(mod, name, _MISSING)
    if orig is not _MISSING and orig is not None and not isinstance(orig, Tensor):
        raise TypeError(f"attribute `{name}`: {orig} is not an instance of descent.Tensor")
    if t is not _MISSING:
        object.__setattr__(mod, name, t)
    elif orig is not _MISSING:
        object.__delattr__(mod, name)
    return orig


def stack_module_state(models) -> tuple[dict, dict]:
    """(params, buffers) of several models of one class, each stacked along a new dimension 0
    (torch.func.stack_module_state), for an ensemble: `vmap(lambda p, b, x:
    functional_call(base, (p, b), (x,)), in_dims=(0, 0, None))(params, buffers, x)`.

    Stacked parameters are new leaves that require grad when the models' do.
    """
    models = list(models)
    if not models:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if len({m.training for m in models}) > 1:
        raise RuntimeError(
            "stack_module_state: Expected all models to have the same training/eval mode."
        )
    if len({type(m) for m in models}) > 1:
        raise RuntimeError("stack_module_state: Expected all models to be of the same class.")

    def stacked(named: list[dict]) -> dict:
        out = {}
        for name in named[0]:
            ts = [d[name] for d in named]
            flags = {t.requires_grad for t in ts}
            if len(flags) > 1:
                raise RuntimeError(
                    f"Expected {name} from each model to have the same .requires_grad"
                )
            t = stack([x.detach() for x in ts], 0)
            out[name] = t.requires_grad_(True) if flags == {True} else t
        return out

    params = stacked([dict(m.named_parameters()) for m in models])
    buffers = stacked([dict(m.named_buffers()) for m in models])
    return params, buffers


def replace_all_batch_norm_modules_(root):
    """Make every BatchNorm in `root` use batch statistics only (torch.func's function of
    that name), in place, and return `root`: running_mean / running_var / num_batches_tracked
    become None and track_running_stats False, so that vmap over the model does not update
    shared running statistics from inside the mapped function."""
    from .nn.normalization import _BatchNorm  # noqa: PLC0415 (nn sits above this module)

    for m in root.modules():
        if isinstance(m, _BatchNorm) and m.track_running_stats:
            m.running_mean = None
            m.running_var = None
            m.num_batches_tracked = None
            m.track_running_stats = False
    return root
