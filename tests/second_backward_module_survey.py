"""A second backward() over PyTorch's module database (ModuleInfo) and a list of functional ops
that training code calls outside op_db, torch against descent.

tests/second_backward_survey.py covers op_db. This one builds each nn module of
``common_modules.module_db`` in both libraries from the same arguments and state (as
tests/moduleinfo_harness.py does), runs the first three float64 inputs (float32 where float64
is not listed) forward, then ``autograd.backward(outputs, weights)`` twice, with retain_graph
False and True on the first: whether the second raised PyTorch's "a second time" error, and
with retain_graph the accumulated gradients of the inputs and parameters. FUNCTIONAL adds
F.scaled_dot_product_attention, F.multi_head_attention_forward, the rnn cells,
conv_transpose, embedding_bag and a few others in the same way. `python
tests/second_backward_module_survey.py [NAME ...]` prints what differs and the counts. Not a
test: a survey for the next fix (tests/test_autograd_s19.py holds the fixed cases).
"""

from __future__ import annotations

import itertools
import sys
import warnings

import numpy as np
import torch
from torch.testing._internal.common_modules import module_db

import descent
from moduleinfo_harness import RANDOM, descent_inputs, resolve
from opinfo_harness import _flat, _np


def _second(lib, outs, ws, params, retain):
    """('ok' | 'raise' | 'other: ...', the gradients of params after both passes)."""
    lib.autograd.backward(outs, ws, retain_graph=retain)
    try:
        lib.autograd.backward(outs, ws)
        res = "ok"
    except RuntimeError as e:
        res = "raise" if "second time" in str(e) else "other: " + str(e)[:60]
    grads = [None if p.grad is None else _np(p.grad) if lib is torch else p.grad.numpy()
             for p in params]  # fmt: skip
    return res, grads


def _run_module(info, minput, retain):
    """[(torch's outcome, descent's)] for one module input, or None (nothing comparable)."""
    cin, fin = minput.constructor_input, minput.forward_input
    converted = descent_inputs(minput)
    if converted is None:
        return None
    dcargs, dckwargs, dfargs, dfkwargs, leaves = converted
    torch.manual_seed(0)
    try:
        tm = info.module_cls(*cin.args, **cin.kwargs)
        if info.module_cls.__name__.startswith("Lazy"):
            return None
        tstate = {k: v.detach().clone() for k, v in tm.state_dict().items()}
        dm = resolve(info)(*dcargs, **dckwargs)
        dm.load_state_dict({k: descent.tensor(_np(v).copy()) for k, v in tstate.items()})
        tout = tm(*fin.args, **fin.kwargs)
        dout = dm(*dfargs, **dfkwargs)
    except Exception:  # noqa: BLE001 - either library refuses: the module harness's business
        return None
    tps = [p for _, p in tm.named_parameters()] + [t for t, _ in leaves]
    dps = [p for _, p in dm.named_parameters()] + [d for _, d in leaves]
    return _compare(tout, dout, tps, dps, retain)


def _compare(tout, dout, tps, dps, retain):
    tf = [o for o in _flat(tout) if isinstance(o, torch.Tensor) and o.requires_grad]
    df = [d for t, d in zip(_flat(tout), _flat(dout)) if isinstance(t, torch.Tensor)
          and t.requires_grad]  # fmt: skip
    if not tf or len(tf) != len(df):
        return None
    gen = torch.Generator().manual_seed(1)
    ws = [torch.randn(o.shape, generator=gen, dtype=torch.float64).to(o.dtype) for o in tf]
    ws_np = [_np(w).copy() for w in ws]  # (torch's AccumulateGrad may add into a seed)
    try:
        t_res, t_grads = _second(torch, tf, ws, tps, retain)
    except Exception:  # noqa: BLE001 - torch cannot run it: nothing to compare
        return None
    try:
        dws = [descent.tensor(w).to(d.dtype) for w, d in zip(ws_np, df)]
        d_res, d_grads = _second(descent, df, dws, dps, retain)
    except Exception as e:  # noqa: BLE001
        return [(t_res, f"descent raises {type(e).__name__}: {str(e)[:60]}")]
    if t_res == d_res == "ok":
        for a, b in zip(t_grads, d_grads):
            tol = 1e-4 if a is not None and a.dtype == np.float32 else 1e-7  # (sums of 3584)
            if (a is None) != (b is None) or (
                a is not None and not np.allclose(a, b, rtol=tol, atol=tol, equal_nan=True)
            ):
                return [(t_res, "ok, other gradients")]
    return [(t_res, d_res)]


def survey_module(info, retain, n_inputs: int = 3):
    if info.name in RANDOM or resolve(info) is None:
        return None
    dtype = torch.float64 if torch.float64 in info.dtypes else torch.float32
    torch.manual_seed(0)
    try:
        inputs = info.module_inputs_func(info, device="cpu", dtype=dtype, requires_grad=True,
                                         training=True)  # fmt: skip
    except Exception:  # noqa: BLE001
        return None
    found = []
    for mi in itertools.islice(inputs, n_inputs):
        res = _run_module(info, mi, retain)
        if res:
            found += res
    return found


def _t(*shape, seed=0, lib=torch):
    a = np.random.default_rng(seed).standard_normal(shape)
    return lib.tensor(a, dtype=lib.float64, requires_grad=True)


def _functional_cases():
    """name -> f(lib) returning (outputs, leaves): training code's functional calls."""

    def sdpa(L, **kw):
        q, k, v = _t(2, 3, 4, lib=L), _t(2, 5, 4, seed=1, lib=L), _t(2, 5, 4, seed=2, lib=L)
        return L.nn.functional.scaled_dot_product_attention(q, k, v, **kw), [q, k, v]

    def mha(L):
        e, h = 4, 2
        q = _t(3, 2, e, lib=L)
        w_in, b_in = _t(3 * e, e, seed=1, lib=L), _t(3 * e, seed=2, lib=L)
        w_out, b_out = _t(e, e, seed=3, lib=L), _t(e, seed=4, lib=L)
        out, attn = L.nn.functional.multi_head_attention_forward(
            q, q, q, e, h, w_in, b_in, None, None, False, 0.0, w_out, b_out, training=False
        )
        return out, [q, w_in, b_in, w_out, b_out]

    def cell(kind):
        def f(L):
            x, hx = _t(3, 4, lib=L), _t(3, 5, seed=1, lib=L)
            g = {"rnn_tanh": 1, "rnn_relu": 1, "gru": 3, "lstm": 4}[kind]
            w_ih, w_hh = _t(g * 5, 4, seed=2, lib=L), _t(g * 5, 5, seed=3, lib=L)
            b_ih, b_hh = _t(g * 5, seed=4, lib=L), _t(g * 5, seed=5, lib=L)
            ps = [x, hx, w_ih, w_hh, b_ih, b_hh]
            if kind == "lstm":
                cx = _t(3, 5, seed=6, lib=L)
                h, c = L.lstm_cell(x, (hx, cx), w_ih, w_hh, b_ih, b_hh)
                return (h, c), ps + [cx]
            fn = {"rnn_tanh": L.rnn_tanh_cell, "rnn_relu": L.rnn_relu_cell, "gru": L.gru_cell}
            return fn[kind](x, hx, w_ih, w_hh, b_ih, b_hh), ps

        return f

    def module(name, *args, shape=(2, 3, 4)):
        def f(L):
            torch.manual_seed(0)
            tm = getattr(torch.nn, name)(*args).double()
            m = getattr(L.nn, name)(*args).double() if L is descent else tm
            if L is descent:
                m.load_state_dict({k: descent.tensor(_np(v).copy())
                                   for k, v in tm.state_dict().items()})  # fmt: skip
            x = _t(*shape, lib=L)
            out = m(x)
            return out, [x] + list(m.parameters())

        return f

    def conv_t(L, nd):
        x = _t(1, 2, *([5] * nd), lib=L)
        w = _t(2, 3, *([3] * nd), seed=1, lib=L)
        b = _t(3, seed=2, lib=L)
        f = getattr(L.nn.functional, f"conv_transpose{nd}d")
        return f(x, w, b, stride=2, padding=1, output_padding=1), [x, w, b]

    def embedding_bag(L, mode, psw=False):
        w = _t(10, 3, lib=L)
        idx = L.tensor([1, 2, 4, 5, 4, 3, 2, 9])
        off = L.tensor([0, 4])
        psw_t = _t(8, seed=3, lib=L) if psw else None
        out = L.nn.functional.embedding_bag(idx, w, off, mode=mode, per_sample_weights=psw_t)
        return out, [w] + ([psw_t] if psw else [])

    def ce(L, **kw):
        x = _t(4, 5, lib=L)
        return L.nn.functional.cross_entropy(x, L.tensor([0, 3, 1, 4]), **kw), [x]

    def norm(L, name, *shape_args):
        x = _t(2, 4, 3, lib=L)
        w, b = _t(4, seed=1, lib=L), _t(4, seed=2, lib=L)
        F = L.nn.functional
        if name == "group_norm":
            return F.group_norm(x, 2, w, b), [x, w, b]
        if name == "layer_norm":
            return F.layer_norm(x, (3,), w[:3], b[:3]), [x, w, b]
        if name == "batch_norm":
            rm, rv = L.zeros(4, dtype=L.float64), L.ones(4, dtype=L.float64)
            return F.batch_norm(x, rm, rv, w, b, training=True), [x, w, b]
        if name == "rms_norm":
            return F.rms_norm(x, (3,), w[:3]), [x, w]
        return F.instance_norm(x, weight=w, bias=b), [x, w, b]

    cases = {
        "F.scaled_dot_product_attention": lambda L: sdpa(L),
        "F.scaled_dot_product_attention(causal)": lambda L: sdpa(L, is_causal=True),
        "F.scaled_dot_product_attention(scale)": lambda L: sdpa(L, scale=0.3),
        "F.multi_head_attention_forward": mha,
        "rnn_tanh_cell": cell("rnn_tanh"),
        "rnn_relu_cell": cell("rnn_relu"),
        "gru_cell": cell("gru"),
        "lstm_cell": cell("lstm"),
        "nn.LSTM": module("LSTM", 4, 5),
        "nn.GRU": module("GRU", 4, 5),
        "nn.RNN": module("RNN", 4, 5),
        "nn.MultiheadAttention": _mha_module,
        "nn.TransformerEncoderLayer": lambda L: _encoder_layer(L),
        "nn.TransformerDecoderLayer": lambda L: _decoder_layer(L),
        "nn.LSTM(packed)": lambda L: _packed_lstm(L),
        "F.ctc_loss": lambda L: _ctc(L),
        "weight_norm(Linear)": lambda L: _weight_norm(L),
        "F.conv_transpose1d": lambda L: conv_t(L, 1),
        "F.conv_transpose2d": lambda L: conv_t(L, 2),
        "F.conv_transpose3d": lambda L: conv_t(L, 3),
        "F.embedding_bag(sum)": lambda L: embedding_bag(L, "sum"),
        "F.embedding_bag(mean)": lambda L: embedding_bag(L, "mean"),
        "F.embedding_bag(max)": lambda L: embedding_bag(L, "max"),
        "F.embedding_bag(psw)": lambda L: embedding_bag(L, "sum", True),
        "F.cross_entropy": lambda L: ce(L),
        "F.cross_entropy(smoothing)": lambda L: ce(L, label_smoothing=0.1),
        "F.group_norm": lambda L: norm(L, "group_norm"),
        "F.layer_norm": lambda L: norm(L, "layer_norm"),
        "F.batch_norm": lambda L: norm(L, "batch_norm"),
        "F.instance_norm": lambda L: norm(L, "instance_norm"),
        "F.rms_norm": lambda L: norm(L, "rms_norm"),
    }
    return cases


def _mha_module(L):
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(4, 2).double()
    m = tm
    if L is descent:
        m = descent.nn.MultiheadAttention(4, 2).double()
        m.load_state_dict({k: descent.tensor(_np(v).copy()) for k, v in tm.state_dict().items()})
    x = _t(3, 2, 4, lib=L)
    out, _ = m(x, x, x)
    return out, [x] + list(m.parameters())


def _encoder_layer(L):
    torch.manual_seed(0)
    tm = torch.nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0).double()
    m = tm
    if L is descent:
        m = descent.nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0).double()
        m.load_state_dict({k: descent.tensor(_np(v).copy()) for k, v in tm.state_dict().items()})
    x = _t(3, 2, 4, lib=L)
    return m(x), [x] + list(m.parameters())


def _copied(L, tm, dm):
    """dm with tm's state (descent), or tm itself (torch)."""
    if L is torch:
        return tm
    dm.load_state_dict({k: descent.tensor(_np(v).copy()) for k, v in tm.state_dict().items()})
    return dm


def _decoder_layer(L):
    torch.manual_seed(0)
    tm = torch.nn.TransformerDecoderLayer(4, 2, 8, dropout=0.0).double()
    m = _copied(L, tm, None if L is torch else descent.nn.TransformerDecoderLayer(
        4, 2, 8, dropout=0.0).double())  # fmt: skip
    x, mem = _t(3, 2, 4, lib=L), _t(5, 2, 4, seed=1, lib=L)
    return m(x, mem), [x, mem] + list(m.parameters())


def _packed_lstm(L):
    torch.manual_seed(0)
    tm = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True).double()
    m = _copied(L, tm, None if L is torch else descent.nn.LSTM(
        3, 4, num_layers=2, bidirectional=True).double())  # fmt: skip
    x = _t(5, 3, 3, lib=L)
    packed = L.nn.utils.rnn.pack_padded_sequence(x, [5, 2, 4], enforce_sorted=False)
    out, (h, c) = m(packed)
    padded, _ = L.nn.utils.rnn.pad_packed_sequence(out)
    return (padded, h, c), [x] + list(m.parameters())


def _ctc(L):
    logp = _t(6, 2, 4, lib=L)
    lp = logp.log_softmax(2)
    targets = L.tensor([[1, 2, 1], [3, 1, 0]])
    return L.nn.functional.ctc_loss(lp, targets, L.tensor([6, 5]), L.tensor([3, 2])), [logp]


def _weight_norm(L):
    torch.manual_seed(0)
    tm = torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(3, 4).double())
    m = tm
    if L is descent:
        m = descent.nn.utils.parametrizations.weight_norm(descent.nn.Linear(3, 4).double())
        m.load_state_dict({k: descent.tensor(_np(v).copy()) for k, v in tm.state_dict().items()})
    x = _t(2, 3, lib=L)
    return m(x), [x] + list(m.parameters())


def survey_functional(name, f, retain):
    try:
        tout, tps = f(torch)
    except Exception:  # noqa: BLE001
        return None
    try:
        dout, dps = f(descent)
    except Exception as e:  # noqa: BLE001
        return [("?", f"descent raises {type(e).__name__}: {str(e)[:60]}")]
    return _compare(tout, dout, tps, dps, retain)


def main(names) -> None:
    results = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for retain in (False, True):
            tag = " (retain_graph)" if retain else ""
            for info in module_db:
                if names and info.name not in names:
                    continue
                res = survey_module(info, retain)
                if res:
                    results[info.name + tag] = res
            for name, f in _functional_cases().items():
                if names and name not in names:
                    continue
                res = survey_functional(name, f, retain)
                if res:
                    results[name + tag] = res
    differ = {k: v for k, v in results.items() if any(a != b for a, b in v)}
    for k, v in sorted(differ.items()):
        print(k, v)
    n = sum(len(v) for v in results.values())
    bad = sum(a != b for v in results.values() for a, b in v)
    print(
        f"{len(results)} modules/functions x retain, {n} samples: {len(differ)} and {bad} "
        "samples differ"
    )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main(sys.argv[1:])
