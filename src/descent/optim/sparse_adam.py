"""SparseAdam: Adam on the rows a sparse embedding gradient names (torch.optim.SparseAdam)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from .. import backend
from ..tensor import Tensor
from .optimizer import Optimizer, _check_betas, _number


class SparseAdam(Optimizer):
    r"""Adam restricted to the rows of `nn.Embedding(sparse=True)` gradients, as PyTorch's.

    For each parameter θ whose sparse COO gradient names the rows R (those of its coalesced
    form: the rows looked up since the gradient was last cleared, padding_idx excepted), at
    step t (learning rate γ, betas (β₁, β₂)), on the rows R only, the others untouched
    (moments included), g being the coalesced gradient's rows:

        g  ← -g                                  if maximize
        m  ← m + (1 - β₁)(g - m)                 state "exp_avg"
        v  ← v + (1 - β₂)(g² - v)                state "exp_avg_sq"
        θ  ← θ - γ √(1 - β₂ᵗ) / (1 - β₁ᵗ) · m / (√v + ε)

    t ("step", a Python int as in PyTorch) counts every step the parameter had a gradient. A
    row in R is updated even where its gradient is zero (its moments decay), as PyTorch's. A
    dense gradient (any other layer's) raises PyTorch's RuntimeError before any update.

    Args:
        params: Parameters or parameter groups (dicts).
        lr: learning rate γ (> 0); a 1-element Tensor is read as a number at each step.
        betas: (β₁, β₂), each in [0, 1).
        eps: ε (> 0).
        maximize: ascend the objective instead of descending.

    State, as PyTorch's SparseAdam: "step" (a Python int here, unlike PyTorch's other
    optimizers), "exp_avg", "exp_avg_sq".
    """

    def __init__(
        self,
        params: Iterable,
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        maximize: bool = False,
    ) -> None:
        # PyTorch's checks and words (lr and eps strictly positive)
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 < _number(lr):
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, maximize=maximize)
        super().__init__(params, defaults)
        sparse_params = [
            [i, j]
            for i, group in enumerate(self.param_groups)
            for j, p in enumerate(group["params"])
            if p.is_sparse
        ]
        if sparse_params:
            raise ValueError(
                f"Sparse params at indices {sparse_params}: SparseAdam requires dense parameter "
                "tensors"
            )
        complex_params = [
            [i, j]
            for i, group in enumerate(self.param_groups)
            for j, p in enumerate(group["params"])
            if p._data.dtype.kind == "c"
        ]
        if complex_params:
            raise ValueError(
                f"Complex params at indices {complex_params}: SparseAdam does not support "
                "complex parameters"
            )

    def _scalars_of(self, group: dict[str, Any]) -> dict[str, float]:
        # PyTorch's SparseAdam keeps "step" as a Python int (its other optimizers keep 0-d
        # tensors): load_state_dict leaves it a number, as PyTorch's does.
        return {}

    def _check(self, group: dict[str, Any]) -> None:
        _check_betas("SparseAdam", group)

    _sparse_grads = True

    def step(self, closure: Callable[[], Any] | None = None):  # type: ignore[override]
        """One update of every parameter that has a gradient; returns the closure's loss."""
        for group in self.param_groups:  # PyTorch checks every gradient before any update
            for p in group["params"]:
                if p.grad is not None and not p.grad.is_sparse:
                    raise RuntimeError(
                        "SparseAdam does not support dense gradients, please consider Adam instead"
                    )
        return self._step_each(closure, self._update_rows)

    def _update_rows(self, group: dict[str, Any], p) -> None:
        xp = backend.get_array_module(p._data)
        state = self.state[p]
        if len(state) == 0:
            state["step"] = 0
            state["exp_avg"] = Tensor._wrap(xp.zeros_like(p._data))
            state["exp_avg_sq"] = Tensor._wrap(xp.zeros_like(p._data))
        state["step"] = int(state["step"]) + 1  # an int, as PyTorch's (also after a reload)
        grad = p.grad.coalesce()._data  # the update is not linear: unique rows, summed
        if grad.nnz == 0:  # nothing looked up (all padding): PyTorch skips the update
            return
        beta1, beta2 = group["betas"]
        rows = grad.indices[0]  # (R,) sorted, unique
        g = grad.values.astype(p._data.dtype)  # (R, dim), a copy
        if group["maximize"]:
            g = -g
        m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
        # The order of PyTorch's operations (torch/optim/_functional.sparse_adam)
        old_m, old_v = m[rows], v[rows]
        m_update = (g - old_m) * (1 - beta1)
        m[rows] += m_update
        v_update = (g * g - old_v) * (1 - beta2)
        v[rows] += v_update
        numer = m_update + old_m
        denom = xp.sqrt(v_update + old_v) + group["eps"]
        t = state["step"]
        step_size = _number(group["lr"]) * math.sqrt(1 - beta2**t) / (1 - beta1**t)
        p._data[rows] += -step_size * (numer / denom)
        p._version += 1
        state["exp_avg"]._version += 1
        state["exp_avg_sq"]._version += 1
