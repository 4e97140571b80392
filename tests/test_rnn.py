"""descent.nn RNN, LSTM, GRU and their cells against torch.nn (the oracle).

Same weights (PyTorch's state_dict loaded unchanged) -> the same outputs, final states and
gradients (of the input, the initial states and every parameter) in float32 (rtol 1e-5), and
in float64 (rtol 1e-10); a float64 gradcheck of a tiny LSTM against finite differences.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent
import descent.nn as nn
from descent.explain import gradcheck

TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}


def _twins(kind, dtype, *args, **kwargs):
    """A torch module and a descent module with the torch module's weights."""
    torch.manual_seed(0)
    theirs = getattr(torch.nn, kind)(*args, **kwargs).to(TORCH_DTYPE[dtype])
    ours = getattr(nn, kind)(*args, **kwargs, dtype=dtype)
    sd = theirs.state_dict()
    assert list(ours.state_dict()) == list(sd)  # names AND order, so state_dicts map 1:1
    ours.load_state_dict({k: v.detach().numpy() for k, v in sd.items()})
    return ours, theirs


def _close(a, b, dtype, what):
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else b
    np.testing.assert_allclose(a.numpy(), b, **TOL[dtype], err_msg=what)


def _leaf(arr):
    return descent.tensor(arr, dtype=arr.dtype, requires_grad=True)


def _tleaf(arr):
    return torch.tensor(arr, requires_grad=True)


CONFIGS = [
    ("RNN", dict()),
    ("RNN", dict(nonlinearity="relu", num_layers=2)),
    ("RNN", dict(bidirectional=True, batch_first=True)),
    ("LSTM", dict()),
    ("LSTM", dict(num_layers=2, bidirectional=True)),
    ("LSTM", dict(num_layers=3, batch_first=True, bias=False)),
    ("LSTM", dict(proj_size=3, num_layers=2, bidirectional=True)),
    ("GRU", dict()),
    ("GRU", dict(num_layers=2, bidirectional=True, batch_first=True)),
    ("GRU", dict(bias=False, num_layers=2)),
]
IN, HID, L, N = 5, 6, 7, 3


def _inputs(kind, kwargs, dtype, batched=True, with_state=True, seed=1):
    rng = np.random.default_rng(seed)
    bf = kwargs.get("batch_first", False)
    shape = ((N, L, IN) if bf else (L, N, IN)) if batched else (L, IN)
    x = rng.standard_normal(shape).astype(dtype)
    d = 2 if kwargs.get("bidirectional") else 1
    layers = d * kwargs.get("num_layers", 1)
    h_out = kwargs.get("proj_size", 0) or HID
    states = []
    if with_state:
        hshape = (layers, N, h_out) if batched else (layers, h_out)
        states.append(rng.standard_normal(hshape).astype(dtype))
        if kind == "LSTM":
            cshape = (layers, N, HID) if batched else (layers, HID)
            states.append(rng.standard_normal(cshape).astype(dtype))
    return x, states


def _run(module, x, states, kind):
    if not states:
        return module(x)
    return module(x, tuple(states) if kind == "LSTM" else states[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize(("kind", "kwargs"), CONFIGS, ids=[f"{k}-{v}" for k, v in CONFIGS])
def test_matches_torch_outputs_states_and_gradients(kind, kwargs, batched, dtype):
    ours, theirs = _twins(kind, dtype, IN, HID, **kwargs)
    x, states = _inputs(kind, kwargs, dtype, batched)
    xs, ss = _leaf(x), [_leaf(s) for s in states]
    xt, st = _tleaf(x), [_tleaf(s) for s in states]
    out, hn = _run(ours, xs, ss, kind)
    tout, thn = _run(theirs, xt, st, kind)
    _close(out, tout, dtype, "output")
    finals = list(hn) if kind == "LSTM" else [hn]
    tfinals = list(thn) if kind == "LSTM" else [thn]
    for a, b in zip(finals, tfinals, strict=True):
        assert tuple(a.shape) == tuple(b.shape)
        _close(a, b, dtype, "final state")
    # A loss that weighs every output and final state differently.
    rng = np.random.default_rng(2)
    parts = [out] + finals
    tparts = [tout] + tfinals
    ws = [rng.standard_normal(tuple(p.shape)).astype(dtype) for p in parts]
    loss = sum(((p * descent.tensor(w, dtype=dtype)).sum() for p, w in zip(parts, ws)), 0.0)
    tloss = sum(((p * torch.tensor(w)).sum() for p, w in zip(tparts, ws)), 0.0)
    loss.backward()
    tloss.backward()
    _close(xs.grad, xt.grad, dtype, "input grad")
    for a, b in zip(ss, st, strict=True):
        _close(a.grad, b.grad, dtype, "initial state grad")
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        _close(p.grad, tparams[name].grad, dtype, f"grad of {name}")


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_zero_initial_state_by_default(kind):
    ours, theirs = _twins(kind, np.float32, IN, HID, num_layers=2)
    x, _ = _inputs(kind, {}, np.float32, with_state=False)
    out, _ = ours(descent.tensor(x))
    tout, _ = theirs(torch.tensor(x))
    _close(out, tout, np.float32, "output")


CELLS = [("RNNCell", dict()), ("RNNCell", dict(nonlinearity="relu", bias=False)),
         ("LSTMCell", dict()), ("LSTMCell", dict(bias=False)), ("GRUCell", dict()),
         ("GRUCell", dict(bias=False))]  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize(("kind", "kwargs"), CELLS, ids=[f"{k}-{v}" for k, v in CELLS])
def test_cells_match_torch(kind, kwargs, batched, dtype):
    ours, theirs = _twins(kind, dtype, IN, HID, **kwargs)
    rng = np.random.default_rng(3)
    lead = (N,) if batched else ()
    x = rng.standard_normal(lead + (IN,)).astype(dtype)
    h = rng.standard_normal(lead + (HID,)).astype(dtype)
    c = rng.standard_normal(lead + (HID,)).astype(dtype)
    xs, hs, cs = _leaf(x), _leaf(h), _leaf(c)
    xt, ht, ct = _tleaf(x), _tleaf(h), _tleaf(c)
    # Three steps, feeding each state back in (the usual loop over a sequence).
    if kind == "LSTMCell":
        state, tstate = (hs, cs), (ht, ct)
        for _ in range(3):
            state, tstate = ours(xs, state), theirs(xt, tstate)
        outs, touts = list(state), list(tstate)
    else:
        state, tstate = hs, ht
        for _ in range(3):
            state, tstate = ours(xs, state), theirs(xt, tstate)
        outs, touts = [state], [tstate]
    for a, b in zip(outs, touts, strict=True):
        _close(a, b, dtype, "state")
    sum((o * o).sum() for o in outs).backward()
    sum((o * o).sum() for o in touts).backward()
    _close(xs.grad, xt.grad, dtype, "input grad")
    _close(hs.grad, ht.grad, dtype, "h grad")
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        _close(p.grad, tparams[name].grad, dtype, f"grad of {name}")
    # without a state: zeros
    out0 = ours(xs)
    tout0 = theirs(xt)
    _close(out0[0] if kind == "LSTMCell" else out0, tout0[0] if kind == "LSTMCell" else tout0,
           dtype, "zero state")  # fmt: skip


def test_lstm_gradcheck_float64():
    """A 2-layer bidirectional LSTM: input, (h0, c0) and the layer-0 weights vs central
    finite differences (the full Jacobian)."""
    descent.manual_seed(0)
    m = nn.LSTM(2, 3, num_layers=2, bidirectional=True, dtype=np.float64)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 2, 2))
    h0 = rng.standard_normal((4, 2, 3))
    c0 = rng.standard_normal((4, 2, 3))
    names = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "weight_hh_l1_reverse"]
    weights = [m.get_parameter(n).numpy().copy() for n in names]

    def f(x, h0, c0, *ws):
        # The checked weights stand in for the module's parameters during this call.
        saved = {n: m._parameters[n] for n in names}
        m._parameters.update(zip(names, ws, strict=True))
        try:
            out, (hn, cn) = m(x, (h0, c0))
        finally:
            m._parameters.update(saved)
        return descent.ops.shape.concatenate([out.reshape(-1), hn.reshape(-1), cn.reshape(-1)])

    inputs = [descent.tensor(a, dtype=np.float64, requires_grad=True)
              for a in [x, h0, c0, *weights]]  # fmt: skip
    result = gradcheck(f, inputs, eps=1e-6, atol=1e-7, rtol=1e-6)
    assert result, str(result)


@pytest.mark.parametrize("kind", ["GRU", "RNN"])
def test_gradcheck_float64_gru_and_rnn(kind):
    descent.manual_seed(1)
    m = getattr(nn, kind)(3, 2, num_layers=2, dtype=np.float64)
    rng = np.random.default_rng(1)
    x = descent.tensor(rng.standard_normal((3, 2, 3)), dtype=np.float64, requires_grad=True)
    h = descent.tensor(rng.standard_normal((2, 2, 2)), dtype=np.float64, requires_grad=True)

    def f(x, h):
        out, hn = m(x, h)
        return descent.ops.shape.concatenate([out.reshape(-1), hn.reshape(-1)])

    result = gradcheck(f, [x, h], eps=1e-6, atol=1e-7, rtol=1e-6)
    assert result, str(result)


def test_dropout_between_layers():
    """dropout=1 in training zeroes layer 0's output, so layer 1 sees zeros; eval: no dropout."""
    descent.manual_seed(0)
    m = nn.LSTM(IN, HID, num_layers=2, dropout=1.0)
    top = nn.LSTM(HID, HID)
    top.load_state_dict({k.replace("l1", "l0"): v for k, v in m.state_dict().items() if "l1" in k})
    x = descent.randn(L, N, IN)
    out_train, _ = m(x)
    out_top, _ = top(descent.zeros(L, N, HID))
    np.testing.assert_allclose(out_train.numpy(), out_top.numpy(), rtol=1e-6, atol=1e-7)
    m.eval()
    ours_eval, _ = m(x)
    assert not np.allclose(ours_eval.numpy(), out_top.numpy())
    # p = 0.5: a random mask, different from eval, scaled by 2 where kept
    m2 = nn.GRU(IN, HID, num_layers=2, dropout=0.5)
    a, _ = m2(x)
    m2.eval()
    b, _ = m2(x)
    assert not np.allclose(a.numpy(), b.numpy())


def test_state_dict_names_init_and_repr():
    for kind, kwargs in CONFIGS:
        torch.manual_seed(0)
        theirs = getattr(torch.nn, kind)(IN, HID, **kwargs)
        ours = getattr(nn, kind)(IN, HID, **kwargs)
        assert list(dict(ours.named_parameters())) == list(dict(theirs.named_parameters()))
        for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
            assert p.shape == tuple(q.shape), name
            bound = 1 / np.sqrt(HID)
            assert np.abs(p.numpy()).max() <= bound and np.abs(p.numpy()).max() > 0.5 * bound
        assert repr(ours) == repr(theirs)
        assert len(ours.all_weights) == len(theirs.all_weights)
        ours.flatten_parameters()
    for kind in ["RNNCell", "LSTMCell", "GRUCell"]:
        assert repr(getattr(nn, kind)(IN, HID)) == repr(getattr(torch.nn, kind)(IN, HID))
        sd = getattr(torch.nn, kind)(IN, HID).state_dict()
        assert list(getattr(nn, kind)(IN, HID).state_dict()) == list(sd)


def test_errors():
    m = nn.LSTM(IN, HID, num_layers=2)
    with pytest.raises(RuntimeError, match="input_size"):
        m(descent.randn(L, N, IN + 1))
    with pytest.raises(ValueError, match="2-D or 3-D"):
        m(descent.randn(1, L, N, IN))
    with pytest.raises(RuntimeError, match="h_0"):
        m(descent.randn(L, N, IN), (descent.zeros(1, N, HID), descent.zeros(2, N, HID)))
    with pytest.raises(RuntimeError, match="hx"):
        nn.GRU(IN, HID)(descent.randn(L, N, IN), descent.zeros(1, N + 1, HID))
    with pytest.raises(ValueError, match="proj_size"):
        nn.RNNBase("GRU", IN, HID, proj_size=2)
    with pytest.raises(TypeError, match="proj_size"):
        nn.GRU(IN, HID, proj_size=2)
    with pytest.raises(ValueError, match="proj_size"):
        nn.LSTM(IN, HID, proj_size=HID)
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(IN, HID, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="dropout"):
        nn.LSTM(IN, HID, dropout=1.5)
    with pytest.warns(UserWarning, match="num_layers=1"):
        nn.LSTM(IN, HID, dropout=0.2)
    with pytest.raises(RuntimeError, match="input_size"):
        nn.GRUCell(IN, HID)(descent.randn(N, IN + 1))
    with pytest.raises(RuntimeError, match="hx"):
        nn.GRUCell(IN, HID)(descent.randn(N, IN), descent.zeros(N + 1, HID))


def test_word_level_language_model_step_matches_torch():
    """Embedding -> 2-layer LSTM -> Linear, cross-entropy, one SGD step: the shape of
    pytorch/examples' word_language_model, from the same weights."""
    V, E = 11, 4
    torch.manual_seed(0)
    t_emb, t_rnn, t_dec = (
        torch.nn.Embedding(V, E),
        torch.nn.LSTM(E, HID, 2),
        torch.nn.Linear(HID, V),
    )
    emb, rnn, dec = nn.Embedding(V, E), nn.LSTM(E, HID, 2), nn.Linear(HID, V)
    for ours, theirs in [(emb, t_emb), (rnn, t_rnn), (dec, t_dec)]:
        ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, V, size=(L + 1, N))
    params = [*emb.parameters(), *rnn.parameters(), *dec.parameters()]
    tparams = [*t_emb.parameters(), *t_rnn.parameters(), *t_dec.parameters()]
    opt, topt = descent.optim.SGD(params, lr=0.5), torch.optim.SGD(tparams, lr=0.5)
    for _ in range(3):
        out, _ = rnn(emb(descent.tensor(tokens[:-1])))
        loss = nn.functional.cross_entropy(dec(out).reshape(-1, V),
                                           descent.tensor(tokens[1:].reshape(-1)))  # fmt: skip
        tout, _ = t_rnn(t_emb(torch.tensor(tokens[:-1])))
        tloss = torch.nn.functional.cross_entropy(t_dec(tout).reshape(-1, V),
                                                  torch.tensor(tokens[1:].reshape(-1)))  # fmt: skip
        np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5)
        opt.zero_grad()
        topt.zero_grad()
        loss.backward()
        tloss.backward()
        opt.step()
        topt.step()
