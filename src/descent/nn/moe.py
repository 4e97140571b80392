"""Mixture of experts: a router picks k of E expert MLPs per token (Shazeer et al. 2017,
"Outrageously Large Neural Networks"; Fedus et al. 2021, "Switch Transformers"; Grok-1).

    probs   = softmax(x Wr)                   (N, E)  router probabilities, float32 or wider
    gates, experts = top_k(probs, k)          (N, k)  NOT renormalised (Grok-1, Mixtral differ)
    y_n     = sum_j gates[n, j] * expert_{experts[n, j]}(x_n)

Sparse dispatch, the reason an MoE is cheap: the N*k (token, expert) assignments are sorted by
expert (a stable argsort), the tokens' rows permuted into that order, each expert runs one
matmul chain on its own contiguous block of rows, and the outputs are permuted back, weighted by
their gates and summed over each token's k slots (row permutations, never a scatter-add).
The experts together see N*k rows instead of N*E, so the layer costs about k/E of running
every expert on every token (dense dispatch, kept for tests and measurements).

When the experts are plain gated MLPs, the dispatch runs inside one op (`ops/moe.py`,
`MoEExperts`: the same arithmetic, bitwise, with shapes independent of the routing, so that
`descent.compile` replays it); `MoE(fused=False)` keeps the composite form below. The experts'
output dropout (training) is one (N*k, D) mask drawn before the op, whose rows follow the
assignments in expert order: the values the composite form draws expert after expert, so the
two forms give the same bits for the same generator state.

Gradients: only the chosen experts receive gradient from a token (an expert with no tokens in a
step gets a zero gradient from the fused op, as JAX gives Grok-1, and none at all from the
composite form); the router learns through the gates, d y_n / d gates[n, j] =
expert_j(x_n), and the softmax spreads that to every logit of the token. The indices themselves
are piecewise constant: no gradient flows through the choice.

Training losses (returned in `last_aux`, weighted and added by the model):
  * load balance (Switch Transformer, eq. 4): E * sum_i f_i * P_i, where f_i is the fraction of
    the N*k assignments that went to expert i (a constant) and P_i the mean router probability
    of expert i (differentiable). 1.0 when perfectly balanced, up to E when collapsed.
  * router z-loss (Zoph et al. 2022, ST-MoE, eq. 5): mean over tokens of logsumexp(logits)^2;
    keeps router logits small so the float32 softmax stays accurate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import backend
from ..autograd import Function
from ..grad_mode import is_grad_enabled
from ..ops import shape as _shape
from ..ops.moe import FUSED_ACTIVATIONS, LoadBalance, MoEExperts, route
from ..tensor import Tensor
from . import functional as F
from .container import ModuleList
from .dropout import Dropout
from .functional._dropout import dropout_mask
from .gated_mlp import GatedMLP
from .linear import Linear
from .module import Module

__all__ = ["Router", "RouterOutput", "MoE", "MoEStats", "permute_rows"]

_LOW_PRECISION = (np.dtype(np.float16).str,)


class RowPermutation(Function):
    """y = x[perm] for a permutation of x's rows; dy/dx: gx = gy[inverse perm] (no scatter)."""

    __slots__ = ("perm", "inverse")

    def forward(self, x):
        return x[self.perm]

    def backward(self, gy, ops):
        # gy[inverse] is a gather on arrays and a recorded getitem under create_graph.
        return gy[self.inverse]


def permute_rows(x: Tensor, perm) -> Tensor:
    """x[perm] for a permutation `perm` (a backend integer array) of x's first dimension.

    The same values as `x[perm]`, whose gradient must scatter-add because an index may repeat;
    a permutation's gradient is the inverse permutation, a plain gather.
    """
    xp = backend.get_array_module(perm)
    inverse = xp.empty_like(perm)
    inverse[perm] = xp.arange(perm.shape[0], dtype=perm.dtype)
    return RowPermutation.apply(x, perm=perm, inverse=inverse)


@dataclass
class RouterOutput:
    """What a Router decides for N tokens.

    Attributes:
        logits: (N, E) router logits (float32 or wider), differentiable.
        probs: (N, E) softmax of the logits, differentiable.
        gates: (N, k) the chosen experts' probabilities (not renormalised), differentiable.
        indices: (N, k) int64 backend array, the chosen experts, most probable first.
    """

    logits: Tensor
    probs: Tensor
    gates: Tensor
    indices: object


@dataclass
class MoEStats:
    """Routing statistics of one forward pass (NumPy values, for reports and monitors).

    Attributes:
        tokens_per_expert: (E,) number of assignments each expert received (sums to N*k).
        mean_prob: (E,) mean router probability of each expert.
        router_entropy: mean over tokens of the router distribution's entropy, in nats
            (log E is uniform, 0 is certain).
        num_tokens: N.
        num_selected: k.
    """

    tokens_per_expert: np.ndarray
    mean_prob: np.ndarray
    router_entropy: float
    num_tokens: int
    num_selected: int

    @property
    def token_share(self) -> np.ndarray:
        """(E,) fraction of the assignments each expert took (1/E each when balanced)."""
        return self.tokens_per_expert / max(1, int(self.tokens_per_expert.sum()))


class Router(Module):
    """The linear router of an MoE layer: logits = x Wr^T, softmax in float32, top-k.

    Args:
        n_embd: input width D.
        num_experts: E.
        num_selected_experts: k (Grok-1: 2 of 8).

    Parameters: `linear` Linear(D, E) without bias.
    """

    def __init__(self, n_embd: int, num_experts: int, num_selected_experts: int) -> None:
        super().__init__()
        if not 0 < num_selected_experts <= num_experts:
            raise ValueError(
                f"Router: num_selected_experts ({num_selected_experts}) must be in "
                f"1..num_experts ({num_experts})"
            )
        self.num_experts, self.num_selected_experts = num_experts, num_selected_experts
        self.linear = Linear(n_embd, num_experts, bias=False)

    def scores(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (N, D) -> (logits, probs), both (N, E) and differentiable, without the choice."""
        logits = self.linear(x)  # (N, E)
        if logits._data.dtype.str in _LOW_PRECISION or logits._data.dtype.name == "bfloat16":
            # Grok-1 routes in float32 whatever the activations' dtype: a float16 softmax over
            # nearly equal logits would round the choice away.
            logits = logits.astype(np.float32)
        return logits, F.softmax(logits, dim=-1)

    def forward(self, x: Tensor) -> RouterOutput:
        """x (N, D) -> RouterOutput for its N tokens."""
        logits, probs = self.scores(x)
        # Most probable first; a stable sort breaks exact ties towards the lower expert index
        # (as jax.lax.top_k). The choice is a constant: no gradient flows through it.
        indices = route(probs._data, self.num_selected_experts)  # (N, k)
        gates = probs.take_along_axis(Tensor._wrap(indices), -1)  # (N, k)
        return RouterOutput(logits, probs, gates, indices)

    def extra_repr(self) -> str:
        return f"num_experts={self.num_experts}, num_selected_experts={self.num_selected_experts}"


class MoE(Module):
    """A mixture-of-experts feed-forward layer: Router + E gated-MLP experts, sparse dispatch.

    Args:
        n_embd: model width D.
        hidden: each expert's gated hidden width (Grok-1: `ffn_size(D, widening_factor)`).
        num_experts: E (Grok-1: 8).
        num_selected_experts: k (Grok-1: 2).
        activation: the experts' activation (see `GatedMLP`; Grok-1: 'gelu_tanh').
        dropout: on each expert's output (training mode only).
        dispatch: 'sparse' (tokens grouped by expert; the default) or 'dense' (every expert on
            every token, weighted by the gates, zero for the unchosen): the same values and
            gradients, E/k times the work. For tests and measurements.
        fused: run the sparse dispatch's expert work as one op (`ops.moe.MoEExperts`: the
            composite form's values and gradients bit for bit, fixed shapes, so that
            `descent.compile` replays the layer) whenever the experts allow it: activation
            'gelu_tanh', 'silu' or 'relu', no biases, no hooks on the experts, and an active
            dropout only with the same `nn.Dropout` probability in every expert (not in
            place) on NumPy float32/float64 inputs of more than one token (its mask drawn in
            the composite form's order: the same bits). False keeps the composite form (one
            op per projection per expert), which also supports higher-order gradients
            (create_graph=True).

    Shapes: (..., D) -> (..., D). After each forward, `last_aux` holds the load-balance and
    z-loss Tensors (differentiable), `last_probs` the router's (N, E) probabilities and
    `last_stats` a `MoEStats` (computed from them when read).
    """

    def __init__(
        self,
        n_embd: int,
        hidden: int,
        num_experts: int,
        num_selected_experts: int = 2,
        activation: str = "gelu_tanh",
        dropout: float = 0.0,
        dispatch: str = "sparse",
        fused: bool = True,
    ) -> None:
        super().__init__()
        if dispatch not in ("sparse", "dense"):
            raise ValueError(f"MoE: dispatch must be 'sparse' or 'dense', got {dispatch!r}")
        self.num_experts, self.num_selected_experts = num_experts, num_selected_experts
        self.dispatch = dispatch
        self.fused = fused
        self.router = Router(n_embd, num_experts, num_selected_experts)
        self.experts = ModuleList(
            GatedMLP(n_embd, hidden, activation=activation, dropout=dropout)
            for _ in range(num_experts)
        )
        self.last_aux: dict[str, Tensor] = {}
        self.last_probs: Tensor | None = None
        # (probs array, MoEStats) of the last read: a dict mutated in place, never reassigned,
        # so that descent.compile sees no Python assignment to the module during a call.
        self._stats_cache: dict = {}

    @property
    def last_stats(self) -> MoEStats | None:
        """Routing statistics of the last forward (None before the first): computed from
        `last_probs` when read, with the same routing as the forward."""
        p = self.last_probs
        if p is None:
            return None
        cache = self._stats_cache
        if cache.get("probs") is not p._data:
            cache["stats"] = _stats(p._data, self.num_experts, self.num_selected_experts)
            cache["probs"] = p._data
        return cache["stats"]

    def forward(self, x: Tensor) -> Tensor:
        shape = tuple(x.shape)
        xf = x.reshape(-1, shape[-1])  # (N, D)
        p = self._fusable(xf) if self.dispatch == "sparse" else None
        if p is not None:
            logits, probs = self.router.scores(xf)
            self.last_probs = probs
            self._losses(logits, probs, None)
            ws = [w for ex in self.experts for w in (ex.linear.weight, ex.linear_v.weight,
                                                       ex.linear_1.weight)]  # fmt: skip
            act, k = self.experts[0].activation, self.num_selected_experts
            if p:  # the experts' dropout: one draw for the N*k rows, in expert order
                drop = dropout_mask((xf.shape[0] * k, shape[-1]), p, xf._data.dtype, xf.device,
                                    None)  # fmt: skip
                y = MoEExperts.apply(xf, probs, *ws, k=k, act=act, drop=drop)
            else:
                y = MoEExperts.apply(xf, probs, *ws, k=k, act=act)
            return y.reshape(shape)
        r = self.router(xf)
        self.last_probs = r.probs
        counts = self._losses(r.logits, r.probs, r.indices)
        if self.dispatch == "sparse":
            y = self._sparse(xf, r, counts)
        else:
            y = self._dense(xf, r)
        return y.reshape(shape)

    def _fusable(self, x: Tensor) -> float | None:
        """The experts' dropout probability (0.0 when none is active) if they are plain gated
        MLPs that `MoEExperts` computes exactly, else None (the composite form)."""
        if not self.fused or self._forward_hooks or self._forward_pre_hooks:
            return None
        act = p = None
        for ex in self.experts:
            if type(ex) is not GatedMLP or (act is not None and ex.activation != act):
                return None
            act = ex.activation
            if act not in FUSED_ACTIVATIONS:
                return None
            q = _active_dropout(ex, x)
            if q is None or (p is not None and q != p):
                return None
            p = q
            for m in (ex, ex.linear, ex.linear_v, ex.linear_1, ex.dropout):
                if m._forward_hooks or m._forward_pre_hooks:
                    return None
            for lin in (ex.linear, ex.linear_v, ex.linear_1):
                if type(lin) is not Linear or lin.bias is not None:
                    return None
                if lin.weight._data.dtype != x._data.dtype:
                    return None  # the composite form raises Linear's dtype error
        return None if act is None else p

    def _losses(self, logits: Tensor, probs: Tensor, indices) -> np.ndarray | None:
        """Fill last_aux (the load-balance and z-losses, Tensors); return the (E,) assignment
        counts (host integers) when the routing `indices` are given.

        Inference (eval mode under no_grad: generation, validation) computes no auxiliary
        losses (last_aux is empty; nothing would use them): at one token per step the two
        losses' small ops were a tenth of a decoding step.
        """
        e, k = self.num_experts, self.num_selected_experts
        counts = None
        if indices is not None:
            counts = np.bincount(backend.as_numpy(indices).reshape(-1), minlength=e)  # (E,)
        if not (self.training or is_grad_enabled()):
            self.last_aux = {}
            return counts
        if counts is None:  # the fused path: f_i from the same routing, inside one op
            load_balance = LoadBalance.apply(probs, k=k)
        else:
            n = probs.shape[0]
            frac = (counts / max(1, n * k)).astype(probs._data.dtype)  # f_i, constant
            xp = backend.get_array_module(probs._data)
            p_mean = probs.mean(dim=0)  # (E,)  P_i, differentiable
            load_balance = (p_mean * Tensor._wrap(xp.asarray(frac))).sum() * float(e)
        z = logits.logsumexp(dim=-1)  # (N,)
        self.last_aux = {"load_balance": load_balance, "router_z": (z * z).mean()}
        return counts

    def _sparse(self, x: Tensor, r: RouterOutput, counts: np.ndarray) -> Tensor:
        """Group the N*k assignments by expert, run each expert on its rows, put them back."""
        n, d = x.shape
        k = self.num_selected_experts
        gates = r.gates if r.gates.dtype == x.dtype else r.gates.astype(x.dtype)  # (N, k)
        if n == 1:  # one token (decoding with a cache): its k experts, nothing to group
            y = None
            for j, e in enumerate(backend.as_numpy(r.indices[0]).tolist()):
                ye = self.experts[e](x) * gates[:, j : j + 1]  # (1, D)
                y = ye if y is None else y + ye
            return y
        xp = backend.get_array_module(r.indices)
        flat = r.indices.reshape(-1)  # (N*k,) expert of assignment (token n, slot j) at n*k+j
        order = xp.argsort(flat, kind="stable")  # assignments grouped by expert, tokens in order
        # Both moves are permutations of the N*k assignment rows, whose gradient is the inverse
        # permutation: no scatter-add (np.add.at) anywhere. The k copies of each token come from
        # a broadcast, whose gradient is a plain sum over the k slots.
        xk = x if k == 1 else x.unsqueeze(1).expand(n, k, d).reshape(n * k, d)  # (N*k, D)
        xs = permute_rows(xk, order)  # (N*k, D) sorted by expert
        outs, start = [], 0
        for e, c in enumerate(counts.tolist()):
            if c:  # an expert with no tokens does no work and gets no gradient
                outs.append(self.experts[e](xs[start : start + c]))  # (c, D)
                start += c
        ys = _shape.concatenate(outs, axis=0) if len(outs) > 1 else outs[0]  # (N*k, D)
        inverse = xp.empty_like(order)
        inverse[order] = xp.arange(order.shape[0], dtype=order.dtype)
        yk = permute_rows(ys, inverse).reshape(n, k, d)  # (N, k, D) back in (token, slot) order
        if k == 1:
            return yk.reshape(n, d) * gates
        return (yk * gates.unsqueeze(-1)).sum(dim=1)  # (N, D)

    def _dense(self, x: Tensor, r: RouterOutput) -> Tensor:
        """Every expert on every token, weighted by the gate (0 where not chosen)."""
        xp = backend.get_array_module(r.indices)
        n = x.shape[0]
        onehot = xp.zeros((n, self.num_selected_experts, self.num_experts), dtype=x._data.dtype)
        xp.put_along_axis(onehot, r.indices[..., None], 1, axis=-1)  # (N, k, E)
        gates = r.gates if r.gates.dtype == x.dtype else r.gates.astype(x.dtype)
        dense = (gates.unsqueeze(-1) * Tensor._wrap(onehot)).sum(dim=1)  # (N, E)
        y = None
        for e, expert in enumerate(self.experts):
            ye = expert(x) * dense[:, e : e + 1]  # (N, D)
            y = ye if y is None else y + ye
        return y

    def extra_repr(self) -> str:
        return (
            f"num_experts={self.num_experts}, num_selected_experts={self.num_selected_experts}, "
            f"dispatch={self.dispatch!r}" + ("" if self.fused else ", fused=False")
        )


def _active_dropout(ex: GatedMLP, x: Tensor) -> float | None:
    """The probability of the dropout GatedMLP.forward applies to expert `ex`'s output (0.0:
    none), or None when `MoEExperts` cannot draw it as the composite form does: a Dropout
    subclass or in place, p = 1 (no mask), a GPU array (its generator's stream may depend on
    how a draw is split), a dtype other than float32/float64, or one token (the composite
    form's path for N = 1 visits the experts in slot order, not expert order)."""
    d = ex.dropout
    if not (ex.training and d.p > 0 and d.training):  # GatedMLP's test, then F.dropout's
        return 0.0
    a = x._data
    if type(d) is not Dropout or d.inplace or d.p >= 1.0 or type(a) is not np.ndarray:
        return None
    if a.dtype not in (np.float32, np.float64) or a.shape[0] == 1:
        return None
    return float(d.p)


def _stats(p, e: int, k: int) -> MoEStats:
    """MoEStats of router probabilities p (N, E) routed to k experts."""
    counts = np.bincount(backend.as_numpy(route(p, k)).reshape(-1), minlength=e)  # (E,)
    p = backend.as_numpy(p).astype(np.float64)
    n = p.shape[0]
    entropy = float(-(p * np.log(np.clip(p, 1e-30, None))).sum(-1).mean()) if n else 0.0
    return MoEStats(
        tokens_per_expert=counts,
        mean_prob=p.mean(axis=0) if n else np.zeros(e),
        router_entropy=entropy,
        num_tokens=n,
        num_selected=k,
    )
