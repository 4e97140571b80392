"""Run PyTorch's custom-operator database (custom_op_db) against descent.library.

``torch.testing._internal.custom_op_db`` defines its operators with ``torch.library.custom_op``
(NumPy bodies, ``register_fake``, ``register_autograd`` with 3- and 4-argument
``setup_context``, ``register_vmap``, list inputs and outputs, an int output, backward formulas
that call other custom ops, some through ``torch.ops._torch_testing.<name>``) and lists 11 of
them as OpInfo entries with sample inputs.

descent defines THE SAME operators: each of the module's ``CustomOpDef``s is redefined with
``descent.library.custom_op`` under the same name from the same function code, its globals
pointing at descent (``torch`` -> descent, ``Tensor`` -> descent.Tensor, ``numpy_mul`` -> the
descent twin); the schema is PyTorch's (the annotations name torch's types). Then, per entry:

* ``forward``: outputs (dtype, shape, values) and which outputs require grad, float32 samples;
* ``forward_int``: the same on int64 samples (the database's dtypes include integers);
* ``backward``: gradients of ``sum(out_i * w_i)`` with respect to the float32 inputs;
* ``gradgrad``: double backward in float64 (the backward formulas call custom ops with their
  own autograd);
* ``opcheck``: ``descent.library.opcheck`` on the float64 samples (schema, autograd
  registration, the fake implementation, gradients against finite differences).

``python tests/custom_op_db_harness.py -v [--case NAME]`` prints the findings;
tests/test_custom_op_db.py has one pytest case per (entry, check).
"""

from __future__ import annotations

import argparse
import types

import torch
from torch._library.custom_ops import CustomOpDef as TorchCustomOpDef
from torch.testing._internal import custom_op_db as db

import descent
from harness_report import report, short
from opinfo_harness import TOL, Unsupported, _flat, _np, compare, to_descent

CHECKS = ("forward", "forward_int", "backward", "gradgrad", "opcheck")
F32, F64 = TOL[torch.float32], TOL[torch.float64]

# ---------------------------------------------------------------------------------------------
# The same operators on descent

_TWINS: dict[str, descent.library.CustomOpDef] | None = None


def _port(fn, g):
    if fn is None:
        return None
    if isinstance(fn, types.FunctionType) and fn.__module__ == db.__name__:
        new = types.FunctionType(fn.__code__, g, fn.__name__, fn.__defaults__, fn.__closure__)
        new.__kwdefaults__ = fn.__kwdefaults__
        return new
    return fn


def twins() -> dict[str, descent.library.CustomOpDef]:
    """{"namespace::name": descent's twin} for every custom op of the database module."""
    global _TWINS
    if _TWINS is not None:
        return _TWINS
    g = dict(vars(db))
    g.update(torch=descent, Tensor=descent.Tensor)
    out = {}
    for var, op in vars(db).items():
        if not isinstance(op, TorchCustomOpDef):
            continue
        qual = f"{op._namespace}::{op._name}"
        schema = str(op._opoverload._schema).split("(", 1)[1]
        twin = descent.library.custom_op(qual, _port(op._init_fn, g), mutates_args=(),
                                         schema="(" + schema)  # fmt: skip
        if op._abstract_fn is not None:
            twin.register_fake(_port(op._abstract_fn, g))
        if op._backward_fn is not None:
            twin.register_autograd(_port(op._backward_fn, g),
                                   setup_context=_port(op._setup_context_fn, g))  # fmt: skip
        if op._vmap_fn is not None:
            twin.register_vmap(_port(op._vmap_fn, g))
        g[var] = twin
        out[qual] = twin
    _TWINS = out
    return out


def _qualname(torch_op) -> str:
    """'_torch_testing::numpy_cube' from an OpOverload or OpOverloadPacket."""
    name = torch_op.name() if callable(getattr(torch_op, "name", None)) else str(torch_op)
    name = name.replace(".default", "")
    return name if "::" in name else name.replace(".", "::", 1)


def entries():
    return list(db.custom_op_db)


def _entry(name):
    return next(e for e in entries() if e.name == name)


def case_names() -> list[tuple[str, str]]:
    out = []
    for e in entries():
        for check in CHECKS:
            if check in ("backward", "gradgrad", "opcheck") and not e.supports_autograd:
                continue
            out.append((e.name, check))
    return out


# ---------------------------------------------------------------------------------------------
# The checks


def _samples(entry, dtype, requires_grad):
    torch.manual_seed(0)
    return list(entry.sample_inputs("cpu", dtype, requires_grad=requires_grad))


def _translate(sample):
    leaves = []
    args = to_descent((sample.input, *sample.args), leaves)
    kwargs = to_descent(dict(sample.kwargs), leaves)
    return leaves, args, kwargs


def _call(entry, twin, sample, dargs, dkw):
    tout = entry.op(sample.input, *sample.args, **sample.kwargs)
    dout = twin(*dargs, **dkw)
    if entry.gradcheck_wrapper is not None and entry.name.endswith("WithIntCustomOp"):
        tout, dout = tout[0], dout[0]
    return tout, dout


def _forward(entry, dtype):
    twin = twins()[_qualname(entry.op)]
    bad, ran = [], 0
    for k, s in enumerate(_samples(entry, dtype, requires_grad=dtype.is_floating_point)):
        try:
            _, dargs, dkw = _translate(s)
        except Unsupported:
            continue
        ran += 1
        tout, dout = _call(entry, twin, s, dargs, dkw)
        bad += [f"sample {k}: {m}" for m in compare(tout, dout, F32)]
        for i, (a, b) in enumerate(zip(_flat(tout), _flat(dout), strict=False)):
            if isinstance(a, torch.Tensor) and isinstance(b, descent.Tensor) and (
                    a.requires_grad != b.requires_grad):  # fmt: skip
                bad.append(f"sample {k} output {i}: requires_grad torch {a.requires_grad}, "
                           f"descent {b.requires_grad}")  # fmt: skip
    return bad if ran else None


def _grads(entry, dtype, second_order):
    twin = twins()[_qualname(entry.op)]
    bad, ran = [], 0
    tol = F64 if dtype == torch.float64 else F32
    for k, s in enumerate(_samples(entry, dtype, requires_grad=True)):
        try:
            leaves, dargs, dkw = _translate(s)
        except Unsupported:
            continue
        tins = [t for t, _ in leaves]
        dins = [d for _, d in leaves]
        tout, dout = _call(entry, twin, s, dargs, dkw)
        touts = [o for o in _flat(tout) if isinstance(o, torch.Tensor) and o.requires_grad]
        douts = [o for o in _flat(dout) if isinstance(o, descent.Tensor) and o.requires_grad]
        if not touts:
            continue
        ran += 1
        gen = torch.Generator().manual_seed(k)
        tw = [torch.randn(o.shape, generator=gen, dtype=o.dtype, requires_grad=second_order)
              for o in touts]  # fmt: skip
        dw = [descent.tensor(_np(w), requires_grad=second_order) for w in tw]
        tl = sum((o * w).sum() for o, w in zip(touts, tw, strict=True))
        dl = sum((o * w).sum() for o, w in zip(douts, dw, strict=True))
        tg = torch.autograd.grad(tl, tins, allow_unused=True, create_graph=second_order)
        dg = descent.autograd.grad(dl, dins, allow_unused=True, create_graph=second_order)
        if second_order:
            tv = [torch.randn(t.shape, generator=gen, dtype=t.dtype) for t in tins]
            dv = [descent.tensor(_np(v)) for v in tv]
            tpairs = [(g, v) for g, v in zip(tg, tv, strict=True) if g is not None]
            dpairs = [(g, v) for g, v in zip(dg, dv, strict=True) if g is not None]
            if not tpairs:
                continue
            # the second derivative with respect to the inputs and the output weights (the
            # backward of a linear op depends on the weights only), as OpInfo's gradgrad does
            t2 = sum((g * v).sum() for g, v in tpairs)
            d2 = sum((g * v).sum() for g, v in dpairs)
            tins, dins = tins + tw, dins + dw
            tg = torch.autograd.grad(t2, tins, allow_unused=True)
            dg = descent.autograd.grad(d2, dins, allow_unused=True)
        for i, (a, b) in enumerate(zip(tg, dg, strict=True)):
            if a is None and b is None:
                continue
            a = torch.zeros_like(tins[i]) if a is None else a
            b = descent.zeros_like(dins[i]) if b is None else b
            bad += [f"sample {k} input {i}: {m}" for m in compare(a, b, tol)]
    return bad if ran else None


def _opcheck(entry):
    twin = twins()[_qualname(entry.op)]
    bad, ran = [], 0
    for k, s in enumerate(_samples(entry, torch.float64, requires_grad=True)):
        try:
            _, dargs, dkw = _translate(s)
        except Unsupported:
            continue
        ran += 1
        res = descent.library.opcheck(twin, tuple(dargs), dict(dkw), raise_exception=False)
        bad += [f"sample {k}: {test}: {msg[:200]}" for test, msg in res.items()
                if msg != "SUCCESS" and not msg.startswith("SKIPPED")]  # fmt: skip
    return bad if ran else None


def check(name: str, which: str):
    """Findings (a list; empty: agrees) or None (nothing ran) for one (entry, check)."""
    entry = _entry(name)
    if which == "forward":
        return _forward(entry, torch.float32)
    if which == "forward_int":
        return _forward(entry, torch.int64)
    if which == "backward":
        return _grads(entry, torch.float32, second_order=False)
    if which == "gradgrad":
        return _grads(entry, torch.float64, second_order=True)
    if which == "opcheck":
        return _opcheck(entry)
    raise ValueError(which)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--case", help="one entry name")
    a = p.parse_args()
    cases = [(f"{n}-{c}", lambda n=n, c=c: check(n, c)) for n, c in case_names()
             if a.case in (None, n)]  # fmt: skip
    report(cases, "custom_op_db", a.verbose)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        raise SystemExit(short(e)) from e
