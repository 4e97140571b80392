"""L-BFGS (Nocedal, 1980; Liu & Nocedal, 1989) with an optional strong-Wolfe line search, the
algorithm of `torch.optim.LBFGS` (which follows Mark Schmidt's minFunc).

Unlike the other optimizers, L-BFGS works on all parameters as ONE flat vector (its curvature
pairs couple every coordinate), needs a closure that re-evaluates the loss, and runs up to
`max_iter` inner iterations per `step(closure)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .. import backend
from ..autograd import enable_grad
from ..tensor import Tensor
from .optimizer import Optimizer, _check_range, _keeps, _like

__all__ = ["LBFGS"]


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """Minimiser of the cubic through (x1, f1, g1) and (x2, f2, g2), clamped to `bounds`.

    Nocedal & Wright, "Numerical Optimization" (2006), eq. 3.59; the midpoint of the bounds
    when the cubic has no real minimiser.
    """
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square >= 0:
        d2 = d2_square**0.5
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _real(arr):
    """A real view of a complex array (its (re, im) pairs along a new last axis, PyTorch's
    view_as_real); a real array as it is."""
    if arr.dtype.kind != "c":
        return arr
    return arr.view(arr.real.dtype).reshape(arr.shape + (2,))


def _add_scaled_once(dst, alpha, src) -> None:
    """dst += alpha * src in place, rounded ONCE for float32, as PyTorch's `add_(src,
    alpha=)` (its CPU kernel is a fused multiply-add, with alpha rounded to float32 first).

    Rounding the product and the sum separately puts about 2% of the entries one ulp away,
    and the strong-Wolfe line search near the optimum (where the loss changes in its last
    bits) turns that into a different number of evaluations: 6e-5 in the parameters after
    one step of PyTorch's OptimizerInfo problem. In float64 the product of two float32s is
    exact, so one float64 sum rounded to float32 is the fused result (but for double-rounding
    ties, which are rare). float64 arrays keep the plain form."""
    if dst.dtype.itemsize == 4 and dst.dtype.kind == "f":
        f32 = dst.dtype.type
        dst[...] = dst + src.astype("float64") * float(f32(alpha))
    else:
        dst += src * alpha


def _strong_wolfe(obj_func, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """Line search for a step t along d meeting the strong Wolfe conditions.

    Nocedal & Wright, Algorithms 3.5 (bracketing) and 3.6 (zoom, here by cubic interpolation):
    sufficient decrease f(x + t d) <= f + c1 t gtd and curvature |g(x + t d)·d| <= -c2 gtd.

    Returns:
        (f_new, g_new, t, number of function evaluations).
    """
    xp = backend.get_array_module(d)
    d_norm = xp.abs(d).max()
    g = g.copy()
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = g_new.dot(d)
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    # Bracketing phase: grow t until an interval holds a point that meets the conditions.
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        # Extrapolate by cubic interpolation within [t + 0.01 (t - t_prev), 10 t].
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(
            t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step)
        )
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new.copy(), gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
    if ls_iter == max_ls:  # reached the evaluation budget: the interval [0, t]
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]

    # Zoom phase: shrink the bracket until a point meets the conditions.
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(
            bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1]
        )
        # Keep t away from the bracket's ends (minFunc's safeguard against stalling).
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos] = t
            bracket_f[high_pos] = f_new
            bracket_g[high_pos] = g_new.copy()
            bracket_gtd[high_pos] = gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos] = bracket[low_pos]
                bracket_f[high_pos] = bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]
            bracket[low_pos] = t
            bracket_f[low_pos] = f_new
            bracket_g[low_pos] = g_new.copy()
            bracket_gtd[low_pos] = gtd_new
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals


class LBFGS(Optimizer):
    r"""Limited-memory BFGS: quasi-Newton steps from the last `history_size` curvature pairs.

    Matches `torch.optim.LBFGS`. Each `step(closure)` runs up to `max_iter` iterations:

        d  = -H g, H applied by the two-loop recursion over pairs (s, y) with yᵀs > 1e-10
             (s = the step taken, y = the change in gradient), scaled by yᵀs / yᵀy
        t  = lr, or min(1, 1 / Σ|g|) · lr on the very first iteration
        t  ← a step meeting the strong Wolfe conditions   if line_search_fn="strong_wolfe"
        θ  ← θ + t d

    and stops early when max|g| <= tolerance_grad, when the step or the change in loss falls
    below tolerance_change, or after max_eval closure calls. The state ("d", "t", "old_dirs",
    "old_stps", "ro", "H_diag", "prev_flat_grad", "prev_loss", "n_iter", "func_evals") lives
    under the first parameter, as in PyTorch.

        opt = descent.optim.LBFGS(model.parameters(), line_search_fn="strong_wolfe")
        def closure():
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            return loss
        opt.step(closure)

    Args:
        params: Parameters (one group only; all of one dtype and device).
        lr: learning rate (the initial step length).
        max_iter: iterations per `step()`.
        max_eval: closure calls per `step()` (default max_iter · 5 / 4).
        tolerance_grad: stop when the largest gradient entry is at most this.
        tolerance_change: stop when the loss or the step changes by less than this.
        history_size: the number of curvature pairs kept.
        line_search_fn: None (fixed step t) or "strong_wolfe".
    """

    # complex parameters are optimised as their (re, im) pairs (PyTorch's view_as_real)

    def __init__(
        self,
        params: Iterable,
        lr: float = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
    ) -> None:
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(
            lr=lr,
            max_iter=max_iter,
            max_eval=max_eval,
            tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change,
            history_size=history_size,
            line_search_fn=line_search_fn,
        )
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError(
                "LBFGS doesn't support per-parameter options (parameter groups): pass one "
                "list of parameters"
            )
        kinds = {(p._data.dtype, backend.device_of(p._data)) for p in self._params}
        if len(kinds) != 1:
            raise ValueError(
                f"LBFGS: all parameters must share one dtype and device (one flat vector), got "
                f"{sorted(str(k) for k in kinds)}"
            )

    def _check(self, group: dict[str, Any]) -> None:
        for key in ("lr", "tolerance_grad", "tolerance_change"):
            _check_range("LBFGS", group, key)
        for key in ("max_iter", "max_eval", "history_size"):
            if int(group[key]) != group[key] or group[key] < 1:
                raise ValueError(f"LBFGS: {key} must be a positive integer, got {group[key]!r}")
        if group["line_search_fn"] not in (None, "strong_wolfe"):
            raise ValueError(
                f"LBFGS: line_search_fn must be None or 'strong_wolfe', got "
                f"{group['line_search_fn']!r}"
            )

    @property
    def _params(self) -> list:
        return self.param_groups[0]["params"]

    # -- the flat vector ---------------------------------------------------------------------
    def _gather_flat_grad(self):
        """All gradients as one new flat array (zeros for a parameter without a gradient)."""
        xp = backend.get_array_module(self._params[0]._data)
        views = []
        for p in self._params:
            real = _real(p._data)  # complex parameters: their (re, im) pairs, as PyTorch's
            if p.grad is None:
                views.append(xp.zeros(real.size, real.dtype))
            else:
                g = p.grad.to_dense() if p.grad.is_sparse else p.grad  # (PyTorch's to_dense)
                g = xp.ascontiguousarray(xp.asarray(g._data, dtype=p._data.dtype))
                views.append(_real(g).reshape(-1))
        return xp.concatenate(views)

    def _add_grad(self, step_size, update) -> None:
        """θ ← θ + step_size · update, parameter by parameter (in place)."""
        offset = 0
        for p in self._params:
            real = _real(p._data)  # a view: the update lands in p
            n = real.size
            _add_scaled_once(real, step_size, update[offset : offset + n].reshape(real.shape))
            p._version += 1
            offset += n

    def _clone_param(self) -> list:
        return [p._data.copy() for p in self._params]

    def _set_param(self, params_data) -> None:
        for p, pdata in zip(self._params, params_data, strict=True):
            p._data[...] = pdata
            p._version += 1

    def _directional_evaluate(self, closure, x, t, d):
        """(loss, flat gradient) at x + t d; the parameters are put back to x afterwards."""
        self._add_grad(t, d)
        loss = float(closure())
        flat_grad = self._gather_flat_grad()
        self._set_param(x)
        return loss, flat_grad

    # -- the step --------------------------------------------------------------------------
    def step(self, closure: Callable[[], Any]):  # type: ignore[override]
        """Run up to max_iter L-BFGS iterations.

        Args:
            closure: re-evaluates the model, calls backward and returns the loss (called with
                grad mode on, possibly several times).

        Returns:
            The closure's loss at the starting point.
        """
        if closure is None:
            raise RuntimeError("LBFGS.step needs a closure that re-evaluates the loss")
        user_closure = closure

        def closure():
            with enable_grad():
                return user_closure()

        group = self.param_groups[0]
        lr = group["lr"]
        if isinstance(lr, Tensor):  # PyTorch's tensor lr: computed with as a number
            lr = float(lr.item())
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        line_search_fn, history_size = group["line_search_fn"], group["history_size"]

        state = self.state[self._params[0]]  # PyTorch keeps the global state here too
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = closure()
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._gather_flat_grad()
        xp = backend.get_array_module(flat_grad)
        if xp.abs(flat_grad).max() <= tolerance_grad:  # already optimal
            return orig_loss

        # The state holds Tensors, as PyTorch's; the iteration works on their arrays. Each
        # Tensor is kept to wrap its array again at the end, and each list to be refilled in
        # place, so that a state_dict() taken earlier sees the later steps, as PyTorch's
        # (prev_flat_grad is overwritten in place, old_dirs grows in place).
        kept: dict[int, Tensor] = {}  # id(array) -> the Tensor that holds it
        lists: dict[str, list] = {}
        for key in _VECTOR_KEYS:
            if key in state:
                if isinstance(state[key], list):
                    lists[key] = state[key]
                state[key] = _raw(state[key], kept)
        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        h_diag = state.get("H_diag")
        prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            # -- the direction: -g at first, then the two-loop recursion (N&W Algorithm 7.4).
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                h_diag = 1
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = y.dot(s)
                if ys > 1e-10:  # keep only pairs with positive curvature
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    h_diag = ys / y.dot(y)  # the initial inverse Hessian's scale
                num_old = len(old_dirs)
                if "al" not in state:
                    state["al"] = [None] * history_size
                al = state["al"]
                q = -flat_grad
                for i in range(num_old - 1, -1, -1):
                    al[i] = old_stps[i].dot(q) * ro[i]
                    _add_scaled_once(q, -al[i], old_dirs[i])
                d = r = q * h_diag
                for i in range(num_old):
                    be_i = old_dirs[i].dot(r) * ro[i]
                    _add_scaled_once(r, al[i] - be_i, old_stps[i])
            if prev_flat_grad is None:
                prev_flat_grad = flat_grad.copy()
            else:
                prev_flat_grad[...] = flat_grad
            prev_loss = loss

            # -- the step length.
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / xp.abs(flat_grad).sum()) * lr
            else:
                t = lr
            gtd = flat_grad.dot(d)  # directional derivative
            if gtd > -tolerance_change:
                break

            ls_func_evals = 0
            if line_search_fn is not None:
                x_init = self._clone_param()

                def obj_func(x, t, d):
                    return self._directional_evaluate(closure, x, t, d)

                loss, flat_grad, t, ls_func_evals = _strong_wolfe(
                    obj_func, x_init, t, d, loss, flat_grad, gtd, max_ls=max_eval - current_evals
                )
                self._add_grad(t, d)
                opt_cond = xp.abs(flat_grad).max() <= tolerance_grad
            else:
                self._add_grad(t, d)  # a fixed step
                opt_cond = False
                if n_iter != max_iter:
                    # Re-evaluate except on the last iteration (the next step() will).
                    loss = float(closure())
                    flat_grad = self._gather_flat_grad()
                    opt_cond = xp.abs(flat_grad).max() <= tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            # -- stopping tests.
            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if xp.abs(d * t).max() <= tolerance_change:  # no progress in the parameters
                break
            if abs(loss - prev_loss) < tolerance_change:  # no progress in the loss
                break

        # PyTorch's types: vectors and 0-d numbers as Tensors (lists of them), ints and floats
        # as they are; the key order is PyTorch's too.
        values = dict(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=h_diag,
                      prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)  # fmt: skip
        if "al" in state:
            values["al"] = state["al"]
        for key, value in values.items():
            value = _wrapped(value, kept)
            if key in lists and isinstance(value, list):
                lists[key][:] = value  # the same list object, as PyTorch's
                value = lists[key]
            state[key] = value
        return orig_loss

    # -- state_dict: flat vectors, lists of them and numbers (not per-parameter arrays) ------
    def state_dict(self) -> dict[str, Any]:
        """PyTorch's layout: {"state": {0: the optimizer's own state dict}, "param_groups":
        [...]}. As in PyTorch (and descent's other optimizers) the state is not copied: its
        Tensors and lists are the optimizer's, and later steps change them
        (`copy.deepcopy(opt.state_dict())` keeps a snapshot)."""
        saved = {p: self.state.pop(p) for p in list(self.state)}
        try:
            sd = super().state_dict()  # the param_groups part
        finally:
            self.state.update(saved)
        st = saved.get(self._params[0])
        if st is not None:
            sd["state"] = {0: st}  # the same dict, as PyTorch's (an empty one too)
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a `state_dict()` (from descent or PyTorch); vectors take the parameters' dtype
        and device. A Tensor that has them already is kept, not copied, as PyTorch's
        `value.to(dtype, device)` returns it; lists are new lists, as PyTorch's."""
        sd = dict(state_dict)
        saved_state = sd.get("state", {})
        super().load_state_dict({**sd, "state": {}})
        self.state.clear()
        if saved_state:
            (st,) = saved_state.values()
            ref = _real(self._params[0]._data)  # the flat vectors are real
            self.state[self._params[0]] = {k: _import(v, ref) for k, v in st.items()}


_VECTOR_KEYS = ("d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad", "al")


def _raw(value, kept: dict):
    """A state value as the iteration uses it: Tensors (in lists too) to their arrays; each
    Tensor is noted in `kept` under its array's id."""
    if isinstance(value, list):
        return [_raw(v, kept) for v in value]
    if isinstance(value, Tensor):
        kept[id(value._data)] = value
        return value._data
    return value


def _wrapped(value, kept: dict):
    """A state value as PyTorch keeps it: arrays and NumPy scalars (in lists too) as Tensors
    (0-d for numbers: H_diag, ro, al, t; a float64 NumPy scalar too, though it is a Python
    float), an array that came from a Tensor as that Tensor again (`kept`); ints, floats and
    None as they are."""
    if isinstance(value, list):
        return [_wrapped(v, kept) for v in value]
    if isinstance(value, Tensor) or value is None:
        return value
    if isinstance(value, (int, float)) and not isinstance(value, np.generic):
        return value
    old = kept.get(id(value))
    if old is not None and old._data is value:
        return old
    xp = backend.get_array_module(value)
    return Tensor._wrap(xp.asarray(value))


def _import(value, ref):
    """A loaded state value (descent's, PyTorch's or converted) as a Tensor in the parameters'
    dtype and device (0-d for numbers): the Tensor itself where it has them (`_keeps`), else
    a copy; lists as new lists; ints, floats and None as they are."""
    if isinstance(value, list):
        return [_import(v, ref) for v in value]
    if value is None or (isinstance(value, (int, float)) and not hasattr(value, "dtype")):
        return value
    if _keeps(value, ref.dtype, ref):
        return value
    return Tensor._wrap(_like(value, ref).copy())
