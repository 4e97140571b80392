"""Optimizer state in PyTorch's layout, checked against torch.optim (the oracle).

For every optimizer both libraries ship: the keys of `opt.state[p]` (and their order), each
value's type, dtype and shape, `len(opt.state)`, and `state_dict()` (state and param_groups:
keys, order and values) after 0, 1 and 3 steps, in float32 and with float64 as the default
dtype. Then what programs do with that state: `.item()` / `int()` on the step, round trips of
`state_dict()` through descent, JSON, NumPy and checkpoint files (old ones whose step is an
int too), and a torch-made state_dict loaded into descent that then steps as torch does.
"""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest
import torch

import descent
import descent.io as dio
import descent.optim as optim
from descent.nn import Parameter

SHAPES = [(3, 4), (4, 2), (5,)]
TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-6, atol=1e-6)}

# (name, options) for every optimizer in both libraries; Muon takes 2-D parameters only.
CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("Adam", dict()),
    ("Adam", dict(amsgrad=True, weight_decay=0.1)),
    ("AdamW", dict()),
    ("AdamW", dict(fused=True)),  # PyTorch's fused kernels count in float32 always
    ("Adamax", dict()),
    ("NAdam", dict()),
    ("NAdam", dict(decoupled_weight_decay=True, weight_decay=0.1)),
    ("RAdam", dict()),
    ("RMSprop", dict()),
    ("RMSprop", dict(momentum=0.9, centered=True)),
    ("Adagrad", dict(initial_accumulator_value=0.1)),
    ("Adagrad", dict(fused=True)),
    ("Adadelta", dict()),
    ("ASGD", dict(t0=1)),
    ("Rprop", dict()),
    ("Adafactor", dict()),
    ("Muon", dict()),
]
IDS = [f"{n}-{k}" for n, k in CASES]


@contextlib.contextmanager
def _default_dtype(dtype):
    """Set both libraries' default dtype (PyTorch's scalar state follows it)."""
    old, ours = torch.get_default_dtype(), descent.get_default_dtype()
    torch.set_default_dtype(torch.float64 if dtype == np.float64 else torch.float32)
    descent.set_default_dtype(descent.float64 if dtype == np.float64 else descent.float32)
    try:
        yield
    finally:
        torch.set_default_dtype(old)
        descent.set_default_dtype(ours)


def _shapes(name):
    return [s for s in SHAPES if len(s) == 2] if name == "Muon" else SHAPES


def _data(name, dtype, steps=12, seed=0):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(dtype) for s in _shapes(name)]
    grads = [[rng.standard_normal(s).astype(dtype) for s in _shapes(name)] for _ in range(steps)]
    return init, grads


def _pair(name, kwargs, init, dtype):
    ps = [Parameter(a.copy(), dtype=dtype) for a in init]
    qs = [torch.nn.Parameter(torch.tensor(a.copy())) for a in init]
    return ps, qs, getattr(optim, name)(ps, **kwargs), getattr(torch.optim, name)(qs, **kwargs)


def _set_grads(ps, qs, grads):
    for p, q, g in zip(ps, qs, grads, strict=True):
        p.grad = descent.tensor(g, dtype=g.dtype)
        q.grad = torch.tensor(g)


def _describe(value):
    """(kind, dtype, shape) of one state value, the same words for both libraries."""
    if isinstance(value, (torch.Tensor, descent.Tensor)):
        return ("tensor", str(value.dtype).split(".")[-1], tuple(value.shape))
    return (type(value).__name__, None, None)


def _layout(opt, params):
    """Everything about the state that a program can see, except the array values."""
    out = {"len(state)": len(opt.state)}
    for i, p in enumerate(params):
        if p in opt.state:  # `in`, not opt.state[p]: that would create an entry
            out[f"state[{i}]"] = [(k, _describe(v)) for k, v in opt.state[p].items()]
    sd = opt.state_dict()
    out["state_dict state"] = {
        int(i): [(k, _describe(v)) for k, v in st.items()] for i, st in sd["state"].items()
    }
    out["param_groups"] = [list(g.items()) for g in sd["param_groups"]]
    out["live groups"] = [[k for k in g if k != "params"] for g in opt.param_groups]
    return out


def _numbers(opt, params):
    """The 0-d state (step, mu_product, eta, mu), flattened to Python floats in key order."""
    return [
        v.item()
        for p in params
        if p in opt.state
        for v in opt.state[p].values()
        if getattr(v, "ndim", 1) == 0
    ]


# -- the layout, against torch --------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
def test_state_layout_matches_torch_after_0_1_and_3_steps(name, kwargs, dtype):
    with _default_dtype(dtype):
        init, grads = _data(name, dtype)
        ps, qs, ours, theirs = _pair(name, kwargs, init, dtype)
        done = 0
        for steps in (0, 1, 3):
            for t in range(done, steps):
                _set_grads(ps, qs, grads[t])
                ours.step()
                theirs.step()
            done = steps
            assert _layout(ours, ps) == _layout(theirs, qs), f"{name} after {steps} steps"
            assert _numbers(ours, ps) == pytest.approx(_numbers(theirs, qs), rel=1e-6)


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
def test_state_after_partial_gradients_matches_torch(name, kwargs):
    """A parameter without a gradient gets no state (and no step) until it has one."""
    init, grads = _data(name, np.float32)
    ps, qs, ours, theirs = _pair(name, kwargs, init, np.float32)
    for t in range(3):
        ps[1].grad, qs[1].grad = None, None
        for i in (0, 2) if len(ps) > 2 else (0,):
            g = grads[t][i]
            ps[i].grad, qs[i].grad = descent.tensor(g), torch.tensor(g)
        ours.step()
        theirs.step()
    assert _layout(ours, ps) == _layout(theirs, qs)
    _set_grads(ps, qs, grads[3])  # now every parameter, with different step counts
    ours.step()
    theirs.step()
    assert _layout(ours, ps) == _layout(theirs, qs)
    assert _numbers(ours, ps) == pytest.approx(_numbers(theirs, qs), rel=1e-6)


def _deep(value):
    """_describe, element by element in lists (LBFGS's history)."""
    if isinstance(value, list):
        return [_deep(v) for v in value]
    return _describe(value)


def _lbfgs_closure(opt, x):
    def f():
        opt.zero_grad()
        loss = ((x - 1) ** 2).sum() + (x**4).sum()
        loss.backward()
        return loss

    return f


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_state_matches_torch_and_a_torch_state_continues(line_search_fn):
    x0 = np.array([1.0, -2.0, 0.5], np.float32)
    p, q = Parameter(x0.copy()), torch.nn.Parameter(torch.tensor(x0))
    kw = dict(max_iter=3, line_search_fn=line_search_fn)
    ours, theirs = optim.LBFGS([p], **kw), torch.optim.LBFGS([q], **kw)
    for _ in range(2):
        ours.step(_lbfgs_closure(ours, p))
        theirs.step(_lbfgs_closure(theirs, q))
    live = (ours.state[p], theirs.state[q])
    saved = (ours.state_dict()["state"][0], theirs.state_dict()["state"][0])
    for got, want in (live, saved):
        assert [(k, _deep(v)) for k, v in got.items()] == [(k, _deep(v)) for k, v in want.items()]
    assert ours.state[p]["n_iter"] == theirs.state[q]["n_iter"] > 1
    # torch's state_dict into a fresh descent LBFGS at torch's point: the same next steps
    p2 = Parameter(q.detach().numpy().copy())
    fresh = optim.LBFGS([p2], **kw)
    fresh.load_state_dict(theirs.state_dict())
    assert [(k, _deep(v)) for k, v in fresh.state[p2].items()] == [
        (k, _deep(v)) for k, v in theirs.state[q].items()
    ]
    for _ in range(2):
        fresh.step(_lbfgs_closure(fresh, p2))
        theirs.step(_lbfgs_closure(theirs, q))
    np.testing.assert_allclose(p2.numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_sparse_adam_keeps_an_int_step_as_torch():
    """PyTorch's SparseAdam is the exception: its step is a Python int (also after loading)."""
    w0 = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    d, t = descent.nn.Embedding(7, 3, sparse=True), torch.nn.Embedding(7, 3, sparse=True)
    with descent.no_grad():
        d.weight.copy_(descent.tensor(w0))
    with torch.no_grad():
        t.weight.copy_(torch.tensor(w0))
    ours, theirs = optim.SparseAdam(d.parameters()), torch.optim.SparseAdam(t.parameters())
    idx = np.array([[1, 2], [5, 1]])
    for _ in range(2):
        for lib, emb, opt in ((descent, d, ours), (torch, t, theirs)):
            opt.zero_grad()
            (emb(lib.tensor(idx)) ** 2).sum().backward()
            opt.step()
    assert _layout(ours, [d.weight]) == _layout(theirs, [t.weight])
    assert ours.state[d.weight]["step"] == 2
    fresh = optim.SparseAdam(d.parameters())
    fresh.load_state_dict(_through_json(theirs.state_dict()))
    assert _layout(fresh, [d.weight]) == _layout(theirs, [t.weight])


# -- what programs do with the step ---------------------------------------------------------------
def test_step_is_a_0d_float32_tensor_programs_can_read():
    p = Parameter(np.ones((2, 3), np.float32))
    opt = optim.AdamW([p], lr=0.1)
    for _ in range(3):
        p.grad = descent.ones(2, 3)
        opt.step()
    step = opt.state[p]["step"]
    assert isinstance(step, descent.Tensor) and step.ndim == 0 and step.shape == ()
    assert step.dtype == descent.float32 and not step.requires_grad
    assert step.item() == 3.0 and isinstance(step.item(), float)
    assert int(step) == 3 and float(step) == 3.0
    assert opt.state_dict()["state"][0]["step"].item() == 3.0
    assert list(opt.state_dict()["state"][0].keys()) == ["step", "exp_avg", "exp_avg_sq"]
    snapshot = opt.state_dict()["state"][0]["step"]
    p.grad = descent.ones(2, 3)
    opt.step()
    assert step.item() == 4.0  # the live tensor counts in place, as PyTorch's step_t += 1
    assert snapshot.item() == 4.0  # a state_dict holds the live tensors, as PyTorch's


def test_step_follows_the_default_dtype_float64():
    with _default_dtype(np.float64):
        p = Parameter(descent.ones(3, dtype=descent.float32))
        opt = optim.Adam([p])
        p.grad = descent.ones(3, dtype=descent.float32)
        opt.step()
        assert opt.state[p]["step"].dtype == descent.float64
        assert opt.state[p]["exp_avg"].dtype == descent.float32  # the parameter's


def test_sgd_without_momentum_keeps_no_state_and_momentum_keeps_only_its_buffer():
    p, q = Parameter(np.ones(3, np.float32)), Parameter(np.ones(3, np.float32))
    plain, heavy = optim.SGD([p], lr=0.1), optim.SGD([q], lr=0.1, momentum=0.9)
    for _ in range(2):
        p.grad, q.grad = descent.ones(3), descent.ones(3)
        plain.step()
        heavy.step()
    assert len(plain.state) == 0 and plain.state_dict()["state"] == {}
    assert "momentum_buffer" not in plain.state[p]
    assert list(heavy.state[q]) == ["momentum_buffer"]
    # Reading opt.state[p] made an empty entry (a defaultdict): state_dict() and
    # load_state_dict keep it, as PyTorch's do.
    t = torch.nn.Parameter(torch.ones(3))
    theirs = torch.optim.SGD([t], lr=0.1)
    t.grad = torch.ones(3)
    theirs.step()
    assert "momentum_buffer" not in theirs.state[t]
    assert len(plain.state) == len(theirs.state) == 1
    assert plain.state_dict()["state"] == theirs.state_dict()["state"] == {0: {}}
    again = optim.SGD([p], lr=0.1)
    again.load_state_dict(theirs.state_dict())
    assert len(again.state) == 1 and again.state[p] == {}
    p.grad = descent.ones(3)
    again.step()  # an empty entry is no obstacle to stepping
    assert again.state[p] == {}


def test_lion_without_torch_counterpart_uses_a_tensor_step_too():
    p = Parameter(descent.ones(2, 2))
    opt = optim.Lion([p], lr=0.1)
    for _ in range(2):
        p.grad = descent.ones(2, 2)
        opt.step()
    assert [(k, _describe(v)) for k, v in opt.state[p].items()] == [
        ("step", ("tensor", "float32", ())),
        ("exp_avg", ("tensor", "float32", (2, 2))),
    ]
    assert opt.state[p]["step"].item() == 2.0


def test_a_step_set_by_the_user_is_used_as_in_torch():
    """`state["step"] = tensor(100.)` (replaced) or `.fill_` (in place): the bias corrections
    of the next step use it, as PyTorch's."""
    init, grads = _data("Adam", np.float32)
    ps, qs, ours, theirs = _pair("Adam", dict(lr=0.01), init, np.float32)
    for t in range(2):
        _set_grads(ps, qs, grads[t])
        ours.step()
        theirs.step()
    ours.state[ps[0]]["step"] = descent.tensor(100.0)
    theirs.state[qs[0]]["step"] = torch.tensor(100.0)
    ours.state[ps[1]]["step"].fill_(50.0)
    theirs.state[qs[1]]["step"].fill_(50.0)
    _set_grads(ps, qs, grads[2])
    ours.step()
    theirs.step()
    for p, q in zip(ps, qs, strict=True):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), **TOL[np.float32])
    assert [ours.state[p]["step"].item() for p in ps] == [101.0, 51.0, 3.0]


def test_cleared_state_starts_again():
    p, q = Parameter(np.ones(3, np.float32)), torch.nn.Parameter(torch.ones(3))
    ours, theirs = optim.Adam([p], lr=0.1), torch.optim.Adam([q], lr=0.1)
    for clear in (False, False, True, False):
        if clear:
            ours.state[p].clear()
            theirs.state[q].clear()
        p.grad, q.grad = descent.full((3,), 0.5), torch.full((3,), 0.5)
        ours.step()
        theirs.step()
    assert ours.state[p]["step"].item() == theirs.state[q]["step"].item() == 2.0
    np.testing.assert_allclose(ours.state[p]["exp_avg"].numpy(), theirs.state[q]["exp_avg"])
    np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-6)


# -- round trips ----------------------------------------------------------------------------------
def _through_json(sd):
    """A checkpoint's way: tensors of any shape to NumPy arrays, the rest through JSON."""
    arrays, meta = {}, {"state": {}, "param_groups": sd["param_groups"]}
    for idx, st in sd["state"].items():
        meta["state"][idx] = {}
        for key, value in st.items():
            if isinstance(value, (descent.Tensor, torch.Tensor)) and value.ndim > 0:
                arrays[(str(idx), key)] = np.array(value.numpy())
            elif isinstance(value, (descent.Tensor, torch.Tensor)):
                meta["state"][idx][key] = value.item()  # 0-d: a JSON number
            else:
                meta["state"][idx][key] = value
    meta = json.loads(json.dumps(meta))
    for (idx, key), arr in arrays.items():
        meta["state"][idx][key] = arr
    return meta


def _torch_to_numpy(sd):
    """A torch state_dict with its tensors converted: arrays, 0-d ones to NumPy scalars."""
    state = {
        i: {k: (v.numpy()[()] if v.ndim == 0 else v.numpy()) if torch.is_tensor(v) else v
            for k, v in st.items()}
        for i, st in sd["state"].items()
    }  # fmt: skip
    return {"state": state, "param_groups": sd["param_groups"]}


def _old_descent_layout(sd, name):
    """What descent wrote before this layout: an int step for every optimizer (SGD and Muon
    too), then the arrays, then plain floats for NAdam's mu_product and ASGD's eta and mu."""
    state = {}
    for i, st in sd["state"].items():
        old = {"step": int(st["step"].item()) if "step" in st else 7}
        old.update({k: v for k, v in st.items() if v.ndim > 0})
        old.update({k: v.item() for k, v in st.items() if v.ndim == 0 and k != "step"})
        state[i] = old
    return {"state": state, "param_groups": sd["param_groups"]}


ROUND_TRIPS = {
    "descent": lambda sd, ours, theirs, name: ours.state_dict(),
    "json": lambda sd, ours, theirs, name: _through_json(ours.state_dict()),
    "old descent": lambda sd, ours, theirs, name: _old_descent_layout(ours.state_dict(), name),
    "torch": lambda sd, ours, theirs, name: theirs.state_dict(),
    "torch as numpy": lambda sd, ours, theirs, name: _torch_to_numpy(theirs.state_dict()),
    "torch through json": lambda sd, ours, theirs, name: _through_json(theirs.state_dict()),
}
LOADED = [c for c in CASES if c[0] != "Adafactor"] + [("Adafactor", dict(lr=0.01))]


@pytest.mark.parametrize("source", list(ROUND_TRIPS))
@pytest.mark.parametrize(("name", "kwargs"), LOADED, ids=[f"{n}-{k}" for n, k in LOADED])
def test_loaded_state_dict_continues_as_torch(name, kwargs, source):
    """6 steps in both libraries, a state_dict (descent's or torch's, converted) loaded into a
    fresh descent optimizer over fresh parameters, then 6 more steps with the same gradients:
    the parameters and the state's layout stay torch's."""
    dtype = np.float32
    init, grads = _data(name, dtype, seed=5)
    ps, qs, ours, theirs = _pair(name, kwargs, init, dtype)
    # Muon: stock torch (bfloat16 Newton-Schulz), which descent's Muon emulates by default
    _load_and_continue(name, source, init, grads, ps, qs, ours, theirs)


def _load_and_continue(name, source, init, grads, ps, qs, ours, theirs):
    dtype = np.float32
    for t in range(6):
        _set_grads(ps, qs, grads[t])
        ours.step()
        theirs.step()
    sd = ROUND_TRIPS[source](None, ours, theirs, name)
    ps2 = [Parameter(q.detach().numpy().copy(), dtype=dtype) for q in qs]
    fresh = getattr(optim, name)(ps2, lr=123.0)
    fresh.load_state_dict(sd)
    assert fresh.param_groups[0]["lr"] == theirs.param_groups[0]["lr"]
    assert _layout(fresh, ps2) == _layout(theirs, qs)
    for t in range(6, 12):
        _set_grads(ps2, qs, grads[t])
        fresh.step()
        theirs.step()
    for p, q in zip(ps2, qs, strict=True):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), **TOL[dtype])
    assert _layout(fresh, ps2) == _layout(theirs, qs)
    assert _numbers(fresh, ps2) == pytest.approx(_numbers(theirs, qs), rel=1e-6)


@pytest.mark.parametrize("kwargs", [dict(lr=0.05), dict(lr=0.05, momentum=0.9)])
def test_torch_sgd_and_adam_state_loaded_step_alike(kwargs):
    """Adam and SGD (momentum) from a torch state_dict: the same float32 parameters after
    8 more steps (to an ulp or so: PyTorch's SGD uses fused multiply-adds)."""
    for name in ("SGD", "Adam"):
        kw = kwargs if name == "SGD" else dict(lr=0.05)
        init, grads = _data(name, np.float32, steps=16, seed=9)
        qs = [torch.nn.Parameter(torch.tensor(a.copy())) for a in init]
        theirs = getattr(torch.optim, name)(qs, **kw)
        for t in range(8):
            for q, g in zip(qs, grads[t], strict=True):
                q.grad = torch.tensor(g)
            theirs.step()
        ps = [Parameter(q.detach().numpy().copy()) for q in qs]
        ours = getattr(optim, name)(ps)
        ours.load_state_dict(theirs.state_dict())
        for t in range(8, 16):
            _set_grads(ps, qs, grads[t])
            ours.step()
            theirs.step()
        assert list(ours.state[ps[0]]) == list(theirs.state[qs[0]])
        for p, q in zip(ps, qs, strict=True):
            np.testing.assert_allclose(p.numpy(), q.detach().numpy(), **TOL[np.float32])


def test_load_state_dict_refuses_a_step_that_is_not_a_number():
    p = Parameter(np.ones(3, np.float32))
    opt = optim.Adam([p])
    p.grad = descent.ones(3)
    opt.step()
    sd = opt.state_dict()
    sd["state"][0]["step"] = "three"
    with pytest.raises(TypeError, match="Adam.load_state_dict: state 'step' of parameter 0"):
        opt.load_state_dict(sd)


# -- checkpoint files -----------------------------------------------------------------------------
class _Net(descent.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = descent.nn.Linear(4, 3)


def _train(net, opt, steps, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x = descent.tensor(rng.standard_normal((5, 4)).astype(np.float32))
        opt.zero_grad()
        (net.lin(x) ** 2).mean().backward()
        opt.step()


def _fresh(name, kwargs):
    descent.manual_seed(0)
    net = _Net()
    return net, getattr(optim, name)(net.parameters(), **kwargs)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("AdamW", dict(lr=0.01)),
        ("SGD", dict(lr=0.1, momentum=0.9)),
        ("NAdam", dict(lr=0.01)),
        ("ASGD", dict(lr=0.01, t0=1)),
    ],  # fmt: skip
)
@pytest.mark.parametrize("old_format", [False, True], ids=["new", "old int step"])
def test_checkpoint_round_trip_resumes_exactly(tmp_path, name, kwargs, old_format):
    """Save after 3 steps, load into a fresh model and optimizer, 3 more steps: bitwise the
    run that never stopped. `old_format` writes the file as descent did before (an int step
    for every optimizer, floats for mu_product/eta/mu) and must load the same."""
    ref_net, ref_opt = _fresh(name, kwargs)
    _train(ref_net, ref_opt, 3)
    _train(ref_net, ref_opt, 3, seed=1)

    net, opt = _fresh(name, kwargs)
    _train(net, opt, 3)
    if old_format:
        old = _old_descent_layout(opt.state_dict(), name)
        opt.state_dict = lambda: old  # this instance writes the old layout (class unchanged)
    dio.save(tmp_path / "ck.safetensors", net, opt, step=3)
    if old_format:
        del opt.state_dict
    saved = dio.load(tmp_path / "ck.safetensors").optimizer["state"][0]
    assert ("step" in saved) == (old_format or name != "SGD")
    if "step" in saved:  # the file format is unchanged: the count is a JSON int
        from safetensors import safe_open

        with safe_open(str(tmp_path / "ck.safetensors"), "np") as f:
            doc = json.loads(f.metadata()["descent"])
        step = doc["optimizer"]["state"]["0"]["step"]
        assert type(step) is int and step == (7 if name == "SGD" else 3)
        # (read back as the saved 0-d Tensor since session 21, its dtype in the document)
        want = int if old_format else descent.Tensor
        assert type(saved["step"]) is want and float(saved["step"]) == step

    net2, opt2 = _fresh(name, dict(lr=123.0))
    dio.load(tmp_path / "ck.safetensors", net2, opt2)
    first = next(iter(net2.parameters()))
    assert [(k, _describe(v)) for k, v in opt2.state[first].items()] == [
        (k, _describe(v)) for k, v in ref_opt.state[next(iter(ref_net.parameters()))].items()
    ]
    if name != "SGD":
        assert opt2.state[first]["step"].item() == 3.0
    _train(net2, opt2, 3, seed=1)
    for a, b in zip(net2.parameters(), ref_net.parameters(), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_checkpoint_refuses_a_bad_step_in_the_new_layout(tmp_path):
    net, opt = _fresh("Adam", dict(lr=0.01))
    _train(net, opt, 2)
    sd = opt.state_dict()
    sd["state"][0]["step"] = descent.tensor(2.5)  # not a whole number
    opt.state_dict = lambda: sd
    dio.save(tmp_path / "bad.safetensors", net, opt)
    del opt.state_dict
    net2, opt2 = _fresh("Adam", dict(lr=0.01))
    with pytest.raises(dio.CheckpointError, match=r"state\[0\]\['step'\] is 2.5"):
        dio.load(tmp_path / "bad.safetensors", net2, opt2)


def test_torch_save_idiom_round_trips_the_0d_step(tmp_path):
    """descent.save(opt.state_dict(), f) / descent.load(f): torch.save's idiom."""
    net, opt = _fresh("Adam", dict(lr=0.01))
    _train(net, opt, 2)
    descent.save(opt.state_dict(), tmp_path / "opt.pt")
    loaded = descent.load(tmp_path / "opt.pt")
    step = loaded["state"][0]["step"]
    assert float(step) == 2.0
    net2, opt2 = _fresh("Adam", dict(lr=0.01))
    opt2.load_state_dict(loaded)
    assert opt2.state[next(iter(net2.parameters()))]["step"].dtype == descent.float32
