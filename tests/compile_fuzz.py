"""Random-program differential fuzzer for descent.compile (session 19, helper-133).

Each program is a straight line of 3-12 ops drawn from `OPS` (elementwise, comparisons and
casts, reductions and orderings, indexing with indices computed inside the program, shape
ops, products, losses, pooling, normalisation, embedding, one_hot, dropout), then a weighted
`.sum()` of every differentiable result, its backward and optionally an optimizer step on
captured parameters. The source is generated as text (so a failing case prints as a
function one can paste), and every op is tried on the first call's data while generating, so
only ops that run are kept.

The program runs six times compiled and six times eagerly on copies (a second set of
parameters and optimizer): calls 0 and 1 see the same data, calls 2-5 new data (sometimes
rounded, so that ties, equal maxima and repeated values appear, sometimes with larger
integers). Every call's outputs, input gradients, parameters and their gradients must equal
eager's bitwise (NaN-aware, dtype and shape too). A fallback to eager (CompileWarning) is
allowed; a different value or an exception only the compiled call raises is a bug.

    python tests/compile_fuzz.py --programs 5000 --seed 7        # a campaign
    python tests/compile_fuzz.py --programs 1 --seed 7 --show    # print program 7's source

A failing program is shrunk (lines removed while it still fails) and printed.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

import descent
import descent.nn.functional as F
from descent.compiler import CompileWarning

T = descent

# ---------------------------------------------------------------------------------------------
# The op table. Each entry is a function `(p) -> expression source or None`, where `p` is a
# Picker over the variables defined so far (names with their first-call values).


class Picker:
    """Chooses variables of the kinds an op needs, and valid dims and sizes for them."""

    def __init__(self, rng, env):
        self.rng = rng
        self.env = env  # name -> value on the first call's data

    def _pick(self, pred):
        names = [n for n, v in self.env.items() if isinstance(v, descent.Tensor) and pred(v)]
        if not names:
            return None
        return names[self.rng.integers(len(names))]

    def f(self, ndim=None, min_ndim=0):
        """A floating variable (of `ndim` dims, or at least `min_ndim`)."""
        return self._pick(
            lambda v: v.dtype.is_floating_point
            and v.numel() > 0
            and (v.ndim == ndim if ndim is not None else v.ndim >= min_ndim)
        )

    def i(self, ndim=None):
        """An integer variable."""
        return self._pick(
            lambda v: v.dtype in (descent.int64, descent.int32)
            and v.numel() > 0
            and (ndim is None or v.ndim == ndim)
        )

    def b(self):
        """A bool variable."""
        return self._pick(lambda v: v.dtype == descent.bool and v.numel() > 0)

    def like(self, name):
        """Another floating variable with `name`'s shape (or `name` flipped)."""
        shape = self.env[name].shape
        other = self._pick(lambda v: v.dtype.is_floating_point and v.shape == shape)
        if other is None or other == name:
            return f"{name}.flip(0)" if len(shape) else f"({name} * 0.5)"
        return other

    def dim(self, name):
        nd = self.env[name].ndim
        return int(self.rng.integers(nd)) if nd else 0

    def size(self, name, d):
        return self.env[name].shape[d]

    def int_of(self, n):
        """An index expression with values in [0, n) from an integer or float variable (an
        int64 one, or an int32 one a quarter of the time)."""
        idx = self._int_of(n)
        if idx is not None and self.rng.random() < 0.25:
            return f"{idx}.int()"
        return idx

    def _int_of(self, n):
        iv = self.i()
        if iv is not None and self.rng.random() < 0.6:
            return f"({iv}.flatten().abs() % {n})"
        fv = self.f(min_ndim=1)
        if fv is None:
            return None
        k = self.rng.choice(["argsort", "argmax0", "round"])
        if k == "argsort":
            return f"({fv}.flatten().argsort() % {n})"
        if k == "argmax0" and self.env[fv].ndim >= 2:
            return f"({fv}.argmax(-1).flatten() % {n})"
        return f"(({fv}.flatten() * 3).long().abs() % {n})"

    def choice(self, xs):
        return xs[self.rng.integers(len(xs))]


def _u(fn_src):
    """Unary float op: `fn_src` formats with the variable."""
    return lambda p: (lambda a: a and fn_src.format(a=a))(p.f())


def _bin(op_src):
    def make(p):
        a = p.f()
        if a is None:
            return None
        b = p.like(a) if p.rng.random() < 0.8 else p.f()
        return op_src.format(a=a, b=b)

    return make


def _red(src, min_ndim=1):
    def make(p):
        a = p.f(min_ndim=min_ndim)
        if a is None:
            return None
        d = p.dim(a)
        n = p.size(a, d) if p.env[a].ndim else 1
        k = int(p.rng.integers(1, max(n, 1) + 1))
        return src.format(a=a, d=d, k=k, kd=p.choice(["True", "False"]))

    return make


def _gather(p):
    a = p.f(min_ndim=1)
    if a is None:
        return None
    d = p.dim(a)
    src = p.like(a)
    idx = p.choice([
        f"{src}.argsort({d})",
        f"{src}.argmax({d}, keepdim=True)",
        f"{src}.argsort({d}, descending=True)",
        f"{src}.topk(1, {d}).indices",
    ])
    return f"{a}.gather({d}, {idx})"


def _scatter(p):
    a = p.f(min_ndim=1)
    if a is None:
        return None
    d = p.dim(a)
    b = p.like(a)
    return p.choice([
        f"T.zeros_like({a}).scatter({d}, {b}.argsort({d}), {a})",
        f"{a}.scatter({d}, {b}.argmax({d}, keepdim=True), 0.0)",
        f"{a}.scatter_add({d}, {b}.argsort({d}), {b})",
        f"{a}.scatter_add({d}, ({b} * 2).round().long().abs() % {p.size(a, d)}, {b})",
        f"{a}.scatter_reduce({d}, {b}.argsort({d}), {b}, 'amax')",
        f"{a}.scatter_reduce({d}, ({b}.abs() * 2).long() % {p.size(a, d)}, {b}, 'sum')",
        f"{a}.scatter_reduce({d}, ({b}.abs() * 2).long() % {p.size(a, d)}, {b}, 'mean', "
        "include_self=False)",
    ])


def _index_select(p):
    a = p.f(min_ndim=1)
    if a is None:
        return None
    d = p.dim(a)
    idx = p.int_of(p.size(a, d))
    return idx and f"{a}.index_select({d}, {idx})"


def _take(p):
    a = p.f()
    if a is None:
        return None
    idx = p.int_of(p.env[a].numel())
    return idx and f"{a}.take({idx})"


def _adv(p):
    a = p.f(min_ndim=1)
    if a is None:
        return None
    n0 = p.size(a, 0)
    i0 = p.int_of(n0)
    if i0 is None:
        return None
    if p.env[a].ndim >= 2 and p.rng.random() < 0.5:
        n1 = p.size(a, 1)
        i1 = p.int_of(n1)
        if i1 is None:
            return None
        return p.choice([
            f"{a}[{i0}[:1], {i1}[:1]]",
            f"{a}[:, {i1}]",
            f"{a}[T.arange({n0}), ({i1}.repeat({n0}))[:{n0}]]",
        ])
    return f"{a}[{i0}]"


def _index_ops(p):
    a = p.f(min_ndim=1)
    if a is None:
        return None
    n0 = p.size(a, 0)
    perm = f"{p.like(a)}.flatten()[:{n0}].argsort()" if p.env[a].numel() >= n0 else None
    if perm is None:
        return None
    i = p.int_of(n0)
    return p.choice([
        f"{a}.index_add(0, {perm}, {a} * 2)",
        f"{a}.index_copy(0, {perm}, {a} * 3)",
        f"{a}.index_fill(0, {i}, -1.0)" if i else None,
        f"{a}.index_put(({i},), T.tensor(1.5), accumulate=True)" if i else None,
        f"{a}.index_put(({perm},), {a} * 2)",
        f"{a}.put({p.int_of(p.env[a].numel())}, T.tensor(2.0), accumulate=True)",
        f"{a}.masked_fill({a} > {a}.mean(), 0.0)",
        f"{a}.masked_fill({p.like(a)} < 0, float('-inf')).softmax(-1)",
    ])


def _mask_ops(p):
    m = p.b()
    if m is None:
        return None
    shape = p.env[m].shape
    a = p._pick(lambda v: v.dtype.is_floating_point and v.shape == shape)
    ops = [f"{m}.float()", f"{m}.long()", f"~{m}", f"{m}.sum(-1)", f"{m}.any(-1)",
           f"({m} & {m}.flip(0))", f"{m}.int().cumsum(-1)"]
    if a:
        ops += [f"T.where({m}, {a}, {a} * -2)", f"{a}.masked_fill({m}, 3.0)",
                f"{a} * {m}", f"T.where({m}, {a}, 0.0)"]
    return p.choice(ops)


def _int_ops(p):
    v = p.i()
    if v is None:
        return None
    return p.choice([
        f"{v} + 1", f"{v} * 2", f"{v} // 2", f"{v} % 3", f"{v}.clamp(0, 2)",
        f"{v}.float() * 0.5", f"{v}.sort(-1).values", f"{v}.argsort(-1)",
        f"({v} == {v}.flatten()[0])", f"{v}.max()", f"{v}.cumsum(-1)",
        f"T.bincount({v}.flatten().abs())", f"{v}.flatten().unique_consecutive()",
        f"({v}.abs() % 4).mode(-1).values",
    ])


def _cmp(p):
    a = p.f()
    if a is None:
        return None
    b = p.like(a)
    return p.choice([
        f"({a} > {b})", f"({a} >= 0.1)", f"({a} == {a}.round())", f"({a} != {b})",
        f"T.logical_and({a} > 0, {b} < 0)", f"{a}.isnan()", f"({a} < {a}.mean())",
        f"T.isclose({a}, {b}.round())", f"{a}.signbit()",
    ])


def _cast(p):
    a = p.f()
    if a is None:
        return None
    return p.choice([
        f"{a}.long()", f"({a} * 3).int()", f"{a}.double()", f"{a}.half().float()",
        f"{a}.to(T.int64)", f"{a}.bool()", f"({a} * 4).to(T.int32)",
        f"{a}.bfloat16().float()",
    ])


def _where_clamp(p):
    a = p.f()
    if a is None:
        return None
    b = p.like(a)
    return p.choice([
        f"T.where({a} > {b}, {a}, {b})", f"T.where({a} > 0, {a}, 0.0)",
        f"{a}.clamp(-0.5, 0.5)", f"{a}.clamp(min={b})", f"{a}.clamp(max={b}.mean())",
        f"T.maximum({a}, {b})", f"T.minimum({a}, {b})", f"{a}.clamp_min(0.1)",
        f"F.hardtanh({a})", f"F.relu6({a} * 4)", f"F.threshold({a}, 0.2, -1.0)",
        f"{a}.nan_to_num(0.0, 1.0, -1.0)",
    ])


def _order(p):
    a = p.f(min_ndim=1)
    if a is None:
        return None
    d = p.dim(a)
    n = p.size(a, d)
    k = int(p.rng.integers(1, n + 1))
    return p.choice([
        f"{a}.sort({d}).values", f"{a}.sort({d}, descending=True).indices",
        f"{a}.sort({d}, stable=True).indices", f"{a}.argsort({d})",
        f"{a}.topk({k}, {d}).values", f"{a}.topk({k}, {d}, largest=False).indices",
        f"{a}.median({d}).values", f"{a}.median({d}).indices", f"{a}.median()",
        f"{a}.nanmedian({d}).values", f"({a} * 2).round().mode({d}).values",
        f"({a} * 2).round().mode({d}).indices", f"{a}.kthvalue({k}, {d}).values",
        f"{a}.kthvalue({k}, {d}).indices", f"{a}.cummax({d}).values",
        f"{a}.cummax({d}).indices", f"{a}.cummin({d}).values", f"{a}.cummin({d}).indices",
        f"({a} * 2).round().flatten().unique_consecutive()", f"{a}.msort()",
        f"{a}.argmax({d})", f"{a}.argmin()", f"{a}.max({d}).values", f"{a}.max({d}).indices",
        f"{a}.min({d}, keepdim=True).values", f"{a}.aminmax(dim={d}).max",
        f"T.quantile({a}, 0.3, dim={d})", f"({a} * 2).round().unique()",
        f"T.searchsorted({a}.flatten().sort().values, {p.like(a)})",
        f"T.bucketize({a}, T.tensor([-1.0, 0.0, 1.0]))",
        f"T.histc({a}, 4, -2, 2)", f"{a}.count_nonzero({d})",
        f"({a}.abs() * 2).round().long().flatten().bincount()",
    ])


def _shape(p):
    a = p.f(min_ndim=1)
    if a is None:
        return None
    v = p.env[a]
    d = p.dim(a)
    n = v.shape[d]
    nd = v.ndim
    perm = list(p.rng.permutation(nd))
    ops = [
        f"{a}.reshape(-1)", f"{a}.flatten()", f"{a}.unsqueeze(0)", f"{a}.flip({d})",
        f"{a}.roll(1, {d})", f"{a}.narrow({d}, 0, {max(1, n // 2)})",
        f"{a}.permute({', '.join(map(str, perm))})", f"{a}.repeat({', '.join(['2'] * nd)})",
        f"T.cat([{a}, {p.like(a)}], {d})", f"T.stack([{a}, {p.like(a)}], {d})",
        f"{a}.split({max(1, n // 2)}, {d})[0]", f"{a}.chunk(2, {d})[-1]",
        f"{a}.unbind({d})[0]" if nd > 1 else f"{a}[1:]", f"{a}.movedim({d}, 0)",
        f"{a}.contiguous()", f"{a}[..., ::2]", f"{a}.expand(2, *{a}.shape)",
    ]
    if nd == 2:
        ops += [f"{a}.t()", f"{a}.tril()", f"{a}.triu(1)", f"{a}.diagonal()",
                f"{a}.transpose(0, 1).reshape({v.shape[1]}, -1)"]
    if v.numel() % 2 == 0:
        ops.append(f"{a}.view(2, -1)")
    return p.choice(ops)


def _matmul(p):
    a = p.f(min_ndim=2)
    if a is None:
        return None
    v = p.env[a]
    b = p._pick(lambda u: u.dtype == v.dtype and u.ndim == 2 and u.shape[0] == v.shape[-1])
    ops = [f"{a} @ {a}.transpose(-1, -2)", f"T.einsum('...j,...j->...', {a}, {a})"]
    if b:
        ops += [f"{a} @ {b}", f"F.linear({a}, {b}.t())"]
    if v.ndim == 2:
        ops += [f"T.einsum('ij,kj->ik', {a}, {a}.flip(0))", f"T.mm({a}.t(), {a})",
                f"T.bmm({a}.unsqueeze(0), {a}.t().unsqueeze(0))[0]"]
    if v.ndim == 3:
        ops.append(f"T.bmm({a}, {a}.transpose(1, 2))")
    return p.choice(ops)


def _loss(p):
    a = p.f(ndim=2)
    if a is None:
        return None
    n, c = p.env[a].shape
    b = p.like(a)
    tgt = p.int_of(c)
    if tgt is None:
        return None
    tgt = f"{tgt}[:{n}].repeat({n})[:{n}]"
    red = p.choice(["'mean'", "'sum'", "'none'"])
    return p.choice([
        f"F.cross_entropy({a}, {tgt}, reduction={red})",
        f"F.cross_entropy({a}, {b}.argmax(1))",
        f"F.cross_entropy({a}, {b}.argmin(1), label_smoothing=0.1)",
        f"F.cross_entropy({a}, {tgt}, ignore_index=0)",
        f"F.cross_entropy({a}, {b}.softmax(1))",
        f"F.cross_entropy({a}, {tgt}, weight=T.arange(1.0, {c + 1}.0))",
        f"F.nll_loss({a}.log_softmax(1), {tgt}, reduction={red})",
        f"F.nll_loss({a}.log_softmax(1), {b}.argmax(1), ignore_index=1)",
        f"F.mse_loss({a}, {b}, reduction={red})", f"F.l1_loss({a}, {b})",
        f"F.smooth_l1_loss({a}, {b}, reduction={red})", f"F.huber_loss({a}, {b}, delta=0.5)",
        f"F.binary_cross_entropy_with_logits({a}, ({b} > 0).float())",
        f"F.binary_cross_entropy({a}.sigmoid(), {b}.sigmoid(), reduction={red})",
        f"F.kl_div({a}.log_softmax(1), {b}.softmax(1), reduction='batchmean')",
        f"F.multi_margin_loss({a}, {tgt})", f"F.soft_margin_loss({a}, {b}.sign())",
        f"F.cosine_similarity({a}, {b})", f"F.hinge_embedding_loss({a}, {b}.sign())",
        f"F.margin_ranking_loss({a}, {b}, ({a} > {b}).float() * 2 - 1)",
        f"F.triplet_margin_loss({a}, {b}, {a}.flip(0))",
        f"F.poisson_nll_loss({a}, {b}.abs())",
        f"F.gaussian_nll_loss({a}, {b}, {a}.abs() + 0.1)",
        f"F.multilabel_soft_margin_loss({a}, ({b} > 0).float())",
        f"F.cosine_embedding_loss({a}, {b}, ({a}.sum(1) > 0).float() * 2 - 1)",
        f"F.one_hot({tgt}, {c}).float() * {a}",
        f"F.embedding({tgt}, {a}.t())",
    ])


def _nn(p):
    im = p.f(ndim=4)
    a = p.f(min_ndim=2)
    ops = []
    if im is not None:
        h = p.env[im].shape[-1]
        ch = p.env[im].shape[1]
        ops += [
            f"F.max_pool2d({im}, 2)", f"F.avg_pool2d({im}, 2)", f"F.adaptive_avg_pool2d({im}, 2)",
            f"F.adaptive_max_pool2d({im}, 3)", f"F.max_pool2d({im}, 2, return_indices=True)[1]",
            f"F.max_pool2d({im}, 3, 1, 1)", f"F.lp_pool2d({im}, 2, 2)",
            f"F.group_norm({im}, 1)", f"F.instance_norm({im})",
            f"F.batch_norm({im}, None, None, training=True)",
            f"F.interpolate({im}, scale_factor=2, mode='nearest')",
            f"F.interpolate({im}, size={h + 1}, mode='bilinear')",
            f"F.pad({im}, (1, 1, 0, 2), mode='reflect')" if h > 2 else f"F.pad({im}, (1, 1))",
            f"F.dropout2d({im}, 0.5, training=True)",
            f"F.conv2d({im}, W_conv[:, :{ch}])" if ch <= 3 and h >= 3 else f"F.relu({im})",
            f"F.max_pool1d({im}.flatten(2), 2)", f"F.local_response_norm({im}, 2)",
            f"F.unfold({im}, 2)", f"F.pixel_shuffle({im}.repeat(1, 4, 1, 1), 2)",
        ]
    if a is not None:
        last = p.env[a].shape[-1]
        ops += [
            f"F.layer_norm({a}, ({last},))", f"F.normalize({a}, dim=-1)",
            f"F.dropout({a}, 0.3, training=True)", f"F.softmax({a}, -1)",
            f"F.log_softmax({a}, 0)", f"F.gelu({a})", f"F.rms_norm({a}, ({last},))",
            f"F.glu({a}.repeat(1, 2))", f"F.alpha_dropout({a}, 0.2, training=True)",
            f"F.batch_norm({a}.reshape({a}.shape[0], -1), None, None, training=True)",
            f"F.gumbel_softmax({a}, hard=True)", f"F.embedding({p.int_of(last)}, {a}.t())",
        ]
    return p.choice(ops) if ops else None


def _elementwise(p):
    a = p.f()
    if a is None:
        return None
    return p.choice([
        f"{a}.exp()", f"{a}.tanh()", f"{a}.sigmoid()", f"{a}.relu()", f"{a}.abs()",
        f"-{a}", f"{a}.sin()", f"({a}.abs() + 1).sqrt()", f"({a}.abs() + 1).log()",
        f"F.silu({a})", f"F.softplus({a})", f"F.elu({a})", f"F.leaky_relu({a}, 0.1)",
        f"F.hardsigmoid({a})", f"F.hardswish({a})", f"{a}.sign()", f"{a}.round()",
        f"{a}.floor()", f"{a}.ceil()", f"{a}.trunc()", f"{a}.frac()", f"{a}.square()",
        f"{a}.erf()", f"F.logsigmoid({a})", f"{a}.pow(3)", f"({a}.abs() + 0.5).rsqrt()",
        f"{a}.reciprocal()", f"{a} * 2 + 1", f"F.mish({a})", f"F.celu({a})", f"F.selu({a})",
        f"F.softsign({a})", f"F.tanhshrink({a})", f"F.softshrink({a}, 0.3)",
        f"F.hardshrink({a}, 0.3)", f"({a} * 3).round() / 3", f"{a}.log1p()",
        f"{a}.expm1()", f"{a}.atan()", f"T.special.erfinv({a}.tanh() * 0.9)",
    ])


def _reduce(p):
    return _red(p.choice([
        "{a}.sum({d})", "{a}.mean({d}, keepdim={kd})", "{a}.amax({d})", "{a}.amin({d})",
        "{a}.logsumexp({d})", "{a}.var({d})", "{a}.std()", "{a}.norm()",
        "{a}.norm(dim={d})", "{a}.cumsum({d})", "{a}.cumprod({d})", "{a}.prod({d})",
        "{a}.softmax({d})", "{a}.log_softmax({d})", "{a}.max()", "{a}.sum()",
        "{a}.logcumsumexp({d})", "({a} > 0).all({d})", "({a} > 0).any()",
        "{a}.nansum({d})", "{a}.var_mean({d})[0]", "{a}.diff(dim={d})",
    ]))(p)


def _mixed(p):
    """Binary ops between a float and an integer or bool variable (type promotion)."""
    a = p.f()
    o = p.i() if p.rng.random() < 0.7 else p.b()
    if a is None or o is None:
        return None
    o = p.choice([o, f"{o}.reshape(-1, 1)", f"{o}.flatten()[:1]", f"{o}.unsqueeze(-1)"])
    return p.choice([
        f"{a} * {o}", f"{a} + {o}", f"{o} - {a}", f"{a} / ({o} + 1)", f"T.where({o} > 1, {a}, 0)",
        f"{a}.double() * {o}", f"{a} ** {o}.clamp(0, 3)", f"T.maximum({a}, {o})",
        f"{a}.masked_fill({o} > 1, 9.0)", f"({a} > {o})", f"{a}.clamp(min={o} * 0.1)",
        f"T.div({o}, 2, rounding_mode='floor')", f"T.div({a} * 4, {o} + 1, rounding_mode='trunc')",
        f"{a}.half() + {a}", f"{a}.double() + {a}", f"T.lerp({a}, {a}.double(), 0.5)",
    ])


def _inplace(p):
    """In-place writes into a fresh copy under no_grad, or into a computed tensor with grad."""
    a = p.f(min_ndim=1)
    if a is None:
        return None
    n0 = p.size(a, 0)
    i = p.int_of(n0)
    b = p.like(a)
    d = p.dim(a)
    writes = [
        f"h[{i}] = 0.0" if i else "h[0] = 0.0",
        f"h[{i}] += 1.0" if i else "h += 1.0",
        f"h.index_put_(({i},), T.tensor(2.0), accumulate=True)" if i else "h.zero_()",
        f"h.masked_fill_({b} > 0, -1.0)", f"h.clamp_(min={b})", "h.clamp_(-0.3, 0.3)",
        f"h.scatter_({d}, {b}.argsort({d}), {b})", f"h.mul_({b})", "h.relu_()",
        f"h.add_({b}.argmax({d}, keepdim=True))", f"h.copy_({b}.sort({d}).values)",
        f"h.index_fill_(0, {i}, 3.0)" if i else "h.fill_(1.0)",
        f"h.scatter_add_({d}, {b}.argsort({d}), {b})",
        f"h[{b} > 0] = 2.0", f"h.masked_scatter_({b} > 0, {b} * 5)",
        f"h.index_add_(0, {b}.flatten()[:{n0}].argsort(), {b})",
        f"h[T.arange({n0}), {p.int_of(p.env[a].shape[-1])}] = 7.0" if p.env[a].ndim == 2
        else "h.neg_()",
    ]
    w = "{out}" + p.choice(writes)[1:]  # each write starts with its target, h
    if p.rng.random() < 0.5:  # a copy written under no_grad (not recorded by autograd)
        return f"{{out}} = {a}.detach().clone()\nwith T.no_grad():\n    {w}"
    return f"{{out}} = {a} * 1\n{w}"  # a computed tensor: the write is a graph op


def _linalg(p):
    a = p.f(ndim=2)
    if a is None:
        return None
    m = f"({a} @ {a}.t() + T.eye({p.env[a].shape[0]}))"
    return p.choice([
        f"T.linalg.det({m})", f"T.linalg.inv({m})", f"T.linalg.solve({m}, {a})",
        f"T.linalg.cholesky({m})", f"T.linalg.eigh({m}).eigenvalues", f"T.linalg.qr({a}).R",
        f"T.linalg.svdvals({a})", f"T.linalg.pinv({a})", f"T.linalg.slogdet({m}).logabsdet",
        f"T.linalg.matrix_norm({a})", f"T.linalg.vector_norm({a}, 3, dim=-1)",
        f"T.linalg.matrix_exp({m} * 0.1)", f"T.linalg.norm({a}, 'nuc')",
        f"T.linalg.matrix_norm({a}, 2)", f"T.linalg.lstsq({m}, {a}).solution",
        f"T.linalg.norm({a}, float('inf'), dim=1)", f"T.cdist({a}, {a}.flip(0))",
        f"T.outer({a}[0], {a}[:, 0])", f"T.kron({a}, {a}[:1, :2])", f"T.trace({m})",
        f"T.diag_embed({a})", f"T.diag({a})", f"T.rot90({a})", f"T.cross({a}[:, :3], "
        f"{a}.flip(0)[:, :3], dim=1)" if p.env[a].shape[1] >= 3 else f"T.tril({a}, -1)",
    ])


def _more_nn(p):
    a = p.f(min_ndim=2)
    if a is None:
        return None
    v = p.env[a]
    last = v.shape[-1]
    x3 = f"{a}.reshape(1, {v.shape[0]}, -1)"
    return p.choice([
        f"F.conv1d({x3}, {x3}[:, :1, :2].expand({v.shape[0]}, 1, 2).contiguous(), "
        f"groups={v.shape[0]})",
        f"F.interpolate({x3}, scale_factor=2, mode='linear')",
        f"F.interpolate({x3}, size=3, mode='nearest-exact')",
        f"F.interpolate({x3}, size={last + 2}, mode='area')" if v.ndim == 2 else f"F.elu({a})",
        f"F.pad({a}, (1, 2), mode='replicate')" if v.ndim >= 2 else f"F.pad({a}, (1, 2))",
        f"F.pad({a}, (2, 1), mode='circular')", f"F.pad({a}, (1, 1), value=-1.0)",
        f"F.softmin({a}, 1)", f"F.pairwise_distance({a}, {a}.flip(0))", f"F.pdist({a})",
        f"F.rrelu({a}, training=True)", f"F.dropout1d({x3}, 0.5, training=True)",
        f"F.feature_alpha_dropout({x3}, 0.5, training=True)", f"F.prelu({a}, T.tensor([0.2]))",
        f"F.avg_pool1d({x3}, 2)", f"F.max_pool1d({x3}, 2, return_indices=True)[1]",
        f"F.adaptive_max_pool1d({x3}, 2)", f"F.adaptive_avg_pool1d({x3}, 3)",
        f"F.fold({x3}.reshape(1, -1, 1), (1, 1), 1)", f"F.affine_grid({a}.flatten()[:6]"
        ".reshape(1, 2, 3), (1, 1, 3, 3))",
        f"F.grid_sample({a}[None, None], {a}.flatten()[:8].reshape(1, 2, 2, 2).tanh())",
        f"F.embedding_bag({p.int_of(v.shape[0])}, {a}, T.tensor([0]), mode='max')",
        f"F.scaled_dot_product_attention({x3}, {x3}, {x3})",
        f"F.scaled_dot_product_attention({x3}, {x3} * 0.5, {x3}, is_causal=True)",
        f"F.scaled_dot_product_attention({x3}.flip(1), {x3}, {x3}.tanh())",
        f"F.scaled_dot_product_attention({x3}, {x3}, {x3}, is_causal=True)",
        f"F.scaled_dot_product_attention({x3}, {x3}, {x3}, attn_mask={x3}[0] @ {x3}[0].t() > 0)",
        f"F.ctc_loss({a}.log_softmax(1)[:, None].expand(-1, 1, -1), T.tensor([[1]]), "
        f"T.tensor([{v.shape[0]}]), T.tensor([1]))" if v.ndim == 2 else f"F.silu({a})",
        f"F.channel_shuffle({a}[None, :, :, None], 1)", f"F.logsigmoid({a})",
        f"F.hardtanh({a}, -0.2, 0.4)", f"F.threshold({a}, 0.0, 0.5)",
        f"F.one_hot({p.int_of(last)}, {last}).float().argmax(-1)",
        f"F.nll_loss({a}.log_softmax(-1), {a}.flip(0).argmax(-1), reduction='none', "
        f"weight=T.arange(1.0, {last + 1}.0))",
    ])


def _tensor_misc(p):
    a = p.f(min_ndim=1)
    if a is None:
        return None
    d = p.dim(a)
    b = p.like(a)
    return p.choice([
        f"{a}.round(decimals=1)", f"{a}.renorm(2, 0, 1.0)", f"T.logaddexp({a}, {b})",
        f"T.heaviside({a}, {b})", f"T.nextafter({a}, {b})",
        f"{a}.take_along_dim({b}.argsort({d}), {d})",
        f"T.take_along_dim({a}, {b}.argmax({d}, keepdim=True), {d})",
        f"{a}.scatter({d}, {b}.argsort({d}), {b}, reduce='multiply')",
        f"{a}.index_reduce(0, {b}.flatten()[:{p.size(a, 0)}].argsort(), {a}, 'amax')",
        f"T.searchsorted({a}.flatten().sort().values, {b}, right=True)",
        f"T.searchsorted({a}.flatten(), {b}.flatten(), sorter={a}.flatten().argsort())",
        f"{a}.nanmean({d})", f"T.nanquantile({a}.masked_fill({a} < -0.5, float('nan')), 0.4, {d})",
        f"{a}.masked_fill({a} < -0.5, float('nan')).nanmedian({d}).indices",
        f"{a}.masked_fill({a} < -0.5, float('nan')).sort({d}).indices",
        f"{a}.masked_fill({a} < -0.5, float('nan')).argmax({d})",
        f"{a}.masked_fill({a} < -0.5, float('nan')).max({d}).values",
        f"{a}.masked_fill({a} < -0.5, float('nan')).topk(1, {d}).indices",
        f"{a}.logit(eps=0.1)", f"{a}.sgn()", f"T.signbit({a}).long()", f"{a}.fix()",
        f"T.histogram({a}.flatten(), 3).hist", f"T.cumulative_trapezoid({a}, dim={d})",
        f"T.trapezoid({a}, dim={d})", f"{a}.unfold({d}, 1, 1)", f"T.vander({a}.flatten()[:3])",
        f"T.tensordot({a}, {b}, dims={p.env[a].ndim})", f"T.block_diag({a}.flatten()[:2][None])",
        f"{a}.abs().sqrt().floor().long().bitwise_xor(1)", f"{a}.bernoulli(0.5)" if False
        else f"{a}.exp2()", f"T.clamp({a}, {b}.amin(), {b}.amax())",
        f"T.isin(({a} * 2).round(), ({b} * 2).round())", f"T.count_nonzero({a} > 0, {d})",
        f"({a} * 2).round().long().unique(return_inverse=True)[1]",
        f"({a} * 2).round().sort(stable=True, dim={d}).indices",
    ])


class Modules:
    """Captured modules made before the compiled calls (`MOD('lstm', 5)`): the same weights
    in both worlds (seeded by kind and size), so their gradients compare too."""

    def __init__(self):
        self.made = {}

    def make(self, kind: str, n: int):
        key = (kind, n)
        if key not in self.made:
            descent.manual_seed(hash(key) % 1000)
            nn = descent.nn
            self.made[key] = {
                "linear": lambda: nn.Linear(n, 3),
                "lstm": lambda: nn.LSTM(n, 3, batch_first=True),
                "gru": lambda: nn.GRU(n, 2, num_layers=2),
                "rnn": lambda: nn.RNN(n, 3, nonlinearity="relu", bidirectional=True),
                "ln": lambda: nn.LayerNorm(n),
                "mha": lambda: nn.MultiheadAttention(n, 1, batch_first=True),
                "conv1d": lambda: nn.Conv1d(1, 2, 2, padding=1),
                "bn_eval": lambda: nn.BatchNorm1d(n).eval(),
                "emb": lambda: nn.Embedding(n, 3, padding_idx=0),
                "emb_freq": lambda: nn.Embedding(n, 3, scale_grad_by_freq=True),
                "bilinear": lambda: nn.Bilinear(n, n, 2),
                "prelu": lambda: nn.PReLU(),
                "tel": lambda: nn.TransformerEncoderLayer(n, 1, 8, dropout=0.0,
                                                          batch_first=True),
            }[kind]()
        return self.made[key]

    __call__ = make


def _module(p):
    a = p.f(ndim=2)
    if a is None:
        return None
    n, c = p.env[a].shape
    idx = p.int_of(c)
    ops = [
        f"MOD('linear', {c})({a})", f"MOD('lstm', {c})({a}[None])[0]",
        f"MOD('lstm', {c})({a}[None])[1][1]", f"MOD('gru', {c})({a}[:, None])[0]",
        f"MOD('rnn', {c})({a}[:, None])[1]", f"MOD('ln', {c})({a})",
        f"MOD('mha', {c})({a}[None], {a}[None], {a}[None])[0]",
        f"MOD('mha', {c})({a}[None], {a}[None], {a}[None], key_padding_mask={a}[None, :, 0] > 1)"
        "[0].nan_to_num()",
        f"MOD('conv1d', 1)({a}[:, None])", f"MOD('bn_eval', {c})({a})",
        f"MOD('bilinear', {c})({a}, {a}.flip(0))", f"MOD('prelu', 1)({a})",
        f"MOD('tel', {c})({a}[None])" if c in (2, 4) else f"MOD('ln', {c})({a})",
    ]
    if idx:
        ops += [f"MOD('emb', {c})({idx})", f"MOD('emb_freq', {c})({idx})",
                f"F.embedding({idx}, {a}.t(), padding_idx=1)",
                f"F.embedding({idx}, {a}.t(), scale_grad_by_freq=True)"]
    return p.choice(ops)


def _products(p):
    a = p.f(ndim=2)
    if a is None:
        return None
    n, c = p.env[a].shape
    b = p.like(a)
    return p.choice([
        f"T.addmm({a}[:, 0:1], {a}, {b}.t())", f"T.addcmul({a}, {a}, {b}, value=0.5)",
        f"T.addcdiv({a}, {a}, {b}.abs() + 1)", f"T.mv({a}, {b}[0])", f"T.dot({a}[0], {b}[0])",
        f"T.inner({a}, {b})", f"T.linalg.multi_dot([{a}, {b}.t(), {a}])",
        f"T.baddbmm({a}[None] @ {a}[None].transpose(1, 2), {a}[None], {b}[None].transpose(1, 2))",
        f"T.addmv({a}[:, 0], {a}, {b}[0])", f"T.fft.rfft({a}).abs()", f"T.fft.fft({a}, dim=0).real",
        f"T.fft.irfft(T.fft.rfft({a}), n={c})", f"T.fft.fftshift({a})",
        f"{a}.sum(dtype=T.float64)", f"{a}.long().sum(1)", f"{a}.softmax(1, dtype=T.float64)",
        f"{a}.cumsum(0, dtype=T.float64)", f"T.special.xlog1py({a}, {b}.abs())",
        f"T.special.entr({a}.abs())", f"T.special.ndtri({a}.sigmoid())",
        f"T.special.log_ndtr({a})", f"T.special.i0e({a})", f"T.special.sinc({a})",
        f"T.special.logit({a}.sigmoid(), eps=0.01)", f"T.lgamma({a}.abs() + 0.5)",
        f"T.digamma({a}.abs() + 0.5)", f"T.polygamma(1, {a}.abs() + 0.5)",
        f"T.mvlgamma({a}.abs() + 2, 2)", f"T.igamma({a}.abs() + 0.1, {b}.abs())",
    ])


def _int_math(p):
    v = p.i()
    if v is None:
        return None
    w = p._pick(lambda u: u.dtype == p.env[v].dtype and u.shape == p.env[v].shape) or v
    return p.choice([
        f"{v} & 3", f"{v} | {w}", f"{v} ^ {w}", f"{v} << 1", f"{v} >> 1", f"~{v}",
        f"T.floor_divide({v} - 3, 2)", f"T.remainder({v} - 3, 4)", f"T.fmod({v} - 3, 4)",
        f"({v} - 3).abs()", f"({v} - 2).sign()", f"T.div({v}, 3, rounding_mode='trunc')",
        f"{v}.sort(descending=True, stable=True).indices", f"T.maximum({v}, {w})",
        f"{v}.float().mean()", f"{v}.double() / 3", f"T.where({v} > 2, {v}, {w})",
        f"{v}.clamp(max=3)", f"{v}.prod(-1)", f"{v}.cumprod(-1)", f"T.gcd({v}, {w} + 1)",
        f"T.bitwise_left_shift({v}, 2)", f"{v}.argmax()", f"{v}.kthvalue(1, -1).values",
        f"{v}.to(T.uint8) + 250", f"{v}.to(T.int8) * 100", f"{v}.to(T.int16).cumsum(-1)",
        f"T.tril_indices(3, 3)[0] + {v}.flatten()[:1]", f"T.searchsorted({v}.flatten().sort()"
        f".values, {w}.flatten())",
    ])


def _indexing2(p):
    """Reads and writes with several computed index tensors, and image resampling."""
    a = p.f(ndim=2)
    im = p.f(ndim=4)
    ops = []
    if a is not None:
        n, c = p.env[a].shape
        i0, i1 = p.int_of(n), p.int_of(c)
        b = p.like(a)
        if i0 and i1:
            ops += [
                f"{a}[{i0}[:2], {i1}[:2]]", f"{a}[{i0}[:, None][:2], {i1}[None, :2]]",
                f"{a}.index_put(({i0}[:2], {i1}[:2]), {b}[0, :1], accumulate=True)",
                f"{a}[..., {i1}[:1]]", f"{a}[{i0}[:2]][:, {i1}[:2]]",
                f"{{out}} = {a} * 1\n{{out}}[{i0}[:2], {i1}[:2]] = {b}[0, :2]",
                f"{{out}} = {a} * 1\n{{out}}[{i0}[:1]] = {b}[:1] * 2",
                f"{{out}} = {a} * 1\n{{out}}[{b} > 0] = 0.5",
                f"{{out}} = {a} * 1\n{{out}}[:, {i1}[:1]] += {b}[:, :1]",
                f"T.take_along_dim({a}, {b}.argsort(1)[:, :1], 1)",
                f"{a}.masked_select({b} > 0)",
                f"T.where({b} > 0)[0]",
                f"{a}.gather(0, {b}.argmin(0, keepdim=True).expand({n}, {c}))",
                f"{a}.scatter_reduce(0, {b}.argsort(0), {b}, 'prod', include_self=False)",
                f"{a}.scatter_reduce(1, {b}.argmax(1, keepdim=True), {b}.amax(1, keepdim=True), "
                "'amin')",
            ]
    if im is not None:
        h = p.env[im].shape[-1]
        ops += [
            f"F.interpolate({im}, scale_factor=1.5, mode='bicubic', align_corners=True)",
            f"F.interpolate({im}, size=({h + 1}, {h - 1}), mode='bilinear', antialias=True)",
            f"F.interpolate({im}, scale_factor=0.5, mode='area')",
            f"F.avg_pool2d({im}, 2, ceil_mode=True, count_include_pad=False)",
            f"F.max_pool2d({im}, 2, ceil_mode=True)",
            f"F.fractional_max_pool2d({im}, 2, output_size=2)",
            f"F.adaptive_max_pool2d({im}, 2, return_indices=True)[1]",
            f"F.max_unpool2d(*F.max_pool2d({im}, 2, return_indices=True), 2)",
            f"F.pixel_unshuffle({im}[..., :2, :2], 2)", f"F.fold(F.unfold({im}, 2), {h}, 2)",
            f"F.grid_sample({im}, {im}[:, :1].permute(0, 2, 3, 1).repeat(1, 1, 1, 2).tanh(), "
            "mode='nearest', align_corners=False)",
        ]
    return p.choice(ops) if ops else None


OPS = {
    "elementwise": (_elementwise, 3),
    "binary": (lambda p: _bin(p.choice([
        "{a} + {b}", "{a} * {b}", "{a} - {b}", "{a} / ({b}.abs() + 1)",
        "T.atan2({a}, {b})", "T.fmod({a}, 0.7)", "T.remainder({a}, {b}.abs() + 0.5)",
        "T.lerp({a}, {b}, 0.3)", "T.hypot({a}, {b})", "T.copysign({a}, {b})",
        "{a} ** 2", "T.xlogy({a}.abs(), {b}.abs() + 1)", "T.fmax({a}, {b})",
    ]))(p), 3),
    "cmp": (_cmp, 2),
    "cast": (_cast, 1),
    "where_clamp": (_where_clamp, 2),
    "mask": (_mask_ops, 2),
    "int": (_int_ops, 2),
    "reduce": (_reduce, 2),
    "order": (_order, 4),
    "gather": (_gather, 2),
    "scatter": (_scatter, 2),
    "index_select": (_index_select, 1),
    "take": (_take, 1),
    "adv_index": (_adv, 2),
    "index_ops": (_index_ops, 2),
    "shape": (_shape, 2),
    "matmul": (_matmul, 2),
    "loss": (_loss, 3),
    "nn": (_nn, 3),
    "mixed": (_mixed, 2),
    "inplace": (_inplace, 3),
    "linalg": (_linalg, 1),
    "more_nn": (_more_nn, 3),
    "tensor_misc": (_tensor_misc, 3),
    "module": (_module, 3),
    "products": (_products, 2),
    "int_math": (_int_math, 2),
    "indexing2": (_indexing2, 3),
}
# Bugs found whose fix belongs to another session's files (see docs/compile.md, "Session 19:
# random-program fuzz"): programs skip these unless `known=True` (--known), so a campaign
# reports new bugs. Each is (what, predicate on an op's source).
KNOWN = [
    # program.py's replayed backward passes sgn's known-zero gradient (_ZeroGradient) to
    # sum_to: AttributeError on the first replay
    ("sgn backward on replay", lambda e: ".sgn()" in e),
    # replay_kernels.sdpa_forward without a pool runs q @ k^T as NumPy's NT product (syrk when
    # q is k), eager as nt_product.matmul_nt's NN product: 1 ulp apart on some values
    ("sdpa with q is k", lambda e: re.search(r"attention\((\w+\.reshape\([^)]*\)), \1,", e)),
]

_KINDS = list(OPS)
_WEIGHTS = np.array([OPS[k][1] for k in _KINDS], dtype=float)
_WEIGHTS /= _WEIGHTS.sum()

# ---------------------------------------------------------------------------------------------
# Programs


@dataclass
class Program:
    """A generated program: its source, inputs, captured parameters and call data."""

    seed: int
    lines: list  # (name, expression)
    mode: str  # "grad": inputs require grad; "opt": optimizer on parameters; "nograd"
    optimizer: str
    inputs: dict  # name -> list of per-call arrays
    params: dict  # name -> initial array
    grads_of: list = field(default_factory=list)  # names whose weighted sums make the loss
    clip: bool = False  # clip_grad_norm_ before the optimizer step
    coef: dict = field(default_factory=dict)  # name -> coefficient array

    def leaves(self) -> list:
        """Float inputs that are captured leaves requiring grad ("grad" mode): an argument
        that requires grad makes every call record again (its leaf is named by identity)."""
        if self.mode != "grad":
            return []
        return [n for n, v in self.inputs.items() if v[0].dtype.kind == "f"]

    def source(self) -> str:
        args = ", ".join(n for n in self.inputs if n not in self.leaves())
        body = []
        for n, e in self.lines:
            if "\n" in e:  # a block that assigns {out}
                body += ["    " + ln for ln in e.replace("{out}", n).split("\n")]
            else:
                body.append(f"    {n} = {e}")
        if self.mode == "opt":
            body.insert(0, "    OPT.zero_grad()")
        if self.grads_of:
            terms = " + ".join(f"({n} * C['{n}']).sum()" for n in self.grads_of)
            body.append(f"    loss = {terms}")
            body.append("    loss.backward()")
            if self.mode == "opt":
                if self.clip:
                    body.append("    T.nn.utils.clip_grad_norm_(OPT.param_groups[0]['params'], "
                                "0.5)")
                body.append("    OPT.step()")
        outs = [n for n, _ in self.lines]
        body.append(f"    return ({', '.join(outs)},)")
        return f"def prog({args}):\n" + "\n".join(body) + "\n"


def _data(rng, shape, kind, dtype):
    """One input's values: normal, rounded to halves (ties), scaled by 4 (wide), with NaNs."""
    if dtype == "int":
        hi = 6 if kind != "wide" else 40
        return rng.integers(0, hi, size=shape).astype(np.int64)
    x = rng.standard_normal(shape).astype(dtype)
    if kind == "ties":
        x = np.round(x * 2) / 2
    elif kind == "wide":
        x = x * 4
    elif kind == "nan":
        x[rng.random(shape) < 0.15] = np.nan
    return x


#: Upper bound of the batch and feature sizes (`--big` raises it: other kernels and BLAS paths).
MAX_SIZE = 6


def _make_inputs(rng, n_calls=6):
    b, c, d = (int(rng.integers(2, MAX_SIZE)) for _ in range(3))
    ch, h = int(rng.integers(1, 4)), int(rng.integers(3, max(7, MAX_SIZE // 2)))
    fdt = np.float64 if rng.random() < 0.15 else np.float32
    specs = {"x": ((b, c), fdt), "t": ((b,), "int")}
    if rng.random() < 0.5:
        specs["z"] = ((b, d), fdt)
    if rng.random() < 0.4:
        specs["im"] = ((2, ch, h, h), fdt)
    if rng.random() < 0.3:
        specs["u"] = ((2, b, c), fdt)
    inputs = {}
    for name, (shape, dt) in specs.items():
        first = _data(rng, shape, "normal", dt)
        calls = [first, first.copy()]
        for _ in range(n_calls - 2):
            kind = rng.choice(["normal", "ties", "wide", "nan"], p=[0.35, 0.3, 0.25, 0.1])
            calls.append(_data(rng, shape, kind, dt))
        inputs[name] = calls
    return inputs, (b, c, d)


def generate(seed: int, known: bool = False) -> Program | None:
    """Program number `seed` (deterministic); without `known`, no op matches `KNOWN`."""
    rng = np.random.default_rng(seed)
    inputs, (b, c, d) = _make_inputs(rng)
    mode = rng.choice(["grad", "grad", "opt", "nograd"])
    params = {}
    if mode == "opt":
        fdt = inputs["x"][0].dtype
        params["W"] = rng.standard_normal((c, d)).astype(fdt) * 0.5
        params["B"] = rng.standard_normal((d,)).astype(fdt) * 0.1
    env = {n: descent.tensor(v[0]) for n, v in inputs.items()}
    for n, v in params.items():
        env[n] = descent.tensor(v)
    g = _globals(params, "SGD", {})
    lines = []
    n_ops = int(rng.integers(3, 13))
    picker = Picker(rng, env)
    tries = 0
    while len(lines) < n_ops and tries < 60:
        tries += 1
        kind = _KINDS[rng.choice(len(_KINDS), p=_WEIGHTS)]
        try:
            expr = OPS[kind][0](picker)
        except Exception:
            expr = None
        if not expr or (not known and any(bad(expr) for _, bad in KNOWN)):
            continue
        val = _try(expr, env, g)
        if val is None:
            continue
        name = f"v{len(lines)}"
        env[name] = val
        lines.append((name, expr))
    if len(lines) < 3:
        return None
    prog = Program(seed, lines, str(mode), str(rng.choice(list(_OPTIMIZERS))), inputs, params)
    prog.clip = bool(rng.random() < 0.3)
    if mode != "nograd":
        prog.grads_of = [n for n, _ in lines if env[n].dtype.is_floating_point]
        prog.coef = {n: rng.standard_normal(env[n].shape).astype(np.float32)
                     for n in prog.grads_of}
    return prog


def _try(expr, env, g):
    """The value of `expr` on the first call's data, or None if it fails or is unsuitable."""
    scope = dict(g)
    scope.update(env)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            descent.manual_seed(0)
            if "\n" in expr:
                exec(expr.replace("{out}", "_out"), scope)  # noqa: S102 - our own source
                val = scope["_out"]
            else:
                val = eval(expr, scope)  # noqa: S307 - our own generated source
    except Exception:
        return None
    if not isinstance(val, descent.Tensor) or val.numel() > 4096 * MAX_SIZE or val.numel() == 0:
        return None
    if val.dtype in (descent.float16, descent.bfloat16, descent.complex64):
        return None
    return val


_W_CONV = np.random.default_rng(123).standard_normal((2, 3, 2, 2)).astype(np.float32)


_OPTIMIZERS = {
    "SGD": {"lr": 0.1, "momentum": 0.9, "nesterov": True}, "Adam": {"lr": 0.01},
    "AdamW": {"lr": 0.01, "amsgrad": True}, "RMSprop": {"lr": 0.01, "centered": True},
    "Adagrad": {"lr": 0.1}, "NAdam": {"lr": 0.01}, "RAdam": {"lr": 0.01},
    "Adamax": {"lr": 0.01}, "Lion": {"lr": 0.01, "weight_decay": 0.1},
    "Rprop": {"lr": 0.01}, "Adadelta": {}, "ASGD": {"lr": 0.01},
}


def _globals(params, opt_name, coef):
    g = {"T": descent, "F": F, "C": {n: descent.tensor(v) for n, v in coef.items()},
         "W_conv": descent.tensor(_W_CONV), "MOD": Modules()}
    ps = {n: descent.nn.Parameter(descent.tensor(v.copy())) for n, v in params.items()}
    g.update(ps)
    if ps:
        g["OPT"] = getattr(descent.optim, opt_name)(list(ps.values()), **_OPTIMIZERS[opt_name])
    return g


def _build(prog: Program):
    g = _globals(prog.params, prog.optimizer, prog.coef)
    for kind, n in re.findall(r"MOD\('(\w+)', (\d+)\)", prog.source()):
        g["MOD"].make(kind, int(n))  # made before the calls: the same weights in both worlds
    for name in prog.leaves():
        g[name] = descent.tensor(prog.inputs[name][0].copy(), requires_grad=True)
    exec(compile(prog.source(), f"<fuzz {prog.seed}>", "exec"), g)  # noqa: S102
    return g["prog"], g


def _same(a, b) -> bool:
    if isinstance(a, descent.Tensor) != isinstance(b, descent.Tensor):
        return False
    if not isinstance(a, descent.Tensor):
        return a == b
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    x, y = np.asarray(a.detach().numpy()), np.asarray(b.detach().numpy())
    if x.dtype.kind in "fc":
        return np.array_equal(x, y, equal_nan=True)
    return np.array_equal(x, y)


@dataclass
class Result:
    status: str  # "ok" (replayed), "fallback", "skip" (eager fails), "bug"
    detail: str = ""
    replays: int = 0
    warnings: tuple = ()


def run(prog: Program, n_calls: int = 6) -> Result:
    """Run `prog` eagerly and compiled `n_calls` times and compare everything bitwise."""
    fe, ge = _build(prog)
    fc_raw, gc = _build(prog)
    fc = descent.compile(fc_raw)
    leaves = prog.leaves()
    caught_all = []
    for call in range(n_calls):
        # Every .grad None before each call: the key holds whether each parameter's .grad is
        # None, and a key that changed after call 0 would compare the recordings of calls 1
        # and 2, which see different data (a frozen constant would then fall back unseen).
        for g in (ge, gc):
            for name in prog.params:
                g[name].grad = None
            for m in g["MOD"].made.values():
                for q in m.parameters():
                    q.grad = None
        args_e, args_c = [], []
        for name, calls in prog.inputs.items():
            arr = calls[call]
            if name in leaves:  # new data in the captured leaf, its .grad reset
                for g in (ge, gc):
                    g[name]._data[...] = arr
                    g[name].grad = None
                continue
            args_e.append(descent.tensor(arr.copy()))
            args_c.append(descent.tensor(arr.copy()))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                descent.manual_seed(1000 + call)
                with descent.set_grad_enabled(prog.mode != "nograd"):
                    out_e = fe(*args_e)
        except Exception as e:  # eager fails on this data: not a compile question
            return Result("skip", f"eager call {call}: {type(e).__name__}: {e}"[:200])
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                descent.manual_seed(1000 + call)
                with descent.set_grad_enabled(prog.mode != "nograd"):
                    out_c = fc(*args_c)
        except Exception as e:
            return Result("bug", f"call {call}: compiled raised {type(e).__name__}: {e}"[:400])
        caught_all += [str(w.message) for w in caught if issubclass(w.category, CompileWarning)]
        bad = []
        for k, (a, b) in enumerate(zip(out_e, out_c, strict=True)):
            if not _same(a, b):
                bad.append(f"output {prog.lines[k][0]}")
        for key, m in ge["MOD"].made.items():
            mc = gc["MOD"].made[key]
            for (pn, pe), (_, pc) in zip(m.named_parameters(), mc.named_parameters(),
                                         strict=True):
                if not _same(pe.grad, pc.grad):
                    bad.append(f"{key[0]}.{pn}.grad")
        for name in list(prog.params) + leaves:
            if not _same(ge[name], gc[name]):
                bad.append(f"param {name}")
            if not _same(ge[name].grad, gc[name].grad):
                bad.append(f"param {name}.grad")
        if bad:
            return Result("bug", f"call {call}: " + ", ".join(bad), fc.stats["replays"],
                          tuple(caught_all))
    status = "ok" if fc.stats["replays"] else "fallback"
    return Result(status, "", fc.stats["replays"], tuple(caught_all))


def shrink(prog: Program) -> Program:
    """Remove lines while the program still fails (the failure kind may change: any bug)."""
    changed = True
    while changed:
        changed = False
        for k in range(len(prog.lines) - 1, -1, -1):
            name = prog.lines[k][0]
            cand = Program(prog.seed, prog.lines[:k] + prog.lines[k + 1:], prog.mode,
                           prog.optimizer, prog.inputs, prog.params,
                           grads_of=[n for n in prog.grads_of if n != name],
                           coef={n: c for n, c in prog.coef.items() if n != name},
                           clip=prog.clip)
            if not cand.lines:
                continue
            try:
                r = run(cand)
            except Exception:
                continue
            if r.status == "bug":
                prog = cand
                changed = True
    return prog


def describe(prog: Program, res: Result) -> str:
    shapes = {n: (v[0].shape, str(v[0].dtype)) for n, v in prog.inputs.items()}
    return (f"# seed {prog.seed} mode={prog.mode} opt={prog.optimizer} clip={prog.clip} "
            f"inputs={shapes}\n"
            f"# {res.detail}\n{prog.source()}")


def campaign(n_programs: int, seed: int, show_bugs=True, do_shrink=True, out=sys.stdout,
             known=False):
    """Run programs seed, seed+1, ...; return counters and the bugs found."""
    counts = {"ok": 0, "fallback": 0, "skip": 0, "bug": 0, "invalid": 0}
    reasons: dict = {}
    bugs = []
    for s in range(seed, seed + n_programs):
        prog = generate(s, known)
        if prog is None:
            counts["invalid"] += 1
            continue
        try:
            res = run(prog)
        except Exception as e:  # the harness itself
            res = Result("bug", f"harness: {type(e).__name__}: {e}"[:300])
        counts[res.status] += 1
        for w in set(res.warnings):
            key = w[:90]
            reasons[key] = reasons.get(key, 0) + 1
        if res.status == "bug":
            small = shrink(prog) if do_shrink else prog
            r2 = run(small) if do_shrink else res
            bugs.append((small, r2))
            if show_bugs:
                print(describe(small, r2), file=out, flush=True)
    return counts, reasons, bugs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--programs", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--show", action="store_true", help="print each program's source")
    ap.add_argument("--no-shrink", action="store_true")
    ap.add_argument("--known", action="store_true", help="also ops with known open bugs")
    ap.add_argument("--big", type=int, default=0, help="sizes up to this (default 6)")
    args = ap.parse_args(argv)
    if args.big:
        global MAX_SIZE
        MAX_SIZE = args.big
    if args.show:
        for s in range(args.seed, args.seed + args.programs):
            prog = generate(s, args.known)
            if prog is not None:
                print(f"# seed {s}: {run(prog)}\n{prog.source()}")
        return 0
    t0 = time.time()
    counts, reasons, bugs = campaign(args.programs, args.seed, do_shrink=not args.no_shrink,
                                    known=args.known)
    print(f"programs {args.programs} seed {args.seed}: {counts} in {time.time() - t0:.0f} s")
    for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:25]:
        print(f"  {v:5d}  {k}")
    return 1 if bugs else 0


if __name__ == "__main__":
    sys.exit(main())
