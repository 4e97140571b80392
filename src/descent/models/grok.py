"""Grok: a mixture-of-experts decoder in the shape of xAI's Grok-1, at any size.

The open release (xai-org/grok-1, Apache-2.0, March 2024; `model.py`) fixes the structure this
module follows:

    idx (B, T) --embed * embedding_multiplier_scale--> x (B, T, D)
    n_layer x block ("sandwich" RMSNorm: before AND after each sub-layer, residual added last):
        x = x + norm(attn(norm(x)))          grouped-query attention, rotary positions,
                                             logits * attn_output_multiplier, 30 tanh(s / 30)
        x = x + norm(moe(norm(x)))           router: softmax in float32, top-k of E experts,
                                             outputs weighted by the NOT renormalised probs;
                                             expert: W1(gelu(W x) * (V x)),
                                             hidden = ffn_size(D, widening_factor)
    --RMSNorm--> x @ embed^T * output_multiplier_scale --> logits (B, T, vocab)   (tied)

Grok-1 itself: 64 layers, D = 6144, 48 query / 8 key-value heads of 128, widening 8 (hidden
32768), 8 experts with 2 per token, vocab 131072, context 8192, multipliers 0.08838834764831845
(= 1/sqrt(128)), 78.38367176906169 (= sqrt(6144)) and 0.5773502691896257 (= 1/sqrt(3)):
`grok1_config()` returns it (do not instantiate it: 316e9 parameters by this code's count).
With `num_experts=1` the feed-forward is one gated MLP (Grok-1's dense branch, no router).

Training an MoE needs what inference does not: the load-balancing loss (Switch Transformer) and
the router z-loss (ST-MoE), averaged over layers and added to the language-model loss with the
weights `aux_loss_weight` and `router_z_loss_weight` in training mode. `model.aux_losses` reports
the three parts separately after every forward (only `lm` at inference: eval mode under
no_grad computes no auxiliary losses); in eval mode the returned loss is the language-model
loss alone (comparable with `GPT`'s).

Differences from Grok-1, on purpose: weights start from N(0, 0.02) with the output projections
scaled by 1/sqrt(2 n_layer) (GPT-2), since Grok-1's release carries no training recipe; RMSNorm
gains start at 1; optional dropout. Everything else is Grok-1's arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import descent

from .. import nn
from ..nn import functional as F
from ..nn.gated_mlp import GatedMLP, ffn_size
from ..nn.gqa_attention import GroupedQueryAttention, KVCache
from ..nn.moe import MoE
from ..nn.rotary import RotaryEmbedding
from .gpt import generate_tokens

__all__ = ["Grok", "GrokConfig", "GROK_PRESETS", "grok1_config"]

# RMSNorm's epsilon in Grok-1 (hk.RMSNorm subclass, eps=1e-5).
_NORM_EPS = 1e-5


@dataclass
class GrokConfig:
    """The shape of a Grok model (defaults: a small model that trains on a CPU).

    Attributes:
        vocab_size: number of distinct tokens.
        block_size: the longest context (rotary positions 0..block_size-1).
        n_layer: number of decoder blocks.
        n_head: query heads per block.
        n_kv_head: key/value heads per block; must divide n_head (grouped-query attention).
        head_dim: width of each head (Grok-1's key size).
        n_embd: width of the residual stream D.
        widening_factor: the experts' hidden width is ffn_size(D, widening_factor).
        num_experts: E; 1 gives the dense model (one gated MLP, no router).
        num_selected_experts: k experts per token.
        attn_output_multiplier: scale of the attention logits q.k (None: 1/sqrt(head_dim)).
        attn_logit_cap: soft-cap of the attention logits, cap * tanh(s / cap) (Grok-1: 30).
        embedding_multiplier_scale: multiplies the input embeddings.
        output_multiplier_scale: multiplies the output logits.
        rope_base: the rotary embedding's frequency base.
        dropout: on the embeddings, attention weights and residual branches.
    """

    vocab_size: int = 512
    block_size: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_kv_head: int = 2
    head_dim: int = 32
    n_embd: int = 128
    widening_factor: float = 4.0
    num_experts: int = 4
    num_selected_experts: int = 2
    attn_output_multiplier: float | None = None
    attn_logit_cap: float = 30.0
    embedding_multiplier_scale: float = 1.0
    output_multiplier_scale: float = 1.0
    rope_base: float = 10000.0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_kv_head", "head_dim",
                     "n_embd", "num_experts", "num_selected_experts"):  # fmt: skip
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"GrokConfig: {name} must be positive, got {getattr(self, name)}")
        if self.n_head % self.n_kv_head:
            raise ValueError(
                f"GrokConfig: n_kv_head={self.n_kv_head} must divide n_head={self.n_head} "
                "(each key/value head serves n_head // n_kv_head query heads)"
            )
        if self.head_dim % 2:
            raise ValueError(f"GrokConfig: head_dim must be even for rotary, got {self.head_dim}")
        if self.num_selected_experts > self.num_experts:
            raise ValueError(
                f"GrokConfig: num_selected_experts={self.num_selected_experts} exceeds "
                f"num_experts={self.num_experts}"
            )
        if self.widening_factor <= 0:
            raise ValueError(f"GrokConfig: widening_factor must be > 0, got {self.widening_factor}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GrokConfig: dropout must be in [0, 1), got {self.dropout}")
        if self.attn_output_multiplier is None:
            self.attn_output_multiplier = 1.0 / math.sqrt(self.head_dim)

    @property
    def ffn_size(self) -> int:
        """Each expert's hidden width: int(widening_factor * D) * 2 // 3, rounded up to 8."""
        return ffn_size(self.n_embd, self.widening_factor)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GrokConfig:
        """Build from a dict, ignoring keys that are not GrokConfig fields (e.g. training ones)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """name -> shape of every tensor of a Grok of this shape (no weights allocated)."""
        d, hd, e = self.n_embd, self.head_dim, self.num_experts
        out: dict[str, tuple[int, ...]] = {"wte.weight": (self.vocab_size, d)}
        for i in range(self.n_layer):
            p = f"h.{i}."
            for norm in ("pre_attn_norm", "post_attn_norm", "pre_moe_norm", "post_moe_norm"):
                out[p + norm + ".weight"] = (d,)
            out[p + "attn.query.weight"] = (self.n_head * hd, d)
            out[p + "attn.key.weight"] = (self.n_kv_head * hd, d)
            out[p + "attn.value.weight"] = (self.n_kv_head * hd, d)
            out[p + "attn.linear.weight"] = (d, self.n_head * hd)
            experts = [p + "moe."] if e == 1 else [p + f"moe.experts.{j}." for j in range(e)]
            if e > 1:
                out[p + "moe.router.linear.weight"] = (e, d)
            for q in experts:
                out[q + "linear.weight"] = (self.ffn_size, d)
                out[q + "linear_v.weight"] = (self.ffn_size, d)
                out[q + "linear_1.weight"] = (d, self.ffn_size)
        out["ln_f.weight"] = (d,)
        return out

    @classmethod
    def from_checkpoint(cls, d: Any, shapes: dict, where: str = "model_config") -> GrokConfig:
        """A GrokConfig read from a file, safe to build: every field's type is checked, and the
        tensors `shapes` (name -> shape) must be exactly those of a Grok of that shape (so the
        model built is no larger than the file).

        Raises:
            ValueError: naming the first field or tensor that disagrees.
        """
        if not isinstance(d, dict):
            raise ValueError(f"{where} is a {type(d).__name__}, not an object")
        for f in fields(cls):
            if f.name not in d:
                raise ValueError(f"{where} has no {f.name}")
            v, kind = d[f.name], str(f.type)
            if kind == "int" and not (type(v) is int and v > 0):
                raise ValueError(f"{where}.{f.name} is {v!r}; expected a positive integer")
            if kind.startswith("float") and (v is not None or "None" not in kind) and (
                isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
            ):
                raise ValueError(f"{where}.{f.name} is {v!r}; expected a finite number")
        try:
            cfg = cls.from_dict(d)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: {e}") from None
        want = cfg.state_shapes()
        have = {k: tuple(v) for k, v in shapes.items()}
        for name in sorted(set(want) | set(have)):
            if want.get(name) != have.get(name):
                raise ValueError(
                    f"{where} describes a Grok whose {name} is {want.get(name) or 'absent'} but "
                    f"the file has {have.get(name) or 'no such tensor'}; the file's config and "
                    "its tensors disagree"
                )
        return cfg

    def num_parameters(self) -> int:
        """The parameter count, computed from the shape (no weights allocated)."""
        d, hd = self.n_embd, self.head_dim
        attn = d * hd * (2 * self.n_head + 2 * self.n_kv_head)  # query, key, value, linear
        expert = 3 * d * self.ffn_size
        ff = expert if self.num_experts == 1 else self.num_experts * expert + d * self.num_experts
        return self.vocab_size * d + self.n_layer * (attn + ff + 4 * d) + d


def grok1_config() -> GrokConfig:
    """Grok-1's published shape (xai-org/grok-1 run.py): for reference and counting only."""
    return GrokConfig(
        vocab_size=131072, block_size=8192, n_layer=64, n_head=48, n_kv_head=8, head_dim=128,
        n_embd=6144, widening_factor=8.0, num_experts=8, num_selected_experts=2,
        attn_output_multiplier=0.08838834764831845, attn_logit_cap=30.0,
        embedding_multiplier_scale=78.38367176906169, output_multiplier_scale=0.5773502691896257,
        rope_base=10000.0, dropout=0.0,
    )  # fmt: skip


# Training recipes for `descent train --model grok --preset NAME` (model shape + schedule).
# tiny-grok's 1,000 steps take the wall time of baby-gpt's 2,000: its training step costs 2.0
# of baby-gpt's (measured interleaved in one process, benchmarks/grok_equal_time.py ratio), and
# it reaches 2.49 validation bits per character where baby-gpt reaches 2.75 (docs/grok.md).
GROK_PRESETS: dict[str, dict] = {
    "tiny-grok": dict(
        n_layer=4, n_head=4, n_kv_head=2, head_dim=32, n_embd=128, widening_factor=4.0,
        num_experts=4, num_selected_experts=2, block_size=64, dropout=0.0,
        attn_logit_cap=30.0, embedding_multiplier_scale=1.0, output_multiplier_scale=1.0,
        model="grok", tokenizer="subword", vocab_size=512,
        aux_loss_weight=0.01, router_z_loss_weight=0.001,
        batch_size=12, learning_rate=1e-3, min_lr=1e-4, warmup_iters=100,
        max_iters=1000, lr_decay_iters=1000, beta1=0.9, beta2=0.99, weight_decay=0.1,
        grad_clip=1.0, eval_interval=125, eval_iters=20,
    ),
}  # fmt: skip


class GrokBlock(nn.Module):
    """One Grok-1 decoder layer: sandwich-normed attention, then a sandwich-normed MoE."""

    def __init__(self, config: GrokConfig, rotary: RotaryEmbedding) -> None:
        super().__init__()
        c = config
        self.pre_attn_norm = nn.RMSNorm(c.n_embd, eps=_NORM_EPS)
        self.attn = GroupedQueryAttention(
            c.n_embd, c.n_head, c.n_kv_head, c.head_dim,
            attn_output_multiplier=c.attn_output_multiplier, attn_logit_cap=c.attn_logit_cap,
            rotary=rotary, dropout=c.dropout,
        )  # fmt: skip
        self.post_attn_norm = nn.RMSNorm(c.n_embd, eps=_NORM_EPS)
        self.pre_moe_norm = nn.RMSNorm(c.n_embd, eps=_NORM_EPS)
        if c.num_experts > 1:
            self.moe = MoE(c.n_embd, c.ffn_size, c.num_experts, c.num_selected_experts,
                           activation="gelu_tanh", dropout=c.dropout)  # fmt: skip
        else:  # Grok-1's dense branch: one gated MLP, no router
            self.moe = GatedMLP(c.n_embd, c.ffn_size, activation="gelu_tanh", dropout=c.dropout)
        self.post_moe_norm = nn.RMSNorm(c.n_embd, eps=_NORM_EPS)

    def forward(self, x, kv_cache=None):
        # The residual is added AFTER the post-norm (Grok-1: h += layer_norm(h_attn)).
        x = x + self.post_attn_norm(self.attn(self.pre_attn_norm(x), kv_cache))
        return x + self.post_moe_norm(self.moe(self.pre_moe_norm(x)))


class Grok(nn.Module):
    """A Grok-1-shaped mixture-of-experts language model.

    Args:
        config: the model's shape, a `GrokConfig`.
        aux_loss_weight: weight of the load-balancing loss in the training loss (Switch
            Transformer's alpha = 0.01).
        router_z_loss_weight: weight of the router z-loss (ST-MoE's 0.001).

    Example:
        >>> model = Grok(GrokConfig(vocab_size=512, block_size=64))
        >>> logits, loss = model(x, y)      # x, y: (B, T) token ids
        >>> model.aux_losses                # {'lm': ..., 'load_balance': ..., 'router_z': ...}
        >>> out = model.generate(prompt, 100, top_k=10)   # with a key/value cache
    """

    def __init__(
        self,
        config: GrokConfig,
        aux_loss_weight: float = 0.01,
        router_z_loss_weight: float = 0.001,
    ) -> None:
        super().__init__()
        if aux_loss_weight < 0 or router_z_loss_weight < 0:
            raise ValueError(
                f"Grok: aux_loss_weight ({aux_loss_weight}) and router_z_loss_weight "
                f"({router_z_loss_weight}) must be >= 0"
            )
        self.config = config
        self.aux_loss_weight = float(aux_loss_weight)
        self.router_z_loss_weight = float(router_z_loss_weight)
        # One parameter-free rotary module shared by every layer (same head width and base).
        rotary = RotaryEmbedding(config.head_dim, config.block_size, config.rope_base)
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # tied with the output
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList(GrokBlock(config, rotary) for _ in range(config.n_layer))
        self.ln_f = nn.RMSNorm(config.n_embd, eps=_NORM_EPS)
        self.aux_losses: dict[str, descent.Tensor] = {}

        # nanoGPT/GPT-2 initialisation (Grok-1's release has no training recipe): N(0, 0.02),
        # projections back into the residual stream scaled by 1/sqrt(2 n_layer).
        for name, p in self.named_parameters():
            if p.ndim >= 2:
                std = 0.02
                if name.endswith(("attn.linear.weight", "linear_1.weight")):
                    std = 0.02 / math.sqrt(2 * config.n_layer)
                nn.init.normal_(p, mean=0.0, std=std)

    def moe_layers(self) -> list[MoE]:
        """The MoE layers in order (empty for the dense model)."""
        return [b.moe for b in self.h if isinstance(b.moe, MoE)]

    def num_parameters(self, trainable_only: bool = False, active: bool = False) -> int:
        """The number of parameters; with active=True, those one token uses (k of E experts)."""
        n = sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
        if active:
            for moe in self.moe_layers():
                per_expert = sum(p.numel() for p in moe.experts[0].parameters())
                n -= (moe.num_experts - moe.num_selected_experts) * per_expert
        return n

    def forward(self, idx, targets=None, kv_cache: KVCache | None = None):
        """Next-token logits, and the loss when targets are given.

        Args:
            idx: (B, T) integer token ids, T <= block_size (with a cache: the new tokens only,
                cached + T <= block_size).
            targets: (B, T) next-token ids (-1 is ignored), or None.
            kv_cache: a `KVCache` for generation; None for the plain forward.

        Returns:
            (logits, loss): with targets, logits (B, T, vocab) and the scalar loss (training
            mode: lm + aux_loss_weight * load_balance + router_z_loss_weight * router_z;
            eval mode: lm); without, the last position's logits (B, 1, vocab) and None.
        """
        b, t = idx.shape
        offset = 0 if kv_cache is None else kv_cache.length
        if offset + t > self.config.block_size:
            raise ValueError(
                f"Grok: a sequence of length {offset + t} is longer than block_size="
                f"{self.config.block_size}; crop the context to its last block_size tokens"
            )
        x = self.wte(idx) * self.config.embedding_multiplier_scale  # (B, T, D)
        x = self.drop(x) if self.training and self.drop.p > 0 else x
        for i, block in enumerate(self.h):
            x = block(x, None if kv_cache is None else kv_cache.layer(i))
        x = self.ln_f(x)
        self._collect_aux()
        if targets is None:
            # Only the last position is needed to sample; skip the rest of the output layer.
            logits = F.linear(x[:, -1:, :], self.wte.weight) * self.config.output_multiplier_scale
            return logits, None
        logits = F.linear(x, self.wte.weight) * self.config.output_multiplier_scale  # (B, T, V)
        lm = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1), ignore_index=-1)
        self.aux_losses["lm"] = lm
        loss = lm
        if self.training and "load_balance" in self.aux_losses:
            if self.aux_loss_weight:
                loss = loss + self.aux_losses["load_balance"] * self.aux_loss_weight
            if self.router_z_loss_weight:
                loss = loss + self.aux_losses["router_z"] * self.router_z_loss_weight
        return logits, loss

    def _collect_aux(self) -> None:
        """aux_losses <- the MoE layers' load-balance and z-losses, averaged over layers."""
        self.aux_losses = {}
        layers = self.moe_layers()
        if not layers or not all(m.last_aux for m in layers):  # none at inference (MoE._losses)
            return
        for key in ("load_balance", "router_z"):
            total = layers[0].last_aux[key]
            for m in layers[1:]:
                total = total + m.last_aux[key]
            self.aux_losses[key] = total * (1.0 / len(layers))

    def configure_optimizers(
        self,
        weight_decay: float,
        learning_rate: float,
        betas: tuple[float, float] = (0.9, 0.95),
        device_type: str | None = None,
        *,
        optimizer: str = "adamw",
        **unused: Any,
    ):
        """AdamW with weight decay on matrices (embedding, projections, experts, routers) only;
        RMSNorm gains are not decayed. Returns `descent.optim.AdamW` with groups [decay, no].

        `optimizer` must be 'adamw' (GPT's 'muon' settings are accepted and unused)."""
        from .. import optim

        if optimizer != "adamw":
            raise ValueError(f"Grok.configure_optimizers: only 'adamw' is supported, got "
                             f"{optimizer!r}")  # fmt: skip
        params = [p for _, p in self.named_parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay,
             "lr_scale": 1.0},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0, "lr_scale": 1.0},
        ]  # fmt: skip
        return optim.AdamW(groups, lr=learning_rate, betas=tuple(betas))

    @descent.no_grad()
    def generate(
        self,
        idx,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: descent.Generator | None = None,
        use_cache: bool = True,
    ):
        """Continue each sequence in idx by sampling max_new_tokens tokens (eval mode).

        With `use_cache` the keys and values of past positions are kept (`KVCache`), so each
        step runs the model on one new token instead of the whole context. The tokens are the
        same as without the cache for the same generator while prompt + new tokens fit in
        block_size. Past that, cacheless generation re-reads the last block_size tokens every
        step; the cache instead drops the oldest half of its window once, re-reads the newest
        half, and continues (so the two may then differ: the context each token sees differs).

        Args:
            idx: (B, t) integer token ids, the prompts.
            max_new_tokens: how many tokens to append.
            temperature: divides the logits; 0 is greedy.
            top_k: sample only among the k most likely tokens.
            generator: the source of randomness (default: descent's global generator).
            use_cache: keep a key/value cache (default) or recompute the context every step.

        Returns:
            (B, t + max_new_tokens) token ids.
        """
        return generate_tokens(self, idx, max_new_tokens, temperature, top_k, generator,
                               use_cache, lambda x, cache: self(x, kv_cache=cache)[0])  # fmt: skip
