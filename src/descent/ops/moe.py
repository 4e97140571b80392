"""A mixture-of-experts layer's expert work as one op: routing, grouping, E gated MLPs, combining.

`nn.MoE` (sparse dispatch) runs its experts through `MoEExperts` when they are plain gated MLPs
(`nn.GatedMLP` without biases, no hooks; an active output dropout too, on CPU float32/float64
and more than one token: the `drop` parameter); `MoE(fused=False)` keeps the composite form
(one Linear op per projection per expert, row permutations, a concatenation).
Why one op:

* **Static shapes for `descent.compile`.** How many tokens each expert gets is data. In the
  composite form each expert's Linear ops see a different row count every step, so two
  recordings never agree and a compiled step runs eagerly. Here the op's inputs and output
  have fixed shapes, x (N, D), probs (N, E), the experts' weights -> y (N, D); the grouping
  happens inside `forward`/`backward`, so a compiled step records one instruction and replays
  it. The op's routing state (indices, order, counts) lives in `saved_slots`, which the
  recorder leaves out of the op's parameters.
* **Fewer passes.** No graph node per expert projection, no full-size zero arrays for the
  slices' gradients, no concatenation of the outputs or of their gradients.

The arithmetic is the composite form's, call for call (the same matrix products on the same
row blocks, the same gated activation kernels, the same permutations and sums), so the values
and gradients are the composite's bit for bit (tests/test_moe_fused.py). One difference: an
expert that receives no token in a step gets a zero gradient here, where the composite form
gives it none (`.grad` stays None, as PyTorch's module loop would); a compiled step needs
every parameter's gradient to exist on every call. `nn.MoE`'s dense dispatch does the same.

Dropout (`drop`, since session 25): the composite form draws each expert's output mask as its
rows come, expert after expert (an expert without tokens draws nothing), c_e x D values each;
the generator's stream does not depend on how a draw is split, so one (N*k, D) draw made
before the op, whose rows are the assignments in expert order, holds the same values
(`nn.MoE` draws it with `dropout_mask`, which descent.compile records and redraws at each
replay). The op multiplies each expert's output block by its rows, and the gradient of that
block by them, as the composite form's dropout does.

Routing (`route`): the k most probable experts per token, most probable first, exact ties to
the lower index (a stable sort, as `jax.lax.top_k`); the gates are the chosen probabilities,
not renormalised (Grok-1). `LoadBalance` is the Switch Transformer loss E sum_i f_i P_i with the
assignment fractions f_i computed inside the op from the same routing, for the same reason.
"""

from __future__ import annotations

import math

import numpy as np

from .. import array_backward, backend
from ..autograd import Function

__all__ = [
    "MoEExperts",
    "LoadBalance",
    "route",
    "gelu_tanh_gate",
    "gelu_tanh_gate_backward",
    "FUSED_ACTIVATIONS",
]

_C = math.sqrt(2.0 / math.pi)  # GELU's tanh approximation: u = C (a + K a^3)
_K = 0.044715
FUSED_ACTIVATIONS = ("gelu_tanh", "silu", "relu")


def route(probs, k: int):
    """(N, k) int64 indices of each row's k largest probabilities, largest first, ties to the
    lower index (stable sort of the negated values)."""
    xp = backend.get_array_module(probs)
    order = xp.argsort(-probs, axis=-1, kind="stable")
    return xp.ascontiguousarray(order[:, :k]).astype(np.int64)


# -- gated activations on arrays: h = act(a) * b and its two partial derivatives ----------------
def gelu_tanh_gate(a, b):
    """(h, aux): h = gelu_tanh(a) * b, and what `gelu_tanh_gate_backward` needs.

    float32 NumPy arrays: one numba pass (`kernels._cpu_fast.gg_tanh_fwd32`: (1 + tanh u)/2
    as sigmoid(2u), within a few ulp of the float32 input's value, also where a << 0, which
    1 + tanh u is not), aux = ("k", None): its backward recomputes the tanh, nothing is kept.
    Otherwise (float64, CuPy, kernels off) NumPy's in-place arithmetic on one temporary,
    aux = ("t", t) with t = tanh(C (a + K a^3))."""
    if type(a) is np.ndarray and type(b) is np.ndarray and a.shape == b.shape:
        k = backend.fused("gated_gelu_tanh_forward", a, b)
        if k is not None:
            return k(a, b), ("k", None)
    xp = backend.get_array_module(a)
    u = a * a  # (..., H), becomes t in place
    u *= _C * _K
    u += _C
    u *= a  # C (a + K a^3)
    t = xp.tanh(u, out=u)
    h = t + 1
    h *= 0.5
    h *= a
    h *= b
    return h, ("t", t)


def gelu_tanh_gate_backward(a, b, aux, gh):
    """(ga, gb) of h = gelu_tanh(a) * b: gb = gh gelu_tanh(a),
    ga = gh b ((1 + t)/2 + a/2 (1 - t^2) C (1 + 3 K a^2)); aux from `gelu_tanh_gate`."""
    kind, t = aux
    if kind == "k":
        k = backend.fused("gated_gelu_tanh_backward", a, b, gh)
        if k is not None:
            return k(a, b, gh)
        # The kernels were turned off between forward and backward: NumPy's form.
        xp = backend.get_array_module(a)
        t = xp.tanh((a * a * (_C * _K) + _C) * a)
    half_1pt = t + 1
    half_1pt *= 0.5  # (1 + t)/2
    gb = half_1pt * a  # gelu_tanh(a)
    gb *= gh
    d = t * t
    d -= 1
    d *= -0.5  # (1 - t^2)/2
    d *= a
    q = a * a
    q *= 3 * _C * _K
    q += _C  # C (1 + 3 K a^2)
    d *= q
    d += half_1pt
    ga = gh * b
    ga *= d
    return ga, gb


def _silu_gate(a, b):
    """(h, s): h = silu(a) * b, s = sigmoid(a) (stable for both signs)."""
    xp = backend.get_array_module(a)
    e = xp.exp(-xp.abs(a))
    s = xp.where(a >= 0, 1 / (1 + e), e / (1 + e))
    return a * s * b, s


def _silu_gate_backward(a, b, s, gh):
    # d silu(a)/da = s (1 + a (1 - s)); d h/db = silu(a)
    return gh * b * (s * (a * (1 - s) + 1)), gh * (a * s)


def _relu_gate(a, b):
    r = a * (a > 0)
    return r * b, None


def _relu_gate_backward(a, b, _, gh):
    return gh * b * (a > 0), gh * (a * (a > 0))


_GATES = {
    "gelu_tanh": (gelu_tanh_gate, gelu_tanh_gate_backward),  # aux: ("k", None) or ("t", t)
    "silu": (_silu_gate, _silu_gate_backward),
    "relu": (_relu_gate, _relu_gate_backward),
}


class MoEExperts(Function):
    """y = sum_j gates[n, j] expert_{idx[n, j]}(x_n), expert(x) = W1 (act(W x) * (V x)).

    Inputs: x (N, D), probs (N, E) (the router's softmax, any float dtype), then for each
    expert e its three weights W (H, D), V (H, D), W1 (D, H) (Linear's (out, in) layout).
    Parameters: k (experts per token), act (one of FUSED_ACTIVATIONS), and optionally drop:
    an (N*k, D) inverted-dropout mask (`nn.functional._dropout.dropout_mask`) of x's dtype
    for the experts' outputs, row i for the i-th assignment in expert order (the composite
    form's draw order, see the module docstring); absent or None: no dropout.
    Backward gives x, probs (nonzero at the chosen entries only) and every weight a gradient.
    """

    __slots__ = ("k", "act", "drop", "idx", "order", "inverse", "counts", "gates", "yk", "acts")
    save_inputs = True
    # What forward computed from the data: released after backward, and not op parameters
    # for descent.compile (they change every step; the recorder skips saved slots). The
    # dropout mask too (a drawn array: the recorder binds it to its draw's slot).
    saved_slots = ("drop", "idx", "order", "inverse", "counts", "gates", "yk", "acts")
    differentiable_backward = False  # higher order: MoE(fused=False), the composite form

    def forward(self, x, probs, *weights):
        xp = backend.get_array_module(x)
        n, d = x.shape
        k = self.k
        idx = route(probs, k)  # (N, k)
        gates = xp.take_along_axis(probs, idx, axis=-1)  # (N, k)
        if gates.dtype != x.dtype:
            gates = gates.astype(x.dtype)
        flat = idx.reshape(-1)  # expert of assignment (token n, slot j) at n*k + j
        order = xp.argsort(flat, kind="stable")  # assignments grouped by expert, tokens in order
        inverse = xp.empty_like(order)
        inverse[order] = xp.arange(order.shape[0], dtype=order.dtype)
        counts = np.bincount(backend.as_numpy(flat), minlength=probs.shape[1]).tolist()
        xs = self._sorted_rows(x, order)  # (N*k, D)
        gate_fn = _GATES[self.act][0]
        drop = getattr(self, "drop", None)  # (N*k, D) in expert order, or None
        ys = xp.empty((n * k, d), x.dtype)  # each expert's output written into its row block
        acts, start = [], 0
        for e, c in enumerate(counts):
            if not c:  # an expert without tokens does no work
                acts.append(None)
                continue
            w, v, w1 = weights[3 * e : 3 * e + 3]
            rows = xs[start : start + c]  # (c, D)
            a = rows @ w.T  # (c, H)
            b = rows @ v.T  # (c, H)
            h, aux = gate_fn(a, b)
            xp.matmul(h, w1.T, out=ys[start : start + c])  # (c, D)
            if drop is not None:  # the composite's dropout(expert(rows)): y * mask
                ys[start : start + c] *= drop[start : start + c]
            acts.append((a, b, aux, h))
            start += c
        self.idx, self.order, self.inverse, self.counts = idx, order, inverse, counts
        self.gates, self.acts = gates, acts
        if k == 1:
            self.yk = ys[inverse]  # (N, D)
            return self.yk * gates
        self.yk = yk = ys[inverse].reshape(n, k, d)  # (N, k, D) in (token, slot) order
        # sum over the k slots of yk * gates, slot after slot: NumPy's order for the sum over
        # a middle axis, without the (N, k, D) product
        y = yk[:, 0] * gates[:, 0:1]
        if drop is not None:
            # NumPy's sum starts from +0.0: where dropout zeroed every slot (-0.0 products),
            # the composite's sum is +0.0. (Without dropout left as it was: bitwise unchanged.)
            y += 0.0
        for j in range(1, k):
            y += yk[:, j] * gates[:, j : j + 1]
        return y

    def _sorted_rows(self, x, order):
        # Assignment i is token i // k; sorted by expert: x's rows in that order, (N*k, D).
        k = self.k
        return x[order] if k == 1 else x[order // k]

    def backward(self, gy, ops):
        ins = self.inputs(ops)
        x, probs, weights = ins[0], ins[1], ins[2:]
        xp = backend.get_array_module(x)
        n, d = x.shape
        k, order, gates, yk = self.k, self.order, self.gates, self.yk
        if k == 1:
            g_gates = (gy * yk).sum(axis=-1, keepdims=True)  # (N, 1)
            gys = gy[order] * gates[order]  # (N, D) sorted by expert
        else:
            gyb = xp.broadcast_to(gy[:, None, :], yk.shape)  # the sum's gradient, (N, k, D)
            g_gates = (gyb * yk).sum(axis=-1)  # (N, k)
            # gy * gates row by row, gathered in expert order: (N*k, D)
            gys = gy[order // k] * gates.reshape(-1)[order][:, None]
        drop = getattr(self, "drop", None)
        if drop is not None:  # the dropout's gradient, g * mask (a fresh array: in place)
            gys *= drop
        xs = self._sorted_rows(x, order)
        gxs = xp.empty((n * k, d), x.dtype)
        back = _GATES[self.act][1]
        gw_all: list = []
        start = 0
        for e, c in enumerate(self.counts):
            w, v, w1 = weights[3 * e : 3 * e + 3]
            if not c:  # zeros, so that every weight has a gradient on every step (see top)
                gw_all += [xp.zeros_like(w), xp.zeros_like(v), xp.zeros_like(w1)]
                continue
            a, b, aux, h = self.acts[e]
            g = gys[start : start + c]  # (c, D)
            rows = xs[start : start + c]
            gh = g @ w1  # (c, H)
            gw1 = g.swapaxes(-1, -2) @ h  # (D, H)
            ga, gb = back(a, b, aux, gh)
            gxs[start : start + c] = gb @ v + ga @ w
            gw_all += [ga.swapaxes(-1, -2) @ rows, gb.swapaxes(-1, -2) @ rows, gw1]
            start += c
        if k == 1:
            gx = gxs[self.inverse]  # (N, D) back in token order
        else:  # the k copies' sum, slot after slot (NumPy's order for a middle axis)
            inv = self.inverse.reshape(n, k)
            gx = gxs[inv[:, 0]]
            if drop is not None:  # +0.0 first, as NumPy's sum (forward's note)
                gx += 0.0
            for j in range(1, k):
                gx += gxs[inv[:, j]]
        # take_along_axis's adjoint, as the composite form's gates (CuPy too): zeros elsewhere
        g_probs = array_backward.along_axis_grad(
            xp, g_gates.astype(probs.dtype, copy=False), probs.shape, self.idx, 1
        )
        return (gx, g_probs, *gw_all)


class LoadBalance(Function):
    """Switch Transformer's load-balancing loss E sum_i f_i P_i (Fedus et al. 2021, eq. 4).

    probs (N, E) -> 0-d. f_i, the fraction of the N*k assignments that went to expert i, is a
    constant computed here from `route(probs, k)`; P_i = mean over tokens of probs[:, i].
    d/dprobs[n, i] = E f_i / N.
    """

    __slots__ = ("k", "frac")
    saved_slots = ("frac",)
    differentiable_backward = False  # as MoEExperts: MoE(fused=False) for higher order

    def forward(self, probs):
        xp = backend.get_array_module(probs)
        n, e = probs.shape
        flat = backend.as_numpy(route(probs, self.k)).reshape(-1)
        counts = np.bincount(flat, minlength=e)
        self.frac = xp.asarray((counts / max(1, n * self.k)).astype(probs.dtype))  # (E,)
        if n == 0:
            return xp.zeros((), probs.dtype)
        p_mean = probs.mean(axis=0)  # (E,)
        return xp.asarray((p_mean * self.frac).sum() * probs.dtype.type(e))

    def backward(self, gy, ops):
        xp = backend.get_array_module(self.frac)
        n, e = self.in_shapes[0]
        # The composite form's order (x E, x f, then mean's x 1/n): the same bits.
        row = (gy * self.frac.dtype.type(e)) * self.frac  # (E,)
        row = row * (1.0 / n if n else 0.0)
        return xp.broadcast_to(row, (n, e)).copy()
