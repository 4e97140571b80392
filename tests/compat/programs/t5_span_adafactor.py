# A tiny T5 v1.1 as Hugging Face's modeling_t5.py writes it, pre-trained on span corruption
# with torch.optim.Adafactor: T5LayerNorm (float32 variance, rsqrt, no mean, no bias), the
# bucketed relative position bias (_relative_position_bucket: bidirectional halves,
# log-spaced large distances cast by .to(torch.long), torch.min with full_like, torch.where),
# compute_bias by an Embedding over the bucket matrix permuted to heads, attention without
# 1/sqrt(d) scaling, the position bias shared by later layers, extended masks by
# (1.0 - mask) * torch.finfo(dtype).min, a gated-GELU feed-forward (gelu "tanh"), the shared
# embedding tied to the LM head with d_model ** -0.5 rescaling, _shift_right by new_zeros /
# clone / masked_fill_, CrossEntropyLoss(ignore_index=-100); span-corruption inputs and targets
# with sentinels from cumsum over span starts; greedy decoding and a beam search by topk over
# flattened beam x vocab scores, // and % and index_select, torch.optim.Adafactor (relative
# step off, beta2_decay, factored second moments) against its own state_dict round trip.
import copy
import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(7)


class T5Config:
    vocab_size = 40
    d_model = 16
    d_kv = 4
    d_ff = 24
    num_layers = 2
    num_heads = 4
    relative_attention_num_buckets = 8
    relative_attention_max_distance = 20
    layer_norm_epsilon = 1e-6
    pad_token_id = 0
    eos_token_id = 1
    decoder_start_token_id = 0


class T5LayerNorm(nn.Module):
    def __init__(self, hidden_size, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states):
        variance = hidden_states.to(torch.float32).pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        if self.weight.dtype in [torch.float16, torch.bfloat16]:
            hidden_states = hidden_states.to(self.weight.dtype)
        return self.weight * hidden_states


class T5Attention(nn.Module):
    def __init__(self, config, has_relative_attention_bias=False, is_decoder=False):
        super().__init__()
        self.is_decoder = is_decoder
        self.has_relative_attention_bias = has_relative_attention_bias
        self.relative_attention_num_buckets = config.relative_attention_num_buckets
        self.relative_attention_max_distance = config.relative_attention_max_distance
        self.d_model = config.d_model
        self.key_value_proj_dim = config.d_kv
        self.n_heads = config.num_heads
        self.inner_dim = self.n_heads * self.key_value_proj_dim
        self.q = nn.Linear(self.d_model, self.inner_dim, bias=False)
        self.k = nn.Linear(self.d_model, self.inner_dim, bias=False)
        self.v = nn.Linear(self.d_model, self.inner_dim, bias=False)
        self.o = nn.Linear(self.inner_dim, self.d_model, bias=False)
        if self.has_relative_attention_bias:
            self.relative_attention_bias = nn.Embedding(self.relative_attention_num_buckets,
                                                        self.n_heads)

    @staticmethod
    def _relative_position_bucket(relative_position, bidirectional=True, num_buckets=32,
                                  max_distance=128):
        relative_buckets = 0
        if bidirectional:
            num_buckets //= 2
            relative_buckets += (relative_position > 0).to(torch.long) * num_buckets
            relative_position = torch.abs(relative_position)
        else:
            relative_position = -torch.min(relative_position,
                                           torch.zeros_like(relative_position))
        max_exact = num_buckets // 2
        is_small = relative_position < max_exact
        relative_position_if_large = max_exact + (
            torch.log(relative_position.float() / max_exact)
            / math.log(max_distance / max_exact)
            * (num_buckets - max_exact)
        ).to(torch.long)
        relative_position_if_large = torch.min(
            relative_position_if_large, torch.full_like(relative_position_if_large,
                                                        num_buckets - 1))
        relative_buckets += torch.where(is_small, relative_position, relative_position_if_large)
        return relative_buckets

    def compute_bias(self, query_length, key_length):
        context_position = torch.arange(query_length, dtype=torch.long)[:, None]
        memory_position = torch.arange(key_length, dtype=torch.long)[None, :]
        relative_position = memory_position - context_position
        relative_position_bucket = self._relative_position_bucket(
            relative_position, bidirectional=(not self.is_decoder),
            num_buckets=self.relative_attention_num_buckets,
            max_distance=self.relative_attention_max_distance)
        values = self.relative_attention_bias(relative_position_bucket)
        values = values.permute([2, 0, 1]).unsqueeze(0)
        return values

    def forward(self, hidden_states, mask=None, key_value_states=None, position_bias=None):
        batch_size, seq_length = hidden_states.shape[:2]
        real = key_value_states if key_value_states is not None else hidden_states
        key_length = real.shape[1]

        def shape(states):
            return states.view(batch_size, -1, self.n_heads, self.key_value_proj_dim).transpose(
                1, 2)

        def unshape(states):
            return states.transpose(1, 2).contiguous().view(batch_size, -1, self.inner_dim)

        query_states = shape(self.q(hidden_states))
        key_states = shape(self.k(real))
        value_states = shape(self.v(real))
        scores = torch.matmul(query_states, key_states.transpose(3, 2))
        if position_bias is None:
            if not self.has_relative_attention_bias:
                position_bias = torch.zeros((1, self.n_heads, seq_length, key_length),
                                            dtype=scores.dtype)
            else:
                position_bias = self.compute_bias(seq_length, key_length)
            if mask is not None:
                position_bias = position_bias + mask
        scores += position_bias
        attn_weights = nn.functional.softmax(scores.float(), dim=-1).type_as(scores)
        attn_output = unshape(torch.matmul(attn_weights, value_states))
        attn_output = self.o(attn_output)
        return attn_output, position_bias


class T5DenseGatedActDense(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.wi_0 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wi_1 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)

    def forward(self, hidden_states):
        hidden_gelu = F.gelu(self.wi_0(hidden_states), approximate="tanh")
        hidden_linear = self.wi_1(hidden_states)
        return self.wo(hidden_gelu * hidden_linear)


class T5Block(nn.Module):
    def __init__(self, config, has_relative_attention_bias, is_decoder):
        super().__init__()
        self.is_decoder = is_decoder
        self.ln_sa = T5LayerNorm(config.d_model, config.layer_norm_epsilon)
        self.sa = T5Attention(config, has_relative_attention_bias, is_decoder)
        if is_decoder:
            self.ln_ca = T5LayerNorm(config.d_model, config.layer_norm_epsilon)
            self.ca = T5Attention(config, False, is_decoder)
        self.ln_ff = T5LayerNorm(config.d_model, config.layer_norm_epsilon)
        self.ff = T5DenseGatedActDense(config)

    def forward(self, h, mask, position_bias, enc, enc_mask, enc_bias):
        y, position_bias = self.sa(self.ln_sa(h), mask=mask, position_bias=position_bias)
        h = h + y
        if self.is_decoder:
            y, enc_bias = self.ca(self.ln_ca(h), mask=enc_mask, key_value_states=enc,
                                  position_bias=enc_bias)
            h = h + y
        return h + self.ff(self.ln_ff(h)), position_bias, enc_bias


class T5Stack(nn.Module):
    def __init__(self, config, embed_tokens, is_decoder):
        super().__init__()
        self.embed_tokens = embed_tokens
        self.is_decoder = is_decoder
        self.block = nn.ModuleList([T5Block(config, bool(i == 0), is_decoder)
                                    for i in range(config.num_layers)])
        self.final_layer_norm = T5LayerNorm(config.d_model, config.layer_norm_epsilon)

    def forward(self, input_ids, attention_mask, enc=None, enc_attention_mask=None):
        h = self.embed_tokens(input_ids)
        b, t = input_ids.shape
        dtype = h.dtype
        if self.is_decoder:
            causal = torch.tril(torch.ones(t, t, dtype=torch.long))[None, None]
            ext = causal * attention_mask[:, None, None, :]
        else:
            ext = attention_mask[:, None, None, :]
        ext = (1.0 - ext.to(dtype)) * torch.finfo(dtype).min
        enc_ext = None
        if enc_attention_mask is not None:
            enc_ext = (1.0 - enc_attention_mask[:, None, None, :].to(dtype)) * torch.finfo(
                dtype).min
        position_bias = enc_bias = None
        for layer in self.block:
            h, position_bias, enc_bias = layer(h, ext, position_bias, enc, enc_ext, enc_bias)
        return self.final_layer_norm(h)


class T5ForConditionalGeneration(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.model_dim = config.d_model
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config, self.shared, is_decoder=False)
        self.decoder = T5Stack(config, self.shared, is_decoder=True)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.lm_head.weight = self.shared.weight

    def _shift_right(self, input_ids):
        shifted_input_ids = input_ids.new_zeros(input_ids.shape)
        shifted_input_ids[..., 1:] = input_ids[..., :-1].clone()
        shifted_input_ids[..., 0] = self.config.decoder_start_token_id
        shifted_input_ids.masked_fill_(shifted_input_ids == -100, self.config.pad_token_id)
        return shifted_input_ids

    def forward(self, input_ids, attention_mask, labels=None, decoder_input_ids=None,
                encoder_outputs=None):
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids, attention_mask)
        if labels is not None and decoder_input_ids is None:
            decoder_input_ids = self._shift_right(labels)
        dec_mask = torch.ones_like(decoder_input_ids)
        seq = self.decoder(decoder_input_ids, dec_mask, encoder_outputs, attention_mask)
        seq = seq * (self.model_dim**-0.5)
        lm_logits = self.lm_head(seq)
        loss = None
        if labels is not None:
            loss_fct = nn.CrossEntropyLoss(ignore_index=-100)
            loss = loss_fct(lm_logits.view(-1, lm_logits.size(-1)), labels.view(-1))
        return loss, lm_logits, encoder_outputs


def span_corrupt(tokens, noise_mask, vocab_size):
    """T5's inputs / targets: each noise span becomes one sentinel (vocab-1, vocab-2, ...)."""
    prev = torch.roll(noise_mask, 1, dims=-1)
    prev[..., 0] = False
    starts = noise_mask & ~prev
    sentinel = vocab_size - torch.cumsum(starts.long(), dim=-1)
    sentinel = torch.where(starts, sentinel, torch.zeros_like(sentinel))

    ids = torch.where(starts, sentinel, tokens)
    keep = ~noise_mask | starts
    inputs = [torch.cat([row[k], torch.tensor([1])]) for row, k in zip(ids, keep)]
    # targets: the noise tokens behind sentinels marking the starts of non-noise runs
    inv = ~noise_mask
    prev_inv = torch.roll(inv, 1, dims=-1)
    prev_inv[..., 0] = False
    inv_starts = inv & ~prev_inv
    t_sentinel = vocab_size - torch.cumsum(inv_starts.long(), dim=-1)
    t_ids = torch.where(inv_starts, t_sentinel, tokens)
    keep_t = noise_mask | inv_starts
    targets = [torch.cat([row[k], torch.tensor([1])]) for row, k in zip(t_ids, keep_t)]
    return inputs, targets


def pad(seqs, value):
    return nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=value)


config = T5Config()
model = T5ForConditionalGeneration(config)
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))

out = {}
rel = torch.arange(-25, 26)[None, :]
out["buckets_bi"] = T5Attention._relative_position_bucket(rel, True, 8, 20).flatten().tolist()
out["buckets_causal"] = T5Attention._relative_position_bucket(rel, False, 8, 20).flatten().tolist()

tokens = torch.from_numpy(rng.integers(2, 30, size=(4, 12)))
noise = torch.from_numpy(rng.uniform(size=(4, 12)) < 0.3)
noise[:, 0] = False
inputs, targets = span_corrupt(tokens, noise, config.vocab_size)
input_ids = pad(inputs, config.pad_token_id)
attention_mask = (input_ids != config.pad_token_id).long()
labels = pad(targets, -100)
out["inputs"] = input_ids.tolist()
out["labels"] = labels.tolist()

optimizer = torch.optim.Adafactor(model.parameters(), lr=1e-2, beta2_decay=-0.8,
                                  weight_decay=0.0)
losses = []
for step in range(6):
    loss, logits, _ = model(input_ids, attention_mask, labels=labels)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    if step == 2:  # checkpoint mid-run and resume in a fresh optimizer
        buf = io.BytesIO()
        torch.save({"model": model.state_dict(), "optim": optimizer.state_dict()}, buf)
        buf.seek(0)
        ckpt = torch.load(buf)
        model.load_state_dict(ckpt["model"])
        optimizer = torch.optim.Adafactor(model.parameters(), lr=1e-2, beta2_decay=-0.8,
                                          weight_decay=0.0)
        optimizer.load_state_dict(ckpt["optim"])
    losses.append(loss.item())
out["losses"] = losses
state = optimizer.state_dict()["state"]
out["adafactor_state"] = sorted(
    (k, sorted(v.keys()), [list(t.shape) for _, t in sorted(v.items()) if torch.is_tensor(t)])
    for k, v in state.items())
out["row_var"] = state[0]["row_var"].flatten().tolist()

# decoding
model.eval()


@torch.no_grad()
def greedy(model, input_ids, attention_mask, max_len=6):
    enc = model.encoder(input_ids, attention_mask)
    dec = torch.full((input_ids.shape[0], 1), config.decoder_start_token_id, dtype=torch.long)
    for _ in range(max_len):
        _, logits, _ = model(input_ids, attention_mask, decoder_input_ids=dec,
                             encoder_outputs=enc)
        nxt = logits[:, -1].argmax(-1, keepdim=True)
        dec = torch.cat([dec, nxt], dim=1)
    return dec


@torch.no_grad()
def beam_search(model, input_ids, attention_mask, num_beams=3, max_len=5):
    enc = model.encoder(input_ids[:1], attention_mask[:1])
    enc = enc.expand(num_beams, -1, -1)
    mask = attention_mask[:1].expand(num_beams, -1)
    beams = torch.full((num_beams, 1), config.decoder_start_token_id, dtype=torch.long)
    scores = torch.zeros(num_beams)
    scores[1:] = -1e9
    for _ in range(max_len):
        _, logits, _ = model(None, mask, decoder_input_ids=beams, encoder_outputs=enc)
        logp = F.log_softmax(logits[:, -1], dim=-1)
        cand = (scores[:, None] + logp).view(-1)
        top, idx = torch.topk(cand, num_beams)
        beam_idx = idx // logp.shape[-1]
        tok = idx % logp.shape[-1]
        beams = torch.cat([beams.index_select(0, beam_idx), tok[:, None]], dim=1)
        scores = top
    return beams, scores


out["greedy"] = greedy(model, input_ids, attention_mask).tolist()
beams, beam_scores = beam_search(model, input_ids, attention_mask)
out["beams"] = beams.tolist()
out["beam_scores"] = beam_scores.tolist()
clone = copy.deepcopy(model)
out["tied"] = clone.lm_head.weight is clone.shared.weight
report(**out)
