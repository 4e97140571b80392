"""torch.nn.Module's hooks and the rest of its API, against torch 2.13: full backward hooks and
pre-hooks (what they see, replacing gradients, several inputs and outputs, inputs without
gradients), forward hooks' keyword options, state-dict hooks and extra state, load_state_dict's
assign, get_buffer / set_submodule / to_empty / type / compile."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import descent as ds
import descent.nn as dnn
from descent.compiler import CompileWarning

RNG = np.random.default_rng(3)


def _pair(cls_name, *args):
    """The same layer in both libraries, descent's weights copied into torch's."""
    d = getattr(dnn, cls_name)(*args)
    t = getattr(torch.nn, cls_name)(*args)
    with torch.no_grad():
        for (_, dp), (_, tp) in zip(d.named_parameters(), t.named_parameters()):
            tp.copy_(torch.from_numpy(dp.numpy().copy()))
    return d, t


def _np(g):
    if g is None:
        return None
    return g.detach().numpy() if isinstance(g, torch.Tensor) else g.numpy()


def _same_grads(ours, theirs):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(_np(a), _np(b), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("input_grad", [True, False])
def test_full_backward_hook_sees_torchs_gradients(input_grad):
    d, t = _pair("Linear", 4, 3)
    seen = {"d": [], "t": []}
    d.register_full_backward_hook(lambda m, gi, go: seen["d"].append((gi, go)))
    t.register_full_backward_hook(lambda m, gi, go: seen["t"].append((gi, go)))
    x = RNG.standard_normal((5, 4)).astype(np.float32)
    w = RNG.standard_normal((5, 3)).astype(np.float32)
    xd, xt = ds.tensor(x, requires_grad=input_grad), torch.tensor(x, requires_grad=input_grad)
    (d(xd) * ds.tensor(w)).sum().backward()
    (t(xt) * torch.tensor(w)).sum().backward()
    assert len(seen["d"]) == len(seen["t"]) == 1
    (gi_d, go_d), (gi_t, go_t) = seen["d"][0], seen["t"][0]
    _same_grads(gi_d, gi_t)
    _same_grads(go_d, go_t)
    np.testing.assert_allclose(d.weight.grad.numpy(), t.weight.grad.numpy(), rtol=1e-5)


def test_backward_hook_replaces_grad_input_and_pre_hook_replaces_grad_output():
    results = []
    for lib, nn in ((ds, dnn), (torch, torch.nn)):
        lib.manual_seed(0)
        lin = nn.Linear(3, 2)
        with lib.no_grad():
            lin.weight.copy_(lib.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]]))
        lin.register_full_backward_pre_hook(lambda m, go: (go[0] * 10,))
        lin.register_full_backward_hook(lambda m, gi, go: (gi[0] * 0 + 1,))
        x = lib.tensor([[1.0, -2.0, 0.5]], requires_grad=True)
        lin(x).sum().backward()
        results.append((_np(x.grad), _np(lin.weight.grad)))
    np.testing.assert_allclose(results[0][0], results[1][0])
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-6)


class _Two(dnn.Module):
    def forward(self, a, b, scale=2.0):
        return a * b * scale, a + b


class _TwoT(torch.nn.Module):
    def forward(self, a, b, scale=2.0):
        return a * b * scale, a + b


def test_hooks_with_several_inputs_outputs_and_a_non_tensor_argument():
    got = []
    for lib, mod in ((ds, _Two()), (torch, _TwoT())):
        rec = {}
        mod.register_full_backward_hook(lambda m, gi, go, rec=rec: rec.update(gi=gi, go=go))
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        b = lib.tensor([3.0, -1.0])  # needs no gradient: its entry is None
        p, q = mod(a, b, 3.0)
        (p.sum() + (q * q).sum()).backward()
        got.append((rec["gi"], rec["go"], _np(a.grad)))
    (gi_d, go_d, ga_d), (gi_t, go_t, ga_t) = got
    _same_grads(gi_d, gi_t)
    _same_grads(go_d, go_t)
    np.testing.assert_allclose(ga_d, ga_t)


def test_hooks_are_removable_prepend_orders_and_mixing_old_and_full_raises():
    order = []
    lin = dnn.Linear(2, 2)
    h1 = lin.register_full_backward_hook(lambda *a: order.append(1))
    lin.register_full_backward_hook(lambda *a: order.append(0), prepend=True)
    lin(ds.ones(1, 2, requires_grad=True)).sum().backward()
    assert order == [0, 1]
    h1.remove()
    order.clear()
    lin(ds.ones(1, 2, requires_grad=True)).sum().backward()
    assert order == [0]
    with pytest.raises(RuntimeError, match="both regular backward hooks and full"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lin.register_backward_hook(lambda *a: None)
    other = dnn.Linear(2, 2)
    with pytest.warns(FutureWarning):
        other.register_backward_hook(lambda *a: order.append("old"))
    other(ds.ones(1, 2, requires_grad=True)).sum().backward()
    assert order[-1] == "old"


def test_no_hook_runs_without_grad_and_graph_free_outputs_are_untouched():
    lin = dnn.Linear(2, 2)
    calls = []
    lin.register_full_backward_hook(lambda *a: calls.append(1))
    with ds.no_grad():
        y = lin(ds.ones(1, 2))
    assert not y.requires_grad and calls == []


def _kwargs_hook_log(nn, lib, two_cls):
    log = []
    lin = nn.Linear(2, 2)
    lin.register_forward_pre_hook(lambda m, a, kw: log.append(("pre", sorted(kw))),
                                  with_kwargs=True)  # fmt: skip
    lin.register_forward_hook(lambda m, a, out: log.append("post"))
    lin.register_forward_hook(lambda m, a, kw, out: log.append("first"), prepend=True,
                              with_kwargs=True)  # fmt: skip
    lin(lib.ones(1, 2))
    two = two_cls()
    two.register_forward_pre_hook(lambda m, a, kw: log.append(("pre2", sorted(kw))),
                                  with_kwargs=True)  # fmt: skip
    two(lib.ones(1), b=lib.ones(1), scale=3.0)
    return log


def test_forward_hooks_with_kwargs_prepend_and_always_call():
    assert _kwargs_hook_log(dnn, ds, _Two) == _kwargs_hook_log(torch.nn, torch, _TwoT)


def test_forward_hook_always_call_runs_when_forward_raises():
    class Bad(dnn.Module):
        def forward(self, x):
            raise ValueError("boom")

    m, seen = Bad(), []
    m.register_forward_hook(lambda mod, a, out: seen.append(out), always_call=True)
    with pytest.raises(ValueError, match="boom"):
        m(ds.ones(1))
    assert seen == [None]


def test_pre_hook_with_kwargs_replaces_args_and_kwargs():
    lin = dnn.Linear(2, 1, bias=False)
    with ds.no_grad():
        lin.weight.fill_(1.0)
    lin.register_forward_pre_hook(lambda m, a, kw: ((a[0] * 2,), kw), with_kwargs=True)
    assert lin(ds.ones(1, 2)).item() == 4.0


class _Counter(dnn.Module):
    def __init__(self):
        super().__init__()
        self.lin = dnn.Linear(2, 2)
        self.calls = 0

    def get_extra_state(self):
        return {"calls": self.calls}

    def set_extra_state(self, state):
        self.calls = state["calls"]


class _CounterT(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)
        self.calls = 0

    def get_extra_state(self):
        return {"calls": self.calls}

    def set_extra_state(self, state):
        self.calls = state["calls"]


def test_extra_state_keys_and_round_trip_match_torch():
    d, t = _Counter(), _CounterT()
    assert list(d.state_dict()) == list(t.state_dict())
    d.calls = 7
    sd = d.state_dict()
    fresh = _Counter()
    fresh.load_state_dict(sd)
    assert fresh.calls == 7
    missing = {k: v for k, v in sd.items() if k != "_extra_state"}
    with pytest.raises(RuntimeError, match="Missing key.*_extra_state"):
        _Counter().load_state_dict(missing)
    assert _Counter().load_state_dict(missing, strict=False).missing_keys == ["_extra_state"]


def _state_dict_hook_log(nn):
    log = []
    net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 1)))
    net[1].register_state_dict_pre_hook(lambda m, p, kv: log.append(("pre", p)))
    net.register_state_dict_post_hook(lambda m, sd, p, meta: log.append(("post", p)))

    def drop_bias(m, sd, prefix, meta):
        log.append(("inner-post", prefix))
        sd.pop(prefix + "0.bias")

    net[1].register_state_dict_post_hook(drop_bias)
    return log, list(net.state_dict())


def test_state_dict_hooks_match_torch():
    assert _state_dict_hook_log(dnn) == _state_dict_hook_log(torch.nn)


def test_load_state_dict_pre_hook_renames_old_keys_and_post_hook_clears_missing():
    for nn in (dnn, torch.nn):
        lin = nn.Linear(2, 2)
        old = {"w": lin.weight.detach().clone() * 0 + 1, "bias": lin.bias.detach().clone()}

        def rename(m, sd, prefix, meta, strict, missing, unexpected, errors):
            if prefix + "w" in sd:
                sd[prefix + "weight"] = sd.pop(prefix + "w")

        lin.register_load_state_dict_pre_hook(rename)
        assert lin.load_state_dict(old).missing_keys == []
        assert float(lin.weight.sum()) == 4.0
        lin2 = nn.Linear(2, 2)
        lin2.register_load_state_dict_post_hook(lambda m, keys: keys.missing_keys.clear())
        assert lin2.load_state_dict({"weight": old["w"]}).missing_keys == []


def test_load_state_dict_pre_hook_errors_raise():
    lin = dnn.Linear(2, 2)
    lin.register_load_state_dict_pre_hook(lambda m, sd, p, meta, s, mi, un, err: err.append("old"))
    before = lin.weight.numpy().copy()
    with pytest.raises(RuntimeError, match="old"):
        lin.load_state_dict({k: v * 0 for k, v in lin.state_dict().items()})
    np.testing.assert_array_equal(lin.weight.numpy(), before)  # nothing copied


def test_load_state_dict_assign_keeps_the_checkpoints_tensors():
    lin = dnn.Linear(2, 2)
    w = ds.ones(2, 2, dtype=ds.float32)
    lin.load_state_dict({"weight": w, "bias": ds.zeros(2)}, assign=True)
    assert isinstance(lin.weight, dnn.Parameter) and lin.weight.requires_grad
    w._data[0, 0] = 5.0
    assert lin.weight[0, 0].item() == 5.0  # the same memory, as torch's assign=True
    lin(ds.ones(1, 2)).sum().backward()
    assert lin.weight.grad is not None


def test_small_module_methods():
    net = dnn.Sequential(dnn.BatchNorm1d(3), dnn.Linear(3, 2))
    assert net.get_buffer("0.running_mean") is net[0].running_mean
    with pytest.raises(AttributeError):
        net.get_buffer("0.nothing")
    net.set_submodule("1", dnn.Linear(3, 4))
    assert net(ds.ones(2, 3)).shape == (2, 4)
    with pytest.raises(AttributeError):
        net.set_submodule("9", dnn.Linear(1, 1), strict=True)
    assert net.share_memory() is net
    net.to_empty(device="cpu")
    assert net[1].weight.shape == (4, 3)
    net.type(ds.float64)
    assert net[1].weight.dtype == ds.float64
    net.type("torch.FloatTensor")
    assert net[1].weight.dtype == ds.float32
    net.bfloat16()  # a real dtype since 2026-12-04 (tests/test_bfloat16.py)
    assert net[1].weight.dtype == ds.bfloat16


def test_module_compile_replays_inference_and_hooks_force_eager():
    lin = dnn.Linear(3, 2)
    x = ds.randn(4, 3)
    want = lin(x).detach().numpy()
    lin.compile()
    with ds.no_grad():
        for _ in range(3):
            np.testing.assert_array_equal(lin(x).numpy(), want)
    assert lin.forward.stats["replays"] >= 1

    def step(m, x):
        m(x).sum().backward()

    m2 = dnn.Linear(3, 2)
    m2.register_full_backward_hook(lambda *a: None)
    with pytest.warns(CompileWarning, match="backward hooks"):
        ds.compile(step)(m2, x)


def _global_hook_log(nn, lib, mm):
    log = []
    handles = [
        mm.register_module_forward_pre_hook(lambda m, a: log.append(("gpre", type(m).__name__))),
        mm.register_module_forward_hook(lambda m, a, o: log.append(("gpost", type(m).__name__))),
        mm.register_module_full_backward_hook(
            lambda m, gi, go: log.append(("gbwd", type(m).__name__))
        ),
    ]
    try:
        net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        net[0].register_forward_hook(lambda m, a, o: log.append(("own", type(m).__name__)))
        x = lib.ones(1, 2, requires_grad=True)
        net(x).sum().backward()
    finally:
        for h in handles:
            h.remove()
    net(lib.ones(1, 2))  # removed: only the module's own hook runs
    return log


def test_global_module_hooks_match_torch():
    import torch.nn.modules.module as tmm

    import descent.nn.modules.module as dmm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = _global_hook_log(dnn, ds, dmm)
        theirs = _global_hook_log(torch.nn, torch, tmm)
    assert ours == theirs
