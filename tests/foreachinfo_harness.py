"""Run PyTorch's foreach operator databases (ForeachFuncInfo) against descent.

Besides op_db (tests/opinfo_harness.py), PyTorch's test suite describes its `torch._foreach_*`
functions in five lists of `torch.testing._internal.common_methods_invocations`:
`foreach_unary_op_db`, `foreach_binary_op_db`, `foreach_pointwise_op_db`,
`foreach_reduce_op_db` and `foreach_other_op_db` (48 entries). Each sample is a list of 20 or 23
tensors of different shapes with its second operand: another list of tensors, one number, a list
of numbers (ints, floats, complex and bool mixed), one 0-d tensor, `alpha=`, `value=`,
`scalars=`, `ord=`/`dtype=`. PyTorch's `test_foreach.py` draws them with
`allow_higher_dtype_scalars=True` (complex numbers on float lists); so does this harness.

Three variants per (entry, dtype):

* "function": `torch._foreach_add(xs, ...)` against `descent._foreach_add(...)`: dtype, shape
  and values of every output and, for float and complex inputs, the gradients of a random
  linear function of the outputs (foreach ops are differentiable out of place in PyTorch);
* "inplace": `torch._foreach_add_` on clones of the inputs: the mutated tensors (the very
  objects passed in, returned as PyTorch returns them) and the gradients through the clones
  where the entry supports in-place autograd;
* "empty": PyTorch's zero-size samples (`sample_zero_size_tensor_inputs`: every tensor empty;
  10,000 per list there, the first 23 here), out of place (its `sample_zero_size_inputs` returns
  nothing since OpInfo wraps the sample function, so PyTorch's own suite skips them);
* "errors": the entries have no `error_inputs_func`, so the harness derives the error cases
  PyTorch's test_foreach.py checks from each entry's first sample: an empty list, a second list
  or a list of numbers one shorter, a tensor whose shape does not broadcast. Where torch raises
  descent must raise the same exception class; where torch does not, the values must agree.

In every variant a sample that torch refuses must be refused by descent with the same
exception class (PyTorch's own test_parity asserts the same of its reference).

The comparison of one sample is opinfo_harness's `check_sample` (translation, tolerances,
gradients), called with the variant's two callables.

``check(op, dtype, variant)`` returns a list of findings (empty when descent agrees) or None.
``tests/test_foreachinfo.py`` runs it; ``python tests/foreachinfo_harness.py -v [--op NAME]
[--dtype D] [--variant V]`` prints the findings (NAME: `_foreach_add` or `add`).
"""

from __future__ import annotations

import argparse
import random

import torch
from torch.testing._internal import common_methods_invocations as cmi
from torch.testing._internal.opinfo.core import SampleInput

import descent
from harness_report import report, short
from opinfo_harness import DTYPES, check_sample

DATABASES = ("unary", "binary", "pointwise", "reduce", "other")

# The (variant, dtype) runs tests/test_foreachinfo.py collects; the dtypes descent has of the
# database's (every entry lists all of torch's dtypes; a sample torch refuses must be refused).
RUN_DTYPES = ("float32", "float64", "int64", "bool", "complex64")
VARIANTS = ("function", "inplace", "empty", "errors")
RUNS = [(v, d) for v in ("function", "inplace") for d in RUN_DTYPES] + [
    ("empty", "float32"),
    ("errors", "float32"),
]
EMPTY_LISTS = 23  # tensors kept of each zero-size sample's 10,000

# Differences examined and kept, with the reason (tests/foreachinfo_known.py takes these words);
# keyed by (variant, dtype, entry).
EXPLAINED: dict = {}


def entries():
    """Every ForeachFuncInfo of the five databases, in the databases' order."""
    return [op for db in DATABASES for op in getattr(cmi, f"foreach_{db}_op_db")]


def torch_name(op, variant):
    """torch's function for ``variant`` of ``op`` ("_foreach_add" / "_foreach_add_"), or None."""
    name = op.name + ("_" if variant == "inplace" else "")
    if variant in (
        "errors",
        "empty",
    ):  # the out-of-place form, or the in-place one where it is the only
        name = op.name if hasattr(torch, op.name) else op.name + "_"
    return name if hasattr(torch, name) else None


def samples(op, dtype, grad):
    """The database's samples, drawn as test_foreach.py's test_parity draws them (seeded: the
    numbers in scalar lists come from Python's `random`). The sample function is called
    directly: `op.sample_inputs` wraps it in PyTorch's input tracker, whose `inspect` calls
    cost 80% of the time and add nothing here."""
    random.seed(0)
    torch.manual_seed(0)
    with torch.no_grad():  # as OpInfo calls it
        return list(op.sample_inputs_func(op, "cpu", dtype, grad, allow_higher_dtype_scalars=True))


class _Raised:
    """The exception each side raised on the last call (check_sample swallows torch's)."""

    def __init__(self):
        self.torch = self.descent = None


def _recording(fn, box, side):
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            setattr(box, side, e)
            raise

    return call


def _inplace(fn, name):
    """``fn`` (an in-place foreach) run on clones of the list; returns the tensors it was given,
    after checking that the call returned them (as torch's `_foreach_add_` does)."""

    def call(xs, *args, **kwargs):
        xs = [t.clone() for t in xs]  # clones: in-place on a leaf that requires grad is refused
        given = tuple(xs)
        out = fn(xs, *args, **kwargs)
        if out is not None and (
            len(out) != len(given) or any(o is not g for o, g in zip(out, given))
        ):
            raise AssertionError(f"{name} returned other tensors than the ones it changed")
        return given

    return call


def _fns(op, variant, box):
    """(torch's callable, descent's callable) for ``variant`` of ``op``, or None."""
    name = torch_name(op, variant)
    if name is None:
        return None
    tfn = getattr(torch, name)
    dfn = getattr(descent, name, None)
    if dfn is None:

        def dfn(*args, **kwargs):
            raise AttributeError(f"descent has no torch.{name}")

    if name.endswith("_"):
        tfn, dfn = _inplace(tfn, name), _inplace(dfn, name)
    return _recording(tfn, box, "torch"), _recording(dfn, box, "descent")


def _check_one(op, sample, dtype, grad, variant):
    box = _Raised()
    fns = _fns(op, variant, box)
    tfn, dfn = fns
    found = check_sample(op, dfn, sample, dtype, grad, tfn)
    if found is None:
        return None
    te, de = box.torch, box.descent
    if te is not None and de is not None and not found and not isinstance(de, type(te)):
        found = [f"torch raises {short(te)}; descent {short(de)}"]
    return found


def zero_size_samples(op, dtype, grad):
    """PyTorch's zero-size samples of ``op`` (every tensor empty), each list cut to its first
    EMPTY_LISTS tensors."""
    fn = getattr(op.sample_inputs_func, "__wrapped__", op.sample_inputs_func)
    if not hasattr(fn, "sample_zero_size_tensor_inputs"):
        return []
    out = []
    for s in fn.sample_zero_size_tensor_inputs(op, "cpu", dtype, grad):
        s.input = s.input[:EMPTY_LISTS]
        s.args = tuple(a[:EMPTY_LISTS] if isinstance(a, list) else a for a in s.args)
        out.append(s)
    return out


def _grad(op, dtype, variant):
    if not (dtype.is_floating_point or dtype.is_complex) or variant == "errors":
        return False
    return op.supports_inplace_autograd if variant == "inplace" else op.supports_autograd


def check(op, dtype, variant="function"):
    """Findings for ``variant`` of ``op`` at ``dtype``: a list of strings, or None when the
    variant does not exist in torch (e.g. `_foreach_clone_`) or nothing could run."""
    if _fns(op, variant, _Raised()) is None:
        return None
    grad = _grad(op, dtype, variant)
    if variant == "empty":
        cases = zero_size_samples(op, dtype, grad)
    else:
        cases = samples(op, dtype, grad)
    if variant == "function" and op.supports_scalar_self_arg and cases:
        cases += scalar_self_samples(cases[0])
    if variant == "errors":
        cases = error_samples(cases[0]) if cases else []
    found, ran = [], 0
    for k, s in enumerate(cases):
        res = _check_one(op, s, dtype, grad, variant)
        if res is None:
            continue
        ran += 1
        found += [f"sample {k} ({describe(s)}): {m}" for m in res]
    return found if ran else None


def scalar_self_samples(sample):
    """`torch._foreach_pow(2.5, exponents)` (a number as the base of every tensor, the
    entries with `supports_scalar_self_arg`): test_foreach.py builds these apart from the
    samples; here from the first sample's list, with an int, a float and a bool base."""
    return [SampleInput(c, args=(sample.input,)) for c in (3, 2.5, True)]


def _tensor_lists(sample):
    """Positions (in sample.args) of the arguments that are lists of tensors."""
    return [
        i
        for i, a in enumerate(sample.args)
        if isinstance(a, list) and a and isinstance(a[0], torch.Tensor)
    ]


def error_samples(sample):
    """Inputs PyTorch's test_foreach.py checks for errors, derived from ``sample``: an empty
    list, a second list one shorter, a list of numbers one shorter, a tensor whose shape does
    not broadcast against its partner."""
    xs, args, kw = sample.input, list(sample.args), dict(sample.kwargs)
    out = [SampleInput([], args=tuple([] if isinstance(a, list) else a for a in args), kwargs=kw)]
    lists = _tensor_lists(sample)
    for i in lists:
        short_args = list(args)
        short_args[i] = args[i][:-1]
        out.append(SampleInput(xs, args=tuple(short_args), kwargs=kw))
        bad = list(args[i])
        bad[0] = torch.ones(bad[0].shape[0] + 1, bad[0].shape[0] + 2, dtype=bad[0].dtype)
        bad_args = list(args)
        bad_args[i] = bad
        out.append(SampleInput(xs, args=tuple(bad_args), kwargs=kw))
    for i, a in enumerate(args):
        if isinstance(a, list) and a and not isinstance(a[0], torch.Tensor):
            short_args = list(args)
            short_args[i] = a[:-1]
            out.append(SampleInput(xs, args=tuple(short_args), kwargs=kw))
    if isinstance(kw.get("scalars"), list):
        out.append(SampleInput(xs, args=tuple(args), kwargs={**kw, "scalars": kw["scalars"][:-1]}))
    return out


def describe(s):
    """A sample in a few words: list lengths, not 20 shapes."""

    def d(x):
        if isinstance(x, torch.Tensor):
            return f"T{tuple(x.shape)}"
        if isinstance(x, list) and x and all(isinstance(t, torch.Tensor) for t in x):
            return f"[{len(x)} tensors]"
        if isinstance(x, list):
            return f"[{len(x)}: {', '.join(repr(v) for v in x[:4])}{', ...' if len(x) > 4 else ''}]"
        return repr(x)[:30]

    return ", ".join(
        [d(s.input)] + [d(a) for a in s.args] + [f"{k}={d(v)}" for k, v in s.kwargs.items()]
    )


def run_key(variant, dname):
    return f"{variant}-{dname}"


def write_known(path=None):
    """Rewrite tests/foreachinfo_known.py: each run and entry that differs, with its reason
    (EXPLAINED) or the number of differing samples and the first one."""
    import pathlib  # noqa: PLC0415 - only for --write-known
    import pprint  # noqa: PLC0415

    from harness_report import run_case  # noqa: PLC0415

    known = {}
    for variant, dname in RUNS:
        for op in entries():
            res = run_case(lambda op=op, d=DTYPES[dname], v=variant: check(op, d, v))
            if res:
                why = EXPLAINED.get((variant, dname, op.name))
                known.setdefault(run_key(variant, dname), {})[op.name] = (
                    f"{why}; {len(res)} differences" if why else f"{len(res)} differences; {res[0]}"
                )[:300]
    path = pathlib.Path(path or pathlib.Path(__file__).with_name("foreachinfo_known.py"))
    body = pprint.pformat(known, width=98, sort_dicts=True)
    path.write_text(
        '"""Where descent still differs from PyTorch on its foreach databases\' samples '
        "(tests/test_foreachinfo.py).\n\n"
        "Generated by `python tests/foreachinfo_harness.py --write-known`; each entry is the "
        "reason, or the\nnumber of differing samples and the first one. A fix turns its entry "
        'into an XPASS."""\n\n'
        "# ruff: noqa: E501 (generated: pprint's nested entries may pass 100 columns)\n"
        f"# fmt: off\nKNOWN = {body}\n"
    )
    print(f"wrote {path}: {sum(len(v) for v in known.values())} entries")


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--op", action="append", help="an entry: _foreach_add or add (repeatable)")
    p.add_argument("--dtype", action="append", choices=sorted(DTYPES))
    p.add_argument("--variant", action="append", choices=VARIANTS)
    p.add_argument("-v", action="store_true")
    p.add_argument(
        "--write-known",
        action="store_true",
        help="rewrite tests/foreachinfo_known.py from the test runs",
    )
    a = p.parse_args(argv)
    if a.write_known:
        write_known()
        return
    wanted = {n if n.startswith("_foreach_") else f"_foreach_{n}" for n in a.op or ()}
    for dname in a.dtype or RUN_DTYPES:
        for variant in a.variant or VARIANTS:

            def cases(dname=dname, variant=variant):
                for op in entries():
                    if wanted and op.name not in wanted:
                        continue
                    yield op.name, (lambda op=op: check(op, DTYPES[dname], variant))

            report(cases(), f"{variant} {dname}", a.v)


if __name__ == "__main__":
    main()
