"""nn.MultiheadAttention as PyTorch 2.13 counts it: the ATen products of
`F.multi_head_attention_forward` (torch/nn/functional.py) for descent's standard path, computed
from shapes, layouts and requires_grad flags (descent's own MultiheadAttention runs other, fused
ops; `descent.utils.flop_counter` counts this instead while the module's forward runs).

PyTorch's path, for q, k, v of the same width E with the packed `in_proj_weight`:
  * eval, no gradient anywhere, batch_first self-attention with biases and an even head count:
    its fused `_native_multi_head_attention` kernel, which it counts as nothing;
  * otherwise batch_first inputs are transposed to (L, N, E) views, projected by `linear` (one
    (3E, E) product for self-attention, (E, E) and (2E, E) for key is value, three otherwise),
    attended per head as (N*H, L, hd) batches: `bmm` (`baddbmm` with a mask) and `bmm` when the
    weights are returned, else `scaled_dot_product_attention`, and projected out by `linear` on
    (L*N, E) rows.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ..grad_mode import is_grad_enabled


def _like(data, rg: bool):
    """What the decomposition rules read of a tensor: shape, ndim, requires_grad, the array."""
    return SimpleNamespace(shape=tuple(data.shape), ndim=data.ndim, _rg=rg, _data=data)


def _linear_entries(x, w, has_b: bool, rules):
    """F.linear(x, w, b)'s products with backward flags (whether x and the weight `w` need a
    gradient). at::matmul's fold reads w's requires_grad attribute, under no_grad too."""
    op = SimpleNamespace(has_b=has_b)
    w_like = _like(np.empty(tuple(w.shape), dtype="b1"), w._rg)
    fwd, bw = rules._linear(op, (x, w_like), None)
    flags = (x._rg, is_grad_enabled() and w._rg)
    return fwd, [(k, f, tuple(flags[i] for i in idx)) for k, f, idx in bw]


def mha_entries(mod, args, kwargs, rules):
    """(forward, backward) entries of `mod(query, key, value, ...)`, or None where descent's
    general path runs (kdim/vdim, bias_kv, add_zero_attn): its inner ops are counted then."""
    names = ("query", "key", "value", "key_padding_mask", "need_weights", "attn_mask")
    bound = dict(zip(names, args, strict=False))
    bound.update({k: v for k, v in kwargs.items() if k in names})
    query, key, value = bound["query"], bound["key"], bound["value"]
    need_weights = bound.get("need_weights", True)
    masked = bound.get("attn_mask") is not None or bound.get("key_padding_mask") is not None
    if not mod._qkv_same_embed_dim or mod.bias_k is not None or mod.add_zero_attn:
        return None
    grad = is_grad_enabled()
    w, b = mod.in_proj_weight, mod.in_proj_bias
    ow, ob = mod.out_proj.weight, mod.out_proj.bias
    params = [w, b, ow, ob]
    batched = query.ndim == 3
    anything_rg = grad and any(t is not None and t._rg for t in [query, key, value, *params])
    if (batched and not mod.training and mod.batch_first and query is key and key is value
            and b is not None and mod.num_heads % 2 == 0 and not anything_rg):  # fmt: skip
        return [], []  # torch's fused kernel: not counted
    e, h = mod.embed_dim, mod.num_heads
    hd = e // h

    def layout(t):
        d = rules.layout(t)
        if not batched:
            d = d.reshape((d.shape[0], 1, d.shape[1]))  # F.mha's unsqueeze(1)
        elif mod.batch_first:
            d = d.transpose(1, 0, 2)  # (N, L, E) -> (L, N, E), a view as torch's
        return _like(d, grad and t._rg)

    q, k, v = layout(query), layout(key), layout(value)
    w_rg, b_rg = grad and w._rg, grad and b is not None and b._rg
    fwd, bw = [], []

    def project(x, rows, rg_in):
        f, g = _linear_entries(x, SimpleNamespace(shape=(rows, e), _rg=w._rg), b is not None, rules)
        fwd.extend(f)
        bw.extend(g)
        return rg_in or w_rg or b_rg

    if key is value and query is key:
        rg_q = rg_k = rg_v = project(q, 3 * e, q._rg)
    elif key is value:
        rg_q = project(q, e, q._rg)
        rg_k = rg_v = project(k, 2 * e, k._rg)
    else:
        rg_q, rg_k, rg_v = project(q, e, q._rg), project(k, e, k._rg), project(v, e, v._rg)
    n_l, n, n_s = q.shape[0], q.shape[1], k.shape[0]
    bh = n * h
    qk, pv = 2 * bh * n_l * n_s * hd, 2 * bh * n_l * n_s * hd
    rg_p = rg_q or rg_k
    dropout = mod.dropout if mod.training else 0.0
    if need_weights or dropout > 0.0:
        # need_weights: bmm/baddbmm then bmm; else SDPA's math path (dropout on the CPU)
        fwd += [(rules.BADDBMM if need_weights and masked else rules.BMM, qk), (rules.BMM, pv)]
        bw += [(rules.BMM, pv, (rg_p,)), (rules.BMM, pv, (rg_v,)),
               (rules.BMM, qk, (rg_q,)), (rules.BMM, qk, (rg_k,))]  # fmt: skip
    # else: SDPA on (N, H, L, hd) views: torch's CPU flash kernel, not counted
    out_in = _like(np.empty((n_l * n, e), dtype="b1"), rg_p or rg_v)
    f, g = _linear_entries(out_in, ow, ob is not None, rules)
    return fwd + f, bw + g


def encoder_layer_entries(layer, args, kwargs):
    """nn.TransformerEncoderLayer: nothing where PyTorch runs its fused
    `_transformer_encoder_layer_fwd` (inference without gradients, batch_first, relu or gelu,
    biases, an even head count), which it counts as nothing; else None (the layer's modules
    are counted one by one, as PyTorch's slow path)."""
    from ..nn import GELU, ReLU
    from ..nn import functional as F

    src = args[0] if args else kwargs.get("src")
    attn = layer.self_attn
    act = layer.activation
    relu_or_gelu = act is F.relu or act is F.gelu or isinstance(act, (ReLU, GELU))
    tensors = [src, attn.in_proj_weight, attn.in_proj_bias, attn.out_proj.weight,
               attn.out_proj.bias, layer.norm1.weight, layer.norm1.bias, layer.norm2.weight,
               layer.norm2.bias, layer.linear1.weight, layer.linear1.bias,
               layer.linear2.weight, layer.linear2.bias]  # fmt: skip
    needs_grad = is_grad_enabled() and any(t is not None and t._rg for t in tensors)
    fast = (
        src.ndim == 3
        and not layer.training
        and attn.batch_first
        and attn.in_proj_bias is not None
        and attn._qkv_same_embed_dim
        and relu_or_gelu
        and layer.norm1.eps == layer.norm2.eps
        and attn.num_heads % 2 == 0
        and not needs_grad
    )
    return ([], []) if fast else None


def rnn_entries(mod, args, kwargs, rules):
    """nn.RNN and nn.GRU as PyTorch 2.13's CPU path counts them: per layer and direction one
    `linear` over the whole input sequence (batch_first: a transposed view, so `mm`; a
    PackedSequence: its (sum of lengths, in) data), then one `addmm` (`mm` without bias) of the
    hidden state per time step (a packed step has as many rows as sequences still running);
    backward per step the weight's gradient and, where the state needs one, the state's.
    LSTM: nothing (its fused CPU kernel has no formula)."""
    from ..nn.utils.rnn import PackedSequence
    from ..tensor import Tensor

    x = args[0] if args else kwargs.get("input")
    hx = args[1] if len(args) > 1 else kwargs.get("hx")
    if mod.mode == "LSTM":
        return [], []
    grad = is_grad_enabled()
    if isinstance(x, PackedSequence):
        sizes = [int(b) for b in x.batch_sizes.tolist()]  # rows per step
        x = x.data
        d = rules.layout(x)  # (sum of lengths, in): linear's 2-D case
    elif isinstance(x, Tensor) and x.ndim in (2, 3):
        d = rules.layout(x)
        d = d if x.ndim == 3 else d.reshape((x.shape[0], 1, x.shape[1]))
        if x.ndim == 3 and mod.batch_first:
            d = d.transpose(1, 0, 2)
        sizes = [d.shape[1]] * d.shape[0]
    else:
        return None
    h, gates = mod.hidden_size, 3 if mod.mode == "GRU" else 1
    dirs = 2 if mod.bidirectional else 1
    h0_rg = grad and hx is not None and hx._rg
    layer_in, in_rg = d, grad and x._rg
    fwd, bw = [], []
    step_key = rules.ADDMM if mod.bias else rules.MM
    for layer in range(mod.num_layers):
        out_rg = False
        for direction in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if direction else "")
            w_ih, w_hh = getattr(mod, "weight_ih" + sfx), getattr(mod, "weight_hh" + sfx)
            b_ih = getattr(mod, "bias_ih" + sfx, None)
            b_hh = getattr(mod, "bias_hh" + sfx, None)
            f, g = _linear_entries(_like(layer_in, in_rg), w_ih, mod.bias, rules)
            fwd += f
            bw += g
            upstream = in_rg or any(
                grad and t is not None and t._rg for t in (w_ih, b_ih, w_hh, b_hh)
            )
            state_rg = h0_rg
            for rows in sizes if direction == 0 else sizes[::-1]:  # the reverse runs backwards
                step = 2 * rows * h * gates * h
                fwd.append((step_key, step))
                bw.append((rules.MM, step, (grad and w_hh._rg,)))
                bw.append((rules.MM, step, (state_rg,)))
                state_rg = state_rg or upstream
            out_rg = out_rg or state_rg
        layer_in = np.empty(d.shape[:-1] + (h * dirs,), dtype="b1")  # contiguous
        in_rg = out_rg
    return fwd, bw
