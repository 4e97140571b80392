# An RWKV-4 language model in the shape of BlinkDL/RWKV-LM's RWKV-v4neo/src/model.py (GPT mode,
# with the CUDA WKV kernel replaced by its pure-PyTorch reference loop), the RWKV-infctx trainer's
# chunked training with the recurrent state carried between chunks and .detach()ed, and
# RWKV_in_150_lines.py's RNN mode (our own rewrites): token shift by nn.ZeroPad2d((0, 0, 1, -1))
# (a negative pad crops), time-mix / decay / bonus initialisation by element writes under
# torch.no_grad() and torch.pow(tensor, float), the WKV recurrence with the max-exponent trick in a
# @torch.jit.script function (typed arguments, a List[Tensor] of outputs, Tuple returns), the
# L2Wrap custom autograd Function (max + scatter_ into zeros_like in backward), squared-ReLU
# channel mixing, parameter groups by name with my_lr_scale, Adam(betas=(0.9, 0.99)) with a
# warm-up written into the groups; then the checkpoint saved with torch.save, re-loaded, the time
# parameters squeezed and the decay turned into -exp(w), and run token by token by a
# torch.jit.ScriptModule whose @torch.jit.script_method mixers write the state rows in place
# (`state == None` on the first call); top-p sampling on the NumPy view of the probabilities.
# Data: a repeating character sequence.
import math
import types
from typing import List, Tuple

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report
from torch.nn import functional as F


@torch.jit.script
def wkv_forward(w: torch.Tensor, u: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                aa: torch.Tensor, bb: torch.Tensor,
                pp: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    # w, u: (C,); k, v: (B, T, C); aa, bb, pp: (B, C), the numerator, denominator and exponent
    T = k.size(1)
    w = -torch.exp(w)
    outs: List[torch.Tensor] = []
    for t in range(T):
        kk = k[:, t]
        vv = v[:, t]
        ww = u + kk
        p = torch.maximum(pp, ww)
        e1 = torch.exp(pp - p)
        e2 = torch.exp(ww - p)
        outs.append((e1 * aa + e2 * vv) / (e1 * bb + e2))
        ww = w + pp
        p = torch.maximum(ww, kk)
        e1 = torch.exp(ww - p)
        e2 = torch.exp(kk - p)
        aa = e1 * aa + e2 * vv
        bb = e1 * bb + e2
        pp = p
    return torch.stack(outs, dim=1), aa, bb, pp


class L2Wrap(torch.autograd.Function):
    @staticmethod
    def forward(ctx, loss, y):
        ctx.save_for_backward(y)
        return loss

    @staticmethod
    def backward(ctx, grad_output):
        y = ctx.saved_tensors[0]
        # to encourage the logits to be close to 0
        factor = 1e-4 / (y.shape[0] * y.shape[1])
        maxx, ids = torch.max(y, -1, keepdim=True)
        gy = torch.zeros_like(y)
        gy.scatter_(-1, ids, maxx * factor)
        return (grad_output, gy)


class RWKV_TimeMix(nn.Module):
    def __init__(self, args, layer_id):
        super().__init__()
        self.args = args
        self.layer_id = layer_id
        self.time_shift = nn.ZeroPad2d((0, 0, 1, -1))

        with torch.no_grad():  # fancy init
            ratio_0_to_1 = layer_id / (args.n_layer - 1)  # 0 to 1
            ratio_1_to_almost0 = 1.0 - (layer_id / args.n_layer)  # 1 to ~0
            ddd = torch.ones(1, 1, args.n_embd)
            for i in range(args.n_embd):
                ddd[0, 0, i] = i / args.n_embd

            # fancy time_decay
            decay_speed = torch.ones(args.dim_att)
            for h in range(args.dim_att):
                decay_speed[h] = -5 + 8 * (h / (args.dim_att - 1)) ** (0.7 + 1.3 * ratio_0_to_1)
            self.time_decay = nn.Parameter(decay_speed)

            # fancy time_first
            zigzag = torch.tensor([(i + 1) % 3 - 1 for i in range(args.dim_att)]) * 0.5
            self.time_first = nn.Parameter(torch.ones(args.dim_att) * math.log(0.3) + zigzag)

            # fancy time_mix
            self.time_mix_k = nn.Parameter(torch.pow(ddd, ratio_1_to_almost0))
            self.time_mix_v = nn.Parameter(torch.pow(ddd, ratio_1_to_almost0) + 0.3 * ratio_0_to_1)
            self.time_mix_r = nn.Parameter(torch.pow(ddd, 0.5 * ratio_1_to_almost0))

        self.key = nn.Linear(args.n_embd, args.dim_att, bias=False)
        self.value = nn.Linear(args.n_embd, args.dim_att, bias=False)
        self.receptance = nn.Linear(args.n_embd, args.dim_att, bias=False)
        self.output = nn.Linear(args.dim_att, args.n_embd, bias=False)

    def forward(self, x, state=None):
        B, T, C = x.size()
        if state is None:
            xx = self.time_shift(x)  # Mix x with the previous timestep to produce xk, xv, xr
            aa = torch.zeros(B, self.args.dim_att)
            bb = torch.zeros(B, self.args.dim_att)
            pp = torch.full((B, self.args.dim_att), -1e38)
        else:
            last_x, aa, bb, pp = state
            xx = torch.cat([last_x.unsqueeze(1), x[:, :-1]], dim=1)
        xk = x * self.time_mix_k + xx * (1 - self.time_mix_k)
        xv = x * self.time_mix_v + xx * (1 - self.time_mix_v)
        xr = x * self.time_mix_r + xx * (1 - self.time_mix_r)
        k = self.key(xk)
        v = self.value(xv)
        r = self.receptance(xr)
        sr = torch.sigmoid(r)
        wkv, aa, bb, pp = wkv_forward(self.time_decay, self.time_first, k, v, aa, bb, pp)
        return self.output(sr * wkv), (x[:, -1], aa, bb, pp)


class RWKV_ChannelMix(nn.Module):
    def __init__(self, args, layer_id):
        super().__init__()
        self.args = args
        self.layer_id = layer_id
        self.time_shift = nn.ZeroPad2d((0, 0, 1, -1))

        with torch.no_grad():  # fancy init of time_mix
            ratio_1_to_almost0 = 1.0 - (layer_id / args.n_layer)  # 1 to ~0
            ddd = torch.ones(1, 1, args.n_embd)
            for i in range(args.n_embd):
                ddd[0, 0, i] = i / args.n_embd
            self.time_mix_k = nn.Parameter(torch.pow(ddd, ratio_1_to_almost0))
            self.time_mix_r = nn.Parameter(torch.pow(ddd, ratio_1_to_almost0))

        self.key = nn.Linear(args.n_embd, args.dim_ffn, bias=False)
        self.receptance = nn.Linear(args.n_embd, args.n_embd, bias=False)
        self.value = nn.Linear(args.dim_ffn, args.n_embd, bias=False)

    def forward(self, x, last_x=None):
        xx = self.time_shift(x) if last_x is None else torch.cat(
            [last_x.unsqueeze(1), x[:, :-1]], dim=1)
        xk = x * self.time_mix_k + xx * (1 - self.time_mix_k)
        xr = x * self.time_mix_r + xx * (1 - self.time_mix_r)
        k = self.key(xk)
        k = torch.square(torch.relu(k))
        kv = self.value(k)
        return torch.sigmoid(self.receptance(xr)) * kv, x[:, -1]


class Block(nn.Module):
    def __init__(self, args, layer_id):
        super().__init__()
        self.args = args
        self.layer_id = layer_id

        self.ln1 = nn.LayerNorm(args.n_embd)
        self.ln2 = nn.LayerNorm(args.n_embd)
        if self.layer_id == 0:
            self.ln0 = nn.LayerNorm(args.n_embd)
        self.att = RWKV_TimeMix(args, layer_id)
        self.ffn = RWKV_ChannelMix(args, layer_id)

    def forward(self, x, state=None):
        if self.layer_id == 0:
            x = self.ln0(x)
        att_state, ffn_state = (None, None) if state is None else state
        dx, att_state = self.att(self.ln1(x), att_state)
        x = x + dx
        dx, ffn_state = self.ffn(self.ln2(x), ffn_state)
        x = x + dx
        return x, (att_state, ffn_state)


class RWKV(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.args = args
        self.emb = nn.Embedding(args.vocab_size, args.n_embd)
        self.blocks = nn.ModuleList([Block(args, i) for i in range(args.n_layer)])
        self.ln_out = nn.LayerNorm(args.n_embd)
        self.head = nn.Linear(args.n_embd, args.vocab_size, bias=False)

    def configure_optimizers(self):
        lr_1x, lr_2x, lr_3x = set(), set(), set()
        for n, p in self.named_parameters():
            if "time_mix" in n:
                lr_1x.add(n)
            elif "time_decay" in n:
                lr_2x.add(n)
            elif "time_first" in n:
                lr_3x.add(n)
            else:
                lr_1x.add(n)
        lr_1x = sorted(list(lr_1x))
        lr_2x = sorted(list(lr_2x))
        lr_3x = sorted(list(lr_3x))
        param_dict = {n: p for n, p in self.named_parameters()}
        optim_groups = [
            {"params": [param_dict[n] for n in lr_1x], "weight_decay": 0.0, "my_lr_scale": 1.0},
            {"params": [param_dict[n] for n in lr_2x], "weight_decay": 0.0, "my_lr_scale": 2.0},
            {"params": [param_dict[n] for n in lr_3x], "weight_decay": 0.0, "my_lr_scale": 3.0},
        ]
        return torch.optim.Adam(optim_groups, lr=self.args.lr_init, betas=self.args.betas,
                                eps=self.args.adam_eps, amsgrad=False)

    def forward(self, idx, states=None):
        args = self.args
        B, T = idx.size()
        assert T <= args.ctx_len, "Cannot forward, model ctx_len is exhausted."

        x = self.emb(idx)
        new_states = []
        for i, block in enumerate(self.blocks):
            x, s = block(x, None if states is None else states[i])
            new_states.append(s)
        x = self.ln_out(x)
        x = self.head(x)
        return x, new_states

    def training_step(self, idx, targets, states=None):
        logits, states = self(idx, states)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return L2Wrap.apply(loss, logits), states


def detach_states(states):
    return [((a[0].detach(), a[1].detach(), a[2].detach(), a[3].detach()), f.detach())
            for a, f in states]


# ---- RWKV_in_150_lines.py: the RNN mode, token by token
class RWKV_RNN(torch.jit.ScriptModule):
    def __init__(self, args):
        super().__init__()
        self.args = args
        self.eval()  # set torch to inference mode

        w = torch.load(args.MODEL_NAME + ".pth", map_location="cpu")
        for k in w.keys():
            if ".time_" in k:
                w[k] = w[k].squeeze()
            if ".time_decay" in k:
                w[k] = -torch.exp(w[k].float())  # the real time decay is like e^{-e^x}
            else:
                w[k] = w[k].float()  # convert to f32 type

        self.w = types.SimpleNamespace()  # set self.w from w
        self.w.blocks = {}
        for k in w.keys():  # example: "blocks.0.att.time_first" => self.w.blocks[0].att.time_first
            parts = k.split(".")
            last = parts.pop()
            here = self.w
            for p in parts:
                if p.isdigit():
                    p = int(p)
                    if p not in here:
                        here[p] = types.SimpleNamespace()
                    here = here[p]
                else:
                    if not hasattr(here, p):
                        setattr(here, p, types.SimpleNamespace())
                    here = getattr(here, p)
            setattr(here, last, w[k])

    def layer_norm(self, x, w):
        return F.layer_norm(x, (self.args.n_embd,), weight=w.weight, bias=w.bias)

    @torch.jit.script_method
    def channel_mixing(self, x, state, i: int, time_mix_k, time_mix_r, kw, vw, rw):
        xk = x * time_mix_k + state[5 * i + 0] * (1 - time_mix_k)
        xr = x * time_mix_r + state[5 * i + 0] * (1 - time_mix_r)
        state[5 * i + 0] = x
        r = torch.sigmoid(rw @ xr)
        k = torch.square(torch.relu(kw @ xk))  # square relu, primer paper
        return r * (vw @ k)

    @torch.jit.script_method
    def time_mixing(self, x, state, i: int, time_mix_k, time_mix_v, time_mix_r, time_first,
                    time_decay, kw, vw, rw, ow):
        xk = x * time_mix_k + state[5 * i + 1] * (1 - time_mix_k)
        xv = x * time_mix_v + state[5 * i + 1] * (1 - time_mix_v)
        xr = x * time_mix_r + state[5 * i + 1] * (1 - time_mix_r)
        state[5 * i + 1] = x
        r = torch.sigmoid(rw @ xr)
        k = kw @ xk
        v = vw @ xv

        aa = state[5 * i + 2]
        bb = state[5 * i + 3]
        pp = state[5 * i + 4]
        ww = time_first + k
        qq = torch.maximum(pp, ww)
        e1 = torch.exp(pp - qq)
        e2 = torch.exp(ww - qq)
        a = e1 * aa + e2 * v
        b = e1 * bb + e2
        wkv = a / b
        ww = pp + time_decay
        qq = torch.maximum(ww, k)
        e1 = torch.exp(ww - qq)
        e2 = torch.exp(k - qq)
        state[5 * i + 2] = e1 * aa + e2 * v
        state[5 * i + 3] = e1 * bb + e2
        state[5 * i + 4] = qq
        return ow @ (r * wkv)

    def forward(self, token, state):
        with torch.no_grad():
            if state == None:  # noqa: E711 - as the original
                state = torch.zeros(self.args.n_layer * 5, self.args.n_embd)
                for i in range(self.args.n_layer):
                    state[5 * i + 4] = -1e30  # -infinity

            x = self.w.emb.weight[token]
            x = self.layer_norm(x, self.w.blocks[0].ln0)
            for i in range(self.args.n_layer):
                att = self.w.blocks[i].att
                x = x + self.time_mixing(self.layer_norm(x, self.w.blocks[i].ln1), state, i,
                                         att.time_mix_k, att.time_mix_v, att.time_mix_r,
                                         att.time_first, att.time_decay, att.key.weight,
                                         att.value.weight, att.receptance.weight,
                                         att.output.weight)
                ffn = self.w.blocks[i].ffn
                x = x + self.channel_mixing(self.layer_norm(x, self.w.blocks[i].ln2), state, i,
                                            ffn.time_mix_k, ffn.time_mix_r, ffn.key.weight,
                                            ffn.value.weight, ffn.receptance.weight)

            x = self.w.head.weight @ self.layer_norm(x, self.w.ln_out)
            return x.float(), state


def sample_logits(out, temperature=1.0, top_p=0.8, rng=None):
    probs = F.softmax(out, dim=-1).numpy()
    sorted_probs = np.sort(probs)[::-1]
    cumulative_probs = np.cumsum(sorted_probs)
    cutoff = float(sorted_probs[np.argmax(cumulative_probs > top_p)])
    probs[probs < cutoff] = 0
    if temperature != 1.0:
        probs = np.power(probs, 1.0 / temperature)
    probs = probs / np.sum(probs)
    out = rng.choice(a=len(probs), p=probs)
    return int(out)


def main():
    torch.manual_seed(0)
    args = types.SimpleNamespace(vocab_size=12, n_embd=16, dim_att=16, dim_ffn=32, n_layer=2,
                                 ctx_len=16, lr_init=3e-3, betas=(0.9, 0.99), adam_eps=1e-8,
                                 MODEL_NAME="rwkv-tiny")
    text = "abcabdabcabeabcabdabcabe" * 3
    stoi = {c: i for i, c in enumerate(sorted(set(text)))}
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)

    model = RWKV(args)
    init_decay = model.blocks[1].att.time_decay[:4].tolist()
    init_first = model.blocks[0].att.time_first[:4].tolist()
    init_mix = model.blocks[1].att.time_mix_v[0, 0, :4].tolist()
    W = reference_weights(model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if ".time_" not in n:  # keep the fancy init of the time parameters
                p.copy_(torch.from_numpy(W[n]))
    optimizer = model.configure_optimizers()
    group_sizes = [len(g["params"]) for g in optimizer.param_groups]

    # GPT mode: two sequences of 2 chunks x 8 tokens, the state carried across chunks
    losses, grad_norms, lrs = [], [], []
    for step in range(4):
        lr = args.lr_init * min(1.0, (step + 1) / 3)  # warm-up
        for param_group in optimizer.param_groups:
            param_group["lr"] = lr * param_group["my_lr_scale"]
        lrs.append([g["lr"] for g in optimizer.param_groups])
        start = step % 4
        seq = torch.stack([data[start:start + 17], data[start + 20:start + 37]])
        states = None
        for chunk in range(2):
            idx = seq[:, chunk * 8:chunk * 8 + 8].contiguous()
            targets = seq[:, chunk * 8 + 1:chunk * 8 + 9].contiguous()
            loss, states = model.training_step(idx, targets, states)
            optimizer.zero_grad()
            loss.backward()
            grad_norms.append(
                [model.blocks[1].att.time_decay.grad.norm().item(),
                 model.blocks[0].att.time_first.grad.norm().item(),
                 model.head.weight.grad.norm().item()])
            optimizer.step()
            states = detach_states(states)
            losses.append(loss.item())

    # a chunked pass equals the whole-sequence pass (no training in between)
    with torch.no_grad():
        full, _ = model(data[None, :16])
        first, st = model(data[None, :8])
        second, _ = model(data[None, 8:16], st)
        chunk_err = (torch.cat([first, second], dim=1) - full).abs().max().item()

    # RNN mode from the saved checkpoint
    torch.save(model.state_dict(), args.MODEL_NAME + ".pth")
    rnn = RWKV_RNN(args)
    state = None
    rnn_logits = []
    for token in data[:16].tolist():
        out, state = rnn.forward(token, state)
        rnn_logits.append(out)
    rnn_logits = torch.stack(rnn_logits)
    rnn_vs_gpt = (rnn_logits - full[0]).abs().max().item()

    rng = np.random.default_rng(0)
    sampled = []
    for _ in range(8):
        token = sample_logits(out, temperature=1.0, top_p=0.7, rng=rng)
        sampled.append(token)
        out, state = rnn.forward(token, state)
    greedy = rnn_logits.argmax(-1).tolist()

    report(
        init_decay=init_decay, init_first=init_first, init_mix=init_mix,
        group_sizes=group_sizes, losses=losses, grad_norms=grad_norms, lrs=lrs,
        chunk_close=chunk_err < 1e-5, rnn_close=rnn_vs_gpt < 1e-4,
        rnn_logits=rnn_logits[-1].tolist(), full_logits=full[0, 3].tolist(),
        state_rows=state[[0, 2, 4]].sum(-1).tolist(), sampled=sampled, greedy=greedy,
        decay_loaded=rnn.w.blocks[1].att.time_decay[:4].tolist(),
        n_blocks=len(rnn.w.blocks),
    )


if __name__ == "__main__":
    main()
