"""PyTorch's custom-Function database (autograd_function_db) against descent: see
tests/autograd_function_harness.py.

One test per (entry, check): the same `torch.autograd.Function` classes, rebuilt on descent,
must give torch's outputs, gradients, forward-mode tangents, vmap results and second-order
gradients. What still differs is a strict xfail in KNOWN with the reason.
"""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")  # PyTorch's test utilities import it

from autograd_function_harness import case_names, run  # noqa: E402

KNOWN: dict = {}  # (entry, check) -> reason: none left (the jvp staticmethod is used)


def _cases():
    for name, check in case_names():
        reason = KNOWN.get((name, check))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        yield pytest.param(name, check, id=f"{name}-{check}", marks=marks)


@pytest.mark.parametrize(("name", "check"), list(_cases()))
def test_autograd_function_db(name, check):
    found = run(name, check)
    assert found is not None, "no sample ran"
    assert not found, f"{len(found)} differences from PyTorch:\n" + "\n".join(found[:20])
