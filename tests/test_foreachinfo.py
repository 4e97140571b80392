"""PyTorch's foreach operator databases against descent: see tests/foreachinfo_harness.py.

One test per (variant, dtype, entry) of `foreach_unary_op_db`, `foreach_binary_op_db`,
`foreach_pointwise_op_db`, `foreach_reduce_op_db` and `foreach_other_op_db`: the out-of-place
function (`torch._foreach_add`: values, dtypes, shapes, gradients) and the in-place one
(`torch._foreach_add_`: the mutated tensors, gradients through clones) at float32, float64,
int64, bool and complex64, and the error inputs derived from each entry's first sample.
Known differences are strict xfails (tests/foreachinfo_known.py, with the reason), so a fix
shows up as an unexpected pass and a new difference fails.
"""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")  # PyTorch's test utilities import it

from foreachinfo_harness import DTYPES, RUNS, check, entries, run_key, torch_name  # noqa: E402
from foreachinfo_known import KNOWN  # noqa: E402


def _cases():
    for variant, dname in RUNS:
        key = run_key(variant, dname)
        for op in entries():
            if torch_name(op, variant) is None:  # e.g. no _foreach_clone_, no _foreach_zero
                continue
            reason = KNOWN.get(key, {}).get(op.name)
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(op, DTYPES[dname], variant, id=f"{key}-{op.name}", marks=marks)


@pytest.mark.parametrize(("op", "dtype", "variant"), list(_cases()))
def test_foreachinfo(op, dtype, variant):
    found = check(op, dtype, variant)
    if found is None:
        pytest.skip(
            "no sample for this variant (PyTorch gives _foreach_max and _foreach_mm no "
            "zero-size samples)"
        )
    assert not found, f"{len(found)} differences from PyTorch:\n" + "\n".join(found[:20])
