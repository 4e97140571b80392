"""`torch.autograd`'s functions over the engine: `grad(outputs, inputs, ...)`,
`backward(tensors, grad_tensors, ...)` and anomaly mode (`detect_anomaly`, `set_detect_anomaly`,
`is_anomaly_enabled`).

`descent.autograd` (the engine, `autograd.py`) forwards these names here on first use (its
module `__getattr__`), so `descent.autograd.grad` is this module's `grad`, and importing the
engine never imports this module or the anomaly tool it drives (anomaly mode lives in
`descent.explain.anomaly`, a tool above the core layers).

Anomaly mode, PyTorch's way. `torch.autograd.detect_anomaly(check_nan=True)` remembers where each
op was created and, with `check_nan`, stops the backward pass at the first function whose
gradients are NaN. descent's tool does both: here it runs with `check_forward=False` (PyTorch
does not test forward values) and `check_backward=check_nan`. It raises `AnomalyError`, which is
a `RuntimeError` as PyTorch's error is, naming the op, the line that created it and the value
ranges. One difference: descent also stops at an Inf gradient (PyTorch at NaN only).
"""

from __future__ import annotations

import functools
import inspect
import threading
import warnings
import weakref

import numpy as np

from . import autograd, backend, grad_fn
from . import autograd_custom_jvp as custom_jvp

__all__ = [
    "FunctionCtx",
    "Variable",
    "backward",
    "grad",
    "detect_anomaly",
    "enforce_grad_layout_policy",
    "is_anomaly_check_nan_enabled",
    "is_anomaly_enabled",
    "set_detect_anomaly",
]


def _as_list(x) -> list:
    if x is None or isinstance(x, autograd._tensor_class):
        return [x]
    return list(x)


def _retains(node, t) -> bool:
    """Whether non-leaf t called retain_grad() (the engine then writes its .grad itself)."""
    retained = getattr(node, "retained", None)
    return retained is not None and retained() is t


def _is_edge(x) -> bool:
    """A torch.autograd.graph.GradientEdge (a (node, output_nr, token) tuple) as a grad input."""
    return isinstance(x, tuple) and type(x).__name__ == "GradientEdge"


def _edge_input(edge):
    from .autograd_graph import _edge_input as edge_input  # noqa: PLC0415 (with the first edge)

    return edge_input(edge)


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    only_inputs: bool = True,
    allow_unused: bool | None = None,
    is_grads_batched: bool = False,
    materialize_grads: bool = False,
):
    """Gradients of `outputs` with respect to `inputs`, returned (never stored in `.grad`).

    PyTorch's `torch.autograd.grad`, with its signature and its results: **always a tuple**,
    one gradient per input, also for a single input tensor (`(g,) = grad(loss, x)` or
    `grad(loss, x)[0]`).

    Args:
        outputs: a tensor or a sequence of tensors to differentiate.
        inputs: a tensor or a sequence of tensors that require grad.
        grad_outputs: d(loss)/d(output) per output (None for a scalar output: ones).
        retain_graph: keep the saved values for another pass (default: `create_graph`).
        create_graph: record the backward pass, for higher-order gradients.
        only_inputs: accepted for PyTorch compatibility (it has no effect there either).
        allow_unused: if False (the default, as in PyTorch), an input that the outputs do not
            depend on raises; if True its gradient is None.
        is_grads_batched: the first dimension of each grad_output is a batch of vectors:
            the result is one gradient per vector, stacked on a new first dimension (the rows
            of a Jacobian from `grad_outputs=eye(n)`). PyTorch runs it by vmap, descent by one
            backward pass per vector (the graph is kept between them).
        materialize_grads: give unused inputs a zero gradient instead of None (implies
            allow_unused=True, as in PyTorch).

    Raises:
        RuntimeError: an input does not require grad, or is unused and allow_unused is False.
    """
    if allow_unused is None:
        allow_unused = materialize_grads
    elif materialize_grads and not allow_unused:
        raise ValueError("grad(): materialize_grads=True needs allow_unused to be None or True")
    if is_grads_batched:
        return _grad_batched(
            outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused,
            materialize_grads,
        )  # fmt: skip
    if isinstance(inputs, autograd._tensor_class) or _is_edge(inputs):
        inputs = [inputs]
    inputs = [_edge_input(t) if _is_edge(t) else t for t in inputs]
    if isinstance(outputs, autograd._tensor_class) or _is_edge(outputs):
        outputs = [outputs]
        if grad_outputs is not None and not isinstance(grad_outputs, (list, tuple)):
            grad_outputs = [grad_outputs]
    outputs = list(outputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(
            f"grad(): got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs"
        )
    if any([_is_edge(o) for o in outputs]):
        from .autograd_graph import _edge_output as edge_output  # noqa: PLC0415

        outputs = [edge_output(o, g) if _is_edge(o) else o for o, g in zip(outputs, grad_outputs)]
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(
                f"grad(): input {i} (shape {tuple(t.shape)}) does not require grad; create it "
                "with requires_grad=True"
            )
    seeds = [autograd._seed(o, g, create_graph, "grad") for o, g in zip(outputs, grad_outputs)]
    if retain_graph is None:
        retain_graph = create_graph
    res = autograd._engine_backward(outputs, seeds, retain_graph, create_graph, capture=inputs,
                       accumulate=False)  # fmt: skip
    for i, r in enumerate(res):
        if r is not None:
            continue
        if materialize_grads:
            t = inputs[i]
            xp = backend.get_array_module(t._data)
            res[i] = autograd._new_tensor(xp.zeros_like(t._data))
        elif not allow_unused:
            raise RuntimeError(
                f"grad(): input {i} (shape {tuple(inputs[i].shape)}) was not used to compute "
                "the outputs; pass allow_unused=True to get None for it (or "
                "materialize_grads=True for zeros)"
            )
    return tuple(res)


def _grad_batched(
    outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused, materialize_grads
):
    """grad(..., is_grads_batched=True): one pass per row of the grad_outputs, stacked."""
    from .ops.shape import stack  # noqa: PLC0415 (ops sit above this module's engine imports)

    outputs = _as_list(outputs)
    grad_outputs = _as_list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(
            f"grad(): got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs"
        )
    sizes = []
    for i, (o, g) in enumerate(zip(outputs, grad_outputs, strict=True)):
        if g is None or g.ndim == 0:
            raise ValueError(
                f"grad(is_grads_batched=True): grad_outputs[{i}] must be a tensor whose first "
                "dimension is the batch of vectors, got "
                f"{'None' if g is None else 'a 0-d tensor'}"
            )
        if tuple(g.shape[1:]) != tuple(o.shape):
            raise RuntimeError(
                "If `is_grads_batched=True`, we interpret the first dimension of each "
                "grad_output as the batch dimension. The sizes of the remaining dimensions are "
                f"expected to match the shape of corresponding output, but a mismatch was "
                f"detected: grad_output[{i}] has a shape of {tuple(g.shape[1:])} and output[{i}] "
                f"has a shape of {tuple(o.shape)}."
            )
        sizes.append(int(g.shape[0]))
    if len(set(sizes)) != 1:
        raise ValueError(
            "grad(is_grads_batched=True): every grad_output needs the same batch size (its "
            f"first dimension), got {sizes}"
        )
    n = sizes[0]
    if n == 0:
        raise IndexError("grad(is_grads_batched=True): the batch of grad_outputs is empty")
    keep = create_graph if retain_graph is None else retain_graph
    rows = [
        grad(outputs, inputs, [g[b] for g in grad_outputs], retain_graph=keep or b < n - 1,
             create_graph=create_graph, allow_unused=True)
        for b in range(n)
    ]  # fmt: skip
    single = isinstance(inputs, autograd._tensor_class)
    inputs = [inputs] if single else list(inputs)
    res = []
    for i, t in enumerate(inputs):
        col = [r[i] for r in rows]
        if all(c is not None for c in col):
            res.append(stack(col, 0))
        elif materialize_grads:  # zeros of the input's own shape, as PyTorch's vmap path
            xp = backend.get_array_module(t._data)
            res.append(autograd._new_tensor(xp.zeros_like(t._data)))
        elif allow_unused:
            res.append(None)
        else:
            raise RuntimeError(
                f"grad(): input {i} (shape {tuple(t.shape)}) was not used to compute "
                "the outputs; pass allow_unused=True to get None for it (or "
                "materialize_grads=True for zeros)"
            )
    return tuple(res)


def backward(
    tensors,
    grad_tensors=None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    grad_variables=None,
    inputs=None,
) -> None:
    """Accumulate the gradients of `tensors` into `.grad` (torch.autograd.backward).

    `backward([a, b], [ga, gb])` is one pass seeded with ga and gb: the sum of what
    `a.backward(ga)` and `b.backward(gb)` would store.

    Args:
        tensors: a tensor or a sequence of tensors to differentiate.
        grad_tensors: d(loss)/d(tensor) for each (None for a scalar: ones).
        retain_graph: keep the saved values for another pass (default: create_graph).
        create_graph: record the backward pass, for higher-order gradients.
        grad_variables: PyTorch's old name for grad_tensors.
        inputs: accumulate only into these tensors' `.grad` (leaves or not); other leaves keep
            theirs. An input the tensors do not depend on is left unchanged.

    Raises:
        RuntimeError: a tensor does not require grad, a non-scalar tensor has no gradient,
            `inputs` is empty, or the counts of tensors and grad_tensors differ.
    """
    if grad_variables is not None:
        warnings.warn("`grad_variables` is deprecated. Use `grad_tensors` instead.",
                      FutureWarning, stacklevel=2)  # fmt: skip
        if grad_tensors is not None:
            raise RuntimeError("backward(): pass grad_tensors or grad_variables, not both")
        grad_tensors = grad_variables
    tensors = _as_list(tensors)
    grads = [None] * len(tensors) if grad_tensors is None else _as_list(grad_tensors)
    if len(grads) != len(tensors):
        raise RuntimeError(f"backward(): got {len(grads)} grad_tensors for {len(tensors)} tensors")
    if retain_graph is None:
        retain_graph = create_graph
    seeds = [autograd._seed(t, g, create_graph, "backward") for t, g in zip(tensors, grads)]
    if inputs is None:
        autograd._engine_backward(tensors, seeds, retain_graph, create_graph)
        return
    inputs = [inputs] if _is_edge(inputs) else _as_list(inputs)
    if not inputs:
        raise RuntimeError("backward(): the `inputs` argument cannot be empty")
    # a GradientEdge: its gradient is computed, and stored only for a leaf (PyTorch's)
    edges = [_is_edge(t) for t in inputs]
    if any(edges):
        inputs = [_edge_input(t) if e else t for t, e in zip(inputs, edges)]
    for t, e in zip(inputs, edges):
        if not e and t._node is not None:
            t.retain_grad()  # PyTorch's run_backward does, for good (t.retains_grad is True)
    # One pass that captures the inputs' gradients without touching any .grad, then the
    # accumulation PyTorch does for exactly these tensors (a retained non-leaf's: the pass).
    captured = autograd._engine_backward(
        tensors, seeds, retain_graph, create_graph, capture=inputs, accumulate=False,
        run_inputs=True,
    )  # fmt: skip
    for t, g, e in zip(inputs, captured, edges):
        node = t._node
        if g is None or (node is not None and (e or _retains(node, t))):
            continue  # (a retained non-leaf's .grad was written by the pass already)
        if not create_graph:
            g = autograd._new_tensor(g._data.astype(t._data.dtype, copy=True))
        t.grad = g if t.grad is None else t.grad + g


# ---------------------------------------------------------------------------------------------
# Anomaly mode: one process-wide switch, as PyTorch's, over descent.explain.anomaly.

_mode = {"context": None, "check_nan": True}  # the tool's context while the switch is on


def _tool():
    # Imported on first use only: explain is a tool layer above the core (see the docstring).
    from .explain import anomaly

    return anomaly


def _set(enabled: bool, check_nan: bool = True) -> None:
    """Turn PyTorch-style anomaly mode on or off (the one primitive the classes use)."""
    ctx = _mode["context"]
    if ctx is not None and (not enabled or check_nan != _mode["check_nan"]):
        ctx.__exit__(None, None, None)
        _mode["context"] = None
    if enabled and _mode["context"] is None:
        ctx = _tool().detect_anomaly(check_forward=False, check_backward=check_nan)
        ctx.__enter__()
        _mode["context"] = ctx
    _mode["check_nan"] = check_nan


def is_anomaly_enabled() -> bool:
    """True while anomaly mode is on (this switch, or any descent.explain.detect_anomaly)."""
    return _mode["context"] is not None or _tool().is_anomaly_enabled()


def is_anomaly_check_nan_enabled() -> bool:
    """True when anomaly mode is on and stops at NaN gradients."""
    return _mode["context"] is not None and _mode["check_nan"]


class detect_anomaly:  # PyTorch's name
    """Context manager (and decorator) that turns anomaly mode on (torch.autograd.detect_anomaly).

    Args:
        check_nan: stop the backward pass at the first op whose gradients are NaN (or Inf).

    Example:
        >>> with descent.autograd.detect_anomaly():
        ...     loss = model(x).log().mean()
        ...     loss.backward()  # RuntimeError (AnomalyError) naming the op and its line
    """

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan
        self.prev = (False, True)

    def __enter__(self) -> None:
        warnings.warn(
            "Anomaly Detection has been enabled. This mode will increase the runtime and should "
            "only be enabled for debugging.",
            UserWarning,
            stacklevel=2,
        )
        self.prev = (_mode["context"] is not None, _mode["check_nan"])
        _set(True, self.check_nan)

    def __exit__(self, *exc) -> None:
        _set(*self.prev)

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)

        return wrapper


class set_detect_anomaly:  # PyTorch's name: a call that sets the mode, also a context manager
    """Set anomaly mode on or off now (torch.autograd.set_detect_anomaly); used as a context
    manager it restores the previous mode on exit.

    Args:
        mode: True turns anomaly mode on, False off.
        check_nan: stop the backward pass at NaN (or Inf) gradients.
    """

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self.prev = (_mode["context"] is not None, _mode["check_nan"])
        _set(bool(mode), check_nan)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc) -> None:
        _set(*self.prev)


_layout_policy = threading.local()


class enforce_grad_layout_policy:  # PyTorch's name: sets the flag; also a context manager
    """torch.autograd.enforce_grad_layout_policy(enable=True): PyTorch's switch for the strides
    of accumulated gradients (matching the parameter's, or whatever the incoming gradient has).
    descent's accumulated gradients are always row-major contiguous arrays, whatever the flag,
    so it changes nothing here; it is kept per thread, as PyTorch's, and restored on exit when
    used as a context manager (`_grad_layout_policy_enabled()` reads it)."""

    def __init__(self, enable: bool = True) -> None:
        self.prev = _grad_layout_policy_enabled()
        _layout_policy.enabled = bool(enable)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc) -> None:
        _layout_policy.enabled = self.prev


def _grad_layout_policy_enabled() -> bool:
    return getattr(_layout_policy, "enabled", True)


# ---------------------------------------------------------------------------------------------
# Custom functions, PyTorch's way: a subclass of descent.autograd.Function whose `forward` and
# `backward` are staticmethods taking a `ctx` and Tensors (torch.autograd.Function), e.g.
#
#     class Cube(descent.autograd.Function):
#         @staticmethod
#         def forward(ctx, x):
#             ctx.save_for_backward(x)
#             return x**3
#
#         @staticmethod
#         def backward(ctx, grad_output):
#             (x,) = ctx.saved_tensors
#             return grad_output * 3 * x**2
#
#     y = Cube.apply(x)
#
# The engine's own ops subclass the same class with array-level `forward(self, *arrays)`; the
# engine tells the two apart when the class is defined (Function.__init_subclass__) and gives
# ctx-style classes `ctx_apply` below as their `apply`, so the ops' hot path is unchanged.


class FunctionCtx:
    """The `ctx` of a custom function: `save_for_backward`, `saved_tensors`,
    `needs_input_grad`, and any attribute forward wants to hand to backward."""

    def __init__(self, needs_input_grad: tuple) -> None:
        self.needs_input_grad = needs_input_grad
        self.materialize_grads = True
        self._saved: tuple = ()
        self._versions: tuple = ()
        self._dirty: tuple = ()
        self._non_diff: tuple = ()
        self._forward_saved: tuple | None = None  # save_for_forward's, for a jvp staticmethod
        self._output_links = None  # see _link_saved_outputs

    def save_for_forward(self, *tensors) -> None:
        """Tensors for a `jvp` staticmethod (PyTorch's forward mode): inside `jvp`,
        `ctx.saved_tensors` gives these (autograd_custom_jvp.py)."""
        self._forward_saved = tensors

    def save_for_backward(self, *tensors) -> None:
        """Keep tensors for backward; an in-place change to one before backward raises."""
        self._versions = tuple(None if t is None else t._version for t in tensors)
        hooks = autograd._saved_hooks  # (saved_tensors_hooks: this thread's, autograd_graph)
        packed = None if hooks is None else hooks.pack_tensors(tensors)
        self._saved = tensors if packed is None else autograd._PackedSaved(packed)

    @property
    def saved_tensors(self) -> tuple:
        saved = self._saved
        if type(saved) is autograd._PackedSaved:  # saved_tensors_hooks (autograd_graph.py)
            grad_on = autograd._is_grad_enabled()
            return tuple(None if s is None else s.unpack(grad_on) for s in saved)
        for t, v in zip(saved, self._versions):
            if t is not None and t._version != v:
                raise RuntimeError(
                    f"a tensor saved with ctx.save_for_backward (shape {tuple(t.shape)}) was "
                    f"modified by an inplace operation (version {v} -> {t._version})"
                )
        if self._output_links is not None and autograd._is_grad_enabled():
            return _graph_outputs(saved, self._output_links)
        return saved

    def mark_non_differentiable(self, *tensors) -> None:
        """Outputs that get no gradient: returned outside the graph (requires_grad False), and
        backward receives zeros for them, as in PyTorch."""
        self._non_diff = tensors

    def mark_dirty(self, *tensors) -> None:
        """The inputs forward changed in place: an output that is one of them is returned as
        that same tensor object, which becomes the function's output in the graph (PyTorch's
        rule: `y = F.apply(x)` with `x.add_(1); ctx.mark_dirty(x); return x` gives `y is x`)."""
        self._dirty = tensors

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = bool(value)


class CustomFunctionNode(autograd.Function):
    """The graph node of one call of a ctx-style custom function; its backward calls the
    user's `backward(ctx, *grad_outputs)` with Tensors.

    A node has one output. A function with several floating outputs gets one node whose output
    is their values raveled and concatenated; each output the caller receives is a recorded
    slice of it (reshaped), so the slices' gradients meet in the node's gradient, which
    backward cuts apart again (`layout`: per output, its position, offset and shape). An output
    that no loss uses gets zeros, as PyTorch's materialized gradients, or None after
    `ctx.set_materialize_grads(False)`: then a hook on each output marks in `received` which
    ones a gradient reached in this pass.
    """

    __slots__ = ("ctx", "fn_cls", "positions", "n_args", "layout", "n_outputs", "received",
                 "zero_outs")  # fmt: skip
    saved_slots = ("ctx",)  # released after backward unless retain_graph, like any saved value

    @property
    def name(self) -> str:
        return autograd._NodeName(self.fn_cls.__name__ + "Backward")

    def _grad_outputs(self, gy, ops) -> list:
        wrap = (lambda g: g) if ops.is_graph else autograd._new_tensor
        if self.layout is None:
            return [wrap(gy)]
        grads: list = [None] * self.n_outputs  # non-floating outputs get None
        received = self.received  # None: every floating output gets a gradient (zeros if unused)
        for i, offset, shape in self.layout:
            if received is not None and not received[i]:
                continue  # set_materialize_grads(False): no gradient reached output i
            n = int(np.prod(shape, dtype=np.int64))
            grads[i] = wrap(gy[offset : offset + n].reshape(shape))
        if received is not None:
            received[:] = [False] * len(received)  # for the next pass (retain_graph)
        elif self.zero_outs:  # outputs marked non-differentiable: zeros, as PyTorch gives
            xp = backend.get_array_module(gy._data if ops.is_graph else gy)
            for i, shape, dtype in self.zero_outs:
                grads[i] = autograd._new_tensor(xp.zeros(shape, dtype))
        return grads

    def backward(self, gy, ops):
        if self.ctx is None:
            raise RuntimeError(self._freed_message())
        if custom_jvp.forward_mode.passes and ops.is_graph:
            if "jvp" in _class_attrs(self.fn_cls):
                return custom_jvp.jvp_backward(self, gy, ops)
            if getattr(self.fn_cls.backward, "once_differentiable", False):
                # its backward records nothing: the tangent would silently be 0
                raise RuntimeError(
                    f"{self.fn_cls.__name__}: forward-mode AD through a custom Function whose "
                    "backward is once_differentiable needs a jvp staticmethod (You must "
                    "implement the jvp function for custom autograd.Function to use it with "
                    "forward mode AD.)"
                )
        grads = custom_jvp.checked_grads(
            self, self.fn_cls.backward(self.ctx, *self._grad_outputs(gy, ops)))
        out = []
        for i in self.positions:  # one gradient per Tensor argument, the engine's inputs
            gx = grads[i]
            if gx is not None and not ops.is_graph:
                gx = gx._data if isinstance(gx, autograd._tensor_class) else gx
            out.append(gx)
        return tuple(out)


def ctx_apply(cls, *args, **kwargs):
    """`apply` of a ctx-style custom function: forward without recording, then one node."""
    tensor_class = autograd._tensor_class
    setup = "setup_context" in _class_attrs(cls)  # PyTorch 2's forward without ctx
    if setup and (kwargs or cls.forward.__defaults__):
        # PyTorch binds the call to forward's signature first: setup_context's `inputs` holds
        # every argument, defaults included, and keywords become positional.
        bound = inspect.signature(cls.forward).bind(*args, **kwargs)
        bound.apply_defaults()
        args, kwargs = bound.args, {}
    positions = tuple(i for i, a in enumerate(args) if isinstance(a, tensor_class))
    needs = tuple(isinstance(a, tensor_class) and a.requires_grad for a in args)
    ctx = FunctionCtx(needs)
    with autograd.no_grad():
        if setup:
            out = cls.forward(*args, **kwargs)
            cls.setup_context(ctx, args, out)
        else:
            out = cls.forward(ctx, *args, **kwargs)
    several = isinstance(out, (tuple, list))
    outs = tuple(out) if several else (out,)
    if not several and not isinstance(out, tensor_class):
        raise TypeError(
            f"{cls.__name__}.forward returned {type(out).__name__}; a custom function returns "
            "a Tensor or a tuple of them"
        )
    # floating and complex outputs are differentiable (PyTorch's convention for complex)
    floating = [i for i, o in enumerate(outs)
                if isinstance(o, tensor_class) and o._data.dtype.kind in "fVc"
                and not any(o is n for n in ctx._non_diff)]  # fmt: skip
    if not (autograd._is_grad_enabled() and any(needs) and floating):
        if autograd._forward_hooks and not several:  # tools see an unrecorded call too (the
            # op hooks' contract); an unrecorded node names the class (the flop counter's key)
            seen = CustomFunctionNode.__new__(CustomFunctionNode)
            seen.fn_cls = cls
            autograd._run_forward_hooks(seen, tuple(args[i] for i in positions), out)
        return out
    node = CustomFunctionNode.__new__(CustomFunctionNode)
    node.ctx, node.fn_cls, node.positions, node.n_args = ctx, cls, positions, len(args)
    node.n_outputs = len(outs)
    node.received = None
    node.zero_outs = tuple(
        (i, o._data.shape, o._data.dtype) for i, o in enumerate(outs)
        if isinstance(o, tensor_class) and o._data.dtype.kind in "fVc"
        and any(o is n for n in ctx._non_diff)
    )  # fmt: skip
    inputs = tuple(args[i] for i in positions)
    parents = tuple(autograd._parent(t) for t in inputs)
    shapes = tuple(x._data.shape for x in inputs)
    if not several:
        node.layout = None
        t = autograd._record_node(node, parents, shapes, (), out._data)
        if autograd._forward_hooks:  # anomaly mode and other tools see the call as one op
            autograd._run_forward_hooks(node, inputs, t)
        _link_saved_outputs(ctx, node, outs, None, None)
        return _dirty_output(ctx, cls, out, t)
    if len({outs[i]._data.dtype for i in floating}) > 1:
        raise NotImplementedError(
            f"{cls.__name__}.forward returned floating outputs of different dtypes "
            f"({sorted({str(outs[i].dtype) for i in floating})}); cast them to one dtype"
        )
    layout, offset = [], 0
    for i in floating:
        layout.append((i, offset, tuple(outs[i].shape)))
        offset += outs[i]._data.size
    node.layout = tuple(layout)
    xp = backend.get_array_module(outs[floating[0]]._data)
    packed = xp.concatenate([outs[i]._data.ravel() for i in floating])
    t = autograd._record_node(node, parents, shapes, (), packed)
    if autograd._forward_hooks:
        autograd._run_forward_hooks(node, inputs, t)
    _link_saved_outputs(ctx, node, outs, node.layout, packed)
    results = list(outs)
    for i, start, shape in node.layout:
        part = t[start : start + outs[i]._data.size].reshape(shape)
        grad_fn.OUTPUT_OF[part._node] = node  # name() and next_functions: the function's
        results[i] = _dirty_output(ctx, cls, outs[i], part)
    if not ctx.materialize_grads:  # record which outputs a gradient reaches (see the class)
        node.received = received = [False] * len(outs)
        for i, _, _ in node.layout:
            results[i].register_hook(functools.partial(_mark_received, received, i))
    return type(out)(results) if isinstance(out, tuple) else results


def _link_saved_outputs(ctx: FunctionCtx, node, outs: tuple, layout, packed) -> None:
    """Remember which saved tensors are outputs of the node, so that a backward recorded for
    create_graph sees them as the node's outputs (with its graph, as PyTorch's saved outputs
    are), not as the constants forward returned before the node existed. The node is held
    weakly (ctx lives in the node: no cycle); `packed` is the multi-output node's array."""
    saved = ctx._saved
    if type(saved) is not tuple or not saved:
        return
    where = {}
    for k, s in enumerate(saved):
        for i, o in enumerate(outs):
            if s is o:
                where[k] = i
    if not where:
        return
    spans = {i: (start, shape) for i, start, shape in layout} if layout is not None else None
    ctx._output_links = (weakref.ref(node), where, spans, packed)


def _graph_outputs(saved: tuple, links) -> tuple:
    """saved, with each saved output replaced by a Tensor that is the node's output in the
    graph (under create_graph; `_link_saved_outputs` says which)."""
    ref, where, spans, packed = links
    node = ref()
    if node is None:
        return saved
    res = list(saved)
    for k, i in where.items():
        if spans is None:  # one output: the node's output array is the saved tensor's
            res[k] = autograd._new_tensor(saved[k]._data, True, node)
        elif i in spans:  # several: output i is a slice of the node's packed output
            start, shape = spans[i]
            n = int(np.prod(shape, dtype=np.int64))
            whole = autograd._new_tensor(packed, True, node)
            res[k] = whole[start : start + n].reshape(shape)
    return tuple(res)


def _dirty_output(ctx: FunctionCtx, cls, out, t):
    """t, the recorded output; or, when forward returned an input it marked dirty, that input
    object made the output (its values are already the new ones: forward wrote them)."""
    if not any(out is d for d in ctx._dirty):
        return t
    if out._rg and out._node is None:
        raise RuntimeError(
            f"{cls.__name__}: a leaf tensor that requires grad (shape {tuple(out.shape)}) was "
            "changed in place by forward and marked dirty (PyTorch refuses this too); pass a "
            "clone of it"
        )
    out._data, out._node, out._rg = t._data, t._node, t._rg
    out._version += 1
    if type(ctx._saved) is tuple and any(s is out for s in ctx._saved):
        # saving the changed input is saving the output (PyTorch's NumpyExp_ saves it): the
        # version check must not take this change for a later in-place write
        ctx._versions = tuple(s._version if s is out else v
                              for s, v in zip(ctx._saved, ctx._versions))  # fmt: skip
    return out


def _mark_received(received: list, i: int, grad) -> None:
    """Tensor hook on output i of a custom function with set_materialize_grads(False)."""
    received[i] = True


def _class_attrs(cls) -> set:
    """Names defined by cls and its bases below descent.autograd.Function."""
    names: set = set()
    for klass in cls.__mro__:
        if klass is autograd.Function:
            break
        names.update(vars(klass))
    return names


# ---------------------------------------------------------------------------------------------
# Variable: PyTorch's pre-0.4 wrapper, still in older programs (`from torch.autograd import
# Variable`). Since PyTorch 0.4 it makes a plain Tensor, and every Tensor is a Variable.


class _VariableMeta(type):
    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, autograd._tensor_class)


class Variable(metaclass=_VariableMeta):
    """`Variable(t, requires_grad=False)`: a new leaf Tensor sharing t's values (t.detach()),
    requiring grad when asked, as PyTorch's Variable; `isinstance(x, Variable)` holds for every
    Tensor. `volatile=True` is accepted with PyTorch's warning and does nothing (use no_grad)."""

    def __new__(cls, data, requires_grad: bool = False, volatile: bool = False):
        if volatile:
            warnings.warn(
                "volatile was removed and now has no effect. Use `with descent.no_grad():` "
                "instead.",
                UserWarning,
                stacklevel=2,
            )
        out = data.detach()
        return out.requires_grad_(True) if requires_grad else out


def __getattr__(name: str):
    if name == "is_tensor_like":  # torch.autograd re-exports torch.overrides' function
        from .overrides import is_tensor_like

        return is_tensor_like
    # torch.autograd.functional (vjp, jvp, jacobian, hessian, hvp, vhp), loaded on first use.
    if name == "functional":
        from . import autograd_functional

        return autograd_functional
    raise AttributeError(f"module 'descent.autograd_torch' has no attribute {name!r}")
