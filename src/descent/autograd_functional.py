"""torch.autograd.functional: vjp, jvp, jacobian, hessian, hvp and vhp, with PyTorch's rules.

Reached as `descent.autograd.functional` (loaded on first use). These are PyTorch's older
functional API, with PyTorch's calling conventions, which differ from descent's JAX-style
transforms (`descent.functional`) and from `descent.func` (torch.func):

* `inputs` is a Tensor or a tuple of Tensors and `func(*inputs)` returns a Tensor or a tuple of
  them. The result follows the same nesting: a single Tensor input gives a Tensor, a tuple gives
  a tuple; `jacobian` gives `J[i][j]` = d output i / d input j, unpacked where output or input
  was a single Tensor (a Tensor for Tensor -> Tensor, a tuple of tuples for tuple -> tuple).
* The inputs are replaced by fresh leaves, so a user's `.grad` is never touched. Results are
  detached unless `create_graph=True`; then they carry a graph back to the inputs (when the
  inputs require grad) and can be differentiated again.
* An output that does not depend on an input gives zeros for it. With `strict=True` that raises
  instead, with PyTorch's messages ("The output of the user-provided function is independent
  of input 0. This is not allowed in strict mode.").
* `jvp` and `hvp` use the double-backward trick, as PyTorch does: a vjp u -> u^T J is linear in
  u, so differentiating <u^T J, v> with respect to u gives J v (descent's dual tensors use it
  too), so every op on the path needs a differentiable backward (the fused kernels without one
  raise under create_graph and name the op).
* `vectorize=True` and `strategy="forward-mode"` give the same values; descent computes the
  Jacobian row by row with reverse mode in both cases (one backward per output element).

Everything is built on `descent.autograd.grad` (torch.autograd.grad), like PyTorch's own.
"""

from __future__ import annotations

from collections.abc import Callable as _Callable

from . import autograd as _autograd
from .autograd_torch import grad as _grad
from .creation import ones_like as _ones_like
from .creation import zeros as _zeros
from .creation import zeros_like as _zeros_like
from .ops.elementwise import Clone as _Clone
from .ops.shape import reshape as _reshape
from .ops.shape import stack as _stack
from .tensor import Tensor as _Tensor

__all__ = ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"]


# ---------------------------------------------------------------------------------------------
# Helpers shared by the six functions (and by descent.func)


def _as_tuple(x, arg_name: str, fn_name: str) -> tuple[bool, tuple]:
    """(was x a tuple, x as a tuple of Tensors); a non-Tensor raises PyTorch's TypeError."""
    is_tuple = isinstance(x, tuple)
    items = x if is_tuple else (x,)
    for i, el in enumerate(items):
        if not isinstance(el, _Tensor):
            where = f"the value at index {i}" if is_tuple else f"the given {arg_name}"
            raise TypeError(
                f"The {arg_name} given to {fn_name} must be either a Tensor or a tuple of "
                f"Tensors but {where} has type {type(el)}."
            )
    return is_tuple, items


def _unpack(res, was_tuple):
    """Undo `_as_tuple` on a result: `was_tuple` is one flag, or (outputs', inputs') flags for
    a nested result (jacobian, hessian)."""
    if isinstance(was_tuple, tuple):
        out_tuple, in_tuple = was_tuple
        if not in_tuple:
            res = tuple(r[0] for r in res)
        return res if out_tuple else res[0]
    return res if was_tuple else res[0]


def _preprocess(inputs: tuple, create_graph: bool, need_graph: bool) -> tuple:
    """Fresh Tensors for `inputs`: under create_graph an input that requires grad stays linked
    to its graph (through a differentiable identity); everything else becomes a new leaf
    (requiring grad when `need_graph`). Always new objects, so that an input the function also
    captures from its closure is not mistaken for the argument."""
    res = []
    for x in inputs:
        if create_graph and x.requires_grad:
            with _autograd.enable_grad():
                res.append(_Clone.apply(x))
        else:
            res.append(x.detach().requires_grad_(need_graph))
    return tuple(res)


def _postprocess(res, create_graph: bool):
    """Detach results (a tuple of Tensors, or a tuple of such tuples) unless create_graph."""
    if create_graph:
        return res
    return tuple(r.detach() if isinstance(r, _Tensor) else _postprocess(r, False) for r in res)


def _validate_v(v: tuple, other: tuple, other_is_tuple: bool) -> None:
    if len(v) != len(other):
        if other_is_tuple:
            raise RuntimeError(
                f"v is a tuple of invalid length: should be {len(other)} but got {len(v)}."
            )
        raise RuntimeError("The given v should contain a single Tensor.")
    for i, (a, b) in enumerate(zip(v, other)):
        if tuple(a.shape) != tuple(b.shape):
            prefix = f"Entry {i} in " if other_is_tuple else ""
            raise RuntimeError(
                f"{prefix}v has invalid size: should be {tuple(b.shape)} but got {tuple(a.shape)}."
            )


_STRICT_MESSAGES = {
    "outputs": "Output {i} of the user-provided function does not require gradients. The "
    "outputs must be computed in a differentiable manner from the input when running in strict "
    "mode.",
    "grad_inputs": "The gradient with respect to input {i} is independent of the inputs of the "
    "user-provided function. This is not allowed in strict mode.",
    "jacobian": "While computing the hessian, found that the jacobian of the user-provided "
    "function with respect to input {i} is independent of the input. This is not allowed in "
    "strict mode. You should ensure that your function is twice differentiable and that the "
    "jacobian depends on the inputs (this would be violated by a linear function for example).",
    "hessian": "The hessian of the user-provided function with respect to input {i} is "
    "independent of the input. This is not allowed in strict mode. You should ensure that your "
    "function is thrice differentiable and that the hessian depends on the inputs.",
}


def _check_requires_grad(tensors, kind: str, strict: bool) -> None:
    """strict mode: every tensor must carry a graph (None: independent of the inputs)."""
    if not strict:
        return
    for i, t in enumerate(tensors):
        if t is None:
            raise RuntimeError(
                f"The output of the user-provided function is independent of input {i}. This "
                "is not allowed in strict mode."
            )
        if not t.requires_grad:
            raise RuntimeError(_STRICT_MESSAGES[kind].format(i=i))


def _autograd_grad(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None):
    """torch.autograd.grad over the outputs that require grad (the others are skipped, with
    their grad_outputs); None for every input when none does. Unused inputs give None."""
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    outs, gos = [], []
    for o, g in zip(outputs, grad_outputs):
        if o is not None and o.requires_grad:
            outs.append(o)
            gos.append(g)
    if not outs:
        return (None,) * len(inputs)
    return _grad(outs, list(inputs), gos, retain_graph=retain_graph, create_graph=create_graph,
                 allow_unused=True)  # fmt: skip


_ZERO_MESSAGES = {
    "back": "The output of the user-provided function is independent of input {i}. This is not "
    "allowed in strict mode.",
    "back_trick": "The gradient with respect to the input is independent of entry {i} in the "
    "grad_outputs when using the double backward trick to compute forward mode gradients. This "
    "is not allowed in strict mode.",
    "double_back": "The jacobian of the user-provided function is independent of input {i}. "
    "This is not allowed in strict mode.",
    "double_back_trick": "The hessian of the user-provided function is independent of entry {i} "
    "in the grad_jacobian. This is not allowed in strict mode as it prevents from using the "
    "double backward trick to replace forward mode AD.",
}


def _fill_in_zeros(grads, refs, strict: bool, create_graph: bool, stage: str) -> tuple:
    """Zeros shaped like refs[i] where grads[i] is None, or in strict mode PyTorch's error."""
    res = []
    for i, g in enumerate(grads):
        if g is None:
            if strict:
                raise RuntimeError(_ZERO_MESSAGES[stage].format(i=i))
            g = _zeros_like(refs[i])
        elif strict and create_graph and not g.requires_grad:
            what = "hessian" if "double" in stage else "jacobian"
            raise RuntimeError(
                f"The {what} of the user-provided function is independent of input {i}. This "
                "is not allowed in strict mode when create_graph=True."
            )
        res.append(g)
    return tuple(res)


def _prepare(func, inputs, v, create_graph: bool, name: str, v_like_outputs: bool):
    """The common start of vjp/jvp/hvp/vhp: fresh inputs, checked v, and (for vjp) outputs."""
    is_in_tuple, inputs = _as_tuple(inputs, "inputs", name)
    inputs = _preprocess(inputs, create_graph, need_graph=True)
    outputs = is_out_tuple = None
    if v_like_outputs:  # vjp: v is shaped like the outputs, so run func first
        is_out_tuple, outputs = _as_tuple(
            func(*inputs), "outputs of the user-provided function", name
        )
    if v is not None:
        _, v = _as_tuple(v, "v", name)
        v = _preprocess(v, create_graph, need_graph=False)
        if v_like_outputs:
            _validate_v(v, outputs, is_out_tuple)
        else:
            _validate_v(v, inputs, is_in_tuple)
    else:
        ref, where = (outputs, "user-provided function returns") if v_like_outputs else (
            inputs, "input to the user-provided function is")  # fmt: skip
        if len(ref) != 1 or ref[0].numel() != 1:
            what = "" if v_like_outputs else "the "
            raise RuntimeError(
                f"The vector v can only be None if {what}{where} a single Tensor with a single "
                "element."
            )
    return is_in_tuple, inputs, v, is_out_tuple, outputs


def _scalar_output(func, inputs, strict: bool, name: str) -> tuple:
    """func(*inputs) as a 1-tuple, checked to be one Tensor with one element (hvp, vhp)."""
    is_out_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", name)
    _check_requires_grad(outputs, "outputs", strict)
    if is_out_tuple:
        raise RuntimeError(f"The function given to {name} should return a single Tensor")
    if outputs[0].numel() != 1:
        raise RuntimeError(
            f"The Tensor returned by the function given to {name} should contain a single element"
        )
    return outputs


# ---------------------------------------------------------------------------------------------
# The public functions


def vjp(func: _Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """v^T J: the vector-Jacobian product of func at inputs (reverse mode).

    Args:
        func: takes Tensors, returns a Tensor or a tuple of Tensors.
        inputs: a Tensor or a tuple of Tensors.
        v: shaped like func's output(s); may be None when the output has one element.
        create_graph: keep the graph of the result, to differentiate it again.
        strict: raise when an output is independent of an input (else: zeros).

    Returns:
        (func's output, vjp), each nested like func's output and like inputs respectively.
    """
    with _autograd.enable_grad():
        is_in, inputs, v, is_out, outputs = _prepare(func, inputs, v, create_graph, "vjp", True)
        _check_requires_grad(outputs, "outputs", strict)
    with _autograd.set_grad_enabled(create_graph or _autograd._is_grad_enabled()):
        got = _autograd_grad(outputs, inputs, v, create_graph=create_graph)
        res = _fill_in_zeros(got, inputs, strict, create_graph, "back")
    outputs = _postprocess(outputs, create_graph)
    return _unpack(outputs, is_out), _unpack(_postprocess(res, create_graph), is_in)


def jvp(func: _Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """J v: the Jacobian-vector product of func at inputs (by the double-backward trick).

    Args:
        func, inputs, create_graph, strict: as for `vjp`.
        v: shaped like inputs; may be None when the input is one Tensor with one element.

    Returns:
        (func's output, jvp), both nested like func's output.
    """
    with _autograd.enable_grad():
        is_in, inputs, v, _, _ = _prepare(func, inputs, v, create_graph, "jvp", False)
        is_out, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "jvp")
        _check_requires_grad(outputs, "outputs", strict)
        # The backward pass is linear in its grad_outputs: their value does not matter (ones,
        # never inf or nan), only that the gradients below are functions of them. Ones and
        # not zeros: some backward formulas branch on a zero gradient (xlogy's PyTorch
        # rule; eigh, svd skip an unused output), which would cut the dependence on it.
        us = tuple(_ones_like(o, requires_grad=True) for o in outputs)
        grad_inputs = _autograd_grad(outputs, inputs, us, create_graph=True)
        _check_requires_grad(grad_inputs, "grad_inputs", strict)
    with _autograd.set_grad_enabled(create_graph or _autograd._is_grad_enabled()):
        got = _autograd_grad(grad_inputs, us, v, create_graph=create_graph)
        res = _fill_in_zeros(got, outputs, strict, create_graph, "back_trick")
    outputs = _postprocess(outputs, create_graph)
    return _unpack(outputs, is_out), _unpack(_postprocess(res, create_graph), is_out)


def jacobian(
    func: _Callable,
    inputs,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    strategy: str = "reverse-mode",
):
    """The Jacobian of func at inputs: J[i][j] has shape output_i.shape + input_j.shape.

    Args:
        func, inputs, create_graph, strict: as for `vjp`.
        vectorize: PyTorch's speed hint; the same values here (rows are computed one by one).
        strategy: "reverse-mode" or "forward-mode" (the same values; forward-mode keeps
            PyTorch's restrictions: it needs vectorize=True and allows neither strict nor
            create_graph).

    Returns:
        A Tensor (Tensor -> Tensor), a tuple over inputs or over outputs, or a tuple of tuples.
    """
    if strategy not in ("forward-mode", "reverse-mode"):
        raise ValueError(
            'Expected strategy to be either "forward-mode" or "reverse-mode". Hint: If your '
            'function has more outputs than inputs, "forward-mode" tends to be more performant. '
            'Otherwise, prefer to use "reverse-mode".'
        )
    if strategy == "forward-mode":
        if create_graph:
            raise NotImplementedError(
                "torch.autograd.functional.jacobian: `create_graph=True` and "
                '`strategy="forward-mode"` are not supported together (yet). Please either set '
                '`create_graph=False` or `strategy="reverse-mode"`.'
            )
        if strict:
            raise RuntimeError(
                "torch.autograd.functional.jacobian: `strict=True` and "
                '`strategy="forward-mode"` are not supported together (yet). Please either set '
                '`strict=False` or `strategy="reverse-mode"`.'
            )
        if not vectorize:
            raise NotImplementedError(
                "Computing Jacobian using forward-AD or forward-over-reverse Hessian is only "
                "implemented for `vectorize=True`."
            )
    if vectorize and strict:
        raise RuntimeError(
            "torch.autograd.functional.jacobian: `strict=True` and `vectorized=True` are not "
            "supported together. Please either set `strict=False` or `vectorize=False`."
        )
    with _autograd.enable_grad():
        is_in, inputs = _as_tuple(inputs, "inputs", "jacobian")
        inputs = _preprocess(inputs, create_graph, need_graph=True)
        is_out, outputs = _as_tuple(
            func(*inputs), "outputs of the user-provided function", "jacobian"
        )
        _check_requires_grad(outputs, "outputs", strict)
        jac = tuple(_jacobian_rows(out, i, inputs, create_graph, strict)
                    for i, out in enumerate(outputs))  # fmt: skip
    return _unpack(_postprocess(jac, create_graph), (is_out, is_in))


def _jacobian_rows(out, i: int, inputs, create_graph: bool, strict: bool) -> tuple:
    """d out / d input_j for every j: one backward per element of out, seeded one-hot."""
    rows: list[list] = [[] for _ in inputs]
    n = out.numel()
    for k in range(n):
        seed = _zeros_like(out).reshape(-1)
        seed._data[k] = 1  # a fresh array: writing it in place is safe
        got = _autograd_grad((out,), inputs, (seed.reshape(out.shape),), create_graph=create_graph,
                             retain_graph=True)  # fmt: skip
        for j, (g, x) in enumerate(zip(got, inputs)):
            if g is None:
                if strict:
                    raise RuntimeError(
                        f"Output {i} of the user-provided function is independent of input {j}. "
                        "This is not allowed in strict mode."
                    )
                g = _zeros_like(x)
            elif strict and create_graph and not g.requires_grad:
                raise RuntimeError(
                    f"The jacobian of the user-provided function is independent of input {i}. "
                    "This is not allowed in strict mode when create_graph=True."
                )
            rows[j].append(g)
    shape = tuple(out.shape)
    return tuple(_reshape(_stack(r, 0), shape + tuple(x.shape)) if n else
                 _zeros(shape + tuple(x.shape), dtype=x.dtype)
                 for r, x in zip(rows, inputs))  # fmt: skip


def hessian(
    func: _Callable,
    inputs,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    outer_jacobian_strategy: str = "reverse-mode",
):
    """The Hessian of a scalar func at inputs: H[i][j] has shape input_i.shape + input_j.shape
    (a Tensor for a single Tensor input, a tuple of tuples for a tuple). The Jacobian of the
    Jacobian, as PyTorch computes it; arguments as for `jacobian`."""
    is_in, inputs = _as_tuple(inputs, "inputs", "hessian")
    if outer_jacobian_strategy not in ("forward-mode", "reverse-mode"):
        raise ValueError('Expected strategy to be either "forward-mode" or "reverse-mode".')

    def single_output(*inp):
        out = func(*inp)
        is_tuple, outs = _as_tuple(out, "outputs of the user-provided function", "hessian")
        _check_requires_grad(outs, "outputs", strict)
        if is_tuple:
            raise RuntimeError("The function given to hessian should return a single Tensor")
        if out.numel() != 1:
            raise RuntimeError(
                "The Tensor returned by the function given to hessian should contain a single "
                "element"
            )
        return out.reshape(())

    def jac_func(*inp):
        jac = jacobian(single_output, inp, create_graph=True)
        _check_requires_grad(jac, "jacobian", strict)
        return jac

    res = jacobian(jac_func, inputs, create_graph=create_graph, strict=strict,
                   vectorize=vectorize, strategy=outer_jacobian_strategy)  # fmt: skip
    return _unpack(res, (is_in, is_in))


def vhp(func: _Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """v^T H for a scalar func (reverse over reverse). Arguments as for `vjp`, v shaped like
    inputs. Returns (func's output, vhp nested like inputs)."""
    with _autograd.enable_grad():
        is_in, inputs, v, _, _ = _prepare(func, inputs, v, create_graph, "vhp", False)
        outputs = _scalar_output(func, inputs, strict, "vhp")
        jac = _autograd_grad(outputs, inputs, create_graph=True)
        _check_requires_grad(jac, "jacobian", strict)
    with _autograd.set_grad_enabled(create_graph or _autograd._is_grad_enabled()):
        got = _autograd_grad(jac, inputs, v, create_graph=create_graph)
        res = _fill_in_zeros(got, inputs, strict, create_graph, "double_back")
    return _postprocess(outputs, create_graph)[0], _unpack(_postprocess(res, create_graph), is_in)


def hvp(func: _Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """H v for a scalar func, by the double-backward trick (for a twice differentiable func,
    H is symmetric and hvp equals vhp). Arguments and result as for `vhp`."""
    with _autograd.enable_grad():
        is_in, inputs, v, _, _ = _prepare(func, inputs, v, create_graph, "hvp", False)
        outputs = _scalar_output(func, inputs, strict, "hvp")
        jac = _autograd_grad(outputs, inputs, create_graph=True)
        _check_requires_grad(jac, "jacobian", strict)
        grad_jac = tuple(_ones_like(x, requires_grad=True) for x in inputs)  # ones: see jvp
        double_back = _autograd_grad(jac, inputs, grad_jac, create_graph=True)
        _check_requires_grad(jac, "hessian", strict)
    with _autograd.set_grad_enabled(create_graph or _autograd._is_grad_enabled()):
        got = _autograd_grad(double_back, grad_jac, v, create_graph=create_graph)
        res = _fill_in_zeros(got, inputs, strict, create_graph, "double_back_trick")
    return _postprocess(outputs, create_graph)[0], _unpack(_postprocess(res, create_graph), is_in)
