"""`torch.autograd.gradcheck` and `gradgradcheck` with PyTorch's signatures and results, built on
`descent.explain.gradcheck` (the finite-difference check that explains its findings).

PyTorch's contract, kept here:

* `inputs` is a Tensor or a sequence; the Tensors with `requires_grad=True` are checked (at least
  one must be: ValueError otherwise), everything else is passed to `func` as it is;
* the check runs in the inputs' own dtype (a float32 input draws PyTorch's warning that the check
  will likely fail; descent.explain would silently upcast to float64 instead);
* complex inputs and outputs are checked as their real and imaginary parts, as PyTorch's
  (z.grad = dL/dx + i dL/dy is the real Jacobian's row read as complex; explain's _realify);
* every floating or complex output is checked against every checked input: |analytic - numeric| <=
  atol + rtol |numeric| over the full Jacobian (random projections with `fast_mode=True`);
* the result is True, or `GradcheckError` (a RuntimeError, as torch's) whose message starts
  with PyTorch's "Jacobian mismatch for output i with respect to input j," followed by
  descent.explain's account (worst element, analytic and numeric values); False instead of
  the error with `raise_exception=False`.

`gradgradcheck` checks second derivatives PyTorch's way: `gradcheck` of the function
(inputs, grad_outputs) -> the vector-Jacobian products built with `create_graph=True`, with
random grad_outputs (uniform in [-1, 1), from a local seeded generator: descent's default
generator is not touched) that are themselves checked inputs.

`descent.autograd.gradcheck` forwards here (autograd.py's `_TORCH_NAMES`); the explain tool is
imported on first call, so the engine never loads it.
"""

from __future__ import annotations

import warnings

import numpy as np

from . import autograd, backend

__all__ = ["GradcheckError", "gradcheck", "gradgradcheck"]


class GradcheckError(RuntimeError):
    """A gradient check failed (torch.autograd.gradcheck.GradcheckError); `result` holds
    descent.explain's `GradcheckResult` when the failure was a Jacobian mismatch."""

    def __init__(self, message: str, result=None) -> None:
        super().__init__(message)
        self.result = result


def _tuple(x) -> tuple:
    if isinstance(x, autograd._tensor_class) or x is None:
        return (x,)
    return tuple(x)


def _fail(message: str, raise_exception: bool, result=None) -> bool:
    if raise_exception:
        raise GradcheckError(message, result)
    return False


def gradcheck(
    func,
    inputs,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    check_batched_forward_grad: bool = False,
    check_forward_ad: bool = False,
    check_backward_ad: bool = True,
    fast_mode: bool = False,
    masked: bool | None = None,
) -> bool:
    """Check `func`'s gradients against central finite differences (torch.autograd.gradcheck).

    Args:
        func: a function of the inputs returning a Tensor or a sequence of Tensors.
        inputs: a Tensor or a sequence; those with requires_grad=True are checked.
        eps: the finite-difference step.
        atol, rtol: a Jacobian entry passes when |analytic - numeric| <= atol + rtol |numeric|.
        raise_exception: raise GradcheckError on failure (else return False).
        nondet_tol, check_undefined_grad, masked: accepted; descent's backward is
            deterministic and has no undefined gradients, masked tensors do not exist.
        check_grad_dtypes: also require each gradient's dtype to be its input's.
        check_batched_grad, check_batched_forward_grad: not supported (NotImplementedError
            when True).
        check_forward_ad: also check forward-mode Jacobian columns (descent.autograd.forward_ad)
            against finite differences.
        check_backward_ad: check reverse mode (at least one of the two must be True).
        fast_mode: compare random projections <u, J v> instead of the full Jacobian.

    Returns:
        True when every check passed (False on failure with raise_exception=False).

    Raises:
        GradcheckError: a Jacobian mismatch (or a gradient dtype mismatch).
        ValueError: no input requires grad, or neither mode is checked.
    """
    for flag, name in ((check_batched_grad, "check_batched_grad"),
                       (check_batched_forward_grad, "check_batched_forward_grad")):  # fmt: skip
        if flag:
            raise NotImplementedError(
                f"gradcheck: {name}=True is not supported by descent (no batched gradients); "
                "check with the default arguments"
            )
    if not (check_backward_ad or check_forward_ad):
        raise ValueError(
            "gradcheck: Expected at least one of check_forward_ad or check_backward_ad to be True"
        )
    inputs = _tuple(inputs)
    tensor_class = autograd._tensor_class
    diff = [i for i, x in enumerate(inputs) if isinstance(x, tensor_class) and x.requires_grad]
    if not diff:
        raise ValueError(
            "gradcheck expects at least one input tensor to require gradient, but none of them "
            "have requires_grad=True."
        )
    for i in diff:
        if inputs[i].dtype not in (np.float64, np.complex128):
            warnings.warn(
                f"Input #{i} requires gradient and is not a double precision floating point or "
                "complex. This check will likely fail if all the inputs are not of double "
                "precision floating point or complex. ",
                UserWarning,
                stacklevel=2,
            )
    with autograd.enable_grad():
        outputs = _tuple(func(*inputs))
    checked = [k for k, o in enumerate(outputs)
               if isinstance(o, tensor_class) and o.dtype.kind in "fc"]  # fmt: skip
    if check_grad_dtypes:
        bad = _grad_dtype_mismatch(outputs, checked, [inputs[i] for i in diff])
        if bad is not None:
            return _fail(bad, raise_exception)
    if check_forward_ad:
        ok = _check_forward_ad(func, inputs, diff, checked, eps, atol, rtol, fast_mode,
                               raise_exception)  # fmt: skip
        if not ok or not check_backward_ad:
            return ok
    from .explain.gradcheck import gradcheck as explain_gradcheck  # a tool: loaded on first call

    # The check's real dtype: float32 when any checked input is float32 or complex64.
    dtype = min((_real_dtype(inputs[i].dtype) for i in diff), key=lambda d: d.itemsize)
    for k in checked:

        def output_k(*ts, k=k):
            args = list(inputs)
            for i, t in zip(diff, ts):
                args[i] = t
            return _tuple(func(*args))[k]

        with warnings.catch_warnings():
            # PyTorch's warning about non-double inputs was given above; explain's is the same.
            warnings.filterwarnings("ignore", message=".*(finite|central) differences")
            result = explain_gradcheck(
                output_k, [inputs[i] for i in diff], eps, atol, rtol, max_full=0 if fast_mode
                else 1 << 62, dtype=dtype, _name=f"output {k} of {_name(func)}",
            )  # fmt: skip
        if not result.passed:
            j = "a random projection" if result.worst_input is None else result.worst_input
            return _fail(
                f"Jacobian mismatch for output {k} with respect to input {j},\n{result}",
                raise_exception,
                result,
            )
    return True


def _check_forward_ad(func, inputs, diff, checked, eps, atol, rtol, fast_mode,
                      raise_exception) -> bool:  # fmt: skip
    """PyTorch's check_forward_ad: J v from descent.autograd.forward_ad (one dual input at a
    time) against central differences (f(x + eps v) - f(x - eps v)) / (2 eps), for v each
    basis vector of each checked input (one random v per input with fast_mode)."""
    from . import autograd_forward_ad as fwAD

    rng = np.random.default_rng(0)
    for pos, i in enumerate(diff):
        x = inputs[i]
        xp = backend.get_array_module(x._data)
        # complex input: the real and the imaginary unit in each element (two real directions)
        units = (1, 1j) if x._data.dtype.kind == "c" else (1,)
        if fast_mode:
            v = rng.uniform(-1, 1, tuple(x.shape))
            if len(units) == 2:
                v = v + 1j * rng.uniform(-1, 1, tuple(x.shape))
            directions = [xp.asarray(v.astype(x._data.dtype))]
        else:
            directions = []
            for j in range(x.numel()):
                for unit in units:
                    e = xp.zeros(x._data.size, dtype=x._data.dtype)
                    e[j] = unit
                    directions.append(e.reshape(x._data.shape))

        def outputs_at(arg, i=i):
            args = list(inputs)
            args[i] = arg
            outs = _tuple(func(*args))
            return [outs[k] for k in checked]

        for j, v in enumerate(directions):
            base = x.detach()
            with fwAD.dual_level():
                outs = outputs_at(fwAD.make_dual(base, autograd._new_tensor(v)))
                tangents = [fwAD.unpack_dual(o).tangent for o in outs]
            plus = outputs_at(autograd._new_tensor(base._data + eps * v))
            minus = outputs_at(autograd._new_tensor(base._data - eps * v))
            for k, t, p, m in zip(checked, tangents, plus, minus):
                numeric = (backend.as_numpy(p._data) - backend.as_numpy(m._data)) / (2 * eps)
                analytic = np.zeros_like(numeric) if t is None else backend.as_numpy(t._data)
                if not np.allclose(analytic, numeric, rtol=rtol, atol=atol, equal_nan=True):
                    where = ("a random direction" if fast_mode else
                             f"element {j // len(units)} of input {pos}"
                             + (" (imaginary unit)" if j % len(units) else ""))  # fmt: skip
                    return _fail(
                        f"Jacobian computed with forward mode mismatch for output {k} with "
                        f"respect to input {pos},\nnumerical: {numeric}\nanalytical: {analytic}\n"
                        f"(the column J v for v = {where}; forward mode is "
                        "descent.autograd.forward_ad)",
                        raise_exception,
                    )
    return True


def _real_dtype(dt) -> np.dtype:
    """float64 for complex128, float32 for complex64, a real dtype itself: a complex number is
    checked as its two real parts (explain.gradcheck's _realify)."""
    dt = np.dtype(dt)
    if dt.kind == "c":
        return np.dtype(np.float64 if dt == np.complex128 else np.float32)
    return dt


def _name(func) -> str:
    return getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)


def _grad_dtype_mismatch(outputs, checked, leaves):
    """PyTorch's check_grad_dtypes: each gradient in its input's dtype (a message, or None)."""
    roots = [outputs[k] for k in checked if outputs[k].requires_grad]
    if not roots:
        return None
    seeds = [autograd._new_tensor(backend.get_array_module(o._data).ones_like(o._data))
             for o in roots]  # fmt: skip
    grads = autograd.grad(roots, leaves, seeds, retain_graph=True, allow_unused=True)
    for j, (g, x) in enumerate(zip(grads, leaves)):
        if g is not None and g.dtype != x.dtype:
            return f"Gradient has dtype mismatch: input {j} is {x.dtype}, its gradient {g.dtype}"
    return None


def gradgradcheck(
    func,
    inputs,
    grad_outputs=None,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    gen_non_contig_grad_outputs: bool = False,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    check_fwd_over_rev: bool = False,
    check_rev_over_rev: bool = True,
    fast_mode: bool = False,
    masked: bool = False,
) -> bool:
    """Check second derivatives (torch.autograd.gradgradcheck): `gradcheck` of
    (inputs, grad_outputs) -> d(sum grad_outputs * outputs)/d(inputs), built with
    create_graph=True.

    Args:
        func, inputs, eps, atol, rtol, raise_exception, nondet_tol, check_undefined_grad,
            check_grad_dtypes, fast_mode, masked: as in `gradcheck`.
        grad_outputs: one Tensor per floating output; random (uniform in [-1, 1), requiring
            grad, so they are checked too) when None.
        gen_non_contig_grad_outputs: accepted (descent's ops accept any layout).
        check_batched_grad, check_fwd_over_rev: not supported (NotImplementedError when True).
        check_rev_over_rev: must be True.

    Returns:
        True, or False on failure with raise_exception=False.
    """
    if check_batched_grad or check_fwd_over_rev:
        raise NotImplementedError(
            "gradgradcheck: check_batched_grad and check_fwd_over_rev are not supported by "
            "descent (no batched gradients; forward over reverse: check_forward_ad of the gradient)"
        )
    if not check_rev_over_rev:
        raise ValueError("gradgradcheck: check_rev_over_rev must be True (reverse over reverse)")
    inputs = _tuple(inputs)
    tensor_class = autograd._tensor_class
    diff = [i for i, x in enumerate(inputs) if isinstance(x, tensor_class) and x.requires_grad]
    if not diff:
        raise ValueError(
            "gradcheck expects at least one input tensor to require gradient, but none of them "
            "have requires_grad=True."
        )
    with autograd.enable_grad():
        outputs = _tuple(func(*inputs))
    floating = [k for k, o in enumerate(outputs)
                if isinstance(o, tensor_class) and o.dtype.kind in "fc"]  # fmt: skip
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        grad_outputs = []
        for k in floating:
            o = outputs[k]
            xp = backend.get_array_module(o._data)
            u = rng.uniform(-1.0, 1.0, tuple(o.shape))
            if o.dtype.kind == "c":  # a complex cotangent: random real and imaginary parts
                u = u + 1j * rng.uniform(-1.0, 1.0, tuple(o.shape))
            u = xp.asarray(u.astype(o.dtype))
            grad_outputs.append(autograd._new_tensor(u, True))
    grad_outputs = list(_tuple(grad_outputs))
    if len(grad_outputs) != len(floating):
        raise RuntimeError(
            f"gradgradcheck: got {len(grad_outputs)} grad_outputs for {len(floating)} floating "
            "outputs"
        )
    n_in = len(inputs)

    def first_derivatives(*args):
        xs, gos = list(args[:n_in]), args[n_in:]
        for i in diff:  # a finite-difference evaluation passes tensors without grad
            if not xs[i].requires_grad:
                xs[i] = autograd._new_tensor(xs[i]._data, True)
        with autograd.enable_grad():
            outs = _tuple(func(*xs))
            roots = [outs[k] for k in floating]
            leaves = [xs[i] for i in diff]
            used = [(r, g) for r, g in zip(roots, gos) if r.requires_grad]
            if not used:
                return tuple(_zeros(x) for x in leaves)
            grads = autograd.grad([r for r, _ in used], leaves, [g for _, g in used],
                                  create_graph=True, allow_unused=True)  # fmt: skip
        return tuple(_zeros(x) if g is None else g for g, x in zip(grads, leaves))

    return gradcheck(
        first_derivatives, tuple(inputs) + tuple(grad_outputs), eps=eps, atol=atol, rtol=rtol,
        raise_exception=raise_exception, nondet_tol=nondet_tol,
        check_undefined_grad=check_undefined_grad, check_grad_dtypes=check_grad_dtypes,
        fast_mode=fast_mode,
    )  # fmt: skip


def _zeros(x):
    """A zero gradient for an input that the outputs do not use (PyTorch materializes it)."""
    xp = backend.get_array_module(x._data)
    return autograd._new_tensor(xp.zeros_like(x._data))
