"""numba loops for the eager steps of the stock optimizers (SGD, RMSprop, Adagrad, Adamax,
NAdam, RAdam, Adadelta, ASGD, Lion).

Imported on first use only (it imports numba), through `kernels.cpu`'s wrappers, which
`backend.fused` hands to the optimizers' `_update` for float32/float64 NumPy buffers. Each loop
is the rule's NumPy sequence (optim/*.py, itself PyTorch's order of operations) evaluated per
element in registers: the same operations on the same values in the same order, each rounded
to the array dtype as NumPy rounds it, so the parameters and state come out bitwise equal to
the NumPy path (tests/test_kernels_cpu_optim.py compares them on random and edge values). One
pass over the flat buffer instead of NumPy's 5-12, each a full trip through memory: an SGD
step over ResNet-18's 11.2 M floats drops from ~40 ms to ~20 ms on one core.

Every scalar arrives in the arrays' dtype (the wrappers cast Python floats with `dt(x)`, as
NumPy's weak-scalar rule rounds a Python float to float32 for float32 arrays): a Python float
would make numba compile a float64 signature and compute float64 products (other bits).
The `*_one` flags skip a multiply where the NumPy path does (`_add_scaled` with alpha == 1).
No fast-math: LLVM must neither contract a * b + c into an FMA nor reassociate.
"""

from __future__ import annotations

import math

from numba import njit, prange

_OPTS = dict(cache=True, nogil=True, error_model="numpy")


# The openings the rules share, inlined into each loop by numba (its IR, before LLVM: the
# loops compile as if written out). The loops still load g[i] before p[i]: with the loads the
# other way round LLVM emits other (fewer) vector instructions for sgd.
@njit(inline="always")
def _grad(gi, pi, maximize, has_wd, wd, wd_one):  # pragma: no cover - compiled
    """The gradient a rule steps with: negated for maximize, then g += wd p (coupled decay)."""
    if maximize:
        gi = -gi
    if has_wd:
        gi = gi + (pi if wd_one else pi * wd)
    return gi


@njit(inline="always")
def _lerp(a, b, lerp_small, w):  # pragma: no cover - compiled
    """lerp(a, b, weight) in PyTorch's two forms: a + (b - a) w when lerp_small (|weight| < 0.5,
    w = weight), else b - (b - a) w (w = 1 - weight: the caller passes the one its form reads)."""
    d = b - a
    return a + d * w if lerp_small else b - d * w


@njit(inline="always")
def _adam_opening(gi, pi, mi, maximize, wd_mode, decay, wd, wd_one, lerp_small,
                  w):  # pragma: no cover - compiled  # fmt: skip
    """Adam's family (Adam, NAdam, RAdam): maximize, weight decay (wd_mode 1: decoupled,
    p *= decay; 2: g += wd p), then m = lerp(m, g, 1 - β₁). Returns g, p, m."""
    if maximize:
        gi = -gi
    if wd_mode == 1:  # AdamW: p *= 1 - lr wd
        pi = pi * decay
    elif wd_mode == 2:  # Adam: g += wd p
        gi = gi + (pi if wd_one else pi * wd)
    return gi, pi, _lerp(mi, gi, lerp_small, w)


def _sgd(p, g, buf, maximize, has_wd, wd, wd_one, has_mu, first, mu, damp, damp_one, nesterov,
         mu_one, alpha, alpha_one):  # pragma: no cover - compiled  # fmt: skip
    """optim/sgd.py's `_update`: p (and buf when has_mu) in place; g is read only. (prange: a
    plain range in `sgd`; split over the cores in `sgd_kernel(parallel=True)`.)"""
    for i in prange(p.size):
        gi = g[i]
        pi = p[i]
        gi = _grad(gi, pi, maximize, has_wd, wd, wd_one)  # g += wd p
        if has_mu:
            if first:  # PyTorch starts the buffer at the first gradient
                b = gi
            else:  # buf *= mu; buf += (1 - dampening) g
                b = buf[i] * mu
                b = b + (gi if damp_one else gi * damp)
            buf[i] = b
            if nesterov:  # g += mu buf
                gi = gi + (b if mu_one else b * mu)
            else:
                gi = b
        p[i] = pi + (gi if alpha_one else gi * alpha)  # p += -lr g


sgd = njit(**_OPTS)(_sgd)
_SGD_PARALLEL = []


def sgd_kernel(parallel: bool):
    """`sgd`, or (parallel) the same loop over every core: descent.compile's fused SGD update
    (compiler/fusion.py), bitwise the same (elements are independent)."""
    if not parallel:
        return sgd
    if not _SGD_PARALLEL:
        _SGD_PARALLEL.append(njit(parallel=True, nogil=True, error_model="numpy")(_sgd))
    return _SGD_PARALLEL[0]


@njit(**_OPTS)
def rmsprop(p, g, sq, maximize, has_wd, wd, wd_one, alpha, one_m_alpha, eps, lr_neg,
            lr_one):  # pragma: no cover - compiled  # fmt: skip
    """optim/rmsprop.py's `_update` without centering or momentum (PyTorch's defaults): p and
    sq (square_avg) in place. A loop of its own: with `rmsprop_full`'s optional arrays and
    branches LLVM does not vectorise it (37 ms instead of ~5 ms on 11 M floats)."""
    for i in range(p.size):
        gi = g[i]
        pi = p[i]
        gi = _grad(gi, pi, maximize, has_wd, wd, wd_one)
        s = sq[i] * alpha + (gi * gi) * one_m_alpha  # sq *= α; sq += (g g)(1 - α)
        sq[i] = s
        t = gi / (math.sqrt(s) + eps)
        p[i] = pi + (t if lr_one else t * lr_neg)


@njit(**_OPTS)
def rmsprop_full(p, g, sq, ga, buf, maximize, has_wd, wd, wd_one, alpha, one_m_alpha, centered,
                 lerp_small, w, eps, has_mu, mu, lr_neg, lr_one):  # pragma: no cover  # fmt: skip
    """optim/rmsprop.py's `_update`: p, sq (square_avg), ga (grad_avg, when centered) and buf
    (momentum_buffer, when has_mu) in place."""
    for i in range(p.size):
        gi = g[i]
        pi = p[i]
        gi = _grad(gi, pi, maximize, has_wd, wd, wd_one)
        s = sq[i] * alpha + (gi * gi) * one_m_alpha
        sq[i] = s
        if centered:  # lerp(ga, g, 1 - α) in its two forms; denom = √(sq - ga²)
            a = _lerp(ga[i], gi, lerp_small, w)
            ga[i] = a
            denom = math.sqrt(s - a * a)
        else:
            denom = math.sqrt(s)
        t = gi / (denom + eps)
        if has_mu:  # buf = μ buf + g / d; p += -lr buf
            t = buf[i] * mu + t
            buf[i] = t
        p[i] = pi + (t if lr_one else t * lr_neg)


@njit(**_OPTS)
def adagrad(p, g, ssum, maximize, has_wd, wd, wd_one, eps, clr_neg, clr_one):  # pragma: no cover
    """optim/adagrad.py's `_update`: p and ssum (state "sum") in place."""
    for i in range(p.size):
        gi = g[i]
        pi = p[i]
        gi = _grad(gi, pi, maximize, has_wd, wd, wd_one)
        s = ssum[i] + gi * gi
        ssum[i] = s
        t = gi / (math.sqrt(s) + eps)
        p[i] = pi + (t if clr_one else t * clr_neg)


@njit(**_OPTS)
def adamax(p, g, m, u, maximize, has_wd, wd, wd_one, lerp_small, w, beta2, eps, clr_neg,
           clr_one):  # pragma: no cover - compiled  # fmt: skip
    """optim/adamax.py's `_update`: p, m (exp_avg) and u (exp_inf) in place."""
    for i in range(p.size):
        gi = g[i]
        pi = p[i]
        gi = _grad(gi, pi, maximize, has_wd, wd, wd_one)
        mi = _lerp(m[i], gi, lerp_small, w)  # lerp(m, g, 1 - β₁)
        m[i] = mi
        a = u[i] * beta2  # u = maximum(β₂ u, |g| + ε), NaN from either side (np.maximum)
        b = abs(gi) + eps
        ui = a if (a >= b or a != a) else b
        u[i] = ui
        t = mi / ui
        p[i] = pi + (t if clr_one else t * clr_neg)


@njit(**_OPTS)
def nadam(p, g, m, v, maximize, wd_mode, decay, wd, wd_one, lerp_small, w, beta2, one_m_beta2,
          bc2, eps, c1, c1_one, c2, c2_one):  # pragma: no cover - compiled  # fmt: skip
    """optim/nadam.py's `_update` after its scalar bookkeeping: p, m, v in place (wd_mode 1:
    decoupled decay p *= decay; 2: g += wd p)."""
    for i in range(p.size):
        gi, pi, mi = _adam_opening(g[i], p[i], m[i], maximize, wd_mode, decay, wd, wd_one,
                                   lerp_small, w)
        m[i] = mi
        vi = v[i] * beta2 + (gi * one_m_beta2) * gi  # addcmul: ((1 - β₂) g) g
        v[i] = vi
        denom = math.sqrt(vi / bc2) + eps
        t = gi / denom
        pi = pi + (t if c1_one else t * c1)
        t = mi / denom
        p[i] = pi + (t if c2_one else t * c2)


@njit(**_OPTS)
def radam(p, g, m, v, maximize, wd_mode, decay, wd, wd_one, lerp_small, w, beta2, one_m_beta2,
          bc1, lr, rectify, bc2_sqrt, eps, rect):  # pragma: no cover - compiled  # fmt: skip
    """optim/radam.py's `_update`: p, m, v in place; `rectify` when ρ_t > 5."""
    for i in range(p.size):
        gi, pi, mi = _adam_opening(g[i], p[i], m[i], maximize, wd_mode, decay, wd, wd_one,
                                   lerp_small, w)
        m[i] = mi
        vi = v[i] * beta2 + (gi * one_m_beta2) * gi
        v[i] = vi
        upd = (mi / bc1) * lr
        if rectify:
            upd = upd * (bc2_sqrt / (math.sqrt(vi) + eps))
            upd = upd * rect
        p[i] = pi - upd


@njit(**_OPTS)
def adadelta(p, g, sq, acc, maximize, has_wd, wd, wd_one, rho, one_m_rho, eps, lr_neg,
             lr_one):  # pragma: no cover - compiled  # fmt: skip
    """optim/adadelta.py's `_update`: p, sq (square_avg) and acc (acc_delta) in place."""
    for i in range(p.size):
        gi = g[i]
        pi = p[i]
        gi = _grad(gi, pi, maximize, has_wd, wd, wd_one)
        s = sq[i] * rho + (gi * one_m_rho) * gi
        sq[i] = s
        delta = (math.sqrt(acc[i] + eps) / math.sqrt(s + eps)) * gi
        acc[i] = acc[i] * rho + (delta * one_m_rho) * delta
        p[i] = pi + (delta if lr_one else delta * lr_neg)


@njit(**_OPTS)
def asgd(p, g, ax, maximize, has_wd, wd, wd_one, decay, eta_neg, eta_one, mu, mu_one):
    """optim/asgd.py's `_update` (the scalar state stays in Python): p and ax in place."""
    for i in range(p.size):  # pragma: no cover - compiled
        gi = g[i]
        pi = p[i]
        gi = _grad(gi, pi, maximize, has_wd, wd, wd_one)
        pi = pi * decay
        pi = pi + (gi if eta_one else gi * eta_neg)
        p[i] = pi
        if mu_one:
            ax[i] = pi
        else:
            ax[i] = ax[i] + (pi - ax[i]) * mu


@njit(**_OPTS)
def lion(p, g, m, maximize, has_wd, decay, one_m_beta1, lerp_small, w, lr_neg, lr_one, one,
         zero):  # fmt: skip
    """optim/lion.py's `_update`: p and m (exp_avg) in place. np.sign's values: +0 for both
    zeros, NaN for NaN (one and zero: 1 and +0 in the arrays' dtype, so the loop stays in
    it)."""
    for i in range(p.size):  # pragma: no cover - compiled
        gi = g[i]
        pi = p[i]
        mi = m[i]
        if maximize:
            gi = -gi
        if has_wd:  # decoupled: p *= 1 - lr wd
            pi = pi * decay
        c = (gi - mi) * one_m_beta1 + mi  # β₁ m + (1 - β₁) g, as the NumPy sequence
        if c > 0:
            s = one
        elif c < 0:
            s = -one
        elif c == 0:
            s = zero  # +0, also for c = -0
        else:
            s = c
        p[i] = pi + (s if lr_one else s * lr_neg)
        m[i] = _lerp(mi, gi, lerp_small, w)  # lerp(m, g, 1 - β₂)


@njit(**_OPTS)
def adam_amsgrad(p, g, m, v, vmax, maximize, wd_mode, decay, wd, wd_one, lerp_small, w, beta2,
                 one_m_beta2, bc2, eps, alpha, alpha_one):  # pragma: no cover  # fmt: skip
    """optim/adam.py's `_update` with amsgrad (`_cpu_jit.adam32`'s loop plus the running
    maximum vmax of v, NaN from either side as np.maximum): p, m, v, vmax in place."""
    for i in range(p.size):
        gi, pi, mi = _adam_opening(g[i], p[i], m[i], maximize, wd_mode, decay, wd, wd_one,
                                   lerp_small, w)
        vi = v[i] * beta2 + (gi * gi) * one_m_beta2
        a = vmax[i]
        vh = a if (a >= vi or a != a) else vi
        t = mi / (math.sqrt(vh) / bc2 + eps)
        p[i] = pi + (t if alpha_one else t * alpha)
        m[i] = mi
        v[i] = vi
        vmax[i] = vh



def _adam_span(p, g, base, m, v, maximize, wd_mode, decay, wd, wd_is_one, lerp_small, w, beta2,
               one_m_beta2, bc2, eps, alpha, alpha_is_one):  # pragma: no cover  # fmt: skip
    """adam32's loop body over p[base:base + g.size] with the gradient g (see `adam_grads`).
    Through slices: indexing p[base + k] needs a negative-index check (base is a signed
    number) that kept LLVM from vectorising the loop (8x slower)."""
    n = g.size
    p, m, v = p[base : base + n], m[base : base + n], v[base : base + n]
    for i in prange(n):
        gi, pi, mi = _adam_opening(g[i], p[i], m[i], maximize, wd_mode, decay, wd, wd_is_one,
                                   lerp_small, w)
        vi = v[i] * beta2 + (gi * gi) * one_m_beta2
        denom = math.sqrt(vi) / bc2 + eps
        t = mi / denom
        p[i] = pi + (t if alpha_is_one else t * alpha)
        m[i] = mi
        v[i] = vi


def _adam_span_scaled(p, g, base, m, v, coef, maximize, wd_mode, decay, wd, wd_is_one, lerp_small,
                      w, beta2, one_m_beta2, bc2, eps, alpha,
                      alpha_is_one):  # pragma: no cover  # fmt: skip
    """`_adam_span` after clip_grad_norm_'s scaling of the same gradient: g[i] = g[i] * coef
    stored back (the float32 product `g *= coef` makes), then adam32's loop body on it. One
    pass over g instead of two (descent.compile's replay folds the clipping of a step that
    clips and then steps: compiler/fusion.AdamFastStep)."""
    n = g.size
    p, m, v = p[base : base + n], m[base : base + n], v[base : base + n]
    for i in prange(n):
        gi = g[i] * coef
        g[i] = gi
        gi, pi, mi = _adam_opening(gi, p[i], m[i], maximize, wd_mode, decay, wd, wd_is_one,
                                   lerp_small, w)
        vi = v[i] * beta2 + (gi * gi) * one_m_beta2
        denom = math.sqrt(vi) / bc2 + eps
        t = mi / denom
        p[i] = pi + (t if alpha_is_one else t * alpha)
        m[i] = mi
        v[i] = vi


def _adam_grads_of(span):
    """The loop over the parameters of a flat buffer, one `_adam_span` each."""

    def adam_grads(p, gs, lo, m, v, maximize, wd_mode, decay, wd, wd_is_one, lerp_small, w,
                   beta2, one_m_beta2, bc2, eps, alpha,
                   alpha_is_one):  # pragma: no cover  # fmt: skip
        """`kernels/_cpu_jit.adam32` over a flat buffer whose gradients arrive one array per
        parameter: gs[j] (1-D) is the gradient of p[lo[j]:lo[j] + gs[j].size]. descent.compile's
        replayed Adam/AdamW step (compiler/fusion.adam_step_buffer) runs it instead of copying
        the gradients into the flat gradient buffer first. adam32's loop body: the same float32
        operations in the same order (no fast-math), so bitwise adam32's values."""
        for j in range(len(gs)):
            span(p, gs[j], lo[j], m, v, maximize, wd_mode, decay, wd, wd_is_one, lerp_small, w,
                 beta2, one_m_beta2, bc2, eps, alpha, alpha_is_one)  # fmt: skip

    return adam_grads


def _adam_grads_scaled_of(span):
    """`_adam_grads_of` with each gradient scaled by coef first (`_adam_span_scaled`)."""

    def adam_grads_scaled(p, gs, lo, m, v, coef, maximize, wd_mode, decay, wd, wd_is_one,
                          lerp_small, w, beta2, one_m_beta2, bc2, eps, alpha,
                          alpha_is_one):  # pragma: no cover  # fmt: skip
        """`adam_grads` after `gs[j] *= coef` for every j, in the same pass."""
        for j in range(len(gs)):
            span(p, gs[j], lo[j], m, v, coef, maximize, wd_mode, decay, wd, wd_is_one,
                 lerp_small, w, beta2, one_m_beta2, bc2, eps, alpha, alpha_is_one)  # fmt: skip

    return adam_grads_scaled


adam_grads = njit(**_OPTS)(_adam_grads_of(njit(**_OPTS)(_adam_span)))
adam_grads_scaled = njit(**_OPTS)(_adam_grads_scaled_of(njit(**_OPTS)(_adam_span_scaled)))
_ADAM_GRADS_PARALLEL: dict = {}


def adam_grads_kernel(parallel: bool, scaled: bool = False):
    """`adam_grads` (scaled: `adam_grads_scaled`), or (parallel) the same loops with each span's
    elements over every core (bitwise the same: elements are independent)."""
    if not parallel:
        return adam_grads_scaled if scaled else adam_grads
    k = _ADAM_GRADS_PARALLEL.get(scaled)
    if k is None:
        span = njit(parallel=True, nogil=True, error_model="numpy")(
            _adam_span_scaled if scaled else _adam_span)
        of = _adam_grads_scaled_of if scaled else _adam_grads_of
        k = _ADAM_GRADS_PARALLEL[scaled] = njit(nogil=True, error_model="numpy")(of(span))
    return k
