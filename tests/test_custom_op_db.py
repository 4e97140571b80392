"""PyTorch's custom-operator database (custom_op_db) against descent.library: see
tests/custom_op_db_harness.py. One test per (entry, check); what still differs is a strict
xfail with its reason in KNOWN."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("expecttest")  # PyTorch's test utilities import it

from custom_op_db_harness import case_names, check  # noqa: E402

KNOWN: dict[tuple[str, str], str] = {}


def _params():
    for name, which in case_names():
        marks = []
        if (name, which) in KNOWN:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN[(name, which)]))
        yield pytest.param(name, which, id=f"{name}-{which}", marks=marks)


@pytest.mark.parametrize(("name", "which"), list(_params()))
def test_custom_op_db(name, which):
    found = check(name, which)
    if found is None:
        pytest.skip("no sample of this entry could be translated")
    assert not found, f"{len(found)} differences from PyTorch:\n" + "\n".join(found[:20])
