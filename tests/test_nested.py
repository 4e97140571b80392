"""descent.nested (jagged layout) against torch 2.13's NJT: values and gradients (float32),
finite differences (float64) for the per-sequence backward passes, errors and edge cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds
from descent.nested import NestedUnsupportedError

pytestmark = pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")

LIBS = (torch, ds)


def _np(x):
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    return np.asarray(x.detach()._data)


def _seqs(lengths, rest=(4,), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, *rest)).astype(np.float32) for n in lengths]


def _run(fn, seqs, params=(), seed=1, dtype=np.float32):
    """fn(lib, nt, *params) under torch and descent: outputs, and the gradients of a random
    weighting of the output (values for a nested output) with respect to nt and params."""
    results = []
    for lib in LIBS:
        nt = lib.nested.nested_tensor([lib.tensor(s.astype(dtype)) for s in seqs],
                                      layout=lib.jagged, requires_grad=True)  # fmt: skip
        ps = [lib.tensor(p.astype(dtype), requires_grad=True) for p in params]
        out = fn(lib, nt, *ps)
        flat = out.values() if out.is_nested else out
        w = np.random.default_rng(seed).standard_normal(tuple(flat.shape)).astype(dtype)
        (flat * lib.tensor(w)).sum().backward()
        results.append((out, nt.grad, [p.grad for p in ps]))
    return results


def _check(fn, seqs, params=(), atol=1e-5, rtol=1e-4):
    (to, tg, tpg), (do, dg, dpg) = _run(fn, seqs, params)
    assert do.is_nested == to.is_nested
    if to.is_nested:
        assert [tuple(u.shape) for u in do.unbind()] == [tuple(u.shape) for u in to.unbind()]
        assert do._ragged_idx == to._ragged_idx
        np.testing.assert_allclose(_np(do.values()), _np(to.values()), atol=atol, rtol=rtol)
    else:
        np.testing.assert_allclose(_np(do), _np(to), atol=atol, rtol=rtol)
    np.testing.assert_allclose(_np(dg.values()), _np(tg.values()), atol=atol, rtol=rtol)
    for a, b in zip(dpg, tpg, strict=True):
        np.testing.assert_allclose(_np(a), _np(b), atol=atol, rtol=rtol)


LENS = (2, 3, 1)

CASES = {
    "unary_chain": (lambda L, x: L.tanh(x * 2 + 1).exp() - x.abs() / 3, ()),
    "activations": (
        lambda L, x: L.nn.functional.gelu(x) + L.relu(x) * L.sigmoid(x) + L.nn.functional.silu(x),
        (),
    ),  # fmt: skip
    "dense_last_dim": (lambda L, x, b: x * b + b, ((4,),)),
    "dense_per_seq": (lambda L, x, b: x + b, ((3, 1, 4),)),
    "dense_rows_of_one": (lambda L, x, b, c: x * b - c, ((1, 4), (1, 1, 4))),
    "dense_per_seq_heads": (
        lambda L, x, b: x.view(x.size(0), -1, 2, 2).transpose(1, 2) * b,
        ((3, 2, 1, 2),),
    ),
    "nested_nested": (lambda L, x: x * x.sin() + x / (x.cos() + 3), ()),
    "linear": (lambda L, x, w, b: L.nn.functional.linear(x, w, b), ((5, 4), (5,))),
    "matmul": (lambda L, x, w: L.matmul(x, w) @ w.T, ((4, 3),)),
    "layer_norm": (lambda L, x, w, b: L.nn.functional.layer_norm(x, (4,), w, b), ((4,), (4,))),
    "rms_norm": (lambda L, x, w: L.nn.functional.rms_norm(x, (4,), w, eps=1e-6), ((4,),)),
    "softmax_last": (lambda L, x: L.nn.functional.softmax(x, dim=-1), ()),
    "cat_last": (lambda L, x: L.cat([x, x * 2], dim=-1), ()),
    "view_heads": (lambda L, x: x.view(x.size(0), -1, 2, 2).transpose(1, 2).sin(), ()),
    "permute_heads": (lambda L, x: x.view(x.size(0), -1, 2, 2).permute(0, 2, 1, 3).exp(), ()),
    "reshape_back": (lambda L, x: x.reshape(x.size(0), -1, 2, 2).reshape(x.size(0), -1, 4) * 2, ()),
    "torch_functions": (
        lambda L, x: L.softmax(x, dim=-1) * L.erf(x) + L.clamp(x, -0.5, 0.5) + x.clamp(min=0),
        (),
    ),
    "where": (lambda L, x: L.where(x > 0, x, 0.0) + L.where(x < 0.5, x * 2, x.exp()), ()),
    "full_sum": (lambda L, x: (x * x).sum() + x.mean(), ()),
    "clone_to": (lambda L, x: x.clone().to(L.float64).to(L.float32) + x.detach(), ()),
}


# torch 2.13's NJT has no backward for these (aten._nested_sum_backward, the log_softmax and
# split backward raise), and its softmax over the ragged dim has wrong gradients (they differ
# from the dense per-sequence softmax's for lengths (2, 2, 2), (3, 2), (1, 1), ...; a length-1
# sequence gets a nonzero one, though softmax of one element is the constant 1). Values are
# checked against torch's NJT, gradients against torch's dense op on each sequence.
# name: (nested fn, dense fn on one sequence (n, D), output is nested)
PER_SEQUENCE = {
    "softmax_ragged": (
        lambda L, x: L.nn.functional.softmax(x, dim=1),
        lambda s: torch.softmax(s, 0),
        True,
    ),
    "log_softmax_ragged": (
        lambda L, x: L.nn.functional.log_softmax(x, dim=1),
        lambda s: torch.log_softmax(s, 0),
        True,
    ),
    "log_softmax_last": (lambda L, x: x.log_softmax(dim=2), lambda s: s.log_softmax(1), True),
    "sum_ragged": (lambda L, x: x.sum(dim=1), lambda s: s.sum(0), False),
    "mean_ragged": (lambda L, x: L.mean(x, dim=1), lambda s: s.mean(0), False),
    "sum_last": (lambda L, x: x.sum(dim=-1), lambda s: s.sum(-1), True),
    "mean_last_keepdim": (
        lambda L, x: x.mean(dim=-1, keepdim=True),
        lambda s: s.mean(-1, keepdim=True),
        True,
    ),
    "chunk_split": (
        lambda L, x: L.cat([x.chunk(2, dim=-1)[1], x.split(1, dim=-1)[0]], -1),
        lambda s: torch.cat([s.chunk(2, -1)[1], s.split(1, -1)[0]], -1),
        True,
    ),
}


@pytest.mark.parametrize("name", list(PER_SEQUENCE))
def test_per_sequence_ops_match_torch(name):
    fn, dense, nested_out = PER_SEQUENCE[name]
    seqs = _seqs(LENS)
    t = torch.nested.nested_tensor([torch.tensor(s) for s in seqs], layout=torch.jagged)
    d = ds.nested.nested_tensor([ds.tensor(s) for s in seqs], layout=ds.jagged,
                                requires_grad=True)  # fmt: skip
    out = fn(ds, d)
    assert out.is_nested == nested_out
    flat = out.values() if nested_out else out
    if name != "log_softmax_ragged":  # (torch refuses it: "not supported when reducing
        ref = fn(torch, t)  # along the ragged dimension"; descent computes it)
        ref_flat = ref.values() if nested_out else ref
        np.testing.assert_allclose(_np(flat), _np(ref_flat), atol=1e-6)
    w = np.random.default_rng(2).standard_normal(tuple(flat.shape)).astype(np.float32)
    (flat * ds.tensor(w)).sum().backward()
    ts = [torch.tensor(s, requires_grad=True) for s in seqs]
    outs = [dense(s) for s in ts]
    dense_out = torch.cat(outs) if nested_out else torch.stack(outs)
    np.testing.assert_allclose(_np(flat), _np(dense_out), atol=1e-6)
    (dense_out * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(_np(d.grad.values()), _np(torch.cat([s.grad for s in ts])),
                               atol=1e-5)  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_op_values_and_gradients_match_torch(name):
    fn, pshapes = CASES[name]
    rng = np.random.default_rng(3)
    params = [rng.standard_normal(s).astype(np.float32) for s in pshapes]
    _check(fn, _seqs(LENS), params)


def test_empty_sequence_matches_torch():
    """A sequence of length 0 (torch allows it) through per-token and per-sequence ops."""
    rng = np.random.default_rng(10)
    ws = [rng.standard_normal((8, 4)).astype(np.float32) * 0.5 for _ in range(3)]

    def fn(L, x, w1, w2, w3):
        F = L.nn.functional
        y = F.layer_norm(F.linear(x, w1), (8,))
        return F.softmax(y, dim=-1) + _sdpa(L, x, w1, w2, w3).reshape(x.size(0), -1, 8)

    _check(fn, _seqs((2, 0, 3)), ws)
    # the dense attention of an empty key sequence: its backward raised in descent's softmax
    # kernel (reshape(-1, 0) is ambiguous) before
    for lib in LIBS:
        q = lib.ones(2, 0, 4, requires_grad=True)
        lib.nn.functional.scaled_dot_product_attention(q, q, q).sum().backward()
        assert tuple(q.grad.shape) == (2, 0, 4)


def _sdpa(L, x, wq, wk, wv):
    F = L.nn.functional
    q, k, v = (F.linear(x, w).view(x.size(0), -1, 2, 4).transpose(1, 2) for w in (wq, wk, wv))
    return F.scaled_dot_product_attention(q, k, v).transpose(1, 2)


def test_sdpa_within_each_sequence_matches_torch():
    rng = np.random.default_rng(4)
    ws = [rng.standard_normal((8, 4)).astype(np.float32) * 0.5 for _ in range(3)]
    _check(_sdpa, _seqs((3, 1, 4)), ws)


def test_ragged_backward_finite_differences_float64():
    """softmax over the ragged dim, the ragged mean and attention: gradients of descent's
    float64 run against central differences."""
    rng = np.random.default_rng(5)
    ws = [rng.standard_normal((8, 4)) * 0.5 for _ in range(3)]
    seqs = [s.astype(np.float64) for s in _seqs((2, 3))]

    def loss(flat):
        vals = ds.tensor(flat.reshape(5, 4), dtype=ds.float64, requires_grad=True)
        nt = ds.nested.nested_tensor_from_jagged(vals, ds.tensor([0, 2, 5]))
        wt = [ds.tensor(w) for w in ws]
        out = _sdpa(ds, nt, *wt)
        out = ds.nn.functional.softmax(out, dim=1).mean(dim=1)
        return (out * ds.tensor(np.arange(4.0) + 1)).sum(), vals

    x0 = np.concatenate(seqs).reshape(-1)
    value, vals = loss(x0)
    value.backward()
    eps, num = 1e-6, np.zeros_like(x0)
    for i in range(x0.size):
        e = np.zeros_like(x0)
        e[i] = eps
        num[i] = (loss(x0 + e)[0].item() - loss(x0 - e)[0].item()) / (2 * eps)
    np.testing.assert_allclose(_np(vals.grad).reshape(-1), num, atol=1e-7, rtol=1e-6)


def test_modules_on_nested_match_torch():
    """nn.Linear / LayerNorm / GELU / Dropout (eval) / RMSNorm take a nested tensor as is."""
    seqs = _seqs(LENS)
    res = []
    for lib in LIBS:
        lib.manual_seed(0)
        nn = lib.nn
        m = nn.Sequential(nn.Linear(4, 6), nn.GELU(), nn.LayerNorm(6), nn.Dropout(0.5),
                          nn.Linear(6, 3), nn.RMSNorm(3))  # fmt: skip
        for layer, ref in zip(m, res[0][2] if res else [None] * 6):
            if ref is not None:  # descent's layers take torch's initial weights
                for p, q in zip(layer.parameters(), ref.parameters()):
                    p.data = lib.tensor(_np(q).copy())
        m.eval()
        nt = lib.nested.nested_tensor([lib.tensor(s) for s in seqs], layout=lib.jagged,
                                      requires_grad=True)  # fmt: skip
        out = m(nt)
        (
            out.values() * lib.tensor(np.arange(18.0, dtype=np.float32).reshape(6, 3))
        ).sum().backward()
        res.append((out.values(), nt.grad.values(), m, [p.grad for p in m.parameters()]))
    (to, tg, _, tp), (do, dg, _, dp) = res
    np.testing.assert_allclose(_np(do), _np(to), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(_np(dg), _np(tg), atol=1e-5, rtol=1e-5)
    for a, b in zip(dp, tp, strict=True):
        np.testing.assert_allclose(_np(a), _np(b), atol=1e-5, rtol=1e-5)
    # training dropout: a mask over the values, scaled by 1/(1-p), the same structure
    nt = ds.nested.nested_tensor([ds.ones(2, 4), ds.ones(3, 4)], layout=ds.jagged)
    y = ds.nn.functional.dropout(nt, 0.5)
    assert y.is_nested and y.shape[1] is nt.shape[1]
    assert set(np.unique(_np(y.values()))) <= {0.0, 2.0}


def test_metadata_and_printing():
    seqs = _seqs(LENS)
    t = torch.nested.nested_tensor([torch.tensor(s) for s in seqs], layout=torch.jagged)
    d = ds.nested.nested_tensor([ds.tensor(s) for s in seqs], layout=ds.jagged)
    assert d.is_nested and d.layout is ds.jagged and repr(d.layout) == "torch.jagged"
    assert d.dim() == t.dim() == 3
    assert (d.size(0), d.size(2), d.size(-1)) == (t.size(0), t.size(2), t.size(-1))
    assert repr(d.shape[1]).startswith("j") and str(t.shape[1]).startswith("j")
    assert d.shape[1] is d.size(1)
    with pytest.raises(RuntimeError, match="not an int"):
        int(d.size(1))
    assert d.lengths() is None and t.lengths() is None
    np.testing.assert_array_equal(_np(d.offsets()), _np(t.offsets()))
    np.testing.assert_array_equal(_np(d.values()), _np(t.values()))
    assert d.is_contiguous() and "offsets=tensor([0, 2, 5, 6])" in repr(d)
    assert repr(d).startswith("NestedTensor(size=(3, j")
    assert d.dtype == ds.float32 and not d.requires_grad
    # ops keep the nested int; a new offsets tensor gives a new one
    assert (d * 2).shape[1] is d.shape[1]
    d2 = ds.nested.nested_tensor([ds.tensor(s) for s in seqs], layout=ds.jagged)
    assert d2.shape[1] is not d.shape[1]
    with pytest.raises(RuntimeError, match="different structures"):
        d + d2
    assert ds.is_tensor(d) if hasattr(ds, "is_tensor") else isinstance(d, ds.Tensor)


def test_construction_forms_match_torch():
    seqs = _seqs(LENS)
    vals = np.concatenate(seqs)
    for lib in LIBS:
        pieces = [lib.tensor(s, requires_grad=True) for s in seqs]
        a = lib.nested.as_nested_tensor(pieces, layout=lib.jagged)
        (a.values() * 2).sum().backward()
        assert all(np.allclose(_np(p.grad), 2) for p in pieces)  # a view of its inputs
        v = lib.tensor(vals, requires_grad=True)
        off = lib.tensor([0, 2, 5, 6])
        nt = lib.nested.nested_tensor_from_jagged(v, off)
        names = (nt.grad_fn.name(), nt.values().grad_fn.name())
        assert names == ("NestedViewFromJaggedBackward0", "NestedGetValuesBackward0")
        assert nt.shape[1] is lib.nested.nested_tensor_from_jagged(v, off).shape[1]
        nt.sin().values().sum().backward()
        np.testing.assert_allclose(_np(v.grad), np.cos(vals), rtol=1e-6)
        nl = lib.nested.nested_tensor_from_jagged(lib.tensor(vals), lengths=lib.tensor([2, 3, 1]))
        np.testing.assert_array_equal(_np(nl.offsets()), [0, 2, 5, 6])
        dense = lib.nested.as_nested_tensor(lib.tensor(vals[:6].reshape(2, 3, 4)),
                                            layout=lib.jagged)  # fmt: skip
        np.testing.assert_array_equal(_np(dense.offsets()), [0, 3, 6])
        f64 = lib.nested.nested_tensor([lib.tensor(s) for s in seqs], layout=lib.jagged,
                                       dtype=lib.float64)  # fmt: skip
        assert f64.dtype == lib.float64
        one = lib.nested.nested_tensor([lib.tensor(seqs[0])], layout=lib.jagged)
        assert one.size(0) == 1 and tuple(one.to_padded_tensor(0.0).shape) == (1, 2, 4)
        vec = lib.nested.nested_tensor([lib.tensor([1.0, 2.0]), lib.tensor([3.0])],
                                       layout=lib.jagged)  # fmt: skip
        assert vec.dim() == 2


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda L: L.nested.nested_tensor([L.zeros(2, 4), L.zeros(3, 5)], layout=L.jagged),
         "single ragged dimension"),
        (lambda L: L.nested.nested_tensor([], layout=L.jagged), "empty tensor list"),
        (lambda L: L.nested.nested_tensor_from_jagged(L.zeros(4, 2)), "offsets or lengths"),
        (lambda L: L.nested.nested_tensor_from_jagged(L.zeros(4, 2), L.tensor([0, 4]),
                                                      jagged_dim=0), "jagged_dim >=1"),
        (lambda L: L.nested.narrow(L.zeros(2, 3), 0, 0, 1, layout=L.jagged), "only supports dim=1"),
        (lambda L: L.nested.narrow(L.zeros(2, 3), 1, 0.5, 1, layout=L.jagged), "start must be"),
        (lambda L: L.nested.as_nested_tensor(L.zeros(3), layout=L.jagged), "dim"),
    ],
)  # fmt: skip
def test_construction_errors_match_torch(call, match):
    for lib in LIBS:
        with pytest.raises((RuntimeError, ValueError), match=match):
            call(lib)


def test_strided_layout_points_to_jagged():
    with pytest.raises(NotImplementedError, match="layout=torch.jagged"):
        ds.nested.nested_tensor([ds.zeros(2, 3)])


def test_padding_round_trips_match_torch():
    rng = np.random.default_rng(6)
    padded = rng.standard_normal((3, 4)).astype(np.float32)
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=bool)
    out = []
    for lib in LIBS:
        x = lib.tensor(padded, requires_grad=True)
        nt = lib.nested.masked_select(x, lib.tensor(mask))
        big = lib.nested.to_padded_tensor(nt, -1.0, output_size=(3, 5))
        (big * lib.tensor(np.arange(15.0).reshape(3, 5).astype(np.float32))).sum().backward()
        out.append((nt.offsets(), nt.values(), big, x.grad))
    for a, b in zip(*out):
        np.testing.assert_allclose(_np(a), _np(b))
    # without output_size: descent pads to the longest sequence, (3, 4); torch 2.13 pads this
    # masked_select result to its total length (3, 6) (its max_seqlen is unknown there)
    back = ds.nested.to_padded_tensor(ds.nested.masked_select(ds.tensor(padded),
                                                              ds.tensor(mask)), -1.0)  # fmt: skip
    np.testing.assert_array_equal(_np(back), np.where(mask, padded, -1.0))
    seqs = _seqs((2, 0, 3))  # a sequence of length 0
    res = []
    for lib in LIBS:
        nt = lib.nested.nested_tensor([lib.tensor(s) for s in seqs], layout=lib.jagged)
        res.append((nt.offsets(), nt.to_padded_tensor(7.0), nt.sum(dim=1),
                    nt.to_padded_tensor(0.0, output_size=(3, 4, 4))))  # fmt: skip
    for a, b in zip(*res):
        np.testing.assert_allclose(_np(a), _np(b))


def test_narrow_is_non_contiguous_as_torch():
    rng = np.random.default_rng(7)
    base = rng.standard_normal((3, 5, 4)).astype(np.float32)
    out = []
    for lib in LIBS:
        b = lib.tensor(base, requires_grad=True)
        nt = lib.nested.narrow(b, 1, lib.tensor([0, 1, 2]), lib.tensor([2, 3, 1]),
                               layout=lib.jagged)  # fmt: skip
        assert not nt.is_contiguous()
        y = (nt * 3).sin() + 1  # (torch's NJT linear refuses non-contiguous input)
        parts = y.unbind()  # (torch's to_padded_tensor refuses tensors with holes)
        sum((u * (i + 1)).sum() for i, u in enumerate(parts)).backward()
        out.append((nt.offsets(), nt.lengths(), b.grad, *parts))
    for a, b in zip(*out, strict=True):
        np.testing.assert_allclose(_np(a), _np(b), atol=1e-5)


def test_transpose_is_non_contiguous_as_torch():
    seqs = _seqs(LENS, rest=(2, 4))
    res = []
    for lib in LIBS:
        nt = lib.nested.nested_tensor([lib.tensor(s) for s in seqs], layout=lib.jagged)
        t = nt.transpose(1, 2)
        assert not t.is_contiguous() and t._ragged_idx == 2
        assert tuple(t.values().shape) == (2, 6, 4)
        assert [tuple(u.shape) for u in t.unbind()] == [(2, 2, 4), (2, 3, 4), (2, 1, 4)]
        c = t.contiguous()
        assert c.is_contiguous() and c._ragged_idx == 2 and tuple(c.values().shape) == (2, 6, 4)
        res.append((t.to_padded_tensor(0.0), c.values()))
    for a, b in zip(*res, strict=True):
        np.testing.assert_allclose(_np(a), _np(b))


def test_batch_of_one_matches_torch():
    for name in ("linear", "layer_norm", "view_heads", "softmax_last"):
        fn, pshapes = CASES[name]
        rng = np.random.default_rng(16)
        _check(fn, _seqs((3,)), [rng.standard_normal(s).astype(np.float32) for s in pshapes])


class _Block:
    """A pre-norm encoder layer on (B, j, D) written once for both libraries."""

    def __init__(self, lib, params):
        self.L, self.p = lib, params

    def __call__(self, x, heads=2):
        L, p = self.L, self.p
        F = L.nn.functional
        B, D = x.size(0), x.size(-1)
        h = F.layer_norm(x, (D,), p["ln1_w"], p["ln1_b"])
        # (one (3D, D) weight applied in three slices: torch's NJT attention refuses the
        # non-contiguous q, k, v that chunk(3, dim=-1) of one projection makes)
        q, k, v = (F.linear(h, w, b) for w, b in zip(p["w_qkv"].chunk(3), p["b_qkv"].chunk(3)))
        q, k, v = (t.view(B, -1, heads, D // heads).transpose(1, 2) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, -1, D)
        x = x + F.linear(a, p["w_o"])
        h = F.rms_norm(x, (D,), p["ln2_w"], eps=1e-6)
        return x + F.linear(F.gelu(F.linear(h, p["w1"])), p["w2"])


def test_encoder_layer_matches_torch_njt_and_padded_dense():
    rng = np.random.default_rng(8)
    D = 8
    shapes = {"ln1_w": (D,), "ln1_b": (D,), "w_qkv": (3 * D, D), "b_qkv": (3 * D,),
              "w_o": (D, D), "ln2_w": (D,), "w1": (16, D), "w2": (D, 16)}  # fmt: skip
    init = {k: (rng.standard_normal(s) * 0.3).astype(np.float32) for k, s in shapes.items()}
    seqs = _seqs((3, 1, 5), rest=(D,), seed=9)
    res = {}
    for lib in LIBS:
        ps = {k: lib.tensor(v, requires_grad=True) for k, v in init.items()}
        nt = lib.nested.nested_tensor([lib.tensor(s) for s in seqs], layout=lib.jagged,
                                      requires_grad=True)  # fmt: skip
        out = _Block(lib, ps)(nt)
        loss = (out.values() ** 2).sum() + out.values()[:, 0].sum()
        loss.backward()
        res[lib.__name__] = (out.to_padded_tensor(0.0), nt.grad.values(),
                             [ps[k].grad for k in shapes])  # fmt: skip
    (to, tg, tp), (do, dg, dp) = res["torch"], res["descent"]
    np.testing.assert_allclose(_np(do), _np(to), atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(_np(dg), _np(tg), atol=1e-4, rtol=1e-4)
    for a, b in zip(dp, tp, strict=True):
        np.testing.assert_allclose(_np(a), _np(b), atol=1e-4, rtol=1e-4)
    # the padded + masked dense run of the same layer (torch) agrees on the real tokens
    lengths = [len(q) for q in seqs]
    S = max(lengths)
    x = torch.zeros(3, S, D)
    for b, q in enumerate(seqs):
        x[b, : len(q)] = torch.tensor(q)
    valid = torch.arange(S)[None, :] < torch.tensor(lengths)[:, None]  # (B, S)
    x.requires_grad_()
    ps = {k: torch.tensor(v, requires_grad=True) for k, v in init.items()}
    F = torch.nn.functional
    h = F.layer_norm(x, (D,), ps["ln1_w"], ps["ln1_b"])
    q, k, v = (F.linear(h, w, b) for w, b in zip(ps["w_qkv"].chunk(3), ps["b_qkv"].chunk(3)))
    q, k, v = (t.view(3, S, 2, 4).transpose(1, 2) for t in (q, k, v))
    a = F.scaled_dot_product_attention(q, k, v, attn_mask=valid[:, None, None, :])
    y = x + F.linear(a.transpose(1, 2).reshape(3, S, D), ps["w_o"])
    h = F.rms_norm(y, (D,), ps["ln2_w"], eps=1e-6)
    y = y + F.linear(F.gelu(F.linear(h, ps["w1"])), ps["w2"])
    real = y[valid]  # (sum of lengths, D): the NJT's values
    ((real**2).sum() + real[:, 0].sum()).backward()
    np.testing.assert_allclose(_np(do)[_np(valid)], _np(real), atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(_np(dg), _np(x.grad[valid]), atol=1e-4, rtol=1e-4)
    for name, g in zip(shapes, dp, strict=True):
        np.testing.assert_allclose(_np(g), _np(ps[name].grad), atol=1e-4, rtol=1e-4)


def _nt(lib):
    return lib.nested.nested_tensor([lib.ones(2, 4), lib.ones(3, 4)], layout=lib.jagged)


def _heads(lib):
    return _nt(lib).view(2, -1, 2, 2).transpose(1, 2)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda L: _nt(L).softmax(0), RuntimeError, "across the batch dimension"),
        (lambda L: _nt(L).sum(dim=0), RuntimeError, "batch dimension but not the ragged"),
        (lambda L: _nt(L).transpose(0, 1), ValueError, "not supported on the batch dimension"),
        (lambda L: L.cat([_nt(L), _nt(L)], dim=1), RuntimeError, "NestedTensor on ragged dim"),
        (lambda L: L.cat([_nt(L), _nt(L)], dim=0), RuntimeError, "NestedTensor on dim=0"),
        (lambda L: _nt(L).chunk(2, dim=1), RuntimeError, "NestedTensor on ragged dim"),
        (lambda L: _nt(L).split(1, dim=1), RuntimeError, "NestedTensor on ragged dim"),
        (lambda L: _nt(L).split(1, dim=0), RuntimeError, "NestedTensor on dim=0"),
        (lambda L: _nt(L).unbind(1), RuntimeError, "only supported for NestedTensor on dim=0"),
        (lambda L: _heads(L).permute(1, 0, 2, 3), ValueError, "Permute is not supported"),
        (lambda L: _nt(L).view(2, -1), RuntimeError, r"cannot view shape \(2, j\d+, 4\) as"),
        (lambda L: _nt(L) + _nt(L), RuntimeError, "binary pointwise function"),
        (lambda L: L.nn.functional.scaled_dot_product_attention(
            _heads(L), _heads(L), _heads(L), attn_mask=L.ones(2, 2, dtype=L.bool)),
         ValueError, "Masks are not yet supported"),
    ],
)  # fmt: skip
def test_errors_match_torch(call, exc, match):
    for lib in LIBS:
        with pytest.raises(exc, match=match):
            call(lib)


def test_batch_dim_chunk_split_and_token_sums_match_torch():
    seqs = _seqs((2, 3, 1, 2))
    res = []
    for lib in LIBS:
        nt = lib.nested.nested_tensor([lib.tensor(s) for s in seqs], layout=lib.jagged)
        parts = [*nt.chunk(2, dim=0), *nt.chunk(3, dim=0)]
        res.append([nt.sum(dim=(0, 1)), nt.mean(dim=(0, 1))]
                   + [q for p in parts for q in (p.offsets(), p.values())])  # fmt: skip
        assert [len(p) for p in parts] == [2, 2, 2, 2]
    for a, b in zip(*res, strict=True):
        np.testing.assert_allclose(_np(a), _np(b), atol=1e-6)


def test_unsupported_ops_raise_clearly(tmp_path):
    nt = ds.nested.nested_tensor([ds.zeros(2, 3), ds.zeros(1, 3)], layout=ds.jagged)
    with pytest.raises(RuntimeError, match="batch dim"):
        nt.softmax(dim=0)
    with pytest.raises(RuntimeError, match="ragged"):
        ds.nn.functional.layer_norm(nt.transpose(1, 2), (2,))
    with pytest.raises(NestedUnsupportedError, match="jagged nested tensor"):
        ds.nn.functional.conv1d(nt, ds.zeros(1, 1, 1))
    with pytest.raises(RuntimeError, match="broadcast"):
        nt + ds.zeros(5, 3, 3)
    with pytest.raises(RuntimeError, match="broadcast"):  # (3 tokens: not a per-token array)
        nt + ds.zeros(3, 3)
    with pytest.raises(TypeError, match="to_padded_tensor"):
        nt.numpy()
    with pytest.raises(TypeError, match=r"x.values\(\) and x.offsets\(\)"):
        ds.save({"nt": nt}, tmp_path / "nt.pt")


def test_cross_attention_with_different_lengths_matches_torch():
    """Query and key/value nested tensors of different structures (encoder-decoder)."""
    rng = np.random.default_rng(11)
    qs = [rng.standard_normal((n, 2, 4)).astype(np.float32) for n in (2, 3)]
    ks = [rng.standard_normal((n, 2, 4)).astype(np.float32) for n in (4, 1)]
    w = np.arange(40.0, dtype=np.float32).reshape(2, 5, 4) / 10
    res = []
    for lib in LIBS:
        q, k = (lib.nested.nested_tensor([lib.tensor(s) for s in ss], layout=lib.jagged,
                                         requires_grad=True) for ss in (qs, ks))  # fmt: skip
        kt = k.transpose(1, 2)
        o = lib.nn.functional.scaled_dot_product_attention(q.transpose(1, 2), kt, kt)
        (o.values() * lib.tensor(w)).sum().backward()
        res.append((o.values(), q.grad.values(), k.grad.values()))
    for a, b in zip(*res, strict=True):
        np.testing.assert_allclose(_np(a), _np(b), atol=1e-5, rtol=1e-5)


def test_double_backward_through_nested_linear_matches_dense():
    """create_graph=True through the nested views: the same second derivative as the dense
    computation on the packed values (torch, dense)."""
    seqs = _seqs((2, 1), rest=(3,))
    w0 = np.random.default_rng(12).standard_normal((3, 3)).astype(np.float32)
    x = ds.nested.nested_tensor([ds.tensor(s) for s in seqs], layout=ds.jagged)
    w = ds.tensor(w0, requires_grad=True)
    (g,) = ds.autograd.grad((ds.nn.functional.linear(x, w).tanh() ** 2).sum(), w,
                            create_graph=True)  # fmt: skip
    (g**2).sum().backward()
    tw = torch.tensor(w0, requires_grad=True)
    tx = torch.tensor(np.concatenate(seqs))
    (tg,) = torch.autograd.grad((torch.nn.functional.linear(tx, tw).tanh() ** 2).sum(), tw,
                                create_graph=True)  # fmt: skip
    (tg**2).sum().backward()
    np.testing.assert_allclose(_np(g), _np(tg), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(_np(w.grad), _np(tw.grad), atol=1e-4, rtol=1e-4)


def test_embedding_of_nested_token_ids_matches_torch():
    toks = [np.array([1, 2, 3]), np.array([4]), np.array([5, 6])]
    w0 = np.random.default_rng(13).standard_normal((8, 4)).astype(np.float32)
    wout = np.arange(24.0, dtype=np.float32).reshape(2, 6, 2) / 10
    res = []
    for lib in LIBS:
        nt = lib.nested.nested_tensor([lib.tensor(t) for t in toks], layout=lib.jagged)
        emb = lib.nn.Embedding(8, 4)
        emb.weight.data = lib.tensor(w0.copy())
        q = emb(nt).view(3, -1, 2, 2).transpose(1, 2)
        o = lib.nn.functional.scaled_dot_product_attention(q, q, q)
        (o.values() * lib.tensor(wout)).sum().backward()
        res.append((o.values(), emb.weight.grad))
    for a, b in zip(*res, strict=True):
        np.testing.assert_allclose(_np(a), _np(b), atol=1e-5, rtol=1e-5)


def test_causal_attention_per_sequence_matches_dense_torch():
    """is_causal=True within each sequence (torch 2.13's CPU NJT attention has no backend for
    it): against torch's dense causal attention of each sequence."""
    seqs = _seqs((3, 1, 2), rest=(2, 4), seed=14)
    d = ds.nested.nested_tensor([ds.tensor(s) for s in seqs], layout=ds.jagged,
                                requires_grad=True)  # fmt: skip
    q = d.transpose(1, 2)
    out = ds.nn.functional.scaled_dot_product_attention(q, q * 0.5, q, is_causal=True)
    w = np.random.default_rng(15).standard_normal((2, 6, 4)).astype(np.float32)
    (out.values() * ds.tensor(w)).sum().backward()
    ts = [torch.tensor(s, requires_grad=True) for s in seqs]
    outs = []
    for s in ts:
        t = s.transpose(0, 1)  # (H, n, E)
        outs.append(torch.nn.functional.scaled_dot_product_attention(t, t * 0.5, t,
                                                                     is_causal=True))  # fmt: skip
    dense = torch.cat(outs, dim=1)
    (dense * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(_np(out.values()), _np(dense), atol=1e-5)
    np.testing.assert_allclose(_np(d.grad.values()), _np(torch.cat([s.grad for s in ts])),
                               atol=1e-5)  # fmt: skip
