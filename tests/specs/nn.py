"""Specs of the fused nn kernels (descent.ops.loss/norm/attention/conv and the Embedding op of
descent.nn.functional); see tests/specs/__init__.py for the format. NumPy references are
written independently of the kernels (direct sums over windows, not im2col)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as TF
from numpy.lib.stride_tricks import sliding_window_view

import descent as ds
import descent.nn.functional as F
from descent.ops.activation import ActivationBackward as _ActB
from descent.ops.conv import Col2Im, Im2Col

from . import Spec

SPECS: list[Spec] = []


def add(**kw) -> None:
    SPECS.append(Spec(**kw))


# ---------------------------------------------------------------------------------------------
# Helpers shared by tests/test_nn_functional.py, test_losses.py and test_conv.py


def torch_compare(
    fn,
    torch_fn,
    arrays,
    diff=None,
    fwd_atol=1e-6,
    fwd_rtol=1e-3,
    grad_atol=1e-4,
    grad_rtol=1e-3,
    seed=3,
):
    """Run fn on float32 descent Tensors and torch_fn on torch tensors made from `arrays`,
    compare outputs, then backpropagate one random cotangent through both and compare the
    gradients of the inputs listed in `diff` (default: every floating input)."""
    arrays = [np.asarray(a) for a in arrays]
    if diff is None:
        diff = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    conv = [a.astype(np.float32) if a.dtype.kind == "f" else a for a in arrays]
    xs = [ds.tensor(a, requires_grad=i in diff) for i, a in enumerate(conv)]
    ts = [torch.tensor(a, requires_grad=i in diff) for i, a in enumerate(conv)]
    out, tout = fn(*xs), torch_fn(*ts)
    assert out.dtype == ds.float32, f"float32 inputs gave {out.dtype}"
    assert tuple(out.shape) == tuple(tout.shape), f"shape {out.shape} vs torch {tout.shape}"
    np.testing.assert_allclose(
        out.numpy(),
        tout.detach().numpy(),
        atol=fwd_atol,
        rtol=fwd_rtol,
        err_msg="forward differs from PyTorch",
    )
    if diff:
        w = np.random.default_rng(seed).standard_normal(out.shape).astype(np.float32)
        (out * ds.tensor(w)).sum().backward()
        (tout * torch.tensor(w)).sum().backward()
        for i in diff:
            g, tg = xs[i].grad, ts[i].grad
            expected = np.zeros(conv[i].shape, np.float32) if tg is None else tg.numpy()
            assert g is not None, f"input {i} got no gradient"
            np.testing.assert_allclose(
                g.numpy(),
                expected,
                atol=grad_atol,
                rtol=grad_rtol,
                err_msg=f"gradient of input {i} differs from PyTorch",
            )
    return out, tout


def gradcheck64(fn, arrays, second_order=False, **kw):
    """float64 gradients (and optionally second derivatives) of fn vs finite differences."""
    from descent.explain import gradcheck, gradgradcheck

    xs = [
        ds.tensor(np.asarray(a, dtype=np.float64), dtype=ds.float64, requires_grad=True)
        for a in arrays
    ]
    gradcheck(fn, xs, raise_on_failure=True, **kw)
    if second_order:
        gradgradcheck(fn, xs, raise_on_failure=True, **kw)


# ---------------------------------------------------------------------------------------------
# NumPy references


def np_log_softmax(x, axis=-1):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def np_cross_entropy(x, t, weight=None, ignore_index=-100, eps=0.0, reduction="mean"):
    """Cross-entropy of (N, C) logits, written from the definition."""
    n, c = x.shape
    logp = np_log_softmax(x, 1)
    w = np.ones(c) if weight is None else weight
    loss = np.zeros(n)
    den = 0.0
    for i in range(n):
        if t[i] == ignore_index:
            continue
        q = np.full(c, eps / c)
        q[t[i]] += 1 - eps
        # target part weighted by w_t, smoothing part by every w_c (as PyTorch)
        loss[i] = -(1 - eps) * w[t[i]] * logp[i, t[i]] - (eps / c) * (w * logp[i]).sum()
        den += w[t[i]]
    if reduction == "mean":
        return np.asarray(loss.sum() / den)
    if reduction == "sum":
        return np.asarray(loss.sum())
    return loss


def np_layer_norm(x, w, b, k=1, eps=1e-5):
    axes = tuple(range(x.ndim - k, x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps)
    return y * w + b if w is not None else y


def np_rms_norm(x, w, eps):
    return x / np.sqrt((x**2).mean(axis=-1, keepdims=True) + eps) * w


def np_sdpa(q, k, v, mask=None, causal=False, scale=None):
    s = q @ np.swapaxes(k, -1, -2) * (scale or 1 / np.sqrt(q.shape[-1]))
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == bool else s + mask
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v


def np_conv2d(x, w, b=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    """Direct convolution: windows by sliding_window_view, summed with einsum per group."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    o, cg, kh, kw = w.shape
    eh, ew = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    win = sliding_window_view(xp, (eh, ew), axis=(2, 3))  # (N, C, H', W', eh, ew)
    win = win[:, :, :: stride[0], :: stride[1], :: dilation[0], :: dilation[1]]
    og = o // groups
    outs = [
        np.einsum("nchwij,ocij->nohw", win[:, g * cg : (g + 1) * cg], w[g * og : (g + 1) * og])
        for g in range(groups)
    ]
    y = np.concatenate(outs, axis=1)
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def np_pool(x, k, s, p, d=(1, 1), kind="max"):
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (p[0],) * 2, (p[1],) * 2), constant_values=fill)
    eh, ew = d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1
    win = sliding_window_view(xp, (eh, ew), axis=(2, 3))[:, :, :: s[0], :: s[1], :: d[0], :: d[1]]
    return win.max(axis=(-2, -1)) if kind == "max" else win.mean(axis=(-2, -1))


def np_im2col(x, geom):
    kh, kw, sh, sw, dh, dw, ph, pw = geom
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, c = x.shape[:2]
    ho = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    wo = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((c, kh, kw, n, ho, wo))
    for i in range(kh):
        for j in range(kw):
            for r in range(ho):
                for q in range(wo):
                    out[:, i, j, :, r, q] = xp[:, :, r * sh + i * dh, q * sw + j * dw].T
    return out


def np_col2im(cols, x_shape, geom):
    kh, kw, sh, sw, dh, dw, ph, pw = geom
    n, c, h, w = x_shape
    out = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
    ho, wo = cols.shape[-2:]
    for i in range(kh):
        for j in range(kw):
            for r in range(ho):
                for q in range(wo):
                    out[:, :, r * sh + i * dh, q * sw + j * dw] += cols[:, i, j, :, r, q].T
    return out[:, :, ph : ph + h, pw : pw + w]


def distinct(shape, scale=0.3):
    """Values all different (no ties inside a pooling window)."""

    def sampler(rng, dtype):
        n = int(np.prod(shape))
        return [((rng.permutation(n) - n / 2) * scale / n * 8).reshape(shape)]

    return sampler


# ---------------------------------------------------------------------------------------------
# Cross-entropy (SoftmaxCrossEntropy)

_T = np.array([0, 4, 2, -100, 1])  # one ignored row
_W = np.array([0.5, 1.0, 1.5, 2.0, 0.8])

for red in ("mean", "sum", "none"):
    for eps in (0.0, 0.1):
        for weighted in (False, True):
            w = _W if weighted else None
            add(
                name=f"cross_entropy-{red}-ls{eps}-{'w' if weighted else 'nw'}",
                fn=lambda x, red=red, eps=eps, w=w: F.cross_entropy(
                    x,
                    ds.tensor(_T),
                    weight=None if w is None else ds.tensor(w, dtype=x.dtype),
                    reduction=red,
                    label_smoothing=eps,
                ),
                ref=lambda x, red=red, eps=eps, w=w: np_cross_entropy(
                    x, _T, w, eps=eps, reduction=red
                ),
                torch_fn=lambda x, red=red, eps=eps, w=w: TF.cross_entropy(
                    x,
                    torch.tensor(_T),
                    weight=None if w is None else torch.tensor(w).float(),
                    reduction=red,
                    label_smoothing=eps,
                ),
                shapes=[(5, 5)],
                domain=(-3.0, 3.0),
                covers=("SoftmaxCrossEntropy",),
            )

# (N, C, d) input: the class axis is moved last inside cross_entropy.
_T3 = np.array([[0, 2, 1], [2, 2, 0]])
add(
    name="cross_entropy-spatial",
    fn=lambda x: F.cross_entropy(x, ds.tensor(_T3)),
    ref=lambda x: np_cross_entropy(np.moveaxis(x, 1, -1).reshape(-1, 3), _T3.reshape(-1)),
    torch_fn=lambda x: TF.cross_entropy(x, torch.tensor(_T3)),
    shapes=[(2, 3, 3)],
    covers=("SoftmaxCrossEntropy",),
)


# nll_loss of log-probabilities without class weights: one NllLoss node (float32/float64)
def np_nll(x, t, reduction):
    """-x[n, t_n, ...] over the counted rows (target != -100): mean, sum or each."""
    xm = np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])
    tf = t.reshape(-1)
    keep = tf != -100
    loss = np.where(keep, -xm[np.arange(len(tf)), np.where(keep, tf, 0)], 0.0)
    if reduction == "mean":
        return np.asarray(loss.sum() / keep.sum())
    return np.asarray(loss.sum()) if reduction == "sum" else loss.reshape(t.shape)


for red in ("mean", "sum", "none"):
    add(
        name=f"nll_loss-{red}",
        fn=lambda x, red=red: F.nll_loss(x, ds.tensor(_T), reduction=red),
        ref=lambda x, red=red: np_nll(x, _T, red),
        torch_fn=lambda x, red=red: TF.nll_loss(x, torch.tensor(_T), reduction=red),
        shapes=[(5, 5)],
        covers=("NllLoss",),
    )
add(
    name="nll_loss-spatial",
    fn=lambda x: F.nll_loss(x, ds.tensor(_T3)),
    ref=lambda x: np_nll(x, _T3, "mean"),
    torch_fn=lambda x: TF.nll_loss(x, torch.tensor(_T3)),
    shapes=[(2, 3, 3)],
    covers=("NllLoss",),
)

# binary_cross_entropy_with_logits without weights: one BCEWithLogits node (float32/float64)
_Y = np.random.default_rng(21).random((3, 4))


def np_bce_logits(x, y, reduction):
    """(1 - y) x + log(1 + e^-x), elementwise: mean, sum or each."""
    loss = (1 - y) * x + np.logaddexp(0, -x)
    return np.asarray(loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum"
                      else loss)  # fmt: skip


for red in ("mean", "sum", "none"):
    add(
        name=f"bce_with_logits-{red}",
        fn=lambda x, red=red: F.binary_cross_entropy_with_logits(
            x, ds.tensor(_Y, dtype=x.dtype), reduction=red
        ),
        ref=lambda x, red=red: np_bce_logits(x, _Y, red),
        torch_fn=lambda x, red=red: TF.binary_cross_entropy_with_logits(
            x, torch.tensor(_Y, dtype=x.dtype), reduction=red
        ),
        shapes=[(3, 4)],
        covers=("BCEWithLogits",),
    )

# ---------------------------------------------------------------------------------------------
# Layer norm and RMS norm

add(
    name="layer_norm-affine",
    fn=lambda x, w, b: F.layer_norm(x, (6,), w, b),
    ref=lambda x, w, b: np_layer_norm(x, w, b),
    torch_fn=lambda x, w, b: TF.layer_norm(x, (6,), w, b),
    shapes=[(2, 3, 6), (6,), (6,)],
    covers=("LayerNorm",),
)
add(
    name="layer_norm-plain-2d",
    fn=lambda x: F.layer_norm(x, (3, 4)),
    ref=lambda x: np_layer_norm(x, None, None, k=2),
    torch_fn=lambda x: TF.layer_norm(x, (3, 4)),
    shapes=[(2, 3, 4)],
    covers=("LayerNorm",),
)
add(
    name="layer_norm-bias-only",
    fn=lambda x, b: F.layer_norm(x, (5,), None, b),
    ref=lambda x, b: np_layer_norm(x, None, None) + b,
    torch_fn=lambda x, b: TF.layer_norm(x, (5,), None, b),
    shapes=[(4, 5), (5,)],
    covers=("LayerNorm",),
)
add(
    name="rms_norm",
    fn=lambda x, w: F.rms_norm(x, (6,), w, eps=1e-6),
    ref=lambda x, w: np_rms_norm(x, w, 1e-6),
    torch_fn=lambda x, w: TF.rms_norm(x, (6,), w, eps=1e-6),
    shapes=[(3, 6), (6,)],
    covers=("RMSNorm",),
)

# ---------------------------------------------------------------------------------------------
# Attention

_QKV = [(2, 2, 4, 3), (2, 2, 5, 3), (2, 2, 5, 2)]
_BOOL = np.random.default_rng(7).random((4, 5)) > 0.4
_BOOL[:, 0] = True  # every query sees at least one key
_ADD = np.random.default_rng(8).standard_normal((2, 1, 4, 5))

add(
    name="sdpa-plain",
    fn=lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
    ref=lambda q, k, v: np_sdpa(q, k, v),
    torch_fn=lambda q, k, v: TF.scaled_dot_product_attention(q, k, v),
    shapes=_QKV,
    covers=("ScaledDotProductAttention",),
)
add(
    name="sdpa-causal",
    fn=lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.7),
    ref=lambda q, k, v: np_sdpa(q, k, v, causal=True, scale=0.7),
    torch_fn=lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.7),
    shapes=[(2, 2, 4, 3), (2, 2, 4, 3), (2, 2, 4, 2)],
    covers=("ScaledDotProductAttention",),
)
add(
    name="sdpa-bool-mask",
    fn=lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=ds.tensor(_BOOL)),
    ref=lambda q, k, v: np_sdpa(q, k, v, mask=_BOOL),
    torch_fn=lambda q, k, v: TF.scaled_dot_product_attention(
        q, k, v, attn_mask=torch.tensor(_BOOL)
    ),
    shapes=_QKV,
    covers=("ScaledDotProductAttention",),
)
add(
    name="sdpa-additive-mask",
    fn=lambda q, k, v: F.scaled_dot_product_attention(
        q, k, v, attn_mask=ds.tensor(_ADD, dtype=q.dtype)
    ),
    ref=lambda q, k, v: np_sdpa(q, k, v, mask=_ADD),
    torch_fn=lambda q, k, v: TF.scaled_dot_product_attention(
        q, k, v, attn_mask=torch.tensor(_ADD).float()
    ),
    shapes=_QKV,
    covers=("ScaledDotProductAttention",),
)
# A learned additive bias (issue 13): the float mask is an input and gets its gradient, also
# through a broadcast (2, 1, 4, 5) -> (2, 2, 4, 5) and with a bool-free causal-style use.
add(
    name="sdpa-learned-mask",
    fn=lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
    ref=lambda q, k, v, m: np_sdpa(q, k, v, mask=m),
    torch_fn=lambda q, k, v, m: TF.scaled_dot_product_attention(q, k, v, attn_mask=m),
    shapes=_QKV + [(2, 1, 4, 5)],
    covers=("ScaledDotProductAttention",),
)
add(
    name="sdpa-learned-mask-2d-scaled",
    fn=lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=0.4),
    ref=lambda q, k, v, m: np_sdpa(q, k, v, mask=m, scale=0.4),
    torch_fn=lambda q, k, v, m: TF.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=0.4),
    shapes=_QKV + [(4, 5)],
    covers=("ScaledDotProductAttention",),
)

# ---------------------------------------------------------------------------------------------
# Convolution, im2col/col2im, pooling

_GEOM = (2, 3, 2, 1, 1, 2, 1, 1)  # kh, kw, sh, sw, dh, dw, ph, pw
add(
    name="im2col",
    fn=lambda x: Im2Col.apply(x, geom=_GEOM),
    ref=lambda x: np_im2col(x, _GEOM),
    torch_reason="PyTorch's unfold uses another layout; checked against the NumPy loops",
    shapes=[(2, 2, 4, 5)],
    covers=("Im2Col",),  # its second-order check also runs Col2Im
)
add(
    name="col2im",
    fn=lambda c: Col2Im.apply(c, geom=_GEOM, x_shape=(2, 2, 4, 5)),
    ref=lambda c: np_col2im(c, (2, 2, 4, 5), _GEOM),
    torch_reason="PyTorch's fold uses another layout; checked against the NumPy loops",
    shapes=[(2, 2, 3, 2, 3, 3)],
    covers=("Col2Im",),
)
add(
    name="conv2d-basic",
    fn=lambda x, w, b: F.conv2d(x, w, b),
    ref=lambda x, w, b: np_conv2d(x, w, b),
    torch_fn=lambda x, w, b: TF.conv2d(x, w, b),
    shapes=[(2, 2, 5, 5), (3, 2, 3, 3), (3,)],
    covers=("Conv2d",),
    torch_fwd_atol=1e-5,
)
add(
    name="conv2d-stride-pad-dilation-groups",
    fn=lambda x, w: F.conv2d(x, w, None, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2),
    ref=lambda x, w: np_conv2d(x, w, None, (2, 1), (1, 2), (1, 2), 2),
    torch_fn=lambda x, w: TF.conv2d(x, w, None, (2, 1), (1, 2), (1, 2), 2),
    shapes=[(1, 4, 5, 4), (4, 2, 2, 2)],
    covers=("Conv2d",),
    torch_fwd_atol=1e-5,
)
add(
    name="conv1d",
    fn=lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1),
    ref=lambda x, w, b: np_conv2d(x[:, :, None], w[:, :, None], b, (1, 2), (0, 1))[:, :, 0],
    torch_fn=lambda x, w, b: TF.conv1d(x, w, b, stride=2, padding=1),
    shapes=[(2, 3, 7), (4, 3, 3), (4,)],
    covers=("Conv2d",),
    torch_fwd_atol=1e-5,
)
add(
    name="max_pool2d",
    fn=lambda x: F.max_pool2d(x, 3, 2, 1),
    ref=lambda x: np_pool(x, (3, 3), (2, 2), (1, 1)),
    torch_fn=lambda x: TF.max_pool2d(x, 3, 2, 1),
    shapes=[(2, 2, 5, 5)],
    inputs=distinct((2, 2, 5, 5)),
    covers=("MaxPool2d",),
)
add(
    name="max_pool2d-dilation",
    fn=lambda x: F.max_pool2d(x, 2, 1, 0, 2),
    ref=lambda x: np_pool(x, (2, 2), (1, 1), (0, 0), (2, 2)),
    torch_fn=lambda x: TF.max_pool2d(x, 2, 1, 0, 2),
    shapes=[(1, 2, 5, 4)],
    inputs=distinct((1, 2, 5, 4)),
    covers=("MaxPool2d",),
)
add(
    name="avg_pool2d",
    fn=lambda x: F.avg_pool2d(x, (2, 3), (2, 1), (1, 1)),
    ref=lambda x: np_pool(x, (2, 3), (2, 1), (1, 1), kind="avg"),
    torch_fn=lambda x: TF.avg_pool2d(x, (2, 3), (2, 1), (1, 1)),
    shapes=[(2, 2, 5, 4)],
    covers=("AvgPool2d",),
)

# ---------------------------------------------------------------------------------------------
# Embedding

_IDX = np.array([[1, 3, 0], [3, 3, 4]])
add(
    name="embedding",
    fn=lambda w: F.embedding(ds.tensor(_IDX), w),
    ref=lambda w: w[_IDX],
    torch_fn=lambda w: TF.embedding(torch.tensor(_IDX), w),
    shapes=[(5, 3)],
    covers=("Embedding",),
)
# padding_idx (rows that get no gradient on purpose) is tested in tests/test_nn_functional.py:
# finite differences would disagree by design.

# ---------------------------------------------------------------------------------------------
# Linear (fused x W^T + b)

add(
    name="linear-bias-3d",
    fn=lambda x, w, b: F.linear(x, w, b),
    ref=lambda x, w, b: x @ w.T + b,
    torch_fn=lambda x, w, b: TF.linear(x, w, b),
    shapes=[(2, 3, 4), (5, 4), (5,)],
    covers=("Linear",),
)
add(
    name="linear-nobias-1d",
    fn=lambda x, w: F.linear(x, w),
    ref=lambda x, w: x @ w.T,
    torch_fn=lambda x, w: TF.linear(x, w),
    shapes=[(4,), (3, 4)],
    covers=("Linear",),
)

# ---------------------------------------------------------------------------------------------
# Binary cross-entropy on probabilities (PyTorch's clamped derivative)

add(
    name="binary_cross_entropy",
    fn=lambda p, y: F.binary_cross_entropy(p, y, reduction="none"),
    ref=lambda p, y: -(y * np.log(p) + (1 - y) * np.log1p(-p)),
    torch_fn=lambda p, y: TF.binary_cross_entropy(p, y, reduction="none"),
    shapes=[(3, 4), (3, 4)],
    domain=[(0.1, 0.9), (0.0, 1.0)],
    covers=("BinaryCrossEntropy",),
)

# ---------------------------------------------------------------------------------------------
# Mean squared error (one op: PyTorch's MseLossBackward0)

add(
    name="mse_loss-mean",
    fn=lambda a, b: F.mse_loss(a, b),
    ref=lambda a, b: ((a - b) ** 2).mean(),
    torch_fn=lambda a, b: TF.mse_loss(a, b),
    shapes=[(3, 4), (3, 4)],
    covers=("MseLoss",),
)
add(
    name="mse_loss-sum-broadcast",
    fn=lambda a, b: F.mse_loss(a, b, reduction="sum"),
    ref=lambda a, b: ((a - b) ** 2).sum(),
    torch_fn=lambda a, b: TF.mse_loss(*__import__("torch").broadcast_tensors(a, b),
                                      reduction="sum"),
    shapes=[(2, 3), (3,)],
    covers=("MseLoss",),
)
add(
    name="mse_loss-none",
    fn=lambda a, b: F.mse_loss(a, b, reduction="none"),
    ref=lambda a, b: (a - b) ** 2,
    torch_fn=lambda a, b: TF.mse_loss(a, b, reduction="none"),
    shapes=[(2, 3, 2), (2, 3, 2)],
    covers=("MseLoss",),
)

# ---------------------------------------------------------------------------------------------
# Batch norm (training mode: batch statistics)


def np_batch_norm(x, w, b, eps=1e-5):
    axes = (0,) + tuple(range(2, x.ndim))
    shp = (1, -1) + (1,) * (x.ndim - 2)
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps)
    return y if w is None else y * w.reshape(shp) + b.reshape(shp)


add(
    name="batch_norm-4d-affine",
    fn=lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
    ref=lambda x, w, b: np_batch_norm(x, w, b),
    torch_fn=lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True),
    shapes=[(3, 2, 2, 3), (2,), (2,)],
    covers=("BatchNorm",),
)
add(
    name="batch_norm-2d-plain",
    fn=lambda x: F.batch_norm(x, None, None, training=True, eps=1e-3),
    ref=lambda x: np_batch_norm(x, None, None, eps=1e-3),
    torch_fn=lambda x: TF.batch_norm(x, None, None, training=True, eps=1e-3),
    shapes=[(5, 3)],
    covers=("BatchNorm",),
)

# ---------------------------------------------------------------------------------------------
# The speedrun's fused ops (issue 16): ReLU² and rotary position embeddings, one node each


def _np_rope(x, base=10000.0):
    t, d = x.shape[-2], x.shape[-1]
    ang = np.outer(np.arange(t, dtype=np.float64), base ** (-np.arange(0, d, 2) / d))
    c, s = np.cos(ang).astype(x.dtype), np.sin(ang).astype(x.dtype)
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    return np.concatenate([x1 * c - x2 * s, x1 * s + x2 * c], axis=-1)


def _ds_rope(x):
    from descent.nn.rotary import apply_rotary_emb, rotary_cos_sin

    cos, sin = rotary_cos_sin(x.shape[-2], x.shape[-1], dtype=x.dtype)
    return apply_rotary_emb(x, cos, sin)


def _torch_rope(x, base=10000.0):
    t, d = x.shape[-2], x.shape[-1]
    ang = np.outer(np.arange(t, dtype=np.float64), base ** (-np.arange(0, d, 2) / d))
    c = torch.from_numpy(np.cos(ang)).to(x.dtype)
    s = torch.from_numpy(np.sin(ang)).to(x.dtype)
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    return torch.cat([x1 * c - x2 * s, x1 * s + x2 * c], dim=-1)


def _relu_squared(x):
    from descent.ops.relu_squared import relu_squared

    return relu_squared(x)


def _kink_free(rng, dtype):
    x = rng.uniform(-2.0, 2.0, size=(3, 5))
    return [np.where(np.abs(x) < 0.1, 0.3, x)]  # finite differences stay off the kink at 0


add(
    name="relu_squared",
    fn=_relu_squared,
    ref=lambda x: np.maximum(x, 0) ** 2,
    torch_fn=lambda x: torch.relu(x) ** 2,
    shapes=[(3, 5)],
    inputs=_kink_free,
    covers=("ReluSquared",),
)
add(
    name="rotary_embedding",
    fn=_ds_rope,
    ref=_np_rope,
    torch_fn=_torch_rope,
    shapes=[(2, 3, 5, 6)],
    covers=("Rotary",),
)

# ---------------------------------------------------------------------------------------------
# Smooth L1 and Huber (one op each: PyTorch's SmoothL1LossBackward0 / HuberLossBackward0);
# the differences a - b stay 0.1 or more away from the kinks at +-beta / +-delta


def _away_from_kinks(c):
    def inputs(rng, dtype):
        a = rng.uniform(-2.0, 2.0, (3, 4))
        d = rng.uniform(0.1, c - 0.1, (3, 4)) * rng.choice([-1.0, 1.0], (3, 4))
        outer = rng.uniform(c + 0.1, c + 1.5, (3, 4)) * rng.choice([-1.0, 1.0], (3, 4))
        d = np.where(rng.random((3, 4)) < 0.5, d, outer)
        return [a.astype(dtype), (a - d).astype(dtype)]

    return inputs


def _np_smooth_l1(a, b, beta):
    z = np.abs(a - b)
    return np.where(z < beta, 0.5 * z * z / beta, z - 0.5 * beta)


for _red in ("mean", "sum", "none"):
    add(
        name=f"smooth_l1_loss-{_red}",
        fn=lambda a, b, r=_red: F.smooth_l1_loss(a, b, reduction=r, beta=0.7),
        ref=lambda a, b, r=_red: {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[r](
            _np_smooth_l1(a, b, 0.7)
        ),
        torch_fn=lambda a, b, r=_red: TF.smooth_l1_loss(a, b, reduction=r, beta=0.7),
        shapes=[(3, 4), (3, 4)],
        inputs=_away_from_kinks(0.7),
        covers=("SmoothL1Loss",),
    )
    add(
        name=f"huber_loss-{_red}",
        fn=lambda a, b, r=_red: F.huber_loss(a, b, reduction=r, delta=1.3),
        ref=lambda a, b, r=_red: {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[r](
            1.3 * _np_smooth_l1(a, b, 1.3)
        ),
        torch_fn=lambda a, b, r=_red: TF.huber_loss(a, b, reduction=r, delta=1.3),
        shapes=[(3, 4), (3, 4)],
        inputs=_away_from_kinks(1.3),
        covers=("HuberLoss",),
    )


# ActivationBackward: sigmoid's and gelu's backward as one node (what create_graph records, so
# that the second order is PyTorch's double backward); inputs (gy, z), z = sigmoid's output or
# gelu's input (session 31)
def _np_gelu_d1(x, tanh_form):
    if tanh_form:
        c = np.sqrt(2 / np.pi)
        t = np.tanh(c * (x + 0.044715 * x**3))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
    erf = np.vectorize(math.erf)
    return 0.5 * (1 + erf(x / np.sqrt(2))) + x * np.exp(-x * x / 2) / np.sqrt(2 * np.pi)


add(name="activation_backward-sigmoid",
    fn=lambda g, y: _ActB.apply(g, y, kind="sigmoid"), ref=lambda g, y: g * y * (1 - y),
    torch_fn=lambda g, y: torch.ops.aten.sigmoid_backward(g, y),
    shapes=[(3, 4), (3, 4)], domain=[(-2.0, 2.0), (0.05, 0.95)],
    covers=("ActivationBackward",))  # fmt: skip
for _kind, _appr in (("gelu", "none"), ("gelu_tanh", "tanh")):
    add(name=f"activation_backward-{_kind}",
        fn=lambda g, x, k=_kind: _ActB.apply(g, x, kind=k),
        ref=lambda g, x, k=_kind: g * _np_gelu_d1(x, k == "gelu_tanh"),
        torch_fn=lambda g, x, a=_appr: torch.ops.aten.gelu_backward(g, x, approximate=a),
        shapes=[(3, 4), (3, 4)], domain=[(-2.0, 2.0), (-3.0, 3.0)],
        covers=("ActivationBackward",))  # fmt: skip
