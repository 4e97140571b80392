# GPT-2 as HuggingFace transformers' modeling_gpt2.py writes it (our own condensed rewrite): the
# Conv1D module (weight stored (nx, nf), forward by torch.addmm(self.bias, x.view(-1, x.size(-1)),
# self.weight) and view(size_out)), c_attn split by .split(self.split_size, dim=2), _split_heads /
# _merge_heads by view + permute, the causal "bias" buffer torch.tril(torch.ones((n, n),
# dtype=torch.bool)).view(1, 1, n, n) registered persistent=False and sliced [:, :, k - q:k, :k],
# mask_value = torch.finfo(attn_weights.dtype).min as a tensor and torch.where(causal_mask,
# attn_weights, mask_value), scale_attn_by_inverse_layer_idx, an additive attention mask from a
# padding mask ((1.0 - mask) * finfo.min), NewGELUActivation (the tanh formula with
# math.sqrt(2.0 / math.pi) and torch.pow(x, 3.0)), _init_weights with the GPT-2 special scaled
# init of c_proj weights by named_parameters (std 0.02 / sqrt(2 n_layer)), layer_past tuples
# concatenated along the sequence (present = (key, value)), position ids from the past length,
# the LM loss by shifting logits[..., :-1, :].contiguous() and labels[..., 1:], labels -100 on
# padding, tied lm_head, a Trainer-like loop (AdamW with no decay on bias / ln, linear warmup
# and decay by LambdaLR, gradient accumulation, clip_grad_norm_), then cached greedy decoding
# checked against uncached logits, and left-padded batch generation with position_ids from
# attention_mask.long().cumsum(-1) - 1 and masked_fill_(attention_mask == 0, 1).
import math

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report
from torch.nn import CrossEntropyLoss

rng = np.random.default_rng(2203)


class Config:
    vocab_size = 40
    n_positions = 32
    n_embd = 32
    n_layer = 2
    n_head = 4
    layer_norm_epsilon = 1e-5
    initializer_range = 0.02
    scale_attn_by_inverse_layer_idx = True
    pad_token_id = 0


class Conv1D(nn.Module):
    def __init__(self, nf, nx):
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x):
        size_out = x.size()[:-1] + (self.nf,)
        x = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
        x = x.view(size_out)
        return x


class NewGELUActivation(nn.Module):
    def forward(self, input):
        return (
            0.5
            * input
            * (
                1.0
                + torch.tanh(math.sqrt(2.0 / math.pi) * (input + 0.044715 * torch.pow(input, 3.0)))
            )
        )


class GPT2Attention(nn.Module):
    def __init__(self, config, layer_idx=None):
        super().__init__()
        max_positions = config.n_positions
        self.register_buffer(
            "bias",
            torch.tril(torch.ones((max_positions, max_positions), dtype=torch.bool)).view(
                1, 1, max_positions, max_positions
            ),
            persistent=False,
        )
        self.embed_dim = config.n_embd
        self.num_heads = config.n_head
        self.head_dim = self.embed_dim // self.num_heads
        self.split_size = self.embed_dim
        self.scale_attn_by_inverse_layer_idx = config.scale_attn_by_inverse_layer_idx
        self.layer_idx = layer_idx
        self.c_attn = Conv1D(3 * self.embed_dim, self.embed_dim)
        self.c_proj = Conv1D(self.embed_dim, self.embed_dim)

    def _attn(self, query, key, value, attention_mask=None):
        attn_weights = torch.matmul(query, key.transpose(-1, -2))
        attn_weights = attn_weights / torch.full(
            [], value.size(-1) ** 0.5, dtype=attn_weights.dtype, device=attn_weights.device
        )
        if self.scale_attn_by_inverse_layer_idx:
            attn_weights = attn_weights / float(self.layer_idx + 1)
        query_length, key_length = query.size(-2), key.size(-2)
        causal_mask = self.bias[:, :, key_length - query_length : key_length, :key_length]
        mask_value = torch.finfo(attn_weights.dtype).min
        mask_value = torch.full(
            [], mask_value, dtype=attn_weights.dtype, device=attn_weights.device
        )
        attn_weights = torch.where(causal_mask, attn_weights.to(attn_weights.dtype), mask_value)
        if attention_mask is not None:
            attn_weights = attn_weights + attention_mask
        attn_weights = nn.functional.softmax(attn_weights, dim=-1)
        attn_weights = attn_weights.type(value.dtype)
        attn_output = torch.matmul(attn_weights, value)
        return attn_output, attn_weights

    def _split_heads(self, tensor, num_heads, attn_head_size):
        new_shape = tensor.size()[:-1] + (num_heads, attn_head_size)
        tensor = tensor.view(new_shape)
        return tensor.permute(0, 2, 1, 3)

    def _merge_heads(self, tensor, num_heads, attn_head_size):
        tensor = tensor.permute(0, 2, 1, 3).contiguous()
        new_shape = tensor.size()[:-2] + (num_heads * attn_head_size,)
        return tensor.view(new_shape)

    def forward(self, hidden_states, layer_past=None, attention_mask=None, use_cache=False):
        query, key, value = self.c_attn(hidden_states).split(self.split_size, dim=2)
        query = self._split_heads(query, self.num_heads, self.head_dim)
        key = self._split_heads(key, self.num_heads, self.head_dim)
        value = self._split_heads(value, self.num_heads, self.head_dim)
        if layer_past is not None:
            past_key, past_value = layer_past
            key = torch.cat((past_key, key), dim=-2)
            value = torch.cat((past_value, value), dim=-2)
        present = (key, value) if use_cache is True else None
        attn_output, attn_weights = self._attn(query, key, value, attention_mask)
        attn_output = self._merge_heads(attn_output, self.num_heads, self.head_dim)
        attn_output = self.c_proj(attn_output)
        return attn_output, present


class GPT2MLP(nn.Module):
    def __init__(self, intermediate_size, config):
        super().__init__()
        embed_dim = config.n_embd
        self.c_fc = Conv1D(intermediate_size, embed_dim)
        self.c_proj = Conv1D(embed_dim, intermediate_size)
        self.act = NewGELUActivation()

    def forward(self, hidden_states):
        return self.c_proj(self.act(self.c_fc(hidden_states)))


class GPT2Block(nn.Module):
    def __init__(self, config, layer_idx=None):
        super().__init__()
        hidden_size = config.n_embd
        self.ln_1 = nn.LayerNorm(hidden_size, eps=config.layer_norm_epsilon)
        self.attn = GPT2Attention(config, layer_idx=layer_idx)
        self.ln_2 = nn.LayerNorm(hidden_size, eps=config.layer_norm_epsilon)
        self.mlp = GPT2MLP(4 * hidden_size, config)

    def forward(self, hidden_states, layer_past=None, attention_mask=None, use_cache=False):
        residual = hidden_states
        attn_output, present = self.attn(
            self.ln_1(hidden_states),
            layer_past=layer_past,
            attention_mask=attention_mask,
            use_cache=use_cache,
        )
        hidden_states = attn_output + residual
        residual = hidden_states
        hidden_states = residual + self.mlp(self.ln_2(hidden_states))
        return hidden_states, present


class GPT2LMHeadModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.h = nn.ModuleList([GPT2Block(config, layer_idx=i) for i in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight
        self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, Conv1D)):
            module.weight.data.normal_(mean=0.0, std=self.config.initializer_range)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(mean=0.0, std=self.config.initializer_range)
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)
        for name, p in module.named_parameters():
            if name == "c_proj.weight":
                p.data.normal_(
                    mean=0.0,
                    std=(self.config.initializer_range / math.sqrt(2 * self.config.n_layer)),
                )

    def forward(
        self,
        input_ids,
        past_key_values=None,
        attention_mask=None,
        position_ids=None,
        labels=None,
        use_cache=False,
    ):
        input_shape = input_ids.size()
        if past_key_values is None:
            past_length = 0
            past_key_values = tuple([None] * len(self.h))
        else:
            past_length = past_key_values[0][0].size(-2)
        if position_ids is None:
            position_ids = torch.arange(
                past_length, input_shape[-1] + past_length, dtype=torch.long
            )
            position_ids = position_ids.unsqueeze(0)
        if attention_mask is not None:
            attention_mask = attention_mask.view(input_shape[0], -1)
            attention_mask = attention_mask[:, None, None, :]
            attention_mask = attention_mask.to(dtype=self.wte.weight.dtype)
            attention_mask = (1.0 - attention_mask) * torch.finfo(self.wte.weight.dtype).min
        hidden_states = self.wte(input_ids) + self.wpe(position_ids)
        presents = () if use_cache else None
        for block, layer_past in zip(self.h, past_key_values):
            hidden_states, present = block(
                hidden_states,
                layer_past=layer_past,
                attention_mask=attention_mask,
                use_cache=use_cache,
            )
            if use_cache:
                presents = presents + (present,)
        hidden_states = self.ln_f(hidden_states)
        lm_logits = self.lm_head(hidden_states)
        loss = None
        if labels is not None:
            shift_logits = lm_logits[..., :-1, :].contiguous()
            shift_labels = labels[..., 1:].contiguous()
            loss_fct = CrossEntropyLoss()
            loss = loss_fct(shift_logits.view(-1, shift_logits.size(-1)), shift_labels.view(-1))
        return loss, lm_logits, presents


config = Config()
model = GPT2LMHeadModel(config)
special_std = float(model.h[0].attn.c_proj.weight.std())
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
n_params = sum(p.numel() for p in model.parameters())
buffers = [n for n, _ in model.named_buffers()]
sd_keys = [k for k in model.state_dict() if "attn.bias" in k]

lens = rng.integers(8, 17, 16)
data = np.zeros((16, 16), dtype=np.int64)
for i, n in enumerate(lens):
    start = rng.integers(1, 10)
    data[i, :n] = (start + np.arange(n) * (1 + i % 3)) % (config.vocab_size - 1) + 1
input_ids = torch.from_numpy(data)
attention_mask = (input_ids != config.pad_token_id).long()
labels = input_ids.masked_fill(attention_mask == 0, -100)

no_decay = ["bias", "ln_"]
groups = [
    {
        "params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)],
        "weight_decay": 0.01,
    },
    {
        "params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)],
        "weight_decay": 0.0,
    },
]
opt = torch.optim.AdamW(groups, lr=3e-3)
num_training_steps, num_warmup_steps = 6, 2


def lr_lambda(current_step):
    if current_step < num_warmup_steps:
        return float(current_step) / float(max(1, num_warmup_steps))
    return max(
        0.0,
        float(num_training_steps - current_step)
        / float(max(1, num_training_steps - num_warmup_steps)),
    )


sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
accum = 2
losses, lrs = [], []
for step in range(num_training_steps * accum):
    b = slice((step % 4) * 4, (step % 4) * 4 + 4)
    loss, _, _ = model(input_ids[b], attention_mask=attention_mask[b], labels=labels[b])
    (loss / accum).backward()
    losses.append(loss.item())
    if (step + 1) % accum == 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        lrs.append(sched.get_last_lr()[0])

model.eval()
with torch.no_grad():
    prompt = input_ids[:1, :5]
    generated = prompt
    past = None
    cur = prompt
    cached_logits = []
    for _ in range(6):
        _, logits, past = model(cur, past_key_values=past, use_cache=True)
        cached_logits.append(logits[:, -1])
        nxt = logits[:, -1].argmax(-1, keepdim=True)
        generated = torch.cat([generated, nxt], dim=-1)
        cur = nxt
    _, full_logits, _ = model(generated[:, :-1])
    cache_ok = bool(torch.allclose(torch.cat(cached_logits), full_logits[0, 4:], atol=1e-5))
    # left-padded batch
    prompts = [[5, 6, 7], [9, 10, 11, 12, 13]]
    L = max(len(p) for p in prompts)
    batch = torch.tensor([[0] * (L - len(p)) + p for p in prompts])
    am = torch.tensor([[0] * (L - len(p)) + [1] * len(p) for p in prompts])
    position_ids = am.long().cumsum(-1) - 1
    position_ids.masked_fill_(am == 0, 1)
    _, logits, past = model(batch, attention_mask=am, position_ids=position_ids, use_cache=True)
    out_tokens = [logits[:, -1].argmax(-1).tolist()]
    for _ in range(3):
        nxt = logits[:, -1].argmax(-1, keepdim=True)
        am = torch.cat([am, am.new_ones((am.shape[0], 1))], dim=-1)
        position_ids = position_ids[:, -1:] + 1
        _, logits, past = model(
            nxt, past_key_values=past, attention_mask=am, position_ids=position_ids, use_cache=True
        )
        out_tokens.append(logits[:, -1].argmax(-1).tolist())
    single = []
    for p in prompts:
        _, lg, _ = model(torch.tensor([p]))
        single.append(lg[0, -1])
    left_pad_ok = bool(
        torch.allclose(
            torch.stack(single),
            model(
                batch,
                attention_mask=torch.tensor([[0] * (L - len(p)) + [1] * len(p) for p in prompts]),
                position_ids=(
                    torch.tensor([[0] * (L - len(p)) + [1] * len(p) for p in prompts]).cumsum(-1)
                    - 1
                ).clamp(min=0),
            )[1][:, -1],
            atol=1e-4,
        )
    )

report(
    special_std_small=bool(special_std < 0.02),
    n_params=n_params,
    buffers=buffers,
    sd_bias_keys=sd_keys,
    losses=losses,
    lrs=lrs,
    generated=generated.tolist(),
    cached_logits=torch.cat(cached_logits)[:, :6].flatten().tolist(),
    cache_ok=cache_ok,
    out_tokens=out_tokens,
    left_pad_ok=left_pad_ok,
    tied=model.lm_head.weight is model.wte.weight,
)
