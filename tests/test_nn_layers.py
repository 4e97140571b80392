"""descent.nn layers against PyTorch (the oracle).

Each parity test builds the same layer in both libraries, copies torch's weights through
`state_dict` (as NumPy arrays), runs the same input, and compares the output, the input gradient
and every parameter gradient after backward of the same random upstream gradient (float32,
atol ~1e-5). Initialisation is checked against PyTorch's formulas by bounds and statistics.
"""

from __future__ import annotations

import copy
import math
import pathlib

import numpy as np
import pytest
import torch

import descent
import descent.nn.layers as layers
import descent.nn.module as module
from descent import nn

ATOL = 2e-5
RTOL = 1e-4

# torch 2.13 (the pinned oracle) has BatchNorm's bias= and prints it and LayerNorm's bias= in
# reprs; an older torch (a GPU machine's image) cannot be compared on those points.
TORCH_213 = pytest.mark.skipif(
    tuple(int(v) for v in torch.__version__.split(".")[:2]) < (2, 13),
    reason="needs torch >= 2.13's BatchNorm bias= and reprs (the pinned oracle)",
)


def _rng(seed=0):
    return np.random.default_rng(seed)


def copy_weights(ours: nn.Module, theirs: torch.nn.Module) -> None:
    """torch -> NumPy -> descent, through state_dict (the path a user would take)."""
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()})


def check_parity(ours, theirs, *inputs, atol=ATOL, rtol=RTOL, copy=True, grads=True):
    """Compare forward outputs and all gradients for float inputs (integer inputs pass as is)."""
    if copy:
        copy_weights(ours, theirs)
    t_in, d_in = [], []
    for a in inputs:
        is_float = a.dtype.kind == "f"
        t_in.append(torch.tensor(a, requires_grad=is_float and grads))
        d_in.append(descent.tensor(a, dtype=a.dtype, requires_grad=is_float and grads))
    ty = theirs(*t_in)
    dy = ours(*d_in)
    assert tuple(dy.shape) == tuple(ty.shape)
    np.testing.assert_allclose(dy.numpy(), ty.detach().numpy(), atol=atol, rtol=rtol)
    if not grads:
        return dy
    g = _rng(1).standard_normal(ty.shape).astype(np.float32)
    (ty * torch.from_numpy(g)).sum().backward()
    (dy * descent.tensor(g)).sum().backward()
    for t, d in zip(t_in, d_in):
        if t.requires_grad:
            np.testing.assert_allclose(d.grad.numpy(), t.grad.numpy(), atol=atol, rtol=rtol)
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        tp = tparams[name]
        if tp.grad is None:
            assert p.grad is None or np.all(p.grad.numpy() == 0), name
            continue
        np.testing.assert_allclose(
            p.grad.numpy(), tp.grad.numpy(), atol=atol * 10, rtol=rtol, err_msg=name
        )
    return dy


def randn(*shape, seed=0):
    return _rng(seed).standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Parity: forward and backward


@pytest.mark.parametrize("bias", [True, False])
def test_linear(bias):
    check_parity(nn.Linear(5, 3, bias=bias), torch.nn.Linear(5, 3, bias=bias), randn(2, 4, 5))


def test_bilinear():
    check_parity(nn.Bilinear(3, 4, 2), torch.nn.Bilinear(3, 4, 2), randn(5, 3), randn(5, 4, seed=1))


def test_embedding_padding_idx():
    ours, theirs = nn.Embedding(10, 4, padding_idx=2), torch.nn.Embedding(10, 4, padding_idx=2)
    idx = np.array([[1, 2, 3], [2, 9, 1]])
    check_parity(ours, theirs, idx)
    assert np.all(ours.weight.grad.numpy()[2] == 0)  # the padding row gets no gradient
    fresh = nn.Embedding(10, 4, padding_idx=-1)
    assert fresh.padding_idx == 9 and np.all(fresh.weight.numpy()[9] == 0)
    pre = nn.Embedding.from_pretrained(descent.ones(3, 2))
    assert not pre.weight.requires_grad and pre.weight.shape == (3, 2)
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(4, 2, padding_idx=4)


@pytest.mark.parametrize(
    "kwargs", [{}, {"bias": False}, {"elementwise_affine": False}, {"eps": 1e-3}]
)
def test_layer_norm(kwargs):
    ours, theirs = nn.LayerNorm(6, **kwargs), torch.nn.LayerNorm(6, **kwargs)
    with torch.no_grad():  # non-trivial affine parameters
        for p in theirs.parameters():
            p.copy_(torch.randn(p.shape))
    check_parity(ours, theirs, randn(3, 4, 6))


def test_layer_norm_2d_shape():
    check_parity(nn.LayerNorm((3, 4)), torch.nn.LayerNorm((3, 4)), randn(2, 3, 4))


@pytest.mark.parametrize("eps", [None, 1e-6])
def test_rms_norm(eps):
    ours, theirs = nn.RMSNorm(8, eps=eps), torch.nn.RMSNorm(8, eps=eps)
    with torch.no_grad():
        theirs.weight.copy_(torch.randn(8))
    check_parity(ours, theirs, randn(3, 8))
    check_parity(nn.RMSNorm(8, elementwise_affine=False),
                 torch.nn.RMSNorm(8, elementwise_affine=False), randn(2, 8))  # fmt: skip


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"stride": 2, "padding": 1},
        {"dilation": 2, "padding": 2, "bias": False},
        {"groups": 2},
        {"padding": "same"},
    ],
)
def test_conv1d(kwargs):
    ours, theirs = nn.Conv1d(4, 6, 3, **kwargs), torch.nn.Conv1d(4, 6, 3, **kwargs)
    check_parity(ours, theirs, randn(2, 4, 11))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"stride": 2, "padding": 1},
        {"stride": (1, 2), "padding": (2, 1), "dilation": (2, 1)},
        {"groups": 3, "bias": False},
        {"padding": "same"},
        {"padding": "valid"},
    ],
)
def test_conv2d(kwargs):
    ours, theirs = nn.Conv2d(3, 6, 3, **kwargs), torch.nn.Conv2d(3, 6, 3, **kwargs)
    check_parity(ours, theirs, randn(2, 3, 9, 8))


def test_conv2d_depthwise_rect_kernel():
    ours = nn.Conv2d(4, 8, (3, 2), groups=4, padding=(1, 0))
    theirs = torch.nn.Conv2d(4, 8, (3, 2), groups=4, padding=(1, 0))
    check_parity(ours, theirs, randn(1, 4, 6, 5))


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (nn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
        (nn.MaxPool2d(3, stride=2, padding=1), torch.nn.MaxPool2d(3, stride=2, padding=1)),
        (nn.AvgPool2d(2), torch.nn.AvgPool2d(2)),
        (nn.AvgPool2d(3, 2, 1), torch.nn.AvgPool2d(3, 2, 1)),
        (
            nn.AvgPool2d(3, 2, 1, count_include_pad=False),
            torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False),
        ),
        (nn.AdaptiveAvgPool2d(1), torch.nn.AdaptiveAvgPool2d(1)),
        (nn.AdaptiveAvgPool2d((3, 2)), torch.nn.AdaptiveAvgPool2d((3, 2))),
        (nn.Flatten(), torch.nn.Flatten()),
        (nn.Flatten(2, 3), torch.nn.Flatten(2, 3)),
        (nn.Unflatten(1, (1, 3)), torch.nn.Unflatten(1, (1, 3))),
        (nn.Identity(), torch.nn.Identity()),
    ],
    ids=lambda m: repr(m) if isinstance(m, nn.Module) else "",
)
def test_pooling_and_shape_layers(ours, theirs):
    check_parity(ours, theirs, randn(2, 3, 7, 8))
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (nn.ReLU(), torch.nn.ReLU()),
        (nn.GELU(), torch.nn.GELU()),
        (nn.GELU(approximate="tanh"), torch.nn.GELU(approximate="tanh")),
        (nn.SiLU(), torch.nn.SiLU()),
        (nn.Tanh(), torch.nn.Tanh()),
        (nn.Sigmoid(), torch.nn.Sigmoid()),
        (nn.LeakyReLU(), torch.nn.LeakyReLU()),
        (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
        (nn.ELU(), torch.nn.ELU()),
        (nn.ELU(alpha=0.5), torch.nn.ELU(alpha=0.5)),
        (nn.Softplus(), torch.nn.Softplus()),
        (nn.Softplus(beta=2.0, threshold=1.0), torch.nn.Softplus(beta=2.0, threshold=1.0)),
        (nn.Softmax(dim=-1), torch.nn.Softmax(dim=-1)),
        (nn.Softmax(dim=1), torch.nn.Softmax(dim=1)),
        (nn.LogSoftmax(dim=-1), torch.nn.LogSoftmax(dim=-1)),
        (nn.LogSoftmax(dim=0), torch.nn.LogSoftmax(dim=0)),
    ],
    ids=lambda m: repr(m) if isinstance(m, nn.Module) else "",
)
def test_activations(ours, theirs):
    x = randn(3, 4, 5) * 3
    check_parity(ours, theirs, x)
    assert repr(ours) == repr(theirs)


def test_activation_errors():
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("fast")
    with pytest.raises(ValueError, match="between 0 and 1"):  # torch's words
        nn.Dropout(1.5)


def test_float64_parity_after_module_double():
    ours, theirs = nn.Linear(4, 3), torch.nn.Linear(4, 3).double()
    ours.double()
    copy_weights(ours, theirs)
    x = _rng().standard_normal((2, 4))
    y = ours(descent.tensor(x, dtype=descent.float64))
    assert y.dtype == np.float64
    np.testing.assert_allclose(y.numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# BatchNorm and Dropout: train / eval


@TORCH_213
@pytest.mark.parametrize(
    "kwargs", [{}, {"momentum": None}, {"momentum": 0.3, "affine": False}, {"eps": 1e-3}]
)
@pytest.mark.parametrize("dims", [2, 3, 4])
def test_batch_norm_running_stats_match_torch(kwargs, dims):
    shape = {2: (8, 3), 3: (4, 3, 5), 4: (4, 3, 5, 2)}[dims]
    cls_ours = nn.BatchNorm2d if dims == 4 else nn.BatchNorm1d
    cls_theirs = torch.nn.BatchNorm2d if dims == 4 else torch.nn.BatchNorm1d
    ours, theirs = cls_ours(3, **kwargs), cls_theirs(3, **kwargs)
    if ours.affine:
        with torch.no_grad():
            theirs.weight.copy_(torch.randn(3))
            theirs.bias.copy_(torch.randn(3))
    copy_weights(ours, theirs)
    for step in range(3):  # a few training steps: batch statistics + running updates
        x = randn(*shape, seed=step) * 2 + 1
        check_parity(ours, theirs, x, copy=False)
        ours.zero_grad()
        theirs.zero_grad()
    for name in ["running_mean", "running_var"]:
        np.testing.assert_allclose(
            getattr(ours, name).numpy(), getattr(theirs, name).numpy(), rtol=1e-5, atol=1e-6
        )
    assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item() == 3
    assert ours.num_batches_tracked.dtype == np.int64
    ours.eval()
    theirs.eval()
    check_parity(ours, theirs, randn(*shape, seed=9), copy=False)
    assert ours.num_batches_tracked.item() == 3  # eval does not count batches
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)


def test_batch_norm_without_running_stats():
    ours = nn.BatchNorm1d(3, track_running_stats=False)
    theirs = torch.nn.BatchNorm1d(3, track_running_stats=False)
    assert ours.running_mean is None and list(ours.state_dict()) == ["weight", "bias"]
    ours.eval()
    theirs.eval()  # still uses batch statistics
    check_parity(ours, theirs, randn(6, 3))


def test_batch_norm_input_checks():
    with pytest.raises(ValueError, match="expected 4D"):
        nn.BatchNorm2d(3)(descent.ones(2, 3))
    with pytest.raises(ValueError, match="channels"):
        nn.BatchNorm1d(3)(descent.ones(2, 4))


def test_dropout_train_and_eval():
    descent.manual_seed(0)
    drop = nn.Dropout(p=0.25)
    x = descent.ones(200, 100, requires_grad=True)
    y = drop(x)
    a = y.numpy()
    frac = float(np.mean(a == 0))
    assert abs(frac - 0.25) < 0.02
    np.testing.assert_allclose(a[a != 0], 1 / 0.75)  # survivors are rescaled
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), a)  # the same mask in backward
    drop.eval()
    assert drop(x) is x or np.array_equal(drop(x).numpy(), x.numpy())
    assert np.array_equal(nn.Dropout(0.0)(x).numpy(), x.numpy())
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    model.eval()
    assert not model[1].training
    out1, out2 = model(descent.ones(4, 3)), model(descent.ones(4, 3))
    np.testing.assert_array_equal(out1.numpy(), out2.numpy())  # deterministic in eval mode


# ---------------------------------------------------------------------------------------------
# Attention


def _mha_pair(e=8, h=2, **kw):
    ours = nn.MultiheadAttention(e, h, **kw)
    theirs = torch.nn.MultiheadAttention(e, h, **kw)
    with torch.no_grad():  # non-zero biases so that they are tested
        for name, p in theirs.named_parameters():
            if "bias" in name:
                p.copy_(torch.randn(p.shape) * 0.1)
    copy_weights(ours, theirs)
    return ours, theirs


def _mha_compare(ours, theirs, q, k, v, atol=ATOL, **kw):
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    if q is k and k is v:
        tk = tv = tq
    dq, dk, dv = (descent.tensor(a, requires_grad=True) for a in (q, k, v))
    if q is k and k is v:
        dk = dv = dq
    tkw = {key: (torch.tensor(val) if isinstance(val, np.ndarray) else val)
           for key, val in kw.items()}  # fmt: skip
    dkw = {key: (descent.tensor(val, dtype=val.dtype) if isinstance(val, np.ndarray) else val)
           for key, val in kw.items()}  # fmt: skip
    ty, tw = theirs(tq, tk, tv, **tkw)
    dy, dw = ours(dq, dk, dv, **dkw)
    np.testing.assert_allclose(dy.numpy(), ty.detach().numpy(), atol=atol, rtol=RTOL)
    if tw is None:
        assert dw is None
    else:
        np.testing.assert_allclose(dw.numpy(), tw.detach().numpy(), atol=atol, rtol=RTOL)
    g = randn(*ty.shape, seed=5)
    (ty * torch.from_numpy(g)).sum().backward()
    (dy * descent.tensor(g)).sum().backward()
    np.testing.assert_allclose(dq.grad.numpy(), tq.grad.numpy(), atol=atol * 5, rtol=RTOL)
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(
            p.grad.numpy(), tparams[name].grad.numpy(), atol=atol * 10, rtol=RTOL, err_msg=name
        )


def test_mha_parameter_names_match_torch():
    ours, theirs = _mha_pair()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    ours_nb = nn.MultiheadAttention(8, 2, bias=False)
    theirs_nb = torch.nn.MultiheadAttention(8, 2, bias=False)
    assert list(ours_nb.state_dict()) == list(theirs_nb.state_dict())


def test_mha_self_attention_seq_first():
    ours, theirs = _mha_pair()
    x = randn(5, 3, 8)  # (L, N, E)
    _mha_compare(ours, theirs, x, x, x)


def test_mha_cross_attention_batch_first_masks():
    ours, theirs = _mha_pair(batch_first=True)
    q, kv = randn(2, 4, 8, seed=1), randn(2, 6, 8, seed=2)
    kpm = np.zeros((2, 6), dtype=bool)
    kpm[0, 4:] = True  # the last two keys of batch 0 are padding
    attn_mask = np.zeros((4, 6), dtype=bool)
    attn_mask[0, :2] = True
    _mha_compare(ours, theirs, q, kv, kv, key_padding_mask=kpm, attn_mask=attn_mask)
    _mha_compare(ours, theirs, q, kv, kv, average_attn_weights=False)
    _mha_compare(ours, theirs, q, kv, kv, need_weights=False)


def test_mha_float_and_causal_masks():
    ours, theirs = _mha_pair(batch_first=True)
    x = randn(2, 5, 8, seed=3)
    float_mask = randn(5, 5, seed=4)
    _mha_compare(ours, theirs, x, x, x, attn_mask=float_mask)
    causal = np.triu(np.ones((5, 5), dtype=bool), k=1)
    # torch needs the mask itself when is_causal=True; descent builds it when omitted.
    tq = torch.tensor(x)
    ty, _ = theirs(tq, tq, tq, attn_mask=torch.tensor(causal), is_causal=True)
    dx = descent.tensor(x)
    dy, _ = ours(dx, dx, dx, is_causal=True)
    np.testing.assert_allclose(dy.numpy(), ty.detach().numpy(), atol=ATOL, rtol=RTOL)
    mask3 = np.repeat(causal[None], 2 * 2, axis=0)  # (N * H, L, S)
    _mha_compare(ours, theirs, x, x, x, attn_mask=mask3)


def test_mha_unbatched_and_no_bias():
    ours, theirs = _mha_pair(bias=False)
    x = randn(4, 8, seed=6)  # (L, E)
    _mha_compare(ours, theirs, x, x, x)


def test_mha_errors():
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiheadAttention(10, 3)
    m = nn.MultiheadAttention(8, 2, kdim=4)  # supported since 2026-12-04 (tests below)
    assert m.k_proj_weight.shape == (8, 4) and m.in_proj_weight is None


class TorchCausalSelfAttention(torch.nn.Module):
    """nanoGPT's CausalSelfAttention (model.py), the reference."""

    def __init__(self, n_embd, n_head, bias):
        super().__init__()
        self.c_attn = torch.nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = torch.nn.Linear(n_embd, n_embd, bias=bias)
        self.attn_dropout = torch.nn.Dropout(0.0)
        self.resid_dropout = torch.nn.Dropout(0.0)
        self.n_head, self.n_embd = n_head, n_embd

    def forward(self, x):
        b, t, c = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q = q.view(b, t, self.n_head, c // self.n_head).transpose(1, 2)
        k = k.view(b, t, self.n_head, c // self.n_head).transpose(1, 2)
        v = v.view(b, t, self.n_head, c // self.n_head).transpose(1, 2)
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(b, t, c)
        return self.resid_dropout(self.c_proj(y))


@pytest.mark.parametrize("bias", [True, False])
def test_causal_self_attention_matches_nanogpt(bias):
    ours = nn.CausalSelfAttention(16, 4, dropout=0.0, bias=bias)
    theirs = TorchCausalSelfAttention(16, 4, bias)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    check_parity(ours, theirs, randn(2, 6, 16))
    # Causality: changing a later token does not change earlier outputs.
    x = randn(1, 6, 16)
    y1 = ours(descent.tensor(x)).numpy()
    x[0, 4:] += 1.0
    y2 = ours(descent.tensor(x)).numpy()
    np.testing.assert_allclose(y1[0, :4], y2[0, :4], atol=1e-6)
    assert not np.allclose(y1[0, 4:], y2[0, 4:])


def test_causal_self_attention_config_form_and_dropout():
    class Config:
        n_embd, n_head, dropout, bias = 8, 2, 0.5, False

    m = nn.CausalSelfAttention(Config())
    assert m.n_head == 2 and m.c_attn.bias is None and m.dropout == 0.5
    assert m.attn_dropout.p == 0.5 and m.resid_dropout.p == 0.5
    x = descent.randn(2, 3, 8)
    m.eval()
    np.testing.assert_array_equal(m(x).numpy(), m(x).numpy())  # no dropout in eval
    m.train()
    descent.manual_seed(1)
    a = m(x).numpy()
    assert np.any(a == 0)  # resid_dropout zeroes outputs in training mode
    with pytest.raises(ValueError, match="divisible"):
        nn.CausalSelfAttention(10, 3)


# ---------------------------------------------------------------------------------------------
# Initialisation, defaults and repr


def test_linear_and_conv_init_bounds():
    descent.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w = lin.weight.numpy()
    assert w.min() >= -bound and w.max() <= bound and w.max() > 0.99 * bound
    assert w.var() == pytest.approx(bound**2 / 3, rel=0.03)
    b = lin.bias.numpy()
    assert b.min() >= -bound and b.max() <= bound
    conv = nn.Conv2d(16, 32, 5, groups=4)
    fan_in = 16 // 4 * 25
    assert conv.weight.shape == (32, 4, 5, 5)
    cb = 1 / math.sqrt(fan_in)
    cw = conv.weight.numpy()
    assert cw.min() >= -cb and cw.max() <= cb and cw.var() == pytest.approx(cb**2 / 3, rel=0.08)
    assert np.abs(conv.bias.numpy()).max() <= cb
    c1 = nn.Conv1d(3, 4, 5)
    assert c1.weight.shape == (4, 3, 5) and np.abs(c1.weight.numpy()).max() <= 1 / math.sqrt(15)


def test_embedding_norm_and_mha_init():
    descent.manual_seed(0)
    emb = nn.Embedding(500, 64)
    assert emb.weight.numpy().std() == pytest.approx(1.0, rel=0.03)
    ln = nn.LayerNorm(5)
    assert np.all(ln.weight.numpy() == 1) and np.all(ln.bias.numpy() == 0)
    bn = nn.BatchNorm2d(4)
    assert np.all(bn.running_var.numpy() == 1) and np.all(bn.running_mean.numpy() == 0)
    assert bn.num_batches_tracked.item() == 0
    mha = nn.MultiheadAttention(64, 4)
    bound = math.sqrt(6 / (64 + 3 * 64))  # xavier_uniform_ on (3E, E)
    w = mha.in_proj_weight.numpy()
    assert w.shape == (192, 64) and np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
    assert np.all(mha.in_proj_bias.numpy() == 0) and np.all(mha.out_proj.bias.numpy() == 0)
    assert np.abs(mha.out_proj.weight.numpy()).max() <= 1 / 8  # Linear's default init


@TORCH_213
def test_parameter_shapes_and_names_match_torch():
    pairs = [
        (nn.Linear(3, 2), torch.nn.Linear(3, 2)),
        (nn.Embedding(5, 3, padding_idx=1), torch.nn.Embedding(5, 3, padding_idx=1)),
        (nn.LayerNorm(4, bias=False), torch.nn.LayerNorm(4, bias=False)),
        (nn.RMSNorm(4), torch.nn.RMSNorm(4)),
        (nn.Conv2d(4, 6, 3, groups=2), torch.nn.Conv2d(4, 6, 3, groups=2)),
        (nn.Conv1d(2, 3, 4, bias=False), torch.nn.Conv1d(2, 3, 4, bias=False)),
        (nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)),
        (nn.Bilinear(2, 3, 4), torch.nn.Bilinear(2, 3, 4)),
    ]
    for ours, theirs in pairs:
        ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
        assert list(ours_sd) == list(theirs_sd)
        for k in ours_sd:
            assert tuple(ours_sd[k].shape) == tuple(theirs_sd[k].shape), k
        assert repr(ours) == repr(theirs)
        assert ours.num_parameters() == sum(p.numel() for p in theirs.parameters())


@TORCH_213
def test_layer_reprs_match_torch():
    pairs = [
        (nn.Conv2d(3, 8, 3, stride=2, padding=1, dilation=2, groups=1, bias=False),
         torch.nn.Conv2d(3, 8, 3, stride=2, padding=1, dilation=2, bias=False)),
        (nn.Conv2d(4, 4, (3, 1), padding="same", groups=2),
         torch.nn.Conv2d(4, 4, (3, 1), padding="same", groups=2)),
        (nn.Dropout(0.1), torch.nn.Dropout(0.1)),
        (nn.ReLU(inplace=True), torch.nn.ReLU(inplace=True)),
        (nn.LayerNorm((2, 3), eps=1e-6), torch.nn.LayerNorm((2, 3), eps=1e-6)),
        (nn.RMSNorm(3, eps=1e-6), torch.nn.RMSNorm(3, eps=1e-6)),
        (nn.Sequential(nn.Linear(2, 3), nn.GELU(), nn.Dropout(0.0)),
         torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.GELU(), torch.nn.Dropout(0.0))),
    ]  # fmt: skip
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)


def test_layer_argument_errors():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 6, 3, groups=2)
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(3, 6, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(3, 6, 3, padding_mode="mirror")  # 'reflect' works: tests/test_compat_fixes.py
    with pytest.raises(ValueError, match="kernel_size"):
        nn.Conv2d(3, 6, (3, 3, 3))


def test_factory_dtype_and_state_dict_from_torch_model():
    lin = nn.Linear(3, 2, dtype=descent.float64)
    assert lin.weight.dtype == np.float64 and lin.bias.dtype == np.float64
    # A whole small torch CNN's state_dict loads and the outputs agree.
    ours = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * 4 * 4, 10),
    )  # fmt: skip
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 10),
    )  # fmt: skip
    check_parity(ours, theirs, randn(3, 1, 8, 8))
    ours.eval()
    theirs.eval()
    check_parity(ours, theirs, randn(2, 1, 8, 8, seed=3), copy=False, grads=False)


def test_container_reprs_match_torch():
    ours = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.ReLU(), nn.Linear(2, 3)])
    theirs = torch.nn.ModuleList(
        [torch.nn.Linear(2, 2) for _ in range(3)] + [torch.nn.ReLU(), torch.nn.Linear(2, 3)]
    )
    assert repr(ours) == repr(theirs)
    assert repr(nn.ModuleList()) == repr(torch.nn.ModuleList())
    assert repr(nn.MultiheadAttention(8, 2)) == repr(torch.nn.MultiheadAttention(8, 2))
    ours_d = nn.ModuleDict({"a": nn.Linear(1, 1), "b": nn.Sequential(nn.Tanh())})
    theirs_d = torch.nn.ModuleDict(
        {"a": torch.nn.Linear(1, 1), "b": torch.nn.Sequential(torch.nn.Tanh())}
    )
    assert repr(ours_d) == repr(theirs_d)


@TORCH_213
def test_batch_norm_bias_false():
    ours, theirs = nn.BatchNorm1d(3, bias=False), torch.nn.BatchNorm1d(3, bias=False)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    check_parity(ours, theirs, randn(5, 3))


# ---------------------------------------------------------------------------------------------
# Devices: the same layers on CuPy (skipped without a GPU) give the CPU's numbers


def _device_of(xp):
    return "cpu" if xp is np else "cuda"


def test_layers_on_device_match_cpu(xp):
    device = _device_of(xp)
    descent.manual_seed(0)
    cnn = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * 3 * 3, 5), nn.LayerNorm(5),
    )  # fmt: skip
    attn = nn.Sequential(nn.CausalSelfAttention(8, 2), nn.GELU(), nn.RMSNorm(8))
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    emb = nn.Embedding(7, 8, padding_idx=0)
    x_img, x_seq = randn(3, 2, 6, 6), randn(2, 5, 8, seed=1)
    idx = np.array([[0, 3, 6, 2, 1]])
    cases = [
        (cnn, lambda m, d: m(descent.tensor(x_img, device=d))),
        (attn, lambda m, d: m(descent.tensor(x_seq, device=d))),
        (mha, lambda m, d: m(*[descent.tensor(x_seq, device=d)] * 3)[0]),
        (emb, lambda m, d: m(descent.tensor(idx, device=d))),
    ]
    for model, run in cases:
        moved = copy.deepcopy(model)
        params = list(moved.parameters())
        moved.to(device)
        assert [id(p) for p in moved.parameters()] == [id(p) for p in params]
        assert all(p.device.startswith(device) for p in moved.parameters())
        assert all(b.device.startswith(device) for b in moved.buffers())
        y_cpu, y_dev = run(model, "cpu"), run(moved, device)
        assert y_dev.device.startswith(device)
        np.testing.assert_allclose(y_dev.numpy(), y_cpu.numpy(), atol=1e-5, rtol=1e-4)
        y_cpu.sum().backward()
        y_dev.sum().backward()
        for (name, p), q in zip(model.named_parameters(), moved.parameters()):
            assert q.grad.device.startswith(device), name
            np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), atol=1e-4, rtol=1e-4)
        # state_dict from the device loads on the CPU and back.
        model.load_state_dict(moved.state_dict())
        moved.load_state_dict(model.state_dict())
    moved_bn = copy.deepcopy(cnn[1]).to(device)
    for name in ["running_mean", "running_var"]:
        np.testing.assert_allclose(getattr(moved_bn, name).numpy(), getattr(cnn[1], name).numpy())
    assert moved_bn.num_batches_tracked.dtype == np.int64


def test_init_on_device(xp):
    device = _device_of(xp)
    w = descent.empty(64, 32, device=device)
    nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=descent.Generator(0, device=device))
    assert w.device.startswith(device)
    assert np.abs(w.numpy()).max() <= 1 / math.sqrt(32)
    nn.init.trunc_normal_(w, std=0.02, a=-0.04, b=0.04)
    assert w.device.startswith(device) and np.abs(w.numpy()).max() <= 0.04
    lin = nn.Linear(3, 2, device=device)
    assert lin.weight.device.startswith(device) and lin.bias.device.startswith(device)


# ---------------------------------------------------------------------------------------------
# The public surface of descent.nn, recorded before layers.py and module.py were split into
# one file per concept (as torch.nn.modules): no name may go missing, and the old import paths
# `descent.nn.layers.X` and `descent.nn.module.X` still give the same objects.

NN_NAMES_BEFORE_SPLIT = (
    "functional init Module Parameter Sequential ModuleList ModuleDict RemovableHandle "
    "MultiheadAttention CausalSelfAttention"
).split()
LAYER_NAMES_BEFORE_SPLIT = (
    "Identity Linear Bilinear Embedding LayerNorm RMSNorm BatchNorm1d BatchNorm2d Dropout Conv1d "
    "Conv2d MaxPool2d AvgPool2d AdaptiveAvgPool2d Flatten Unflatten ReLU GELU SiLU Tanh Sigmoid "
    "LeakyReLU ELU Softplus Softmax LogSoftmax"
).split()


def test_nn_public_names_survive_the_split():
    assert len(nn.__all__) == len(set(nn.__all__)), "a name is exported twice"
    missing = sorted(set(NN_NAMES_BEFORE_SPLIT + LAYER_NAMES_BEFORE_SPLIT) - set(nn.__all__))
    assert not missing
    for name in nn.__all__:
        assert getattr(nn, name) is not None, name
    assert sorted(layers.__all__) == sorted(LAYER_NAMES_BEFORE_SPLIT)
    for name in LAYER_NAMES_BEFORE_SPLIT:
        assert getattr(layers, name) is getattr(nn, name), name
    for name in ["Module", "RemovableHandle", "Sequential", "ModuleList", "ModuleDict"]:
        assert getattr(module, name) is getattr(nn, name), name
    ns: dict = {}
    exec("from descent.nn import *", ns)
    assert set(NN_NAMES_BEFORE_SPLIT + LAYER_NAMES_BEFORE_SPLIT) <= set(ns)


def test_nn_files_stay_under_700_lines():
    # A file past 700 lines mixes concepts (issue 11); split it along them instead.
    root = pathlib.Path(nn.__file__).parent
    long = {}
    for path in sorted(root.rglob("*.py")):
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > 700:
            long[str(path.relative_to(root))] = n
    assert not long, f"split these along their concepts: {long}"


@pytest.mark.parametrize("kw", [
    {"add_bias_kv": True}, {"add_zero_attn": True}, {"kdim": 6, "vdim": 5},
    {"kdim": 6, "vdim": 5, "add_bias_kv": True, "add_zero_attn": True, "batch_first": True},
    {"add_bias_kv": True, "bias": False},
])  # fmt: skip
def test_multihead_attention_general_options_match_torch(kw):
    E, H = 8, 2
    d = descent.nn.MultiheadAttention(E, H, **kw)
    t = torch.nn.MultiheadAttention(E, H, **kw)
    assert list(d.state_dict()) == list(t.state_dict())
    t.load_state_dict({k: torch.tensor(v.numpy()) for k, v in d.state_dict().items()})
    rng = np.random.default_rng(0)
    bf = kw.get("batch_first", False)
    shape = lambda n, e: (2, n, e) if bf else (n, 2, e)  # noqa: E731
    q = rng.standard_normal(shape(3, E)).astype(np.float32)
    k = rng.standard_normal(shape(4, kw.get("kdim", E))).astype(np.float32)
    v = rng.standard_normal(shape(4, kw.get("vdim", E))).astype(np.float32)
    mask = np.array([[False, False, True, False], [False, False, False, False]])
    dq = descent.tensor(q, requires_grad=True)
    tq = torch.tensor(q, requires_grad=True)
    do, dw = d(dq, descent.tensor(k), descent.tensor(v), key_padding_mask=descent.tensor(mask))
    to, tw = t(tq, torch.tensor(k), torch.tensor(v), key_padding_mask=torch.tensor(mask))
    np.testing.assert_allclose(do.detach().numpy(), to.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dw.detach().numpy(), tw.detach().numpy(), rtol=1e-5, atol=1e-6)
    do.sum().backward()
    to.sum().backward()
    np.testing.assert_allclose(dq.grad.numpy(), tq.grad.numpy(), rtol=1e-4, atol=1e-5)
