"""Selective activation checkpointing (torch.utils.checkpoint's SAC) and the module's small names.

    policy = [descent.ops.aten.mm.default]   # or policy_fn(ctx, op, *args) -> CheckpointPolicy
    out = checkpoint(block, x, use_reentrant=False,
                     context_fn=partial(create_selective_checkpoint_contexts, policy))

Plain checkpointing recomputes every op of the segment in backward. With a policy, the outputs
of the ops it SAVEs (MUST_SAVE / PREFER_SAVE, or True) are kept from the forward and handed back
when the recomputation reaches the same op again; the others are recomputed. torchtitan saves
the matrix products and attention this way and recomputes the cheap elementwise ops.

How it works in descent (PyTorch's does the same under `__torch_dispatch__`):

* forward (`_CachingContext`, entered by `checkpoint` around the no-grad forward): an op hook
  (`hooks.add_op_hook`: nothing on the normal op path) offers each op to the policy as its ATen
  overload (`aten_op_of`: `descent.ops.aten.mm.default` for a 2-D `MatMul`) with the op's input
  tensors as `*args`, and records per op class and call number either "recompute" or the output
  tensor, the values the op's forward left in its slots for backward, and the input shapes.
* recomputation (`_CachedContext`, around the re-run in backward): for exactly the op classes
  that have saved outputs, and only on this thread, `forward` is replaced while the re-run lasts
  by a lookup: the n-th call of the class returns its saved output (the kernel does not run)
  and restores its slots, or runs the kernel for a "recompute" entry. The graph recorded is the
  same, so gradients are the plain checkpoint's exactly. A saved entry is used once: a second
  backward through the segment raises as PyTorch's does, and so does a saved output modified in
  place after it was saved (unless `allow_cache_entry_mutation=True`).

Differences from PyTorch: descent's ops are fused differently from ATen's (one `Linear` op is
PyTorch's `addmm`; a descent op has no ATen decomposition inside it), so a policy sees descent's
ops under their nearest ATen names, with the op's tensors as `*args` (not the non-tensor
arguments); a custom autograd.Function or a nested checkpoint is offered to the policy but always
recomputed. `ctx.is_recompute` is always False (PyTorch 2.13 calls the policy in forward only).
"""

from __future__ import annotations

import contextlib
import enum
import re
import threading
import warnings
from collections import defaultdict

from .. import autograd, hooks
from ..ops import op_names as _aten

__all__ = [
    "SAC_IGNORED_OPS",
    "CheckpointPolicy",
    "DefaultDeviceType",
    "GraphExecGroup",
    "SelectiveCheckpointContext",
    "check_backward_validity",
    "create_selective_checkpoint_contexts",
    "detach_variable",
    "get_device_states",
    "set_checkpoint_debug_enabled",
    "set_checkpoint_early_stop",
    "set_device_states",
]


class SelectiveCheckpointContext:
    """What the policy gets first: `is_recompute` (always False: the policy is consulted in the
    forward only, as in PyTorch 2.13) and `op_output`, the op's output Tensor."""

    def __init__(self, *, is_recompute, op_output=None) -> None:
        self.is_recompute = is_recompute
        self.op_output = op_output


class CheckpointPolicy(enum.Enum):
    """Whether an op's output is saved in the forward (`*_SAVE`) or recomputed in backward
    (`*_RECOMPUTE`). MUST_ and PREFER_ mean the same in eager mode (PyTorch lets a compiler
    override PREFER_); the CPU_OFFLOAD values save (descent has no device to offload from)."""

    MUST_SAVE = 0
    PREFER_SAVE = 1
    MUST_RECOMPUTE = 2
    PREFER_RECOMPUTE = 3
    MUST_CPU_OFFLOAD = 4
    PREFER_CPU_OFFLOAD = 5


_SAVING = (CheckpointPolicy.MUST_SAVE, CheckpointPolicy.PREFER_SAVE,
           CheckpointPolicy.MUST_CPU_OFFLOAD, CheckpointPolicy.PREFER_CPU_OFFLOAD)  # fmt: skip
_RECOMPUTE = object()
_CONSUMED = object()
_MISMATCH = (
    "This can happen if the operations in the checkpointed region are nondeterministic or "
    "depend on global state that changed between forward and backward."
)
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
# Ops PyTorch never offers to the policy (metadata queries and detach, whose count differs between
# the forward and the recomputation): always recomputed, not counted.
SAC_IGNORED_OPS = {
    getattr(_aten.packet(name, ns), overload)
    for ns, name, overload in (
        ("aten", "detach", "default"), ("prim", "device", "default"), ("aten", "size", "default"),
        ("aten", "stride", "default"), ("aten", "storage_offset", "default"),
        ("aten", "numel", "default"), ("aten", "dim", "default"),
        ("aten", "is_contiguous", "default"), ("aten", "is_contiguous", "memory_format"),
        ("aten", "sym_size", "default"), ("aten", "sym_stride", "default"),
        ("aten", "sym_numel", "default"), ("aten", "sym_storage_offset", "default"),
        ("aten", "is_strides_like_format", "default"),
        ("aten", "is_non_overlapping_and_dense", "default"),
    )
}  # fmt: skip
# descent op class -> (ATen name, overload) where the snake-case class name is not ATen's.
# PyTorch's binary arithmetic dispatches to the `.Tensor` overloads (a scalar is wrapped first).
_RENAMES = {
    "Add": ("add", "Tensor"), "Sub": ("sub", "Tensor"), "Mul": ("mul", "Tensor"),
    "Div": ("div", "Tensor"), "AddScalar": ("add", "Tensor"), "MulScalar": ("mul", "Tensor"),
    "SubScalar": ("sub", "Tensor"), "DivScalar": ("div", "Tensor"),
    "Softmax": ("_softmax", "default"), "LogSoftmax": ("_log_softmax", "default"),
    "Conv2d": ("convolution", "default"), "Einsum": ("bmm", "default"),
    "ScaledDotProductAttention": ("_scaled_dot_product_flash_attention_for_cpu", "default"),
}  # fmt: skip


def aten_op_of(op, inputs) -> _aten.OpOverload:
    """The ATen overload that descent op `op` (a Function instance) run on `inputs` stands for.

    Matrix products follow at::matmul as PyTorch's flop counter sees it (flop_counter's rule):
    `aten.mm` for 2-D and folded products, `aten.bmm` for batched ones, `aten.mv` / `aten.dot`
    for vectors; `Linear` with a bias is `aten.addmm` (2-D or contiguous input). Other ops: the
    table above, else the class name in snake case (`Exp` -> `aten.exp.default`).
    """
    name = type(op).__name__
    if name in ("MatMul", "Linear") and len(inputs) >= 2:
        from .flop_counter import _matmul_products, _Transposed

        a, b = inputs[0], inputs[1]
        if name == "Linear":
            if getattr(op, "has_b", False) and (a.ndim == 2 or a._data.flags.c_contiguous):
                return _aten.packet("addmm").default
            b = _Transposed(b)
        prod = _matmul_products(a, b)
        if prod is None:
            return _aten.packet("dot" if a.ndim == 1 and b.ndim == 1 else "mv").default
        return _aten.packet(str(prod[0]).split(".", 1)[1]).default
    renamed = _RENAMES.get(name)
    if renamed is not None:
        return getattr(_aten.packet(renamed[0]), renamed[1])
    return _aten.packet(_CAMEL.sub("_", name).lower()).default


def _op_slots(cls) -> tuple:
    """The op's own slots (its parameters and what forward leaves for backward), not the
    graph-node fields of autograd.Function."""
    names = []
    for c in cls.__mro__:
        if c is autograd.Function:
            break
        names.extend(c.__dict__.get("__slots__", ()))
    return tuple(names)


def _cacheable(op, out) -> bool:
    """A descent op whose forward returns one array: its forward can be replaced by a lookup.
    Custom functions (ctx-style, fn_cls) and a nested checkpoint's node are recomputed."""
    cls = type(op)
    return (
        isinstance(op, autograd.Function)
        and isinstance(out, autograd._tensor_class)
        and not isinstance(cls.__dict__.get("forward"), staticmethod)
        and getattr(op, "fn_cls", None) is None
        and not cls.__module__.endswith("utils.checkpoint")
    )


class _CachingContext:
    """Entered around the checkpoint's forward: asks the policy about each op and stores."""

    def __init__(self, policy_fn, storage) -> None:
        self.policy_fn = policy_fn
        self.storage = storage
        self.counter: dict = defaultdict(int)
        self.handle = None
        self.thread = None

    def __enter__(self):
        self.thread = threading.get_ident()
        self.handle = hooks.add_op_hook(forward=self._hook)
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()

    def _hook(self, op, inputs, out) -> None:
        if threading.get_ident() != self.thread:
            return
        func = aten_op_of(op, inputs)
        if func in SAC_IGNORED_OPS:
            return  # never cached: its class is not replaced unless another entry saves
        cls = type(op)
        idx = self.counter[cls]
        self.counter[cls] += 1
        ctx = SelectiveCheckpointContext(is_recompute=False, op_output=out)
        policy = self.policy_fn(ctx, func, *inputs)
        if isinstance(policy, bool):  # PyTorch's older boolean policies
            policy = CheckpointPolicy.MUST_SAVE if policy else CheckpointPolicy.PREFER_RECOMPUTE
        if policy in _SAVING and _cacheable(op, out):
            slots = {}
            for name in _op_slots(cls):
                try:
                    slots[name] = getattr(op, name)
                except AttributeError:  # a slot this op's forward did not set
                    pass
            shapes = tuple(getattr(t, "shape", None) for t in inputs)
            self.storage[cls][idx] = (out, out._version, slots, shapes)
        else:
            self.storage[cls][idx] = _RECOMPUTE


class _CachedContext:
    """Entered around the recomputation: each op class with saved outputs answers its calls
    from the storage, in call order (on this thread, for the re-run only)."""

    def __init__(self, storage, allow_cache_entry_mutation: bool) -> None:
        self.storage = storage
        self.allow_mutation = allow_cache_entry_mutation
        self.counter: dict = defaultdict(int)
        self.patched: list = []

    def __enter__(self):
        self.counter.clear()  # a second backward then meets "backward an extra time"
        thread = threading.get_ident()
        classes = [c for c, entries in self.storage.items()
                   if any(e is not _RECOMPUTE for e in entries.values())]  # fmt: skip
        resolved = [(c, c.forward, c.__dict__.get("forward")) for c in classes]  # before patching
        for cls, original, own in resolved:
            cls.forward = self._lookup(cls, original, thread)
            self.patched.append((cls, own))
        return self

    def __exit__(self, *exc) -> None:
        while self.patched:
            cls, own = self.patched.pop()
            if own is None:
                del cls.forward  # it was inherited
            else:
                cls.forward = own

    def _lookup(self, cls, original, thread):
        storage, counter, allow = self.storage[cls], self.counter, self.allow_mutation

        def forward(op, *arrays, **kw):
            if type(op) is not cls or threading.get_ident() != thread:
                return original(op, *arrays, **kw)  # a subclass, or another thread's op
            idx = counter[cls]
            counter[cls] += 1
            entry = storage.get(idx)
            if entry is None:
                raise RuntimeError(
                    f"{cls.__name__} invocation index {idx} encountered during backward but "
                    f"not found in storage. {_MISMATCH}"
                )
            if entry is _RECOMPUTE:
                return original(op, *arrays, **kw)
            if entry is _CONSUMED:
                raise RuntimeError(
                    "Trying to backward an extra time. You are only allowed to backward once on "
                    "any region computed under selective activation checkpoint."
                )
            out, version, slots, shapes = entry
            got = tuple(getattr(a, "shape", None) for a in arrays)
            if len(got) == len(shapes) and got != shapes:
                raise RuntimeError(
                    f"{cls.__name__} call {idx} in the recomputation has input shapes {got}, the "
                    f"forward's had {shapes}. {_MISMATCH}"
                )
            if not allow and out._version != version:
                raise RuntimeError(
                    "Tensor cached during selective activation checkpoint has been mutated"
                )
            storage[idx] = _CONSUMED
            for name, value in slots.items():
                setattr(op, name, value)
            return out._data

        return forward


def create_selective_checkpoint_contexts(policy_fn_or_list, allow_cache_entry_mutation=False):
    """The two contexts of selective checkpointing, for `checkpoint(..., context_fn=...)`
    (use it through `functools.partial(create_selective_checkpoint_contexts, policy)`).

    Args:
        policy_fn_or_list: `policy_fn(ctx, op, *args, **kwargs)` returning a CheckpointPolicy
            (or a bool: True saves), called for each op of the forward with its ATen overload
            (`descent.ops.aten.mm.default`, ...) and its input tensors; or a list of
            OpOverloads, whose outputs are saved (MUST_SAVE) while the rest is recomputed.
        allow_cache_entry_mutation: skip the error raised in backward when a saved output was
            modified in place after it was saved.

    Returns:
        (forward context, recomputation context).

    Raises:
        ValueError: a list entry that is not an OpOverload (a packet: use `.default`).
        TypeError: neither a function nor a list.
    """
    if isinstance(policy_fn_or_list, list):
        for op in policy_fn_or_list:
            if not isinstance(op, _aten.OpOverload):
                extra = (
                    "Please update the OpOverloadPacket to a specific OpOverload.For example, "
                    "if you have `torch.ops.aten.mm`, change it to `torch.ops.aten.mm.default`."
                    if isinstance(op, _aten.OpOverloadPacket) else ""
                )  # fmt: skip
                raise ValueError(
                    f"Expected op in `op_list` to be an OpOverload but got: {op} of type "
                    f"{type(op)}. {extra}"
                )
        ops = list(policy_fn_or_list)

        def policy_fn(ctx, op, *args, **kwargs):
            return CheckpointPolicy.MUST_SAVE if op in ops else CheckpointPolicy.PREFER_RECOMPUTE

    elif callable(policy_fn_or_list):
        policy_fn = policy_fn_or_list
    else:
        raise TypeError("policy_fn_or_list must be either a function or a list of ops.")
    storage: dict = defaultdict(dict)  # op class -> {call number: entry}
    return (_CachingContext(policy_fn, storage),
            _CachedContext(storage, allow_cache_entry_mutation))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The module's small public names (PyTorch's helpers for its reentrant implementation)

_checkpoint_debug_enabled = None
_enable_checkpoint_early_stop = None


@contextlib.contextmanager
def set_checkpoint_debug_enabled(enabled: bool | None):
    """Context manager overriding checkpoint's `debug` flag (None: each call's own). Kept for
    PyTorch compatibility: descent's checkpoint prints no debug trace."""
    global _checkpoint_debug_enabled
    prev = _checkpoint_debug_enabled
    _checkpoint_debug_enabled = enabled
    try:
        yield
    finally:
        _checkpoint_debug_enabled = prev


@contextlib.contextmanager
def set_checkpoint_early_stop(enable: bool):
    """Context manager setting whether recomputation stops early (PyTorch's setting for its
    non-reentrant checkpoint; descent's recomputation always runs the whole function)."""
    global _enable_checkpoint_early_stop
    prev = _enable_checkpoint_early_stop
    _enable_checkpoint_early_stop = enable
    try:
        yield
    finally:
        _enable_checkpoint_early_stop = prev


_graph_exec_group = None


class GraphExecGroup:
    """Context manager: PyTorch recomputes each checkpointed region reached by the backward
    calls inside one group at most once. Nesting raises, as PyTorch's. descent accepts the
    group and recomputes a region at each backward call that reaches it (the same gradients,
    more compute); a selectively checkpointed region reached by two calls therefore raises
    "backward an extra time" here where PyTorch's group allows it."""

    def __enter__(self):
        global _graph_exec_group
        if _graph_exec_group is not None:
            raise RuntimeError(
                "GraphExecGroup contexts cannot be nested. Already inside group "
                f"{_graph_exec_group}"
            )
        _graph_exec_group = self
        return self

    def __exit__(self, *args) -> None:
        global _graph_exec_group
        _graph_exec_group = None

    @classmethod
    def _get_current_group(cls):
        return _graph_exec_group


def detach_variable(inputs: tuple) -> tuple:
    """Each Tensor of the tuple detached, keeping its requires_grad; other values as they are.

    Raises:
        RuntimeError: `inputs` is not a tuple.
    """
    if not isinstance(inputs, tuple):
        raise RuntimeError(
            "Only tuple of tensors is supported. Got Unsupported input type: "
            f"{type(inputs).__name__}"
        )
    out = []
    for inp in inputs:
        if isinstance(inp, autograd._tensor_class):
            x = inp.detach()
            x.requires_grad = inp.requires_grad
            inp = x
        out.append(inp)
    return tuple(out)


def check_backward_validity(inputs) -> None:
    """Warn "None of the inputs have requires_grad=True" when no Tensor in `inputs` does."""
    if not any(t.requires_grad for t in inputs if isinstance(t, autograd._tensor_class)):
        warnings.warn("None of the inputs have requires_grad=True. Gradients will be None",
                      stacklevel=2)  # fmt: skip


class DefaultDeviceType:
    """The device type whose random state checkpoint saves when no argument is on a device:
    the accelerator's ("cuda" with CuPy and a GPU), else "cpu" (PyTorch's default)."""

    _default_device_type: str | None = None

    @staticmethod
    def set_device_type(device: str = "cuda") -> None:
        DefaultDeviceType._default_device_type = device

    @staticmethod
    def get_device_type() -> str:
        if not DefaultDeviceType._default_device_type:
            from .. import backend

            DefaultDeviceType._default_device_type = "cuda" if backend.cuda_available() else "cpu"
        return DefaultDeviceType._default_device_type


def _cuda():
    import importlib

    return importlib.import_module("descent.cuda")


def get_device_states(*args) -> tuple[list, list]:
    """(device ids, random states) of the accelerator devices of the Tensor arguments (nested
    in tuples, lists and dicts); ([], []) when all are on the CPU."""
    from ._pytree import tree_leaves

    ids = []
    for a in tree_leaves(args):
        if isinstance(a, autograd._tensor_class) and a.device.type not in ("cpu", "meta"):
            ids.append(a.get_device())
    states = []
    for i in ids:
        with _cuda().device(i):
            states.append(_cuda().get_rng_state())
    return ids, states


def set_device_states(devices, states, *, device_type=None) -> None:
    """Restore the random state of each device id in `devices` from `states`."""
    if device_type is None:
        device_type = DefaultDeviceType.get_device_type()
    if device_type == "meta":
        return
    for device, state in zip(devices, states, strict=False):
        with _cuda().device(device):
            _cuda().set_rng_state(state)


class CheckpointFunction(autograd.Function):
    """PyTorch's reentrant checkpoint as an autograd Function:
    `CheckpointFunction.apply(run_function, preserve_rng_state, *args)`. forward runs the
    function without grad and saves its Tensor arguments; backward runs it again with grad (and
    the forward's CPU random state), then an inner backward from its outputs. Like PyTorch's,
    it refuses `autograd.grad` / `backward(inputs=...)` only implicitly: the gradients reach the
    arguments through the inner pass. `descent.utils.checkpoint.checkpoint` does not use it.
    """

    @staticmethod
    def forward(ctx, run_function, preserve_rng_state, *args):
        from .. import creation_random as _random

        check_backward_validity(args)
        ctx.run_function = run_function
        ctx.preserve_rng_state = preserve_rng_state
        if preserve_rng_state:
            ctx.fwd_cpu_state = _random.get_rng_state()
        ctx.inputs, ctx.tensor_indices, tensors = [], [], []
        for i, arg in enumerate(args):
            if isinstance(arg, autograd._tensor_class):
                tensors.append(arg)
                ctx.tensor_indices.append(i)
                ctx.inputs.append(None)
            else:
                ctx.inputs.append(arg)
        ctx.save_for_backward(*tensors)
        with autograd.no_grad():
            return run_function(*args)

    @staticmethod
    def backward(ctx, *grads):
        from .. import creation_random as _random

        inputs = list(ctx.inputs)
        for i, t in zip(ctx.tensor_indices, ctx.saved_tensors, strict=True):
            inputs[i] = t
        saved = _random.get_rng_state() if ctx.preserve_rng_state else None
        try:
            if saved is not None:
                _random.set_rng_state(ctx.fwd_cpu_state)
            detached = detach_variable(tuple(inputs))
            with autograd.enable_grad():
                outputs = ctx.run_function(*detached)
        finally:
            if saved is not None:
                _random.set_rng_state(saved)
        if isinstance(outputs, autograd._tensor_class):
            outputs = (outputs,)
        pairs = [(o, g) for o, g in zip(outputs, grads, strict=False)
                 if isinstance(o, autograd._tensor_class) and o.requires_grad]  # fmt: skip
        if not pairs:
            raise RuntimeError("none of output has requires_grad=True, this checkpoint() is not "
                               "necessary")  # fmt: skip
        autograd.backward([o for o, _ in pairs], [g for _, g in pairs])
        return (None, None) + tuple(
            t.grad if isinstance(t, autograd._tensor_class) else None for t in detached
        )
