"""PyTorch's operator database (OpInfo) against descent, higher order: see
tests/opinfo_higher_harness.py.

One test per (run, operator): "fwad" compares forward-mode tangents (dual tensors with random
tangents, torch.autograd.forward_ad against descent.autograd.forward_ad) for every operator
with `supports_forward_ad`; "gradgrad" compares second-order gradients (with respect to the
inputs and the grad outputs) for every operator with `supports_gradgrad`; "fwbw" compares
forward over reverse (the tangents of a gradient taken with create_graph at dual inputs) for
every operator with `supports_fwgrad_bwgrad`. float64, the first 4 samples per operator. Known
differences are strict xfails in tests/opinfo_higher_known.py (regenerate:
`python tests/opinfo_higher_harness.py --write-known`).
"""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")  # PyTorch's test utilities import it

from opinfo_harness import label, ops  # noqa: E402
from opinfo_higher_harness import RUNS, collected, run_check  # noqa: E402
from opinfo_higher_known import KNOWN  # noqa: E402


def _cases():
    for run in RUNS:
        for op in ops():
            if not collected(op, run):
                continue
            name = label(op)
            reason = KNOWN.get(run, {}).get(name)
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(op, run, id=f"{run}-{name}", marks=marks)


@pytest.mark.parametrize(("op", "run"), list(_cases()))
def test_opinfo_higher(op, run):
    found = run_check(op, run)
    if found is None:
        pytest.skip("no sample could be translated, or torch has no such derivative there")
    assert not found, f"{len(found)} differences from PyTorch:\n" + "\n".join(found[:20])
