"""A second backward() without retain_graph over PyTorch's OpInfo samples, torch against descent.

For the first three float64 samples of each operator in op_db (see opinfo_harness.py), both
libraries run the op, `autograd.backward(outputs, weights)` once (no extra nodes: the weights
are the seeds) and then again; each records whether the second pass raised PyTorch's "a second
time" error (a third round: the in-place method on a clone of the input, x.clone().add_(y)).
A second round passes retain_graph=True to the first backward: both passes must
run, and the inputs' accumulated gradients must agree ("ok, other gradients" where they do
not). `python tests/second_backward_survey.py [OP ...]` prints the operators whose outcome
differs and the counts (about 60 s for all three rounds); docs/engine.md ("A second backward
through freed values") lists what it finds. tests/second_backward_module_survey.py does the
same for module_db and functional calls outside op_db. Not a test: a survey for the next fix.
"""

from __future__ import annotations

import itertools
import sys

import numpy as np
import torch
import torch.testing._internal.common_methods_invocations as _cmi

import descent
from opinfo_harness import RANDOM, Unsupported, _np, _random_sample, label, ops, resolve
from opinfo_higher_harness import DTYPE, _flat, _floating, _Sample, _weights_like


def _second(backward, outs, ws, retain=False) -> str:
    backward(outs, ws, retain_graph=retain)
    try:
        backward(outs, ws)
        return "ok"
    except RuntimeError as e:
        return "raise" if "second time" in str(e) else "other: " + str(e)[:80]


# PyTorch's other operator lists (common_methods_invocations): the _foreach_* ops, which op_db
# does not hold
FOREACH = (
    _cmi.foreach_unary_op_db
    + _cmi.foreach_binary_op_db
    + _cmi.foreach_pointwise_op_db
    + _cmi.foreach_reduce_op_db
    + _cmi.foreach_other_op_db
)


def _same_grads(leaves, tol) -> bool:
    """Whether each (torch, descent) leaf pair holds the same accumulated gradient."""
    for t, d in leaves:
        if (t.grad is None) != (d.grad is None):
            return False
        if t.grad is not None and not np.allclose(_np(t.grad), _np(d.grad), rtol=tol,
                                                  atol=tol, equal_nan=True):  # fmt: skip
            return False
    return True


def survey_op(op, n_samples: int = 3, retain: bool = False) -> list | None:
    """[(torch's outcome, descent's)] for op's first samples, or None (nothing to run)."""
    fn = resolve(op)
    if fn is None or op.name in RANDOM:
        return None
    torch.manual_seed(0)
    try:
        samples = list(itertools.islice(op.sample_inputs("cpu", DTYPE, requires_grad=True), 12))
    except Exception:  # noqa: BLE001 - no float64 samples
        return None
    found = []
    for s in samples:
        if len(found) >= n_samples:
            break
        if _random_sample(s):
            continue
        try:
            smp = _Sample(op, s)
        except Unsupported:
            continue
        if not smp.leaves:
            continue
        for t, _ in smp.leaves:  # (samples may share an input tensor: no earlier .grad)
            t.grad = None
        try:
            tflat = _flat(smp.run_torch([]))
            idx = [i for i, o in enumerate(tflat) if _floating(o) and o.requires_grad]
            if not idx:
                continue
            ws = _weights_like([tflat[i] for i in idx], 1)
            # (copied first: torch's AccumulateGrad may take a seed as a leaf's .grad and add
            # the second pass into it in place)
            ws0 = [w.clone() for w in ws]
            t_res = _second(torch.autograd.backward, [tflat[i] for i in idx], ws, retain)
        except Exception:  # noqa: BLE001 - torch cannot run it: nothing to compare
            continue
        try:
            dflat = _flat(smp.run_descent(fn, []))
            douts = [dflat[i] for i in idx]
            dws = [descent.tensor(_np(w)).to(d.dtype) for w, d in zip(ws0, douts)]
            d_res = _second(descent.autograd.backward, douts, dws, retain)
        except Exception as e:  # noqa: BLE001
            d_res = f"descent raises {type(e).__name__}: {str(e)[:60]}"
        if retain and t_res == d_res == "ok" and not _same_grads(smp.leaves, 1e-6):
            d_res = "ok, other gradients"
        found.append((t_res, d_res))
    return found


def survey_inplace(op, n_samples: int = 3) -> list | None:
    """[(torch's outcome, descent's)] for op's in-place method (x.clone().op_(...), the
    clone a non-leaf), without retain_graph; None where op has none or nothing ran."""
    name = getattr(op.inplace_variant, "__name__", None)
    if not name or op.name in RANDOM or not hasattr(descent.Tensor, name):
        return None
    torch.manual_seed(0)
    try:
        samples = list(itertools.islice(op.sample_inputs("cpu", DTYPE, requires_grad=True), 12))
    except Exception:  # noqa: BLE001 - no float64 samples
        return None
    found = []
    for s in samples:
        if len(found) >= n_samples:
            break
        if _random_sample(s) or not isinstance(s.input, torch.Tensor):
            continue
        try:
            smp = _Sample(op, s)
            out = getattr(s.input.clone(), name)(*s.args, **s.kwargs)
            if not (_floating(out) and out.requires_grad):
                continue
            (w,) = _weights_like([out], 1)
            w0 = w.clone()
            t_res = _second(torch.autograd.backward, [out], [w])
        except Exception:  # noqa: BLE001 - either cannot run it: nothing to compare
            continue
        try:
            x, args, kwargs = smp.dargs
            dout = getattr(x.clone(), name)(*args, **kwargs)
            dw = descent.tensor(_np(w0)).to(dout.dtype)
            d_res = _second(descent.autograd.backward, [dout], [dw])
        except Exception as e:  # noqa: BLE001
            d_res = f"descent raises {type(e).__name__}: {str(e)[:60]}"
        found.append((t_res, d_res))
    return found


def main(names) -> None:
    results = {}
    for retain in (False, True):
        for op in ops() + FOREACH:
            if names and op.name not in names:
                continue
            res = survey_op(op, retain=retain)
            if res:
                results[label(op) + (" (retain_graph)" if retain else "")] = res
    for op in ops():
        if names and op.name not in names:
            continue
        res = survey_inplace(op)
        if res:
            results[label(op) + " (in place)"] = res
    differ = {k: v for k, v in results.items() if any(a != b for a, b in v)}
    for k, v in sorted(differ.items()):
        print(k, v)
    n = sum(len(v) for v in results.values())
    bad = sum(a != b for v in results.values() for a, b in v)
    print(
        f"{len(results)} ops x retain_graph False/True, {n} samples: {len(differ)} ops and "
        f"{bad} samples differ"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
