"""descent.optim against torch.optim (the oracle): same start, same gradients, same parameters.

Every optimizer runs 20 steps from the same initial parameters with the same gradient sequence
as PyTorch's and must end at the same parameters (float64: rtol 1e-10; float32: rtol 1e-5).
Lion has no PyTorch version: it is checked against a NumPy transcription of the paper's rule.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import descent
import descent.optim as optim
from descent.nn import Parameter

SHAPES = [(3, 4), (5,), (2, 3, 2)]
STEPS = 20
TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-6)}
DTYPES = [np.float64, np.float32]

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.2, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.5, maximize=True)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.9), eps=1e-6)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.05, maximize=True)),
    ("Adam", dict(lr=0.01, betas=(0.3, 0.99))),  # 1 - beta1 >= 0.5: lerp's second form
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.01, betas=(0.9, 0.99), maximize=True)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True, momentum=0.5, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, alpha=0.3, centered=True)),
    ("RMSprop", dict(lr=0.01, maximize=True, eps=1e-4)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05)),
    ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.1, weight_decay=0.01, eps=1e-8)),
    ("Adagrad", dict(lr=0.1, maximize=True)),
]
TORCH_NAMES = sorted({name for name, _ in CONFIGS})


def _data(dtype, seed=0, steps=STEPS, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(steps)]
    return init, grads


def _ours(init, dtype):
    return [Parameter(a.copy(), dtype=dtype) for a in init]


def _theirs(init):
    return [torch.nn.Parameter(torch.tensor(a.copy())) for a in init]


def _set_grads(ps, qs, grads):
    for p, q, g in zip(ps, qs, grads, strict=True):
        if g is None:
            p.grad, q.grad = None, None
        else:
            p.grad = descent.tensor(g, dtype=g.dtype)
            q.grad = torch.tensor(g)


def _assert_same(ps, qs, dtype, what=""):
    for i, (p, q) in enumerate(zip(ps, qs, strict=True)):
        assert p.dtype == np.dtype(dtype)
        np.testing.assert_allclose(
            p.numpy(), q.detach().numpy(), **TOL[dtype], err_msg=f"{what} parameter {i}"
        )


# -- parity with torch.optim --
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=[f"{n}-{k}" for n, k in CONFIGS])
def test_matches_torch_for_20_steps(name, kwargs, dtype):
    init, grads = _data(dtype)
    ps, qs = _ours(init, dtype), _theirs(init)
    ours = getattr(optim, name)(ps, **kwargs)
    theirs = getattr(torch.optim, name)(qs, **kwargs)
    for t in range(STEPS):
        _set_grads(ps, qs, grads[t])
        ours.step()
        theirs.step()
    _assert_same(ps, qs, dtype, f"{name}{kwargs}")
    assert len(ours.state) == len(theirs.state)  # SGD without momentum: no state at all
    for p, q in zip(ps, qs, strict=True):  # PyTorch's state keys, Tensors of p's shape
        st = ours.state.get(p, {})
        assert list(st) == list(theirs.state.get(q, {}))
        for key, value in theirs.state.get(q, {}).items():  # "step": 0-d, float32 as torch's
            assert str(st[key].dtype).split(".")[-1] == str(value.dtype).split(".")[-1], key
            np.testing.assert_allclose(st[key].numpy(), value.numpy(), **TOL[dtype])


GROUP_CASES = [
    ("SGD", dict(lr=0.1, momentum=0.9), dict(lr=0.01, momentum=0.5, nesterov=True)),
    ("Adam", dict(lr=0.01), dict(lr=0.003, weight_decay=0.1, amsgrad=True, betas=(0.5, 0.9))),
    ("AdamW", dict(lr=0.01, weight_decay=0.1), dict(weight_decay=0.0)),
    ("RMSprop", dict(lr=0.01), dict(centered=True, momentum=0.9, alpha=0.5)),
    ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.5), dict(lr_decay=0.1, eps=1e-3)),
]


def test_adagrad_honours_a_groups_initial_accumulator_value():
    """PyTorch fills "sum" from the constructor's value even for a group that sets its own;
    descent uses the group's (the documented meaning of a per-group option)."""
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros(2))
    opt = optim.Adagrad([{"params": [a]}, {"params": [b], "initial_accumulator_value": 3.0}])
    a.grad, b.grad = descent.ones_like(a), descent.ones_like(b)
    opt.step()
    np.testing.assert_allclose(opt.state[a]["sum"].numpy(), [1.0, 1.0])
    np.testing.assert_allclose(opt.state[b]["sum"].numpy(), [4.0, 4.0])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize(
    ("name", "defaults", "override"), GROUP_CASES, ids=[c[0] for c in GROUP_CASES]
)
def test_param_groups_with_different_options(name, defaults, override, dtype):
    init, grads = _data(dtype, seed=1)
    ps, qs = _ours(init, dtype), _theirs(init)
    ours = getattr(optim, name)([{"params": ps[:2]}, {"params": ps[2:], **override}], **defaults)
    theirs = getattr(torch.optim, name)(
        [{"params": qs[:2]}, {"params": qs[2:], **override}], **defaults
    )
    assert ours.param_groups[1]["lr"] == theirs.param_groups[1]["lr"]
    for t in range(STEPS):
        _set_grads(ps, qs, grads[t])
        ours.step()
        theirs.step()
    _assert_same(ps, qs, dtype, name)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name", TORCH_NAMES)
def test_parameters_without_grad_are_skipped(name, dtype):
    """Some gradients are None on some steps: those parameters (and their step counts) stay."""
    init, grads = _data(dtype, seed=2)
    for t, gs in enumerate(grads):
        if t % 3 == 1:
            gs[0] = None
        if t in (0, 5, 6):
            gs[2] = None
    ps, qs = _ours(init, dtype), _theirs(init)
    kwargs = dict(lr=0.01, momentum=0.9) if name in ("SGD", "RMSprop") else dict(lr=0.01)
    ours = getattr(optim, name)(ps, **kwargs)
    theirs = getattr(torch.optim, name)(qs, **kwargs)
    for t in range(STEPS):
        _set_grads(ps, qs, grads[t])
        ours.step()
        theirs.step()
    _assert_same(ps, qs, dtype, name)
    if name != "SGD":  # PyTorch's SGD keeps no step count
        assert ours.state[ps[0]]["step"] == STEPS - len([t for t in range(STEPS) if t % 3 == 1])
        assert ours.state[ps[2]]["step"] == STEPS - 3
        assert ours.state[ps[2]]["step"].item() == theirs.state[qs[2]]["step"].item()


def _through_checkpoint(sd):
    """What a checkpoint does: tensors to NumPy arrays, the rest through JSON (string keys)."""
    arrays, meta = {}, {"state": {}, "param_groups": sd["param_groups"]}
    for idx, st in sd["state"].items():
        meta["state"][idx] = {}
        for key, value in st.items():
            if isinstance(value, descent.Tensor):
                arrays[f"{idx}.{key}"] = value.numpy().copy()
            else:
                meta["state"][idx][key] = value
    meta = json.loads(json.dumps(meta))
    for name, arr in arrays.items():
        idx, key = name.split(".", 1)
        meta["state"][idx][key] = arr
    return meta


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
        ("Adam", dict(lr=0.01, amsgrad=True, betas=(0.8, 0.95))),
        ("AdamW", dict(lr=0.01, weight_decay=0.1)),
        ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
        ("Adagrad", dict(lr=0.1, lr_decay=0.01)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_state_dict_save_load_mid_run(name, kwargs, dtype):
    """Train 10 steps, save, load into a fresh optimizer and fresh parameters, train 10 more."""
    init, grads = _data(dtype, seed=3)
    ps, qs = _ours(init, dtype), _theirs(init)
    ours = getattr(optim, name)([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.02}], **kwargs)
    theirs = getattr(torch.optim, name)(
        [{"params": qs[:1]}, {"params": qs[1:], "lr": 0.02}], **kwargs
    )
    for t in range(10):
        _set_grads(ps, qs, grads[t])
        ours.step()
        theirs.step()
    sd = _through_checkpoint(ours.state_dict())
    ours.step()  # the snapshot must not follow later changes: this step is thrown away below
    ps2 = [Parameter(q.detach().numpy().copy(), dtype=dtype) for q in qs]
    fresh = getattr(optim, name)([{"params": ps2[:1]}, {"params": ps2[1:]}], lr=123.0)
    fresh.load_state_dict(sd)
    assert fresh.param_groups[1]["lr"] == 0.02 and fresh.param_groups[0]["lr"] != 123.0
    assert list(fresh.state[ps2[0]]) == list(theirs.state[qs[0]])
    if name != "SGD":
        assert fresh.state[ps2[0]]["step"].item() == 10.0
    for t in range(10, STEPS):
        _set_grads(ps2, qs, grads[t])
        fresh.step()
        theirs.step()
    _assert_same(ps2, qs, dtype, f"{name} after load_state_dict")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_integration_with_backward(dtype):
    """Gradients from descent's own backward through a hand-made loss, against torch's."""
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((16, 3)).astype(dtype), rng.standard_normal((16, 2)).astype(dtype)
    w0, b0 = rng.standard_normal((3, 2)).astype(dtype), np.zeros(2, dtype)
    w, b = Parameter(w0.copy(), dtype=dtype), Parameter(b0.copy(), dtype=dtype)
    tw, tb = torch.nn.Parameter(torch.tensor(w0)), torch.nn.Parameter(torch.tensor(b0))
    ours = optim.AdamW([w, b], lr=0.05, weight_decay=0.1)
    theirs = torch.optim.AdamW([tw, tb], lr=0.05, weight_decay=0.1)
    X, Y = descent.tensor(x, dtype=dtype), descent.tensor(y, dtype=dtype)
    for _ in range(STEPS):
        ours.zero_grad()
        loss = (((X @ w + b) - Y) ** 2).mean()
        loss.backward()
        ours.step()
        theirs.zero_grad()
        tloss = ((torch.tensor(x) @ tw + tb - torch.tensor(y)) ** 2).mean()
        tloss.backward()
        theirs.step()
    _assert_same([w, b], [tw, tb], dtype)
    assert float(loss.item()) < 1.5


# -- Lion against the paper's rule --
def _lion_reference(init, grads, lr, betas, weight_decay, maximize):
    """Chen et al. 2023, Program 1, in plain NumPy (float64 or float32 like the inputs)."""
    beta1, beta2 = betas
    params = [a.copy() for a in init]
    moms = [np.zeros_like(a) for a in init]
    for gs in grads:
        for i, g in enumerate(gs):
            g = -g if maximize else g
            update = np.sign(beta1 * moms[i] + (1 - beta1) * g)
            params[i] = params[i] - lr * (update + weight_decay * params[i])
            moms[i] = beta2 * moms[i] + (1 - beta2) * g
    return params, moms


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lr=1e-4),
        dict(lr=1e-3, weight_decay=0.1),
        dict(lr=1e-2, betas=(0.95, 0.98), weight_decay=1.0),
        dict(lr=1e-3, maximize=True),
    ],
)
def test_lion_matches_paper_reference(kwargs, dtype):
    init, grads = _data(dtype, seed=5)
    ps = _ours(init, dtype)
    opt = optim.Lion(ps, **kwargs)
    for gs in grads:
        for p, g in zip(ps, gs, strict=True):
            p.grad = descent.tensor(g, dtype=dtype)
        opt.step()
    full = dict(lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, maximize=False) | kwargs
    ref_p, ref_m = _lion_reference(init, grads, **full)
    for p, r, m in zip(ps, ref_p, ref_m, strict=True):
        np.testing.assert_allclose(p.numpy(), r, **TOL[dtype])
        np.testing.assert_allclose(opt.state[p]["exp_avg"].numpy(), m, **TOL[dtype])
    assert opt.defaults["betas"] == (0.9, 0.99) or "betas" in kwargs


# -- the flat buffers are an implementation detail: same numbers, robust to replaced data --
@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "Adagrad", "Lion"])
def test_one_group_equals_one_group_per_parameter_bitwise(name):
    """A group's single whole-buffer update gives bit-identical results to per-parameter ones."""
    init, grads = _data(np.float32, seed=6)
    kwargs = dict(lr=0.01, weight_decay=0.01)
    a, b = _ours(init, np.float32), _ours(init, np.float32)
    opt_a = getattr(optim, name)(a, **kwargs)
    opt_b = getattr(optim, name)([{"params": [p]} for p in b], **kwargs)
    for gs in grads:
        for p, q, g in zip(a, b, gs, strict=True):
            p.grad, q.grad = descent.tensor(g), descent.tensor(g)
        opt_a.step()
        opt_b.step()
    for p, q in zip(a, b, strict=True):
        np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_parameters_are_views_of_one_buffer_and_state_follows():
    ps = _ours(_data(np.float32)[0], np.float32)
    opt = optim.Adam(ps, lr=0.1)
    for p in ps:
        p.grad = descent.ones_like(p)
    opt.step()
    st = opt.state[ps[1]]
    assert set(st) == {"step", "exp_avg", "exp_avg_sq"}
    assert st["exp_avg"].shape == ps[1].shape and st["exp_avg"].dtype == np.float32
    assert np.shares_memory(ps[0]._data, ps[2]._data) is False  # disjoint slices...
    assert ps[0]._data.base is ps[2]._data.base  # ...of the same flat buffer
    # In-place edits by the user are seen by the next step.
    st["exp_avg"].data[...] = 0.0
    ps[1]._data[...] = 5.0
    opt.step()
    expected_m = 0.1 * np.ones(5, np.float32)  # m = 0 + (1 - 0.9) * 1
    np.testing.assert_allclose(st["exp_avg"].numpy(), expected_m, rtol=1e-6)
    assert np.all(ps[1].numpy() < 5.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_replaced_parameter_data_is_picked_up(dtype):
    """`p._data = new_array` (as Module.to() or a module's load_state_dict may do) mid-run."""
    init, grads = _data(dtype, seed=7)
    ps, qs = _ours(init, dtype), _theirs(init)
    ours = optim.Adam(ps, lr=0.01, amsgrad=True)
    theirs = torch.optim.Adam(qs, lr=0.01, amsgrad=True)
    for t in range(STEPS):
        if t == 7:
            ps[1]._data = ps[1]._data.copy()  # a fresh array: no longer a view of the buffer
        if t == 12:
            ours.state[ps[0]]["exp_avg"] = descent.tensor(
                theirs.state[qs[0]]["exp_avg"].numpy(), dtype=dtype
            )
        _set_grads(ps, qs, grads[t])
        ours.step()
        theirs.step()
    _assert_same(ps, qs, dtype, "after replacing data")
    assert ps[1]._data.base is ps[0]._data.base  # laid out again


def test_dtype_change_moves_state_along():
    init, grads = _data(np.float32, seed=8)
    ps = _ours(init, np.float32)
    opt = optim.Adam(ps, lr=0.01)
    for t in range(3):
        _set_grads(ps, _theirs(init), grads[t])
        opt.step()
    before = opt.state[ps[0]]["exp_avg_sq"].numpy().copy()
    for p in ps:
        p._data = p._data.astype(np.float64)
    for p, g in zip(ps, grads[3], strict=True):
        p.grad = descent.tensor(g, dtype=np.float64)
    opt.step()
    st = opt.state[ps[0]]
    assert st["exp_avg_sq"].dtype == np.float64 and ps[0].dtype == np.float64
    expected = 0.999 * before.astype(np.float64) + 0.001 * grads[3][0].astype(np.float64) ** 2
    np.testing.assert_allclose(st["exp_avg_sq"].numpy(), expected, rtol=1e-12)


def test_mixed_dtypes_in_one_group_match_torch():
    init, grads = _data(np.float64, seed=9)
    init[1] = init[1].astype(np.float32)
    for gs in grads:
        gs[1] = gs[1].astype(np.float32)
    ps = [Parameter(a.copy(), dtype=a.dtype) for a in init]
    qs = _theirs(init)
    ours, theirs = optim.SGD(ps, lr=0.1, momentum=0.9), torch.optim.SGD(qs, lr=0.1, momentum=0.9)
    for gs in grads:
        _set_grads(ps, qs, gs)
        ours.step()
        theirs.step()
    for p, q in zip(ps, qs, strict=True):
        assert p.dtype == q.detach().numpy().dtype
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), **TOL[p.dtype.type])


def test_step_bumps_version_so_stale_graphs_fail():
    """Like PyTorch: backward through a graph that saved a parameter updated since raises."""
    w = Parameter(np.ones(3, np.float32))
    opt = optim.SGD([w], lr=0.1)
    w.grad = descent.ones_like(w)
    loss = (w * w).sum()  # saves w for backward
    opt.step()
    with pytest.raises(RuntimeError):
        loss.backward()


# -- the optimizer API --
def test_zero_grad_and_closure():
    w = Parameter(np.array([1.0, -2.0], np.float32))
    opt = optim.SGD([w], lr=0.1)
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert len(calls) == 1 and float(loss.item()) == pytest.approx(5.0)
    np.testing.assert_allclose(w.numpy(), [0.8, -1.6], rtol=1e-6)  # w - 0.1 * 2w
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(w.grad.numpy(), [0.0, 0.0])
    opt.zero_grad()
    assert w.grad is None
    opt.step()  # no gradients: nothing happens, no state
    np.testing.assert_allclose(w.numpy(), [0.8, -1.6], rtol=1e-6)


def test_add_param_group_and_defaults():
    a, b = Parameter(np.zeros(2, np.float32)), Parameter(np.zeros(3, np.float32))
    opt = optim.Adam([a], lr=0.01)
    opt.add_param_group({"params": b, "weight_decay": 0.5})
    assert len(opt.param_groups) == 2
    g = opt.param_groups[1]
    assert g["params"] == [b] and g["lr"] == 0.01 and g["weight_decay"] == 0.5
    assert g["betas"] == (0.9, 0.999) and g["amsgrad"] is False
    assert optim.AdamW([a]).defaults["weight_decay"] == 1e-2
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    a.grad, b.grad = descent.ones_like(a), descent.ones_like(b)
    opt.step()
    assert opt.state[b]["step"] == 1
    assert "Parameter Group 1" in repr(opt) and "weight_decay: 0.5" in repr(opt)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: optim.SGD(p, lr=-0.1), "lr"),
        (lambda p: optim.SGD(p, momentum=-1), "momentum"),
        (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "nesterov"),
        (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
        (lambda p: optim.SGD(p, weight_decay=-1e-4), "weight_decay"),
        (lambda p: optim.Adam(p, betas=(1.0, 0.9)), "beta"),
        (lambda p: optim.Adam(p, betas=(0.9, -0.1)), "beta"),
        (lambda p: optim.Adam(p, eps=-1.0), "eps"),
        (lambda p: optim.AdamW(p, weight_decay=-0.1), "weight_decay"),
        (lambda p: optim.RMSprop(p, alpha=-0.5), "alpha"),
        (lambda p: optim.RMSprop(p, momentum=-0.5), "momentum"),
        (lambda p: optim.Adagrad(p, lr_decay=-1.0), "lr_decay"),
        (lambda p: optim.Adagrad(p, initial_accumulator_value=-1.0), "initial_accumulator"),
        (lambda p: optim.Lion(p, betas=(0.9,)), "betas"),
        (lambda p: optim.Lion(p, lr=-1.0), "lr"),
        (lambda p: optim.Adam([{"params": p, "lr": -1.0}]), "lr"),
    ],
)
def test_invalid_hyperparameters_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make([Parameter(np.zeros(2, np.float32))])


def test_invalid_params_raise():
    p = Parameter(np.zeros(2, np.float32))
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="set"):
        optim.SGD([{"params": {p}}], lr=0.1)
    with pytest.warns(UserWarning, match="duplicate parameters"):  # PyTorch warns; kept once
        assert optim.SGD([p, p], lr=0.1).param_groups[0]["params"] == [p]
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(TypeError, match="floating"):
        optim.SGD([descent.tensor([1, 2])], lr=0.1)


def test_state_dict_layout_and_live_tensors():
    ps = _ours(_data(np.float32)[0], np.float32)
    opt = optim.Adam([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.5}], amsgrad=True)
    sd0 = opt.state_dict()
    assert sd0["state"] == {} and [g["params"] for g in sd0["param_groups"]] == [[0, 1], [2]]
    for p in ps:
        p.grad = descent.ones_like(p)
    opt.step()
    sd = opt.state_dict()
    assert set(sd["state"]) == {0, 1, 2}
    st = sd["state"][1]
    assert set(st) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert st["step"] == 1 and isinstance(st["exp_avg"], descent.Tensor)
    assert st["exp_avg"].shape == ps[1].shape
    json.dumps(sd["param_groups"])  # options are plain values
    assert sd["param_groups"][1]["lr"] == 0.5 and sd["param_groups"][0]["betas"] == (0.9, 0.999)
    saved = st["exp_avg"].numpy().copy()
    opt.step()
    # the optimizer's own tensors, as PyTorch's state_dict returns them: a later step shows
    assert sd["state"][1]["exp_avg"] is opt.state[ps[1]]["exp_avg"]
    assert not np.array_equal(sd["state"][1]["exp_avg"].numpy(), saved)


def test_load_state_dict_errors():
    ps = _ours(_data(np.float32)[0], np.float32)
    opt = optim.Adam(ps)
    for p in ps:
        p.grad = descent.ones_like(p)
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="groups"):
        optim.Adam([{"params": ps[:1]}, {"params": ps[1:]}]).load_state_dict(sd)
    with pytest.raises(ValueError, match="parameters"):
        optim.Adam(ps[:2]).load_state_dict(sd)
    other = [Parameter(np.zeros((2, 2), np.float32)), ps[1], ps[2]]
    with pytest.raises(ValueError, match="shape"):
        optim.Adam(other).load_state_dict(sd)


# -- clipping --
def _grad_pairs(dtype, seed=10, scale=1.0):
    rng = np.random.default_rng(seed)
    gs = [scale * rng.standard_normal(s).astype(dtype) for s in SHAPES]
    ps, qs = _ours([np.zeros_like(g) for g in gs], dtype), _theirs([np.zeros_like(g) for g in gs])
    _set_grads(ps, qs, gs)
    return ps, qs


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf"), 3.0, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, dtype):
    ps, qs = _grad_pairs(dtype)
    extra = ps[0] * 1.0  # a tensor without .grad: ignored
    total = optim.clip_grad_norm_([*ps, extra], max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(qs, max_norm, norm_type=norm_type)
    assert isinstance(total, descent.Tensor) and total.dtype == np.dtype(dtype)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(float(total.item()), float(expected), rtol=rtol)
    for p, q in zip(ps, qs, strict=True):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=rtol, atol=1e-7)


def test_clip_grad_norm_edge_cases():
    p = Parameter(np.array([3.0, 4.0], np.float32))
    assert float(optim.clip_grad_norm_(p, 1.0).item()) == 0.0  # no gradients at all
    p.grad = descent.tensor([3.0, 4.0])
    total = optim.clip_grad_norm_(p, 1.0)  # a single Tensor is accepted
    assert float(total.item()) == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad.numpy(), [0.6, 0.8], rtol=1e-5)
    p.grad = descent.tensor([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        optim.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_clip_grad_value_matches_torch(dtype):
    ps, qs = _grad_pairs(dtype, scale=2.0)
    assert optim.clip_grad_value_(ps, 1.5) is None
    torch.nn.utils.clip_grad_value_(qs, 1.5)
    for p, q in zip(ps, qs, strict=True):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())
    with pytest.raises(ValueError, match="clip_value"):
        optim.clip_grad_value_(ps, -1.0)


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_loads_a_torch_state_dict_mid_run(name):
    """PyTorch's own state_dict (torch tensors, a tensor `step`) loads and training continues."""
    init, grads = _data(np.float64, seed=11)
    ps, qs = _ours(init, np.float64), _theirs(init)
    kwargs = dict(lr=0.01, momentum=0.9) if name != "Adam" else dict(lr=0.01, amsgrad=True)
    theirs = getattr(torch.optim, name)(qs, **kwargs)
    for t in range(10):
        _set_grads(ps, qs, grads[t])
        theirs.step()
    for p, q in zip(ps, qs, strict=True):
        p._data[...] = q.detach().numpy()
    ours = getattr(optim, name)(ps, lr=1.0)
    ours.load_state_dict(theirs.state_dict())
    for t in range(10, STEPS):
        _set_grads(ps, qs, grads[t])
        ours.step()
        theirs.step()
    _assert_same(ps, qs, np.float64, f"{name} from a torch state_dict")


def test_deepcopy_gives_an_independent_working_optimizer():
    import copy

    init, grads = _data(np.float64, seed=12)
    ps = _ours(init, np.float64)
    opt = optim.Adam(ps, lr=0.01)
    for t in range(3):
        _set_grads(ps, _theirs(init), grads[t])
        opt.step()
    twin = copy.deepcopy({"params": ps, "opt": opt})
    for t in range(3, 6):
        _set_grads(ps, _theirs(init), grads[t])
        _set_grads(twin["params"], _theirs(init), grads[t])
        opt.step()
        twin["opt"].step()
    for p, q in zip(ps, twin["params"], strict=True):
        assert not np.shares_memory(p._data, q._data)
        np.testing.assert_array_equal(p.numpy(), q.numpy())
