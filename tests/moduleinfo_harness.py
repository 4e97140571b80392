"""Run PyTorch's own module database (ModuleInfo) against descent.

``torch.testing._internal.common_modules.module_db`` describes PyTorch's nn modules for its own
test suite: for each class, the constructor arguments and forward inputs worth testing. This
module builds each module in PyTorch and in descent from the same arguments, copies PyTorch's
parameters and buffers into descent's through ``load_state_dict`` (so the state dict keys and
shapes must agree), runs both forwards in training and in eval mode, and compares the outputs,
the gradients of a random linear function of them with respect to the inputs and every
parameter, and the buffers afterwards (BatchNorm's running statistics).

``check_module(info, training)`` returns a list of findings, empty when descent agrees;
``python tests/moduleinfo_harness.py [--module nn.Linear] [-v]`` prints a summary.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch
from torch.testing._internal.common_modules import module_db

import descent
from harness_report import report
from opinfo_harness import TOL, Unsupported, _flat, _np, _short, compare, to_descent

# Modules whose output is random: only dtypes and shapes are compared.
RANDOM = {"nn.FractionalMaxPool2d", "nn.FractionalMaxPool3d", "nn.Dropout", "nn.Dropout1d",
          "nn.Dropout2d", "nn.Dropout3d", "nn.AlphaDropout", "nn.FeatureAlphaDropout",
          "nn.RReLU"}


def resolve(info):
    obj = descent
    for part in info.name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def descent_inputs(minput):
    """A ModuleInput's constructor and forward arguments as descent values: (constructor args,
    kwargs, forward args, kwargs, leaves: the (torch, descent) pairs of the forward's tensors
    that require grad), or None where one has no descent form."""
    cin, fin = minput.constructor_input, minput.forward_input
    leaves = []
    try:
        return (to_descent(tuple(cin.args), []), to_descent(dict(cin.kwargs), []),
                to_descent(tuple(fin.args), leaves), to_descent(dict(fin.kwargs), leaves),
                leaves)  # fmt: skip
    except Unsupported:
        return None


def check_input(info, dcls, minput, training):
    tol = None if info.name in RANDOM else TOL[torch.float32]
    cin, fin = minput.constructor_input, minput.forward_input
    converted = descent_inputs(minput)
    if converted is None:
        return None
    dcargs, dckwargs, dfargs, dfkwargs, leaves = converted
    lazy = info.module_cls.__name__.startswith("Lazy")
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            tm = info.module_cls(*cin.args, **cin.kwargs)
            tm.train(training)
            if lazy:  # materialise the parameters (their values are copied to descent below)
                with torch.no_grad():
                    tm(*fin.args, **fin.kwargs)
        except Exception:  # noqa: BLE001 - a sample torch itself refuses: not comparable
            return None
        tstate = {k: v.detach().clone() for k, v in tm.state_dict().items()}
        try:
            dm = dcls(*dcargs, **dckwargs)
            dm.train(training)
            if lazy:
                with descent.no_grad():
                    dm(*dfargs, **dfkwargs)
        except Exception as e:  # noqa: BLE001
            return [f"descent's constructor raises {_short(e)}"]
        dkeys = set(dm.state_dict().keys())
        if set(tstate) != dkeys:
            return [f"state_dict keys differ: torch only {sorted(set(tstate) - dkeys)}, "
                    f"descent only {sorted(dkeys - set(tstate))}"]
        try:
            dm.load_state_dict({k: descent.tensor(_np(v).copy()) for k, v in tstate.items()})
        except Exception as e:  # noqa: BLE001
            return [f"descent's load_state_dict of torch's state raises {_short(e)}"]
        try:
            tout = tm(*fin.args, **fin.kwargs)
        except Exception as e:  # noqa: BLE001
            try:
                dm(*dfargs, **dfkwargs)
            except Exception:  # noqa: BLE001
                return []
            return [f"torch's forward raises ({_short(e)}), descent's does not"]
        try:
            dout = dm(*dfargs, **dfkwargs)
        except Exception as e:  # noqa: BLE001
            return [f"descent's forward raises {_short(e)}"]
    bad = compare(tout, dout, tol)
    # Buffers after the forward (running statistics).
    tb = dict(tm.named_buffers())
    db = dict(dm.named_buffers())
    for k, v in tb.items():
        if k in db and tol is not None:
            bad += [f"buffer {k}: {m}" for m in compare(v, db[k], tol)]
    if bad or tol is None:
        return bad
    tf = [o for o in _flat(tout) if isinstance(o, torch.Tensor) and o.requires_grad]
    df = [d for t, d in zip(_flat(tout), _flat(dout)) if isinstance(t, torch.Tensor)
          and t.requires_grad]
    if not tf:
        return bad
    tparams = dict(tm.named_parameters())
    dparams = dict(dm.named_parameters())
    names = [k for k in tparams if tparams[k].requires_grad]
    if set(names) - set(dparams):
        return bad + [f"parameters missing in descent: {sorted(set(names) - set(dparams))}"]
    tins = [t for t, _ in leaves] + [tparams[k] for k in names]
    dins = [d for _, d in leaves] + [dparams[k] for k in names]
    gen = torch.Generator().manual_seed(1)
    ws = [torch.randn(o.shape, generator=gen, dtype=torch.float64).to(o.dtype) for o in tf]
    try:
        tg = torch.autograd.grad(tf, tins, ws, allow_unused=True)
    except Exception:  # noqa: BLE001
        return bad
    if any(not d.requires_grad for d in df):
        return bad + ["an output that requires grad in torch does not in descent"]
    try:
        dws = [descent.tensor(_np(w)).to(d.dtype) for w, d in zip(ws, df)]
        dg = descent.autograd.grad(df, dins, dws, allow_unused=True)
    except Exception as e:  # noqa: BLE001
        return bad + [f"descent backward raises {_short(e)}"]
    labels = [f"input {i}" for i in range(len(leaves))] + [f"parameter {k}" for k in names]
    for lab, a, b, t, d in zip(labels, tg, dg, tins, dins):
        if a is None and b is None:
            continue
        a = torch.zeros_like(t) if a is None else a
        b = descent.zeros_like(d) if b is None else b
        bad += [f"grad of {lab}: {m}" for m in compare(a, b, tol)]
    return bad


def check_module(info, training=True, dtype=torch.float32):
    """Findings for ``info`` (a ModuleInfo), or None if nothing could run."""
    dcls = resolve(info)
    if dcls is None:
        return None
    if dtype not in info.dtypes:
        return None
    torch.manual_seed(0)
    try:
        inputs = info.module_inputs_func(info, device="cpu", dtype=dtype, requires_grad=True,
                                         training=training)
    except Exception:  # noqa: BLE001
        return None
    found, ran = [], 0
    for k, mi in enumerate(inputs):
        res = check_input(info, dcls, mi, training)
        if res is None:
            continue
        ran += 1
        found += [f"input {k} ({mi.desc or 'default'}): {m}" for m in res]
    return found if ran else None


def modules():
    return list(module_db)


def modes(info):
    """Training, and eval too where PyTorch's database says the two differ."""
    return (True, False) if info.train_and_eval_differ else (True,)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--module", action="append")
    p.add_argument("-v", action="store_true")
    a = p.parse_args(argv)

    def cases():
        for info in modules():
            if a.module and info.name not in a.module:
                continue
            for training in modes(info):
                name = f"{info.name} ({'train' if training else 'eval'})"
                yield name, (lambda info=info, training=training: check_module(info, training))

    report(cases(), "modules", a.v)

if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
