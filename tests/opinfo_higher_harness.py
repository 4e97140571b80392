"""PyTorch's operator database (OpInfo) against descent, higher order: forward-mode AD and
double backward.

tests/opinfo_harness.py compares values and first-order gradients. This module feeds the same
samples (float64, the first few per operator) to two more checks:

* ``fwad``: for each operator with ``op.supports_forward_ad``, every input the sample marks
  differentiable becomes a dual tensor with a random tangent, in ``torch.autograd.forward_ad``
  and in ``descent.autograd.forward_ad`` (same inputs, same tangents); the output tangents
  must agree (a tangent torch gives as None or a zero tensor must be None or zeros in descent).
* ``gradgrad``: for each operator with ``op.supports_gradgrad``, g = d<out, w>/d(inputs) with
  ``create_graph=True`` (random w that require grad), then the gradient of <g, v> (random v)
  with respect to the inputs and to w: PyTorch's gradgradcheck, compared between the two
  libraries instead of against finite differences.

* ``fwbw``: for each operator with ``op.supports_fwgrad_bwgrad`` (forward over reverse):
  the inputs are duals with random tangents, g = d<out, w>/d(inputs) with
  ``create_graph=True``, and g's tangents (Hessian-vector products) are compared.

``check_fwad(op)``, ``check_gradgrad(op)`` and ``check_fwbw(op)`` return a list of findings
(empty: agrees) or None (nothing could run). ``tests/test_opinfo_higher.py`` runs them over
op_db; ``python tests/opinfo_higher_harness.py -v [--op NAME] [--run fwad|gradgrad|fwbw]``
prints a summary and ``--write-known`` regenerates tests/opinfo_higher_known.py.
"""

from __future__ import annotations

import argparse
import itertools
import warnings

import descent.autograd.forward_ad as dfwad
import numpy as np
import torch
import torch.autograd.forward_ad as tfwad

import descent
from harness_report import report, run_case, short
from opinfo_harness import (
    MAX_NUMEL,
    TOL,
    Unsupported,
    _flat,
    _is_test_code,
    _np,
    _retarget,
    compare,
    is_random,
    label,
    ops,
    resolve,
    to_descent,
)

RUNS = ("fwad", "gradgrad", "fwbw")
MAX_SAMPLES = 4  # per operator: the suite's time budget (tests/test_opinfo_higher.py < 45 s)
DTYPE = torch.float64

# Differences examined and kept, with the reason (tests/opinfo_higher_known.py takes these
# words): keys "run:label".
_PARTIAL = (
    "the sample is a slice whose as_strided reads the base's storage; the harness hands "
    "descent a copy, so the base is gone (as in tests/opinfo_known.py)"
)
_UNPOOL = (
    "samples with repeated indices (max_pool's overlapping windows): the output keeps one "
    "of the values written to a position; torch's tangent is that value's, descent's the "
    "transpose of the gather both libraries use as the gradient (their sum). PyTorch's own "
    "OpInfo marks test_forward_mode_AD an expected failure here"
)
EXPLAINED = {
    "fwad:as_strided.partial_views": _PARTIAL,
    "gradgrad:as_strided.partial_views": _PARTIAL,
    "fwbw:as_strided.partial_views": _PARTIAL,
    "fwbw:max_pool2d_with_indices_backward": "a private ATen backward kernel, not a public "
    "function",
    "gradgrad:max_pool2d_with_indices_backward": "a private ATen backward kernel, not a public "
    "function",
    "fwbw:triangular_solve": "torch's forward-over-reverse is off: its tangent of the gradient "
    "differs from central differences of torch's own gradient by 166 (of 15) for b and 1.1e4 "
    "(of 2.3e3) for A; descent's within 1e-7; PyTorch's OpInfo marks test_fn_fwgrad_bwgrad an "
    "expected failure",
    "fwbw:logcumsumexp": "torch's forward AD is off (see fwad); PyTorch's OpInfo marks "
    "test_fn_fwgrad_bwgrad an expected failure",
    "gradgrad:as_strided_scatter": "torch's gradient is wrong (first order already: "
                                   "tests/opinfo_known.py, docs/torch_gaps_tensor.md)",
    "gradgrad:chalf": "descent has no complex32 (NumPy has no complex half): a RuntimeError "
                      "naming cfloat() instead",
    "fwad:max_pool2d_with_indices_backward": "a private ATen backward kernel, not a public "
                                             "function",
    "fwad:nn.functional.max_unpool1d": _UNPOOL,
    "fwad:nn.functional.max_unpool2d": _UNPOOL,
    "fwad:nn.functional.max_unpool3d": _UNPOOL,
    "fwad:logcumsumexp": "torch's forward AD is off: its tangent differs by 3.4e-6 from J v with "
                         "J torch's own reverse-mode Jacobian (descent's within 2e-16, and "
                         "within 1e-7 of central differences); PyTorch's OpInfo marks "
                         "test_forward_mode_AD an expected failure",
    "gradgrad:nn.functional.linear_cross_entropy.chunked": "torch's chunked path has no second "
        "derivative (None for both inputs); on the same sample without `options` torch's "
        "unchunked path gives descent's values; PyTorch's OpInfo skips test_fn_gradgrad here",
    "gradgrad:linalg.norm.subgradients_at_zero": "the norm of a zero vector: torch's second "
        "derivative is nan, descent's 0 (the subgradient at 0 its first order uses, torch's too); "
        "PyTorch's OpInfo skips test_fn_gradgrad for this variant",
}  # fmt: skip


def _replace(obj, mapping):
    """obj (a sample's nested argument) with each tensor found in ``mapping`` (by identity)
    replaced by its value there."""
    if isinstance(obj, (torch.Tensor, descent.Tensor)):
        for k, v in mapping:
            if k is obj:
                return v
        return obj
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_replace(o, mapping) for o in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_replace(o, mapping) for o in obj)
    if isinstance(obj, dict):
        return {k: _replace(v, mapping) for k, v in obj.items()}
    return obj


class _Sample:
    """One OpInfo sample in both libraries: torch's arguments, descent's, and the pairs of
    differentiable inputs (torch tensor, descent tensor) the sample marks requires_grad."""

    def __init__(self, op, sample):
        self.op, self.sample = op, sample
        self.leaves: list = []
        self.dargs = (to_descent(sample.input, self.leaves),
                      to_descent(tuple(sample.args), self.leaves),
                      to_descent(dict(sample.kwargs), self.leaves))  # fmt: skip
        self.leaves = [(t, d) for t, d in self.leaves if t.is_floating_point() or t.is_complex()]
        # a float64 sample may hold float32 inputs (cov's aweights): the looser tolerance
        self.tol = max([TOL[DTYPE]] + [TOL.get(t.dtype, TOL[DTYPE]) for t, _ in self.leaves])
        twrap = op.gradcheck_wrapper
        self.twrap = twrap
        self.dwrap = _retarget(twrap) if _is_test_code(twrap) else twrap
        tpost = sample.output_process_fn_grad
        self.tpost = tpost
        self.dpost = _retarget(tpost) if _is_test_code(tpost) else tpost

    def run_torch(self, mapping):
        s = self.sample
        args = _replace((s.input, tuple(s.args), dict(s.kwargs)), mapping)
        torch.manual_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.tpost(self.twrap(self.op.op, args[0], *args[1], **args[2]))

    def run_descent(self, fn, mapping):
        args = _replace(self.dargs, mapping)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.dpost(self.dwrap(fn, args[0], *args[1], **args[2]))


def _weights(shapes, seed):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen, dtype=DTYPE) for s in shapes]


def _floating(t):
    """A differentiable output: floating or complex (fft's, polar's)."""
    return isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex())


def _weights_like(outs, seed):
    """Random weights in each output's dtype (complex ones for complex outputs), as
    opinfo_harness's first-order check."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(o.shape, generator=gen, dtype=torch.complex128 if o.is_complex()
                        else DTYPE).to(o.dtype) for o in outs]  # fmt: skip


def _at(tol, a, b):
    """(a, b), as float32 when the sample holds float32 inputs (``tol`` float32's): compare
    takes its tolerance from the dtype, and a float64 result of float32 inputs (cov's aweights)
    carries float32's rounding."""
    if tol == TOL[DTYPE]:
        return a, b
    wide = {torch.float64: torch.float32, torch.complex128: torch.complex64}
    a = [x.to(wide[x.dtype]) if isinstance(x, torch.Tensor) and x.dtype in wide else x
         for x in _flat(a)]  # fmt: skip
    b = [x.to(_NARROW[str(x.dtype)]) if isinstance(x, descent.Tensor) and str(x.dtype) in
         _NARROW else x for x in _flat(b)]  # fmt: skip
    return a, b


_NARROW = {"descent.float64": descent.float32, "descent.complex128": descent.complex64}


def _compare_grads(tg, dg, tol, what):
    """Findings between two lists of gradients/tangents (None counts as zeros)."""
    bad = []
    for i, (a, b) in enumerate(zip(tg, dg)):
        if a is None and b is None:
            continue
        if a is None or b is None:  # None is a zero derivative: compared as zeros
            other = b if a is None else a
            if not isinstance(other, (torch.Tensor, descent.Tensor)):
                continue
            zeros = np.zeros_like(_np(other))
            found = compare(*_at(tol, torch.from_numpy(zeros) if a is None else a,
                                 b if b is not None else descent.tensor(zeros)), tol)  # fmt: skip
            if found:
                bad.append(
                    f"{what} {i}: torch {'None' if a is None else 'a tensor'}, descent "
                    f"{'None' if b is None else 'a tensor'} (nonzero: {found[0]})"
                )
            continue
        bad += [f"{what} {i}: {m}" for m in compare(*_at(tol, a, b), tol)]
    return bad


def check_fwad(op, max_samples=MAX_SAMPLES):
    """Forward-mode tangents of ``op``'s first samples, torch's and descent's (see the module
    docstring); None when nothing could run."""
    fn = resolve(op)
    if fn is None or not op.supports_forward_ad:
        return None
    return _each_sample(op, max_samples, lambda s: _fwad_sample(s, fn))


def check_gradgrad(op, max_samples=MAX_SAMPLES):
    """Second-order gradients of ``op``'s first samples (see the module docstring)."""
    fn = resolve(op)
    if fn is None or not op.supports_gradgrad:
        return None
    return _each_sample(op, max_samples, lambda s: _gradgrad_sample(s, fn))


def _each_sample(op, max_samples, check):
    torch.manual_seed(0)
    try:
        gen = op.sample_inputs("cpu", DTYPE, requires_grad=True)
        samples = list(itertools.islice(gen, max_samples * 3))
    except Exception:  # noqa: BLE001 - no float64 samples
        return None
    found, ran = [], 0
    for k, s in enumerate(samples):
        if ran >= max_samples:
            break
        if is_random(op, s):
            continue  # random results: nothing to compare the tangents of
        if op.name in MAX_NUMEL and s.input.numel() > MAX_NUMEL[op.name]:
            continue  # (the suite's time: see opinfo_harness.MAX_NUMEL)
        try:
            sample = _Sample(op, s)
        except Unsupported:
            continue
        if not sample.leaves:
            continue
        res = check(sample)
        if res is None:
            continue
        ran += 1
        found += [f"sample {k}: {m}" for m in res]
    return found if ran else None


def _fwad_sample(sample, fn):
    tol = sample.tol
    tangents = _weights_like([t for t, _ in sample.leaves], 3)
    try:
        with tfwad.dual_level():
            tmap = [(t, tfwad.make_dual(t.detach(), v))
                    for (t, _), v in zip(sample.leaves, tangents)]  # fmt: skip
            tout = sample.run_torch(tmap)
            tflat = _flat(tout)
            tprim = [tfwad.unpack_dual(o).primal if isinstance(o, torch.Tensor) else o
                     for o in tflat]  # fmt: skip
            ttan = [tfwad.unpack_dual(o).tangent if _floating(o) else None for o in tflat]
    except Exception:  # noqa: BLE001 - torch has no forward AD here: nothing to compare
        return None
    try:
        with dfwad.dual_level():
            dmap = [(d, dfwad.make_dual(d.detach(), descent.tensor(_np(v))))
                    for (_, d), v in zip(sample.leaves, tangents)]  # fmt: skip
            dout = sample.run_descent(fn, dmap)
            dflat = _flat(dout)
            if len(dflat) != len(tflat):
                return [f"{len(tflat)} outputs in torch, {len(dflat)} in descent"]
            dprim = [dfwad.unpack_dual(o).primal if isinstance(o, descent.Tensor) else o
                     for o in dflat]  # fmt: skip
            dtan = [dfwad.unpack_dual(o).tangent if _floating(t) and isinstance(o, descent.Tensor)
                    else None for t, o in zip(tflat, dflat)]  # fmt: skip
    except Exception as e:  # noqa: BLE001
        return [f"descent raises {short(e)}"]
    bad = compare(*_at(tol, tprim, dprim), tol)
    if bad:
        return bad
    return _compare_grads(ttan, dtan, tol, "tangent of output")


def _gradgrad_sample(sample, fn):
    tol = sample.tol
    tleaves = [t for t, _ in sample.leaves]
    dleaves = [d for _, d in sample.leaves]
    try:
        tout = sample.run_torch([])
        tf = [o for o in _flat(tout) if _floating(o) and o.requires_grad]
        if not tf:
            return None
        # weights in each output's dtype, as opinfo_harness's first-order check
        ws = [w.requires_grad_() for w in _weights_like(tf, 1)]
        tg = torch.autograd.grad(tf, tleaves, ws, create_graph=True, allow_unused=True)
        keep = [i for i, g in enumerate(tg) if g is not None]
        vs = _weights_like([tg[i] for i in keep], 2)
        tpairs = [(tg[i], v) for i, v in zip(keep, vs) if tg[i].requires_grad]
        # none: torch's gradient is constant (floor, sign, fill, ...): its second derivative
        # is zero, and descent's must be too (None or zeros), checked below
        tgg = torch.autograd.grad([g for g, _ in tpairs], tleaves + ws,
                                  [v for _, v in tpairs], allow_unused=True) if tpairs \
            else [None] * (len(tleaves) + len(ws))  # fmt: skip
    except Exception:  # noqa: BLE001 - torch does not differentiate twice here
        return None
    try:
        dout = sample.run_descent(fn, [])
        df = [d for t, d in zip(_flat(tout), _flat(dout))
              if _floating(t) and t.requires_grad]  # fmt: skip
        if len(df) != len(tf) or any(not isinstance(d, descent.Tensor) for d in df):
            return ["the outputs differ in number or kind"]
        if any(not d.requires_grad for d in df):
            return ["an output that requires grad in torch does not in descent"]
        dws = [descent.tensor(_np(w)).to(d.dtype).requires_grad_() for w, d in zip(ws, df)]
        dg = descent.autograd.grad(df, dleaves, dws, create_graph=True, allow_unused=True)
        bad = _compare_grads(tg, dg, tol, "grad of input")
        if bad:
            return bad
        dpairs = [(dg[i], descent.tensor(_np(v))) for i, v in zip(keep, vs)
                  if dg[i] is not None and dg[i].requires_grad]  # fmt: skip
        if dpairs:
            dgg = descent.autograd.grad([g for g, _ in dpairs], dleaves + dws,
                                        [v for _, v in dpairs], allow_unused=True)  # fmt: skip
        else:
            dgg = [None] * len(tgg)
    except Exception as e:  # noqa: BLE001
        return [f"descent raises {short(e)}"]
    n = len(tleaves)
    names = [f"d2/d(input {i})" for i in range(n)] + [f"d2/d(grad_output {i})"
                                                      for i in range(len(ws))]  # fmt: skip
    bad = []
    for name, a, b in zip(names, tgg, dgg):
        bad += [f"{name}: {m}" for m in _compare_grads([a], [b], tol, "value")]
    return bad


def check_fwbw(op, max_samples=MAX_SAMPLES):
    """Forward over reverse (PyTorch's test_fn_fwgrad_bwgrad): the tangent of the gradient of
    <out, w> with respect to dual inputs (a Hessian-vector product), torch's and descent's."""
    fn = resolve(op)
    if fn is None or not op.supports_fwgrad_bwgrad:
        return None
    return _each_sample(op, max_samples, lambda s: _fwbw_sample(s, fn))


def _fwbw_sample(sample, fn):
    tangents = _weights_like([t for t, _ in sample.leaves], 3)
    try:
        with tfwad.dual_level():
            tmap = [(t, tfwad.make_dual(t.detach().requires_grad_(), v))
                    for (t, _), v in zip(sample.leaves, tangents)]  # fmt: skip
            tout = _flat(sample.run_torch(tmap))
            tf = [o for o in tout if _floating(o) and o.requires_grad]
            if not tf:
                return None
            ws = _weights_like(tf, 1)
            tg = torch.autograd.grad(tf, [d for _, d in tmap], ws, allow_unused=True,
                                     create_graph=True)  # fmt: skip
            ttan = [None if g is None else tfwad.unpack_dual(g).tangent for g in tg]
    except Exception:  # noqa: BLE001 - torch has no forward-over-reverse here
        return None
    try:
        with dfwad.dual_level():
            dmap = [(d, dfwad.make_dual(d.detach().requires_grad_(), descent.tensor(_np(v))))
                    for (_, d), v in zip(sample.leaves, tangents)]  # fmt: skip
            dout = _flat(sample.run_descent(fn, dmap))
            if len(dout) != len(tout):
                return [f"{len(tout)} outputs in torch, {len(dout)} in descent"]
            df = [d for t, d in zip(tout, dout) if _floating(t) and t.requires_grad]
            if any(not isinstance(d, descent.Tensor) or not d.requires_grad for d in df):
                return ["an output that requires grad in torch does not in descent"]
            dg = descent.autograd.grad(df, [d for _, d in dmap],
                                       [descent.tensor(_np(w)) for w in ws],
                                       allow_unused=True, create_graph=True)  # fmt: skip
            dtan = [None if g is None else dfwad.unpack_dual(g).tangent for g in dg]
    except Exception as e:  # noqa: BLE001
        return [f"descent raises {short(e)}"]
    return _compare_grads(ttan, dtan, sample.tol, "tangent of the gradient of input")


CHECKS = {"fwad": check_fwad, "gradgrad": check_gradgrad, "fwbw": check_fwbw}
FLAGS = {"fwad": "supports_forward_ad", "gradgrad": "supports_gradgrad",
         "fwbw": "supports_fwgrad_bwgrad"}  # fmt: skip


def run_check(op, run):
    """Findings for one (run, operator); torch on one thread (as opinfo_harness.run_check)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return CHECKS[run](op)
    finally:
        torch.set_num_threads(threads)


def collected(op, run):
    """Whether the (run, operator) case exists: descent has the function, op_db the flag and
    float64."""
    flag = getattr(op, FLAGS[run])
    return bool(flag) and DTYPE in op.supported_dtypes("cpu") and resolve(op) is not None


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--op", action="append")
    p.add_argument("--run", choices=RUNS, action="append")
    p.add_argument("-v", action="store_true")
    p.add_argument("--write-known", action="store_true",
                   help="rewrite tests/opinfo_higher_known.py from this run")  # fmt: skip
    a = p.parse_args(argv)
    if a.write_known:
        write_known()
        return
    for run in a.run or RUNS:

        def cases(run=run):
            for op in ops():
                if (a.op and op.name not in a.op) or not collected(op, run):
                    continue
                yield label(op), (lambda op=op: run_check(op, run))

        report(cases(), run, a.v)


def write_known(path=None):
    """Rewrite tests/opinfo_higher_known.py: each (run, operator) that differs, with one
    finding (or the EXPLAINED reason)."""
    import pathlib
    import pprint

    known: dict = {}
    for run in RUNS:
        for op in ops():
            if not collected(op, run):
                continue
            res = run_case(lambda op=op, run=run: run_check(op, run))
            if res:
                why = EXPLAINED.get(f"{run}:{label(op)}")
                known.setdefault(run, {})[label(op)] = (
                    f"{why}; {len(res)} differences" if why else
                    f"{len(res)} differences; {res[0]}")[:400]  # fmt: skip
    path = pathlib.Path(path or pathlib.Path(__file__).with_name("opinfo_higher_known.py"))
    body = pprint.pformat(known, width=98, sort_dicts=True)
    path.write_text(
        '"""Where descent still differs from PyTorch in forward-mode AD or double backward on '
        "its\nOpInfo samples (tests/test_opinfo_higher.py).\n\n"
        "Generated by `python tests/opinfo_higher_harness.py --write-known`; each entry is the "
        "number of\ndiffering samples and the first one (or the examined reason). Fixing an "
        'operator turns its entry\ninto an XPASS."""\n\n'
        "# ruff: noqa: E501 (generated: pprint's nested entries may pass 100 columns)\n"
        f"# fmt: off\nKNOWN = {body}\n"
    )
    print(f"wrote {path}: {sum(len(v) for v in known.values())} entries")


if __name__ == "__main__":
    main()
