"""Run PyTorch's custom-Function database (autograd_function_db) against descent.

``torch.testing._internal.autograd_function_db.autograd_function_db`` holds 14 OpInfo entries,
each a ``torch.autograd.Function`` written PyTorch 2's way: ``forward`` without ctx plus
``setup_context``, ``save_for_backward``/``save_for_forward``, ``mark_dirty``,
``mark_non_differentiable``, ``once_differentiable``, ``jvp`` and ``vmap`` staticmethods,
``generate_vmap_rule``, NumPy inside forward (``.cpu().numpy()`` and ``torch.tensor(...)``),
default arguments in forward.

descent runs THE SAME classes: each Function subclass of that module is rebuilt on
``descent.autograd.Function`` from the same staticmethod code, with the module's ``torch``
global pointing at descent and the other Functions it calls (``NumpyMul`` inside
``NumpyCube.backward``) pointing at their rebuilt twins (``opinfo_harness._retarget`` does the
per-function rebinding, as it does for op_db's Python wrappers).

Checks per entry (``CHECKS``), each against torch on the entry's float32 samples:

* ``forward``: the outputs (dtype, shape, values) and which outputs require grad;
* ``backward``: the gradients of ``sum(out_i * w_i)`` with respect to the inputs;
* ``inplace``: the in-place variant (``mark_dirty``) returns its input object, and its
  gradient;
* ``jvp``: ``func.jvp`` (forward mode; entries with ``supports_forward_ad``);
* ``vmap``: ``func.vmap`` over a batch of two samples (descent's vmap is a loop; the
  Function's ``vmap`` staticmethod and ``generate_vmap_rule`` are torch's business);
* ``vmapvjp``: ``func.vmap`` over ``func.vjp`` (per-sample gradients, functorch's check);
* ``gradgrad``: double backward, the gradient of ``<grad, v>`` with respect to the inputs and
  the output weights (entries with ``supports_fwgrad_bwgrad``).

``python tests/autograd_function_harness.py -v [--case NAME]`` prints the findings;
tests/test_autograd_function_db.py has one pytest case per (entry, check).
"""

from __future__ import annotations

import argparse
import types
import warnings

import torch
from torch.testing._internal import autograd_function_db as db
from torch.testing._internal.opinfo.core import OpInfo

import descent
from harness_report import report, short
from opinfo_harness import TOL, Unsupported, _flat, _np, _retarget, compare, to_descent

F32 = TOL[torch.float32]
CHECKS = ("forward", "backward", "inplace", "jvp", "vmap", "vmapvjp", "gradgrad")

# (entry, check) pairs torch itself refuses: not collected (descent's answer has nothing to
# be compared with).
TORCH_REFUSES = {
    (name, check): "torch: no vmap staticmethod and no generate_vmap_rule (descent's vmap is a "
    "loop and runs it)"
    for name, check in (
        ("NumpyCubeNotComposableAutogradFunction", "vmap"),
        ("NumpyCubeNotComposableAutogradFunction", "vmapvjp"),
    )
}

# ---------------------------------------------------------------------------------------------
# The same Function classes on descent


def _is_once_differentiable(fn) -> bool:
    """fn is torch's `once_differentiable` wrapper (functools.wraps copies the name, not the
    code: the code object still says where it was written)."""
    code = getattr(fn, "__code__", None)
    return code is not None and code.co_qualname.startswith("once_differentiable.")


def _descent_classes():
    """{name: class} for every torch.autograd.Function subclass of the database module,
    rebuilt on descent.autograd.Function; plus the retargeted functions made on the way."""
    classes, made = {}, []

    def port(fn):
        if _is_once_differentiable(fn):
            return descent.autograd.function.once_differentiable(port(fn.__wrapped__))
        new = _retarget(fn)
        made.append(new)
        return new

    for name, cls in vars(db).items():
        if (
            not (isinstance(cls, type) and issubclass(cls, torch.autograd.Function))
            or cls.__module__ != db.__name__
        ):
            continue
        ns = {}
        for k, v in cls.__dict__.items():
            if isinstance(v, staticmethod):
                ns[k] = staticmethod(port(v.__func__))
            elif not (k.startswith("__") or callable(v) or isinstance(v, (property, classmethod))):
                ns[k] = v  # generate_vmap_rule, ScaleGradGenVmap.scale
        classes[name] = type(name, (descent.autograd.Function,), ns)
    # The functions see each other's rebuilt classes (NumpyCube.backward calls NumpyMul.apply).
    for fn in made:
        fn.__globals__.update(classes)
    return classes


_CLASSES = None


def classes():
    global _CLASSES
    if _CLASSES is None:
        _CLASSES = _descent_classes()
    return _CLASSES


def descent_fn(fn):
    """descent's twin of an OpInfo callable: `Cls.apply` or a lambda over the classes."""
    if fn is None:
        return None
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, type) and issubclass(owner, torch.autograd.Function):
        return getattr(classes()[owner.__name__], fn.__name__)
    if isinstance(fn, types.FunctionType):
        new = _retarget(fn)
        new.__globals__.update(classes())
        return new
    raise Unsupported(f"callable {fn!r}")


def entries() -> list[OpInfo]:
    return list(db.autograd_function_db)


def case_names() -> list[tuple[str, str]]:
    """(entry name, check) pairs that apply to the database's entries."""
    out = []
    for op in entries():
        for check in CHECKS:
            if check == "inplace" and op.inplace_variant is None:
                continue
            if check == "jvp" and not op.supports_forward_ad:
                continue
            if check == "gradgrad" and not op.supports_fwgrad_bwgrad:
                continue
            if (op.name, check) in TORCH_REFUSES:
                continue
            out.append((op.name, check))
    return out


# ---------------------------------------------------------------------------------------------
# The checks


def _samples(op):
    torch.manual_seed(0)
    return list(op.sample_inputs("cpu", torch.float32, requires_grad=True))


def _translate(sample):
    leaves = []
    args = to_descent((sample.input, *sample.args), leaves)
    kwargs = to_descent(dict(sample.kwargs), leaves)
    return leaves, args, kwargs


def _floating(outs):
    return [i for i, o in enumerate(outs) if isinstance(o, torch.Tensor)
            and o.requires_grad and o.is_floating_point()]  # fmt: skip


def _weights(tensors, seed):
    gen = torch.Generator().manual_seed(seed)
    ws = [torch.randn(t.shape, generator=gen, dtype=torch.float64).to(t.dtype) for t in tensors]
    return ws, [descent.tensor(_np(w)) for w in ws]


def _cmp_grads(what, tg, dg, tref, dref):
    bad = []
    for i, (a, b) in enumerate(zip(tg, dg)):
        if a is None and b is None:
            continue
        a = torch.zeros_like(tref[i]) if a is None else a
        b = descent.zeros_like(dref[i]) if b is None else b
        bad += [f"{what} {i}: {m}" for m in compare(a, b, F32)]
    return bad


def check_forward(op, sample):
    leaves, dargs, dkw = _translate(sample)
    tout = op.op(sample.input, *sample.args, **sample.kwargs)
    dout = descent_fn(op.op)(*dargs, **dkw)
    bad = compare(tout, dout, F32)
    for i, (a, b) in enumerate(zip(_flat(tout), _flat(dout))):
        if (
            isinstance(a, torch.Tensor)
            and isinstance(b, descent.Tensor)
            and a.requires_grad != b.requires_grad
        ):
            bad.append(
                f"output {i}: requires_grad torch {a.requires_grad}, descent {b.requires_grad}"
            )
    return bad


def _grads(op, sample, fn_t, fn_d, create_graph=False):
    """(torch outs, descent outs, torch grads, descent grads, leaves, weights) of
    sum(out_i * w_i) over the floating outputs that require grad."""
    leaves, dargs, dkw = _translate(sample)
    tout = _flat(fn_t(sample.input, *sample.args, **sample.kwargs))
    dout = _flat(fn_d(*dargs, **dkw))
    idx = _floating(tout)
    tws, dws = _weights([tout[i] for i in idx], 1)
    if create_graph:
        for w in tws + dws:
            w.requires_grad_(True)
    tl, dl = [t for t, _ in leaves], [d for _, d in leaves]
    tg = torch.autograd.grad(
        [tout[i] for i in idx], tl, tws, allow_unused=True, create_graph=create_graph
    )
    dg = descent.autograd.grad(
        [dout[i] for i in idx], dl, dws, allow_unused=True, create_graph=create_graph
    )
    return tg, dg, (tl, dl), (tws, dws)


def check_backward(op, sample):
    tg, dg, (tl, dl), _ = _grads(op, sample, op.op, descent_fn(op.op))
    return _cmp_grads("grad of input", tg, dg, tl, dl)


def check_inplace(op, sample):
    """The mark_dirty variant on a clone of the sample: the result is that clone, and the
    gradient reaches the leaf through it."""
    tfn, dfn = op.inplace_variant, descent_fn(op.inplace_variant)
    bad = []
    seen = {}

    def on_clone(fn, lib):
        def run(x, *a, **k):
            y = x.clone()
            out = fn(y, *a, **k)
            seen[lib] = out is y
            return out

        return run

    tg, dg, (tl, dl), _ = _grads(op, sample, on_clone(tfn, "torch"), on_clone(dfn, "descent"))
    if seen["torch"] != seen["descent"]:
        bad.append(f"returns its input: torch {seen['torch']}, descent {seen['descent']}")
    return bad + _cmp_grads("grad of input", tg, dg, tl, dl)


def _tensor_positions(sample):
    args = (sample.input, *sample.args)
    return args, [
        i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and a.is_floating_point()
    ]


def _with(args, pos, values):
    args = list(args)
    for i, v in zip(pos, values):
        args[i] = v
    return args


def check_jvp(op, sample):
    args, pos = _tensor_positions(sample)
    _, dargs, dkw = _translate(sample)
    primals = [args[i].detach() for i in pos]
    tangents, dtangents = _weights(primals, 2)
    dprimals = [dargs[i].detach() for i in pos]
    tfn, dfn = op.op, descent_fn(op.op)
    tout, ttan = torch.func.jvp(
        lambda *p: tfn(*_with(args, pos, p), **sample.kwargs), tuple(primals), tuple(tangents)
    )
    dout, dtan = descent.func.jvp(
        lambda *p: dfn(*_with(dargs, pos, p), **dkw), tuple(dprimals), tuple(dtangents)
    )
    bad = compare(tout, dout, F32)
    for i, (a, b) in enumerate(zip(_flat(ttan), _flat(dtan))):
        if isinstance(a, torch.Tensor) and not a.is_floating_point():
            continue  # an integer output's tangent (torch: float0 or zeros)
        bad += [f"tangent {i}: {m}" for m in compare(a, b, F32)]
    return bad


def check_vmap(op, sample):
    """vmap over a batch of two: the sample and the sample times 1.5 (floating inputs)."""
    args, pos = _tensor_positions(sample)
    _, dargs, dkw = _translate(sample)
    tb = [torch.stack([args[i].detach(), args[i].detach() * 1.5]) for i in pos]
    db_ = [descent.tensor(_np(t)) for t in tb]
    in_dims = tuple(0 if i in pos else None for i in range(len(args)))
    tfn, dfn = op.op, descent_fn(op.op)
    targs = _with([a.detach() if isinstance(a, torch.Tensor) else a for a in args], pos, tb)
    dargs = _with([a.detach() if isinstance(a, descent.Tensor) else a for a in dargs], pos, db_)
    tout = torch.func.vmap(lambda *a: tfn(*a, **sample.kwargs), in_dims)(*targs)
    dout = descent.func.vmap(lambda *a: dfn(*a, **dkw), in_dims)(*dargs)
    return compare(tout, dout, F32)


def check_vmapvjp(op, sample):
    """vmap over func.vjp (functorch's per-sample gradients): a batch of two inputs (the
    sample and 1.5 times it) and two cotangents for the floating outputs."""
    args, pos = _tensor_positions(sample)
    _, dargs, dkw = _translate(sample)
    tfn, dfn = op.op, descent_fn(op.op)
    tb = [torch.stack([args[i].detach(), args[i].detach() * 1.5]) for i in pos]
    db_ = [descent.tensor(_np(t)) for t in tb]
    tout = _flat(tfn(*[a.detach() if isinstance(a, torch.Tensor) else a for a in args],
                     **sample.kwargs))  # fmt: skip
    idx = [i for i, o in enumerate(tout) if isinstance(o, torch.Tensor) and o.is_floating_point()]
    tct, dct = _weights([torch.stack([tout[i], tout[i]]) for i in idx], 4)

    def per_sample(lib, fn, base, kw):
        def f(*xs_and_cts):
            xs, cts = xs_and_cts[: len(pos)], xs_and_cts[len(pos) :]

            def g(*p):
                outs = _flat(fn(*_with(base, pos, p), **kw))
                return tuple(outs[i] for i in idx)

            _, vjp_fn = lib.func.vjp(g, *xs)
            return vjp_fn(tuple(cts))

        return f

    tbase = [a.detach() if isinstance(a, torch.Tensor) else a for a in args]
    dbase = [a.detach() if isinstance(a, descent.Tensor) else a for a in dargs]
    tres = torch.func.vmap(per_sample(torch, tfn, tbase, sample.kwargs))(*tb, *tct)
    dres = descent.func.vmap(per_sample(descent, dfn, dbase, dkw))(*db_, *dct)
    return compare(tres, dres, F32)


def check_gradgrad(op, sample):
    tfn, dfn = op.op, descent_fn(op.op)
    tg, dg, (tl, dl), (tws, dws) = _grads(op, sample, tfn, dfn, create_graph=True)
    keep = [i for i, g in enumerate(tg) if g is not None and g.requires_grad]
    if not keep:  # torch's gradients carry no graph (ZeroGradients' constant zeros)
        return [
            f"grad of input {i} carries a graph in descent, none in torch"
            for i, g in enumerate(dg)
            if g is not None and g.requires_grad
        ]
    tv, dv = _weights([tg[i] for i in keep], 3)
    dkeep = [dg[i] for i in keep]
    if any(g is None or not g.requires_grad for g in dkeep):
        return ["a first-order gradient carries no graph in descent (torch's does)"]
    tgg = torch.autograd.grad([tg[i] for i in keep], tl + tws, tv, allow_unused=True)
    dgg = descent.autograd.grad(dkeep, dl + dws, dv, allow_unused=True)
    return _cmp_grads("second-order grad of input", tgg, dgg, tl + tws, dl + dws)


def run(name: str, check: str):
    """Findings of one (entry, check): a list of strings; None when no sample could run."""
    op = next(o for o in entries() if o.name == name)
    fn = globals()[f"check_{check}"]
    found, ran = [], 0
    for k, s in enumerate(_samples(op)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = fn(op, s)
        except Unsupported:
            continue
        except Exception as e:  # noqa: BLE001 - a crash in descent's run is a finding
            res = [f"raises {short(e)}"]
        if res is None:
            continue
        ran += 1
        found += [f"sample {k}: {m}" for m in res]
    return found if ran else None


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--case", action="append", help="an entry name (all its checks)")
    p.add_argument("--check", action="append", choices=CHECKS)
    p.add_argument("-v", action="store_true")
    a = p.parse_args(argv)
    cases = [
        (f"{n}-{c}", (lambda n=n, c=c: run(n, c)))
        for n, c in case_names()
        if (not a.case or n in a.case) and (not a.check or c in a.check)
    ]
    report(cases, "autograd_function_db", a.v)


if __name__ == "__main__":
    main()
