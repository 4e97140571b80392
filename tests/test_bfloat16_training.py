"""descent.bfloat16 in training, against PyTorch 2.13's CPU bfloat16: optimizer steps (Adam and
AdamW bitwise), a small MLP trained with AdamW/Adam/SGD, CPU autocast, checkpoints (safetensors
BF16, both ways), set_default_dtype, descent.compile, custom Functions, modules and
testing.assert_close. Values of single ops: tests/test_bfloat16.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds

rng = np.random.default_rng(0)
A = (rng.standard_normal((6, 5)) * 2).astype(np.float32)
B = (rng.standard_normal((6, 5)) * 2).astype(np.float32)


def _values(t):
    """A result's values as float32, from either library."""
    return t.float().numpy()


def _same_dtype(rt, rd) -> None:
    rt, rd = getattr(rt, "dtype", rt), getattr(rd, "dtype", rd)  # tensors or dtypes
    assert str(rd).replace("descent.", "") == str(rt).replace("torch.", "")


# -- optimizers and training -----------------------------------------------------------------------

W1 = rng.standard_normal((16, 8)).astype(np.float32) * 0.3
B1 = rng.standard_normal(16).astype(np.float32) * 0.1
W2 = rng.standard_normal((4, 16)).astype(np.float32) * 0.3
B2 = rng.standard_normal(4).astype(np.float32) * 0.1
X = rng.standard_normal((32, 8)).astype(np.float32)
Y = rng.integers(0, 4, 32)


def _train(L, opt_name, steps=5):
    m = L.nn.Sequential(L.nn.Linear(8, 16), L.nn.GELU(), L.nn.Linear(16, 4))
    with L.no_grad():
        for p, v in zip(m.parameters(), [W1, B1, W2, B2]):
            p.copy_(L.tensor(v))
    m = m.to(L.bfloat16)
    opt = {
        "adamw": lambda: L.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=0.1),
        "adam": lambda: L.optim.Adam(m.parameters(), lr=1e-2, weight_decay=0.1),
        "sgd": lambda: L.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2),
    }[opt_name]()
    x, y = L.tensor(X).to(L.bfloat16), L.tensor(Y)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = L.nn.functional.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    state = opt.state[next(iter(m.parameters()))]
    return losses, [_values(p.detach()) for p in m.parameters()], m, state


@pytest.mark.parametrize("opt_name", ["adamw", "adam", "sgd"])
def test_mlp_trains_five_steps_as_torch(opt_name):
    lt, pt, _, st = _train(torch, opt_name)
    ld, pd, m, sd = _train(ds, opt_name)
    assert all(p.dtype == ds.bfloat16 for p in m.parameters())
    for key in st:  # optimizer state in the parameter's dtype, as torch's
        if key != "step":
            assert sd[key].dtype == ds.bfloat16, key
    assert ld[0] == lt[0]  # the first forward is bitwise torch's
    # bfloat16 keeps 8 bits: later steps drift by an ulp where a rounding went the other way
    np.testing.assert_allclose(ld, lt, rtol=2e-2)
    assert ld[-1] < ld[0]
    for a, b in zip(pd, pt):
        if opt_name == "adamw":  # gradients and AdamW's steps round as PyTorch's: bitwise
            np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, b, rtol=3e-2, atol=1e-2)


# -- autocast --------------------------------------------------------------------------------------


def test_cpu_autocast_bfloat16_as_torch():
    lin_t, lin_d = torch.nn.Linear(5, 4), ds.nn.Linear(5, 4)
    with torch.no_grad():
        lin_t.weight.copy_(torch.tensor(W1[:4, :5]))
        lin_t.bias.copy_(torch.tensor(B1[:4]))
    lin_d.load_state_dict({k: ds.tensor(v.detach().numpy()) for k, v in lin_t.state_dict().items()})
    out = {}
    for L, lin in ((torch, lin_t), (ds, lin_d)):
        x = L.tensor(A)
        with L.autocast("cpu", dtype=L.bfloat16):
            y = lin(x)
            r = {
                "linear": y, "matmul": x @ x.T, "softmax": L.softmax(y, -1),
                "log_softmax": L.log_softmax(y, -1), "relu": L.relu(y), "add": y + x[:, :4],
                "layer_norm": L.nn.functional.layer_norm(y, (4,), L.ones(4), L.zeros(4)),
                "ce": L.nn.functional.cross_entropy(y, L.tensor([0, 1, 2, 3, 0, 1])),
                "mse": L.nn.functional.mse_loss(y, L.zeros(6, 4)), "sum": y.sum(),
            }  # fmt: skip
        r["ce"].backward()
        r["wgrad"] = lin.weight.grad
        out[L] = r
    for k in out[torch]:
        _same_dtype(out[torch][k], out[ds][k])
        np.testing.assert_allclose(_values(out[ds][k].detach()), _values(out[torch][k].detach()),
                                   rtol=2e-2, atol=2e-2, err_msg=k)  # fmt: skip
    assert ds.get_autocast_dtype("cpu") == ds.float16  # outside a region: descent's default


# -- checkpoints -------------------------------------------------------------------------------


def test_checkpoint_round_trip_and_torch_reads_it(tmp_path):
    from safetensors.torch import load_file

    net = ds.nn.Sequential(ds.nn.Linear(3, 4), ds.nn.BatchNorm1d(4)).bfloat16()
    path = tmp_path / "bf16.safetensors"
    ds.save(net.state_dict(), path)
    back = ds.load(path)
    for k, v in net.state_dict().items():
        assert back[k].dtype == v.dtype and ds.equal(back[k], v), k
    theirs = load_file(str(path))  # safetensors' BF16, as torch writes it
    assert sorted(str(v.dtype) for v in theirs.values()).count("torch.bfloat16") == 6
    fresh = ds.nn.Sequential(ds.nn.Linear(3, 4), ds.nn.BatchNorm1d(4)).bfloat16()
    fresh.load_state_dict(back)
    assert ds.equal(fresh[0].weight, net[0].weight)


def test_reads_torch_bf16_safetensors(tmp_path):
    from safetensors.torch import save_file

    ref = torch.nn.Linear(3, 2).bfloat16()
    save_file(ref.state_dict(), str(tmp_path / "torch.safetensors"))
    sd = ds.io.load_state_dict(tmp_path / "torch.safetensors", verify=False)
    for k, v in ref.state_dict().items():
        assert sd[k].dtype == ds.bfloat16 and sd[k].tolist() == v.tolist(), k


def test_descent_io_checkpoint_with_optimizer(tmp_path):
    net = ds.nn.Linear(3, 2).bfloat16()
    opt = ds.optim.AdamW(net.parameters(), lr=1e-2)
    net(ds.randn(4, 3, dtype=ds.bfloat16)).sum().backward()
    opt.step()
    ds.io.save(tmp_path / "ck", model=net, optimizer=opt, step=1)
    net2 = ds.nn.Linear(3, 2).bfloat16()
    opt2 = ds.optim.AdamW(net2.parameters(), lr=1e-2)
    ds.io.load(tmp_path / "ck", model=net2, optimizer=opt2)
    assert ds.equal(net2.weight, net.weight) and net2.weight.dtype == ds.bfloat16
    assert opt2.state[net2.weight]["exp_avg"].dtype == ds.bfloat16


# -- the rest of the surface -------------------------------------------------------------------


def test_set_default_dtype_bfloat16_as_torch():
    got, want = [], []
    for L, out in ((torch, want), (ds, got)):
        L.set_default_dtype(L.bfloat16)
        try:
            for t in (L.tensor([1.3]), L.zeros(2), L.randn(2), L.arange(3.0), L.arange(3) * 1.5,
                      L.nn.Linear(2, 2).weight, L.full((2,), 1.5), L.arange(3) / 2):  # fmt: skip
                out.append(str(t.dtype).split(".")[1])
            out.append(L.tensor([1.3]).tolist())
        finally:
            L.set_default_dtype(L.float32)
    assert got == want and got[0] == "bfloat16"
    assert ds.get_default_dtype() == ds.float32


def test_compile_replays_a_bfloat16_step_bitwise():
    def run(compiled):
        ds.manual_seed(0)
        m = ds.nn.Sequential(ds.nn.Linear(3, 4), ds.nn.GELU(), ds.nn.Linear(4, 2)).bfloat16()
        opt = ds.optim.AdamW(m.parameters(), lr=1e-2)
        x, y = ds.randn(8, 3, dtype=ds.bfloat16), ds.tensor([0, 1] * 4)

        def step(x, y):
            opt.zero_grad()
            loss = ds.nn.functional.cross_entropy(m(x), y)
            loss.backward()
            opt.step()
            return loss

        f = ds.compile(step) if compiled else step
        return [f(x, y).item() for _ in range(4)], m[0].weight.float().tolist()

    assert run(True) == run(False)


def test_custom_function_and_modules():
    outs = []
    for L in (torch, ds):

        class Square(L.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return 2 * x * g

        x = L.tensor(A[0]).to(L.bfloat16).requires_grad_()
        y = Square.apply(x)
        y.sum().backward()
        outs.append((y, x.grad))
    for t, d in zip(*outs):
        _same_dtype(t, d)
        np.testing.assert_array_equal(_values(d.detach()), _values(t.detach()))
    for make, arg in ((lambda: ds.nn.LSTM(3, 5, batch_first=True), (2, 5, 3)),
                      (lambda: ds.nn.TransformerEncoderLayer(4, 2, 8, batch_first=True),
                       (2, 5, 4)), (lambda: ds.nn.Conv1d(3, 4, 3), (2, 3, 7))):  # fmt: skip
        m = make().bfloat16()
        y = m(ds.randn(*arg, dtype=ds.bfloat16))
        y = y[0] if isinstance(y, tuple) else y
        assert y.dtype == ds.bfloat16
        y.float().sum().backward()
        assert all(p.grad.dtype == ds.bfloat16 for p in m.parameters())


def test_testing_assert_close_uses_torch_bfloat16_tolerances():
    x = ds.randn(4, 3, dtype=ds.bfloat16)
    ds.testing.assert_close(x, x * 1.01)  # rtol 1.6e-2, as torch.testing's
    with pytest.raises(AssertionError, match="not close"):
        ds.testing.assert_close(x + 1, (x + 1) * 1.05)


OPTIMIZERS = {
    "adamw": ("AdamW", dict(lr=1e-2, weight_decay=0.1)),
    "adam": ("Adam", dict(lr=1e-2, weight_decay=0.1)),
    "amsgrad": ("Adam", dict(lr=1e-2, amsgrad=True)),
    "maximize": ("Adam", dict(lr=1e-3, maximize=True)),
    "sgd": ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=1e-2)),
    "nesterov": ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    "plain": ("SGD", dict(lr=0.1)),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_steps_round_as_torch(name):
    # the same bfloat16 gradients into both: Adam/AdamW round where PyTorch's single-tensor ops
    # do (bitwise); SGD's p.add_(g, alpha) is a fused multiply-add in PyTorch's vector code,
    # which float32 NumPy cannot reproduce: an element in a few hundred is one ulp apart
    cls, kw = OPTIMIZERS[name]
    r = np.random.default_rng(3)
    p0 = r.standard_normal(500).astype(np.float32)
    grads = [r.standard_normal(500).astype(np.float32) * 10 ** r.uniform(-3, 0) for _ in range(6)]
    out = []
    for L in (torch, ds):
        p = L.nn.Parameter(L.tensor(p0).to(L.bfloat16))
        opt = getattr(L.optim, cls)([p], **kw)
        for g in grads:
            p.grad = L.tensor(g).to(L.bfloat16)
            opt.step()
        out.append(_values(p.detach()))
        assert all(v.dtype == L.bfloat16 for v in opt.state[p].values() if getattr(v, "ndim", 0))
    differ = int((out[0] != out[1]).sum())
    if cls == "Adam" or cls == "AdamW":
        assert differ == 0
    else:
        assert differ <= 5
        np.testing.assert_allclose(out[1], out[0], rtol=8e-3, atol=1e-3)


def test_fused_kernels_never_see_bfloat16(monkeypatch):
    # descent's numba/CuPy kernels are float32/float16 only: under the dispatch they get the
    # float32 upcasts (or are skipped), never a bfloat16 array
    from descent import backend

    seen = []
    real = backend.fused

    def spy(name, *arrays):
        seen.append((name, [a.dtype.kind for a in arrays if hasattr(a, "dtype")]))
        return real(name, *arrays)

    monkeypatch.setattr(backend, "fused", spy)
    m = ds.nn.Sequential(ds.nn.Linear(8, 16), ds.nn.GELU(), ds.nn.LayerNorm(16),
                         ds.nn.Linear(16, 4)).bfloat16()  # fmt: skip
    opt = ds.optim.AdamW(m.parameters(), lr=1e-2)
    x = ds.randn(6, 8, dtype=ds.bfloat16)
    loss = ds.nn.functional.cross_entropy(ds.softmax(m(x), -1) * 3, ds.tensor([0, 1, 2, 3, 0, 1]))
    loss.backward()
    opt.step()
    assert seen and all("V" not in kinds for _, kinds in seen), seen
