"""Optimizer and LR-scheduler fidelity against PyTorch, session 20 (helper-144's sweep).

Each test pins a difference the sweep found (it failed before its fix) or a behaviour that
checkpoint/resume code relies on: the state dict's identities (PyTorch's state_dict() returns
the optimizer's own per-parameter dicts and tensors), LBFGS's state types and liveness, hooks,
and schedules over many steps.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import descent

_A = np.random.default_rng(0).standard_normal((6, 4))


def _lbfgs(lib, dtype, **kw):
    x = lib.tensor(np.linspace(-1, 1, 4).astype(dtype))
    x.requires_grad_(True)
    a = lib.tensor(_A.astype(dtype))
    opt = lib.optim.LBFGS([x], **kw)

    def closure():
        opt.zero_grad()
        loss = ((a @ x).tanh() ** 2).sum() + (x**4).sum()
        loss.backward()
        return loss

    return x, opt, closure


def _kind(v):
    """A state value's structure: Tensors by dtype and shape, lists element by element."""
    if isinstance(v, (torch.Tensor, descent.Tensor)):
        return ("Tensor", str(v.dtype).split(".")[-1], tuple(v.shape))
    if isinstance(v, list):
        return [_kind(x) for x in v]
    return type(v).__name__


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_state_types_match_torch_in_float64_too(dtype, line_search_fn):
    # Before: in float64 H_diag, ro, al (and t) were NumPy float64 scalars (a subclass of
    # Python's float, so left unwrapped), not 0-d Tensors as PyTorch's.
    kw = dict(max_iter=3, history_size=2, line_search_fn=line_search_fn)
    tx, to, tc = _lbfgs(torch, dtype, **kw)
    dx, do, dc = _lbfgs(descent, dtype, **kw)
    for _ in range(2):
        to.step(tc)
        do.step(dc)
    ts, ds = to.state_dict()["state"][0], do.state_dict()["state"][0]
    assert list(ts) == list(ds)
    assert {k: _kind(v) for k, v in ts.items()} == {k: _kind(v) for k, v in ds.items()}


def test_lbfgs_first_step_length_is_a_0d_tensor_in_float64():
    # t after one iteration is min(1, 1/|g|_1) * lr: a Tensor in PyTorch (when 1/|g|_1 < 1)
    tx, to, tc = _lbfgs(torch, np.float64, max_iter=1)
    dx, do, dc = _lbfgs(descent, np.float64, max_iter=1)
    to.step(tc)
    do.step(dc)
    assert _kind(to.state[tx]["t"]) == _kind(do.state[dx]["t"]) == ("Tensor", "float64", ())


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_state_dict_is_live_as_torchs(line_search_fn):
    # Before: LBFGS.state_dict() returned copies (the other optimizers' are live since
    # session 19); PyTorch's returns the optimizer's own dict, its prev_flat_grad is
    # overwritten in place and its old_dirs list grows in place.
    for lib in (torch, descent):
        x, opt, closure = _lbfgs(lib, np.float64, max_iter=3, history_size=5,
                                 line_search_fn=line_search_fn)  # fmt: skip
        opt.step(closure)
        sd = opt.state_dict()
        st = sd["state"][0]
        assert st is opt.state[x], lib.__name__
        prev, dirs = st["prev_flat_grad"], st["old_dirs"]
        first_dir = dirs[0]
        before = np.array(prev.detach().numpy() if lib is torch else prev.numpy())
        n_dirs = len(dirs)
        opt.step(closure)
        assert opt.state[x]["prev_flat_grad"] is prev, lib.__name__
        after = prev.detach().numpy() if lib is torch else prev.numpy()
        assert not np.array_equal(before, after), lib.__name__
        assert opt.state[x]["old_dirs"] is dirs and len(dirs) > n_dirs, lib.__name__
        assert dirs[0] is first_dir, lib.__name__  # kept pairs stay the same Tensors


def test_lbfgs_load_keeps_matching_tensors_and_resumes_bitwise():
    kw = dict(max_iter=3, history_size=3, line_search_fn="strong_wolfe")
    x, opt, closure = _lbfgs(descent, np.float32, **kw)
    opt.step(closure)
    snap = copy.deepcopy(opt.state_dict())
    x2, opt2, closure2 = _lbfgs(descent, np.float32, **kw)
    x2.data = descent.tensor(x.numpy().copy())
    opt2.load_state_dict(snap)
    # PyTorch's value.to(dtype, device) returns the same tensor: so does descent's load
    assert opt2.state[x2]["prev_flat_grad"] is snap["state"][0]["prev_flat_grad"]
    assert opt2.state[x2]["old_dirs"] is not snap["state"][0]["old_dirs"]  # a new list
    assert opt2.state[x2]["old_dirs"][0] is snap["state"][0]["old_dirs"][0]
    for _ in range(2):
        opt.step(closure)
        opt2.step(closure2)
    np.testing.assert_array_equal(x.numpy(), x2.numpy())


def test_lbfgs_loads_an_older_float64_state_of_numpy_scalars():
    # what descent wrote before this fix (H_diag, ro as np.float64) loads as 0-d Tensors
    x, opt, closure = _lbfgs(descent, np.float64, max_iter=3)
    opt.step(closure)
    opt.step(closure)
    sd = copy.deepcopy(opt.state_dict())
    st = sd["state"][0]
    st["H_diag"] = np.float64(st["H_diag"].item())
    st["ro"] = [np.float64(r.item()) for r in st["ro"]]
    x2, opt2, closure2 = _lbfgs(descent, np.float64, max_iter=3)
    x2.data = descent.tensor(x.numpy().copy())
    opt2.load_state_dict(sd)
    assert _kind(opt2.state[x2]["H_diag"]) == ("Tensor", "float64", ())
    assert _kind(opt2.state[x2]["ro"]) == [("Tensor", "float64", ())] * len(st["ro"])
    opt.step(closure)
    opt2.step(closure2)
    np.testing.assert_array_equal(x.numpy(), x2.numpy())


_ELEMENTWISE = [
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("Adamax", dict(lr=0.01)),
    ("NAdam", dict(lr=0.01)),
    ("RAdam", dict(lr=0.01)),
    ("Adagrad", dict(lr=0.1)),
    ("Adadelta", dict()),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
    ("Rprop", dict(lr=0.01)),
    ("ASGD", dict(lr=0.01)),
    ("Adafactor", dict(lr=0.01)),
    ("Muon", dict(lr=0.01)),
]


@pytest.mark.parametrize("name, kw", _ELEMENTWISE, ids=[c[0] for c in _ELEMENTWISE])
def test_state_dict_entries_are_the_optimizers_own_dicts(name, kw):
    # Before: descent's state_dict() built a new dict per parameter (of the live tensors);
    # PyTorch's "state" holds the optimizer's own per-parameter dicts.
    rng = np.random.default_rng(1)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    g = rng.standard_normal((4, 3)).astype(np.float32)
    for lib in (torch, descent):
        p = lib.nn.Parameter(lib.tensor(w.copy()))
        opt = getattr(lib.optim, name)([p], **kw)
        p.grad = lib.tensor(g.copy())
        opt.step()
        assert opt.state_dict()["state"][0] is opt.state[p], lib.__name__
