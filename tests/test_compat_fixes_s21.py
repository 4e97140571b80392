"""Fixes found while writing session 21's compat programs (tests/compat/programs, helper-152),
each differential against PyTorch 2.13 (the oracle)."""

from __future__ import annotations

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")


def _same(ours, theirs, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(ours.detach().numpy()), theirs.detach().numpy(),
                               rtol=rtol, atol=atol)  # fmt: skip


# awd_lstm_asgd: fastai's WeightDropout deletes an RNN's weight_hh_l0 Parameter and assigns a
# dropped-out plain tensor before each forward. PyTorch's RNNBase.__setattr__ puts the tensor in
# _flat_weights; descent's LSTM / GRU / RNN read their weights from _parameters only and passed
# None to the layer op (AttributeError: 'NoneType' object has no attribute '_data').
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_rnn_weight_reassigned_as_plain_tensor(kind):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)

    def run(lib):
        lib.manual_seed(0)
        rnn = getattr(lib.nn, kind)(3, 4, num_layers=2)
        with lib.no_grad():
            for name, p in rnn.named_parameters():
                p.copy_(lib.from_numpy(rng_for(name, tuple(p.shape))))
        raw = lib.nn.Parameter(rnn.weight_hh_l0.data.clone())
        del rnn.weight_hh_l0
        rnn.weight_hh_l0 = raw * 0.5  # a plain tensor, differentiable to raw
        out = rnn(lib.from_numpy(x))[0]
        out.pow(2).sum().backward()
        names = [n for n, _ in rnn.named_parameters()]
        return out, raw.grad, names

    def rng_for(name, shape):
        r = np.random.default_rng(len(name) * 7 + shape[0])
        return r.uniform(-0.5, 0.5, size=shape).astype(np.float32)

    o1, g1, n1 = run(descent)
    o2, g2, n2 = run(torch)
    assert n1 == n2 and "weight_hh_l0" not in n1
    _same(o1, o2)
    _same(g1, g2)


# checkpoint_migration: torch.nn.modules.utils.consume_prefix_in_state_dict_if_present (the
# standard way to load a DDP-saved checkpoint) was missing (ImportError). Keys and the
# _metadata versions lose the prefix, in PyTorch's order.
def test_consume_prefix_in_state_dict_if_present():
    from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present as theirs

    from descent.nn.modules.utils import consume_prefix_in_state_dict_if_present as ours

    def run(lib, fn):
        model = lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.BatchNorm1d(3))
        wrapped = lib.nn.Sequential()
        wrapped.add_module("module", model)
        sd = wrapped.state_dict()
        sd["other.x"] = lib.zeros(1)
        fn(sd, "module.")
        return (
            list(sd.keys()),
            dict(sd._metadata),
            model.load_state_dict({k: v for k, v in sd.items() if k != "other.x"}),
        )

    k1, m1, r1 = run(descent, ours)
    k2, m2, r2 = run(torch, theirs)
    assert k1 == k2
    assert m1 == m2
    assert list(r1.missing_keys) == list(r2.missing_keys) == []
    plain = {"a.b": 1, "module.c": 2}
    ours(plain, "module.")
    assert list(plain) == ["a.b", "c"]
    with pytest.raises(TypeError, match="prefix must be a str"):
        ours({}, None)
