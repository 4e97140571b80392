"""descent.nn.functional against PyTorch (float32) and finite differences (float64):
activations, linear, embedding, dropout, attention, normalisation layers, pad, one_hot,
normalize/cosine_similarity, and higher-order gradients through the fused ops."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import descent as ds
import descent.nn.functional as F
from descent.autograd import Function
from specs.nn import gradcheck64, np_sdpa, torch_compare
from specs.nn_gaps_signatures import NN_GAPS_SIGNATURES

RNG = np.random.default_rng(0)


def rnd(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Activations under PyTorch's names and signatures

ACTS = [
    ("relu", lambda f, x: f.relu(x)),
    ("gelu", lambda f, x: f.gelu(x)),
    ("gelu_tanh", lambda f, x: f.gelu(x, approximate="tanh")),
    ("silu", lambda f, x: f.silu(x)),
    ("tanh", lambda f, x: f.tanh(x)),
    ("sigmoid", lambda f, x: f.sigmoid(x)),
    ("softmax", lambda f, x: f.softmax(x, dim=1)),
    ("log_softmax", lambda f, x: f.log_softmax(x, dim=0)),
    ("leaky_relu", lambda f, x: f.leaky_relu(x, 0.2)),
    ("elu", lambda f, x: f.elu(x, alpha=0.7)),
    ("softplus", lambda f, x: f.softplus(x, beta=2.0, threshold=3.0)),
    ("logsigmoid", lambda f, x: f.logsigmoid(x)),
    ("hardtanh", lambda f, x: f.hardtanh(x, -0.5, 0.8)),
    ("relu6", lambda f, x: f.relu6(x * 4)),
]


@pytest.mark.parametrize("name,act", ACTS, ids=[a[0] for a in ACTS])
def test_activations_match_torch(name, act):
    x = rnd(3, 5, scale=2.0)
    x = np.where(np.abs(x) < 0.05, 0.3, x)  # away from kinks at 0
    torch_compare(lambda t: act(F, t), lambda t: act(TF, t), [x])


def test_logsigmoid_finite_at_large_inputs():
    x = np.array([-1e4, -50.0, 0.0, 50.0, 1e4], np.float32)
    torch_compare(F.logsigmoid, TF.logsigmoid, [x])


# ---------------------------------------------------------------------------------------------
# Linear and embedding


def test_linear_matches_torch_for_batched_inputs_and_no_bias():
    torch_compare(F.linear, TF.linear, [rnd(2, 3, 4), rnd(5, 4), rnd(5)], fwd_atol=1e-5)
    torch_compare(F.linear, TF.linear, [rnd(4), rnd(5, 4)], fwd_atol=1e-5)
    # a non-contiguous input (a transposed view)
    torch_compare(
        lambda x, w: F.linear(x.transpose(0, 1), w),
        lambda x, w: TF.linear(x.transpose(0, 1), w),
        [rnd(3, 2, 4), rnd(5, 4)],
        fwd_atol=1e-5,
    )


@pytest.mark.parametrize(
    "x_shape,w_shape",
    [((3, 0), (2, 0)), ((3, 2), (0, 2)), ((4, 0), (0, 0)), ((2, 5, 0), (3, 0)), ((0, 3), (2, 3))],
    ids=["in0", "out0", "both0", "batched-in0", "rows0"],
)
def test_linear_with_zero_features_matches_torch(x_shape, w_shape):
    # nn.Linear(0, n) (an empty feature group) and nn.Linear(n, 0): the output is the bias
    # (or empty), gradients are zeros or empty, as PyTorch's; reshape(-1, 0) cannot fold these
    b = rnd(w_shape[0])
    torch_compare(F.linear, TF.linear, [rnd(*x_shape), rnd(*w_shape), b])
    torch_compare(F.linear, TF.linear, [rnd(*x_shape), rnd(*w_shape)])
    x = ds.tensor(rnd(*x_shape), requires_grad=True)
    w = ds.tensor(rnd(*w_shape), requires_grad=True)
    (g,) = ds.autograd.grad((F.linear(x, w, ds.tensor(b)) ** 2).sum(), [w], create_graph=True)
    assert tuple(g.shape) == w_shape  # the backward folds Tensors too (create_graph)


def test_linear_second_order_and_shape_error():
    gradcheck64(
        lambda x, w, b: (F.linear(x, w, b) ** 2).sum(),
        [RNG.standard_normal((2, 3)), RNG.standard_normal((4, 3)), RNG.standard_normal(4)],
        second_order=True,
    )
    with pytest.raises(ValueError, match="in_features"):
        F.linear(ds.ones(2, 3), ds.ones(4, 5))


def test_embedding_matches_torch_with_repeats_and_padding_idx():
    idx = np.array([[1, 3, 0, 3], [4, 4, 4, 2]])
    torch_compare(
        lambda w: F.embedding(ds.tensor(idx), w),
        lambda w: TF.embedding(torch.tensor(idx), w),
        [rnd(6, 3)],
    )
    torch_compare(
        lambda w: F.embedding(ds.tensor(idx), w, padding_idx=4),
        lambda w: TF.embedding(torch.tensor(idx), w, padding_idx=4),
        [rnd(6, 3)],
    )
    torch_compare(
        lambda w: F.embedding(ds.tensor(idx), w, padding_idx=-2),
        lambda w: TF.embedding(torch.tensor(idx), w, padding_idx=-2),
        [rnd(6, 3)],
    )


def test_embedding_large_vocabulary_scatter_path():
    idx = RNG.integers(0, 3000, (40, 40))  # vocab * tokens > 2^22: the scatter-add branch
    torch_compare(
        lambda w: F.embedding(ds.tensor(idx), w),
        lambda w: TF.embedding(torch.tensor(idx), w),
        [rnd(3000, 2)],
    )


def test_embedding_second_order_and_errors():
    idx = ds.tensor(np.array([0, 2, 2]))
    gradcheck64(
        lambda w: (F.embedding(idx, w) ** 2).sum(), [RNG.standard_normal((3, 2))], second_order=True
    )
    with pytest.raises(IndexError, match="out of range"):
        F.embedding(ds.tensor(np.array([5])), ds.ones(3, 2))
    with pytest.raises(TypeError, match="integers"):
        F.embedding(ds.tensor([0.0]), ds.ones(3, 2))


# ---------------------------------------------------------------------------------------------
# Dropout


def test_dropout_scaling_statistics_and_modes():
    x = ds.ones(200, 100)
    y = F.dropout(x, 0.3, generator=ds.Generator(1))
    vals = np.unique(y.numpy())
    np.testing.assert_allclose(vals, [0.0, 1 / 0.7], rtol=1e-6)  # inverted scaling
    assert abs((y.numpy() == 0).mean() - 0.3) < 0.01
    assert F.dropout(x, 0.3, training=False) is x
    assert F.dropout(x, 0.0) is x
    assert (F.dropout(x, 1.0).numpy() == 0).all()
    with pytest.raises(ValueError, match="probability"):
        F.dropout(x, 1.5)


def test_dropout_generator_reproducible_and_gradient_uses_the_mask():
    x = ds.tensor(rnd(4, 5), requires_grad=True)
    a = F.dropout(x, 0.5, generator=ds.Generator(7))
    b = F.dropout(x, 0.5, generator=ds.Generator(7))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    ds.manual_seed(3)
    c = F.dropout(x, 0.5)
    ds.manual_seed(3)
    d = F.dropout(x, 0.5)
    np.testing.assert_array_equal(c.numpy(), d.numpy())
    a.sum().backward()
    mask = a.numpy() / np.where(x.numpy() == 0, 1, x.numpy())
    np.testing.assert_allclose(x.grad.numpy(), mask, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Scaled dot-product attention

QKV = [rnd(2, 3, 5, 4), rnd(2, 3, 6, 4), rnd(2, 3, 6, 3)]


@pytest.mark.parametrize(
    "kind", ["plain", "causal", "causal_square", "bool", "bool_broadcast", "additive", "scale"]
)
def test_sdpa_matches_torch(kind):
    q, k, v = QKV
    kw = {}
    if kind == "causal":
        kw = {"is_causal": True}
    elif kind == "causal_square":
        k, v = k[:, :, :5], v[:, :, :5]
        kw = {"is_causal": True}
    elif kind == "bool":
        m = RNG.random((2, 3, 5, 6)) > 0.5
        m[..., 0] = True
        kw = {"attn_mask": m}
    elif kind == "bool_broadcast":
        m = RNG.random((5, 6)) > 0.5
        m[:, 2] = True
        kw = {"attn_mask": m}
    elif kind == "additive":
        kw = {"attn_mask": rnd(1, 3, 5, 6)}
    elif kind == "scale":
        kw = {"scale": 0.3}
    dkw = {k_: (ds.tensor(v_) if isinstance(v_, np.ndarray) else v_) for k_, v_ in kw.items()}
    tkw = {k_: (torch.tensor(v_) if isinstance(v_, np.ndarray) else v_) for k_, v_ in kw.items()}
    torch_compare(
        lambda a, b, c: F.scaled_dot_product_attention(a, b, c, **dkw),
        lambda a, b, c: TF.scaled_dot_product_attention(a, b, c, **tkw),
        [q, k, v],
        fwd_atol=1e-5,
    )


def test_sdpa_three_dims_and_gqa():
    torch_compare(
        lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True),
        lambda a, b, c: TF.scaled_dot_product_attention(a, b, c, is_causal=True),
        [rnd(3, 4, 2), rnd(3, 4, 2), rnd(3, 4, 5)],
        fwd_atol=1e-5,
    )
    torch_compare(
        lambda a, b, c: F.scaled_dot_product_attention(a, b, c, enable_gqa=True),
        lambda a, b, c: TF.scaled_dot_product_attention(a, b, c, enable_gqa=True),
        [rnd(1, 4, 3, 2), rnd(1, 2, 5, 2), rnd(1, 2, 5, 2)],
        fwd_atol=1e-5,
    )


def test_sdpa_dropout_uses_the_generator_and_matches_a_manual_mask():
    q, k, v = [ds.tensor(a, requires_grad=True) for a in QKV]
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.4, generator=ds.Generator(5))
    again = F.scaled_dot_product_attention(q, k, v, dropout_p=0.4, generator=ds.Generator(5))
    np.testing.assert_array_equal(out.numpy(), again.numpy())
    # The same draws, rebuilt by hand: keep where u >= p, scale by 1/(1-p).
    u = ds.rand(2, 3, 5, 6, generator=ds.Generator(5)).numpy()
    drop = (u >= np.float32(0.4)) / np.float32(0.6)
    s = QKV[0] @ QKV[1].swapaxes(-1, -2) / 2.0
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(out.numpy(), (p * drop) @ QKV[2], atol=1e-5, rtol=1e-4)
    # Gradients through dropout: float64 finite differences with a fixed generator seed.
    gradcheck64(
        lambda a, b, c: F.scaled_dot_product_attention(
            a, b, c, dropout_p=0.3, is_causal=True, generator=ds.Generator(2)
        ),
        [x.astype(np.float64)[:1, :1] for x in QKV[:1]] + [QKV[1][:1, :1, :5], QKV[2][:1, :1, :5]],
        second_order=True,
    )


def test_sdpa_float64_and_second_order():
    q, k, v = [RNG.standard_normal(s) for s in [(1, 2, 3, 2), (1, 2, 4, 2), (1, 2, 4, 3)]]
    m = RNG.random((3, 4)) > 0.4
    m[:, 0] = True
    out = F.scaled_dot_product_attention(
        *[ds.tensor(a, dtype=ds.float64) for a in (q, k, v)], attn_mask=ds.tensor(m)
    )
    np.testing.assert_allclose(out.numpy(), np_sdpa(q, k, v, mask=m), rtol=1e-12)
    gradcheck64(
        lambda a, b, c: F.scaled_dot_product_attention(a, b, c, attn_mask=ds.tensor(m)),
        [q, k, v],
        second_order=True,
    )


def test_sdpa_errors():
    q = ds.ones(1, 3, 4)
    with pytest.raises(ValueError, match="do not fit"):
        F.scaled_dot_product_attention(q, ds.ones(1, 3, 5), ds.ones(1, 3, 4))
    with pytest.raises(ValueError, match="either attn_mask or is_causal"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=ds.ones(3, 3), is_causal=True)


# ---------------------------------------------------------------------------------------------
# Normalisation


def test_layer_norm_matches_torch_variants():
    x = rnd(3, 4, 6, scale=3.0) + 5.0  # an offset: the centring matters
    torch_compare(
        lambda a, w, b: F.layer_norm(a, (6,), w, b, eps=1e-3),
        lambda a, w, b: TF.layer_norm(a, (6,), w, b, eps=1e-3),
        [x, rnd(6), rnd(6)],
        fwd_atol=1e-5,
    )
    torch_compare(
        lambda a, w: F.layer_norm(a, (4, 6), w),
        lambda a, w: TF.layer_norm(a, (4, 6), w),
        [x, rnd(4, 6)],
        fwd_atol=1e-5,
    )
    # An int normalized_shape: PyTorch's binding wants a tuple (TypeError in both; the modules
    # take an int and make it a tuple).
    with pytest.raises(TypeError, match="tuple of ints"):
        TF.layer_norm(torch.tensor(x), 6)
    with pytest.raises(TypeError, match="tuple of ints"):
        F.layer_norm(ds.tensor(x), 6)
    torch_compare(
        lambda a: ds.nn.LayerNorm(6)(a), lambda a: torch.nn.LayerNorm(6)(a), [x], fwd_atol=1e-5
    )


def test_layer_norm_hessian_vector_product_matches_torch():
    x0, w0, b0 = rnd(2, 5), rnd(5), rnd(5)
    v = rnd(2, 5)
    xs = [ds.tensor(a, requires_grad=True) for a in (x0, w0, b0)]
    ts = [torch.tensor(a, requires_grad=True) for a in (x0, w0, b0)]
    g = ds.autograd.grad(
        (F.layer_norm(xs[0], (5,), xs[1], xs[2]) ** 3).sum(), xs, create_graph=True
    )
    h = ds.autograd.grad((g[0] * ds.tensor(v)).sum(), xs[:2])
    gt = torch.autograd.grad(
        (TF.layer_norm(ts[0], (5,), ts[1], ts[2]) ** 3).sum(), ts, create_graph=True
    )
    ht = torch.autograd.grad((gt[0] * torch.tensor(v)).sum(), ts[:2])
    for a, b in zip(h, ht):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-3, rtol=1e-3)


def test_layer_norm_gradcheck_and_errors():
    gradcheck64(
        lambda a, w, b: F.layer_norm(a, (2, 3), w, b),
        [RNG.standard_normal((2, 2, 3)), RNG.standard_normal((2, 3)), RNG.standard_normal((2, 3))],
        second_order=True,
    )
    with pytest.raises(ValueError, match="normalized_shape"):
        F.layer_norm(ds.ones(2, 3), (4,))


def test_rms_norm_matches_torch_default_eps_and_no_weight():
    x = rnd(3, 7)
    torch_compare(
        lambda a, w: F.rms_norm(a, (7,), w), lambda a, w: TF.rms_norm(a, (7,), w), [x, rnd(7)]
    )
    torch_compare(
        lambda a: F.rms_norm(a, (3, 7), eps=1e-3),
        lambda a: TF.rms_norm(a, (3, 7), eps=1e-3),
        [rnd(2, 3, 7)],
    )
    gradcheck64(lambda a: F.rms_norm(a, (4,)), [RNG.standard_normal((2, 4))], second_order=True)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 4, 4)])
def test_batch_norm_training_updates_running_stats_like_torch(shape):
    x = rnd(*shape, scale=2.0) + 1.0
    c = shape[1]
    rm, rv = ds.zeros(c), ds.ones(c)
    trm, trv = torch.zeros(c), torch.ones(c)
    torch_compare(
        lambda a, w, b: F.batch_norm(a, rm, rv, w, b, training=True, momentum=0.2),
        lambda a, w, b: TF.batch_norm(a, trm, trv, w, b, training=True, momentum=0.2),
        [x, rnd(c), rnd(c)],
        fwd_atol=1e-5,
    )
    np.testing.assert_allclose(rm.numpy(), trm.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv.numpy(), trv.numpy(), rtol=1e-5, atol=1e-6)
    # evaluation with those statistics
    torch_compare(
        lambda a: F.batch_norm(a, rm, rv, training=False),
        lambda a: TF.batch_norm(a, trm, trv, training=False),
        [x],
        fwd_atol=1e-5,
    )


def test_batch_norm_without_running_stats_and_errors():
    torch_compare(
        lambda a: F.batch_norm(a, None, None, training=True),
        lambda a: TF.batch_norm(a, None, None, training=True),
        [rnd(5, 3)],
        fwd_atol=1e-5,
    )
    with pytest.raises(ValueError, match="more than 1 value"):
        F.batch_norm(ds.ones(1, 3), None, None, training=True)
    with pytest.raises(ValueError, match="running_mean"):
        F.batch_norm(ds.ones(2, 3), None, None, training=False)


def test_group_norm_matches_torch():
    torch_compare(
        lambda a, w, b: F.group_norm(a, 2, w, b),
        lambda a, w, b: TF.group_norm(a, 2, w, b),
        [rnd(2, 4, 3, 3), rnd(4), rnd(4)],
        fwd_atol=1e-5,
    )
    with pytest.raises(ValueError, match="groups"):
        F.group_norm(ds.ones(1, 3, 2), 2)


def test_normalize_and_cosine_similarity_match_torch():
    torch_compare(lambda a: F.normalize(a, dim=1), lambda a: TF.normalize(a, dim=1), [rnd(3, 4)])
    torch_compare(
        lambda a: F.normalize(a, p=1.0, dim=0), lambda a: TF.normalize(a, p=1.0, dim=0), [rnd(3, 4)]
    )
    torch_compare(
        lambda a, b: F.cosine_similarity(a, b),
        lambda a, b: TF.cosine_similarity(a, b),
        [rnd(3, 4), rnd(3, 4)],
    )
    torch_compare(
        lambda a, b: F.cosine_similarity(a, b, dim=-1),
        lambda a, b: TF.cosine_similarity(a, b, dim=-1),
        [rnd(2, 3, 4), rnd(3, 4)],
    )


# ---------------------------------------------------------------------------------------------
# pad, one_hot


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_matches_torch(mode):
    x = rnd(1, 2, 4, 5)
    kw = {"value": 1.5} if mode == "constant" else {}
    out = F.pad(ds.tensor(x), (1, 2, 2, 1), mode=mode, **kw)
    ref = TF.pad(torch.tensor(x), (1, 2, 2, 1), mode=mode, **kw)
    np.testing.assert_array_equal(out.numpy(), ref.numpy())


def test_pad_constant_gradient_and_bad_mode():
    torch_compare(lambda a: F.pad(a, (1, 1)), lambda a: TF.pad(a, (1, 1)), [rnd(2, 3)])
    with pytest.raises(ValueError, match="mode"):
        F.pad(ds.ones(2, 2), (1, 1), mode="mirror")


def test_one_hot_matches_torch():
    t = np.array([[0, 2], [1, 3]])
    np.testing.assert_array_equal(
        F.one_hot(ds.tensor(t)).numpy(), TF.one_hot(torch.tensor(t)).numpy()
    )
    np.testing.assert_array_equal(
        F.one_hot(ds.tensor(t), 6).numpy(), TF.one_hot(torch.tensor(t), 6).numpy()
    )
    assert F.one_hot(ds.tensor(t)).dtype == ds.int64
    with pytest.raises(ValueError, match="class values"):
        F.one_hot(ds.tensor(t), 3)
    with pytest.raises(TypeError, match="integer"):
        F.one_hot(ds.tensor([0.0]))


# ---------------------------------------------------------------------------------------------
# A transformer block through the fused ops: values and gradients vs PyTorch


def test_transformer_block_matches_torch():
    b_, t_, c_, h_ = 2, 5, 8, 2
    arrays = [
        rnd(b_, t_, c_),
        rnd(c_),
        rnd(c_),
        rnd(3 * c_, c_) * 0.3,
        rnd(3 * c_),
        rnd(c_, c_) * 0.3,
        rnd(c_),
    ]

    def block(f, x, lw, lb, wqkv, bqkv, wo, bo):
        h = f.layer_norm(x, (c_,), lw, lb)
        q, k, v = f.linear(h, wqkv, bqkv).split(c_, dim=2)
        q, k, v = [z.reshape(b_, t_, h_, c_ // h_).transpose(1, 2) for z in (q, k, v)]
        y = f.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).reshape(b_, t_, c_)
        return x + f.gelu(f.linear(y, wo, bo))

    torch_compare(lambda *a: block(F, *a), lambda *a: block(TF, *a), arrays, fwd_atol=1e-5)


def test_batch_norm_weight_only_and_running_stats_under_no_grad():
    x = rnd(6, 3, 4) * 3 + 2
    torch_compare(
        lambda a, w: F.batch_norm(a, None, None, w, None, training=True),
        lambda a, w: TF.batch_norm(a, None, None, w, None, training=True),
        [x, rnd(3)],
        fwd_atol=1e-5,
    )
    rm, rv = ds.zeros(3), ds.ones(3)
    trm, trv = torch.zeros(3), torch.ones(3)
    with ds.no_grad():
        for _ in range(3):
            F.batch_norm(ds.tensor(x), rm, rv, training=True, momentum=0.3)
    for _ in range(3):
        TF.batch_norm(torch.tensor(x), trm, trv, training=True, momentum=0.3)
    np.testing.assert_allclose(rm.numpy(), trm.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv.numpy(), trv.numpy(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# The public surface: `import descent.nn.functional as F` offers exactly what it offered when
# functional was one 1,136-line file (recorded before it became a package), with the same
# parameters and defaults. Each name maps to its parameters, `name=default` where one exists.

PUBLIC_SIGNATURES = {
    "adaptive_avg_pool2d": "input output_size",
    "avg_pool1d": "input kernel_size stride=None padding=0 ceil_mode=False count_include_pad=True",
    "avg_pool2d": (
        "input kernel_size stride=None padding=0 ceil_mode=False count_include_pad=True "
        "divisor_override=None"
    ),
    "batch_norm": (
        "input running_mean running_var weight=None bias=None training=False momentum=0.1 eps=1e-05"
    ),
    "binary_cross_entropy": (
        "input target weight=None size_average=None reduce=None reduction='mean'"
    ),
    "binary_cross_entropy_with_logits": (
        "input target weight=None size_average=None reduce=None reduction='mean' pos_weight=None"
    ),
    "conv1d": "input weight bias=None stride=1 padding=0 dilation=1 groups=1",
    "conv2d": "input weight bias=None stride=1 padding=0 dilation=1 groups=1",
    "cosine_similarity": "x1 x2 dim=1 eps=1e-08",
    "cross_entropy": (
        "input target weight=None size_average=None ignore_index=-100 reduce=None "
        "reduction='mean' label_smoothing=0.0"
    ),
    "dropout": "input p=0.5 training=True inplace=False generator=None",
    "elu": "input alpha=1.0 inplace=False",
    "embedding": (
        "input weight padding_idx=None max_norm=None norm_type=2.0 scale_grad_by_freq=False "
        "sparse=False"
    ),
    "gelu": "input approximate='none'",
    "group_norm": "input num_groups weight=None bias=None eps=1e-05",
    "hardtanh": "input min_val=-1.0 max_val=1.0 inplace=False",
    "huber_loss": "input target reduction='mean' delta=1.0 weight=None",  # torch 2.13's weight=
    "kl_div": "input target size_average=None reduce=None reduction='mean' log_target=False",
    "l1_loss": "input target size_average=None reduce=None reduction='mean' weight=None",
    "layer_norm": "input normalized_shape weight=None bias=None eps=1e-05",
    "leaky_relu": "input negative_slope=0.01 inplace=False",
    "linear": "input weight bias=None",
    "log_softmax": "input dim=None _stacklevel=3 dtype=None",
    "logsigmoid": "input",
    "max_pool1d": (
        "input kernel_size stride=None padding=0 dilation=1 ceil_mode=False return_indices=False"
    ),
    "max_pool2d": (
        "input kernel_size stride=None padding=0 dilation=1 ceil_mode=False return_indices=False"
    ),
    "mse_loss": "input target size_average=None reduce=None reduction='mean' weight=None",
    "nll_loss": (
        "input target weight=None size_average=None ignore_index=-100 reduce=None reduction='mean'"
    ),
    "normalize": "input p=2.0 dim=1 eps=1e-12",
    "one_hot": "tensor num_classes=-1",
    "pad": "input pad mode='constant' value=None",
    "relu": "input inplace=False",
    "relu6": "input inplace=False",
    "rms_norm": "input normalized_shape weight=None eps=None",
    "scaled_dot_product_attention": (
        "query key value attn_mask=None dropout_p=0.0 is_causal=False scale=None enable_gqa=False "
        "generator=None"
    ),
    "sigmoid": "input",
    "silu": "input inplace=False",
    "smooth_l1_loss": "input target size_average=None reduce=None reduction='mean' beta=1.0",
    "softmax": "input dim=None _stacklevel=3 dtype=None",
    "softplus": "input beta=1.0 threshold=20.0",
    "tanh": "input",
}

# issue 13: the nn.functional additions, with PyTorch's parameter names and defaults
PUBLIC_SIGNATURES.update(
    {
        "adaptive_max_pool1d": "input output_size return_indices=False",
        "adaptive_max_pool2d": "input output_size return_indices=False",
        "affine_grid": "theta size align_corners=None",
        "avg_pool3d": (
            "input kernel_size stride=None padding=0 ceil_mode=False count_include_pad=True "
            "divisor_override=None"
        ),
        "celu": "input alpha=1.0 inplace=False",
        "conv3d": "input weight bias=None stride=1 padding=0 dilation=1 groups=1",
        "conv_transpose1d": (
            "input weight bias=None stride=1 padding=0 output_padding=0 groups=1 dilation=1"
        ),
        "conv_transpose2d": (
            "input weight bias=None stride=1 padding=0 output_padding=0 groups=1 dilation=1"
        ),
        "conv_transpose3d": (
            "input weight bias=None stride=1 padding=0 output_padding=0 groups=1 dilation=1"
        ),
        "ctc_loss": (
            "log_probs targets input_lengths target_lengths blank=0 reduction='mean' "
            "zero_infinity=False"
        ),
        "fold": "input output_size kernel_size dilation=1 padding=0 stride=1",
        "gaussian_nll_loss": "input target var full=False eps=1e-06 reduction='mean'",
        "glu": "input dim=-1",
        "grid_sample": "input grid mode='bilinear' padding_mode='zeros' align_corners=None",
        "hardshrink": "input lambd=0.5",
        "hardsigmoid": "input inplace=False",
        "hardswish": "input inplace=False",
        "interpolate": (
            "input size=None scale_factor=None mode='nearest' align_corners=None "
            "recompute_scale_factor=None antialias=False"
        ),
        "margin_ranking_loss": (
            "input1 input2 target margin=0 size_average=None reduce=None reduction='mean'"
        ),
        "max_pool3d": (
            "input kernel_size stride=None padding=0 dilation=1 ceil_mode=False "
            "return_indices=False"
        ),
        "max_unpool1d": "input indices kernel_size stride=None padding=0 output_size=None",
        "max_unpool2d": "input indices kernel_size stride=None padding=0 output_size=None",
        "max_unpool3d": "input indices kernel_size stride=None padding=0 output_size=None",
        "mish": "input inplace=False",
        "pairwise_distance": "x1 x2 p=2.0 eps=1e-06 keepdim=False",
        "pixel_shuffle": "input upscale_factor",
        "pixel_unshuffle": "input downscale_factor",
        "poisson_nll_loss": (
            "input target log_input=True full=False size_average=None eps=1e-08 reduce=None "
            "reduction='mean'"
        ),
        "selu": "input inplace=False",
        "softmin": "input dim=None _stacklevel=3 dtype=None",
        "softshrink": "input lambd=0.5",
        "softsign": "input",
        "tanhshrink": "input",
        "threshold": "input threshold value inplace=False",
        "triplet_margin_loss": (
            "anchor positive negative margin=1.0 p=2 eps=1e-06 swap=False size_average=None "
            "reduce=None reduction='mean'"
        ),
        "unfold": "input kernel_size dilation=1 padding=0 stride=1",
        "upsample": "input size=None scale_factor=None mode='nearest' align_corners=None",
        "upsample_bilinear": "input size=None scale_factor=None",
        "upsample_nearest": "input size=None scale_factor=None",
    }
)


# The names docs/nn_extra.md adds (the gaps a probe of torch.nn.functional found).
PUBLIC_SIGNATURES.update(NN_GAPS_SIGNATURES)


def _params(fn) -> str:
    parts = []
    for p in inspect.signature(fn).parameters.values():
        parts.append(p.name if p.default is inspect.Parameter.empty else f"{p.name}={p.default!r}")
    return " ".join(parts)


def test_public_names_and_signatures_are_unchanged():
    assert sorted(F.__all__) == sorted(PUBLIC_SIGNATURES)
    assert len(F.__all__) == len(set(F.__all__)), "a name is exported twice"
    for name, params in PUBLIC_SIGNATURES.items():
        fn = getattr(F, name)
        assert callable(fn), name
        assert _params(fn) == params, name
    # `from descent.nn.functional import *` gives the same names, and nothing else.
    ns: dict = {}
    exec("from descent.nn.functional import *", ns)
    assert sorted(k for k in ns if k != "__builtins__") == sorted(PUBLIC_SIGNATURES)


def test_no_op_class_lives_in_nn_functional():
    # The Function subclasses behind the fused functions belong to descent.ops (layering:
    # ops never import nn); nn.functional only calls them.
    mods = [F] + [
        importlib.import_module(f"{F.__name__}.{m.name}") for m in pkgutil.iter_modules(F.__path__)
    ]
    for mod in mods:
        for name, obj in vars(mod).items():
            if inspect.isclass(obj) and issubclass(obj, Function):
                assert obj.__module__.startswith("descent.ops."), f"{mod.__name__}.{name}"
