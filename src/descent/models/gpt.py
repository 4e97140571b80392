"""GPT: a decoder-only transformer language model in the shape of Karpathy's nanoGPT.

    idx (B, T) --wte--> (B, T, C) + wpe(0..T-1) (T, C) --dropout-->
        n_layer x Block:  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))      (pre-norm)
    --ln_f--> (B, T, C) --lm_head (weights tied to wte)--> logits (B, T, vocab_size)

References: Radford et al. (2019), "Language Models are Unsupervised Multitask Learners" (GPT-2:
pre-norm blocks, the 1/sqrt(2 * n_layer) scaling of residual projections); Press & Wolf (2017),
"Using the Output Embedding to Improve Language Models" (weight tying); nanoGPT's model.py for
the layout and the parameter names (so checkpoints map name for name). The attention layer is
`descent.nn.CausalSelfAttention`, nanoGPT's block with the same names.

Options from the modded-nanogpt speedrun (Keller Jordan et al., 2024-25), each a GPTConfig flag,
all off by default so that the default model is nanoGPT's (see docs/speedrun.md):

    rope            rotary position embeddings on q and k (Su et al. 2021); no learned wpe
    qk_norm         RMS-normalise each head's q and k before the scores (Dehghani et al. 2023)
    relu2           MLP activation ReLU(x)^2 instead of GELU (So et al. 2021, "Primer")
    logit_softcap   logits <- c * tanh(logits / c) (Gemma 2; c = 0 leaves them alone)
    zero_init_proj  the projections back into the residual stream (c_proj) start at zero
    tie_weights     False gives the output head its own matrix (untied from wte)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

import descent

from .. import backend, nn
from ..nn import functional as F
from ..nn.gqa_attention import KVCache
from ..ops.relu_squared import relu_squared


@dataclass
class GPTConfig:
    """The shape of a GPT.

    Attributes:
        vocab_size: number of distinct tokens (65 for tinyshakespeare's characters).
        block_size: the longest context the model sees (positions 0..block_size-1).
        n_layer: number of transformer blocks.
        n_head: attention heads per block; must divide n_embd.
        n_embd: width of the residual stream.
        dropout: dropout probability on embeddings, attention weights and residual branches.
        bias: whether Linear and LayerNorm layers have biases (nanoGPT's default: no).
        rope: rotary position embeddings on queries and keys instead of the learned position
            embedding `wpe` (which the model then does not have). Needs an even head width.
        rope_base: the rotary frequency base (10000 in the paper).
        qk_norm: RMS-normalise each head's queries and keys (no learned gain) before the
            attention scores, which bounds them and allows higher learning rates.
        relu2: the MLP's activation is ReLU(x)^2 instead of GELU.
        logit_softcap: c > 0 squashes the logits to (-c, c) with c * tanh(logits / c); 0 = off.
        zero_init_proj: initialise attn.c_proj and mlp.c_proj weights to zero (each block
            starts as the identity) instead of N(0, 0.02 / sqrt(2 n_layer)).
        tie_weights: share the token embedding with the output head (nanoGPT); False gives
            lm_head its own N(0, 0.02) matrix.
    """

    vocab_size: int = 65
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False
    rope: bool = False
    rope_base: float = 10000.0
    qk_norm: bool = False
    relu2: bool = False
    logit_softcap: float = 0.0
    zero_init_proj: bool = False
    tie_weights: bool = True

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"GPTConfig: {name} must be positive, got {getattr(self, name)}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"GPTConfig: n_embd={self.n_embd} is not divisible by n_head={self.n_head}; "
                "each head gets n_embd // n_head channels, so pick n_embd as a multiple of n_head"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig: dropout must be in [0, 1), got {self.dropout}")
        if self.rope and (self.n_embd // self.n_head) % 2:
            raise ValueError(
                f"GPTConfig: rope rotates channel pairs, so the head width n_embd // n_head = "
                f"{self.n_embd // self.n_head} must be even; change n_embd or n_head"
            )
        if self.rope and not self.rope_base > 1.0:
            raise ValueError(f"GPTConfig: rope_base must be > 1, got {self.rope_base}")
        if not self.logit_softcap >= 0.0:
            raise ValueError(
                f"GPTConfig: logit_softcap must be >= 0 (0 turns it off), got {self.logit_softcap}"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GPTConfig:
        """Build from a dict, ignoring keys that are not GPTConfig fields (e.g. training ones)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# Training recipes for `descent train --preset NAME`: the model shape plus the optimisation
# schedule. Both come from nanoGPT's config/train_shakespeare_char.py: 'shakespeare-char' is its
# GPU configuration and 'baby-gpt' the CPU variant its README gives ("--block_size=64
# --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000 --lr_decay_iters=2000
# --dropout=0.0 --eval_iters=20").
PRESETS: dict[str, dict] = {
    "baby-gpt": dict(
        n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0, bias=False,
        batch_size=12, learning_rate=1e-3, min_lr=1e-4, warmup_iters=100,
        max_iters=2000, lr_decay_iters=2000, beta1=0.9, beta2=0.99, weight_decay=0.1,
        grad_clip=1.0, eval_interval=250, eval_iters=20,
    ),
    # The CPU speedrun (docs/speedrun.md): baby-gpt's shape with every speedrun option, Muon
    # (lr 0.02) for the blocks' matrices, AdamW (lr 3e-3, no decay) for the rest, twice
    # baby-gpt's batch (Muon's Newton-Schulz cost is per step, not per token) and a 750-step
    # schedule. Measured on tinyshakespeare (benchmarks/speedrun.py, whole val split): val 1.90
    # after 235 +- 14 steps (3 seeds), 0.32 of the time of nanoGPT's 2,000 iterations in
    # PyTorch (by step cost; 1.64 at the end, about that time).
    "speedrun-cpu": dict(
        n_layer=2, n_head=4, n_embd=128, block_size=64, dropout=0.0, bias=False,
        rope=True, qk_norm=True, relu2=True, logit_softcap=15.0, zero_init_proj=True,
        tie_weights=False, optimizer="muon", muon_lr=0.02, muon_momentum=0.95,
        muon_weight_decay=0.0, batch_size=24, learning_rate=3e-3, min_lr=3e-4,
        warmup_iters=50, max_iters=1800, lr_decay_iters=300, beta1=0.9, beta2=0.99,
        weight_decay=0.0, grad_clip=1.0, eval_interval=300, eval_iters=20, compile=True,
    ),
    "shakespeare-char": dict(
        n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2, bias=False,
        batch_size=64, learning_rate=1e-3, min_lr=1e-4, warmup_iters=100,
        max_iters=5000, lr_decay_iters=5000, beta1=0.9, beta2=0.99, weight_decay=0.1,
        grad_clip=1.0, eval_interval=250, eval_iters=200,
    ),
}  # fmt: skip


class MLP(nn.Module):
    """The position-wise feed-forward network: C -> 4C -> GELU (or ReLU^2) -> C."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)
        self.relu2 = config.relu2

    def forward(self, x):
        h = self.c_fc(x)  # (B, T, 4C)
        if self.relu2:
            # ReLU^2 (So et al. 2021): sparse like ReLU, smooth at 0 like GELU, cheaper than erf.
            h = relu_squared(h)  # one op: relu(h) * relu(h), bitwise (descent.ops.relu_squared)
        else:
            # GELU with the exact erf form (PyTorch's nn.GELU() default, which nanoGPT uses).
            h = F.gelu(h)
        return self.dropout(self.c_proj(h))


class SpeedrunAttention(nn.CausalSelfAttention):
    """nanoGPT's causal self-attention (same parameters and names) plus QK-norm and RoPE.

    q, k, v = split(c_attn(x)) per head; then, when enabled, q, k <- rms_norm(q), rms_norm(k)
    over each head's channels (no gain), then q, k <- rope(q), rope(k); then causal scaled
    dot-product attention and c_proj, as in the parent class.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__(config)
        self.head_dim = config.n_embd // config.n_head
        self.qk_norm = config.qk_norm
        self.rotary = (
            nn.RotaryEmbedding(self.head_dim, config.block_size, config.rope_base)
            if config.rope
            else None
        )

    def forward(self, x):
        """x: (B, T, C) -> (B, T, C); token t attends to tokens 0..t only."""
        b, t, c = x.shape
        hs = self.head_dim
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # 3 x (B, T, C)
        q = q.view(b, t, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(b, t, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(b, t, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        if self.qk_norm:
            # eps=None: the dtype's machine epsilon, as torch.nn.functional.rms_norm.
            q = F.rms_norm(q, (hs,))
            k = F.rms_norm(k, (hs,))
        if self.rotary is not None:
            q = self.rotary(q)  # positions 0..T-1
            k = self.rotary(k)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=None, dropout_p=self.dropout if self.training else 0.0,
            is_causal=True,
        )  # (B, nh, T, hs)  # fmt: skip
        y = y.transpose(1, 2).reshape(b, t, c)  # re-assemble the heads side by side
        return self.resid_dropout(self.c_proj(y))


class Block(nn.Module):
    """A pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        if config.rope or config.qk_norm:
            self.attn = SpeedrunAttention(config)  # the same parameters, plus QK-norm / RoPE
        else:
            self.attn = nn.CausalSelfAttention(config)  # nanoGPT's layout: c_attn, c_proj
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """A GPT language model (nanoGPT's architecture, initialisation and parameter names).

    Args:
        config: the model's shape, a `GPTConfig`.

    Example:
        >>> model = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128))
        >>> logits, loss = model(x, y)                 # x, y: (B, T) token ids; loss: scalar
        >>> out = model.generate(prompt, 100, top_k=10)  # prompt: (1, t) -> (1, t + 100)
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        modules = dict(wte=nn.Embedding(config.vocab_size, config.n_embd))
        if not config.rope:  # with RoPE, positions enter through the attention's rotations
            modules["wpe"] = nn.Embedding(config.block_size, config.n_embd)
        modules.update(
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList(Block(config) for _ in range(config.n_layer)),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        )
        self.transformer = nn.ModuleDict(modules)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            # Weight tying: the input embedding and the output projection are the same matrix,
            # so a token's vector is learned from both ends (Press & Wolf, 2017).
            self.transformer.wte.weight = self.lm_head.weight

        # nanoGPT's initialisation: N(0, 0.02) for every Linear and Embedding, zero biases, then
        # the projections back into the residual stream scaled by 1/sqrt(2 * n_layer) (GPT-2),
        # because each block adds two of them and the variance of the sum grows with depth.
        # zero_init_proj starts them at 0 instead (modded-nanogpt): every block begins as the
        # identity, and the gradient of c_proj (its input times the upstream gradient) is not 0.
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                if config.zero_init_proj:
                    nn.init.zeros_(p)
                else:
                    nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self, trainable_only: bool = False, non_embedding: bool = False) -> int:
        """The number of parameters (tied weights counted once).

        Args:
            trainable_only: count only parameters with requires_grad.
            non_embedding: leave out the position embedding, as nanoGPT's get_num_params
                reports it (the token embedding stays in: it doubles as the output layer).
        """
        n = sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
        if non_embedding and "wpe" in self.transformer:
            n -= self.transformer.wpe.weight.numel()
        return n

    def forward(self, idx, targets=None):
        """Next-token logits, and the cross-entropy loss when targets are given.

        Args:
            idx: (B, T) integer token ids, T <= block_size.
            targets: (B, T) integer ids of the next tokens (-1 is ignored), or None.

        Returns:
            (logits, loss): with targets, logits (B, T, vocab_size) and a scalar loss; without,
            logits (B, 1, vocab_size) for the last position only (all generation needs) and None.
        """
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(
                f"GPT: a sequence of length {T} is longer than block_size="
                f"{self.config.block_size}; crop the context to its last block_size tokens"
            )
        x = self.transformer.wte(idx)  # (B, T, C)
        if not self.config.rope:
            pos = descent.arange(0, T, dtype=np.int64, device=idx.device)  # (T,)
            x = x + self.transformer.wpe(pos)  # (T, C), broadcast over the batch
        x = self.transformer.drop(x)
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        if targets is not None:
            logits = self._softcap(self.lm_head(x))  # (B, T, V)
            loss = F.cross_entropy(
                logits.view(-1, logits.shape[-1]), targets.view(-1), ignore_index=-1
            )
            return logits, loss
        # Inference: only the last position's prediction is needed; skip the rest of lm_head.
        logits = self._softcap(self.lm_head(x[:, -1:, :]))  # (B, 1, V)
        return logits, None

    def _forward_cached(self, idx, cache):
        """The last position's logits (B, 1, V) for the new tokens idx (B, T), reading and
        extending the key/value cache (generation only; the blocks' own pieces, no dropout)."""
        offset = cache.length
        t = idx.shape[1]
        x = self.transformer.wte(idx)  # (B, T, C)
        if not self.config.rope:
            pos = descent.arange(offset, offset + t, dtype=np.int64, device=idx.device)
            x = x + self.transformer.wpe(pos)
        for i, block in enumerate(self.transformer.h):
            x = x + _cached_attention(block.attn, block.ln_1(x), cache.layer(i))
            x = x + block.mlp(block.ln_2(x))
        x = self.transformer.ln_f(x[:, -1:, :])
        return self._softcap(self.lm_head(x))

    def _softcap(self, logits):
        """c * tanh(logits / c) when logit_softcap = c > 0 (Gemma 2): no logit grows past c,
        so no single token's probability saturates early in training."""
        cap = self.config.logit_softcap
        if cap <= 0:
            return logits
        return F.tanh(logits * (1.0 / cap)) * cap

    def crop_block_size(self, block_size: int) -> None:
        """Shrink the context length (keeps the first block_size position embeddings)."""
        if not 0 < block_size <= self.config.block_size:
            raise ValueError(
                f"crop_block_size: {block_size} must be in 1..{self.config.block_size}"
            )
        self.config.block_size = block_size
        if "wpe" in self.transformer:
            w = self.transformer.wpe.weight
            w._data = w._data[:block_size].copy()
            self.transformer.wpe.num_embeddings = block_size
        for block in self.transformer.h:  # RoPE has no table to crop, only a bound
            if getattr(block.attn, "rotary", None) is not None:
                block.attn.rotary.max_seq_len = block_size

    def configure_optimizers(
        self,
        weight_decay: float,
        learning_rate: float,
        betas: tuple[float, float] = (0.9, 0.95),
        device_type: str | None = None,
        *,
        optimizer: str = "adamw",
        muon_lr: float = 0.02,
        muon_momentum: float = 0.95,
        muon_weight_decay: float = 0.0,
    ):
        """AdamW with weight decay on matrices only, or Muon for the hidden matrices + AdamW.

        Tensors with 2 or more dimensions (Linear weights, embeddings) are decayed; biases and
        LayerNorm gains are not: pulling a gain towards 0 would fight the normalisation.

        Args:
            weight_decay: the decoupled weight decay for AdamW's 2-D tensors.
            learning_rate: AdamW's lr.
            betas: AdamW's (beta1, beta2).
            device_type: accepted for nanoGPT compatibility; unused.
            optimizer: "adamw" (nanoGPT) or "muon": a `descent.optim.MuonWithAdamW` with Muon
                for the blocks' matrices (c_attn, c_proj, c_fc) and AdamW (the settings above)
                for the embeddings, the head, gains and biases.
            muon_lr, muon_momentum, muon_weight_decay: Muon's settings (optimizer="muon").

        Returns:
            a `descent.optim.AdamW` with two parameter groups [decay, no_decay], or a
            `MuonWithAdamW`. Every group has "lr_scale": its peak lr over learning_rate (1 for
            AdamW's, muon_lr / learning_rate for Muon's), so that a schedule that scales
            learning_rate sets each group's lr as `lr * group["lr_scale"]`.
        """
        from .. import optim

        if optimizer == "muon":
            opt = optim.MuonWithAdamW(
                self, lr=muon_lr, momentum=muon_momentum, weight_decay=muon_weight_decay,
                adamw_lr=learning_rate, adamw_betas=tuple(betas), adamw_weight_decay=weight_decay,
            )  # fmt: skip
            for group in opt.param_groups:
                group["lr_scale"] = muon_lr / learning_rate if group["use_muon"] else 1.0
            return opt
        if optimizer != "adamw":
            raise ValueError(
                f"configure_optimizers: optimizer must be 'adamw' or 'muon', got {optimizer!r}"
            )

        params = [p for _, p in self.named_parameters() if p.requires_grad]
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        groups = [
            {"params": decay, "weight_decay": weight_decay, "lr_scale": 1.0},
            {"params": no_decay, "weight_decay": 0.0, "lr_scale": 1.0},
        ]
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
        """Continue each sequence in idx by sampling max_new_tokens tokens, one at a time.

        The model runs in eval mode (no dropout) while sampling and returns to its previous mode.
        With `use_cache` (the default) each step runs the model on the new token only, reading
        the past positions' keys and values from a `descent.nn.KVCache`: the same tokens as
        without the cache while prompt + new tokens fit in block_size. Past that, cacheless
        generation re-reads the last block_size tokens every step; the cache instead keeps the
        newest half of its window, re-reads it once and continues (the contexts then differ).

        Args:
            idx: (B, t) integer token ids, the prompts.
            max_new_tokens: how many tokens to append.
            temperature: divides the logits; < 1 sharper, > 1 flatter; 0 takes the most likely
                token (greedy decoding).
            top_k: sample only among the k most likely tokens.
            generator: the source of randomness (default: descent's global generator).
            use_cache: keep a key/value cache (default) or recompute the context every step.

        Returns:
            (B, t + max_new_tokens) token ids.
        """
        return generate_tokens(self, idx, max_new_tokens, temperature, top_k, generator,
                               use_cache, self._forward_cached)  # fmt: skip


def generate_tokens(model, idx, max_new_tokens, temperature, top_k, generator, use_cache: bool,
                    cached_forward):  # fmt: skip
    """The sampling loop of `GPT.generate` and `Grok.generate`: checks the arguments, then
    appends one token at a time. `cached_forward(x, cache)` runs the model on the new positions
    x against a `KVCache` and returns their logits (B, T, V)."""
    if (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
            or not math.isfinite(temperature) or temperature < 0):  # fmt: skip
        raise ValueError(
            f"generate: temperature must be a finite number >= 0 (0: greedy), got "
            f"{temperature!r}"
        )
    if idx.ndim != 2 or idx.shape[1] == 0:
        raise ValueError(
            f"generate: idx must be (B, t) token ids with t >= 1 (a prompt of at least one "
            f"token), got shape {tuple(idx.shape)}"
        )
    vocab = model.config.vocab_size
    ids = backend.as_numpy(idx._data)
    if ids.dtype.kind not in "iu" or (ids.size and (ids.min() < 0 or ids.max() >= vocab)):
        raise ValueError(
            f"generate: token ids must be integers in [0, {vocab}), got {ids.dtype} ids in "
            f"[{ids.min()}, {ids.max()}]"
        )
    if top_k is not None and top_k <= 0:
        raise ValueError(f"generate: top_k must be a positive int or None, got {top_k}")
    rng = (generator or descent.default_generator()).numpy_rng
    was_training = model.training
    model.eval()
    try:
        bs = model.config.block_size
        cache = KVCache(model.config.n_layer, bs) if use_cache else None
        if cache is not None:
            logits = cached_forward(idx[:, -bs:], cache)  # prefill the prompt
        for step in range(int(max_new_tokens)):
            if cache is None:
                # Crop the context to the last block_size tokens: the model has no positions
                # beyond that.
                logits, _ = model(idx if idx.shape[1] <= bs else idx[:, -bs:])
            logits = backend.as_numpy(logits._data[:, -1, :]).astype(np.float64)  # (B, V)
            nxt = descent.tensor(_sample(logits, temperature, top_k, rng), dtype=idx.dtype,
                                 device=idx.device)  # fmt: skip
            idx = descent.cat([idx, nxt], dim=1)
            if cache is None or step == max_new_tokens - 1:
                continue
            if cache.length < bs:
                logits = cached_forward(nxt, cache)  # one new position
            else:  # window full: keep the newest half and re-read it
                cache.reset()
                logits = cached_forward(idx[:, -(bs // 2 + 1):], cache)
    finally:
        model.train(was_training)
    return idx


def _cached_attention(attn, x, layer_cache):
    """Causal self-attention of the new positions x (B, T, C) over the cached ones and
    themselves, with the parameters of `attn` (CausalSelfAttention or SpeedrunAttention)."""
    b, t, c = x.shape
    hs = c // attn.n_head
    offset = layer_cache.offset
    q, k, v = attn.c_attn(x).split(attn.n_embd, dim=2)  # 3 x (B, T, C)
    q = q.view(b, t, attn.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
    k = k.view(b, t, attn.n_head, hs).transpose(1, 2)
    v = v.view(b, t, attn.n_head, hs).transpose(1, 2)
    if getattr(attn, "qk_norm", False):
        q, k = F.rms_norm(q, (hs,)), F.rms_norm(k, (hs,))
    if getattr(attn, "rotary", None) is not None:
        q, k = attn.rotary(q, offset), attn.rotary(k, offset)
    k, v = layer_cache.append(k, v)  # (B, nh, offset + T, hs)
    s = offset + t
    # Query i sits at position offset + i and reads keys 0..offset + i.
    mask = np.arange(s)[None, :] <= (offset + np.arange(t))[:, None]  # (T, S) True = attend
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, nh, T, hs)
    return attn.c_proj(y.transpose(1, 2).reshape(b, t, c))


def _sample(logits: np.ndarray, temperature: float, top_k: int | None, rng) -> np.ndarray:
    """Draw one token per row of (B, V) logits; returns (B, 1) int64.

    Non-finite logits are refused (NaN would silently sample token 0 forever). A temperature so
    small that logits / temperature overflows is the limit T -> 0 of the distribution: greedy.
    """
    if not np.isfinite(logits).all():
        raise ValueError(
            "generate: the model's logits hold NaN or Inf, so there is nothing to sample from; "
            "its weights are not finite (a diverged run?): load an earlier checkpoint"
        )
    if temperature > 0:
        with np.errstate(over="ignore"):
            scaled = logits / temperature
    if temperature == 0 or not np.isfinite(scaled).all():
        return logits.argmax(axis=-1, keepdims=True).astype(np.int64)
    logits = scaled
    if top_k is not None and top_k < logits.shape[-1]:
        # Everything below the k-th largest logit gets probability 0.
        kth = np.partition(logits, -top_k, axis=-1)[:, -top_k][:, None]  # (B, 1)
        logits = np.where(logits < kth, -np.inf, logits)
    logits = logits - logits.max(axis=-1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=-1, keepdims=True)
    # Inverse-CDF sampling: one uniform per row.
    u = rng.random((probs.shape[0], 1))
    out = (probs.cumsum(axis=-1) < u).sum(axis=-1, keepdims=True)
    return np.minimum(out, probs.shape[-1] - 1).astype(np.int64)
