"""A whole LSTM or GRU layer (one direction, every time step) as one op.

Built from per-step ops, an LSTM layer records ~15 nodes per step (two products, the gate
slices, three sigmoids, two tanh, the cell update), and its backward delivers and accumulates
the weight gradients once per step: 2.2x PyTorch's time for a 2-layer LSTM (hidden 256,
sequence 64, batch 32; benchmarks/op_sweep.py). This op runs the recurrence on arrays and
writes backpropagation through time by hand, with the products that do not depend on the
recurrence batched over all steps: the input projection W_ih x of every step is ONE matrix
product forward, and the input, W_ih, W_hh and bias gradients are one product (or sum) each
backward. Only h W_hh^T (forward) and dgates W_hh (backward) stay per step.

Forward, for t in order (gates in PyTorch's row order i, f, g, o; Hochreiter & Schmidhuber
1997):
    i, f, g, o = σ, σ, tanh, σ of (W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
    c_t = f c_{t-1} + i g,    h_t = o tanh(c_t)
Backward, for t in reverse (dh, dc carried from step t+1; dh also gets the output's gradient):
    dc += dh o (1 - tanh²(c_t));   do = dh tanh(c_t);  di = dc g;  dg = dc i;  df = dc c_{t-1}
    dpre = (di i(1-i), df f(1-f), dg (1-g²), do o(1-o));  dh_{t-1} = dpre W_hh;  dc_{t-1} = dc f
The output is (L, N, 2H): h_t and c_t side by side, so h_n and c_n are slices of it.
GRULayer does the same for the GRU (2-layer GRU, hidden 256: 1.6x PyTorch per step).
create_graph: the backward re-runs the per-step ops on the inputs and differentiates them
(so second derivatives are the composite's).
"""

from __future__ import annotations

import numpy as np

from .. import autograd, backend
from ..array_backward import sigmoid as _sigmoid
from ..autograd import Function
from ..grad_mode import enable_grad


class LSTMLayer(Function):
    """hc = LSTM over x (L, N, I) from (h0, c0) (N, H): (L, N, 2H) = [h_t, c_t] per step.

    Inputs: x, h0, c0, w_ih (4H, I), w_hh (4H, H), then b_ih, b_hh (4H,) when has_b.
    reverse: run t = L-1 .. 0 (the backward direction of a bidirectional layer). Saves the
    gate activations (L, N, 4H), c_t and tanh(c_t) (L, N, H) and the inputs.
    """

    __slots__ = ("reverse", "has_b", "acts", "tanh_c", "cells")
    save_inputs = True
    saved_slots = ("acts", "tanh_c", "cells")

    def forward(self, x, h0, c0, w_ih, w_hh, *b):
        xp = backend.get_array_module(x)
        length, n, _ = x.shape
        hidden = w_hh.shape[1]
        # The input projection of every step at once: (L*N, I) @ (I, 4H), both biases added.
        gi = x.reshape(length * n, -1) @ w_ih.T
        if self.has_b:
            gi += b[0] + b[1]
        gi = gi.reshape(length, n, 4 * hidden)
        acts = xp.empty_like(gi)  # (L, N, 4H) the activated gates
        out = xp.empty((length, n, 2 * hidden), dtype=x.dtype)  # (L, N, 2H) [h_t, c_t]
        tanh_c = xp.empty((length, n, hidden), dtype=x.dtype)
        cells = xp.empty((length, n, hidden), dtype=x.dtype)
        w_hh_t = xp.ascontiguousarray(w_hh.T)  # (H, 4H); OpenBLAS: 0.21 ms vs 0.30 as a view
        h, c = h0, c0
        k = _cell_kernels(x)
        if k is not None and x.dtype == np.float32:  # the pointwise part in one numba pass
            for t in self._steps(length):
                pre = gi[t] + h @ w_hh_t  # (N, 4H) fresh: becomes the activations
                k.lstm_cell_forward(pre, np.ascontiguousarray(c), out[t], tanh_c[t])
                acts[t] = pre
                cells[t] = out[t, :, hidden:]
                h, c = out[t, :, :hidden], cells[t]
            self.acts, self.tanh_c, self.cells = acts, tanh_c, cells
            return out
        for t in self._steps(length):
            pre = gi[t] + h @ w_hh_t  # (N, 4H)
            a = acts[t]
            a[:, : 2 * hidden] = _sigmoid(xp, pre[:, : 2 * hidden])  # i, f
            a[:, 2 * hidden : 3 * hidden] = xp.tanh(pre[:, 2 * hidden : 3 * hidden])  # g
            a[:, 3 * hidden :] = _sigmoid(xp, pre[:, 3 * hidden :])  # o
            i, f, g, o = (a[:, k * hidden : (k + 1) * hidden] for k in range(4))
            c = f * c + i * g
            cells[t] = c
            tanh_c[t] = xp.tanh(c)
            h = o * tanh_c[t]
            out[t, :, :hidden] = h
            out[t, :, hidden:] = c
        self.acts, self.tanh_c, self.cells = acts, tanh_c, cells
        return out

    def _steps(self, length: int) -> range:
        return range(length - 1, -1, -1) if self.reverse else range(length)

    def backward(self, gy, ops):
        ins = self.inputs(ops)
        if ops.is_graph:
            return _graph_grads(self, gy, ins, lstm_layer_composite)
        x, h0, c0, w_ih, w_hh = ins[:5]
        xp = backend.get_array_module(gy)
        length, n, _ = x.shape
        hid = w_hh.shape[1]
        acts, tanh_c, cells = self.acts, self.tanh_c, self.cells
        dpre = xp.empty_like(acts)  # (L, N, 4H) gradients of the pre-activations
        dh = xp.zeros(h0.shape, dtype=gy.dtype)  # (N, H) carried from step t+1
        dc = xp.zeros(c0.shape, dtype=gy.dtype)
        steps = list(self._steps(length))
        kern = _cell_kernels(gy)
        for k in range(length - 1, -1, -1):
            t = steps[k]
            c_prev = c0 if k == 0 else cells[steps[k - 1]]
            if kern is not None:  # the same formulas in one numba pass (the same bits)
                kern.lstm_cell_backward(acts[t], np.ascontiguousarray(c_prev), tanh_c[t],
                                        np.ascontiguousarray(gy[t]), dh, dc, dpre[t])  # fmt: skip
                dh = dpre[t] @ w_hh
                continue
            a = acts[t]
            i, f, g, o = (a[:, j * hid : (j + 1) * hid] for j in range(4))
            tc = tanh_c[t]
            dh = dh + gy[t, :, :hid]
            dc = dc + gy[t, :, hid:] + dh * o * (1 - tc * tc)
            d = dpre[t]
            d[:, :hid] = dc * g * i * (1 - i)
            d[:, hid : 2 * hid] = dc * c_prev * f * (1 - f)
            d[:, 2 * hid : 3 * hid] = dc * i * (1 - g * g)
            d[:, 3 * hid :] = dh * tc * o * (1 - o)
            dh = d @ w_hh  # (N, H)
            dc = dc * f
        # The products that do not depend on the recurrence, over all steps at once.
        d2 = dpre.reshape(length * n, 4 * hid)
        gx = (d2 @ w_ih).reshape(x.shape) if self.parents[0] is not None else None
        gw_ih = d2.T @ x.reshape(length * n, -1) if self.parents[3] is not None else None
        gw_hh = None
        if self.parents[4] is not None:
            # h_{t-1} of every step: h0 for the first processed step, else the previous h.
            h_prev = xp.empty((length, n, hid), dtype=gy.dtype)
            h_prev[steps[0]] = h0
            for k in range(1, length):
                t, tp = steps[k], steps[k - 1]
                h_prev[t] = acts[tp][:, 3 * hid :] * tanh_c[tp]
            gw_hh = d2.T @ h_prev.reshape(length * n, hid)
        grads = [gx, dh, dc, gw_ih, gw_hh]
        if self.has_b:
            gb = d2.sum(axis=0)
            grads += [gb, gb.copy()]
        return tuple(grads)


def _cell_kernels(a):
    """kernels._cpu_extra for NumPy float32/float64 arrays with the numba kernels on, or
    None (the NumPy formulas run)."""
    if type(a) is not np.ndarray or a.dtype not in (np.float32, np.float64):
        return None
    from ..kernels import cpu as _kcpu

    if not _kcpu.enabled():
        return None
    from ..kernels import _cpu_extra

    return _cpu_extra


def lstm_layer_composite(x, h0, c0, w_ih, w_hh, *b, reverse: bool = False):
    """LSTMLayer's output from per-step differentiable ops (its create_graph backward)."""
    from .activation import sigmoid, tanh
    from .shape import concatenate, stack

    length = x.shape[0]
    hid = w_hh.shape[1]
    h, c = h0, c0
    seq = [None] * length
    for t in range(length - 1, -1, -1) if reverse else range(length):
        pre = x[t] @ w_ih.swapaxes(0, 1) + h @ w_hh.swapaxes(0, 1)
        if b:
            pre = pre + b[0] + b[1]
        i, f = sigmoid(pre[:, :hid]), sigmoid(pre[:, hid : 2 * hid])
        g, o = tanh(pre[:, 2 * hid : 3 * hid]), sigmoid(pre[:, 3 * hid :])
        c = f * c + i * g
        h = o * tanh(c)
        seq[t] = concatenate([h, c], axis=-1)
    return stack(seq, axis=0)


def fused_lstm_ok(x) -> bool:
    """LSTMLayer applies: NumPy float32/float64 data (CuPy and meta keep the per-step ops)."""
    return type(x._data) is np.ndarray and x._data.dtype in (np.float32, np.float64)


class GRULayer(Function):
    """hs = GRU over x (L, N, I) from h0 (N, H): (L, N, H), h_t per step (Cho et al. 2014,
    PyTorch's form: the reset gate scales W_hn h + b_hn).

    Forward:  r, z = σ(gi_r + gh_r), σ(gi_z + gh_z);  n = tanh(gi_n + r gh_n);
              h_t = (h_{t-1} - n) z + n,   gi = W_ih x + b_ih,  gh = W_hh h_{t-1} + b_hh.
    Backward (dh carried from step t+1 plus the output's gradient):
              dn = dh (1 - z) (1 - n²);  dz = dh (h_{t-1} - n) z (1 - z);
              dr = dn gh_n r (1 - r);  dgi = (dr, dz, dn);  dgh = (dr, dz, dn r);
              dh_{t-1} = dh z + dgh W_hh.
    As LSTMLayer, the input projection is one product for all steps, and the weight, bias
    and input gradients one product (or sum) each. Inputs: x, h0, w_ih (3H, I), w_hh (3H, H),
    then b_ih, b_hh when has_b. Saves r, z, n, gh_n per step (L, N, 4H) and the inputs.
    """

    __slots__ = ("reverse", "has_b", "gates")
    save_inputs = True
    saved_slots = ("gates",)

    def forward(self, x, h0, w_ih, w_hh, *b):
        xp = backend.get_array_module(x)
        length, n, _ = x.shape
        hid = w_hh.shape[1]
        gi = x.reshape(length * n, -1) @ w_ih.T  # (L*N, 3H): every step's input projection
        if self.has_b:
            gi += b[0]
        gi = gi.reshape(length, n, 3 * hid)
        w_hh_t = xp.ascontiguousarray(w_hh.T)  # (H, 3H)
        gates = xp.empty((length, n, 4 * hid), dtype=x.dtype)  # r, z, n, gh_n per step
        out = xp.empty((length, n, hid), dtype=x.dtype)
        h = h0
        for t in self._steps(length):
            gh = h @ w_hh_t  # (N, 3H)
            if self.has_b:
                gh += b[1]
            gt = gates[t]
            gt[:, : 2 * hid] = _sigmoid(xp, gi[t, :, : 2 * hid] + gh[:, : 2 * hid])  # r, z
            r, z = gt[:, :hid], gt[:, hid : 2 * hid]
            gt[:, 3 * hid :] = gh[:, 2 * hid :]  # gh_n, read by backward
            gt[:, 2 * hid : 3 * hid] = xp.tanh(gi[t, :, 2 * hid :] + r * gh[:, 2 * hid :])
            nn = gt[:, 2 * hid : 3 * hid]
            out[t] = (h - nn) * z + nn  # PyTorch's order of operations
            h = out[t]
        self.gates = gates
        return out

    def _steps(self, length: int) -> range:
        return range(length - 1, -1, -1) if self.reverse else range(length)

    def backward(self, gy, ops):
        ins = self.inputs(ops)
        if ops.is_graph:
            return _graph_grads(self, gy, ins, gru_layer_composite)
        x, h0, w_ih, w_hh = ins[:4]
        xp = backend.get_array_module(gy)
        length, n, _ = x.shape
        hid = w_hh.shape[1]
        gates = self.gates
        steps = list(self._steps(length))
        # h_{t-1} of every step, rebuilt from the saved gates: h_t = (h_{t-1} - n) z + n.
        h_prev = xp.empty((length, n, hid), dtype=gy.dtype)
        h = h0
        for t in steps:
            h_prev[t] = h
            gt = gates[t]
            z, nn = gt[:, hid : 2 * hid], gt[:, 2 * hid : 3 * hid]
            h = (h - nn) * z + nn
        dgi = xp.empty((length, n, 3 * hid), dtype=gy.dtype)
        dgh = xp.empty((length, n, 3 * hid), dtype=gy.dtype)
        dh = xp.zeros((n, hid), dtype=gy.dtype)
        for k in range(length - 1, -1, -1):
            t = steps[k]
            gt = gates[t]
            r, z = gt[:, :hid], gt[:, hid : 2 * hid]
            nn, ghn = gt[:, 2 * hid : 3 * hid], gt[:, 3 * hid :]
            dh = dh + gy[t]
            dn = dh * (1 - z) * (1 - nn * nn)
            dz = dh * (h_prev[t] - nn) * z * (1 - z)
            dr = dn * ghn * r * (1 - r)
            gi_t, gh_t = dgi[t], dgh[t]
            gi_t[:, :hid] = dr
            gi_t[:, hid : 2 * hid] = dz
            gi_t[:, 2 * hid :] = dn
            gh_t[:, : 2 * hid] = gi_t[:, : 2 * hid]
            gh_t[:, 2 * hid :] = dn * r
            dh = dh * z + gh_t @ w_hh
        di = dgi.reshape(length * n, 3 * hid)
        dhh = dgh.reshape(length * n, 3 * hid)
        gx = (di @ w_ih).reshape(x.shape) if self.parents[0] is not None else None
        gw_ih = di.T @ x.reshape(length * n, -1) if self.parents[2] is not None else None
        gw_hh = dhh.T @ h_prev.reshape(length * n, hid) if self.parents[3] is not None else None
        grads = [gx, dh, gw_ih, gw_hh]
        if self.has_b:
            grads += [di.sum(axis=0), dhh.sum(axis=0)]
        return tuple(grads)


def _graph_grads(fn: Function, gy, ins, composite):
    """create_graph: the composite layer's gradients, recorded (differentiable again)."""
    with enable_grad():
        y = composite(*ins, reverse=fn.reverse)
        wanted = [t for t, p in zip(ins, fn.parents) if p is not None]
        seed = autograd._seed(y, gy, True, type(fn).__name__)
        gs = iter(autograd._engine_backward([y], [seed], True, True, capture=wanted,
                                        accumulate=False))  # fmt: skip
    return tuple(next(gs) if p is not None else None for p in fn.parents)


def gru_layer_composite(x, h0, w_ih, w_hh, *b, reverse: bool = False):
    """GRULayer's output from per-step differentiable ops (its create_graph backward)."""
    from .activation import sigmoid, tanh
    from .shape import stack

    length = x.shape[0]
    hid = w_hh.shape[1]
    h = h0
    seq = [None] * length
    for t in range(length - 1, -1, -1) if reverse else range(length):
        gi = x[t] @ w_ih.swapaxes(0, 1)
        gh = h @ w_hh.swapaxes(0, 1)
        if b:
            gi, gh = gi + b[0], gh + b[1]
        r = sigmoid(gi[:, :hid] + gh[:, :hid])
        z = sigmoid(gi[:, hid : 2 * hid] + gh[:, hid : 2 * hid])
        nn = tanh(gi[:, 2 * hid :] + r * gh[:, 2 * hid :])
        h = (h - nn) * z + nn
        seq[t] = h
    return stack(seq, axis=0)
