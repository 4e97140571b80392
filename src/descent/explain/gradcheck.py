"""Gradient checks: the partial derivative, measured.

`gradcheck(f, inputs)` compares the gradients descent computes for `f` (reverse mode) with
central finite differences,

    df/dx_j ~ (f(x + eps e_j) - f(x - eps e_j)) / (2 eps),

whose error is O(eps^2) from truncation plus O(u / eps) from rounding (u the unit roundoff).
In float64 (u ~ 1e-16) eps = 1e-6 makes both tiny; in float32 (u ~ 6e-8) the rounding term is
about 0.1 and a correct gradient looks wrong, hence the warning and the float64 default.

Small problems compare the whole Jacobian element by element. Large ones (more than
`max_full` input or output elements) compare random projections: for random u (output-shaped)
and v (input-shaped), reverse mode gives <J^T u, v> with one backward pass, and finite differences
give <u, f(x + eps v) - f(x - eps v)> / (2 eps) with two forward passes.

`gradgradcheck(f, inputs)` runs the same check on x -> J(x)^T u (a vector-Jacobian product built
with `create_graph=True`), which verifies second derivatives.

Complex inputs and outputs are checked as their real and imaginary parts (PyTorch's way): a
complex element is two real ones, and an element index ending in 0 is a real part, in 1 an
imaginary part (`_realify`).

Both return a `GradcheckResult` that explains instead of printing a boolean: the worst element,
its input and index, the analytic and numeric values there, and the relative error.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import autograd, backend
from ..tensor import Tensor

__all__ = ["GradcheckError", "GradcheckResult", "gradcheck", "gradgradcheck"]


class GradcheckError(AssertionError):
    """Raised by gradcheck(..., raise_on_failure=True); the message is the result's text."""

    def __init__(self, result: GradcheckResult) -> None:
        super().__init__(str(result))
        self.result = result


@dataclass
class GradcheckResult:
    """What a gradient check found.

    Attributes:
        passed: every compared value satisfied |analytic - numeric| <= atol + rtol |numeric|.
        name: the function checked (and the op that produced its output).
        order: 1 for gradcheck, 2 for gradgradcheck.
        method: "full Jacobian" or "random projections".
        max_abs_error: largest |analytic - numeric| over all compared values.
        max_rel_error: largest |analytic - numeric| / max(|numeric|, tiny).
        worst_input: index of the input holding the worst value (None for projections).
        worst_index: its element index within that input (or the output element for a full
            Jacobian row; see `worst_output`), None for projections.
        worst_output: output element of the worst Jacobian entry (None for projections).
        analytic: the reverse-mode value at the worst point.
        numeric: the finite-difference value at the worst point.
        n_compared: how many values were compared.
        eps, atol, rtol: the settings used.
        dtype: the dtype the check ran in.
    """

    passed: bool
    name: str
    order: int
    method: str
    max_abs_error: float
    max_rel_error: float
    worst_input: int | None
    worst_index: tuple[int, ...] | None
    worst_output: tuple[int, ...] | None
    analytic: float
    numeric: float
    n_compared: int
    eps: float
    atol: float
    rtol: float
    dtype: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        what = "gradient" if self.order == 1 else "second derivative (gradgradcheck)"
        status = "PASSED" if self.passed else "FAILED"
        lines = [
            f"gradcheck {status}: {what} of {self.name}",
            f"  method: {self.method}, {self.n_compared} values compared in {self.dtype} "
            f"(eps={self.eps:g}, atol={self.atol:g}, rtol={self.rtol:g})",
            f"  max abs error {self.max_abs_error:.3e}, max rel error {self.max_rel_error:.3e}",
        ]
        if self.n_compared:
            if self.worst_input is not None:
                where = f"input {self.worst_input}, element {self.worst_index}"
                if self.worst_output is not None:
                    where += f", output element {self.worst_output}"
            else:
                where = "a random projection <u, J v>"
            lines.append(
                f"  worst at {where}: analytic {self.analytic:.6g} vs numeric {self.numeric:.6g}"
            )
        if not self.passed:
            lines.append(
                "  the backward pass disagrees with finite differences: check the op's backward "
                "formula for this input (or a kink/discontinuity near this point)"
            )
        return "\n".join(lines)


def _name_of(f: Callable, out: Tensor | None) -> str:
    name = getattr(f, "__qualname__", None) or getattr(f, "__name__", None) or repr(f)
    made_by = getattr(f, "made_by", None)  # a complex output seen as real pairs (_realify)
    if made_by is None and out is not None and out._node is not None:
        made_by = out._node.name
    if made_by is not None:
        return f"{name!r} (output made by '{made_by}')"
    return repr(name)


def _realify(f: Callable, inputs):
    """(f', inputs') with every complex input and output seen as real (..., 2) pairs, as
    PyTorch's gradcheck treats a complex number as two real ones: a complex input is passed as
    its view_as_real pairs (f' rebuilds it with view_as_complex, a recorded op) and a complex
    output is returned as view_as_real. Under PyTorch's convention (z.grad = dL/dx + i dL/dy)
    the real Jacobian of f' is what both reverse mode and finite differences see, so the check
    covers the real and the imaginary parts. Real inputs and outputs are unchanged (f itself
    when nothing is complex)."""
    if isinstance(inputs, (Tensor, np.ndarray)) or np.isscalar(inputs):
        inputs = (inputs,)
    inputs = tuple(inputs)
    positions = []
    out_inputs = []
    for i, x in enumerate(inputs):
        data = x._data if isinstance(x, Tensor) else x
        if getattr(data, "dtype", None) is not None and data.dtype.kind == "c":
            pairs = np.ascontiguousarray(backend.as_numpy(data)).view(
                np.float64 if data.dtype == np.complex128 else np.float32
            ).reshape(tuple(data.shape) + (2,))  # fmt: skip
            if isinstance(x, Tensor):
                t = Tensor._wrap(pairs.copy())
                t._rg = bool(x.requires_grad)
                x = t
            else:
                x = pairs.copy()
            positions.append(i)
        out_inputs.append(x)

    from ..ops.complex import view_as_complex, view_as_real  # avoids an import cycle

    def f_real(*ts):
        ts = list(ts)
        for i in positions:
            ts[i] = view_as_complex(ts[i])
        out = f(*ts)
        if isinstance(out, Tensor) and out._data.dtype.kind == "c":
            # the op that made the complex output names the check, not the view_as_real
            f_real.made_by = out._node.name if out._node is not None else None
            out = view_as_real(out)
        return out

    f_real.made_by = None

    f_real.__qualname__ = getattr(f, "__qualname__", None) or getattr(f, "__name__", repr(f))
    return f_real, tuple(out_inputs)


def _prepare(inputs, dtype, fn_name: str):
    """Float copies of the inputs in the check's dtype, and the indices to differentiate."""
    if isinstance(inputs, (Tensor, np.ndarray)) or np.isscalar(inputs):
        inputs = (inputs,)
    arrays, flags = [], []
    for x in inputs:
        if isinstance(x, Tensor):
            a = backend.as_numpy(x._data)
            flags.append(bool(x.requires_grad))
        else:
            a = np.asarray(x)
            flags.append(None)
        arrays.append(a)
    floating = [i for i, a in enumerate(arrays) if a.dtype.kind in "fV"]
    if not floating:
        raise ValueError(f"{fn_name}: no floating-point inputs to differentiate")
    chosen = [i for i in floating if flags[i]]
    if not chosen:
        chosen = floating  # nothing marked: check every floating input
    low = [i for i in chosen if arrays[i].dtype.itemsize < 8]
    check_dtype = np.dtype(dtype) if dtype is not None else np.dtype(np.float64)
    if low:
        dts = sorted({str(arrays[i].dtype) for i in low})
        if dtype is None:
            warnings.warn(
                f"{fn_name}: inputs {low} are {', '.join(dts)}; checking in float64 instead. "
                "Central differences in float32 carry rounding error of about 6e-8/eps "
                "(~0.06 for eps=1e-6), which would hide or fake gradient errors.",
                stacklevel=3,
            )
        elif check_dtype.itemsize < 8:
            warnings.warn(
                f"{fn_name}: checking in {check_dtype}: central differences carry rounding "
                f"error of about {np.finfo(check_dtype).eps:.0e}/eps, so expect false failures "
                "unless eps and the tolerances are large; float64 is the reliable choice.",
                stacklevel=3,
            )
    elif dtype is not None and check_dtype.itemsize < 8:
        warnings.warn(
            f"{fn_name}: checking in {check_dtype}: finite differences are unreliable below "
            "float64 precision",
            stacklevel=3,
        )
    # C order: the checks perturb elements through a.reshape(-1), which must be a view (a
    # transposed input keeps its strides under astype's default order="K" and would be copied).
    arrays = [a.astype(check_dtype, order="C") if i in chosen else a for i, a in enumerate(arrays)]
    return arrays, chosen


def _call(f, arrays, chosen, requires_grad: bool) -> tuple[list[Tensor], Tensor]:
    ts = []
    for i, a in enumerate(arrays):
        t = Tensor._wrap(a)
        if requires_grad and i in chosen:
            t._rg = True
        ts.append(t)
    out = f(*ts)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: the function must return a descent Tensor, got {type(out)}")
    return ts, out


def _evaluate(f, arrays, chosen) -> np.ndarray:
    with autograd.no_grad():
        return backend.as_numpy(_call(f, arrays, chosen, False)[1]._data).astype(np.float64)


def gradcheck(
    f: Callable,
    inputs,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_on_failure: bool = False,
    *,
    max_full: int = 512,
    n_projections: int = 8,
    seed: int = 0,
    dtype=None,
    _order: int = 1,
    _name: str | None = None,
) -> GradcheckResult:
    """Compare f's reverse-mode gradients with central finite differences.

    Args:
        f: a function of descent Tensors returning one Tensor (any shape).
        inputs: a Tensor/array or a sequence of them. Floating (or complex) inputs with
            requires_grad=True are checked (all floating inputs when none is marked); others
            are passed through. Complex inputs and outputs count as (real, imaginary) pairs.
        eps: finite-difference step.
        atol, rtol: a value passes when |analytic - numeric| <= atol + rtol * |numeric|.
        raise_on_failure: raise `GradcheckError` (with the result's text) instead of returning
            a failed result.
        max_full: compare the full Jacobian when the checked inputs and the output each have at
            most this many elements; otherwise compare `n_projections` random projections.
        n_projections: number of random <u, J v> comparisons for large problems.
        seed: seed of the random projections.
        dtype: the dtype to check in (float64 by default; lower precision warns).

    Returns:
        A `GradcheckResult` (truthy when passed) with a readable `str()`.

    Raises:
        GradcheckError: when the check fails and raise_on_failure is True.
    """
    fname = "gradcheck" if _order == 1 else "gradgradcheck"
    f, inputs = _realify(f, inputs)
    if dtype is not None and np.dtype(dtype).kind == "c":
        dtype = np.float64 if np.dtype(dtype) == np.complex128 else np.float32
    arrays, chosen = _prepare(inputs, dtype, fname)
    check_dtype = arrays[chosen[0]].dtype
    with autograd.enable_grad():
        ts, out = _call(f, arrays, chosen, True)
    name = _name or _name_of(f, out)
    n_in = sum(arrays[i].size for i in chosen)
    n_out = out.numel()
    leaves = [ts[i] for i in chosen]

    def vjp(u: np.ndarray) -> list[np.ndarray]:
        if not out.requires_grad:  # output does not depend on the inputs at all
            return [np.zeros(arrays[i].shape) for i in chosen]
        gs = autograd.grad(out, leaves, grad_outputs=Tensor._wrap(u.astype(out.dtype)),
                           retain_graph=True, allow_unused=True)  # fmt: skip
        return [
            np.zeros(arrays[i].shape) if g is None else backend.as_numpy(g._data).astype(np.float64)
            for g, i in zip(gs, chosen)
        ]

    if n_in <= max_full and n_out <= max_full:
        method = "full Jacobian"
        # Numeric Jacobian, one column per input element: (n_out,) per column.
        analytic_cols, numeric_cols, where = [], [], []
        rows = []
        for k in range(n_out):
            u = np.zeros(n_out)
            u[k] = 1.0
            rows.append(vjp(u.reshape(out.shape)))
        for pos, i in enumerate(chosen):
            a = arrays[i]
            for j in range(a.size):
                flat = a.reshape(-1)
                old = flat[j]
                flat[j] = old + eps
                fp = _evaluate(f, arrays, chosen).reshape(-1)
                flat[j] = old - eps
                fm = _evaluate(f, arrays, chosen).reshape(-1)
                flat[j] = old
                numeric_cols.append((fp - fm) / (2 * eps))
                analytic_cols.append(np.array([rows[k][pos].reshape(-1)[j] for k in range(n_out)]))
                where.append((i, np.unravel_index(j, a.shape) if a.ndim else ()))
        if numeric_cols:
            numeric = np.stack(numeric_cols, 1)  # (n_out, n_in)
            analytic = np.stack(analytic_cols, 1)
        else:
            numeric = analytic = np.zeros((n_out, 0))
    else:
        method = "random projections"
        rng = np.random.default_rng(seed)
        numeric_l, analytic_l = [], []
        for _ in range(n_projections):
            u = rng.standard_normal(out.shape)
            vs = [rng.standard_normal(arrays[i].shape) for i in chosen]
            g = vjp(u)
            analytic_l.append(sum(float((gi * v).sum()) for gi, v in zip(g, vs)))
            base = [a.copy() for a in arrays]
            plus, minus = list(base), list(base)
            for i, v in zip(chosen, vs):
                plus[i] = (base[i] + eps * v).astype(check_dtype)
                minus[i] = (base[i] - eps * v).astype(check_dtype)
            fp = _evaluate(f, plus, chosen)
            fm = _evaluate(f, minus, chosen)
            numeric_l.append(float((u * (fp - fm)).sum() / (2 * eps)))
        numeric = np.array(numeric_l)[None, :]
        analytic = np.array(analytic_l)[None, :]
        where = None

    err = np.abs(analytic - numeric)
    bound = atol + rtol * np.abs(numeric)
    passed = bool(np.all(err <= bound)) and bool(np.all(np.isfinite(analytic)))
    n_compared = int(err.size)
    if n_compared:
        rel = err / np.maximum(np.abs(numeric), np.finfo(np.float64).tiny)
        # The worst value is the one furthest past its bound (NaN counts as worst).
        score = np.where(np.isfinite(err), err / bound, np.inf)
        k, c = np.unravel_index(int(np.argmax(score)), err.shape)
        max_abs, max_rel = float(np.nanmax(err)), float(np.nanmax(rel))
        a_w, n_w = float(analytic[k, c]), float(numeric[k, c])
    else:
        k = c = 0
        max_abs = max_rel = a_w = n_w = 0.0
    if where is not None and n_compared:
        wi, widx = where[c]
        worst_input = wi
        worst_index = tuple(int(v) for v in widx)
        worst_output = tuple(int(v) for v in np.unravel_index(k, out.shape)) if out.ndim else ()
    else:
        worst_input = worst_index = worst_output = None
    result = GradcheckResult(
        passed=passed, name=name, order=_order, method=method, max_abs_error=max_abs,
        max_rel_error=max_rel, worst_input=worst_input, worst_index=worst_index,
        worst_output=worst_output, analytic=a_w, numeric=n_w, n_compared=n_compared, eps=eps,
        atol=atol, rtol=rtol, dtype=str(check_dtype),
    )  # fmt: skip
    if raise_on_failure and not passed:
        raise GradcheckError(result)
    return result


def gradgradcheck(
    f: Callable,
    inputs,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_on_failure: bool = False,
    *,
    grad_outputs=None,
    max_full: int = 512,
    n_projections: int = 8,
    seed: int = 0,
    dtype=None,
) -> GradcheckResult:
    """Check second derivatives: gradcheck of x -> J(x)^T u built with create_graph=True.

    Args:
        f, inputs, eps, atol, rtol, raise_on_failure, max_full, n_projections, seed, dtype:
            as in `gradcheck`.
        grad_outputs: the fixed cotangent u (output-shaped); random (seeded) when None.

    Returns:
        A `GradcheckResult` with order 2.
    """
    f, inputs = _realify(f, inputs)
    if dtype is not None and np.dtype(dtype).kind == "c":
        dtype = np.float64 if np.dtype(dtype) == np.complex128 else np.float32
    if grad_outputs is not None:  # a complex cotangent is the real pairs of the real output
        go = backend.as_numpy(grad_outputs._data) if isinstance(grad_outputs, Tensor) \
            else np.asarray(grad_outputs)  # fmt: skip
        if go.dtype.kind == "c":
            grad_outputs = np.stack([go.real, go.imag], -1)
    arrays, chosen = _prepare(inputs, dtype, "gradgradcheck")
    with autograd.no_grad():
        out0 = _call(f, arrays, chosen, False)[1]
    if grad_outputs is None:
        u = np.random.default_rng(seed + 1).standard_normal(out0.shape)
    else:
        u = np.asarray(backend.as_numpy(grad_outputs._data) if isinstance(grad_outputs, Tensor)
                       else grad_outputs, dtype=np.float64)  # fmt: skip

    from ..ops.shape import concatenate, reshape  # avoids an import cycle

    def first_derivative(*ts):
        ts = list(ts)
        for i in chosen:
            if not ts[i].requires_grad:  # a finite-difference evaluation (under no_grad)
                ts[i] = Tensor._wrap(ts[i]._data)
                ts[i]._rg = True
        with autograd.enable_grad():
            out = f(*ts)
        leaves = [ts[i] for i in chosen]
        if not out.requires_grad:
            return Tensor._wrap(np.zeros(sum(t.numel() for t in leaves), dtype=out.dtype))
        with autograd.enable_grad():
            gs = autograd.grad(
                out, leaves, grad_outputs=Tensor._wrap(u.astype(out.dtype)), create_graph=True,
                allow_unused=True,
            )
        flat = [
            reshape(g, -1) if g is not None else Tensor._wrap(np.zeros(t.numel(), dtype=t.dtype))
            for g, t in zip(gs, leaves)
        ]
        return concatenate(flat) if len(flat) > 1 else flat[0]

    # Mark exactly the chosen inputs so that gradcheck differentiates the same ones.
    marked = []
    for i, a in enumerate(arrays):
        t = Tensor._wrap(a)
        if i in chosen:
            t._rg = True
        marked.append(t)
    name = _name_of(f, None)
    return gradcheck(
        first_derivative, marked, eps, atol, rtol, raise_on_failure, max_full=max_full,
        n_projections=n_projections, seed=seed, dtype=arrays[chosen[0]].dtype, _order=2,
        _name=name,
    )  # fmt: skip
