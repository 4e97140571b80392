"""Run PyTorch's legacy nn test database (``common_nn``) against descent.

``torch.testing._internal.common_nn`` is the older of PyTorch's two module databases (the
newer is ModuleInfo, tests/moduleinfo_harness.py). It is a list of dicts, each one module
configuration worth testing: ``module_tests`` (6), ``get_new_module_tests()`` (228) and
``criterion_tests`` (48). An entry names its module (``module_name`` + ``constructor_args``) or
gives a ``constructor`` (a lambda over ``nn``, or ``wrap_functional(F.something, **kwargs)``
whose function closes over target tensors), and its input as a size, a tensor or a function
(``input_size`` / ``input`` / ``input_fn``; criteria also a target). PyTorch's ``test_nn.py``
wraps each in ``NewModuleTest`` or ``CriterionTest``; this module uses the same classes to
draw the inputs, then:

- builds the module in PyTorch and in descent (``torch.nn`` -> ``descent.nn``, ``F`` ->
  ``descent.nn.functional``; tensors the entry's lambdas close over are translated), checks
  that both print alike (``repr``), copies PyTorch's parameters and buffers into descent's
  through ``load_state_dict`` (the state dict keys and their order must agree);
- runs both forwards on the same inputs and compares outputs, then the buffers (running
  statistics);
- backpropagates the same random upstream gradient and compares the gradients of every input
  that requires grad and of every parameter;
- where the entry asks for a double-backward check (``check_gradgrad``, on by default), in the
  float64 run, differentiates ``sum(v * grad)`` once more and compares those second-order
  gradients too;
- forward-mode AD (float64): the output's tangent for random input tangents, against torch's
  forward AD wherever torch has it (the database asks for it in 17 entries; 259 run);
- for modules, as ``NewModuleTest`` does: non-contiguous inputs and upstream gradient
  (``test_noncontig``), a deep copy of the module, and ``.float()`` / ``.double()`` conversions
  (outputs and parameter dtypes);
- RReLU in training mode draws its slopes: its values are checked for being an RReLU (slope 1
  on x >= 0, in [lower, upper] elsewhere, gradient = slope * upstream gradient);
- the entry's flags: ``check_eval`` (the forward again in eval mode) and
  ``check_with_long_tensor`` (test_nn's ``*_with_long_tensor`` variant: int64 weights, loaded with
  ``load_state_dict(assign=True)``, on an int64 input; exact comparison).

Dtype: every entry runs twice, with float64 and then float32 as the default dtype (torch's while
its inputs and module are made, descent's ``set_default_dtype`` while its module is made, so both
hold the same weights); inputs an entry makes with an explicit dtype keep it. The database asks
for float64 (``default_dtype``) in 233 of its 282 entries; float32 is descent's default. Inputs
come from a fixed seed per entry (``torch.manual_seed(0)``), so one entry run alone (``--case``)
sees the inputs it sees in the full run. Tolerances: opinfo_harness.TOL (float64 rtol 1e-7).

Departures from ``test_nn.py``: ``criterion_tests``'s constructors read the module-level loop
variable ``reduction`` late, so PyTorch runs every one of its ``*_no_batch_dim_{none,mean}``
entries with ``reduction='sum'``; the harness gives each the reduction its name states. The
derived ``_with_long_tensor`` / ``_eval`` tests are checks inside their entry's case, not cases
of their own. Not reproduced: ``torch.save`` of whole modules (``pickle``: descent.save stores
state dicts only, by design), CUDA, half precision, TF32 and gradcheck's forward-mode AD.

``check_entry(name, kind, entry)`` returns a list of findings (empty: descent agrees; None: not
run); ``python tests/commonnn_harness.py [-v] [--case NAME]`` prints a summary.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import types
import warnings

import numpy as np
import torch
from torch.testing._internal import common_nn

import descent
from harness_report import report, short
from opinfo_harness import TOL, Unsupported, _descent_module, _flat, _np, _retarget, compare
from opinfo_harness import to_descent as _to_descent

# Every entry runs with each as the default dtype: float64 (first and second order), then
# float32 (descent's default; first order).
DTYPES = (torch.float64, torch.float32)

# Modules whose forward draws random numbers in training mode: shapes and dtypes only.
RANDOM = {"RReLU"}


# ---------------------------------------------------------------------------------------------
# The database


def entry_name(d):
    """The entry's name as test_nn.py builds it: ``fullname``, else module name + ``_desc``."""
    if d.get("fullname"):
        return d["fullname"]
    name = d.get("module_name") or d["constructor"].__name__
    return f"{name}_{d['desc']}" if d.get("desc") else name


def _load():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mods = [("module", d) for d in common_nn.module_tests + common_nn.get_new_module_tests()]
    return mods + [("criterion", d) for d in common_nn.criterion_tests]


_ENTRIES = None


def entries():
    """[(name, kind, dict)] for every entry; kind is "module" or "criterion"."""
    global _ENTRIES
    if _ENTRIES is None:
        _ENTRIES = [(entry_name(d), kind, d) for kind, d in _load()]
    return _ENTRIES


def _reduction_of(name):
    """The reduction a ``*_no_batch_dim_<reduction>`` criterion entry's name states."""
    for r in ("none", "mean", "sum"):
        if name.endswith(f"_no_batch_dim_{r}"):
            return r
    return None


# ---------------------------------------------------------------------------------------------
# Translation torch -> descent


def _descent_function(fn):
    """descent's function of the same name as torch's ``fn`` (``F.gelu``, ``F.interpolate``)."""
    mod = _descent_module(types.SimpleNamespace(__name__=fn.__module__ or "torch.nn.functional"))
    for owner in (mod, descent.nn.functional, descent):
        got = getattr(owner, fn.__name__, None) if owner is not None else None
        if callable(got):
            return got
    raise Unsupported(f"no descent function {fn.__name__}")


def port(obj, env=None):
    """``obj`` (a constructor argument, closure value or function) for descent.

    Tensors go through opinfo_harness.to_descent; functions from PyTorch's test code run
    again with their torch globals and closed-over tensors translated (``env`` overrides
    globals); PyTorch's own functions become descent's of the same name."""
    if isinstance(obj, types.FunctionType) and obj.__module__.startswith("torch.testing"):
        g = dict(_retarget(obj).__globals__)
        g.update(env or {})
        cells = None
        if obj.__closure__:
            cells = []
            for c in obj.__closure__:
                try:
                    cells.append(types.CellType(port(c.cell_contents)))
                except ValueError:  # an empty cell
                    cells.append(c)
            cells = tuple(cells)
        defaults = tuple(port(v) for v in obj.__defaults__) if obj.__defaults__ else None
        new = types.FunctionType(obj.__code__, g, obj.__name__, defaults, cells)
        new.__kwdefaults__ = port(obj.__kwdefaults__) if obj.__kwdefaults__ else None
        return new
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType)) and (
        (obj.__module__ or "torch").startswith("torch")
    ):
        return _descent_function(obj)
    if isinstance(obj, torch.Size):
        return descent.Size(obj)
    if isinstance(obj, dict):
        return {k: port(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) and not isinstance(obj, torch.Size):
        return type(obj)(port(o) for o in obj)
    if isinstance(obj, type) and issubclass(obj, torch.nn.Module):
        got = getattr(descent.nn, obj.__name__, None)
        if got is None:
            raise Unsupported(f"no descent.nn.{obj.__name__}")
        return got
    return _to_descent(obj, [])


def _functional_parts(cls):
    """(fn, kwargs) of a ``wrap_functional(fn, **kwargs)`` class, else None."""
    fwd = getattr(cls, "forward", None)
    if cls.__name__ != "FunctionalModule" or fwd is None or not fwd.__closure__:
        return None
    cells = dict(zip(fwd.__code__.co_freevars, (c.cell_contents for c in fwd.__closure__)))
    return cells["fn"], cells["kwargs"]


def descent_constructor(d, name):
    """A callable that builds descent's module for entry ``d``."""
    if "constructor" not in d:
        cls = getattr(descent.nn, d["module_name"], None)
        if cls is None:
            raise Unsupported(f"no descent.nn.{d['module_name']}")
        return cls
    ctor = d["constructor"]
    parts = _functional_parts(ctor) if isinstance(ctor, type) else None
    if parts is not None:
        dfn, dkwargs = port(parts[0]), port(parts[1])

        class FunctionalModule(descent.nn.Module):
            def forward(self, *args):
                return dfn(*args, **dkwargs)

        return FunctionalModule
    red = _reduction_of(name)
    return port(ctor, {"reduction": red} if red else None)


def torch_constructor(d, name):
    if "constructor" not in d:
        return getattr(torch.nn, d["module_name"])
    red = _reduction_of(name)
    if red is None:
        return d["constructor"]
    fn = d["constructor"]  # the same code with the reduction its name states (see the top)
    g = dict(fn.__globals__, reduction=red)
    new = types.FunctionType(fn.__code__, g, fn.__name__, fn.__defaults__, fn.__closure__)
    new.__kwdefaults__ = fn.__kwdefaults__
    return new


@contextlib.contextmanager
def default_dtype(dt):
    """torch's and descent's default float dtype set to ``dt`` for the block."""
    old_t, old_d = torch.get_default_dtype(), descent.get_default_dtype()
    torch.set_default_dtype(dt)
    descent.set_default_dtype(getattr(descent, str(dt).split(".")[-1]))
    try:
        yield
    finally:
        torch.set_default_dtype(old_t)
        descent.set_default_dtype(old_d)


def _test_object(kind, d, ctor):
    """PyTorch's own NewModuleTest / CriterionTest for the entry (it draws the inputs)."""
    params = {k: v for k, v in d.items() if k not in ("module_name", "decorator")}
    params["constructor"] = ctor
    cls = common_nn.CriterionTest if kind == "criterion" else common_nn.NewModuleTest
    return cls(**params)


def _dense(g):
    return g.to_dense() if isinstance(g, torch.Tensor) and g.layout != torch.strided else g


# ---------------------------------------------------------------------------------------------
# The check


def check_entry(name, kind, d, second_order=True):
    """Findings for one database entry in float64 and in float32 (prefixed by the dtype): a
    list of strings (empty: agrees), or None when nothing could run."""
    res = [run_entry(name, kind, d, dt, second_order) for dt in DTYPES]
    if all(r is None for r in res):
        return None
    return [f"{str(dt)[6:]}: {m}" for dt, r in zip(DTYPES, res) for m in (r or [])]


def run_entry(name, kind, d, dt, second_order=True):
    """Findings for one entry with ``dt`` as the default dtype (None: not run)."""
    tctor = torch_constructor(d, name)
    try:
        dctor = descent_constructor(d, name)
    except Unsupported:
        return None
    with default_dtype(dt), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        test = _test_object(kind, d, tctor)
        torch.manual_seed(0)
        tin = test._get_input()
        tin = tin if isinstance(tin, tuple) else (tin,)
        ttarget = (test._get_target(),) if kind == "criterion" else ()
        cargs = tuple(test.constructor_args)
        extra = tuple(test.extra_args) if kind == "criterion" else ()
        leaves = []
        try:
            dcargs = port(cargs)
            din = tuple(_to_descent(t, leaves) for t in tin)
            dtarget = tuple(_to_descent(t, []) for t in ttarget)
            dextra = port(extra)
        except Unsupported:
            return None
        torch.manual_seed(0)
        tm = tctor(*cargs)
        tstate = {k: v.detach().clone() for k, v in tm.state_dict().items()}
        try:
            dm = dctor(*dcargs)
        except Exception as e:  # noqa: BLE001
            return [f"descent's constructor raises {short(e)}"]
        # NewModuleTest prints the module: the printout must be PyTorch's
        if repr(dm) != repr(tm).replace("torch.", "descent."):
            return [f"repr differs: torch {repr(tm)[:120]!r}, descent {repr(dm)[:120]!r}"]
        dkeys = list(dm.state_dict())
        if set(tstate) != set(dkeys):
            return [
                f"state_dict keys differ: torch only {sorted(set(tstate) - set(dkeys))}, "
                f"descent only {sorted(set(dkeys) - set(tstate))}"
            ]
        if list(tstate) != dkeys:  # the order parameters() and optimizers' states follow
            return [f"state_dict order differs: torch {list(tstate)}, descent {dkeys}"]
        try:
            dm.load_state_dict({k: descent.tensor(_np(v).copy()) for k, v in tstate.items()})
        except Exception as e:  # noqa: BLE001
            return [f"descent's load_state_dict of torch's state raises {short(e)}"]
        try:
            tout = tm(*tin, *ttarget, *extra)
        except Exception as e:  # noqa: BLE001 - torch refusing it: descent must refuse too
            try:
                dm(*din, *dtarget, *dextra)
            except Exception:  # noqa: BLE001
                return []
            return [f"torch's forward raises ({short(e)}), descent's does not"]
        try:
            dout = dm(*din, *dtarget, *dextra)
        except Exception as e:  # noqa: BLE001
            return [f"descent's forward raises {short(e)}"]
    tol = None if _base(name) in RANDOM else TOL[dt]
    bad = compare(tout, dout, tol)
    tb, db = dict(tm.named_buffers()), dict(dm.named_buffers())
    for k, v in tb.items():
        if tol is not None and k in db:
            bad += [f"buffer {k}: {m}" for m in compare(v, db[k], tol)]
    if bad or tol is None:
        return bad or _check_rrelu(dm, din, dout)
    second_order = second_order and d.get("check_gradgrad", True) and dt == torch.float64
    bad += _check_grads(tm, dm, tin, din, leaves, tout, dout, tol, second_order)
    targs, dargs = (*ttarget, *extra), (*dtarget, *dextra)
    if kind == "module" and dt == torch.float64 and tol is not None and not bad:
        bad += _check_noncontig(tm, dm, tin, din)
    if kind == "module" and dt == torch.float64:
        bad += _check_deepcopy(dm, din, tout, tol)
        bad += _check_conversions(tm, dm, tin, targs, dargs)
    if dt == torch.float64:
        bad += _check_forward_ad(tm, dm, tin, din, targs, dargs, tol)
    if d.get("check_eval"):
        bad += _check_eval(tm, dm, tin, din, targs, dargs, tol)
    if d.get("check_with_long_tensor") and dt == torch.float64:
        bad += _check_long(tctor, dctor, cargs, dcargs, d["input_size"])
    return bad


def _noncontig(t):
    """test_nn's noncontiguize for a descent tensor: the same values, read through a strided
    view (``stack([empty, t], d).select(d, 1)``, d after the first dimension of size > 1)."""
    dim = next((i + 1 for i, n in enumerate(t.shape) if n > 1), t.ndim)
    out = descent.stack([descent.empty_like(t), t.detach()], dim).select(dim, 1).detach()
    return out.requires_grad_(t.requires_grad)


def _check_rrelu(dm, din, dout):
    """RReLU in training draws its negative slopes, so torch's values cannot be matched; descent's
    must still be an RReLU: slope 1 where x >= 0, a slope in [lower, upper] elsewhere, and the
    input gradient that slope times the upstream gradient."""
    x, y = _np(din[0]), _np(dout)
    slope = np.where(x != 0, y / np.where(x != 0, x, 1), 1.0)
    bad = []
    if not np.allclose(slope[x >= 0], 1.0):
        bad.append("RReLU: the slope is not 1 on x >= 0")
    neg = slope[x < 0]
    eps = 4 * float(descent.finfo(dout.dtype).eps) * max(1.0, dm.upper)  # the slope's rounding
    if neg.size and (neg.min() < dm.lower - eps or neg.max() > dm.upper + eps):
        bad.append(f"RReLU: negative slopes in [{neg.min()}, {neg.max()}], not in "
                   f"[{dm.lower}, {dm.upper}]")  # fmt: skip
    w = _np(descent.tensor(np.random.default_rng(5).standard_normal(x.shape)).to(dout.dtype))
    (gx,) = descent.autograd.grad(dout, din[0], descent.tensor(w).to(dout.dtype))
    if not np.allclose(_np(gx), w * slope, rtol=8 * eps, atol=1e-6):
        bad.append("RReLU: the input gradient is not slope * upstream gradient")
    return bad


def _check_forward_ad(tm, dm, tin, din, targs, dargs, tol):
    """Forward-mode AD (gradcheck's check_forward_ad, which the database enables for 17
    entries; run here for every entry torch's forward AD supports): the tangent of the output
    for a random tangent of each floating input, torch's against descent's."""
    import descent.autograd.forward_ad as dfw  # noqa: PLC0415
    import torch.autograd.forward_ad as tfw  # noqa: PLC0415

    gen = torch.Generator().manual_seed(6)
    tans = [torch.randn(t.shape, generator=gen, dtype=torch.float64).to(t.dtype)
            if t.is_floating_point() or t.is_complex() else None for t in tin]  # fmt: skip
    with tfw.dual_level(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (make_dual's first call scripts a helper: deprecated)
        duals = [t.detach() if v is None else tfw.make_dual(t.detach(), v)
                 for t, v in zip(tin, tans)]  # fmt: skip
        try:
            tout = tm(*duals, *targs)
        except (NotImplementedError, RuntimeError):  # no forward AD in torch for it
            return []
        tt = tfw.unpack_dual(_flat(tout)[0]).tangent
    try:
        with dfw.dual_level():
            duals = [x.detach() if v is None else dfw.make_dual(x.detach(), descent.tensor(_np(v)))
                     for x, v in zip(din, tans)]  # fmt: skip
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dt = dfw.unpack_dual(_flat(dm(*duals, *dargs))[0]).tangent
    except Exception as e:  # noqa: BLE001
        return [f"forward AD: descent raises {short(e)}"]
    if tt is None or dt is None:
        return (
            []
            if tt is None and dt is None
            else [f"forward AD: tangent torch {tt is not None}, descent {dt is not None}"]
        )
    return [f"forward AD: {m}" for m in compare(tt, dt, tol)]


def _check_noncontig(tm, dm, tin, din):
    """ModuleTest.test_noncontig: descent's forward and gradients on non-contiguous inputs
    (and upstream gradients) are torch's on the contiguous ones."""
    if any(isinstance(t, torch.Tensor) and t.dim() == 0 for t in tin):
        return []  # as test_noncontig
    nin = tuple(_noncontig(x) if isinstance(x, descent.Tensor) else x for x in din)
    try:
        tout, dout = _forward_both(tm, dm, tin, nin, (), ())
    except Exception as e:  # noqa: BLE001
        return [f"non-contiguous input: descent raises {short(e)}"]
    bad = [f"non-contiguous input: {m}" for m in compare(tout, dout, TOL[torch.float64])]
    tf, df = _flat(tout), _flat(dout)
    if bad or not isinstance(tf[0], torch.Tensor) or not tf[0].requires_grad:
        return bad
    tins = [t for t in tin if t.requires_grad] + [p for p in tm.parameters() if p.requires_grad]
    dins = [x for x in nin if x.requires_grad] + [p for p in dm.parameters() if p.requires_grad]
    gen = torch.Generator().manual_seed(4)
    w = torch.randn(tf[0].shape, generator=gen, dtype=torch.float64).to(tf[0].dtype)
    tg = torch.autograd.grad(tf[0], tins, w, allow_unused=True)
    try:
        dg = descent.autograd.grad(df[0], dins, _noncontig(descent.tensor(_np(w))),
                                   allow_unused=True)  # fmt: skip
    except Exception as e:  # noqa: BLE001
        return [f"non-contiguous input: descent backward raises {short(e)}"]
    for i, (a, b, t, x) in enumerate(zip(tg, dg, tins, dins)):
        a = torch.zeros_like(t) if a is None else _dense(a)
        b = descent.zeros_like(x) if b is None else b
        bad += [f"non-contiguous input: grad {i}: {m}" for m in compare(a, b, TOL[torch.float64])]
    return bad


def _check_deepcopy(dm, din, tout, tol):
    """ModuleTest.__call__ deep-copies the module for its reference: the copy computes the
    same outputs."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dout = copy.deepcopy(dm)(*(copy.deepcopy(x.detach()) for x in din))
    except Exception as e:  # noqa: BLE001
        return [f"deepcopy: descent raises {short(e)}"]
    return [f"deepcopy: {m}" for m in compare(tout, dout, tol)]


def _forward_both(tm, dm, tin, din, targs, dargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tm(*tin, *targs), dm(*din, *dargs)


def _cast_inputs(tin, dtype):
    """test_nn's to_single / to_double: floating inputs cast, the rest unchanged."""
    cplx = {torch.float32: torch.complex64, torch.float64: torch.complex128}[dtype]
    return tuple(
        t.detach().to(cplx if t.is_complex() else dtype)
        if t.is_floating_point() or t.is_complex()
        else t
        for t in tin
    )


def _check_conversions(tm, dm, tin, targs, dargs):
    """NewModuleTest._do_test: ``module.float()`` on float32 inputs, then ``.double()`` back."""
    bad = []
    for label, dtype, convert in (
        ("float()", torch.float32, "float"),
        ("double()", torch.float64, "double"),
    ):
        getattr(tm, convert)()
        try:
            getattr(dm, convert)()
            cin = _cast_inputs(tin, dtype)
            din = tuple(_to_descent(t, []) for t in cin)
            tout, dout = _forward_both(tm, dm, cin, din, targs, dargs)
        except Exception as e:  # noqa: BLE001
            return bad + [f"after {label}: descent raises {short(e)}"]
        bad += [f"after {label}: {m}" for m in compare(tout, dout, TOL[dtype])]
        bad += [
            f"after {label}: parameter {k} is {v.dtype} in descent"
            for k, v in dm.named_parameters()
            if v.dtype != getattr(descent, str(dtype)[6:])
        ]
    return bad


def _check_eval(tm, dm, tin, din, targs, dargs, tol):
    """The entry's ``check_eval``: the same forward with both modules in eval mode."""
    tm.eval()
    dm.eval()
    try:
        tout, dout = _forward_both(tm, dm, tin, din, targs, dargs)
    except Exception as e:  # noqa: BLE001
        return [f"eval: descent raises {short(e)}"]
    return [f"eval: {m}" for m in compare(tout, dout, tol)]


def _check_long(tctor, dctor, cargs, dcargs, size):
    """The entry's ``check_with_long_tensor`` (test_nn's ``*_with_long_tensor`` variant): the
    module with int64 weights (``load_state_dict(assign=True)``) on an int64 input."""
    gen = torch.Generator().manual_seed(3)
    tm, dm = tctor(*cargs), dctor(*dcargs)
    for m in (tm, dm):
        for p in m.parameters():
            p.requires_grad_(False)
    state = {
        k: torch.randint(-1000, 1000, v.shape, generator=gen) for k, v in tm.state_dict().items()
    }
    tm.load_state_dict(state, assign=True)
    x = torch.randint(-1000, 1000, size, generator=gen)
    tout = tm(x)
    try:
        dm.load_state_dict({k: descent.tensor(v.numpy()) for k, v in state.items()}, assign=True)
        dout = dm(descent.tensor(x.numpy()))
    except Exception as e:  # noqa: BLE001
        return [f"int64 weights and input: descent raises {short(e)}"]
    return [f"int64 weights and input: {m}" for m in compare(tout, dout, (0, 0))]


def _base(name):
    return name.split("_")[0]


def _check_grads(tm, dm, tin, din, leaves, tout, dout, tol, second_order):
    """First- (and second-) order gradients of the same random linear function of the outputs."""
    tf = [o for o in _flat(tout) if isinstance(o, torch.Tensor) and o.requires_grad]
    df = [
        b
        for a, b in zip(_flat(tout), _flat(dout))
        if isinstance(a, torch.Tensor) and a.requires_grad
    ]
    if not tf:
        return []
    if any(not isinstance(b, descent.Tensor) or not b.requires_grad for b in df):
        return ["an output that requires grad in torch does not in descent"]
    tp, dp = dict(tm.named_parameters()), dict(dm.named_parameters())
    names = [k for k, v in tp.items() if v.requires_grad]
    if set(names) - set(dp):
        return [f"parameters missing in descent: {sorted(set(names) - set(dp))}"]
    tins = [t for t, _ in leaves] + [tp[k] for k in names]
    dins = [b for _, b in leaves] + [dp[k] for k in names]
    labels = [f"input {i}" for i in range(len(leaves))] + [f"parameter {k}" for k in names]
    if not tins:
        return []
    gen = torch.Generator().manual_seed(1)
    ws = [torch.randn(o.shape, generator=gen, dtype=torch.float64).to(o.dtype) for o in tf]
    tg = torch.autograd.grad(tf, tins, ws, allow_unused=True, create_graph=second_order)
    dws = [descent.tensor(_np(w)) for w in ws]
    try:
        dg = descent.autograd.grad(df, dins, dws, allow_unused=True, create_graph=second_order)
    except Exception as e:  # noqa: BLE001
        return [f"descent backward raises {short(e)}"]
    bad = []
    for lab, a, b, t, x in zip(labels, tg, dg, tins, dins):
        if a is None and b is None:
            continue
        a = torch.zeros_like(t) if a is None else _dense(a)
        b = descent.zeros_like(x) if b is None else b
        bad += [f"grad of {lab}: {m}" for m in compare(a, b, tol)]
    if bad or not second_order:
        return bad
    return _check_second(tg, dg, tins, dins, labels, tol)


def _check_second(tg, dg, tins, dins, labels, tol):
    """d/d(inputs, parameters) of sum(v * grad) over the gradients torch can differentiate."""
    pairs = [(a, b) for a, b in zip(tg, dg) if a is not None and a.requires_grad]
    if not pairs:
        return []
    gen = torch.Generator().manual_seed(2)
    vs = [torch.randn(a.shape, generator=gen, dtype=torch.float64).to(a.dtype) for a, _ in pairs]
    tgg = torch.autograd.grad([a for a, _ in pairs], tins, vs, allow_unused=True)
    # A descent gradient that does not require grad is a constant of the inputs (ReLU's mask
    # times the upstream gradient): its share of the second-order gradient is zero, which
    # torch's values must then show too.
    live = [
        (b, descent.tensor(_np(v)))
        for (_, b), v in zip(pairs, vs)
        if b is not None and b.requires_grad
    ]
    try:
        dgg = (
            descent.autograd.grad(
                [b for b, _ in live], dins, [v for _, v in live], allow_unused=True
            )
            if live
            else [None] * len(dins)
        )
    except Exception as e:  # noqa: BLE001
        return [f"second order: descent's double backward raises {short(e)}"]
    bad = []
    for lab, a, b, t, x in zip(labels, tgg, dgg, tins, dins):
        if a is None and b is None:
            continue
        a = torch.zeros_like(t) if a is None else _dense(a)
        b = descent.zeros_like(x) if b is None else b
        bad += [f"second order, grad of {lab}: {m}" for m in compare(a, b, tol)]
    return bad


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--case", action="append", help="an entry's name (e.g. Conv2d_dilated)")
    p.add_argument("-v", action="store_true")
    p.add_argument("--first-order", action="store_true", help="skip the second-order check")
    p.add_argument(
        "--dtype",
        choices=("float16", "bfloat16"),
        help="run only with this default dtype (first order; not part of the tests)",
    )
    a = p.parse_args(argv)
    low = getattr(torch, a.dtype) if a.dtype else None

    def check(name, kind, d):
        if low is not None:
            return run_entry(name, kind, d, low, second_order=False)
        return check_entry(name, kind, d, not a.first_order)

    def cases():
        for name, kind, d in entries():
            if a.case and name not in a.case:
                continue
            yield name, (lambda n=name, k=kind, d=d: check(n, k, d))

    report(cases(), f"common_nn entries ({a.dtype or 'float64 and float32'})", a.v)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
