"""A second backward() without retain_graph over PyTorch's OpInfo samples, torch against descent.

For the first three float64 samples of each operator in op_db (see opinfo_harness.py), both
libraries run the op, `autograd.backward(outputs, weights)` once (no extra nodes: the weights
are the seeds) and then again; each records whether the second pass raised PyTorch's "a second
time" error. `python tests/second_backward_survey.py [OP ...]` prints the operators whose
outcome differs and the counts (about 25 s for all of op_db); docs/engine.md ("A second
backward through freed values") lists what it finds. Not a test: a survey for the next fix.
"""

from __future__ import annotations

import itertools
import sys

import torch

import descent
from opinfo_harness import RANDOM, Unsupported, _np, _random_sample, label, ops, resolve
from opinfo_higher_harness import DTYPE, _flat, _floating, _Sample, _weights_like


def _second(backward, outs, ws) -> str:
    backward(outs, ws)
    try:
        backward(outs, ws)
        return "ok"
    except RuntimeError as e:
        return "raise" if "second time" in str(e) else "other: " + str(e)[:80]


def survey_op(op, n_samples: int = 3) -> list | None:
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
        try:
            tflat = _flat(smp.run_torch([]))
            idx = [i for i, o in enumerate(tflat) if _floating(o) and o.requires_grad]
            if not idx:
                continue
            ws = _weights_like([tflat[i] for i in idx], 1)
            t_res = _second(torch.autograd.backward, [tflat[i] for i in idx], ws)
        except Exception:  # noqa: BLE001 - torch cannot run it: nothing to compare
            continue
        try:
            dflat = _flat(smp.run_descent(fn, []))
            douts = [dflat[i] for i in idx]
            dws = [descent.tensor(_np(w)).to(d.dtype) for w, d in zip(ws, douts)]
            d_res = _second(descent.autograd.backward, douts, dws)
        except Exception as e:  # noqa: BLE001
            d_res = f"descent raises {type(e).__name__}: {str(e)[:60]}"
        found.append((t_res, d_res))
    return found


def main(names) -> None:
    results = {}
    for op in ops():
        if names and op.name not in names:
            continue
        res = survey_op(op)
        if res:
            results[label(op)] = res
    differ = {k: v for k, v in results.items() if any(a != b for a, b in v)}
    for k, v in sorted(differ.items()):
        print(k, v)
    n = sum(len(v) for v in results.values())
    bad = sum(a != b for v in results.values() for a, b in v)
    print(f"{len(results)} ops, {n} samples: {len(differ)} ops and {bad} samples differ")


if __name__ == "__main__":
    main(sys.argv[1:])
