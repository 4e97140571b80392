"""Recurrent layers: RNN, LSTM and GRU (multi-layer, bidirectional) and their one-step cells.

Same constructor arguments, parameter names (`weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`,
`bias_hh_l0`, with `_reverse` for the backward direction and `weight_hr_l0` for an LSTM's
projection), gate order and initialisation as torch.nn, so a PyTorch `state_dict` loads
unchanged and the outputs agree.

The recurrences (gate order as PyTorch's rows of the weight matrices):

    RNN:   h' = tanh(W_ih x + b_ih + W_hh h + b_hh)            (or relu)
    LSTM:  i, f, g, o = σ, σ, tanh, σ of (W_ih x + b_ih + W_hh h + b_hh)   (Hochreiter &
           c' = f c + i g,   h' = o tanh(c')                     Schmidhuber, 1997)
           h' ← W_hr h'                                          if proj_size > 0
    GRU:   r, z = σ(W_i{r,z} x + b_i{r,z} + W_h{r,z} h + b_h{r,z})   (Cho et al., 2014)
           n = tanh(W_in x + b_in + r (W_hn h + b_hn)),   h' = (h - n) z + n

Each step is built from descent's differentiable ops (linear, sigmoid, tanh, chunk, stack),
so gradients, double backward and gradcheck come from the engine. The sequence travels
between layers as a list of per-step tensors (see `RNNBase.forward`).
A `PackedSequence` input (descent.nn.utils.rnn) runs each sequence to its own length and
returns a PackedSequence, as PyTorch (see rnn_packed.py).
"""

from __future__ import annotations

import math
import numbers
import warnings

from .. import amp, creation
from ..hooks import composite
from ..ops.rnn import GRULayer, LSTMLayer, fused_lstm_ok
from ..ops.shape import chunk, concatenate, stack
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter
from .utils.rnn import PackedSequence

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


# -- one time step, shared by the layers and the cells ----------------------------------------
# `gi` is the input's projection W_ih x + b_ih (computed for all steps at once by the layers).
def _rnn_step(gi: Tensor, h: Tensor, w_hh, b_hh, relu: bool) -> Tensor:
    pre = gi + F.linear(h, w_hh, b_hh)
    return F.relu(pre) if relu else F.tanh(pre)


def _lstm_step(gi: Tensor, h: Tensor, c: Tensor, w_hh, b_hh, w_hr) -> tuple[Tensor, Tensor]:
    gates = gi + F.linear(h, w_hh, b_hh)  # (N, 4H): input, forget, cell, output
    i, f, g, o = chunk(gates, 4, axis=-1)
    c = F.sigmoid(f) * c + F.sigmoid(i) * F.tanh(g)
    h = F.sigmoid(o) * F.tanh(c)
    if w_hr is not None:
        h = F.linear(h, w_hr)  # (N, proj_size)
    return h, c


def _gru_step(gi: Tensor, h: Tensor, w_hh, b_hh) -> Tensor:
    gh = F.linear(h, w_hh, b_hh)  # (N, 3H): reset, update, new
    i_r, i_z, i_n = chunk(gi, 3, axis=-1)
    h_r, h_z, h_n = chunk(gh, 3, axis=-1)
    r = F.sigmoid(i_r + h_r)
    z = F.sigmoid(i_z + h_z)
    n = F.tanh(i_n + r * h_n)  # the reset gate scales W_hn h + b_hn (PyTorch's form)
    return (h - n) * z + n  # = (1 - z) n + z h, in PyTorch's order of operations


def _check_int(name: str, what: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name}: {what} must be an integer >= {low}, got {value!r}")


class RNNBase(Module):
    """The multi-layer, optionally bidirectional recurrence shared by RNN, LSTM and GRU.

    Args:
        mode: "RNN_TANH", "RNN_RELU", "LSTM" or "GRU".
        input_size: features per time step of the input.
        hidden_size: features of the hidden state.
        num_layers: stacked recurrent layers (layer k > 0 reads layer k-1's output sequence).
        bias: learn b_ih and b_hh.
        batch_first: inputs and outputs are (N, L, *) instead of (L, N, *) (hidden states are
            always (D * num_layers, N, H)).
        dropout: dropout probability on each layer's output except the last (training only).
        bidirectional: also run each layer backwards in time and concatenate the two outputs.
        proj_size: LSTM only: project h to this size (0: no projection).
    """

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        name = {"RNN_TANH": "RNN", "RNN_RELU": "RNN"}.get(mode, mode)
        if mode not in _GATES:
            raise ValueError(f"RNNBase: unknown mode {mode!r}; one of {sorted(_GATES)}")
        _check_int(name, "input_size", input_size, 0)
        _check_int(name, "hidden_size", hidden_size, 1)
        _check_int(name, "num_layers", num_layers, 1)
        _check_int(name, "proj_size", proj_size, 0)
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real):
            raise ValueError(f"{name}: dropout must be a number in [0, 1], got {dropout!r}")
        if not 0 <= dropout <= 1:
            raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                f"{name}: dropout={dropout} with num_layers=1 has no effect: dropout applies "
                "between stacked layers, not after the last one",
                stacklevel=3,
            )
        if proj_size and mode != "LSTM":
            raise ValueError(f"{name}: proj_size is only supported by LSTM")
        if proj_size >= hidden_size:
            raise ValueError(
                f"{name}: proj_size ({proj_size}) must be smaller than hidden_size ({hidden_size})"
            )
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        num_directions = 2 if bidirectional else 1
        gate_size = _GATES[mode] * hidden_size
        real_hidden = proj_size if proj_size > 0 else hidden_size
        # PyTorch's registration order (it fixes the order of parameters() and state_dict()):
        # per layer, per direction: w_ih, w_hh, b_ih, b_hh, w_hr.
        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else real_hidden * num_directions
            for direction in range(num_directions):
                sfx = "_reverse" if direction == 1 else ""
                shapes = {
                    f"weight_ih_l{layer}{sfx}": (gate_size, layer_input),
                    f"weight_hh_l{layer}{sfx}": (gate_size, real_hidden),
                }
                if bias:
                    shapes[f"bias_ih_l{layer}{sfx}"] = (gate_size,)
                    shapes[f"bias_hh_l{layer}{sfx}"] = (gate_size,)
                if proj_size > 0:
                    shapes[f"weight_hr_l{layer}{sfx}"] = (proj_size, hidden_size)
                for pname, shape in shapes.items():
                    setattr(self, pname, Parameter(creation.empty(*shape, device=device,
                                                                  dtype=dtype)))  # fmt: skip
                self._flat_weights_names.extend(shapes)
                self._all_weights.append(list(shapes))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight and bias from U(-1/√hidden_size, 1/√hidden_size), as PyTorch."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def flatten_parameters(self) -> None:
        """No-op (PyTorch packs the weights for cuDNN here); kept so PyTorch code runs."""

    @property
    def all_weights(self) -> list[list[Parameter]]:
        """The parameters per layer and direction, in PyTorch's order."""
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    @property
    def _flat_weights(self) -> list[Parameter]:
        return [getattr(self, n) for n in self._flat_weights_names]

    def _weights(self, layer: int, direction: int):
        """(w_ih, w_hh, b_ih, b_hh, w_hr) of one layer and direction (None where absent)."""
        sfx = "_reverse" if direction == 1 else ""
        params, plain = self.__dict__["_parameters"], self.__dict__

        def get(name):
            # A weight re-set as a plain tensor (weight-drop wrappers delete the Parameter and
            # assign a dropped-out copy before each forward) lives in the instance __dict__;
            # PyTorch's RNNBase.__setattr__ puts it in _flat_weights, so the forward uses it.
            w = params.get(name)
            return w if w is not None else plain.get(name)

        return (
            get(f"weight_ih_l{layer}{sfx}"),
            get(f"weight_hh_l{layer}{sfx}"),
            get(f"bias_ih_l{layer}{sfx}"),
            get(f"bias_hh_l{layer}{sfx}"),
            get(f"weight_hr_l{layer}{sfx}"),
        )

    def _hidden(self, hx, n: int, batched: bool, x: Tensor, size: int, what: str) -> Tensor:
        """The initial state (D * num_layers, N, size): zeros, or `hx` checked (and batched)."""
        layers = self.num_layers * (2 if self.bidirectional else 1)
        if hx is None:
            return creation.zeros(layers, n, size, dtype=x.dtype, device=x.device)
        expected_ndim = 3 if batched else 2
        if hx.ndim != expected_ndim:
            raise RuntimeError(
                f"{type(self).__name__}: for {'batched 3-D' if batched else 'unbatched 2-D'} "
                f"input, {what} should be {expected_ndim}-D, got {hx.ndim}-D of shape "
                f"{tuple(hx.shape)}"
            )
        if not batched:
            hx = hx.unsqueeze(1)
        if tuple(hx.shape) != (layers, n, size):
            raise RuntimeError(
                f"{type(self).__name__}: expected {what} of shape {(layers, n, size)}, got "
                f"{tuple(hx.shape)}"
            )
        return hx

    @composite("nn.RNNBase")  # PyTorch's ATen products: descent.utils.flop_counter
    def forward(self, input: Tensor, hx=None):  # PyTorch's names
        """Run the recurrence over a whole sequence.

        Args:
            input: (L, N, input_size), (N, L, input_size) with batch_first, unbatched
                (L, input_size), or a PackedSequence (batch_first does not apply to it).
            hx: the initial hidden state (D * num_layers, N, H_out), or (D * num_layers,
                H_out) for unbatched input; for LSTM a pair (h_0, c_0) with c_0 of hidden_size.
                Zeros when None.

        Returns:
            (output, h_n), or for LSTM (output, (h_n, c_n)): output (L, N, D * H_out) (batch
            first if batch_first), h_n/c_n the final states of every layer and direction.
        """
        name = type(self).__name__
        if isinstance(input, PackedSequence):
            # Variable-length batches: the recurrence over the running sequences only.
            from .rnn_packed import forward_packed  # it imports this module's step functions

            return forward_packed(self, input, hx)
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
        if input.ndim not in (2, 3):
            raise ValueError(
                f"{name}: expected input to be 2-D or 3-D, got {input.ndim}-D input of shape "
                f"{tuple(input.shape)}"
            )
        batched = input.ndim == 3
        x = input if batched else input.unsqueeze(1)  # (L, 1, in) when unbatched
        if batched and self.batch_first:
            x = x.transpose(0, 1)  # (L, N, in)
        length, n, features = x.shape
        if length == 0:
            raise ValueError(f"{name}: the input sequence is empty (length 0)")
        if features != self.input_size:
            raise RuntimeError(
                f"{name}: input.size(-1) must be equal to input_size. Expected "
                f"{self.input_size}, got {features}"
            )
        w = getattr(self, "weight_ih_l0", None)
        if w is not None and x._data.dtype != w._data.dtype and not amp._depth:
            raise ValueError(  # PyTorch's class; it computed in a promoted dtype before
                f"{name}: input dtype ({input.dtype}) does not match weight dtype ({w.dtype}). "
                f"Convert the input: input.to({w.dtype}), or the model: model.to({input.dtype})"
            )
        is_lstm = self.mode == "LSTM"
        h_out = self.proj_size if self.proj_size > 0 else self.hidden_size
        if is_lstm:
            h0, c0 = (None, None) if hx is None else hx
            h0 = self._hidden(h0, n, batched, x, h_out, "h_0")
            c0 = self._hidden(c0, n, batched, x, self.hidden_size, "c_0")
        else:
            if isinstance(hx, tuple):
                raise TypeError(f"{name}: hx must be a Tensor, not a tuple (that is LSTM's form)")
            h0 = self._hidden(hx, n, batched, x, h_out, "hx")
            c0 = None
        directions = 2 if self.bidirectional else 1
        if is_lstm and self.proj_size == 0 and fused_lstm_ok(x) and (
            self.dropout == 0 or not self.training or self.num_layers == 1
        ):
            output, h_n, c_n = self._lstm_layers(x, h0, c0, directions)
            if not batched:
                return output[:, 0], (h_n[:, 0], c_n[:, 0])
            if self.batch_first:
                output = output.transpose(0, 1)
            return output, (h_n, c_n)
        if self.mode == "GRU" and fused_lstm_ok(x) and (
            self.dropout == 0 or not self.training or self.num_layers == 1
        ):
            output, h_n = self._gru_layers(x, h0, directions)
            if not batched:
                return output[:, 0], h_n[:, 0]
            return (output.transpose(0, 1) if self.batch_first else output), h_n
        h_n, c_n = [], []
        # The sequence is handled as a list of per-step tensors (N, features): slicing one big
        # (L, N, F) tensor at every step would give each slice's gradient the full (L, N, F)
        # shape in backward (an O(L^2) accumulation); concatenation and stacking, used to
        # build tensors from steps, have cheap backward passes (views of the gradient).
        layer_input = [x[t] for t in range(length)]  # L x (N, in)
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                idx = layer * directions + direction
                w_ih, w_hh, b_ih, b_hh, w_hr = self._weights(layer, direction)
                h = h0[idx]
                c = c0[idx] if is_lstm else None
                seq: list = [None] * length
                steps = range(length - 1, -1, -1) if direction == 1 else range(length)
                for t in steps:
                    gi = F.linear(layer_input[t], w_ih, b_ih)  # (N, G*H)
                    if is_lstm:
                        h, c = _lstm_step(gi, h, c, w_hh, b_hh, w_hr)
                    elif self.mode == "GRU":
                        h = _gru_step(gi, h, w_hh, b_hh)
                    else:
                        h = _rnn_step(gi, h, w_hh, b_hh, self.mode == "RNN_RELU")
                    seq[t] = h  # (N, H_out)
                outputs.append(seq)
                h_n.append(h)
                c_n.append(c)
            if directions == 1:
                layer_input = outputs[0]
            else:  # (N, 2*H_out) per step: forward and backward outputs side by side
                layer_input = [concatenate(pair, axis=-1) for pair in zip(*outputs, strict=True)]
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_input = [F.dropout(step, self.dropout, True) for step in layer_input]
        output = stack(layer_input, axis=0)  # (L, N, D*H_out)
        h_n = stack(h_n, axis=0)  # (D*num_layers, N, H_out)
        c_n = stack(c_n, axis=0) if is_lstm else None
        if not batched:
            output, h_n = output[:, 0], h_n[:, 0]
            c_n = c_n[:, 0] if is_lstm else None
        elif self.batch_first:
            output = output.transpose(0, 1)
        return (output, (h_n, c_n)) if is_lstm else (output, h_n)

    def _lstm_layers(self, x: Tensor, h0: Tensor, c0: Tensor, directions: int):
        """The LSTM as one LSTMLayer op per layer and direction (ops/rnn.py: the recurrence
        on arrays, BPTT by hand); the same values as the per-step ops, to float rounding.
        Returns output (L, N, D*H), h_n and c_n (D*num_layers, N, H)."""
        hid = self.hidden_size
        layer_input = x  # (L, N, features)
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(directions):
                idx = layer * directions + direction
                w_ih, w_hh, b_ih, b_hh, _ = self._weights(layer, direction)
                ins = [layer_input, h0[idx], c0[idx], w_ih, w_hh]
                if b_ih is not None:
                    ins += [b_ih, b_hh]
                hc = LSTMLayer.apply(*ins, reverse=direction == 1, has_b=b_ih is not None)
                last = 0 if direction == 1 else -1  # the state after the last step processed
                outs.append(hc[:, :, :hid])  # (L, N, H)
                h_n.append(hc[last, :, :hid])
                c_n.append(hc[last, :, hid:])
            layer_input = outs[0] if directions == 1 else concatenate(outs, axis=-1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, True)
        return layer_input, stack(h_n, axis=0), stack(c_n, axis=0)

    def _gru_layers(self, x: Tensor, h0: Tensor, directions: int):
        """The GRU as one GRULayer op per layer and direction (ops/rnn.py). Returns output
        (L, N, D*H) and h_n (D*num_layers, N, H)."""
        layer_input = x  # (L, N, features)
        h_n = []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(directions):
                idx = layer * directions + direction
                w_ih, w_hh, b_ih, b_hh, _ = self._weights(layer, direction)
                ins = [layer_input, h0[idx], w_ih, w_hh]
                if b_ih is not None:
                    ins += [b_ih, b_hh]
                hs = GRULayer.apply(*ins, reverse=direction == 1, has_b=b_ih is not None)
                outs.append(hs)  # (L, N, H)
                h_n.append(hs[0 if direction == 1 else -1])
            layer_input = outs[0] if directions == 1 else concatenate(outs, axis=-1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, True)
        return layer_input, stack(h_n, axis=0)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


class RNN(RNNBase):
    """Elman RNN: h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (or relu), as torch.nn.RNN.

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional: see
            `RNNBase`.
        nonlinearity: "tanh" or "relu".
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(
            "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            device,
            dtype,
        )


class LSTM(RNNBase):
    """Long short-term memory, as torch.nn.LSTM (gates i, f, g, o; optional projection).

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
            proj_size: see `RNNBase`.

    `forward(input, (h_0, c_0))` returns `output, (h_n, c_n)`.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(
            "LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
            bidirectional, proj_size, device, dtype,
        )  # fmt: skip


class GRU(RNNBase):
    """Gated recurrent unit, as torch.nn.GRU (gates r, z, n).

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional: see
            `RNNBase`.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(
            "GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
            bidirectional, 0, device, dtype,
        )  # fmt: skip


# -- cells: one time step ---------------------------------------------------------------------
class RNNCellBase(Module):
    """Parameters `weight_ih` (G·H, input_size), `weight_hh` (G·H, H), `bias_ih`, `bias_hh`
    (G·H,), all from U(-1/√H, 1/√H) as PyTorch."""

    _gates = 1

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__()
        name = type(self).__name__
        _check_int(name, "input_size", input_size, 0)
        _check_int(name, "hidden_size", hidden_size, 1)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        g = self._gates * hidden_size
        self.weight_ih = Parameter(creation.empty(g, input_size, device=device, dtype=dtype))
        self.weight_hh = Parameter(creation.empty(g, hidden_size, device=device, dtype=dtype))
        if bias:
            self.bias_ih = Parameter(creation.empty(g, device=device, dtype=dtype))
            self.bias_hh = Parameter(creation.empty(g, device=device, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def _prepare(self, input: Tensor):
        """(the input as a batch (N, input_size), whether it was batched)."""
        name = type(self).__name__
        if input.ndim not in (1, 2):
            raise ValueError(
                f"{name}: expected input to be 1-D or 2-D, got {input.ndim}-D of shape "
                f"{tuple(input.shape)}"
            )
        if input.shape[-1] != self.input_size:
            raise RuntimeError(
                f"{name}: input has inconsistent input_size: got {input.shape[-1]}, expected "
                f"{self.input_size}"
            )
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        return x, batched

    def _state(self, hx, x: Tensor, batched: bool, what: str) -> Tensor:
        name = type(self).__name__
        if hx is None:
            return creation.zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
        h = hx if batched else hx.unsqueeze(0)
        if tuple(h.shape) != (x.shape[0], self.hidden_size):
            raise RuntimeError(
                f"{name}: {what} of shape {tuple(hx.shape)} does not match the input batch; "
                f"expected {(x.shape[0], self.hidden_size) if batched else (self.hidden_size,)}"
            )
        return h

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":  # RNNCell's, unquoted as PyTorch's
            s += f", nonlinearity={self.nonlinearity}"
        return s


class RNNCell(RNNCellBase):
    """One step of an Elman RNN: h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (or relu).

    `forward(input, hx=None)`: input (N, input_size) or (input_size,), hx (N, H) or (H,)
    (zeros when None); returns h'.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device=None,
        dtype=None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}"
            )
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, batched = self._prepare(input)
        h = self._state(hx, x, batched, "hx")
        gi = F.linear(x, self.weight_ih, self.bias_ih)
        h = _rnn_step(gi, h, self.weight_hh, self.bias_hh, self.nonlinearity == "relu")
        return h if batched else h[0]


class LSTMCell(RNNCellBase):
    """One LSTM step. `forward(input, (h, c)=None)` returns (h', c')."""

    _gates = 4

    def forward(self, input: Tensor, hx=None) -> tuple[Tensor, Tensor]:
        x, batched = self._prepare(input)
        h0, c0 = (None, None) if hx is None else hx
        h = self._state(h0, x, batched, "h")
        c = self._state(c0, x, batched, "c")
        gi = F.linear(x, self.weight_ih, self.bias_ih)
        h, c = _lstm_step(gi, h, c, self.weight_hh, self.bias_hh, None)
        return (h, c) if batched else (h[0], c[0])


class GRUCell(RNNCellBase):
    """One GRU step. `forward(input, hx=None)` returns h'."""

    _gates = 3

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, batched = self._prepare(input)
        h = self._state(hx, x, batched, "hx")
        gi = F.linear(x, self.weight_ih, self.bias_ih)
        h = _gru_step(gi, h, self.weight_hh, self.bias_hh)
        return h if batched else h[0]
