"""Run PyTorch's own optimizer database (OptimizerInfo) against descent.

``torch.testing._internal.common_optimizers.optim_db`` lists, for each of PyTorch's
optimizers, the hyperparameter sets its test suite trains with and the invalid inputs that must
raise. This module:

- trains the same least-squares model (weight (10, 5), bias (10,)) for ``STEPS`` steps with
  each hyperparameter set in PyTorch and in descent, from the same start, and compares the
  parameters after every step, the loss the closure returned, and the state dict's layout
  (per-parameter state keys and the param group keys); an optimizer of sparse gradients only
  (SparseAdam) trains the weight alone, read as an embedding table through
  F.embedding(sparse=True) (`SPARSE_ROWS`), so its gradient is sparse COO;
- gives each invalid input to descent's optimizer and checks that it raises PyTorch's error type
  (or warns, where PyTorch warns) at the same point: construction or ``step()``.

``check_optimizer(info)`` returns a list of findings (empty when descent agrees);
``python tests/optiminfo_harness.py [--optim Adam] [-v]`` prints a summary.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch
from torch.testing._internal.common_optimizers import OptimizerErrorEnum, optim_db

import descent
from harness_report import report
from harness_report import short as _short

STEPS = 6
# float32 over 6 steps (LBFGS: up to 20 evaluations and a line search per step); ATOL is
# scaled by the largest parameter magnitude
RTOL, ATOL = 1e-4, 1e-5


def resolve(info):
    return getattr(descent.optim, info.optim_cls.__name__, None)


def _convert(obj, memo=None):
    """A hyperparameter or params argument for descent (tensors and Parameters rebuilt).

    The same torch tensor met twice becomes the same descent tensor (`memo`, by identity):
    the database's "duplicate parameter" inputs pass one Parameter twice."""
    memo = {} if memo is None else memo
    if isinstance(obj, torch.Tensor):
        if id(obj) not in memo:
            if obj.is_sparse:  # SparseAdam's "dense params required" inputs
                t = descent.sparse_coo_tensor(
                    descent.tensor(obj._indices().numpy().copy()),
                    descent.tensor(obj._values().detach().numpy().copy()), tuple(obj.shape))
            else:
                t = descent.tensor(obj.detach().numpy().copy())
            if isinstance(obj, torch.nn.Parameter):
                t = descent.nn.Parameter(t)
            memo[id(obj)] = (obj, t)  # obj kept alive: its id stays unique while memo lives
        return memo[id(obj)][1]
    if isinstance(obj, dict):
        return {k: _convert(v, memo) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(_convert(o, memo) for o in obj)
    if isinstance(obj, list):
        return [_convert(o, memo) for o in obj]
    return obj


def _float64_only(name, kwargs):
    """Configurations compared in float64: every LBFGS one. Each step runs up to 20 inner
    iterations of the two-loop recursion (and the strong-Wolfe line search ends where the loss
    changes in its last float32 bits), so one ulp of float32 summation order in the dot products
    (PyTorch's vectorised sums against OpenBLAS's `sdot`, whose order depends on the CPU's
    kernel) grows into visible differences, not an algorithm difference. Measured 2026-12-05 on
    an AMD EPYC (AVX-512) host, max parameter difference over 6 steps, float32 / float64:
    default 1.2e-5 / 1.6e-12, lr 2.1e-5 / 6.2e-14, tensor lr 4.2e-5 / 4.4e-14 (float32 failed
    the 1e-5 tolerance here, passed on an Intel host), strong_wolfe 8.9e-5 / 3.0e-13."""
    del kwargs
    return name == "LBFGS"


# the rows the embedding-style problem looks up (sparse-gradient optimizers: SparseAdam):
# repeated rows (3 three times, 1 twice) and rows never looked up (4, 6, 8)
SPARSE_ROWS = [3, 1, 3, 7, 0, 9, 1, 3, 5, 2]


def _problem(lib, dtype=np.float32, sparse=False):
    """The least-squares model; with `sparse`, w is an embedding table (10 rows of 5) read
    through F.embedding(sparse=True), so its gradient is sparse COO."""
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((10, 5)).astype(dtype)
    b0 = rng.standard_normal(10).astype(dtype)
    x = rng.standard_normal((5, 8)).astype(dtype)
    y = rng.standard_normal((10, 8)).astype(dtype)
    if lib is torch:
        w, b = torch.nn.Parameter(torch.tensor(w0)), torch.nn.Parameter(torch.tensor(b0))
    else:
        w, b = descent.nn.Parameter(descent.tensor(w0)), descent.nn.Parameter(descent.tensor(b0))
    X, Y = lib.tensor(x), lib.tensor(y)
    rows = lib.tensor(SPARSE_ROWS)

    def loss_fn():
        if sparse:
            return ((lib.nn.functional.embedding(rows, w, sparse=True) @ X + b[:, None] - Y)
                    ** 2).mean()
        return ((w @ X + b[:, None] - Y) ** 2).mean()
    return w, b, loss_fn


def _train(lib, cls, kwargs, two_d_only, dtype=np.float32, sparse=False):
    w, b, loss_fn = _problem(lib, dtype, sparse)
    params = [w] if two_d_only or sparse else [w, b]
    opt = cls(params, **kwargs)
    trace = []
    for _ in range(STEPS):
        def closure():
            opt.zero_grad()
            loss = loss_fn()
            loss.backward()
            return loss
        loss = opt.step(closure)
        trace.append((float(loss), [p.detach().numpy().copy() for p in params]))
    return opt, trace


def check_config(info, dcls, oinput):
    if oinput.params is not None:
        return None  # the database's own parameter layouts: covered by the default problem
    kwargs = dict(oinput.kwargs)
    if kwargs.get("fused") or kwargs.get("capturable") or kwargs.get("differentiable"):
        return None  # CUDA-only or autograd-through-the-step modes
    two_d = info.optim_cls.__name__ == "Muon"
    sparse = info.only_supports_sparse_grads
    dtype = np.float64 if _float64_only(info.optim_cls.__name__, kwargs) else np.float32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            topt, ttrace = _train(torch, info.optim_cls, kwargs, two_d, dtype, sparse)
        except Exception:  # noqa: BLE001 - a configuration torch refuses here
            return None
        try:
            dopt, dtrace = _train(descent, dcls, _convert(kwargs), two_d, dtype, sparse)
        except Exception as e:  # noqa: BLE001
            return [f"descent raises {_short(e)}"]
    bad = []
    for step, ((tl, tp), (dl, dp)) in enumerate(zip(ttrace, dtrace)):
        if not np.isclose(dl, tl, rtol=RTOL, atol=ATOL, equal_nan=True):
            bad.append(f"step {step}: loss torch {tl!r}, descent {dl!r}")
            break
        for i, (a, d) in enumerate(zip(tp, dp)):
            atol = ATOL * max(1.0, float(np.abs(a).max()) if a.size else 1.0)
            if a.shape != d.shape or not np.allclose(d, a, rtol=RTOL, atol=atol, equal_nan=True):
                err = np.max(np.abs(d - a)) if a.shape == d.shape else "shape"
                bad.append(f"step {step}: parameter {i} differs (max abs {err})")
                break
        if bad:
            break
    tsd, dsd = topt.state_dict(), dopt.state_dict()
    tkeys = [sorted(v) for _, v in sorted(tsd["state"].items())]
    dkeys = [sorted(v) for _, v in sorted(dsd["state"].items())]
    if tkeys != dkeys:
        bad.append(f"state_dict per-parameter keys: torch {tkeys}, descent {dkeys}")
    tg = sorted(tsd["param_groups"][0])
    dg = sorted(dsd["param_groups"][0])
    if tg != dg:
        bad.append(f"param_groups keys: torch only {sorted(set(tg) - set(dg))}, "
                   f"descent only {sorted(set(dg) - set(tg))}")
    return bad


def check_error(info, dcls, err):
    ein = err.optimizer_error_input
    kwargs = dict(ein.kwargs)
    if kwargs.get("fused") or kwargs.get("capturable") or kwargs.get("differentiable"):
        return None
    if ein.params is None:
        params = [descent.nn.Parameter(descent.tensor(np.ones((2, 2), np.float32)))]
    else:
        params = _convert(ein.params)
    want = err.error_type
    is_warning = issubclass(want, Warning)
    try:
        dkwargs = _convert(kwargs)
    except Exception:  # noqa: BLE001
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            opt = dcls(params, **dkwargs)
            if err.error_on == OptimizerErrorEnum.STEP_ERROR:
                for p in opt.param_groups[0]["params"]:
                    p.grad = descent.ones_like(p)
                opt.step()
        except Exception as e:  # noqa: BLE001
            if is_warning:
                return [f"descent raises {_short(e)} where torch warns {want.__name__}"]
            if not isinstance(e, want):
                return [f"descent raises {type(e).__name__} where torch raises {want.__name__} "
                        f"({err.error_regex[:80]}); descent's: {_short(e)}"]
            return []
    if is_warning:
        if not any(issubclass(w.category, want) for w in caught):
            return [f"descent does not warn ({want.__name__}: {err.error_regex[:80]})"]
        return []
    where = "at construction" if err.error_on == OptimizerErrorEnum.CONSTRUCTION_ERROR \
        else "at step()"
    return [f"descent accepts what torch refuses {where}: {want.__name__} "
            f"{err.error_regex[:100]} (kwargs {kwargs!r}"[:240] + ")"]


def check_optimizer(info, errors=True):
    """Findings for ``info`` (an OptimizerInfo), or None if nothing could run."""
    dcls = resolve(info)
    if dcls is None:
        return None
    found, ran = [], 0
    for k, oi in enumerate(info.optim_inputs_func(device="cpu", dtype=torch.float32)):
        res = check_config(info, dcls, oi)
        if res is None:
            continue
        ran += 1
        found += [f"config {k} ({oi.desc}, {oi.kwargs}): {m}" for m in res]
    if errors and info.optim_error_inputs_func is not None:
        for k, err in enumerate(info.optim_error_inputs_func(device="cpu",
                                                             dtype=torch.float32)):
            res = check_error(info, dcls, err)
            if res is None:
                continue
            ran += 1
            found += [f"error input {k}: {m}" for m in res]
    return found if ran else None


def optimizers():
    return list(optim_db)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--optim", action="append")
    p.add_argument("-v", action="store_true")
    a = p.parse_args(argv)

    def cases():
        for info in optimizers():
            name = info.optim_cls.__name__
            if not a.optim or name in a.optim:
                yield name, (lambda info=info: check_optimizer(info))

    report(cases(), "optimizers", a.v)

if __name__ == "__main__":
    main()
