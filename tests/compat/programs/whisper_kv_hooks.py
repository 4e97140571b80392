# A tiny Whisper in the shape of openai/whisper's model.py and decoding.py (our own condensed
# rewrite): LayerNorm / Linear / Conv1d subclasses that cast weights to the input's dtype
# (x.float() then .type(x.dtype)), an audio encoder of two Conv1d + GELU with a sinusoids()
# position buffer, a text decoder with a causal mask buffer made by torch.empty().fill_(-inf)
# .triu_(1), MultiHeadAttention with a bias-free key projection and qk scaled by
# (n_state // n_head) ** -0.25 on both sides, the kv-cache installed by forward hooks on the key
# / value Linear modules (a hook that returns a replacement output: the cache concatenated
# along time; cross-attention keys kept once), greedy decoding with SuppressTokens / a blank
# suppression at the first step, the cached logits checked against full recomputation, and
# a few training steps of teacher-forced cross-entropy with ignore_index=-100; whisper's
# use_sdpa class flag with its disable_sdpa() context manager (F.scaled_dot_product_attention,
# is_causal only when more than one query) and the deprecated torch.backends.cuda.sdp_kernel
# switch block around the SDPA decoder.
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch import Tensor, nn


class LayerNorm(nn.LayerNorm):
    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.float()).type(x.dtype)


class Linear(nn.Linear):
    def forward(self, x: Tensor) -> Tensor:
        return F.linear(
            x, self.weight.to(x.dtype), None if self.bias is None else self.bias.to(x.dtype)
        )


class Conv1d(nn.Conv1d):
    def _conv_forward(self, x, weight, bias):
        return super()._conv_forward(
            x, weight.to(x.dtype), None if bias is None else bias.to(x.dtype)
        )


def sinusoids(length, channels, max_timescale=10000):
    assert channels % 2 == 0
    log_timescale_increment = np.log(max_timescale) / (channels // 2 - 1)
    inv_timescales = torch.exp(-log_timescale_increment * torch.arange(channels // 2))
    scaled_time = torch.arange(length)[:, np.newaxis] * inv_timescales[np.newaxis, :]
    return torch.cat([torch.sin(scaled_time), torch.cos(scaled_time)], dim=1)


SDPA_AVAILABLE = hasattr(F, "scaled_dot_product_attention")


@contextmanager
def disable_sdpa():
    prev_state = MultiHeadAttention.use_sdpa
    try:
        MultiHeadAttention.use_sdpa = False
        yield
    finally:
        MultiHeadAttention.use_sdpa = prev_state


class MultiHeadAttention(nn.Module):
    use_sdpa = True

    def __init__(self, n_state, n_head):
        super().__init__()
        self.n_head = n_head
        self.query = Linear(n_state, n_state)
        self.key = Linear(n_state, n_state, bias=False)
        self.value = Linear(n_state, n_state)
        self.out = Linear(n_state, n_state)

    def forward(self, x, xa=None, mask=None, kv_cache=None):
        q = self.query(x)
        if kv_cache is None or xa is None or self.key not in kv_cache:
            k = self.key(x if xa is None else xa)
            v = self.value(x if xa is None else xa)
        else:
            k = kv_cache[self.key]
            v = kv_cache[self.value]
        wv, qk = self.qkv_attention(q, k, v, mask)
        return self.out(wv), qk

    def qkv_attention(self, q, k, v, mask=None):
        n_batch, n_ctx, n_state = q.shape
        if SDPA_AVAILABLE and MultiHeadAttention.use_sdpa:
            q = q.view(*q.shape[:2], self.n_head, -1).permute(0, 2, 1, 3)
            k = k.view(*k.shape[:2], self.n_head, -1).permute(0, 2, 1, 3)
            v = v.view(*v.shape[:2], self.n_head, -1).permute(0, 2, 1, 3)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=mask is not None and n_ctx > 1)
            return a.permute(0, 2, 1, 3).flatten(start_dim=2), None
        scale = (n_state // self.n_head) ** -0.25
        q = q.view(*q.shape[:2], self.n_head, -1).permute(0, 2, 1, 3) * scale
        k = k.view(*k.shape[:2], self.n_head, -1).permute(0, 2, 3, 1) * scale
        v = v.view(*v.shape[:2], self.n_head, -1).permute(0, 2, 1, 3)
        qk = q @ k
        if mask is not None:
            qk = qk + mask[:n_ctx, :n_ctx]
        qk = qk.float()
        w = F.softmax(qk, dim=-1).to(q.dtype)
        return (w @ v).permute(0, 2, 1, 3).flatten(start_dim=2), qk.detach()


class ResidualAttentionBlock(nn.Module):
    def __init__(self, n_state, n_head, cross_attention=False):
        super().__init__()
        self.attn = MultiHeadAttention(n_state, n_head)
        self.attn_ln = LayerNorm(n_state)
        self.cross_attn = MultiHeadAttention(n_state, n_head) if cross_attention else None
        self.cross_attn_ln = LayerNorm(n_state) if cross_attention else None
        n_mlp = n_state * 4
        self.mlp = nn.Sequential(Linear(n_state, n_mlp), nn.GELU(), Linear(n_mlp, n_state))
        self.mlp_ln = LayerNorm(n_state)

    def forward(self, x, xa=None, mask=None, kv_cache=None):
        x = x + self.attn(self.attn_ln(x), mask=mask, kv_cache=kv_cache)[0]
        if self.cross_attn:
            x = x + self.cross_attn(self.cross_attn_ln(x), xa, kv_cache=kv_cache)[0]
        x = x + self.mlp(self.mlp_ln(x))
        return x


class AudioEncoder(nn.Module):
    def __init__(self, n_mels, n_ctx, n_state, n_head, n_layer):
        super().__init__()
        self.conv1 = Conv1d(n_mels, n_state, kernel_size=3, padding=1)
        self.conv2 = Conv1d(n_state, n_state, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positional_embedding", sinusoids(n_ctx, n_state))
        self.blocks = nn.ModuleList(
            [ResidualAttentionBlock(n_state, n_head) for _ in range(n_layer)]
        )
        self.ln_post = LayerNorm(n_state)

    def forward(self, x):
        x = F.gelu(self.conv1(x))
        x = F.gelu(self.conv2(x))
        x = x.permute(0, 2, 1)
        assert x.shape[1:] == self.positional_embedding.shape, "incorrect audio shape"
        x = (x + self.positional_embedding).to(x.dtype)
        for block in self.blocks:
            x = block(x)
        return self.ln_post(x)


class TextDecoder(nn.Module):
    def __init__(self, n_vocab, n_ctx, n_state, n_head, n_layer):
        super().__init__()
        self.token_embedding = nn.Embedding(n_vocab, n_state)
        self.positional_embedding = nn.Parameter(torch.empty(n_ctx, n_state))
        self.blocks = nn.ModuleList(
            [ResidualAttentionBlock(n_state, n_head, cross_attention=True) for _ in range(n_layer)]
        )
        self.ln = LayerNorm(n_state)
        mask = torch.empty(n_ctx, n_ctx).fill_(-np.inf).triu_(1)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x, xa, kv_cache=None):
        offset = next(iter(kv_cache.values())).shape[1] if kv_cache else 0
        x = self.token_embedding(x) + self.positional_embedding[offset : offset + x.shape[-1]]
        x = x.to(xa.dtype)
        for block in self.blocks:
            x = block(x, xa, mask=self.mask, kv_cache=kv_cache)
        x = self.ln(x)
        return (x @ torch.transpose(self.token_embedding.weight.to(x.dtype), 0, 1)).float()


class Whisper(nn.Module):
    def __init__(self, n_mels=8, n_audio_ctx=8, n_vocab=20, n_text_ctx=10, d=16, heads=2, layers=2):
        super().__init__()
        self.encoder = AudioEncoder(n_mels, n_audio_ctx, d, heads, layers)
        self.decoder = TextDecoder(n_vocab, n_text_ctx, d, heads, layers)

    def install_kv_cache_hooks(self, cache=None):
        cache = {**cache} if cache is not None else {}
        hooks = []

        def save_to_cache(module, _, output):
            if module not in cache or output.shape[1] > self.decoder.positional_embedding.shape[0]:
                cache[module] = output  # first token or cross attention: save as-is
            else:
                cache[module] = torch.cat([cache[module], output], dim=1).detach()
            return cache[module]

        def install_hooks(layer: nn.Module):
            if isinstance(layer, MultiHeadAttention):
                hooks.append(layer.key.register_forward_hook(save_to_cache))
                hooks.append(layer.value.register_forward_hook(save_to_cache))

        self.decoder.apply(install_hooks)
        return cache, hooks


SOT, EOT, BLANK = 1, 2, 3
model = Whisper()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))

rng = np.random.default_rng(3)
mel = torch.from_numpy(rng.standard_normal((4, 8, 16)).astype(np.float32))
targets = torch.from_numpy(rng.integers(4, 20, size=(4, 6)))
tokens_in = torch.cat([torch.full((4, 1), SOT), targets[:, :-1]], dim=1)
labels = targets.clone()
labels[2:, 4:] = -100  # padded tails

opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
losses = []
for step in range(6):
    with disable_sdpa():
        audio = model.encoder(mel)
    logits = model.decoder(tokens_in, audio)
    loss = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100
    )
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())

model.eval()
suppress = [0, 5]
with torch.no_grad():
    audio = model.encoder(mel)
    cache, hooks = model.install_kv_cache_hooks()
    tokens = torch.full((4, 1), SOT)
    step_logits = []
    for i in range(6):
        inp = tokens if i == 0 else tokens[:, -1:]
        logits = model.decoder(inp, audio, kv_cache=cache)[:, -1]
        logits[:, suppress] = -np.inf
        if i == 0:
            logits[:, [BLANK, EOT]] = -np.inf
        step_logits.append(logits[:, 4:9].tolist())
        next_tokens = logits.argmax(dim=-1)
        tokens = torch.cat([tokens, next_tokens[:, None]], dim=-1)
    for h in hooks:
        h.remove()
    with disable_sdpa():
        full = model.decoder(tokens[:, :-1], audio)
    with torch.backends.cuda.sdp_kernel(enable_flash=False, enable_mem_efficient=False):
        full_sdpa = model.decoder(tokens[:, :-1], audio)
    cache_shapes = sorted(tuple(v.shape) for v in cache.values())

report(
    losses=losses,
    tokens=tokens.tolist(),
    step_logits=step_logits,
    full_last=full[:, -1, 4:9].tolist(),
    full_sdpa=full_sdpa[:, -1, 4:9].tolist(),
    cache_shapes=[list(s) for s in cache_shapes],
    n_hooks=len(hooks),
)
