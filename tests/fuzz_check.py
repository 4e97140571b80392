"""The differential fuzz's checking half (tests/test_fuzz_differential.py): comparing a case's
run in descent with PyTorch's (values with per-dtype tolerances and slack for sums in any
order, dtypes, shapes, requires_grad, gradients, which step raises), shrinking a mismatch to a
small reproducer, localizing it to the step that differs on its own, and classifying it. The
cases, the op pool and running a case are in tests/fuzz_ops.py.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import torch

import descent as ds
from fuzz_ops import OPS, Case, Input, Run, run_chain

# ---------------------------------------------------------------------------------------------
# Comparing

EPS = {"float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps),
       "float16": float(np.finfo(np.float16).eps)}  # fmt: skip
# (rtol, atol) in units of the epsilon of the least precise float dtype the chain has met so far
# (a float32 step's last-bit difference carries into a later float64 result)
FWD_TOL = (64.0, 8.0)
GRAD_TOL = (512.0, 64.0)


def _worst_eps(case: Case, tvals: list, upto: int) -> float:
    eps = [EPS[str(i.array.dtype)] for i in case.inputs if str(i.array.dtype) in EPS]
    for t in tvals[: upto + 1]:
        if isinstance(t, torch.Tensor) and _dtype_name(t) in EPS:
            eps.append(EPS[_dtype_name(t)])
    return max(eps, default=EPS["float32"])


def _np(v):
    if isinstance(v, torch.Tensor):
        # PyTorch returns a ZeroTensor for some known-zero gradients (sgn's, for one), which
        # .numpy() refuses; its values are plain zeros. (Not numpy(force=True): torch 2.13
        # segfaults on a (1, 1) ZeroTensor that cat's backward narrowed, case 26440146.)
        if v._is_zerotensor():
            return torch.zeros(v.shape, dtype=v.dtype).numpy()
        return v.detach().numpy(force=True)
    return v.numpy()


def _dtype_name(v) -> str:
    return str(v.dtype).replace("torch.", "").replace("descent.", "")


def _acc_scale(case: Case, tvals: list, upto: int) -> float:
    """Absolute rounding slack for the accumulating steps up to `upto`: eps * terms * largest
    finite magnitude of the step's operands (sum/matmul/softmax... may add in any order)."""
    slack = 0.0
    for k in range(min(upto, len(case.ops))):
        op = case.ops[k]
        if not any(op == o.name and o.accumulates for o in OPS):
            continue
        t = tvals[k]
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.numel() == 0:
            continue
        a = t.detach().abs().double()
        fin = a[torch.isfinite(a)]
        if fin.numel() == 0:
            continue
        big = float(fin.max())
        if op == "matmul":
            big = big * big
        if op in ("var", "std", "norm"):
            big = big * big
        slack = max(slack, 4 * t.numel() * big * EPS.get(_dtype_name(t), 1e-7))
    return slack


def compare_arrays(d: np.ndarray, t: np.ndarray, tol, slack: float) -> str | None:
    if d.shape != t.shape:
        return f"shape {d.shape} vs {t.shape}"
    if d.dtype == np.bool_ or d.dtype.kind in "iu":
        bad = d != t
        if bad.any():
            i = tuple(int(j) for j in np.argwhere(bad)[0])
            return f"values differ at {i}: {d[i]!r} vs {t[i]!r} ({int(bad.sum())} elements)"
        return None
    d64, t64 = d.astype(np.float64), t.astype(np.float64)
    nan_d, nan_t = np.isnan(d64), np.isnan(t64)
    rtol, atol = tol
    with np.errstate(all="ignore"):
        close = (d64 == t64) | (nan_d & nan_t)
        fin = np.isfinite(d64) & np.isfinite(t64)
        close |= fin & (np.abs(d64 - t64) <= atol + slack + rtol * np.abs(t64))
        if slack > 0:  # past an accumulation, an overflow at the edge may go either way
            close |= ~nan_d & ~nan_t & (np.abs(np.where(fin, 0, np.where(np.isfinite(d64), d64,
                                                                          t64))) >= 1e30)
    bad = ~close
    if bad.any():
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        return f"values differ at {i}: {d[i]!r} vs {t[i]!r} ({int(bad.sum())} of {d.size})"
    return None


@dataclass
class Mismatch:
    kind: str  # exception / type / dtype / shape / value / requires_grad / grad / grad-exception
    step: int  # the step whose output differs (0-based; len(steps) for the final gradient)
    detail: str
    dtypes: str = ""  # the dtypes of the differing step's tensor operands (torch's values)


def _operand_dtypes(case: Case, tvals: list, leaves: dict, k: int) -> str:
    if k >= len(case.steps):
        return "+".join(sorted({str(i.array.dtype) for i in case.inputs}))
    out = set()
    for name in set(re.findall(r"\b(v\d+|x|y)\b", case.steps[k])):
        v = leaves.get(name)
        if v is None and name.startswith("v") and int(name[1:]) < len(tvals):
            v = tvals[int(name[1:])]
        if isinstance(v, torch.Tensor):
            out.add(_dtype_name(v))
    return "+".join(sorted(out))


def compare(case: Case) -> Mismatch | None:
    tr = run_chain("torch", case)
    m = _compare(case, tr)
    if m is not None:
        m.dtypes = _operand_dtypes(case, tr.values, tr.leaves, m.step)
    return m


# Ops whose choice among equal values is implementation-defined in PyTorch (its docs: sort is
# unstable unless stable=True; "indices are not necessarily the first occurrence" for median;
# topk/kthvalue/mode/nanmedian say nothing): with ties in the operand their indices, and the
# gradients routed through them, are not compared (values, shapes and dtypes still are).
TIE_OPS = {"sort", "argsort", "topk", "kthvalue", "median", "mode", "nanmedian", "gather"}
# Where PyTorch disagrees with itself at a nan input: the backward of hardtanh/relu6 (0) and of
# the elu family and hardswish (nan) in its vectorized loop, gy in the scalar loop that
# finishes a tensor's last elements (n % 16 of them for float32); and mode, whose sort of a row
# with a nan is undefined (std::sort without a strict weak order: mode([nan, 1]) is nan,
# mode([1, nan]) 1); and copysign, whose answer for a nan sign operand is the nan's sign bit
# (arccos(1.5) is -nan in PyTorch's kernel, +nan in NumPy's); and fmod/remainder by a denormal
# divisor (PyTorch's vectorized loop flushes it to 0 and gives nan, its scalar loop 0). With a
# nan (fmod: denormal) operand their gradients (mode, copysign, fmod: values) are not compared.
# hardshrink/softshrink likewise: their backward at a nan is 0 in the vectorized loop, gy in
# the scalar tail (float64 ones(12) with a nan at 6: 0; at 11: 1).
NAN_GRAD_OPS = {"F.hardtanh", "F.relu6", "F.elu", "F.celu", "F.selu", "F.hardswish",
                "F.hardshrink", "F.softshrink"}  # fmt: skip


def _tie_ambiguous(case: Case, tr: Run) -> tuple[int | None, bool]:
    """(the first step whose output indices depend on how ties are broken, or None; whether
    some step's gradient routing does)."""
    first_index, any_tie = None, False
    for k, (op, src) in enumerate(zip(case.ops, case.steps)):
        if (op == "copysign" and _any_operand(src, tr, torch.isnan)) or (
                op in ("fmod", "remainder", "%") and (_any_operand(src, tr, _denormal)
                                                      or "1e-45" in src)) or (
                op == "logit" and _any_operand(src, tr, _negative_zero)):  # fmt: skip
            any_tie = True
            first_index = k if first_index is None else first_index
            continue
        if op not in TIE_OPS | NAN_GRAD_OPS or (op == "gather" and "argsort" not in src):
            continue
        name = re.search(r"\b(v\d+|x|y)\b", src).group(1)
        t = tr.leaves.get(name) if name in ("x", "y") else (
            tr.values[int(name[1:])] if int(name[1:]) < len(tr.values) else None)  # fmt: skip
        if not isinstance(t, torch.Tensor):
            continue
        a = t.detach().numpy().ravel()
        has_nan = a.dtype.kind == "f" and bool(np.isnan(a).any())
        if op in NAN_GRAD_OPS:
            any_tie = any_tie or has_nan
            continue
        if op == "mode" and has_nan:
            any_tie = True
            first_index = k if first_index is None else first_index
            continue
        if a.size == np.unique(a).size:
            continue
        any_tie = True
        if first_index is None and (".indices" in src or op == "argsort"):
            first_index = k
    return first_index, any_tie


def _negative_zero(t):
    """-0.0 entries: logit's gradient there is -inf in PyTorch's vectorized loop (gy / (x (1 -
    x))), +inf in its scalar tail (ones(17) with -0.0 at 0: -inf; at 16: inf)."""
    return (t == 0) & torch.signbit(t)


def _denormal(t):
    return (t != 0) & (t.abs() < torch.finfo(t.dtype).tiny)


def _any_operand(src: str, tr: Run, test) -> bool:
    """Whether a floating operand of the step `src` (PyTorch's values) has an element for
    which `test` holds."""
    for name in set(re.findall(r"\b(v\d+|x|y)\b", src)):
        t = tr.leaves.get(name) if name in ("x", "y") else (
            tr.values[int(name[1:])] if int(name[1:]) < len(tr.values) else None)  # fmt: skip
        if isinstance(t, torch.Tensor) and t.is_floating_point() and bool(test(t).any()):
            return True
    return False


def _compare(case: Case, tr: Run) -> Mismatch | None:
    dr = run_chain("descent", case)
    n = len(case.steps)
    t_err = tr.error_step if tr.error is not None else n
    d_err = dr.error_step if dr.error is not None else n
    tie_index, tie_grad = _tie_ambiguous(case, tr)
    # step-by-step comparison of what both computed (past tie-broken indices: types only)
    for k in range(1, min(t_err, d_err) + 1):
        values = tie_index is None or k - 1 < tie_index
        m = _compare_value(case, dr.values[k], tr.values[k], tr.values, k, values)
        if m is not None:
            return m
    if t_err != d_err:
        first = min(t_err, d_err)
        if tie_index is not None and first > tie_index:
            return None  # other indices may raise (out of range) in one library only
        who = "descent" if d_err < t_err else "torch"
        err = dr.error if who == "descent" else tr.error
        return Mismatch("exception", first, f"only {who} raises {type(err).__name__}: "
                        f"{str(err).splitlines()[0][:200] if str(err) else ''}")  # fmt: skip
    if tr.error is not None or tie_grad:
        return None
    return _compare_grads(case, dr, tr)


def _compare_value(case, d, t, tvals, k, values=True) -> Mismatch | None:
    if not isinstance(d, ds.Tensor):
        return Mismatch("type", k - 1, f"descent gives {type(d).__name__}, torch a Tensor")
    if tuple(d.shape) != tuple(t.shape) and values:  # (past tie-broken indices shapes may differ)
        return Mismatch("shape", k - 1, f"shape {tuple(d.shape)} vs {tuple(t.shape)}")
    if _dtype_name(d) != _dtype_name(t):
        return Mismatch("dtype", k - 1, f"dtype {_dtype_name(d)} vs {_dtype_name(t)}")
    eps = _worst_eps(case, tvals, k)
    tol = (FWD_TOL[0] * eps, FWD_TOL[1] * eps)
    msg = compare_arrays(_np(d), _np(t), tol, _acc_scale(case, tvals, k)) if values else None
    if msg is not None:
        return Mismatch("value", k - 1, msg)
    if bool(d.requires_grad) != bool(t.requires_grad):
        return Mismatch("requires_grad", k - 1,
                        f"requires_grad {d.requires_grad} vs {t.requires_grad}")
    return None


def _cotangent(case, t):
    if case.ones_cotangent:
        return np.ones(tuple(t.shape), dtype=_dtype_name(t))
    rng = np.random.default_rng(case.cotangent_seed)
    return rng.standard_normal(tuple(t.shape)).astype(_dtype_name(t))


def _compare_grads(case, dr, tr, relaxed: bool = False) -> Mismatch | None:
    t_out, d_out = tr.values[-1], dr.values[-1]
    if not (t_out.requires_grad and t_out.is_floating_point()):
        return None
    ct = _cotangent(case, t_out)
    errs = []
    for lib, out in (("torch", t_out), ("descent", d_out)):
        m = torch if lib == "torch" else ds
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                (out * m.tensor(ct)).sum().backward()
            errs.append(None)
        except Exception as e:  # noqa: BLE001
            errs.append(e)
    if (errs[0] is None) != (errs[1] is None):
        who = "torch" if errs[0] is not None else "descent"
        e = errs[0] or errs[1]
        return Mismatch("grad-exception", len(case.steps),
                        f"only {who} raises in backward {type(e).__name__}: {str(e)[:200]}")
    if errs[0] is not None:
        return None
    slack = _acc_scale(case, tr.values, len(case.steps))
    slack *= max(1.0, float(np.abs(ct).max()) if ct.size else 1.0)
    for name, tl in tr.leaves.items():
        dl = dr.leaves[name]
        tg, dg = tl.grad, dl.grad
        if tg is None and dg is None:
            continue
        if tg is None or dg is None:
            tz = tg is None and not _np(dg).any() or dg is None and not _np(tg).any()
            if tz:  # a None gradient where the other library gives zeros: same meaning
                continue
            return Mismatch("grad", len(case.steps), f"{name}.grad: "
                            f"{'None' if dg is None else 'a tensor'} vs "
                            f"{'None' if tg is None else 'a tensor'}")  # fmt: skip
        if _dtype_name(dg) != _dtype_name(tg) or tuple(dg.shape) != tuple(tg.shape):
            return Mismatch("grad", len(case.steps), f"{name}.grad: {_dtype_name(dg)}"
                            f"{tuple(dg.shape)} vs {_dtype_name(tg)}{tuple(tg.shape)}")
        eps = _worst_eps(case, tr.values, len(case.steps))
        tol = (GRAD_TOL[0] * eps, GRAD_TOL[1] * eps) if not relaxed else (eps**0.5, eps**0.5)
        msg = compare_arrays(_np(dg), _np(tg), tol, slack)
        if msg is not None:
            return Mismatch("grad", len(case.steps), f"{name}.grad {msg}")
    return None


# ---------------------------------------------------------------------------------------------
# Shrinking: drop steps and simplify values while the same kind of mismatch remains


def _same_kind(m: Mismatch | None, kind: str) -> bool:
    return m is not None and m.kind == kind


def _try(case: Case) -> Mismatch | None:
    try:
        return compare(case)
    except Exception as e:  # noqa: BLE001 - a harness failure on a shrunk case: not a reproducer
        return Mismatch("harness", -1, repr(e))


def shrink(case: Case, m: Mismatch, budget: int = 150) -> tuple[Case, Mismatch]:
    kind = m.kind
    # 1. the step that differs is the last one that matters
    if m.step < len(case.steps) and kind != "grad":
        c = _replace(case, steps=case.steps[: m.step + 1], ops=case.ops[: m.step + 1])
        m2 = _try(c)
        if _same_kind(m2, kind):
            case, m = c, m2
    # 2. drop steps (the later ones are rewritten to refer to the dropped one's input)
    changed = True
    while changed and budget > 0:
        changed = False
        for k in range(len(case.steps)):
            if len(case.steps) == 1:
                break
            c = _drop_step(case, k)
            if c is None:
                continue
            budget -= 1
            m2 = _try(c)
            if _same_kind(m2, kind):
                case, m, changed = c, m2, True
                break
    # 3. drop y if unused
    used = set().union(*(_names(s) for s in case.steps))
    kept = [i for j, i in enumerate(case.inputs) if j == 0 or i.name in used]
    if len(kept) < len(case.inputs):
        c = _replace(case, inputs=kept)
        if _same_kind(_try(c), kind):
            case = c
    # 4. simpler values, element by element (1 or 0 in place of each), and no requires_grad
    for i, inp in enumerate(case.inputs):
        if inp.requires_grad and kind not in ("grad", "grad-exception", "requires_grad"):
            c = _replace(case, inputs=_with_input(case.inputs, i, Input(inp.name, inp.array,
                                                                        False)))
            m2 = _try(c)
            if _same_kind(m2, kind):
                case, m = c, m2
                inp = case.inputs[i]
        if case.ones_cotangent is False and kind == "grad":
            c = _replace(case, ones_cotangent=True)
            m2 = _try(c)
            if _same_kind(m2, kind):
                case, m = c, m2
        flat = inp.array.reshape(-1)
        for j in range(min(flat.size, 48)):
            if budget <= 0:
                break
            for simple in (1, 0):
                if flat[j] == simple and not (flat.dtype.kind == "f" and np.signbit(flat[j])):
                    break
                arr = flat.copy()
                arr[j] = simple
                budget -= 1
                c = _replace(case, inputs=_with_input(
                    case.inputs, i, Input(inp.name, arr.reshape(inp.array.shape),
                                          inp.requires_grad)))  # fmt: skip
                m2 = _try(c)
                if _same_kind(m2, kind):
                    case, m, flat = c, m2, arr
                    inp = case.inputs[i]
                    break
    return case, m


def _names(src: str) -> set:
    return set(re.findall(r"\b[a-z_][a-z0-9_]*\b", src))


def _replace(case: Case, **kw) -> Case:
    d = dict(inputs=case.inputs, steps=case.steps, ops=case.ops,
             cotangent_seed=case.cotangent_seed, ones_cotangent=case.ones_cotangent)
    d.update(kw)
    return Case(**d)


def _with_input(inputs, i, new):
    out = list(inputs)
    out[i] = new
    return out


def _drop_step(case: Case, k: int) -> Case | None:
    """Without step k: v{k+1} is replaced by v{k}'s operand, later names shift down by one."""
    src = case.steps[k]
    used = [n for n in _names(src) if re.fullmatch(r"v\d+|x|y", n)]
    if not used:
        return None
    first = re.search(r"\b(v\d+|x|y)\b", src).group(1)  # the step's main operand
    steps = []
    for j, s in enumerate(case.steps):
        if j == k:
            continue
        if j > k:

            def sub(mo):
                idx = int(mo.group(1))
                if idx == k + 1:
                    return first
                return f"v{idx - 1}" if idx > k + 1 else mo.group(0)

            s = re.sub(r"\bv(\d+)\b", sub, s)
        steps.append(s)
    return _replace(case, steps=steps, ops=case.ops[:k] + case.ops[k + 1:])


def localize(case: Case, m: Mismatch) -> tuple[Case, Mismatch]:
    """The first step that differs on its own: each step run alone on PyTorch's values of its
    operands (leaves with PyTorch's requires_grad). A difference no single step shows (one
    amplified through the chain) keeps the whole case."""
    tr = run_chain("torch", case)
    last = m.step if m.kind not in ("grad", "grad-exception") else len(case.steps) - 1
    for k in range(min(last, len(case.steps) - 1) + 1):
        inputs = []
        for name in sorted(set(re.findall(r"\b(v\d+|x|y)\b", case.steps[k]))):
            v = tr.leaves.get(name) if name in ("x", "y") else tr.values[int(name[1:])]
            if not isinstance(v, torch.Tensor):
                break
            inputs.append(Input(name, v.detach().numpy().copy(), bool(v.requires_grad)))
        else:
            if not inputs:
                continue
            main = re.search(r"\b(v\d+|x|y)\b", case.steps[k]).group(1)
            inputs.sort(key=lambda i: i.name != main)
            c = _replace(case, inputs=inputs, steps=[case.steps[k]], ops=[case.ops[k]])
            m2 = _try(c)
            if m2 is not None and m2.kind != "harness":
                return c, m2
    return case, m


def mismatch_class(case: Case, m: Mismatch) -> tuple:
    """(op, kind, signature, operand dtypes): the op is the step that differs (for gradients,
    the whole chain); the signature says who raised what, or which dtypes."""
    op = case.ops[m.step] if m.step < len(case.ops) else " > ".join(case.ops)
    sig = ""
    if m.kind in ("exception", "grad-exception"):
        sig = " ".join(m.detail.split(":")[0].split()[:4])  # only <lib> raises <Type>
    elif m.kind in ("dtype", "type", "requires_grad"):
        sig = m.detail
    return (op, m.kind, sig, m.dtypes)


def amplified(case: Case, m: Mismatch) -> bool:
    """A value mismatch (or a gradient one within sqrt(eps) relative) that no single step shows
    (localize kept the whole chain) and that follows an earlier step whose values differ from
    PyTorch's only by rounding (within the tolerance, not bit for bit, or in the sign of a
    zero): a last-bit difference amplified by a later step's edge (acosh of a tanh that rounds
    to 1 in one library and to 1 - 2^-24 in the other, floor of a value next to a whole number,
    1 / +-0) or an ill-conditioned derivative (1 - tanh^2 near saturation). Not a bug of
    either step."""
    if m.kind not in ("value", "grad") or len(case.steps) < 2 or m.step < 1:
        return False
    tr, dr = run_chain("torch", case), run_chain("descent", case)
    if m.kind == "grad":  # finite and within sqrt(eps) relative: ill-conditioned derivatives
        if tr.error is not None or dr.error is not None:  # (1 - tanh^2 near saturation) of
            return False  # values that differ in the last bit
        if _compare_grads(case, dr, tr, relaxed=True) is not None:
            return False
    for j in range(1, min(m.step, len(dr.values) - 1, len(tr.values) - 1) + 1):
        d, t = dr.values[j], tr.values[j]
        if not isinstance(d, ds.Tensor) or not isinstance(t, torch.Tensor):
            continue
        a, b = _np(d), _np(t)
        if a.shape != b.shape or a.dtype.kind != "f":
            continue
        # rounding-level: other bits, or the sign of a zero (softshrink's middle piece is +0 in
        # PyTorch's vectorized loop, x * 0 = -0 in its scalar tail; 1 / that is +-inf), or the
        # sign of a nan: IEEE 754 leaves it unspecified, x86's default nan (inf - inf, 0 / 0)
        # has it set, and kernels differ in how they make one (erfinv(1.4), nanmean of
        # nothing); only signbit and copysign see it
        if not np.array_equal(a, b, equal_nan=True) or bool(
                ((a == 0) & (np.signbit(a) != np.signbit(b))).any()) or bool(
                (np.isnan(a) & np.isnan(b) & (np.signbit(a) != np.signbit(b))).any()):  # fmt: skip
            return True
    return False
