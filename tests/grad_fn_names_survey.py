"""How often `out.grad_fn.name()` is PyTorch's, over PyTorch's operator database (op_db).

For each OpInfo entry (function variant) with a float32 sample that both libraries run with
inputs requiring grad, compare the name of the first output's grad_fn. Run it by hand:
``python tests/grad_fn_names_survey.py [-v]`` prints the agreement rate (and with -v every
differing pair, "torch descent").
"""

from __future__ import annotations

import argparse
import itertools
import sys
import warnings

import torch

from opinfo_harness import Unsupported, _flat, label, ops, resolve, to_descent


def first_names(op):
    """(torch's name, descent's name) for op's first float32 sample that both run, or None."""
    fn = resolve(op)
    if fn is None or not op.supports_autograd or torch.float32 not in op.supported_dtypes("cpu"):
        return None
    torch.manual_seed(0)
    try:
        # the first 4 samples only, drawn lazily: generating every sample of every entry took
        # most of the survey's time (22 s of the suite)
        samples = list(itertools.islice(op.sample_inputs("cpu", torch.float32,
                                                         requires_grad=True), 4))
    except Exception:  # noqa: BLE001 - a database generator that fails here: not measured
        return None
    for s in samples:
        try:
            leaves: list = []
            dargs = to_descent((s.input, *s.args), leaves)
            dkw = to_descent(dict(s.kwargs), leaves)
        except Unsupported:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tout = _flat(op.op(s.input, *s.args, **s.kwargs))[0]
                dout = _flat(fn(*dargs, **dkw))[0]
        except Exception:  # noqa: BLE001 - either refuses the sample: try the next one
            continue
        tg = getattr(tout, "grad_fn", None)
        dg = getattr(dout, "grad_fn", None)
        if tg is None or dg is None:
            continue
        return tg.name(), dg.name()
    return None


def survey():
    """{label: (torch name, descent name)} over op_db."""
    res = {}
    for op in ops():
        got = first_names(op)
        if got is not None:
            res[label(op)] = got
    return res


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("-v", action="store_true")
    a = p.parse_args(argv)
    res = survey()
    same = sum(t == d for t, d in res.values())
    if a.v:
        for k, (t, d) in sorted(res.items()):
            if t != d:
                print(f"{k}: {t} {d}")
    print(
        f"grad_fn.name(): {same} of {len(res)} agree ({100 * same / len(res):.1f}%)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
