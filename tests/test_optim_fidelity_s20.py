"""Optimizer and LR-scheduler fidelity against PyTorch, session 20 (helper-144's sweep).

Each test pins a difference the sweep found (it failed before its fix) or a behaviour that
checkpoint/resume code relies on: the state dict's identities (PyTorch's state_dict() returns
the optimizer's own per-parameter dicts and tensors), LBFGS's state types and liveness, hooks,
and schedules over many steps.
"""

from __future__ import annotations

import copy
import importlib

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


# -- LR schedulers ---------------------------------------------------------------------------------
def _sched_opt(lib, name="SGD"):
    ps = [lib.nn.Parameter(lib.zeros(2)) for _ in range(2)]
    groups = [{"params": [p], "lr": 0.1 * (i + 1)} for i, p in enumerate(ps)]
    kw = {"momentum": 0.9} if name == "SGD" else {}
    return getattr(lib.optim, name)(groups, lr=0.1, **kw)


def _lam(e):
    return 0.95**e


_SCHEDULES = {
    "StepLR": lambda S, o: S.StepLR(o, step_size=7, gamma=0.3),
    "MultiStepLR": lambda S, o: S.MultiStepLR(o, milestones=[5, 5, 20], gamma=0.5),
    "ExponentialLR": lambda S, o: S.ExponentialLR(o, gamma=0.93),
    "CosineAnnealingLR": lambda S, o: S.CosineAnnealingLR(o, T_max=17, eta_min=0.001),
    "CosineAnnealingWarmRestarts": lambda S, o: S.CosineAnnealingWarmRestarts(o, 5, T_mult=2),
    "OneCycleLR": lambda S, o: S.OneCycleLR(o, max_lr=1.0, total_steps=40),
    "OneCycleLR_no_momentum": lambda S, o: S.OneCycleLR(
        o, max_lr=1.0, total_steps=40, cycle_momentum=False, three_phase=True
    ),
    "CyclicLR": lambda S, o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4),
    "CyclicLR_no_momentum": lambda S, o: S.CyclicLR(
        o, 0.01, 0.1, step_size_up=3, mode="triangular2", cycle_momentum=False
    ),
    "LambdaLR": lambda S, o: S.LambdaLR(o, lr_lambda=_lam),
    "MultiplicativeLR": lambda S, o: S.MultiplicativeLR(o, lr_lambda=_lam),
    "LinearLR": lambda S, o: S.LinearLR(o, start_factor=0.2, total_iters=13),
    "ConstantLR": lambda S, o: S.ConstantLR(o, factor=0.25, total_iters=9),
    "PolynomialLR": lambda S, o: S.PolynomialLR(o, total_iters=30, power=1.7),
    "SequentialLR": lambda S, o: S.SequentialLR(
        o, [S.LinearLR(o, start_factor=0.1, total_iters=5), S.ExponentialLR(o, 0.9)], [5]
    ),
    "ChainedScheduler": lambda S, o: S.ChainedScheduler(
        [S.ConstantLR(o, factor=0.5, total_iters=4), S.ExponentialLR(o, gamma=0.95)]
    ),
    "ReduceLROnPlateau": lambda S, o: S.ReduceLROnPlateau(o, mode="max", patience=2),
}


def _keys(sd):
    """A scheduler state dict's keys in order, with its sub-schedulers' (Sequential/Chained)."""
    return list(sd), [list(s) for s in sd.get("_schedulers", [])]


@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
@pytest.mark.parametrize("name", list(_SCHEDULES))
def test_scheduler_state_dict_keys_are_torchs_in_torchs_order(name, opt_name):
    # Before: every schedule had _get_lr_called_within_step before _is_initial (PyTorch's
    # order is the reverse); CosineAnnealingWarmRestarts set T_i after eta_min, OneCycleLR
    # _anneal_func_type before _schedule_phases and use_beta1 even with
    # cycle_momentum=False; CyclicLR's _scale_fn_custom was not last; ReduceLROnPlateau's
    # mode/threshold keys came before last_epoch.
    keys = []
    for lib in (torch, descent):
        opt = _sched_opt(lib, opt_name)
        sched = _SCHEDULES[name](lib.optim.lr_scheduler, opt)
        for i in range(3):
            opt.step()
            sched.step(1.0 / (i + 1)) if name == "ReduceLROnPlateau" else sched.step()
        keys.append(_keys(sched.state_dict()))
    assert keys[0] == keys[1]


def _warned(lib, fn):
    """fn(lib)'s result and the texts of the warnings it gave."""
    import warnings

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = fn(lib)
    return out, [str(x.message) for x in w if issubclass(x.category, UserWarning)]


def _one_opt(lib):
    p = lib.nn.Parameter(lib.zeros(2))
    return lib.optim.SGD([p], lr=0.1, momentum=0.9)


_ORDER_CASES = {
    # scheduler.step() before any optimizer.step(): PyTorch warns once per child stepped
    "StepLR_before": lambda S, o: [S.StepLR(o, 2).step()],
    "MultiplicativeLR_before": lambda S, o: [S.MultiplicativeLR(o, lambda e: 0.9).step()],
    "OneCycleLR_before": lambda S, o: [S.OneCycleLR(o, 1.0, total_steps=5).step()],
    "SequentialLR_before": lambda S, o: [
        S.SequentialLR(o, [S.ConstantLR(o), S.ExponentialLR(o, 0.9)], [2]).step()
    ],
    "ChainedScheduler_before": lambda S, o: [
        S.ChainedScheduler([S.ConstantLR(o), S.ExponentialLR(o, 0.9)]).step()
    ],
    # the optimizer stepped before the scheduler was made: PyTorch warns (the flag is set by
    # steps after the scheduler's construction only)
    "stepped_before_creation": lambda S, o: [o.step(), S.StepLR(o, 2).step()],
    # the usual order (make, optimizer.step(), scheduler.step()): no warning
    "after": lambda S, o: [(s := S.StepLR(o, 2)), o.step(), s.step(), o.step(), s.step()],
    "after_two_schedulers": lambda S, o: [
        (a := S.StepLR(o, 2)),
        (b := S.ExponentialLR(o, 0.9)),
        o.step(),
        a.step(),
        b.step(),
    ],
    # step(epoch): PyTorch's deprecation warning (closed form)
    "StepLR_epoch": lambda S, o: [o.step(), S.StepLR(o, 2).step(5)],
    "MultiplicativeLR_epoch": lambda S, o: [o.step(), S.MultiplicativeLR(o, lambda e: 0.9).step(3)],
    "ReduceLROnPlateau_epoch": lambda S, o: [o.step(), S.ReduceLROnPlateau(o).step(1.0, 4)],
    # CosineAnnealingWarmRestarts and ReduceLROnPlateau check no order, and a fractional
    # epoch is CosineAnnealingWarmRestarts' own API (no warning)
    "no_order_check": lambda S, o: [
        S.CosineAnnealingWarmRestarts(o, 3).step(0.5),
        S.ReduceLROnPlateau(o).step(1.0),
    ],
}


@pytest.mark.parametrize("case", list(_ORDER_CASES))
def test_scheduler_warnings_are_torchs(case):
    # Before: descent gave neither PyTorch's "Detected call of `lr_scheduler.step()` before
    # `optimizer.step()`" warning nor its step(epoch) deprecation warning.
    def run(lib):
        opt = _one_opt(lib)
        _ORDER_CASES[case](lib.optim.lr_scheduler, opt)
        return [round(float(g["lr"]), 12) for g in opt.param_groups]

    assert _warned(descent, run) == _warned(torch, run)


def test_a_gradscaler_skipped_step_warns_as_torch():
    # AMP's first steps are often skipped (inf gradients): the scheduler then warns in PyTorch
    def run(lib):
        p = lib.nn.Parameter(lib.zeros(2))
        opt = lib.optim.SGD([p], lr=0.1)
        sched = lib.optim.lr_scheduler.StepLR(opt, 2)
        scaler = torch.amp.GradScaler("cpu") if lib is torch else descent.amp.GradScaler("cpu")
        scaler.scale((p * 1.0).sum()).backward()
        p.grad.fill_(float("inf"))
        scaler.step(opt)
        scaler.update()
        sched.step()
        return sched.get_last_lr()

    assert _warned(descent, run) == _warned(torch, run)


def test_epoch_deprecation_warning_is_exported():
    S = descent.optim.lr_scheduler
    assert S.EPOCH_DEPRECATION_WARNING == torch.optim.lr_scheduler.EPOCH_DEPRECATION_WARNING


def test_chained_scheduler_keeps_the_lrs_its_children_left():
    # Before: ChainedScheduler's constructor recomputed the lrs from "initial_lr", undoing a
    # change made before its children (here a ConstantLR made earlier on the optimizer), so
    # every later lr was 3x PyTorch's.
    def run(lib):
        S = lib.optim.lr_scheduler
        opt = _one_opt(lib)
        S.ConstantLR(opt, factor=1 / 3)
        chained = S.ChainedScheduler([S.ConstantLR(opt), S.ExponentialLR(opt, 0.9)])
        lrs = [opt.param_groups[0]["lr"], *chained.get_last_lr()]
        for _ in range(5):
            opt.step()
            chained.step()
            lrs += chained.get_last_lr()
        return lrs

    assert run(descent) == run(torch)


def test_step_lr_keeps_a_float_step_size():
    # Before: step_size=2.5 was cut to 2 (decays at 2, 4, 6, ...); PyTorch's decays where
    # last_epoch % 2.5 == 0 (5, 10, ...) and saves 2.5
    def run(lib):
        opt = _one_opt(lib)
        sched = lib.optim.lr_scheduler.StepLR(opt, step_size=2.5, gamma=0.5)
        lrs = []
        for _ in range(11):
            opt.step()
            sched.step()
            lrs += sched.get_last_lr()
        return lrs, sched.state_dict()["step_size"]

    assert run(descent) == run(torch)


def test_sequential_lr_refuses_reduce_lr_on_plateau():
    for lib in (torch, descent):
        S = lib.optim.lr_scheduler
        opt = _one_opt(lib)
        with pytest.raises(ValueError, match="does not support `ReduceLROnPlateau`"):
            S.SequentialLR(opt, [S.StepLR(opt, 2), S.ReduceLROnPlateau(opt)], milestones=[3])


@pytest.mark.parametrize("base", ["LRScheduler", "StepLR"])
def test_a_subclass_jumps_with_its_closed_form_as_torch(base):
    # Before: step(epoch) on a PyTorch-style subclass (own get_lr) always called get_lr();
    # PyTorch's _update_lr uses _get_closed_form_lr() where the class has one: the
    # subclass's own, or that of the built-in it extends (StepLR's, here from base_lrs).
    def run(lib):
        import warnings

        S = lib.optim.lr_scheduler

        class Warm(getattr(S, base)):
            def __init__(self, opt):
                args = () if base == "LRScheduler" else (2,)
                super().__init__(opt, *args)

            def get_lr(self):
                scale = 1.5 if self.last_epoch < 3 else 0.5
                return [g["lr"] * scale for g in self.optimizer.param_groups]

        if base == "LRScheduler":
            Warm._get_closed_form_lr = lambda self: [b * 7 for b in self.base_lrs]
        opt = _one_opt(lib)
        sched = Warm(opt)
        lrs = list(sched.get_last_lr())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # step(epoch)'s deprecation warning
            for i in range(5):
                opt.step()
                sched.step(10) if i == 3 else sched.step()
                lrs += sched.get_last_lr()
        return lrs

    assert run(descent) == run(torch)


def test_builtins_have_torchs_get_closed_form_lr():
    names = ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR",
             "ConstantLR", "PolynomialLR"]  # fmt: skip
    for name in names:
        for lib in (torch, descent):
            assert hasattr(getattr(lib.optim.lr_scheduler, name), "_get_closed_form_lr"), name
    for name in ["LambdaLR", "MultiplicativeLR", "OneCycleLR", "CyclicLR", "LRScheduler"]:
        for lib in (torch, descent):
            assert not hasattr(getattr(lib.optim.lr_scheduler, name), "_get_closed_form_lr")


def _user_optimizer(lib):
    """A custom optimizer written for PyTorch's API (its own step()): an int "step", a state
    tensor of another shape than the parameter's, a float64 0-d tensor, a list, a string."""

    class RowNorm(lib.optim.Optimizer):
        def __init__(self, params, lr=1e-2):
            super().__init__(params, dict(lr=lr))

        @lib.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = 0
                        state["row"] = lib.zeros(p.shape[0])
                        state["scale"] = lib.tensor(1.0, dtype=lib.float64)
                        state["hist"] = [lib.zeros_like(p)]
                        state["tag"] = "rows"
                    state["step"] += 1
                    state["row"].add_(p.grad.pow(2).mean(1))
                    state["hist"][0].mul_(0.9).add_(p.grad)
                    denom = state["row"].sqrt()[:, None] + 1e-8
                    p.add_(state["hist"][0] / denom, alpha=-group["lr"] * float(state["scale"]))

    return RowNorm


def test_a_users_optimizer_loads_its_state_as_torch():
    # Before: load_state_dict normalised every optimizer's state to descent's layout: the
    # int "step" became a 0-d float32 Tensor, and "row" (shape (3,) for a (3, 2) parameter)
    # raised ValueError (state shape differs from the parameter's). PyTorch keeps "step" as
    # it is and casts other tensors to the parameter's dtype, without a shape check.
    def run(lib):
        rng = np.random.default_rng(0)
        p = lib.nn.Parameter(lib.tensor(rng.standard_normal((3, 2)).astype(np.float32)))
        cls = _user_optimizer(lib)
        opt = cls([p])
        for _ in range(3):
            p.grad = lib.tensor(rng.standard_normal((3, 2)).astype(np.float32))
            opt.step()
        q = lib.nn.Parameter(p.detach().clone())
        opt2 = cls([q])
        opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
        st = opt2.state[q]
        kinds = {k: _kind(v) for k, v in st.items()}
        for _ in range(2):
            g = rng.standard_normal((3, 2)).astype(np.float32)
            p.grad, q.grad = lib.tensor(g), lib.tensor(g.copy())
            opt.step()
            opt2.step()
        return kinds, st["step"], p.detach().numpy().tolist(), q.detach().numpy().tolist()

    assert run(descent) == run(torch)


def test_a_users_optimizer_with_required_and_torchs_helpers():
    # Before: `from torch.optim.optimizer import required` (and ParamsT,
    # _use_grad_for_differentiable, _get_value, used by copies of PyTorch's optimizers)
    # raised ImportError under descent.
    def run(lib):
        mod = importlib.import_module(f"{lib.__name__}.optim.optimizer")

        class MySGD(mod.Optimizer):
            def __init__(self, params: mod.ParamsT, lr=mod.required, momentum=0.0):
                if lr is not mod.required and lr < 0.0:
                    raise ValueError(f"Invalid learning rate: {lr}")
                super().__init__(params, dict(lr=lr, momentum=momentum, differentiable=False))

            @mod._use_grad_for_differentiable
            def step(self, closure=None):
                grad_on = lib.is_grad_enabled()
                for group in self.param_groups:
                    for p in group["params"]:
                        if p.grad is None:
                            continue
                        buf = self.state[p].get("momentum_buffer")
                        if buf is None:
                            buf = self.state[p]["momentum_buffer"] = p.grad.clone()
                        else:
                            buf.mul_(group["momentum"]).add_(p.grad)
                        p.add_(buf, alpha=-mod._get_value(group["lr"]))
                return grad_on

        p = lib.nn.Parameter(lib.ones(3))
        q = lib.nn.Parameter(lib.ones(2))
        opt = MySGD([{"params": [p], "lr": 0.1}], momentum=0.9)
        with pytest.raises(ValueError, match="didn't specify a value of required"):
            opt.add_param_group({"params": [q]})
        out = []
        for i in range(3):
            p.grad = lib.ones(3) * (i + 1)
            out.append(opt.step())
        return out, p.detach().numpy(), repr(mod.required)

    ours, theirs = run(descent), run(torch)
    assert (ours[0], ours[2]) == (theirs[0], theirs[2])
    # one ulp apart: PyTorch's add_(alpha=) is a fused multiply-add (docs/optim.md)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-6)
