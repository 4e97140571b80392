"""Muon: momentum, then Newton–Schulz orthogonalisation of each matrix's update.

Keller Jordan (2024), "Muon: An optimizer for hidden layers in neural networks",
https://kellerjordan.github.io/posts/muon/ ; Liu et al. (2025), "Muon is Scalable for LLM
Training", arXiv:2502.16982 (the "match_rms_adamw" learning-rate adjustment). The semantics are
those of `torch.optim.Muon` (PyTorch 2.13), re-implemented on NumPy/CuPy arrays.

Why orthogonalise: the momentum of a weight matrix's gradient is usually dominated by a few
directions (its singular values spread over orders of magnitude), so SGD or Adam move the
matrix mostly along those few. Replacing the update U = A S B^T (its SVD) by about A B^T keeps
the directions and sets every singular value near 1: every direction moves by a similar amount.
`descent.explain.gradient_report(model, muon)` shows this spread before and after.

`muon_param_groups(model)` splits a model the usual way: Muon for the hidden matrices, AdamW for
embeddings, the output head, gains and biases; `MuonWithAdamW(model)` is that split as one
optimizer object (one step, one state_dict, one checkpoint).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .. import backend
from ..tensor import Tensor
from .optimizer import Optimizer, _add_scaled, _check_range, _FlatBuffer, _lerp

__all__ = ["Muon", "MuonWithAdamW", "muon_param_groups", "zeropower_via_newton_schulz"]

# Keller Jordan's quintic coefficients: they maximise the slope at 0 (small singular values grow
# fast) while keeping the iteration inside about [0.7, 1.2] after 5 steps.
DEFAULT_NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
DEFAULT_EPS = 1e-7
DEFAULT_NS_STEPS = 5
_ADJUST_LR_FNS = (None, "original", "match_rms_adamw")


def zeropower_via_newton_schulz(
    g,
    ns_coefficients: tuple[float, float, float] = DEFAULT_NS_COEFFICIENTS,
    ns_steps: int = DEFAULT_NS_STEPS,
    eps: float = DEFAULT_EPS,
    work: dict | None = None,
    ns_dtype: str | None = None,
):
    """Approximately orthogonalise a 2-D array: G = U S V^T -> about U S' V^T with S' ~ 1.

    X = G / max(||G||_F, eps) (so every singular value is <= 1), then ns_steps times

        X <- a X + (b (X X^T) + c (X X^T)^2) X

    which applies the odd polynomial p(s) = a s + b s^3 + c s^5 to each singular value. A tall G
    is transposed first so that X X^T is the smaller Gram matrix.

    Precision: by default computed in G's own dtype. `ns_dtype="bfloat16"` gives PyTorch's
    iteration (torch.optim._muon casts G to bfloat16): every product and sum is computed in
    float32 (bfloat16 matmuls accumulate in float32) and each op's result is rounded to
    bfloat16 where PyTorch's op ends (the cast, the norm, the division, each matmul/addmm).

    Args:
        g: a 2-D NumPy/CuPy array (not modified).
        ns_coefficients: (a, b, c).
        ns_steps: number of iterations.
        eps: floor of the Frobenius norm (a zero update stays zero).
        ns_dtype: None (G's dtype) or "bfloat16" (PyTorch's precision, emulated as above).
        work: optional dict the caller keeps between calls; the scratch arrays live there, by
            shape and dtype, so repeated calls allocate nothing (the result is then a view
            into that scratch, valid until the next call with the same shape).

    Returns:
        An array of g's shape and dtype (new, or a view into `work`).
    """
    if g.ndim != 2:
        raise ValueError(f"Muon: Newton-Schulz needs a 2-D matrix, got shape {tuple(g.shape)}")
    if ns_dtype not in (None, "bfloat16"):
        raise ValueError(f"Muon: ns_dtype must be None or 'bfloat16', got {ns_dtype!r}")
    a, b, c = ns_coefficients
    xp = backend.get_array_module(g)
    tall = g.shape[0] > g.shape[1]
    m, n = (g.shape[1], g.shape[0]) if tall else g.shape  # X is (m, n) with m <= n
    # bfloat16: float32 arrays holding bfloat16 values; rnd(arr) rounds one in place
    dtype = np.dtype(np.float32) if ns_dtype else g.dtype
    rnd = _bfloat16_rounder() if ns_dtype else _no_round
    key = (m, n, dtype.str, backend.device_of(g))
    bufs = None if work is None else work.get(key)
    if bufs is None:
        # The iterate X, the product P X, the Gram matrix and the polynomial. Allocating them
        # once matters on CPU: fresh arrays of a few hundred KB come from mmap, and their page
        # faults cost more than the matrix products themselves (measured 10 ms vs 1.5 ms).
        bufs = (xp.empty((m, n), dtype), xp.empty((m, n), dtype),
                xp.empty((m, m), dtype), xp.empty((m, m), dtype))  # fmt: skip
        if work is not None:
            work[key] = bufs
    x, px, gram, poly = bufs
    x[...] = g.T if tall else g  # a C-contiguous copy: g is left alone
    rnd(x)  # PyTorch: grad.bfloat16()
    norm = rnd(xp.asarray(xp.linalg.norm(x), dtype))  # Frobenius norm >= spectral norm
    x /= rnd(xp.asarray(xp.maximum(norm, dtype.type(eps)), dtype))  # norm().clamp(min=eps)
    rnd(x)
    for _ in range(ns_steps):
        xp.matmul(x, x.T, out=gram)  # (m, m)
        rnd(gram)
        xp.matmul(gram, gram, out=poly)
        poly *= c
        gram *= b
        poly += gram  # b (X X^T) + c (X X^T)^2: PyTorch's addmm, rounded once
        rnd(poly)
        xp.matmul(poly, x, out=px)  # (m, n)
        x *= a
        x += px  # the second addmm
        rnd(x)
    if dtype != g.dtype:
        x = x.astype(g.dtype)
    return x.T if tall else x


def _no_round(arr):
    return arr


def _bfloat16_rounder():
    """A function that rounds a float32 array in place to bfloat16's nearest value (ties to
    even, ml_dtypes' cast) and returns it."""
    bf16 = backend.bfloat16_dtype()
    if bf16 is None:
        raise RuntimeError("Muon: ns_dtype='bfloat16' needs the ml_dtypes package")

    def rnd(arr):
        arr[...] = arr.astype(bf16)
        return arr

    return rnd


def _adjusted_lr(lr: float, adjust_lr_fn: str | None, shape: tuple[int, ...]) -> float:
    """The learning rate for one matrix of shape (A, B): lr times a shape-dependent ratio.

    "original" (Keller Jordan): sqrt(max(1, A / B)); "match_rms_adamw" (Moonshot): 0.2 *
    sqrt(max(A, B)), which gives the update about AdamW's RMS, so AdamW's lr and weight decay
    carry over.
    """
    rows, cols = shape[0], shape[1]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        return lr * math.sqrt(max(1.0, rows / cols))
    return lr * 0.2 * math.sqrt(max(rows, cols))


class Muon(Optimizer):
    r"""Muon for 2-D parameters; matches `torch.optim.Muon` (PyTorch 2.13).

    For each matrix θ (shape (A, B)) with gradient g (learning rate γ, momentum μ, weight decay
    λ, Newton–Schulz coefficients (a, b, c), k steps):

        M ← M + (1 − μ)(g − M)                 state "momentum_buffer", starts at 0
        U ← g + μ (M − g)   if nesterov,  else  U ← M
        O ← NS_k(U)                            `zeropower_via_newton_schulz`
        θ ← θ (1 − γλ)                          decoupled weight decay
        θ ← θ − γ · r(A, B) · O                r: `adjust_lr_fn` ("original": √max(1, A/B);
                                               "match_rms_adamw": 0.2 √max(A, B))

    Muon is for the hidden matrices of a network: give embeddings, the output layer, gains and
    biases to AdamW (`muon_param_groups` splits a model that way).

    Precision: PyTorch runs the Newton–Schulz iteration in bfloat16, and so does descent by
    default (`ns_dtype="bfloat16"`: float32 products rounded to bfloat16 where PyTorch's ops
    end, see `zeropower_via_newton_schulz`), so `Muon(params, ...)` called PyTorch's way gives
    PyTorch's update (the same bits on small matrices; on large ones an occasional bfloat16
    ulp where the two libraries sum in another order). `ns_dtype=None` (a descent option)
    runs the iteration in the parameter's dtype instead: more accurate, 1-4% of each update's
    norm away from PyTorch's (tests/test_muon.py checks both).

    Args:
        params: 2-D Parameters or parameter groups (dicts).
        lr: learning rate γ.
        weight_decay: decoupled weight decay λ.
        momentum: μ.
        nesterov: use the Nesterov form of the momentum.
        ns_coefficients: (a, b, c) of the Newton–Schulz polynomial.
        eps: floor of the update's Frobenius norm before the iteration.
        ns_steps: Newton–Schulz iterations (fewer than 100).
        adjust_lr_fn: None or "original", or "match_rms_adamw".
        ns_dtype: "bfloat16" (PyTorch's precision, the default) or None (the parameter's
            dtype); descent's option, kept as `opt.ns_dtype` (not in the groups).

    Raises:
        ValueError: a parameter is not 2-D, or a hyperparameter is out of range.
    """

    _complex_params = False  # not elementwise: complex parameters are refused
    _counts_steps = False  # PyTorch's Muon keeps the momentum buffer alone

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = DEFAULT_NS_COEFFICIENTS,
        eps: float = DEFAULT_EPS,
        ns_steps: int = DEFAULT_NS_STEPS,
        adjust_lr_fn: str | None = None,
        *,
        ns_dtype: str | None = "bfloat16",
    ) -> None:
        if ns_dtype not in (None, "bfloat16"):
            raise ValueError(f"Muon: ns_dtype must be 'bfloat16' or None, got {ns_dtype!r}")
        # not a group option: PyTorch's groups (and state dicts) have no such key
        self.ns_dtype = ns_dtype
        defaults = dict(
            lr=lr,
            weight_decay=weight_decay,
            momentum=momentum,
            nesterov=nesterov,
            ns_coefficients=tuple(ns_coefficients),
            eps=eps,
            ns_steps=ns_steps,
            adjust_lr_fn=adjust_lr_fn,
        )
        super().__init__(params, defaults)
        self._work: dict = {}  # Newton-Schulz scratch arrays by shape (not state)

    def _check(self, group: dict[str, Any]) -> None:
        for key in ("lr", "weight_decay", "momentum", "eps"):
            _check_range("Muon", group, key)
        coeffs = group["ns_coefficients"]
        if not isinstance(coeffs, (tuple, list)) or len(coeffs) != 3:
            raise ValueError(
                f"Muon: ns_coefficients must be three numbers (a, b, c), got {coeffs!r}"
            )
        group["ns_coefficients"] = tuple(coeffs)  # a checkpoint's JSON turns it into a list
        steps = group["ns_steps"]
        if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps < 100:
            raise ValueError(f"Muon: ns_steps must be an int in [0, 100), got {steps!r}")
        if group["adjust_lr_fn"] not in _ADJUST_LR_FNS:
            raise ValueError(
                f"Muon: adjust_lr_fn {group['adjust_lr_fn']!r} is not supported; use None, "
                "'original' or 'match_rms_adamw'"
            )
        for p in group.get("params", ()):
            if p.ndim != 2:
                raise ValueError(
                    f"Muon only supports 2-D parameters, got one of shape {tuple(p.shape)}; "
                    "give embeddings, gains and biases to AdamW (see muon_param_groups)"
                )

    def _state_init(self, group: dict[str, Any]) -> dict[str, float]:
        return {"momentum_buffer": 0.0}

    def _step_buffer(
        self, group: dict[str, Any], buf: _FlatBuffer, state_init: dict, scalar_init: dict
    ) -> None:
        # Muon's rule is a function of each whole matrix, not of each element, so it runs per
        # parameter. The values and momentum still live in the base class's flat buffers, so
        # state_dict, load_state_dict and resume work as for every other optimizer.
        for i, p in enumerate(buf.params):
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                self._sparse_grad(group, p.grad)  # PyTorch's refusal
            if p.grad.shape != p.shape:
                raise RuntimeError(
                    f"Muon.step: gradient of shape {tuple(p.grad.shape)} for a parameter of shape "
                    f"{tuple(p.shape)}; fix whatever assigned this .grad"
                )
            buf.grad_views[i][...] = p.grad._data  # our private copy: overwritten below
            self._state_of(buf, i, state_init, scalar_init)
            a = buf.part(i)
            shape = tuple(p.shape)
            xp = a.xp
            param, g = a.param.reshape(shape), a.grad.reshape(shape)  # views (A, B)
            mom, tmp = a.state["momentum_buffer"].reshape(shape), a.tmp.reshape(shape)
            update = self._momentum(xp, group, g, mom, tmp)
            coeffs, steps, eps = group["ns_coefficients"], group["ns_steps"], group["eps"]
            ortho = zeropower_via_newton_schulz(
                update, coeffs, steps, eps, self._work, self.ns_dtype
            )
            lr = group["lr"]
            if isinstance(lr, Tensor):  # PyTorch's tensor lr: computed with as a number
                lr = float(lr.item())
            param *= 1 - lr * group["weight_decay"]
            _add_scaled(xp, param, -_adjusted_lr(lr, group["adjust_lr_fn"], shape), ortho, tmp)
            p._version += 1  # in-place change: backward through old graphs errs

    @staticmethod
    def _momentum(xp, group: dict[str, Any], g, mom, tmp):
        """Advance the momentum `mom` in place; return the update before orthogonalisation
        (g itself, overwritten, for Nesterov; `mom` otherwise)."""
        mu = group["momentum"]
        _lerp(xp, mom, g, 1 - mu, tmp)  # M <- M + (1 - mu)(g - M), PyTorch's lerp_ rounding
        if group["nesterov"]:
            _lerp(xp, g, mom, mu, tmp)  # U <- g + mu (M - g)
            return g
        return mom

    def preview_update(self, p) -> tuple[Any, Any] | None:
        """The update the next `step()` would make to p, before and after orthogonalisation.

        Uses p's current gradient and momentum without changing any state (for
        `descent.explain.gradient_report`). Returns (U, NS(U)) as arrays of p's shape, or None
        when p is not in this optimizer or has no gradient.
        """
        group = next((gr for gr in self.param_groups if any(q is p for q in gr["params"])), None)
        if group is None or p.grad is None:
            return None
        xp = backend.get_array_module(p._data)
        g = xp.array(p.grad._data, dtype=p._data.dtype, copy=True)
        st = self.state.get(p)
        mom = xp.zeros_like(g) if not st or "momentum_buffer" not in st else (
            st["momentum_buffer"]._data.reshape(g.shape).copy()
        )  # fmt: skip
        update = self._momentum(xp, group, g, mom, xp.empty_like(g))
        coeffs, steps, eps = group["ns_coefficients"], group["ns_steps"], group["eps"]
        ortho = zeropower_via_newton_schulz(update, coeffs, steps, eps, ns_dtype=self.ns_dtype)
        return update, ortho


def muon_param_groups(model, head_names: Iterable[str] = ("lm_head",)) -> tuple[list, list]:
    """Split a model's trainable parameters into (Muon's, AdamW's), the usual way.

    Muon gets the 2-D weights of the hidden layers. AdamW gets everything else: embeddings
    (a lookup table row only sees the gradient of its own token: there is no matrix action to
    orthogonalise), the output head (its rows are per-class scores, like an embedding's), and
    every 1-D gain or bias (Muon needs matrices). A weight tied to an embedding (GPT's lm_head)
    follows the embedding.

    Args:
        model: a `descent.nn.Module`.
        head_names: names of output layers (a parameter whose dotted name is, or starts with,
            one of these followed by ".") to leave to AdamW.

    Returns:
        (muon_params, adamw_params): two lists in `model.parameters()` order, together every
        parameter with requires_grad exactly once.

    Example:
        >>> hidden, other = muon_param_groups(model)
        >>> opt_muon = descent.optim.Muon(hidden, lr=0.02, weight_decay=0.0)
        >>> opt_adamw = descent.optim.AdamW(other, lr=3e-3, betas=(0.9, 0.95))
        >>> # each step: loss.backward(); opt_muon.step(); opt_adamw.step(); zero both
    """
    from ..nn import Embedding  # optim does not need nn at import time

    embedding_weights = [m.weight for m in model.modules() if isinstance(m, Embedding)]
    heads = tuple(head_names)
    muon, adamw = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_head = any(name == h or name.startswith(h + ".") for h in heads)
        is_embedding = any(p is w for w in embedding_weights)
        (muon if p.ndim == 2 and not is_head and not is_embedding else adamw).append(p)
    return muon, adamw


class MuonWithAdamW:
    """Muon for a model's hidden matrices and AdamW for the rest, as ONE optimizer object.

    The split is `muon_param_groups(model, head_names)`. The object behaves as one optimizer
    for a training loop and a checkpoint: `step()`, `zero_grad()`, `param_groups` (Muon's
    groups, then AdamW's; the same dicts, so `group["lr"] = ...` takes effect), `state`
    (parameter -> state), and `state_dict()` / `load_state_dict()` in PyTorch's layout, the
    parameters numbered Muon's first. Each group carries "use_muon" (True/False) so a
    checkpoint says which rule drives it. Keller Jordan's `MuonWithAuxAdam` is the same idea.

    Args:
        model: a `descent.nn.Module`.
        lr, weight_decay, momentum, nesterov, ns_coefficients, eps, ns_steps, adjust_lr_fn:
            Muon's settings (`Muon`), defaults as in modded-nanogpt (lr 0.02, no decay).
        adamw_lr, adamw_betas, adamw_eps: AdamW's settings.
        adamw_weight_decay: AdamW's decoupled weight decay on its matrices (embeddings, the
            head); its 1-D gains and biases are never decayed.
        head_names: output layers to leave to AdamW (see `muon_param_groups`).
        ns_dtype: Muon's Newton–Schulz precision: None (the parameter's dtype, this class's
            default, as before) or "bfloat16" (PyTorch's, `Muon`'s default).

    Raises:
        ValueError: the model has no trainable parameters.
    """

    def __init__(
        self,
        model,
        lr: float = 0.02,
        weight_decay: float = 0.0,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = DEFAULT_NS_COEFFICIENTS,
        eps: float = DEFAULT_EPS,
        ns_steps: int = DEFAULT_NS_STEPS,
        adjust_lr_fn: str | None = None,
        *,
        adamw_lr: float = 3e-3,
        adamw_betas: tuple[float, float] = (0.9, 0.95),
        adamw_eps: float = 1e-8,
        adamw_weight_decay: float = 0.0,
        head_names: Iterable[str] = ("lm_head",),
        ns_dtype: str | None = None,
    ) -> None:
        from .adam import AdamW  # adam.py and muon.py are siblings

        hidden, other = muon_param_groups(model, head_names)
        if not hidden and not other:
            raise ValueError("MuonWithAdamW: the model has no trainable parameters")
        self.muon = None
        self.adamw = None
        if hidden:
            self.muon = Muon(
                [{"params": hidden, "use_muon": True}], lr=lr, weight_decay=weight_decay,
                momentum=momentum, nesterov=nesterov, ns_coefficients=ns_coefficients, eps=eps,
                ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn, ns_dtype=ns_dtype,
            )  # fmt: skip
        # AdamW's share in two groups, as GPT.configure_optimizers: decay on matrices
        # (embeddings, the head) only; pulling a gain or bias towards 0 fights normalisation.
        adamw_groups = [
            {"params": ps, "use_muon": False, "weight_decay": wd}
            for ps, wd in (
                ([p for p in other if p.ndim >= 2], adamw_weight_decay),
                ([p for p in other if p.ndim < 2], 0.0),
            )
            if ps
        ]
        if adamw_groups:
            self.adamw = AdamW(adamw_groups, lr=adamw_lr, betas=tuple(adamw_betas), eps=adamw_eps)

    @property
    def optimizers(self) -> list:
        """The optimizers inside, Muon first (one of them may be absent)."""
        return [o for o in (self.muon, self.adamw) if o is not None]

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [g for o in self.optimizers for g in o.param_groups]

    @property
    def state(self) -> dict:
        return {p: st for o in self.optimizers for p, st in o.state.items()}

    def step(self, closure=None):
        """One step of each optimizer; the closure (if any) runs once, before them."""
        loss = None
        if closure is not None:
            from ..autograd import enable_grad

            with enable_grad():
                loss = closure()
        for o in self.optimizers:
            o.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.optimizers:
            o.zero_grad(set_to_none)

    def preview_update(self, p):
        """Muon's `preview_update` (None for AdamW's tensors): for explain.gradient_report."""
        return None if self.muon is None else self.muon.preview_update(p)

    def state_dict(self) -> dict[str, Any]:
        """PyTorch's layout over both optimizers; AdamW's parameter indices follow Muon's."""
        state: dict[int, Any] = {}
        groups: list[dict[str, Any]] = []
        offset = 0
        for o in self.optimizers:
            sd = o.state_dict()
            state.update({int(i) + offset: st for i, st in sd["state"].items()})
            for g in sd["param_groups"]:
                groups.append({**g, "params": [int(i) + offset for i in g["params"]]})
            offset += sum(len(g["params"]) for g in o.param_groups)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a `state_dict()` of a MuonWithAdamW with the same split.

        Raises:
            ValueError: the number of groups or which rule drives them differs.
        """
        saved = list(state_dict["param_groups"])
        if len(saved) != len(self.param_groups) or [g.get("use_muon") for g in saved] != [
            g["use_muon"] for g in self.param_groups
        ]:
            raise ValueError(
                "MuonWithAdamW.load_state_dict: the state dict's groups "
                f"{[g.get('use_muon') for g in saved]} (use_muon) do not match this "
                f"optimizer's {[g['use_muon'] for g in self.param_groups]}"
            )
        start = 0
        for o in self.optimizers:
            mine = saved[start : start + len(o.param_groups)]
            start += len(o.param_groups)
            ids = {int(i) for g in mine for i in g["params"]}
            st = {i: v for i, v in state_dict["state"].items() if int(i) in ids}
            o.load_state_dict({"state": st, "param_groups": mine})

    def __repr__(self) -> str:
        return "MuonWithAdamW(\n" + "\n".join(repr(o) for o in self.optimizers) + "\n)"
