"""Specs of the nn.functional additions of issue 13: the remaining activations, distances,
margin / likelihood / CTC losses, and the window, resampling and transposed-convolution ops.
See tests/specs/__init__.py for the format. NumPy references are written from the
definitions (direct loops or formulas), independently of descent's implementation."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as TF

import descent.nn.functional as F

from . import Spec

SPECS: list[Spec] = []


def add(**kw) -> None:
    SPECS.append(Spec(**kw))


def away_from(points, lo=-4.0, hi=4.0, gap=0.05, shape=(3, 5)):
    """Uniform samples in [lo, hi] kept `gap` away from the kinks in `points`."""

    def sampler(rng, dtype):
        x = rng.uniform(lo, hi, size=shape)
        for p in points:
            near = np.abs(x - p) < gap
            x = np.where(near, p + np.sign(x - p + 1e-12) * 2 * gap, x)
        return [x]

    return sampler


# ---------------------------------------------------------------------------------------------
# Activations

SELU_A, SELU_S = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
np_softplus = np.logaddexp  # log(1 + e^x) = logaddexp(0, x)

ACTS = [
    # name, descent, numpy, torch, kinks, covers, second order
    ("hardtanh", lambda x: F.hardtanh(x, -1.5, 2.0), lambda x: np.clip(x, -1.5, 2.0),
     lambda x: TF.hardtanh(x, -1.5, 2.0), (-1.5, 2.0), ("Where",), False),
    ("relu6", F.relu6, lambda x: np.clip(x, 0, 6), TF.relu6, (0.0, 6.0), ("Where",), False),
    ("hardsigmoid", F.hardsigmoid, lambda x: np.clip(x / 6 + 0.5, 0, 1), TF.hardsigmoid,
     (-3.0, 3.0), ("Where",), False),
    ("hardswish", F.hardswish, lambda x: x * np.clip(x + 3, 0, 6) / 6, TF.hardswish,
     (-3.0, 3.0), ("Hardswish",), True),
    ("selu", F.selu, lambda x: SELU_S * np.where(x > 0, x, SELU_A * np.expm1(x)), TF.selu,
     (0.0,), ("Elu",), True),
    ("celu", lambda x: F.celu(x, 0.7), lambda x: np.where(x > 0, x, 0.7 * np.expm1(x / 0.7)),
     lambda x: TF.celu(x, 0.7), (0.0,), ("Elu",), True),
    ("mish", F.mish, lambda x: x * np.tanh(np_softplus(0, x)), TF.mish, (), ("Mish",),
     True),
    ("softsign", F.softsign, lambda x: x / (1 + np.abs(x)), TF.softsign, (0.0,), ("Abs",), True),
    ("tanhshrink", F.tanhshrink, lambda x: x - np.tanh(x), TF.tanhshrink, (), ("Tanh",), True),
    ("softshrink", lambda x: F.softshrink(x, 0.7),
     lambda x: np.where(x > 0.7, x - 0.7, np.where(x < -0.7, x + 0.7, 0.0)),
     lambda x: TF.softshrink(x, 0.7), (-0.7, 0.7), ("Where",), True),
    ("hardshrink", F.hardshrink, lambda x: np.where(np.abs(x) > 0.5, x, 0.0), TF.hardshrink,
     (-0.5, 0.5), ("Where",), True),
    ("threshold", lambda x: F.threshold(x, 0.3, -2.0), lambda x: np.where(x > 0.3, x, -2.0),
     lambda x: TF.threshold(x, 0.3, -2.0), (0.3,), ("Where",), True),
    ("logsigmoid", F.logsigmoid, lambda x: -np_softplus(0, -x), TF.logsigmoid, (),
     ("LogSigmoid",), True),
]  # fmt: skip

for name, fn, ref, tfn, kinks, covers, second in ACTS:
    add(name=f"act-{name}", fn=fn, ref=ref, torch_fn=tfn, shapes=[(3, 5)],
        inputs=away_from(kinks, -8.0, 8.0), covers=covers, second_order=second)  # fmt: skip


def np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


add(
    name="act-softmin",
    fn=lambda x: F.softmin(x, dim=1),
    ref=lambda x: np_softmax(-x, 1),
    torch_fn=lambda x: TF.softmin(x, dim=1),
    shapes=[(2, 4, 3)],
    covers=("Softmax",),
)
add(
    name="act-softmin-implicit-dim",
    fn=lambda x: F.softmin(x),
    ref=lambda x: np_softmax(-x, 0),
    torch_fn=lambda x: TF.softmin(x),
    shapes=[(2, 4, 3)],
    covers=("Softmax",),
)
add(name="act-glu", fn=lambda x: F.glu(x, dim=1),
    ref=lambda x: x[:, :3] / (1 + np.exp(-x[:, 3:])),
    torch_fn=lambda x: TF.glu(x, dim=1), shapes=[(2, 6, 2)], covers=("Sigmoid",))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Distances and losses


def np_pdist(a, b, p=2.0, eps=1e-6):
    d = np.abs(a - b + eps)
    return (d**p).sum(-1) ** (1 / p)


add(
    name="cosine_similarity",
    fn=lambda a, b: F.cosine_similarity(a, b, dim=1),
    ref=lambda a, b: (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1),
    torch_fn=lambda a, b: TF.cosine_similarity(a, b, dim=1),
    shapes=[(4, 3), (1, 3)],
    covers=("Norm2",),
)
add(
    name="pairwise_distance",
    fn=lambda a, b: F.pairwise_distance(a, b),
    ref=np_pdist,
    torch_fn=lambda a, b: TF.pairwise_distance(a, b),
    shapes=[(4, 3), (4, 3)],
    covers=("Norm2",),
)
add(
    name="pairwise_distance-p3-keepdim",
    fn=lambda a, b: F.pairwise_distance(a, b, 3.0, 1e-3, True),
    ref=lambda a, b: np_pdist(a, b, 3.0, 1e-3)[:, None],
    torch_fn=lambda a, b: TF.pairwise_distance(a, b, 3.0, 1e-3, True),
    shapes=[(4, 3), (3,)],
    covers=("VectorNorm",),
)

Y_RANK = np.array([1.0, -1.0, 1.0, -1.0, 1.0])
add(name="margin_ranking_loss", fn=lambda a, b: F.margin_ranking_loss(a, b, Y_RANK, margin=0.3),
    ref=lambda a, b: np.maximum(0, -Y_RANK * (a - b) + 0.3).mean(),
    torch_fn=lambda a, b: TF.margin_ranking_loss(a, b, torch.tensor(Y_RANK, dtype=a.dtype), 0.3),
    inputs=lambda rng, dt: [rng.uniform(-2, 2, 5), np.array([0.9, -0.5, 1.7, 0.2, -1.9])],
    shapes=[(5,), (5,)], covers=("Clamp",), second_order=False)  # fmt: skip


def np_triplet(a, p, n, margin=1.0, swap=False):
    dp, dn = np_pdist(a, p), np_pdist(a, n)
    if swap:
        dn = np.minimum(dn, np_pdist(p, n))
    return np.maximum(margin + dp - dn, 0)


for swap in (False, True):
    add(
        name=f"triplet_margin_loss{'-swap' if swap else ''}",
        fn=lambda a, p, n, s=swap: F.triplet_margin_loss(
            a, p, n, margin=1.5, swap=s, reduction="none"
        ),
        ref=lambda a, p, n, s=swap: np_triplet(a, p, n, 1.5, s),
        torch_fn=lambda a, p, n, s=swap: TF.triplet_margin_loss(
            a, p, n, margin=1.5, swap=s, reduction="none"
        ),
        shapes=[(6, 3), (6, 3), (6, 3)],
        covers=("Clamp", "Norm2"),
        second_order=not swap,
    )

T_POIS = np.array([[0.0, 1.0, 2.0, 5.0], [3.0, 0.5, 7.0, 1.5]])
add(name="poisson_nll_loss-log", fn=lambda x: F.poisson_nll_loss(x, T_POIS, full=True),
    ref=lambda x: (np.exp(x) - T_POIS * x + np.where(
        T_POIS > 1, T_POIS * np.log(np.maximum(T_POIS, 1)) - T_POIS
        + 0.5 * np.log(2 * np.pi * np.maximum(T_POIS, 1)), 0)).mean(),
    torch_fn=lambda x: TF.poisson_nll_loss(x, torch.tensor(T_POIS, dtype=x.dtype), full=True),
    shapes=[(2, 4)], covers=("Exp",))  # fmt: skip
add(name="poisson_nll_loss-rate", fn=lambda x: F.poisson_nll_loss(x, T_POIS, log_input=False,
                                                                  reduction="sum"),
    ref=lambda x: (x - T_POIS * np.log(x + 1e-8)).sum(),
    torch_fn=lambda x: TF.poisson_nll_loss(x, torch.tensor(T_POIS, dtype=x.dtype),
                                           log_input=False, reduction="sum"),
    shapes=[(2, 4)], domain=(0.3, 3.0), covers=("Log",))  # fmt: skip


def np_gnll(x, t, v, full=False):
    v = np.maximum(v, 1e-6)
    return 0.5 * (np.log(v) + (x - t) ** 2 / v) + (0.5 * np.log(2 * np.pi) if full else 0)


add(
    name="gaussian_nll_loss",
    fn=lambda x, t, v: F.gaussian_nll_loss(x, t, v, full=True),
    ref=lambda x, t, v: np_gnll(x, t, v, True).mean(),
    torch_fn=lambda x, t, v: TF.gaussian_nll_loss(x, t, v, full=True),
    shapes=[(3, 4), (3, 4), (3, 4)],
    domain=[(-2, 2), (-2, 2), (0.2, 2)],
    covers=("Log",),
)
add(
    name="gaussian_nll_loss-per-sample-var",
    fn=lambda x, t, v: F.gaussian_nll_loss(x, t, v, reduction="none"),
    ref=lambda x, t, v: np_gnll(x, t, v[:, None]),
    torch_fn=lambda x, t, v: TF.gaussian_nll_loss(x, t, v, reduction="none"),
    shapes=[(3, 4), (3, 4), (3,)],
    domain=[(-2, 2), (-2, 2), (0.2, 2)],
    covers=("Log",),
)


# ---------------------------------------------------------------------------------------------
# CTC


def np_ctc(lp, targets, in_len, tg_len, blank=0):
    """-log p(target | input) by the forward recursion in probability space (float64)."""
    out = []
    for b in range(lp.shape[1]):
        lab = list(targets[b][: tg_len[b]])
        ext = [blank]
        for c in lab:
            ext += [c, blank]
        y = np.exp(lp[: in_len[b], b])
        alpha = np.zeros(len(ext))
        alpha[0] = y[0, ext[0]]
        if len(ext) > 1:
            alpha[1] = y[0, ext[1]]
        for t in range(1, in_len[b]):
            new = np.zeros_like(alpha)
            for s in range(len(ext)):
                a = alpha[s] + (alpha[s - 1] if s >= 1 else 0)
                if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                    a += alpha[s - 2]
                new[s] = a * y[t, ext[s]]
            alpha = new
        p = alpha[-1] + (alpha[-2] if len(ext) > 1 else 0)
        out.append(-np.log(p))
    return np.array(out)


def np_log_softmax(x):
    z = x - x.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


CTC_TG = np.array([[1, 2, 2], [3, 1, 0], [2, 0, 0]])
CTC_TL, CTC_IL = np.array([3, 2, 1]), np.array([7, 5, 4])
CTC_TGT = torch.tensor(CTC_TG)
CTC_TLT, CTC_ILT = torch.tensor(CTC_TL), torch.tensor(CTC_IL)
for red in ("none", "mean", "sum"):
    ref_red = {"none": lambda v: v, "sum": np.sum,
               "mean": lambda v: (v / np.maximum(CTC_TL, 1)).mean()}[red]  # fmt: skip
    add(name=f"ctc_loss-{red}",
        fn=lambda x, r=red: F.ctc_loss(F.log_softmax(x, -1), CTC_TG, CTC_IL, CTC_TL, reduction=r),
        ref=lambda x, f=ref_red: f(np_ctc(np_log_softmax(x), CTC_TG, CTC_IL, CTC_TL)),
        torch_fn=lambda x, r=red: TF.ctc_loss(TF.log_softmax(x, -1), CTC_TGT, CTC_ILT, CTC_TLT,
                                              reduction=r),
        shapes=[(7, 3, 4)], covers=("LogSoftmax", "TakeAlongAxis", "Where"),
        second_order=red == "sum")  # fmt: skip
add(
    name="ctc_loss-log-probs-direct-blank3",
    fn=lambda lp: F.ctc_loss(
        lp, np.array([1, 2, 2, 0, 1]), [6, 5], [3, 2], blank=3, reduction="none"
    ),
    ref=lambda lp: np_ctc(lp, np.array([[1, 2, 2], [0, 1, 0]]), [6, 5], [3, 2], blank=3),
    torch_fn=None,
    torch_reason="PyTorch's CTC gradient w.r.t. log_probs assumes a log_softmax "
    "before it (adds exp(log_probs)); compared through log_softmax in the ctc_loss-* specs",
    shapes=[(6, 2, 4)],
    domain=(-3.0, -0.2),
    covers=("TakeAlongAxis",),
    second_order=False,
)


# ---------------------------------------------------------------------------------------------
# Convolutions in 1-3 dimensions, transposed convolutions, unfold/fold, 3-D and adaptive pools

from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402


def np_conv_nd(x, w, b=None, s=None, p=None, d=None, groups=1):
    """Direct nd cross-correlation: every window by sliding_window_view, einsum per group."""
    nd = x.ndim - 2
    s, p, d = s or (1,) * nd, p or (0,) * nd, d or (1,) * nd
    x = np.pad(x, ((0, 0), (0, 0)) + tuple((pi, pi) for pi in p))
    k = w.shape[2:]
    ext = tuple(di * (ki - 1) + 1 for di, ki in zip(d, k))
    win = sliding_window_view(x, ext, axis=tuple(range(2, 2 + nd)))
    win = win[(slice(None), slice(None), *(slice(None, None, si) for si in s),
               *(slice(None, None, di) for di in d))]  # fmt: skip
    cg, og = w.shape[1], w.shape[0] // groups
    letters = "xyz"[:nd]
    kl = "ijk"[:nd]
    sub = f"nc{letters}{kl},oc{kl}->no{letters}"
    y = np.concatenate([np.einsum(sub, win[:, g * cg : (g + 1) * cg], w[g * og : (g + 1) * og])
                        for g in range(groups)], axis=1)  # fmt: skip
    return y if b is None else y + b.reshape((1, -1) + (1,) * nd)


def np_conv_transpose(x, w, b=None, s=None, p=None, op=None, groups=1, d=None):
    """Transposed convolution by its definition: every input value scatters value * kernel
    into the output, at stride s and dilation d; then padding is cut from both ends."""
    nd = x.ndim - 2
    s, p, d, op = s or (1,) * nd, p or (0,) * nd, d or (1,) * nd, op or (0,) * nd
    n, cin, *sz = x.shape
    og, k = w.shape[1], w.shape[2:]
    full = [(a - 1) * si + di * (ki - 1) + 1 + oi for a, si, di, ki, oi in zip(sz, s, d, k, op)]
    out = np.zeros((n, og * groups, *full))
    cg = cin // groups
    for g in range(groups):
        xg, wg = x[:, g * cg : (g + 1) * cg], w[g * cg : (g + 1) * cg]
        for offs in np.ndindex(*k):
            sl = tuple(slice(o * di, o * di + si * (a - 1) + 1, si)
                       for o, di, si, a in zip(offs, d, s, sz))  # fmt: skip
            contrib = np.einsum("nc...,co->no...", xg, wg[(slice(None), slice(None), *offs)])
            out[(slice(None), slice(g * og, (g + 1) * og), *sl)] += contrib
    out = out[(slice(None), slice(None), *(slice(pi, f - pi) for pi, f in zip(p, full)))]
    return out if b is None else out + b.reshape((1, -1) + (1,) * nd)


def np_unfold(x, k, d, p, s):
    x = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    n, c, h, w = x.shape
    oh, ow = (h - d[0] * (k[0] - 1) - 1) // s[0] + 1, (w - d[1] * (k[1] - 1) - 1) // s[1] + 1
    out = np.zeros((n, c, k[0], k[1], oh, ow))
    for i in range(k[0]):
        for j in range(k[1]):
            for r in range(oh):
                for q in range(ow):
                    out[:, :, i, j, r, q] = x[:, :, r * s[0] + i * d[0], q * s[1] + j * d[1]]
    return out.reshape(n, c * k[0] * k[1], oh * ow)


def np_fold(cols, size, k, d, p, s):
    n = cols.shape[0]
    c = cols.shape[1] // (k[0] * k[1])
    h, w = size[0] + 2 * p[0], size[1] + 2 * p[1]
    oh, ow = (h - d[0] * (k[0] - 1) - 1) // s[0] + 1, (w - d[1] * (k[1] - 1) - 1) // s[1] + 1
    cols = cols.reshape(n, c, k[0], k[1], oh, ow)
    out = np.zeros((n, c, h, w))
    for i in range(k[0]):
        for j in range(k[1]):
            for r in range(oh):
                for q in range(ow):
                    out[:, :, r * s[0] + i * d[0], q * s[1] + j * d[1]] += cols[:, :, i, j, r, q]
    return out[:, :, p[0] : p[0] + size[0], p[1] : p[1] + size[1]]


def np_pool_nd(x, k, s, p, kind="max", d=None):
    nd = x.ndim - 2
    d = d or (1,) * nd
    fill = -np.inf if kind == "max" else 0.0
    x = np.pad(x, ((0, 0), (0, 0)) + tuple((pi, pi) for pi in p), constant_values=fill)
    ext = tuple(di * (ki - 1) + 1 for di, ki in zip(d, k))
    win = sliding_window_view(x, ext, axis=tuple(range(2, 2 + nd)))
    win = win[(slice(None), slice(None), *(slice(None, None, si) for si in s),
               *(slice(None, None, di) for di in d))]  # fmt: skip
    axes = tuple(range(-nd, 0))
    return win.max(axis=axes) if kind == "max" else win.mean(axis=axes)


def np_adaptive_max(x, out):
    sizes = x.shape[2:]
    y = np.zeros(x.shape[:2] + tuple(out))
    for cell in np.ndindex(*out):
        sl = tuple(
            slice((i * sz) // o, -((-(i + 1) * sz) // o)) for i, sz, o in zip(cell, sizes, out)
        )
        y[(slice(None), slice(None), *cell)] = x[(slice(None), slice(None), *sl)].max(
            axis=tuple(range(2, x.ndim))
        )
    return y


def distinct(shape, scale=0.3):
    """Values all different (no ties inside a pooling window)."""

    def sampler(rng, dtype):
        n = int(np.prod(shape))
        return [((rng.permutation(n) - n / 2) * scale / n * 8).reshape(shape)]

    return sampler


add(
    name="conv3d",
    fn=lambda x, w, b: F.conv3d(x, w, b, (1, 2, 1), (1, 0, 1), (2, 1, 1), 2),
    ref=lambda x, w, b: np_conv_nd(x, w, b, (1, 2, 1), (1, 0, 1), (2, 1, 1), 2),
    torch_fn=lambda x, w, b: TF.conv3d(x, w, b, (1, 2, 1), (1, 0, 1), (2, 1, 1), 2),
    shapes=[(1, 4, 4, 4, 3), (2, 2, 2, 2, 2), (2,)],
    covers=("ConvNd",),
)
add(
    name="conv3d-same",
    fn=lambda x, w: F.conv3d(x, w, padding="same"),
    ref=lambda x, w: np_conv_nd(np.pad(x, ((0, 0), (0, 0), (0, 1), (1, 1), (0, 1))), w),
    torch_fn=lambda x, w: TF.conv3d(x, w, padding="same"),
    shapes=[(1, 1, 3, 3, 3), (2, 1, 2, 3, 2)],
    covers=("ConvNd", "Pad"),
    second_order=False,
)
add(
    name="conv_transpose1d",
    fn=lambda x, w, b: F.conv_transpose1d(x, w, b, 3, 1, 2, 2, 2),
    ref=lambda x, w, b: np_conv_transpose(x, w, b, (3,), (1,), (2,), 2, (2,)),
    torch_fn=lambda x, w, b: TF.conv_transpose1d(x, w, b, 3, 1, 2, 2, 2),
    shapes=[(2, 4, 3), (4, 2, 3), (4,)],
    covers=("ConvTransposeNd",),
)
add(
    name="conv_transpose2d",
    fn=lambda x, w, b: F.conv_transpose2d(x, w, b, (2, 1), (1, 0), (1, 0)),
    ref=lambda x, w, b: np_conv_transpose(x, w, b, (2, 1), (1, 0), (1, 0)),
    torch_fn=lambda x, w, b: TF.conv_transpose2d(x, w, b, (2, 1), (1, 0), (1, 0)),
    shapes=[(1, 3, 3, 3), (3, 2, 3, 2), (2,)],
    covers=("ConvTransposeNd",),
)
add(
    name="conv_transpose2d-dilated-output_padding",
    fn=lambda x, w: F.conv_transpose2d(x, w, None, 1, 0, 1, 1, 2),
    ref=lambda x, w: np_conv_transpose(x, w, None, (1, 1), (0, 0), (1, 1), 1, (2, 2)),
    torch_fn=lambda x, w: TF.conv_transpose2d(x, w, None, 1, 0, 1, 1, 2),
    shapes=[(1, 2, 3, 2), (2, 1, 2, 2)],
    covers=("ConvTransposeNd",),
    second_order=False,
)
add(
    name="conv_transpose3d",
    fn=lambda x, w, b: F.conv_transpose3d(x, w, b, 2, 1, 1, 2),
    ref=lambda x, w, b: np_conv_transpose(x, w, b, (2,) * 3, (1,) * 3, (1,) * 3, 2),
    torch_fn=lambda x, w, b: TF.conv_transpose3d(x, w, b, 2, 1, 1, 2),
    shapes=[(1, 2, 2, 2, 2), (2, 1, 2, 3, 2), (2,)],
    covers=("ConvTransposeNd",),
)
add(
    name="F.unfold",
    fn=lambda x: F.unfold(x, (2, 3), (1, 2), 1, (2, 1)),
    ref=lambda x: np_unfold(x, (2, 3), (1, 2), (1, 1), (2, 1)),
    torch_fn=lambda x: TF.unfold(x, (2, 3), (1, 2), 1, (2, 1)),
    shapes=[(2, 2, 4, 5)],
    covers=("Im2ColNd",),
)
add(
    name="F.fold",
    fn=lambda x: F.fold(x, (4, 5), (2, 3), (1, 2), 1, (2, 1)),
    ref=lambda x: np_fold(x, (4, 5), (2, 3), (1, 2), (1, 1), (2, 1)),
    torch_fn=lambda x: TF.fold(x, (4, 5), (2, 3), (1, 2), 1, (2, 1)),
    shapes=[(2, 12, 9)],
    covers=("Col2ImNd",),
)
add(
    name="max_pool3d",
    fn=lambda x: F.max_pool3d(x, (2, 3, 2), (1, 2, 2), (1, 1, 0), (1, 1, 2)),
    ref=lambda x: np_pool_nd(x, (2, 3, 2), (1, 2, 2), (1, 1, 0), d=(1, 1, 2)),
    torch_fn=lambda x: TF.max_pool3d(x, (2, 3, 2), (1, 2, 2), (1, 1, 0), (1, 1, 2)),
    shapes=[(1, 2, 3, 4, 4)],
    inputs=distinct((1, 2, 3, 4, 4)),
    covers=("PoolGather",),
)
add(
    name="avg_pool3d",
    fn=lambda x: F.avg_pool3d(x, (2, 2, 3), (1, 2, 2), (1, 0, 1)),
    ref=lambda x: np_pool_nd(x, (2, 2, 3), (1, 2, 2), (1, 0, 1), "avg"),
    torch_fn=lambda x: TF.avg_pool3d(x, (2, 2, 3), (1, 2, 2), (1, 0, 1)),
    shapes=[(1, 2, 3, 4, 4)],
    covers=("AvgPool3d",),
)
add(
    name="avg_pool3d-ceil-exclude-pad",
    fn=lambda x: F.avg_pool3d(x, 2, 2, 1, ceil_mode=True, count_include_pad=False),
    ref=lambda x: np_ceil_avg3(x),
    torch_fn=lambda x: TF.avg_pool3d(x, 2, 2, 1, ceil_mode=True, count_include_pad=False),
    shapes=[(1, 1, 3, 4, 3)],
    covers=("AvgPool3d",),
    second_order=False,
)


def np_ceil_avg3(x):
    """avg_pool3d(k=2, s=2, p=1, ceil_mode, count_include_pad=False) by its definition: the
    mean of the real cells of each window (windows start at -1, 1, 3, ...)."""
    n, c, *sz = x.shape
    outs = [-(-(a + 2 - 2) // 2) + 1 for a in sz]
    outs = [o - 1 if (o - 1) * 2 >= a + 1 else o for o, a in zip(outs, sz)]
    y = np.zeros((n, c, *outs))
    for cell in np.ndindex(*outs):
        sl = tuple(slice(max(o * 2 - 1, 0), min(o * 2 + 1, a)) for o, a in zip(cell, sz))
        y[(slice(None), slice(None), *cell)] = x[(slice(None), slice(None), *sl)].mean(
            axis=(2, 3, 4)
        )
    return y


UNPOOL_IDX = np.array([[[[0, 3], [9, 14]], [[5, 6], [8, 11]]]])  # into a (4, 4) plane
add(
    name="max_unpool2d",
    fn=lambda x: F.max_unpool2d(x, UNPOOL_IDX, 2),
    ref=lambda x: np_unpool(x, UNPOOL_IDX, (4, 4)),
    torch_fn=lambda x: TF.max_unpool2d(x, torch.tensor(UNPOOL_IDX), 2),
    shapes=[(1, 2, 2, 2)],
    covers=("MaxUnpool",),
)


def np_unpool(x, idx, out):
    n, c = x.shape[:2]
    y = np.zeros((n, c, int(np.prod(out))))
    np.put_along_axis(y, idx.reshape(n, c, -1), x.reshape(n, c, -1), axis=2)
    return y.reshape(n, c, *out)


add(
    name="adaptive_max_pool2d",
    fn=lambda x: F.adaptive_max_pool2d(x, (3, 2)),
    ref=lambda x: np_adaptive_max(x, (3, 2)),
    torch_fn=lambda x: TF.adaptive_max_pool2d(x, (3, 2)),
    shapes=[(2, 2, 5, 5)],
    inputs=distinct((2, 2, 5, 5)),
    covers=("PoolGather",),
)


# ---------------------------------------------------------------------------------------------
# Resampling: interpolate, pixel_shuffle, grid_sample, affine_grid


def np_src(i, n_in, n_out, align, scale=None):
    """PyTorch's source coordinate of output index i (ATen area_pixel_compute_source_index,
    before the linear modes' clamp at 0)."""
    if align:
        return i * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    step = 1.0 / scale if scale else n_in / n_out
    return (i + 0.5) * step - 0.5


def np_cubic_w(t, a=-0.75):
    """Weights of the taps at -1, 0, 1, 2 for a fractional position t (Keys' kernel)."""

    def k(x):
        x = abs(x)
        if x <= 1:
            return ((a + 2) * x - (a + 3)) * x * x + 1
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a if x < 2 else 0.0

    return [k(t + 1), k(t), k(1 - t), k(2 - t)]


def np_resize2d(x, out, mode, align=False, scale=None):
    """Bilinear / bicubic resize of (N, C, H, W), one output pixel at a time."""
    n, c, h, w = x.shape
    y = np.zeros((n, c, *out))
    for i in range(out[0]):
        for j in range(out[1]):
            sy = np_src(i, h, out[0], align, scale)
            sx = np_src(j, w, out[1], align, scale)
            if mode == "bilinear":
                sy, sx = max(sy, 0.0), max(sx, 0.0)
                y0, x0 = min(int(np.floor(sy)), h - 1), min(int(np.floor(sx)), w - 1)
                ly, lx = sy - y0, sx - x0
                y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
                y[:, :, i, j] = (1 - ly) * (
                    (1 - lx) * x[:, :, y0, x0] + lx * x[:, :, y0, x1]
                ) + ly * ((1 - lx) * x[:, :, y1, x0] + lx * x[:, :, y1, x1])
            else:
                y0, x0 = int(np.floor(sy)), int(np.floor(sx))
                wy, wx = np_cubic_w(sy - y0), np_cubic_w(sx - x0)
                for a in range(4):
                    for b in range(4):
                        r = min(max(y0 - 1 + a, 0), h - 1)
                        q = min(max(x0 - 1 + b, 0), w - 1)
                        y[:, :, i, j] += wy[a] * wx[b] * x[:, :, r, q]
    return y  # fmt: skip


def np_nearest(x, out):
    idx = [np.minimum((np.arange(o) * (n / o)).astype(int), n - 1)
           for n, o in zip(x.shape[2:], out)]  # fmt: skip
    return x[np.ix_(range(x.shape[0]), range(x.shape[1]), *idx)]


for name, kw, ref in [
    ("bilinear", dict(size=(4, 7)), lambda x: np_resize2d(x, (4, 7), "bilinear")),
    ("bilinear-align", dict(size=(7, 3), align_corners=True),
     lambda x: np_resize2d(x, (7, 3), "bilinear", True)),
    ("bilinear-scale", dict(scale_factor=1.7), lambda x: np_resize2d(x, (5, 8), "bilinear",
                                                                     scale=1.7)),
    ("bicubic", dict(size=(6, 4)), lambda x: np_resize2d(x, (6, 4), "bicubic")),
    ("bicubic-align", dict(size=(2, 9), align_corners=True),
     lambda x: np_resize2d(x, (2, 9), "bicubic", True)),
    ("nearest", dict(size=(7, 2)), lambda x: np_nearest(x, (7, 2))),
]:  # fmt: skip
    mode = name.split("-")[0]
    add(name=f"interpolate-{name}",
        fn=lambda x, m=mode, k=kw: F.interpolate(x, mode=m, **k), ref=ref,
        torch_fn=lambda x, m=mode, k=kw: TF.interpolate(x, mode=m, **k),
        shapes=[(1, 2, 3, 5)],
        covers=("GetItem",) if mode == "nearest" else ("FixedMatmul",))  # fmt: skip
add(name="interpolate-linear", fn=lambda x: F.interpolate(x, scale_factor=2.5, mode="linear"),
    ref=lambda x: np_resize2d(x[:, :, None], (1, 10), "bilinear", scale=None)[:, :, 0],
    torch_fn=lambda x: TF.interpolate(x, scale_factor=2.5, mode="linear",
                                      recompute_scale_factor=True),
    shapes=[(2, 2, 4)], covers=("FixedMatmul",))  # fmt: skip
add(
    name="interpolate-trilinear-align",
    fn=lambda x: F.interpolate(x, size=(3, 4, 2), mode="trilinear", align_corners=True),
    ref=lambda x: np_trilinear_align(x, (3, 4, 2)),
    torch_fn=lambda x: TF.interpolate(x, size=(3, 4, 2), mode="trilinear", align_corners=True),
    shapes=[(1, 1, 2, 3, 3)],
    covers=("FixedMatmul",),
)


def np_trilinear_align(x, out):
    """Trilinear with align_corners as three 1-D linear resizes (the map is separable)."""
    for ax, o in zip((2, 3, 4), out):
        n = x.shape[ax]
        src = np.arange(o) * ((n - 1) / (o - 1) if o > 1 else 0.0)
        i0 = np.minimum(np.floor(src).astype(int), n - 1)
        i1 = np.minimum(i0 + 1, n - 1)
        lam = (src - i0).reshape([-1 if a == ax else 1 for a in range(x.ndim)])
        x = np.take(x, i0, axis=ax) * (1 - lam) + np.take(x, i1, axis=ax) * lam
    return x


def np_pixel_shuffle(x, r):
    n, c, h, w = x.shape
    y = np.zeros((n, c // (r * r), h * r, w * r))
    for ch in range(c // (r * r)):
        for i in range(r):
            for j in range(r):
                y[:, ch, i::r, j::r] = x[:, ch * r * r + i * r + j]
    return y


add(
    name="pixel_shuffle",
    fn=lambda x: F.pixel_shuffle(x, 2),
    ref=lambda x: np_pixel_shuffle(x, 2),
    torch_fn=lambda x: TF.pixel_shuffle(x, 2),
    shapes=[(2, 8, 3, 2)],
    covers=("Transpose",),
)
add(
    name="pixel_unshuffle",
    fn=lambda x: F.pixel_unshuffle(F.pixel_shuffle(x, 3), 3),
    ref=lambda x: x,
    torch_fn=lambda x: TF.pixel_unshuffle(TF.pixel_shuffle(x, 3), 3),
    shapes=[(1, 9, 2, 3)],
    covers=("Transpose",),
)


def np_grid_sample(x, g, padding_mode="zeros", align=False):
    """Bilinear grid_sample by its definition, one output point at a time."""
    n, c, h, w = x.shape
    ho, wo = g.shape[1:3]
    y = np.zeros((n, c, ho, wo))

    def unnorm(v, size):
        return (v + 1) / 2 * (size - 1) if align else ((v + 1) * size - 1) / 2

    for b in range(n):
        for i in range(ho):
            for j in range(wo):
                sx, sy = unnorm(g[b, i, j, 0], w), unnorm(g[b, i, j, 1], h)
                if padding_mode == "border":
                    sx, sy = min(max(sx, 0), w - 1), min(max(sy, 0), h - 1)
                x0, y0 = int(np.floor(sx)), int(np.floor(sy))
                for dy in (0, 1):
                    for dx in (0, 1):
                        r, q = y0 + dy, x0 + dx
                        if 0 <= r < h and 0 <= q < w:
                            wgt = (1 - abs(sx - q)) * (1 - abs(sy - r))
                            y[b, :, i, j] += wgt * x[b, :, r, q]
    return y


def grid_points(shape, lo=-1.3, hi=1.3):
    """Grid coordinates kept away from pixel boundaries (where bilinear weights kink)."""

    def sampler(rng, dtype):
        x = rng.standard_normal((2, 2, 3, 4))
        g = rng.uniform(lo, hi, size=shape)
        return [x, g]

    return sampler


for pm, align in (("zeros", False), ("border", True), ("zeros", True)):
    add(name=f"grid_sample-{pm}{'-align' if align else ''}",
        fn=lambda x, g, p=pm, a=align: F.grid_sample(x, g, "bilinear", p, a),
        ref=lambda x, g, p=pm, a=align: np_grid_sample(x, g, p, a),
        torch_fn=lambda x, g, p=pm, a=align: TF.grid_sample(x, g, "bilinear", p, a),
        shapes=[(2, 2, 3, 4), (2, 3, 2, 2)], inputs=grid_points((2, 3, 2, 2)),
        covers=("GetItem",))  # fmt: skip
add(name="affine_grid", fn=lambda t: F.affine_grid(t, (2, 1, 3, 4), align_corners=False),
    ref=lambda t: np.einsum("hwk,njk->nhwj", np.stack(np.meshgrid(
        (np.arange(4) * 2 + 1) / 4 - 1, (np.arange(3) * 2 + 1) / 3 - 1) + (np.ones((3, 4)),), -1),
        t),
    torch_fn=lambda t: TF.affine_grid(t, (2, 1, 3, 4), align_corners=False),
    shapes=[(2, 2, 3)], covers=("MatMul",))  # fmt: skip
