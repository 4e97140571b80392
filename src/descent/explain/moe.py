"""Gradients in a mixture of experts, explained (part of `gradient_report`).

In an MoE layer only the experts a token was routed to receive gradient from it: an expert
that no token chose in a step gets a zero gradient (the fused experts' op, as JAX gives
Grok-1) or none at all (`MoE(fused=False)`), and the router learns only through the
gates (the chosen experts' probabilities multiply their outputs). So, per MoE layer, after
`loss.backward()`:

* token share: the fraction of the step's tokens each expert served (balanced: k/E each);
* router entropy: the mean entropy of the router's distribution over experts, against its
  maximum log E (near 0: the router is certain; near log E: it cannot tell experts apart);
* the auxiliary losses of the forward pass: load balance (1 when balanced, up to E) and z-loss;
* each expert's gradient norm, and the experts that received no (or a zero) gradient;
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
            g = backend.as_numpy(p.grad._data).astype(np.float64)
            total += float((g * g).sum())
            seen = True
    return math.sqrt(total) if seen else None


def moe_layer_reports(model, thresholds: MoEThresholds | None = None) -> list[MoELayerReport]:
    """A report per MoE layer of `model` that has run forward (empty for models without MoE)."""
    from ..nn.moe import MoE  # explain sits above nn

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
        aux = {key: float(backend.as_numpy(t._data)) for key, t in m.last_aux.items()}
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


def expert_load(records: list[dict], max_layers: int = 4) -> Any:
    """A picture of expert load over training: per MoE layer, each expert's token share at the
    recorded steps (gradients.jsonl records), the balanced share k/E dashed and the collapse
    threshold dotted. Drawn through `explain.plot` (matplotlib, lazily)."""
    from .plot import _figure  # matplotlib only when a picture is asked for

    series: dict[str, dict] = {}  # layer -> {"steps": [...], "share": [[...E]], "k/E": float}
    for i, rec in enumerate(records):
        for m in rec.get("moe") or []:
            if not isinstance(m, dict) or not isinstance(m.get("token_share"), list):
                continue
            s = series.setdefault(str(m.get("name")), {"steps": [], "share": []})
            s["steps"].append(rec.get("step") if isinstance(rec.get("step"), int) else i)
            s["share"].append([float(v) for v in m["token_share"]])
            s["balanced"] = m.get("num_selected", 1) / max(1, m.get("num_experts", 1))
    names = list(series)[:max_layers]
    if not names:
        raise ValueError("no MoE records (train a Grok with --report)")
    fig = _figure(7.0, 2.2 * len(names))
    th = MoEThresholds()
    for j, name in enumerate(names):
        ax = fig.add_subplot(len(names), 1, j + 1)
        s = series[name]
        widths = {len(row) for row in s["share"]}
        share = np.array([row for row in s["share"] if len(row) == max(widths)])
        steps = [st for st, row in zip(s["steps"], s["share"]) if len(row) == max(widths)]
        for e in range(share.shape[1]):
            ax.plot(steps, share[:, e], lw=1.2, label=f"expert {e}")
        ax.axhline(s["balanced"], color="gray", ls="--", lw=0.8)
        ax.axhline(th.collapse_fraction, color="#c62828", ls=":", lw=0.8)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("token share")
        ax.set_title(f"{name}: share of tokens per expert (dashed: balanced k/E, dotted: "
                     "collapse)", fontsize=9)  # fmt: skip
        if j == 0:
            ax.legend(fontsize=7, ncol=min(4, share.shape[1]), loc="upper right")
    fig.axes[-1].set_xlabel("step")
    fig.tight_layout()
    return fig
