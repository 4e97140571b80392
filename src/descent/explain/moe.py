"""Gradients in a mixture of experts, explained (part of `gradient_report`).

In an MoE layer only the experts a token was routed to receive gradient from it: an expert
that no token chose in a step gets no gradient at all, and the router learns only through the
gates (the chosen experts' probabilities multiply their outputs). So, per MoE layer, after
`loss.backward()`:

* token share: the fraction of the step's tokens each expert served (balanced: k/E each);
* router entropy: the mean entropy of the router's distribution over experts, against its
  maximum log E (near 0: the router is certain; near log E: it cannot tell experts apart);
* the auxiliary losses of the forward pass: load balance (1 when balanced, up to E) and z-loss;
* each expert's gradient norm, and the experts that received no gradient;
* the router's gradient norm.

Flags (thresholds in `MoEThresholds`, printed with the report):
    collapse        one expert served at least `collapse_fraction` of the tokens (default 90%)
                    while the router could choose (k < E): the layer has stopped being a
                    mixture. The load-balancing loss exists to prevent this.
    starved         an expert served at most `starved_fraction` of its balanced share k/E
                    (default 10%): it learns (almost) nothing.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .. import backend

__all__ = ["MoEThresholds", "MoELayerReport", "moe_layer_reports", "describe_moe"]


@dataclass(frozen=True)
class MoEThresholds:
    """When an MoE layer gets a flag (see the module docstring)."""

    collapse_fraction: float = 0.9
    starved_fraction: float = 0.1

    def describe(self) -> str:
        return (
            f"collapse: one expert serves >= {self.collapse_fraction:.0%} of the tokens (k < E); "
            f"starved: an expert serves <= {self.starved_fraction:.0%} of its balanced share k/E"
        )


@dataclass
class MoELayerReport:
    """One MoE layer's routing and gradients in the last step (see the module docstring)."""

    name: str
    num_experts: int
    num_selected: int
    num_tokens: int
    token_share: list[float]
    router_entropy: float
    load_balance: float | None
    router_z: float | None
    expert_grad_norms: list[float | None]
    experts_without_grad: list[int]
    router_grad_norm: float | None
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _norm(params) -> float | None:
    """sqrt of the summed squared gradients of `params`; None when none has a gradient."""
    total, seen = 0.0, False
    for p in params:
        if p.grad is not None:
            g = backend.as_numpy(p.grad.data).astype(np.float64)
            total += float((g * g).sum())
            seen = True
    return math.sqrt(total) if seen else None


def moe_layer_reports(model, thresholds: MoEThresholds | None = None) -> list[MoELayerReport]:
    """A report per MoE layer of `model` that has run forward (empty for models without MoE)."""
    from ..nn.moe import MoE  # noqa: PLC0415 - explain sits above nn

    th = thresholds or MoEThresholds()
    named = getattr(model, "named_modules", None)
    if named is None:
        return []
    out = []
    for name, m in named():
        if not isinstance(m, MoE) or m.last_stats is None:
            continue
        st = m.last_stats
        e, k, n = m.num_experts, m.num_selected_experts, max(1, st.num_tokens)
        share = (st.tokens_per_expert / n).astype(float)  # fraction of tokens served
        norms = [_norm(ex.parameters()) for ex in m.experts]
        silent = [i for i, v in enumerate(norms) if v is None or v == 0.0]
        aux = {key: float(backend.as_numpy(t.data)) for key, t in m.last_aux.items()}
        flags = []
        if k < e and share.max() >= th.collapse_fraction:
            flags.append(f"collapse (expert {int(share.argmax())}: {share.max():.0%} of tokens)")
        starved = [i for i, s in enumerate(share) if s <= th.starved_fraction * k / e]
        if starved:
            flags.append(f"starved experts {starved}")
        out.append(MoELayerReport(
            name=name or "moe", num_experts=e, num_selected=k, num_tokens=st.num_tokens,
            token_share=[float(s) for s in share], router_entropy=st.router_entropy,
            load_balance=aux.get("load_balance"), router_z=aux.get("router_z"),
            expert_grad_norms=norms, experts_without_grad=silent,
            router_grad_norm=_norm(m.router.parameters()), flags=flags,
        ))  # fmt: skip
    return out


def describe_moe(
    layers: list[MoELayerReport], thresholds: MoEThresholds | None = None
) -> list[str]:
    """The report's lines for the MoE layers (a table per layer, then the thresholds)."""
    if not layers:
        return []
    th = thresholds or MoEThresholds()
    lines = ["mixture of experts: token share (balanced k/E), gradient norm per expert"]
    for r in layers:
        hmax = math.log(r.num_experts)
        lb = "-" if r.load_balance is None else f"{r.load_balance:.3f}"
        z = "-" if r.router_z is None else f"{r.router_z:.3f}"
        rg = "none" if r.router_grad_norm is None else f"{r.router_grad_norm:.3e}"
        lines.append(
            f"  {r.name}: {r.num_tokens} tokens, top-{r.num_selected} of {r.num_experts} "
            f"(balanced share {r.num_selected / r.num_experts:.0%}); router entropy "
            f"{r.router_entropy:.3f} of max {hmax:.3f} nats; load balance {lb} (1 = balanced); "
            f"z-loss {z}; router |g| {rg}"
        )
        cells = []
        for i, (s, g) in enumerate(zip(r.token_share, r.expert_grad_norms)):
            gs = "no gradient" if g is None or g == 0.0 else f"|g| {g:.2e}"
            cells.append(f"e{i} {s:.0%} {gs}")
        lines.append("    " + "; ".join(cells))
        lines.append("    flags: " + (", ".join(r.flags) if r.flags else "ok"))
    lines.append("  MoE flags: " + th.describe())
    return lines
