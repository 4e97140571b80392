"""RNN, LSTM and GRU over a PackedSequence (`descent.nn.utils.rnn`), as torch.nn's.

The sequences are sorted by decreasing length, so at time step t the first batch_sizes[t] of
them are running and the rest have ended. The recurrence runs on that prefix only:

    forward direction:  when the batch shrinks from n to m, rows m..n-1 have just ended:
                        their hidden state is final, and the step runs on h[:m];
    reverse direction:  starts at the last step with the sequences that long, and when the
                        batch grows from m to n, rows m..n-1 begin, from their initial state.

Each step is the same `_rnn_step` / `_lstm_step` / `_gru_step` as the padded path
(`descent.nn.rnn`), so the arithmetic per sequence is identical to running it alone; the
output is packed again (the steps concatenated) and h_n holds each sequence's state at its
own last step, in the caller's batch order (`unsorted_indices`), as PyTorch.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..ops.indexing import index_select
from ..ops.shape import concatenate, stack
from ..tensor import Tensor
from . import functional as F
from .rnn import _gru_step, _lstm_step, _rnn_step
from .utils.rnn import PackedSequence


def _step(module, gi, h, c, w_hh, b_hh, w_hr):
    if module.mode == "LSTM":
        return _lstm_step(gi, h, c, w_hh, b_hh, w_hr)
    if module.mode == "GRU":
        return _gru_step(gi, h, w_hh, b_hh), None
    return _rnn_step(gi, h, w_hh, b_hh, module.mode == "RNN_RELU"), None


def _run_direction(module, steps_in, sizes, h0, c0, weights, reverse):
    """One layer in one direction: (outputs per step, final h (B, H), final c or None)."""
    w_ih, w_hh, b_ih, b_hh, w_hr = weights
    length = len(sizes)
    out: list = [None] * length
    if not reverse:
        h, c = h0, c0
        ended_h, ended_c = [], []  # states of sequences that ended, latest last
        for t in range(length):
            m = sizes[t]
            if m < h.shape[0]:
                ended_h.append(h[m:])
                h = h[:m]
                if c is not None:
                    ended_c.append(c[m:])
                    c = c[:m]
            h, c = _step(module, F.linear(steps_in[t], w_ih, b_ih), h, c, w_hh, b_hh, w_hr)
            out[t] = h  # (m, H_out)
        # Rows in sorted order: the still-running ones, then those that ended last to first.
        h_n = concatenate([h] + ended_h[::-1], axis=0) if ended_h else h
        c_n = None
        if c is not None:
            c_n = concatenate([c] + ended_c[::-1], axis=0) if ended_c else c
        return out, h_n, c_n
    m0 = sizes[-1]
    h = h0[:m0]
    c = None if c0 is None else c0[:m0]
    for t in range(length - 1, -1, -1):
        m = sizes[t]
        if m > h.shape[0]:  # sequences of length t + 1 start here, from their initial state
            h = concatenate([h, h0[h.shape[0] : m]], axis=0)
            if c is not None:
                c = concatenate([c, c0[c.shape[0] : m]], axis=0)
        h, c = _step(module, F.linear(steps_in[t], w_ih, b_ih), h, c, w_hh, b_hh, w_hr)
        out[t] = h
    return out, h, c


def forward_packed(module, packed: PackedSequence, hx):
    """`module(packed, hx)` for an RNNBase: (PackedSequence output, h_n) or, for LSTM,
    (output, (h_n, c_n)); hx is (D * num_layers, B, H) in the caller's batch order."""
    name = type(module).__name__
    data = packed.data
    if data.ndim != 2 or data.shape[1] != module.input_size:
        raise RuntimeError(
            f"{name}: the packed data must be (steps, input_size={module.input_size}), got "
            f"{tuple(data.shape)}"
        )
    sizes = [int(n) for n in backend.as_numpy(packed.batch_sizes._data)]
    n = sizes[0]
    xp = backend.get_array_module(data._data)
    sorted_idx = packed.sorted_indices
    is_lstm = module.mode == "LSTM"
    h_out = module.proj_size if module.proj_size > 0 else module.hidden_size

    def initial(state, size, what):
        state = module._hidden(state, n, True, data, size, what)  # zeros or checked (L, B, H)
        if sorted_idx is None:
            return state
        return index_select(state, 1, xp.asarray(sorted_idx._data))  # into packed order

    if is_lstm:
        h0, c0 = (None, None) if hx is None else hx
        h0, c0 = initial(h0, h_out, "h_0"), initial(c0, module.hidden_size, "c_0")
    else:
        if isinstance(hx, tuple):
            raise TypeError(f"{name}: hx must be a Tensor, not a tuple (that is LSTM's form)")
        h0, c0 = initial(hx, h_out, "hx"), None
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    layer_input = [data[int(offsets[t]) : int(offsets[t + 1])] for t in range(len(sizes))]
    directions = 2 if module.bidirectional else 1
    h_n, c_n = [], []
    for layer in range(module.num_layers):
        outputs = []
        for direction in range(directions):
            idx = layer * directions + direction
            out, h, c = _run_direction(
                module, layer_input, sizes, h0[idx], None if c0 is None else c0[idx],
                module._weights(layer, direction), reverse=direction == 1,
            )  # fmt: skip
            outputs.append(out)
            h_n.append(h)
            c_n.append(c)
        if directions == 1:
            layer_input = outputs[0]
        else:
            layer_input = [concatenate(pair, axis=-1) for pair in zip(*outputs, strict=True)]
        if module.dropout > 0 and module.training and layer < module.num_layers - 1:
            layer_input = [F.dropout(step, module.dropout, True) for step in layer_input]
    output = PackedSequence(concatenate(layer_input, axis=0), packed.batch_sizes,
                            packed.sorted_indices, packed.unsorted_indices)  # fmt: skip
    h_n = _unsort(stack(h_n, axis=0), packed.unsorted_indices, xp)
    if is_lstm:
        return output, (h_n, _unsort(stack(c_n, axis=0), packed.unsorted_indices, xp))
    return output, h_n


def _unsort(state: Tensor, unsorted, xp) -> Tensor:
    """(L, B, H) from packed order back to the caller's batch order."""
    if unsorted is None:
        return state
    return index_select(state, 1, xp.asarray(unsorted._data))
