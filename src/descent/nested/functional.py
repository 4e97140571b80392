"""The jagged nested tensor's ops: composites of descent's dense differentiable ops on the values.

Per-token ops (linear, the norms over the last dims, softmax over a dense dim, dropout, the
chunks of the last dim) run once on the packed values. Per-sequence ops (softmax over the
ragged dim, ragged sums and means, attention) slice the values into the sequences, run the dense
op on each and pack the results. Both are recorded by the dense ops, so gradients are those of
the dense computation sequence by sequence (tests/test_nested.py checks them against PyTorch).
"""

from __future__ import annotations

import numpy as np

import descent as _d

from ..tensor import Tensor
from .storage import JaggedStorage, NestedInt, _fmt, unsupported
from .tensor import NestedTensor, wrap_values


def _dim(nt, dim: int, op: str) -> int:
    nd = nt._data.ndim
    if not -nd <= dim < nd:
        raise IndexError(f"{op}: Dimension out of range (expected to be in range of [{-nd}, "
                         f"{nd - 1}], but got {dim})")  # fmt: skip
    return dim % nd


def _dense_dim(nt, dim: int, op: str) -> int:
    """A non-batch, non-ragged dim of nt as the matching dim of its values."""
    d = _dim(nt, dim, op)
    if d == 0:  # (PyTorch's messages)
        raise RuntimeError(f"{op}(): not supported for NestedTensor on dim=0")
    if d == nt._data.ragged_idx:
        raise RuntimeError(f"{op}(): not supported for NestedTensor on ragged dim")
    return d - 1


def sequences(nt) -> list:
    """nt's sequences as dense Tensors: differentiable slices of its values."""
    st = nt._data
    v = nt.values()
    ax = st.ragged_idx - 1
    return [v.narrow(ax, int(o), int(n)) for o, n in zip(st.offsets[:-1], st.seq_lengths())]


def pack(seqs, like, ragged_idx: int | None = None, contiguous: bool = False) -> NestedTensor:
    """The dense per-sequence results `seqs` (packed dim at ragged_idx - 1) as a nested tensor;
    it keeps `like`'s structure when that is contiguous, else gets new offsets."""
    st = like._data if isinstance(like, Tensor) else like
    r = st.ragged_idx if ragged_idx is None else ragged_idx
    values = _d.cat(list(seqs), dim=r - 1)
    if contiguous:  # (cat keeps its inputs' memory layout, as PyTorch's)
        values = values.contiguous()
    lengths = st.seq_lengths()
    if st.lengths is None and st.offsets[0] == 0:
        return wrap_values(values, st, r)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return wrap_values(values, JaggedStorage(None, offsets, None, r, NestedInt()), r)


def to_padded_tensor(nt, padding: float, output_size=None) -> Tensor:
    """The dense (B, max_len, *rest) tensor, each sequence padded with `padding`."""
    st = nt._data
    ax = st.ragged_idx - 1
    seqs = sequences(nt)
    lengths = st.seq_lengths()
    target = [None] * (st.ndim - 1)
    target[ax] = int(lengths.max()) if len(lengths) else 0
    if output_size is not None:
        output_size = tuple(output_size)
        if len(output_size) != st.ndim:
            raise RuntimeError(
                f"to_padded_tensor: output_size {output_size} must have {st.ndim} dims"
            )
        target = list(output_size[1:])
    out = []
    for s in seqs:
        pads = []
        for d in reversed(range(s.ndim)):
            want = s.shape[d] if target[d] is None else target[d]
            if want < s.shape[d]:
                raise RuntimeError(
                    f"to_padded_tensor: output_size {output_size} is smaller than a sequence "
                    f"of shape {tuple(s.shape)}"
                )
            pads += [0, want - s.shape[d]]
        out.append(_d.nn.functional.pad(s, pads, value=float(padding)) if any(pads) else s)
    return _d.stack(out)


def contiguous(nt) -> NestedTensor:
    if nt.is_contiguous():
        return nt
    return pack(sequences(nt), nt, contiguous=True)


def transpose(nt, dim0: int, dim1: int) -> NestedTensor:
    st = nt._data
    a, b = _dim(nt, dim0, "transpose"), _dim(nt, dim1, "transpose")
    if a == b:
        return nt
    if 0 in (a, b):
        raise ValueError("Transpose is not supported on the batch dimension for jagged NT")
    r = st.ragged_idx
    new_r = b if r == a else a if r == b else r
    return wrap_values(nt.values().transpose(a - 1, b - 1), st, new_r)


def permute(nt, dims) -> NestedTensor:
    st = nt._data
    nd = st.ndim
    if len(dims) != nd:
        raise RuntimeError(f"permute(): expected {nd} dims, got {len(dims)}")
    dims = tuple(_dim(nt, d, "permute") for d in dims)
    if sorted(dims) != list(range(nd)):
        raise RuntimeError(f"permute(): {dims} is not a permutation of the dims")
    if dims[0] != 0:
        raise ValueError("Permute is not supported on the batch dimension for jagged NT")
    new_r = dims.index(st.ragged_idx)
    return wrap_values(nt.values().permute(*(d - 1 for d in dims[1:])), st, new_r)


def view(nt, shape) -> NestedTensor:
    """view/reshape of the dims after the ragged one (split or merge heads)."""
    st = nt._data
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = tuple(shape[0])
    B, r = len(st.offsets) - 1, st.ragged_idx
    ok = (len(shape) > r and shape[0] in (B, -1) and (shape[r] is st.j or shape[r] == -1)
          and all(isinstance(s, int) and s != -1 or s is st.j for s in shape[1:r])
          and all(isinstance(s, int) for s in shape[r + 1:]))  # fmt: skip
    v = nt.values()
    if ok and int(np.prod(shape[r + 1 :])) != int(np.prod(v.shape[1:])):
        ok = False  # (the dims after the ragged one must hold each token's elements)
    if not ok or r != 1:
        raise RuntimeError(
            f"view(): cannot view shape {_fmt(st.shape)} as {list(shape)} (a jagged nested "
            "tensor keeps its batch and ragged dims: (B, -1, ...))"
        )
    return wrap_values(v.reshape(v.shape[0], *shape[2:]), st)


def reduce(nt, op: str, dim, keepdim: bool, dtype) -> Tensor:
    st = nt._data
    v = nt.values()
    if dtype is not None:
        v = v.to(dtype)
    if dim is None:  # everything: a dense scalar over the sequences' elements
        seqs = sequences(nt) if st.lengths is not None else [v]
        flat = _d.cat([s.reshape(-1) for s in seqs])
        return flat.sum() if op == "sum" else flat.mean()
    dims = sorted({_dim(nt, d, op) for d in ((dim,) if isinstance(dim, int) else dim)})
    r = st.ragged_idx
    if 0 in dims and r not in dims:
        raise RuntimeError(f"{op}(): reducing along the batch dimension but not the ragged "
                           "dimension is not supported for nested tensors")  # fmt: skip
    if 0 in dims:  # the batch and ragged dims: over every token, a dense result
        vd = tuple(d - 1 for d in dims if d != 0)
        tokens = _d.cat(sequences(nt), dim=r - 1) if st.lengths is not None else v
        out = getattr(tokens, op)(dim=vd, keepdim=keepdim)
        return out.unsqueeze(0) if keepdim else out
    if r in dims:  # over the ragged dim: per sequence, a dense (B, ...) result
        vd = tuple(d - 1 for d in dims)
        seqs = [getattr(s, op)(dim=vd, keepdim=keepdim) for s in sequences(nt)]
        if dtype is not None:
            seqs = [s.to(dtype) for s in seqs]
        return _d.stack(seqs)
    vd = tuple(d - 1 for d in dims)
    out = getattr(v, op)(dim=vd, keepdim=keepdim)
    new_r = r if keepdim else r - sum(d < r for d in dims)
    return wrap_values(out, st, new_r)


def softmax(nt, dim, dtype, log: bool) -> NestedTensor:
    st = nt._data
    d = _dim(nt, dim, "softmax")
    f = _d.nn.functional.log_softmax if log else _d.nn.functional.softmax
    if d == 0:
        raise RuntimeError(
            f"{'log_' if log else ''}softmax(): not supported when reducing across the batch "
            "dimension for NestedTensor"
        )
    if d == st.ragged_idx:  # within each sequence
        return pack([f(s, dim=d - 1, dtype=dtype) for s in sequences(nt)], nt)
    return wrap_values(f(nt.values(), dim=d - 1, dtype=dtype), st)


def _last_dense(nt, op: str) -> None:
    if nt._data.ragged_idx == nt._data.ndim - 1:
        raise RuntimeError(f"{op}: the last dim of the nested tensor is the ragged one "
                           f"(shape {nt._data.shape}); transpose it back first")  # fmt: skip


def matmul(a, b) -> Tensor:
    if isinstance(a, NestedTensor) and not isinstance(b, NestedTensor) and b.ndim <= 2:
        _last_dense(a, "matmul")
        return wrap_values(a.values() @ b, a)  # (T, ..., K) @ (K, N) or (K,)
    st = a._data if isinstance(a, NestedTensor) else b._data
    raise unsupported(st, "matmul of these operands (a nested tensor times a dense (K, N) "
                          "matrix is supported)")  # fmt: skip


def linear(x, weight, bias=None) -> NestedTensor:
    _last_dense(x, "linear")
    return wrap_values(_d.nn.functional.linear(x.values(), weight, bias), x)


def _check_norm(x, normalized_shape, op: str) -> None:
    n = 1 if isinstance(normalized_shape, int) else len(tuple(normalized_shape))
    if n > x._data.ndim - 1 - x._data.ragged_idx:
        raise RuntimeError(f"{op}: normalizing over the ragged dim of a jagged nested tensor is "
                           f"not supported (shape {x._data.shape}, normalized_shape "
                           f"{normalized_shape})")  # fmt: skip


def layer_norm(x, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> NestedTensor:
    _check_norm(x, normalized_shape, "layer_norm")
    F = _d.nn.functional
    return wrap_values(F.layer_norm(x.values(), normalized_shape, weight, bias, eps), x)


def rms_norm(x, normalized_shape, weight=None, eps=None) -> NestedTensor:
    _check_norm(x, normalized_shape, "rms_norm")
    return wrap_values(_d.nn.functional.rms_norm(x.values(), normalized_shape, weight, eps), x)


def dropout(x, p: float, training: bool, generator=None, inplace: bool = False) -> NestedTensor:
    if not training or p == 0.0:
        return x
    if inplace:  # PyTorch draws the mask with bernoulli_, which its jagged layout lacks
        return x.bernoulli_(1 - p)
    return wrap_values(_d.nn.functional.dropout(x.values(), p, True, generator=generator), x)


def cat(tensors, dim: int) -> NestedTensor:
    first = tensors[0]
    if not all(isinstance(t, NestedTensor) for t in tensors):
        raise RuntimeError("cat(): expected each tensor in given list to be nested")
    vd = _dense_dim(first, dim, "cat")
    for t in tensors[1:]:
        if not t._data.same_structure(first._data):
            raise RuntimeError(
                f"cat(): the nested tensors have different structures ({first._data.shape} "
                f"and {t._data.shape})"
            )
    return wrap_values(_d.cat([t.values() for t in tensors], dim=vd), first)


def chunk(nt, chunks: int, dim: int) -> tuple:
    if _dim(nt, dim, "chunk") == 0:  # groups of sequences
        B = len(nt)
        size = -(-B // chunks) if chunks > 0 else B
        return _batch_groups(nt, [size] * (B // size) + ([B % size] if B % size else []))
    vd = _dense_dim(nt, dim, "chunk")
    return tuple(wrap_values(c, nt) for c in nt.values().chunk(chunks, dim=vd))


def _batch_groups(nt, sizes) -> tuple:
    """Groups of consecutive sequences, each a nested tensor of its own (new offsets)."""
    seqs, out, start = sequences(nt), [], 0
    r = nt._data.ragged_idx
    for n in sizes:
        group = seqs[start : start + n]
        offsets = np.concatenate([[0], np.cumsum([s.shape[r - 1] for s in group])])
        st = JaggedStorage(None, offsets.astype(np.int64), None, r, NestedInt())
        out.append(pack(group, st, contiguous=True))
        start += n
    return tuple(out)


def split(nt, split_size, dim: int) -> tuple:
    vd = _dense_dim(nt, dim, "split")  # (dim 0 raises, as PyTorch's; chunk takes it)
    return tuple(wrap_values(c, nt) for c in nt.values().split(split_size, dim=vd))


def scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale=None, enable_gqa=False,
                                 generator=None) -> NestedTensor:  # fmt: skip
    """Attention within each sequence: q (B, H, j, E), k (B, H, j', E), v (B, H, j', Ev)."""
    if not all(isinstance(t, NestedTensor) for t in (q, k, v)):
        raise RuntimeError("scaled_dot_product_attention(): with a nested query, key and value "
                           "must be nested too (jagged layout)")  # fmt: skip
    if attn_mask is not None:
        raise ValueError("Masks are not yet supported! (scaled_dot_product_attention with jagged "
                         "nested tensors: the lengths are the mask)")  # fmt: skip
    for name, t in (("query", q), ("key", k), ("value", v)):
        if t._data.ragged_idx != t._data.ndim - 2:
            raise RuntimeError(
                f"scaled_dot_product_attention(): the {name}'s ragged dim must be the one "
                f"before the last ((B, H, j, E) after transpose(1, 2)); got {t._data.shape}"
            )
    if len(q) != len(k) or len(k) != len(v):
        raise RuntimeError("scaled_dot_product_attention(): query, key and value have different "
                           "batch sizes")  # fmt: skip
    F = _d.nn.functional
    outs = [F.scaled_dot_product_attention(sq, sk, sv, dropout_p=dropout_p, is_causal=is_causal,
                                           scale=scale, enable_gqa=enable_gqa,
                                           generator=generator)
            for sq, sk, sv in zip(sequences(q), sequences(k), sequences(v))]  # fmt: skip
    return pack(outs, q)
