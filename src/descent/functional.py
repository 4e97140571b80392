"""Functional transforms in JAX's style: grad, value_and_grad, vjp, jvp, jacobian, hessian, hvp.

They wrap their inputs as fresh graph entries, so a user's `.grad` is never touched, and they
nest: `grad(grad(f))(x)` is the second derivative. When an input already carries a graph (an
outer transform is differentiating through this one) the backward pass is recorded
(`create_graph=True`), which is what makes nesting work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from . import autograd
from .ops.elementwise import Clone
from .ops.shape import reshape, stack
from .tensor import Tensor


def _argnums_tuple(argnums) -> tuple[int, ...]:
    return (argnums,) if isinstance(argnums, int) else tuple(argnums)


def _enter(x) -> tuple[Tensor, bool]:
    """A differentiable stand-in for argument x; says whether x carries an outer graph."""
    if isinstance(x, Tensor):
        if x.requires_grad:
            # Keep the link to the outer graph: an identity node we can take gradients at.
            with autograd.enable_grad():
                return Clone.apply(x), True
        if x._data.dtype.kind not in "fV":
            raise TypeError(
                f"grad: argument of dtype {x.dtype} cannot be differentiated; pass a float tensor"
            )
        return autograd._new_tensor(x._data, True), False
    t = Tensor._from_data(x)
    if t._data.dtype.kind not in "fV":
        raise TypeError("grad: differentiated arguments must be floating point")
    return autograd._new_tensor(t._data, True), False


def _check_scalar(out, name: str) -> Tensor:
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}: the function must return a descent Tensor, got {type(out)}")
    if out.numel() != 1:
        raise TypeError(
            f"{name}: the function must return a scalar, got shape {tuple(out.shape)}; for vector "
            "outputs use descent.vjp (or jacobian)"
        )
    return out


def value_and_grad(
    fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable:
    """f -> (x -> (f(x), df/dx)). With has_aux, f returns (value, aux) and the result is
    ((value, aux), grads). Gradients are Tensors shaped like the arguments."""
    nums = _argnums_tuple(argnums)

    def wrapper(*args, **kwargs):
        args = list(args)
        nested = False
        entered = []
        for i in nums:
            if i >= len(args):
                raise TypeError(f"value_and_grad: argnums {i} but only {len(args)} arguments")
            t, outer = _enter(args[i])
            nested |= outer
            args[i] = t
            entered.append(t)
        with autograd.enable_grad():
            res = fun(*args, **kwargs)
        if has_aux:
            if not (isinstance(res, tuple) and len(res) == 2):
                raise TypeError("has_aux=True: the function must return (value, aux)")
            out, aux = res
        else:
            out, aux = res, None
        _check_scalar(out, "grad")
        if not out.requires_grad:
            grads = [Tensor._wrap(np.zeros_like(t._data)) for t in entered]
        else:
            seed = autograd._seed(out, None, nested, "grad")
            got = autograd._engine_backward(
                [out], [seed], retain_graph=nested, create_graph=nested, capture=entered,
                accumulate=False,
            )  # fmt: skip
            grads = [g if g is not None else Tensor._wrap(t._data * 0)
                     for g, t in zip(got, entered)]  # fmt: skip
        if not nested:
            out = out.detach()
        g = grads[0] if isinstance(argnums, int) else tuple(grads)
        return ((out, aux), g) if has_aux else (out, g)

    return wrapper


def grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """f -> df/dx (JAX's grad). f must return a scalar Tensor. Nests: grad(grad(f))."""
    vg = value_and_grad(fun, argnums, has_aux)

    def wrapper(*args, **kwargs):
        if has_aux:
            (_, aux), g = vg(*args, **kwargs)
            return g, aux
        return vg(*args, **kwargs)[1]

    return wrapper


def vjp(fun: Callable, *primals):
    """(f(x), vjp_fn) where vjp_fn(v) = v^T J (one Tensor per primal)."""
    entered, nested = [], False
    for p in primals:
        t, outer = _enter(p)
        nested |= outer
        entered.append(t)
    with autograd.enable_grad():
        out = fun(*entered)

    def vjp_fn(v, create_graph: bool | None = None):
        cg = nested if create_graph is None else create_graph
        v = v if isinstance(v, Tensor) else Tensor(v, dtype=out.dtype)
        seed = autograd._seed(out, v, cg, "vjp")
        got = autograd._engine_backward(
            [out], [seed], retain_graph=True, create_graph=cg, capture=entered, accumulate=False
        )
        res = tuple(g if g is not None else Tensor._wrap(t._data * 0) for g, t in zip(got, entered))
        return res

    return (out if nested else out.detach()), vjp_fn


def jvp(fun: Callable, primals: Sequence, tangents: Sequence):
    """(f(x), J v) by forward mode through the double-vjp trick: J v = d/du (u^T J) v."""
    primals = list(primals)
    entered, nested = [], False
    for p in primals:
        t, outer = _enter(p)
        nested |= outer
        entered.append(t)
    with autograd.enable_grad():
        out = fun(*entered)
        # u is a dummy cotangent; g(u) = u^T J is linear in u, so d(g(u) . v)/du = J v. Ones,
        # not zeros: some backward formulas branch on a zero gradient (xlogy's PyTorch
        # rule; eigh, svd skip an unused output), which would cut the dependence on it.
        u = autograd._new_tensor(np.ones_like(out._data), True)
        gs = autograd._engine_backward(
            [out], [u], retain_graph=True, create_graph=True, capture=entered, accumulate=False
        )
        total = None
        for g, v in zip(gs, tangents):
            if g is None:
                continue
            v = v if isinstance(v, Tensor) else Tensor(v, dtype=g.dtype)
            term = (g * v.detach()).sum()
            total = term if total is None else total + term
    if total is None or not total.requires_grad:
        jv = Tensor._wrap(np.zeros_like(out._data))
    else:
        jv = autograd._engine_backward(
            [total], [np.ones_like(total._data)] if not nested else [Tensor._wrap(
                np.ones_like(total._data))],
            retain_graph=nested, create_graph=nested, capture=[u], accumulate=False,
        )[0]  # fmt: skip
        if jv is None:
            jv = Tensor._wrap(np.zeros_like(out._data))
    return (out if nested else out.detach()), jv


def jacobian(fun: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """x -> J with shape out.shape + x.shape (reverse mode, one row per output element)."""
    nums = _argnums_tuple(argnums)

    def wrapper(*args):
        args = list(args)
        entered, nested = [], False
        for i in nums:
            t, outer = _enter(args[i])
            nested |= outer
            args[i] = t
            entered.append(t)
        with autograd.enable_grad():
            out = fun(*args)
        rows = [[] for _ in entered]
        n = out.numel()
        for k in range(n):
            seed = np.zeros(out.numel(), dtype=out.dtype)
            seed[k] = 1
            seed = seed.reshape(out.shape)
            got = autograd._engine_backward(
                [out], [Tensor._wrap(seed) if nested else seed], retain_graph=True,
                create_graph=nested, capture=entered, accumulate=False,
            )  # fmt: skip
            for j, (g, t) in enumerate(zip(got, entered)):
                rows[j].append(g if g is not None else Tensor._wrap(t._data * 0))
        jacs = []
        for j, t in enumerate(entered):
            if n == 0:
                jacs.append(Tensor._wrap(np.zeros(out.shape + t.shape, dtype=t.dtype)))
                continue
            J = stack(rows[j], 0)
            jacs.append(reshape(J, out.shape + t.shape) if nested else reshape(J, out.shape +
                        t.shape).detach())  # fmt: skip
        return jacs[0] if isinstance(argnums, int) else tuple(jacs)

    return wrapper


def hessian(fun: Callable, argnums: int = 0) -> Callable:
    """x -> d^2 f / dx^2 (the Jacobian of the gradient), shape x.shape + x.shape."""
    return jacobian(grad(fun, argnums), argnums)


def hvp(fun: Callable, primals: Sequence, tangents: Sequence):
    """(f(x), H v): Hessian-vector product by reverse-over-reverse, without forming H."""
    primals = list(primals)
    entered = []
    for p in primals:
        t, _ = _enter(p)
        entered.append(t)
    with autograd.enable_grad():
        out = _check_scalar(fun(*entered), "hvp")
        gs = autograd.grad(out, entered, create_graph=True, allow_unused=True)
        total = None
        for g, v in zip(gs, tangents):
            if g is None:
                continue
            v = v if isinstance(v, Tensor) else Tensor(v, dtype=g.dtype)
            term = (g * v.detach()).sum()
            total = term if total is None else total + term
    if total is None or not total.requires_grad:
        hv = tuple(Tensor._wrap(t._data * 0) for t in entered)
    else:
        got = autograd._engine_backward(
            [total], [np.ones_like(total._data)], capture=entered, accumulate=False
        )
        hv = tuple(g if g is not None else Tensor._wrap(t._data * 0) for g, t in zip(got, entered))
    return out.detach(), (hv[0] if len(hv) == 1 else hv)
