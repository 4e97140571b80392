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


# bayesopt_sobol: torch.quasirandom.SobolEngine was missing (AttributeError: descent has no
# quasirandom). Unscrambled sequences equal PyTorch's bit for bit (the same Joe-Kuo direction
# numbers), through draw / draw_base2 / fast_forward / reset, in float32 and float64.
@pytest.mark.parametrize("dimension", [1, 2, 7, 300])
def test_sobol_engine_unscrambled_matches_torch(dimension):
    a = torch.quasirandom.SobolEngine(dimension)
    b = descent.quasirandom.SobolEngine(dimension)
    assert np.array_equal(a.sobolstate.numpy(), b.sobolstate.numpy())
    for n in (1, 7, 1, 23):
        x, y = a.draw(n), b.draw(n)
        assert y.dtype == descent.float32 and tuple(y.shape) == (n, dimension)
        assert np.array_equal(x.numpy(), y.numpy())
    a.fast_forward(5)
    b.fast_forward(5)
    x, y = a.draw(3, dtype=torch.float64), b.draw(3, dtype=descent.float64)
    assert np.array_equal(x.numpy(), y.numpy())
    a.reset()
    b.reset()
    assert np.array_equal(a.draw_base2(3).numpy(), b.draw_base2(3).numpy())
    with pytest.raises(ValueError, match="power of 2"):
        b.draw_base2(2)  # 8 + 4 points is not a power of 2
    a.reset().fast_forward(1)
    b.reset().fast_forward(1)
    assert np.array_equal(a.draw(6).numpy(), b.draw(6).numpy())
    out = descent.empty(0)
    assert b.reset().draw(4, out=out) is out and np.array_equal(out.numpy(), a.reset().draw(4))


def test_sobol_engine_scrambling_and_errors():
    from descent.quasirandom import _scramble_state

    g = torch.Generator()
    g.manual_seed(0)
    state = torch.zeros(6, 30, dtype=torch.long)
    torch._sobol_engine_initialize_state_(state, 6)
    ltm = torch.randint(2, (6, 30, 30), generator=g).tril()
    ours = _scramble_state(state.numpy(), ltm.numpy())
    torch._sobol_engine_scramble_(state, ltm, 6)
    assert np.array_equal(ours, state.numpy())
    e1 = descent.quasirandom.SobolEngine(4, scramble=True, seed=3)
    e2 = descent.quasirandom.SobolEngine(4, scramble=True, seed=3)
    x = e1.draw_base2(5)
    assert np.array_equal(x.numpy(), e2.draw(32).numpy())  # seeded: reproducible
    assert 0 <= float(x.min()) and float(x.max()) < 1
    # a scrambled net keeps the balance: each half of [0, 1) holds half the points
    assert ((x < 0.5).sum(0) == 16).all()
    assert repr(e1) == "SobolEngine(dimension=4, scramble=True, seed=3)"
    for bad in (0, 21202):
        with pytest.raises(ValueError, match=r"\[1, 21201\]"):
            descent.quasirandom.SobolEngine(bad)


# sparse_csr_graph: torch.sparse.sampled_addmm (SDDMM: attention scores on a graph's edges) was
# missing (AttributeError). Values, layout and the gradients of input's values, mat1 and mat2.
@pytest.mark.parametrize("beta, alpha", [(1.0, 1.0), (0.5, 2.0), (0.0, 0.3)])
def test_sparse_sampled_addmm(beta, alpha):
    rng = np.random.default_rng(0)
    dense = ((rng.random((5, 4)) < 0.5) * rng.standard_normal((5, 4))).astype(np.float32)
    a = rng.standard_normal((5, 3)).astype(np.float32)
    b = rng.standard_normal((3, 4)).astype(np.float32)

    def run(lib):
        csr = lib.from_numpy(dense).to_sparse_csr()
        vals = csr.values().clone().requires_grad_(True)
        inp = lib.sparse_csr_tensor(csr.crow_indices(), csr.col_indices(), vals, (5, 4))
        m1 = lib.from_numpy(a).requires_grad_(True)
        m2 = lib.from_numpy(b).requires_grad_(True)
        out = lib.sparse.sampled_addmm(inp, m1, m2, beta=beta, alpha=alpha)
        (out.to_dense() ** 2).sum().backward()
        return out, vals.grad, m1.grad, m2.grad

    ours, theirs = run(descent), run(torch)
    assert ours[0].layout == descent.sparse_csr
    assert np.array_equal(ours[0].col_indices().numpy(), theirs[0].col_indices().numpy())
    _same(ours[0].to_dense(), theirs[0].to_dense())
    for o, t in zip(ours[1:], theirs[1:]):
        _same(o, t)
    csr = descent.from_numpy(dense).to_sparse_csr()
    with pytest.raises(RuntimeError, match="sparse_csr layout"):
        descent.sparse.sampled_addmm(descent.from_numpy(dense), descent.ones(5, 3),
                                     descent.ones(3, 4))  # fmt: skip
    with pytest.raises(RuntimeError, match=r"must give input's shape \(5, 4\)"):
        descent.sparse.sampled_addmm(csr, descent.ones(5, 2), descent.ones(2, 3))
    with pytest.raises(RuntimeError, match="same dtype"):
        descent.sparse.sampled_addmm(csr, descent.ones(5, 3, dtype=descent.float64),
                                     descent.ones(3, 4))  # fmt: skip
