"""PyTorch's operator database (OpInfo) against descent: see tests/opinfo_harness.py.

One test per (variant, dtype, operator), the variants being the function (`torch.add`), the
method (`x.add`) and the in-place method (`x.add_`): every sample input PyTorch's own test
suite defines for the operator must give descent PyTorch's dtype, shape and values, and, for
float inputs, PyTorch's gradients. A fourth run ("errors") gives descent PyTorch's error inputs
for each operator: descent must raise PyTorch's exception type.
Known differences are listed in tests/opinfo_known.py as strict xfails with the reason, so a fix
shows up as an unexpected pass (remove its entry) and a new difference fails the suite.
"""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")  # PyTorch's test utilities import it

from opinfo_harness import (  # noqa: E402
    DTYPES,
    RUNS,
    has_error_inputs,
    label,
    ops,
    resolve,
    run_check,
    run_key,
    variant_fns,
)
from opinfo_known import KNOWN  # noqa: E402


def _runs(op, variant):
    """Whether descent has something to compare for this variant (its function or method, or
    the function of an operator with error inputs that name their error); PyTorch's private
    kernels and variants PyTorch itself lacks are not collected."""
    if variant == "errors":
        return resolve(op) is not None and has_error_inputs(op)
    fns = variant_fns(op, variant)
    return fns is not None and fns[1] is not None


def _cases():
    for variant, dname in RUNS:
        dtype = DTYPES[dname]
        key = run_key(variant, dname)
        for op in ops():
            if dtype not in op.supported_dtypes("cpu") or not _runs(op, variant):
                continue
            name = label(op)
            marks = []
            reason = KNOWN.get(key, {}).get(name)
            if reason:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            yield pytest.param(op, dtype, variant, id=f"{key}-{name}", marks=marks)


@pytest.mark.parametrize(("op", "dtype", "variant"), list(_cases()))
def test_opinfo(op, dtype, variant):
    found = run_check(op, dtype, variant)
    if found is None:
        pytest.skip("descent has no function of this name, or no sample could be translated")
    assert not found, f"{len(found)} differences from PyTorch:\n" + "\n".join(found[:20])
