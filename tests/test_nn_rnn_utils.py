"""descent.nn.utils.rnn (pad_sequence, pack_padded_sequence, pad_packed_sequence,
pack_sequence, unpad/unpack, PackedSequence) and RNN/LSTM/GRU over packed input, against
torch.nn.utils.rnn and torch.nn with copied weights (float32 and float64): values, gradients,
the packed layout (data, batch_sizes, sorted/unsorted indices) and PyTorch's errors.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.utils.rnn as TR

import descent
import descent.nn as nn
from descent.explain import gradcheck
from descent.nn.utils import rnn as R

TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}


def _np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.numpy())


def _close(a, b, dtype=np.float32, what=""):
    np.testing.assert_allclose(_np(a), _np(b), **TOL[dtype], err_msg=what)


def _pair(arr):
    return (descent.tensor(arr, dtype=arr.dtype, requires_grad=True),
            torch.tensor(arr, requires_grad=True))  # fmt: skip


def _weights(shape, dtype, seed=9):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _seqs(lengths, feat=3, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, feat)).astype(dtype) for n in lengths]


# -- pad_sequence / unpad_sequence -------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(batch_first=True),
        dict(padding_value=-1.5, padding_side="left"),
        dict(batch_first=True, padding_side="left"),
    ],  # fmt: skip
)
def test_pad_sequence_matches_torch(kw, dtype):
    arrs = _seqs([3, 5, 1], dtype=dtype)
    ours, theirs = zip(*(_pair(a) for a in arrs), strict=True)
    y, ty = R.pad_sequence(list(ours), **kw), TR.pad_sequence(list(theirs), **kw)
    _close(y, ty, dtype)
    assert y.dtype == dtype
    w = _weights(tuple(ty.shape), dtype)
    (y * descent.tensor(w)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    for a, b in zip(ours, theirs, strict=True):
        _close(a.grad, b.grad, dtype)


def test_pad_sequence_tensor_ints_and_errors():
    x = np.arange(24).reshape(3, 4, 2)
    np.testing.assert_array_equal(R.pad_sequence(descent.tensor(x)).numpy(),
                                  TR.pad_sequence(torch.tensor(x)).numpy())  # fmt: skip
    ints = R.pad_sequence([descent.tensor([1, 2]), descent.tensor([3])], padding_value=7)
    assert ints.dtype == np.int64 and ints.numpy().tolist() == [[1, 3], [2, 7]]
    with pytest.raises(RuntimeError, match="empty"):
        R.pad_sequence([])
    with pytest.raises(RuntimeError, match="padding_side"):
        R.pad_sequence([descent.ones(2)], padding_side="middle")
    with pytest.raises(RuntimeError):
        R.pad_sequence([descent.ones(2, 2), descent.ones(3, 3)])
    lengths = descent.tensor([5, 3, 1])
    padded = descent.tensor(_weights((5, 3, 2), np.float32))
    tpadded = torch.tensor(padded.numpy())  # before: unpad_sequence transposes its argument
    parts = R.unpad_sequence(padded, lengths)
    tparts = TR.unpad_sequence(tpadded, torch.tensor([5, 3, 1]))
    for a, b in zip(parts, tparts, strict=True):
        _close(a, b)


# -- packing -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("lengths", "kw"),
    [
        ([5, 3, 1], {}),
        ([3, 5, 1, 4], dict(enforce_sorted=False)),
        ([2, 4, 4], dict(enforce_sorted=False, batch_first=True)),
        ([4, 4, 2], dict(batch_first=True)),
    ],
)
def test_pack_and_pad_round_trip_match_torch(lengths, kw, dtype):
    b, t = len(lengths), max(lengths) + 1  # one padding step past the longest
    shape = (b, t, 2) if kw.get("batch_first") else (t, b, 2)
    x, tx = _pair(_weights(shape, dtype))
    p = R.pack_padded_sequence(x, lengths, **kw)
    tp = TR.pack_padded_sequence(tx, lengths, **kw)
    assert isinstance(p, tuple) and type(p).__name__ == "PackedSequence"
    _close(p.data, tp.data, dtype, "data")
    np.testing.assert_array_equal(p.batch_sizes.numpy(), tp.batch_sizes.numpy())
    assert p.batch_sizes.dtype == np.int64
    for ours, theirs in ((p.sorted_indices, tp.sorted_indices),
                         (p.unsorted_indices, tp.unsorted_indices)):  # fmt: skip
        assert (ours is None) == (theirs is None)
        if ours is not None:
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    bf = kw.get("batch_first", False)
    for total in (None, t + 2):
        y, n = R.pad_packed_sequence(p, batch_first=bf, padding_value=-3.0, total_length=total)
        ty, tn = TR.pad_packed_sequence(tp, batch_first=bf, padding_value=-3.0,
                                        total_length=total)  # fmt: skip
        _close(y, ty, dtype, "padded")
        np.testing.assert_array_equal(n.numpy(), tn.numpy())
    w = _weights(tuple(ty.shape), dtype, seed=2)
    (y * descent.tensor(w)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    _close(x.grad, tx.grad, dtype, "grad through pack and pad")


def test_pack_sequence_unpack_and_errors():
    arrs = _seqs([3, 5, 1])
    p = R.pack_sequence([descent.tensor(a) for a in arrs], enforce_sorted=False)
    tp = TR.pack_sequence([torch.tensor(a) for a in arrs], enforce_sorted=False)
    _close(p.data, tp.data)
    for a, b in zip(R.unpack_sequence(p), arrs, strict=True):
        np.testing.assert_array_equal(a.numpy(), b)
    assert p.double().data.dtype == np.float64 and p.to(np.float64).batch_sizes is p.batch_sizes
    x = descent.zeros(5, 3, 2)
    with pytest.raises(RuntimeError, match="decreasing"):
        R.pack_padded_sequence(x, [3, 5, 1])
    with pytest.raises(RuntimeError, match="decreasing"):
        R.pack_sequence([descent.tensor(a) for a in arrs])
    with pytest.raises(RuntimeError, match="greater than 0"):
        R.pack_padded_sequence(x, [5, 3, 0])
    with pytest.raises(RuntimeError, match="batch_size"):
        R.pack_padded_sequence(x, [5, 3])
    with pytest.raises(RuntimeError, match="exceeds"):  # PyTorch reads past the end silently
        R.pack_padded_sequence(x, [6, 3, 1])
    with pytest.raises(ValueError, match="total_length"):
        R.pad_packed_sequence(R.pack_padded_sequence(x, [5, 3, 1]), total_length=4)
    assert R.invert_permutation(None) is None
    np.testing.assert_array_equal(R.invert_permutation(descent.tensor([2, 0, 1])).numpy(),
                                  [1, 2, 0])  # fmt: skip


# -- RNN / LSTM / GRU over packed input --------------------------------------------------------
RNN_CASES = [
    ("LSTM", dict()),
    ("LSTM", dict(num_layers=2, bidirectional=True)),
    ("LSTM", dict(proj_size=2, bidirectional=True)),
    ("GRU", dict(num_layers=2)),
    ("GRU", dict(bidirectional=True, bias=False)),
    ("RNN", dict(nonlinearity="relu", bidirectional=True)),
    ("RNN", dict(num_layers=2, batch_first=True)),  # batch_first does not change packed data
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_hx", [False, True])
@pytest.mark.parametrize(("kind", "kw"), RNN_CASES, ids=[str(i) for i in range(len(RNN_CASES))])
def test_rnn_modules_accept_packed_sequences(kind, kw, with_hx, dtype):
    torch.manual_seed(0)
    theirs = getattr(torch.nn, kind)(3, 4, **kw)
    ours = getattr(nn, kind)(3, 4, **kw)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    ours.to(dtype)
    theirs.to(torch.float64 if dtype == np.float64 else torch.float32)
    lengths = [2, 5, 1, 4]
    x, tx = _pair(_weights((5, 4, 3), dtype, seed=3))
    p = R.pack_padded_sequence(x, lengths, enforce_sorted=False)
    tp = TR.pack_padded_sequence(tx, lengths, enforce_sorted=False)
    args, targs = [p], [tp]
    if with_hx:
        layers = kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1)
        h0, th0 = _pair(_weights((layers, 4, kw.get("proj_size") or 4), dtype, seed=4))
        if kind == "LSTM":
            c0, tc0 = _pair(_weights((layers, 4, 4), dtype, seed=5))
            args.append((h0, c0))
            targs.append((th0, tc0))
        else:
            args.append(h0)
            targs.append(th0)
    out, state = ours(*args)
    tout, tstate = theirs(*targs)
    assert type(out).__name__ == "PackedSequence"
    _close(out.data, tout.data, dtype, "output data")
    np.testing.assert_array_equal(out.batch_sizes.numpy(), tout.batch_sizes.numpy())
    states = state if kind == "LSTM" else (state,)
    tstates = tstate if kind == "LSTM" else (tstate,)
    for s, ts in zip(states, tstates, strict=True):
        _close(s, ts, dtype, "final state")
    loss = (out.data * descent.tensor(_weights(tuple(tout.data.shape), dtype, 6))).sum()
    tloss = (tout.data * torch.tensor(_weights(tuple(tout.data.shape), dtype, 6))).sum()
    for s, ts, seed in zip(states, tstates, (7, 8), strict=False):
        loss = loss + (s * descent.tensor(_weights(tuple(ts.shape), dtype, seed))).sum()
        tloss = tloss + (ts * torch.tensor(_weights(tuple(ts.shape), dtype, seed))).sum()
    loss.backward()
    tloss.backward()
    _close(x.grad, tx.grad, dtype, "input grad")
    tp_ = dict(theirs.named_parameters())
    for name, prm in ours.named_parameters():
        _close(prm.grad, tp_[name].grad, dtype, name)
    if with_hx:
        _close(args[1][0].grad if kind == "LSTM" else args[1].grad,
               targs[1][0].grad if kind == "LSTM" else targs[1].grad, dtype, "h0 grad")  # fmt: skip


def test_packed_run_equals_each_sequence_alone():
    descent.manual_seed(0)
    lstm = nn.LSTM(3, 4, bidirectional=True)
    arrs = _seqs([4, 2, 3])
    out, (h, c) = lstm(R.pack_sequence([descent.tensor(a) for a in arrs], enforce_sorted=False))
    padded, lengths = R.pad_packed_sequence(out)
    for i, a in enumerate(arrs):
        alone, (h1, _) = lstm(descent.tensor(a))  # unbatched (L, 3)
        n = int(lengths.numpy()[i])
        np.testing.assert_allclose(padded.numpy()[:n, i], alone.numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(padded.numpy()[n:, i], 0.0)
        np.testing.assert_allclose(h.numpy()[:, i], h1.numpy(), rtol=1e-6, atol=1e-6)


def test_packed_lstm_gradcheck():
    descent.manual_seed(1)
    gru = nn.GRU(2, 3, bidirectional=True).double()

    def f(x):
        p = R.pack_padded_sequence(x, [3, 1, 2], enforce_sorted=False)
        out, h = gru(p)
        return R.pad_packed_sequence(out)[0].sum() + (h * h).sum()

    assert gradcheck(f, [_weights((3, 3, 2), np.float64)])


def test_packed_input_errors():
    gru = nn.GRU(3, 4)
    p = R.pack_sequence([descent.ones(3, 3), descent.ones(2, 3)])
    with pytest.raises(RuntimeError):
        gru(p, descent.zeros(2, 4))  # hx must be 3-D (layers, B, H)
    with pytest.raises(RuntimeError, match="input_size"):
        nn.GRU(2, 4)(p)
