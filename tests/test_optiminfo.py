"""PyTorch's optimizer database (OptimizerInfo) against descent: see tests/optiminfo_harness.py.

One test per optimizer: every hyperparameter set PyTorch's own test suite trains with must give
descent's optimizer PyTorch's parameters after each of 6 steps and PyTorch's state dict layout,
and every invalid input it lists must make descent raise PyTorch's error type (or warn).
"""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")  # PyTorch's test utilities import it

from optiminfo_harness import check_optimizer, optimizers  # noqa: E402

# Known differences (strict xfails: a fix shows up as an unexpected pass; remove the entry).
# Empty since 2026-12-04: named parameters, tensor lr and betas, duplicate parameters, complex
# parameters (RuntimeError), Muon's bfloat16 Newton-Schulz and LBFGS (see the harness's
# _float64_only) were fixed; tests/test_optiminfo_fixes.py holds their regression tests.
KNOWN: dict[str, str] = {}


def _cases():
    for info in optimizers():
        name = info.optim_cls.__name__
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN[name])] if name in KNOWN else []
        yield pytest.param(info, id=name, marks=marks)


@pytest.mark.parametrize("info", list(_cases()))
def test_optiminfo(info):
    found = check_optimizer(info)
    if found is None:
        pytest.skip("descent has no optimizer of this name")
    assert not found, f"{len(found)} differences from PyTorch:\n" + "\n".join(found[:30])
