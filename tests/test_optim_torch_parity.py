"""Adadelta, Adamax, NAdam, RAdam and LBFGS against torch.optim (the oracle), and the
PyTorch keywords (foreach, fused, capturable, differentiable, decoupled_weight_decay) that
every optimizer accepts.

Each elementwise optimizer runs 30 steps from the same parameters with the same gradients as
PyTorch's and must end at the same parameters and state (float64: rtol 1e-10; float32:
rtol 2e-6). LBFGS minimises real functions with a closure (fixed step and strong Wolfe).
"""

from __future__ import annotations

import contextlib
import json
import warnings

import numpy as np
import pytest
import torch

import descent
import descent.optim as optim
from descent.nn import Parameter

SHAPES = [(3, 4), (5,), (2, 3, 2)]
STEPS = 30
TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-6, atol=1e-6)}
DTYPES = [np.float64, np.float32]

CONFIGS = [
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.7, eps=1e-4, weight_decay=0.1)),
    ("Adadelta", dict(lr=0.1, maximize=True)),
    ("Adamax", dict()),
    ("Adamax", dict(lr=0.01, betas=(0.8, 0.9), eps=1e-4, weight_decay=0.05)),
    ("Adamax", dict(lr=0.01, betas=(0.3, 0.99), maximize=True)),  # lerp's second form
    ("NAdam", dict()),
    ("NAdam", dict(lr=0.01, betas=(0.8, 0.95), momentum_decay=0.01, weight_decay=0.1)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict()),  # rho_t > 5 from step 6 on: both branches run
    ("RAdam", dict(lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict(lr=0.01, betas=(0.9, 0.5))),  # rho_inf < 5: never rectified
]


@contextlib.contextmanager
def _torch_default_dtype(dtype):
    """PyTorch keeps NAdam's mu_product and `step` in its default dtype (descent too): set
    both libraries' to the parameters' dtype."""
    old, ours = torch.get_default_dtype(), descent.get_default_dtype()
    torch.set_default_dtype(torch.float64 if dtype == np.float64 else torch.float32)
    descent.set_default_dtype(descent.float64 if dtype == np.float64 else descent.float32)
    try:
        yield
    finally:
        torch.set_default_dtype(old)
        descent.set_default_dtype(ours)


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
        p.grad = descent.tensor(g, dtype=g.dtype)
        q.grad = torch.tensor(g)


def _assert_same(ps, qs, dtype, what=""):
    for i, (p, q) in enumerate(zip(ps, qs, strict=True)):
        assert p.dtype == np.dtype(dtype)
        np.testing.assert_allclose(
            p.numpy(), q.detach().numpy(), **TOL[dtype], err_msg=f"{what} parameter {i}"
        )


def _through_json(sd):
    """A checkpoint's round trip: tensors to NumPy arrays, everything else through JSON."""
    arrays, meta = {}, {"state": {}, "param_groups": sd["param_groups"]}
    for idx, st in sd["state"].items():
        meta["state"][idx] = {}
        for key, value in st.items():
            if isinstance(value, descent.Tensor):
                arrays[(str(idx), key)] = value.numpy().copy()
            else:
                meta["state"][idx][key] = value
    meta = json.loads(json.dumps(meta))
    for (idx, key), arr in arrays.items():
        meta["state"][idx][key] = arr
    return meta


# -- elementwise optimizers ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=[f"{n}-{k}" for n, k in CONFIGS])
def test_matches_torch_for_30_steps(name, kwargs, dtype):
    init, grads = _data(dtype)
    ps, qs = _ours(init, dtype), _theirs(init)
    with _torch_default_dtype(dtype):
        ours = getattr(optim, name)(ps, **kwargs)
        theirs = getattr(torch.optim, name)(qs, **kwargs)
        for t in range(STEPS):
            _set_grads(ps, qs, grads[t])
            ours.step()
            theirs.step()
    _assert_same(ps, qs, dtype, f"{name}{kwargs}")
    for p, q in zip(ps, qs, strict=True):  # PyTorch's state keys and values
        st = ours.state[p]
        assert st["step"] == STEPS
        assert set(st) == set(theirs.state[q])
        for key, value in theirs.state[q].items():
            if key == "step":
                continue
            mine = st[key].numpy() if isinstance(st[key], descent.Tensor) else st[key]
            np.testing.assert_allclose(mine, value.numpy(), **TOL[dtype], err_msg=key)


@pytest.mark.parametrize(
    ("name", "kwargs", "override"),
    [
        ("Adadelta", dict(lr=0.5), dict(rho=0.5, weight_decay=0.1)),
        ("Adamax", dict(lr=0.01), dict(betas=(0.5, 0.9))),
        ("NAdam", dict(lr=0.01), dict(momentum_decay=0.02, lr=0.003)),
        ("RAdam", dict(lr=0.01), dict(decoupled_weight_decay=True, weight_decay=0.2)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_param_groups_and_sparse_gradients(name, kwargs, override):
    """Two groups with different options; one parameter skips some steps (its own step count,
    so NAdam's per-parameter mu_product diverges between parameters)."""
    init, grads = _data(np.float64, seed=5)
    ps, qs = _ours(init, np.float64), _theirs(init)
    with _torch_default_dtype(np.float64):
        ours = getattr(optim, name)([{"params": ps[:2]}, {"params": ps[2:], **override}], **kwargs)
        theirs = getattr(torch.optim, name)(
            [{"params": qs[:2]}, {"params": qs[2:], **override}], **kwargs
        )
        for t in range(STEPS):
            _set_grads(ps, qs, grads[t])
            if t % 3 == 1:  # parameter 1 has no gradient on these steps
                ps[1].grad, qs[1].grad = None, None
            ours.step()
            theirs.step()
    _assert_same(ps, qs, np.float64, name)
    assert ours.state[ps[1]]["step"] == STEPS - STEPS // 3


@pytest.mark.parametrize("name", ["Adadelta", "Adamax", "NAdam", "RAdam"])
def test_state_dict_round_trip_mid_run(name):
    """15 steps, a JSON/NumPy round trip of the state_dict into fresh objects, 15 more."""
    dtype = np.float64
    init, grads = _data(dtype, seed=3)
    ps, qs = _ours(init, dtype), _theirs(init)
    with _torch_default_dtype(dtype):
        ours = getattr(optim, name)(ps, lr=0.01)
        theirs = getattr(torch.optim, name)(qs, lr=0.01)
        for t in range(15):
            _set_grads(ps, qs, grads[t])
            ours.step()
            theirs.step()
        sd = _through_json(ours.state_dict())
        ps2 = [Parameter(q.detach().numpy().copy(), dtype=dtype) for q in qs]
        fresh = getattr(optim, name)(ps2, lr=5.0)
        fresh.load_state_dict(sd)
        assert fresh.param_groups[0]["lr"] == 0.01
        for t in range(15, STEPS):
            _set_grads(ps2, qs, grads[t])
            fresh.step()
            theirs.step()
    _assert_same(ps2, qs, dtype, f"{name} after load_state_dict")


@pytest.mark.parametrize("name", ["NAdam", "RAdam", "Adadelta"])
def test_loads_a_torch_state_dict(name):
    """PyTorch's own state_dict (tensor `step`, NAdam's 0-d `mu_product`) continues training."""
    init, grads = _data(np.float64, seed=11)
    ps, qs = _ours(init, np.float64), _theirs(init)
    with _torch_default_dtype(np.float64):
        theirs = getattr(torch.optim, name)(qs, lr=0.01)
        for t in range(10):
            _set_grads(ps, qs, grads[t])
            theirs.step()
        for p, q in zip(ps, qs, strict=True):
            p._data[...] = q.detach().numpy()
        ours = getattr(optim, name)(ps, lr=1.0)
        ours.load_state_dict(theirs.state_dict())
        for p, q in zip(ps, qs, strict=True):  # the layout and 0-d numbers as PyTorch's
            st, ref = ours.state[p], theirs.state[q]
            assert list(st) == list(ref)
            for key in ("step", "mu_product"):
                if key in ref:
                    assert isinstance(st[key], descent.Tensor) and st[key].ndim == 0
                    assert st[key].dtype == descent.float64  # the default dtype is float64
                    assert st[key].item() == ref[key].item()
        for t in range(10, STEPS):
            _set_grads(ps, qs, grads[t])
            ours.step()
            theirs.step()
    _assert_same(ps, qs, np.float64, f"{name} from a torch state_dict")


def test_nadam_mu_product_is_rounded_like_torch_in_float32():
    """In float32 PyTorch rounds mu_product to float32 each step; so does descent."""
    init, grads = _data(np.float32, seed=2)
    ps, qs = _ours(init, np.float32), _theirs(init)
    ours, theirs = optim.NAdam(ps, lr=0.05), torch.optim.NAdam(qs, lr=0.05)
    for t in range(STEPS):
        _set_grads(ps, qs, grads[t])
        ours.step()
        theirs.step()
    assert ours.state[ps[0]]["mu_product"].item() == theirs.state[qs[0]]["mu_product"].item()
    assert ours.state[ps[0]]["mu_product"].dtype == descent.float32


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: optim.Adadelta(p, rho=1.5), "rho"),
        (lambda p: optim.Adadelta(p, lr=-1), "lr"),
        (lambda p: optim.Adamax(p, betas=(1.0, 0.9)), "beta"),
        (lambda p: optim.NAdam(p, momentum_decay=-1), "momentum_decay"),
        (lambda p: optim.RAdam(p, eps=-1), "eps"),
        (lambda p: optim.LBFGS(p, line_search_fn="armijo"), "line_search_fn"),
        (lambda p: optim.LBFGS(p, history_size=0), "history_size"),
    ],
)
def test_invalid_hyperparameters_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make([Parameter(np.zeros(3))])


# -- PyTorch's implementation keywords ----------------------------------------------------------
ALL_TORCH = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam"]


def _keywords(name):
    """The implementation switches `torch.optim.<name>` takes (from its signature)."""
    import inspect

    sig = inspect.signature(getattr(torch.optim, name).__init__)
    return [k for k in ("foreach", "fused", "capturable", "differentiable") if k in sig.parameters]


@pytest.mark.parametrize("name", ALL_TORCH)
def test_implementation_keywords_are_accepted_and_change_nothing(name):
    """foreach/fused/capturable accepted wherever PyTorch takes them; same numbers."""
    init, grads = _data(np.float64, seed=7, steps=5)
    kw = {"foreach": False, "fused": True, "capturable": False, "differentiable": False}
    kw = {k: kw[k] for k in _keywords(name)}
    ps, ps_plain, qs = _ours(init, np.float64), _ours(init, np.float64), _theirs(init)
    ours = getattr(optim, name)(ps, lr=0.01, **kw)
    plain = getattr(optim, name)(ps_plain, lr=0.01)
    with _torch_default_dtype(np.float64):
        theirs = getattr(torch.optim, name)(qs, lr=0.01)  # CPU: PyTorch's single-tensor path
        for t in range(5):
            _set_grads(ps, qs, grads[t])
            for p, g in zip(ps_plain, grads[t], strict=True):
                p.grad = descent.tensor(g, dtype=g.dtype)
            ours.step()
            plain.step()
            theirs.step()
    _assert_same(ps, qs, np.float64, name)
    for p, q in zip(ps, ps_plain, strict=True):
        np.testing.assert_array_equal(p.numpy(), q.numpy())
    for k in kw:
        assert ours.param_groups[0][k] == kw[k]
    for k in ("foreach", "maximize"):
        assert k in ours.defaults


@pytest.mark.parametrize("name", ALL_TORCH + ["Lion"])
def test_differentiable_true_raises(name):
    with pytest.raises(NotImplementedError, match="differentiable"):
        getattr(optim, name)([Parameter(np.zeros(3))], lr=0.1, differentiable=True)


def test_positional_arguments_follow_torch():
    """RMSprop takes capturable, foreach, maximize positionally; Adagrad/Adadelta/Adamax take
    foreach positionally: the same positional call means the same thing in both libraries."""
    init, grads = _data(np.float64, seed=8, steps=5)
    cases = [
        ("RMSprop", (0.01, 0.9, 1e-8, 0.0, 0.0, False, False, None, True)),  # maximize=True
        ("Adagrad", (0.1, 0.0, 0.0, 0.0, 1e-10, None)),
        ("Adadelta", (1.0, 0.9, 1e-6, 0.0, None)),
        ("Adamax", (0.002, (0.9, 0.999), 1e-8, 0.0, None)),
        ("NAdam", (0.01, (0.9, 0.999), 1e-8, 0.1, 4e-3, True)),  # decoupled_weight_decay
        ("RAdam", (0.01, (0.9, 0.999), 1e-8, 0.1, True)),
    ]
    for name, args in cases:
        ps, qs = _ours(init, np.float64), _theirs(init)
        with _torch_default_dtype(np.float64):
            ours = getattr(optim, name)(ps, *args)
            theirs = getattr(torch.optim, name)(qs, *args)
            for t in range(5):
                _set_grads(ps, qs, grads[t])
                ours.step()
                theirs.step()
        _assert_same(ps, qs, np.float64, name)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_decoupled_weight_decay_is_adamw(amsgrad):
    init, grads = _data(np.float64, seed=9)
    ps, qs = _ours(init, np.float64), _theirs(init)
    kw = dict(lr=0.01, weight_decay=0.1, amsgrad=amsgrad, decoupled_weight_decay=True)
    ours, theirs = optim.Adam(ps, **kw), torch.optim.Adam(qs, **kw)
    for t in range(STEPS):
        _set_grads(ps, qs, grads[t])
        ours.step()
        theirs.step()
    _assert_same(ps, qs, np.float64, "Adam(decoupled_weight_decay=True)")
    assert optim.AdamW([Parameter(np.zeros(2))]).defaults["decoupled_weight_decay"] is True


# -- LBFGS -------------------------------------------------------------------------------------
def _regression_problem(dtype, seed=0, n=40, d=6):
    """A logistic-regression loss (smooth, strictly convex with the L2 term)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(dtype)
    y = (rng.random(n) < 0.5).astype(dtype)
    w0 = (0.1 * rng.standard_normal((d, 1))).astype(dtype)
    b0 = np.zeros(1, dtype)
    return x, y, w0, b0


def _closures(dtype, seed=0):
    x, y, w0, b0 = _regression_problem(dtype, seed)
    import descent.nn.functional as F

    w, b = Parameter(w0.copy(), dtype=dtype), Parameter(b0.copy(), dtype=dtype)
    tw, tb = torch.nn.Parameter(torch.tensor(w0)), torch.nn.Parameter(torch.tensor(b0))
    xd, yd = descent.tensor(x, dtype=dtype), descent.tensor(y, dtype=dtype)
    xt, yt = torch.tensor(x), torch.tensor(y)

    def ours(opt):
        def closure():
            opt.zero_grad()
            z = (xd @ w + b).reshape(-1)
            loss = F.binary_cross_entropy_with_logits(z, yd) + 0.01 * (w * w).sum()
            loss.backward()
            return loss

        return closure

    def theirs(opt):
        def closure():
            opt.zero_grad()
            z = (xt @ tw + tb).reshape(-1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z, yt)
            loss = loss + 0.01 * (tw * tw).sum()
            loss.backward()
            return loss

        return closure

    return [w, b], [tw, tb], ours, theirs


LBFGS_CASES = [
    dict(),
    dict(lr=0.5, max_iter=5, history_size=3),
    dict(line_search_fn="strong_wolfe"),
    dict(line_search_fn="strong_wolfe", max_iter=4, history_size=2, tolerance_change=1e-12),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("kwargs", LBFGS_CASES, ids=[str(k) for k in LBFGS_CASES])
def test_lbfgs_matches_torch_with_a_closure(kwargs, dtype):
    ps, qs, ours_closure, theirs_closure = _closures(dtype)
    ours, theirs = optim.LBFGS(ps, **kwargs), torch.optim.LBFGS(qs, **kwargs)
    c_ours, c_theirs = ours_closure(ours), theirs_closure(theirs)
    # float64: three steps (up to 60 iterations) agree to rounding. float32: one step; once
    # at the optimum, later steps follow directions made of float32 rounding noise (1e-7
    # gradients), in which two correct implementations differ.
    for _ in range(3 if dtype == np.float64 else 1):
        l_ours = ours.step(c_ours)
        l_theirs = theirs.step(c_theirs)
        np.testing.assert_allclose(float(l_ours), l_theirs.item(), **TOL[dtype])
    for p, q in zip(ps, qs, strict=True):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), **TOL[dtype])
    if dtype == np.float32:
        # Which iteration ends a float32 step is decided by rounding, not by the algorithm: the
        # stopping test |loss - prev_loss| < tolerance_change (1e-9) fires as soon as two
        # float32 losses round to the same value, i.e. for any true change below about
        # u |loss| (u = 6e-8), and the rounding depends on the BLAS kernel (NumPy's OpenBLAS
        # picks one per CPU; PyTorch has its own). Measured: 9 iterations against PyTorch's 10
        # with OPENBLAS_CORETYPE=Haswell or Zen, equal with SkylakeX and Prescott, the same
        # parameters (checked above) every time. So the counts are compared in float64 only.
        return
    st, tst = ours.state[ps[0]], theirs.state[qs[0]]
    assert st["func_evals"] == tst["func_evals"] and st["n_iter"] == tst["n_iter"]
    assert len(st["old_dirs"]) == len(tst["old_dirs"])


def test_lbfgs_minimises_rosenbrock_like_torch():
    """The classic: Rosenbrock from (-1.5, 2) with strong Wolfe reaches (1, 1) as PyTorch."""
    start = np.array([-1.5, 2.0])
    p, q = Parameter(start.copy(), dtype=np.float64), torch.nn.Parameter(torch.tensor(start))
    ours = optim.LBFGS([p], line_search_fn="strong_wolfe", max_iter=100)
    theirs = torch.optim.LBFGS([q], line_search_fn="strong_wolfe", max_iter=100)

    def rosen(v):
        return (1 - v[0]) ** 2 + 100 * (v[1] - v[0] ** 2) ** 2

    def c_ours():
        ours.zero_grad()
        loss = rosen(p)
        loss.backward()
        return loss

    def c_theirs():
        theirs.zero_grad()
        loss = rosen(q)
        loss.backward()
        return loss

    ours.step(c_ours)
    theirs.step(c_theirs)
    np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(p.numpy(), [1.0, 1.0], atol=1e-5)
    assert ours.state[p]["func_evals"] == theirs.state[q]["func_evals"]


def test_lbfgs_state_dict_round_trip_and_errors():
    ps, qs, ours_closure, theirs_closure = _closures(np.float64, seed=4)
    ours = optim.LBFGS(ps, max_iter=3)
    theirs = torch.optim.LBFGS(qs, max_iter=3)
    ours.step(ours_closure(ours))
    theirs.step(theirs_closure(theirs))
    sd = ours.state_dict()
    assert set(sd["state"][0]) == set(theirs.state_dict()["state"][0])
    assert isinstance(sd["state"][0]["d"], descent.Tensor)
    ps2 = [Parameter(p.numpy().copy(), dtype=np.float64) for p in ps]
    fresh = optim.LBFGS(ps2, max_iter=1)
    fresh.load_state_dict(sd)
    assert fresh.param_groups[0]["max_iter"] == 3
    fresh.step(_rebind(fresh, ps2))
    theirs.step(theirs_closure(theirs))
    for p, q in zip(ps2, qs, strict=True):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-10, atol=1e-12)
    # and a torch state_dict loads too
    ps3 = [Parameter(q.detach().numpy().copy(), dtype=np.float64) for q in qs]
    third = optim.LBFGS(ps3, max_iter=3)
    third.load_state_dict(theirs.state_dict())
    assert third.state[ps3[0]]["n_iter"] == theirs.state[qs[0]]["n_iter"]
    with pytest.raises(ValueError, match="groups"):
        optim.LBFGS([{"params": [ps[0]]}, {"params": [ps[1]]}])
    with pytest.raises(RuntimeError, match="closure"):
        optim.LBFGS(ps).step(None)


def _rebind(opt, params):
    """The regression closure over new parameter objects."""
    import descent.nn.functional as F

    x, y, _, _ = _regression_problem(np.float64, 4)
    w, b = params
    xd, yd = descent.tensor(x, dtype=np.float64), descent.tensor(y, dtype=np.float64)

    def closure():
        opt.zero_grad()
        z = (xd @ w + b).reshape(-1)
        loss = F.binary_cross_entropy_with_logits(z, yd) + 0.01 * (w * w).sum()
        loss.backward()
        return loss

    return closure


# -- learning-rate schedulers --------------------------------------------------------------------
LRS = (0.1, 0.05)  # two parameter groups with different lrs
SCHED_STEPS = 200


def _opt_pair(opt_name="SGD", **kwargs):
    ours = getattr(optim, opt_name)(
        [{"params": [Parameter(np.zeros(2))], "lr": lr} for lr in LRS], **kwargs
    )
    theirs = getattr(torch.optim, opt_name)(
        [{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": lr} for lr in LRS], **kwargs
    )
    return ours, theirs


def _lr_close(a, b):
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=1e-12, atol=1e-15)


def _run_schedules(ours_opt, theirs_opt, ours, theirs, steps=SCHED_STEPS, extra=()):
    for t in range(steps + 1):
        _lr_close(ours.get_last_lr(), theirs.get_last_lr())
        _lr_close(
            [g["lr"] for g in ours_opt.param_groups], [g["lr"] for g in theirs_opt.param_groups]
        )
        for key in extra:  # momentum, or beta1
            a = [g[key] if key != "betas" else g[key][0] for g in ours_opt.param_groups]
            b = [g[key] if key != "betas" else g[key][0] for g in theirs_opt.param_groups]
            _lr_close(a, b)
        assert ours.last_epoch == theirs.last_epoch == t
        if t == steps:
            break
        ours_opt.step()
        theirs_opt.step()
        ours.step()
        theirs.step()


SCHEDULES = [
    ("ConstantLR", dict()),
    ("ConstantLR", dict(factor=0.5, total_iters=17)),
    ("ConstantLR", dict(factor=0.25, total_iters=3)),
    ("PolynomialLR", dict()),
    ("PolynomialLR", dict(total_iters=150, power=2.0)),
    ("PolynomialLR", dict(total_iters=77, power=0.5)),
    ("CosineAnnealingWarmRestarts", dict(T_0=10)),
    ("CosineAnnealingWarmRestarts", dict(T_0=7, T_mult=2, eta_min=1e-3)),
    ("CosineAnnealingWarmRestarts", dict(T_0=3, T_mult=3)),
    ("MultiStepLR", dict(milestones=[5, 30, 30, 120], gamma=0.5)),
]


@pytest.mark.parametrize(("name", "kwargs"), SCHEDULES, ids=[f"{n}-{k}" for n, k in SCHEDULES])
def test_schedule_matches_torch(name, kwargs):
    ours_opt, theirs_opt = _opt_pair()
    ours = getattr(optim.lr_scheduler, name)(ours_opt, **kwargs)
    theirs = getattr(torch.optim.lr_scheduler, name)(theirs_opt, **kwargs)
    _run_schedules(ours_opt, theirs_opt, ours, theirs)


CYCLIC = [
    ("SGD", dict(momentum=0.9), dict(base_lr=0.01, max_lr=0.1, step_size_up=10)),
    (
        "SGD",
        dict(momentum=0.9),
        dict(
            base_lr=[0.01, 0.02], max_lr=0.1, step_size_up=7, step_size_down=13, mode="triangular2"
        ),
    ),
    (
        "SGD",
        dict(momentum=0.5),
        dict(
            base_lr=0.001,
            max_lr=[0.1, 0.05],
            step_size_up=5,
            mode="exp_range",
            gamma=0.99,
            base_momentum=0.4,
            max_momentum=0.6,
        ),
    ),
    ("Adam", dict(), dict(base_lr=0.001, max_lr=0.01, step_size_up=8)),  # cycles beta1
    ("SGD", dict(), dict(base_lr=0.01, max_lr=0.1, step_size_up=6, cycle_momentum=False)),
    (
        "SGD",
        dict(momentum=0.9),
        dict(
            base_lr=0.01,
            max_lr=0.1,
            step_size_up=9,
            scale_fn=lambda x: 0.97**x,
            scale_mode="iterations",
        ),
    ),
    (
        "SGD",
        dict(momentum=0.9),
        dict(
            base_lr=0.01, max_lr=0.1, step_size_up=4, scale_fn=lambda x: 1.0 / x, scale_mode="cycle"
        ),
    ),
]


@pytest.mark.parametrize(("opt", "opt_kw", "kwargs"), CYCLIC, ids=[str(i) for i in range(7)])
def test_cyclic_lr_matches_torch(opt, opt_kw, kwargs):
    ours_opt, theirs_opt = _opt_pair(opt, **opt_kw)
    ours = optim.lr_scheduler.CyclicLR(ours_opt, **kwargs)
    theirs = torch.optim.lr_scheduler.CyclicLR(theirs_opt, **kwargs)
    extra = (
        ()
        if not kwargs.get("cycle_momentum", True)
        else (("betas",) if opt == "Adam" else ("momentum",))
    )
    _run_schedules(ours_opt, theirs_opt, ours, theirs, extra=extra)


def test_cyclic_lr_errors_and_resume():
    ours_opt, theirs_opt = _opt_pair("Adagrad")
    with pytest.raises(ValueError, match="cycle_momentum"):
        optim.lr_scheduler.CyclicLR(ours_opt, 0.01, 0.1)
    with pytest.raises(ValueError, match="mode"):
        optim.lr_scheduler.CyclicLR(ours_opt, 0.01, 0.1, mode="zigzag", cycle_momentum=False)
    # resume from a state_dict halfway: the same lrs as an uninterrupted run
    ours_opt, theirs_opt = _opt_pair("SGD", momentum=0.9)
    kw = dict(base_lr=0.01, max_lr=0.1, step_size_up=5, mode="triangular2")
    ours = optim.lr_scheduler.CyclicLR(ours_opt, **kw)
    theirs = torch.optim.lr_scheduler.CyclicLR(theirs_opt, **kw)
    for _ in range(23):
        ours.step()
        theirs.step()
    sd = json.loads(json.dumps(ours.state_dict()))
    opt_sd = ours_opt.state_dict()
    fresh_opt, _ = _opt_pair("SGD", momentum=0.9)
    fresh_opt.load_state_dict(opt_sd)
    fresh = optim.lr_scheduler.CyclicLR(fresh_opt, **kw, last_epoch=22)
    fresh.load_state_dict(sd)
    for _ in range(30):
        fresh.step()
        theirs.step()
        _lr_close(fresh.get_last_lr(), theirs.get_last_lr())
        _lr_close(
            [g["momentum"] for g in fresh_opt.param_groups],
            [g["momentum"] for g in theirs_opt.param_groups],
        )


def test_cosine_warm_restarts_fractional_epochs():
    """step(epoch) with epoch + batch / batches, as in PyTorch's docstring example."""
    ours_opt, theirs_opt = _opt_pair()
    ours = optim.lr_scheduler.CosineAnnealingWarmRestarts(ours_opt, T_0=3, T_mult=2, eta_min=1e-4)
    theirs = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        theirs_opt, T_0=3, T_mult=2, eta_min=1e-4
    )
    for epoch in range(12):
        for batch in range(4):
            e = epoch + batch / 4
            ours.step(e)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs.step(e)
            _lr_close(ours.get_last_lr(), theirs.get_last_lr())
            assert (ours.T_i, ours.last_epoch) == (theirs.T_i, theirs.last_epoch)
            np.testing.assert_allclose(ours.T_cur, theirs.T_cur, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="T_0"):
        optim.lr_scheduler.CosineAnnealingWarmRestarts(ours_opt, T_0=0)
    with pytest.raises(ValueError, match="T_mult"):
        optim.lr_scheduler.CosineAnnealingWarmRestarts(ours_opt, T_0=2, T_mult=0)


def _metrics(seed, n=150):
    """A validation curve with improvements, plateaus and noise (and exact repeats)."""
    rng = np.random.default_rng(seed)
    vals, v = [], 1.0
    for i in range(n):
        if i % 25 < 8:
            v *= 0.9
        vals.append(v + (0.0 if i % 7 == 0 else 1e-5 * rng.standard_normal()))
    return vals


PLATEAU = [
    dict(),
    dict(patience=2),
    dict(mode="max", patience=3, factor=0.5),
    dict(threshold_mode="abs", threshold=1e-3, patience=1, cooldown=2),
    dict(patience=0, cooldown=3, min_lr=0.004, factor=0.3),
    dict(patience=1, min_lr=[0.01, 0.001], factor=0.5),
    dict(patience=1, factor=0.999999, eps=1e-6),  # changes below eps are skipped
    dict(mode="max", threshold_mode="abs", threshold=0.0, patience=4),
]


@pytest.mark.parametrize("kwargs", PLATEAU, ids=[str(k) for k in PLATEAU])
def test_reduce_lr_on_plateau_matches_torch(kwargs):
    ours_opt, theirs_opt = _opt_pair()
    ours = optim.lr_scheduler.ReduceLROnPlateau(ours_opt, **kwargs)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs_opt, **kwargs)
    values = _metrics(0)
    if kwargs.get("mode") == "max":
        values = [-v for v in values]
    for i, v in enumerate(values):
        metric = descent.tensor(v, dtype=np.float64) if i % 2 else v  # a Tensor works too
        ours.step(metric)
        theirs.step(v)
        _lr_close(ours.get_last_lr(), theirs.get_last_lr())
        _lr_close(
            [g["lr"] for g in ours_opt.param_groups], [g["lr"] for g in theirs_opt.param_groups]
        )
        assert (ours.num_bad_epochs, ours.cooldown_counter, ours.last_epoch) == (
            theirs.num_bad_epochs,
            theirs.cooldown_counter,
            theirs.last_epoch,
        )
        assert ours.best == theirs.best
    assert min(ours.get_last_lr()) < max(LRS) or kwargs.get("factor", 0) > 0.99


def test_reduce_lr_on_plateau_state_dict_and_errors():
    ours_opt, theirs_opt = _opt_pair()
    ours = optim.lr_scheduler.ReduceLROnPlateau(ours_opt, patience=2, cooldown=1)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs_opt, patience=2, cooldown=1)
    values = _metrics(1)
    for v in values[:60]:
        ours.step(v)
        theirs.step(v)
    sd = json.loads(json.dumps(ours.state_dict()))
    fresh_opt, _ = _opt_pair()
    fresh_opt.load_state_dict(ours_opt.state_dict())
    fresh = optim.lr_scheduler.ReduceLROnPlateau(fresh_opt)
    fresh.load_state_dict(sd)
    for v in values[60:]:
        fresh.step(v)
        theirs.step(v)
        _lr_close(fresh.get_last_lr(), theirs.get_last_lr())
    assert isinstance(fresh, optim.lr_scheduler.LRScheduler)
    with pytest.raises(ValueError, match="factor"):
        optim.lr_scheduler.ReduceLROnPlateau(ours_opt, factor=1.0)
    with pytest.raises(ValueError, match="mode"):
        optim.lr_scheduler.ReduceLROnPlateau(ours_opt, mode="best")
    with pytest.raises(ValueError, match="threshold_mode"):
        optim.lr_scheduler.ReduceLROnPlateau(ours_opt, threshold_mode="pct")
    with pytest.raises(ValueError, match="min_lr"):
        optim.lr_scheduler.ReduceLROnPlateau(ours_opt, min_lr=[0.1])


def test_constant_and_polynomial_errors():
    ours_opt, _ = _opt_pair()
    with pytest.raises(ValueError, match="factor"):
        optim.lr_scheduler.ConstantLR(ours_opt, factor=1.5)
    with pytest.raises(ValueError, match="total_iters"):
        optim.lr_scheduler.PolynomialLR(ours_opt, total_iters=0)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta",
                                  "Adamax", "NAdam", "RAdam", "Rprop", "ASGD", "LBFGS",
                                  "Adafactor"])  # fmt: skip
def test_default_param_groups_are_torchs(name):
    """The same keys and the same values (ints where PyTorch's are ints): printing an optimizer
    and its state_dict's param_groups match PyTorch's."""
    t = getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)])
    d = getattr(descent.optim, name)([descent.zeros(2, requires_grad=True)])
    tg = {k: v for k, v in t.param_groups[0].items() if k != "params"}
    dg = {k: v for k, v in d.param_groups[0].items() if k != "params"}
    assert {k: repr(v) for k, v in dg.items()} == {k: repr(v) for k, v in tg.items()}
    assert repr(d) == repr(t)
